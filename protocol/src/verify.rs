//! Verification: an attestation, its status history, the governance state and a time → a
//! [`Verdict`] that lists every check with its outcome and, for each failure, a machine-readable
//! reason. Status is always checked; there is no way to ask for a verdict without it.

use serde::{Deserialize, Serialize};

use crate::crypto::Digest;
use crate::governance::Governance;
use crate::ids::{AttestationId, DepartmentId, DocTypeCode, Timestamp};
use crate::state::{AttestationRecord, Status, StatusEvent};
use crate::tx::{Claim, SignedTransaction, TxBody};
use crate::uscc::Uscc;

/// The checks a verdict reports, in the order they are made.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum CheckKind {
    /// The ledger record and the signed issuing transaction describe the same attestation.
    Record,
    /// The issuer's signature verifies.
    Signature,
    /// The signing key was the issuer's when it issued.
    IssuerKey,
    /// The issuer was authorised for the document type when it issued.
    IssuerAuthorised,
    /// The validity window has begun.
    NotBefore,
    /// The validity window has not ended.
    NotExpired,
    /// Not suspended, not revoked.
    Status,
    /// Not replaced by a newer version.
    NotSuperseded,
    /// The presented file is the attested file.
    FileDigest,
}

/// A check's outcome.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Outcome {
    /// It holds.
    Pass,
    /// It fails; the verdict is invalid.
    Fail,
    /// Not checked (e.g. no file presented).
    Skipped,
}

/// Why a check failed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Reason {
    /// The record does not match the signed transaction.
    RecordMismatch,
    /// A signature does not verify.
    BadSignature,
    /// The key was not the issuer's at issue time.
    IssuerKeyNotValid,
    /// The issuer was not authorised for the type at issue time.
    IssuerNotAuthorised,
    /// Not yet valid.
    NotYetValid,
    /// Expired.
    Expired,
    /// Suspended.
    Suspended,
    /// Revoked.
    Revoked,
    /// Superseded by a newer version.
    Superseded,
    /// The file's digest differs.
    DigestMismatch,
}

impl Reason {
    /// The stable machine-readable code (as serialised).
    pub fn code(self) -> &'static str {
        match self {
            Reason::RecordMismatch => "record_mismatch",
            Reason::BadSignature => "bad_signature",
            Reason::IssuerKeyNotValid => "issuer_key_not_valid",
            Reason::IssuerNotAuthorised => "issuer_not_authorised",
            Reason::NotYetValid => "not_yet_valid",
            Reason::Expired => "expired",
            Reason::Suspended => "suspended",
            Reason::Revoked => "revoked",
            Reason::Superseded => "superseded",
            Reason::DigestMismatch => "digest_mismatch",
        }
    }
}

/// One check in a verdict.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Check {
    /// Which check.
    pub check: CheckKind,
    /// Its outcome.
    pub outcome: Outcome,
    /// Why it failed.
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub reason: Option<Reason>,
    /// A human explanation.
    pub detail: String,
}

/// The verdict on an attestation.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Verdict {
    /// True only if no check failed.
    pub valid: bool,
    /// Every check, in order.
    pub checks: Vec<Check>,
    /// The attestation.
    pub attestation_id: AttestationId,
    /// The issuer.
    pub issuer: DepartmentId,
    /// The issuer's name.
    pub issuer_name: String,
    /// The enterprise.
    pub subject: Uscc,
    /// The document type.
    pub doc_type: DocTypeCode,
    /// The type's Chinese name.
    pub doc_type_name: String,
    /// The attested file's digest.
    pub file_digest: Digest,
    /// Key claims.
    pub claims: Vec<Claim>,
    /// Validity start.
    pub valid_from: Timestamp,
    /// Validity end.
    pub valid_until: Option<Timestamp>,
    /// Status at the time of the verdict.
    pub status: Status,
    /// Status history (up to the time of the verdict).
    pub status_history: Vec<StatusEvent>,
    /// The newer version, if superseded by then.
    pub superseded_by: Option<AttestationId>,
    /// Block time of issue.
    pub issued_at: Timestamp,
    /// Block height of issue.
    pub issued_height: u64,
    /// The time the verdict speaks for.
    pub checked_at: Timestamp,
}

impl Verdict {
    /// The failed checks' reasons.
    pub fn failures(&self) -> Vec<Reason> {
        self.checks.iter().filter_map(|c| c.reason).collect()
    }
}

/// The status of an attestation at time `t`, from its history.
pub fn status_at(record: &AttestationRecord, t: Timestamp) -> (Status, Vec<StatusEvent>) {
    let events: Vec<StatusEvent> = record
        .history
        .iter()
        .filter(|e| e.at <= t)
        .cloned()
        .collect();
    let status = events.last().map_or(Status::Active, |e| e.status);
    (status, events)
}

