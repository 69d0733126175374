//! Property tests of the ledger state machine.
//!
//! Proptest generates random runs of 20–60 blocks, each holding 1–4 generated actions over three
//! enterprises, the four founding departments and a fifth (`medins`) that is a member only once
//! a generated governance vote admits it: enrolments, enterprise key rotations, issues (valid and
//! invalid types, issuers, validity windows, claims, files shared between attestations so that
//! `DigestAlreadyLive` and supersession happen), supersessions, suspend / reinstate / revoke,
//! grants (good and bad grantees, scopes and expiries), withdrawals, access receipts (in and out
//! of scope, before, during and after a grant, by the right and wrong recorder) and admissions
//! with too few or enough signatures. Targets are picked either sensibly from the current state
//! or from every id ever generated (including rejected and unknown ones). Each action may carry a
//! fault: wrong chain, stale, from the future, a wrong signer, an extra signer, a replay of a
//! committed transaction, the same transaction twice in a block, or a forged signature. The clock
//! moves by a second, an hour, a day or four days between blocks, so grants expire and old
//! transactions go stale.
//!
//! After every block these invariants are checked:
//! (a) each candidate applied alone with `state::apply_transaction` on an `Overlay` changes
//!     nothing when it is rejected, both on the state before the block and in sequence; the
//!     sequence reproduces `build_block`'s accepted list and `rejected` errors exactly; and the
//!     state after the block equals that of replaying only the accepted transactions;
//! (b) a revoked attestation never becomes active or suspended again, and every status history
//!     follows the transition table;
//! (c) the header's log root equals `merkle::mth` over `hash_leaf(leaf_data())` of every
//!     committed transaction in order, and `MemoryLedger::log().root()`;
//! (d) a second ledger fed the same blocks has the identical state and head (and, at the end of
//!     each run, so does a fresh ledger replaying every block from the genesis);
//! (e) every index entry (by subject, by digest, live, grants by enterprise and grantee, receipts
//!     by enterprise) points to an existing record that matches it, every record is indexed, and
//!     the `live` index points exactly to the attestations neither revoked nor superseded;
//! (f) every receipt is of a read that its grant permitted at read time, recorded by the reader
//!     department itself (tolerating, while `TOLERATE_WITHDRAWAL_TIMING_BUG` is set, a
//!     withdrawal committed in or after the recording block and stamped no later than the read).
//!
//! Generated faults must be rejected, with the expected code where it is determined. At the end
//! of each run every attestation's verdict passes the issue-time checks (record, signature,
//! issuer key, issuer authorised) and reports the recorded status. A fixed-seed run checks that
//! the generator gets every kind of transaction accepted and most rules broken.
//! `PROPTEST_CASES=n` runs more cases.

#![allow(clippy::unwrap_used)]

mod common;

use std::collections::{BTreeMap, BTreeSet};

use common::*;
use proptest::prelude::*;
use proptest::test_runner::{Config, FileFailurePersistence, RngAlgorithm, TestRng, TestRunner};
use vault_protocol::crypto::{Digest, KeyPair};
use vault_protocol::encoding::BoundedVec;
use vault_protocol::ids::{AttestationId, ChainId, GrantId, ReceiptId, TxId};
use vault_protocol::ledger::{test_key, LedgerError, MemoryLedger};
use vault_protocol::merkle::{mth, Hash, LogHasher, Sha256LogHasher};
use vault_protocol::state::{
    self, keys, AccessRefusal, ApplyError, AttestationRecord, GrantRecord, MemoryState, Overlay,
    ReceiptRecord, StateView, Status, TxContext, TxError,
};
use vault_protocol::tx::{
    EnterpriseKeyRotation, GovernanceAction, GrantScope, Grantee, SignedTransaction, StatusAction,
    TxBody, VerifiedTx,
};
use vault_protocol::uscc::Uscc;
use vault_protocol::verify::{CheckKind, Outcome};

const DEPTS: [&str; 5] = ["samr", "tax", "hrss", "housing", "medins"];
/// Document types with their usual issuer; index 4 is an unknown type.
const TYPES: [(&str, &str); 5] = [
    (LICENCE, "samr"),
    (RATING, "tax"),
    (SOCIAL, "hrss"),
    (CONSTRUCTION, "housing"),
    ("NO_SUCH_TYPE", "samr"),
];
const ENTS: usize = 3;
const GAPS: [u64; 4] = [SECOND, HOUR, DAY, 4 * DAY];

// ---------------------------------------------------------------------------------------------
// What is generated
// ---------------------------------------------------------------------------------------------

/// How a target (attestation, grant) is chosen.
#[derive(Debug, Clone)]
enum Pick {
    /// Sensibly, from the current state.
    Smart(u8),
    /// From every id ever generated, committed or not, or an unknown one.
    Any(u8),
}

#[derive(Debug, Clone)]
enum Act {
    Enrol {
        dept: u8,
        ent: u8,
    },
    RotateKey {
        ent: u8,
    },
    Issue {
        ty: u8,
        issuer: Option<u8>,
        ent: u8,
        file: u8,
        validity: u8,
        supersede: Option<Pick>,
    },
    Status {
        att: Pick,
        dept: Option<u8>,
        action: u8,
    },
    Grant {
        ent: u8,
        grantee: u8,
        scope: u8,
        expiry: u8,
    },
    Withdraw {
        ent: Option<u8>,
        grant: Pick,
    },
    Read {
        /// The recording department; by default the grantee of the first smart-picked grant.
        recorder: Option<u8>,
        /// (reader, grant, attestation, when)
        reads: Vec<(u8, Pick, u8, u8)>,
    },
    Admit {
        signers: u8,
    },
}

#[derive(Debug, Clone)]
enum Fault {
    None,
    WrongChain,
    Stale,
    Future,
    WrongSigner(u8),
    ExtraSigner,
    Replay(u8),
    Twice,
    Forged,
}

#[derive(Debug, Clone)]
struct Step {
    gap: u8,
    acts: Vec<(Act, Fault)>,
}

fn pick() -> impl Strategy<Value = Pick> {
    prop_oneof![3 => any::<u8>().prop_map(Pick::Smart), 1 => any::<u8>().prop_map(Pick::Any)]
}

