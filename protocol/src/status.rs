//! The status tree: the part of the state commitment a verifier can ask questions of.
//!
//! A Jellyfish Merkle tree (the `jmt` crate, Penumbra's maintained fork of Diem's tree) maps
//! each attestation's id to a [`StatusLeaf`] — its position in the log, its current status, its
//! last status change and its successor — and one fixed key to the governance state. Each block
//! header carries the tree's root (`status_root`), so a proof against a finalized header says what
//! the status *is* at that block: a later suspension or revocation would have changed the leaf,
//! and so the root. A node cannot hide a status change without forging the header, which the
//! validators' finalization certificate rules out.
//!
//! The tree's nodes live in the state itself (table `0x60`), written in the same atomic delta as
//! the block they belong to; nodes a block makes stale are deleted in that delta, so the state
//! holds exactly the tree at the head. Leaf values are not stored twice: the reader derives them
//! from the attestation records.
//!
//! Hashing is the tree's own (SHA-256): a leaf is `SHA-256("JMT::LeafNode" ‖ key ‖ SHA-256(value))`,
//! an inner node `SHA-256("JMT::IntrnalNode" ‖ left ‖ right)`, an empty subtree the 32 ASCII bytes
//! `SPARSE_MERKLE_PLACEHOLDER_HASH__`; keys are read most significant bit first. A
//! [`StatusProof`] lists the sibling hashes from the leaf up, with the empty ones as a bitmap.

use borsh::{BorshDeserialize, BorshSerialize};
use jmt::storage::{LeafNode, Node, NodeKey, TreeReader};
use jmt::{JellyfishMerkleTree, KeyHash, OwnedValue, Version};
use serde::{Deserialize, Serialize};
use sha2::{Digest as _, Sha256};

use crate::crypto::{CryptoSuite, Digest, Domain};
use crate::encoding::{BoundedVec, Canonical};
use crate::ids::{AttestationId, Timestamp, TxId};
use crate::state::{self, AttestationRecord, StateView, Status, StoreError};
use crate::tx::StatusAction;

/// State writes (`None` deletes).
pub type Writes = Vec<(Vec<u8>, Option<Vec<u8>>)>;

/// The state table holding the tree's nodes.
pub const NODE_TABLE: u8 = 0x60;
/// A leaf's hash prefix.
pub const LEAF_PREFIX: &[u8] = b"JMT::LeafNode";
/// An inner node's hash prefix.
pub const INTERNAL_PREFIX: &[u8] = b"JMT::IntrnalNode";
/// The hash of an empty subtree.
pub const EMPTY_SUBTREE: [u8; 32] = *b"SPARSE_MERKLE_PLACEHOLDER_HASH__";
/// Most levels a key can have.
pub const MAX_DEPTH: usize = 256;

/// What the tree says of one attestation.
#[derive(Debug, Clone, PartialEq, Eq, BorshSerialize, BorshDeserialize, Serialize, Deserialize)]
pub struct StatusLeaf {
    /// Index of the issuing transaction's leaf in the Merkle log.
    pub log_index: u64,
    /// Block time of issue.
    pub issued_at: Timestamp,
    /// Block height of issue.
    pub issued_height: u64,
    /// Current status.
    pub status: Status,
    /// How many status changes it has had.
    pub changes: u32,
    /// The latest status change, if any.
    pub last_change: Option<LastChange>,
    /// The attestation that replaced it, and when.
    pub superseded: Option<Supersession>,
}

impl Canonical for StatusLeaf {
    const MAX_ENCODED_LEN: usize = 256;
}

/// An attestation's latest status change.
#[derive(Debug, Clone, PartialEq, Eq, BorshSerialize, BorshDeserialize, Serialize, Deserialize)]
pub struct LastChange {
    /// What was done.
    pub action: StatusAction,
    /// The issuer's reason code.
    pub reason_code: u16,
    /// Block time.
    pub at: Timestamp,
    /// Block height.
    pub height: u64,
    /// The transaction.
    pub tx: TxId,
}

/// A replacement by a newer version.
#[derive(Debug, Clone, PartialEq, Eq, BorshSerialize, BorshDeserialize, Serialize, Deserialize)]
pub struct Supersession {
    /// The newer version.
    pub by: AttestationId,
    /// When (block time).
    pub at: Timestamp,
}

