//! The seven stories of the domain brief, end to end, over four department nodes (市场监管局
//! `samr`, 税务局 `tax`, 人社局 `hrss`, 住建局 `housing`) as real processes on loopback: real
//! RocksDB, real libp2p, commonware Simplex, the real HTTP API.
//!
//! 1. samr issues enterprise X's business licence: the file into samr's vault, the attestation
//!    onto the ledger (digest and metadata only).
//! 2. X grants housing access to its licence for 建筑业企业资质申请 for 30 days.
//! 3. An officer at housing gets the licence through housing's own node, fetched across the
//!    network from samr's node; the read is recorded and X sees it.
//! 4. A bank verifies the PDF X emailed it; a one-byte change is a digest mismatch.
//! 5. samr suspends and reinstates the licence; tax revokes a rating; every node's verifier sees
//!    the new status.
//! 6. A node crashes; the others go on; it restarts, catches up, and a read journaled just before
//!    the crash still becomes a receipt.
//! 7. A new department (医保局 `medins`) is admitted by a two-thirds vote, and issues.
//!
//! Also: reads with no grant, an expired, a withdrawn or an out-of-scope grant, or for another
//! purpose, each fail with their own code and leave no receipt; an unauthenticated or replayed
//! request never gets a file; an invalid USCC is refused with the rule that failed.

use std::time::{Duration, Instant};

use anyhow::{bail, ensure, Context, Result};
use serde_json::Value;
use vault_protocol::access::{RequestAction, Requester};
use vault_protocol::crypto::{CryptoSuite, KeyPair};
use vault_protocol::encoding::{BoundedString, BoundedVec, Canonical};
use vault_protocol::ids::{DepartmentId, DocTypeCode, GrantId};
use vault_protocol::tx::{
    DocumentType, Enrolment, GovernanceAction, Grant, GrantScope, GrantWithdrawal, Grantee,
    Purpose, SignedTransaction, StatusAction, TxBody,
};
use vault_protocol::uscc::Uscc;
use vault_tests::{enterprise_key, now, uscc, Cluster, Read};

const SAMR: usize = 0;
const TAX: usize = 1;
const HRSS: usize = 2;
const HOUSING: usize = 3;
const LONG: Duration = Duration::from_secs(120);
const DAY: u64 = 86_400_000;
const PURPOSE: &str = "JZ-ZZ-001";
const PURPOSE_TEXT: &str = "建筑业企业资质申请";
const SUITE: CryptoSuite = CryptoSuite::Ed25519Sha256;

fn dept(c: &Cluster, i: usize) -> DepartmentId {
    c.nodes[i].department.clone()
}

async fn reject(c: &Cluster, via: usize, tx: &SignedTransaction) -> Result<String> {
    let (_, r) = c.submit(via, tx, true).await?;
    ensure!(r["status"] == "rejected", "expected a rejection, got {r}");
    Ok(r["error"]["code"].as_str().unwrap_or_default().to_string())
}

fn read_request(c: &Cluster, reader: usize, attestation: &str, purpose: &str) -> Result<String> {
    Ok(c.request(
        Requester::Department(dept(c, reader)),
        RequestAction::Read {
            attestation: attestation.parse()?,
            purpose: BoundedString::new(purpose)?,
        },
        &c.nodes[reader].signing,
    ))
}

/// Department `reader` asks its own node for an attestation's document, for `purpose`.
async fn read_as(c: &Cluster, reader: usize, attestation: &str, purpose: &str) -> Result<Read> {
    let header = read_request(c, reader, attestation, purpose)?;
    c.read_document(reader, attestation, Some(header)).await
}

fn grant_tx(
    c: &Cluster,
    n: u32,
    to: usize,
    types: &[&str],
    purpose: &str,
    lasts_ms: u64,
) -> Result<SignedTransaction> {
    let mut codes = types
        .iter()
        .map(|t| DocTypeCode::new(t))
        .collect::<Result<Vec<_>, _>>()?;
    codes.sort();
    Ok(c.tx(TxBody::Grant(Grant {
        enterprise: uscc(n),
        grantee: Grantee::Department(dept(c, to)),
        scope: GrantScope::DocumentTypes(BoundedVec::new(codes)?),
        purpose: Purpose {
            code: BoundedString::new(purpose)?,
            text: BoundedString::new(PURPOSE_TEXT)?,
        },
        expires_at: now().plus(lasts_ms),
    }))
    .sign_one(&enterprise_key(n)))
}

