//! Consensus glue: commonware's Simplex BFT engine with its `marshal` component, running over the
//! node's libp2p network.
//!
//! - [`ChainBlock`] wraps a protocol [`Block`] (or the genesis) as commonware's block type; its
//!   digest is the protocol block hash, so the engine's chain and the ledger's hash chain are one.
//! - [`VaultApp`] is the application Simplex drives through marshal's `Inline` wrapper: `propose`
//!   builds a block from the pool on its parent, `verify` checks a proposal with the same pure
//!   state machine every node runs (signatures, header, every transaction, log and state roots).
//! - Finalized blocks arrive from marshal in height order, with backfill of anything missed; the
//!   [`Finalizer`] fetches each block's finalization certificate, commits the block to RocksDB,
//!   and only then acknowledges it.
//! - The five engine channels, and the pending-transaction gossip channel, are [`Channel`]s on
//!   the one libp2p swarm ([`crate::p2p`]); this module adapts them to commonware's p2p traits.

use std::collections::BTreeSet;
use std::num::NonZeroUsize;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::{BufMut, Bytes};
use commonware_actor::{Feedback, Unreliable};
use commonware_codec::{
    Buf, Decode, DecodeExt, Encode, EncodeSize, Error as CodecError, Read, ReadExt, Write,
};
use commonware_consensus::marshal::ancestry::Ancestry;
use commonware_consensus::marshal::core::{Actor as MarshalActor, Mailbox as MarshalMailbox};
use commonware_consensus::marshal::resolver::p2p as marshal_resolver;
use commonware_consensus::marshal::standard::{Inline, Standard};
use commonware_consensus::marshal::{self, Start, Update};
use commonware_consensus::simplex::elector::RoundRobin;
use commonware_consensus::simplex::scheme::ed25519 as ed_scheme;
use commonware_consensus::simplex::types::{Context as SimplexContext, Finalization};
use commonware_consensus::simplex::{self, Floor};
use commonware_consensus::types::{Epoch, FixedEpocher, Height, ViewDelta};
use commonware_consensus::{Application, Block as CwBlock, BoundedBlock, Heightable, Reporter};
use commonware_cryptography::certificate::ConstantProvider;
use commonware_cryptography::ed25519::{PrivateKey, PublicKey as CwKey};
use commonware_cryptography::sha256::{Digest as CwDigest, Sha256};
use commonware_cryptography::{Digested, Digestible, Signer as _};
use commonware_p2p::utils::limited::{Connected, LimitedSender};
use commonware_p2p::{
    BlockedSubscription, Blocker, PeerSetSubscription, PeerSetUpdate, Provider, Receiver,
    Recipients, TrackedPeers, UnlimitedSender,
};
use commonware_parallel::Sequential;
use commonware_runtime::buffer::paged::CacheRef;
use commonware_runtime::{Clock, IoBuf, IoBufs, Metrics, Quota, Spawner, Storage, Supervisor};
use commonware_storage::archive::immutable;
use commonware_utils::channel::{mpsc as cw_mpsc, ring};
use commonware_utils::ordered::Set;
use commonware_utils::{Acknowledgement, NZDuration, NZUsize, NZU16, NZU32, NZU64};
use futures::StreamExt;
use tokio::sync::{mpsc, watch};
use vault_protocol::block::Block;
use vault_protocol::crypto::{CryptoSuite, Digest, KeyPair, PublicKey};
use vault_protocol::encoding::{BoundedVec, Canonical};
use vault_protocol::ids::{BlockHash, Timestamp};
use vault_protocol::state::{self, BlockError, ChainHead};
use vault_protocol::tx::{SignedTransaction, VerifiedTx};

use crate::chain::{BuildBudget, Chain, ChainError};
use crate::context::{now, NodeContext};

/// The runtime clock's time as a protocol timestamp (simulated time under the deterministic
/// runtime, wall-clock time in production).
fn clock_now<E: Clock>(clock: &E) -> Timestamp {
    clock.current().into()
}
use crate::p2p::{Channel, Inbound, Network};

/// Simplex votes.
pub const CHANNEL_VOTES: Channel = 0;
/// Simplex certificates.
pub const CHANNEL_CERTIFICATES: Channel = 1;
/// Simplex certificate resolver.
pub const CHANNEL_RESOLVER: Channel = 2;
/// Block dissemination (buffered broadcast).
pub const CHANNEL_BROADCAST: Channel = 3;
/// Marshal backfill.
pub const CHANNEL_BACKFILL: Channel = 4;
/// Pending transactions.
pub const CHANNEL_TRANSACTIONS: Channel = 10;

/// Every channel the node registers, with its inbound queue size.
pub const CHANNELS: [(Channel, usize); 7] = [
    (CHANNEL_VOTES, 4096),
    (CHANNEL_CERTIFICATES, 4096),
    (CHANNEL_RESOLVER, 1024),
    (CHANNEL_BROADCAST, 1024),
    (CHANNEL_BACKFILL, 1024),
    (CHANNEL_TRANSACTIONS, 8192),
    (crate::checkpoints::CHANNEL_COSIGNATURES, 1024),
];

/// The largest encoded protocol block the engine carries.
pub const MAX_BLOCK_BYTES: usize = 32 * 1024 * 1024;

fn cw_key(key: &PublicKey) -> Result<CwKey, CodecError> {
    CwKey::decode(Bytes::copy_from_slice(key.as_bytes()))
}

fn our_key(key: &CwKey) -> PublicKey {
    let mut b = [0u8; 32];
    b.copy_from_slice(key.as_ref());
    PublicKey::from_bytes(b)
}

pub(crate) fn cw_digest(hash: &BlockHash) -> CwDigest {
    CwDigest(hash.0 .0)
}

pub(crate) fn our_hash(d: &CwDigest) -> BlockHash {
    BlockHash(Digest(d.0))
}

/// The namespace every consensus signature of this chain is made under.
pub fn namespace(chain_id: &str, genesis: &BlockHash) -> Vec<u8> {
    // One definition, shared with the offline verifier that checks certificates.
    vault_protocol::certificate::namespace(chain_id, genesis)
}

// ---------------------------------------------------------------------------------------------
// The block type
// ---------------------------------------------------------------------------------------------

#[derive(Debug, PartialEq, Eq)]
// Held in an `Arc`, allocated once per block: the size difference costs nothing.
#[allow(clippy::large_enum_variant)]
enum Kind {
    Genesis(BlockHash),
    Block(Block),
}

/// A block as the consensus engine sees it: the genesis (height 0), or a protocol block.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ChainBlock {
    kind: Arc<Kind>,
    hash: BlockHash,
    suite: CryptoSuite,
}