impl StatusLeaf {
    /// The leaf of a record.
    pub fn of(record: &AttestationRecord) -> Self {
        StatusLeaf {
            log_index: record.location.log_index,
            issued_at: record.issued_at,
            issued_height: record.location.height,
            status: record.status,
            changes: record.history.len() as u32,
            last_change: record.history.last().map(|e| LastChange {
                action: e.action,
                reason_code: e.reason_code,
                at: e.at,
                height: e.height,
                tx: e.tx,
            }),
            superseded: match (record.superseded_by, record.superseded_at) {
                (Some(by), Some(at)) => Some(Supersession { by, at }),
                _ => None,
            },
        }
    }
}

/// The tree key of an attestation: its id (already a uniform hash).
pub fn attestation_key(id: &AttestationId) -> [u8; 32] {
    id.0 .0
}

/// The tree key of the governance state.
pub fn governance_key(suite: CryptoSuite) -> [u8; 32] {
    suite.hash(Domain::State, &[b"status-tree/governance"]).0
}

/// The state key of a tree node.
fn node_key(key: &NodeKey) -> Vec<u8> {
    let mut out = vec![NODE_TABLE];
    // NodeKey's borsh form (version, nibble count, nibbles) is fixed by the crate's format.
    out.extend(borsh::to_vec(key).unwrap_or_default());
    out
}

/// The state key of the root node at `version` (the empty nibble path).
fn root_node_key(version: u64) -> Result<Vec<u8>, StoreError> {
    // NodeKey's borsh form: version (u64 LE), nibble count (u64 LE), path bytes (u32 LE length).
    let bytes = [&version.to_le_bytes()[..], &[0u8; 8], &[0u8; 4]].concat();
    Ok(node_key(
        &NodeKey::try_from_slice(&bytes).map_err(store_err)?,
    ))
}

fn store_err(e: impl std::fmt::Display) -> StoreError {
    StoreError {
        message: format!("status tree: {e}"),
    }
}

/// Reads the tree out of a state view, deriving leaf values from the records.
struct Reader<'a, V: ?Sized> {
    view: &'a V,
    suite: CryptoSuite,
    /// Whether value lookups derive the value; proofs need only the siblings, and the crate reads
    /// the value just to hand it back.
    values: bool,
}

impl<V: StateView + ?Sized> TreeReader for Reader<'_, V> {
    fn get_node_option(&self, key: &NodeKey) -> anyhow::Result<Option<Node>> {
        match self.view.get(&node_key(key))? {
            Some(bytes) => Ok(Some(Node::try_from_slice(&bytes)?)),
            None => Ok(None),
        }
    }

    fn get_value_option(
        &self,
        _max_version: Version,
        key: KeyHash,
    ) -> anyhow::Result<Option<OwnedValue>> {
        if !self.values {
            return Ok(Some(Vec::new()));
        }
        // Only the head's tree is kept, so the newest value is the one asked for.
        Ok(leaf_value(self.view, self.suite, &key.0)?)
    }

    fn get_rightmost_leaf(&self) -> anyhow::Result<Option<(NodeKey, LeafNode)>> {
        anyhow::bail!("restoring the status tree from a snapshot is not supported")
    }
}

/// The value under a tree key, derived from the state.
pub fn leaf_value<V: StateView + ?Sized>(
    view: &V,
    suite: CryptoSuite,
    key: &[u8; 32],
) -> Result<Option<Vec<u8>>, StoreError> {
    if *key == governance_key(suite) {
        return Ok(Some(state::governance(view)?.encode()));
    }
    Ok(
        state::attestation(view, &AttestationId(Digest(*key)))?
            .map(|r| StatusLeaf::of(&r).encode()),
    )
}

