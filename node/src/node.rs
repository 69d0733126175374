//! Starting a node: the store, the pool, the network, consensus and the API, wired together.

use std::collections::BTreeSet;
use std::sync::atomic::AtomicU64;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use anyhow::{bail, Context, Result};
use commonware_runtime::{Runner as _, Supervisor as _};
use tokio::sync::{mpsc, watch};
use vault_protocol::crypto::{KeyPair, PublicKey};
use vault_protocol::genesis::Genesis;
use vault_protocol::state;

use crate::chain::Chain;
use crate::checkpoints::{self, Checkpoints};
use crate::config::NodeConfig;
use crate::consensus::{self, AppParts, CHANNELS, CHANNEL_TRANSACTIONS};
use crate::context::NodeContext;
use crate::documents::{Documents, VaultKey};
use crate::p2p::{Network, P2pSettings};
use crate::pool::Pool;
use crate::store::Store;
use crate::vault::Vault;
use crate::{api, deploy, keys, receipts, vault_api};

/// Runs a node until Ctrl-C (or SIGTERM). Builds the runtime itself.
pub fn run_blocking(cfg: NodeConfig) -> Result<()> {
    let genesis = deploy::read_genesis(&cfg.genesis)?;
    let node_key = keys::read(&cfg.node_key)?;
    let signing_key = keys::read(&cfg.signing_key)?;
    std::fs::create_dir_all(&cfg.data_dir)
        .with_context(|| format!("creating {}", cfg.data_dir.display()))?;
    let runtime = commonware_runtime::tokio::Config::new()
        .with_worker_threads(4)
        .with_storage_directory(cfg.data_dir.join("consensus"))
        .with_catch_panics(false);
    commonware_runtime::tokio::Runner::new(runtime)
        .start(|context| async move { run(context, cfg, genesis, node_key, signing_key).await })
}

