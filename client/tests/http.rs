//! The SDK against a scripted HTTP server on a real socket (no node needed): what goes on the
//! wire for uploads, fetches and verification, and how the node's answers come back.

#![allow(clippy::unwrap_used)]

mod common;

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{Shutdown, TcpListener, TcpStream};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;

use serde_json::{json, Value};
use vault_client::requests::decode_request_header;
use vault_client::{
    file_digest, read_request, upload_request, AttestationView, BatchStatus, Client, ClientError,
    TxState,
};
use vault_protocol::access::{RequestAction, Requester};
use vault_protocol::crypto::{CryptoSuite, Digest, KeyPair};
use vault_protocol::ids::{AttestationId, ChainId, DepartmentId, DocTypeCode, GrantId, TxId};
use vault_protocol::ledger::{test_uscc, MemoryLedger, TestNetwork};
use vault_protocol::state;
use vault_protocol::tx::{Attestation, Enrolment, TxBody};

struct Head {
    method: String,
    target: String,
    headers: Vec<(String, String)>,
}

impl Head {
    fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    fn body(&self, r: &mut dyn Read) -> Vec<u8> {
        assert_eq!(
            self.header("transfer-encoding"),
            None,
            "a sized body, not chunked"
        );
        let len: usize = self
            .header("content-length")
            .expect("content-length")
            .parse()
            .unwrap();
        let mut body = vec![0; len];
        r.read_exact(&mut body).unwrap();
        body
    }
}

type Handler = Box<dyn FnOnce(&Head, &mut dyn Read) -> Vec<u8> + Send>;

fn response(status: &str, headers: &[(&str, &str)], body: &[u8]) -> Vec<u8> {
    let mut out = format!(
        "HTTP/1.1 {status}\r\ncontent-length: {}\r\nconnection: close\r\n",
        body.len()
    );
    for (n, v) in headers {
        out.push_str(&format!("{n}: {v}\r\n"));
    }
    out.push_str("\r\n");
    let mut out = out.into_bytes();
    out.extend_from_slice(body);
    out
}

fn json_response(status: &str, v: &Value) -> Vec<u8> {
    response(
        status,
        &[("content-type", "application/json")],
        v.to_string().as_bytes(),
    )
}

/// Serves one connection per handler, in order; the join handle fails if a handler's check did.
fn serve(handlers: Vec<Handler>) -> (Client, JoinHandle<()>) {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    let handle = std::thread::spawn(move || {
        for handler in handlers {
            let (stream, _) = listener.accept().unwrap();
            let mut reader = BufReader::new(stream.try_clone().unwrap());
            let mut line = String::new();
            reader.read_line(&mut line).unwrap();
            let mut parts = line.split_whitespace();
            let method = parts.next().unwrap().to_string();
            let target = parts.next().unwrap().to_string();
            let mut headers = Vec::new();
            loop {
                let mut h = String::new();
                reader.read_line(&mut h).unwrap();
                let h = h.trim_end();
                if h.is_empty() {
                    break;
                }
                let (n, v) = h.split_once(':').unwrap();
                headers.push((n.trim().to_ascii_lowercase(), v.trim().to_string()));
            }
            let head = Head {
                method,
                target,
                headers,
            };
            let answer = handler(&head, &mut reader);
            let mut stream: TcpStream = stream;
            stream.write_all(&answer).unwrap();
            stream.flush().unwrap();
            // Let the client read the answer before the connection goes.
            std::thread::sleep(std::time::Duration::from_millis(50));
            let _ = stream.shutdown(Shutdown::Both);
        }
    });
    (Client::new(&base), handle)
}

fn key() -> KeyPair {
    KeyPair::from_seed(CryptoSuite::Ed25519Sha256, [11; 32])
}

fn chain() -> ChainId {
    ChainId::new("test-vault").unwrap()
}

fn write_file(dir: &tempfile::TempDir, name: &str, len: usize) -> std::path::PathBuf {
    let path = dir.path().join(name);
    let data: Vec<u8> = (0..len).map(|i| (i * 7 % 251) as u8).collect();
    std::fs::write(&path, data).unwrap();
    path
}