impl ChainBlock {
    /// The genesis block.
    pub fn genesis(hash: BlockHash, suite: CryptoSuite) -> Self {
        Self {
            kind: Arc::new(Kind::Genesis(hash)),
            hash,
            suite,
        }
    }

    /// A protocol block.
    pub fn new(block: Block, suite: CryptoSuite) -> Self {
        let hash = block.header.hash(suite);
        Self {
            kind: Arc::new(Kind::Block(block)),
            hash,
            suite,
        }
    }

    /// The protocol block (`None` for the genesis).
    pub fn block(&self) -> Option<&Block> {
        match &*self.kind {
            Kind::Block(b) => Some(b),
            Kind::Genesis(_) => None,
        }
    }

    /// The block hash.
    pub fn hash(&self) -> BlockHash {
        self.hash
    }
}

impl Write for ChainBlock {
    fn write(&self, buf: &mut impl BufMut) {
        match &*self.kind {
            Kind::Genesis(h) => {
                buf.put_u8(0);
                buf.put_slice(&h.0 .0);
            }
            Kind::Block(b) => {
                buf.put_u8(1);
                Bytes::from(b.encode()).write(buf);
            }
        }
    }
}

impl EncodeSize for ChainBlock {
    fn encode_size(&self) -> usize {
        match &*self.kind {
            Kind::Genesis(_) => 33,
            Kind::Block(b) => 1 + Bytes::from(b.encode()).encode_size(),
        }
    }
}

/// How a [`ChainBlock`] decodes: the largest block and the suite.
#[derive(Debug, Clone, Copy)]
pub struct BlockCodec {
    /// Largest encoded protocol block.
    pub max_bytes: usize,
    /// The chain's suite.
    pub suite: CryptoSuite,
}

impl Read for ChainBlock {
    type Cfg = BlockCodec;
    fn read_cfg(buf: &mut impl Buf, cfg: &BlockCodec) -> Result<Self, CodecError> {
        match u8::read(buf)? {
            0 => {
                let d = CwDigest::read(buf)?;
                Ok(ChainBlock::genesis(our_hash(&d), cfg.suite))
            }
            1 => {
                let bytes = Bytes::read_cfg(buf, &(..=cfg.max_bytes).into())?;
                let block = Block::decode(&bytes)
                    .map_err(|e| CodecError::Wrapped("protocol block", Box::new(e)))?;
                Ok(ChainBlock::new(block, cfg.suite))
            }
            t => Err(CodecError::InvalidEnum(t)),
        }
    }
}

impl Digestible for ChainBlock {
    type Digest = CwDigest;
    fn digest(&self) -> CwDigest {
        cw_digest(&self.hash)
    }
}

impl Heightable for ChainBlock {
    fn height(&self) -> Height {
        Height::new(self.block().map_or(0, |b| b.header.height))
    }
}

impl CwBlock for ChainBlock {
    fn parent(&self) -> CwDigest {
        match &*self.kind {
            Kind::Genesis(_) => CwDigest([0u8; 32]),
            Kind::Block(b) => cw_digest(&b.header.parent),
        }
    }
}

impl BoundedBlock for ChainBlock {
    fn max_encode_size(cfg: &BlockCodec) -> usize {
        1 + 5 + cfg.max_bytes
    }
}

// ---------------------------------------------------------------------------------------------
// p2p adapter
// ---------------------------------------------------------------------------------------------

/// Sends a channel's messages through the libp2p network.
#[derive(Clone)]
pub struct ChannelSender {
    net: Network,
    channel: Channel,
}

impl UnlimitedSender for ChannelSender {
    type PublicKey = CwKey;

    fn send(
        &mut self,
        recipients: Recipients<CwKey>,
        message: impl Into<IoBufs> + Send,
        _priority: bool,
    ) -> Unreliable<Feedback> {
        let bytes: Bytes = message.into().coalesce().into();
        let targets: Vec<PublicKey> = match recipients {
            Recipients::All => self.net.connected(),
            Recipients::Some(v) => v.iter().map(our_key).collect(),
            Recipients::One(k) => vec![our_key(&k)],
        };
        if targets.is_empty() {
            return Unreliable::Outcome(Feedback::Ok);
        }
        let mut queued = false;
        for t in &targets {
            queued |= self.net.send(t, self.channel, bytes.clone());
        }
        if queued {
            Unreliable::Outcome(Feedback::Ok)
        } else {
            Unreliable::Rejected
        }
    }
}

/// A channel's sender with commonware's per-peer rate limiting in front of it.
pub struct RateLimited<E: Clock>(LimitedSender<E, ChannelSender, ConnectedPeers>);

impl<E: Clock> Clone for RateLimited<E> {
    fn clone(&self) -> Self {
        Self(self.0.clone())
    }
}

impl<E: Clock + Send + Sync + 'static> commonware_p2p::LimitedSender for RateLimited<E> {
    type PublicKey = CwKey;
    type Checked<'a>
        = commonware_p2p::utils::limited::CheckedSender<'a, ChannelSender>
    where
        Self: 'a;

    fn check(
        &mut self,
        recipients: Recipients<CwKey>,
    ) -> Result<Self::Checked<'_>, std::time::SystemTime> {
        self.0.check(recipients)
    }
}

/// The connected validators, for resolving "all" recipients.
#[derive(Clone)]
pub struct ConnectedPeers {
    net: Network,
    subscribers: Arc<Mutex<Vec<ring::Sender<Vec<CwKey>>>>>,
}

impl ConnectedPeers {
    fn new(net: Network) -> Self {
        let me = Self {
            net,
            subscribers: Arc::new(Mutex::new(Vec::new())),
        };
        let watcher = me.clone();
        tokio::spawn(async move {
            let mut last: Vec<CwKey> = Vec::new();
            loop {
                let now = watcher.snapshot();
                if now != last {
                    if let Ok(mut subs) = watcher.subscribers.lock() {
                        subs.retain(|s| s.send_lossy(now.clone()));
                    }
                    last = now;
                }
                tokio::time::sleep(Duration::from_millis(250)).await;
            }
        });
        me
    }

    fn snapshot(&self) -> Vec<CwKey> {
        let mut v: Vec<CwKey> = self
            .net
            .connected()
            .iter()
            .filter_map(|k| cw_key(k).ok())
            .collect();
        v.sort();
        v
    }
}

impl Connected for ConnectedPeers {
    type PublicKey = CwKey;

    fn peers(&self) -> Vec<CwKey> {
        self.snapshot()
    }

