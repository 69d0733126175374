//! The pool of pending transactions.
//!
//! A transaction is checked once on entry — decoded, every signature verified, chain, time window
//! and duplicates checked — and kept as a [`VerifiedTx`], so a proposer never verifies a pooled
//! signature again. The pool is bounded: when full it refuses new transactions (the API answers
//! 503 with a retry hint). After each committed block, committed transactions leave the pool and
//! the oldest pending ones are dry-run against the new state — 256 of them, or 4,096 when this
//! node's last proposal left some out — and any that now break a rule are evicted, with the rule
//! remembered so that the submitter can be told.

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::sync::Mutex;

use tokio::sync::oneshot;
use vault_protocol::governance::Governance;
use vault_protocol::ids::{Timestamp, TxId};
use vault_protocol::state::{self, ChainHead, StateView, TxError};
use vault_protocol::tx::{EndorsementError, SignedTransaction, VerifiedTx};

/// How many rejection reasons are remembered.
const REMEMBERED_REJECTIONS: usize = 10_000;

/// What became of a submitted transaction.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TxOutcome {
    /// Committed at this height and index.
    Committed {
        /// Block height.
        height: u64,
        /// Index in the block.
        index: u32,
    },
    /// Rejected by the ledger's rules.
    Rejected(TxError),
}

