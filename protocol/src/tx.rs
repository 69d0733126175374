//! Transactions: every write to the ledger, signed by its author.
//!
//! A [`Transaction`] names its chain, the time its author made it, a nonce and a [`TxBody`]. Its
//! id is the hash of its canonical encoding under the body's [`Domain`], and each endorsement is a
//! signature over the same bytes under the same domain. [`SignedTransaction::verify`] checks every
//! signature once and yields a [`VerifiedTx`], the only form the state machine accepts; *who* may
//! sign *what* is decided by the state machine against the ledger state.

use borsh::{BorshDeserialize, BorshSerialize};
use serde::{Deserialize, Serialize};

use crate::crypto::{
    CryptoSuite, Digest, Domain, KeyPair, PublicKey, Signature, SignatureCheck, SignatureError,
};
use crate::encoding::{BoundError, BoundedString, BoundedVec, Canonical};
use crate::ids::{
    AttestationId, ChainId, DepartmentId, DocTypeCode, GrantId, ReceiptId, Timestamp, TxId,
};
use crate::uscc::Uscc;

/// Most claims an attestation may carry.
pub const MAX_CLAIMS: usize = 32;
/// Most endorsements (signatures) on one transaction.
pub const MAX_ENDORSEMENTS: usize = 64;
/// Most reads in one access-receipts transaction.
pub const MAX_READS: usize = 256;
/// Most document types or attestations in one grant's scope.
pub const MAX_SCOPE: usize = 64;

/// A department's or document type's display name.
pub type Name = BoundedString<128>;
/// A free-text note.
pub type Note = BoundedString<256>;

/// One key claim of an attestation, e.g. `("licence_no", "370100200012345")`. Claims carry the
/// facts a verifier needs, never personal data (names of natural persons, ID numbers, phones).
#[derive(Debug, Clone, PartialEq, Eq, BorshSerialize, BorshDeserialize, Serialize, Deserialize)]
pub struct Claim {
    /// The claim's name.
    pub key: BoundedString<64>,
    /// Its value.
    pub value: BoundedString<512>,
}

/// An attestation (证照/资质凭证): a department's signed statement that a file is an enterprise's
/// document of a given type, valid for a window of time.
#[derive(Debug, Clone, PartialEq, Eq, BorshSerialize, BorshDeserialize, Serialize, Deserialize)]
pub struct Attestation {
    /// The issuing department.
    pub issuer: DepartmentId,
    /// The enterprise it is about.
    pub subject: Uscc,
    /// The document type.
    pub doc_type: DocTypeCode,
    /// SHA-256 of the file.
    pub file_digest: Digest,
    /// Key claims, by strictly increasing key.
    pub claims: BoundedVec<Claim, MAX_CLAIMS>,
    /// Start of validity.
    pub valid_from: Timestamp,
    /// End of validity (exclusive); `None` for documents that do not expire.
    pub valid_until: Option<Timestamp>,
    /// The attestation this one replaces (a new version), which stays provable.
    pub supersedes: Option<AttestationId>,
}

/// What a status change does.
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
#[borsh(use_discriminant = true)]
#[repr(u8)]
pub enum StatusAction {
    /// 暂停: active → suspended.
    Suspend = 0,
    /// 恢复: suspended → active.
    Reinstate = 1,
    /// 吊销: active or suspended → revoked, for good.
    Revoke = 2,
}

/// A change of an attestation's status, by its issuing department.
#[derive(Debug, Clone, PartialEq, Eq, BorshSerialize, BorshDeserialize, Serialize, Deserialize)]
pub struct StatusChange {
    /// The department making the change (must be the issuer).
    pub department: DepartmentId,
    /// The attestation.
    pub attestation: AttestationId,
    /// What to do.
    pub action: StatusAction,
    /// A machine-readable reason code (the department's own catalogue, e.g. 1 = dormant, 2 = court
    /// order, 3 = fraud).
    pub reason_code: u16,
    /// A human note.
    pub note: Note,
}

/// Who a grant is to.
#[derive(
    Debug,
    Clone,
    PartialEq,
    Eq,
    PartialOrd,
    Ord,
    Hash,
    BorshSerialize,
    BorshDeserialize,
    Serialize,
    Deserialize,
)]
#[serde(rename_all = "snake_case")]
pub enum Grantee {
    /// A member department.
    Department(DepartmentId),
    /// A relying application (a bank, a platform), by its public key.
    Application(PublicKey),
}