#[test]
fn upload_streams_the_file_with_its_signed_request() {
    let dir = tempfile::tempdir().unwrap();
    let path = write_file(&dir, "licence.pdf", 3 * 1024 * 1024 + 17);
    let (digest, size) = file_digest(&path).unwrap();
    let signed = upload_request(
        &chain(),
        Requester::Department(DepartmentId::new("samr").unwrap()),
        digest,
        size,
        &key(),
    );
    let expected = signed.clone();
    let (node, server) = serve(vec![Box::new(move |head, r| {
        assert_eq!(head.method, "PUT");
        assert_eq!(head.target, format!("/v1/documents/{digest}"));
        assert_eq!(head.header("content-type"), Some("application/pdf"));
        assert_eq!(
            decode_request_header(head.header("vault-request").unwrap()).unwrap(),
            expected
        );
        let body = head.body(r);
        assert_eq!(body.len() as u64, size);
        assert_eq!(CryptoSuite::Ed25519Sha256.file_digest(&body), digest);
        json_response(
            "201 Created",
            &json!({"digest": digest, "size": size, "media_type": "application/pdf", "already_held": false}),
        )
    })]);
    let seen = Arc::new(Mutex::new(Vec::new()));
    let seen2 = seen.clone();
    let receipt = node
        .upload(&signed, &path, Some("application/pdf"), move |n| {
            seen2.lock().unwrap().push(n)
        })
        .unwrap();
    server.join().unwrap();
    assert_eq!(receipt.digest, digest);
    assert_eq!(receipt.size, size);
    assert!(!receipt.already_held);
    let seen = seen.lock().unwrap();
    assert_eq!(seen.last(), Some(&size), "progress ends at the whole size");
    assert!(seen.windows(2).all(|w| w[0] <= w[1]), "progress only grows");
}

#[test]
fn an_upload_refused_before_the_body_is_read_keeps_the_nodes_error() {
    // The node refuses from the headers alone and closes the connection while the client is
    // still sending: the answer must still come back with its code, not as a broken pipe.
    let dir = tempfile::tempdir().unwrap();
    let path = write_file(&dir, "big.pdf", 16 * 1024 * 1024);
    let (digest, size) = file_digest(&path).unwrap();
    let signed = upload_request(
        &chain(),
        Requester::Enterprise(test_uscc(1)),
        digest,
        size,
        &key(),
    );
    let (node, server) = serve(vec![Box::new(|_, _| {
        json_response(
            "413 Payload Too Large",
            &json!({"error": {"code": "file_too_large", "message": "files up to 8 MiB"}}),
        )
    })]);
    let err = node.upload(&signed, &path, None, |_| {}).unwrap_err();
    server.join().unwrap();
    assert!(
        matches!(&err, ClientError::Api { status: 413, code, .. } if code == "file_too_large"),
        "{err}"
    );
}

#[test]
fn an_upload_needs_an_upload_request() {
    let dir = tempfile::tempdir().unwrap();
    let path = write_file(&dir, "a.pdf", 10);
    let read = read_request(
        &chain(),
        Requester::Application(key().public()),
        AttestationId(Digest([1; 32])),
        "P",
        &key(),
    )
    .unwrap();
    let node = Client::new("http://127.0.0.1:9");
    assert!(matches!(
        node.upload(&read, &path, None, |_| {}),
        Err(ClientError::InvalidRequest(_))
    ));
}