    fn subscribe(&self) -> ring::Receiver<Vec<CwKey>> {
        let (tx, rx) = ring::channel(NZUsize!(1));
        tx.send_lossy(self.snapshot());
        if let Ok(mut subs) = self.subscribers.lock() {
            subs.push(tx);
        }
        rx
    }
}

/// The network has shut down.
#[derive(Debug, thiserror::Error)]
#[error("the p2p channel closed")]
pub struct ChannelClosed;

/// Receives a channel's messages from the libp2p network.
#[derive(Debug)]
pub struct ChannelReceiver {
    rx: Inbound,
    capacity: NonZeroUsize,
}

impl Receiver for ChannelReceiver {
    type Error = ChannelClosed;
    type PublicKey = CwKey;

    async fn recv(&mut self) -> Result<(CwKey, IoBuf), ChannelClosed> {
        loop {
            let (from, bytes) = self.rx.recv().await.ok_or(ChannelClosed)?;
            if let Ok(k) = cw_key(&from) {
                return Ok((k, IoBuf::from(bytes)));
            }
        }
    }

    fn capacity(&self) -> NonZeroUsize {
        self.capacity
    }
}

/// Blocks misbehaving peers: disconnects them and refuses them until restart.
#[derive(Clone)]
pub struct PeerBlocker {
    net: Network,
    blocked: Arc<Mutex<BTreeSet<CwKey>>>,
    subscribers: Arc<Mutex<Vec<ring::Sender<Set<CwKey>>>>>,
}

impl PeerBlocker {
    fn current(&self) -> Set<CwKey> {
        let b = self.blocked.lock().map(|b| b.clone()).unwrap_or_default();
        Set::from_iter_dedup(b)
    }
}

impl Blocker for PeerBlocker {
    type PublicKey = CwKey;

    fn block(&mut self, peer: CwKey) -> Feedback {
        tracing::warn!(peer = %our_key(&peer), "blocking a peer for misbehaviour");
        if let Ok(mut b) = self.blocked.lock() {
            b.insert(peer.clone());
        }
        self.net.block(our_key(&peer));
        let set = self.current();
        if let Ok(mut subs) = self.subscribers.lock() {
            subs.retain(|s| s.send_lossy(set.clone()));
        }
        Feedback::Ok
    }

    fn blocked(&mut self) -> BlockedSubscription<CwKey> {
        let (tx, rx) = ring::channel(NZUsize!(1));
        tx.send_lossy(self.current());
        if let Ok(mut subs) = self.subscribers.lock() {
            subs.push(tx);
        }
        rx
    }
}

/// The validator set, as the resolver and broadcast engines ask for it.
#[derive(Clone)]
pub struct ValidatorSet {
    validators: Set<CwKey>,
    subscribers: Arc<Mutex<Vec<cw_mpsc::UnboundedSender<PeerSetUpdate<CwKey>>>>>,
}

impl std::fmt::Debug for ValidatorSet {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "ValidatorSet({})", self.validators.len())
    }
}

impl Provider for ValidatorSet {
    type PublicKey = CwKey;

    async fn peer_set(&mut self, id: u64) -> Option<TrackedPeers<CwKey>> {
        (id == 0).then(|| TrackedPeers::primary(self.validators.clone()))
    }

    async fn subscribe(&mut self) -> PeerSetSubscription<CwKey> {
        let (tx, rx) = cw_mpsc::unbounded_channel();
        let tracked = TrackedPeers::primary(self.validators.clone());
        let _ = tx.send(PeerSetUpdate {
            index: 0,
            latest: tracked.clone(),
            all: tracked,
        });
        // Keep the sender for the node's lifetime: a closed subscription stops the engines.
        if let Ok(mut subs) = self.subscribers.lock() {
            subs.push(tx);
        }
        rx
    }
}

// ---------------------------------------------------------------------------------------------
// The application
// ---------------------------------------------------------------------------------------------

/// The application Simplex drives.
#[derive(Clone)]
pub struct VaultApp {
    ctx: Arc<NodeContext>,
    chain: Arc<Chain>,
    empty_block_interval: Duration,
    /// How long a proposal may take candidates ([`BuildBudget`]).
    build_budget: Duration,
    sizer: Arc<Mutex<ProposalSizer>>,
    /// Held while blocks are checked or built, one job at a time: the engine moves on to later
    /// views while a check runs, and each view's check of a node that fell behind walks the same
    /// missed ancestors — run at once, they would all check them all. Run in turn, a later job
    /// finds them already checked.
    checking: Arc<Mutex<()>>,
}

/// How many transactions this node's next proposal may hold.
///
/// A proposal too big for the other validators to check within the view's timeout is never
/// notarized, and the same proposal next time fails the same way: a proposer whose last proposal
/// did not make it into the chain halves its size (down to [`ProposalSizer::MIN`]); one whose
/// proposal was committed doubles it again, up to the chain's limit.
///
/// A proposal is known to have failed as soon as this node is asked to propose again at a height
/// not above it (the chain built that height on without it), or once the committed chain passed
/// its height with another block. The first matters most: when every proposal is too big the
/// chain does not move at all, and a sizer that waited for the committed head would never shrink.
#[derive(Debug, Clone)]
pub struct ProposalSizer {
    max: usize,
    cap: usize,
    last: Option<(BlockHash, u64)>,
}

impl ProposalSizer {
    /// The smallest cap.
    pub const MIN: usize = 256;

    /// A sizer for a chain whose blocks hold at most `max` transactions.
    pub fn new(max: usize) -> Self {
        ProposalSizer {
            max,
            cap: max,
            last: None,
        }
    }

    /// The cap for a proposal at height `proposing`, given the committed head's height and
    /// whether a block hash is committed.
    pub fn cap(
        &mut self,
        proposing: u64,
        head_height: u64,
        committed: impl Fn(&BlockHash) -> bool,
    ) -> usize {
        if let Some((hash, height)) = self.last {
            let landed = if proposing <= height {
                // Asked to fill a height this node's last proposal held: the chain left it out.
                Some(false)
            } else if head_height >= height {
                Some(committed(&hash))
            } else {
                None
            };
            if let Some(landed) = landed {
                self.cap = if landed {
                    self.cap.saturating_mul(2).min(self.max)
                } else {
                    (self.cap / 2).max(Self::MIN.min(self.max))
                };
                self.last = None;
            }
        }
        self.cap
    }

    /// Records a proposal of `txs` transactions at `height`. Empty proposals say nothing about
    /// size and are not tracked.
    pub fn proposed(&mut self, hash: BlockHash, height: u64, txs: usize) {
        if txs > 0 {
            self.last = Some((hash, height));
        }
    }
}

