//! Offline verification: proof bundles of a real in-memory ledger, read from files in either
//! form, verified against the genesis file alone — by the SDK and by `vault verify --offline`.

#![allow(clippy::unwrap_used)]

mod common;

use std::path::{Path, PathBuf};
use std::process::Command;

use common::{Chain, SUITE};
use serde_json::Value;
use vault_client::offline::{self, OfflineError};
use vault_protocol::bundle::ProofBundle;
use vault_protocol::encoding::Canonical;
use vault_protocol::ids::{AttestationId, DepartmentId, Timestamp};
use vault_protocol::state::Status;
use vault_protocol::verify::Reason;

const LICENCE: &[u8] = b"%PDF-1.7 business licence of enterprise 1";

struct Setup {
    dir: tempfile::TempDir,
    chain: Chain,
    bundle: ProofBundle,
    genesis: PathBuf,
    binary: PathBuf,
    json: PathBuf,
    file: PathBuf,
}

impl Setup {
    fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    fn write(&self, name: &str, bytes: &[u8]) -> PathBuf {
        let p = self.path(name);
        std::fs::write(&p, bytes).unwrap();
        p
    }

    /// Five seconds after the bundle's block.
    fn now(&self) -> Timestamp {
        self.bundle.header.time.plus(5000)
    }
}

/// A ledger with a licence and two later blocks; the licence's bundle at the head, certified by
/// samr, tax and hrss, written in both forms, with the genesis and the licence file.
fn setup() -> (Setup, AttestationId) {
    let mut chain = Chain::new();
    let id = chain.licence(1, LICENCE);
    chain.enrol(2, 1);
    chain.enrol(3, 2);
    let bundle = chain.bundle(&id, &["samr", "tax", "hrss"]);
    let dir = tempfile::tempdir().unwrap();
    let w = |name: &str, bytes: &[u8]| {
        let p = dir.path().join(name);
        std::fs::write(&p, bytes).unwrap();
        p
    };
    let genesis = w(
        "genesis.json",
        &serde_json::to_vec_pretty(&chain.net.genesis).unwrap(),
    );
    let binary = w("licence.bundle", &bundle.encode());
    // Leading whitespace, as an editor or a pipe may leave.
    let mut json = b"\n  ".to_vec();
    json.extend(serde_json::to_vec_pretty(&bundle).unwrap());
    let json = w("licence.bundle.json", &json);
    let file = w("licence.pdf", LICENCE);
    (
        Setup {
            dir,
            chain,
            bundle,
            genesis,
            binary,
            json,
            file,
        },
        id,
    )
}

#[test]
fn binary_and_json_bundles_verify_offline_with_the_file() {
    let (s, id) = setup();
    let genesis = offline::read_genesis(&s.genesis).unwrap();
    assert_eq!(genesis, s.chain.net.genesis);
    let from_binary = offline::read_bundle(&s.binary).unwrap();
    let from_json = offline::read_bundle(&s.json).unwrap();
    assert_eq!(from_binary, s.bundle);
    assert_eq!(from_json, s.bundle);
    for bundle in [&from_binary, &from_json] {
        let v = offline::verify_offline(&genesis, bundle, Some(&s.file), s.now(), Some(60_000))
            .unwrap();
        assert!(v.verdict.valid, "{:?}", v.verdict.checks);
        assert_eq!(v.verdict.attestation_id, id);
        assert_eq!(v.verdict.status, Status::Active);
        assert_eq!(v.block.height, s.chain.ledger.head().height);
        assert_eq!(v.block.time, s.chain.ledger.head().time);
        assert_eq!(v.block.age_ms, 5000);
        let mut by: Vec<&str> = v
            .block
            .certified_by
            .iter()
            .map(DepartmentId::as_str)
            .collect();
        by.sort();
        assert_eq!(by, ["hrss", "samr", "tax"]);
        // The same verdict the ledger's verify gives.
        let api = s
            .chain
            .ledger
            .verify(&id, s.now(), Some(&SUITE.file_digest(LICENCE)))
            .unwrap()
            .unwrap();
        assert_eq!(v.verdict.checks, api.checks);
    }
    // Without a file, the bundle alone.
    let v = offline::verify_offline(&genesis, &s.bundle, None, s.now(), None).unwrap();
    assert!(v.verdict.valid);
}