/// A real attestation of `file` (issued on an in-memory ledger) as the API shows it.
fn attestation_of(file: &[u8]) -> AttestationView {
    let net = TestNetwork::new(&["samr"]);
    let mut ledger = MemoryLedger::new(net.genesis.clone()).unwrap();
    let samr = net.department("samr");
    let uscc = test_uscc(1);
    let t = net.genesis.genesis_time.plus(1000);
    let enrol = net
        .tx(
            t,
            TxBody::EnrolEnterprise(Enrolment {
                department: samr.id.clone(),
                enterprise: uscc,
                key: key().public(),
            }),
        )
        .sign_one(&samr.signing);
    let issue = net
        .tx(
            t,
            TxBody::IssueAttestation(Attestation {
                issuer: samr.id.clone(),
                subject: uscc,
                doc_type: DocTypeCode::new("BUSINESS_LICENCE").unwrap(),
                file_digest: CryptoSuite::Ed25519Sha256.file_digest(file),
                claims: Default::default(),
                valid_from: t,
                valid_until: None,
                supersedes: None,
            }),
        )
        .sign_one(&samr.signing);
    let id = AttestationId(issue.id(CryptoSuite::Ed25519Sha256).0);
    let built = ledger
        .propose_and_commit(&samr.id, t, vec![enrol, issue])
        .unwrap();
    assert!(built.rejected.is_empty());
    AttestationView {
        record: state::attestation(ledger.state(), &id).unwrap().unwrap(),
        transaction: ledger.transaction(&TxId(id.0)).unwrap().unwrap().clone(),
        verdict: ledger.verify(&id, t.plus(1), None).unwrap().unwrap(),
        bundle: None,
    }
}

/// Serves the attestation, then its document with `body` and `vault_digest`.
fn document_server(
    view: &AttestationView,
    body: Vec<u8>,
    vault_digest: Digest,
) -> (Client, JoinHandle<()>, GrantId) {
    let id = view.record.id;
    let grant = GrantId(Digest([4; 32]));
    let view_json = serde_json::to_value(view).unwrap();
    let (client, handle) = serve(vec![
        Box::new(move |head, _| {
            assert_eq!(head.method, "GET");
            assert_eq!(head.target, format!("/v1/attestations/{id}"));
            json_response("200 OK", &view_json)
        }),
        Box::new(move |head, _| {
            assert_eq!(head.target, format!("/v1/attestations/{id}/document"));
            let signed = decode_request_header(head.header("vault-request").unwrap()).unwrap();
            assert_eq!(
                signed.request.action,
                RequestAction::Read {
                    attestation: id,
                    purpose: "P-001".try_into().unwrap()
                }
            );
            assert_eq!(
                signed.request.requester,
                Requester::Department(DepartmentId::new("housing").unwrap())
            );
            response(
                "200 OK",
                &[
                    ("content-type", "application/pdf"),
                    ("vault-digest", &vault_digest.to_string()),
                    ("vault-grant", &grant.to_string()),
                    ("vault-source", "samr"),
                ],
                &body,
            )
        }),
    ]);
    (client, handle, grant)
}

fn housing_read(id: AttestationId) -> vault_protocol::access::SignedAccessRequest {
    read_request(
        &chain(),
        Requester::Department(DepartmentId::new("housing").unwrap()),
        id,
        "P-001",
        &key(),
    )
    .unwrap()
}

#[test]
fn fetch_checks_the_document_against_the_ledger() {
    let file = b"%PDF-1.7 business licence of enterprise X".to_vec();
    let digest = CryptoSuite::Ed25519Sha256.file_digest(&file);
    let view = attestation_of(&file);
    let id = view.record.id;
    let (node, server, grant) = document_server(&view, file.clone(), digest);
    let mut out = Vec::new();
    let got = node
        .fetch_document(&housing_read(id), &id, &mut out)
        .unwrap();
    server.join().unwrap();
    assert_eq!(out, file);
    assert_eq!(got.digest, digest);
    assert_eq!(got.grant, grant);
    assert_eq!(got.source.as_str(), "samr");
    assert_eq!(got.media_type.as_deref(), Some("application/pdf"));
    assert_eq!(got.size, file.len() as u64);
    assert!(got.verdict.valid);
    let file_check = got
        .verdict
        .checks
        .iter()
        .find(|c| c.check == vault_protocol::verify::CheckKind::FileDigest)
        .unwrap();
    assert_eq!(file_check.outcome, vault_protocol::verify::Outcome::Pass);
}

