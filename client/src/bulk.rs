//! Bulk issue: a department migrating its existing licences issues them from a CSV manifest.
//!
//! The manifest has the header `uscc,doc_type,file,valid_from,valid_days,claims` (the last three
//! optional, columns in any order). Each row is validated on its own — a bad row is reported with
//! its row number and the rule it breaks and does not stop the others — then its file is uploaded
//! to the node's vault and its `IssueAttestation` transaction signed; transactions go to the node
//! in batches, waiting for each batch to commit.
//!
//! A **state file** makes the run resumable. It records, per row, the outcome: `committed` (with
//! the transaction id), `failed` (with the reason), or `submitted` — sent but not known to be
//! committed, with the signed transaction itself. It is written atomically (a temporary file
//! renamed over it) before each batch is sent and after its results are known, so after a crash or
//! Ctrl-C a rerun skips committed rows, retries failed and never-sent rows, and for `submitted` rows
//! asks the node about the very transaction that was sent, resubmitting *that* transaction (same
//! id, so at most a duplicate) rather than signing a new one. The state belongs to one manifest:
//! a rerun with a changed manifest is refused.
//!
//! Row numbers are line numbers in the manifest, the header being line 1, as a spreadsheet or an
//! editor shows them.

use std::collections::BTreeMap;
use std::fs;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};
use vault_protocol::access::{Requester, SignedAccessRequest};
use vault_protocol::crypto::{CryptoSuite, Digest, KeyPair};
use vault_protocol::encoding::{BoundedVec, Canonical};
use vault_protocol::ids::{ChainId, DepartmentId, DocTypeCode, Timestamp, TxId};
use vault_protocol::tx::{Attestation, Claim, SignedTransaction, Transaction, TxBody, MAX_CLAIMS};
use vault_protocol::uscc::Uscc;

use crate::compose::{parse_claims, parse_date, DAY_MS};
use crate::files::{file_digest, guess_media_type};
use crate::requests::{now, random_nonce, upload_request};
use crate::types::{BatchAnswer, BatchStatus, TxState, UploadReceipt};
use crate::{Client, ClientError};

/// The manifest's columns, in the documented order.
pub const MANIFEST_COLUMNS: [&str; 6] = [
    "uscc",
    "doc_type",
    "file",
    "valid_from",
    "valid_days",
    "claims",
];
/// The columns every manifest must have.
const REQUIRED_COLUMNS: [&str; 3] = ["uscc", "doc_type", "file"];
/// The state file's format version.
pub const STATE_VERSION: u32 = 1;
/// Most transactions the node takes in one batch.
pub const MAX_BATCH: usize = 10_000;

/// Why a bulk issue cannot go on at all (as opposed to one row failing).
#[derive(Debug, thiserror::Error)]
pub enum BulkError {
    /// The manifest cannot be read or has no usable header.
    #[error("manifest {}: {reason}", path.display())]
    Manifest {
        /// The manifest.
        path: PathBuf,
        /// What is wrong.
        reason: String,
    },
    /// The state file cannot be read, parsed or written.
    #[error("state file {}: {reason}", path.display())]
    State {
        /// The state file.
        path: PathBuf,
        /// What is wrong.
        reason: String,
    },
    /// The state file belongs to another manifest or department.
    #[error(
        "state file {} was written for {what}; use another --state file, or remove it to start over",
        path.display()
    )]
    StateMismatch {
        /// The state file.
        path: PathBuf,
        /// What it was written for.
        what: String,
    },
}

/// A manifest row that cannot be issued, and why.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RowFailure {
    /// The row (line number in the manifest).
    pub row: u64,
    /// A stable code: the rule broken (`uscc_check_character_mismatch`, `file_not_found`, …) or
    /// the node's error code.
    pub code: String,
    /// A human explanation.
    pub reason: String,
}

impl RowFailure {
    fn new(row: u64, code: impl Into<String>, reason: impl Into<String>) -> Self {
        Self {
            row,
            code: code.into(),
            reason: reason.into(),
        }
    }
}

/// A manifest row, validated: everything needed to issue its attestation.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IssueSpec {
    /// The row (line number in the manifest).
    pub row: u64,
    /// The enterprise.
    pub uscc: Uscc,
    /// The document type.
    pub doc_type: DocTypeCode,
    /// The file (resolved against the files directory).
    pub file: PathBuf,
    /// Start of validity; `None` = when the transaction is made.
    pub valid_from: Option<Timestamp>,
    /// Validity in days from `valid_from`; `None` = does not expire.
    pub valid_days: Option<u64>,
    /// Claims, sorted by key.
    pub claims: BoundedVec<Claim, MAX_CLAIMS>,
}

impl IssueSpec {
    /// The attestation this row issues, for a file with `file_digest`, with `now` standing in for
    /// an empty `valid_from`.
    pub fn attestation(
        &self,
        issuer: &DepartmentId,
        file_digest: Digest,
        now: Timestamp,
    ) -> Attestation {
        let valid_from = self.valid_from.unwrap_or(now);
        Attestation {
            issuer: issuer.clone(),
            subject: self.uscc,
            doc_type: self.doc_type.clone(),
            file_digest,
            claims: self.claims.clone(),
            valid_from,
            valid_until: self
                .valid_days
                .map(|d| valid_from.plus(d.saturating_mul(DAY_MS))),
            supersedes: None,
        }
    }
}

/// A parsed manifest: its SHA-256 (which ties a state file to it) and each row, valid or not.
#[derive(Debug, Clone)]
pub struct Manifest {
    /// SHA-256 of the manifest file.
    pub sha256: Digest,
    /// Each data row in order: the validated row, or why it cannot be issued.
    pub rows: Vec<Result<IssueSpec, RowFailure>>,
}

impl Manifest {
    /// Reads and validates a manifest; `files_dir` is where relative file names are looked up.
    pub fn read(path: &Path, files_dir: &Path) -> Result<Manifest, BulkError> {
        let bytes = fs::read(path).map_err(|e| BulkError::Manifest {
            path: path.to_path_buf(),
            reason: e.to_string(),
        })?;
        Self::parse(&bytes, files_dir).map_err(|reason| BulkError::Manifest {
            path: path.to_path_buf(),
            reason,
        })
    }