impl VaultApp {
    /// Verified transactions of a block, reusing the pool's verification where possible.
    fn verify_transactions(&self, block: &Block) -> Result<Vec<VerifiedTx>, BlockError> {
        let suite = self.ctx.store.suite();
        let mut out: Vec<Option<VerifiedTx>> = block
            .transactions
            .iter()
            .map(|t| {
                self.ctx
                    .pool
                    .verified(&t.id(suite))
                    .filter(|v| v.signed() == t)
            })
            .collect();
        // Those this node has not seen yet are checked here, over the machine's cores.
        let missing: Vec<usize> = (0..out.len()).filter(|i| out[*i].is_none()).collect();
        let txs: Vec<&SignedTransaction> =
            missing.iter().map(|i| &block.transactions[*i]).collect();
        let checked = state::verify_all(suite, &txs).map_err(|e| match e {
            BlockError::BadEndorsement { index, error } => BlockError::BadEndorsement {
                index: missing[index],
                error,
            },
            other => other,
        })?;
        for (i, v) in missing.into_iter().zip(checked) {
            out[i] = Some(v);
        }
        Ok(out.into_iter().flatten().collect())
    }

    /// Makes sure every ancestor down to a known block is verified, oldest first.
    async fn verify_ancestors(
        &self,
        mut ancestry: impl Ancestry<ChainBlock>,
        skip_first: bool,
    ) -> Result<Option<BlockHash>, ChainError> {
        let mut unknown: Vec<ChainBlock> = Vec::new();
        let mut first = true;
        let mut parent = None;
        while let Some(b) = ancestry.next().await {
            let block = b.inner().clone();
            if first && skip_first {
                first = false;
                unknown.push(block);
                continue;
            }
            first = false;
            if parent.is_none() {
                parent = Some(block.hash());
            }
            if self.chain.knows(&block.hash())? {
                break;
            }
            unknown.push(block);
        }
        let candidate = if skip_first && !unknown.is_empty() {
            Some(unknown.remove(0))
        } else {
            None
        };
        // Oldest first, the candidate last. Checking is CPU work of up to seconds (a node that
        // fell behind checks every missed ancestor): it runs off the async workers, which must
        // stay free for votes, the network and the commit loop.
        let order: Vec<ChainBlock> = unknown.into_iter().rev().chain(candidate).collect();
        if !order.is_empty() {
            let app = self.clone();
            off_the_workers(move || {
                let _turn = app.checking.lock().unwrap_or_else(|p| p.into_inner());
                for b in &order {
                    if let Some(block) = b.block() {
                        let txs = app.verify_transactions(block)?;
                        app.chain.verify(Arc::new(block.clone()), &txs)?;
                    }
                }
                Ok::<(), ChainError>(())
            })
            .await?;
        }
        Ok(parent)
    }
}

type Scheme = ed_scheme::Scheme;

/// Runs CPU-bound work — building, checking or committing a block — on the blocking pool, so
/// that it never holds an async worker: with one worker per core, two such jobs at once stopped
/// everything else on the node, its votes and its network included. A panic in `f` is resumed.
/// Outside a tokio runtime (the deterministic simulation's) it runs in place.
async fn off_the_workers<R: Send + 'static>(f: impl FnOnce() -> R + Send + 'static) -> R {
    let Ok(runtime) = tokio::runtime::Handle::try_current() else {
        return f();
    };
    match runtime.spawn_blocking(f).await {
        Ok(r) => r,
        Err(e) => match e.try_into_panic() {
            Ok(panic) => std::panic::resume_unwind(panic),
            // The runtime is shutting down.
            Err(e) => panic!("blocking task cancelled: {e}"),
        },
    }
}

impl<E: Clock + Spawner + Metrics> Application<E> for VaultApp {
    type SigningScheme = Scheme;
    type Context = SimplexContext<CwDigest, CwKey>;
    type Block = ChainBlock;
    type Input = ();

    async fn propose(
        &mut self,
        context: (E, Self::Context),
        ancestry: impl Ancestry<ChainBlock>,
        _input: (),
    ) -> Option<Digested<ChainBlock>> {
        // The leader's timeout runs from the start of the view, which is when this is called.
        let view_started = std::time::Instant::now();
        let parent = match self.verify_ancestors(ancestry, false).await {
            Ok(Some(p)) => p,
            Ok(None) => return None,
            Err(e) => {
                tracing::warn!(error = %e, "cannot build on the parent");
                return None;
            }
        };
        let parent_head: ChainHead = self.chain.head_after(&parent).ok()?;
        // Wait briefly for transactions, so that an idle network makes few empty blocks.
        let not_before = parent_head
            .time
            .plus(self.empty_block_interval.as_millis() as u64);
        while self.ctx.pool.is_empty() && clock_now(&context.0) < not_before {
            context.0.sleep(Duration::from_millis(20)).await;
        }
        let cap = {
            let store = &self.ctx.store;
            let head = self.ctx.head().height;
            let mut sizer = self.sizer.lock().unwrap_or_else(|p| p.into_inner());
            sizer.cap(parent_head.height + 1, head, |h| {
                store.height_of(h).ok().flatten().is_some()
            })
        };
        // Transactions in the parent and its unfinalized ancestors stay in the pool until they
        // commit; offered again they would only be left out as duplicates, crowding out fresh ones.
        let in_flight = self.chain.in_flight(&parent);
        let candidates = self
            .ctx
            .pool
            .pending_except(cap, |id| in_flight.contains(id));
        let offered = candidates.len();
        let department = self.ctx.department.clone();
        let started = std::time::Instant::now();
        let budget = BuildBudget {
            until: view_started + self.build_budget,
            at_least: ProposalSizer::MIN,
        };
        let now = clock_now(&context.0);
        let (chain, checking) = (self.chain.clone(), self.checking.clone());
        match off_the_workers(move || {
            let _turn = checking.lock().unwrap_or_else(|p| p.into_inner());
            chain.propose(&parent, &department, now, candidates, budget)
        })
        .await
        {
            Ok((block, rejected)) => {
                tracing::debug!(
                    view = context.1.round.view().get(),
                    height = block.header.height,
                    txs = block.transactions.len(),
                    cap,
                    offered,
                    in_flight = in_flight.len(),
                    left_out = rejected.len(),
                    ms = started.elapsed().as_millis() as u64,
                    "proposed"
                );
                // Left out of this block only: the parent may not be finalized, so a rule broken
                // on top of it is not final. The pool evicts, with the reason, only when a
                // transaction breaks a rule against committed state (after each commit).
                if !rejected.is_empty() {
                    tracing::debug!(
                        count = rejected.len(),
                        "transactions left out of a proposal"
                    );
                    let ids: Vec<_> = rejected.iter().map(|(id, _)| *id).collect();
                    self.ctx.pool.suspect(&ids);
                }
                let suite = self.ctx.store.suite();
                if let Ok(mut sizer) = self.sizer.lock() {
                    sizer.proposed(
                        block.header.hash(suite),
                        block.header.height,
                        block.transactions.len(),
                    );
                }
                let cb = ChainBlock::new((*block).clone(), suite);
                let digest = cb.digest();
                Some(Digested::precomputed(cb, digest))
            }
            Err(e) => {
                tracing::warn!(error = %e, "failed to build a block");
                None
            }
        }
    }

