//! What the node's API answers, as typed values.

use serde::{Deserialize, Serialize};
use vault_protocol::bundle::ProofBundle;
use vault_protocol::crypto::Digest;
use vault_protocol::ids::{DepartmentId, GrantId, Timestamp, TxId};
use vault_protocol::state::{AttestationRecord, GrantRecord};
use vault_protocol::tx::SignedTransaction;
use vault_protocol::verify::Verdict;

/// A file stored in a node's vault (`PUT /v1/documents/{digest}`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct UploadReceipt {
    /// SHA-256 of the file.
    pub digest: Digest,
    /// Its size in bytes.
    pub size: u64,
    /// The media type the node stored with it.
    #[serde(default)]
    pub media_type: Option<String>,
    /// Whether the node held the file already.
    #[serde(default)]
    pub already_held: bool,
}

/// A stored file's metadata (`GET /v1/documents/{digest}`); never its content.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DocumentMeta {
    /// SHA-256 of the file.
    pub digest: Digest,
    /// Its size in bytes.
    pub size: u64,
    /// Its media type.
    #[serde(default)]
    pub media_type: Option<String>,
    /// When the node stored it.
    #[serde(default)]
    pub stored_at: Option<Timestamp>,
}

/// A document fetched under a grant, checked against the ledger.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FetchedDocument {
    /// SHA-256 of the bytes received — equal to the attestation's file digest on the ledger and
    /// to the node's `Vault-Digest`.
    pub digest: Digest,
    /// The grant the read was permitted under.
    pub grant: GrantId,
    /// The department whose node held the file.
    pub source: DepartmentId,
    /// The media type the node gave.
    pub media_type: Option<String>,
    /// Bytes received.
    pub size: u64,
    /// The node's verdict on the attestation at the time of the fetch, its `file_digest` check
    /// passed by the client from the bytes received.
    pub verdict: Verdict,
}

/// An attestation as the API shows it: the ledger record, the signed issuing transaction and a
/// verdict.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AttestationView {
    /// The ledger record (status and history included).
    pub record: AttestationRecord,
    /// The signed issuing transaction.
    pub transaction: SignedTransaction,
    /// The verdict.
    pub verdict: Verdict,
    /// The verdict's proof bundle, when asked for (`POST /v1/verify?bundle=true`): verify it
    /// again later with the genesis file alone ([`crate::offline`]).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub bundle: Option<ProofBundle>,
}

/// The answer of `POST /v1/verify`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct VerifyResult {
    /// SHA-256 of the file verified.
    pub digest: Digest,
    /// True iff at least one verdict is valid.
    pub valid: bool,
    /// A verdict for each attestation of the digest (or for the one asked about).
    pub verdicts: Vec<AttestationView>,
    /// Why there is no verdict (`unknown_digest`), if there is none.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
}

/// A grant as the API lists it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct GrantEntry {
    /// The grant's id (the id of the transaction that made it).
    pub id: GrantId,
    /// The grant as the ledger keeps it.
    pub grant: GrantRecord,
    /// `in_force`, `expired`, `withdrawn` or `not_yet_in_force`, as of the node's clock.
    pub state: String,
}

/// An error as the API reports it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ApiErrorBody {
    /// The stable code.
    pub code: String,
    /// A human message.
    #[serde(default)]
    pub message: String,
}

/// What became of one transaction of a batch.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum BatchStatus {
    /// Admitted, not yet committed.
    Pending,
    /// Committed.
    Committed,
    /// Admitted, then left out of the ledger because it broke a rule.
    Rejected,
    /// Not admitted (a bad signature, a rule checkable on entry, a full pool).
    Refused,
}

/// One transaction's result in a batch answer.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct BatchResult {
    /// Its id (absent when it was refused).
    #[serde(default)]
    pub tx_id: Option<TxId>,
    /// What became of it.
    pub status: BatchStatus,
    /// Block height, when committed.
    #[serde(default)]
    pub height: Option<u64>,
    /// Why, when rejected or refused.
    #[serde(default)]
    pub error: Option<ApiErrorBody>,
}

/// The answer of `POST /v1/transactions/batch`: one result per transaction, in order.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct BatchAnswer {
    /// How many were admitted.
    pub accepted: usize,
    /// The results, in the order of the transactions sent.
    pub results: Vec<BatchResult>,
}

/// A transaction's state as a node knows it (`GET /v1/transactions/{id}`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "status", rename_all = "snake_case")]
pub enum TxState {
    /// On the ledger.
    Committed {
        /// Block height.
        height: u64,
    },
    /// In the node's pool.
    Pending,
    /// Left out of the ledger because it broke a rule.
    Rejected {
        /// Why.
        error: ApiErrorBody,
    },
    /// The node knows nothing of it: never admitted, or forgotten.
    Unknown,
}