impl std::fmt::Display for Grantee {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Grantee::Department(d) => write!(f, "department {d}"),
            Grantee::Application(k) => write!(f, "application {k}"),
        }
    }
}

/// What a grant covers.
#[derive(Debug, Clone, PartialEq, Eq, BorshSerialize, BorshDeserialize, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum GrantScope {
    /// Every attestation of the enterprise of these types (strictly increasing).
    DocumentTypes(BoundedVec<DocTypeCode, MAX_SCOPE>),
    /// These attestations (strictly increasing).
    Attestations(BoundedVec<AttestationId, MAX_SCOPE>),
}

/// The procedure (事项) an access is for.
#[derive(Debug, Clone, PartialEq, Eq, BorshSerialize, BorshDeserialize, Serialize, Deserialize)]
pub struct Purpose {
    /// The procedure's code in the government service catalogue.
    pub code: BoundedString<64>,
    /// Its name, e.g. 建筑业企业资质申请.
    pub text: BoundedString<256>,
}

/// An enterprise's grant (授权) of access to its documents.
#[derive(Debug, Clone, PartialEq, Eq, BorshSerialize, BorshDeserialize, Serialize, Deserialize)]
pub struct Grant {
    /// The enterprise granting access (must sign).
    pub enterprise: Uscc,
    /// Who may read.
    pub grantee: Grantee,
    /// What they may read.
    pub scope: GrantScope,
    /// For which procedure.
    pub purpose: Purpose,
    /// When the grant lapses (exclusive).
    pub expires_at: Timestamp,
}

/// Withdrawing a grant, by the enterprise that made it.
#[derive(Debug, Clone, PartialEq, Eq, BorshSerialize, BorshDeserialize, Serialize, Deserialize)]
pub struct GrantWithdrawal {
    /// The enterprise (must sign).
    pub enterprise: Uscc,
    /// The grant.
    pub grant: GrantId,
}

/// One read of a document under a grant.
#[derive(Debug, Clone, PartialEq, Eq, BorshSerialize, BorshDeserialize, Serialize, Deserialize)]
pub struct AccessRead {
    /// Who read it.
    pub reader: Grantee,
    /// Which attestation's document.
    pub attestation: AttestationId,
    /// Under which grant.
    pub grant: GrantId,
    /// When it was served.
    pub read_at: Timestamp,
}

/// Access receipts (调阅留痕), recorded by the department whose node served the reads.
#[derive(Debug, Clone, PartialEq, Eq, BorshSerialize, BorshDeserialize, Serialize, Deserialize)]
pub struct AccessReceipts {
    /// The recording department (must sign).
    pub recorder: DepartmentId,
    /// The reads.
    pub reads: BoundedVec<AccessRead, MAX_READS>,
}

/// Binding a USCC to an enterprise's public key, by a member department.
#[derive(Debug, Clone, PartialEq, Eq, BorshSerialize, BorshDeserialize, Serialize, Deserialize)]
pub struct Enrolment {
    /// The registering department (must sign).
    pub department: DepartmentId,
    /// The enterprise.
    pub enterprise: Uscc,
    /// Its public key.
    pub key: PublicKey,
}

/// An enterprise replacing its key; signed by the current key.
#[derive(Debug, Clone, PartialEq, Eq, BorshSerialize, BorshDeserialize, Serialize, Deserialize)]
pub struct EnterpriseKeyRotation {
    /// The enterprise.
    pub enterprise: Uscc,
    /// The new key.
    pub new_key: PublicKey,
}

/// A document type's definition.
#[derive(Debug, Clone, PartialEq, Eq, BorshSerialize, BorshDeserialize, Serialize, Deserialize)]
pub struct DocumentType {
    /// Its code.
    pub code: DocTypeCode,
    /// Chinese name, e.g. 营业执照.
    pub name_zh: Name,
    /// English name.
    pub name_en: Name,
    /// Longest validity window an attestation of this type may have, in days; `None` = no limit.
    pub max_validity_days: Option<u32>,
    /// Whether attestations of this type must have an end of validity.
    pub requires_expiry: bool,
}