#[test]
fn a_document_changed_by_one_byte_is_a_digest_mismatch() {
    let file = b"%PDF-1.7 business licence of enterprise X".to_vec();
    let digest = CryptoSuite::Ed25519Sha256.file_digest(&file);
    let view = attestation_of(&file);
    let id = view.record.id;
    let mut changed = file.clone();
    changed[3] ^= 1;
    let (node, server, _) = document_server(&view, changed.clone(), digest);
    let err = node
        .fetch_document(&housing_read(id), &id, &mut Vec::new())
        .unwrap_err();
    server.join().unwrap();
    match err {
        ClientError::DigestMismatch {
            expected, found, ..
        } => {
            assert_eq!(expected, digest);
            assert_eq!(found, CryptoSuite::Ed25519Sha256.file_digest(&changed));
        }
        other => panic!("expected a digest mismatch, got {other}"),
    }

    // A node whose Vault-Digest disagrees with what it sent is caught too.
    let (node, server, _) = document_server(&view, file.clone(), Digest([9; 32]));
    let err = node
        .fetch_document(&housing_read(id), &id, &mut Vec::new())
        .unwrap_err();
    server.join().unwrap();
    assert!(
        matches!(err, ClientError::DigestMismatch { expected_from, .. } if expected_from.contains("Vault-Digest"))
    );
}

#[test]
fn a_refused_read_keeps_the_refusal_code() {
    let file = b"licence".to_vec();
    let view = attestation_of(&file);
    let id = view.record.id;
    let view_json = serde_json::to_value(&view).unwrap();
    let (node, server) = serve(vec![
        Box::new(move |_, _| json_response("200 OK", &view_json)),
        Box::new(|_, _| {
            json_response(
                "403 Forbidden",
                &json!({"error": {"code": "grant_expired", "message": "read refused: the grant expired at 2026-01-02T00:00:00.000Z"}}),
            )
        }),
    ]);
    let err = node
        .fetch_document(&housing_read(id), &id, &mut Vec::new())
        .unwrap_err();
    server.join().unwrap();
    assert_eq!(err.code(), Some("grant_expired"));
    assert_eq!(err.status(), Some(403));

    // A request for another attestation is refused before anything is sent.
    let other = AttestationId(Digest([8; 32]));
    assert!(matches!(
        Client::new("http://127.0.0.1:9").fetch_document(
            &housing_read(other),
            &id,
            &mut Vec::new()
        ),
        Err(ClientError::InvalidRequest(_))
    ));
}

#[test]
fn verify_sends_the_file_or_the_digest() {
    let dir = tempfile::tempdir().unwrap();
    let path = write_file(&dir, "emailed.pdf", 5000);
    let (digest, _) = file_digest(&path).unwrap();
    let att = AttestationId(Digest([6; 32]));
    let unknown =
        json!({"digest": digest, "valid": false, "verdicts": [], "reason": "unknown_digest"});
    let (u1, u2) = (unknown.clone(), unknown.clone());
    let (node, server) = serve(vec![
        Box::new(move |head, r| {
            assert_eq!(head.method, "POST");
            assert_eq!(head.target, format!("/v1/verify?attestation={att}"));
            assert_eq!(
                head.header("content-type"),
                Some("application/octet-stream")
            );
            assert_eq!(
                CryptoSuite::Ed25519Sha256.file_digest(&head.body(r)),
                digest
            );
            json_response("200 OK", &u1)
        }),
        Box::new(move |head, r| {
            assert_eq!(head.target, "/v1/verify");
            assert!(head
                .header("content-type")
                .unwrap()
                .starts_with("application/json"));
            let body: Value = serde_json::from_slice(&head.body(r)).unwrap();
            assert_eq!(body, json!({"digest": digest}));
            json_response("200 OK", &u2)
        }),
    ]);
    let r = node.verify_file(&path, Some(&att)).unwrap();
    assert!(!r.valid);
    assert_eq!(r.digest, digest);
    assert_eq!(r.reason.as_deref(), Some("unknown_digest"));
    let r = node.verify_digest(&digest, None).unwrap();
    assert!(r.verdicts.is_empty());
    server.join().unwrap();
}

