//! The consensus engine's store of finalized blocks, kept in the ledger itself.
//!
//! Marshal (commonware's block delivery and backfill) needs a durable store of every finalized
//! block, by height and by digest: it stores a block there before handing it to the application,
//! serves peers' backfill from it, and redelivers from it after a restart. Its own archive would
//! be a second copy of every block body, beside the ledger's. [`LedgerBlocks`] is that store
//! without the copy:
//!
//! - a block at or below the ledger's head is read from the ledger (`headers` and `bodies`);
//! - a block marshal stored that the ledger has not committed yet is *staged* — in the ledger's
//!   `staged` column family, and in memory while it waits — and the batch that commits it to the
//!   ledger deletes it there ([`Store::commit`]), so it is never held twice for longer than that;
//! - the set of stored heights is the genesis and the ledger's heights at start-up, and every
//!   height marshal stored since: a block, once stored, stays readable (staged, then committed).

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;

use commonware_codec::{Decode as _, Encode as _};
use commonware_consensus::marshal::store::Blocks;
use commonware_consensus::types::Height;
use commonware_consensus::Heightable as _;
use commonware_cryptography::sha256::Digest as CwDigest;
use commonware_cryptography::Digestible as _;
use commonware_storage::archive::Identifier;
use commonware_storage::rmap::RMap;

use crate::consensus::{cw_digest, our_hash, BlockCodec, ChainBlock};
use crate::store::{Store, StoreError};

/// Staged blocks kept decoded in memory; past this many the rest are read back from RocksDB.
const IN_MEMORY: usize = 64;

/// Why the block store failed.
#[derive(Debug, thiserror::Error)]
pub enum BlocksError {
    /// The ledger failed.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// A staged block does not decode.
    #[error("the staged block at height {height} does not decode: {message}")]
    Decode {
        /// Its height.
        height: u64,
        /// The codec's complaint.
        message: String,
    },
}

/// One staged block: its digest, and the block while it is held in memory.
struct Staged {
    digest: CwDigest,
    block: Option<Arc<ChainBlock>>,
}

/// Marshal's store of finalized blocks over the ledger ([module docs](self)).
pub struct LedgerBlocks {
    store: Arc<Store>,
    codec: BlockCodec,
    genesis: Arc<ChainBlock>,
    /// Heights stored: the genesis, the ledger's, and every height staged since start-up.
    heights: RMap,
    /// Staged blocks not yet seen committed, by height.
    staged: BTreeMap<u64, Staged>,
    /// The same, by digest.
    by_digest: HashMap<CwDigest, u64>,
}

impl LedgerBlocks {
    /// Opens the store over `store`'s ledger and its staged blocks.
    pub fn open(store: Arc<Store>, codec: BlockCodec) -> Result<Self, BlocksError> {
        let genesis = Arc::new(ChainBlock::genesis(store.genesis_hash(), store.suite()));
        let mut heights = RMap::new();
        for h in 0..=store.height() {
            heights.insert(h);
        }
        let mut this = Self {
            store,
            codec,
            genesis,
            heights,
            staged: BTreeMap::new(),
            by_digest: HashMap::new(),
        };
        for (height, hash) in this.store.staged_index()? {
            if height > this.store.height() {
                this.heights.insert(height);
                this.staged.insert(
                    height,
                    Staged {
                        digest: cw_digest(&hash),
                        block: None,
                    },
                );
                this.by_digest.insert(cw_digest(&hash), height);
            }
        }
        Ok(this)
    }

    /// Forgets staged blocks the ledger has committed since (their bytes left RocksDB's staging
    /// area in the commit's own batch).
    fn forget_committed(&mut self) {
        let head = self.store.height();
        while let Some(entry) = self.staged.first_entry() {
            if *entry.key() > head {
                break;
            }
            let staged = entry.remove();
            self.by_digest.remove(&staged.digest);
        }
    }

    /// The committed block at `height`, from the ledger.
    fn committed(&self, height: u64) -> Result<Option<Arc<ChainBlock>>, BlocksError> {
        if height == 0 {
            return Ok(Some(self.genesis.clone()));
        }
        Ok(self
            .store
            .block(height)?
            .map(|b| Arc::new(ChainBlock::new(b, self.store.suite()))))
    }

