//! What the node's services share: the store, the pool, the head, and the network's view.

use std::collections::BTreeSet;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::SystemTime;

use tokio::sync::{mpsc, watch};
use vault_protocol::genesis::Genesis;
use vault_protocol::governance::Governance;
use vault_protocol::ids::TxId;
use vault_protocol::ids::{BlockHash, DepartmentId, Timestamp};
use vault_protocol::state::TxError;
use vault_protocol::state::{self, ChainHead};
use vault_protocol::tx::{EndorsementError, SignedTransaction};

use crate::pool::{AdmitError, Pool, TxOutcome};
use crate::store::{Store, StoreError};

/// How far ahead of this node's clock a proposed block's time may be.
pub const MAX_BLOCK_TIME_SKEW_MS: u64 = 5_000;

/// How many finalized blocks a node may be behind and still count as synced.
pub const SYNC_SLACK: u64 = 2;

/// The current wall-clock time as a protocol timestamp.
pub fn now() -> Timestamp {
    SystemTime::now().into()
}

/// Shared node context.
pub struct NodeContext {
    /// This node's department.
    pub department: DepartmentId,
    /// The genesis.
    pub genesis: Genesis,
    /// The store.
    pub store: Arc<Store>,
    /// Pending transactions.
    pub pool: Pool,
    /// The newest committed head.
    pub head: watch::Receiver<ChainHead>,
    /// Transactions to spread to the other nodes.
    pub gossip: mpsc::Sender<SignedTransaction>,
    /// Departments whose nodes are connected now.
    pub peers: Mutex<BTreeSet<DepartmentId>>,
    /// The highest finalized height this node has heard of (from consensus or peers).
    pub finalized_seen: AtomicU64,
    /// The node's HTTP base URL (for status).
    pub http_url: String,
    /// The node's p2p listen address.
    pub p2p_address: String,
    /// Largest request body (files to verify included).
    pub max_body_bytes: usize,
    /// The governance state decoded at a head, reused until the head moves.
    pub governance_cache: Mutex<Option<(BlockHash, Arc<Governance>)>>,
}

impl NodeContext {
    /// The newest committed head.
    pub fn head(&self) -> ChainHead {
        self.head.borrow().clone()
    }

    /// The current governance state (decoded once per committed block).
    pub fn governance(&self) -> Result<Arc<Governance>, StoreError> {
        let head = self.head().hash;
        if let Ok(cache) = self.governance_cache.lock() {
            if let Some((at, gov)) = cache.as_ref() {
                if *at == head {
                    return Ok(gov.clone());
                }
            }
        }
        // Read at a snapshot, then label it with the head it was read at; a block committed in
        // between only makes the next call read again.
        let snapshot = self.store.snapshot();
        let gov = Arc::new(state::governance(&snapshot)?);
        let at = state::head(&snapshot)?.hash;
        if let Ok(mut cache) = self.governance_cache.lock() {
            *cache = Some((at, gov.clone()));
        }
        Ok(gov)
    }

    /// Whether this node is within [`SYNC_SLACK`] blocks of the highest finalized height it has
    /// heard of. (A block is heard of as finalized a moment before it is committed here, so an
    /// exact comparison would flicker at every block.)
    pub fn is_synced(&self) -> bool {
        self.head().height + SYNC_SLACK >= self.finalized_seen.load(Ordering::Relaxed)
    }

    /// Notes a finalized height heard of.
    pub fn saw_finalized(&self, height: u64) {
        self.finalized_seen.fetch_max(height, Ordering::Relaxed);
    }

    /// Connected peers.
    pub fn connected_peers(&self) -> Vec<DepartmentId> {
        self.peers
            .lock()
            .map(|p| p.iter().cloned().collect())
            .unwrap_or_default()
    }

    /// Admits a signed transaction to the pool (checking every signature once) and spreads it to
    /// the other nodes.
    pub fn submit(&self, signed: SignedTransaction) -> Result<TxId, AdmitError> {
        self.submit_many(vec![signed])
            .pop()
            .unwrap_or(Err(AdmitError::Endorsement(EndorsementError::Unsigned)))
    }

    /// [`NodeContext::submit`] for many transactions, one answer each, in order: their
    /// signatures are checked together (batch verification).
    pub fn submit_many(&self, signed: Vec<SignedTransaction>) -> Vec<Result<TxId, AdmitError>> {
        let gov = match self.governance() {
            Ok(g) => g,
            Err(e) => {
                let err = AdmitError::Rejected(TxError::InvalidField {
                    field: "state",
                    reason: e.to_string(),
                });
                return signed.iter().map(|_| Err(err.clone())).collect();
            }
        };
        self.pool
            .admit_many(&self.store.snapshot(), &gov, &self.head(), now(), signed)
            .into_iter()
            .map(|r| {
                r.map(|(verified, new)| {
                    if new {
                        // Spreading is best-effort: if the gossip queue is full the other nodes
                        // still receive the transaction in this node's next proposal.
                        let _ = self.gossip.try_send(verified.signed().clone());
                    }
                    verified.id()
                })
            })
            .collect()
    }

    /// Waits up to `timeout` for a transaction to be committed or rejected.
    pub async fn wait_for(&self, id: TxId, timeout: std::time::Duration) -> Option<TxOutcome> {
        let committed = || {
            self.store
                .snapshot_tx_location(&id)
                .map(|loc| TxOutcome::Committed {
                    height: loc.height,
                    index: loc.index,
                })
        };
        if let Some(c) = committed() {
            return Some(c);
        }
        let rx = self.pool.watch(id);
        // The commit may have landed between the check and the watch.
        if let Some(c) = committed() {
            return Some(c);
        }
        tokio::time::timeout(timeout, rx)
            .await
            .ok()
            .and_then(Result::ok)
    }
}