/// (reader, grant, attestation, when) of one read.
fn read_sel() -> impl Strategy<Value = (u8, Pick, u8, u8)> {
    (
        prop_oneof![5 => Just(0u8), 1 => 1..3u8],
        pick(),
        any::<u8>(),
        prop_oneof![6 => Just(0u8), 2 => 1..3u8, 2 => 3..6u8],
    )
}

fn act() -> impl Strategy<Value = Act> {
    prop_oneof![
        2 => (0..5u8, 0..ENTS as u8).prop_map(|(dept, ent)| Act::Enrol { dept, ent }),
        1 => (0..ENTS as u8).prop_map(|ent| Act::RotateKey { ent }),
        5 => (
            prop_oneof![9 => 0..4u8, 1 => Just(4u8)],
            proptest::option::weighted(0.1, 0..5u8),
            0..ENTS as u8,
            0..4u8,
            prop_oneof![8 => Just(0u8), 3 => 1..6u8],
            proptest::option::weighted(0.3, pick()),
        )
            .prop_map(|(ty, issuer, ent, file, validity, supersede)| Act::Issue {
                ty,
                issuer,
                ent,
                file,
                validity,
                supersede
            }),
        3 => (pick(), proptest::option::weighted(0.15, 0..5u8), 0..3u8)
            .prop_map(|(att, dept, action)| Act::Status { att, dept, action }),
        3 => (
            0..ENTS as u8,
            0..6u8,
            prop_oneof![6 => 0..3u8, 1 => 3..6u8],
            prop_oneof![6 => 0..3u8, 1 => 3..5u8],
        )
            .prop_map(|(ent, grantee, scope, expiry)| Act::Grant { ent, grantee, scope, expiry }),
        1 => (proptest::option::weighted(0.2, 0..ENTS as u8), pick())
            .prop_map(|(ent, grant)| Act::Withdraw { ent, grant }),
        6 => (
            proptest::option::weighted(0.2, 0..5u8),
            prop_oneof![
                4 => proptest::collection::vec(read_sel(), 1),
                1 => proptest::collection::vec(read_sel(), 2),
            ],
        )
            .prop_map(|(recorder, reads)| Act::Read { recorder, reads }),
        1 => (0..4u8).prop_map(|signers| Act::Admit { signers }),
    ]
}

fn fault() -> impl Strategy<Value = Fault> {
    prop_oneof![
        16 => Just(Fault::None),
        1 => Just(Fault::WrongChain),
        1 => Just(Fault::Stale),
        1 => Just(Fault::Future),
        2 => any::<u8>().prop_map(Fault::WrongSigner),
        1 => Just(Fault::ExtraSigner),
        1 => any::<u8>().prop_map(Fault::Replay),
        1 => Just(Fault::Twice),
        1 => Just(Fault::Forged),
    ]
}

fn steps() -> impl Strategy<Value = Vec<Step>> {
    let step = (
        prop_oneof![5 => Just(0u8), 3 => Just(1u8), 2 => Just(2u8), 1 => Just(3u8)],
        proptest::collection::vec((act(), fault()), 1..5),
    )
        .prop_map(|(gap, acts)| Step { gap, acts });
    proptest::collection::vec(step, 20..60)
}

// ---------------------------------------------------------------------------------------------
// Turning actions into transactions
// ---------------------------------------------------------------------------------------------

/// Who must sign an action.
#[derive(Debug, Clone)]
enum Signer {
    Dept(&'static str),
    Ent(usize),
    Quorum(Vec<&'static str>),
}

/// What a candidate's outcome must be.
#[derive(Debug, Clone)]
enum Expect {
    /// Anything.
    Any,
    /// Rejected, with one of these codes (any code if empty).
    Reject(&'static [&'static str]),
    /// A duplicate if candidate `0` was accepted.
    DuplicateOf(usize),
}

struct Candidate {
    tx: SignedTransaction,
    expect: Expect,
    label: String,
}

/// Counts of what happened, to check that the generator reaches every rule.
#[derive(Debug, Default)]
struct Stats {
    accepted: BTreeMap<String, usize>,
    rejected: BTreeMap<&'static str, usize>,
    refusals: BTreeMap<&'static str, usize>,
    read_rejections: BTreeMap<&'static str, usize>,
    receipts: usize,
    blocks: usize,
}

struct World {
    fx: Fx,
    shadow: MemoryLedger,
    ents: Vec<Ent>,
    app: KeyPair,
    att_ids: Vec<AttestationId>,
    grant_ids: Vec<GrantId>,
    committed: Vec<SignedTransaction>,
    leaves: Vec<Hash>,
    revoked: BTreeSet<AttestationId>,
    receipts_expected: usize,
}

/// Whether invariant (f) tolerates the known bug demonstrated by the ignored tests
/// `rules::a_read_recorded_before_a_withdrawal_in_the_same_block_stays_permitted` and
/// `rules::a_read_stamped_ahead_of_the_block_cannot_postdate_a_withdrawal`: a receipt whose
/// grant was withdrawn at or before its `read_at` by a withdrawal committed in the same block
/// or later. Set to `false` once the state machine is fixed.
const TOLERATE_WITHDRAWAL_TIMING_BUG: bool = false;

fn unknown_att() -> AttestationId {
    AttestationId(Digest([0xab; 32]))
}

fn unknown_grant() -> GrantId {
    GrantId(Digest([0xcd; 32]))
}

impl World {
    fn new() -> Self {
        let fx = Fx::new();
        let shadow = MemoryLedger::new(fx.net.genesis.clone()).unwrap();
        Self {
            fx,
            shadow,
            ents: (1..=ENTS as u32).map(Ent::new).collect(),
            app: key("bank-app"),
            att_ids: Vec::new(),
            grant_ids: Vec::new(),
            committed: Vec::new(),
            leaves: Vec::new(),
            revoked: BTreeSet::new(),
            receipts_expected: 0,
        }
    }

    fn state(&self) -> &MemoryState {
        self.fx.ledger.state()
    }

    fn current_key(&self, i: usize) -> KeyPair {
        let e = &self.ents[i];
        state::enterprise(self.state(), &e.uscc)
            .unwrap()
            .and_then(|r| r.current_key().copied())
            .and_then(|pk| e.keys.iter().find(|k| k.public() == pk).cloned())
            .unwrap_or_else(|| e.key().clone())
    }