/// A change to the network's membership or rules; needs signatures of more than two thirds of the
/// member departments.
#[derive(Debug, Clone, PartialEq, Eq, BorshSerialize, BorshDeserialize, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum GovernanceAction {
    /// Admit a new member department.
    AdmitDepartment {
        /// Its id.
        department: DepartmentId,
        /// Its name, e.g. 市医疗保障局.
        name: Name,
        /// The key it signs transactions with.
        signing_key: PublicKey,
        /// Its node's key (consensus votes and the p2p identity).
        node_key: PublicKey,
    },
    /// Remove a member department. Its past attestations stay valid.
    RemoveDepartment {
        /// Its id.
        department: DepartmentId,
    },
    /// Define a new document type.
    DefineDocumentType(DocumentType),
    /// Authorise a department to issue a document type.
    AuthoriseIssuer {
        /// The department.
        department: DepartmentId,
        /// The document type.
        doc_type: DocTypeCode,
    },
    /// Withdraw a department's authorisation to issue a document type. Attestations issued while
    /// it was authorised stay valid.
    WithdrawIssuer {
        /// The department.
        department: DepartmentId,
        /// The document type.
        doc_type: DocTypeCode,
    },
    /// Replace a department's keys. The old keys stay valid until `previous_valid_until`, so a
    /// rotation never takes a department offline.
    RotateDepartmentKeys {
        /// The department.
        department: DepartmentId,
        /// The new transaction-signing key.
        signing_key: PublicKey,
        /// The new node key.
        node_key: PublicKey,
        /// End of the overlap during which the old keys are still accepted.
        previous_valid_until: Timestamp,
    },
}

/// What a transaction does.
#[derive(Debug, Clone, PartialEq, Eq, BorshSerialize, BorshDeserialize, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", tag = "type", content = "body")]
pub enum TxBody {
    /// Membership and rules.
    Governance(GovernanceAction),
    /// Enrol an enterprise.
    EnrolEnterprise(Enrolment),
    /// An enterprise rotates its key.
    RotateEnterpriseKey(EnterpriseKeyRotation),
    /// Issue an attestation.
    IssueAttestation(Attestation),
    /// Suspend, reinstate or revoke an attestation.
    SetStatus(StatusChange),
    /// Grant access.
    Grant(Grant),
    /// Withdraw a grant.
    WithdrawGrant(GrantWithdrawal),
    /// Record reads.
    RecordAccess(AccessReceipts),
}

impl TxBody {
    /// The domain under which a transaction with this body is hashed and signed.
    pub fn domain(&self) -> Domain {
        match self {
            TxBody::Governance(_) => Domain::Governance,
            TxBody::EnrolEnterprise(_) => Domain::Enrolment,
            TxBody::RotateEnterpriseKey(_) => Domain::EnterpriseKey,
            TxBody::IssueAttestation(_) => Domain::Attestation,
            TxBody::SetStatus(_) => Domain::Status,
            TxBody::Grant(_) => Domain::Grant,
            TxBody::WithdrawGrant(_) => Domain::GrantWithdrawal,
            TxBody::RecordAccess(_) => Domain::Receipt,
        }
    }

    /// A short name of the kind of transaction, for logs and APIs.
    pub fn kind(&self) -> &'static str {
        match self {
            TxBody::Governance(_) => "governance",
            TxBody::EnrolEnterprise(_) => "enrol_enterprise",
            TxBody::RotateEnterpriseKey(_) => "rotate_enterprise_key",
            TxBody::IssueAttestation(_) => "issue_attestation",
            TxBody::SetStatus(_) => "set_status",
            TxBody::Grant(_) => "grant",
            TxBody::WithdrawGrant(_) => "withdraw_grant",
            TxBody::RecordAccess(_) => "record_access",
        }
    }
}

/// An unsigned transaction.
#[derive(Debug, Clone, PartialEq, Eq, BorshSerialize, BorshDeserialize, Serialize, Deserialize)]
pub struct Transaction {
    /// The chain it is for.
    pub chain_id: ChainId,
    /// When its author made it; the ledger accepts it only within a window around block time.
    pub created_at: Timestamp,
    /// Makes otherwise identical transactions distinct.
    pub nonce: u64,
    /// What it does.
    pub body: TxBody,
}

