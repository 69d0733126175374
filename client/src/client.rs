//! [`Client`]: one department node's HTTP API.

use std::io::{Read, Write};
use std::path::Path;
use std::time::Duration;

use serde::de::DeserializeOwned;
use serde_json::{json, Value};
use sha2::{Digest as _, Sha256};
use vault_protocol::access::{RequestAction, SignedAccessRequest};
use vault_protocol::bundle::{GovernanceProof, ProofBundle};
use vault_protocol::crypto::Digest;
use vault_protocol::encoding::{BoundedVec, Canonical};
use vault_protocol::ids::{AttestationId, ChainId, DepartmentId, GrantId, TxId};
use vault_protocol::merkle::ConsistencyProof;
use vault_protocol::state::ReceiptRecord;
use vault_protocol::tx::{SignedTransaction, TransactionBatch};
use vault_protocol::uscc::Uscc;
use vault_protocol::verify::{CheckKind, Outcome};

use crate::files::send_file;
use crate::requests::{request_header, REQUEST_HEADER};
use crate::types::{
    AttestationView, BatchAnswer, DocumentMeta, FetchedDocument, GrantEntry, TxState,
    UploadReceipt, VerifyResult,
};
use crate::ClientError;

/// How long an ordinary call may take.
const CALL_TIMEOUT: Duration = Duration::from_secs(75);
/// How long fetching a document may take: the node may first fetch it from another department's
/// node and check it before it starts answering.
const FETCH_TIMEOUT: Duration = Duration::from_secs(30 * 60);
/// How long a node waits for a batch to commit (its maximum).
const BATCH_WAIT_MS: u64 = 60_000;

/// A department node's API.
#[derive(Debug, Clone)]
pub struct Client {
    base: String,
    http: reqwest::blocking::Client,
}

/// Reads an error answer: the API's `{"error": {"code", "message"}}`, or whatever else came.
fn api_error(status: u16, body: &[u8]) -> ClientError {
    let parsed: Option<Value> = serde_json::from_slice(body).ok();
    match parsed.as_ref().and_then(|v| v.get("error")) {
        Some(e) => ClientError::Api {
            status,
            code: e["code"].as_str().unwrap_or("unknown").to_string(),
            message: e["message"].as_str().unwrap_or("").to_string(),
        },
        None => {
            let text = String::from_utf8_lossy(body);
            let text = text.trim();
            ClientError::Api {
                status,
                code: format!("http_{status}"),
                message: if text.is_empty() {
                    "the node gave no details".to_string()
                } else {
                    text.chars().take(300).collect()
                },
            }
        }
    }
}

fn parse_json<T: DeserializeOwned>(body: &[u8]) -> Result<T, ClientError> {
    serde_json::from_slice(body).map_err(|e| ClientError::Unexpected(e.to_string()))
}

/// The path of `POST /v1/verify` with its query.
fn verify_path(attestation: Option<&AttestationId>, bundles: bool) -> String {
    let mut query = Vec::new();
    if let Some(a) = attestation {
        query.push(format!("attestation={a}"));
    }
    if bundles {
        query.push("bundle=true".to_string());
    }
    if query.is_empty() {
        "/v1/verify".to_string()
    } else {
        format!("/v1/verify?{}", query.join("&"))
    }
}

/// A verify answer asked with bundles must carry one for every verdict.
fn check_bundles(result: VerifyResult, bundles: bool) -> Result<VerifyResult, ClientError> {
    if bundles {
        if let Some(v) = result.verdicts.iter().find(|v| v.bundle.is_none()) {
            return Err(ClientError::Unexpected(format!(
                "no bundle with the verdict on {}",
                v.verdict.attestation_id
            )));
        }
    }
    Ok(result)
}

impl Client {
    /// A client for the node at `base` (e.g. `http://127.0.0.1:8700`).
    pub fn new(base: &str) -> Self {
        Self::with_timeout(base, CALL_TIMEOUT)
    }

