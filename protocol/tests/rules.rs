//! Unit tests of every permission rule of the ledger state machine and every `TxError` variant,
//! driven through `MemoryLedger::propose` (rejected transactions come back in
//! `BuiltBlock::rejected` with their `TxError`) and `commit` on
//! `TestNetwork::new(&["samr", "tax", "hrss", "housing"])`.
//!
//! Each test asserts the error's stable `code()` and its structured fields, and (through
//! `Fx::reject`) that a rejected transaction changes nothing but the chain head. Also covered:
//! verdicts (`MemoryLedger::verify`, `verify_attestation`), the read-side queries of `state`
//! (`find_grant`, `grants_in_force`, `attestations_by_*`, `grants_by_enterprise`,
//! `receipts_by_enterprise`), and the block-level errors of `state::apply_block`, where a
//! rejected block leaves the ledger's state, head and log untouched.

#![allow(clippy::unwrap_used)]

mod common;

use common::*;
use vault_protocol::block::{txs_digest, Block};
use vault_protocol::crypto::{Digest, Signature, SignatureError};
use vault_protocol::encoding::BoundedVec;
use vault_protocol::governance::Params;
use vault_protocol::ids::{AttestationId, BlockHash, ChainId, DepartmentId, GrantId, Timestamp};
use vault_protocol::ledger::{test_key, LedgerError, TestNetwork};
use vault_protocol::state::{self, AccessRefusal, BlockError, Status, TxError};
use vault_protocol::tx::{
    DocumentType, EndorsementError, EnterpriseKeyRotation, GovernanceAction, Grantee,
    SignedTransaction, StatusAction, TxBody,
};
use vault_protocol::verify::{verify_attestation, CheckKind, Outcome, Reason, Verdict};

// ---------------------------------------------------------------------------------------------
// Helpers
// ---------------------------------------------------------------------------------------------

fn remove(id: &str) -> TxBody {
    TxBody::Governance(GovernanceAction::RemoveDepartment {
        department: did(id),
    })
}

fn define(code: &str, max_validity_days: Option<u32>, requires_expiry: bool) -> TxBody {
    TxBody::Governance(GovernanceAction::DefineDocumentType(DocumentType {
        code: dt(code),
        name_zh: bs("医保缴费证明"),
        name_en: bs("Medical insurance payment certificate"),
        max_validity_days,
        requires_expiry,
    }))
}

fn withdraw_issuer(department: &str, doc_type: &str) -> TxBody {
    TxBody::Governance(GovernanceAction::WithdrawIssuer {
        department: did(department),
        doc_type: dt(doc_type),
    })
}

fn rotate(department: &str, signing: &str, node: &str, previous_valid_until: Timestamp) -> TxBody {
    TxBody::Governance(GovernanceAction::RotateDepartmentKeys {
        department: did(department),
        signing_key: key(signing).public(),
        node_key: key(node).public(),
        previous_valid_until,
    })
}

fn check(v: &Verdict, kind: CheckKind) -> (Outcome, Option<Reason>) {
    let c = v.checks.iter().find(|c| c.check == kind).unwrap();
    (c.outcome, c.reason)
}

fn assert_all_pass(v: &Verdict) {
    assert!(v.valid, "{v:#?}");
    for c in &v.checks {
        let expected = if c.check == CheckKind::FileDigest {
            Outcome::Skipped
        } else {
            Outcome::Pass
        };
        assert_eq!(c.outcome, expected, "{:?}", c.check);
        assert_eq!(c.reason, None);
    }
}

fn invalid_field(err: &TxError) -> &'static str {
    assert_eq!(err.code(), "invalid_field");
    match err {
        TxError::InvalidField { field, .. } => field,
        other => panic!("not an invalid field: {other:?}"),
    }
}

/// A ledger with enterprise 1 enrolled.
fn enrolled() -> (Fx, Ent) {
    let mut fx = Fx::new();
    let e = Ent::new(1);
    fx.enrol(&e);
    (fx, e)
}

// ---------------------------------------------------------------------------------------------
// Envelope: chain, time window, duplicates, signatures
// ---------------------------------------------------------------------------------------------

#[test]
fn wrong_chain_is_rejected() {
    let mut fx = Fx::new();
    let e = Ent::new(1);
    let mut tx = fx.tx(e.enrolment("samr"));
    tx.chain_id = ChainId::new("other-vault").unwrap();
    let err = fx.reject(tx.sign_one(&fx.signing("samr")));
    assert_eq!(err.code(), "wrong_chain");
    assert_eq!(
        err,
        TxError::WrongChain {
            expected: "test-vault".into(),
            found: "other-vault".into()
        }
    );
}

#[test]
fn stale_and_future_transactions_are_rejected_at_the_window_edges() {
    let mut fx = Fx::new();
    let params = Params::default();
    let (a, b, c, d) = (Ent::new(1), Ent::new(2), Ent::new(3), Ent::new(4));

    let now = fx.now();
    let mut tx = fx.tx(a.enrolment("samr"));
    tx.created_at = now.minus(params.max_tx_age_ms + 1);
    let err = fx.reject(tx.sign_one(&fx.signing("samr")));
    assert_eq!(err.code(), "stale_transaction");
    assert_eq!(
        err,
        TxError::Stale {
            created_at: now.minus(params.max_tx_age_ms + 1),
            oldest: now.minus(params.max_tx_age_ms),
        }
    );

    let now = fx.now();
    let mut tx = fx.tx(b.enrolment("samr"));
    tx.created_at = now.plus(params.max_clock_skew_ms + 1);
    let err = fx.reject(tx.sign_one(&fx.signing("samr")));
    assert_eq!(err.code(), "future_transaction");
    assert_eq!(
        err,
        TxError::FromTheFuture {
            created_at: now.plus(params.max_clock_skew_ms + 1),
            latest: now.plus(params.max_clock_skew_ms),
        }
    );

    // Exactly at the edges is fine.
    let mut tx = fx.tx(c.enrolment("samr"));
    tx.created_at = fx.now().minus(params.max_tx_age_ms);
    fx.accept(tx.sign_one(&fx.signing("samr")));
    let mut tx = fx.tx(d.enrolment("samr"));
    tx.created_at = fx.now().plus(params.max_clock_skew_ms);
    fx.accept(tx.sign_one(&fx.signing("samr")));
}

#[test]
fn a_transaction_committed_twice_is_a_duplicate() {
    let mut fx = Fx::new();
    let e = Ent::new(1);
    let tx = fx.by("samr", e.enrolment("samr"));
    let id = fx.accept(tx.clone());
    let err = fx.reject(tx.clone());
    assert_eq!(err.code(), "duplicate_transaction");
    assert_eq!(err, TxError::Duplicate { tx: id });

    // Twice in one block: the second copy is the duplicate.
    let e2 = Ent::new(2);
    let tx2 = fx.by("samr", e2.enrolment("samr"));
    let built = fx.block(vec![tx2.clone(), tx2.clone()]);
    assert_eq!(built.block.transactions.len(), 1);
    assert_eq!(
        built.rejected,
        vec![(tx2.id(SUITE), TxError::Duplicate { tx: tx2.id(SUITE) })]
    );

    // The id does not cover the signatures: the same content signed differently is a duplicate.
    let resigned = tx
        .tx
        .clone()
        .sign(&[&fx.signing("samr"), &fx.signing("tax")])
        .unwrap();
    assert_eq!(fx.reject(resigned), TxError::Duplicate { tx: id });
}

#[test]
fn a_non_member_department_cannot_act() {
    let mut fx = Fx::new();
    let e = Ent::new(1);
    let err = fx.reject(fx.by("medins", e.enrolment("medins")));
    assert_eq!(err.code(), "not_member");
    assert_eq!(
        err,
        TxError::NotMember {
            department: did("medins")
        }
    );
}

#[test]
fn an_enterprise_key_cannot_sign_a_department_action() {
    let mut fx = Fx::new();
    let e = Ent::new(1);
    let err = fx.reject(fx.signed(e.key(), e.enrolment("samr")));
    assert_eq!(err.code(), "wrong_signer");
    assert_eq!(
        err,
        TxError::WrongSigner {
            expected: "a current signing key of samr".into(),
            found: vec![e.key().public()],
        }
    );
    // Nor can another department's key.
    let err = fx.reject(fx.by("tax", e.enrolment("samr")));
    assert_eq!(
        err,
        TxError::WrongSigner {
            expected: "a current signing key of samr".into(),
            found: vec![fx.public("tax")],
        }
    );
    // Nor a node key.
    let err = fx.reject(fx.signed(&fx.dept("samr").node.clone(), e.enrolment("samr")));
    assert_eq!(err.code(), "wrong_signer");
}

#[test]
fn a_department_key_cannot_sign_an_enterprise_action() {
    let (mut fx, e) = enrolled();
    let body = fx.grant_body(
        &e,
        to_dept("housing"),
        types(&[LICENCE]),
        fx.now().plus(DAY),
    );
    let err = fx.reject(fx.by("samr", body));
    assert_eq!(
        err,
        TxError::WrongSigner {
            expected: format!("the current key of enterprise {}", e.uscc),
            found: vec![fx.public("samr")],
        }
    );
    // Another enterprise's key neither.
    let other = Ent::new(2);
    fx.enrol(&other);
    let body = fx.grant_body(
        &e,
        to_dept("housing"),
        types(&[LICENCE]),
        fx.now().plus(DAY),
    );
    let err = fx.reject(fx.signed(other.key(), body));
    assert_eq!(err.code(), "wrong_signer");
}

#[test]
fn two_signatures_where_one_is_required_are_rejected() {
    let (mut fx, e) = enrolled();
    let a = fx.licence(&e, "lic-1");
    let err = fx.reject(fx.by_all(&["samr", "tax"], TxBody::IssueAttestation(a)));
    assert_eq!(
        err,
        TxError::WrongSigner {
            expected: "a current signing key of samr".into(),
            found: vec![fx.public("samr"), fx.public("tax")],
        }
    );
    let body = fx.grant_body(
        &e,
        to_dept("housing"),
        types(&[LICENCE]),
        fx.now().plus(DAY),
    );
    let tx = fx.tx(body).sign(&[e.key(), &e.keys[1]]).unwrap();
    let err = fx.reject(tx);
    assert_eq!(
        err,
        TxError::WrongSigner {
            expected: format!("the current key of enterprise {}", e.uscc),
            found: vec![e.key().public(), e.keys[1].public()],
        }
    );
}