#[test]
fn the_wrong_file_is_not_valid_with_digest_mismatch() {
    let (s, _) = setup();
    let genesis = offline::read_genesis(&s.genesis).unwrap();
    let forged = s.write("forged.pdf", b"%PDF-1.7 a forged licence");
    let v = offline::verify_offline(&genesis, &s.bundle, Some(&forged), s.now(), None).unwrap();
    assert!(!v.verdict.valid);
    assert_eq!(v.verdict.failures(), vec![Reason::DigestMismatch]);
}

#[test]
fn a_bundle_that_proves_nothing_is_refused_with_its_code() {
    let (s, id) = setup();
    let genesis = offline::read_genesis(&s.genesis).unwrap();
    let code_of = |b: &ProofBundle, max_age: Option<u64>| {
        let e = offline::verify_offline(&genesis, b, None, s.now(), max_age).unwrap_err();
        assert!(e.rejects_bundle(), "{e}");
        e.code()
    };

    // The status changed in the bundle: the status proof no longer leads to the block's root.
    let mut revoked = s.bundle.clone();
    revoked.status.status = Status::Revoked;
    let mut suspended = s.bundle.clone();
    suspended.status.status = Status::Suspended;
    assert_eq!(code_of(&suspended, None), "status_proof_invalid");
    assert_eq!(code_of(&revoked, None), "status_proof_invalid");

    // Another block time in the header: the certificate is not for this block.
    let mut retimed = s.bundle.clone();
    retimed.header.time = retimed.header.time.plus(1);
    assert!(code_of(&retimed, None).starts_with("certificate_"));

    // Certified by two of four validators only.
    let thin = s.chain.bundle(&id, &["samr", "tax"]);
    assert_eq!(code_of(&thin, None), "certificate_no_quorum");

    // Older than the verifier accepts.
    assert_eq!(code_of(&s.bundle, Some(4999)), "stale_bundle");

    // Another network's genesis (same chain id, other validators).
    let other = vault_protocol::ledger::TestNetwork::new(&["samr", "tax", "hrss"]).genesis;
    let e = offline::verify_offline(&other, &s.bundle, None, s.now(), None).unwrap_err();
    assert!(e.rejects_bundle());
    assert!(e.code().starts_with("certificate_"), "{}", e.code());

    // Corrupted files, in either form: malformed.
    let bytes = s.bundle.encode();
    let truncated = s.write("truncated.bundle", &bytes[..bytes.len() - 3]);
    let broken_json = s.write("broken.json", b"{\"attestation\": {}}");
    for path in [&truncated, &broken_json] {
        let e = offline::read_bundle(path).unwrap_err();
        assert_eq!(e.code(), "bundle_malformed", "{e}");
        assert!(e.rejects_bundle());
    }
}

#[test]
fn unusable_inputs_are_errors_not_verdicts() {
    let (s, _) = setup();
    let bad = s.write("genesis-bad.json", b"{\"chain_id\": \"x\"}");
    let e = offline::read_genesis(&bad).unwrap_err();
    assert!(matches!(e, OfflineError::Genesis { .. }), "{e}");
    assert_eq!(e.code(), "invalid_genesis");
    assert!(!e.rejects_bundle());
    let e = offline::read_bundle(&s.path("absent.bundle")).unwrap_err();
    assert_eq!(e.code(), "file_unreadable");
    assert!(!e.rejects_bundle());
    let genesis = offline::read_genesis(&s.genesis).unwrap();
    let e = offline::verify_offline(
        &genesis,
        &s.bundle,
        Some(&s.path("absent.pdf")),
        s.now(),
        None,
    )
    .unwrap_err();
    assert_eq!(e.code(), "file_unreadable");
}

// ---------------------------------------------------------------------------------------------
// `vault verify --offline`
// ---------------------------------------------------------------------------------------------