#[test]
fn batch_answers_and_transaction_states_are_typed() {
    let id = TxId(Digest([2; 32]));
    let (node, server) = serve(vec![
        Box::new(move |head, r| {
            assert!(head.target.starts_with("/v1/transactions/batch?wait=true"));
            assert_eq!(
                head.header("content-type"),
                Some("application/octet-stream")
            );
            let txs = <vault_protocol::tx::TransactionBatch as vault_protocol::encoding::Canonical>::decode(&head.body(r)).unwrap();
            assert!(txs.0.is_empty());
            json_response("200 OK", &json!({"accepted": 0, "results": []}))
        }),
        Box::new(|_, _| {
            json_response(
                "404 Not Found",
                &json!({"error": {"code": "not_found", "message": "no transaction"}}),
            )
        }),
        Box::new(move |_, _| {
            json_response(
                "200 OK",
                &json!({"tx_id": id, "status": "rejected", "error": {"code": "not_enrolled", "message": "m"}}),
            )
        }),
    ]);
    assert_eq!(node.submit_batch(&[], true).unwrap().accepted, 0);
    assert_eq!(node.transaction_state(&id).unwrap(), TxState::Unknown);
    match node.transaction_state(&id).unwrap() {
        TxState::Rejected { error } => assert_eq!(error.code, "not_enrolled"),
        other => panic!("{other:?}"),
    }
    server.join().unwrap();

    let refused: vault_client::BatchResult = serde_json::from_value(
        json!({"status": "refused", "error": {"code": "pool_full", "message": "retry"}}),
    )
    .unwrap();
    assert_eq!(refused.status, BatchStatus::Refused);
    assert_eq!(refused.tx_id, None);
}

// ---------------------------------------------------------------------------------------------
// Proof bundles, checkpoints and consistency proofs
// ---------------------------------------------------------------------------------------------

/// A real bundle: a licence on an in-memory ledger, certified by three of four validators.
fn real_bundle() -> (AttestationId, vault_protocol::bundle::ProofBundle) {
    let mut chain = common::Chain::new();
    let id = chain.licence(1, b"licence");
    chain.enrol(2, 1);
    let bundle = chain.bundle(&id, &["samr", "tax", "hrss"]);
    (id, bundle)
}

#[test]
fn a_bundle_is_fetched_in_the_binary_form_and_decoded() {
    use vault_protocol::encoding::Canonical;
    let (id, bundle) = real_bundle();
    let bytes = bundle.encode();
    let mut broken = bytes.clone();
    broken.truncate(bytes.len() / 2);
    let (node, server) = serve(vec![
        Box::new(move |head, _| {
            assert_eq!(head.method, "GET");
            assert_eq!(
                head.target,
                format!("/v1/attestations/{id}/bundle?format=binary")
            );
            assert_eq!(head.header("accept"), Some("application/octet-stream"));
            response(
                "200 OK",
                &[("content-type", "application/octet-stream")],
                &bytes,
            )
        }),
        Box::new(move |_, _| response("200 OK", &[], &broken)),
        Box::new(|_, _| {
            response(
                "503 Service Unavailable",
                &[("content-type", "application/json"), ("retry-after", "1")],
                br#"{"error":{"code":"head_not_certified","message":"retry in a moment"}}"#,
            )
        }),
    ]);
    assert_eq!(node.bundle(&id).unwrap(), bundle);
    let err = node.bundle(&id).unwrap_err();
    assert!(
        matches!(err, ClientError::Unexpected(ref m) if m.contains("does not decode")),
        "{err}"
    );
    let err = node.bundle(&id).unwrap_err();
    assert_eq!(err.code(), Some("head_not_certified"));
    assert!(err.is_transient());
    server.join().unwrap();
}

