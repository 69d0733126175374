//! The department network end to end: real `vault-node` processes on loopback, real RocksDB,
//! real libp2p, commonware Simplex.
//!
//! - four departments commit identical blocks, with verifiable finalization certificates;
//! - with one node stopped the other three go on, and the stopped node restarts and reaches the
//!   same head;
//! - `kill -9` of the node taking load loses no transaction it acknowledged as committed.

use std::time::Duration;

use anyhow::{ensure, Result};
use vault_protocol::crypto::{CryptoSuite, PublicKey};
use vault_protocol::encoding::BoundedVec;
use vault_protocol::ids::{BlockHash, DocTypeCode, Timestamp};
use vault_protocol::tx::{Attestation, TxBody};
use vault_tests::{uscc, Cluster};

const LONG: Duration = Duration::from_secs(120);

async fn block_hash(c: &Cluster, node: usize, height: u64) -> Result<String> {
    let (code, b) = c.get(node, &format!("/v1/blocks/{height}")).await?;
    ensure!(code == 200, "node {node} has no block {height}: {b}");
    Ok(b["hash"].as_str().unwrap_or_default().to_string())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn four_departments_agree_survive_a_stop_and_catch_up() -> Result<()> {
    let mut c = Cluster::start(4)?;
    for i in 0..4 {
        c.wait_height(i, 1, LONG).await?;
    }

    // Enrol an enterprise through one node and issue its licence through another.
    let (code, r) = c.submit(1, &c.enrol_tx(1), true).await?;
    ensure!(
        code == 200 && r["status"] == "committed",
        "enrolment: {code} {r}"
    );
    let samr = &c.nodes[0];
    let issue = c
        .tx(TxBody::IssueAttestation(Attestation {
            issuer: samr.department.clone(),
            subject: uscc(1),
            doc_type: DocTypeCode::new("BUSINESS_LICENCE")?,
            file_digest: CryptoSuite::Ed25519Sha256.file_digest(b"licence pdf"),
            claims: BoundedVec::default(),
            valid_from: Timestamp(0),
            valid_until: None,
            supersedes: None,
        }))
        .sign_one(&samr.signing);
    let (code, r) = c.submit(2, &issue, true).await?;
    ensure!(
        code == 200 && r["status"] == "committed",
        "issue: {code} {r}"
    );
    let h = r["height"].as_u64().unwrap_or(0);

    // Every node commits the same block, and knows the attestation.
    for i in 0..4 {
        c.wait_height(i, h, LONG).await?;
    }
    let reference = block_hash(&c, 0, h).await?;
    for i in 0..4 {
        assert_eq!(
            block_hash(&c, i, h).await?,
            reference,
            "node {i} differs at {h}"
        );
        let (code, a) = c
            .get(
                i,
                &format!("/v1/attestations/{}", r["tx_id"].as_str().unwrap_or("")),
            )
            .await?;
        assert_eq!(code, 200, "node {i}: {a}");
        assert_eq!(a["verdict"]["valid"], true, "node {i}: {a}");
    }
    // Verifying by the file's digest checks the digest too.
    let digest = CryptoSuite::Ed25519Sha256.file_digest(b"licence pdf");
    let (code, list) = c
        .get(3, &format!("/v1/attestations?digest={digest}"))
        .await?;
    assert_eq!(code, 200, "{list}");
    let checks = list[0]["verdict"]["checks"]
        .as_array()
        .cloned()
        .unwrap_or_default();
    assert!(
        checks
            .iter()
            .any(|c| c["check"] == "file_digest" && c["outcome"] == "pass"),
        "{list}"
    );

    // Every node serves a checkpoint of its log cosigned by more than two thirds of the
    // departments, which verifies with only the genesis members' keys and matches that node's
    // block at its height; a changed byte does not verify.
    let gov = vault_protocol::ledger::MemoryLedger::new(c.genesis.clone())
        .map_err(|e| anyhow::anyhow!("{e}"))?
        .governance()?;
    for i in 0..4 {
        let deadline = std::time::Instant::now() + LONG;
        let note = loop {
            let resp = reqwest::get(format!("{}/checkpoint", c.nodes[i].url)).await?;
            if resp.status().as_u16() == 200 {
                break resp.text().await?;
            }
            ensure!(
                std::time::Instant::now() < deadline,
                "node {i} serves no checkpoint"
            );
            tokio::time::sleep(Duration::from_millis(200)).await;
        };
        let verified = vault_protocol::checkpoint::cosigned_checkpoint_verdict(&note, &gov, None)
            .map_err(|e| anyhow::anyhow!("node {i}'s checkpoint: {e}\n{note}"))?;
        ensure!(verified.cosigners().len() >= 3, "{note}");
        let cp = verified.checkpoint();
        let (_, b) = c.get(i, &format!("/v1/blocks/{}", cp.block.height)).await?;
        ensure!(
            b["hash"].as_str() == Some(cp.block.hash.to_string().as_str())
                && b["header"]["log_size"].as_u64() == Some(cp.size),
            "node {i}'s checkpoint matches its block: {note} {b}"
        );
        let tampered = note.replacen(
            &format!("\n{}\n", cp.size),
            &format!("\n{}\n", cp.size + 1),
            1,
        );
        ensure!(
            vault_protocol::checkpoint::cosigned_checkpoint_verdict(&tampered, &gov, None).is_err(),
            "a changed size must not verify"
        );
    }

    // A block's finalization certificate verifies against the validators alone; a flipped bit
    // or a certificate for another block does not.
    let validators: Vec<PublicKey> = c.genesis.departments.iter().map(|d| d.node_key).collect();
    let genesis_hash = c.genesis.hash();
    let mut checked = false;
    for height in (1..=h).rev() {
        let (_, b) = c.get(0, &format!("/v1/blocks/{height}")).await?;
        let Some(cert) = b["certificate"].as_str() else {
            continue;
        };
        let cert = hex::decode(cert)?;
        let hash: BlockHash = b["hash"].as_str().unwrap_or("").parse()?;
        vault_node::consensus::verify_certificate(
            c.genesis.chain_id.as_str(),
            &genesis_hash,
            &validators,
            &hash,
            &cert,
        )
        .map_err(anyhow::Error::msg)?;
        let mut bad = cert.clone();
        let last = bad.len() - 1;
        bad[last] ^= 1;
        assert!(vault_node::consensus::verify_certificate(
            c.genesis.chain_id.as_str(),
            &genesis_hash,
            &validators,
            &hash,
            &bad
        )
        .is_err());
        let other = BlockHash(vault_protocol::crypto::Digest([9; 32]));
        assert!(vault_node::consensus::verify_certificate(
            c.genesis.chain_id.as_str(),
            &genesis_hash,
            &validators,
            &other,
            &cert
        )
        .is_err());
        // Too few validators' keys known: the quorum cannot be met.
        assert!(vault_node::consensus::verify_certificate(
            c.genesis.chain_id.as_str(),
            &genesis_hash,
            &validators[..1],
            &hash,
            &cert
        )
        .is_err());
        checked = true;
        break;
    }
    ensure!(checked, "no block up to {h} kept its own certificate");

    // Stop one department: the other three keep committing.
    c.stop(3)?;
    let mut last = 0;
    for n in 2..6 {
        let (code, r) = c.submit(n as usize % 3, &c.enrol_tx(n), true).await?;
        ensure!(
            code == 200 && r["status"] == "committed",
            "enrolment {n}: {code} {r}"
        );
        last = r["height"].as_u64().unwrap_or(0);
    }
    ensure!(last > h);

    // Batches, binary and JSON: each transaction is judged alone — a forged signature among
    // valid ones is refused with its own code, the others commit.
    let mut forged = c.enrol_tx(7);
    let mut sig = [0u8; 64];
    sig.copy_from_slice(forged.endorsements[0].signature.as_bytes());
    sig[5] ^= 0x20;
    let mut e = forged.endorsements.clone().into_inner();
    e[0].signature = vault_protocol::crypto::Signature::from_bytes(sig);
    forged.endorsements = BoundedVec::new(e)?;
    let batch = vec![c.enrol_tx(6), forged, c.enrol_tx(8)];
    let (code, r) = c.submit_batch(1, &batch, true, true).await?;
    ensure!(code == 200, "binary batch: {code} {r}");
    let results = r["results"].as_array().cloned().unwrap_or_default();
    ensure!(results.len() == 3, "{r}");
    ensure!(results[0]["status"] == "committed", "{r}");
    ensure!(
        results[1]["status"] == "refused" && results[1]["error"]["code"] == "bad_signature",
        "{r}"
    );
    ensure!(results[2]["status"] == "committed", "{r}");
    let (code, r) = c.submit_batch(2, &[c.enrol_tx(9)], false, true).await?;
    ensure!(
        code == 200 && r["results"][0]["status"] == "committed",
        "JSON batch: {code} {r}"
    );
    let (code, r) = c.submit_batch(1, &[c.enrol_tx(10)], false, false).await?;
    ensure!(code == 200 && r["results"][0]["status"] == "pending", "{r}");
    let (code, r) = c.submit(0, &c.enrol_tx(11), true).await?;
    ensure!(code == 200 && r["status"] == "committed", "{code} {r}");
    last = r["height"].as_u64().unwrap_or(0);
    // A body that is not a canonical batch is refused with a specific code, and changes nothing.
    let (code, r) = {
        let resp = reqwest::Client::new()
            .post(format!("{}/v1/transactions/batch", c.nodes[0].url))
            .header("content-type", "application/octet-stream")
            .body(vec![1u8, 2, 0, 0, 0, 9])
            .send()
            .await?;
        (
            resp.status().as_u16(),
            resp.json::<serde_json::Value>().await?,
        )
    };
    ensure!(code == 400, "{code} {r}");
    ensure!(
        r["error"]["code"]
            .as_str()
            .is_some_and(|c| c.starts_with("decode_")),
        "{r}"
    );

    // Restart it: it catches up to the same head.
    c.restart(3)?;
    let s = c.wait_height(3, last, LONG).await?;
    c.wait_height(0, last, LONG).await?;
    assert_eq!(
        block_hash(&c, 3, last).await?,
        block_hash(&c, 0, last).await?
    );
    let (code, e) = c.get(3, &format!("/v1/enterprises/{}", uscc(5))).await?;
    assert_eq!(code, 200, "{e}");
    // What it missed included the batches: their transactions, but not the forged one.
    for (n, expected) in [(6, 200), (7, 404), (8, 200), (9, 200), (11, 200)] {
        let (code, e) = c.get(3, &format!("/v1/enterprises/{}", uscc(n))).await?;
        assert_eq!(code, expected, "enterprise {n}: {e}");
    }
    assert!(s["height"].as_u64().unwrap_or(0) >= last);
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kill_nine_under_load_loses_nothing_acknowledged() -> Result<()> {
    let c = Cluster::start(4)?;
    for i in 0..4 {
        c.wait_height(i, 1, LONG).await?;
    }
    let c = std::sync::Arc::new(tokio::sync::Mutex::new(c));
    // Four concurrent submitters push enrolments through node 1, waiting for commits.
    let mut tasks = Vec::new();
    for w in 0..4u32 {
        let c = c.clone();
        tasks.push(tokio::spawn(async move {
            let mut acked = Vec::new();
            for k in 0..30u32 {
                let n = 100 + w * 100 + k;
                let (tx, url) = {
                    let c = c.lock().await;
                    (c.enrol_tx(n), c.nodes[1].url.clone())
                };
                let client = reqwest::Client::new();
                let resp = client
                    .post(format!("{url}/v1/transactions?wait=true&timeout_ms=20000"))
                    .json(&tx)
                    .timeout(Duration::from_secs(25))
                    .send()
                    .await;
                match resp {
                    Ok(r) => {
                        let v: serde_json::Value = r.json().await.unwrap_or_default();
                        if v["status"] == "committed" {
                            acked.push(v["tx_id"].as_str().unwrap_or_default().to_string());
                        }
                    }
                    Err(_) => break, // the node died
                }
            }
            acked
        }));
    }
    // Let load build up, then kill the node taking it.
    tokio::time::sleep(Duration::from_secs(6)).await;
    c.lock().await.kill9(1)?;
    let mut acked = Vec::new();
    for t in tasks {
        acked.extend(t.await?);
    }
    ensure!(
        !acked.is_empty(),
        "nothing was acknowledged before the kill"
    );
    let mut c = std::sync::Arc::try_unwrap(c)
        .map_err(|_| anyhow::anyhow!("cluster still shared"))?
        .into_inner();
    c.restart(1)?;
    let target = c
        .status(0)
        .await
        .map(|s| s["height"].as_u64().unwrap_or(0))
        .unwrap_or(0);
    for i in 0..4 {
        c.wait_height(i, target, LONG).await?;
    }
    for id in &acked {
        for i in 0..4 {
            let (code, t) = c.get(i, &format!("/v1/transactions/{id}")).await?;
            assert_eq!(
                code, 200,
                "node {i} lost acknowledged transaction {id}: {t}"
            );
            assert_eq!(t["status"], "committed", "node {i}: {t}");
        }
    }
    println!(
        "{} acknowledged transactions all present on every node",
        acked.len()
    );
    Ok(())
}
