//! The node's durable store: RocksDB, one column family per kind of data.
//!
//! | column family | key | value |
//! |---|---|---|
//! | `meta` | `genesis` | the genesis document (canonical encoding) |
//! | `headers` | height (u64, big-endian) | block header |
//! | `bodies` | height ‖ index in the block (u32, big-endian) | one signed transaction (canonical encoding), so a transaction is read without its block |
//! | `certs` | height | the block's finalization certificate (consensus engine's encoding) |
//! | `hashes` | block hash | height |
//! | `state` | protocol state key | protocol state value (see `vault_protocol::state::keys`) |
//! | `log` | `level ‖ index` (9 bytes) | complete Merkle-log subtree hash |
//! | `staged` | height ‖ block hash | a finalized block the consensus engine stored that the ledger has not committed yet (the engine's encoding); deleted in the batch that commits it |
//!
//! The consensus engine keeps no block archive of its own: its store of finalized blocks
//! (`blocks::LedgerBlocks`) is the ledger itself plus the `staged` blocks above its head.
//!
//! A finalized block is committed with one `WriteBatch` — header, body, certificate, state delta,
//! new log nodes — written with `sync = true`: one fsync per block, and a block is either wholly
//! on disk or not at all. Commits are idempotent by height. At start-up [`Store::open`] checks the
//! hash chain, the head and the log root, and refuses a damaged store with a message that says
//! what is wrong.

use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};

use rocksdb::{
    BlockBasedOptions, Cache, ColumnFamily, ColumnFamilyDescriptor, DBCompressionType, Direction,
    IteratorMode, Options, SnapshotWithThreadMode, WriteBatch, WriteOptions, DB,
};
use vault_protocol::block::{Block, BlockHeader};
use vault_protocol::crypto::{CryptoSuite, Digest};
use vault_protocol::encoding::{BoundedVec, Canonical, DecodeError};
use vault_protocol::genesis::Genesis;
use vault_protocol::ids::{BlockHash, TxId};
use vault_protocol::merkle::{
    self, ConsistencyProof, Frontier, Hash, InclusionProof, LogHasher, SubtreeStore,
};
use vault_protocol::state::{
    self, genesis_state, BlockOutcome, ChainHead, StateDelta, StateView, StoreError as StateError,
    TxLocation,
};
use vault_protocol::tx::SignedTransaction;

const CF_META: &str = "meta";
const CF_HEADERS: &str = "headers";
const CF_BODIES: &str = "bodies";
const CF_CERTS: &str = "certs";
const CF_HASHES: &str = "hashes";
const CF_STATE: &str = "state";
const CF_LOG: &str = "log";
const CF_STAGED: &str = "staged";
const ALL_CFS: [&str; 8] = [
    CF_META, CF_HEADERS, CF_BODIES, CF_CERTS, CF_HASHES, CF_STATE, CF_LOG, CF_STAGED,
];
const GENESIS_KEY: &[u8] = b"genesis";
/// The ledger's block cache (data, index and filter blocks of every column family).
const BLOCK_CACHE_BYTES: usize = 64 << 20;
/// Table block size of the `bodies` column family (RocksDB's default, 4 KiB, elsewhere).
const BODY_TABLE_BLOCK_BYTES: usize = 16 << 10;

/// Why the store failed or refused.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// RocksDB reported an error.
    #[error("RocksDB: {0}")]
    Rocks(#[from] rocksdb::Error),
    /// The store holds another chain.
    #[error("the data directory holds chain {stored}, but the genesis file is for {given}")]
    GenesisMismatch {
        /// Genesis hash on disk.
        stored: BlockHash,
        /// Genesis hash of the given file.
        given: BlockHash,
    },
    /// The store is damaged.
    #[error("the store is damaged: {what}")]
    Corrupt {
        /// What is wrong.
        what: String,
    },
    /// A block that does not follow the head.
    #[error("block {height} does not follow the stored head {head}")]
    NotNext {
        /// Stored head height.
        head: u64,
        /// The block's height.
        height: u64,
    },
    /// Reading the protocol state failed.
    #[error(transparent)]
    State(#[from] StateError),
    /// A different block is already stored at this height.
    #[error("a different block is already stored at height {height}")]
    Conflict {
        /// The height.
        height: u64,
    },
}

impl From<StoreError> for StateError {
    fn from(e: StoreError) -> Self {
        match e {
            StoreError::State(s) => s,
            other => StateError {
                message: other.to_string(),
            },
        }
    }
}

fn tx_key(height: u64, index: u32) -> [u8; 12] {
    let mut k = [0u8; 12];
    k[..8].copy_from_slice(&height.to_be_bytes());
    k[8..].copy_from_slice(&index.to_be_bytes());
    k
}

fn staged_key(height: u64, hash: &BlockHash) -> [u8; 40] {
    let mut k = [0u8; 40];
    k[..8].copy_from_slice(&height.to_be_bytes());
    k[8..].copy_from_slice(&hash.0 .0);
    k
}

fn corrupt(what: impl Into<String>) -> StoreError {
    StoreError::Corrupt { what: what.into() }
}

fn decode<T: Canonical>(bytes: &[u8], what: &str) -> Result<T, StoreError> {
    T::decode(bytes).map_err(|e: DecodeError| corrupt(format!("{what} does not decode: {e}")))
}

/// The result of the start-up check.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IntegrityReport {
    /// Blocks checked.
    pub blocks: u64,
    /// The head.
    pub head: ChainHead,
}