/// Runs `vault` with no node anywhere (a closed port), returning (exit code, stdout).
fn vault(args: &[&Path]) -> (i32, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_vault"))
        .args(args)
        .env("VAULT_NODE", "http://127.0.0.1:9")
        .output()
        .unwrap();
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
    )
}

fn offline_args<'a>(s: &'a Setup, bundle: &'a Path, extra: &'a [&'a str]) -> Vec<&'a Path> {
    let mut v: Vec<&Path> = ["verify", "--offline", "--genesis"]
        .iter()
        .map(Path::new)
        .collect();
    v.push(&s.genesis);
    v.push(Path::new("--bundle"));
    v.push(bundle);
    v.extend(extra.iter().map(Path::new));
    v
}

#[test]
fn the_cli_verifies_offline_and_says_what_block_it_rests_on() {
    let (s, id) = setup();
    let file = s.file.to_str().unwrap();
    let (code, out) = vault(&offline_args(&s, &s.binary, &[file]));
    assert_eq!(code, 0, "{out}");
    assert!(out.contains(&format!("attestation {id}")), "{out}");
    let height = s.chain.ledger.head().height;
    assert!(out.contains(&format!("rests on block {height} ")), "{out}");
    assert!(out.contains("2026-01-01 00:00:0"), "{out}");
    assert!(
        out.contains("certified by hrss, samr, tax (3 of 4 validators)"),
        "{out}"
    );
    assert!(
        out.trim_end()
            .ends_with(&format!("VALID (offline, from {})", s.binary.display())),
        "{out}"
    );

    // JSON form of the bundle, JSON output.
    let (code, out) = vault(&offline_args(&s, &s.json, &[file, "--json"]));
    assert_eq!(code, 0, "{out}");
    let v: Value = serde_json::from_str(&out).unwrap();
    assert_eq!(v["valid"], true);
    assert_eq!(v["block"]["height"], height);
    assert_eq!(v["verdict"]["attestation_id"], id.to_string());

    // The wrong file: not valid, exit code 2.
    let forged = s.write("forged.pdf", b"forged");
    let (code, out) = vault(&offline_args(&s, &s.binary, &[forged.to_str().unwrap()]));
    assert_eq!(code, 2, "{out}");
    assert!(out.contains("[digest_mismatch]"), "{out}");
    assert!(
        out.trim_end()
            .lines()
            .last()
            .unwrap()
            .starts_with("NOT VALID"),
        "{out}"
    );
}

#[test]
fn the_cli_says_not_valid_for_a_bundle_that_proves_nothing() {
    let (s, _) = setup();
    let mut tampered = s.bundle.clone();
    tampered.status.status = Status::Revoked;
    let tampered = s.write("tampered.bundle", &tampered.encode());
    let (code, out) = vault(&offline_args(&s, &tampered, &[]));
    assert_eq!(code, 2, "{out}");
    assert!(out.contains("NOT VALID: status_proof_invalid: "), "{out}");

    let (code, out) = vault(&offline_args(&s, &tampered, &["--json"]));
    assert_eq!(code, 2, "{out}");
    let v: Value = serde_json::from_str(&out).unwrap();
    assert_eq!(v["valid"], false);
    assert_eq!(v["error"]["code"], "status_proof_invalid");

    let garbage = s.write("garbage.bundle", b"\x01garbage");
    let (code, out) = vault(&offline_args(&s, &garbage, &[]));
    assert_eq!(code, 2, "{out}");
    assert!(out.contains("NOT VALID: bundle_malformed: "), "{out}");

    // The real block is from 2026-01-01: a limit of an hour refuses it (the clock is later).
    let (code, out) = vault(&offline_args(&s, &s.binary, &["--max-age", "3600"]));
    assert_eq!(code, 2, "{out}");
    assert!(out.contains("NOT VALID: stale_bundle: "), "{out}");

    // An unreadable genesis is an error (exit code 1), not a verdict.
    let bad = s.write("bad-genesis.json", b"not json");
    let mut args = offline_args(&s, &s.binary, &[]);
    args[3] = &bad;
    let (code, out) = vault(&args);
    assert_eq!(code, 1, "{out}");
    assert!(!out.contains("VALID"), "{out}");
}