    /// A client for the node at `base` whose ordinary calls give up after `timeout` rather than
    /// 75 seconds (e.g. a monitor polling several nodes, which must not wait long on one).
    pub fn with_timeout(base: &str, timeout: Duration) -> Self {
        Self {
            base: base.trim_end_matches('/').to_string(),
            http: reqwest::blocking::Client::builder()
                .timeout(timeout)
                .connect_timeout(timeout.min(Duration::from_secs(10)))
                .build()
                .unwrap_or_else(|_| reqwest::blocking::Client::new()),
        }
    }

    /// The node's base URL.
    pub fn base(&self) -> &str {
        &self.base
    }

    fn url(&self, path: &str) -> String {
        format!("{}{}", self.base, path)
    }

    /// Turns an error status into [`ClientError::Api`]; passes a success through.
    fn check(
        &self,
        url: &str,
        resp: reqwest::Result<reqwest::blocking::Response>,
    ) -> Result<reqwest::blocking::Response, ClientError> {
        let resp = resp.map_err(|error| ClientError::Unreachable {
            url: url.to_string(),
            error,
        })?;
        let status = resp.status().as_u16();
        if status < 400 {
            return Ok(resp);
        }
        let body = resp.bytes().map(|b| b.to_vec()).unwrap_or_default();
        Err(api_error(status, &body))
    }

    fn json_answer<T: DeserializeOwned>(
        &self,
        url: &str,
        resp: reqwest::Result<reqwest::blocking::Response>,
    ) -> Result<T, ClientError> {
        let resp = self.check(url, resp)?;
        let body = resp.bytes().map_err(|error| ClientError::Unreachable {
            url: url.to_string(),
            error,
        })?;
        parse_json(&body)
    }

    fn get<T: DeserializeOwned>(&self, path: &str) -> Result<T, ClientError> {
        let url = self.url(path);
        let resp = self.http.get(&url).send();
        self.json_answer(&url, resp)
    }

    /// `GET /v1/status`.
    pub fn status(&self) -> Result<Value, ClientError> {
        self.get("/v1/status")
    }

    /// The chain's id, from the node's status (every signed transaction and request names it).
    pub fn chain_id(&self) -> Result<ChainId, ClientError> {
        let s = self.status()?;
        let id = s["chain_id"]
            .as_str()
            .ok_or_else(|| ClientError::Unexpected("the status has no chain_id".into()))?;
        ChainId::new(id).map_err(|e| ClientError::Unexpected(format!("chain id: {e}")))
    }

    /// Submits a signed transaction; with `wait`, until it is committed or rejected. The answer's
    /// `status` is `pending` or `committed` (with `height`); a rejected transaction is an
    /// [`ClientError::Api`] with status 422 and the rule's code.
    pub fn submit(&self, tx: &SignedTransaction, wait: bool) -> Result<Value, ClientError> {
        let url = self.url(&format!("/v1/transactions?wait={wait}"));
        let resp = self.http.post(&url).json(tx).send();
        self.json_answer(&url, resp)
    }

    /// Submits up to 10,000 signed transactions at once; with `wait`, until each is committed or
    /// rejected (or the node's wait of a minute ends, leaving it `pending`). The results are in the
    /// order of `txs`.
    pub fn submit_batch(
        &self,
        txs: &[SignedTransaction],
        wait: bool,
    ) -> Result<BatchAnswer, ClientError> {
        let url = if wait {
            self.url(&format!(
                "/v1/transactions/batch?wait=true&timeout_ms={BATCH_WAIT_MS}"
            ))
        } else {
            self.url("/v1/transactions/batch")
        };
        // The canonical binary form: smaller than JSON, and decoded by the node without a JSON
        // parse per transaction.
        let body = TransactionBatch(
            BoundedVec::new(txs.to_vec())
                .map_err(|e| ClientError::Unexpected(format!("batch: {e}")))?,
        )
        .encode();
        let resp = self
            .http
            .post(&url)
            .header(reqwest::header::CONTENT_TYPE, "application/octet-stream")
            .body(body)
            .timeout(CALL_TIMEOUT + Duration::from_millis(BATCH_WAIT_MS))
            .send();
        let answer: BatchAnswer = self.json_answer(&url, resp)?;
        if answer.results.len() != txs.len() {
            return Err(ClientError::Unexpected(format!(
                "{} results for a batch of {}",
                answer.results.len(),
                txs.len()
            )));
        }
        Ok(answer)
    }