/// The node's RocksDB store.
pub struct Store {
    db: DB,
    suite: CryptoSuite,
    genesis_hash: BlockHash,
    /// The committed head's height, kept beside the state's own record for readers that need
    /// it without a read (the consensus engine's block store).
    height: AtomicU64,
}

impl std::fmt::Debug for Store {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Store")
            .field("path", &self.db.path())
            .field("genesis", &self.genesis_hash)
            .finish()
    }
}

/// What one transaction adds to a block's write batch, roughly: its body and its state writes.
const BATCH_BYTES_PER_TX: usize = 1536;

impl Store {
    /// Opens (or creates) the store for `genesis` at `path`, and checks it.
    pub fn open(path: &Path, genesis: &Genesis) -> Result<(Self, IntegrityReport), StoreError> {
        let mut opts = Options::default();
        opts.create_if_missing(true);
        opts.create_missing_column_families(true);
        opts.set_compression_type(DBCompressionType::Lz4);
        opts.set_keep_log_file_num(4);
        // Bound the write-ahead log: past 64 MiB the column families it holds are flushed, so
        // the log does not keep a second copy of everything written since the last flush.
        opts.set_max_total_wal_size(64 << 20);
        // One block cache for every column family, and Bloom filters on every table: most point
        // reads of a block's checks are for keys that do not exist yet (a new transaction id, a
        // new file digest), which without a filter search every level of the tree.
        let cache = Cache::new_lru_cache(BLOCK_CACHE_BYTES);
        let cfs = ALL_CFS.iter().map(|name| {
            let mut table = BlockBasedOptions::default();
            table.set_block_cache(&cache);
            table.set_bloom_filter(10.0, false);
            // Each table's filter and index are held by its open reader, outside the block
            // cache — RocksDB's default, and the fastest point read: no cache lookup, no shard
            // mutex and no partition search before the filter answers. They cost about 1.3 bytes
            // a key of memory (some 100 MB at ten million attestations). Kept in the cache
            // instead, a whole-file filter outgrew a cache shard and was re-read from the file
            // on every read (2026-12-07); partitioned, the filter and index lookups were still
            // 15 % of a loaded node's CPU (BENCHMARKS.md).
            table.set_cache_index_and_filter_blocks(false);
            // Bodies are written in order and read a block's worth at a time: bigger table blocks
            // compress the similar transactions of a block together.
            if *name == CF_BODIES {
                table.set_block_size(BODY_TABLE_BLOCK_BYTES);
            }
            let mut o = Options::default();
            // A Bloom filter over each memtable's keys too, so a read of an absent key (most of
            // them) skips the memtables' skip lists as it skips the tables.
            o.set_memtable_whole_key_filtering(true);
            o.set_memtable_prefix_bloom_ratio(0.02);
            // LZ4 while data is young; the bottommost level — where nearly all of a ledger ends
            // up — with LZ4's high-compression mode: the same library and the same fast
            // decompression, fewer bytes at rest. Written once, read many times.
            o.set_compression_type(DBCompressionType::Lz4);
            o.set_bottommost_compression_type(DBCompressionType::Lz4hc);
            o.set_block_based_table_factory(&table);
            ColumnFamilyDescriptor::new(*name, o)
        });
        let db = DB::open_cf_descriptors(&opts, path, cfs)?;
        let store = Store {
            db,
            suite: genesis.suite,
            genesis_hash: genesis.hash(),
            height: AtomicU64::new(0),
        };
        match store.db.get_cf(store.cf(CF_META), GENESIS_KEY)? {
            Some(bytes) => {
                let stored: Genesis = decode(&bytes, "stored genesis")?;
                if stored.hash() != store.genesis_hash {
                    return Err(StoreError::GenesisMismatch {
                        stored: stored.hash(),
                        given: store.genesis_hash,
                    });
                }
            }
            None => store.initialise(genesis)?,
        }
        let report = store.check_integrity()?;
        store.height.store(report.head.height, Ordering::Release);
        Ok((store, report))
    }

