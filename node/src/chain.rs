//! The chain as the consensus engine sees it: building and checking proposals on top of blocks
//! that may not be finalized yet, and committing finalized blocks to the store in order.
//!
//! Simplex lets a leader extend a notarized block before it is finalized, so a proposal's parent
//! may be ahead of the store. Verified blocks are kept in memory with their state deltas; a
//! proposal on top of them is built and checked against a [`LayeredView`] — the store's snapshot
//! with the ancestors' deltas on top. When a block is finalized its cached outcome is reused if it
//! was computed on the current head; otherwise it is recomputed.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

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
            for (k, v) in layer
                .writes
                .range(prefix.to_vec()..)
                .take_while(|(k, _)| k.starts_with(prefix))
            {
                match v {
                    Some(v) => {
                        merged.insert(k.clone(), v.clone());
                    }
                    None => {
                        merged.remove(k);
                    }
                }
            }
        }
        Ok(merged.into_iter().collect())
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
    outcome: BlockOutcome,
}

/// Blocks verified but not finalized, over the store.
pub struct Chain {
    store: Arc<Store>,
    pending: Mutex<HashMap<BlockHash, Pending>>,
}

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
    fn with_state_after<R>(
        &self,
        parent: &BlockHash,
        f: impl FnOnce(&dyn StateView) -> Result<R, ChainError>,
    ) -> Result<R, ChainError> {
        let head = self.store.head()?;
        let pending = self.lock();
        let mut layers = Vec::new();
        let mut cursor = *parent;
        while cursor != head.hash {
            let p = pending.get(&cursor).ok_or(ChainError::UnknownParent(*parent))?;
            if p.outcome.head.height <= head.height {
                return Err(ChainError::UnknownParent(*parent));
            }
            layers.push(&p.outcome.delta);
            cursor = p.block.header.parent;
        }
        layers.reverse();
        let view = LayeredView {
            base: self.store.snapshot(),
            layers,
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
    ) -> Result<(Arc<Block>, Vec<(TxId, state::TxError)>), ChainError> {
        let built = self.with_state_after(parent, |view| {
            let head = state::head(view)?;
            // Block time must move forward even if the local clock lags the parent.
            let time = time.max(head.time.plus(1));
            Ok(state::build_block(view, proposer, time, candidates)?)
        })?;
        let block = Arc::new(built.block);
        let hash = built.outcome.head.hash;
        self.lock().insert(
            hash,
            Pending {
                block: block.clone(),
                outcome: built.outcome,
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
        self.lock().insert(hash, Pending { block, outcome });
        Ok(())
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
            self.store.commit(block, certificate, &dummy_outcome(&head))?;
            return Ok(Committed { head, tx_ids });
        }
        let cached = {
            let mut pending = self.lock();
            match pending.get(&hash) {
                Some(_) if block.header.parent == head.hash => {
                    pending.remove(&hash).map(|p| p.outcome)
                }
                _ => None,
            }
        };
        let outcome = match cached {
            Some(o) => o,
            None => {
                let txs = verify_txs(block)?;
                state::apply_verified_block(&self.store.snapshot(), &block.header, &txs)?
            }
        };
        self.store.commit(block, certificate, &outcome)?;
        let new_head = outcome.head.clone();
        // Forget pending blocks that can no longer be extended.
        self.lock()
            .retain(|_, p| p.outcome.head.height > new_head.height);
        Ok(Committed {
            head: new_head,
            tx_ids,
        })
    }
}

fn dummy_outcome(head: &ChainHead) -> BlockOutcome {
    BlockOutcome {
        delta: StateDelta::default(),
        head: head.clone(),
        leaf_hashes: Vec::new(),
    }
}