    fn ent_of(&self, uscc: &Uscc) -> Option<usize> {
        self.ents.iter().position(|e| &e.uscc == uscc)
    }

    fn attestations(&self) -> Vec<AttestationRecord> {
        let tag = keys::attestation(&AttestationId::default())[0];
        self.state()
            .scan_prefix(&[tag])
            .unwrap()
            .into_iter()
            .map(|(k, v)| state::decode_attestation(&k, &v).unwrap())
            .collect()
    }

    fn grants(&self) -> Vec<GrantRecord> {
        let tag = keys::grant(&GrantId::default())[0];
        self.state()
            .scan_prefix(&[tag])
            .unwrap()
            .into_iter()
            .map(|(_, v)| <GrantRecord as vault_protocol::encoding::Canonical>::decode(&v).unwrap())
            .collect()
    }

    fn receipts(&self) -> Vec<ReceiptRecord> {
        let tag = keys::receipt(&ReceiptId::default())[0];
        self.state()
            .scan_prefix(&[tag])
            .unwrap()
            .into_iter()
            .map(|(_, v)| {
                <ReceiptRecord as vault_protocol::encoding::Canonical>::decode(&v).unwrap()
            })
            .collect()
    }

    fn any_att(&self, k: u8) -> AttestationId {
        let n = self.att_ids.len() + 1;
        self.att_ids
            .get(k as usize % n)
            .copied()
            .unwrap_or_else(unknown_att)
    }

    fn pick_att(&self, p: &Pick) -> AttestationId {
        match p {
            Pick::Smart(k) => {
                let all = self.attestations();
                if all.is_empty() {
                    self.any_att(*k)
                } else {
                    all[*k as usize % all.len()].id
                }
            }
            Pick::Any(k) => self.any_att(*k),
        }
    }

    fn any_grant(&self, k: u8) -> GrantId {
        let n = self.grant_ids.len() + 1;
        self.grant_ids
            .get(k as usize % n)
            .copied()
            .unwrap_or_else(unknown_grant)
    }

    /// The live attestation of a file and type: the live index says there is one, and it is
    /// the file's one current attestation of that type.
    fn live(&self, file_digest: &Digest, doc_type: &str) -> Option<AttestationId> {
        self.state()
            .get(&keys::live(file_digest, &dt(doc_type)))
            .unwrap()?;
        state::attestations_by_digest(self.state(), file_digest)
            .unwrap()
            .into_iter()
            .find(|r| {
                r.attestation.doc_type.as_str() == doc_type
                    && r.status != Status::Revoked
                    && r.superseded_by.is_none()
            })
            .map(|r| r.id)
    }

    fn members(&self) -> Vec<&'static str> {
        let gov = self.fx.ledger.governance().unwrap();
        DEPTS
            .iter()
            .copied()
            .filter(|d| gov.member(&did(d)).is_some())
            .collect()
    }

