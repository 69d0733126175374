//! Shared helpers for the rule tests (`tests/rules.rs`) and the state-machine property tests
//! (`tests/state_machine.rs`): a fixture around [`MemoryLedger`] and [`TestNetwork`] whose clock
//! moves one second per block, test enterprises with valid USCCs, and builders for transaction
//! bodies.

// Each test file uses a different subset of these helpers.
#![allow(dead_code, clippy::unwrap_used)]

use vault_protocol::crypto::{CryptoSuite, Digest, KeyPair, PublicKey};
use vault_protocol::encoding::{BoundedString, BoundedVec};
use vault_protocol::governance::DAY_MS;
use vault_protocol::ids::{AttestationId, DepartmentId, DocTypeCode, GrantId, Timestamp, TxId};
use vault_protocol::ledger::{test_key, MemoryLedger, TestDepartment, TestNetwork};
use vault_protocol::state::{self, keys, AttestationRecord, BuiltBlock, TxError};
use vault_protocol::tx::{
    AccessRead, AccessReceipts, Attestation, Claim, Enrolment, GovernanceAction, Grant, GrantScope,
    GrantWithdrawal, Grantee, Purpose, SignedTransaction, StatusAction, StatusChange, Transaction,
    TxBody,
};
use vault_protocol::uscc::{compute_check_character, compute_org_check_character, Uscc};
use vault_protocol::verify::Verdict;

/// The crypto suite of every test network.
pub const SUITE: CryptoSuite = CryptoSuite::Ed25519Sha256;
/// The four founding departments of the standard test network.
pub const DEPARTMENTS: [&str; 4] = ["samr", "tax", "hrss", "housing"];
/// A second, in milliseconds.
pub const SECOND: u64 = 1_000;
/// An hour, in milliseconds.
pub const HOUR: u64 = 3_600_000;
/// A day, in milliseconds.
pub const DAY: u64 = DAY_MS;

/// 营业执照, issued by `samr`.
pub const LICENCE: &str = "BUSINESS_LICENCE";
/// 纳税信用等级, issued by `tax`; at most 400 days, must expire.
pub const RATING: &str = "TAX_CREDIT_RATING";
/// 社保缴纳证明, issued by `hrss`; at most 366 days, must expire.
pub const SOCIAL: &str = "SOCIAL_INSURANCE_CERT";
/// 建筑业企业资质证书, issued by `housing`; at most 1830 days, must expire.
pub const CONSTRUCTION: &str = "CONSTRUCTION_QUALIFICATION";

/// A valid USCC (GB 32100-2015), distinct for each `n`.
pub fn uscc(n: u32) -> Uscc {
    let body = format!("MA{n:06}");
    let org = compute_org_check_character(&body).unwrap();
    let first17 = format!("91350100{body}{org}");
    let check = compute_check_character(&first17).unwrap();
    format!("{first17}{check}").parse().unwrap()
}

/// A deterministic key pair from a label.
pub fn key(label: &str) -> KeyPair {
    KeyPair::from_seed(
        SUITE,
        SUITE.file_digest(format!("test-key/{label}").as_bytes()).0,
    )
}

/// The SHA-256 of a (notional) file.
pub fn file(label: &str) -> Digest {
    SUITE.file_digest(format!("file/{label}").as_bytes())
}

/// A department id.
pub fn did(id: &str) -> DepartmentId {
    DepartmentId::new(id).unwrap()
}

/// A document-type code.
pub fn dt(code: &str) -> DocTypeCode {
    DocTypeCode::new(code).unwrap()
}

/// A bounded string.
pub fn bs<const N: usize>(s: &str) -> BoundedString<N> {
    BoundedString::new(s).unwrap()
}

/// Claims, in the order given.
pub fn claims(pairs: &[(&str, &str)]) -> BoundedVec<Claim, 32> {
    BoundedVec::new(
        pairs
            .iter()
            .map(|(k, v)| Claim {
                key: bs(k),
                value: bs(v),
            })
            .collect(),
    )
    .unwrap()
}

/// A purpose (事项).
pub fn purpose(code: &str) -> Purpose {
    Purpose {
        code: bs(code),
        text: bs("建筑业企业资质申请"),
    }
}

/// A scope of document types, in the order given.
pub fn types(codes: &[&str]) -> GrantScope {
    GrantScope::DocumentTypes(BoundedVec::new(codes.iter().map(|c| dt(c)).collect()).unwrap())
}

/// A scope of attestations, sorted.
pub fn atts(ids: &[AttestationId]) -> GrantScope {
    let mut ids = ids.to_vec();
    ids.sort();
    GrantScope::Attestations(BoundedVec::new(ids).unwrap())
}

/// A department grantee.
pub fn to_dept(id: &str) -> Grantee {
    Grantee::Department(did(id))
}

/// A test enterprise: its USCC and its keys (the first is the one it enrols with).
#[derive(Debug, Clone)]
pub struct Ent {
    /// Its USCC.
    pub uscc: Uscc,
    /// Its key pool; `keys[0]` is enrolled, later ones are for rotations.
    pub keys: Vec<KeyPair>,
}

