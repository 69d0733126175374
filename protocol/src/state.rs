//! The ledger state machine.
//!
//! The state is an ordered key-value map ([`StateView`]) holding the governance state, enterprises,
//! attestations with their status history, grants, access receipts and the indexes over them. The
//! state machine is pure: [`apply_block`] takes a view of the state before a block and returns the
//! block's [`StateDelta`] (every write, in key order) and the new [`ChainHead`] — or a specific
//! error, having changed nothing. The node writes the delta to RocksDB in one batch; tests keep it
//! in a [`MemoryState`].
//!
//! Within a block each transaction is applied to its own overlay and merged only if every rule
//! holds, so a rejected transaction changes nothing. Every permission rule lives in this module;
//! ARCHITECTURE.md has the table.

use std::collections::BTreeMap;

use borsh::{BorshDeserialize, BorshSerialize};
use serde::{Deserialize, Serialize};

use crate::block::{txs_digest, Block, BlockHeader};
use crate::crypto::{CryptoSuite, Digest, Domain, PublicKey};
use crate::encoding::{BoundedVec, Canonical, DecodeError};
use crate::genesis::Genesis;
use crate::governance::{
    DepartmentRecord, DocumentTypeRecord, Governance, IssuerPeriod, KeyPeriod, DAY_MS,
};
use crate::ids::{
    AttestationId, BlockHash, DepartmentId, DocTypeCode, GrantId, ReceiptId, Timestamp, TxId,
};
use crate::merkle::{Frontier, LogHasher, Sha256LogHasher};
use crate::tx::{
    receipt_id, AccessRead, AccessReceipts, Attestation, EndorsementError, Enrolment,
    EnterpriseKeyRotation, GovernanceAction, Grant, GrantScope, GrantWithdrawal, Grantee, Note,
    StatusAction, StatusChange, TxBody, VerifiedTx,
};
use crate::uscc::Uscc;

// ---------------------------------------------------------------------------------------------
// Storage seam
// ---------------------------------------------------------------------------------------------

/// A failure of the storage under the state (a disk error, corruption).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("state storage failed: {message}")]
pub struct StoreError {
    /// What the store reported.
    pub message: String,
}

impl From<DecodeError> for StoreError {
    fn from(e: DecodeError) -> Self {
        StoreError {
            message: format!("stored record does not decode: {e}"),
        }
    }
}

/// Key-value entries, in key order.
pub type Entries = Vec<(Vec<u8>, Vec<u8>)>;

/// Read access to the ledger state: an ordered map from byte keys to byte values.
pub trait StateView {
    /// The value under `key`.
    fn get(&self, key: &[u8]) -> Result<Option<Vec<u8>>, StoreError>;
    /// Every entry whose key starts with `prefix`, in key order.
    fn scan_prefix(&self, prefix: &[u8]) -> Result<Entries, StoreError>;
}

/// The writes a block makes to the state, in key order (`None` deletes).
#[derive(Debug, Clone, Default, PartialEq, Eq, BorshSerialize, BorshDeserialize)]
pub struct StateDelta {
    /// The writes.
    pub writes: BTreeMap<Vec<u8>, Option<Vec<u8>>>,
}

impl StateDelta {
    /// The digest of the writes, for the state commitment.
    ///
    /// The status tree's nodes are left out: they are a function of the rest, committed to by
    /// the header's own `status_root`.
    pub fn digest(&self, suite: CryptoSuite) -> Digest {
        // The borsh encoding of the map without the tree's nodes (u32 count, then each key and
        // optional value with u32 length prefixes), written in one pass without copying the map.
        let committed = || self.writes.iter().filter(|(k, _)| !keys::is_status_node(k));
        let size: usize = committed()
            .map(|(k, v)| 9 + k.len() + v.as_ref().map_or(0, Vec::len))
            .sum();
        let mut bytes = Vec::with_capacity(4 + size);
        bytes.extend_from_slice(&(committed().count() as u32).to_le_bytes());
        for (k, v) in committed() {
            bytes.extend_from_slice(&(k.len() as u32).to_le_bytes());
            bytes.extend_from_slice(k);
            match v {
                None => bytes.push(0),
                Some(v) => {
                    bytes.push(1);
                    bytes.extend_from_slice(&(v.len() as u32).to_le_bytes());
                    bytes.extend_from_slice(v);
                }
            }
        }
        suite.hash(Domain::State, &[b"delta", &bytes])
    }
}

/// The state in memory: for tests, demos and the offline tools.
#[derive(Debug, Clone, Default)]
pub struct MemoryState {
    map: BTreeMap<Vec<u8>, Vec<u8>>,
}

impl MemoryState {
    /// Applies a delta.
    pub fn apply(&mut self, delta: &StateDelta) {
        for (k, v) in &delta.writes {
            match v {
                Some(v) => {
                    self.map.insert(k.clone(), v.clone());
                }
                None => {
                    self.map.remove(k);
                }
            }
        }
    }

    /// Number of entries.
    pub fn len(&self) -> usize {
        self.map.len()
    }

    /// Whether there are no entries.
    pub fn is_empty(&self) -> bool {
        self.map.is_empty()
    }

    /// All entries, for comparing states in tests.
    pub fn entries(&self) -> &BTreeMap<Vec<u8>, Vec<u8>> {
        &self.map
    }
}

impl StateView for MemoryState {
    fn get(&self, key: &[u8]) -> Result<Option<Vec<u8>>, StoreError> {
        Ok(self.map.get(key).cloned())
    }

    fn scan_prefix(&self, prefix: &[u8]) -> Result<Entries, StoreError> {
        Ok(self
            .map
            .range(prefix.to_vec()..)
            .take_while(|(k, _)| k.starts_with(prefix))
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect())
    }
}

/// Pending writes over a base view, read-your-writes.
pub struct Overlay<'a, V: StateView + ?Sized> {
    base: &'a V,
    writes: BTreeMap<Vec<u8>, Option<Vec<u8>>>,
}

impl<'a, V: StateView + ?Sized> Overlay<'a, V> {
    /// An empty overlay over `base`.
    pub fn new(base: &'a V) -> Self {
        Self {
            base,
            writes: BTreeMap::new(),
        }
    }

    fn put(&mut self, key: Vec<u8>, value: Vec<u8>) {
        self.writes.insert(key, Some(value));
    }

    fn delete(&mut self, key: Vec<u8>) {
        self.writes.insert(key, None);
    }

    fn put_record<T: Canonical>(&mut self, key: Vec<u8>, record: &T) {
        self.put(key, record.encode());
    }

    fn put_attestation(&mut self, record: &AttestationRecord) {
        self.put_record(
            keys::attestation(&record.id),
            &StoredAttestation::of(record),
        );
    }

    /// The pending writes.
    pub fn into_delta(self) -> StateDelta {
        StateDelta {
            writes: self.writes,
        }
    }
}

impl<V: StateView + ?Sized> StateView for Overlay<'_, V> {
    fn get(&self, key: &[u8]) -> Result<Option<Vec<u8>>, StoreError> {
        match self.writes.get(key) {
            Some(v) => Ok(v.clone()),
            None => self.base.get(key),
        }
    }

    fn scan_prefix(&self, prefix: &[u8]) -> Result<Entries, StoreError> {
        let mut merged: BTreeMap<Vec<u8>, Vec<u8>> =
            self.base.scan_prefix(prefix)?.into_iter().collect();
        apply_writes(&mut merged, &self.writes, prefix);
        Ok(merged.into_iter().collect())
    }
}