    /// Validates a manifest's bytes. Fails only if the manifest as a whole is unusable (no header,
    /// a required column missing, an unknown column); a bad row becomes a [`RowFailure`].
    pub fn parse(bytes: &[u8], files_dir: &Path) -> Result<Manifest, String> {
        let sha256 = CryptoSuite::Ed25519Sha256.file_digest(bytes);
        let mut reader = csv::ReaderBuilder::new()
            .has_headers(true)
            .flexible(true)
            .trim(csv::Trim::All)
            .comment(Some(b'#'))
            .from_reader(bytes);
        let headers = reader
            .headers()
            .map_err(|e| format!("cannot read the header: {e}"))?
            .clone();
        let names: Vec<String> = headers
            .iter()
            .map(|h| h.trim_start_matches('\u{feff}').trim().to_ascii_lowercase())
            .collect();
        let mut column: BTreeMap<&str, usize> = BTreeMap::new();
        for (i, name) in names.iter().enumerate() {
            let Some(known) = MANIFEST_COLUMNS.iter().find(|c| **c == name.as_str()) else {
                return Err(format!(
                    "unknown column {name:?}; the columns are {}",
                    MANIFEST_COLUMNS.join(",")
                ));
            };
            if column.insert(known, i).is_some() {
                return Err(format!("column {name:?} appears twice"));
            }
        }
        if let Some(missing) = REQUIRED_COLUMNS.iter().find(|c| !column.contains_key(*c)) {
            return Err(format!(
                "no {missing:?} column; the header must be {}",
                MANIFEST_COLUMNS.join(",")
            ));
        }
        let mut rows = Vec::new();
        let mut record = csv::StringRecord::new();
        loop {
            match reader.read_record(&mut record) {
                Ok(false) => break,
                Ok(true) => {
                    let row = record.position().map_or(0, |p| p.line());
                    rows.push(parse_row(row, &record, &column, names.len(), files_dir));
                }
                Err(e) => {
                    // A malformed record (e.g. bad UTF-8) is that row's failure; the reader
                    // carries on with the next record.
                    let row = e.position().map_or(0, |p| p.line());
                    rows.push(Err(RowFailure::new(row, "malformed_row", e.to_string())));
                    if !matches!(e.kind(), csv::ErrorKind::Utf8 { .. }) {
                        break;
                    }
                }
            }
        }
        Ok(Manifest { sha256, rows })
    }
}

fn parse_row(
    row: u64,
    record: &csv::StringRecord,
    column: &BTreeMap<&str, usize>,
    width: usize,
    files_dir: &Path,
) -> Result<IssueSpec, RowFailure> {
    let fail = |code: &str, reason: String| RowFailure::new(row, code, reason);
    if record.len() > width {
        return Err(fail(
            "malformed_row",
            format!("{} fields, the header has {width}", record.len()),
        ));
    }
    let field = |name: &str| {
        column
            .get(name)
            .and_then(|i| record.get(*i))
            .unwrap_or("")
            .trim()
    };
    let uscc_text = field("uscc");
    let uscc = Uscc::parse(uscc_text)
        .map_err(|e| fail(e.code(), format!("USCC {uscc_text:?}: {e}")))?;
    let doc_type = DocTypeCode::new(field("doc_type")).map_err(|e| {
        fail(
            "invalid_doc_type",
            format!("doc_type {:?}: {e}", field("doc_type")),
        )
    })?;
    let file_text = field("file");
    if file_text.is_empty() {
        return Err(fail("missing_file", "no file named".into()));
    }
    let file = files_dir.join(file_text);
    if !file.is_file() {
        return Err(fail(
            "file_not_found",
            format!("file {} does not exist", file.display()),
        ));
    }
    let valid_from = match field("valid_from") {
        "" => None,
        s => Some(parse_date(s).map_err(|e| fail(e.code(), format!("valid_from: {e}")))?),
    };
    let valid_days = match field("valid_days") {
        "" => None,
        s => Some(s.parse::<u64>().ok().filter(|d| *d > 0).ok_or_else(|| {
            fail(
                "invalid_valid_days",
                format!("valid_days {s:?} is not a whole number of days above 0"),
            )
        })?),
    };
    let claims =
        parse_claims(field("claims")).map_err(|e| fail(e.code(), format!("claims: {e}")))?;
    Ok(IssueSpec {
        row,
        uscc,
        doc_type,
        file,
        valid_from,
        valid_days,
        claims,
    })
}

/// What became of a row, as the state file records it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RowStatus {
    /// Its transaction is on the ledger.
    Committed,
    /// Its transaction was sent; whether it is on the ledger is not known yet.
    Submitted,
    /// It could not be issued (see the reason); a rerun tries it again.
    Failed,
}

/// One row's outcome in the state file.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RowOutcome {
    /// The row (line number in the manifest).
    pub row: u64,
    /// What became of it.
    pub status: RowStatus,
    /// Its transaction's id (= the attestation's id), once it has one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tx_id: Option<TxId>,
    /// Block height, when committed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub height: Option<u64>,
    /// Why it failed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub code: Option<String>,
    /// Why it failed, for people.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    /// While `submitted`: the signed transaction (hex of its canonical encoding), so a rerun can
    /// resubmit exactly it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub transaction: Option<String>,
}

impl RowOutcome {
    fn committed(row: u64, tx_id: TxId, height: Option<u64>) -> Self {
        Self {
            row,
            status: RowStatus::Committed,
            tx_id: Some(tx_id),
            height,
            code: None,
            reason: None,
            transaction: None,
        }
    }

    fn submitted(row: u64, tx: &SignedTransaction) -> Self {
        Self {
            row,
            status: RowStatus::Submitted,
            tx_id: Some(tx.id(CryptoSuite::Ed25519Sha256)),
            height: None,
            code: None,
            reason: None,
            transaction: Some(hex::encode(tx.encode())),
        }
    }

    fn failed(f: &RowFailure, tx_id: Option<TxId>) -> Self {
        Self {
            row: f.row,
            status: RowStatus::Failed,
            tx_id,
            height: None,
            code: Some(f.code.clone()),
            reason: Some(f.reason.clone()),
            transaction: None,
        }
    }

    /// The signed transaction a `submitted` row carries, if it decodes.
    pub fn signed_transaction(&self) -> Option<SignedTransaction> {
        let bytes = hex::decode(self.transaction.as_deref()?).ok()?;
        SignedTransaction::decode(&bytes).ok()
    }
}

/// The state of a bulk issue: which manifest and department it is for, and each row's outcome.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BulkState {
    /// SHA-256 of the manifest.
    pub manifest_sha256: Digest,
    /// The issuing department.
    pub department: DepartmentId,
    /// Outcomes by row.
    pub rows: BTreeMap<u64, RowOutcome>,
}

#[derive(Serialize, Deserialize)]
struct StateFile {
    version: u32,
    manifest_sha256: Digest,
    department: DepartmentId,
    rows: Vec<RowOutcome>,
}

/// What a run does with a row, given its outcome in an earlier run.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RowAction {
    /// Committed before: nothing to do.
    Skip,
    /// Sent before with an unknown outcome: ask the node about that transaction (and resubmit
    /// exactly it if the node has never heard of it).
    Recheck {
        /// The transaction sent.
        tx_id: TxId,
        /// The signed transaction, if the state kept it.
        tx: Option<Box<SignedTransaction>>,
    },
    /// Never tried, or failed: issue it now.
    Issue,
}

impl BulkState {
    /// A fresh state for a manifest.
    pub fn new(manifest_sha256: Digest, department: DepartmentId) -> Self {
        Self {
            manifest_sha256,
            department,
            rows: BTreeMap::new(),
        }
    }