impl Ent {
    /// Enterprise number `n`.
    pub fn new(n: u32) -> Self {
        Self {
            uscc: uscc(n),
            keys: (0..4)
                .map(|g| key(&format!("enterprise/{n}/{g}")))
                .collect(),
        }
    }

    /// The key it enrols with.
    pub fn key(&self) -> &KeyPair {
        &self.keys[0]
    }

    /// Its enrolment by `department`.
    pub fn enrolment(&self, department: &str) -> TxBody {
        TxBody::EnrolEnterprise(Enrolment {
            department: did(department),
            enterprise: self.uscc,
            key: self.key().public(),
        })
    }
}

/// A ledger on a test network whose clock gives each block one second.
pub struct Fx {
    /// The network (keys, genesis).
    pub net: TestNetwork,
    /// The ledger.
    pub ledger: MemoryLedger,
    /// The time of the next block; transactions are made at this time.
    pub time: Timestamp,
    /// Who proposes blocks.
    pub proposer: DepartmentId,
}

impl Default for Fx {
    fn default() -> Self {
        Self::new()
    }
}

impl Fx {
    /// The standard four-department network.
    pub fn new() -> Self {
        Self::with_departments(&DEPARTMENTS)
    }

    /// A network of these departments.
    pub fn with_departments(ids: &[&str]) -> Self {
        Self::from_network(TestNetwork::new(ids))
    }

    /// A ledger on `net`.
    pub fn from_network(net: TestNetwork) -> Self {
        let ledger = MemoryLedger::new(net.genesis.clone()).unwrap();
        let time = net.genesis.genesis_time.plus(SECOND);
        let proposer = net.departments[0].id.clone();
        Self {
            net,
            ledger,
            time,
            proposer,
        }
    }

    /// The time of the next block.
    pub fn now(&self) -> Timestamp {
        self.time
    }

    /// Moves the clock forward.
    pub fn advance(&mut self, ms: u64) {
        self.time = self.time.plus(ms);
    }

    /// A department of the network.
    pub fn dept(&self, id: &str) -> &TestDepartment {
        self.net.department(id)
    }

    /// A department's signing key (founding departments, or `test_key` for others).
    pub fn signing(&self, id: &str) -> KeyPair {
        self.net
            .departments
            .iter()
            .find(|d| d.id.as_str() == id)
            .map(|d| d.signing.clone())
            .unwrap_or_else(|| test_key(id, "signing"))
    }

    /// An unsigned transaction made now.
    pub fn tx(&self, body: TxBody) -> Transaction {
        self.net.tx(self.time, body)
    }

    /// A transaction signed by one department's signing key.
    pub fn by(&self, department: &str, body: TxBody) -> SignedTransaction {
        self.tx(body).sign_one(&self.signing(department))
    }

    /// A transaction signed by several departments' signing keys.
    pub fn by_all(&self, departments: &[&str], body: TxBody) -> SignedTransaction {
        let keys: Vec<KeyPair> = departments.iter().map(|d| self.signing(d)).collect();
        let refs: Vec<&KeyPair> = keys.iter().collect();
        self.tx(body).sign(&refs).unwrap()
    }

    /// A transaction signed by one key.
    pub fn signed(&self, key: &KeyPair, body: TxBody) -> SignedTransaction {
        self.tx(body).sign_one(key)
    }

    /// Proposes a block of `txs` at the current time, commits it and moves the clock on by one
    /// second.
    pub fn block(&mut self, txs: Vec<SignedTransaction>) -> BuiltBlock {
        let built = self.ledger.propose(&self.proposer, self.time, txs).unwrap();
        self.ledger.commit(&built.block).unwrap();
        self.advance(SECOND);
        built
    }

    /// Commits `tx` and asserts it was accepted.
    pub fn accept(&mut self, tx: SignedTransaction) -> TxId {
        let id = tx.id(SUITE);
        let built = self.block(vec![tx]);
        assert!(built.rejected.is_empty(), "rejected: {:?}", built.rejected);
        assert_eq!(built.block.transactions.len(), 1);
        id
    }

    /// Offers `tx` in a block, asserts it was rejected and that the state changed in nothing but
    /// the chain head, and returns the error.
    pub fn reject(&mut self, tx: SignedTransaction) -> TxError {
        let id = tx.id(SUITE);
        let before = self.content();
        let built = self.block(vec![tx]);
        assert!(built.block.transactions.is_empty(), "accepted");
        assert_eq!(built.rejected.len(), 1);
        assert_eq!(built.rejected[0].0, id);
        assert_eq!(
            before,
            self.content(),
            "a rejected transaction changed the state"
        );
        built.rejected[0].1.clone()
    }

    /// The state without the chain head, state root and status-tree nodes (every block rewrites
    /// them: the tree's root moves to the new version even when no leaf changed).
    pub fn content(&self) -> Vec<(Vec<u8>, Vec<u8>)> {
        self.ledger
            .state()
            .entries()
            .iter()
            .filter(|(k, _)| !keys::is_meta(k) && !keys::is_status_node(k))
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect()
    }