    /// A transaction by id, as the node shows it.
    pub fn transaction(&self, id: &str) -> Result<Value, ClientError> {
        self.get(&format!("/v1/transactions/{id}"))
    }

    /// What the node knows of a transaction: committed, pending, rejected, or nothing.
    pub fn transaction_state(&self, id: &TxId) -> Result<TxState, ClientError> {
        let v: Value = match self.get(&format!("/v1/transactions/{id}")) {
            Ok(v) => v,
            Err(ClientError::Api { status: 404, .. }) => return Ok(TxState::Unknown),
            Err(e) => return Err(e),
        };
        match v["status"].as_str() {
            Some("committed") => Ok(TxState::Committed {
                height: v["location"]["height"]
                    .as_u64()
                    .or_else(|| v["height"].as_u64())
                    .unwrap_or(0),
            }),
            Some("pending") => Ok(TxState::Pending),
            Some("rejected") => Ok(TxState::Rejected {
                error: serde_json::from_value(v["error"].clone())
                    .map_err(|e| ClientError::Unexpected(format!("rejection: {e}")))?,
            }),
            other => Err(ClientError::Unexpected(format!(
                "transaction status {other:?}"
            ))),
        }
    }

    /// A block by height.
    pub fn block(&self, height: u64) -> Result<Value, ClientError> {
        self.get(&format!("/v1/blocks/{height}"))
    }

    /// An attestation, its signed issuing transaction and the verdict now, as JSON.
    pub fn attestation(&self, id: &str) -> Result<Value, ClientError> {
        self.get(&format!("/v1/attestations/{id}"))
    }

    /// An attestation, its signed issuing transaction and the verdict now.
    pub fn attestation_view(&self, id: &AttestationId) -> Result<AttestationView, ClientError> {
        self.get(&format!("/v1/attestations/{id}"))
    }

    /// The attestations of a file digest, each with its verdict.
    pub fn attestations_by_digest(&self, digest: &Digest) -> Result<Value, ClientError> {
        self.get(&format!("/v1/attestations?digest={digest}"))
    }

    /// An enterprise's attestations.
    pub fn enterprise_attestations(&self, uscc: &str) -> Result<Value, ClientError> {
        self.get(&format!("/v1/enterprises/{uscc}/attestations"))
    }

    /// The chain's governance state (members, document types, issuers).
    pub fn governance(&self) -> Result<Value, ClientError> {
        self.get("/v1/governance")
    }

    /// Stores a file in the node's vault (`PUT /v1/documents/{digest}`), streaming it from disk.
    ///
    /// `signed` must be an upload request ([`crate::upload_request`]) for the file's digest and
    /// size; `media_type` is stored with the file. `progress` is called from time to time with the
    /// number of bytes sent so far, and with the whole size once the node has accepted it.
    pub fn upload(
        &self,
        signed: &SignedAccessRequest,
        path: &Path,
        media_type: Option<&str>,
        progress: impl FnMut(u64),
    ) -> Result<UploadReceipt, ClientError> {
        let RequestAction::Upload { digest, .. } = &signed.request.action else {
            return Err(ClientError::InvalidRequest(
                "an upload needs a signed upload request, not a read request".into(),
            ));
        };
        let url = self.url(&format!("/v1/documents/{digest}"));
        let mut headers = vec![(REQUEST_HEADER, request_header(signed))];
        headers.push((
            "Content-Type",
            media_type.unwrap_or("application/octet-stream").to_string(),
        ));
        let answer = send_file(reqwest::Method::PUT, &url, &headers, path, progress)?;
        if answer.status >= 400 {
            return Err(api_error(answer.status, &answer.body));
        }
        parse_json(&answer.body)
    }