    /// Loads the state file at `path`, or `None` if there is none.
    pub fn load(path: &Path) -> Result<Option<BulkState>, BulkError> {
        let err = |reason: String| BulkError::State {
            path: path.to_path_buf(),
            reason,
        };
        let bytes = match fs::read(path) {
            Ok(b) => b,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(err(e.to_string())),
        };
        let file: StateFile = serde_json::from_slice(&bytes).map_err(|e| err(e.to_string()))?;
        if file.version != STATE_VERSION {
            return Err(err(format!(
                "format version {} (this tool writes {STATE_VERSION})",
                file.version
            )));
        }
        Ok(Some(BulkState {
            manifest_sha256: file.manifest_sha256,
            department: file.department,
            rows: file.rows.into_iter().map(|r| (r.row, r)).collect(),
        }))
    }

    /// The state to continue from: the loaded one if it belongs to this manifest and department,
    /// a fresh one if there was none.
    pub fn resume(
        path: &Path,
        loaded: Option<BulkState>,
        manifest_sha256: Digest,
        department: &DepartmentId,
    ) -> Result<BulkState, BulkError> {
        let Some(state) = loaded else {
            return Ok(BulkState::new(manifest_sha256, department.clone()));
        };
        if state.manifest_sha256 != manifest_sha256 {
            return Err(BulkError::StateMismatch {
                path: path.to_path_buf(),
                what: format!(
                    "another manifest (SHA-256 {}, this one is {manifest_sha256})",
                    state.manifest_sha256
                ),
            });
        }
        if &state.department != department {
            return Err(BulkError::StateMismatch {
                path: path.to_path_buf(),
                what: format!("department {}", state.department),
            });
        }
        Ok(state)
    }

    /// Writes the state to `path` atomically: a temporary file beside it, flushed to disk, then
    /// renamed over it, so a crash leaves either the old state or the new one.
    pub fn save(&self, path: &Path) -> Result<(), BulkError> {
        let err = |e: std::io::Error| BulkError::State {
            path: path.to_path_buf(),
            reason: e.to_string(),
        };
        let file = StateFile {
            version: STATE_VERSION,
            manifest_sha256: self.manifest_sha256,
            department: self.department.clone(),
            rows: self.rows.values().cloned().collect(),
        };
        let json = serde_json::to_vec_pretty(&file).map_err(|e| BulkError::State {
            path: path.to_path_buf(),
            reason: e.to_string(),
        })?;
        let mut tmp_name = path.as_os_str().to_owned();
        tmp_name.push(".tmp");
        let tmp = PathBuf::from(tmp_name);
        let mut f = fs::File::create(&tmp).map_err(err)?;
        f.write_all(&json).map_err(err)?;
        f.write_all(b"\n").map_err(err)?;
        f.sync_all().map_err(err)?;
        drop(f);
        fs::rename(&tmp, path).map_err(err)
    }

    /// What to do with `row` in this run.
    pub fn action(&self, row: u64) -> RowAction {
        match self.rows.get(&row) {
            Some(o) if o.status == RowStatus::Committed => RowAction::Skip,
            Some(o) if o.status == RowStatus::Submitted => match o.tx_id {
                Some(tx_id) => RowAction::Recheck {
                    tx_id,
                    tx: o.signed_transaction().map(Box::new),
                },
                None => RowAction::Issue,
            },
            _ => RowAction::Issue,
        }
    }
}

/// The node operations a bulk issue needs — the [`Client`] in real use, a fake in tests.
pub trait BulkNode {
    /// Whether the node already holds a file (then it need not be uploaded again).
    fn holds(&self, digest: &Digest) -> Result<bool, ClientError>;
    /// Uploads a file.
    fn upload(
        &self,
        signed: &SignedAccessRequest,
        path: &Path,
    ) -> Result<UploadReceipt, ClientError>;
    /// Submits a batch and waits for it.
    fn submit_batch(&self, txs: &[SignedTransaction]) -> Result<BatchAnswer, ClientError>;
    /// What the node knows of a transaction.
    fn transaction_state(&self, id: &TxId) -> Result<TxState, ClientError>;
}

impl BulkNode for Client {
    fn holds(&self, digest: &Digest) -> Result<bool, ClientError> {
        self.document_meta(digest).map(|m| m.is_some())
    }

    fn upload(
        &self,
        signed: &SignedAccessRequest,
        path: &Path,
    ) -> Result<UploadReceipt, ClientError> {
        Client::upload(self, signed, path, guess_media_type(path), |_| {})
    }

    fn submit_batch(&self, txs: &[SignedTransaction]) -> Result<BatchAnswer, ClientError> {
        Client::submit_batch(self, txs, true)
    }

    fn transaction_state(&self, id: &TxId) -> Result<TxState, ClientError> {
        Client::transaction_state(self, id)
    }
}

/// A committed row.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct IssuedRow {
    /// The row.
    pub row: u64,
    /// The attestation's id (its transaction's id).
    pub attestation: TxId,
    /// Block height, when the node said.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub height: Option<u64>,
}

/// A row whose transaction was sent but is not known to be committed yet.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct UnconfirmedRow {
    /// The row.
    pub row: u64,
    /// The transaction.
    pub tx_id: TxId,
}

/// The outcome of a run.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct BulkSummary {
    /// Data rows in the manifest.
    pub rows: usize,
    /// Rows committed in this run.
    pub issued: Vec<IssuedRow>,
    /// Rows that failed in this run, with their reasons.
    pub failed: Vec<RowFailure>,
    /// Rows committed by an earlier run, left alone.
    pub skipped: usize,
    /// Rows sent whose outcome is not known yet (a rerun checks them again).
    pub unconfirmed: Vec<UnconfirmedRow>,
    /// Rows not reached because the run stopped.
    pub not_attempted: usize,
    /// Why the run stopped early (the node unreachable), if it did.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stopped: Option<String>,
}

impl BulkSummary {
    /// Whether every row is committed now.
    pub fn complete(&self) -> bool {
        self.failed.is_empty()
            && self.unconfirmed.is_empty()
            && self.not_attempted == 0
            && self.stopped.is_none()
    }
}

/// What a run reports as it goes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum BulkEvent {
    /// Rows settled so far (committed, failed, skipped, or sent and awaiting confirmation), of all.
    Progress {
        /// Settled rows.
        done: usize,
        /// All rows.
        total: usize,
    },
    /// A row failed.
    Failed(RowFailure),
    /// What the run is doing now, for people.
    Stage(String),
}

/// One bulk issue: who issues, on which chain, how, and where the state lives.
pub struct BulkIssue<'a> {
    /// The chain.
    pub chain_id: ChainId,
    /// The issuing department.
    pub department: DepartmentId,
    /// Its signing key.
    pub key: &'a KeyPair,
    /// Transactions per batch (1 to [`MAX_BATCH`]).
    pub batch_size: usize,
    /// The state file.
    pub state_path: PathBuf,
    /// How long to keep asking about transactions still pending after their batch.
    pub confirm_wait: Duration,
}