    fn initialise(&self, genesis: &Genesis) -> Result<(), StoreError> {
        let mut batch = WriteBatch::default();
        batch.put_cf(self.cf(CF_META), GENESIS_KEY, genesis.encode());
        self.put_delta(&mut batch, &genesis_state(genesis));
        batch.put_cf(
            self.cf(CF_HASHES),
            self.genesis_hash.0 .0,
            0u64.to_be_bytes(),
        );
        self.write_synced(batch)
    }

    fn cf(&self, name: &str) -> &ColumnFamily {
        // Every column family is created in `open`; a missing one means the process is broken.
        self.db
            .cf_handle(name)
            .unwrap_or_else(|| panic!("column family {name} missing after open"))
    }

    fn write_synced(&self, batch: WriteBatch) -> Result<(), StoreError> {
        let mut wo = WriteOptions::default();
        wo.set_sync(true);
        self.db.write_opt(batch, &wo)?;
        Ok(())
    }

    fn put_delta(&self, batch: &mut WriteBatch, delta: &StateDelta) {
        let cf = self.cf(CF_STATE);
        for (k, v) in &delta.writes {
            match v {
                Some(v) => batch.put_cf(cf, k, v),
                None => batch.delete_cf(cf, k),
            }
        }
    }

    /// Flushes every column family's memtable and compacts it fully, so that the files hold only
    /// live data: what a data directory settles to at rest (RocksDB reclaims the same space by
    /// itself over time; `vault-node compact` does it at once, e.g. after a bulk migration).
    pub fn compact(&self) -> Result<(), StoreError> {
        for name in ALL_CFS {
            let cf = self.cf(name);
            self.db.flush_cf(cf)?;
            self.db.compact_range_cf(cf, None::<&[u8]>, None::<&[u8]>);
        }
        self.db.flush_wal(true)?;
        Ok(())
    }

    /// The crypto suite.
    pub fn suite(&self) -> CryptoSuite {
        self.suite
    }

    /// The genesis hash.
    pub fn genesis_hash(&self) -> BlockHash {
        self.genesis_hash
    }