#[test]
fn checkpoints_and_consistency_proofs_come_back_as_served() {
    let mut chain = common::Chain::new();
    chain.enrol(1, 3);
    chain.enrol(4, 4);
    let note = chain.note(&["samr", "tax", "hrss"]);
    let served = note.clone();
    let proof = chain.proof(3, 7).unwrap();
    let proof_json = serde_json::to_value(&proof).unwrap();
    let wrong = serde_json::to_value(chain.proof(2, 7).unwrap()).unwrap();
    let (node, server) = serve(vec![
        Box::new(move |head, _| {
            assert_eq!(head.target, "/checkpoint");
            response(
                "200 OK",
                &[("content-type", "text/plain; charset=utf-8")],
                served.as_bytes(),
            )
        }),
        Box::new(move |head, _| {
            assert_eq!(head.target, "/v1/log/consistency?from=3&to=7");
            json_response("200 OK", &proof_json)
        }),
        // A proof for other sizes than asked is not passed on.
        Box::new(move |_, _| json_response("200 OK", &wrong)),
        Box::new(|_, _| {
            json_response(
                "400 Bad Request",
                &json!({"error": {"code": "invalid_range", "message": "need 0 < from ≤ to ≤ 7"}}),
            )
        }),
    ]);
    let text = node.checkpoint_note().unwrap();
    assert_eq!(text, note);
    let verified = vault_protocol::checkpoint::cosigned_checkpoint_verdict(
        &text,
        &chain.net.genesis.governance(),
        None,
    )
    .unwrap();
    assert_eq!(verified.checkpoint().size, 7);
    assert_eq!(node.consistency(3, 7).unwrap(), proof);
    assert!(matches!(
        node.consistency(3, 7),
        Err(ClientError::Unexpected(_))
    ));
    assert_eq!(
        node.consistency(3, 9).unwrap_err().code(),
        Some("invalid_range")
    );
    server.join().unwrap();
}

#[test]
fn verify_can_ask_for_a_bundle_with_each_verdict() {
    let (id, bundle) = real_bundle();
    let mut view = serde_json::to_value(attestation_of(b"licence")).unwrap();
    view["bundle"] = serde_json::to_value(&bundle).unwrap();
    let digest = CryptoSuite::Ed25519Sha256.file_digest(b"licence");
    let answer = json!({"digest": digest, "valid": true, "verdicts": [view]});
    let mut bare = answer.clone();
    bare["verdicts"][0]
        .as_object_mut()
        .unwrap()
        .remove("bundle");
    let (node, server) = serve(vec![
        Box::new(move |head, r| {
            assert_eq!(
                head.target,
                format!("/v1/verify?attestation={id}&bundle=true")
            );
            let _ = head.body(r);
            json_response("200 OK", &answer)
        }),
        Box::new(move |head, r| {
            assert_eq!(head.target, "/v1/verify?bundle=true");
            let body: Value = serde_json::from_slice(&head.body(r)).unwrap();
            assert_eq!(body, json!({"digest": digest}));
            json_response("200 OK", &bare)
        }),
    ]);
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("licence.pdf");
    std::fs::write(&path, b"licence").unwrap();
    let r = node.verify_file_with_bundles(&path, Some(&id)).unwrap();
    assert_eq!(r.verdicts[0].bundle.as_ref(), Some(&bundle));
    // A node that leaves the bundle out does not pass for one that gave it.
    let err = node.verify_digest_with_bundles(&digest, None).unwrap_err();
    assert!(
        matches!(err, ClientError::Unexpected(ref m) if m.contains("no bundle")),
        "{err}"
    );
    server.join().unwrap();
}

// ---------------------------------------------------------------------------------------------
// `vault bundle` and `vault monitor` against scripted nodes
// ---------------------------------------------------------------------------------------------

fn vault(args: &[&str]) -> std::process::Output {
    std::process::Command::new(env!("CARGO_BIN_EXE_vault"))
        .args(args)
        .env_remove("VAULT_NODE")
        .output()
        .unwrap()
}

#[test]
fn the_cli_writes_a_bundle_in_either_form_and_says_its_size() {
    use vault_protocol::encoding::Canonical;
    let (id, bundle) = real_bundle();
    let bytes = bundle.encode();
    let served = bytes.clone();
    let served2 = bytes.clone();
    let (node, server) = serve(vec![
        Box::new(move |_, _| response("200 OK", &[], &served)),
        Box::new(move |_, _| response("200 OK", &[], &served2)),
    ]);
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("b.bin");
    let id = id.to_string();
    let run = vault(&[
        "--node",
        node.base(),
        "bundle",
        &id,
        "-o",
        out.to_str().unwrap(),
    ]);
    assert_eq!(run.status.code(), Some(0), "{run:?}");
    assert_eq!(std::fs::read(&out).unwrap(), bytes);
    let stderr = String::from_utf8_lossy(&run.stderr);
    assert!(
        stderr.starts_with(&format!("{} bytes", bytes.len())),
        "{stderr}"
    );
    let run = vault(&["--node", node.base(), "bundle", &id, "--json"]);
    assert_eq!(run.status.code(), Some(0), "{run:?}");
    let back = vault_client::offline::parse_bundle(&run.stdout).unwrap();
    assert_eq!(back, bundle);
    server.join().unwrap();
}