    /// A stored file's metadata (never its content), or `None` if the node does not hold it.
    pub fn document_meta(&self, digest: &Digest) -> Result<Option<DocumentMeta>, ClientError> {
        match self.get(&format!("/v1/documents/{digest}")) {
            Ok(meta) => Ok(Some(meta)),
            Err(ClientError::Api { status: 404, .. }) => Ok(None),
            Err(e) => Err(e),
        }
    }

    /// Fetches the document of `attestation` under a grant, streaming it into `out`.
    ///
    /// `signed` must be a read request ([`crate::read_request`]) for that attestation. The bytes
    /// are hashed as they arrive; the call fails with [`ClientError::DigestMismatch`] unless their
    /// SHA-256 equals both the attestation's file digest on the ledger and the node's
    /// `Vault-Digest`. On that error `out` has received bytes that must not be used.
    pub fn fetch_document(
        &self,
        signed: &SignedAccessRequest,
        attestation: &AttestationId,
        out: &mut impl Write,
    ) -> Result<FetchedDocument, ClientError> {
        match &signed.request.action {
            RequestAction::Read { attestation: a, .. } if a == attestation => {}
            RequestAction::Read { attestation: a, .. } => {
                return Err(ClientError::InvalidRequest(format!(
                    "the signed request reads attestation {a}, not {attestation}"
                )))
            }
            RequestAction::Upload { .. } => {
                return Err(ClientError::InvalidRequest(
                    "reading a document needs a signed read request, not an upload request".into(),
                ))
            }
        }
        let view = self.attestation_view(attestation)?;
        let on_ledger = view.record.attestation.file_digest;

        let url = self.url(&format!("/v1/attestations/{attestation}/document"));
        let resp = self
            .http
            .get(&url)
            .header(REQUEST_HEADER, request_header(signed))
            .timeout(FETCH_TIMEOUT)
            .send();
        let mut resp = self.check(&url, resp)?;
        let header = |name: &str| {
            resp.headers()
                .get(name)
                .and_then(|v| v.to_str().ok())
                .map(|v| v.trim().to_string())
        };
        let missing = |name: &str| ClientError::Unexpected(format!("no {name} header"));
        let bad = |name: &str, value: &str| {
            ClientError::Unexpected(format!("{name} header {value:?} is not valid"))
        };
        let announced = header("Vault-Digest").ok_or_else(|| missing("Vault-Digest"))?;
        let announced: Digest = announced
            .parse()
            .map_err(|_| bad("Vault-Digest", &announced))?;
        let grant = header("Vault-Grant").ok_or_else(|| missing("Vault-Grant"))?;
        let grant: GrantId = grant.parse().map_err(|_| bad("Vault-Grant", &grant))?;
        let source = header("Vault-Source").ok_or_else(|| missing("Vault-Source"))?;
        let source = DepartmentId::new(&source).map_err(|_| bad("Vault-Source", &source))?;
        let media_type = header("Content-Type");

        let mut hasher = Sha256::new();
        let mut buf = vec![0u8; 256 * 1024];
        let mut size = 0u64;
        loop {
            let n = match resp.read(&mut buf) {
                Ok(0) => break,
                Ok(n) => n,
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
                Err(error) => return Err(ClientError::Transfer { url, error }),
            };
            hasher.update(&buf[..n]);
            out.write_all(&buf[..n]).map_err(ClientError::Output)?;
            size += n as u64;
        }
        out.flush().map_err(ClientError::Output)?;
        let found = Digest(hasher.finalize().into());
        if found != on_ledger {
            return Err(ClientError::DigestMismatch {
                expected: on_ledger,
                found,
                expected_from: "the attestation's file digest on the ledger",
            });
        }
        if found != announced {
            return Err(ClientError::DigestMismatch {
                expected: announced,
                found,
                expected_from: "the node's Vault-Digest",
            });
        }
        // The node's verdict was made without a file; this one was checked here.
        let mut verdict = view.verdict;
        for c in verdict
            .checks
            .iter_mut()
            .filter(|c| c.check == CheckKind::FileDigest && c.outcome == Outcome::Skipped)
        {
            c.outcome = Outcome::Pass;
            c.detail = format!("the file received has the attested SHA-256 {found}");
        }
        Ok(FetchedDocument {
            digest: found,
            grant,
            source,
            media_type,
            size,
            verdict,
        })
    }