impl Canonical for Transaction {
    const MAX_ENCODED_LEN: usize = 64 * 1024;
}

impl Transaction {
    /// The id: the hash of the canonical encoding under the body's domain.
    pub fn id(&self, suite: CryptoSuite) -> TxId {
        TxId(suite.hash(self.body.domain(), &[&self.encode()]))
    }

    /// Signs with one key.
    pub fn sign_one(self, key: &KeyPair) -> SignedTransaction {
        let endorsement = self.endorsement(key);
        SignedTransaction {
            tx: self,
            endorsements: BoundedVec::new(vec![endorsement]).unwrap_or_default(),
        }
    }

    /// Signs with each key, in order; at most [`MAX_ENDORSEMENTS`] keys.
    pub fn sign(self, keys: &[&KeyPair]) -> Result<SignedTransaction, BoundError> {
        let endorsements = keys.iter().map(|k| self.endorsement(k)).collect::<Vec<_>>();
        Ok(SignedTransaction {
            endorsements: BoundedVec::new(endorsements)?,
            tx: self,
        })
    }

    /// One key's endorsement of this transaction (for collecting governance signatures).
    pub fn endorsement(&self, key: &KeyPair) -> Endorsement {
        Endorsement {
            signer: key.public(),
            signature: key.sign(self.body.domain(), &self.encode()),
        }
    }
}

/// One signature on a transaction.
#[derive(Debug, Clone, PartialEq, Eq, BorshSerialize, BorshDeserialize, Serialize, Deserialize)]
pub struct Endorsement {
    /// The signing key.
    pub signer: PublicKey,
    /// The signature over the transaction's encoding, under its domain.
    pub signature: Signature,
}

/// A transaction with its signatures.
#[derive(Debug, Clone, PartialEq, Eq, BorshSerialize, BorshDeserialize, Serialize, Deserialize)]
pub struct SignedTransaction {
    /// The transaction.
    pub tx: Transaction,
    /// Its signatures, by distinct keys.
    pub endorsements: BoundedVec<Endorsement, MAX_ENDORSEMENTS>,
}

impl Canonical for SignedTransaction {
    const MAX_ENCODED_LEN: usize = Transaction::MAX_ENCODED_LEN + 8 * 1024;
}

/// Why a transaction's signatures were not accepted.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum EndorsementError {
    /// No signature at all.
    #[error("the transaction carries no signature")]
    Unsigned,
    /// The same key signed twice.
    #[error("key {signer} signed more than once")]
    DuplicateSigner {
        /// The key.
        signer: PublicKey,
    },
    /// A signature did not verify.
    #[error("bad signature: {0}")]
    BadSignature(#[from] SignatureError),
}

impl EndorsementError {
    /// A stable machine-readable code.
    pub fn code(&self) -> &'static str {
        match self {
            EndorsementError::Unsigned => "unsigned",
            EndorsementError::DuplicateSigner { .. } => "duplicate_signer",
            EndorsementError::BadSignature(SignatureError::InvalidKey { .. }) => "invalid_key",
            EndorsementError::BadSignature(SignatureError::Mismatch { .. }) => "bad_signature",
        }
    }
}

impl SignedTransaction {
    /// The transaction's id.
    pub fn id(&self, suite: CryptoSuite) -> TxId {
        self.tx.id(suite)
    }

    /// Checks every signature (by the chain's rule, ZIP-215) and that no key signed twice.
    pub fn verify(self, suite: CryptoSuite) -> Result<VerifiedTx, EndorsementError> {
        match Self::verify_many(suite, vec![self]).pop() {
            Some(r) => r,
            None => Err(EndorsementError::Unsigned),
        }
    }