/// A node that serves `note` as its checkpoint `times` times.
fn checkpoint_node(note: &str, times: usize) -> (Client, JoinHandle<()>) {
    let handlers: Vec<Handler> = (0..times)
        .map(|_| {
            let note = note.to_string();
            Box::new(move |head: &Head, _: &mut dyn Read| {
                assert_eq!(head.target, "/checkpoint");
                response("200 OK", &[], note.as_bytes())
            }) as Handler
        })
        .collect();
    serve(handlers)
}

#[test]
fn the_cli_monitor_is_quiet_on_agreement_and_alarms_on_a_split_view() {
    let mut base = common::Chain::new();
    base.enrol(1, 2);
    let dir = tempfile::tempdir().unwrap();
    let genesis = dir.path().join("genesis.json");
    std::fs::write(&genesis, serde_json::to_vec(&base.net.genesis).unwrap()).unwrap();
    let genesis = genesis.to_str().unwrap();
    let by = ["samr", "tax", "hrss"];

    // Two nodes agreeing, two rounds: one ok line each, exit code 0.
    let (a, sa) = checkpoint_node(&base.note(&by), 2);
    let (b, sb) = checkpoint_node(&base.note(&by), 2);
    let run = vault(&[
        "monitor",
        "--genesis",
        genesis,
        "--node",
        a.base(),
        "--node",
        b.base(),
        "--rounds",
        "2",
        "--interval-ms",
        "10",
    ]);
    sa.join().unwrap();
    sb.join().unwrap();
    let stdout = String::from_utf8_lossy(&run.stdout);
    assert_eq!(run.status.code(), Some(0), "{stdout}");
    let mut lines: Vec<&str> = stdout.lines().collect();
    lines.sort();
    let mut expected = vec![
        format!("ok {} height 1 size 2", a.base()),
        format!("ok {} height 1 size 2", b.base()),
    ];
    expected.sort();
    assert_eq!(lines, expected);

    // Two forks of the genesis, and a node that is down: alarms, exit code 3.
    let (mut left, mut right) = (base.clone(), base.clone());
    left.enrol(10, 1);
    right.enrol(20, 1);
    let (a, sa) = checkpoint_node(&left.note(&by), 1);
    let (b, sb) = checkpoint_node(&right.note(&by), 1);
    let run = vault(&[
        "monitor",
        "--genesis",
        genesis,
        "--node",
        a.base(),
        "--node",
        b.base(),
        "--node",
        "http://127.0.0.1:9",
        "--rounds",
        "1",
        "--json",
    ]);
    sa.join().unwrap();
    sb.join().unwrap();
    let stdout = String::from_utf8_lossy(&run.stdout);
    assert_eq!(run.status.code(), Some(3), "{stdout}");
    let events: Vec<Value> = stdout
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    let alarms: Vec<(&str, &str)> = events
        .iter()
        .filter(|e| e["event"] == "alarm")
        .map(|e| (e["kind"].as_str().unwrap(), e["code"].as_str().unwrap()))
        .collect();
    assert!(alarms.contains(&("split_view", "split_view")), "{stdout}");
    assert!(alarms.contains(&("unreachable", "unreachable")), "{stdout}");
    assert_eq!(alarms.len(), 2, "{stdout}");

    // A checkpoint short of a quorum of cosigners is a bad checkpoint.
    let (a, sa) = checkpoint_node(&base.note(&["samr", "tax"]), 1);
    let run = vault(&[
        "monitor",
        "--genesis",
        genesis,
        "--node",
        a.base(),
        "--rounds",
        "1",
    ]);
    sa.join().unwrap();
    let stdout = String::from_utf8_lossy(&run.stdout);
    assert_eq!(run.status.code(), Some(3), "{stdout}");
    assert!(
        stdout.starts_with(&format!(
            "ALARM BAD_CHECKPOINT {} too_few_cosigners: ",
            a.base()
        )),
        "{stdout}"
    );
}