    fn by_height(&self, height: u64) -> Result<Option<Arc<ChainBlock>>, BlocksError> {
        if height <= self.store.height() {
            return self.committed(height);
        }
        let Some(staged) = self.staged.get(&height) else {
            return Ok(None);
        };
        if let Some(b) = &staged.block {
            return Ok(Some(b.clone()));
        }
        match self.store.staged(height, &our_hash(&staged.digest))? {
            Some(bytes) => ChainBlock::decode_cfg(bytes::Bytes::from(bytes), &self.codec)
                .map(|b| Some(Arc::new(b)))
                .map_err(|e| BlocksError::Decode {
                    height,
                    message: e.to_string(),
                }),
            // Committed between the two reads.
            None => self.committed(height),
        }
    }

    fn by_digest(&self, digest: &CwDigest) -> Result<Option<Arc<ChainBlock>>, BlocksError> {
        if let Some(height) = self.by_digest.get(digest) {
            return self.by_height(*height);
        }
        match self.store.height_of(&our_hash(digest))? {
            Some(height) => Ok(self.committed(height)?.filter(|b| b.digest() == *digest)),
            None => Ok(None),
        }
    }
}

impl Blocks for LedgerBlocks {
    type Block = Arc<ChainBlock>;
    type Error = BlocksError;

    async fn put(mut self, digest: CwDigest, block: &Arc<ChainBlock>) -> Result<Self, BlocksError> {
        self.forget_committed();
        let height = block.height().get();
        if height == 0 || height <= self.store.height() || self.staged.contains_key(&height) {
            // Stored already: overwrites are ignored.
            return Ok(self);
        }
        self.store
            .put_staged(height, &our_hash(&digest), &block.encode())?;
        let in_memory = self.staged.values().filter(|s| s.block.is_some()).count();
        self.staged.insert(
            height,
            Staged {
                digest,
                block: (in_memory < IN_MEMORY).then(|| block.clone()),
            },
        );
        self.by_digest.insert(digest, height);
        self.heights.insert(height);
        Ok(self)
    }

    async fn sync(self) -> Result<Self, BlocksError> {
        self.store.sync_staged()?;
        Ok(self)
    }

    async fn get(
        &self,
        id: Identifier<'_, CwDigest>,
    ) -> Result<Option<Arc<ChainBlock>>, BlocksError> {
        match id {
            Identifier::Index(height) => self.by_height(height),
            Identifier::Key(digest) => self.by_digest(digest),
        }
    }

    async fn prune(self, _min: Height) -> Result<Self, BlocksError> {
        // The ledger keeps every block: a department's history is never pruned.
        Ok(self)
    }

    fn missing_items(&self, start: Height, max: usize) -> Vec<Height> {
        self.heights
            .missing_items(start.get(), max)
            .into_iter()
            .map(Height::new)
            .collect()
    }

    fn next_gap(&self, value: Height) -> (Option<Height>, Option<Height>) {
        let (end, next) = self.heights.next_gap(value.get());
        (end.map(Height::new), next.map(Height::new))
    }