/// Applies the pending `writes` under `prefix` to `entries` (a base scan), so that a scan
/// through layered writes sees them.
pub fn apply_writes(
    entries: &mut BTreeMap<Vec<u8>, Vec<u8>>,
    writes: &BTreeMap<Vec<u8>, Option<Vec<u8>>>,
    prefix: &[u8],
) {
    for (k, v) in writes
        .range(prefix.to_vec()..)
        .take_while(|(k, _)| k.starts_with(prefix))
    {
        match v {
            Some(v) => {
                entries.insert(k.clone(), v.clone());
            }
            None => {
                entries.remove(k);
            }
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Keys
// ---------------------------------------------------------------------------------------------

/// The layout of the state's keys: a one-byte table tag, then fixed-width or self-delimiting
/// parts, so that prefix scans never run into a neighbouring table.
pub mod keys {
    use super::*;

    /// Governance state.
    pub const GOVERNANCE: &[u8] = &[0x01];
    /// The Merkle log's frontier.
    pub const LOG: &[u8] = &[0x02];
    /// The chain head (derived; not part of the state commitment).
    pub const HEAD: &[u8] = &[0x03];
    /// The state commitment after the head block (derived; not part of the commitment itself).
    pub const STATE_ROOT: &[u8] = &[0x04];

    const TX: u8 = 0x10;
    const ENTERPRISE: u8 = 0x20;
    const ATTESTATION: u8 = 0x30;
    const BY_SUBJECT: u8 = 0x31;
    const BY_DIGEST: u8 = 0x32;
    const LIVE: u8 = 0x33;
    const GRANT: u8 = 0x40;
    const GRANT_BY_GRANTEE: u8 = 0x41;
    const GRANT_BY_ENTERPRISE: u8 = 0x42;
    const RECEIPT: u8 = 0x50;
    const RECEIPT_BY_ENTERPRISE: u8 = 0x51;

    /// Whether a key is derived metadata, outside the state commitment.
    pub fn is_meta(key: &[u8]) -> bool {
        key == HEAD || key == STATE_ROOT
    }

    /// Whether a key holds a node of the status tree ([`crate::status`]).
    pub fn is_status_node(key: &[u8]) -> bool {
        key.first() == Some(&crate::status::NODE_TABLE)
    }

    /// Whether a key holds an attestation record (and not an index entry).
    pub fn is_attestation(key: &[u8]) -> bool {
        key.len() == 33 && key[0] == ATTESTATION
    }

    fn join(tag: u8, parts: &[&[u8]]) -> Vec<u8> {
        let mut k = vec![tag];
        for p in parts {
            k.extend_from_slice(p);
        }
        k
    }

    /// Where a transaction was committed.
    pub fn tx(id: &TxId) -> Vec<u8> {
        join(TX, &[&id.0 .0])
    }
    /// An enterprise.
    pub fn enterprise(uscc: &Uscc) -> Vec<u8> {
        join(ENTERPRISE, &[uscc.as_bytes()])
    }
    /// An attestation.
    pub fn attestation(id: &AttestationId) -> Vec<u8> {
        join(ATTESTATION, &[&id.0 .0])
    }
    /// Attestations of an enterprise (prefix).
    pub fn by_subject_prefix(uscc: &Uscc) -> Vec<u8> {
        join(BY_SUBJECT, &[uscc.as_bytes()])
    }
    /// Index entry: attestation by enterprise.
    pub fn by_subject(uscc: &Uscc, id: &AttestationId) -> Vec<u8> {
        join(BY_SUBJECT, &[uscc.as_bytes(), &id.0 .0])
    }
    /// Attestations of a file digest (prefix).
    pub fn by_digest_prefix(digest: &Digest) -> Vec<u8> {
        join(BY_DIGEST, &[&digest.0])
    }
    /// Index entry: attestation by file digest.
    pub fn by_digest(digest: &Digest, id: &AttestationId) -> Vec<u8> {
        join(BY_DIGEST, &[&digest.0, &id.0 .0])
    }
    /// Present when a file digest has a live (not revoked, not superseded) attestation of a type.
    /// The entry is empty; the attestation is the file's only live one of that type.
    pub fn live(digest: &Digest, doc_type: &DocTypeCode) -> Vec<u8> {
        join(LIVE, &[&digest.0, doc_type.as_str().as_bytes()])
    }
    /// A grant.
    pub fn grant(id: &GrantId) -> Vec<u8> {
        join(GRANT, &[&id.0 .0])
    }
    /// Grants to a grantee (prefix).
    pub fn grants_by_grantee_prefix(grantee: &Grantee) -> Vec<u8> {
        join(
            GRANT_BY_GRANTEE,
            &[&borsh::to_vec(grantee).unwrap_or_default()],
        )
    }
    /// Index entry: grant by grantee.
    pub fn grant_by_grantee(grantee: &Grantee, id: &GrantId) -> Vec<u8> {
        let mut k = grants_by_grantee_prefix(grantee);
        k.extend_from_slice(&id.0 .0);
        k
    }
    /// Grants of an enterprise (prefix).
    pub fn grants_by_enterprise_prefix(uscc: &Uscc) -> Vec<u8> {
        join(GRANT_BY_ENTERPRISE, &[uscc.as_bytes()])
    }
    /// Index entry: grant by enterprise.
    pub fn grant_by_enterprise(uscc: &Uscc, id: &GrantId) -> Vec<u8> {
        join(GRANT_BY_ENTERPRISE, &[uscc.as_bytes(), &id.0 .0])
    }
    /// An access receipt.
    pub fn receipt(id: &ReceiptId) -> Vec<u8> {
        join(RECEIPT, &[&id.0 .0])
    }
    /// Receipts of an enterprise (prefix), in time order.
    pub fn receipts_by_enterprise_prefix(uscc: &Uscc) -> Vec<u8> {
        join(RECEIPT_BY_ENTERPRISE, &[uscc.as_bytes()])
    }
    /// Index entry: receipt by enterprise and read time.
    pub fn receipt_by_enterprise(uscc: &Uscc, at: Timestamp, id: &ReceiptId) -> Vec<u8> {
        join(
            RECEIPT_BY_ENTERPRISE,
            &[uscc.as_bytes(), &at.0.to_be_bytes(), &id.0 .0],
        )
    }
}

// ---------------------------------------------------------------------------------------------
// Records
// ---------------------------------------------------------------------------------------------

macro_rules! record {
    ($t:ty, $max:expr) => {
        impl Canonical for $t {
            const MAX_ENCODED_LEN: usize = $max;
        }
    };
}

/// Most status changes an attestation can record; the last slot is kept for a revocation, so an
/// issuer can always revoke.
pub const MAX_STATUS_EVENTS: usize = 1000;
/// Most keys an enterprise can have had.
pub const MAX_ENTERPRISE_KEYS: usize = 1000;
/// The largest encoded block a proposer builds (under the wire limit, with room for the header).
pub const MAX_BLOCK_BYTES: usize = Block::MAX_ENCODED_LEN - 64 * 1024;

/// The head of the chain.
#[derive(Debug, Clone, PartialEq, Eq, BorshSerialize, BorshDeserialize, Serialize, Deserialize)]
pub struct ChainHead {
    /// Height of the head block (0 = genesis).
    pub height: u64,
    /// Its hash.
    pub hash: BlockHash,
    /// Its time.
    pub time: Timestamp,
    /// Log size after it.
    pub log_size: u64,
    /// Log root after it.
    pub log_root: Digest,
    /// State commitment after it.
    pub state_root: Digest,
    /// The status tree's root after it.
    pub status_root: Digest,
}
record!(ChainHead, 256);

/// Where a transaction sits.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, BorshSerialize, BorshDeserialize, Serialize, Deserialize,
)]
pub struct TxLocation {
    /// Block height.
    pub height: u64,
    /// Index within the block.
    pub index: u32,
    /// Index of its leaf in the Merkle log.
    pub log_index: u64,
    /// Block time.
    pub time: Timestamp,
}
record!(TxLocation, 64);

/// An enrolled enterprise.
#[derive(Debug, Clone, PartialEq, Eq, BorshSerialize, BorshDeserialize, Serialize, Deserialize)]
pub struct EnterpriseRecord {
    /// Its USCC.
    pub uscc: Uscc,
    /// Its keys, oldest first; the last is current.
    pub keys: Vec<KeyPeriod>,
    /// The department that enrolled it.
    pub enrolled_by: DepartmentId,
    /// When.
    pub enrolled_at: Timestamp,
}
record!(EnterpriseRecord, 64 * 1024);

impl EnterpriseRecord {
    /// The current key.
    pub fn current_key(&self) -> Option<&PublicKey> {
        self.keys
            .last()
            .filter(|p| p.until.is_none())
            .map(|p| &p.key)
    }
}

/// An attestation's recorded status (expiry is a matter of time, not of record).
#[derive(
    Debug,
    Clone,
    Copy,
    PartialEq,
    Eq,
    Hash,
    BorshSerialize,
    BorshDeserialize,
    Serialize,
    Deserialize,
)]
#[serde(rename_all = "snake_case")]
pub enum Status {
    /// In force.
    Active,
    /// Suspended (e.g. the enterprise is dormant); may be reinstated.
    Suspended,
    /// Revoked for good.
    Revoked,
}

impl std::fmt::Display for Status {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Status::Active => "active",
            Status::Suspended => "suspended",
            Status::Revoked => "revoked",
        })
    }
}

/// One change in an attestation's status history.
#[derive(Debug, Clone, PartialEq, Eq, BorshSerialize, BorshDeserialize, Serialize, Deserialize)]
pub struct StatusEvent {
    /// What was done.
    pub action: StatusAction,
    /// The status after it.
    pub status: Status,
    /// Reason code.
    pub reason_code: u16,
    /// Note.
    pub note: Note,
    /// Block time.
    pub at: Timestamp,
    /// Block height.
    pub height: u64,
    /// The transaction.
    pub tx: TxId,
}

/// An attestation as the state keeps it: the signed content stays in its block; the state keeps
/// what the rules and queries need, and the status.
#[derive(Debug, Clone, PartialEq, Eq, BorshSerialize, BorshDeserialize, Serialize, Deserialize)]
pub struct AttestationRecord {
    /// Its id (the issuing transaction's id).
    pub id: AttestationId,
    /// The attestation as issued.
    pub attestation: Attestation,
    /// Block time of issue.
    pub issued_at: Timestamp,
    /// Where the issuing transaction sits.
    pub location: TxLocation,
    /// Current status.
    pub status: Status,
    /// Status changes, oldest first.
    pub history: Vec<StatusEvent>,
    /// The attestation that replaced this one, if any.
    pub superseded_by: Option<AttestationId>,
    /// When it was replaced.
    pub superseded_at: Option<Timestamp>,
}
record!(AttestationRecord, 1024 * 1024);

/// An attestation record as the state stores it: without what its key and location already say
/// (the id is the key's; the block time of issue is the location's).
#[derive(Debug, Clone, PartialEq, Eq, BorshSerialize, BorshDeserialize)]
struct StoredAttestation {
    attestation: Attestation,
    location: TxLocation,
    status: Status,
    history: Vec<StatusEvent>,
    superseded_by: Option<AttestationId>,
    superseded_at: Option<Timestamp>,
}
record!(StoredAttestation, 1024 * 1024);

impl StoredAttestation {
    fn of(r: &AttestationRecord) -> Self {
        StoredAttestation {
            attestation: r.attestation.clone(),
            location: r.location,
            status: r.status,
            history: r.history.clone(),
            superseded_by: r.superseded_by,
            superseded_at: r.superseded_at,
        }
    }

    fn into_record(self, id: AttestationId) -> AttestationRecord {
        AttestationRecord {
            id,
            attestation: self.attestation,
            issued_at: self.location.time,
            location: self.location,
            status: self.status,
            history: self.history,
            superseded_by: self.superseded_by,
            superseded_at: self.superseded_at,
        }
    }
}

/// Decodes a stored attestation record found under `key` (an attestation key).
pub fn decode_attestation(key: &[u8], value: &[u8]) -> Result<AttestationRecord, StoreError> {
    let id: [u8; 32] = key
        .get(1..33)
        .and_then(|k| k.try_into().ok())
        .ok_or_else(|| StoreError {
            message: "an attestation key is not 33 bytes".into(),
        })?;
    Ok(StoredAttestation::decode(value)?.into_record(AttestationId(Digest(id))))
}

/// A grant as the state keeps it.
#[derive(Debug, Clone, PartialEq, Eq, BorshSerialize, BorshDeserialize, Serialize, Deserialize)]
pub struct GrantRecord {
    /// Its id.
    pub id: GrantId,
    /// The grant.
    pub grant: Grant,
    /// Block time it was recorded: in force from then.
    pub granted_at: Timestamp,
    /// Block height.
    pub height: u64,
    /// When it was withdrawn, if it was.
    pub withdrawn_at: Option<Timestamp>,
}
record!(GrantRecord, 64 * 1024);

/// One access receipt as the state keeps it.
#[derive(Debug, Clone, PartialEq, Eq, BorshSerialize, BorshDeserialize, Serialize, Deserialize)]
pub struct ReceiptRecord {
    /// Its id.
    pub id: ReceiptId,
    /// The read.
    pub read: AccessRead,
    /// The enterprise whose document was read.
    pub enterprise: Uscc,
    /// The document type read.
    pub doc_type: DocTypeCode,
    /// The purpose of the grant it was read under.
    pub purpose_code: String,
    /// The purpose text.
    pub purpose_text: String,
    /// The department that recorded it.
    pub recorder: DepartmentId,
    /// Block time of recording.
    pub recorded_at: Timestamp,
    /// Block height.
    pub height: u64,
    /// The receipts transaction.
    pub tx: TxId,
}
record!(ReceiptRecord, 8 * 1024);

record!(Governance, 4 * 1024 * 1024);
record!(Frontier, 8 * 1024);

// ---------------------------------------------------------------------------------------------
// Errors
// ---------------------------------------------------------------------------------------------