/// Verifies an attestation at time `at`, given the signed transaction that issued it, its ledger
/// record, the governance state, and optionally the digest of a presented file.
pub fn verify_attestation(
    gov: &Governance,
    issuing_tx: &SignedTransaction,
    record: &AttestationRecord,
    at: Timestamp,
    presented_digest: Option<&Digest>,
) -> Verdict {
    let suite = gov.suite;
    let a = &record.attestation;
    let mut checks = Vec::new();
    // Only the detail that applies is formatted, not both.
    type Detail<'a> = &'a dyn Fn() -> String;
    let mut push = |check, ok: bool, reason, pass: Detail<'_>, fail: Detail<'_>| {
        checks.push(Check {
            check,
            outcome: if ok { Outcome::Pass } else { Outcome::Fail },
            reason: if ok { None } else { Some(reason) },
            detail: if ok { pass() } else { fail() },
        })
    };

    let matches = issuing_tx.id(suite).0 == record.id.0
        && matches!(&issuing_tx.tx.body, TxBody::IssueAttestation(x) if x == a);
    push(
        CheckKind::Record,
        matches,
        Reason::RecordMismatch,
        &|| "the ledger record matches the signed issuing transaction".into(),
        &|| "the ledger record does not match the signed issuing transaction".into(),
    );

    let sig_ok = issuing_tx.clone().verify(suite);
    push(
        CheckKind::Signature,
        sig_ok.is_ok(),
        Reason::BadSignature,
        &|| "the issuer's signature verifies".into(),
        &|| match &sig_ok {
            Err(e) => format!("signature check failed: {e}"),
            Ok(_) => String::new(),
        },
    );

    let department = gov.departments.get(&a.issuer);
    let key_ok = issuing_tx.endorsements.len() == 1
        && department.is_some_and(|d| {
            issuing_tx
                .endorsements
                .iter()
                .all(|e| d.signing_key_valid_at(&e.signer, record.issued_at))
        });
    push(
        CheckKind::IssuerKey,
        key_ok,
        Reason::IssuerKeyNotValid,
        &|| {
            format!(
                "signed with a key {} held at {}",
                a.issuer, record.issued_at
            )
        },
        &|| {
            format!(
                "the signing key was not a key of {} at {}",
                a.issuer, record.issued_at
            )
        },
    );

    let doc_type = gov.document_types.get(&a.doc_type);
    let auth_ok = doc_type.is_some_and(|t| t.issuer_authorised_at(&a.issuer, record.issued_at));
    push(
        CheckKind::IssuerAuthorised,
        auth_ok,
        Reason::IssuerNotAuthorised,
        &|| {
            format!(
                "{} was authorised to issue {} when it issued",
                a.issuer, a.doc_type
            )
        },
        &|| {
            format!(
                "{} was not authorised to issue {} at {}",
                a.issuer, a.doc_type, record.issued_at
            )
        },
    );

    push(
        CheckKind::NotBefore,
        at >= a.valid_from,
        Reason::NotYetValid,
        &|| format!("valid from {}", a.valid_from),
        &|| format!("not valid before {}", a.valid_from),
    );

    let not_expired = a.valid_until.is_none_or(|u| at < u);
    push(
        CheckKind::NotExpired,
        not_expired,
        Reason::Expired,
        &|| match a.valid_until {
            Some(u) => format!("valid until {u}"),
            None => "valid without an end date".into(),
        },
        &|| format!("expired at {}", a.valid_until.unwrap_or_default()),
    );

    let (status, history) = status_at(record, at);
    let status_reason = match status {
        Status::Suspended => Reason::Suspended,
        _ => Reason::Revoked,
    };
    let last = history.last();
    push(
        CheckKind::Status,
        status == Status::Active,
        status_reason,
        &|| "active".into(),
        &|| match last {
            Some(e) => format!(
                "{status} since {} (reason code {}{}{})",
                e.at,
                e.reason_code,
                if e.note.is_empty() { "" } else { ": " },
                e.note
            ),
            None => status.to_string(),
        },
    );

    let superseded = record
        .superseded_by
        .filter(|_| record.superseded_at.is_some_and(|t| t <= at));
    push(
        CheckKind::NotSuperseded,
        superseded.is_none(),
        Reason::Superseded,
        &|| "the current version".into(),
        &|| format!("superseded by {}", superseded.unwrap_or_default()),
    );

    match presented_digest {
        Some(d) => push(
            CheckKind::FileDigest,
            d == &a.file_digest,
            Reason::DigestMismatch,
            &|| format!("the file's SHA-256 is {d}, as attested"),
            &|| {
                format!(
                    "the file's SHA-256 is {d}; the attested file's is {}",
                    a.file_digest
                )
            },
        ),
        None => checks.push(Check {
            check: CheckKind::FileDigest,
            outcome: Outcome::Skipped,
            reason: None,
            detail: "no file presented".into(),
        }),
    }

    Verdict {
        valid: checks.iter().all(|c| c.outcome != Outcome::Fail),
        checks,
        attestation_id: record.id,
        issuer: a.issuer.clone(),
        issuer_name: department.map(|d| d.name.to_string()).unwrap_or_default(),
        subject: a.subject,
        doc_type: a.doc_type.clone(),
        doc_type_name: doc_type
            .map(|t| t.definition.name_zh.to_string())
            .unwrap_or_default(),
        file_digest: a.file_digest,
        claims: a.claims.to_vec(),
        valid_from: a.valid_from,
        valid_until: a.valid_until,
        status,
        status_history: history,
        superseded_by: superseded,
        issued_at: record.issued_at,
        issued_height: record.location.height,
        checked_at: at,
    }
}