enum Work {
    /// Issue from the manifest.
    Issue(IssueSpec),
    /// Resubmit a transaction sent before.
    Resubmit(u64, Box<SignedTransaction>),
}

impl Work {
    fn row(&self) -> u64 {
        match self {
            Work::Issue(s) => s.row,
            Work::Resubmit(row, _) => *row,
        }
    }
}

struct Run<'r, 'a, N: BulkNode, F: FnMut(BulkEvent)> {
    job: &'r BulkIssue<'a>,
    node: &'r N,
    state: &'r mut BulkState,
    summary: BulkSummary,
    pending: Vec<UnconfirmedRow>,
    done: usize,
    on_event: F,
}

/// Turns a node error on one row into that row's failure.
fn node_failure(row: u64, what: &str, e: &ClientError) -> RowFailure {
    match e {
        ClientError::Api { code, message, .. } => {
            RowFailure::new(row, code.clone(), format!("{what}: {message}"))
        }
        other => RowFailure::new(row, "client_error", format!("{what}: {other}")),
    }
}

impl<N: BulkNode, F: FnMut(BulkEvent)> Run<'_, '_, N, F> {
    fn progress(&mut self, n: usize) {
        self.done += n;
        let (done, total) = (self.done, self.summary.rows);
        (self.on_event)(BulkEvent::Progress { done, total });
    }

    fn commit(&mut self, row: u64, tx_id: TxId, height: Option<u64>) {
        self.state
            .rows
            .insert(row, RowOutcome::committed(row, tx_id, height));
        self.summary.issued.push(IssuedRow {
            row,
            attestation: tx_id,
            height,
        });
    }

    fn fail(&mut self, f: RowFailure, tx_id: Option<TxId>) {
        self.state.rows.insert(f.row, RowOutcome::failed(&f, tx_id));
        (self.on_event)(BulkEvent::Failed(f.clone()));
        self.summary.failed.push(f);
    }

    fn stop(&mut self, e: &ClientError, not_attempted: usize) {
        self.summary.stopped = Some(format!("the node could not be used: {e}"));
        self.summary.not_attempted += not_attempted;
    }

    /// Digests, uploads and signs one row; `Err` with a row failure, or `Ok(None)` when the node
    /// is unreachable (the run stops).
    fn prepare(&mut self, spec: &IssueSpec) -> Result<Option<SignedTransaction>, RowFailure> {
        let (digest, size) = file_digest(&spec.file).map_err(|e| {
            RowFailure::new(
                spec.row,
                "file_unreadable",
                format!("{}: {e}", spec.file.display()),
            )
        })?;
        let held = self.node.holds(&digest).unwrap_or(false);
        if !held {
            let request = upload_request(
                &self.job.chain_id,
                Requester::Department(self.job.department.clone()),
                digest,
                size,
                self.job.key,
            );
            if let Err(e) = self.node.upload(&request, &spec.file) {
                if e.is_transient() {
                    self.stop(&e, 0);
                    return Ok(None);
                }
                return Err(node_failure(spec.row, "the node refused the upload", &e));
            }
        }
        let created_at = now();
        let tx = Transaction {
            chain_id: self.job.chain_id.clone(),
            created_at,
            nonce: random_nonce(),
            body: TxBody::IssueAttestation(spec.attestation(
                &self.job.department,
                digest,
                created_at,
            )),
        };
        Ok(Some(tx.sign_one(self.job.key)))
    }

    /// Sends one batch and records each result.
    fn send(&mut self, batch: Vec<(u64, SignedTransaction)>) -> Result<bool, BulkError> {
        for (row, tx) in &batch {
            self.state
                .rows
                .insert(*row, RowOutcome::submitted(*row, tx));
        }
        // Write-ahead: the state names every transaction before the node can see it.
        self.state.save(&self.job.state_path)?;
        let txs: Vec<SignedTransaction> = batch.iter().map(|(_, tx)| tx.clone()).collect();
        (self.on_event)(BulkEvent::Stage(format!(
            "submitting {} transactions",
            txs.len()
        )));
        let answer = match self.node.submit_batch(&txs) {
            Ok(a) => a,
            Err(e) if e.is_transient() => {
                // Sent or not: the rows stay `submitted`, and a rerun asks about them.
                for (row, tx) in &batch {
                    self.pending.push(UnconfirmedRow {
                        row: *row,
                        tx_id: tx.id(CryptoSuite::Ed25519Sha256),
                    });
                }
                self.progress(batch.len());
                self.stop(&e, 0);
                return Ok(false);
            }
            Err(e) => {
                // The batch as a whole was refused: nothing in it was admitted.
                for (row, tx) in &batch {
                    let f = node_failure(*row, "the node refused the batch", &e);
                    self.fail(f, Some(tx.id(CryptoSuite::Ed25519Sha256)));
                }
                self.progress(batch.len());
                self.state.save(&self.job.state_path)?;
                return Ok(true);
            }
        };
        for ((row, tx), result) in batch.iter().zip(answer.results) {
            let id = tx.id(CryptoSuite::Ed25519Sha256);
            let error = result.error.clone().unwrap_or(crate::types::ApiErrorBody {
                code: "unknown".into(),
                message: String::new(),
            });
            match result.status {
                BatchStatus::Committed => self.commit(*row, id, result.height),
                BatchStatus::Pending => self.pending.push(UnconfirmedRow { row: *row, tx_id: id }),
                BatchStatus::Refused if error.code == "duplicate_transaction" => {
                    // Already on the ledger: a resubmission of a transaction that committed.
                    match self.node.transaction_state(&id) {
                        Ok(TxState::Committed { height }) => self.commit(*row, id, Some(height)),
                        _ => self.pending.push(UnconfirmedRow { row: *row, tx_id: id }),
                    }
                }
                BatchStatus::Rejected => self.fail(
                    RowFailure::new(
                        *row,
                        error.code,
                        format!("the ledger rejected the transaction: {}", error.message),
                    ),
                    Some(id),
                ),
                BatchStatus::Refused => self.fail(
                    RowFailure::new(
                        *row,
                        error.code,
                        format!("the node refused the transaction: {}", error.message),
                    ),
                    Some(id),
                ),
            }
        }
        self.progress(batch.len());
        self.state.save(&self.job.state_path)?;
        Ok(true)
    }