    /// Enrols `ent` by `samr`.
    pub fn enrol(&mut self, ent: &Ent) {
        let tx = self.by("samr", ent.enrolment("samr"));
        self.accept(tx);
    }

    /// A business licence for `subject` of file `label`, by `samr`, valid from a day ago with
    /// no end.
    pub fn licence(&self, subject: &Ent, label: &str) -> Attestation {
        Attestation {
            issuer: did("samr"),
            subject: subject.uscc,
            doc_type: dt(LICENCE),
            file_digest: file(label),
            claims: claims(&[("licence_no", label), ("name", "测试有限公司")]),
            valid_from: self.time.minus(DAY),
            valid_until: None,
            supersedes: None,
        }
    }

    /// A tax credit rating for `subject` of file `label`, by `tax`, valid from a day ago for a
    /// year.
    pub fn rating(&self, subject: &Ent, label: &str) -> Attestation {
        Attestation {
            issuer: did("tax"),
            subject: subject.uscc,
            doc_type: dt(RATING),
            file_digest: file(label),
            claims: claims(&[("grade", "A"), ("year", "2025")]),
            valid_from: self.time.minus(DAY),
            valid_until: Some(self.time.plus(365 * DAY)),
            supersedes: None,
        }
    }

    /// The issuing transaction of `a`, signed by its issuer.
    pub fn issue_tx(&self, a: Attestation) -> SignedTransaction {
        let issuer = a.issuer.to_string();
        self.by(&issuer, TxBody::IssueAttestation(a))
    }

    /// Issues `a` (signed by its issuer) and returns its id.
    pub fn issue(&mut self, a: Attestation) -> AttestationId {
        let tx = self.issue_tx(a);
        AttestationId(self.accept(tx).0)
    }

    /// A status change signed by `department`.
    pub fn status_tx(
        &self,
        department: &str,
        id: AttestationId,
        action: StatusAction,
    ) -> SignedTransaction {
        self.by(
            department,
            TxBody::SetStatus(StatusChange {
                department: did(department),
                attestation: id,
                action,
                reason_code: 1,
                note: bs("企业休眠"),
            }),
        )
    }

    /// A grant body.
    pub fn grant_body(
        &self,
        ent: &Ent,
        grantee: Grantee,
        scope: GrantScope,
        expires_at: Timestamp,
    ) -> TxBody {
        TxBody::Grant(Grant {
            enterprise: ent.uscc,
            grantee,
            scope,
            purpose: purpose("P-001"),
            expires_at,
        })
    }

    /// Makes a grant (signed by the enterprise's first key) and returns its id.
    pub fn grant(&mut self, ent: &Ent, grantee: Grantee, scope: GrantScope, lasts: u64) -> GrantId {
        let body = self.grant_body(ent, grantee, scope, self.time.plus(lasts));
        let tx = self.signed(ent.key(), body);
        GrantId(self.accept(tx).0)
    }

    /// A grant withdrawal body.
    pub fn withdrawal(&self, ent: &Ent, grant: GrantId) -> TxBody {
        TxBody::WithdrawGrant(GrantWithdrawal {
            enterprise: ent.uscc,
            grant,
        })
    }

    /// An access-receipts transaction recorded and signed by `recorder`.
    pub fn receipts(&self, recorder: &str, reads: Vec<AccessRead>) -> SignedTransaction {
        self.by(
            recorder,
            TxBody::RecordAccess(AccessReceipts {
                recorder: did(recorder),
                reads: BoundedVec::new(reads).unwrap(),
            }),
        )
    }

    /// An attestation's record.
    pub fn record(&self, id: &AttestationId) -> AttestationRecord {
        state::attestation(self.ledger.state(), id)
            .unwrap()
            .unwrap()
    }

    /// The verdict on an attestation.
    pub fn verdict(
        &self,
        id: &AttestationId,
        at: Timestamp,
        presented: Option<&Digest>,
    ) -> Verdict {
        self.ledger.verify(id, at, presented).unwrap().unwrap()
    }

    /// A department's current public signing key.
    pub fn public(&self, id: &str) -> PublicKey {
        self.signing(id).public()
    }
}

/// One read.
pub fn read(
    reader: Grantee,
    attestation: AttestationId,
    grant: GrantId,
    read_at: Timestamp,
) -> AccessRead {
    AccessRead {
        reader,
        attestation,
        grant,
        read_at,
    }
}

/// Admitting department `id` (keys from `test_key`), by governance.
pub fn admit(id: &str) -> TxBody {
    TxBody::Governance(GovernanceAction::AdmitDepartment {
        department: did(id),
        name: bs("市医疗保障局"),
        signing_key: test_key(id, "signing").public(),
        node_key: test_key(id, "node").public(),
    })
}

/// Authorising `department` to issue `doc_type`, by governance.
pub fn authorise(department: &str, doc_type: &str) -> TxBody {
    TxBody::Governance(GovernanceAction::AuthoriseIssuer {
        department: did(department),
        doc_type: dt(doc_type),
    })
}