#[test]
fn unsigned_duplicate_signer_and_forged_signatures_fail_before_the_rules() {
    let fx = Fx::new();
    let e = Ent::new(1);
    let tx = fx.tx(e.enrolment("samr"));
    let unsigned = SignedTransaction {
        tx: tx.clone(),
        endorsements: BoundedVec::default(),
    };
    let err = fx
        .ledger
        .propose(&did("samr"), fx.now(), vec![unsigned])
        .unwrap_err();
    assert_eq!(
        err,
        LedgerError::Endorsement {
            index: 0,
            error: EndorsementError::Unsigned
        }
    );
    let k = fx.signing("samr");
    let twice = tx.clone().sign(&[&k, &k]).unwrap();
    match fx
        .ledger
        .propose(&did("samr"), fx.now(), vec![twice])
        .unwrap_err()
    {
        LedgerError::Endorsement { index: 0, error } => {
            assert_eq!(error.code(), "duplicate_signer");
            assert_eq!(
                error,
                EndorsementError::DuplicateSigner { signer: k.public() }
            );
        }
        other => panic!("{other:?}"),
    }
    let forged = flip_signature(tx.sign_one(&k));
    let good = fx.by("samr", Ent::new(2).enrolment("samr"));
    match fx
        .ledger
        .propose(&did("samr"), fx.now(), vec![good, forged])
        .unwrap_err()
    {
        LedgerError::Endorsement { index: 1, error } => {
            assert_eq!(error.code(), "bad_signature");
            assert!(matches!(
                error,
                EndorsementError::BadSignature(SignatureError::Mismatch { .. })
            ));
        }
        other => panic!("{other:?}"),
    }
}

fn flip_signature(mut signed: SignedTransaction) -> SignedTransaction {
    let mut endorsements = signed.endorsements.to_vec();
    let mut bytes: [u8; 64] = endorsements[0].signature.as_bytes().try_into().unwrap();
    bytes[10] ^= 0x01;
    endorsements[0].signature = Signature::from_bytes(bytes);
    signed.endorsements = BoundedVec::new(endorsements).unwrap();
    signed
}

// ---------------------------------------------------------------------------------------------
// Governance
// ---------------------------------------------------------------------------------------------

#[test]
fn governance_needs_more_than_two_thirds_of_the_members() {
    let mut fx = Fx::new();
    let err = fx.reject(fx.by_all(&["samr", "tax"], admit("medins")));
    assert_eq!(err.code(), "insufficient_quorum");
    assert_eq!(
        err,
        TxError::InsufficientQuorum {
            signed: 2,
            required: 3,
            members: 4
        }
    );
    let outsider = key("outsider");
    let tx = fx
        .tx(admit("medins"))
        .sign(&[
            &fx.signing("samr"),
            &fx.signing("tax"),
            &fx.signing("hrss"),
            &outsider,
        ])
        .unwrap();
    let err = fx.reject(tx);
    assert_eq!(err.code(), "unknown_governance_signer");
    assert_eq!(
        err,
        TxError::UnknownGovernanceSigner {
            signer: outsider.public()
        }
    );
    // A node key is no signing key.
    let tx = fx
        .tx(admit("medins"))
        .sign(&[
            &fx.signing("samr"),
            &fx.signing("tax"),
            &fx.dept("hrss").node.clone(),
        ])
        .unwrap();
    assert_eq!(
        fx.reject(tx),
        TxError::UnknownGovernanceSigner {
            signer: fx.dept("hrss").node.public()
        }
    );

    fx.accept(fx.by_all(&["samr", "tax", "hrss"], admit("medins")));
    let gov = fx.ledger.governance().unwrap();
    let medins = gov.member(&did("medins")).unwrap();
    assert_eq!(
        medins.current_signing_key(),
        Some(&test_key("medins", "signing").public())
    );
    assert_eq!(gov.current_members().count(), 5);
}

#[test]
fn an_admitted_department_can_be_authorised_and_issue() {
    let (mut fx, e) = enrolled();
    fx.accept(fx.by_all(&["samr", "tax", "hrss"], admit("medins")));
    // Five members now: four signatures are needed.
    let err = fx.reject(fx.by_all(
        &["samr", "tax", "hrss"],
        define("MEDICAL_INSURANCE_CERT", Some(366), true),
    ));
    assert_eq!(
        err,
        TxError::InsufficientQuorum {
            signed: 3,
            required: 4,
            members: 5
        }
    );
    // The new member's own signature counts.
    fx.block(vec![
        fx.by_all(
            &["samr", "tax", "hrss", "medins"],
            define("MEDICAL_INSURANCE_CERT", Some(366), true),
        ),
        fx.by_all(
            &["samr", "tax", "hrss", "medins"],
            authorise("medins", "MEDICAL_INSURANCE_CERT"),
        ),
    ]);
    let mut a = fx.rating(&e, "medins-1");
    a.issuer = did("medins");
    a.doc_type = dt("MEDICAL_INSURANCE_CERT");
    let id = fx.issue(a);
    assert_all_pass(&fx.verdict(&id, fx.now(), None));
    // It can enrol enterprises too.
    fx.accept(fx.by("medins", Ent::new(9).enrolment("medins")));
}

#[test]
fn admitting_checks_id_and_keys() {
    let mut fx = Fx::new();
    let signers = ["samr", "tax", "hrss"];
    let dup = TxBody::Governance(GovernanceAction::AdmitDepartment {
        department: did("tax"),
        name: bs("税务局"),
        signing_key: key("x1").public(),
        node_key: key("x2").public(),
    });
    let err = fx.reject(fx.by_all(&signers, dup));
    assert_eq!(err.code(), "department_exists");
    assert_eq!(
        err,
        TxError::DepartmentExists {
            department: did("tax")
        }
    );

    let reuse = TxBody::Governance(GovernanceAction::AdmitDepartment {
        department: did("medins"),
        name: bs("医保局"),
        signing_key: key("x1").public(),
        node_key: fx.dept("tax").node.public(),
    });
    let err = fx.reject(fx.by_all(&signers, reuse));
    assert_eq!(err.code(), "key_in_use");
    assert_eq!(
        err,
        TxError::KeyInUse {
            key: fx.dept("tax").node.public()
        }
    );

    let same = TxBody::Governance(GovernanceAction::AdmitDepartment {
        department: did("medins"),
        name: bs("医保局"),
        signing_key: key("x1").public(),
        node_key: key("x1").public(),
    });
    assert_eq!(
        invalid_field(&fx.reject(fx.by_all(&signers, same))),
        "node_key"
    );
}

#[test]
fn a_removed_department_can_no_longer_act_but_its_attestations_stay_valid() {
    let (mut fx, e) = enrolled();
    let mut a = fx.rating(&e, "cq-1");
    a.issuer = did("housing");
    a.doc_type = dt(CONSTRUCTION);
    let id = fx.issue(a);
    fx.accept(fx.by_all(&["samr", "tax", "hrss"], remove("housing")));
    let gov = fx.ledger.governance().unwrap();
    assert!(gov.member(&did("housing")).is_none());
    assert_eq!(gov.current_members().count(), 3);

    let err = fx.reject(fx.by("housing", Ent::new(2).enrolment("housing")));
    assert_eq!(
        err,
        TxError::NotMember {
            department: did("housing")
        }
    );
    let mut a2 = fx.rating(&e, "cq-2");
    a2.issuer = did("housing");
    a2.doc_type = dt(CONSTRUCTION);
    assert_eq!(fx.reject(fx.issue_tx(a2)).code(), "not_member");
    // Its signature no longer counts for governance.
    let err = fx.reject(fx.by_all(&["samr", "tax", "housing"], admit("medins")));
    assert_eq!(
        err,
        TxError::UnknownGovernanceSigner {
            signer: fx.public("housing")
        }
    );
    // Three members: all three must sign.
    let err = fx.reject(fx.by_all(&["samr", "tax"], admit("medins")));
    assert_eq!(
        err,
        TxError::InsufficientQuorum {
            signed: 2,
            required: 3,
            members: 3
        }
    );
    // Removing it again, or admitting it again.
    assert_eq!(
        fx.reject(fx.by_all(&["samr", "tax", "hrss"], remove("housing"))),
        TxError::NotMember {
            department: did("housing")
        }
    );
    assert_eq!(
        fx.reject(fx.by_all(&["samr", "tax", "hrss"], admit("housing"))),
        TxError::DepartmentExists {
            department: did("housing")
        }
    );
    // It is no grantee any more.
    let body = fx.grant_body(
        &e,
        to_dept("housing"),
        types(&[LICENCE]),
        fx.now().plus(DAY),
    );
    assert_eq!(
        fx.reject(fx.signed(e.key(), body)),
        TxError::UnknownGrantee {
            department: did("housing")
        }
    );
    // What it issued while a member still verifies.
    let v = fx.verdict(&id, fx.now(), None);
    assert_all_pass(&v);
    // It cannot change that attestation's status any more.
    assert_eq!(
        fx.reject(fx.status_tx("housing", id, StatusAction::Revoke))
            .code(),
        "not_member"
    );
}

#[test]
fn the_last_member_cannot_be_removed() {
    let mut fx = Fx::with_departments(&["samr", "tax"]);
    fx.accept(fx.by_all(&["samr", "tax"], remove("tax")));
    let err = fx.reject(fx.by("samr", remove("samr")));
    assert_eq!(err.code(), "last_member");
    assert_eq!(err, TxError::LastMember);
}

#[test]
fn department_key_rotation_overlaps_then_retires_the_old_key() {
    let (mut fx, e) = enrolled();
    let t0 = fx.now();
    let until = t0.plus(DAY);
    fx.accept(fx.by_all(
        &["samr", "tax", "hrss"],
        rotate("samr", "samr-2", "samr-node-2", until),
    ));
    let gov = fx.ledger.governance().unwrap();
    let samr = gov.member(&did("samr")).unwrap();
    assert_eq!(samr.current_signing_key(), Some(&key("samr-2").public()));
    assert_eq!(samr.current_node_key(), Some(&key("samr-node-2").public()));
    assert_eq!(samr.signing_keys[0].until, Some(until));
    assert_eq!(samr.signing_keys[1].from, t0);

    // During the overlap both keys sign.
    let old_signed = fx.accept(fx.signed(
        &fx.signing("samr"),
        TxBody::IssueAttestation(fx.licence(&e, "old-key")),
    ));
    fx.accept(fx.signed(
        &key("samr-2"),
        TxBody::IssueAttestation(fx.licence(&e, "new-key")),
    ));
    // Both keys of one department count once towards a quorum.
    let tx = fx
        .tx(admit("medins"))
        .sign(&[&fx.signing("samr"), &key("samr-2"), &fx.signing("tax")])
        .unwrap();
    assert_eq!(
        fx.reject(tx),
        TxError::InsufficientQuorum {
            signed: 2,
            required: 3,
            members: 4
        }
    );

    // After the overlap the old key is refused, the new one accepted.
    fx.time = until;
    let err = fx.reject(fx.signed(
        &fx.signing("samr"),
        TxBody::IssueAttestation(fx.licence(&e, "late-old")),
    ));
    assert_eq!(
        err,
        TxError::WrongSigner {
            expected: "a current signing key of samr".into(),
            found: vec![fx.public("samr")],
        }
    );
    fx.accept(fx.signed(
        &key("samr-2"),
        TxBody::IssueAttestation(fx.licence(&e, "late-new")),
    ));
    // What the old key signed during the overlap still verifies.
    assert_all_pass(&fx.verdict(&AttestationId(old_signed.0), fx.now(), None));
}

