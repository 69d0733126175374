//! Blocks: a header that chains to its parent and commits to the log and the state, and the
//! transactions in commit order.

use borsh::{BorshDeserialize, BorshSerialize};
use serde::{Deserialize, Serialize};

use crate::crypto::{CryptoSuite, Digest, Domain};
use crate::encoding::{BoundedVec, Canonical};
use crate::ids::{BlockHash, DepartmentId, Timestamp, TxId};
use crate::tx::SignedTransaction;

/// The most transactions a block can hold on the wire (the genesis may set a lower limit).
pub const MAX_BLOCK_TRANSACTIONS: usize = 20_000;

/// A block header.
#[derive(Debug, Clone, PartialEq, Eq, BorshSerialize, BorshDeserialize, Serialize, Deserialize)]
pub struct BlockHeader {
    /// Height: 1 for the first block after the genesis.
    pub height: u64,
    /// The parent block's hash (the genesis hash for height 1): the hash chain.
    pub parent: BlockHash,
    /// The proposer's time; strictly increasing along the chain.
    pub time: Timestamp,
    /// The proposing department.
    pub proposer: DepartmentId,
    /// How many transactions the block holds.
    pub tx_count: u32,
    /// Commits to the block's transaction ids, in order.
    pub txs_digest: Digest,
    /// The size of the ledger's Merkle log after this block.
    pub log_size: u64,
    /// The root of the ledger's Merkle log after this block (RFC 9162).
    pub log_root: Digest,
    /// The commitment to the ledger state after this block.
    pub state_root: Digest,
    /// The root of the status tree after this block ([`crate::status`]): every attestation's
    /// current status, and the governance state.
    pub status_root: Digest,
}

impl Canonical for BlockHeader {
    const MAX_ENCODED_LEN: usize = 1024;
}

impl BlockHeader {
    /// The block's hash.
    pub fn hash(&self, suite: CryptoSuite) -> BlockHash {
        BlockHash(suite.hash(Domain::Block, &[&self.encode()]))
    }
}

/// A block.
#[derive(Debug, Clone, PartialEq, Eq, BorshSerialize, BorshDeserialize, Serialize, Deserialize)]
pub struct Block {
    /// The header.
    pub header: BlockHeader,
    /// The transactions, in commit order.
    pub transactions: BoundedVec<SignedTransaction, MAX_BLOCK_TRANSACTIONS>,
}

impl Canonical for Block {
    const MAX_ENCODED_LEN: usize = 32 * 1024 * 1024;
}

/// The digest committing to a block's transaction ids, in order.
pub fn txs_digest(suite: CryptoSuite, ids: &[TxId]) -> Digest {
    let parts: Vec<&[u8]> = ids.iter().map(|id| id.0 .0.as_slice()).collect();
    suite.hash(Domain::BlockTransactions, &parts)
}