    async fn verify(
        &mut self,
        context: (E, Self::Context),
        ancestry: impl Ancestry<ChainBlock>,
    ) -> bool {
        let mut peek = ancestry.clone();
        let Some(candidate) = peek.next().await else {
            return false;
        };
        let Some(block) = candidate.inner().block() else {
            return false;
        };
        let limit = clock_now(&context.0).plus(crate::context::MAX_BLOCK_TIME_SKEW_MS);
        if block.header.time > limit {
            tracing::warn!(time = %block.header.time, "proposal from the future");
            return false;
        }
        let started = std::time::Instant::now();
        match self.verify_ancestors(ancestry, true).await {
            Ok(_) => {
                tracing::debug!(
                    view = context.1.round.view().get(),
                    height = block.header.height,
                    txs = block.transactions.len(),
                    ms = started.elapsed().as_millis() as u64,
                    "verified a proposal"
                );
                true
            }
            Err(e) => {
                tracing::warn!(error = %e, height = block.header.height, "rejecting a proposal");
                false
            }
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Finalized blocks
// ---------------------------------------------------------------------------------------------

type Ack = commonware_utils::acknowledgement::Exact;

/// Receives finalized blocks from marshal, in height order.
#[derive(Clone)]
pub struct Finalizer {
    tx: cw_mpsc::UnboundedSender<(Digested<ChainBlock>, Ack)>,
    ctx: Arc<NodeContext>,
}

impl Reporter for Finalizer {
    type Activity = Update<ChainBlock>;

    fn report(&mut self, activity: Update<ChainBlock>) -> Feedback {
        match activity {
            Update::Tip(_, height, _) => self.ctx.saw_finalized(height.get()),
            Update::Block(block, ack) => {
                let _ = self.tx.send((block, ack));
            }
        }
        Feedback::Ok
    }
}

/// What the consensus engine needs from the node.
pub struct AppParts {
    /// Shared node context.
    pub ctx: Arc<NodeContext>,
    /// Where new heads are published.
    pub heads: watch::Sender<ChainHead>,
    /// The chain.
    pub chain: Arc<Chain>,
    /// This node's key.
    pub node_key: KeyPair,
    /// Validators' node keys (the current members).
    pub validators: Vec<PublicKey>,
    /// Timing.
    pub timing: crate::config::ConsensusConfig,
    /// Max transactions per block.
    pub max_block_transactions: usize,
    /// Prefix of the engine's storage partitions (unique per node sharing a storage).
    pub partition_prefix: String,
}

/// The engines' network: one sender/receiver pair per channel, a blocker and the peer sets.
pub struct EngineNetwork<S, R, B, P> {
    /// Simplex votes.
    pub votes: (S, R),
    /// Simplex certificates.
    pub certificates: (S, R),
    /// Simplex certificate resolver.
    pub resolver: (S, R),
    /// Block broadcast.
    pub broadcast: (S, R),
    /// Marshal backfill.
    pub backfill: (S, R),
    /// Blocks misbehaving peers.
    pub blocker: B,
    /// The validator set.
    pub peers: P,
}

/// Adapts the libp2p [`Network`] to the engines' channels.
pub fn libp2p_engine_network<E: Clock + Supervisor>(
    context: &E,
    net: &Network,
    inbound: &mut std::collections::HashMap<Channel, Inbound>,
    validators: &[PublicKey],
) -> anyhow::Result<EngineNetwork<RateLimited<E>, ChannelReceiver, PeerBlocker, ValidatorSet>> {
    let quota = Quota::per_second(NZU32!(100_000));
    let connected = ConnectedPeers::new(net.clone());
    let mut channel = |ch: Channel| -> anyhow::Result<_> {
        let rx = inbound
            .remove(&ch)
            .ok_or_else(|| anyhow::anyhow!("channel {ch} not registered"))?;
        let cap = rx.max_capacity();
        let sender = RateLimited(LimitedSender::new(
            ChannelSender {
                net: net.clone(),
                channel: ch,
            },
            quota,
            context.child("limiter"),
            connected.clone(),
        ));
        Ok((
            sender,
            ChannelReceiver {
                rx,
                capacity: NonZeroUsize::new(cap).unwrap_or(NZUsize!(1)),
            },
        ))
    };
    let keys = validators
        .iter()
        .map(cw_key)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| anyhow::anyhow!("validator key: {e}"))?;
    Ok(EngineNetwork {
        votes: channel(CHANNEL_VOTES)?,
        certificates: channel(CHANNEL_CERTIFICATES)?,
        resolver: channel(CHANNEL_RESOLVER)?,
        broadcast: channel(CHANNEL_BROADCAST)?,
        backfill: channel(CHANNEL_BACKFILL)?,
        blocker: PeerBlocker {
            net: net.clone(),
            blocked: Arc::new(Mutex::new(BTreeSet::new())),
            subscribers: Arc::new(Mutex::new(Vec::new())),
        },
        peers: ValidatorSet {
            validators: Set::from_iter_dedup(keys),
            subscribers: Arc::new(Mutex::new(Vec::new())),
        },
    })
}

fn immutable_cfg<C>(
    prefix: &str,
    name: &str,
    page_cache: CacheRef,
    codec_config: C,
) -> immutable::Config<C> {
    immutable::Config {
        metadata_partition: format!("{prefix}-{name}-metadata"),
        freezer_table_partition: format!("{prefix}-{name}-freezer-table"),
        freezer_table_initial_size: 1024,
        freezer_table_resize_frequency: 10,
        freezer_table_resize_chunk_size: 128,
        freezer_key_partition: format!("{prefix}-{name}-freezer-key"),
        freezer_key_page_cache: page_cache,
        freezer_value_partition: format!("{prefix}-{name}-freezer-value"),
        freezer_value_target_size: 64 * 1024 * 1024,
        freezer_value_compression: None,
        ordinal_partition: format!("{prefix}-{name}-ordinal"),
        items_per_section: NZU64!(4096),
        freezer_key_write_buffer: NZUsize!(64 * 1024),
        freezer_value_write_buffer: NZUsize!(1024 * 1024),
        ordinal_write_buffer: NZUsize!(64 * 1024),
        replay_buffer: NZUsize!(1024 * 1024),
        codec_config,
    }
}

/// Starts marshal, block broadcast, backfill and Simplex on `context` over `network`, and the
/// task that commits finalized blocks. Returns once everything is started.
pub async fn start<E, S, R, B, P>(
    context: E,
    parts: AppParts,
    network: EngineNetwork<S, R, B, P>,
) -> anyhow::Result<()>
where
    E: Spawner + Clock + Metrics + Storage + Supervisor + rand_core::CryptoRng,
    S: commonware_p2p::Sender<PublicKey = CwKey>,
    R: Receiver<PublicKey = CwKey>,
    B: Blocker<PublicKey = CwKey>,
    P: Provider<PublicKey = CwKey>,
{
    let AppParts {
        ctx,
        heads,
        chain,
        node_key,
        validators,
        timing,
        max_block_transactions,
        partition_prefix,
    } = parts;
    let EngineNetwork {
        votes,
        certificates,
        resolver: resolver_net,
        broadcast: broadcast_net,
        backfill: backfill_net,
        blocker,
        peers,
    } = network;
    let suite = ctx.store.suite();
    let genesis_hash = ctx.store.genesis_hash();
    let ns = namespace(ctx.genesis.chain_id.as_str(), &genesis_hash);
    let signer = PrivateKey::decode(Bytes::copy_from_slice(&node_key.seed()))
        .map_err(|e| anyhow::anyhow!("node key: {e}"))?;
    let me = signer.public_key();
    let participants = Set::from_iter_dedup(
        validators
            .iter()
            .map(cw_key)
            .collect::<Result<Vec<_>, _>>()
            .map_err(|e| anyhow::anyhow!("validator key: {e}"))?,
    );
    let scheme = Scheme::signer(&ns, participants.clone(), signer)
        .ok_or_else(|| anyhow::anyhow!("this node's key is not a validator of the genesis"))?;
    let codec = BlockCodec {
        max_bytes: MAX_BLOCK_BYTES,
        suite,
    };
    let resolver = marshal_resolver::init(
        context.child("marshal_resolver"),
        marshal_resolver::Config {
            public_key: me.clone(),
            peer_provider: peers.clone(),
            blocker: blocker.clone(),
            mailbox_size: NZUsize!(1024),
            fetch_timeout: NZDuration!(Duration::from_secs(2)),
            fetch_retry_delay: Duration::from_millis(200),
            priority_requests: false,
            priority_responses: false,
        },
        backfill_net,
    );
    let (broadcast_engine, buffer) = commonware_broadcast::buffered::Engine::new(
        context.child("broadcast"),
        commonware_broadcast::buffered::Config {
            public_key: me.clone(),
            mailbox_size: NZUsize!(1024),
            deque_size: 32,
            priority: false,
            codec_config: codec,
            peer_provider: peers.clone(),
            strategy: Sequential,
        },
    );
    broadcast_engine.start(broadcast_net);

    let page_cache = CacheRef::new(NZU16!(4096), NZUsize!(1024));
    let prefix = partition_prefix.as_str();
    let finalizations = immutable::Archive::init(
        context.child("finalizations"),
        immutable_cfg(
            prefix,
            "finalizations",
            page_cache.clone(),
            <Scheme as commonware_cryptography::certificate::Verifier>::certificate_codec_config_unbounded(),
        ),
    )
    .await
    .map_err(|e| anyhow::anyhow!("finalization archive: {e}"))?;
    // Finalized blocks live in the ledger itself (no second copy in an engine archive).
    let blocks = crate::blocks::LedgerBlocks::open(ctx.store.clone(), codec)
        .map_err(|e| anyhow::anyhow!("block store: {e}"))?;
    let epocher = FixedEpocher::new(NZU64!(1 << 62));
    let genesis = ChainBlock::genesis(genesis_hash, suite);
    let genesis_digest = genesis.digest();
    let (actor, mailbox, _floor) = MarshalActor::<_, Standard<ChainBlock>, _, _, _, _, _>::init(
        context.child("marshal"),
        finalizations,
        blocks,
        marshal::Config {
            provider: ConstantProvider::<Scheme, Epoch>::new(scheme.clone()),
            epocher: epocher.clone(),
            start: Start::Genesis(Digested::precomputed(genesis, genesis_digest)),
            partition_prefix: prefix.to_string(),
            mailbox_size: NZUsize!(1024),
            // Marshal's view-indexed cache holds every verified and notarized block (up to two
            // copies of each) until it is `view_retention` views behind, in whole sections. A
            // finalized block is served from the ledger itself, so the cache only needs the views
            // that are not final yet: 8 + a section of 8 keeps at most 16 views of blocks, where
            // 16 + 64 kept up to 80 — most of a node's disk in a short run.
            view_retention: ViewDelta::new(8),
            prunable_items_per_section: NZU64!(8),
            page_cache: page_cache.clone(),
            replay_buffer: NZUsize!(1024 * 1024),
            key_write_buffer: NZUsize!(64 * 1024),
            value_write_buffer: NZUsize!(1024 * 1024),
            block_codec_config: codec,
            max_repair: NZUsize!(32),
            max_pending_acks: NZUsize!(64),
            strategy: Sequential,
        },
    )
    .await;
    let (finalized_tx, finalized_rx) = cw_mpsc::unbounded_channel();
    actor.start(
        Finalizer {
            tx: finalized_tx,
            ctx: ctx.clone(),
        },
        buffer,
        resolver,
    );
    let others: Vec<CwKey> = participants.iter().filter(|p| **p != me).cloned().collect();
    context.child("finalizer").spawn({
        let ctx = ctx.clone();
        let chain = chain.clone();
        let mailbox = mailbox.clone();
        move |rt| commit_loop(rt, ctx, chain, heads, mailbox, finalized_rx, others)
    });

    let app = Inline::new(
        context.child("app"),
        VaultApp {
            ctx: ctx.clone(),
            chain,
            empty_block_interval: timing.empty_block_interval,
            // A quarter of the leader's timeout taking candidates: sealing the block (the status
            // tree, the roots) takes about as long again, and each validator then checks it in
            // about the time it took to build — all within the notarization timeout.
            build_budget: timing.leader_timeout / 4,
            sizer: Arc::new(Mutex::new(ProposalSizer::new(max_block_transactions))),
            checking: Arc::new(Mutex::new(())),
        },
        mailbox,
        epocher,
    );
    let engine = simplex::Engine::new(
        context.child("simplex"),
        simplex::Config {
            scheme,
            elector: RoundRobin::<Sha256>::default(),
            blocker,
            automaton: app.clone(),
            relay: app.clone(),
            reporter: app,
            track_historical_votes: false,
            strategy: Sequential,
            partition: format!("{prefix}-simplex-epoch-0"),
            mailbox_size: NZUsize!(1024),
            epoch: Epoch::zero(),
            floor: Floor::Genesis(genesis_digest),
            replay_buffer: NZUsize!(1024 * 1024),
            write_buffer: NZUsize!(1024 * 1024),
            page_cache,
            leader_timeout: timing.leader_timeout,
            certification_timeout: timing.notarization_timeout,
            timeout_retry: timing.nullify_retry,
            view_retention: ViewDelta::new(16),
            skip: simplex::SkipPolicy::Disabled,
            fetch_timeout: NZDuration!(Duration::from_secs(1)),
            fetch_retry_delay: Duration::from_millis(200),
            forward: simplex::ForwardPolicy::Disabled,
        },
    );
    engine.start(votes, certificates, resolver_net);
    Ok(())
}

/// After each commit the pool dry-runs its oldest pending transactions: this many normally…
const REVALIDATE_HEAD: usize = 256;
/// …and this many after a proposal of this node left some out.
const REVALIDATE_MAX: usize = 4096;

/// Finalized blocks taken from marshal ahead of the one being committed, whose signatures are
/// being checked meanwhile (catch-up: blocks this node never verified as proposals).
const CHECK_AHEAD: usize = 4;

/// A finalized block waiting to be committed, with its signature check under way if it needs one.
struct Queued {
    block: Digested<ChainBlock>,
    ack: Ack,
    checked: Option<std::thread::JoinHandle<Result<Vec<VerifiedTx>, BlockError>>>,
}

fn queue(
    chain: &Chain,
    suite: vault_protocol::crypto::CryptoSuite,
    block: Digested<ChainBlock>,
    ack: Ack,
) -> Queued {
    // A block this node verified as a proposal commits from its cached outcome; one it never saw
    // (catch-up) has its signatures checked on another thread while earlier blocks commit.
    let checked = match block.inner().block() {
        Some(b) if !chain.knows(&b.header.hash(suite)).unwrap_or(false) => {
            let b = b.clone();
            Some(std::thread::spawn(move || {
                state::verify_transactions(suite, &b)
            }))
        }
        _ => None,
    };
    Queued {
        block,
        ack,
        checked,
    }
}

async fn commit_loop<E: Clock + Spawner>(
    rt: E,
    ctx: Arc<NodeContext>,
    chain: Arc<Chain>,
    heads: watch::Sender<ChainHead>,
    mailbox: MarshalMailbox<Scheme, Standard<ChainBlock>>,
    mut finalized: cw_mpsc::UnboundedReceiver<(Digested<ChainBlock>, Ack)>,
    others: Vec<CwKey>,
) {
    let suite = ctx.store.suite();
    let mut ahead: std::collections::VecDeque<Queued> = std::collections::VecDeque::new();
    loop {
        if ahead.is_empty() {
            match finalized.recv().await {
                Some((block, ack)) => ahead.push_back(queue(&chain, suite, block, ack)),
                None => break,
            }
        }
        while ahead.len() < CHECK_AHEAD {
            match finalized.try_recv() {
                Ok((block, ack)) => ahead.push_back(queue(&chain, suite, block, ack)),
                Err(_) => break,
            }
        }
        let Some(Queued {
            block,
            ack,
            checked,
        }) = ahead.pop_front()
        else {
            continue;
        };
        let Some(b) = block.inner().block() else {
            ack.acknowledge();
            continue;
        };
        let height = Height::new(b.header.height);
        ctx.saw_finalized(b.header.height);
        // Keep the block's own finalization certificate when one exists. A block finalized
        // through a descendant's certificate has none yet: it is committed at once, and its own
        // certificate is asked of the peers meanwhile (below) — marshal fetches it only while
        // the block is unacknowledged.
        let fin = mailbox.get_finalization(height).await;
        let missing = fin.is_none() && !others.is_empty();
        if missing {
            if let Ok(peers) = commonware_utils::vec::NonEmptyVec::try_from(others.clone()) {
                mailbox.hint_finalized(height, peers);
            }
        }
        let certificate: Option<Vec<u8>> =
            fin.map(|f: Finalization<Scheme, CwDigest>| f.encode().to_vec());
        let verify = move |blk: &Block| -> Result<Vec<VerifiedTx>, BlockError> {
            match checked {
                Some(handle) => handle
                    .join()
                    .unwrap_or_else(|panic| std::panic::resume_unwind(panic)),
                None => state::verify_transactions(suite, blk),
            }
        };
        // Committing (and re-checking the pool after it) is CPU and disk work: off the workers.
        let now = clock_now(&rt);
        let committed = {
            let (chain, ctx, finalized_block) = (chain.clone(), ctx.clone(), block.inner().clone());
            let block_height = b.header.height;
            off_the_workers(move || {
                let Some(b) = finalized_block.block() else {
                    return Err(ChainError::Block(BlockError::Store(
                        vault_protocol::state::StoreError {
                            message: format!("finalized block {block_height} has no body"),
                        },
                    )));
                };
                let done = chain.commit_finalized(b, certificate.as_deref(), verify)?;
                ctx.pool.committed(done.head.height, &done.tx_ids);
                Ok(done)
            })
            .await
        };
        match committed {
            Ok(done) => {
                let head = done.head.clone();
                heads.send_replace(done.head);
                let revalidating = ctx.clone();
                let at = Timestamp(now.0.max(head.time.0 + 1));
                off_the_workers(move || {
                    let pool = &revalidating.pool;
                    pool.revalidate(
                        &revalidating.store.snapshot(),
                        at,
                        REVALIDATE_HEAD,
                        REVALIDATE_MAX,
                    );
                })
                .await;
                tracing::debug!(height = head.height, txs = done.tx_ids.len(), "committed");
                if missing {
                    // Wait up to two seconds for the block's own certificate, store it, then
                    // acknowledge; later blocks go on committing meanwhile.
                    let mailbox = mailbox.clone();
                    let store = ctx.store.clone();
                    rt.child("certificate").spawn(move |rt| async move {
                        for _ in 0..20 {
                            rt.sleep(Duration::from_millis(100)).await;
                            if let Some(f) = mailbox.get_finalization(height).await {
                                if let Err(e) = store.put_certificate(height.get(), &f.encode()) {
                                    tracing::warn!(error = %e, height = height.get(), "cannot store a certificate");
                                }
                                break;
                            }
                        }
                        ack.acknowledge();
                    });
                } else {
                    ack.acknowledge();
                }
            }
            Err(e) => {
                // A finalized block that our state machine refuses means this node's state has
                // diverged (or its disk failed): stop rather than serve a wrong ledger.
                tracing::error!(error = %e, height = b.header.height, "cannot commit a finalized block; stopping");
                std::process::exit(70);
            }
        }
    }
}

/// Verifies a stored finalization certificate against the validator keys, offline.
pub fn verify_certificate(
    chain_id: &str,
    genesis: &BlockHash,
    validators: &[PublicKey],
    block_hash: &BlockHash,
    certificate: &[u8],
) -> Result<(), String> {
    let ns = namespace(chain_id, genesis);
    let keys = validators
        .iter()
        .map(cw_key)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| e.to_string())?;
    let participants = Set::from_iter_dedup(keys);
    let verifier = Scheme::verifier(&ns, participants.clone());
    let fin = Finalization::<Scheme, CwDigest>::decode_cfg(
        Bytes::copy_from_slice(certificate),
        &participants.len(),
    )
    .map_err(|e| format!("certificate does not decode: {e}"))?;
    if fin.proposal.payload != cw_digest(block_hash) {
        return Err("certificate is for another block".into());
    }
    if !fin.verify(&mut commonware_utils::sys_rng(), &verifier, &Sequential) {
        return Err("certificate signatures do not verify or fall short of the quorum".into());
    }
    Ok(())
}

/// Most transactions in one gossip frame.
pub const GOSSIP_BATCH: usize = 512;

/// A gossip frame: pending transactions, sent together to cut per-frame costs.
#[derive(Debug, Clone, PartialEq, Eq, borsh::BorshSerialize, borsh::BorshDeserialize)]
pub struct TxBatch(pub BoundedVec<SignedTransaction, GOSSIP_BATCH>);

impl Canonical for TxBatch {
    const MAX_ENCODED_LEN: usize = GOSSIP_BATCH * SignedTransaction::MAX_ENCODED_LEN;
}

/// Runs the inbound pending-transaction gossip: admits each transaction of each frame into the
/// pool, judged against one snapshot per frame.
pub fn spawn_tx_gossip(ctx: Arc<NodeContext>, mut inbound: Inbound) {
    tokio::spawn(async move {
        while let Some((from, bytes)) = inbound.recv().await {
            let Ok(batch) = TxBatch::decode(&bytes) else {
                tracing::debug!(peer = %from, "undecodable gossip frame");
                continue;
            };
            // Checking a frame's signatures is CPU work: off the async workers.
            let ctx = ctx.clone();
            let _ = tokio::task::spawn_blocking(move || {
                let Ok(gov) = ctx.governance() else { return };
                let view = ctx.store.snapshot();
                let head = ctx.head();
                let _ = ctx
                    .pool
                    .admit_many(&view, &gov, &head, now(), batch.0.into_inner());
            })
            .await;
        }
    });
}

/// Sends locally submitted transactions to every connected peer, as many per frame as are
/// waiting (up to [`GOSSIP_BATCH`]).
pub fn spawn_tx_broadcast(net: Network, mut outbound: mpsc::Receiver<SignedTransaction>) {
    tokio::spawn(async move {
        while let Some(first) = outbound.recv().await {
            let mut txs = vec![first];
            while txs.len() < GOSSIP_BATCH {
                match outbound.try_recv() {
                    Ok(tx) => txs.push(tx),
                    Err(_) => break,
                }
            }
            if let Ok(batch) = BoundedVec::new(txs) {
                net.broadcast(CHANNEL_TRANSACTIONS, Bytes::from(TxBatch(batch).encode()));
            }
        }
    });
}

#[cfg(test)]
mod tests {
    use super::*;
    use vault_protocol::crypto::Digest;