/// Why a read under a grant is refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error, Serialize, Deserialize)]
#[serde(tag = "reason", rename_all = "snake_case")]
pub enum AccessRefusal {
    /// The reader holds no grant from this enterprise.
    #[error("no grant from the enterprise to this reader")]
    NoGrant,
    /// The grant is to someone else.
    #[error("the grant is to another grantee")]
    WrongGrantee,
    /// The grant is not yet in force.
    #[error("the grant is not yet in force")]
    NotYetInForce,
    /// The grant expired.
    #[error("the grant expired at {expired_at}")]
    Expired {
        /// When.
        expired_at: Timestamp,
    },
    /// The enterprise withdrew the grant.
    #[error("the grant was withdrawn at {withdrawn_at}")]
    Withdrawn {
        /// When.
        withdrawn_at: Timestamp,
    },
    /// The document is outside the grant's scope.
    #[error("the document is outside the grant's scope")]
    OutOfScope,
    /// The grant is for another purpose.
    #[error("the grant is for purpose {granted:?}, not {requested:?}")]
    OtherPurpose {
        /// The grant's purpose code.
        granted: String,
        /// The purpose asked for.
        requested: String,
    },
}

impl AccessRefusal {
    /// A stable machine-readable code.
    pub fn code(&self) -> &'static str {
        match self {
            AccessRefusal::NoGrant => "no_grant",
            AccessRefusal::WrongGrantee => "grant_wrong_grantee",
            AccessRefusal::NotYetInForce => "grant_not_yet_in_force",
            AccessRefusal::Expired { .. } => "grant_expired",
            AccessRefusal::Withdrawn { .. } => "grant_withdrawn",
            AccessRefusal::OutOfScope => "grant_out_of_scope",
            AccessRefusal::OtherPurpose { .. } => "grant_other_purpose",
        }
    }
}

/// Why a transaction is rejected. Each variant names the rule that failed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TxError {
    /// Made for another chain.
    #[error("transaction is for chain {found}, this is {expected}")]
    WrongChain {
        /// This chain.
        expected: String,
        /// The transaction's.
        found: String,
    },
    /// Too old.
    #[error("transaction made at {created_at} is older than the oldest accepted, {oldest}")]
    Stale {
        /// Its time.
        created_at: Timestamp,
        /// The oldest accepted.
        oldest: Timestamp,
    },
    /// From the future.
    #[error("transaction made at {created_at} is later than the latest accepted, {latest}")]
    FromTheFuture {
        /// Its time.
        created_at: Timestamp,
        /// The latest accepted.
        latest: Timestamp,
    },
    /// Already on the ledger.
    #[error("transaction {tx} is already on the ledger")]
    Duplicate {
        /// Its id.
        tx: TxId,
    },
    /// Not a current member department.
    #[error("{department} is not a member department")]
    NotMember {
        /// The department.
        department: DepartmentId,
    },
    /// The transaction is not signed by the key its rule requires.
    #[error("must be signed by {expected}; signed by {found:?}")]
    WrongSigner {
        /// Who must sign.
        expected: String,
        /// The keys that signed.
        found: Vec<PublicKey>,
    },
    /// A governance change without enough member signatures.
    #[error("governance change signed by {signed} of {members} members; {required} needed")]
    InsufficientQuorum {
        /// Distinct members that signed.
        signed: usize,
        /// Signatures needed.
        required: usize,
        /// Members.
        members: usize,
    },
    /// A governance signature by a key of no current member.
    #[error("governance signature by {signer}, which is no member's signing key")]
    UnknownGovernanceSigner {
        /// The key.
        signer: PublicKey,
    },
    /// Admitting a department whose id was already used.
    #[error("department id {department} is already taken")]
    DepartmentExists {
        /// The id.
        department: DepartmentId,
    },
    /// A key already belongs to a member.
    #[error("key {key} is already in use")]
    KeyInUse {
        /// The key.
        key: PublicKey,
    },
    /// Removing the last member.
    #[error("the last member department cannot be removed")]
    LastMember,
    /// A document type that does not exist.
    #[error("unknown document type {doc_type}")]
    UnknownDocumentType {
        /// The code.
        doc_type: DocTypeCode,
    },
    /// Defining a document type twice.
    #[error("document type {doc_type} already exists")]
    DocumentTypeExists {
        /// The code.
        doc_type: DocTypeCode,
    },
    /// Authorising an issuer twice.
    #[error("{department} is already authorised to issue {doc_type}")]
    AlreadyAuthorised {
        /// The department.
        department: DepartmentId,
        /// The type.
        doc_type: DocTypeCode,
    },
    /// Issuing (or withdrawing an authorisation) without authorisation.
    #[error("{department} is not authorised to issue {doc_type}")]
    NotAuthorised {
        /// The department.
        department: DepartmentId,
        /// The type.
        doc_type: DocTypeCode,
    },
    /// A key-rotation overlap out of range.
    #[error("key overlap must end between {earliest} and {latest}, not {found}")]
    InvalidOverlap {
        /// Earliest allowed.
        earliest: Timestamp,
        /// Latest allowed.
        latest: Timestamp,
        /// Given.
        found: Timestamp,
    },
    /// A field violates its rule.
    #[error("invalid {field}: {reason}")]
    InvalidField {
        /// The field.
        field: &'static str,
        /// The rule.
        reason: String,
    },
    /// Enrolling an enterprise twice.
    #[error("enterprise {enterprise} is already enrolled")]
    AlreadyEnrolled {
        /// The USCC.
        enterprise: Uscc,
    },
    /// An enterprise that is not enrolled.
    #[error("enterprise {enterprise} is not enrolled")]
    NotEnrolled {
        /// The USCC.
        enterprise: Uscc,
    },
    /// The same file is already live as an attestation of the same type.
    #[error("file {file_digest} is already attested as {doc_type} by live attestation {existing}")]
    DigestAlreadyLive {
        /// The file digest.
        file_digest: Digest,
        /// The type.
        doc_type: DocTypeCode,
        /// The live attestation.
        existing: AttestationId,
    },
    /// An attestation that does not exist.
    #[error("unknown attestation {attestation}")]
    UnknownAttestation {
        /// The id.
        attestation: AttestationId,
    },
    /// Superseding across subject, type or issuer, or a revoked attestation.
    #[error("cannot supersede {attestation}: {reason}")]
    InvalidSupersession {
        /// The old attestation.
        attestation: AttestationId,
        /// Why.
        reason: &'static str,
    },
    /// Superseding or changing an attestation already superseded.
    #[error("attestation {attestation} was superseded by {by}")]
    AlreadySuperseded {
        /// The attestation.
        attestation: AttestationId,
        /// Its successor.
        by: AttestationId,
    },
    /// A status change by a department other than the issuer.
    #[error(
        "{department} did not issue {attestation}; only its issuer {issuer} may change its status"
    )]
    NotIssuer {
        /// Who tried.
        department: DepartmentId,
        /// The attestation.
        attestation: AttestationId,
        /// Its issuer.
        issuer: DepartmentId,
    },
    /// A status change that makes no sense from the current status.
    #[error("cannot {action:?} an attestation that is {from}")]
    InvalidTransition {
        /// Current status.
        from: Status,
        /// Attempted action.
        action: StatusAction,
    },
    /// A grant that does not exist.
    #[error("unknown grant {grant}")]
    UnknownGrant {
        /// The id.
        grant: GrantId,
    },
    /// Withdrawing another enterprise's grant.
    #[error("grant {grant} was made by another enterprise")]
    GrantNotOwned {
        /// The id.
        grant: GrantId,
    },
    /// Withdrawing twice.
    #[error("grant {grant} was already withdrawn")]
    GrantAlreadyWithdrawn {
        /// The id.
        grant: GrantId,
    },
    /// A grantee that is not a member department.
    #[error("grantee department {department} is not a member")]
    UnknownGrantee {
        /// The department.
        department: DepartmentId,
    },
    /// A scope naming another enterprise's attestation.
    #[error("attestation {attestation} in the scope is not the enterprise's")]
    ForeignAttestation {
        /// The id.
        attestation: AttestationId,
    },
    /// A recorded read that no grant permits.
    #[error("read {index} is not permitted: {refusal}")]
    ReadNotPermitted {
        /// Index of the read.
        index: usize,
        /// Why.
        refusal: AccessRefusal,
    },
}

impl TxError {
    /// A stable machine-readable code.
    pub fn code(&self) -> &'static str {
        match self {
            TxError::WrongChain { .. } => "wrong_chain",
            TxError::Stale { .. } => "stale_transaction",
            TxError::FromTheFuture { .. } => "future_transaction",
            TxError::Duplicate { .. } => "duplicate_transaction",
            TxError::NotMember { .. } => "not_member",
            TxError::WrongSigner { .. } => "wrong_signer",
            TxError::InsufficientQuorum { .. } => "insufficient_quorum",
            TxError::UnknownGovernanceSigner { .. } => "unknown_governance_signer",
            TxError::DepartmentExists { .. } => "department_exists",
            TxError::KeyInUse { .. } => "key_in_use",
            TxError::LastMember => "last_member",
            TxError::UnknownDocumentType { .. } => "unknown_document_type",
            TxError::DocumentTypeExists { .. } => "document_type_exists",
            TxError::AlreadyAuthorised { .. } => "already_authorised",
            TxError::NotAuthorised { .. } => "issuer_not_authorised",
            TxError::InvalidOverlap { .. } => "invalid_key_overlap",
            TxError::InvalidField { .. } => "invalid_field",
            TxError::AlreadyEnrolled { .. } => "already_enrolled",
            TxError::NotEnrolled { .. } => "not_enrolled",
            TxError::DigestAlreadyLive { .. } => "digest_already_live",
            TxError::UnknownAttestation { .. } => "unknown_attestation",
            TxError::InvalidSupersession { .. } => "invalid_supersession",
            TxError::AlreadySuperseded { .. } => "already_superseded",
            TxError::NotIssuer { .. } => "not_issuer",
            TxError::InvalidTransition { .. } => "invalid_status_transition",
            TxError::UnknownGrant { .. } => "unknown_grant",
            TxError::GrantNotOwned { .. } => "grant_not_owned",
            TxError::GrantAlreadyWithdrawn { .. } => "grant_already_withdrawn",
            TxError::UnknownGrantee { .. } => "unknown_grantee",
            TxError::ForeignAttestation { .. } => "foreign_attestation",
            TxError::ReadNotPermitted { .. } => "read_not_permitted",
        }
    }
}