    /// A consistent read-only view of the whole store as of now.
    pub fn snapshot(&self) -> Snapshot<'_> {
        Snapshot {
            store: self,
            snap: self.db.snapshot(),
        }
    }

    /// The head.
    pub fn head(&self) -> Result<ChainHead, StoreError> {
        Ok(state::head(&self.snapshot())?)
    }

    /// Commits a finalized block with its certificate and its outcome (from
    /// `vault_protocol::state::apply_block` on this store's state). Idempotent: committing the
    /// same block again is a no-op.
    pub fn commit(
        &self,
        block: &Block,
        certificate: Option<&[u8]>,
        outcome: &BlockOutcome,
    ) -> Result<(), StoreError> {
        let head = self.head()?;
        let height = block.header.height;
        if height <= head.height {
            let stored = self.header(height)?;
            return match stored {
                Some(h) if h.hash(self.suite) == block.header.hash(self.suite) => Ok(()),
                _ => Err(StoreError::Conflict { height }),
            };
        }
        if height != head.height + 1 {
            return Err(StoreError::NotNext {
                head: head.height,
                height,
            });
        }
        let key = height.to_be_bytes();
        // Sized up front for the block's bodies and state writes (about 1.5 KiB a transaction),
        // so that a 10,000-transaction batch is not grown by repeated reallocation and copying.
        let mut batch =
            WriteBatch::with_capacity_bytes(4096 + block.transactions.len() * BATCH_BYTES_PER_TX);
        batch.put_cf(self.cf(CF_HEADERS), key, block.header.encode());
        for (i, tx) in block.transactions.iter().enumerate() {
            batch.put_cf(self.cf(CF_BODIES), tx_key(height, i as u32), tx.encode());
        }
        if let Some(c) = certificate {
            batch.put_cf(self.cf(CF_CERTS), key, c);
        }
        batch.put_cf(self.cf(CF_HASHES), outcome.head.hash.0 .0, key);
        let hasher = state::log_hasher(self.suite);
        let mut frontier: Frontier = state::log_frontier(&self.snapshot())?;
        for leaf in &outcome.leaf_hashes {
            let nodes = frontier
                .append(&hasher, leaf.0)
                .map_err(|e| corrupt(format!("log append: {e}")))?;
            for n in nodes.iter().filter(|n| stored_log_level(n.level)) {
                batch.put_cf(self.cf(CF_LOG), n.key(), n.hash);
            }
        }
        self.put_delta(&mut batch, &outcome.delta);
        // The block leaves the consensus engine's staging area in the batch that commits it.
        for item in self.db.prefix_iterator_cf(self.cf(CF_STAGED), key) {
            let (k, _) = item?;
            if !k.starts_with(&key) {
                break;
            }
            batch.delete_cf(self.cf(CF_STAGED), k);
        }
        self.write_synced(batch)?;
        self.height.store(height, Ordering::Release);
        Ok(())
    }

    /// The committed head's height, without a read.
    pub fn height(&self) -> u64 {
        self.height.load(Ordering::Acquire)
    }

    /// Stages a finalized block the consensus engine stored ahead of the ledger (its own
    /// encoding), durable after the next [`Store::sync_staged`].
    pub fn put_staged(
        &self,
        height: u64,
        hash: &BlockHash,
        bytes: &[u8],
    ) -> Result<(), StoreError> {
        self.db
            .put_cf(self.cf(CF_STAGED), staged_key(height, hash), bytes)?;
        Ok(())
    }

    /// Makes every staged block durable (one fsync of the write-ahead log).
    pub fn sync_staged(&self) -> Result<(), StoreError> {
        self.db.flush_wal(true)?;
        Ok(())
    }

    /// A staged block's bytes, if it is still staged (not yet committed).
    pub fn staged(&self, height: u64, hash: &BlockHash) -> Result<Option<Vec<u8>>, StoreError> {
        Ok(self
            .db
            .get_cf(self.cf(CF_STAGED), staged_key(height, hash))?)
    }

    /// Every staged block's height and hash, lowest first.
    pub fn staged_index(&self) -> Result<Vec<(u64, BlockHash)>, StoreError> {
        let mut out = Vec::new();
        for item in self.db.iterator_cf(self.cf(CF_STAGED), IteratorMode::Start) {
            let (k, _) = item?;
            if k.len() != 40 {
                return Err(corrupt("a staged block's key is not 40 bytes"));
            }
            let mut h = [0u8; 8];
            h.copy_from_slice(&k[..8]);
            let mut d = [0u8; 32];
            d.copy_from_slice(&k[8..]);
            out.push((u64::from_be_bytes(h), BlockHash(Digest(d))));
        }
        Ok(out)
    }

    /// The header at `height` (0 has none: it is the genesis).
    pub fn header(&self, height: u64) -> Result<Option<BlockHeader>, StoreError> {
        self.db
            .get_cf(self.cf(CF_HEADERS), height.to_be_bytes())?
            .map(|b| decode(&b, "block header"))
            .transpose()
    }

    /// The block at `height`.
    pub fn block(&self, height: u64) -> Result<Option<Block>, StoreError> {
        let Some(header) = self.header(height)? else {
            return Ok(None);
        };
        let mut txs = Vec::with_capacity(header.tx_count as usize);
        let iter = self.db.iterator_cf(
            self.cf(CF_BODIES),
            IteratorMode::From(&tx_key(height, 0), Direction::Forward),
        );
        for item in iter {
            let (k, v) = item?;
            if !k.starts_with(&height.to_be_bytes()) {
                break;
            }
            txs.push(decode::<SignedTransaction>(&v, "stored transaction")?);
        }
        if txs.len() != header.tx_count as usize {
            return Err(corrupt(format!(
                "block {height} has {} stored transactions, its header says {}",
                txs.len(),
                header.tx_count
            )));
        }
        let transactions =
            BoundedVec::new(txs).map_err(|e| corrupt(format!("block {height} body: {e}")))?;
        Ok(Some(Block {
            header,
            transactions,
        }))
    }

    /// The height of a block, by hash.
    pub fn height_of(&self, hash: &BlockHash) -> Result<Option<u64>, StoreError> {
        self.db
            .get_cf(self.cf(CF_HASHES), hash.0 .0)?
            .map(|b| {
                let arr: [u8; 8] = b
                    .as_slice()
                    .try_into()
                    .map_err(|_| corrupt("height index entry is not 8 bytes"))?;
                Ok(u64::from_be_bytes(arr))
            })
            .transpose()
    }

    /// Stores the finalization certificate of the committed block at `height`, which arrived
    /// after the block was committed.
    pub fn put_certificate(&self, height: u64, certificate: &[u8]) -> Result<(), StoreError> {
        if self.header(height)?.is_none() {
            return Err(corrupt(format!(
                "a certificate for height {height}, where no block is stored"
            )));
        }
        let mut batch = WriteBatch::default();
        batch.put_cf(self.cf(CF_CERTS), height.to_be_bytes(), certificate);
        self.write_synced(batch)
    }

    /// The finalization certificate of the block at `height`, if it has its own (a block can be
    /// finalized only through a descendant's certificate).
    pub fn certificate(&self, height: u64) -> Result<Option<Vec<u8>>, StoreError> {
        Ok(self.db.get_cf(self.cf(CF_CERTS), height.to_be_bytes())?)
    }

    /// A committed transaction and where it sits.
    pub fn transaction(
        &self,
        id: &TxId,
    ) -> Result<Option<(SignedTransaction, TxLocation)>, StoreError> {
        let snap = self.snapshot();
        let Some(loc) = state::tx_location(&snap, id)? else {
            return Ok(None);
        };
        Ok(Some((self.transaction_at(&loc)?, loc)))
    }

    /// The committed transaction at a location the state gave (an attestation record's, say),
    /// without looking the location up again.
    pub fn transaction_at(&self, loc: &TxLocation) -> Result<SignedTransaction, StoreError> {
        let bytes = self
            .db
            .get_pinned_cf(self.cf(CF_BODIES), tx_key(loc.height, loc.index))?
            .ok_or_else(|| {
                corrupt(format!(
                    "no transaction is stored at block {} index {}",
                    loc.height, loc.index
                ))
            })?;
        decode(&bytes, "stored transaction")
    }

    /// Where a committed transaction sits (`None` if not committed or unreadable).
    pub fn snapshot_tx_location(&self, id: &TxId) -> Option<TxLocation> {
        state::tx_location(&self.snapshot(), id).ok().flatten()
    }

    /// The inclusion proof of log leaf `index` in the log of `size` leaves.
    pub fn inclusion_proof(&self, index: u64, size: u64) -> Result<InclusionProof, StoreError> {
        let hasher = state::log_hasher(self.suite);
        merkle::inclusion_proof(&hasher, &LogNodes::new(self), index, size)
            .map_err(|e| corrupt(format!("inclusion proof: {e:?}")))
    }

    /// The RFC 9162 consistency proof from the log of `old` leaves to the log of `new` leaves.
    pub fn consistency_proof(&self, old: u64, new: u64) -> Result<ConsistencyProof, StoreError> {
        let hasher = state::log_hasher(self.suite);
        merkle::consistency_proof(&hasher, &LogNodes::new(self), old, new)
            .map_err(|e| corrupt(format!("consistency proof {old}..{new}: {e:?}")))
    }

    /// The log root at `size` leaves, recomputed from the stored nodes.
    pub fn log_root_at(&self, size: u64) -> Result<Hash, StoreError> {
        let hasher = state::log_hasher(self.suite);
        merkle::root_at(&hasher, &LogNodes::new(self), size)
            .map_err(|e| corrupt(format!("log root at {size}: {e:?}")))
    }

    /// Checks the stored chain: every header chains to its parent, the hash index agrees, the
    /// head matches the newest block, and the log recomputes to the head's root.
    pub fn check_integrity(&self) -> Result<IntegrityReport, StoreError> {
        let head = self.head()?;
        let mut parent = self.genesis_hash;
        let mut expected_height = 1u64;
        let mut last: Option<BlockHeader> = None;
        for item in self
            .db
            .iterator_cf(self.cf(CF_HEADERS), IteratorMode::Start)
        {
            let (k, v) = item?;
            let key: [u8; 8] = k
                .as_ref()
                .try_into()
                .map_err(|_| corrupt("a header key is not 8 bytes"))?;
            let height = u64::from_be_bytes(key);
            if height != expected_height {
                return Err(corrupt(format!(
                    "block {expected_height} is missing (next stored header is {height})"
                )));
            }
            let header: BlockHeader = decode(&v, "block header")?;
            if header.height != height {
                return Err(corrupt(format!(
                    "header stored at {height} says height {}",
                    header.height
                )));
            }
            if header.parent != parent {
                return Err(corrupt(format!(
                    "hash chain broken at block {height}: parent {} but block {} hashes to {}",
                    header.parent,
                    height - 1,
                    parent
                )));
            }
            parent = header.hash(self.suite);
            if self.height_of(&parent)? != Some(height) {
                return Err(corrupt(format!("hash index wrong for block {height}")));
            }
            expected_height += 1;
            last = Some(header);
        }
        let blocks = expected_height - 1;
        if blocks != head.height || parent != head.hash {
            return Err(corrupt(format!(
                "state head is block {} ({}) but the newest stored block is {blocks} ({parent})",
                head.height, head.hash
            )));
        }
        if let Some(h) = &last {
            if h.log_size != head.log_size || h.log_root != head.log_root {
                return Err(corrupt("state head's log does not match the newest header"));
            }
        }
        let root = self.log_root_at(head.log_size)?;
        if Digest(root) != head.log_root {
            return Err(corrupt(format!(
                "Merkle log recomputes to {} at size {}, head says {}",
                Digest(root),
                head.log_size,
                head.log_root
            )));
        }
        let frontier = state::log_frontier(&self.snapshot())?;
        let hasher = state::log_hasher(self.suite);
        if frontier.size() != head.log_size || Digest(frontier.root_with(&hasher)) != head.log_root
        {
            return Err(corrupt("log frontier in the state does not match the head"));
        }
        Ok(IntegrityReport { blocks, head })
    }

    /// Approximate bytes on disk (SST and blob files).
    pub fn disk_usage(&self) -> u64 {
        ALL_CFS
            .iter()
            .filter_map(|name| self.property(name, "rocksdb.total-sst-files-size"))
            .sum()
    }

    fn property(&self, cf: &str, name: &str) -> Option<u64> {
        self.db
            .property_int_value_cf(self.cf(cf), name)
            .ok()
            .flatten()
    }

    /// Where the bytes are: each column family's table files on disk, and — the state mixing
    /// every table — the raw (uncompressed) key and value bytes of each state table, by its tag.
    pub fn usage(&self) -> Result<Usage, StoreError> {
        let mut families = Vec::new();
        for name in ALL_CFS {
            let bytes = self
                .property(name, "rocksdb.total-sst-files-size")
                .unwrap_or(0);
            let keys = self
                .property(name, "rocksdb.estimate-num-keys")
                .unwrap_or(0);
            families.push((name, bytes, keys));
        }
        let mut tables: std::collections::BTreeMap<u8, (u64, u64)> = Default::default();
        for item in self.db.iterator_cf(self.cf(CF_STATE), IteratorMode::Start) {
            let (k, v) = item?;
            let e = tables.entry(k.first().copied().unwrap_or(0)).or_default();
            e.0 += 1;
            e.1 += (k.len() + v.len()) as u64;
        }
        Ok(Usage {
            families,
            state_tables: tables.into_iter().map(|(t, (n, b))| (t, n, b)).collect(),
        })
    }

    /// Flushes memtables to disk (for measuring disk use).
    pub fn flush(&self) -> Result<(), StoreError> {
        for name in ALL_CFS {
            self.db.flush_cf(self.cf(name))?;
        }
        Ok(())
    }
}