    /// Verifies a file against the ledger (`POST /v1/verify`, the file streamed as the body): a
    /// verdict for every attestation of its SHA-256, or only for `attestation` if given (whose
    /// `file_digest` check then fails if it attests another file).
    pub fn verify_file(
        &self,
        path: &Path,
        attestation: Option<&AttestationId>,
    ) -> Result<VerifyResult, ClientError> {
        self.verify_file_inner(path, attestation, false)
    }

    /// As [`Client::verify_file`], each verdict with its [`ProofBundle`] (`?bundle=true`) in
    /// [`crate::AttestationView::bundle`]: keep it to verify again later with no network
    /// ([`crate::offline`]).
    pub fn verify_file_with_bundles(
        &self,
        path: &Path,
        attestation: Option<&AttestationId>,
    ) -> Result<VerifyResult, ClientError> {
        self.verify_file_inner(path, attestation, true)
    }

    fn verify_file_inner(
        &self,
        path: &Path,
        attestation: Option<&AttestationId>,
        bundles: bool,
    ) -> Result<VerifyResult, ClientError> {
        let url = self.url(&verify_path(attestation, bundles));
        let headers = [("Content-Type", "application/octet-stream".to_string())];
        let answer = send_file(reqwest::Method::POST, &url, &headers, path, |_| {})?;
        if answer.status >= 400 {
            return Err(api_error(answer.status, &answer.body));
        }
        let result = parse_json(&answer.body)?;
        check_bundles(result, bundles)
    }

    /// Verifies a file known by its SHA-256 (`POST /v1/verify` with `{"digest", "attestation"?}`).
    pub fn verify_digest(
        &self,
        digest: &Digest,
        attestation: Option<&AttestationId>,
    ) -> Result<VerifyResult, ClientError> {
        self.verify_digest_inner(digest, attestation, false)
    }

    /// As [`Client::verify_digest`], each verdict with its [`ProofBundle`] (`?bundle=true`) in
    /// [`crate::AttestationView::bundle`].
    pub fn verify_digest_with_bundles(
        &self,
        digest: &Digest,
        attestation: Option<&AttestationId>,
    ) -> Result<VerifyResult, ClientError> {
        self.verify_digest_inner(digest, attestation, true)
    }

    fn verify_digest_inner(
        &self,
        digest: &Digest,
        attestation: Option<&AttestationId>,
        bundles: bool,
    ) -> Result<VerifyResult, ClientError> {
        let url = self.url(&verify_path(None, bundles));
        let mut body = json!({ "digest": digest });
        if let Some(a) = attestation {
            body["attestation"] = json!(a);
        }
        let resp = self.http.post(&url).json(&body).send();
        let result = self.json_answer(&url, resp)?;
        check_bundles(result, bundles)
    }

    /// The proof bundle of an attestation at the node's head
    /// (`GET /v1/attestations/{id}/bundle`, in the canonical binary form): everything needed to
    /// verify it later with the genesis file alone ([`crate::offline`]). The bundle is only
    /// decoded here, not verified: verify it against the genesis before relying on it.
    ///
    /// A node whose head block is not certified yet answers `head_not_certified` (HTTP 503, a
    /// transient error): try again a moment later.
    pub fn bundle(&self, id: &AttestationId) -> Result<ProofBundle, ClientError> {
        self.canonical(
            &format!("/v1/attestations/{id}/bundle?format=binary"),
            "bundle",
        )
    }