#[test]
fn key_rotation_rules() {
    let mut fx = Fx::new();
    let signers = ["samr", "tax", "hrss"];
    let max = Params::default().max_key_overlap_ms;
    let now = fx.now();
    let err = fx.reject(fx.by_all(&signers, rotate("samr", "s2", "n2", now.minus(1))));
    assert_eq!(err.code(), "invalid_key_overlap");
    assert_eq!(
        err,
        TxError::InvalidOverlap {
            earliest: now.plus(1),
            latest: now.plus(max),
            found: now.minus(1)
        }
    );
    let now = fx.now();
    let err = fx.reject(fx.by_all(&signers, rotate("samr", "s2", "n2", now.plus(max + 1))));
    assert_eq!(
        err,
        TxError::InvalidOverlap {
            earliest: now.plus(1),
            latest: now.plus(max),
            found: now.plus(max + 1)
        }
    );
    // Another department's key.
    let body = TxBody::Governance(GovernanceAction::RotateDepartmentKeys {
        department: did("samr"),
        signing_key: fx.public("tax"),
        node_key: key("n2").public(),
        previous_valid_until: fx.now().plus(1),
    });
    assert_eq!(
        fx.reject(fx.by_all(&signers, body)),
        TxError::KeyInUse {
            key: fx.public("tax")
        }
    );
    // Same key twice.
    let body = TxBody::Governance(GovernanceAction::RotateDepartmentKeys {
        department: did("samr"),
        signing_key: key("s2").public(),
        node_key: key("s2").public(),
        previous_valid_until: fx.now().plus(1),
    });
    assert_eq!(
        invalid_field(&fx.reject(fx.by_all(&signers, body))),
        "node_key"
    );
    // A non-member.
    let err = fx.reject(fx.by_all(&signers, rotate("medins", "s2", "n2", fx.now().plus(1))));
    assert_eq!(
        err,
        TxError::NotMember {
            department: did("medins")
        }
    );
    // A key once used never comes back, even to the same department.
    fx.accept(fx.by_all(&signers, rotate("samr", "s2", "n2", fx.now().plus(1))));
    let body = TxBody::Governance(GovernanceAction::RotateDepartmentKeys {
        department: did("samr"),
        signing_key: fx.public("samr"),
        node_key: key("n3").public(),
        previous_valid_until: fx.now().plus(1),
    });
    let tx = fx
        .tx(body)
        .sign(&[&key("s2"), &fx.signing("tax"), &fx.signing("hrss")])
        .unwrap();
    assert_eq!(
        fx.reject(tx),
        TxError::KeyInUse {
            key: fx.public("samr")
        }
    );
}

#[test]
fn document_types_and_issuer_authorisation() {
    let (mut fx, e) = enrolled();
    let signers = ["samr", "tax", "hrss"];
    fx.accept(fx.by_all(&signers, define("MEDICAL_INSURANCE_CERT", None, false)));
    let err = fx.reject(fx.by_all(&signers, define("MEDICAL_INSURANCE_CERT", None, false)));
    assert_eq!(err.code(), "document_type_exists");
    assert_eq!(
        err,
        TxError::DocumentTypeExists {
            doc_type: dt("MEDICAL_INSURANCE_CERT")
        }
    );
    assert_eq!(
        invalid_field(&fx.reject(fx.by_all(&signers, define("ZERO_DAYS", Some(0), true)))),
        "max_validity_days"
    );
    let err = fx.reject(fx.by_all(&signers, authorise("hrss", "NO_SUCH_TYPE")));
    assert_eq!(err.code(), "unknown_document_type");
    assert_eq!(
        err,
        TxError::UnknownDocumentType {
            doc_type: dt("NO_SUCH_TYPE")
        }
    );
    assert_eq!(
        fx.reject(fx.by_all(&signers, authorise("medins", LICENCE))),
        TxError::NotMember {
            department: did("medins")
        }
    );
    let err = fx.reject(fx.by_all(&signers, authorise("samr", LICENCE)));
    assert_eq!(err.code(), "already_authorised");
    assert_eq!(
        err,
        TxError::AlreadyAuthorised {
            department: did("samr"),
            doc_type: dt(LICENCE)
        }
    );
    let err = fx.reject(fx.by_all(&signers, withdraw_issuer("tax", LICENCE)));
    assert_eq!(err.code(), "issuer_not_authorised");
    assert_eq!(
        err,
        TxError::NotAuthorised {
            department: did("tax"),
            doc_type: dt(LICENCE)
        }
    );
    assert_eq!(
        fx.reject(fx.by_all(&signers, withdraw_issuer("tax", "NO_SUCH_TYPE"))),
        TxError::UnknownDocumentType {
            doc_type: dt("NO_SUCH_TYPE")
        }
    );

    // A new type, a new issuer.
    fx.accept(fx.by_all(&signers, authorise("hrss", "MEDICAL_INSURANCE_CERT")));
    let mut a = fx.licence(&e, "mic-1");
    a.issuer = did("hrss");
    a.doc_type = dt("MEDICAL_INSURANCE_CERT");
    fx.issue(a);
}

#[test]
fn a_withdrawn_issuer_cannot_issue_but_its_earlier_attestations_verify() {
    let (mut fx, e) = enrolled();
    let signers = ["samr", "tax", "hrss"];
    let earlier = fx.issue(fx.licence(&e, "lic-1"));
    fx.accept(fx.by_all(&signers, withdraw_issuer("samr", LICENCE)));
    let err = fx.reject(fx.issue_tx(fx.licence(&e, "lic-2")));
    assert_eq!(
        err,
        TxError::NotAuthorised {
            department: did("samr"),
            doc_type: dt(LICENCE)
        }
    );
    let v = fx.verdict(&earlier, fx.now(), None);
    assert_eq!(
        check(&v, CheckKind::IssuerAuthorised),
        (Outcome::Pass, None)
    );
    assert_all_pass(&v);
    // Authorised again, it issues again.
    fx.accept(fx.by_all(&signers, authorise("samr", LICENCE)));
    fx.issue(fx.licence(&e, "lic-2"));
}

/// An attestation accepted earlier in the same block as the withdrawal of its issuer's
/// authorisation was issued while the issuer was authorised; its verdict must say so.
#[test]
fn an_attestation_issued_in_the_block_that_withdraws_its_issuer_verifies() {
    let (mut fx, e) = enrolled();
    let issue = fx.issue_tx(fx.licence(&e, "same-block"));
    let id = AttestationId(issue.id(SUITE).0);
    let built = fx.block(vec![
        issue,
        fx.by_all(&["samr", "tax", "hrss"], withdraw_issuer("samr", LICENCE)),
    ]);
    assert!(built.rejected.is_empty());
    let v = fx.verdict(&id, fx.now(), None);
    assert_eq!(
        check(&v, CheckKind::IssuerAuthorised),
        (Outcome::Pass, None)
    );
}

/// The same with a key rotation whose overlap ends at once (`previous_valid_until` = now, which
/// the rules allow): the old key signed the attestation while it was valid.
#[test]
fn an_attestation_signed_in_the_block_that_rotates_its_key_verifies() {
    let (mut fx, e) = enrolled();
    let issue = fx.issue_tx(fx.licence(&e, "same-block"));
    let id = AttestationId(issue.id(SUITE).0);
    let now = fx.now();
    let built = fx.block(vec![
        issue,
        fx.by_all(
            &["samr", "tax", "hrss"],
            rotate("samr", "s2", "n2", now.plus(1)),
        ),
    ]);
    assert!(built.rejected.is_empty());
    let v = fx.verdict(&id, fx.now(), None);
    assert_eq!(check(&v, CheckKind::IssuerKey), (Outcome::Pass, None));
}

// ---------------------------------------------------------------------------------------------
// Enterprises
// ---------------------------------------------------------------------------------------------

#[test]
fn enrolment_rules() {
    let (mut fx, e) = enrolled();
    let rec = state::enterprise(fx.ledger.state(), &e.uscc)
        .unwrap()
        .unwrap();
    assert_eq!(rec.current_key(), Some(&e.key().public()));
    assert_eq!(rec.enrolled_by, did("samr"));
    let err = fx.reject(fx.by("tax", e.enrolment("tax")));
    assert_eq!(err.code(), "already_enrolled");
    assert_eq!(err, TxError::AlreadyEnrolled { enterprise: e.uscc });

    let stranger = Ent::new(2);
    let err = fx.reject(fx.issue_tx(fx.licence(&stranger, "lic")));
    assert_eq!(err.code(), "not_enrolled");
    assert_eq!(
        err,
        TxError::NotEnrolled {
            enterprise: stranger.uscc
        }
    );
    let body = fx.grant_body(
        &stranger,
        to_dept("tax"),
        types(&[LICENCE]),
        fx.now().plus(DAY),
    );
    assert_eq!(
        fx.reject(fx.signed(stranger.key(), body)),
        TxError::NotEnrolled {
            enterprise: stranger.uscc
        }
    );
}