    /// The body of an action and who must sign it.
    fn body(&self, act: &Act) -> (TxBody, Signer) {
        let now = self.fx.now();
        match act {
            Act::Enrol { dept, ent } => {
                let d = DEPTS[*dept as usize % 5];
                (
                    self.ents[*ent as usize % ENTS].enrolment(d),
                    Signer::Dept(d),
                )
            }
            Act::RotateKey { ent } => {
                let i = *ent as usize % ENTS;
                let e = &self.ents[i];
                let used: Vec<_> = state::enterprise(self.state(), &e.uscc)
                    .unwrap()
                    .map(|r| r.keys.iter().map(|p| p.key).collect())
                    .unwrap_or_default();
                let new_key = e
                    .keys
                    .iter()
                    .find(|k| !used.contains(&k.public()))
                    .unwrap_or(e.key())
                    .public();
                (
                    TxBody::RotateEnterpriseKey(EnterpriseKeyRotation {
                        enterprise: e.uscc,
                        new_key,
                    }),
                    Signer::Ent(i),
                )
            }
            Act::Issue {
                ty,
                issuer,
                ent,
                file: f,
                validity,
                supersede,
            } => {
                let (doc_type, usual) = TYPES[*ty as usize % TYPES.len()];
                let issuer = issuer.map_or(usual, |i| DEPTS[i as usize % 5]);
                let digest = file(&format!("f{}", f % 4));
                let mut subject = self.ents[*ent as usize % ENTS].uscc;
                let supersedes = match supersede {
                    None => None,
                    Some(Pick::Smart(k)) => match self.live(&digest, doc_type) {
                        Some(live) => {
                            if let Some(rec) = state::attestation(self.state(), &live).unwrap() {
                                subject = rec.attestation.subject;
                            }
                            Some(live)
                        }
                        None => Some(self.pick_att(&Pick::Smart(*k))),
                    },
                    Some(p) => Some(self.pick_att(p)),
                };
                let from = now.minus(DAY);
                let (valid_from, valid_until) = match validity {
                    0 | 5 => (from, Some(now.plus(300 * DAY))),
                    1 => (from, None),
                    2 => (now.minus(HOUR), Some(now.plus(2 * HOUR))),
                    3 => (from, Some(from)),
                    _ => (from, Some(now.plus(2000 * DAY))),
                };
                let claims = if *validity == 5 {
                    claims(&[("z", "1"), ("a", "2")])
                } else {
                    claims(&[("no", &format!("{f}")), ("version", &format!("{}", now.0))])
                };
                let a = vault_protocol::tx::Attestation {
                    issuer: did(issuer),
                    subject,
                    doc_type: dt(doc_type),
                    file_digest: digest,
                    claims,
                    valid_from,
                    valid_until,
                    supersedes,
                };
                (TxBody::IssueAttestation(a), Signer::Dept(issuer))
            }
            Act::Status { att, dept, action } => {
                let id = self.pick_att(att);
                let issuer = state::attestation(self.state(), &id)
                    .unwrap()
                    .and_then(|r| {
                        DEPTS
                            .iter()
                            .copied()
                            .find(|d| *d == r.attestation.issuer.as_str())
                    })
                    .unwrap_or("samr");
                let d = dept.map_or(issuer, |i| DEPTS[i as usize % 5]);
                let action = [
                    StatusAction::Suspend,
                    StatusAction::Reinstate,
                    StatusAction::Revoke,
                ][*action as usize % 3];
                let body = TxBody::SetStatus(vault_protocol::tx::StatusChange {
                    department: did(d),
                    attestation: id,
                    action,
                    reason_code: 2,
                    note: bs(""),
                });
                (body, Signer::Dept(d))
            }
            Act::Grant {
                ent,
                grantee,
                scope,
                expiry,
            } => {
                let i = *ent as usize % ENTS;
                let e = &self.ents[i];
                let grantee = match grantee {
                    5 => Grantee::Application(self.app.public()),
                    g => to_dept(DEPTS[*g as usize % 5]),
                };
                let all = self.attestations();
                let mine: Vec<AttestationId> = all
                    .iter()
                    .filter(|r| r.attestation.subject == e.uscc)
                    .map(|r| r.id)
                    .take(2)
                    .collect();
                let foreign = all
                    .iter()
                    .find(|r| r.attestation.subject != e.uscc)
                    .map(|r| r.id);
                let mut held: Vec<&str> = all
                    .iter()
                    .filter(|r| r.attestation.subject == e.uscc)
                    .map(|r| r.attestation.doc_type.as_str())
                    .collect();
                held.sort();
                held.dedup();
                held.truncate(2);
                let scope = match scope {
                    0 if !held.is_empty() => types(&held),
                    0 => types(&[LICENCE]),
                    1 => types(&[LICENCE, RATING]),
                    2 if !mine.is_empty() => atts(&mine),
                    2 => types(&[CONSTRUCTION]),
                    3 => GrantScope::DocumentTypes(BoundedVec::default()),
                    4 => types(&[RATING, LICENCE]),
                    _ => atts(&[foreign.unwrap_or_else(unknown_att)]),
                };
                let expires_at = match expiry {
                    0 => now.plus(HOUR),
                    1 => now.plus(5 * DAY),
                    2 => now.plus(30 * DAY),
                    3 => now.minus(1),
                    _ => now.plus(400 * DAY),
                };
                (
                    self.fx.grant_body(e, grantee, scope, expires_at),
                    Signer::Ent(i),
                )
            }
            Act::Withdraw { ent, grant } => {
                let (id, owner) = match grant {
                    Pick::Smart(k) => {
                        let all = self.grants();
                        match all.get(*k as usize % all.len().max(1)) {
                            Some(g) => (g.id, self.ent_of(&g.grant.enterprise).unwrap_or(0)),
                            None => (self.any_grant(*k), 0),
                        }
                    }
                    Pick::Any(k) => (self.any_grant(*k), 0),
                };
                let i = ent.map_or(owner, |e| e as usize % ENTS);
                (self.fx.withdrawal(&self.ents[i], id), Signer::Ent(i))
            }
            Act::Read { recorder, reads } => {
                // Smart picks take a grant from the state, and by default the recorder is its
                // grantee department; the reader is the grantee.
                let all = self.grants();
                let grants: Vec<Option<GrantRecord>> = reads
                    .iter()
                    .map(|(_, g, _, _)| match g {
                        Pick::Smart(k) => all.get(*k as usize % all.len().max(1)).cloned(),
                        Pick::Any(_) => None,
                    })
                    .collect();
                let recorder = match recorder {
                    Some(r) => DEPTS[*r as usize % 5],
                    None => grants
                        .iter()
                        .flatten()
                        .find_map(|g| match &g.grant.grantee {
                            Grantee::Department(d) => {
                                DEPTS.iter().copied().find(|x| *x == d.as_str())
                            }
                            Grantee::Application(_) => None,
                        })
                        .unwrap_or("samr"),
                };
                let r = DEPTS.iter().position(|d| *d == recorder).unwrap_or(0);
                let reads = reads
                    .iter()
                    .zip(grants)
                    .map(|((reader, g, a, when), grant)| {
                        let reader = match (reader, &grant) {
                            (0, Some(g)) => g.grant.grantee.clone(),
                            (0, None) => to_dept(recorder),
                            (1, _) => to_dept(DEPTS[(r + 1) % 5]),
                            _ => Grantee::Application(self.app.public()),
                        };
                        let (grant_id, att) = match (grant, g) {
                            (Some(g), _) => {
                                // Mostly a document in the grant's scope.
                                let of = state::attestations_by_subject(
                                    self.state(),
                                    &g.grant.enterprise,
                                )
                                .unwrap();
                                let in_scope: Vec<&AttestationRecord> = of
                                    .iter()
                                    .filter(|r| match &g.grant.scope {
                                        GrantScope::DocumentTypes(t) => {
                                            t.contains(&r.attestation.doc_type)
                                        }
                                        GrantScope::Attestations(ids) => ids.contains(&r.id),
                                    })
                                    .collect();
                                let att = if !in_scope.is_empty() && a % 8 != 7 {
                                    Some(in_scope[*a as usize % in_scope.len()].id)
                                } else {
                                    of.get(*a as usize % of.len().max(1)).map(|r| r.id)
                                };
                                (g.id, att.unwrap_or_else(|| self.pick_att(&Pick::Smart(*a))))
                            }
                            (None, Pick::Any(k) | Pick::Smart(k)) => {
                                (self.any_grant(*k), self.any_att(*a))
                            }
                        };
                        let read_at = match when {
                            0 => now,
                            1 => now.minus(HOUR),
                            2 => now.minus(2 * DAY),
                            3 => now.minus(4 * DAY),
                            4 => now.plus(2 * 60 * SECOND),
                            _ => now.plus(10 * 60 * SECOND),
                        };
                        read(reader, att, grant_id, read_at)
                    })
                    .collect();
                let body = TxBody::RecordAccess(vault_protocol::tx::AccessReceipts {
                    recorder: did(recorder),
                    reads: BoundedVec::new(reads).unwrap(),
                });
                (body, Signer::Dept(recorder))
            }
            Act::Admit { signers } => {
                let members = self.members();
                let n = (*signers as usize % 4) + 1;
                let signers: Vec<&'static str> = members.into_iter().take(n).collect();
                let body = TxBody::Governance(GovernanceAction::AdmitDepartment {
                    department: did("medins"),
                    name: bs("医疗保障局"),
                    signing_key: test_key("medins", "signing").public(),
                    node_key: test_key("medins", "node").public(),
                });
                (body, Signer::Quorum(signers))
            }
        }
    }