    /// The governance state with its proof at the node's head (`GET /v1/governance/proof`), in
    /// the canonical binary form: with it, `verify --offline` knows the departments admitted and
    /// the keys rotated since the genesis. Check it with
    /// [`vault_protocol::bundle::Anchor::with_governance`].
    pub fn governance_proof(&self) -> Result<GovernanceProof, ClientError> {
        self.canonical("/v1/governance/proof?format=binary", "governance proof")
    }

    /// Fetches `path` as `application/octet-stream` and decodes it.
    fn canonical<T: Canonical>(&self, path: &str, what: &str) -> Result<T, ClientError> {
        let url = self.url(path);
        let resp = self
            .http
            .get(&url)
            .header("Accept", "application/octet-stream")
            .send();
        let resp = self.check(&url, resp)?;
        let body = resp.bytes().map_err(|error| ClientError::Unreachable {
            url: url.clone(),
            error,
        })?;
        T::decode(&body)
            .map_err(|e| ClientError::Unexpected(format!("the {what} does not decode: {e}")))
    }

    /// The node's latest checkpoint (`GET /checkpoint`): a C2SP signed note of the ledger's
    /// Merkle log, cosigned by the member departments. Verify it with
    /// [`vault_protocol::checkpoint::cosigned_checkpoint_verdict`].
    pub fn checkpoint_note(&self) -> Result<String, ClientError> {
        let url = self.url("/checkpoint");
        let resp = self.http.get(&url).send();
        let resp = self.check(&url, resp)?;
        resp.text()
            .map_err(|error| ClientError::Unreachable { url, error })
    }

    /// The RFC 9162 consistency proof between the node's log at `from` and at `to` leaves
    /// (`GET /v1/log/consistency`); `0 < from ≤ to ≤` the node's log size. The proof is only
    /// checked to be for those sizes; verify it with
    /// [`vault_protocol::checkpoint::verify_consistency_between`].
    pub fn consistency(&self, from: u64, to: u64) -> Result<ConsistencyProof, ClientError> {
        let proof: ConsistencyProof =
            self.get(&format!("/v1/log/consistency?from={from}&to={to}"))?;
        if (proof.old_size, proof.new_size) != (from, to) {
            return Err(ClientError::Unexpected(format!(
                "asked for the consistency proof from {from} to {to}, got one from {} to {}",
                proof.old_size, proof.new_size
            )));
        }
        Ok(proof)
    }

    /// An enterprise's grants, oldest first.
    pub fn grants_of_enterprise(&self, uscc: &Uscc) -> Result<Vec<GrantEntry>, ClientError> {
        self.get(&format!("/v1/enterprises/{uscc}/grants"))
    }

    /// The grants to a department, oldest first.
    pub fn grants_to_department(
        &self,
        department: &DepartmentId,
    ) -> Result<Vec<GrantEntry>, ClientError> {
        self.get(&format!("/v1/departments/{department}/grants"))
    }

    /// One grant.
    pub fn grant(&self, id: &GrantId) -> Result<GrantEntry, ClientError> {
        self.get(&format!("/v1/grants/{id}"))
    }

    /// An enterprise's access receipts, oldest first: who read which document, when, and for
    /// which purpose.
    pub fn receipts(&self, uscc: &Uscc) -> Result<Vec<ReceiptRecord>, ClientError> {
        self.get(&format!("/v1/enterprises/{uscc}/receipts"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn api_errors_keep_the_nodes_code() {
        let e = api_error(
            403,
            br#"{"error":{"code":"grant_expired","message":"the grant expired"}}"#,
        );
        assert_eq!(e.code(), Some("grant_expired"));
        assert_eq!(e.status(), Some(403));
        assert!(e.to_string().contains("grant_expired"));
        let e = api_error(502, b"Bad Gateway");
        assert_eq!(e.code(), Some("http_502"));
        assert!(e.is_transient());
        assert!(!api_error(404, b"").is_transient());
    }
}