#[test]
fn enterprise_key_rotation_retires_the_old_key() {
    let (mut fx, e) = enrolled();
    let rotation = |k: usize| {
        TxBody::RotateEnterpriseKey(EnterpriseKeyRotation {
            enterprise: e.uscc,
            new_key: e.keys[k].public(),
        })
    };
    // Only the enterprise's current key may rotate it.
    let err = fx.reject(fx.by("samr", rotation(1)));
    assert_eq!(err.code(), "wrong_signer");
    fx.accept(fx.signed(e.key(), rotation(1)));
    let rec = state::enterprise(fx.ledger.state(), &e.uscc)
        .unwrap()
        .unwrap();
    assert_eq!(rec.current_key(), Some(&e.keys[1].public()));

    let body = fx.grant_body(&e, to_dept("tax"), types(&[LICENCE]), fx.now().plus(DAY));
    let err = fx.reject(fx.signed(e.key(), body.clone()));
    assert_eq!(
        err,
        TxError::WrongSigner {
            expected: format!("the current key of enterprise {}", e.uscc),
            found: vec![e.key().public()],
        }
    );
    fx.accept(fx.signed(&e.keys[1], body));
    // The old key cannot come back.
    let err = fx.reject(fx.signed(&e.keys[1], rotation(0)));
    assert_eq!(err.code(), "key_in_use");
    assert_eq!(
        err,
        TxError::KeyInUse {
            key: e.key().public()
        }
    );
}

// ---------------------------------------------------------------------------------------------
// Issuing
// ---------------------------------------------------------------------------------------------

#[test]
fn issuing_needs_authorisation_for_a_known_type() {
    let (mut fx, e) = enrolled();
    let mut a = fx.licence(&e, "lic");
    a.issuer = did("tax");
    let err = fx.reject(fx.issue_tx(a));
    assert_eq!(
        err,
        TxError::NotAuthorised {
            department: did("tax"),
            doc_type: dt(LICENCE)
        }
    );
    let mut a = fx.licence(&e, "lic");
    a.doc_type = dt("NO_SUCH_TYPE");
    assert_eq!(
        fx.reject(fx.issue_tx(a)),
        TxError::UnknownDocumentType {
            doc_type: dt("NO_SUCH_TYPE")
        }
    );
}

#[test]
fn issuing_checks_claims_and_validity() {
    let (mut fx, e) = enrolled();
    let mut a = fx.licence(&e, "lic");
    a.claims = claims(&[("name", "x"), ("licence_no", "1")]);
    assert_eq!(invalid_field(&fx.reject(fx.issue_tx(a))), "claims");
    let mut a = fx.licence(&e, "lic");
    a.claims = claims(&[("no", "1"), ("no", "2")]);
    assert_eq!(invalid_field(&fx.reject(fx.issue_tx(a))), "claims");

    let mut a = fx.licence(&e, "lic");
    a.valid_until = Some(a.valid_from);
    assert_eq!(invalid_field(&fx.reject(fx.issue_tx(a))), "valid_until");
    let mut a = fx.licence(&e, "lic");
    a.valid_until = Some(a.valid_from.minus(1));
    assert_eq!(invalid_field(&fx.reject(fx.issue_tx(a))), "valid_until");

    // TAX_CREDIT_RATING: at most 400 days, and must expire.
    let mut a = fx.rating(&e, "rating");
    a.valid_until = Some(a.valid_from.plus(400 * DAY + 1));
    assert_eq!(invalid_field(&fx.reject(fx.issue_tx(a))), "valid_until");
    let mut a = fx.rating(&e, "rating");
    a.valid_until = None;
    assert_eq!(invalid_field(&fx.reject(fx.issue_tx(a))), "valid_until");
    let mut a = fx.rating(&e, "rating");
    a.valid_until = Some(a.valid_from.plus(400 * DAY));
    fx.issue(a);
}

#[test]
fn the_same_file_cannot_be_live_twice_as_one_type() {
    let (mut fx, e) = enrolled();
    let first = fx.issue(fx.licence(&e, "lic"));
    let err = fx.reject(fx.issue_tx(fx.licence(&e, "lic")));
    assert_eq!(err.code(), "digest_already_live");
    assert_eq!(
        err,
        TxError::DigestAlreadyLive {
            file_digest: file("lic"),
            doc_type: dt(LICENCE),
            existing: first
        }
    );
    // Another type may attest the same file.
    let mut permit = fx.licence(&e, "lic");
    permit.doc_type = dt("ADMIN_PERMIT");
    permit.valid_until = Some(permit.valid_from.plus(DAY));
    fx.issue(permit);
    // Once revoked, the file may be attested afresh.
    fx.accept(fx.status_tx("samr", first, StatusAction::Revoke));
    fx.issue(fx.licence(&e, "lic"));
}

#[test]
fn supersession_rules() {
    let (mut fx, e) = enrolled();
    let other = Ent::new(2);
    fx.enrol(&other);
    let old = fx.issue(fx.licence(&e, "v1"));

    let unknown = AttestationId(Digest([9; 32]));
    let mut a = fx.licence(&e, "v2");
    a.supersedes = Some(unknown);
    let err = fx.reject(fx.issue_tx(a));
    assert_eq!(err.code(), "unknown_attestation");
    assert_eq!(
        err,
        TxError::UnknownAttestation {
            attestation: unknown
        }
    );

    let mut a = fx.licence(&other, "v2");
    a.supersedes = Some(old);
    let err = fx.reject(fx.issue_tx(a));
    assert_eq!(err.code(), "invalid_supersession");
    assert_eq!(
        err,
        TxError::InvalidSupersession {
            attestation: old,
            reason: "it is about another enterprise"
        }
    );

    // samr also issues ADMIN_PERMIT in this network.
    let mut a = fx.licence(&e, "v2");
    a.doc_type = dt("ADMIN_PERMIT");
    a.valid_until = Some(a.valid_from.plus(DAY));
    a.supersedes = Some(old);
    assert_eq!(
        fx.reject(fx.issue_tx(a)),
        TxError::InvalidSupersession {
            attestation: old,
            reason: "it is of another document type"
        }
    );

    fx.accept(fx.by_all(&["samr", "tax", "hrss"], authorise("tax", LICENCE)));
    let mut a = fx.licence(&e, "v2");
    a.issuer = did("tax");
    a.supersedes = Some(old);
    assert_eq!(
        fx.reject(fx.issue_tx(a)),
        TxError::InvalidSupersession {
            attestation: old,
            reason: "it was issued by another department"
        }
    );

    // A valid new version.
    let mut a = fx.licence(&e, "v2");
    a.supersedes = Some(old);
    let new = fx.issue(a);
    let rec = fx.record(&old);
    assert_eq!(rec.superseded_by, Some(new));
    assert_eq!(rec.status, Status::Active);
    let mut a = fx.licence(&e, "v3");
    a.supersedes = Some(old);
    let err = fx.reject(fx.issue_tx(a));
    assert_eq!(err.code(), "already_superseded");
    assert_eq!(
        err,
        TxError::AlreadySuperseded {
            attestation: old,
            by: new
        }
    );

    // A revoked attestation cannot be superseded.
    let revoked = fx.issue(fx.licence(&e, "r1"));
    fx.accept(fx.status_tx("samr", revoked, StatusAction::Revoke));
    let mut a = fx.licence(&e, "r2");
    a.supersedes = Some(revoked);
    assert_eq!(
        fx.reject(fx.issue_tx(a)),
        TxError::InvalidSupersession {
            attestation: revoked,
            reason: "it is revoked; issue a new attestation instead"
        }
    );
}

#[test]
fn after_supersession_the_old_version_fails_and_the_file_is_reissued_only_by_superseding() {
    let (mut fx, e) = enrolled();
    let old = fx.issue(fx.licence(&e, "same-file"));
    let mut a = fx.licence(&e, "same-file");
    a.claims = claims(&[("licence_no", "same-file"), ("name", "更名后有限公司")]);
    a.supersedes = Some(old);
    let new = fx.issue(a);

    let v = fx.verdict(&old, fx.now(), None);
    assert!(!v.valid);
    assert_eq!(v.failures(), vec![Reason::Superseded]);
    assert_eq!(v.superseded_by, Some(new));
    assert_all_pass(&fx.verdict(&new, fx.now(), None));
    // Before the supersession the old version was the current one.
    let issued_at = fx.record(&old).issued_at;
    assert_all_pass(&fx.verdict(&old, issued_at, None));

    // The file is live again (as the new version): a fresh issue of it is refused…
    let err = fx.reject(fx.issue_tx(fx.licence(&e, "same-file")));
    assert_eq!(
        err,
        TxError::DigestAlreadyLive {
            file_digest: file("same-file"),
            doc_type: dt(LICENCE),
            existing: new
        }
    );
    // …and superseding the old version, not the live one, also.
    let mut a = fx.licence(&e, "same-file");
    a.supersedes = Some(old);
    assert_eq!(fx.reject(fx.issue_tx(a)).code(), "digest_already_live");
    // Superseding the live version works.
    let mut a = fx.licence(&e, "same-file");
    a.supersedes = Some(new);
    let newest = fx.issue(a);
    // A superseded attestation's status cannot be suspended or reinstated…
    let err = fx.reject(fx.status_tx("samr", old, StatusAction::Suspend));
    assert_eq!(
        err,
        TxError::AlreadySuperseded {
            attestation: old,
            by: new
        }
    );
    assert_eq!(
        fx.reject(fx.status_tx("samr", new, StatusAction::Reinstate))
            .code(),
        "already_superseded"
    );
    // …but it can be revoked, which leaves the newest version live.
    fx.accept(fx.status_tx("samr", old, StatusAction::Revoke));
    assert_eq!(fx.record(&old).status, Status::Revoked);
    assert_eq!(
        fx.reject(fx.issue_tx(fx.licence(&e, "same-file"))),
        TxError::DigestAlreadyLive {
            file_digest: file("same-file"),
            doc_type: dt(LICENCE),
            existing: newest
        }
    );
    // Revoking the newest frees the file.
    fx.accept(fx.status_tx("samr", newest, StatusAction::Revoke));
    fx.issue(fx.licence(&e, "same-file"));
}

// ---------------------------------------------------------------------------------------------
// Status
// ---------------------------------------------------------------------------------------------