    fn correct_keys(&self, signer: &Signer) -> Vec<KeyPair> {
        match signer {
            Signer::Dept(d) => vec![self.fx.signing(d)],
            Signer::Ent(i) => vec![self.current_key(*i)],
            Signer::Quorum(ds) => ds.iter().map(|d| self.fx.signing(d)).collect(),
        }
    }

    /// A key that is certainly not the one the rule requires.
    fn wrong_keys(&self, signer: &Signer, k: u8) -> Vec<KeyPair> {
        let k = k as usize;
        match signer {
            Signer::Dept(d) => {
                let i = DEPTS.iter().position(|x| x == d).unwrap_or(0);
                match k % 3 {
                    0 => vec![self.fx.signing(DEPTS[(i + 1 + (k / 3) % 4) % 5])],
                    1 => vec![self.current_key(k / 3 % ENTS)],
                    _ => vec![test_key(d, "node")],
                }
            }
            Signer::Ent(i) => {
                let current = self.current_key(*i).public();
                match k % 3 {
                    0 => vec![self.fx.signing(DEPTS[k / 3 % 4])],
                    1 => vec![self.current_key((i + 1 + k / 3 % 2) % ENTS)],
                    // A key the enterprise retired (a rotation earlier in the same block can
                    // only make an unused key current), else a stray key.
                    _ => {
                        let retired: Vec<_> = state::enterprise(self.state(), &self.ents[*i].uscc)
                            .unwrap()
                            .map(|r| {
                                r.keys
                                    .iter()
                                    .map(|p| p.key)
                                    .filter(|p| p != &current)
                                    .collect()
                            })
                            .unwrap_or_default();
                        let stray = key(&format!("stray/{i}"));
                        vec![self.ents[*i]
                            .keys
                            .iter()
                            .find(|x| retired.contains(&x.public()))
                            .cloned()
                            .unwrap_or(stray)]
                    }
                }
            }
            Signer::Quorum(_) => vec![key("outsider")],
        }
    }

    /// The candidates (and forged transactions) for one generated action.
    fn concretize(
        &self,
        act: &Act,
        fault: &Fault,
        out: &mut Vec<Candidate>,
        forged: &mut Vec<SignedTransaction>,
    ) {
        let params = &self.fx.net.genesis.params;
        if let Fault::Replay(k) = fault {
            if !self.committed.is_empty() {
                let tx = self.committed[*k as usize % self.committed.len()].clone();
                out.push(Candidate {
                    label: format!("replay {}", tx.tx.body.kind()),
                    tx,
                    expect: Expect::Reject(&["duplicate_transaction", "stale_transaction"]),
                });
                return;
            }
        }
        let (body, signer) = self.body(act);
        let label = body.kind().to_string();
        let mut tx = self.fx.tx(body);
        let mut keys = self.correct_keys(&signer);
        let mut expect = Expect::Any;
        match fault {
            Fault::None | Fault::Replay(_) | Fault::Twice | Fault::Forged => {}
            Fault::WrongChain => {
                tx.chain_id = ChainId::new("other-chain").unwrap();
                expect = Expect::Reject(&["wrong_chain"]);
            }
            Fault::Stale => {
                tx.created_at = self.fx.now().minus(params.max_tx_age_ms + 1 + HOUR);
                expect = Expect::Reject(&["stale_transaction"]);
            }
            Fault::Future => {
                tx.created_at = self.fx.now().plus(params.max_clock_skew_ms + 1);
                expect = Expect::Reject(&["future_transaction"]);
            }
            Fault::WrongSigner(k) => {
                keys = self.wrong_keys(&signer, *k);
                expect = Expect::Reject(&[]);
            }
            Fault::ExtraSigner => {
                keys.push(key("extra-signer"));
                expect = Expect::Reject(&[]);
            }
        }
        let refs: Vec<&KeyPair> = keys.iter().collect();
        let signed = tx.sign(&refs).unwrap();
        match fault {
            Fault::Forged => {
                let mut endorsements = signed.endorsements.to_vec();
                let mut bytes: [u8; 64] = endorsements[0].signature.as_bytes().try_into().unwrap();
                bytes[33] ^= 0x80;
                endorsements[0].signature = vault_protocol::crypto::Signature::from_bytes(bytes);
                let mut bad = signed;
                bad.endorsements = BoundedVec::new(endorsements).unwrap();
                forged.push(bad);
            }
            Fault::Twice => {
                let first = out.len();
                out.push(Candidate {
                    tx: signed.clone(),
                    expect,
                    label: label.clone(),
                });
                out.push(Candidate {
                    tx: signed,
                    expect: Expect::DuplicateOf(first),
                    label,
                });
            }
            _ => out.push(Candidate {
                tx: signed,
                expect,
                label,
            }),
        }
    }