/// Why the pool refused a transaction at the door.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AdmitError {
    /// The pool is full.
    #[error("the pool of pending transactions is full ({capacity}); retry later")]
    Full {
        /// Its capacity.
        capacity: usize,
    },
    /// A signature failed.
    #[error(transparent)]
    Endorsement(#[from] EndorsementError),
    /// A rule checkable on entry failed.
    #[error(transparent)]
    Rejected(#[from] TxError),
}

#[derive(Default)]
struct Inner {
    order: BTreeMap<u64, TxId>,
    txs: HashMap<TxId, (u64, VerifiedTx)>,
    next_seq: u64,
    waiters: HashMap<TxId, Vec<oneshot::Sender<TxOutcome>>>,
    rejected: HashMap<TxId, TxError>,
    rejected_order: VecDeque<TxId>,
    /// Whether a proposal of this node left pending transactions out since the last
    /// revalidation.
    suspects: bool,
}

/// The pool.
pub struct Pool {
    capacity: usize,
    inner: Mutex<Inner>,
}

impl Pool {
    /// An empty pool holding at most `capacity` transactions.
    pub fn new(capacity: usize) -> Self {
        Self {
            capacity,
            inner: Mutex::new(Inner::default()),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Inner> {
        // A panic while holding the lock leaves plain data behind; keep serving.
        self.inner.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Checks a transaction on entry (signatures, chain, time window, not yet committed) and adds
    /// it. Returns the verified transaction and whether it was new to the pool.
    pub fn admit<V: StateView + ?Sized>(
        &self,
        view: &V,
        gov: &Governance,
        head: &ChainHead,
        now: Timestamp,
        signed: SignedTransaction,
    ) -> Result<(VerifiedTx, bool), AdmitError> {
        let verified = signed.verify(gov.suite)?;
        self.admit_verified(view, gov, head, now, verified)
    }

    /// [`Pool::admit`] for many transactions, one answer each, in order: their signatures are
    /// checked together (batch verification over the machine's cores), then each is admitted as
    /// `admit` would.
    pub fn admit_many<V: StateView + ?Sized>(
        &self,
        view: &V,
        gov: &Governance,
        head: &ChainHead,
        now: Timestamp,
        signed: Vec<SignedTransaction>,
    ) -> Vec<Result<(VerifiedTx, bool), AdmitError>> {
        SignedTransaction::verify_many(gov.suite, signed)
            .into_iter()
            .map(|r| {
                r.map_err(AdmitError::from)
                    .and_then(|v| self.admit_verified(view, gov, head, now, v))
            })
            .collect()
    }

    fn admit_verified<V: StateView + ?Sized>(
        &self,
        view: &V,
        gov: &Governance,
        head: &ChainHead,
        now: Timestamp,
        verified: VerifiedTx,
    ) -> Result<(VerifiedTx, bool), AdmitError> {
        let tx = verified.tx();
        if tx.chain_id != gov.chain_id {
            return Err(TxError::WrongChain {
                expected: gov.chain_id.to_string(),
                found: tx.chain_id.to_string(),
            }
            .into());
        }
        // Judge time against the later of the local clock and the head, as the next block will.
        let t = now.max(head.time);
        let oldest = t.minus(gov.params.max_tx_age_ms);
        if tx.created_at < oldest {
            return Err(TxError::Stale {
                created_at: tx.created_at,
                oldest,
            }
            .into());
        }
        let latest = t.plus(gov.params.max_clock_skew_ms);
        if tx.created_at > latest {
            return Err(TxError::FromTheFuture {
                created_at: tx.created_at,
                latest,
            }
            .into());
        }
        let id = verified.id();
        if state::tx_location(view, &id)
            .map_err(|e| TxError::InvalidField {
                field: "state",
                reason: e.to_string(),
            })?
            .is_some()
        {
            return Err(TxError::Duplicate { tx: id }.into());
        }
        let mut inner = self.lock();
        if let Some((seq, existing)) = inner.txs.get(&id) {
            // The id covers the transaction, not its signatures: a governance change may come
            // back with more endorsements (a quorum being collected). Keep the better-endorsed.
            if verified.signed().endorsements.len() > existing.signed().endorsements.len() {
                let seq = *seq;
                inner.txs.insert(id, (seq, verified.clone()));
                inner.rejected.remove(&id);
                return Ok((verified, true));
            }
            return Ok((existing.clone(), false));
        }
        if inner.txs.len() >= self.capacity {
            return Err(AdmitError::Full {
                capacity: self.capacity,
            });
        }
        let seq = inner.next_seq;
        inner.next_seq += 1;
        inner.order.insert(seq, id);
        inner.txs.insert(id, (seq, verified.clone()));
        inner.rejected.remove(&id);
        Ok((verified, true))
    }

    /// Registers interest in a transaction's fate.
    pub fn watch(&self, id: TxId) -> oneshot::Receiver<TxOutcome> {
        let (tx, rx) = oneshot::channel();
        let mut inner = self.lock();
        if let Some(e) = inner.rejected.get(&id).cloned() {
            let _ = tx.send(TxOutcome::Rejected(e));
        } else {
            inner.waiters.entry(id).or_default().push(tx);
        }
        rx
    }

    /// Up to `max` pending transactions, oldest first (they stay in the pool until committed).
    pub fn pending(&self, max: usize) -> Vec<VerifiedTx> {
        self.pending_except(max, |_| false)
    }

    /// Up to `max` pending transactions, oldest first, passing over those `skip` names (the ones
    /// already in a block not yet finalized, which a proposal on top of it must not repeat).
    pub fn pending_except(&self, max: usize, skip: impl Fn(&TxId) -> bool) -> Vec<VerifiedTx> {
        let inner = self.lock();
        inner
            .order
            .values()
            .filter(|id| !skip(id))
            .take(max)
            .filter_map(|id| inner.txs.get(id).map(|(_, t)| t.clone()))
            .collect()
    }

    /// A pending transaction, already verified.
    pub fn verified(&self, id: &TxId) -> Option<VerifiedTx> {
        self.lock().txs.get(id).map(|(_, t)| t.clone())
    }

    /// Whether a transaction is pending.
    pub fn contains(&self, id: &TxId) -> bool {
        self.lock().txs.contains_key(id)
    }

    /// Why a transaction was rejected, if it was (and is still remembered).
    pub fn rejection(&self, id: &TxId) -> Option<TxError> {
        self.lock().rejected.get(id).cloned()
    }

    /// Number of pending transactions.
    pub fn len(&self) -> usize {
        self.lock().txs.len()
    }

    /// Whether the pool is empty.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The capacity.
    pub fn capacity(&self) -> usize {
        self.capacity
    }

    /// A block was committed: its transactions leave the pool and their watchers are told.
    pub fn committed(&self, height: u64, ids: &[TxId]) {
        let mut inner = self.lock();
        for (index, id) in ids.iter().enumerate() {
            if let Some((seq, _)) = inner.txs.remove(id) {
                inner.order.remove(&seq);
            }
            for w in inner.waiters.remove(id).unwrap_or_default() {
                let _ = w.send(TxOutcome::Committed {
                    height,
                    index: index as u32,
                });
            }
        }
    }

    /// Evicts transactions that break a rule, remembering why.
    pub fn reject(&self, rejected: Vec<(TxId, TxError)>) {
        let mut inner = self.lock();
        for (id, err) in rejected {
            if let Some((seq, _)) = inner.txs.remove(&id) {
                inner.order.remove(&seq);
            }
            for w in inner.waiters.remove(&id).unwrap_or_default() {
                let _ = w.send(TxOutcome::Rejected(err.clone()));
            }
            if inner.rejected.insert(id, err).is_none() {
                inner.rejected_order.push_back(id);
            }
            while inner.rejected_order.len() > REMEMBERED_REJECTIONS {
                if let Some(old) = inner.rejected_order.pop_front() {
                    inner.rejected.remove(&old);
                }
            }
        }
    }

    /// This node's proposal left these pending transactions out (they broke a rule on top of a
    /// parent that may not be final): the next revalidation looks further down the pool.
    pub fn suspect(&self, left_out: &[TxId]) {
        let mut inner = self.lock();
        if left_out.iter().any(|id| inner.txs.contains_key(id)) {
            inner.suspects = true;
        }
    }

    /// Dry-runs the oldest pending transactions against `view` (the state after the newest
    /// block) as if proposed at `time`, and evicts those that break a rule: the next `max` if a
    /// proposal of this node left some out since the last time, otherwise only the next `head`
    /// (where a transaction that can no longer commit ends up, since the ones that can leave).
    pub fn revalidate<V: StateView + ?Sized>(
        &self,
        view: &V,
        time: Timestamp,
        head: usize,
        max: usize,
    ) {
        let suspects = std::mem::take(&mut self.lock().suspects);
        let pending = self.pending(if suspects { max } else { head.min(max) });
        if pending.is_empty() {
            return;
        }
        if let Ok(rejected) = state::dry_run(view, time, &pending) {
            // A duplicate is a transaction already committed: its watchers hear "committed" from
            // `committed`, not a rejection.
            let rejected: Vec<_> = rejected
                .into_iter()
                .filter(|(_, e)| !matches!(e, TxError::Duplicate { .. }))
                .collect();
            if !rejected.is_empty() {
                self.reject(rejected);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use vault_protocol::ledger::{MemoryLedger, TestNetwork};
    use vault_protocol::tx::{GovernanceAction, TxBody};

    #[test]
    fn admitting_a_batch_answers_as_admitting_each_in_turn() {
        use vault_protocol::ledger::{test_key, test_uscc};
        use vault_protocol::tx::Enrolment;
        let net = TestNetwork::new(&["samr", "tax", "hrss", "housing"]);
        let ledger = MemoryLedger::new(net.genesis.clone()).unwrap();
        let gov = ledger.governance().unwrap();
        let head = ledger.head();
        let t = net.genesis.genesis_time.plus(1_000);
        let samr = net.department("samr");
        let enrol = |n: u32, at: Timestamp| {
            net.tx(
                at,
                TxBody::EnrolEnterprise(Enrolment {
                    department: samr.id.clone(),
                    enterprise: test_uscc(n),
                    key: test_key(&format!("e{n}"), "enterprise").public(),
                }),
            )
            .sign_one(&samr.signing)
        };
        let mut forged = enrol(2, t);
        let mut e = forged.endorsements.clone().into_inner();
        e[0].signature = vault_protocol::crypto::Signature::from_bytes([7u8; 64]);
        forged.endorsements = e.try_into().unwrap();
        let mut batch: Vec<SignedTransaction> = (10..150).map(|n| enrol(n, t)).collect();
        batch.insert(3, forged);
        batch.insert(7, enrol(1, t));
        // The same transaction twice in one batch: new, then already pending.
        batch.insert(9, batch[7].clone());
        // Too old to admit.
        batch.insert(
            11,
            enrol(3, net.genesis.genesis_time.minus(10 * 86_400_000)),
        );
        // A full pool refuses the rest, in order.
        let one_by_one = Pool::new(120);
        let expected: Vec<_> = batch
            .iter()
            .map(|tx| one_by_one.admit(ledger.state(), &gov, &head, t, tx.clone()))
            .collect();
        vault_protocol::crypto::clear_signature_cache();
        let together = Pool::new(120);
        let got = together.admit_many(ledger.state(), &gov, &head, t, batch);
        assert_eq!(got, expected);
        assert!(matches!(got[3], Err(AdmitError::Endorsement(_))));
        assert!(matches!(got[7], Ok((_, true))));
        assert!(matches!(got[9], Ok((_, false))));
        assert!(matches!(
            got[11],
            Err(AdmitError::Rejected(TxError::Stale { .. }))
        ));
        assert!(matches!(got.last(), Some(Err(AdmitError::Full { .. }))));
        assert_eq!(together.len(), one_by_one.len());
    }

    #[test]
    fn revalidation_looks_past_the_oldest_only_after_a_proposal_left_some_out() {
        use vault_protocol::ledger::{test_key, test_uscc};
        use vault_protocol::tx::Enrolment;
        let net = TestNetwork::new(&["samr", "tax", "hrss", "housing"]);
        let mut ledger = MemoryLedger::new(net.genesis.clone()).unwrap();
        let samr = net.department("samr");
        let enrol = |n: u32, at: Timestamp| {
            net.tx(
                at,
                TxBody::EnrolEnterprise(Enrolment {
                    department: samr.id.clone(),
                    enterprise: test_uscc(n),
                    key: test_key(&format!("e{n}"), "enterprise").public(),
                }),
            )
            .sign_one(&samr.signing)
        };
        let t = net.genesis.genesis_time.plus(1_000);
        ledger
            .propose_and_commit(&samr.id, t, vec![enrol(1, t)])
            .unwrap();
        let gov = ledger.governance().unwrap();
        let head = ledger.head();
        let pool = Pool::new(1_000);
        let mut txs: Vec<SignedTransaction> = (10..310).map(|n| enrol(n, t)).collect();
        // Deep in the pool: enterprise 1 again, which can no longer commit.
        let again = enrol(1, t);
        let again_id = again.id(gov.suite);
        txs.insert(280, again);
        for r in pool.admit_many(ledger.state(), &gov, &head, t, txs) {
            r.unwrap();
        }
        let later = t.plus(1_000);
        pool.revalidate(ledger.state(), later, 8, 4096);
        assert!(pool.contains(&again_id), "only the 8 oldest were dry-run");
        pool.suspect(&[again_id]);
        pool.revalidate(ledger.state(), later, 8, 4096);
        assert!(!pool.contains(&again_id));
        assert!(matches!(
            pool.rejection(&again_id),
            Some(TxError::AlreadyEnrolled { .. })
        ));
        assert_eq!(pool.len(), 300);
    }

    #[test]
    fn a_governance_change_with_more_endorsements_replaces_the_pending_one() {
        let net = TestNetwork::new(&["samr", "tax", "hrss", "housing"]);
        let ledger = MemoryLedger::new(net.genesis.clone()).unwrap();
        let gov = ledger.governance().unwrap();
        let t = net.genesis.genesis_time.plus(1_000);
        let tx = net.tx(
            t,
            TxBody::Governance(GovernanceAction::RemoveDepartment {
                department: vault_protocol::ids::DepartmentId::new("hrss").unwrap(),
            }),
        );
        let signers = |ids: &[&str]| -> Vec<vault_protocol::crypto::KeyPair> {
            ids.iter()
                .map(|d| net.department(d).signing.clone())
                .collect()
        };
        let two = signers(&["samr", "tax"]);
        let three = signers(&["samr", "tax", "housing"]);
        let pool = Pool::new(10);
        let head = ledger.head();
        let (a, new) = pool
            .admit(
                ledger.state(),
                &gov,
                &head,
                t,
                tx.clone().sign(&two.iter().collect::<Vec<_>>()).unwrap(),
            )
            .unwrap();
        assert!(new);
        let (b, new) = pool
            .admit(
                ledger.state(),
                &gov,
                &head,
                t,
                tx.clone().sign(&three.iter().collect::<Vec<_>>()).unwrap(),
            )
            .unwrap();
        assert!(new, "the better-endorsed version is spread");
        assert_eq!(a.id(), b.id());
        assert_eq!(pool.len(), 1);
        assert_eq!(pool.pending(10)[0].signed().endorsements.len(), 3);
        // A version with fewer endorsements does not replace it.
        let (c, new) = pool
            .admit(
                ledger.state(),
                &gov,
                &head,
                t,
                tx.sign(&two.iter().collect::<Vec<_>>()).unwrap(),
            )
            .unwrap();
        assert!(!new);
        assert_eq!(c.signed().endorsements.len(), 3);
    }
}