#[test]
fn status_transitions() {
    let (mut fx, e) = enrolled();
    let id = fx.issue(fx.licence(&e, "lic"));
    let err = fx.reject(fx.status_tx("samr", id, StatusAction::Reinstate));
    assert_eq!(err.code(), "invalid_status_transition");
    assert_eq!(
        err,
        TxError::InvalidTransition {
            from: Status::Active,
            action: StatusAction::Reinstate
        }
    );
    fx.accept(fx.status_tx("samr", id, StatusAction::Suspend));
    assert_eq!(fx.record(&id).status, Status::Suspended);
    assert_eq!(
        fx.reject(fx.status_tx("samr", id, StatusAction::Suspend)),
        TxError::InvalidTransition {
            from: Status::Suspended,
            action: StatusAction::Suspend
        }
    );
    fx.accept(fx.status_tx("samr", id, StatusAction::Reinstate));
    assert_eq!(fx.record(&id).status, Status::Active);
    fx.accept(fx.status_tx("samr", id, StatusAction::Revoke));
    let rec = fx.record(&id);
    assert_eq!(rec.status, Status::Revoked);
    let actions: Vec<StatusAction> = rec.history.iter().map(|h| h.action).collect();
    assert_eq!(
        actions,
        vec![
            StatusAction::Suspend,
            StatusAction::Reinstate,
            StatusAction::Revoke
        ]
    );
    // Revoked never leaves revoked.
    for action in [
        StatusAction::Suspend,
        StatusAction::Reinstate,
        StatusAction::Revoke,
    ] {
        assert_eq!(
            fx.reject(fx.status_tx("samr", id, action)),
            TxError::InvalidTransition {
                from: Status::Revoked,
                action
            }
        );
    }
    // Suspended may be revoked directly.
    let id2 = fx.issue(fx.licence(&e, "lic-2"));
    fx.accept(fx.status_tx("samr", id2, StatusAction::Suspend));
    fx.accept(fx.status_tx("samr", id2, StatusAction::Revoke));
    assert_eq!(fx.record(&id2).status, Status::Revoked);
}

#[test]
fn only_the_issuer_changes_status() {
    let (mut fx, e) = enrolled();
    let id = fx.issue(fx.licence(&e, "lic"));
    let err = fx.reject(fx.status_tx("tax", id, StatusAction::Revoke));
    assert_eq!(err.code(), "not_issuer");
    assert_eq!(
        err,
        TxError::NotIssuer {
            department: did("tax"),
            attestation: id,
            issuer: did("samr")
        }
    );
    // Claiming to be the issuer with another key is a wrong signer.
    let body = fx.status_tx("samr", id, StatusAction::Revoke).tx.body;
    assert_eq!(
        fx.reject(fx.signed(&fx.signing("tax"), body)).code(),
        "wrong_signer"
    );
    let unknown = AttestationId(Digest([3; 32]));
    assert_eq!(
        fx.reject(fx.status_tx("samr", unknown, StatusAction::Suspend)),
        TxError::UnknownAttestation {
            attestation: unknown
        }
    );
}

// ---------------------------------------------------------------------------------------------
// Grants
// ---------------------------------------------------------------------------------------------

#[test]
fn grant_expiry_rules() {
    let (mut fx, e) = enrolled();
    let max = Params::default().max_grant_duration_ms;
    let body = fx.grant_body(&e, to_dept("housing"), types(&[LICENCE]), fx.now().minus(1));
    assert_eq!(
        invalid_field(&fx.reject(fx.signed(e.key(), body))),
        "expires_at"
    );
    let body = fx.grant_body(&e, to_dept("housing"), types(&[LICENCE]), fx.now());
    assert_eq!(
        invalid_field(&fx.reject(fx.signed(e.key(), body))),
        "expires_at"
    );
    let body = fx.grant_body(
        &e,
        to_dept("housing"),
        types(&[LICENCE]),
        fx.now().plus(max + 1),
    );
    assert_eq!(
        invalid_field(&fx.reject(fx.signed(e.key(), body))),
        "expires_at"
    );
    let body = fx.grant_body(
        &e,
        to_dept("housing"),
        types(&[LICENCE]),
        fx.now().plus(max),
    );
    fx.accept(fx.signed(e.key(), body));
}

#[test]
fn grant_grantee_scope_and_purpose_rules() {
    let (mut fx, e) = enrolled();
    let other = Ent::new(2);
    fx.enrol(&other);
    let foreign = fx.issue(fx.licence(&other, "other-lic"));
    let mine = fx.issue(fx.licence(&e, "my-lic"));
    let exp = fx.now().plus(DAY);

    let body = fx.grant_body(&e, to_dept("medins"), types(&[LICENCE]), exp);
    let err = fx.reject(fx.signed(e.key(), body));
    assert_eq!(err.code(), "unknown_grantee");
    assert_eq!(
        err,
        TxError::UnknownGrantee {
            department: did("medins")
        }
    );

    let empty = vault_protocol::tx::GrantScope::DocumentTypes(BoundedVec::default());
    let body = fx.grant_body(&e, to_dept("housing"), empty, exp);
    assert_eq!(invalid_field(&fx.reject(fx.signed(e.key(), body))), "scope");
    let body = fx.grant_body(&e, to_dept("housing"), types(&[RATING, LICENCE]), exp);
    assert_eq!(invalid_field(&fx.reject(fx.signed(e.key(), body))), "scope");
    let body = fx.grant_body(&e, to_dept("housing"), types(&[LICENCE, LICENCE]), exp);
    assert_eq!(invalid_field(&fx.reject(fx.signed(e.key(), body))), "scope");
    let empty = vault_protocol::tx::GrantScope::Attestations(BoundedVec::default());
    let body = fx.grant_body(&e, to_dept("housing"), empty, exp);
    assert_eq!(invalid_field(&fx.reject(fx.signed(e.key(), body))), "scope");
    let mut two = [mine, AttestationId(Digest([0xff; 32]))];
    two.sort();
    two.reverse();
    let unsorted =
        vault_protocol::tx::GrantScope::Attestations(BoundedVec::new(two.to_vec()).unwrap());
    let body = fx.grant_body(&e, to_dept("housing"), unsorted, exp);
    assert_eq!(invalid_field(&fx.reject(fx.signed(e.key(), body))), "scope");

    let body = fx.grant_body(&e, to_dept("housing"), atts(&[mine, foreign]), exp);
    let err = fx.reject(fx.signed(e.key(), body));
    assert_eq!(err.code(), "foreign_attestation");
    assert_eq!(
        err,
        TxError::ForeignAttestation {
            attestation: foreign
        }
    );
    let ghost = AttestationId(Digest([1; 32]));
    let body = fx.grant_body(&e, to_dept("housing"), atts(&[ghost]), exp);
    assert_eq!(
        fx.reject(fx.signed(e.key(), body)),
        TxError::UnknownAttestation { attestation: ghost }
    );
    let body = fx.grant_body(&e, to_dept("housing"), types(&["NO_SUCH_TYPE"]), exp);
    assert_eq!(
        fx.reject(fx.signed(e.key(), body)),
        TxError::UnknownDocumentType {
            doc_type: dt("NO_SUCH_TYPE")
        }
    );
    let mut body = fx.grant_body(&e, to_dept("housing"), types(&[LICENCE]), exp);
    if let TxBody::Grant(g) = &mut body {
        g.purpose.code = bs("");
    }
    assert_eq!(
        invalid_field(&fx.reject(fx.signed(e.key(), body))),
        "purpose.code"
    );

    // Valid: to a department, by attestation; to an application, by type.
    fx.grant(&e, to_dept("housing"), atts(&[mine]), DAY);
    fx.grant(
        &e,
        Grantee::Application(key("bank").public()),
        types(&[LICENCE, RATING]),
        DAY,
    );
}

#[test]
fn withdrawing_grants() {
    let (mut fx, e) = enrolled();
    let other = Ent::new(2);
    fx.enrol(&other);
    let g = fx.grant(&e, to_dept("housing"), types(&[LICENCE]), DAY);
    let err = fx.reject(fx.signed(other.key(), fx.withdrawal(&other, g)));
    assert_eq!(err.code(), "grant_not_owned");
    assert_eq!(err, TxError::GrantNotOwned { grant: g });
    // Naming the owner but signing with another key.
    assert_eq!(
        fx.reject(fx.signed(other.key(), fx.withdrawal(&e, g)))
            .code(),
        "wrong_signer"
    );
    let unknown = GrantId(Digest([4; 32]));
    let err = fx.reject(fx.signed(e.key(), fx.withdrawal(&e, unknown)));
    assert_eq!(err.code(), "unknown_grant");
    assert_eq!(err, TxError::UnknownGrant { grant: unknown });

    let at = fx.now();
    fx.accept(fx.signed(e.key(), fx.withdrawal(&e, g)));
    // In force through the block's instant; withdrawn from the next millisecond.
    assert_eq!(
        state::grant(fx.ledger.state(), &g)
            .unwrap()
            .unwrap()
            .withdrawn_at,
        Some(at.plus(1))
    );
    let err = fx.reject(fx.signed(e.key(), fx.withdrawal(&e, g)));
    assert_eq!(err.code(), "grant_already_withdrawn");
    assert_eq!(err, TxError::GrantAlreadyWithdrawn { grant: g });
}

// ---------------------------------------------------------------------------------------------
// Access receipts
// ---------------------------------------------------------------------------------------------

/// Enterprise 1 with a licence and a rating, and a 30-day grant of its licences to housing.
fn with_grant() -> (Fx, Ent, AttestationId, AttestationId, GrantId) {
    let (mut fx, e) = enrolled();
    let lic = fx.issue(fx.licence(&e, "lic"));
    let rating = fx.issue(fx.rating(&e, "rating"));
    let g = fx.grant(&e, to_dept("housing"), types(&[LICENCE]), 30 * DAY);
    (fx, e, lic, rating, g)
}

#[test]
fn a_read_under_a_valid_grant_is_recorded_and_listed() {
    let (mut fx, e, lic, _, g) = with_grant();
    let at = fx.now().minus(SECOND);
    let tx = fx.receipts("housing", vec![read(to_dept("housing"), lic, g, at)]);
    fx.accept(tx);
    let receipts = state::receipts_by_enterprise(fx.ledger.state(), &e.uscc).unwrap();
    assert_eq!(receipts.len(), 1);
    let r = &receipts[0];
    assert_eq!(r.read.attestation, lic);
    assert_eq!(r.read.grant, g);
    assert_eq!(r.read.read_at, at);
    assert_eq!(r.enterprise, e.uscc);
    assert_eq!(r.doc_type, dt(LICENCE));
    assert_eq!(r.purpose_code, "P-001");
    assert_eq!(r.recorder, did("housing"));
    assert_eq!(
        state::receipt(fx.ledger.state(), &r.id).unwrap().as_ref(),
        Some(r)
    );
    // An application's reads are recorded by the department whose node served them.
    let bank = Grantee::Application(key("bank").public());
    let g2 = fx.grant(&e, bank.clone(), types(&[LICENCE]), DAY);
    fx.accept(fx.receipts("samr", vec![read(bank, lic, g2, fx.now())]));
    let receipts = state::receipts_by_enterprise(fx.ledger.state(), &e.uscc).unwrap();
    assert_eq!(receipts.len(), 2);
    assert!(receipts[0].read.read_at <= receipts[1].read.read_at);
}