    /// [`SignedTransaction::verify`] for many transactions at once, with one answer each, in
    /// order: the signatures not verified before are checked together by batch verification,
    /// over the machine's cores ([`CryptoSuite::verify_many`]). Each answer is exactly what
    /// `verify` says of that transaction alone: the first endorsement (in order) that fails, or
    /// the first key that signs twice.
    pub fn verify_many(
        suite: CryptoSuite,
        txs: Vec<SignedTransaction>,
    ) -> Vec<Result<VerifiedTx, EndorsementError>> {
        // Per transaction: its encoding, its domain, and how many endorsements come before the
        // first repeated signer (those are the ones `verify` would check).
        let prepared: Vec<(Vec<u8>, Domain, usize)> = txs
            .iter()
            .map(|t| {
                let mut seen: Vec<&PublicKey> = Vec::with_capacity(t.endorsements.len());
                let mut checked = t.endorsements.len();
                for (j, e) in t.endorsements.iter().enumerate() {
                    if seen.contains(&&e.signer) {
                        checked = j;
                        break;
                    }
                    seen.push(&e.signer);
                }
                (t.tx.encode(), t.tx.body.domain(), checked)
            })
            .collect();
        let checks: Vec<SignatureCheck<'_>> = txs
            .iter()
            .zip(&prepared)
            .flat_map(|(t, (bytes, domain, checked))| {
                t.endorsements
                    .iter()
                    .take(*checked)
                    .map(move |e| SignatureCheck {
                        domain: *domain,
                        key: &e.signer,
                        message: bytes,
                        signature: &e.signature,
                    })
            })
            .collect();
        let mut results = suite.verify_many(&checks).into_iter();
        drop(checks);
        txs.into_iter()
            .zip(prepared)
            .map(|(t, (bytes, domain, checked))| {
                let mut first_bad = None;
                for r in results.by_ref().take(checked) {
                    if let (None, Err(e)) = (&first_bad, r) {
                        first_bad = Some(e);
                    }
                }
                if t.endorsements.is_empty() {
                    return Err(EndorsementError::Unsigned);
                }
                if let Some(e) = first_bad {
                    return Err(e.into());
                }
                if let Some(e) = t.endorsements.get(checked) {
                    return Err(EndorsementError::DuplicateSigner { signer: e.signer });
                }
                let id = TxId(suite.hash(domain, &[&bytes]));
                Ok(VerifiedTx { id, signed: t })
            })
            .collect()
    }

    /// The data of this transaction's leaf in the ledger's Merkle log: the log-leaf tag followed
    /// by the canonical encoding of the signed transaction.
    pub fn leaf_data(&self) -> Vec<u8> {
        [Domain::LogLeaf.tag(), &self.encode()].concat()
    }
}

/// Most transactions in one batch submission.
pub const MAX_SUBMIT_BATCH: usize = 10_000;

/// Transactions submitted together: the canonical body of `POST /v1/transactions/batch` sent as
/// `application/octet-stream` (`0x01 ‖ u32 count ‖ borsh(SignedTransaction)…`).
#[derive(Debug, Clone, PartialEq, Eq, BorshSerialize, BorshDeserialize)]
pub struct TransactionBatch(pub BoundedVec<SignedTransaction, MAX_SUBMIT_BATCH>);

impl Canonical for TransactionBatch {
    const MAX_ENCODED_LEN: usize = MAX_SUBMIT_BATCH * SignedTransaction::MAX_ENCODED_LEN;
}

/// A signed transaction whose signatures have been checked. Only [`SignedTransaction::verify`]
/// makes one, so holding one means every signature was verified.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VerifiedTx {
    id: TxId,
    signed: SignedTransaction,
}

impl VerifiedTx {
    /// The transaction's id.
    pub fn id(&self) -> TxId {
        self.id
    }

    /// The signed transaction.
    pub fn signed(&self) -> &SignedTransaction {
        &self.signed
    }

    /// The transaction.
    pub fn tx(&self) -> &Transaction {
        &self.signed.tx
    }

    /// The keys that signed it.
    pub fn signers(&self) -> impl Iterator<Item = &PublicKey> {
        self.signed.endorsements.iter().map(|e| &e.signer)
    }

    /// Gives back the signed transaction.
    pub fn into_signed(self) -> SignedTransaction {
        self.signed
    }
}

/// The id of the `index`-th read in the access-receipts transaction `tx`.
pub fn receipt_id(suite: CryptoSuite, tx: TxId, index: u32) -> ReceiptId {
    ReceiptId(suite.hash(Domain::ReceiptId, &[&tx.0 .0, &index.to_le_bytes()]))
}