/// A transaction could not be applied: either it breaks a rule, or the store failed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ApplyError {
    /// The transaction breaks a rule; nothing was changed.
    #[error(transparent)]
    Rejected(#[from] TxError),
    /// The store failed.
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// Why a block is not accepted. Nothing is changed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum BlockError {
    /// Not the next height.
    #[error("block height {found} does not follow head height {expected_parent_height}")]
    WrongHeight {
        /// Height of the head.
        expected_parent_height: u64,
        /// The block's height.
        found: u64,
    },
    /// Does not chain to the head.
    #[error("block's parent {found} is not the head {expected}")]
    WrongParent {
        /// The head's hash.
        expected: BlockHash,
        /// The block's parent.
        found: BlockHash,
    },
    /// Time does not move forward.
    #[error("block time {found} is not after its parent's {parent}")]
    TimeNotIncreasing {
        /// Parent time.
        parent: Timestamp,
        /// Block time.
        found: Timestamp,
    },
    /// Proposed by a non-member.
    #[error("proposer {proposer} is not a member department")]
    UnknownProposer {
        /// The proposer.
        proposer: DepartmentId,
    },
    /// More transactions than the chain allows.
    #[error("block holds {count} transactions; the limit is {max}")]
    TooManyTransactions {
        /// Count.
        count: usize,
        /// Limit.
        max: u32,
    },
    /// The block's transactions exceed the size a block may have.
    #[error("block holds {bytes} bytes of transactions; the limit is {max}")]
    TooLarge {
        /// Bytes.
        bytes: usize,
        /// Limit.
        max: usize,
    },
    /// The header's transaction count or digest does not match the body.
    #[error("header does not match the block's transactions")]
    TransactionsMismatch,
    /// A signature on a transaction does not verify.
    #[error("transaction {index}: {error}")]
    BadEndorsement {
        /// Its index.
        index: usize,
        /// The failure.
        error: EndorsementError,
    },
    /// A transaction breaks a rule.
    #[error("transaction {index} ({tx}) rejected: {error}")]
    Transaction {
        /// Its index.
        index: usize,
        /// Its id.
        tx: TxId,
        /// The rule it breaks.
        error: TxError,
    },
    /// The header's log size or root does not match a recomputation.
    #[error("header log root or size does not match the recomputed log")]
    LogMismatch,
    /// The header's state commitment does not match a recomputation.
    #[error("header state root {found} does not match the recomputed {expected}")]
    StateRootMismatch {
        /// Recomputed.
        expected: Digest,
        /// In the header.
        found: Digest,
    },
    /// The header's status root does not match a recomputation.
    #[error("header status root {found} does not match the recomputed {expected}")]
    StatusRootMismatch {
        /// Recomputed.
        expected: Digest,
        /// In the header.
        found: Digest,
    },
    /// The store failed (not the block's fault).
    #[error(transparent)]
    Store(#[from] StoreError),
}

impl BlockError {
    /// A stable machine-readable code.
    pub fn code(&self) -> &'static str {
        match self {
            BlockError::WrongHeight { .. } => "block_wrong_height",
            BlockError::WrongParent { .. } => "block_wrong_parent",
            BlockError::TimeNotIncreasing { .. } => "block_time_not_increasing",
            BlockError::UnknownProposer { .. } => "block_unknown_proposer",
            BlockError::TooManyTransactions { .. } => "block_too_many_transactions",
            BlockError::TooLarge { .. } => "block_too_large",
            BlockError::TransactionsMismatch => "block_transactions_mismatch",
            BlockError::BadEndorsement { .. } => "block_bad_signature",
            BlockError::Transaction { .. } => "block_invalid_transaction",
            BlockError::LogMismatch => "block_log_mismatch",
            BlockError::StateRootMismatch { .. } => "block_state_root_mismatch",
            BlockError::StatusRootMismatch { .. } => "block_status_root_mismatch",
            BlockError::Store(_) => "store_error",
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Reads
// ---------------------------------------------------------------------------------------------

fn read<T: Canonical, V: StateView + ?Sized>(
    view: &V,
    key: &[u8],
) -> Result<Option<T>, StoreError> {
    match view.get(key)? {
        Some(bytes) => Ok(Some(T::decode(&bytes)?)),
        None => Ok(None),
    }
}

fn require<T: Canonical, V: StateView + ?Sized>(
    view: &V,
    key: &[u8],
    what: &str,
) -> Result<T, StoreError> {
    read(view, key)?.ok_or_else(|| StoreError {
        message: format!("{what} missing from the state"),
    })
}

/// The governance state.
pub fn governance<V: StateView + ?Sized>(view: &V) -> Result<Governance, StoreError> {
    require(view, keys::GOVERNANCE, "governance")
}

/// The chain head.
pub fn head<V: StateView + ?Sized>(view: &V) -> Result<ChainHead, StoreError> {
    require(view, keys::HEAD, "chain head")
}

/// The Merkle log's frontier.
pub fn log_frontier<V: StateView + ?Sized>(view: &V) -> Result<Frontier, StoreError> {
    require(view, keys::LOG, "log frontier")
}

/// Where a transaction was committed.
///
/// An attestation's issuing transaction has no entry of its own in the transaction table: the
/// attestation's id is the transaction's, and its record holds the location.
pub fn tx_location<V: StateView + ?Sized>(
    view: &V,
    id: &TxId,
) -> Result<Option<TxLocation>, StoreError> {
    if let Some(location) = read(view, &keys::tx(id))? {
        return Ok(Some(location));
    }
    Ok(attestation(view, &AttestationId(id.0))?.map(|r| r.location))
}

/// An enterprise.
pub fn enterprise<V: StateView + ?Sized>(
    view: &V,
    uscc: &Uscc,
) -> Result<Option<EnterpriseRecord>, StoreError> {
    read(view, &keys::enterprise(uscc))
}

/// An attestation with its status history.
pub fn attestation<V: StateView + ?Sized>(
    view: &V,
    id: &AttestationId,
) -> Result<Option<AttestationRecord>, StoreError> {
    Ok(read::<StoredAttestation, V>(view, &keys::attestation(id))?.map(|r| r.into_record(*id)))
}

/// The records an index points at: every key under `prefix` ends with a 32-byte id, and
/// `record_key` turns that id into the record's key.
fn indexed<T: Canonical, V: StateView + ?Sized>(
    view: &V,
    prefix: &[u8],
    record_key: impl Fn(Digest) -> Vec<u8>,
    what: &str,
) -> Result<Vec<T>, StoreError> {
    view.scan_prefix(prefix)?
        .into_iter()
        .map(|(k, _)| require(view, &record_key(index_id(&k)), what))
        .collect()
}

/// The id an index key ends with.
fn index_id(key: &[u8]) -> Digest {
    let mut id = [0u8; 32];
    id.copy_from_slice(&key[key.len() - 32..]);
    Digest(id)
}

fn attestations_under<V: StateView + ?Sized>(
    view: &V,
    prefix: &[u8],
) -> Result<Vec<AttestationRecord>, StoreError> {
    let mut out: Vec<AttestationRecord> = view
        .scan_prefix(prefix)?
        .into_iter()
        .map(|(k, _)| {
            let id = index_id(&k);
            attestation(view, &AttestationId(id))?.ok_or_else(|| StoreError {
                message: "indexed attestation missing from the state".into(),
            })
        })
        .collect::<Result<_, _>>()?;
    out.sort_by_key(|r| (r.location.height, r.location.index));
    Ok(out)
}

/// An enterprise's attestations, in issue order.
pub fn attestations_by_subject<V: StateView + ?Sized>(
    view: &V,
    uscc: &Uscc,
) -> Result<Vec<AttestationRecord>, StoreError> {
    attestations_under(view, &keys::by_subject_prefix(uscc))
}

/// The attestations of a file digest, in issue order.
pub fn attestations_by_digest<V: StateView + ?Sized>(
    view: &V,
    digest: &Digest,
) -> Result<Vec<AttestationRecord>, StoreError> {
    attestations_under(view, &keys::by_digest_prefix(digest))
}

/// A grant.
pub fn grant<V: StateView + ?Sized>(
    view: &V,
    id: &GrantId,
) -> Result<Option<GrantRecord>, StoreError> {
    read(view, &keys::grant(id))
}

fn grants_under<V: StateView + ?Sized>(
    view: &V,
    prefix: &[u8],
) -> Result<Vec<GrantRecord>, StoreError> {
    let mut out: Vec<GrantRecord> =
        indexed(view, prefix, |d| keys::grant(&GrantId(d)), "indexed grant")?;
    out.sort_by_key(|g| (g.granted_at, g.id));
    Ok(out)
}

/// Every grant an enterprise made, oldest first.
pub fn grants_by_enterprise<V: StateView + ?Sized>(
    view: &V,
    uscc: &Uscc,
) -> Result<Vec<GrantRecord>, StoreError> {
    grants_under(view, &keys::grants_by_enterprise_prefix(uscc))
}

/// Every grant to a grantee, oldest first.
pub fn grants_to<V: StateView + ?Sized>(
    view: &V,
    grantee: &Grantee,
) -> Result<Vec<GrantRecord>, StoreError> {
    grants_under(view, &keys::grants_by_grantee_prefix(grantee))
}

/// Whether `grant` lets `reader` read `attestation`'s document at `at` (for `purpose`, if given).
pub fn check_access(
    grant: &GrantRecord,
    reader: &Grantee,
    attestation: &AttestationRecord,
    purpose: Option<&str>,
    at: Timestamp,
) -> Result<(), AccessRefusal> {
    let g = &grant.grant;
    if &g.grantee != reader {
        return Err(AccessRefusal::WrongGrantee);
    }
    let in_scope = g.enterprise == attestation.attestation.subject
        && match &g.scope {
            GrantScope::DocumentTypes(types) => types.contains(&attestation.attestation.doc_type),
            GrantScope::Attestations(ids) => ids.contains(&attestation.id),
        };
    if !in_scope {
        return Err(AccessRefusal::OutOfScope);
    }
    if let Some(p) = purpose {
        if g.purpose.code.as_str() != p {
            return Err(AccessRefusal::OtherPurpose {
                granted: g.purpose.code.to_string(),
                requested: p.to_string(),
            });
        }
    }
    if at < grant.granted_at {
        return Err(AccessRefusal::NotYetInForce);
    }
    if let Some(w) = grant.withdrawn_at {
        if w <= at {
            return Err(AccessRefusal::Withdrawn { withdrawn_at: w });
        }
    }
    if g.expires_at <= at {
        return Err(AccessRefusal::Expired {
            expired_at: g.expires_at,
        });
    }
    Ok(())
}

/// The grant under which `reader` may read `attestation`'s document at `at`, or the most specific
/// reason why none permits it.
pub fn find_grant<V: StateView + ?Sized>(
    view: &V,
    reader: &Grantee,
    attestation: &AttestationRecord,
    purpose: Option<&str>,
    at: Timestamp,
) -> Result<Result<GrantRecord, AccessRefusal>, StoreError> {
    let candidates: Vec<GrantRecord> = grants_to(view, reader)?
        .into_iter()
        .filter(|g| g.grant.enterprise == attestation.attestation.subject)
        .collect();
    if candidates.is_empty() {
        return Ok(Err(AccessRefusal::NoGrant));
    }
    // Rank refusals: a grant that covers the document but lapsed says more than one for another
    // purpose, which says more than one for other documents.
    let rank = |r: &AccessRefusal| match r {
        AccessRefusal::Withdrawn { .. } | AccessRefusal::Expired { .. } => 3,
        AccessRefusal::NotYetInForce => 2,
        AccessRefusal::OtherPurpose { .. } => 1,
        _ => 0,
    };
    let mut best: Option<AccessRefusal> = None;
    for g in candidates.into_iter().rev() {
        match check_access(&g, reader, attestation, purpose, at) {
            Ok(()) => return Ok(Ok(g)),
            Err(r) => {
                if best.as_ref().is_none_or(|b| rank(&r) > rank(b)) {
                    best = Some(r);
                }
            }
        }
    }
    Ok(Err(best.unwrap_or(AccessRefusal::NoGrant)))
}

/// The grants in force for `grantee` over `attestation` at `at`.
pub fn grants_in_force<V: StateView + ?Sized>(
    view: &V,
    grantee: &Grantee,
    attestation: &AttestationRecord,
    at: Timestamp,
) -> Result<Vec<GrantRecord>, StoreError> {
    Ok(grants_to(view, grantee)?
        .into_iter()
        .filter(|g| check_access(g, grantee, attestation, None, at).is_ok())
        .collect())
}

/// An access receipt.
pub fn receipt<V: StateView + ?Sized>(
    view: &V,
    id: &ReceiptId,
) -> Result<Option<ReceiptRecord>, StoreError> {
    read(view, &keys::receipt(id))
}

/// Every read of an enterprise's documents, oldest first.
pub fn receipts_by_enterprise<V: StateView + ?Sized>(
    view: &V,
    uscc: &Uscc,
) -> Result<Vec<ReceiptRecord>, StoreError> {
    indexed(
        view,
        &keys::receipts_by_enterprise_prefix(uscc),
        |d| keys::receipt(&ReceiptId(d)),
        "indexed receipt",
    )
}

// ---------------------------------------------------------------------------------------------
// Genesis
// ---------------------------------------------------------------------------------------------

/// The state at height 0.
pub fn genesis_state(genesis: &Genesis) -> StateDelta {
    let suite = genesis.suite;
    let gov = genesis.governance();
    let frontier = Frontier::new();
    let hasher = log_hasher(suite);
    let hash = genesis.hash();
    let mut writes = BTreeMap::new();
    writes.insert(keys::GOVERNANCE.to_vec(), Some(gov.encode()));
    writes.insert(keys::LOG.to_vec(), Some(frontier.encode()));
    let state_root = suite.hash(Domain::State, &[b"genesis", &hash.0 .0]);
    let (status_root, tree) = crate::status::update(
        &MemoryState::default(),
        suite,
        0,
        vec![(crate::status::governance_key(suite), gov.encode())],
    )
    .unwrap_or_else(|_| (Digest(crate::status::EMPTY_SUBTREE), Vec::new()));
    writes.extend(tree);
    let head = ChainHead {
        height: 0,
        hash,
        time: genesis.genesis_time,
        log_size: 0,
        log_root: Digest(frontier.root_with(&hasher)),
        state_root,
        status_root,
    };
    writes.insert(keys::HEAD.to_vec(), Some(head.encode()));
    writes.insert(keys::STATE_ROOT.to_vec(), Some(state_root.0.to_vec()));
    StateDelta { writes }
}

/// The Merkle-log hasher of a crypto suite.
pub fn log_hasher(suite: CryptoSuite) -> impl LogHasher {
    match suite {
        CryptoSuite::Ed25519Sha256 => Sha256LogHasher,
    }
}

// ---------------------------------------------------------------------------------------------
// Transactions
// ---------------------------------------------------------------------------------------------

/// Where in the chain a transaction is being applied.
#[derive(Debug, Clone, Copy)]
pub struct TxContext {
    /// Block height.
    pub height: u64,
    /// Block time: every time rule is judged against it.
    pub time: Timestamp,
    /// Index within the block.
    pub index: u32,
    /// Index of its leaf in the log.
    pub log_index: u64,
}

/// Applies one transaction on top of `state`: all its writes, or — if any rule fails — none.
pub fn apply_transaction<V: StateView + ?Sized>(
    state: &mut Overlay<'_, V>,
    ctx: &TxContext,
    tx: &VerifiedTx,
) -> Result<(), ApplyError> {
    let gov = governance(&*state)?;
    apply_transaction_under(state, ctx, tx, &gov)
}

/// As [`apply_transaction`], with `gov` the governance state in `state` (decoded once per block
/// by the caller, and again after each governance transaction).
fn apply_transaction_under<V: StateView + ?Sized>(
    state: &mut Overlay<'_, V>,
    ctx: &TxContext,
    tx: &VerifiedTx,
    gov: &Governance,
) -> Result<(), ApplyError> {
    let writes = {
        let mut o = Overlay::new(&*state);
        Rules {
            o: &mut o,
            ctx: *ctx,
            tx,
            gov: std::borrow::Cow::Borrowed(gov),
        }
        .apply()?;
        o.writes
    };
    state.writes.extend(writes);
    Ok(())
}

/// Applies the transactions of a block in order, keeping the decoded governance state current.
struct Applier {
    gov: Governance,
}

impl Applier {
    fn new<V: StateView + ?Sized>(view: &V) -> Result<Self, StoreError> {
        Ok(Applier {
            gov: governance(view)?,
        })
    }

    fn apply<V: StateView + ?Sized>(
        &mut self,
        state: &mut Overlay<'_, V>,
        ctx: &TxContext,
        tx: &VerifiedTx,
    ) -> Result<(), ApplyError> {
        apply_transaction_under(state, ctx, tx, &self.gov)?;
        if matches!(tx.tx().body, TxBody::Governance(_)) {
            self.gov = governance(&*state)?;
        }
        Ok(())
    }
}

struct Rules<'o, 'a, 'g, V: StateView + ?Sized> {
    o: &'o mut Overlay<'a, V>,
    ctx: TxContext,
    tx: &'o VerifiedTx,
    gov: std::borrow::Cow<'g, Governance>,
}

fn invalid(field: &'static str, reason: impl Into<String>) -> TxError {
    TxError::InvalidField {
        field,
        reason: reason.into(),
    }
}

impl<V: StateView + ?Sized> Rules<'_, '_, '_, V> {
    fn now(&self) -> Timestamp {
        self.ctx.time
    }

    /// A document type of the governance state being changed.
    fn doc_type_mut(
        &mut self,
        doc_type: &DocTypeCode,
    ) -> Result<&mut crate::governance::DocumentTypeRecord, TxError> {
        self.gov
            .to_mut()
            .document_types
            .get_mut(doc_type)
            .ok_or_else(|| TxError::UnknownDocumentType {
                doc_type: doc_type.clone(),
            })
    }

    fn apply(mut self) -> Result<(), ApplyError> {
        self.check_envelope()?;
        match &self.tx.tx().body {
            TxBody::Governance(action) => self.governance(action)?,
            TxBody::EnrolEnterprise(e) => self.enrol(e)?,
            TxBody::RotateEnterpriseKey(r) => self.rotate_enterprise_key(r)?,
            TxBody::IssueAttestation(a) => self.issue(a)?,
            TxBody::SetStatus(s) => self.set_status(s)?,
            TxBody::Grant(g) => self.grant(g)?,
            TxBody::WithdrawGrant(w) => self.withdraw_grant(w)?,
            TxBody::RecordAccess(r) => self.record_access(r)?,
        }
        // An issuance is found through its attestation's record (see [`tx_location`]).
        if !matches!(self.tx.tx().body, TxBody::IssueAttestation(_)) {
            let location = self.location();
            self.o.put_record(keys::tx(&self.tx.id()), &location);
        }
        Ok(())
    }

    fn location(&self) -> TxLocation {
        TxLocation {
            height: self.ctx.height,
            index: self.ctx.index,
            log_index: self.ctx.log_index,
            time: self.ctx.time,
        }
    }

    /// Rule: right chain, made within the accepted window, not already on the ledger.
    fn check_envelope(&self) -> Result<(), ApplyError> {
        let tx = self.tx.tx();
        if tx.chain_id != self.gov.chain_id {
            return Err(TxError::WrongChain {
                expected: self.gov.chain_id.to_string(),
                found: tx.chain_id.to_string(),
            }
            .into());
        }
        let oldest = self.now().minus(self.gov.params.max_tx_age_ms);
        if tx.created_at < oldest {
            return Err(TxError::Stale {
                created_at: tx.created_at,
                oldest,
            }
            .into());
        }
        let latest = self.now().plus(self.gov.params.max_clock_skew_ms);
        if tx.created_at > latest {
            return Err(TxError::FromTheFuture {
                created_at: tx.created_at,
                latest,
            }
            .into());
        }
        let id = self.tx.id();
        if self.o.get(&keys::tx(&id))?.is_some()
            || self
                .o
                .get(&keys::attestation(&AttestationId(id.0)))?
                .is_some()
        {
            return Err(TxError::Duplicate { tx: self.tx.id() }.into());
        }
        Ok(())
    }

    fn signers(&self) -> Vec<PublicKey> {
        self.tx.signers().copied().collect()
    }

    /// Rule: signed by exactly one key, a signing key of `department` in force now, and the
    /// department is a current member.
    fn require_department(&self, department: &DepartmentId) -> Result<&DepartmentRecord, TxError> {
        let d = self
            .gov
            .member(department)
            .filter(|d| d.is_member_at(self.now()))
            .ok_or_else(|| TxError::NotMember {
                department: department.clone(),
            })?;
        let signers = self.signers();
        if signers.len() != 1 || !d.signing_key_valid_at(&signers[0], self.now()) {
            return Err(TxError::WrongSigner {
                expected: format!("a current signing key of {department}"),
                found: signers,
            });
        }
        Ok(d)
    }

    /// Rule: signed by exactly one key, the enterprise's current key.
    fn require_enterprise(&self, uscc: &Uscc) -> Result<EnterpriseRecord, ApplyError> {
        let e = enterprise(&*self.o, uscc)?.ok_or(TxError::NotEnrolled { enterprise: *uscc })?;
        let signers = self.signers();
        if signers.len() != 1 || e.current_key() != Some(&signers[0]) {
            return Err(TxError::WrongSigner {
                expected: format!("the current key of enterprise {uscc}"),
                found: signers,
            }
            .into());
        }
        Ok(e)
    }

    // --- governance ----------------------------------------------------------------------

    /// Rule: more than two thirds of the current members sign, each with a signing key in force.
    fn require_quorum(&self) -> Result<(), TxError> {
        let now = self.now();
        let members: Vec<&DepartmentRecord> = self.gov.members_at(now).collect();
        let mut signed: Vec<&DepartmentId> = Vec::new();
        for key in self.tx.signers() {
            let d = members
                .iter()
                .find(|d| d.signing_key_valid_at(key, now))
                .ok_or(TxError::UnknownGovernanceSigner { signer: *key })?;
            if !signed.contains(&&d.id) {
                signed.push(&d.id);
            }
        }
        let required = Governance::quorum(members.len());
        if signed.len() < required {
            return Err(TxError::InsufficientQuorum {
                signed: signed.len(),
                required,
                members: members.len(),
            });
        }
        Ok(())
    }

    /// Whether any department, current or former, has ever used `key`: keys are never reused.
    fn key_ever_used(&self, key: &PublicKey) -> bool {
        self.gov.departments.values().any(|d| {
            d.signing_keys
                .iter()
                .chain(d.node_keys.iter())
                .any(|p| &p.key == key)
        })
    }

    fn governance(&mut self, action: &GovernanceAction) -> Result<(), ApplyError> {
        self.require_quorum()?;
        let now = self.now();
        match action {
            GovernanceAction::AdmitDepartment {
                department,
                name,
                signing_key,
                node_key,
            } => {
                if self.gov.departments.contains_key(department) {
                    return Err(TxError::DepartmentExists {
                        department: department.clone(),
                    }
                    .into());
                }
                if signing_key == node_key {
                    return Err(invalid("node_key", "must differ from the signing key").into());
                }
                for k in [signing_key, node_key] {
                    if self.key_ever_used(k) {
                        return Err(TxError::KeyInUse { key: *k }.into());
                    }
                }
                let period = |key: &PublicKey| KeyPeriod {
                    key: *key,
                    from: now,
                    until: None,
                };
                self.gov.to_mut().departments.insert(
                    department.clone(),
                    DepartmentRecord {
                        id: department.clone(),
                        name: name.clone(),
                        signing_keys: vec![period(signing_key)],
                        node_keys: vec![period(node_key)],
                        admitted_at: now,
                        removed_at: None,
                    },
                );
            }
            GovernanceAction::RemoveDepartment { department } => {
                if self.gov.member(department).is_none() {
                    return Err(TxError::NotMember {
                        department: department.clone(),
                    }
                    .into());
                }
                if self.gov.current_members().count() <= 1 {
                    return Err(TxError::LastMember.into());
                }
                if let Some(d) = self.gov.to_mut().departments.get_mut(department) {
                    d.removed_at = Some(now);
                }
                // Periods close just after the block's instant, so that what the department did
                // earlier in this block stays valid.
                for t in self.gov.to_mut().document_types.values_mut() {
                    for p in t.issuers.iter_mut() {
                        if &p.department == department && p.until.is_none() {
                            p.until = Some(now.plus(1));
                        }
                    }
                }
            }
            GovernanceAction::DefineDocumentType(def) => {
                if self.gov.document_types.contains_key(&def.code) {
                    return Err(TxError::DocumentTypeExists {
                        doc_type: def.code.clone(),
                    }
                    .into());
                }
                if def.max_validity_days == Some(0) {
                    return Err(invalid("max_validity_days", "must be at least 1 when set").into());
                }
                self.gov.to_mut().document_types.insert(
                    def.code.clone(),
                    DocumentTypeRecord {
                        definition: def.clone(),
                        issuers: Vec::new(),
                    },
                );
            }
            GovernanceAction::AuthoriseIssuer {
                department,
                doc_type,
            } => {
                if self.gov.member(department).is_none() {
                    return Err(TxError::NotMember {
                        department: department.clone(),
                    }
                    .into());
                }
                let t = self.doc_type_mut(doc_type)?;
                if t.currently_authorised(department) {
                    return Err(TxError::AlreadyAuthorised {
                        department: department.clone(),
                        doc_type: doc_type.clone(),
                    }
                    .into());
                }
                t.issuers.push(IssuerPeriod {
                    department: department.clone(),
                    from: now,
                    until: None,
                });
            }
            GovernanceAction::WithdrawIssuer {
                department,
                doc_type,
            } => {
                let t = self.doc_type_mut(doc_type)?;
                let open = t
                    .issuers
                    .iter_mut()
                    .find(|p| &p.department == department && p.until.is_none())
                    .ok_or_else(|| TxError::NotAuthorised {
                        department: department.clone(),
                        doc_type: doc_type.clone(),
                    })?;
                // Closes just after the block's instant: issues earlier in this block stay
                // authorised; later ones are refused because no period is open any more.
                open.until = Some(now.plus(1));
            }
            GovernanceAction::RotateDepartmentKeys {
                department,
                signing_key,
                node_key,
                previous_valid_until,
            } => {
                if self.gov.member(department).is_none() {
                    return Err(TxError::NotMember {
                        department: department.clone(),
                    }
                    .into());
                }
                let latest = now.plus(self.gov.params.max_key_overlap_ms);
                if *previous_valid_until <= now || *previous_valid_until > latest {
                    return Err(TxError::InvalidOverlap {
                        earliest: now.plus(1),
                        latest,
                        found: *previous_valid_until,
                    }
                    .into());
                }
                if signing_key == node_key {
                    return Err(invalid("node_key", "must differ from the signing key").into());
                }
                for k in [signing_key, node_key] {
                    if self.key_ever_used(k) {
                        return Err(TxError::KeyInUse { key: *k }.into());
                    }
                }
                if let Some(d) = self.gov.to_mut().departments.get_mut(department) {
                    for (keys, new) in [
                        (&mut d.signing_keys, signing_key),
                        (&mut d.node_keys, node_key),
                    ] {
                        for p in keys.iter_mut() {
                            if p.until.is_none_or(|u| u > *previous_valid_until) {
                                p.until = Some(*previous_valid_until);
                            }
                        }
                        keys.push(KeyPeriod {
                            key: *new,
                            from: now,
                            until: None,
                        });
                    }
                }
            }
        }
        let gov = self.gov.clone().into_owned();
        self.o.put_record(keys::GOVERNANCE.to_vec(), &gov);
        Ok(())
    }

    // --- enterprises ---------------------------------------------------------------------

    fn enrol(&mut self, e: &Enrolment) -> Result<(), ApplyError> {
        self.require_department(&e.department)?;
        if enterprise(&*self.o, &e.enterprise)?.is_some() {
            return Err(TxError::AlreadyEnrolled {
                enterprise: e.enterprise,
            }
            .into());
        }
        let record = EnterpriseRecord {
            uscc: e.enterprise,
            keys: vec![KeyPeriod {
                key: e.key,
                from: self.now(),
                until: None,
            }],
            enrolled_by: e.department.clone(),
            enrolled_at: self.now(),
        };
        self.o.put_record(keys::enterprise(&e.enterprise), &record);
        Ok(())
    }

    fn rotate_enterprise_key(&mut self, r: &EnterpriseKeyRotation) -> Result<(), ApplyError> {
        let mut e = self.require_enterprise(&r.enterprise)?;
        if e.keys.len() >= MAX_ENTERPRISE_KEYS {
            return Err(invalid(
                "new_key",
                format!("an enterprise can rotate its key at most {MAX_ENTERPRISE_KEYS} times"),
            )
            .into());
        }
        if e.keys.iter().any(|p| p.key == r.new_key) {
            return Err(TxError::KeyInUse { key: r.new_key }.into());
        }
        let now = self.now();
        if let Some(last) = e.keys.last_mut() {
            last.until = Some(now);
        }
        e.keys.push(KeyPeriod {
            key: r.new_key,
            from: now,
            until: None,
        });
        self.o.put_record(keys::enterprise(&r.enterprise), &e);
        Ok(())
    }

    // --- attestations --------------------------------------------------------------------

    fn issue(&mut self, a: &Attestation) -> Result<(), ApplyError> {
        let now = self.now();
        self.require_department(&a.issuer)?;
        let doc_type = self.gov.document_types.get(&a.doc_type).ok_or_else(|| {
            TxError::UnknownDocumentType {
                doc_type: a.doc_type.clone(),
            }
        })?;
        if !doc_type.issuer_authorised_at(&a.issuer, now)
            || !doc_type.currently_authorised(&a.issuer)
        {
            return Err(TxError::NotAuthorised {
                department: a.issuer.clone(),
                doc_type: a.doc_type.clone(),
            }
            .into());
        }
        if enterprise(&*self.o, &a.subject)?.is_none() {
            return Err(TxError::NotEnrolled {
                enterprise: a.subject,
            }
            .into());
        }
        if !a.claims.windows(2).all(|w| w[0].key < w[1].key) {
            return Err(invalid("claims", "keys must be unique and in increasing order").into());
        }
        match a.valid_until {
            Some(until) => {
                if until <= a.valid_from {
                    return Err(invalid("valid_until", "must be after valid_from").into());
                }
                if let Some(days) = doc_type.definition.max_validity_days {
                    if until.0 - a.valid_from.0 > u64::from(days) * DAY_MS {
                        return Err(invalid(
                            "valid_until",
                            format!("{} allows at most {days} days of validity", a.doc_type),
                        )
                        .into());
                    }
                }
            }
            None => {
                if doc_type.definition.requires_expiry {
                    return Err(invalid(
                        "valid_until",
                        format!("{} attestations must have an end of validity", a.doc_type),
                    )
                    .into());
                }
            }
        }
        let id = AttestationId(self.tx.id().0);
        // At most one attestation of a file and type is live (its key in the live index); only
        // its own new version may be issued over it. The entry holds no id: the attestation it
        // stands for is the one live attestation among the file's, found on the rare refusal.
        let live_key = keys::live(&a.file_digest, &a.doc_type);
        let superseded = match a.supersedes {
            Some(old_id) => attestation(&*self.o, &old_id)?,
            None => None,
        };
        if self.o.get(&live_key)?.is_some() {
            let is_live_here = |r: &AttestationRecord| {
                r.attestation.file_digest == a.file_digest
                    && r.attestation.doc_type == a.doc_type
                    && r.status != Status::Revoked
                    && r.superseded_by.is_none()
            };
            if !superseded.as_ref().is_some_and(is_live_here) {
                let existing = attestations_by_digest(&*self.o, &a.file_digest)?
                    .into_iter()
                    .find(is_live_here)
                    .map(|r| r.id)
                    .ok_or_else(|| StoreError {
                        message: format!(
                            "the live index names {} of type {} but no attestation of it is live",
                            a.file_digest, a.doc_type
                        ),
                    })?;
                return Err(TxError::DigestAlreadyLive {
                    file_digest: a.file_digest,
                    doc_type: a.doc_type.clone(),
                    existing,
                }
                .into());
            }
        }
        if let Some(old_id) = a.supersedes {
            let mut old = superseded.ok_or(TxError::UnknownAttestation {
                attestation: old_id,
            })?;
            let reason = if old.attestation.subject != a.subject {
                Some("it is about another enterprise")
            } else if old.attestation.doc_type != a.doc_type {
                Some("it is of another document type")
            } else if old.attestation.issuer != a.issuer {
                Some("it was issued by another department")
            } else if old.status == Status::Revoked {
                Some("it is revoked; issue a new attestation instead")
            } else {
                None
            };
            if let Some(reason) = reason {
                return Err(TxError::InvalidSupersession {
                    attestation: old_id,
                    reason,
                }
                .into());
            }
            if let Some(by) = old.superseded_by {
                return Err(TxError::AlreadySuperseded {
                    attestation: old_id,
                    by,
                }
                .into());
            }
            old.superseded_by = Some(id);
            old.superseded_at = Some(now);
            let old_live = keys::live(&old.attestation.file_digest, &old.attestation.doc_type);
            self.o.delete(old_live);
            self.o.put_attestation(&old);
        }
        let record = AttestationRecord {
            id,
            attestation: a.clone(),
            issued_at: now,
            location: self.location(),
            status: Status::Active,
            history: Vec::new(),
            superseded_by: None,
            superseded_at: None,
        };
        self.o.put_attestation(&record);
        self.o.put(live_key, Vec::new());
        self.o.put(keys::by_subject(&a.subject, &id), Vec::new());
        self.o.put(keys::by_digest(&a.file_digest, &id), Vec::new());
        Ok(())
    }

    fn set_status(&mut self, s: &StatusChange) -> Result<(), ApplyError> {
        self.require_department(&s.department)?;
        let mut rec =
            attestation(&*self.o, &s.attestation)?.ok_or(TxError::UnknownAttestation {
                attestation: s.attestation,
            })?;
        if rec.attestation.issuer != s.department {
            return Err(TxError::NotIssuer {
                department: s.department.clone(),
                attestation: s.attestation,
                issuer: rec.attestation.issuer.clone(),
            }
            .into());
        }
        if let (Some(by), StatusAction::Suspend | StatusAction::Reinstate) =
            (rec.superseded_by, s.action)
        {
            return Err(TxError::AlreadySuperseded {
                attestation: s.attestation,
                by,
            }
            .into());
        }
        let room = match s.action {
            StatusAction::Revoke => MAX_STATUS_EVENTS,
            _ => MAX_STATUS_EVENTS - 1,
        };
        if rec.history.len() >= room {
            return Err(invalid(
                "action",
                format!("the attestation's status history is full ({MAX_STATUS_EVENTS} changes); only a revocation is possible"),
            )
            .into());
        }
        let next = match (rec.status, s.action) {
            (Status::Active, StatusAction::Suspend) => Status::Suspended,
            (Status::Suspended, StatusAction::Reinstate) => Status::Active,
            (Status::Active | Status::Suspended, StatusAction::Revoke) => Status::Revoked,
            (from, action) => return Err(TxError::InvalidTransition { from, action }.into()),
        };
        if next == Status::Revoked && rec.superseded_by.is_none() {
            self.o.delete(keys::live(
                &rec.attestation.file_digest,
                &rec.attestation.doc_type,
            ));
        }
        rec.status = next;
        rec.history.push(StatusEvent {
            action: s.action,
            status: next,
            reason_code: s.reason_code,
            note: s.note.clone(),
            at: self.now(),
            height: self.ctx.height,
            tx: self.tx.id(),
        });
        self.o.put_attestation(&rec);
        Ok(())
    }

    // --- grants and receipts -------------------------------------------------------------

    fn grant(&mut self, g: &Grant) -> Result<(), ApplyError> {
        self.require_enterprise(&g.enterprise)?;
        let now = self.now();
        if g.expires_at <= now {
            return Err(invalid(
                "expires_at",
                format!("{} is not in the future", g.expires_at),
            )
            .into());
        }
        if g.expires_at.0 - now.0 > self.gov.params.max_grant_duration_ms {
            return Err(invalid(
                "expires_at",
                format!(
                    "a grant may run at most {} days",
                    self.gov.params.max_grant_duration_ms / DAY_MS
                ),
            )
            .into());
        }
        if let Grantee::Department(d) = &g.grantee {
            if self.gov.member(d).is_none() {
                return Err(TxError::UnknownGrantee {
                    department: d.clone(),
                }
                .into());
            }
        }
        if g.purpose.code.is_empty() {
            return Err(invalid("purpose.code", "must not be empty").into());
        }
        match &g.scope {
            GrantScope::DocumentTypes(types) => {
                if types.is_empty() || !types.is_strictly_sorted() {
                    return Err(invalid("scope", "must be non-empty, unique and sorted").into());
                }
                for t in types {
                    if !self.gov.document_types.contains_key(t) {
                        return Err(TxError::UnknownDocumentType {
                            doc_type: t.clone(),
                        }
                        .into());
                    }
                }
            }
            GrantScope::Attestations(ids) => {
                if ids.is_empty() || !ids.is_strictly_sorted() {
                    return Err(invalid("scope", "must be non-empty, unique and sorted").into());
                }
                for id in ids {
                    let rec = attestation(&*self.o, id)?
                        .ok_or(TxError::UnknownAttestation { attestation: *id })?;
                    if rec.attestation.subject != g.enterprise {
                        return Err(TxError::ForeignAttestation { attestation: *id }.into());
                    }
                }
            }
        }
        let id = GrantId(self.tx.id().0);
        let record = GrantRecord {
            id,
            grant: g.clone(),
            granted_at: now,
            height: self.ctx.height,
            withdrawn_at: None,
        };
        self.o.put_record(keys::grant(&id), &record);
        self.o
            .put(keys::grant_by_grantee(&g.grantee, &id), Vec::new());
        self.o
            .put(keys::grant_by_enterprise(&g.enterprise, &id), Vec::new());
        Ok(())
    }

    fn withdraw_grant(&mut self, w: &GrantWithdrawal) -> Result<(), ApplyError> {
        // The signature first, so that nobody else can probe which grants an enterprise made.
        self.require_enterprise(&w.enterprise)?;
        let mut rec = grant(&*self.o, &w.grant)?.ok_or(TxError::UnknownGrant { grant: w.grant })?;
        if rec.grant.enterprise != w.enterprise {
            return Err(TxError::GrantNotOwned { grant: w.grant }.into());
        }
        if rec.withdrawn_at.is_some() {
            return Err(TxError::GrantAlreadyWithdrawn { grant: w.grant }.into());
        }
        // In force through the block's instant: reads recorded earlier in this block stay
        // permitted.
        rec.withdrawn_at = Some(self.now().plus(1));
        self.o.put_record(keys::grant(&w.grant), &rec);
        Ok(())
    }

    fn record_access(&mut self, r: &AccessReceipts) -> Result<(), ApplyError> {
        self.require_department(&r.recorder)?;
        if r.reads.is_empty() {
            return Err(invalid("reads", "must not be empty").into());
        }
        let now = self.now();
        // A read cannot be later than the block recording it (or it could postdate a withdrawal
        // committed in the next block).
        let latest = now;
        let oldest = now.minus(self.gov.params.max_tx_age_ms);
        for (index, read) in r.reads.iter().enumerate() {
            if let Grantee::Department(d) = &read.reader {
                if d != &r.recorder {
                    return Err(invalid(
                        "reader",
                        format!(
                            "read {index}: a department's reads are recorded by that department"
                        ),
                    )
                    .into());
                }
            }
            if read.read_at > latest || read.read_at < oldest {
                return Err(invalid(
                    "read_at",
                    format!(
                        "read {index}: {} is outside [{oldest}, {latest}]",
                        read.read_at
                    ),
                )
                .into());
            }
            let rec =
                attestation(&*self.o, &read.attestation)?.ok_or(TxError::UnknownAttestation {
                    attestation: read.attestation,
                })?;
            let g =
                grant(&*self.o, &read.grant)?.ok_or(TxError::UnknownGrant { grant: read.grant })?;
            check_access(&g, &read.reader, &rec, None, read.read_at)
                .map_err(|refusal| TxError::ReadNotPermitted { index, refusal })?;
            let id = receipt_id(self.gov.suite, self.tx.id(), index as u32);
            let record = ReceiptRecord {
                id,
                read: read.clone(),
                enterprise: rec.attestation.subject,
                doc_type: rec.attestation.doc_type.clone(),
                purpose_code: g.grant.purpose.code.to_string(),
                purpose_text: g.grant.purpose.text.to_string(),
                recorder: r.recorder.clone(),
                recorded_at: now,
                height: self.ctx.height,
                tx: self.tx.id(),
            };
            self.o.put_record(keys::receipt(&id), &record);
            self.o.put(
                keys::receipt_by_enterprise(&rec.attestation.subject, read.read_at, &id),
                Vec::new(),
            );
        }
        Ok(())
    }
}

fn log_full(e: crate::merkle::MerkleError) -> StoreError {
    StoreError {
        message: format!("the Merkle log cannot grow: {e}"),
    }
}

// ---------------------------------------------------------------------------------------------
// Blocks
// ---------------------------------------------------------------------------------------------

/// What applying a block produced.
#[derive(Debug, Clone)]
pub struct BlockOutcome {
    /// Every write, including the new head.
    pub delta: StateDelta,
    /// The new head.
    pub head: ChainHead,
    /// The Merkle-log leaf hash of each transaction, in order (for the node's log store).
    pub leaf_hashes: Vec<Digest>,
}

/// Checks every signature of a block's transactions, in batches over the machine's cores; the
/// error, if any, is the one of the lowest-indexed bad transaction, as if checked in order.
pub fn verify_transactions(
    suite: CryptoSuite,
    block: &Block,
) -> Result<Vec<VerifiedTx>, BlockError> {
    let txs: Vec<&crate::tx::SignedTransaction> = block.transactions.iter().collect();
    verify_all(suite, &txs)
}

/// Checks every signature of `txs` (batch verification, over the machine's cores when there are
/// many); the error names the lowest index (into `txs`) whose signatures fail.
pub fn verify_all(
    suite: CryptoSuite,
    txs: &[&crate::tx::SignedTransaction],
) -> Result<Vec<VerifiedTx>, BlockError> {
    let owned: Vec<crate::tx::SignedTransaction> = txs.iter().map(|t| (*t).clone()).collect();
    crate::tx::SignedTransaction::verify_many(suite, owned)
        .into_iter()
        .enumerate()
        .map(|(index, r)| r.map_err(|error| BlockError::BadEndorsement { index, error }))
        .collect()
}

/// Applies a block: checks its signatures, header and every transaction, and returns its writes.
pub fn apply_block<V: StateView + ?Sized>(
    view: &V,
    block: &Block,
) -> Result<BlockOutcome, BlockError> {
    let suite = governance(view)?.suite;
    let txs = verify_transactions(suite, block)?;
    apply_verified_block(view, &block.header, &txs)
}

/// Applies a block whose transactions' signatures were already verified (e.g. on entry to the
/// node's pool).
pub fn apply_verified_block<V: StateView + ?Sized>(
    view: &V,
    header: &BlockHeader,
    txs: &[VerifiedTx],
) -> Result<BlockOutcome, BlockError> {
    let parent = head(view)?;
    let gov = governance(view)?;
    if header.height != parent.height + 1 {
        return Err(BlockError::WrongHeight {
            expected_parent_height: parent.height,
            found: header.height,
        });
    }
    if header.parent != parent.hash {
        return Err(BlockError::WrongParent {
            expected: parent.hash,
            found: header.parent,
        });
    }
    if header.time <= parent.time {
        return Err(BlockError::TimeNotIncreasing {
            parent: parent.time,
            found: header.time,
        });
    }
    if gov.member(&header.proposer).is_none() {
        return Err(BlockError::UnknownProposer {
            proposer: header.proposer.clone(),
        });
    }
    if txs.len() > gov.params.max_block_transactions as usize {
        return Err(BlockError::TooManyTransactions {
            count: txs.len(),
            max: gov.params.max_block_transactions,
        });
    }
    let bytes: usize = txs.iter().map(|t| t.signed().encode().len()).sum();
    if bytes > MAX_BLOCK_BYTES {
        return Err(BlockError::TooLarge {
            bytes,
            max: MAX_BLOCK_BYTES,
        });
    }
    let ids: Vec<TxId> = txs.iter().map(|t| t.id()).collect();
    if header.tx_count as usize != txs.len() || header.txs_digest != txs_digest(gov.suite, &ids) {
        return Err(BlockError::TransactionsMismatch);
    }
    let mut overlay = Overlay::new(view);
    let (leaf_hashes, frontier) =
        execute(&mut overlay, &gov, &parent, header.height, header.time, txs).map_err(
            |(index, e)| match e {
                ApplyError::Rejected(error) => BlockError::Transaction {
                    index,
                    tx: ids[index],
                    error,
                },
                ApplyError::Store(s) => BlockError::Store(s),
            },
        )?;
    let hasher = log_hasher(gov.suite);
    if header.log_size != frontier.size() || header.log_root.0 != frontier.root_with(&hasher) {
        return Err(BlockError::LogMismatch);
    }
    let (delta, state_root, status_root) = finish(overlay, gov.suite, &parent, header.height)?;
    if header.state_root != state_root {
        return Err(BlockError::StateRootMismatch {
            expected: state_root,
            found: header.state_root,
        });
    }
    if header.status_root != status_root {
        return Err(BlockError::StatusRootMismatch {
            expected: status_root,
            found: header.status_root,
        });
    }
    Ok(seal(delta, header.hash(gov.suite), header, leaf_hashes))
}

/// Runs the transactions on the overlay, failing on the first rejected one.
fn execute<V: StateView + ?Sized>(
    overlay: &mut Overlay<'_, V>,
    gov: &Governance,
    parent: &ChainHead,
    height: u64,
    time: Timestamp,
    txs: &[VerifiedTx],
) -> Result<(Vec<Digest>, Frontier), (usize, ApplyError)> {
    let hasher = log_hasher(gov.suite);
    let mut frontier = log_frontier(&*overlay).map_err(|e| (0, e.into()))?;
    let mut leaf_hashes = Vec::with_capacity(txs.len());
    let mut applier = Applier::new(&*overlay).map_err(|e| (0, e.into()))?;
    for (i, tx) in txs.iter().enumerate() {
        let ctx = TxContext {
            height,
            time,
            index: i as u32,
            log_index: parent.log_size + i as u64,
        };
        applier.apply(overlay, &ctx, tx).map_err(|e| (i, e))?;
        let leaf = hasher.hash_leaf(&tx.signed().leaf_data());
        frontier
            .push_with(&hasher, leaf)
            .map_err(|e| (i, ApplyError::Store(log_full(e))))?;
        leaf_hashes.push(Digest(leaf));
    }
    overlay.put_record(keys::LOG.to_vec(), &frontier);
    Ok((leaf_hashes, frontier))
}

/// Updates the status tree with the attestations (and governance) the block changed, and computes
/// the state commitment over the block's writes. Returns the writes, the state root and the
/// status root.
fn finish<V: StateView + ?Sized>(
    mut overlay: Overlay<'_, V>,
    suite: CryptoSuite,
    parent: &ChainHead,
    height: u64,
) -> Result<(StateDelta, Digest, Digest), StoreError> {
    let mut changed = Vec::new();
    for (key, value) in &overlay.writes {
        let Some(value) = value else { continue };
        if keys::is_attestation(key) {
            let record = decode_attestation(key, value)?;
            changed.push((
                crate::status::attestation_key(&record.id),
                crate::status::StatusLeaf::of(&record).encode(),
            ));
        } else if key.as_slice() == keys::GOVERNANCE {
            changed.push((crate::status::governance_key(suite), value.clone()));
        }
    }
    let (status_root, tree) = crate::status::update(&overlay, suite, height, changed)?;
    overlay.writes.extend(tree);
    let delta = overlay.into_delta();
    let state_root = suite.hash(
        Domain::State,
        &[b"block", &parent.state_root.0, &delta.digest(suite).0],
    );
    Ok((delta, state_root, status_root))
}

fn seal(
    mut delta: StateDelta,
    hash: BlockHash,
    header: &BlockHeader,
    leaf_hashes: Vec<Digest>,
) -> BlockOutcome {
    let head = ChainHead {
        height: header.height,
        hash,
        time: header.time,
        log_size: header.log_size,
        log_root: header.log_root,
        state_root: header.state_root,
        status_root: header.status_root,
    };
    delta
        .writes
        .insert(keys::HEAD.to_vec(), Some(head.encode()));
    delta.writes.insert(
        keys::STATE_ROOT.to_vec(),
        Some(header.state_root.0.to_vec()),
    );
    BlockOutcome {
        delta,
        head,
        leaf_hashes,
    }
}

/// Runs candidate transactions, in order, against the state after the head as if in a block at
/// `time`, and returns those that break a rule (given the ones before them) with the rule. Nothing
/// is sealed: no log, no status tree, no commitment — this is the cheap check a node's pool makes
/// after each block to evict what can no longer be committed.
pub fn dry_run<V: StateView + ?Sized>(
    view: &V,
    time: Timestamp,
    candidates: &[VerifiedTx],
) -> Result<Vec<(TxId, TxError)>, StoreError> {
    let parent = head(view)?;
    let mut overlay = Overlay::new(view);
    let mut applier = Applier::new(view)?;
    let mut rejected = Vec::new();
    for (i, tx) in candidates.iter().enumerate() {
        let ctx = TxContext {
            height: parent.height + 1,
            time,
            index: i as u32,
            log_index: parent.log_size + i as u64,
        };
        match applier.apply(&mut overlay, &ctx, tx) {
            Ok(()) => {}
            Err(ApplyError::Rejected(e)) => rejected.push((tx.id(), e)),
            Err(ApplyError::Store(e)) => return Err(e),
        }
    }
    Ok(rejected)
}

/// A block built by a proposer, with what it left out.
#[derive(Debug, Clone)]
pub struct BuiltBlock {
    /// The block.
    pub block: Block,
    /// Its outcome, as [`apply_block`] would return it.
    pub outcome: BlockOutcome,
    /// Candidates left out, with the rule each broke.
    pub rejected: Vec<(TxId, TxError)>,
    /// The ids of the block's transactions, in order.
    pub tx_ids: Vec<TxId>,
}

/// Builds the next block from candidate transactions, in order, leaving out each one that breaks
/// a rule (given the ones before it) and stopping at the chain's block size limit — or when the
/// candidates run out: they are taken one at a time, so a proposer can end its offer early (a
/// time budget) without knowing in advance how many fit.
pub fn build_block<V: StateView + ?Sized>(
    view: &V,
    proposer: &DepartmentId,
    time: Timestamp,
    candidates: impl IntoIterator<Item = VerifiedTx>,
) -> Result<BuiltBlock, BlockError> {
    let parent = head(view)?;
    let gov = governance(view)?;
    if time <= parent.time {
        return Err(BlockError::TimeNotIncreasing {
            parent: parent.time,
            found: time,
        });
    }
    if gov.member(proposer).is_none() {
        return Err(BlockError::UnknownProposer {
            proposer: proposer.clone(),
        });
    }
    let height = parent.height + 1;
    let hasher = log_hasher(gov.suite);
    let mut overlay = Overlay::new(view);
    let mut frontier = log_frontier(view)?;
    let mut applier = Applier::new(view)?;
    let mut accepted: Vec<VerifiedTx> = Vec::new();
    let mut leaf_hashes = Vec::new();
    let mut rejected = Vec::new();
    let mut bytes = 0usize;
    for tx in candidates {
        if accepted.len() >= gov.params.max_block_transactions as usize {
            break;
        }
        let size = tx.signed().encode().len();
        if bytes + size > MAX_BLOCK_BYTES {
            break;
        }
        let ctx = TxContext {
            height,
            time,
            index: accepted.len() as u32,
            log_index: parent.log_size + accepted.len() as u64,
        };
        match applier.apply(&mut overlay, &ctx, &tx) {
            Ok(()) => {
                bytes += size;
                let leaf = hasher.hash_leaf(&tx.signed().leaf_data());
                frontier.push_with(&hasher, leaf).map_err(log_full)?;
                leaf_hashes.push(Digest(leaf));
                accepted.push(tx);
            }
            Err(ApplyError::Rejected(e)) => rejected.push((tx.id(), e)),
            Err(ApplyError::Store(e)) => return Err(e.into()),
        }
    }
    overlay.put_record(keys::LOG.to_vec(), &frontier);
    let (delta, state_root, status_root) = finish(overlay, gov.suite, &parent, height)?;
    let ids: Vec<TxId> = accepted.iter().map(|t| t.id()).collect();
    let header = BlockHeader {
        height,
        parent: parent.hash,
        time,
        proposer: proposer.clone(),
        tx_count: accepted.len() as u32,
        txs_digest: txs_digest(gov.suite, &ids),
        log_size: frontier.size(),
        log_root: Digest(frontier.root_with(&hasher)),
        state_root,
        status_root,
    };
    let transactions = BoundedVec::new(accepted.into_iter().map(VerifiedTx::into_signed).collect())
        .map_err(|_| BlockError::TooManyTransactions {
            count: ids.len(),
            max: gov.params.max_block_transactions,
        })?;
    let outcome = seal(delta, header.hash(gov.suite), &header, leaf_hashes);
    Ok(BuiltBlock {
        block: Block {
            header,
            transactions,
        },
        outcome,
        rejected,
        tx_ids: ids,
    })
}