fn assert_no_receipts(fx: &Fx, e: &Ent) {
    assert!(state::receipts_by_enterprise(fx.ledger.state(), &e.uscc)
        .unwrap()
        .is_empty());
}

#[test]
fn reads_no_grant_permits_are_rejected_and_leave_no_receipt() {
    let (mut fx, e, lic, rating, g) = with_grant();
    let housing = to_dept("housing");

    // Out of scope: the grant covers licences, not ratings.
    let err = fx.reject(fx.receipts("housing", vec![read(housing.clone(), rating, g, fx.now())]));
    assert_eq!(err.code(), "read_not_permitted");
    assert_eq!(
        err,
        TxError::ReadNotPermitted {
            index: 0,
            refusal: AccessRefusal::OutOfScope
        }
    );
    // Another grantee's grant: the tax bureau holds none.
    let err = fx.reject(fx.receipts("tax", vec![read(to_dept("tax"), lic, g, fx.now())]));
    assert_eq!(
        err,
        TxError::ReadNotPermitted {
            index: 0,
            refusal: AccessRefusal::WrongGrantee
        }
    );
    // A grant that does not exist.
    let ghost = GrantId(Digest([5; 32]));
    let err = fx.reject(fx.receipts("housing", vec![read(housing.clone(), lic, ghost, fx.now())]));
    assert_eq!(err, TxError::UnknownGrant { grant: ghost });
    // A read before the grant was made.
    let granted_at = state::grant(fx.ledger.state(), &g)
        .unwrap()
        .unwrap()
        .granted_at;
    let err = fx.reject(fx.receipts(
        "housing",
        vec![read(housing.clone(), lic, g, granted_at.minus(1))],
    ));
    assert_eq!(
        err,
        TxError::ReadNotPermitted {
            index: 0,
            refusal: AccessRefusal::NotYetInForce
        }
    );
    // The second of two reads is bad: neither is recorded.
    let err = fx.reject(fx.receipts(
        "housing",
        vec![
            read(housing.clone(), lic, g, fx.now()),
            read(housing.clone(), rating, g, fx.now()),
        ],
    ));
    assert_eq!(
        err,
        TxError::ReadNotPermitted {
            index: 1,
            refusal: AccessRefusal::OutOfScope
        }
    );
    assert_no_receipts(&fx, &e);

    // Withdrawn (from just after the withdrawing block's instant).
    let withdrawn_at = fx.now().plus(1);
    fx.accept(fx.signed(e.key(), fx.withdrawal(&e, g)));
    let err = fx.reject(fx.receipts("housing", vec![read(housing.clone(), lic, g, fx.now())]));
    assert_eq!(
        err,
        TxError::ReadNotPermitted {
            index: 0,
            refusal: AccessRefusal::Withdrawn { withdrawn_at }
        }
    );
    // A read served before the withdrawal may still be recorded.
    fx.accept(fx.receipts(
        "housing",
        vec![read(housing.clone(), lic, g, withdrawn_at.minus(1))],
    ));
    assert_eq!(
        state::receipts_by_enterprise(fx.ledger.state(), &e.uscc)
            .unwrap()
            .len(),
        1
    );
}

#[test]
fn reads_under_an_expired_grant_are_rejected() {
    let (mut fx, e) = enrolled();
    let lic = fx.issue(fx.licence(&e, "lic"));
    let g = fx.grant(&e, to_dept("housing"), types(&[LICENCE]), HOUR);
    let expired_at = state::grant(fx.ledger.state(), &g)
        .unwrap()
        .unwrap()
        .grant
        .expires_at;
    fx.advance(2 * HOUR);
    let err = fx.reject(fx.receipts("housing", vec![read(to_dept("housing"), lic, g, fx.now())]));
    assert_eq!(
        err,
        TxError::ReadNotPermitted {
            index: 0,
            refusal: AccessRefusal::Expired { expired_at }
        }
    );
    assert_no_receipts(&fx, &e);
    // A read from before the expiry is fine.
    fx.accept(fx.receipts(
        "housing",
        vec![read(to_dept("housing"), lic, g, expired_at.minus(1))],
    ));
}

#[test]
fn receipts_rules_on_recorder_reads_and_times() {
    let (mut fx, e, lic, _, g) = with_grant();
    // A department's reads are recorded by that department.
    let err = fx.reject(fx.receipts("samr", vec![read(to_dept("housing"), lic, g, fx.now())]));
    assert_eq!(invalid_field(&err), "reader");
    // Signed by someone else than the recorder.
    let tx = fx.receipts("housing", vec![read(to_dept("housing"), lic, g, fx.now())]);
    let tx = tx.tx.sign_one(&fx.signing("samr"));
    assert_eq!(fx.reject(tx).code(), "wrong_signer");
    assert_eq!(
        invalid_field(&fx.reject(fx.receipts("housing", vec![]))),
        "reads"
    );
    let params = Params::default();
    let err = fx.reject(fx.receipts(
        "housing",
        vec![read(
            to_dept("housing"),
            lic,
            g,
            fx.now().plus(params.max_clock_skew_ms + 1),
        )],
    ));
    assert_eq!(invalid_field(&err), "read_at");
    let ghost = AttestationId(Digest([6; 32]));
    assert_eq!(
        fx.reject(fx.receipts(
            "housing",
            vec![read(to_dept("housing"), ghost, g, fx.now())]
        )),
        TxError::UnknownAttestation { attestation: ghost }
    );
    assert_no_receipts(&fx, &e);
}

#[test]
fn find_grant_gives_the_most_specific_refusal() {
    let (mut fx, e, lic, _, _) = with_grant();
    let other = Ent::new(2);
    fx.enrol(&other);
    let view = |fx: &Fx, reader: &Grantee, purpose: Option<&str>, at: Timestamp| {
        state::find_grant(fx.ledger.state(), reader, &fx.record(&lic), purpose, at).unwrap()
    };
    // No grant from this enterprise to the tax bureau (another enterprise's grant is no help).
    let tax = to_dept("tax");
    fx.grant(&other, tax.clone(), types(&[LICENCE]), DAY);
    assert_eq!(view(&fx, &tax, None, fx.now()), Err(AccessRefusal::NoGrant));
    // Only a grant for other documents.
    fx.grant(&e, tax.clone(), types(&[RATING]), DAY);
    assert_eq!(
        view(&fx, &tax, None, fx.now()),
        Err(AccessRefusal::OutOfScope)
    );
    // A covering grant for another purpose says more.
    fx.grant(&e, tax.clone(), types(&[LICENCE]), DAY);
    assert_eq!(
        view(&fx, &tax, Some("P-999"), fx.now()),
        Err(AccessRefusal::OtherPurpose {
            granted: "P-001".into(),
            requested: "P-999".into()
        })
    );
    let found = view(&fx, &tax, Some("P-001"), fx.now()).unwrap();
    assert_eq!(found.grant.scope, types(&[LICENCE]));
    // Expired says more than out of scope.
    let expires = found.grant.expires_at;
    assert_eq!(
        view(&fx, &tax, Some("P-001"), expires),
        Err(AccessRefusal::Expired {
            expired_at: expires
        })
    );
    // Withdrawn.
    let at = fx.now();
    fx.accept(fx.signed(e.key(), fx.withdrawal(&e, found.id)));
    assert_eq!(
        view(&fx, &tax, None, fx.now()),
        Err(AccessRefusal::Withdrawn {
            withdrawn_at: at.plus(1)
        })
    );
    // The enterprise's grants, oldest first.
    let grants = state::grants_by_enterprise(fx.ledger.state(), &e.uscc).unwrap();
    assert_eq!(grants.len(), 3);
    assert!(grants
        .windows(2)
        .all(|w| w[0].granted_at <= w[1].granted_at));
    assert!(grants.iter().all(|g| g.grant.enterprise == e.uscc));
    assert_eq!(
        state::grants_by_enterprise(fx.ledger.state(), &other.uscc)
            .unwrap()
            .len(),
        1
    );
}

#[test]
fn grants_in_force_at_a_time() {
    let (mut fx, e, lic, _, g) = with_grant();
    let housing = to_dept("housing");
    let rec = fx.record(&lic);
    let granted = state::grant(fx.ledger.state(), &g).unwrap().unwrap();
    let ids = |at: Timestamp, fx: &Fx| -> Vec<GrantId> {
        state::grants_in_force(fx.ledger.state(), &housing, &rec, at)
            .unwrap()
            .into_iter()
            .map(|g| g.id)
            .collect()
    };
    assert_eq!(ids(granted.granted_at, &fx), vec![g]);
    assert!(ids(granted.granted_at.minus(1), &fx).is_empty());
    assert!(ids(granted.grant.expires_at, &fx).is_empty());
    let g2 = fx.grant(&e, housing.clone(), atts(&[lic]), DAY);
    assert_eq!(ids(fx.now(), &fx), vec![g, g2]);
    let withdrawn_at = fx.now();
    fx.accept(fx.signed(e.key(), fx.withdrawal(&e, g)));
    assert_eq!(ids(fx.now(), &fx), vec![g2]);
    // At a time before the withdrawal it was in force.
    assert_eq!(ids(withdrawn_at.minus(1), &fx), vec![g, g2]);
}

#[test]
fn attestation_queries() {
    let (mut fx, e) = enrolled();
    let other = Ent::new(2);
    fx.enrol(&other);
    let a1 = fx.issue(fx.licence(&e, "shared"));
    let b1 = fx.issue(fx.rating(&other, "shared"));
    let a2 = fx.issue(fx.rating(&e, "a-rating"));
    let by_subject: Vec<AttestationId> = state::attestations_by_subject(fx.ledger.state(), &e.uscc)
        .unwrap()
        .into_iter()
        .map(|r| r.id)
        .collect();
    assert_eq!(by_subject, vec![a1, a2]);
    let by_digest: Vec<AttestationId> =
        state::attestations_by_digest(fx.ledger.state(), &file("shared"))
            .unwrap()
            .into_iter()
            .map(|r| r.id)
            .collect();
    assert_eq!(by_digest, vec![a1, b1]);
    assert!(
        state::attestations_by_digest(fx.ledger.state(), &file("none"))
            .unwrap()
            .is_empty()
    );
    assert!(
        state::attestations_by_subject(fx.ledger.state(), &Ent::new(3).uscc)
            .unwrap()
            .is_empty()
    );
}

// ---------------------------------------------------------------------------------------------
// Verification
// ---------------------------------------------------------------------------------------------