    /// Runs one block and checks every invariant.
    fn step(&mut self, step: &Step, stats: &mut Stats) {
        self.fx.advance(GAPS[step.gap as usize % GAPS.len()]);
        let mut cands = Vec::new();
        let mut forged = Vec::new();
        for (act, fault) in &step.acts {
            self.concretize(act, fault, &mut cands, &mut forged);
        }
        let txs: Vec<SignedTransaction> = cands.iter().map(|c| c.tx.clone()).collect();
        let proposer = did("samr");
        let time = self.fx.now();

        // A forged signature makes `propose` refuse the batch, naming it; nothing changes.
        for f in forged {
            let mut with = txs.clone();
            with.push(f);
            let before = self.fx.ledger.head();
            match self.fx.ledger.propose(&proposer, time, with.clone()) {
                Err(LedgerError::Endorsement { index, error }) => {
                    assert_eq!(index, with.len() - 1);
                    assert_eq!(error.code(), "bad_signature");
                }
                other => panic!("forged signature accepted: {other:?}"),
            }
            assert_eq!(self.fx.ledger.head(), before);
        }

        for c in &cands {
            let id = c.tx.id(SUITE);
            match &c.tx.tx.body {
                TxBody::IssueAttestation(_) => self.att_ids.push(AttestationId(id.0)),
                TxBody::Grant(_) => self.grant_ids.push(GrantId(id.0)),
                _ => {}
            }
        }

        let pre = self.state().clone();
        let parent = self.fx.ledger.head();
        let built = self.fx.ledger.propose(&proposer, time, txs).unwrap();

        // (a) Each candidate, alone and in sequence: a rejection writes nothing.
        let verified: Vec<VerifiedTx> = cands
            .iter()
            .map(|c| c.tx.clone().verify(SUITE).unwrap())
            .collect();
        let height = parent.height + 1;
        let mut cur = pre.clone();
        let mut accepted: Vec<VerifiedTx> = Vec::new();
        let mut rejected: Vec<(TxId, TxError)> = Vec::new();
        let mut outcomes: Vec<Result<(), TxError>> = Vec::new();
        for v in &verified {
            let alone = TxContext {
                height,
                time,
                index: 0,
                log_index: parent.log_size,
            };
            let mut o = Overlay::new(&pre);
            let r = state::apply_transaction(&mut o, &alone, v);
            let delta = o.into_delta();
            match r {
                Ok(()) => assert!(!delta.writes.is_empty()),
                Err(e) => assert!(
                    delta.writes.is_empty(),
                    "rejected alone ({e}) but wrote {delta:?}"
                ),
            }

            let ctx = TxContext {
                height,
                time,
                index: accepted.len() as u32,
                log_index: parent.log_size + accepted.len() as u64,
            };
            let mut o = Overlay::new(&cur);
            let r = state::apply_transaction(&mut o, &ctx, v);
            let delta = o.into_delta();
            match r {
                Ok(()) => {
                    cur.apply(&delta);
                    // Every accepted transaction is found where it was committed (an issuance
                    // through its attestation's record, the others by their own entry).
                    let at = state::tx_location(&cur, &v.id()).unwrap();
                    assert_eq!(at.map(|l| (l.height, l.index)), Some((height, ctx.index)));
                    accepted.push(v.clone());
                    outcomes.push(Ok(()));
                }
                Err(ApplyError::Rejected(e)) => {
                    assert!(
                        delta.writes.is_empty(),
                        "rejected ({e}) but wrote {delta:?}"
                    );
                    rejected.push((v.id(), e.clone()));
                    outcomes.push(Err(e));
                }
                Err(ApplyError::Store(e)) => panic!("store error: {e}"),
            }
        }
        assert_eq!(built.rejected, rejected);
        // The pool's cheap dry run (no sealing) rejects exactly what building the block does.
        assert_eq!(state::dry_run(&pre, time, &verified).unwrap(), rejected);
        let block_ids: Vec<TxId> = built
            .block
            .transactions
            .iter()
            .map(|t| t.id(SUITE))
            .collect();
        let accepted_ids: Vec<TxId> = accepted.iter().map(|t| t.id()).collect();
        assert_eq!(block_ids, accepted_ids);
        // The accepted transactions alone build the very same block.
        let replay = state::build_block(&pre, &proposer, time, accepted).unwrap();
        assert!(replay.rejected.is_empty());
        assert_eq!(replay.block.header, built.block.header);
        assert_eq!(replay.outcome.delta, built.outcome.delta);

        let outcome = self.fx.ledger.commit(&built.block).unwrap();
        assert_eq!(outcome.delta, built.outcome.delta);
        let mut expected = pre.clone();
        expected.apply(&replay.outcome.delta);
        assert_eq!(expected.entries(), self.state().entries());
        let content = |s: &MemoryState| -> Vec<(Vec<u8>, Vec<u8>)> {
            s.entries()
                .iter()
                .filter(|(k, _)| {
                    !keys::is_meta(k) && !keys::is_status_node(k) && k.as_slice() != keys::LOG
                })
                .map(|(k, v)| (k.clone(), v.clone()))
                .collect()
        };
        assert_eq!(content(&cur), content(self.state()));

        // Expectations of the generated faults.
        for (i, (c, out)) in cands.iter().zip(&outcomes).enumerate() {
            match (&c.expect, out) {
                (Expect::Any, _) => {}
                (Expect::Reject(codes), Err(e)) => {
                    assert!(
                        codes.is_empty() || codes.contains(&e.code()),
                        "{}: {e:?} not in {codes:?}",
                        c.label
                    )
                }
                (Expect::Reject(_), Ok(())) => {
                    panic!("candidate {i} ({}) should have been rejected", c.label)
                }
                (Expect::DuplicateOf(j), out) => {
                    if outcomes[*j].is_ok() {
                        assert_eq!(out, &Err(TxError::Duplicate { tx: c.tx.id(SUITE) }));
                    }
                }
            }
            match out {
                Ok(()) => {
                    let detail = match &c.tx.tx.body {
                        TxBody::SetStatus(s) => format!("{}:{:?}", c.label, s.action),
                        TxBody::IssueAttestation(a) if a.supersedes.is_some() => {
                            format!("{}:supersede", c.label)
                        }
                        TxBody::RecordAccess(r) => {
                            self.receipts_expected += r.reads.len();
                            stats.receipts += r.reads.len();
                            c.label.clone()
                        }
                        _ => c.label.clone(),
                    };
                    *stats.accepted.entry(detail).or_default() += 1;
                }
                Err(e) => {
                    *stats.rejected.entry(e.code()).or_default() += 1;
                    if c.label == "record_access" {
                        *stats.read_rejections.entry(e.code()).or_default() += 1;
                    }
                    if let TxError::ReadNotPermitted { refusal, .. } = e {
                        *stats.refusals.entry(refusal.code()).or_default() += 1;
                    }
                }
            }
        }
        stats.blocks += 1;

        // (d) A second ledger fed the same block agrees.
        self.shadow.commit(&built.block).unwrap();
        assert_eq!(self.shadow.state().entries(), self.state().entries());
        assert_eq!(self.shadow.head(), self.fx.ledger.head());

        // (c) The log root is the Merkle tree hash of every committed leaf.
        for t in built.block.transactions.iter() {
            self.leaves.push(Sha256LogHasher.hash_leaf(&t.leaf_data()));
            self.committed.push(t.clone());
        }
        let root = mth(&Sha256LogHasher, &self.leaves);
        let head = self.fx.ledger.head();
        assert_eq!(head.log_root.0, root);
        assert_eq!(built.block.header.log_root.0, root);
        assert_eq!(head.log_size, self.leaves.len() as u64);
        assert_eq!(self.fx.ledger.log().root(), root);
        assert_eq!(self.fx.ledger.log().size(), self.leaves.len() as u64);

        self.check_state();
    }