    /// Asks about pending transactions until they settle or the wait ends.
    fn confirm_pending(&mut self) -> Result<(), BulkError> {
        if self.pending.is_empty() || self.summary.stopped.is_some() {
            return Ok(());
        }
        (self.on_event)(BulkEvent::Stage(format!(
            "waiting for {} transactions to commit",
            self.pending.len()
        )));
        let deadline = Instant::now() + self.job.confirm_wait;
        loop {
            let mut still = Vec::new();
            for p in std::mem::take(&mut self.pending) {
                match self.node.transaction_state(&p.tx_id) {
                    Ok(TxState::Committed { height }) => self.commit(p.row, p.tx_id, Some(height)),
                    Ok(TxState::Rejected { error }) => self.fail(
                        RowFailure::new(
                            p.row,
                            error.code,
                            format!("the ledger rejected the transaction: {}", error.message),
                        ),
                        Some(p.tx_id),
                    ),
                    _ => still.push(p),
                }
            }
            self.pending = still;
            if self.pending.is_empty() || Instant::now() >= deadline {
                break;
            }
            std::thread::sleep(Duration::from_millis(500));
        }
        self.state.save(&self.job.state_path)
    }
}

impl BulkIssue<'_> {
    /// Runs the bulk issue over `manifest`, continuing from `state` (which it updates and saves
    /// to the state file as it goes). Row failures and an unreachable node end up in the summary;
    /// `Err` only if the state file cannot be written.
    pub fn run(
        &self,
        node: &impl BulkNode,
        manifest: &Manifest,
        state: &mut BulkState,
        on_event: impl FnMut(BulkEvent),
    ) -> Result<BulkSummary, BulkError> {
        let mut run = Run {
            job: self,
            node,
            state,
            summary: BulkSummary {
                rows: manifest.rows.len(),
                ..Default::default()
            },
            pending: Vec::new(),
            done: 0,
            on_event,
        };
        let batch_size = self.batch_size.clamp(1, MAX_BATCH);

        // Sort the rows: done before, to check again, to issue.
        let mut work: Vec<Work> = Vec::new();
        let mut skipped = 0;
        let mut recheck = Vec::new();
        for spec in &manifest.rows {
            let row = match spec {
                Ok(s) => s.row,
                Err(f) => f.row,
            };
            match run.state.action(row) {
                RowAction::Skip => skipped += 1,
                RowAction::Recheck { tx_id, tx } => recheck.push((row, tx_id, tx, spec)),
                RowAction::Issue => match spec {
                    Ok(s) => work.push(Work::Issue(s.clone())),
                    Err(f) => run.fail(f.clone(), None),
                },
            }
        }
        run.summary.skipped = skipped;
        let invalid = run.summary.failed.len();
        run.progress(skipped + invalid);

        if !recheck.is_empty() {
            (run.on_event)(BulkEvent::Stage(format!(
                "checking {} transactions sent before",
                recheck.len()
            )));
        }
        let mut settled = 0;
        for (i, (row, tx_id, tx, spec)) in recheck.iter().enumerate() {
            match run.node.transaction_state(tx_id) {
                Ok(TxState::Committed { height }) => {
                    run.commit(*row, *tx_id, Some(height));
                    settled += 1;
                }
                Ok(TxState::Pending) => {
                    run.pending.push(UnconfirmedRow {
                        row: *row,
                        tx_id: *tx_id,
                    });
                    settled += 1;
                }
                // Never heard of: send exactly that transaction again (at worst a duplicate).
                Ok(TxState::Unknown) if tx.is_some() => {
                    if let Some(tx) = tx {
                        work.push(Work::Resubmit(*row, tx.clone()));
                    }
                }
                // Left out of the ledger (or unknown and not kept): issue it anew.
                Ok(TxState::Rejected { .. }) | Ok(TxState::Unknown) => match spec {
                    Ok(s) => work.push(Work::Issue(s.clone())),
                    Err(f) => {
                        run.fail(f.clone(), None);
                        settled += 1;
                    }
                },
                Err(e) => {
                    run.progress(settled);
                    run.stop(&e, recheck.len() - i + work.len());
                    run.state.save(&self.state_path)?;
                    return Ok(run.finish());
                }
            }
        }
        run.progress(settled);
        work.sort_by_key(Work::row);

        let total_work = work.len();
        let mut reached = 0;
        let mut work = work.into_iter().peekable();
        while work.peek().is_some() {
            let mut batch = Vec::new();
            let mut failed_here = 0;
            while batch.len() < batch_size {
                let Some(item) = work.next() else { break };
                reached += 1;
                match item {
                    Work::Resubmit(row, tx) => batch.push((row, *tx)),
                    Work::Issue(spec) => match run.prepare(&spec) {
                        Ok(Some(tx)) => batch.push((spec.row, tx)),
                        Ok(None) => {
                            // The node is unreachable: send nothing more.
                            let left = total_work - reached + 1;
                            run.summary.not_attempted += left;
                            run.progress(failed_here);
                            if !batch.is_empty() {
                                // These were signed but never sent: nothing to remember.
                                run.summary.not_attempted += batch.len();
                            }
                            run.state.save(&self.state_path)?;
                            return Ok(run.finish());
                        }
                        Err(f) => {
                            run.fail(f, None);
                            failed_here += 1;
                        }
                    },
                }
            }
            run.progress(failed_here);
            if batch.is_empty() {
                continue;
            }
            if !run.send(batch)? {
                run.summary.not_attempted += total_work - reached;
                run.state.save(&self.state_path)?;
                return Ok(run.finish());
            }
        }
        run.confirm_pending()?;
        run.state.save(&self.state_path)?;
        Ok(run.finish())
    }
}

impl<N: BulkNode, F: FnMut(BulkEvent)> Run<'_, '_, N, F> {
    fn finish(mut self) -> BulkSummary {
        self.summary.unconfirmed = std::mem::take(&mut self.pending);
        self.summary.issued.sort_by_key(|r| r.row);
        self.summary.failed.sort_by_key(|r| r.row);
        self.summary.unconfirmed.sort_by_key(|r| r.row);
        self.summary
    }
}

#[cfg(test)]
mod tests {
    use std::cell::{Cell, RefCell};
    use std::collections::BTreeSet;

    use vault_protocol::ledger::test_uscc;

    use super::*;
    use crate::types::{ApiErrorBody, BatchResult};

    fn key() -> KeyPair {
        KeyPair::from_seed(CryptoSuite::Ed25519Sha256, [5; 32])
    }

    fn department() -> DepartmentId {
        DepartmentId::new("samr").unwrap()
    }

    /// A USCC whose check character is wrong.
    fn bad_uscc() -> String {
        let good = test_uscc(1).to_string();
        let last = good.chars().last().unwrap();
        let other = if last == '0' { '1' } else { '0' };
        format!("{}{other}", &good[..17])
    }

    struct Files {
        dir: tempfile::TempDir,
    }

    impl Files {
        fn new(names: &[&str]) -> Files {
            let dir = tempfile::tempdir().unwrap();
            for n in names {
                fs::write(dir.path().join(n), format!("the document {n}")).unwrap();
            }
            Files { dir }
        }

        fn path(&self) -> &Path {
            self.dir.path()
        }
    }