/// The writes that move the tree from `version - 1` to `version` with the given leaves changed,
/// and the new root.
pub fn update<V: StateView + ?Sized>(
    view: &V,
    suite: CryptoSuite,
    version: u64,
    changed: Vec<([u8; 32], Vec<u8>)>,
) -> Result<(Digest, Writes), StoreError> {
    let reader = Reader {
        view,
        suite,
        values: true,
    };
    let tree = JellyfishMerkleTree::<_, Sha256>::new(&reader);
    let (root, batch) = if changed.is_empty() {
        // Nothing changed: the tree copies its root forward to the new version.
        tree.put_value_set(std::iter::empty(), version)
            .map_err(store_err)?
    } else {
        // The batch insertion builds each new node once for the whole set of changes (sorted by
        // key), where inserting one key at a time rebuilds and rehashes the nodes of a shared
        // path once per key: the same tree and root, several times cheaper for a block of
        // thousands of attestations.
        let (roots, batch) = tree
            .batch_put_value_sets(
                vec![changed.into_iter().map(|(k, v)| (KeyHash(k), v)).collect()],
                None,
                version,
            )
            .map_err(store_err)?;
        let root = roots
            .first()
            .copied()
            .ok_or_else(|| store_err("the tree returned no root"))?;
        (root, batch)
    };
    let mut writes = Vec::new();
    for stale in &batch.stale_node_index_batch {
        writes.push((node_key(&stale.node_key), None));
    }
    if version > 0 {
        // The previous root is always replaced (the tree copies it forward when nothing changed,
        // without marking the old one stale).
        writes.push((root_node_key(version - 1)?, None));
    }
    for (key, node) in batch.node_batch.nodes() {
        writes.push((node_key(key), Some(borsh::to_vec(node).map_err(store_err)?)));
    }
    Ok((Digest(root.0), writes))
}

/// The value under `key` at the head (version `version`) and its proof.
pub fn prove<V: StateView + ?Sized>(
    view: &V,
    suite: CryptoSuite,
    version: u64,
    key: &[u8; 32],
) -> Result<Option<(Vec<u8>, StatusProof)>, StoreError> {
    let Some(proof) = prove_key(view, suite, version, key)? else {
        return Ok(None);
    };
    let value = leaf_value(view, suite, key)?
        .ok_or_else(|| store_err("a leaf of the tree has no record behind it"))?;
    Ok(Some((value, proof)))
}

/// The proof that `key` is in the tree at the head (version `version`), whatever its value;
/// `None` if it is not in the tree.
pub fn prove_key<V: StateView + ?Sized>(
    view: &V,
    suite: CryptoSuite,
    version: u64,
    key: &[u8; 32],
) -> Result<Option<StatusProof>, StoreError> {
    let reader = Reader {
        view,
        suite,
        values: false,
    };
    let tree = JellyfishMerkleTree::<_, Sha256>::new(&reader);
    let (found, proof) = tree
        .get_with_proof(KeyHash(*key), version)
        .map_err(store_err)?;
    if found.is_none() {
        return Ok(None);
    }
    let bytes = borsh::to_vec(&proof).map_err(store_err)?;
    let siblings = sibling_hashes(&bytes).ok_or_else(|| store_err("unreadable proof"))?;
    Ok(Some(StatusProof::from_siblings(&siblings)))
}

/// Reads the sibling hashes (leaf to root) out of the crate's borsh form of a proof:
/// `Option<leaf>` then `Vec<node>`, each node `0` (empty), `1 ‖ left ‖ right` (inner) or
/// `2 ‖ key ‖ value hash` (leaf).
fn sibling_hashes(bytes: &[u8]) -> Option<Vec<[u8; 32]>> {
    let mut at = match bytes.first()? {
        0 => 1,
        1 => 65,
        _ => return None,
    };
    let count = u32::from_le_bytes(bytes.get(at..at + 4)?.try_into().ok()?) as usize;
    at += 4;
    let mut out = Vec::with_capacity(count);
    for _ in 0..count {
        let tag = *bytes.get(at)?;
        at += 1;
        let hash = match tag {
            0 => EMPTY_SUBTREE,
            1 | 2 => {
                let a = bytes.get(at..at + 32)?;
                let b = bytes.get(at + 32..at + 64)?;
                at += 64;
                let prefix = if tag == 1 {
                    INTERNAL_PREFIX
                } else {
                    LEAF_PREFIX
                };
                let mut h = Sha256::new();
                h.update(prefix);
                h.update(a);
                h.update(b);
                h.finalize().into()
            }
            _ => return None,
        };
        out.push(hash);
    }
    (at == bytes.len()).then_some(out)
}

/// A proof that a key has a value in the status tree: the sibling hashes from the leaf up to the
/// root, empty subtrees marked in a bitmap instead of listed.
#[derive(Debug, Clone, PartialEq, Eq, BorshSerialize, BorshDeserialize, Serialize, Deserialize)]
pub struct StatusProof {
    /// How many levels the leaf sits below the root.
    pub depth: u16,
    /// Bit `i` (byte `i / 8`, least significant bit first) set: sibling `i` is an empty subtree.
    #[serde(with = "crate::encoding::hex_bytes")]
    pub empty: Vec<u8>,
    /// The other siblings' hashes, leaf end first.
    pub hashes: BoundedVec<Digest, MAX_DEPTH>,
}