    fn hash(n: u8) -> BlockHash {
        BlockHash(Digest([n; 32]))
    }

    #[test]
    fn a_proposal_that_never_lands_halves_the_next_and_one_that_lands_doubles_it() {
        let mut s = ProposalSizer::new(10_000);
        assert_eq!(s.cap(1, 0, |_| false), 10_000);
        s.proposed(hash(1), 5, 10_000);
        // Undecided while the chain is below the proposal's height and builds above it.
        assert_eq!(s.cap(6, 4, |_| false), 10_000);
        // The chain passed height 5 with another block: halve, and again, down to the floor.
        assert_eq!(s.cap(7, 5, |_| false), 5_000);
        let mut cap = 5_000;
        for h in 6..20 {
            s.proposed(hash(h as u8), h, cap);
            cap = s.cap(h + 1, h, |_| false);
        }
        assert_eq!(cap, ProposalSizer::MIN);
        // Landed: double back up to the chain's limit.
        for h in 20..40 {
            s.proposed(hash(h as u8), h, cap);
            cap = s.cap(h + 1, h, |x| *x == hash(h as u8));
        }
        assert_eq!(cap, 10_000);
        // An empty proposal says nothing.
        s.proposed(hash(99), 50, 0);
        assert_eq!(s.cap(61, 60, |_| false), 10_000);
    }