/// Where a store's bytes are ([`Store::usage`]).
#[derive(Debug, Clone)]
pub struct Usage {
    /// Column family, bytes of its table files, estimated keys.
    pub families: Vec<(&'static str, u64, u64)>,
    /// State table tag, entries, raw key and value bytes.
    pub state_tables: Vec<(u8, u64, u64)>,
}

impl std::fmt::Display for Usage {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        for (name, bytes, keys) in &self.families {
            writeln!(f, "  {name:<8} {bytes:>14} bytes on disk  ~{keys} keys")?;
        }
        for (tag, n, bytes) in &self.state_tables {
            writeln!(
                f,
                "  state table 0x{tag:02x}: {n:>10} entries, {bytes:>14} raw bytes"
            )?;
        }
        Ok(())
    }
}

/// Levels of the Merkle log whose nodes are not stored but recomputed from the level below when
/// asked for: a node of level 3 is at most eight stored leaf hashes away. Together they are seven
/// eighths of the log's interior nodes, so the log keeps about 1.1 hashes per leaf instead of 2,
/// for at most fourteen extra hashes per proof.
const RECOMPUTED_LOG_LEVELS: std::ops::RangeInclusive<u8> = 1..=3;

fn stored_log_level(level: u8) -> bool {
    !RECOMPUTED_LOG_LEVELS.contains(&level)
}