#[test]
fn a_valid_attestation_passes_every_check() {
    let (mut fx, e) = enrolled();
    let id = fx.issue(fx.licence(&e, "lic"));
    let v = fx.verdict(&id, fx.now(), None);
    assert_all_pass(&v);
    let kinds: Vec<CheckKind> = v.checks.iter().map(|c| c.check).collect();
    assert_eq!(
        kinds,
        vec![
            CheckKind::Record,
            CheckKind::Signature,
            CheckKind::IssuerKey,
            CheckKind::IssuerAuthorised,
            CheckKind::NotBefore,
            CheckKind::NotExpired,
            CheckKind::Status,
            CheckKind::NotSuperseded,
            CheckKind::FileDigest,
        ]
    );
    assert_eq!(v.issuer, did("samr"));
    assert_eq!(v.subject, e.uscc);
    assert_eq!(v.doc_type_name, "营业执照");
    assert_eq!(v.status, Status::Active);
    // With the right file.
    let v = fx.verdict(&id, fx.now(), Some(&file("lic")));
    assert!(v.valid);
    assert_eq!(check(&v, CheckKind::FileDigest), (Outcome::Pass, None));
    // With another file.
    let v = fx.verdict(&id, fx.now(), Some(&file("forged")));
    assert!(!v.valid);
    assert_eq!(v.failures(), vec![Reason::DigestMismatch]);
    assert_eq!(Reason::DigestMismatch.code(), "digest_mismatch");
    // Unknown attestation: no verdict.
    assert!(fx
        .ledger
        .verify(&AttestationId(Digest([2; 32])), fx.now(), None)
        .unwrap()
        .is_none());
}

#[test]
fn validity_window_checks() {
    let (mut fx, e) = enrolled();
    let mut a = fx.rating(&e, "future");
    a.valid_from = fx.now().plus(10 * DAY);
    a.valid_until = Some(fx.now().plus(20 * DAY));
    let id = fx.issue(a);
    let v = fx.verdict(&id, fx.now(), None);
    assert_eq!(v.failures(), vec![Reason::NotYetValid]);
    assert_eq!(
        check(&v, CheckKind::NotBefore),
        (Outcome::Fail, Some(Reason::NotYetValid))
    );
    assert!(fx.verdict(&id, fx.now().plus(10 * DAY), None).valid);
    let v = fx.verdict(&id, fx.now().plus(20 * DAY), None);
    assert_eq!(v.failures(), vec![Reason::Expired]);
    assert_eq!(
        check(&v, CheckKind::NotExpired),
        (Outcome::Fail, Some(Reason::Expired))
    );
}

#[test]
fn status_shows_in_verdicts_now_and_as_of_a_past_time() {
    let (mut fx, e) = enrolled();
    let id = fx.issue(fx.licence(&e, "lic"));
    let t_issued = fx.record(&id).issued_at;
    let t_suspended = fx.now();
    fx.accept(fx.status_tx("samr", id, StatusAction::Suspend));
    let v = fx.verdict(&id, fx.now(), None);
    assert!(!v.valid);
    assert_eq!(v.status, Status::Suspended);
    assert_eq!(v.failures(), vec![Reason::Suspended]);
    let t_reinstated = fx.now();
    fx.accept(fx.status_tx("samr", id, StatusAction::Reinstate));
    assert_all_pass(&fx.verdict(&id, fx.now(), None));
    let t_revoked = fx.now();
    fx.accept(fx.status_tx("samr", id, StatusAction::Revoke));
    let v = fx.verdict(&id, fx.now(), None);
    assert_eq!(v.status, Status::Revoked);
    assert_eq!(v.failures(), vec![Reason::Revoked]);
    assert_eq!(v.status_history.len(), 3);

    // As of past times.
    let v = fx.verdict(&id, t_issued, None);
    assert_all_pass(&v);
    assert!(v.status_history.is_empty());
    let v = fx.verdict(&id, t_suspended, None);
    assert_eq!((v.status, v.status_history.len()), (Status::Suspended, 1));
    let v = fx.verdict(&id, t_reinstated.minus(1), None);
    assert_eq!(v.status, Status::Suspended);
    let v = fx.verdict(&id, t_reinstated, None);
    assert_eq!((v.status, v.valid), (Status::Active, true));
    let v = fx.verdict(&id, t_revoked, None);
    assert_eq!((v.status, v.valid), (Status::Revoked, false));
}

#[test]
fn a_tampered_issuing_transaction_fails_record_and_signature() {
    let (mut fx, e) = enrolled();
    let id = fx.issue(fx.licence(&e, "lic"));
    let gov = fx.ledger.governance().unwrap();
    let record = fx.record(&id);
    let original = fx
        .ledger
        .transaction(&vault_protocol::ids::TxId(id.0))
        .unwrap()
        .unwrap()
        .clone();
    assert!(verify_attestation(&gov, &original, &record, fx.now(), None).valid);

    let mut tampered = original.clone();
    if let TxBody::IssueAttestation(a) = &mut tampered.tx.body {
        a.claims = claims(&[("licence_no", "lic"), ("name", "冒名有限公司")]);
    }
    let v = verify_attestation(&gov, &tampered, &record, fx.now(), None);
    assert!(!v.valid);
    assert_eq!(
        check(&v, CheckKind::Record),
        (Outcome::Fail, Some(Reason::RecordMismatch))
    );
    assert_eq!(
        check(&v, CheckKind::Signature),
        (Outcome::Fail, Some(Reason::BadSignature))
    );
    // A tampered record against the genuine transaction.
    let mut bad_record = record.clone();
    bad_record.attestation.claims = claims(&[("licence_no", "lic"), ("name", "冒名有限公司")]);
    let v = verify_attestation(&gov, &original, &bad_record, fx.now(), None);
    assert_eq!(v.failures(), vec![Reason::RecordMismatch]);
    // Re-signed by another department: the signature verifies, but not as the issuer's key.
    let resigned = original.tx.clone().sign_one(&fx.signing("tax"));
    let v = verify_attestation(&gov, &resigned, &record, fx.now(), None);
    assert_eq!(v.failures(), vec![Reason::IssuerKeyNotValid]);
}

// ---------------------------------------------------------------------------------------------
// Blocks
// ---------------------------------------------------------------------------------------------

/// A ledger and a valid, uncommitted block enrolling two enterprises.
fn pending_block() -> (Fx, Block) {
    let mut fx = Fx::new();
    fx.enrol(&Ent::new(1));
    let txs = vec![
        fx.by("samr", Ent::new(2).enrolment("samr")),
        fx.by("tax", Ent::new(3).enrolment("tax")),
    ];
    let built = fx.ledger.propose(&did("samr"), fx.now(), txs).unwrap();
    assert!(built.rejected.is_empty());
    assert!(state::apply_block(fx.ledger.state(), &built.block).is_ok());
    (fx, built.block)
}

/// Asserts `block` is refused with `expected`, by `apply_block` and by `commit`, and that the
/// ledger is left as it was.
fn assert_refused(fx: &mut Fx, block: &Block, expected: BlockError) {
    let err = state::apply_block(fx.ledger.state(), block).unwrap_err();
    assert_eq!(err, expected);
    let entries = fx.ledger.state().entries().clone();
    let head = fx.ledger.head();
    let log = (fx.ledger.log().size(), fx.ledger.log().root());
    let err = fx.ledger.commit(block).unwrap_err();
    assert_eq!(err, LedgerError::Block(expected));
    assert_eq!(fx.ledger.state().entries(), &entries);
    assert_eq!(fx.ledger.head(), head);
    assert_eq!((fx.ledger.log().size(), fx.ledger.log().root()), log);
    assert!(fx.ledger.block(head.height + 1).is_none());
}

#[test]
fn block_header_must_chain_to_the_head() {
    let (mut fx, block) = pending_block();
    let head = fx.ledger.head();

    let mut b = block.clone();
    b.header.height = head.height + 2;
    assert_refused(
        &mut fx,
        &b,
        BlockError::WrongHeight {
            expected_parent_height: head.height,
            found: head.height + 2,
        },
    );
    assert_eq!(BlockError::LogMismatch.code(), "block_log_mismatch");

    let mut b = block.clone();
    b.header.parent = BlockHash(Digest([7; 32]));
    assert_refused(
        &mut fx,
        &b,
        BlockError::WrongParent {
            expected: head.hash,
            found: BlockHash(Digest([7; 32])),
        },
    );

    let mut b = block.clone();
    b.header.time = head.time;
    assert_refused(
        &mut fx,
        &b,
        BlockError::TimeNotIncreasing {
            parent: head.time,
            found: head.time,
        },
    );

    let mut b = block.clone();
    b.header.proposer = DepartmentId::new("nobody").unwrap();
    assert_refused(
        &mut fx,
        &b,
        BlockError::UnknownProposer {
            proposer: DepartmentId::new("nobody").unwrap(),
        },
    );

    // The untouched block still commits.
    fx.ledger.commit(&block).unwrap();
}

#[test]
fn block_body_must_match_the_header() {
    let (mut fx, block) = pending_block();

    let mut b = block.clone();
    b.header.tx_count += 1;
    assert_refused(&mut fx, &b, BlockError::TransactionsMismatch);

    let mut b = block.clone();
    let mut txs = b.transactions.to_vec();
    txs.pop();
    b.transactions = BoundedVec::new(txs).unwrap();
    assert_refused(&mut fx, &b, BlockError::TransactionsMismatch);

    let mut b = block.clone();
    let mut txs = b.transactions.to_vec();
    txs.swap(0, 1);
    b.transactions = BoundedVec::new(txs).unwrap();
    assert_refused(&mut fx, &b, BlockError::TransactionsMismatch);

    let mut b = block.clone();
    b.header.txs_digest = Digest([0; 32]);
    assert_refused(&mut fx, &b, BlockError::TransactionsMismatch);

    let mut b = block.clone();
    let mut txs = b.transactions.to_vec();
    txs[1] = flip_signature(txs[1].clone());
    b.transactions = BoundedVec::new(txs).unwrap();
    let err = state::apply_block(fx.ledger.state(), &b).unwrap_err();
    assert_eq!(err.code(), "block_bad_signature");
    match &err {
        BlockError::BadEndorsement { index: 1, error } => {
            assert!(matches!(
                error,
                EndorsementError::BadSignature(SignatureError::Mismatch { .. })
            ))
        }
        other => panic!("{other:?}"),
    }
    assert_refused(&mut fx, &b, err);

    let mut b = block.clone();
    b.header.log_root = Digest([1; 32]);
    assert_refused(&mut fx, &b, BlockError::LogMismatch);
    let mut b = block.clone();
    b.header.log_size += 1;
    assert_refused(&mut fx, &b, BlockError::LogMismatch);

    let mut b = block.clone();
    b.header.state_root = Digest([2; 32]);
    assert_refused(
        &mut fx,
        &b,
        BlockError::StateRootMismatch {
            expected: block.header.state_root,
            found: Digest([2; 32]),
        },
    );

    fx.ledger.commit(&block).unwrap();
    assert_eq!(fx.ledger.head().hash, block.header.hash(SUITE));
}