    #[test]
    fn a_stalled_chain_shrinks_proposals_without_committing_anything() {
        // Every proposal too big to be checked in time: nothing is committed, the head stays at
        // 105, and each view asks again for height 106. The cap must still come down.
        let mut s = ProposalSizer::new(10_000);
        let mut cap = s.cap(106, 105, |_| false);
        let mut views = 0;
        while cap > ProposalSizer::MIN {
            s.proposed(hash(views as u8), 106, cap);
            cap = s.cap(106, 105, |_| false);
            views += 1;
        }
        assert_eq!(views, 6, "10,000 halves to 256 in six failed proposals");
        // Once a smaller one lands, the chain moves on and the cap grows again.
        s.proposed(hash(200), 106, cap);
        assert_eq!(s.cap(107, 106, |x| *x == hash(200)), 2 * ProposalSizer::MIN);
    }

    #[tokio::test(flavor = "current_thread")]
    async fn block_work_runs_off_the_async_worker() {
        // One async worker. The job waits for a message that only another task on that worker
        // sends: it can arrive only if the job does not hold the worker.
        let (tx, rx) = std::sync::mpsc::channel::<()>();
        let job = tokio::spawn(off_the_workers(move || {
            rx.recv_timeout(Duration::from_secs(10)).is_ok()
        }));
        tokio::task::yield_now().await;
        tokio::time::sleep(Duration::from_millis(50)).await;
        let _ = tx.send(());
        assert!(job.await.unwrap(), "the job held the only async worker");
    }
}