    #[derive(Default)]
    struct FakeNode {
        committed: RefCell<BTreeMap<TxId, u64>>,
        held: RefCell<BTreeSet<Digest>>,
        uploads: RefCell<Vec<(Digest, PathBuf)>>,
        batches: RefCell<Vec<Vec<TxId>>>,
        /// Transactions about these enterprises are rejected as not enrolled.
        not_enrolled: RefCell<BTreeSet<Uscc>>,
        /// Uploads of files whose name contains this are refused.
        refuse_upload: RefCell<Option<String>>,
        /// The next batch call admits and commits, then the connection breaks.
        break_after_admitting: Cell<bool>,
        /// The next batch call breaks before the node sees it.
        break_before_admitting: Cell<bool>,
        height: Cell<u64>,
        /// The node says it knows nothing of these, once each.
        unknown_once: RefCell<BTreeSet<TxId>>,
        /// The state file, checked whenever a batch arrives: it must already name every
        /// transaction in it (write-ahead).
        state_path: RefCell<Option<PathBuf>>,
    }

    fn transient() -> ClientError {
        ClientError::Api {
            status: 502,
            code: "http_502".into(),
            message: "bad gateway".into(),
        }
    }

    impl BulkNode for FakeNode {
        fn holds(&self, digest: &Digest) -> Result<bool, ClientError> {
            Ok(self.held.borrow().contains(digest))
        }

        fn upload(
            &self,
            signed: &SignedAccessRequest,
            path: &Path,
        ) -> Result<UploadReceipt, ClientError> {
            let vault_protocol::access::RequestAction::Upload { digest, size } =
                signed.request.action
            else {
                panic!("not an upload request");
            };
            assert_eq!(
                signed.request.requester,
                Requester::Department(department())
            );
            if let Some(bad) = self.refuse_upload.borrow().as_deref() {
                if path.to_string_lossy().contains(bad) {
                    return Err(ClientError::Api {
                        status: 413,
                        code: "file_too_large".into(),
                        message: "the file is larger than this node accepts".into(),
                    });
                }
            }
            assert_eq!(file_digest(path).unwrap(), (digest, size));
            self.uploads.borrow_mut().push((digest, path.to_path_buf()));
            self.held.borrow_mut().insert(digest);
            Ok(UploadReceipt {
                digest,
                size,
                media_type: None,
                already_held: false,
            })
        }

        fn submit_batch(&self, txs: &[SignedTransaction]) -> Result<BatchAnswer, ClientError> {
            if self.break_before_admitting.replace(false) {
                return Err(transient());
            }
            let ids: Vec<TxId> = txs
                .iter()
                .map(|t| t.id(CryptoSuite::Ed25519Sha256))
                .collect();
            if let Some(path) = self.state_path.borrow().as_ref() {
                let on_disk = BulkState::load(path).unwrap().unwrap();
                for id in &ids {
                    assert!(
                        on_disk.rows.values().any(|r| r.tx_id == Some(*id)
                            && r.status == RowStatus::Submitted
                            && r.signed_transaction().is_some()),
                        "transaction {id} sent before the state file recorded it"
                    );
                }
            }
            self.batches.borrow_mut().push(ids.clone());
            let mut results = Vec::new();
            for (tx, id) in txs.iter().zip(ids) {
                let TxBody::IssueAttestation(a) = &tx.tx.body else {
                    panic!("not an issue")
                };
                assert!(self.held.borrow().contains(&a.file_digest));
                let r = if self.committed.borrow().contains_key(&id) {
                    BatchResult {
                        tx_id: None,
                        status: BatchStatus::Refused,
                        height: None,
                        error: Some(ApiErrorBody {
                            code: "duplicate_transaction".into(),
                            message: "already on the ledger".into(),
                        }),
                    }
                } else if self.not_enrolled.borrow().contains(&a.subject) {
                    BatchResult {
                        tx_id: Some(id),
                        status: BatchStatus::Rejected,
                        height: None,
                        error: Some(ApiErrorBody {
                            code: "not_enrolled".into(),
                            message: format!("enterprise {} is not enrolled", a.subject),
                        }),
                    }
                } else {
                    self.height.set(self.height.get() + 1);
                    self.committed.borrow_mut().insert(id, self.height.get());
                    BatchResult {
                        tx_id: Some(id),
                        status: BatchStatus::Committed,
                        height: Some(self.height.get()),
                        error: None,
                    }
                };
                results.push(r);
            }
            if self.break_after_admitting.replace(false) {
                return Err(transient());
            }
            Ok(BatchAnswer {
                accepted: results.len(),
                results,
            })
        }

        fn transaction_state(&self, id: &TxId) -> Result<TxState, ClientError> {
            if self.unknown_once.borrow_mut().remove(id) {
                return Ok(TxState::Unknown);
            }
            Ok(match self.committed.borrow().get(id) {
                Some(h) => TxState::Committed { height: *h },
                None => TxState::Unknown,
            })
        }
    }

