//! Deterministic simulation of the consensus glue: four validators running the node's real
//! application, marshal and Simplex wiring (`vault_node::consensus::start`) with real RocksDB
//! stores, over commonware's simulated network in the deterministic runtime — with message loss
//! and a partition that heals. The same seed must give the same outcome.

#![allow(clippy::unwrap_used)]

use std::collections::BTreeSet;
use std::sync::atomic::AtomicU64;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::Bytes;
use commonware_codec::DecodeExt;
use commonware_cryptography::ed25519::PublicKey as CwKey;
use commonware_p2p::simulated;
use commonware_runtime::{deterministic, Clock, Quota, Runner, Supervisor};
use commonware_utils::{probability, NZUsize, NZU32};
use tokio::sync::{mpsc, watch};
use vault_node::chain::Chain;
use vault_node::config::ConsensusConfig;
use vault_node::consensus::{self, AppParts, EngineNetwork};
use vault_node::context::NodeContext;
use vault_node::pool::Pool;
use vault_node::store::Store;
use vault_protocol::ids::{BlockHash, Timestamp};
use vault_protocol::ledger::{test_uscc as uscc, TestNetwork};
use vault_protocol::state;
use vault_protocol::tx::{Enrolment, TxBody};

const IDS: [&str; 4] = ["samr", "tax", "hrss", "housing"];

/// A link that delivers `percent` of messages.
fn link(percent: u64) -> simulated::Link {
    simulated::Link {
        latency: Duration::from_millis(20),
        jitter: Duration::from_millis(10),
        success_rate: probability!(percent, 100),
    }
}

fn clock_ms<E: Clock>(c: &E) -> Timestamp {
    c.current().into()
}

