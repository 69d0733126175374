//! Records the rules let grow are capped, and the cap never blocks a revocation.

use vault_protocol::crypto::{CryptoSuite, KeyPair};
use vault_protocol::encoding::BoundedString;
use vault_protocol::ids::{AttestationId, DocTypeCode, Timestamp};
use vault_protocol::ledger::{MemoryLedger, TestNetwork};
use vault_protocol::state::{self, Status, MAX_STATUS_EVENTS};
use vault_protocol::tx::{Attestation, Enrolment, StatusAction, StatusChange, TxBody};

#[test]
fn status_history_is_capped_but_revocation_stays_possible() {
    let net = TestNetwork::new(&["samr", "tax", "hrss", "housing"]);
    let mut ledger = MemoryLedger::new(net.genesis.clone()).unwrap();
    let samr = net.department("samr");
    let uscc = "91350100M000100Y43".parse().unwrap();
    let enterprise = KeyPair::from_seed(CryptoSuite::Ed25519Sha256, [5; 32]);
    let mut t = net.genesis.genesis_time.plus(1000);
    let enrol = net
        .tx(
            t,
            TxBody::EnrolEnterprise(Enrolment {
                department: samr.id.clone(),
                enterprise: uscc,
                key: enterprise.public(),
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
                file_digest: CryptoSuite::Ed25519Sha256.file_digest(b"licence"),
                claims: Default::default(),
                valid_from: Timestamp(0),
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
    let change = |action, t| {
        net.tx(
            t,
            TxBody::SetStatus(StatusChange {
                department: samr.id.clone(),
                attestation: id,
                action,
                reason_code: 1,
                note: BoundedString::new("dormant").unwrap(),
            }),
        )
        .sign_one(&samr.signing)
    };
    // Fill all but the last slot with suspend/reinstate pairs.
    t = t.plus(1000);
    let fill: Vec<_> = (0..MAX_STATUS_EVENTS - 1)
        .map(|i| {
            let action = if i % 2 == 0 {
                StatusAction::Suspend
            } else {
                StatusAction::Reinstate
            };
            change(action, t)
        })
        .collect();
    let built = ledger.propose_and_commit(&samr.id, t, fill).unwrap();
    assert!(built.rejected.is_empty(), "{:?}", built.rejected.first());
    // One more suspension is refused with the rule; a revocation still goes through.
    t = t.plus(1000);
    let status = state::attestation(ledger.state(), &id)
        .unwrap()
        .unwrap()
        .status;
    let next = if status == Status::Active {
        StatusAction::Suspend
    } else {
        StatusAction::Reinstate
    };
    let built = ledger
        .propose_and_commit(
            &samr.id,
            t,
            vec![change(next, t), change(StatusAction::Revoke, t)],
        )
        .unwrap();
    assert_eq!(built.rejected.len(), 1);
    assert_eq!(built.rejected[0].1.code(), "invalid_field");
    let record = state::attestation(ledger.state(), &id).unwrap().unwrap();
    assert_eq!(record.status, Status::Revoked);
    assert_eq!(record.history.len(), MAX_STATUS_EVENTS);
}