    fn job<'a>(key: &'a KeyPair, state_path: &Path, batch_size: usize) -> BulkIssue<'a> {
        BulkIssue {
            chain_id: ChainId::new("test-chain").unwrap(),
            department: department(),
            key,
            batch_size,
            state_path: state_path.to_path_buf(),
            confirm_wait: Duration::ZERO,
        }
    }

    fn manifest_text(rows: &[String]) -> String {
        let mut s = String::from("uscc,doc_type,file,valid_from,valid_days,claims\n");
        for r in rows {
            s.push_str(r);
            s.push('\n');
        }
        s
    }

    #[test]
    fn rows_are_validated_each_on_its_own() {
        let files = Files::new(&["a.pdf", "b.pdf"]);
        let u = test_uscc(1);
        let text = manifest_text(&[
            format!("{u},BUSINESS_LICENCE,a.pdf,2024-03-01,365,\"licence_no=350100200012345;capital=100万, RMB\""),
            format!("{},BUSINESS_LICENCE,b.pdf,,,", bad_uscc()),
            format!("{u},BUSINESS_LICENCE,missing.pdf,,,"),
            format!("{u},business_licence,a.pdf,,,"),
            format!("{u},BUSINESS_LICENCE,a.pdf,2024-02-30,,"),
            format!("{u},BUSINESS_LICENCE,a.pdf,,0,"),
            format!("{u},BUSINESS_LICENCE,a.pdf,,,k=1;k=2"),
            format!("{u},BUSINESS_LICENCE,b.pdf"),
            format!("{u},BUSINESS_LICENCE,b.pdf,,,,extra"),
        ]);
        let m = Manifest::parse(text.as_bytes(), files.path()).unwrap();
        assert_eq!(m.rows.len(), 9);
        assert_eq!(
            m.sha256,
            CryptoSuite::Ed25519Sha256.file_digest(text.as_bytes())
        );

        let first = m.rows[0].as_ref().unwrap();
        assert_eq!(first.row, 2, "row numbers are line numbers; the header is line 1");
        assert_eq!(first.uscc, u);
        assert_eq!(first.file, files.path().join("a.pdf"));
        assert_eq!(first.valid_from.unwrap().to_string(), "2024-03-01T00:00:00.000Z");
        assert_eq!(first.valid_days, Some(365));
        let keys: Vec<&str> = first.claims.iter().map(|c| c.key.as_str()).collect();
        assert_eq!(keys, ["capital", "licence_no"]);
        assert_eq!(first.claims[0].value.as_str(), "100万, RMB");

        let failure = |i: usize| m.rows[i].as_ref().unwrap_err();
        // An invalid USCC names the rule it breaks.
        assert_eq!(failure(1).row, 3);
        assert_eq!(failure(1).code, "uscc_check_character_mismatch");
        assert!(failure(1).reason.contains("check character"), "{}", failure(1).reason);
        assert_eq!(failure(2).code, "file_not_found");
        assert!(failure(2).reason.contains("missing.pdf"));
        assert_eq!(failure(3).code, "invalid_doc_type");
        assert_eq!(failure(4).code, "invalid_date");
        assert_eq!(failure(5).code, "invalid_valid_days");
        assert_eq!(failure(6).code, "duplicate_claim");
        // Missing trailing optional fields are empty.
        assert!(m.rows[7].is_ok());
        assert_eq!(failure(8).code, "malformed_row");
    }

    #[test]
    fn manifest_header_must_be_usable() {
        let files = Files::new(&["a.pdf"]);
        let u = test_uscc(1);
        // Columns in another order, optional ones left out, a spreadsheet's BOM: fine.
        let ok = format!("\u{feff}file,uscc,doc_type\na.pdf,{u},BUSINESS_LICENCE\n");
        let m = Manifest::parse(ok.as_bytes(), files.path()).unwrap();
        assert_eq!(m.rows[0].as_ref().unwrap().doc_type.as_str(), "BUSINESS_LICENCE");

        let missing = format!("uscc,file\n{u},a.pdf\n");
        let e = Manifest::parse(missing.as_bytes(), files.path()).unwrap_err();
        assert!(e.contains("doc_type"), "{e}");
        let unknown = format!("uscc,doc_type,file,vaild_days\n{u},X_Y,a.pdf,3\n");
        let e = Manifest::parse(unknown.as_bytes(), files.path()).unwrap_err();
        assert!(e.contains("vaild_days"), "{e}");
    }

    fn signed_issue(n: u8) -> SignedTransaction {
        let spec = IssueSpec {
            row: 2,
            uscc: test_uscc(u32::from(n)),
            doc_type: DocTypeCode::new("BUSINESS_LICENCE").unwrap(),
            file: PathBuf::from("a.pdf"),
            valid_from: None,
            valid_days: Some(10),
            claims: BoundedVec::default(),
        };
        Transaction {
            chain_id: ChainId::new("test-chain").unwrap(),
            created_at: Timestamp(1_700_000_000_000),
            nonce: u64::from(n),
            body: TxBody::IssueAttestation(spec.attestation(
                &department(),
                Digest([n; 32]),
                Timestamp(1_700_000_000_000),
            )),
        }
        .sign_one(&key())
    }

    #[test]
    fn state_round_trips_and_selects_what_to_resume() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("m.state.json");
        assert_eq!(BulkState::load(&path).unwrap(), None);

        let mut state = BulkState::new(Digest([1; 32]), department());
        let done = signed_issue(1);
        let sent = signed_issue(2);
        let done_id = done.id(CryptoSuite::Ed25519Sha256);
        state.rows.insert(2, RowOutcome::committed(2, done_id, Some(7)));
        state.rows.insert(3, RowOutcome::submitted(3, &sent));
        state.rows.insert(
            4,
            RowOutcome::failed(&RowFailure::new(4, "not_enrolled", "not enrolled"), None),
        );
        state.save(&path).unwrap();
        assert!(!dir.path().join("m.state.json.tmp").exists());

        let loaded = BulkState::load(&path).unwrap().unwrap();
        assert_eq!(loaded, state);
        let text = fs::read_to_string(&path).unwrap();
        assert!(text.contains("\"status\": \"committed\""), "{text}");
        assert!(text.contains(&done_id.to_string()));

        assert_eq!(loaded.action(2), RowAction::Skip);
        assert_eq!(
            loaded.action(3),
            RowAction::Recheck {
                tx_id: sent.id(CryptoSuite::Ed25519Sha256),
                tx: Some(Box::new(sent)),
            }
        );
        assert_eq!(loaded.action(4), RowAction::Issue);
        assert_eq!(loaded.action(5), RowAction::Issue);

        // The state belongs to its manifest and department.
        let resumed =
            BulkState::resume(&path, Some(loaded.clone()), Digest([1; 32]), &department())
                .unwrap();
        assert_eq!(resumed, loaded);
        assert!(matches!(
            BulkState::resume(&path, Some(loaded.clone()), Digest([2; 32]), &department()),
            Err(BulkError::StateMismatch { .. })
        ));
        assert!(matches!(
            BulkState::resume(
                &path,
                Some(loaded),
                Digest([1; 32]),
                &DepartmentId::new("tax").unwrap()
            ),
            Err(BulkError::StateMismatch { .. })
        ));
        fs::write(&path, "{not json").unwrap();
        assert!(matches!(
            BulkState::load(&path),
            Err(BulkError::State { .. })
        ));
    }

    fn setup(rows: &[String], names: &[&str]) -> (Files, Manifest, PathBuf) {
        let files = Files::new(names);
        let text = manifest_text(rows);
        let m = Manifest::parse(text.as_bytes(), files.path()).unwrap();
        let state_path = files.path().join("m.state.json");
        (files, m, state_path)
    }

    fn good_rows(n: u32) -> Vec<String> {
        (1..=n)
            .map(|i| format!("{},BUSINESS_LICENCE,f{i}.pdf,,30,licence_no={i}", test_uscc(i)))
            .collect()
    }

    fn run(
        node: &FakeNode,
        m: &Manifest,
        state_path: &Path,
        batch: usize,
    ) -> (BulkSummary, BulkState, Vec<BulkEvent>) {
        let k = key();
        *node.state_path.borrow_mut() = Some(state_path.to_path_buf());
        let loaded = BulkState::load(state_path).unwrap();
        let mut state = BulkState::resume(state_path, loaded, m.sha256, &department()).unwrap();
        let mut events = Vec::new();
        let summary = job(&k, state_path, batch)
            .run(node, m, &mut state, |e| events.push(e))
            .unwrap();
        // What was saved is what the run holds.
        assert_eq!(BulkState::load(state_path).unwrap().unwrap(), state);
        (summary, state, events)
    }

    #[test]
    fn issues_in_batches_and_a_rerun_skips_what_is_done() {
        let mut rows = good_rows(3);
        rows.insert(1, format!("{},BUSINESS_LICENCE,f2.pdf,,,", bad_uscc()));
        let (_files, m, state_path) = setup(&rows, &["f1.pdf", "f2.pdf", "f3.pdf"]);
        let node = FakeNode::default();

        let (s, state, events) = run(&node, &m, &state_path, 2);
        assert_eq!(s.rows, 4);
        assert_eq!(s.issued.iter().map(|r| r.row).collect::<Vec<_>>(), [2, 4, 5]);
        assert_eq!(s.failed.len(), 1);
        assert_eq!(s.failed[0].row, 3);
        assert_eq!(s.failed[0].code, "uscc_check_character_mismatch");
        assert_eq!(s.skipped, 0);
        assert!(!s.complete());
        assert_eq!(node.uploads.borrow().len(), 3);
        assert_eq!(node.batches.borrow().len(), 2, "3 transactions in batches of 2");
        assert!(events.contains(&BulkEvent::Failed(s.failed[0].clone())));
        assert!(events.contains(&BulkEvent::Progress { done: 4, total: 4 }));
        // The attestation carries the row's claims, and expires 30 days after it starts.
        let committed: Vec<&RowOutcome> = state
            .rows
            .values()
            .filter(|r| r.status == RowStatus::Committed)
            .collect();
        assert_eq!(committed.len(), 3);
        assert_eq!(state.rows[&3].status, RowStatus::Failed);
        assert_eq!(
            state.rows[&3].code.as_deref(),
            Some("uscc_check_character_mismatch")
        );

        // Rerun: the committed rows are skipped, nothing is uploaded or sent again, and the bad
        // row fails again with its reason.
        let (s2, _, _) = run(&node, &m, &state_path, 2);
        assert_eq!(s2.skipped, 3);
        assert!(s2.issued.is_empty());
        assert_eq!(s2.failed.len(), 1);
        assert_eq!(node.uploads.borrow().len(), 3);
        assert_eq!(node.batches.borrow().len(), 2);
    }

    #[test]
    fn rejected_and_refused_rows_do_not_stop_the_rest() {
        let (_files, m, state_path) = setup(&good_rows(4), &["f1.pdf", "f2.pdf", "f3.pdf", "f4.pdf"]);
        let node = FakeNode::default();
        node.not_enrolled.borrow_mut().insert(test_uscc(2));
        *node.refuse_upload.borrow_mut() = Some("f3.pdf".into());

        let (s, state, _) = run(&node, &m, &state_path, 200);
        assert_eq!(s.issued.iter().map(|r| r.row).collect::<Vec<_>>(), [2, 5]);
        let failed: Vec<(u64, &str)> = s
            .failed
            .iter()
            .map(|f| (f.row, f.code.as_str()))
            .collect();
        assert_eq!(failed, [(3, "not_enrolled"), (4, "file_too_large")]);
        assert!(s.failed[0].reason.contains("rejected"));
        assert!(s.failed[1].reason.contains("upload"));
        assert_eq!(state.rows[&3].status, RowStatus::Failed);
        assert!(state.rows[&3].tx_id.is_some());

        // Once the cause is fixed, a rerun retries exactly the failed rows, with new transactions.
        node.not_enrolled.borrow_mut().clear();
        *node.refuse_upload.borrow_mut() = None;
        let (s2, _, _) = run(&node, &m, &state_path, 200);
        assert_eq!(s2.skipped, 2);
        assert_eq!(s2.issued.iter().map(|r| r.row).collect::<Vec<_>>(), [3, 4]);
        assert!(s2.complete());
    }

    #[test]
    fn a_batch_admitted_before_a_crash_is_not_issued_twice() {
        let (_files, m, state_path) = setup(&good_rows(3), &["f1.pdf", "f2.pdf", "f3.pdf"]);
        let node = FakeNode::default();
        node.break_after_admitting.set(true);

        let (s, state, _) = run(&node, &m, &state_path, 2);
        assert!(s.stopped.is_some());
        assert_eq!(s.unconfirmed.len(), 2);
        assert_eq!(s.not_attempted, 1);
        assert_eq!(state.rows[&2].status, RowStatus::Submitted);
        assert!(state.rows[&2].transaction.is_some());
        assert!(!state.rows.contains_key(&4));
        let sent: Vec<TxId> = node.batches.borrow()[0].clone();

        let (s2, state2, _) = run(&node, &m, &state_path, 2);
        assert!(s2.complete(), "{s2:?}");
        assert_eq!(s2.issued.iter().map(|r| r.row).collect::<Vec<_>>(), [2, 3, 4]);
        // Rows 2 and 3 were confirmed by asking about their transactions, not sent again.
        assert_eq!(node.batches.borrow().len(), 2);
        assert!(node.batches.borrow()[1].iter().all(|id| !sent.contains(id)));
        assert_eq!(state2.rows[&2].tx_id, Some(sent[0]));
        assert_eq!(node.committed.borrow().len(), 3);
    }

    #[test]
    fn a_batch_lost_before_the_node_saw_it_is_resubmitted_unchanged() {
        let (_files, m, state_path) = setup(&good_rows(2), &["f1.pdf", "f2.pdf"]);
        let node = FakeNode::default();
        node.break_before_admitting.set(true);

        let (s, state, _) = run(&node, &m, &state_path, 200);
        assert!(s.stopped.is_some());
        assert_eq!(s.unconfirmed.len(), 2);
        let ids: Vec<TxId> = [2, 3].iter().map(|r| state.rows[r].tx_id.unwrap()).collect();
        assert!(node.committed.borrow().is_empty());

        let (s2, _, _) = run(&node, &m, &state_path, 200);
        assert!(s2.complete(), "{s2:?}");
        // The very transactions recorded were sent: same ids, so never a second attestation.
        assert_eq!(node.batches.borrow().as_slice(), &[ids.clone()]);
        assert_eq!(
            s2.issued.iter().map(|r| r.attestation).collect::<Vec<_>>(),
            ids
        );
        assert_eq!(node.uploads.borrow().len(), 2, "files are not uploaded again");
    }

    #[test]
    fn a_resubmission_of_a_committed_transaction_counts_as_committed() {
        let (_files, m, state_path) = setup(&good_rows(1), &["f1.pdf"]);
        let node = FakeNode::default();
        node.break_after_admitting.set(true);
        let (_, state, _) = run(&node, &m, &state_path, 200);
        let id = state.rows[&2].tx_id.unwrap();
        assert_eq!(state.rows[&2].status, RowStatus::Submitted);
        // The node committed it, but (say, just restarted) first says it knows nothing of it.
        node.unknown_once.borrow_mut().insert(id);

        let (s, state, _) = run(&node, &m, &state_path, 200);
        assert!(s.complete(), "{s:?}");
        assert_eq!(s.issued[0].attestation, id);
        assert_eq!(state.rows[&2].status, RowStatus::Committed);
        // Resubmitted unchanged, refused as a duplicate: still one attestation.
        assert_eq!(node.batches.borrow().as_slice(), &[vec![id], vec![id]]);
        assert_eq!(node.committed.borrow().len(), 1);
    }
}