/// Runs the scenario; returns the runtime's audit hash and every node's head hash at the common
/// height reached.
fn run(seed: u64) -> (String, Vec<BlockHash>, u64) {
    let dirs: Vec<tempfile::TempDir> = (0..4).map(|_| tempfile::tempdir().unwrap()).collect();
    let paths: Vec<_> = dirs.iter().map(|d| d.path().to_path_buf()).collect();
    let executor = deterministic::Runner::new(
        deterministic::Config::new()
            .with_seed(seed)
            .with_timeout(Some(Duration::from_secs(900))),
    );
    executor.start(|context| async move {
        let mut net = TestNetwork::new(&IDS);
        net.genesis.genesis_time = Timestamp(0);
        let keys: Vec<CwKey> = net
            .departments
            .iter()
            .map(|d| CwKey::decode(Bytes::copy_from_slice(d.node.public().as_bytes())).unwrap())
            .collect();
        let max_size = 8 * 1024 * 1024;
        let (network, oracle) = simulated::Network::new_with_peers(
            context.child("network"),
            simulated::Config {
                max_size,
                max_peers_per_set: NZUsize!(4),
                disconnect_on_block: true,
                tracked_peer_sets: NZUsize!(1),
            },
            keys.clone(),
        )
        .await;
        network.start();
        // Lossy links: one message in ten is dropped.
        for a in &keys {
            for b in &keys {
                if a != b {
                    oracle
                        .add_link(a.clone(), b.clone(), link(90))
                        .await
                        .unwrap();
                }
            }
        }
        let validators: Vec<_> = net.departments.iter().map(|d| d.node.public()).collect();
        let mut contexts = Vec::new();
        for (i, dept) in net.departments.iter().enumerate() {
            let (store, report) = Store::open(&paths[i], &net.genesis).unwrap();
            let store = Arc::new(store);
            let (heads_tx, heads_rx) = watch::channel(report.head.clone());
            let (gossip, _gossip_rx) = mpsc::channel(16);
            let ctx = Arc::new(NodeContext {
                department: dept.id.clone(),
                genesis: net.genesis.clone(),
                store: store.clone(),
                pool: Pool::new(10_000),
                head: heads_rx,
                gossip,
                peers: Mutex::new(BTreeSet::new()),
                finalized_seen: AtomicU64::new(0),
                http_url: String::new(),
                p2p_address: String::new(),
                max_body_bytes: 1 << 20,
                governance_cache: Mutex::new(None),
            });
            let control = oracle.control(keys[i].clone());
            let quota = Quota::per_second(NZU32!(10_000));
            let channel = |ch: u64| {
                let control = control.clone();
                async move { control.register(ch, quota).await.unwrap() }
            };
            let engine_net = EngineNetwork {
                votes: channel(0).await,
                certificates: channel(1).await,
                resolver: channel(2).await,
                broadcast: channel(3).await,
                backfill: channel(4).await,
                blocker: control.clone(),
                peers: oracle.manager(),
            };
            consensus::start(
                context
                    .child("validator")
                    .with_attribute("department", dept.id.as_str()),
                AppParts {
                    ctx: ctx.clone(),
                    heads: heads_tx,
                    chain: Arc::new(Chain::new(store)),
                    node_key: dept.node.clone(),
                    validators: validators.clone(),
                    timing: ConsensusConfig::default(),
                    max_block_transactions: 1000,
                    partition_prefix: format!("sim-{}", dept.id),
                },
                engine_net,
            )
            .await
            .unwrap();
            contexts.push(ctx);
        }

        // Submit enrolments to every node's pool.
        let samr = net.department("samr");
        let gov = state::governance(&contexts[0].store.snapshot()).unwrap();
        for n in 0..12u32 {
            let tx = net
                .tx(
                    clock_ms(&context),
                    TxBody::EnrolEnterprise(Enrolment {
                        department: samr.id.clone(),
                        enterprise: uscc(n),
                        key: vault_protocol::ledger::test_key(&format!("e{n}"), "enterprise")
                            .public(),
                    }),
                )
                .sign_one(&samr.signing);
            for ctx in &contexts {
                let _ = ctx.pool.admit(
                    &ctx.store.snapshot(),
                    &gov,
                    &ctx.head(),
                    clock_ms(&context),
                    tx.clone(),
                );
            }
        }
        let wait_all = |target: u64| {
            let contexts = contexts.clone();
            let context = &context;
            async move {
                loop {
                    if contexts.iter().all(|c| c.head().height >= target) {
                        return;
                    }
                    context.sleep(Duration::from_millis(100)).await;
                }
            }
        };
        wait_all(5).await;
        let enrolled = |ctx: &NodeContext, n: u32| {
            state::enterprise(&ctx.store.snapshot(), &uscc(n))
                .unwrap()
                .is_some()
        };
        while !contexts.iter().all(|c| (0..12).all(|n| enrolled(c, n))) {
            context.sleep(Duration::from_millis(100)).await;
        }

        // Partition {samr, tax} from {hrss, housing}: neither side has a quorum of 3.
        for a in 0..2 {
            for b in 2..4 {
                oracle
                    .remove_link(keys[a].clone(), keys[b].clone())
                    .await
                    .unwrap();
                oracle
                    .remove_link(keys[b].clone(), keys[a].clone())
                    .await
                    .unwrap();
            }
        }
        context.sleep(Duration::from_secs(2)).await;
        let during: Vec<u64> = contexts.iter().map(|c| c.head().height).collect();
        context.sleep(Duration::from_secs(20)).await;
        let after: Vec<u64> = contexts.iter().map(|c| c.head().height).collect();
        assert_eq!(
            during, after,
            "no side of the partition may finalize without a quorum"
        );

        // Heal: the network finalizes again.
        for a in 0..2 {
            for b in 2..4 {
                oracle
                    .add_link(keys[a].clone(), keys[b].clone(), link(90))
                    .await
                    .unwrap();
                oracle
                    .add_link(keys[b].clone(), keys[a].clone(), link(90))
                    .await
                    .unwrap();
            }
        }
        let target = after.iter().max().copied().unwrap_or(0) + 5;
        wait_all(target).await;
        let hashes: Vec<BlockHash> = contexts
            .iter()
            .map(|c| {
                c.store
                    .header(target)
                    .unwrap()
                    .unwrap()
                    .hash(c.store.suite())
            })
            .collect();
        for h in &hashes {
            assert_eq!(h, &hashes[0], "validators disagree at height {target}");
        }
        (context.auditor().state(), hashes, target)
    })
}

#[test]
fn lossy_partitioned_network_agrees_and_is_deterministic() {
    let first = run(42);
    let second = run(42);
    println!(
        "seed 42: all four validators at height {} with head {}; audit {}",
        first.2, first.1[0], first.0
    );
    assert!(first.2 >= 10);
    assert_eq!(first.1, second.1, "same seed, different chains");
    assert_eq!(first.0, second.0, "same seed, different execution");
}