    /// Invariants (b), (e) and (f) on the current state.
    fn check_state(&mut self) {
        let atts = self.attestations();
        let by_id: BTreeMap<AttestationId, &AttestationRecord> =
            atts.iter().map(|r| (r.id, r)).collect();
        let t_subject = keys::by_subject_prefix(&self.ents[0].uscc)[0];
        let t_digest = keys::by_digest_prefix(&Digest::default())[0];
        let t_live = keys::live(&Digest::default(), &dt(LICENCE))[0];
        let t_by_ent = keys::grants_by_enterprise_prefix(&self.ents[0].uscc)[0];
        let t_by_grantee = keys::grants_by_grantee_prefix(&to_dept("samr"))[0];
        let t_receipt_ent = keys::receipts_by_enterprise_prefix(&self.ents[0].uscc)[0];
        let id32 = |b: &[u8]| -> [u8; 32] { b.try_into().unwrap() };

        // (b) Revoked stays revoked; histories follow the transition table.
        for r in &atts {
            if self.revoked.contains(&r.id) {
                assert_eq!(r.status, Status::Revoked, "{} left revoked", r.id);
            }
            if r.status == Status::Revoked {
                self.revoked.insert(r.id);
            }
            let mut status = Status::Active;
            for e in &r.history {
                let next = match (status, e.action) {
                    (Status::Active, StatusAction::Suspend) => Status::Suspended,
                    (Status::Suspended, StatusAction::Reinstate) => Status::Active,
                    (Status::Active | Status::Suspended, StatusAction::Revoke) => Status::Revoked,
                    (from, action) => panic!("{}: {action:?} from {from} in the history", r.id),
                };
                assert_eq!(e.status, next);
                status = next;
            }
            assert_eq!(r.status, status);
        }
        assert!(self.revoked.iter().all(|id| by_id.contains_key(id)));

        // (e) Indexes point to matching records.
        let entries = self.state().entries();
        let mut live_seen = BTreeSet::new();
        for (k, v) in entries {
            let tag = k[0];
            if tag == t_subject {
                let rec = by_id
                    .get(&AttestationId(Digest(id32(&k[19..]))))
                    .expect("by-subject entry of no attestation");
                assert_eq!(rec.attestation.subject.as_bytes(), &k[1..19]);
            } else if tag == t_digest {
                let rec = by_id
                    .get(&AttestationId(Digest(id32(&k[33..]))))
                    .expect("by-digest entry of no attestation");
                assert_eq!(&rec.attestation.file_digest.0[..], &k[1..33]);
            } else if tag == t_live {
                // An empty entry: the file and type have exactly one current attestation (not
                // revoked, not superseded).
                assert!(v.is_empty(), "a live-index entry holds {} bytes", v.len());
                let current: Vec<&AttestationRecord> = atts
                    .iter()
                    .filter(|r| {
                        r.attestation.file_digest.0[..] == k[1..33]
                            && r.attestation.doc_type.as_str().as_bytes() == &k[33..]
                            && r.status != Status::Revoked
                            && r.superseded_by.is_none()
                    })
                    .collect();
                assert_eq!(
                    current.len(),
                    1,
                    "a live-index entry with {} current attestations",
                    current.len()
                );
                live_seen.insert(current[0].id);
            } else if tag == t_by_ent || tag == t_by_grantee {
                let g = state::grant(self.state(), &GrantId(Digest(id32(&k[k.len() - 32..]))))
                    .unwrap()
                    .expect("grant index entry of no grant");
                if tag == t_by_ent {
                    assert_eq!(g.grant.enterprise.as_bytes(), &k[1..19]);
                } else {
                    assert_eq!(keys::grant_by_grantee(&g.grant.grantee, &g.id), *k);
                }
            } else if tag == t_receipt_ent {
                let r = state::receipt(self.state(), &ReceiptId(Digest(id32(&k[27..]))))
                    .unwrap()
                    .expect("receipt index entry of no receipt");
                assert_eq!(
                    keys::receipt_by_enterprise(&r.enterprise, r.read.read_at, &r.id),
                    *k
                );
            }
        }
        for r in &atts {
            let a = &r.attestation;
            assert!(entries.contains_key(&keys::by_subject(&a.subject, &r.id)));
            assert!(entries.contains_key(&keys::by_digest(&a.file_digest, &r.id)));
            let current = r.status != Status::Revoked && r.superseded_by.is_none();
            assert_eq!(
                current,
                live_seen.contains(&r.id),
                "{} live index disagrees",
                r.id
            );
            if current {
                assert_eq!(self.live(&a.file_digest, a.doc_type.as_str()), Some(r.id));
            }
            if let Some(by) = r.superseded_by {
                let next = by_id.get(&by).expect("successor exists");
                assert_eq!(next.attestation.supersedes, Some(r.id));
                assert_eq!(next.attestation.subject, a.subject);
                assert_eq!(next.attestation.doc_type, a.doc_type);
                assert_eq!(next.attestation.issuer, a.issuer);
            }
            assert!(state::tx_location(self.state(), &TxId(r.id.0))
                .unwrap()
                .is_some());
        }
        for g in self.grants() {
            assert!(entries.contains_key(&keys::grant_by_enterprise(&g.grant.enterprise, &g.id)));
            assert!(entries.contains_key(&keys::grant_by_grantee(&g.grant.grantee, &g.id)));
        }

        // (f) Every receipt is of a read its grant permitted at read time.
        let receipts = self.receipts();
        assert_eq!(receipts.len(), self.receipts_expected);
        for r in &receipts {
            let g = state::grant(self.state(), &r.read.grant)
                .unwrap()
                .expect("receipt's grant");
            let a = by_id
                .get(&r.read.attestation)
                .expect("receipt's attestation");
            // As the grant stands now (a grant changes only by its withdrawal, once).
            let mut permitted = state::check_access(&g, &r.read.reader, a, None, r.read.read_at);
            if TOLERATE_WITHDRAWAL_TIMING_BUG {
                // Known bug (see the report and the ignored tests): a withdrawal committed at or
                // after the block that recorded the read, whose time is not after the read's
                // `read_at` (same block, or a read stamped up to the clock skew ahead).
                if let Err(AccessRefusal::Withdrawn { withdrawn_at }) = permitted {
                    if withdrawn_at >= r.recorded_at {
                        let mut before = g.clone();
                        before.withdrawn_at = None;
                        permitted =
                            state::check_access(&before, &r.read.reader, a, None, r.read.read_at);
                    }
                }
            }
            assert_eq!(
                permitted,
                Ok(()),
                "receipt {} of a read no grant permitted",
                r.id
            );
            assert!(r.read.read_at >= g.granted_at);
            assert!(r.read.read_at < g.grant.expires_at);
            // The read was permitted when it was recorded.
            assert!(g
                .withdrawn_at
                .is_none_or(|w| r.read.read_at < w || w >= r.recorded_at));
            assert!(
                r.read.read_at
                    <= r.recorded_at
                        .plus(self.fx.net.genesis.params.max_clock_skew_ms)
            );
            if let Grantee::Department(d) = &r.read.reader {
                assert_eq!(d, &r.recorder);
            }
            assert_eq!(r.enterprise, a.attestation.subject);
            assert_eq!(r.enterprise, g.grant.enterprise);
            assert_eq!(r.purpose_code, g.grant.purpose.code.as_str());
            assert!(entries.contains_key(&keys::receipt_by_enterprise(
                &r.enterprise,
                r.read.read_at,
                &r.id
            )));
        }
    }