    fn last_index(&self) -> Option<Height> {
        self.heights.last_index().map(Height::new)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::consensus::MAX_BLOCK_BYTES;
    use crate::store::tests::enrol_blocks;
    use futures::executor::block_on;
    use vault_protocol::ledger::TestNetwork;
    use vault_protocol::state;

    fn open(dir: &std::path::Path, net: &TestNetwork) -> (Arc<Store>, LedgerBlocks) {
        let (store, _) = Store::open(dir, &net.genesis).unwrap();
        let store = Arc::new(store);
        let codec = BlockCodec {
            max_bytes: MAX_BLOCK_BYTES,
            suite: store.suite(),
        };
        let blocks = LedgerBlocks::open(store.clone(), codec).unwrap();
        (store, blocks)
    }

    fn chain_block(store: &Store, b: &vault_protocol::block::Block) -> Arc<ChainBlock> {
        Arc::new(ChainBlock::new(b.clone(), store.suite()))
    }

    fn staged_rows(store: &Store) -> Vec<u64> {
        store
            .staged_index()
            .unwrap()
            .into_iter()
            .map(|(h, _)| h)
            .collect()
    }

    #[test]
    fn a_staged_block_is_read_back_then_leaves_staging_when_the_ledger_commits_it() {
        let dir = tempfile::tempdir().unwrap();
        let net = TestNetwork::new(&["samr", "tax"]);
        let blocks = enrol_blocks(&net, 4);
        let (store, mut lb) = open(dir.path(), &net);
        // The genesis is stored from the start.
        assert_eq!(lb.last_index(), Some(Height::new(0)));
        let g = block_on(lb.get(Identifier::Index(0))).unwrap().unwrap();
        assert_eq!(g.hash(), store.genesis_hash());

        // Marshal stores blocks 1 and 3 (3 arrived first; 2 is a gap to backfill).
        for i in [0, 2] {
            let cb = chain_block(&store, &blocks[i]);
            lb = block_on(lb.put(cb.digest(), &cb)).unwrap();
        }
        lb = block_on(lb.sync()).unwrap();
        assert_eq!(staged_rows(&store), vec![1, 3]);
        assert_eq!(lb.last_index(), Some(Height::new(3)));
        assert_eq!(
            lb.next_gap(Height::new(1)),
            (Some(Height::new(1)), Some(Height::new(3)))
        );
        assert_eq!(lb.missing_items(Height::new(0), 10), vec![Height::new(2)]);
        let three = chain_block(&store, &blocks[2]);
        let got = block_on(lb.get(Identifier::Key(&three.digest())))
            .unwrap()
            .unwrap();
        assert_eq!(got.encode(), three.encode());

        // The ledger commits block 1: its staged copy goes in the same batch, and it is read
        // from the ledger with the same digest and bytes.
        let o = state::apply_block(&store.snapshot(), &blocks[0]).unwrap();
        store.commit(&blocks[0], None, &o).unwrap();
        assert_eq!(staged_rows(&store), vec![3]);
        let one = chain_block(&store, &blocks[0]);
        for id in [Identifier::Index(1), Identifier::Key(&one.digest())] {
            let got = block_on(lb.get(id)).unwrap().unwrap();
            assert_eq!(got.digest(), one.digest());
            assert_eq!(got.encode(), one.encode());
        }
        // Storing a committed or staged height again is ignored.
        lb = block_on(lb.put(one.digest(), &one)).unwrap();
        lb = block_on(lb.put(three.digest(), &three)).unwrap();
        assert_eq!(staged_rows(&store), vec![3]);
        assert!(block_on(lb.get(Identifier::Index(2))).unwrap().is_none());
        drop(lb);
        drop(store);

        // After a restart: the ledger's heights and the staged block 3, read from RocksDB.
        let (store, lb) = open(dir.path(), &net);
        assert_eq!(lb.missing_items(Height::new(0), 10), vec![Height::new(2)]);
        assert!(lb.staged.values().all(|s| s.block.is_none()));
        let got = block_on(lb.get(Identifier::Index(3))).unwrap().unwrap();
        assert_eq!(got.encode(), three.encode());
        let got = block_on(lb.get(Identifier::Key(&three.digest())))
            .unwrap()
            .unwrap();
        assert_eq!(got.digest(), three.digest());
        // An unknown digest is no block.
        let unknown = CwDigest([9; 32]);
        assert!(block_on(lb.get(Identifier::Key(&unknown)))
            .unwrap()
            .is_none());

        // Committing 2 and 3 empties the staging area; every height reads from the ledger.
        for b in &blocks[1..3] {
            let o = state::apply_block(&store.snapshot(), b).unwrap();
            store.commit(b, None, &o).unwrap();
        }
        assert!(staged_rows(&store).is_empty());
        let got = block_on(lb.get(Identifier::Index(3))).unwrap().unwrap();
        assert_eq!(got.encode(), three.encode());
    }
}