/// The log's complete nodes as the proofs read them: stored ones from `log`, the others
/// recomputed from their children.
struct LogNodes<'a, H> {
    store: &'a Store,
    hasher: H,
}

impl<'a> LogNodes<'a, ()> {
    fn new(store: &'a Store) -> LogNodes<'a, impl LogHasher> {
        LogNodes {
            store,
            hasher: state::log_hasher(store.suite),
        }
    }
}

impl<H: LogHasher> LogNodes<'_, H> {
    fn stored(&self, level: u8, index: u64) -> Result<Option<Hash>, StoreError> {
        match self
            .store
            .db
            .get_pinned_cf(self.store.cf(CF_LOG), merkle::node_key(level, index))?
        {
            Some(v) => {
                let h: Hash = v
                    .as_ref()
                    .try_into()
                    .map_err(|_| corrupt("a log node is not 32 bytes"))?;
                Ok(Some(h))
            }
            None => Ok(None),
        }
    }
}

impl<H: LogHasher> SubtreeStore for LogNodes<'_, H> {
    type Error = StoreError;
    fn node(&self, level: u8, index: u64) -> Result<Option<Hash>, StoreError> {
        if stored_log_level(level) {
            return self.stored(level, index);
        }
        // Complete only if both children are.
        let Some(left) = self.node(level - 1, 2 * index)? else {
            return Ok(None);
        };
        let Some(right) = self.node(level - 1, 2 * index + 1)? else {
            return Ok(None);
        };
        Ok(Some(self.hasher.hash_children(&left, &right)))
    }
}

/// A consistent view of the store at one moment; it implements the protocol's [`StateView`].
pub struct Snapshot<'a> {
    store: &'a Store,
    snap: SnapshotWithThreadMode<'a, DB>,
}

