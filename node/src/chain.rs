//! The chain as the consensus engine sees it: building and checking proposals on top of blocks
//! that may not be finalized yet, and committing finalized blocks to the store in order.
//!
//! Simplex lets a leader extend a notarized block before it is finalized, so a proposal's parent
//! may be ahead of the store. Verified blocks are kept in memory with their state deltas; a
//! proposal on top of them is built and checked against a [`LayeredView`] — the store's snapshot
//! with the ancestors' deltas on top. When a block is finalized its cached outcome is reused if it
//! was computed on the current head; otherwise it is recomputed.

use std::collections::{HashMap, HashSet, VecDeque};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use vault_protocol::block::Block;
use vault_protocol::ids::{BlockHash, DepartmentId, Timestamp, TxId};
use vault_protocol::state::{
    self, BlockError, BlockOutcome, ChainHead, StateDelta, StateView, StoreError as StateError,
};
use vault_protocol::tx::VerifiedTx;

use crate::store::{Store, StoreError};

/// The state seen through the deltas of not-yet-committed ancestors.
pub struct LayeredView<'a, V: StateView> {
    base: V,
    layers: Vec<&'a StateDelta>,
}

impl<V: StateView> StateView for LayeredView<'_, V> {
    fn get(&self, key: &[u8]) -> Result<Option<Vec<u8>>, StateError> {
        for layer in self.layers.iter().rev() {
            if let Some(v) = layer.writes.get(key) {
                return Ok(v.clone());
            }
        }
        self.base.get(key)
    }

    fn scan_prefix(&self, prefix: &[u8]) -> Result<state::Entries, StateError> {
        let mut merged: std::collections::BTreeMap<Vec<u8>, Vec<u8>> =
            self.base.scan_prefix(prefix)?.into_iter().collect();
        for layer in &self.layers {
            state::apply_writes(&mut merged, &layer.writes, prefix);
        }
        Ok(merged.into_iter().collect())
    }
}

/// How long a proposal may go on taking candidates.
///
/// A proposal must reach the other validators, and be checked by each of them, before the view
/// times out — and on a loaded machine (or a large ledger, whose reads are slower) the same
/// number of transactions takes several times as long to apply. A fixed cap that fits a quiet
/// machine makes every proposal on a busy one miss its view, and then the next, and so on: the
/// chain does the work and commits nothing. So the proposer stops taking candidates when its
/// budget runs out, and the block is as big as this machine can build in that time.
#[derive(Debug, Clone, Copy)]
pub struct BuildBudget {
    /// No candidate is taken after this instant...
    pub until: Instant,
    /// ...except the first `at_least`, so that a slow machine still makes progress.
    pub at_least: usize,
}

impl BuildBudget {
    /// A budget of `time` from now.
    pub fn from_now(time: Duration, at_least: usize) -> Self {
        BuildBudget {
            until: Instant::now() + time,
            at_least,
        }
    }

    /// No limit.
    pub fn unlimited() -> Self {
        BuildBudget {
            until: Instant::now(),
            at_least: usize::MAX,
        }
    }

    /// The candidates, in order, for as long as the budget lasts.
    pub fn offer(self, candidates: Vec<VerifiedTx>) -> impl Iterator<Item = VerifiedTx> {
        let mut taken = 0usize;
        candidates.into_iter().take_while(move |_| {
            taken += 1;
            taken <= self.at_least || Instant::now() < self.until
        })
    }
}

