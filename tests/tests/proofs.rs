//! Trust without trusting a node, over four real department nodes: proof bundles served by one
//! node verify offline with only the genesis file (which also checks the consensus engine's real
//! finalization certificates against the protocol's own reader), status changes reach a
//! subscriber as server-sent events, a replayed old bundle is refused when freshness is
//! demanded, and consistency proofs tie the checkpoints together.

use std::time::{Duration, Instant};

use anyhow::{ensure, Context, Result};
use futures::StreamExt;
use vault_protocol::bundle::{verify_bundle, Anchor, ProofBundle};
use vault_protocol::checkpoint::{cosigned_checkpoint_verdict, verify_consistency_between};
use vault_protocol::crypto::CryptoSuite;
use vault_protocol::encoding::Canonical;
use vault_protocol::merkle::ConsistencyProof;
use vault_protocol::state::Status;
use vault_protocol::tx::StatusAction;
use vault_protocol::verify::Reason;
use vault_tests::{now, Cluster};

const SUITE: CryptoSuite = CryptoSuite::Ed25519Sha256;

async fn bundle(c: &Cluster, node: usize, id: &str) -> Result<ProofBundle> {
    // A node may be between committing a block and holding its certificate: retry briefly.
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let (code, bytes) = c
            .get_bytes(
                node,
                &format!("/v1/attestations/{id}/bundle"),
                "application/octet-stream",
            )
            .await?;
        if code == 200 {
            return Ok(ProofBundle::decode(&bytes)?);
        }
        ensure!(
            code == 503 && Instant::now() < deadline,
            "bundle from node {node}: {code} {}",
            String::from_utf8_lossy(&bytes)
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

async fn checkpoint(
    c: &Cluster,
    node: usize,
) -> Result<vault_protocol::checkpoint::VerifiedCheckpoint> {
    let (code, bytes) = c.get_bytes(node, "/checkpoint", "text/plain").await?;
    ensure!(code == 200, "checkpoint: {code}");
    Ok(cosigned_checkpoint_verdict(
        &bytes,
        &c.genesis.governance(),
        None,
    )?)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bundles_verify_offline_status_changes_are_pushed_and_stale_bundles_are_caught(
) -> Result<()> {
    let c = Cluster::start(4)?;
    for i in 0..4 {
        c.wait_height(i, 1, Duration::from_secs(60)).await?;
    }
    let samr = c.nodes[0].department.clone();
    c.commit(0, &c.enrol_tx(7)).await?;
    let licence = b"%PDF-1.7 business licence of enterprise 7".to_vec();
    let issue = c.issue_tx(
        &samr,
        &c.nodes[0].signing,
        7,
        "BUSINESS_LICENCE",
        &licence,
        None,
    )?;
    let id = issue.id(SUITE).to_string();
    c.commit(0, &issue).await?;
    let anchor = Anchor::from_genesis(&c.genesis);

    // Any node's bundle verifies with the genesis alone: the real engine's certificate included.
    let digest = SUITE.file_digest(&licence);
    for node in [1, 3] {
        let b = bundle(&c, node, &id).await?;
        let out = verify_bundle(&anchor, &b, Some(&digest), now(), Some(30_000))
            .with_context(|| format!("bundle from node {node}"))?;
        ensure!(out.verdict.valid, "{:?}", out.verdict.checks);
        // A quorum of signatures, no more: three of four.
        ensure!(out.block.certified_by.len() == 3, "{:?}", out.block);
        ensure!(
            vault_protocol::certificate::Finalization::parse(&b.certificate)?
                .signers
                .len()
                == 3
        );
        ensure!(
            b.encode().len() < 2048,
            "bundle is {} bytes",
            b.encode().len()
        );
    }
    // The JSON form is the same bundle.
    let (code, json) = c.get(2, &format!("/v1/attestations/{id}/bundle")).await?;
    ensure!(code == 200, "{json}");
    let b: ProofBundle = serde_json::from_value(json)?;
    ensure!(verify_bundle(&anchor, &b, None, now(), None)?.verdict.valid);
    // The verify API hands out a bundle with its verdict.
    let resp = reqwest::Client::new()
        .post(format!(
            "{}/v1/verify?attestation={id}&bundle=true",
            c.nodes[1].url
        ))
        .body(licence.clone())
        .send()
        .await?
        .json::<serde_json::Value>()
        .await?;
    let b: ProofBundle = serde_json::from_value(resp["verdicts"][0]["bundle"].clone())?;
    let out = verify_bundle(&anchor, &b, Some(&digest), now(), None)?;
    ensure!(out.verdict.valid && resp["valid"] == true, "{resp}");
    ensure!(
        resp["as_of"]["status_root"] == serde_json::json!(b.header.status_root),
        "{resp}"
    );

    // A relying party subscribes to the licence's status, then samr revokes it.
    let events = reqwest::Client::new()
        .get(format!(
            "{}/v1/events/status?attestations={id}",
            c.nodes[3].url
        ))
        .send()
        .await?;
    ensure!(events.status() == 200);
    let mut stream = events.bytes_stream();
    let before = bundle(&c, 2, &id).await?;
    tokio::time::sleep(Duration::from_millis(1_500)).await;
    c.commit(0, &c.status_tx(0, &id, StatusAction::Revoke)?)
        .await?;

    let mut text = String::new();
    let deadline = Instant::now() + Duration::from_secs(20);
    while !text.contains("\"revoked\"") {
        ensure!(Instant::now() < deadline, "no revocation event; got {text}");
        let chunk = tokio::time::timeout(Duration::from_secs(20), stream.next())
            .await?
            .context("event stream ended")??;
        text.push_str(&String::from_utf8_lossy(&chunk));
    }
    ensure!(
        text.contains("event: status") && text.contains("\"active\""),
        "{text}"
    );

    // The revocation is in the next bundle.
    let after = bundle(&c, 1, &id).await?;
    let out = verify_bundle(&anchor, &after, None, now(), Some(30_000))?;
    ensure!(out.verdict.status == Status::Revoked);
    ensure!(out.verdict.failures() == vec![Reason::Revoked]);

    // A node replaying the state from before the revocation: its genuine old bundle proves
    // "active" only as of its old block, and a verifier demanding freshness refuses it.
    let age = now().0 - before.header.time.0;
    let err = verify_bundle(&anchor, &before, None, now(), Some(age / 2)).unwrap_err();
    ensure!(err.code() == "stale_bundle", "{err}");
    ensure!(
        verify_bundle(&anchor, &before, None, now(), None)?
            .verdict
            .status
            == Status::Active
    );

    // Checkpoints now and later are consistent, by the node's own consistency proof.
    let old = checkpoint(&c, 0).await?;
    let from = old.checkpoint().size;
    c.commit(1, &c.enrol_tx(8)).await?;
    // Committed through node 1 is not yet cosigned at node 2: a checkpoint is served once a
    // quorum of departments has cosigned it, so node 2's may still be the old one for a moment.
    let deadline = Instant::now() + Duration::from_secs(20);
    let new = loop {
        let new = checkpoint(&c, 2).await?;
        if new.checkpoint().size > from {
            break new;
        }
        ensure!(
            Instant::now() < deadline,
            "node 2's checkpoint stayed at log size {}",
            new.checkpoint().size
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    let to = new.checkpoint().size;
    let (code, proof) = c
        .get(2, &format!("/v1/log/consistency?from={from}&to={to}"))
        .await?;
    ensure!(code == 200, "{proof}");
    let proof: ConsistencyProof = serde_json::from_value(proof)?;
    verify_consistency_between(&old, &new, &proof)?;
    let (code, err) = c
        .get(2, &format!("/v1/log/consistency?from={to}&to={from}"))
        .await?;
    ensure!(
        code == 400 && err["error"]["code"] == "invalid_range",
        "{err}"
    );
    Ok(())
}