async fn wait_verdict<F>(c: &Cluster, file: &[u8], id: &str, what: &str, ok: F) -> Result<()>
where
    F: Fn(&Value) -> bool,
{
    let deadline = Instant::now() + Duration::from_secs(20);
    for i in 0..c.nodes.len() {
        loop {
            let v = c.verify(i, file, Some(id)).await?;
            if ok(&v) {
                break;
            }
            if Instant::now() > deadline {
                bail!("{what}: node {i} still says {v}");
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }
    Ok(())
}

async fn receipts(c: &Cluster, i: usize, n: u32) -> Result<Vec<Value>> {
    let (code, v) = c
        .get(i, &format!("/v1/enterprises/{}/receipts", uscc(n)))
        .await?;
    ensure!(code == 200, "receipts: {code} {v}");
    Ok(v.as_array().cloned().unwrap_or_default())
}

async fn wait_receipts(c: &Cluster, i: usize, n: u32, count: usize) -> Result<Vec<Value>> {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let r = receipts(c, i, n).await?;
        if r.len() >= count {
            return Ok(r);
        }
        if Instant::now() > deadline {
            bail!(
                "enterprise {n} has {} receipts, expected {count}; reader node log:\n{}",
                r.len(),
                c.log_tail(HOUSING)
            );
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

fn pdf(label: &str) -> Vec<u8> {
    let mut f = b"%PDF-1.7\n".to_vec();
    for i in 0..40_000 {
        f.extend_from_slice(format!("{label} line {i}\n").as_bytes());
    }
    f
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_seven_stories_over_four_departments() -> Result<()> {
    let mut c = Cluster::start(4)?;
    for i in 0..4 {
        c.wait_height(i, 1, LONG).await?;
    }
    let x = 1u32;
    let samr = dept(&c, SAMR);

    // Enrolling an enterprise with an invalid USCC is refused with the rule that failed.
    let bad = "91350100M000100Y44";
    ensure!(Uscc::parse(bad).is_err());
    let mut enrol_bad = serde_json::to_value(
        c.tx(TxBody::EnrolEnterprise(Enrolment {
            department: samr.clone(),
            enterprise: uscc(x),
            key: enterprise_key(x).public(),
        }))
        .sign_one(&c.nodes[SAMR].signing),
    )?;
    enrol_bad["tx"]["body"]["body"]["enterprise"] = Value::String(bad.into());
    let resp = reqwest::Client::new()
        .post(format!("{}/v1/transactions", c.nodes[SAMR].url))
        .json(&enrol_bad)
        .send()
        .await?;
    let status = resp.status().as_u16();
    let body: Value = resp.json().await?;
    ensure!(status == 400, "invalid USCC: {status} {body}");
    ensure!(
        body["error"]["code"] == "uscc_check_character_mismatch",
        "the refusal names the failed rule: {body}"
    );

    // ---- Story 1: samr issues X's business licence; file in the vault, attestation on the ledger.
    let enrol = c
        .tx(TxBody::EnrolEnterprise(Enrolment {
            department: samr.clone(),
            enterprise: uscc(x),
            key: enterprise_key(x).public(),
        }))
        .sign_one(&c.nodes[SAMR].signing);
    c.commit(SAMR, &enrol).await?;
    let licence = pdf("营业执照 91350100M000100Y43");
    let (code, up) = c
        .upload(
            SAMR,
            Requester::Department(samr.clone()),
            &c.nodes[SAMR].signing,
            &licence,
        )
        .await?;
    ensure!(code == 201, "upload: {code} {up}");
    let issue = c.issue_tx(
        &samr,
        &c.nodes[SAMR].signing,
        x,
        "BUSINESS_LICENCE",
        &licence,
        None,
    )?;
    let licence_id = issue.id(SUITE).to_string();
    let r = c.commit(SAMR, &issue).await?;
    let height = r["height"].as_u64().context("height")?;
    let digest = SUITE.file_digest(&licence).to_string();
    let (code, meta) = c.get(SAMR, &format!("/v1/documents/{digest}")).await?;
    ensure!(
        code == 200 && meta["size"] == licence.len(),
        "samr holds the file: {meta}"
    );
    let (code, _) = c.get(HOUSING, &format!("/v1/documents/{digest}")).await?;
    ensure!(code == 404, "housing does not hold the file yet");
    // The ledger holds the digest, never the content.
    let (_, block) = c.get(SAMR, &format!("/v1/blocks/{height}")).await?;
    let (_, tx) = c
        .get(SAMR, &format!("/v1/transactions/{licence_id}"))
        .await?;
    let ledger_text = format!("{block}{tx}");
    ensure!(ledger_text.contains(&digest), "the ledger names the digest");
    ensure!(
        !ledger_text.contains("line 17"),
        "no file content on the ledger"
    );

    // ---- Story 2: X grants housing its licence for 建筑业企业资质申请, 30 days.
    let grant = grant_tx(&c, x, HOUSING, &["BUSINESS_LICENCE"], PURPOSE, 30 * DAY)?;
    let grant_id = grant.id(SUITE).to_string();
    c.commit(TAX, &grant).await?;
    let (_, grants) = c
        .get(HOUSING, &format!("/v1/enterprises/{}/grants", uscc(x)))
        .await?;
    ensure!(
        grants[0]["id"] == grant_id.as_str() && grants[0]["state"] == "in_force",
        "X's grants: {grants}"
    );

    // ---- Story 3: housing's officer reads it through housing's node, fetched from samr's.
    let read = read_as(&c, HOUSING, &licence_id, PURPOSE).await?;
    ensure!(
        read.status == 200,
        "housing read: {} {:?}",
        read.status,
        read.error
    );
    ensure!(read.body == licence, "the file as issued");
    ensure!(
        read.source.as_deref() == Some("samr"),
        "fetched from samr's node"
    );
    let (code, shown) = c
        .get(HOUSING, &format!("/v1/attestations/{licence_id}"))
        .await?;
    ensure!(code == 200 && shown["verdict"]["valid"] == true, "{shown}");
    let checks: Vec<&str> = shown["verdict"]["checks"]
        .as_array()
        .context("checks")?
        .iter()
        .filter(|ch| ch["outcome"] == "pass")
        .filter_map(|ch| ch["check"].as_str())
        .collect();
    for needed in ["issuer_authorised", "signature", "status"] {
        ensure!(checks.contains(&needed), "{needed} passes: {checks:?}");
    }
    // The fetched copy is not kept by housing.
    let (code, _) = c.get(HOUSING, &format!("/v1/documents/{digest}")).await?;
    ensure!(code == 404, "housing keeps no copy");
    let r = wait_receipts(&c, SAMR, x, 1).await?;
    ensure!(
        r[0]["read"]["reader"]["department"] == "housing"
            && r[0]["purpose_text"] == PURPOSE_TEXT
            && r[0]["read"]["grant"] == grant_id.as_str()
            && r[0]["recorder"] == "housing",
        "X sees who read what, when, for which purpose: {}",
        r[0]
    );

    // ---- Refusals: each with its code, none leaves a receipt, none gets a file.
    let tax_rating = pdf("纳税信用等级 A");
    let rating = c.issue_tx(
        &dept(&c, TAX),
        &c.nodes[TAX].signing,
        x,
        "TAX_CREDIT_RATING",
        &tax_rating,
        Some(300),
    )?;
    let rating_id = rating.id(SUITE).to_string();
    c.commit(TAX, &rating).await?;
    let (code, _) = c
        .upload(
            TAX,
            Requester::Department(dept(&c, TAX)),
            &c.nodes[TAX].signing,
            &tax_rating,
        )
        .await?;
    ensure!(code == 201);
    // No grant: tax asks for the licence.
    let r = read_as(&c, TAX, &licence_id, PURPOSE).await?;
    ensure!(r.status == 403 && r.code() == "no_grant", "{r:?}");
    // Out of scope: housing's grant covers the licence, not the rating.
    let r = read_as(&c, HOUSING, &rating_id, PURPOSE).await?;
    ensure!(r.status == 403 && r.code() == "grant_out_of_scope", "{r:?}");
    // Another purpose.
    let r = read_as(&c, HOUSING, &licence_id, "OTHER-1").await?;
    ensure!(
        r.status == 403 && r.code() == "grant_other_purpose",
        "{r:?}"
    );
    // Expired: a grant to hrss lasting two seconds.
    c.commit(
        SAMR,
        &grant_tx(&c, x, HRSS, &["BUSINESS_LICENCE"], PURPOSE, 2_000)?,
    )
    .await?;
    tokio::time::sleep(Duration::from_millis(2_500)).await;
    let r = read_as(&c, HRSS, &licence_id, PURPOSE).await?;
    ensure!(r.status == 403 && r.code() == "grant_expired", "{r:?}");
    // Withdrawn: a grant to tax for the rating, withdrawn by X.
    let g = grant_tx(&c, x, TAX, &["BUSINESS_LICENCE"], PURPOSE, DAY)?;
    let g_id = g.id(SUITE);
    c.commit(TAX, &g).await?;
    let withdraw = c
        .tx(TxBody::WithdrawGrant(GrantWithdrawal {
            enterprise: uscc(x),
            grant: GrantId(g_id.0),
        }))
        .sign_one(&enterprise_key(x));
    c.commit(TAX, &withdraw).await?;
    let r = read_as(&c, TAX, &licence_id, PURPOSE).await?;
    ensure!(r.status == 403 && r.code() == "grant_withdrawn", "{r:?}");
    // Unauthenticated: no signed request at all, or one signed by another department's key.
    let r = c.read_document(HOUSING, &licence_id, None).await?;
    ensure!(
        r.status == 401 && r.code() == "missing_request" && r.body.len() < 500,
        "{r:?}"
    );
    let forged = c.request(
        Requester::Department(dept(&c, HOUSING)),
        RequestAction::Read {
            attestation: licence_id.parse()?,
            purpose: BoundedString::new(PURPOSE)?,
        },
        &c.nodes[TAX].signing,
    );
    let r = c.read_document(HOUSING, &licence_id, Some(forged)).await?;
    ensure!(r.status == 401 && r.code() == "wrong_signer", "{r:?}");
    // A replayed signed request is refused.
    let once = read_request(&c, HOUSING, &licence_id, PURPOSE)?;
    let first = c
        .read_document(HOUSING, &licence_id, Some(once.clone()))
        .await?;
    ensure!(first.status == 200, "{first:?}");
    let again = c.read_document(HOUSING, &licence_id, Some(once)).await?;
    ensure!(
        again.status == 401 && again.code() == "request_replayed",
        "{again:?}"
    );
    // Exactly two reads were served (story 3 and the first of the replay pair): two receipts,
    // both by housing, none for the refused reads.
    let r = wait_receipts(&c, SAMR, x, 2).await?;
    tokio::time::sleep(Duration::from_secs(2)).await;
    let r2 = receipts(&c, SAMR, x).await?;
    ensure!(r.len() == 2 && r2.len() == 2, "receipts: {r2:?}");
    ensure!(r2
        .iter()
        .all(|r| r["read"]["reader"]["department"] == "housing"));

    // ---- Story 4: a bank verifies the PDF X emailed to it, on any node, with no grant.
    let v = c.verify(TAX, &licence, None).await?;
    ensure!(v["valid"] == true, "{v}");
    let verdict = &v["verdicts"][0]["verdict"];
    ensure!(
        verdict["issuer"] == "samr"
            && verdict["status"] == "active"
            && verdict["subject"] == uscc(x).to_string()
            && verdict["doc_type"] == "BUSINESS_LICENCE"
            && verdict["issued_height"] == height,
        "the verdict names issuer, status, subject, type, height: {verdict}"
    );
    // The answer says which ledger state it rests on; a caller may demand a fresh one.
    ensure!(
        v["as_of"]["height"].as_u64().is_some_and(|h| h >= height) && v["as_of"]["synced"] == true,
        "{v}"
    );
    let resp = reqwest::Client::new()
        .post(format!("{}/v1/verify?max_age_ms=0", c.nodes[TAX].url))
        .body(licence.clone())
        .send()
        .await?;
    let status = resp.status().as_u16();
    let stale: Value = resp.json().await?;
    ensure!(
        status == 503 && stale["error"]["code"] == "stale_state",
        "no state is younger than 0 ms: {status} {stale}"
    );
    let resp = reqwest::Client::new()
        .post(format!("{}/v1/verify?max_age_ms=60000", c.nodes[TAX].url))
        .body(licence.clone())
        .send()
        .await?;
    ensure!(
        resp.status().as_u16() == 200,
        "a minute-fresh state is served"
    );
    let mut changed = licence.clone();
    changed[100] ^= 1;
    let v = c.verify(TAX, &changed, None).await?;
    ensure!(
        v["valid"] == false && v["reason"] == "unknown_digest",
        "{v}"
    );
    let v = c.verify(TAX, &changed, Some(&licence_id)).await?;
    let failed: Vec<&Value> = v["verdicts"][0]["verdict"]["checks"]
        .as_array()
        .context("checks")?
        .iter()
        .filter(|ch| ch["outcome"] == "fail")
        .collect();
    ensure!(
        v["valid"] == false && failed.len() == 1 && failed[0]["reason"] == "digest_mismatch",
        "a one-byte change is a digest mismatch: {v}"
    );

    // ---- Story 5: suspend while dormant, reinstate; tax revokes a rating.
    c.commit(
        SAMR,
        &c.status_tx(SAMR, &licence_id, StatusAction::Suspend)?,
    )
    .await?;
    wait_verdict(&c, &licence, &licence_id, "suspended everywhere", |v| {
        v["valid"] == false && v["verdicts"][0]["verdict"]["status"] == "suspended"
    })
    .await?;
    c.commit(
        SAMR,
        &c.status_tx(SAMR, &licence_id, StatusAction::Reinstate)?,
    )
    .await?;
    wait_verdict(&c, &licence, &licence_id, "reinstated everywhere", |v| {
        v["valid"] == true
            && v["verdicts"][0]["verdict"]["status_history"]
                .as_array()
                .is_some_and(|h| h.len() == 2)
    })
    .await?;
    c.commit(TAX, &c.status_tx(TAX, &rating_id, StatusAction::Revoke)?)
        .await?;
    wait_verdict(&c, &tax_rating, &rating_id, "revoked everywhere", |v| {
        let checks = v["verdicts"][0]["verdict"]["checks"]
            .as_array()
            .cloned()
            .unwrap_or_default();
        v["valid"] == false && checks.iter().any(|ch| ch["reason"] == "revoked")
    })
    .await?;
    // Only the issuer may change a status.
    let code = reject(
        &c,
        SAMR,
        &c.status_tx(SAMR, &rating_id, StatusAction::Reinstate)?,
    )
    .await?;
    ensure!(code == "not_issuer", "{code}");

    // ---- Story 6: hrss crashes; the others commit; it restarts and catches up. housing is
    // killed right after a read: the journaled read still becomes a receipt.
    c.kill9(HRSS)?;
    let late = pdf("社保缴纳证明");
    let social = c.issue_tx(
        &dept(&c, SAMR),
        &c.nodes[SAMR].signing,
        x,
        "BUSINESS_LICENCE",
        &late,
        None,
    )?;
    let social_id = social.id(SUITE).to_string();
    let r = c.commit(SAMR, &social).await?;
    let h = r["height"].as_u64().context("height")?;
    let read = read_as(&c, HOUSING, &licence_id, PURPOSE).await?;
    ensure!(read.status == 200);
    c.kill9(HOUSING)?;
    c.restart(HRSS)?;
    c.restart(HOUSING)?;
    c.wait_height(HRSS, h, LONG).await?;
    c.wait_height(HOUSING, h, LONG).await?;
    let (code, seen) = c
        .get(HRSS, &format!("/v1/attestations/{social_id}"))
        .await?;
    ensure!(
        code == 200 && seen["verdict"]["valid"] == true,
        "hrss caught up: {seen}"
    );
    wait_receipts(&c, SAMR, x, 3).await?;

    // ---- Story 7: 医保局 is admitted by a two-thirds vote, defines its type, and issues.
    let medins_signing = KeyPair::from_seed(SUITE, SUITE.file_digest(b"medins signing").0);
    let medins_node = KeyPair::from_seed(SUITE, SUITE.file_digest(b"medins node").0);
    let medins = DepartmentId::new("medins")?;
    let admit = c.tx(TxBody::Governance(GovernanceAction::AdmitDepartment {
        department: medins.clone(),
        name: BoundedString::new("市医疗保障局")?,
        signing_key: medins_signing.public(),
        node_key: medins_node.public(),
    }));
    let two = admit
        .clone()
        .sign(&[&c.nodes[SAMR].signing, &c.nodes[TAX].signing])?;
    let code = reject(&c, SAMR, &two).await?;
    ensure!(
        code == "insufficient_quorum",
        "two of four is not enough: {code}"
    );
    let three = admit.sign(&[
        &c.nodes[SAMR].signing,
        &c.nodes[TAX].signing,
        &c.nodes[HOUSING].signing,
    ])?;
    c.commit(HRSS, &three).await?;
    for i in 0..4 {
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            let (_, g) = c.get(i, "/v1/governance").await?;
            if g["departments"]["medins"]["name"] == "市医疗保障局" {
                break;
            }
            ensure!(Instant::now() < deadline, "node {i} governance: {g}");
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }
    // Five members now: more than two thirds is four.
    let four = [
        &c.nodes[SAMR].signing,
        &c.nodes[TAX].signing,
        &c.nodes[HRSS].signing,
        &c.nodes[HOUSING].signing,
    ];
    let define = c
        .tx(TxBody::Governance(GovernanceAction::DefineDocumentType(
            DocumentType {
                code: DocTypeCode::new("MEDICAL_INSURANCE_CERT")?,
                name_zh: BoundedString::new("医保缴费证明")?,
                name_en: BoundedString::new("Medical insurance payment certificate")?,
                max_validity_days: Some(366),
                requires_expiry: true,
            },
        )))
        .sign(&four)?;
    c.commit(SAMR, &define).await?;
    let authorise = c
        .tx(TxBody::Governance(GovernanceAction::AuthoriseIssuer {
            department: medins.clone(),
            doc_type: DocTypeCode::new("MEDICAL_INSURANCE_CERT")?,
        }))
        .sign(&four)?;
    c.commit(SAMR, &authorise).await?;
    let cert = pdf("医保缴费证明");
    let med = c.issue_tx(
        &medins,
        &medins_signing,
        x,
        "MEDICAL_INSURANCE_CERT",
        &cert,
        Some(365),
    )?;
    let med_id = med.id(SUITE).to_string();
    c.commit(HOUSING, &med).await?;
    let v = c.verify(TAX, &cert, Some(&med_id)).await?;
    ensure!(
        v["valid"] == true && v["verdicts"][0]["verdict"]["issuer"] == "medins",
        "medins' certificate verifies: {v}"
    );
    // Offline, the genesis alone does not know medins; a governance proof from any node does.
    let anchor = vault_protocol::bundle::Anchor::from_genesis(&c.genesis);
    let (code, bytes) = c
        .get_bytes(
            HRSS,
            &format!("/v1/attestations/{med_id}/bundle"),
            "application/octet-stream",
        )
        .await?;
    ensure!(code == 200, "bundle: {code}");
    let bundle = vault_protocol::bundle::ProofBundle::decode(&bytes)?;
    let bare = vault_protocol::bundle::verify_bundle(&anchor, &bundle, None, now(), None)?;
    ensure!(!bare.verdict.valid, "{:?}", bare.verdict.checks);
    let (code, bytes) = c
        .get_bytes(SAMR, "/v1/governance/proof", "application/octet-stream")
        .await?;
    ensure!(code == 200, "governance proof: {code}");
    let proof = vault_protocol::bundle::GovernanceProof::decode(&bytes)?;
    let proven = anchor.with_governance(&proof)?;
    let out = vault_protocol::bundle::verify_bundle(
        &proven,
        &bundle,
        Some(&SUITE.file_digest(&cert)),
        now(),
        None,
    )?;
    ensure!(out.verdict.valid, "{:?}", out.verdict.checks);
    Ok(())
}