/// Why a proposal could not be built or checked.
#[derive(Debug, thiserror::Error)]
pub enum ChainError {
    /// The parent is neither committed nor a verified pending block.
    #[error("unknown parent block {0}")]
    UnknownParent(BlockHash),
    /// The block breaks a rule.
    #[error(transparent)]
    Block(#[from] BlockError),
    /// The store failed.
    #[error(transparent)]
    Store(#[from] StoreError),
}

impl From<StateError> for ChainError {
    fn from(e: StateError) -> Self {
        ChainError::Block(BlockError::Store(e))
    }
}

struct Pending {
    block: Arc<Block>,
    /// Shared, so that a proposal being built or checked on top of it can read its delta
    /// without holding the lock on the pending blocks.
    outcome: Arc<BlockOutcome>,
    tx_ids: Vec<TxId>,
}

/// Blocks verified but not finalized, over the store.
pub struct Chain {
    store: Arc<Store>,
    pending: Mutex<HashMap<BlockHash, Pending>>,
    /// The transaction ids of the last few committed blocks: the pool drops them only after the
    /// commit returns, and a proposal built in between must not offer them again. Locked after
    /// `pending`, never before.
    recent: Mutex<VecDeque<Vec<TxId>>>,
}

/// How many committed blocks' transactions [`Chain::in_flight`] keeps counting.
const RECENT_BLOCKS: usize = 4;

/// A built block and the candidates it left out, with the rule each broke.
pub type Proposal = (Arc<Block>, Vec<(TxId, state::TxError)>);

/// What committing a finalized block produced.
pub struct Committed {
    /// The new head.
    pub head: ChainHead,
    /// The block's transaction ids, in order.
    pub tx_ids: Vec<TxId>,
}

impl Chain {
    /// A chain over `store`.
    pub fn new(store: Arc<Store>) -> Self {
        Self {
            store,
            pending: Mutex::new(HashMap::new()),
            recent: Mutex::new(VecDeque::with_capacity(RECENT_BLOCKS + 1)),
        }
    }

    /// The store.
    pub fn store(&self) -> &Arc<Store> {
        &self.store
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<BlockHash, Pending>> {
        self.pending.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Runs `f` on the state after `parent` (committed, or pending on top of the head).
    ///
    /// `f` — building or checking a whole block, hundreds of milliseconds — runs without the lock
    /// on the pending blocks: holding it, a node catching up that checked twenty missed ancestors
    /// of a proposal in a row kept its commits waiting for all of them (a 14 s stall, BENCHMARKS.md),
    /// and under load every commit waited for the proposal or check in progress.
    fn with_state_after<R>(
        &self,
        parent: &BlockHash,
        f: impl FnOnce(&dyn StateView) -> Result<R, ChainError>,
    ) -> Result<R, ChainError> {
        // The head, the snapshot and the ancestors' deltas are taken under the lock: a commit
        // removes a block from `pending` and makes it the head under the same lock, so the walk
        // sees it in one place or the other, never neither — and the snapshot is of that head.
        // Once taken they stay valid whatever commits next: the snapshot is fixed, and the deltas
        // are shared.
        let (snapshot, ancestors) = {
            let pending = self.lock();
            let head = self.store.head()?;
            let ancestors: Vec<Arc<BlockOutcome>> = ancestry(&pending, &head, parent)?
                .into_iter()
                .map(|p| p.outcome.clone())
                .collect();
            (self.store.snapshot(), ancestors)
        };
        let view = LayeredView {
            base: snapshot,
            layers: ancestors.iter().rev().map(|o| &o.delta).collect(),
        };
        f(&view)
    }

    /// The head after `parent`: its height and time, for timing a proposal.
    pub fn head_after(&self, parent: &BlockHash) -> Result<ChainHead, ChainError> {
        self.with_state_after(parent, |v| Ok(state::head(v)?))
    }

    /// Builds a block on `parent` from `candidates`; returns it and the candidates it left out
    /// with their reasons. The block is remembered as verified.
    pub fn propose(
        &self,
        parent: &BlockHash,
        proposer: &DepartmentId,
        time: Timestamp,
        candidates: Vec<VerifiedTx>,
        budget: BuildBudget,
    ) -> Result<Proposal, ChainError> {
        let built = self.with_state_after(parent, |view| {
            let head = state::head(view)?;
            // Block time must move forward even if the local clock lags the parent.
            let time = time.max(head.time.plus(1));
            Ok(state::build_block(
                view,
                proposer,
                time,
                budget.offer(candidates),
            )?)
        })?;
        let block = Arc::new(built.block);
        let hash = built.outcome.head.hash;
        self.lock().insert(
            hash,
            Pending {
                block: block.clone(),
                outcome: Arc::new(built.outcome),
                tx_ids: built.tx_ids,
            },
        );
        Ok((block, built.rejected))
    }

    /// Checks a proposed block on top of its parent; remembers it if valid.
    pub fn verify(&self, block: Arc<Block>, txs: &[VerifiedTx]) -> Result<(), ChainError> {
        let suite = self.store.suite();
        let hash = block.header.hash(suite);
        if self.lock().contains_key(&hash) || self.store.height_of(&hash)?.is_some() {
            return Ok(());
        }
        let outcome = self.with_state_after(&block.header.parent, |view| {
            Ok(state::apply_verified_block(view, &block.header, txs)?)
        })?;
        let tx_ids = txs.iter().map(VerifiedTx::id).collect();
        self.lock().insert(
            hash,
            Pending {
                block,
                outcome: Arc::new(outcome),
                tx_ids,
            },
        );
        Ok(())
    }

    /// The transactions in the pending (verified, not finalized) blocks from `parent` down to the
    /// committed head: a block built on `parent` must not repeat them, so a proposer skips them
    /// rather than offering them again only to see them left out as duplicates. Empty when
    /// `parent` is the head or unknown.
    ///
    /// It also holds the transactions of the last few committed blocks, which the pool may not
    /// have dropped yet: offered again, they too would only be left out (as already committed).
    pub fn in_flight(&self, parent: &BlockHash) -> HashSet<TxId> {
        let pending = self.lock();
        let Ok(head) = self.store.head() else {
            return HashSet::new();
        };
        let recent = self.recent.lock().unwrap_or_else(|p| p.into_inner());
        // An unknown parent yields nothing here; building on it fails with the reason.
        ancestry(&pending, &head, parent)
            .unwrap_or_default()
            .into_iter()
            .flat_map(|p| p.tx_ids.iter().copied())
            .chain(recent.iter().flatten().copied())
            .collect()
    }

    /// Whether a block is committed or verified-pending.
    pub fn knows(&self, hash: &BlockHash) -> Result<bool, StoreError> {
        Ok(self.lock().contains_key(hash) || self.store.height_of(hash)?.is_some())
    }

    /// A block known to this node, finalized or pending, by hash.
    pub fn block(&self, hash: &BlockHash) -> Result<Option<Arc<Block>>, StoreError> {
        if let Some(p) = self.lock().get(hash) {
            return Ok(Some(p.block.clone()));
        }
        match self.store.height_of(hash)? {
            Some(0) | None => Ok(None),
            Some(h) => Ok(self.store.block(h)?.map(Arc::new)),
        }
    }

    /// Commits a finalized block (which must follow the head) with its certificate. Blocks at or
    /// below the head are accepted again only if identical.
    pub fn commit_finalized(
        &self,
        block: &Block,
        certificate: Option<&[u8]>,
        verify_txs: impl FnOnce(&Block) -> Result<Vec<VerifiedTx>, BlockError>,
    ) -> Result<Committed, ChainError> {
        let suite = self.store.suite();
        let hash = block.header.hash(suite);
        let head = self.store.head()?;
        let tx_ids: Vec<TxId> = block.transactions.iter().map(|t| t.id(suite)).collect();
        if block.header.height <= head.height {
            self.store
                .commit(block, certificate, &dummy_outcome(&head))?;
            return Ok(Committed { head, tx_ids });
        }
        // Taking a verified block out of `pending` and writing it as the head happen under one
        // lock, so that a proposal on top of it finds it in one place or the other.
        let mut pending = self.lock();
        let cached = if block.header.parent == head.hash {
            pending.remove(&hash)
        } else {
            None
        };
        let outcome = match cached {
            Some(p) => p.outcome,
            None => {
                // A block never verified here (catch-up): checked without holding the lock.
                drop(pending);
                let txs = verify_txs(block)?;
                let o = state::apply_verified_block(&self.store.snapshot(), &block.header, &txs)?;
                pending = self.lock();
                Arc::new(o)
            }
        };
        self.store.commit(block, certificate, &outcome)?;
        let new_head = outcome.head.clone();
        // Forget pending blocks that can no longer be extended.
        pending.retain(|_, p| p.outcome.head.height > new_head.height);
        {
            let mut recent = self.recent.lock().unwrap_or_else(|p| p.into_inner());
            recent.push_back(tx_ids.clone());
            while recent.len() > RECENT_BLOCKS {
                recent.pop_front();
            }
        }
        drop(pending);
        Ok(Committed {
            head: new_head,
            tx_ids,
        })
    }
}

/// The pending blocks from `parent` down to (not including) the committed `head`, newest first;
/// `UnknownParent` if the walk does not reach the head through blocks above it.
fn ancestry<'a>(
    pending: &'a HashMap<BlockHash, Pending>,
    head: &ChainHead,
    parent: &BlockHash,
) -> Result<Vec<&'a Pending>, ChainError> {
    let mut blocks = Vec::new();
    let mut cursor = *parent;
    while cursor != head.hash {
        let p = pending
            .get(&cursor)
            .ok_or(ChainError::UnknownParent(*parent))?;
        if p.outcome.head.height <= head.height {
            return Err(ChainError::UnknownParent(*parent));
        }
        blocks.push(p);
        cursor = p.block.header.parent;
    }
    Ok(blocks)
}

fn dummy_outcome(head: &ChainHead) -> BlockOutcome {
    BlockOutcome {
        delta: StateDelta::default(),
        head: head.clone(),
        leaf_hashes: Vec::new(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use vault_protocol::crypto::Digest;
    use vault_protocol::ledger::{test_key, test_uscc as uscc, MemoryLedger, TestNetwork};
    use vault_protocol::tx::{Enrolment, SignedTransaction, TxBody};

    fn enrol(net: &TestNetwork, n: u32, t: Timestamp) -> SignedTransaction {
        let samr = net.department("samr");
        net.tx(
            t,
            TxBody::EnrolEnterprise(Enrolment {
                department: samr.id.clone(),
                enterprise: uscc(n),
                key: test_key(&format!("e{n}"), "enterprise").public(),
            }),
        )
        .sign_one(&samr.signing)
    }

    /// A chain over a fresh store, for a network of four departments.
    fn four_departments() -> (
        tempfile::TempDir,
        TestNetwork,
        Arc<Chain>,
        vault_protocol::crypto::CryptoSuite,
    ) {
        let dir = tempfile::tempdir().unwrap();
        let net = TestNetwork::new(&["samr", "tax", "hrss", "housing"]);
        let (store, _) = Store::open(dir.path(), &net.genesis).unwrap();
        let suite = store.suite();
        (dir, net, Arc::new(Chain::new(Arc::new(store))), suite)
    }

    fn verified(block: &Block, suite: vault_protocol::crypto::CryptoSuite) -> Vec<VerifiedTx> {
        state::verify_transactions(suite, block).unwrap()
    }

    #[test]
    fn verifies_on_pending_parents_commits_in_order_and_refuses_forgeries() {
        let (_dir, net, chain, suite) = four_departments();
        // Three blocks built elsewhere (as another proposer would).
        let mut ledger = MemoryLedger::new(net.genesis.clone()).unwrap();
        let samr = net.department("samr").id.clone();
        let mut blocks = Vec::new();
        for i in 0..3u32 {
            let t = net.genesis.genesis_time.plus(1000 * (u64::from(i) + 1));
            let built = ledger
                .propose_and_commit(&samr, t, vec![enrol(&net, i, t)])
                .unwrap();
            blocks.push(built.block);
        }
        // Block 2 on a verified-but-not-finalized block 1, then block 3 on block 2.
        for b in &blocks {
            chain
                .verify(Arc::new(b.clone()), &verified(b, suite))
                .unwrap();
        }
        // A block whose parent is unknown is refused without panicking.
        let mut orphan = blocks[2].clone();
        orphan.header.parent = BlockHash(Digest([3; 32]));
        assert!(matches!(
            chain.verify(Arc::new(orphan.clone()), &verified(&orphan, suite)),
            Err(ChainError::UnknownParent(_))
        ));
        // A block with a tampered state root is refused.
        let mut forged = ledger
            .propose(&samr, net.genesis.genesis_time.plus(10_000), vec![])
            .unwrap()
            .block;
        forged.header.state_root = Digest([1; 32]);
        assert!(matches!(
            chain.verify(Arc::new(forged.clone()), &verified(&forged, suite)),
            Err(ChainError::Block(BlockError::StateRootMismatch { .. }))
        ));
        // A block with a forged signature never yields verified transactions.
        let mut bad_sig = blocks[0].clone();
        let mut txs = bad_sig.transactions.clone().into_inner();
        let mut sig = [0u8; 64];
        sig.copy_from_slice(txs[0].endorsements[0].signature.as_bytes());
        sig[10] ^= 1;
        let mut endorsements = txs[0].endorsements.clone().into_inner();
        endorsements[0].signature = vault_protocol::crypto::Signature::from_bytes(sig);
        txs[0].endorsements = endorsements.try_into().unwrap();
        bad_sig.transactions = txs.try_into().unwrap();
        assert!(matches!(
            state::verify_transactions(suite, &bad_sig),
            Err(BlockError::BadEndorsement { index: 0, .. })
        ));
        // Finalized blocks commit in order; a re-delivered one is a no-op.
        for b in &blocks {
            let done = chain
                .commit_finalized(b, None, |b| state::verify_transactions(suite, b))
                .unwrap();
            assert_eq!(done.head.height, b.header.height);
        }
        chain
            .commit_finalized(&blocks[1], None, |b| state::verify_transactions(suite, b))
            .unwrap();
        assert_eq!(chain.store().head().unwrap().hash, ledger.head().hash);
        assert!(chain.knows(&blocks[0].header.hash(suite)).unwrap());
    }

    #[test]
    fn a_proposal_on_a_pending_parent_takes_fresh_transactions_not_the_parents() {
        let (_dir, net, chain, suite) = four_departments();
        let samr = net.department("samr").id.clone();
        let genesis = chain.store().head().unwrap();
        let gov = state::governance(&chain.store().snapshot()).unwrap();
        let t0 = net.genesis.genesis_time;
        // Four transactions reach the pool; a cap of two per block.
        let pool = crate::pool::Pool::new(100);
        let txs: Vec<_> = (0..4u32).map(|n| enrol(&net, n, t0.plus(1))).collect();
        for tx in &txs {
            pool.admit(
                &chain.store().snapshot(),
                &gov,
                &genesis,
                t0.plus(2),
                tx.clone(),
            )
            .unwrap();
        }
        let ids: Vec<TxId> = txs.iter().map(|t| t.id(suite)).collect();
        let (b1, left_out) = chain
            .propose(
                &genesis.hash,
                &samr,
                t0.plus(10),
                pool.pending(2),
                BuildBudget::unlimited(),
            )
            .unwrap();
        assert!(left_out.is_empty());
        let h1 = b1.header.hash(suite);
        assert_eq!(chain.in_flight(&h1), ids[..2].iter().copied().collect());
        assert!(chain.in_flight(&genesis.hash).is_empty());
        // Block 1 is verified but not finalized; its transactions are still pooled. The oldest
        // two would only be left out again as duplicates; the next two are offered instead.
        let in_flight = chain.in_flight(&h1);
        let (b2, left_out) = chain
            .propose(
                &h1,
                &samr,
                t0.plus(20),
                pool.pending_except(2, |id| in_flight.contains(id)),
                BuildBudget::unlimited(),
            )
            .unwrap();
        assert!(left_out.is_empty(), "{left_out:?}");
        let in_b2: Vec<TxId> = b2.transactions.iter().map(|t| t.id(suite)).collect();
        assert_eq!(in_b2, ids[2..]);
        let h2 = b2.header.hash(suite);
        assert_eq!(chain.in_flight(&h2), ids.iter().copied().collect());
        // Once block 1 commits, block 2 is still in flight on top of it — and block 1's
        // transactions are still passed over: the pool drops them only after the commit returns,
        // and a proposal on the new head must not offer them in between.
        chain
            .commit_finalized(&b1, None, |b| state::verify_transactions(suite, b))
            .unwrap();
        assert_eq!(chain.in_flight(&h2), ids.iter().copied().collect());
        let in_flight = chain.in_flight(&h1);
        assert_eq!(in_flight, ids[..2].iter().copied().collect());
        let (b2_on_head, left_out) = chain
            .propose(
                &h1,
                &samr,
                t0.plus(30),
                pool.pending_except(4, |id| in_flight.contains(id)),
                BuildBudget::unlimited(),
            )
            .unwrap();
        assert!(left_out.is_empty(), "{left_out:?}");
        assert_eq!(b2_on_head.transactions.len(), 2);
    }

    #[test]
    fn a_proposal_stops_taking_candidates_when_its_budget_runs_out() {
        let (_dir, net, chain, suite) = four_departments();
        let samr = net.department("samr").id.clone();
        let genesis = chain.store().head().unwrap();
        let t0 = net.genesis.genesis_time;
        let candidates: Vec<VerifiedTx> = (0..10u32)
            .map(|n| enrol(&net, n, t0.plus(1)).verify(suite).unwrap())
            .collect();
        // A budget already spent still takes its guaranteed first candidates, and no more.
        let spent = BuildBudget {
            until: Instant::now(),
            at_least: 3,
        };
        let (block, left_out) = chain
            .propose(&genesis.hash, &samr, t0.plus(10), candidates.clone(), spent)
            .unwrap();
        assert!(left_out.is_empty());
        let ids: Vec<TxId> = block.transactions.iter().map(|t| t.id(suite)).collect();
        let first: Vec<TxId> = candidates[..3].iter().map(VerifiedTx::id).collect();
        assert_eq!(ids, first);
        // A budget with time left takes them all.
        let (block, _) = chain
            .propose(
                &genesis.hash,
                &samr,
                t0.plus(10),
                candidates,
                BuildBudget::from_now(Duration::from_secs(60), 0),
            )
            .unwrap();
        assert_eq!(block.transactions.len(), 10);
    }

    #[test]
    fn a_commit_does_not_wait_for_a_block_being_checked() {
        use std::sync::mpsc;
        let (_dir, net, chain, suite) = four_departments();
        let mut ledger = MemoryLedger::new(net.genesis.clone()).unwrap();
        let samr = net.department("samr").id.clone();
        let t = net.genesis.genesis_time.plus(1000);
        let b1 = ledger
            .propose_and_commit(&samr, t, vec![enrol(&net, 1, t)])
            .unwrap()
            .block;
        chain
            .verify(Arc::new(b1.clone()), &verified(&b1, suite))
            .unwrap();
        let h1 = b1.header.hash(suite);
        // A proposal on top of block 1 is being built or checked (held open here)...
        let (entered_tx, entered_rx) = mpsc::channel();
        let (release_tx, release_rx) = mpsc::channel::<()>();
        let checking = {
            let chain = chain.clone();
            std::thread::spawn(move || {
                chain.with_state_after(&h1, |view| {
                    let height = state::head(view)?.height;
                    entered_tx.send(()).unwrap();
                    release_rx.recv().unwrap();
                    Ok(height)
                })
            })
        };
        entered_rx.recv().unwrap();
        // ...while block 1 is finalized: its commit goes ahead.
        let (done_tx, done_rx) = mpsc::channel();
        {
            let chain = chain.clone();
            std::thread::spawn(move || {
                let r = chain
                    .commit_finalized(&b1, None, |b| state::verify_transactions(suite, b))
                    .map(|c| c.head.height);
                done_tx.send(r.is_ok_and(|h| h == 1)).ok();
            });
        }
        let committed = done_rx.recv_timeout(Duration::from_secs(20));
        release_tx.send(()).unwrap();
        // The check in progress still saw the state after block 1.
        assert_eq!(checking.join().unwrap().unwrap(), 1);
        assert_eq!(committed, Ok(true), "the commit waited for the check");
        assert_eq!(chain.store().head().unwrap().hash, h1);
    }
}