/// Why a status proof does not hold.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum StatusProofError {
    /// The proof's shape is inconsistent.
    #[error("the status proof is malformed: {detail}")]
    Malformed {
        /// What is wrong.
        detail: &'static str,
    },
    /// The recomputed root differs.
    #[error("the status proof leads to root {computed}, not the header's {expected}")]
    RootMismatch {
        /// The header's status root.
        expected: Digest,
        /// What the proof gives.
        computed: Digest,
    },
}

impl StatusProof {
    /// The compact form of a list of sibling hashes (leaf end first).
    pub fn from_siblings(siblings: &[[u8; 32]]) -> Self {
        let mut empty = vec![0u8; siblings.len().div_ceil(8)];
        let mut hashes = Vec::new();
        for (i, s) in siblings.iter().enumerate() {
            if *s == EMPTY_SUBTREE {
                empty[i / 8] |= 1 << (i % 8);
            } else {
                hashes.push(Digest(*s));
            }
        }
        StatusProof {
            depth: siblings.len() as u16,
            empty,
            hashes: BoundedVec::new(hashes).unwrap_or_default(),
        }
    }

    /// The sibling hashes, leaf end first.
    pub fn siblings(&self) -> Result<Vec<[u8; 32]>, StatusProofError> {
        let depth = self.depth as usize;
        if depth > MAX_DEPTH {
            return Err(StatusProofError::Malformed {
                detail: "deeper than 256 levels",
            });
        }
        if self.empty.len() != depth.div_ceil(8) {
            return Err(StatusProofError::Malformed {
                detail: "the empty-sibling bitmap has the wrong length",
            });
        }
        if !depth.is_multiple_of(8) && self.empty.last().is_some_and(|b| b >> (depth % 8) != 0) {
            return Err(StatusProofError::Malformed {
                detail: "the empty-sibling bitmap has bits past the depth",
            });
        }
        let mut hashes = self.hashes.iter();
        let mut out = Vec::with_capacity(depth);
        for i in 0..depth {
            if self.empty[i / 8] & (1 << (i % 8)) != 0 {
                out.push(EMPTY_SUBTREE);
            } else {
                let h = hashes.next().ok_or(StatusProofError::Malformed {
                    detail: "fewer hashes than non-empty siblings",
                })?;
                out.push(h.0);
            }
        }
        if hashes.next().is_some() {
            return Err(StatusProofError::Malformed {
                detail: "more hashes than non-empty siblings",
            });
        }
        Ok(out)
    }

    /// Checks that `key` maps to `value` in the tree with root `root`.
    pub fn verify(
        &self,
        root: &Digest,
        key: &[u8; 32],
        value: &[u8],
    ) -> Result<(), StatusProofError> {
        let computed = Digest(root_from_proof(key, value, &self.siblings()?));
        if computed != *root {
            return Err(StatusProofError::RootMismatch {
                expected: *root,
                computed,
            });
        }
        Ok(())
    }
}

/// The root a key, a value and its siblings (leaf end first) lead to.
pub fn root_from_proof(key: &[u8; 32], value: &[u8], siblings: &[[u8; 32]]) -> [u8; 32] {
    let value_hash: [u8; 32] = Sha256::digest(value).into();
    let mut h = Sha256::new();
    h.update(LEAF_PREFIX);
    h.update(key);
    h.update(value_hash);
    let mut acc: [u8; 32] = h.finalize().into();
    let depth = siblings.len();
    for (i, sibling) in siblings.iter().enumerate() {
        // The sibling at `i` (from the bottom) is at level depth - 1 - i; the key's bit there
        // says which side the path takes.
        let bit_index = depth - 1 - i;
        let bit = key[bit_index / 8] & (0x80 >> (bit_index % 8)) != 0;
        let mut h = Sha256::new();
        h.update(INTERNAL_PREFIX);
        if bit {
            h.update(sibling);
            h.update(acc);
        } else {
            h.update(acc);
            h.update(sibling);
        }
        acc = h.finalize().into();
    }
    acc
}