impl StateView for Snapshot<'_> {
    fn get(&self, key: &[u8]) -> Result<Option<Vec<u8>>, StateError> {
        self.snap
            .get_cf(self.store.cf(CF_STATE), key)
            .map_err(|e| StateError {
                message: e.to_string(),
            })
    }

    fn scan_prefix(&self, prefix: &[u8]) -> Result<state::Entries, StateError> {
        let mut out = Vec::new();
        let iter = self.snap.iterator_cf(
            self.store.cf(CF_STATE),
            IteratorMode::From(prefix, Direction::Forward),
        );
        for item in iter {
            let (k, v) = item.map_err(|e| StateError {
                message: e.to_string(),
            })?;
            if !k.starts_with(prefix) {
                break;
            }
            out.push((k.to_vec(), v.to_vec()));
        }
        Ok(out)
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use vault_protocol::ids::Timestamp;
    use vault_protocol::ledger::{MemoryLedger, TestNetwork};
    use vault_protocol::merkle::LogHasher;
    use vault_protocol::tx::{Enrolment, TxBody};

    /// `n` blocks of one enrolment each, made by samr on a memory ledger of `net`.
    pub(crate) fn enrol_blocks(net: &TestNetwork, n: usize) -> Vec<Block> {
        let mut ledger = MemoryLedger::new(net.genesis.clone()).unwrap();
        let samr = net.department("samr");
        let mut blocks = Vec::new();
        for i in 0..n {
            let t = net.genesis.genesis_time.plus(1_000 * (i as u64 + 1));
            let uscc = vault_protocol::ledger::test_uscc(i as u32);
            let key = vault_protocol::ledger::test_key(&format!("e{i}"), "enterprise");
            let tx = net
                .tx(
                    t,
                    TxBody::EnrolEnterprise(Enrolment {
                        department: samr.id.clone(),
                        enterprise: uscc,
                        key: key.public(),
                    }),
                )
                .sign_one(&samr.signing);
            let built = ledger.propose_and_commit(&samr.id, t, vec![tx]).unwrap();
            blocks.push(built.block);
        }
        blocks
    }

    #[test]
    fn commits_survive_reopen_and_are_idempotent() {
        let dir = tempfile::tempdir().unwrap();
        let net = TestNetwork::new(&["samr", "tax"]);
        let blocks = enrol_blocks(&net, 5);
        {
            let (store, report) = Store::open(dir.path(), &net.genesis).unwrap();
            assert_eq!(report.blocks, 0);
            for b in &blocks {
                let outcome = state::apply_block(&store.snapshot(), b).unwrap();
                store.commit(b, Some(&b"cert"[..]), &outcome).unwrap();
                // Idempotent by height.
                store.commit(b, Some(&b"cert"[..]), &outcome).unwrap();
            }
        }
        let (store, report) = Store::open(dir.path(), &net.genesis).unwrap();
        assert_eq!(report.blocks, 5);
        assert_eq!(report.head.hash, blocks[4].header.hash(store.suite()));
        assert_eq!(store.block(3).unwrap().unwrap(), blocks[2]);
        assert_eq!(store.certificate(3).unwrap().unwrap(), b"cert");
        let id = blocks[1].transactions[0].id(store.suite());
        let (tx, loc) = store.transaction(&id).unwrap().unwrap();
        assert_eq!(tx, blocks[1].transactions[0]);
        assert_eq!(loc.height, 2);
        let proof = store
            .inclusion_proof(loc.log_index, report.head.log_size)
            .unwrap();
        let hasher = state::log_hasher(store.suite());
        let leaf = hasher.hash_leaf(&tx.leaf_data());
        merkle::verify_inclusion(&hasher, &leaf, &proof, &report.head.log_root.0).unwrap();
    }

    #[test]
    fn absent_keys_are_answered_by_filters_without_touching_the_cache() {
        use rocksdb::perf::{set_perf_stats, PerfContext, PerfMetric, PerfStatsLevel};
        let dir = tempfile::tempdir().unwrap();
        let net = TestNetwork::new(&["samr", "tax"]);
        let (store, _) = Store::open(dir.path(), &net.genesis).unwrap();
        let mut blocks = enrol_blocks(&net, 21);
        let next = blocks.pop().unwrap();
        for b in &blocks {
            let outcome = state::apply_block(&store.snapshot(), b).unwrap();
            store.commit(b, None, &outcome).unwrap();
        }
        store.flush().unwrap();
        set_perf_stats(PerfStatsLevel::EnableCount);
        let mut perf = PerfContext::default();
        let absent = [0x42u8; 33];
        // In the tables: the filter says no, and neither it nor the index is a cache lookup.
        perf.reset();
        assert!(store.snapshot().get(&absent).unwrap().is_none());
        let report = perf.report(true);
        assert!(perf.metric(PerfMetric::BloomSstMissCount) >= 1, "{report}");
        assert_eq!(perf.metric(PerfMetric::BlockCacheHitCount), 0, "{report}");
        assert_eq!(perf.metric(PerfMetric::BlockReadCount), 0, "{report}");
        // In a memtable (one more block written, not flushed): its own filter says no.
        let outcome = state::apply_block(&store.snapshot(), &next).unwrap();
        store.commit(&next, None, &outcome).unwrap();
        perf.reset();
        assert!(store.snapshot().get(&absent).unwrap().is_none());
        assert!(
            perf.metric(PerfMetric::BloomMemtableMissCount) >= 1,
            "{}",
            perf.report(true)
        );
        set_perf_stats(PerfStatsLevel::Disable);
    }

    #[test]
    fn usage_names_every_family_and_counts_the_state_tables() {
        let dir = tempfile::tempdir().unwrap();
        let net = TestNetwork::new(&["samr"]);
        let (store, _) = Store::open(dir.path(), &net.genesis).unwrap();
        for b in &enrol_blocks(&net, 3) {
            let o = state::apply_block(&store.snapshot(), b).unwrap();
            store.commit(b, None, &o).unwrap();
        }
        store.compact().unwrap();
        let usage = store.usage().unwrap();
        let names: Vec<_> = usage.families.iter().map(|f| f.0).collect();
        assert_eq!(names, ALL_CFS);
        assert!(usage.families.iter().any(|f| f.0 == CF_BODIES && f.1 > 0));
        // Three enrolled enterprises, one record each.
        assert!(usage.state_tables.iter().any(|t| t.0 == 0x20 && t.1 == 3));
        assert!(usage.to_string().contains("state table 0x20"));
    }

    #[test]
    fn refuses_conflicting_and_out_of_order_blocks() {
        let dir = tempfile::tempdir().unwrap();
        let net = TestNetwork::new(&["samr"]);
        let blocks = enrol_blocks(&net, 3);
        let (store, _) = Store::open(dir.path(), &net.genesis).unwrap();
        let o1 = state::apply_block(&store.snapshot(), &blocks[0]).unwrap();
        let mut ledger = MemoryLedger::new(net.genesis.clone()).unwrap();
        ledger.commit(&blocks[0]).unwrap();
        let o2 = ledger.commit(&blocks[1]).unwrap();
        assert!(matches!(
            store.commit(&blocks[1], Some(&b"c"[..]), &o2),
            Err(StoreError::NotNext { head: 0, height: 2 })
        ));
        store.commit(&blocks[0], Some(&b"c"[..]), &o1).unwrap();
        let mut other = blocks[0].clone();
        other.header.time = Timestamp(other.header.time.0 + 1);
        assert!(matches!(
            store.commit(&other, Some(&b"c"[..]), &o1),
            Err(StoreError::Conflict { height: 1 })
        ));
    }

    #[test]
    fn refuses_another_chain_and_a_damaged_store() {
        let dir = tempfile::tempdir().unwrap();
        let net = TestNetwork::new(&["samr"]);
        let blocks = enrol_blocks(&net, 2);
        {
            let (store, _) = Store::open(dir.path(), &net.genesis).unwrap();
            for b in &blocks {
                let o = state::apply_block(&store.snapshot(), b).unwrap();
                store.commit(b, Some(&b"c"[..]), &o).unwrap();
            }
        }
        let other = TestNetwork::new(&["tax"]);
        assert!(matches!(
            Store::open(dir.path(), &other.genesis),
            Err(StoreError::GenesisMismatch { .. })
        ));
        {
            // Damage: remove a leaf hash the root at size 2 is computed from.
            let (store, _) = Store::open(dir.path(), &net.genesis).unwrap();
            store
                .db
                .delete_cf(store.cf(CF_LOG), merkle::node_key(0, 1))
                .unwrap();
        }
        let err = Store::open(dir.path(), &net.genesis).unwrap_err();
        assert!(err.to_string().contains("damaged"), "{err}");
    }

    #[test]
    fn refuses_a_broken_hash_chain() {
        let dir = tempfile::tempdir().unwrap();
        let net = TestNetwork::new(&["samr"]);
        let blocks = enrol_blocks(&net, 3);
        {
            let (store, _) = Store::open(dir.path(), &net.genesis).unwrap();
            for b in &blocks {
                let o = state::apply_block(&store.snapshot(), b).unwrap();
                store.commit(b, Some(&b"c"[..]), &o).unwrap();
            }
            let mut h = blocks[1].header.clone();
            h.parent = BlockHash(Digest([7; 32]));
            store
                .db
                .put_cf(store.cf(CF_HEADERS), 2u64.to_be_bytes(), h.encode())
                .unwrap();
        }
        let err = Store::open(dir.path(), &net.genesis).unwrap_err();
        assert!(
            err.to_string().contains("hash chain broken at block 2"),
            "{err}"
        );
    }
}