async fn run(
    context: commonware_runtime::tokio::Context,
    cfg: NodeConfig,
    genesis: Genesis,
    node_key: KeyPair,
    signing_key: KeyPair,
) -> Result<()> {
    let (store, report) = Store::open(&cfg.data_dir.join("ledger"), &genesis)
        .with_context(|| format!("opening the ledger in {}", cfg.data_dir.display()))?;
    tracing::info!(
        blocks = report.blocks,
        head = %report.head.hash,
        "ledger checked: hash chain and log root intact"
    );
    let store = Arc::new(store);
    let gov = state::governance(&store.snapshot())?;
    let me = gov.member(&cfg.department).with_context(|| {
        format!(
            "department {} is not a member of this chain",
            cfg.department
        )
    })?;
    if me.current_node_key() != Some(&node_key.public()) {
        bail!(
            "the node key in {} is not {}'s node key on the ledger",
            cfg.node_key.display(),
            cfg.department
        );
    }
    let validators: Vec<(vault_protocol::ids::DepartmentId, PublicKey)> = gov.validator_keys();
    let mut dial = Vec::new();
    for p in &cfg.p2p.peers {
        let key = gov
            .member(&p.department)
            .and_then(|d| d.current_node_key())
            .with_context(|| format!("peer {} is not a member department", p.department))?;
        dial.push((*key, p.address.clone()));
    }
    let (net, mut inbound, _swarm) = Network::start(P2pSettings {
        key: node_key.clone(),
        listen: cfg.p2p.listen.clone(),
        peers: dial,
        members: validators.iter().map(|(_, k)| *k).collect(),
        channels: CHANNELS.to_vec(),
    })
    .await?;

    let (heads_tx, heads_rx) = watch::channel(report.head.clone());
    let (gossip_tx, gossip_rx) = mpsc::channel(8192);
    let ctx = Arc::new(NodeContext {
        department: cfg.department.clone(),
        genesis: genesis.clone(),
        store: store.clone(),
        pool: Pool::new(cfg.pool.capacity),
        head: heads_rx,
        gossip: gossip_tx,
        peers: Mutex::new(BTreeSet::new()),
        finalized_seen: AtomicU64::new(report.head.height),
        http_url: format!("http://{}", cfg.http.listen),
        p2p_address: cfg.p2p.listen.clone(),
        max_body_bytes: cfg.http.max_body_bytes,
        governance_cache: Mutex::new(None),
    });

    // Keep the status page's list of connected departments current.
    {
        let ctx = ctx.clone();
        let net = net.clone();
        let names = validators.clone();
        tokio::spawn(async move {
            loop {
                let connected = net.connected();
                let set: BTreeSet<_> = names
                    .iter()
                    .filter(|(_, k)| connected.contains(k))
                    .map(|(d, _)| d.clone())
                    .collect();
                if let Ok(mut p) = ctx.peers.lock() {
                    *p = set;
                }
                tokio::time::sleep(Duration::from_millis(500)).await;
            }
        });
    }
    if let Some(rx) = inbound.remove(&CHANNEL_TRANSACTIONS) {
        consensus::spawn_tx_gossip(ctx.clone(), rx);
    }
    consensus::spawn_tx_broadcast(net.clone(), gossip_rx);

    let chain = Arc::new(Chain::new(store.clone()));
    let validator_keys: Vec<PublicKey> = validators.iter().map(|(_, k)| *k).collect();
    let engine_net =
        consensus::libp2p_engine_network(&context, &net, &mut inbound, &validator_keys)?;
    consensus::start(
        context.child("consensus"),
        AppParts {
            ctx: ctx.clone(),
            heads: heads_tx,
            chain,
            node_key,
            validators: validator_keys,
            timing: cfg.consensus.clone(),
            max_block_transactions: gov.params.max_block_transactions as usize,
            partition_prefix: "vault".into(),
        },
        engine_net,
    )
    .await?;

    let docs = Documents::open(
        &cfg.data_dir.join("documents"),
        VaultKey::load_or_create(&cfg.vault_key_file())?,
        cfg.vault.max_file_bytes,
    )
    .with_context(|| format!("opening the document vault in {}", cfg.data_dir.display()))?;
    let pending = docs.journal(usize::MAX)?.len();
    if pending > 0 {
        tracing::info!(
            reads = pending,
            "served reads waiting to be recorded on the ledger"
        );
    }
    let checkpoints = inbound
        .remove(&checkpoints::CHANNEL_COSIGNATURES)
        .map(|rx| Checkpoints::start(ctx.clone(), net.clone(), rx, signing_key.clone()));
    let vault = Vault::new(ctx.clone(), Arc::new(docs), Some(net.clone()));
    vault.spawn_transfer_server()?;
    receipts::spawn_recorder(vault.clone(), signing_key);

    let listener = tokio::net::TcpListener::bind(cfg.http.listen)
        .await
        .with_context(|| format!("binding the HTTP API on {}", cfg.http.listen))?;
    tracing::info!(url = %ctx.http_url, department = %cfg.department, "API listening");
    let mut app = api::router(ctx.clone(), cfg.http.max_body_bytes)
        .merge(vault_api::router(vault))
        .merge(crate::proofs::router(ctx.clone()));
    if let Some(cp) = checkpoints {
        app = app.merge(cp.router());
    }
    axum::serve(listener, app)
        .with_graceful_shutdown(shutdown_signal())
        .await
        .context("HTTP server")?;
    tracing::info!("stopping");
    Ok(())
}

async fn shutdown_signal() {
    #[cfg(unix)]
    {
        let mut term =
            match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
                Ok(s) => s,
                Err(_) => {
                    let _ = tokio::signal::ctrl_c().await;
                    return;
                }
            };
        tokio::select! {
            _ = tokio::signal::ctrl_c() => {}
            _ = term.recv() => {}
        }
    }
    #[cfg(not(unix))]
    {
        let _ = tokio::signal::ctrl_c().await;
    }
}