    /// (d) A fresh ledger replaying every committed block ends in the identical state.
    fn check_replay(&self) {
        let mut fresh = MemoryLedger::new(self.fx.net.genesis.clone()).unwrap();
        let head = self.fx.ledger.head();
        for h in 1..=head.height {
            fresh.commit(self.fx.ledger.block(h).unwrap()).unwrap();
        }
        assert_eq!(fresh.state().entries(), self.state().entries());
        assert_eq!(fresh.head(), head);
        assert_eq!(fresh.log().root(), self.fx.ledger.log().root());

        // Every accepted attestation verifies as issued (record, signature, key, authorisation),
        // and its verdict reports the recorded status.
        for r in self.attestations() {
            let v = self
                .fx
                .ledger
                .verify(&r.id, head.time, None)
                .unwrap()
                .unwrap();
            for c in &v.checks {
                match c.check {
                    CheckKind::Record
                    | CheckKind::Signature
                    | CheckKind::IssuerKey
                    | CheckKind::IssuerAuthorised => {
                        assert_eq!(c.outcome, Outcome::Pass, "{}: {:?}", r.id, c)
                    }
                    CheckKind::Status => {
                        assert_eq!(c.outcome == Outcome::Pass, r.status == Status::Active)
                    }
                    CheckKind::NotSuperseded => {
                        assert_eq!(c.outcome == Outcome::Pass, r.superseded_by.is_none())
                    }
                    _ => {}
                }
            }
            assert_eq!(v.status, r.status);
        }
    }
}

fn run(steps: &[Step], stats: &mut Stats) {
    let mut world = World::new();
    // Two of the three enterprises are enrolled from the start; the third only if generated.
    let setup = Step {
        gap: 0,
        acts: vec![
            (Act::Enrol { dept: 0, ent: 0 }, Fault::None),
            (Act::Enrol { dept: 1, ent: 1 }, Fault::None),
        ],
    };
    for step in std::iter::once(&setup).chain(steps) {
        world.step(step, stats);
    }
    world.check_replay();
}

/// `cases` cases, or `PROPTEST_CASES` if set (for longer runs).
fn config(cases: u32) -> Config {
    Config {
        cases: std::env::var("PROPTEST_CASES")
            .ok()
            .and_then(|v| v.parse().ok())
            .unwrap_or(cases),
        failure_persistence: Some(Box::new(FileFailurePersistence::Off)),
        ..Config::default()
    }
}

proptest! {
    #![proptest_config(config(64))]

    #[test]
    fn random_runs_keep_every_invariant(steps in steps()) {
        run(&steps, &mut Stats::default());
    }
}

/// The generator reaches every kind of transaction and most rules: a fixed-seed run of a few
/// cases accepts each kind and rejects for each listed reason.
#[test]
fn the_generator_exercises_the_rules() {
    let mut runner =
        TestRunner::new_with_rng(config(12), TestRng::deterministic_rng(RngAlgorithm::ChaCha));
    let stats = std::cell::RefCell::new(Stats::default());
    runner
        .run(&steps(), |steps| {
            run(&steps, &mut stats.borrow_mut());
            Ok(())
        })
        .unwrap();
    let stats = stats.into_inner();
    println!("{stats:#?}");
    for kind in [
        "governance",
        "enrol_enterprise",
        "rotate_enterprise_key",
        "issue_attestation",
        "issue_attestation:supersede",
        "set_status:Suspend",
        "set_status:Reinstate",
        "set_status:Revoke",
        "grant",
        "withdraw_grant",
        "record_access",
    ] {
        assert!(
            stats.accepted.get(kind).copied().unwrap_or(0) > 0,
            "never accepted: {kind}"
        );
    }
    for code in [
        "wrong_chain",
        "stale_transaction",
        "future_transaction",
        "duplicate_transaction",
        "not_member",
        "wrong_signer",
        "insufficient_quorum",
        "department_exists",
        "issuer_not_authorised",
        "unknown_document_type",
        "invalid_field",
        "already_enrolled",
        "not_enrolled",
        "digest_already_live",
        "unknown_attestation",
        "invalid_supersession",
        "invalid_status_transition",
        "not_issuer",
        "unknown_grant",
        "grant_not_owned",
        "unknown_grantee",
        "read_not_permitted",
    ] {
        assert!(
            stats.rejected.get(code).copied().unwrap_or(0) > 0,
            "never rejected for {code}"
        );
    }
    assert!(stats.receipts > 0);
}