#[test]
fn a_block_with_a_rejected_transaction_is_refused_whole() {
    let (mut fx, block) = pending_block();
    let mut b = block.clone();
    let mut txs = b.transactions.to_vec();
    // Enrols enterprise 1 again: AlreadyEnrolled.
    let bad = fx.by("hrss", Ent::new(1).enrolment("hrss"));
    let bad_id = bad.id(SUITE);
    txs.push(bad);
    let ids: Vec<_> = txs.iter().map(|t| t.id(SUITE)).collect();
    b.header.tx_count = 3;
    b.header.txs_digest = txs_digest(SUITE, &ids);
    b.transactions = BoundedVec::new(txs).unwrap();
    let err = BlockError::Transaction {
        index: 2,
        tx: bad_id,
        error: TxError::AlreadyEnrolled {
            enterprise: Ent::new(1).uscc,
        },
    };
    assert_eq!(err.code(), "block_invalid_transaction");
    assert_refused(&mut fx, &b, err);
}

#[test]
fn a_block_over_the_size_limit_is_refused() {
    let params = Params {
        max_block_transactions: 1,
        ..Params::default()
    };
    let mut fx = Fx::from_network(TestNetwork::with_params(&DEPARTMENTS, params));
    let t1 = fx.by("samr", Ent::new(1).enrolment("samr"));
    let t2 = fx.by("samr", Ent::new(2).enrolment("samr"));
    // The proposer stops at the limit; what it leaves out is not "rejected".
    let built = fx
        .ledger
        .propose(&did("samr"), fx.now(), vec![t1, t2.clone()])
        .unwrap();
    assert_eq!(built.block.transactions.len(), 1);
    assert!(built.rejected.is_empty());
    let mut b = built.block.clone();
    let mut txs = b.transactions.to_vec();
    txs.push(t2);
    b.transactions = BoundedVec::new(txs).unwrap();
    assert_refused(
        &mut fx,
        &b,
        BlockError::TooManyTransactions { count: 2, max: 1 },
    );
    fx.ledger.commit(&built.block).unwrap();
}

#[test]
fn a_block_by_a_removed_proposer_is_refused() {
    let mut fx = Fx::new();
    fx.accept(fx.by_all(&["samr", "tax", "hrss"], remove("housing")));
    // A proposer refuses to build it…
    assert!(matches!(
        fx.ledger.propose(&did("housing"), fx.now(), vec![]),
        Err(LedgerError::Block(BlockError::UnknownProposer { .. }))
    ));
    // …and no node accepts one that claims a removed proposer.
    let mut built = fx.ledger.propose(&did("samr"), fx.now(), vec![]).unwrap();
    built.block.header.proposer = did("housing");
    assert_refused(
        &mut fx,
        &built.block,
        BlockError::UnknownProposer {
            proposer: did("housing"),
        },
    );
}

// ---------------------------------------------------------------------------------------------
// Periods close just after the block's instant: what came earlier in the same block stays valid
// ---------------------------------------------------------------------------------------------

/// Removal closes the department's issuer periods at the block time, so an attestation it issued
/// earlier in the same block (accepted: it was a member and authorised) fails IssuerAuthorised.
#[test]
fn an_attestation_issued_in_the_block_that_removes_its_issuer_verifies() {
    let (mut fx, e) = enrolled();
    let mut a = fx.rating(&e, "cq");
    a.issuer = did("housing");
    a.doc_type = dt(CONSTRUCTION);
    let issue = fx.issue_tx(a);
    let id = AttestationId(issue.id(SUITE).0);
    let built = fx.block(vec![
        issue,
        fx.by_all(&["samr", "tax", "hrss"], remove("housing")),
    ]);
    assert!(built.rejected.is_empty());
    let v = fx.verdict(&id, fx.now(), None);
    assert_eq!(
        check(&v, CheckKind::IssuerAuthorised),
        (Outcome::Pass, None)
    );
}

/// A read recorded earlier in the block that withdraws its grant was permitted when recorded,
/// but the withdrawal is stamped with the same block time, so every later check of that read
/// (`check_access`, `find_grant`, `grants_in_force` at `read_at`) says the grant was withdrawn.
#[test]
fn a_read_recorded_before_a_withdrawal_in_the_same_block_stays_permitted() {
    let (mut fx, e, lic, _, g) = with_grant();
    let housing = to_dept("housing");
    let now = fx.now();
    let built = fx.block(vec![
        fx.receipts("housing", vec![read(housing.clone(), lic, g, now)]),
        fx.signed(e.key(), fx.withdrawal(&e, g)),
    ]);
    assert!(built.rejected.is_empty());
    let receipts = state::receipts_by_enterprise(fx.ledger.state(), &e.uscc).unwrap();
    assert_eq!(receipts.len(), 1);
    let grant = state::grant(fx.ledger.state(), &g).unwrap().unwrap();
    assert_eq!(
        state::check_access(
            &grant,
            &housing,
            &fx.record(&lic),
            None,
            receipts[0].read.read_at
        ),
        Ok(())
    );
}

/// `read_at` may be up to the clock skew ahead of the block time, so a read recorded at block
/// time T with `read_at` = T + 2 min is on the ledger even if the enterprise withdraws the grant
/// at T + 1 s: the receipt then shows a read after the withdrawal.
#[test]
fn a_read_stamped_ahead_of_the_block_cannot_postdate_a_withdrawal() {
    let (mut fx, e, lic, _, g) = with_grant();
    let housing = to_dept("housing");
    let ahead = fx.now().plus(2 * 60 * SECOND);
    let tx = fx.receipts("housing", vec![read(housing.clone(), lic, g, ahead)]);
    let built = fx.block(vec![tx]);
    fx.accept(fx.signed(e.key(), fx.withdrawal(&e, g)));
    // Either the read was refused as stamped after its block…
    if built.block.transactions.is_empty() {
        return;
    }
    // …or it must still be permitted at its read time.
    let grant = state::grant(fx.ledger.state(), &g).unwrap().unwrap();
    assert_eq!(
        state::check_access(&grant, &housing, &fx.record(&lic), None, ahead),
        Ok(())
    );
}

// ---------------------------------------------------------------------------------------------
// Codes
// ---------------------------------------------------------------------------------------------

#[test]
fn proposing_at_or_before_the_head_time_is_refused() {
    let mut fx = Fx::new();
    fx.enrol(&Ent::new(1));
    let head = fx.ledger.head();
    let err = fx
        .ledger
        .propose(&did("samr"), head.time, vec![])
        .unwrap_err();
    assert_eq!(
        err,
        LedgerError::Block(BlockError::TimeNotIncreasing {
            parent: head.time,
            found: head.time
        })
    );
}

/// Every rule has its own stable code.
#[test]
fn every_error_code_is_distinct() {
    let d = did("samr");
    let t = dt(LICENCE);
    let a = AttestationId(Digest([1; 32]));
    let g = GrantId(Digest([2; 32]));
    let k = key("k").public();
    let u = Ent::new(1).uscc;
    let ts = Timestamp(0);
    let errors = vec![
        TxError::WrongChain {
            expected: String::new(),
            found: String::new(),
        },
        TxError::Stale {
            created_at: ts,
            oldest: ts,
        },
        TxError::FromTheFuture {
            created_at: ts,
            latest: ts,
        },
        TxError::Duplicate {
            tx: vault_protocol::ids::TxId(a.0),
        },
        TxError::NotMember {
            department: d.clone(),
        },
        TxError::WrongSigner {
            expected: String::new(),
            found: vec![],
        },
        TxError::InsufficientQuorum {
            signed: 0,
            required: 0,
            members: 0,
        },
        TxError::UnknownGovernanceSigner { signer: k },
        TxError::DepartmentExists {
            department: d.clone(),
        },
        TxError::KeyInUse { key: k },
        TxError::LastMember,
        TxError::UnknownDocumentType {
            doc_type: t.clone(),
        },
        TxError::DocumentTypeExists {
            doc_type: t.clone(),
        },
        TxError::AlreadyAuthorised {
            department: d.clone(),
            doc_type: t.clone(),
        },
        TxError::NotAuthorised {
            department: d.clone(),
            doc_type: t.clone(),
        },
        TxError::InvalidOverlap {
            earliest: ts,
            latest: ts,
            found: ts,
        },
        TxError::InvalidField {
            field: "x",
            reason: String::new(),
        },
        TxError::AlreadyEnrolled { enterprise: u },
        TxError::NotEnrolled { enterprise: u },
        TxError::DigestAlreadyLive {
            file_digest: a.0,
            doc_type: t.clone(),
            existing: a,
        },
        TxError::UnknownAttestation { attestation: a },
        TxError::InvalidSupersession {
            attestation: a,
            reason: "",
        },
        TxError::AlreadySuperseded {
            attestation: a,
            by: a,
        },
        TxError::NotIssuer {
            department: d.clone(),
            attestation: a,
            issuer: d.clone(),
        },
        TxError::InvalidTransition {
            from: Status::Active,
            action: StatusAction::Suspend,
        },
        TxError::UnknownGrant { grant: g },
        TxError::GrantNotOwned { grant: g },
        TxError::GrantAlreadyWithdrawn { grant: g },
        TxError::UnknownGrantee {
            department: d.clone(),
        },
        TxError::ForeignAttestation { attestation: a },
        TxError::ReadNotPermitted {
            index: 0,
            refusal: AccessRefusal::NoGrant,
        },
    ];
    let codes: std::collections::BTreeSet<&str> = errors.iter().map(|e| e.code()).collect();
    assert_eq!(codes.len(), errors.len());
    let refusals = [
        AccessRefusal::NoGrant,
        AccessRefusal::WrongGrantee,
        AccessRefusal::NotYetInForce,
        AccessRefusal::Expired { expired_at: ts },
        AccessRefusal::Withdrawn { withdrawn_at: ts },
        AccessRefusal::OutOfScope,
        AccessRefusal::OtherPurpose {
            granted: String::new(),
            requested: String::new(),
        },
    ];
    let codes: std::collections::BTreeSet<&str> = refusals.iter().map(|r| r.code()).collect();
    assert_eq!(codes.len(), refusals.len());
}
