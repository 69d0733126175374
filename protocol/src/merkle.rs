//! Append-only Merkle log (RFC 9162 / RFC 6962 tree) for the ledger.
//!
//! The ledger is an append-only log whose leaves are transactions in commit
//! order. This module implements the Certificate Transparency Merkle tree
//! (RFC 9162 §2.1, which is the same tree as RFC 6962 §2.1):
//!
//! * [`LogHasher`] is the hashing seam (leaf hash, interior node hash, empty
//!   root); [`Sha256LogHasher`] is RFC 9162 with SHA-256. Another hash (e.g.
//!   SM3) can be plugged in by implementing the trait.
//! * [`tree_math`] holds pure index arithmetic: which subtrees make up a proof
//!   and how long a valid proof is.
//! * Proof *generation* is storage-agnostic: it only needs the hashes of
//!   *complete* subtrees (nodes of the perfect binary tree, identified by
//!   `(level, index)`), provided by a [`SubtreeStore`]. A complete node never
//!   changes once written, so a key-value store (e.g. a RocksDB column family)
//!   can persist the [`NewNode`]s returned by [`append_leaf`] or
//!   [`Frontier::append`]. Hashes of non-perfect subtrees are folded from
//!   complete subtrees, so every root/proof for any past size costs
//!   O(log n) node reads. A leaf-only [`NodeStore`] can be used through the
//!   (O(n)) [`LeafSubtrees`] adapter.
//! * Proof *verification* ([`verify_inclusion`], [`verify_consistency`]) uses
//!   the bit-twiddling algorithms of RFC 9162 §2.1.3.2 and §2.1.4.2 verbatim,
//!   after checking that the proof has exactly the expected length.
//! * [`Frontier`] is the compact O(log n) "right edge" of the tree that the
//!   state machine keeps to compute the log root after each block.
//! * [`MemoryLog`] is a Vec-backed store + appender for tests and small logs.
//!
//! Consistency proofs from the empty tree are not defined by RFC 9162 (every
//! tree trivially extends the empty tree); they are rejected with
//! [`MerkleError::EmptyOldTree`] and callers must treat "no trusted root yet"
//! explicitly.

use std::convert::Infallible;
use std::ops::Range;

use borsh::{BorshDeserialize, BorshSerialize};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

/// A 32-byte tree hash (leaf hash, interior node hash or root).
pub type Hash = [u8; 32];

/// Maximum number of hashes in a valid inclusion proof (tree sizes are `u64`,
/// so a leaf is at most 64 levels deep). Longer paths are rejected when
/// decoding.
pub const MAX_INCLUSION_PATH_LEN: usize = 64;

/// Maximum number of hashes in a valid consistency proof.
///
/// This is one more than [`MAX_INCLUSION_PATH_LEN`]: for an odd old size
/// `m > 1` the proof is the leaf `m - 1` followed by its inclusion path, which
/// can be 64 hashes deep once the new tree has more than 2^63 leaves.
/// Longer paths are rejected when decoding.
pub const MAX_CONSISTENCY_PATH_LEN: usize = 65;

/// Maximum number of subtree roots in a [`Frontier`] (one per set bit of a
/// `u64` size).
pub const MAX_FRONTIER_LEN: usize = 64;

// ---------------------------------------------------------------------------
// Errors
// ---------------------------------------------------------------------------

/// Errors of Merkle proof generation and verification.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum MerkleError {
    /// The leaf index is not inside the tree.
    #[error("leaf index {index} is out of range for tree size {size}")]
    IndexOutOfRange {
        /// The requested leaf index.
        index: u64,
        /// The tree size the index was checked against.
        size: u64,
    },
    /// The proof does not have exactly the number of hashes the tree sizes
    /// require (this rejects extra and missing path elements).
    #[error("proof has {found} hashes, expected {expected}")]
    WrongProofLength {
        /// Number of hashes a valid proof has.
        expected: usize,
        /// Number of hashes the proof has.
        found: usize,
    },
    /// The root recomputed from the proof differs from the expected root.
    #[error("recomputed root does not match the expected root")]
    RootMismatch,
    /// A consistency proof was requested from a larger to a smaller tree.
    #[error("old tree size {old} is greater than new tree size {new}")]
    OldSizeGreaterThanNew {
        /// The old (trusted) tree size.
        old: u64,
        /// The new tree size.
        new: u64,
    },
    /// Consistency proofs from the empty tree are not defined.
    #[error("consistency proofs from the empty tree are not defined")]
    EmptyOldTree,
    /// The requested tree size is larger than the log.
    #[error("tree size {size} is beyond the log size {log_size}")]
    SizeBeyondLog {
        /// The requested tree size.
        size: u64,
        /// The current size of the log.
        log_size: u64,
    },
    /// A complete subtree node needed for the computation is not stored
    /// (typically: the requested size is beyond what has been appended).
    #[error("complete subtree node (level {level}, index {index}) is not stored")]
    MissingNode {
        /// Level of the node (0 = leaves).
        level: u8,
        /// Index of the node within its level.
        index: u64,
    },
    /// The log already holds `u64::MAX` leaves.
    #[error("the log is full")]
    TreeFull,
    /// A frontier's subtree roots do not match its size.
    #[error("invalid frontier: size {size} needs {expected} subtree roots, found {found}")]
    InvalidFrontier {
        /// The frontier's tree size.
        size: u64,
        /// Number of roots the size requires (its popcount).
        expected: usize,
        /// Number of roots present.
        found: usize,
    },
}

impl MerkleError {
    /// A stable snake_case reason code for logs, metrics and API responses.
    pub fn code(&self) -> &'static str {
        match self {
            MerkleError::IndexOutOfRange { .. } => "index_out_of_range",
            MerkleError::WrongProofLength { .. } => "wrong_proof_length",
            MerkleError::RootMismatch => "root_mismatch",
            MerkleError::OldSizeGreaterThanNew { .. } => "old_size_greater_than_new",
            MerkleError::EmptyOldTree => "empty_old_tree",
            MerkleError::SizeBeyondLog { .. } => "size_beyond_log",
            MerkleError::MissingNode { .. } => "missing_node",
            MerkleError::TreeFull => "tree_full",
            MerkleError::InvalidFrontier { .. } => "invalid_frontier",
        }
    }
}

/// Error of an operation that reads a node store: either a Merkle-level
/// error or the store's own error.
#[derive(Debug, thiserror::Error)]
pub enum TreeError<E> {
    /// The request or the stored data is invalid for the tree.
    #[error(transparent)]
    Merkle(#[from] MerkleError),
    /// The underlying store failed.
    #[error("node store error: {0}")]
    Store(E),
}

impl<E> TreeError<E> {
    /// A stable snake_case reason code (`"store_error"` for store failures).
    pub fn code(&self) -> &'static str {
        match self {
            TreeError::Merkle(e) => e.code(),
            TreeError::Store(_) => "store_error",
        }
    }
}

impl From<TreeError<Infallible>> for MerkleError {
    fn from(e: TreeError<Infallible>) -> Self {
        match e {
            TreeError::Merkle(e) => e,
            TreeError::Store(never) => match never {},
        }
    }
}

// ---------------------------------------------------------------------------
// Hashing
// ---------------------------------------------------------------------------

/// The hash functions of a Merkle log (RFC 9162 §2.1.1 structure).
pub trait LogHasher {
    /// Hash of a leaf: `HASH(0x00 || leaf)` in RFC 9162.
    fn hash_leaf(&self, leaf: &[u8]) -> Hash;
    /// Hash of an interior node: `HASH(0x01 || left || right)` in RFC 9162.
    fn hash_children(&self, left: &Hash, right: &Hash) -> Hash;
    /// Root of the empty tree: `HASH("")` in RFC 9162.
    fn empty_root(&self) -> Hash;
}

/// RFC 9162 / RFC 6962 hashing with SHA-256.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Sha256LogHasher;

impl LogHasher for Sha256LogHasher {
    fn hash_leaf(&self, leaf: &[u8]) -> Hash {
        let mut h = Sha256::new();
        h.update([0x00]);
        h.update(leaf);
        h.finalize().into()
    }

    fn hash_children(&self, left: &Hash, right: &Hash) -> Hash {
        let mut h = Sha256::new();
        h.update([0x01]);
        h.update(left);
        h.update(right);
        h.finalize().into()
    }

    fn empty_root(&self) -> Hash {
        Sha256::digest([]).into()
    }
}

/// The Merkle Tree Hash `MTH(D[n])` of RFC 9162 §2.1.1, computed naively and
/// recursively from the leaf hashes (O(n) hashing). Intended as a reference;
/// use a [`SubtreeStore`] or [`Frontier`] for logs.
pub fn mth<H: LogHasher + ?Sized>(hasher: &H, leaf_hashes: &[Hash]) -> Hash {
    match leaf_hashes {
        [] => hasher.empty_root(),
        [leaf] => *leaf,
        _ => {
            let k = tree_math::split_point(leaf_hashes.len() as u64) as usize;
            let (left, right) = leaf_hashes.split_at(k);
            hasher.hash_children(&mth(hasher, left), &mth(hasher, right))
        }
    }
}

// ---------------------------------------------------------------------------
// Tree maths (pure index arithmetic)
// ---------------------------------------------------------------------------

/// Pure index arithmetic for RFC 9162 trees.
///
/// A proof element is the Merkle Tree Hash of a contiguous leaf range
/// `start..end`; these functions say which ranges, in proof order. Every such
/// range is either a complete subtree or the right edge of one, so its hash is
/// a fold of at most 64 complete subtrees.
pub mod tree_math {
    use std::ops::Range;

    use super::MerkleError;

    /// The largest power of two strictly smaller than `n` (the `k` of
    /// RFC 9162 §2.1.1). Returns 0 for `n < 2`.
    pub fn split_point(n: u64) -> u64 {
        if n < 2 {
            0
        } else {
            1u64 << (63 - (n - 1).leading_zeros())
        }
    }

    /// Bit length of `x` (0 for 0).
    fn bit_len(x: u64) -> u32 {
        64 - x.leading_zeros()
    }

    /// `x >> shift` that yields 0 instead of overflowing for `shift >= 64`.
    fn shr(x: u64, shift: u32) -> u64 {
        x.checked_shr(shift).unwrap_or(0)
    }

    /// Number of hashes in the inclusion proof of leaf `index` in a tree of
    /// `size` leaves.
    pub fn inclusion_proof_len(index: u64, size: u64) -> Result<usize, MerkleError> {
        if index >= size {
            return Err(MerkleError::IndexOutOfRange { index, size });
        }
        // Levels below the point where the paths to `index` and to the last
        // leaf diverge contribute one sibling each; above it, one sibling per
        // left turn (set bit).
        let inner = bit_len(index ^ (size - 1));
        let border = shr(index, inner).count_ones();
        Ok((inner + border) as usize)
    }

    /// Number of hashes in the consistency proof from a tree of `old` leaves
    /// to a tree of `new` leaves (`0 < old <= new`; zero when equal).
    pub fn consistency_proof_len(old: u64, new: u64) -> Result<usize, MerkleError> {
        if old > new {
            return Err(MerkleError::OldSizeGreaterThanNew { old, new });
        }
        if old == 0 {
            return Err(MerkleError::EmptyOldTree);
        }
        if old == new {
            return Ok(0);
        }
        // The proof is the inclusion path of leaf `old - 1` in the new tree,
        // minus the levels inside the old tree's last complete subtree, plus
        // that subtree's root unless it is the whole old tree.
        let level = old.trailing_zeros();
        let inner = bit_len((old - 1) ^ (new - 1));
        let border = shr(old - 1, inner).count_ones();
        let seed = u32::from(!old.is_power_of_two());
        Ok((inner.saturating_sub(level) + border + seed) as usize)
    }

    /// The leaf ranges whose hashes form the inclusion proof of leaf `index`
    /// in a tree of `size` leaves (RFC 9162 §2.1.3.1 `PATH`), in proof order
    /// (bottom-up).
    pub fn inclusion_ranges(index: u64, size: u64) -> Result<Vec<Range<u64>>, MerkleError> {
        if index >= size {
            return Err(MerkleError::IndexOutOfRange { index, size });
        }
        let mut out = Vec::new();
        let (mut a, mut b) = (0u64, size);
        while b - a > 1 {
            let k = split_point(b - a);
            if index < a + k {
                // PATH(m, D[0:k]) : MTH(D[k:n])
                out.push(a + k..b);
                b = a + k;
            } else {
                // PATH(m - k, D[k:n]) : MTH(D[0:k])
                out.push(a..a + k);
                a += k;
            }
        }
        out.reverse();
        Ok(out)
    }

    /// The leaf ranges whose hashes form the consistency proof from `old` to
    /// `new` leaves (RFC 9162 §2.1.4.1 `PROOF` / `SUBPROOF`), in proof order.
    pub fn consistency_ranges(old: u64, new: u64) -> Result<Vec<Range<u64>>, MerkleError> {
        if old > new {
            return Err(MerkleError::OldSizeGreaterThanNew { old, new });
        }
        if old == 0 {
            return Err(MerkleError::EmptyOldTree);
        }
        let mut out = Vec::new();
        // SUBPROOF(m, D[a:b], whole_old_tree)
        let (mut m, mut a, mut b, mut whole) = (old, 0u64, new, true);
        while m != b - a {
            let k = split_point(b - a);
            if m <= k {
                // SUBPROOF(m, D[0:k], b) : MTH(D[k:n])
                out.push(a + k..b);
                b = a + k;
            } else {
                // SUBPROOF(m - k, D[k:n], false) : MTH(D[0:k])
                out.push(a..a + k);
                a += k;
                m -= k;
                whole = false;
            }
        }
        if !whole {
            // SUBPROOF(m, D[m], false) = {MTH(D[m])}
            out.push(a..b);
        }
        out.reverse();
        Ok(out)
    }

    /// The complete subtrees `(level, index)` whose fold is the hash of the
    /// leaf range `start..end`, left to right (largest first).
    ///
    /// Requires `start` to be a multiple of a power of two that is at least
    /// `end - start` (true for every range of [`inclusion_ranges`],
    /// [`consistency_ranges`] and for `0..size`); the result is meaningless
    /// otherwise.
    pub fn range_subtrees(start: u64, end: u64) -> Vec<(u8, u64)> {
        let mut out = Vec::new();
        let mut pos = start;
        let mut len = end.saturating_sub(start);
        while len != 0 {
            let level = 63 - len.leading_zeros();
            out.push((level as u8, pos >> level));
            pos += 1u64 << level;
            len &= !(1u64 << level);
        }
        out
    }
}

// ---------------------------------------------------------------------------
// Stores and generation
// ---------------------------------------------------------------------------

/// A source of leaf hashes (leaf `index` in commit order).
pub trait NodeStore {
    /// The store's error type.
    type Error;
    /// The leaf hash at `index`.
    fn leaf_hash(&self, index: u64) -> Result<Hash, Self::Error>;
}

/// A store of complete subtree hashes.
///
/// Node `(level, index)` is the root of the perfect subtree over leaves
/// `index * 2^level .. (index + 1) * 2^level`; level 0 holds the leaf hashes.
/// A node exists once all its leaves are appended and never changes after.
pub trait SubtreeStore {
    /// The store's error type.
    type Error;
    /// The hash of complete node `(level, index)`, or `None` if it is not
    /// (yet) complete.
    fn node(&self, level: u8, index: u64) -> Result<Option<Hash>, Self::Error>;
}

/// A complete subtree node newly created by appending a leaf, to be persisted
/// in a [`SubtreeStore`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct NewNode {
    /// Level of the node (0 = the leaf itself).
    pub level: u8,
    /// Index of the node within its level.
    pub index: u64,
    /// The node hash.
    pub hash: Hash,
}

impl NewNode {
    /// A 9-byte storage key, `level || index (big-endian)`, which sorts
    /// nodes by level, then index.
    pub fn key(&self) -> [u8; 9] {
        node_key(self.level, self.index)
    }
}

/// The 9-byte storage key `level || index (big-endian)` of node
/// `(level, index)`.
pub fn node_key(level: u8, index: u64) -> [u8; 9] {
    let mut k = [0u8; 9];
    k[0] = level;
    k[1..].copy_from_slice(&index.to_be_bytes());
    k
}

fn get_node<S: SubtreeStore + ?Sized>(
    store: &S,
    level: u8,
    index: u64,
) -> Result<Hash, TreeError<S::Error>> {
    store
        .node(level, index)
        .map_err(TreeError::Store)?
        .ok_or(TreeError::Merkle(MerkleError::MissingNode { level, index }))
}

/// MTH of the (aligned) leaf range `range`, folded from complete subtrees.
fn range_hash<H: LogHasher + ?Sized, S: SubtreeStore + ?Sized>(
    hasher: &H,
    store: &S,
    range: Range<u64>,
) -> Result<Hash, TreeError<S::Error>> {
    let mut acc: Option<Hash> = None;
    for (level, index) in tree_math::range_subtrees(range.start, range.end)
        .into_iter()
        .rev()
    {
        let node = get_node(store, level, index)?;
        acc = Some(match acc {
            None => node,
            Some(right) => hasher.hash_children(&node, &right),
        });
    }
    Ok(acc.unwrap_or_else(|| hasher.empty_root()))
}

/// The root of the tree of the first `size` leaves, with at most 64 node
/// reads. `size` 0 gives the empty root.
pub fn root_at<H: LogHasher + ?Sized, S: SubtreeStore + ?Sized>(
    hasher: &H,
    store: &S,
    size: u64,
) -> Result<Hash, TreeError<S::Error>> {
    range_hash(hasher, store, 0..size)
}

/// The RFC 9162 inclusion proof of leaf `index` in the tree of the first
/// `size` leaves, with O(log size) node reads.
pub fn inclusion_proof<H: LogHasher + ?Sized, S: SubtreeStore + ?Sized>(
    hasher: &H,
    store: &S,
    index: u64,
    size: u64,
) -> Result<InclusionProof, TreeError<S::Error>> {
    let path = tree_math::inclusion_ranges(index, size)?
        .into_iter()
        .map(|r| range_hash(hasher, store, r))
        .collect::<Result<Vec<_>, _>>()?;
    Ok(InclusionProof {
        leaf_index: index,
        tree_size: size,
        path,
    })
}

/// The RFC 9162 consistency proof between the trees of the first `old_size`
/// and `new_size` leaves (`0 < old_size <= new_size`), with O(log new_size)
/// node reads.
pub fn consistency_proof<H: LogHasher + ?Sized, S: SubtreeStore + ?Sized>(
    hasher: &H,
    store: &S,
    old_size: u64,
    new_size: u64,
) -> Result<ConsistencyProof, TreeError<S::Error>> {
    let path = tree_math::consistency_ranges(old_size, new_size)?
        .into_iter()
        .map(|r| range_hash(hasher, store, r))
        .collect::<Result<Vec<_>, _>>()?;
    Ok(ConsistencyProof {
        old_size,
        new_size,
        path,
    })
}

/// Appends leaf number `size` (i.e. the log currently has `size` leaves) and
/// returns the newly completed nodes to persist: the leaf itself at level 0,
/// then every ancestor it completes, bottom-up. Reads the left siblings
/// (at most 63) from `store`.
pub fn append_leaf<H: LogHasher + ?Sized, S: SubtreeStore + ?Sized>(
    hasher: &H,
    store: &S,
    size: u64,
    leaf_hash: Hash,
) -> Result<Vec<NewNode>, TreeError<S::Error>> {
    if size == u64::MAX {
        return Err(MerkleError::TreeFull.into());
    }
    let mut out = vec![NewNode {
        level: 0,
        index: size,
        hash: leaf_hash,
    }];
    let (mut level, mut index, mut hash) = (0u8, size, leaf_hash);
    while index & 1 == 1 {
        let left = get_node(store, level, index - 1)?;
        hash = hasher.hash_children(&left, &hash);
        level += 1;
        index >>= 1;
        out.push(NewNode { level, index, hash });
    }
    Ok(out)
}

/// Adapter exposing a leaf-only [`NodeStore`] as a [`SubtreeStore`] by
/// hashing complete subtrees from their leaves (node `(level, _)` costs
/// `2^level` leaf reads, so proofs cost O(n)). Every node is reported as
/// present; a missing leaf surfaces as the store's error.
#[derive(Debug)]
pub struct LeafSubtrees<'a, S: ?Sized, H: ?Sized> {
    store: &'a S,
    hasher: &'a H,
}

impl<'a, S: NodeStore + ?Sized, H: LogHasher + ?Sized> LeafSubtrees<'a, S, H> {
    /// Wraps `store`, hashing with `hasher`.
    pub fn new(store: &'a S, hasher: &'a H) -> Self {
        LeafSubtrees { store, hasher }
    }
}

impl<S: NodeStore + ?Sized, H: LogHasher + ?Sized> SubtreeStore for LeafSubtrees<'_, S, H> {
    type Error = S::Error;

    fn node(&self, level: u8, index: u64) -> Result<Option<Hash>, S::Error> {
        let Some(width) = 1u64.checked_shl(u32::from(level)) else {
            return Ok(None);
        };
        let Some(start) = index.checked_mul(width) else {
            return Ok(None);
        };
        if start.checked_add(width).is_none() {
            return Ok(None);
        }
        // Stack of (level, hash) of completed subtrees, merged as in a
        // frontier; after `width` leaves it holds exactly one node.
        let mut stack: Vec<(u8, Hash)> = Vec::with_capacity(usize::from(level) + 1);
        for i in 0..width {
            let mut node = (0u8, self.store.leaf_hash(start + i)?);
            while let Some(&(l, left)) = stack.last() {
                if l != node.0 {
                    break;
                }
                stack.pop();
                node = (l + 1, self.hasher.hash_children(&left, &node.1));
            }
            stack.push(node);
        }
        Ok(stack.pop().map(|(_, h)| h))
    }
}

// ---------------------------------------------------------------------------
// Proofs and verification
// ---------------------------------------------------------------------------

/// An RFC 9162 inclusion proof (`inclusion_path`, bottom-up).
#[derive(Debug, Clone, PartialEq, Eq, BorshSerialize, BorshDeserialize, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct InclusionProof {
    /// Zero-based index of the leaf.
    pub leaf_index: u64,
    /// Size of the tree the proof is for.
    pub tree_size: u64,
    /// Sibling hashes from the leaf level up (hex strings in serde).
    #[borsh(deserialize_with = "bounded::borsh_inclusion_path")]
    #[serde(
        serialize_with = "hex_hash_vec::serialize",
        deserialize_with = "bounded::serde_inclusion_path"
    )]
    pub path: Vec<Hash>,
}

/// An RFC 9162 consistency proof (`consistency_path`).
#[derive(Debug, Clone, PartialEq, Eq, BorshSerialize, BorshDeserialize, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ConsistencyProof {
    /// Size of the old (trusted) tree.
    pub old_size: u64,
    /// Size of the new tree.
    pub new_size: u64,
    /// The proof hashes (hex strings in serde).
    #[borsh(deserialize_with = "bounded::borsh_consistency_path")]
    #[serde(
        serialize_with = "hex_hash_vec::serialize",
        deserialize_with = "bounded::serde_consistency_path"
    )]
    pub path: Vec<Hash>,
}

/// Recomputes the root implied by an inclusion proof for `leaf_hash`
/// (RFC 9162 §2.1.3.2 steps 1–4), after checking the proof length.
pub fn root_from_inclusion_proof<H: LogHasher + ?Sized>(
    hasher: &H,
    leaf_hash: &Hash,
    proof: &InclusionProof,
) -> Result<Hash, MerkleError> {
    let expected = tree_math::inclusion_proof_len(proof.leaf_index, proof.tree_size)?;
    if proof.path.len() != expected {
        return Err(MerkleError::WrongProofLength {
            expected,
            found: proof.path.len(),
        });
    }
    // 2. Set fn to leaf_index and sn to tree_size - 1.
    let mut fn_ = proof.leaf_index;
    let mut sn = proof.tree_size - 1;
    // 3. Set r to hash.
    let mut r = *leaf_hash;
    // 4. For each value p in the inclusion_path array:
    for p in &proof.path {
        // a. If sn is 0, then stop the iteration and fail the proof
        //    verification.
        if sn == 0 {
            return Err(MerkleError::WrongProofLength {
                expected,
                found: proof.path.len(),
            });
        }
        // b. If LSB(fn) is set, or if fn is equal to sn, then:
        if fn_ & 1 == 1 || fn_ == sn {
            // i. Set r to HASH(0x01 || p || r).
            r = hasher.hash_children(p, &r);
            // ii. If LSB(fn) is not set, then right-shift both fn and sn
            //     equally until either LSB(fn) is set or fn is 0.
            while fn_ & 1 == 0 && fn_ != 0 {
                fn_ >>= 1;
                sn >>= 1;
            }
        } else {
            // Otherwise: i. Set r to HASH(0x01 || r || p).
            r = hasher.hash_children(&r, p);
        }
        // c. Finally, right-shift both fn and sn one time.
        fn_ >>= 1;
        sn >>= 1;
    }
    // 5. Compare sn to 0 (the root comparison is the caller's).
    if sn != 0 {
        return Err(MerkleError::WrongProofLength {
            expected,
            found: proof.path.len(),
        });
    }
    Ok(r)
}

/// Verifies that `leaf_hash` is leaf `proof.leaf_index` of the tree of size
/// `proof.tree_size` with root `root` (RFC 9162 §2.1.3.2).
pub fn verify_inclusion<H: LogHasher + ?Sized>(
    hasher: &H,
    leaf_hash: &Hash,
    proof: &InclusionProof,
    root: &Hash,
) -> Result<(), MerkleError> {
    // 5. ... If sn is equal to 0 and r and the root_hash are equal, then the
    //    log has proven the inclusion of hash.
    if root_from_inclusion_proof(hasher, leaf_hash, proof)? == *root {
        Ok(())
    } else {
        Err(MerkleError::RootMismatch)
    }
}

/// Verifies that the tree of size `proof.new_size` with root `new_root`
/// extends the tree of size `proof.old_size` with root `old_root`
/// (RFC 9162 §2.1.4.2). Equal sizes require an empty proof and equal roots;
/// an empty old tree is rejected with [`MerkleError::EmptyOldTree`].
pub fn verify_consistency<H: LogHasher + ?Sized>(
    hasher: &H,
    old_root: &Hash,
    new_root: &Hash,
    proof: &ConsistencyProof,
) -> Result<(), MerkleError> {
    let (first, second) = (proof.old_size, proof.new_size);
    let expected = tree_math::consistency_proof_len(first, second)?;
    let found = proof.path.len();
    if found != expected {
        return Err(MerkleError::WrongProofLength { expected, found });
    }
    if first == second {
        return if old_root == new_root {
            Ok(())
        } else {
            Err(MerkleError::RootMismatch)
        };
    }
    // 1. If consistency_path is an empty array, stop and fail the proof
    //    verification.
    // 2. If first is an exact power of 2, then prepend first_hash to the
    //    consistency_path array.
    let mut path = first
        .is_power_of_two()
        .then_some(old_root)
        .into_iter()
        .chain(proof.path.iter());
    let Some(seed) = path.next() else {
        return Err(MerkleError::WrongProofLength { expected, found });
    };
    // 3. Set fn to first - 1 and sn to second - 1.
    let mut fn_ = first - 1;
    let mut sn = second - 1;
    // 4. If LSB(fn) is set, then right-shift both fn and sn equally until
    //    LSB(fn) is not set.
    while fn_ & 1 == 1 {
        fn_ >>= 1;
        sn >>= 1;
    }
    // 5. Set both fr and sr to the first value in the consistency_path array.
    let mut fr = *seed;
    let mut sr = *seed;
    // 6. For each subsequent value c in the consistency_path array:
    for c in path {
        // a. If sn is 0, then stop the iteration and fail the proof
        //    verification.
        if sn == 0 {
            return Err(MerkleError::WrongProofLength { expected, found });
        }
        // b. If LSB(fn) is set, or if fn is equal to sn, then:
        if fn_ & 1 == 1 || fn_ == sn {
            // i. Set fr to HASH(0x01 || c || fr).
            //    Set sr to HASH(0x01 || c || sr).
            fr = hasher.hash_children(c, &fr);
            sr = hasher.hash_children(c, &sr);
            // ii. If LSB(fn) is not set, then right-shift both fn and sn
            //     equally until either LSB(fn) is set or fn is 0.
            while fn_ & 1 == 0 && fn_ != 0 {
                fn_ >>= 1;
                sn >>= 1;
            }
        } else {
            // Otherwise: i. Set sr to HASH(0x01 || sr || c).
            sr = hasher.hash_children(&sr, c);
        }
        // c. Finally, right-shift both fn and sn one time.
        fn_ >>= 1;
        sn >>= 1;
    }
    // 7. Verify that fr == first_hash, sr == second_hash and sn == 0.
    if sn != 0 {
        return Err(MerkleError::WrongProofLength { expected, found });
    }
    if fr == *old_root && sr == *new_root {
        Ok(())
    } else {
        Err(MerkleError::RootMismatch)
    }
}

// ---------------------------------------------------------------------------
// Frontier
// ---------------------------------------------------------------------------

/// The compact "right edge" of a log: the roots of the complete subtrees
/// that make up the first `size` leaves, largest (leftmost) first — one per
/// set bit of `size`. Enough to append leaves and compute the current root.
///
/// Encoding: borsh `size: u64, nodes: Vec<[u8; 32]>`; serde
/// `{"size": n, "nodes": ["hex", ...]}`. Decoding rejects a node count that
/// does not match `size`.
#[derive(Debug, Clone, Default, PartialEq, Eq, BorshSerialize, Serialize, Deserialize)]
#[serde(try_from = "FrontierRepr")]
pub struct Frontier {
    size: u64,
    #[serde(serialize_with = "hex_hash_vec::serialize")]
    nodes: Vec<Hash>,
}

/// Unvalidated serde form of [`Frontier`].
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct FrontierRepr {
    size: u64,
    #[serde(deserialize_with = "bounded::serde_frontier_nodes")]
    nodes: Vec<Hash>,
}

impl TryFrom<FrontierRepr> for Frontier {
    type Error = MerkleError;

    fn try_from(r: FrontierRepr) -> Result<Self, MerkleError> {
        Frontier::from_parts(r.size, r.nodes)
    }
}

impl BorshDeserialize for Frontier {
    fn deserialize_reader<R: borsh::io::Read>(reader: &mut R) -> borsh::io::Result<Self> {
        let size = u64::deserialize_reader(reader)?;
        let nodes = bounded::borsh_frontier_nodes(reader)?;
        Frontier::from_parts(size, nodes)
            .map_err(|e| borsh::io::Error::new(borsh::io::ErrorKind::InvalidData, e.to_string()))
    }
}

impl Frontier {
    /// The frontier of the empty log.
    pub fn new() -> Self {
        Frontier::default()
    }

    /// Builds a frontier from its parts, checking that there is exactly one
    /// subtree root per set bit of `size`.
    pub fn from_parts(size: u64, nodes: Vec<Hash>) -> Result<Self, MerkleError> {
        let expected = size.count_ones() as usize;
        if nodes.len() != expected {
            return Err(MerkleError::InvalidFrontier {
                size,
                expected,
                found: nodes.len(),
            });
        }
        Ok(Frontier { size, nodes })
    }

    /// Reads the frontier of the first `size` leaves from a store
    /// (at most 64 node reads), e.g. after a restart.
    pub fn from_store<S: SubtreeStore + ?Sized>(
        store: &S,
        size: u64,
    ) -> Result<Self, TreeError<S::Error>> {
        let nodes = tree_math::range_subtrees(0, size)
            .into_iter()
            .map(|(level, index)| get_node(store, level, index))
            .collect::<Result<Vec<_>, _>>()?;
        Ok(Frontier { size, nodes })
    }

    /// Number of leaves appended so far.
    pub fn size(&self) -> u64 {
        self.size
    }

    /// Whether no leaf has been appended.
    pub fn is_empty(&self) -> bool {
        self.size == 0
    }

    /// The complete subtree roots, largest (leftmost) first.
    pub fn nodes(&self) -> &[Hash] {
        &self.nodes
    }

    /// Appends a leaf hash using [`Sha256LogHasher`].
    pub fn push(&mut self, leaf_hash: Hash) -> Result<(), MerkleError> {
        self.push_with(&Sha256LogHasher, leaf_hash)
    }

    /// Appends a leaf hash using `hasher`.
    pub fn push_with<H: LogHasher + ?Sized>(
        &mut self,
        hasher: &H,
        leaf_hash: Hash,
    ) -> Result<(), MerkleError> {
        self.push_inner(hasher, leaf_hash, |_| {})
    }

    /// Appends a leaf hash using `hasher` and returns the newly completed
    /// nodes to persist in a [`SubtreeStore`] (same as [`append_leaf`], but
    /// without store reads).
    pub fn append<H: LogHasher + ?Sized>(
        &mut self,
        hasher: &H,
        leaf_hash: Hash,
    ) -> Result<Vec<NewNode>, MerkleError> {
        let mut out = Vec::new();
        self.push_inner(hasher, leaf_hash, |n| out.push(n))?;
        Ok(out)
    }

    fn push_inner<H: LogHasher + ?Sized>(
        &mut self,
        hasher: &H,
        leaf_hash: Hash,
        mut sink: impl FnMut(NewNode),
    ) -> Result<(), MerkleError> {
        if self.size == u64::MAX {
            return Err(MerkleError::TreeFull);
        }
        let expected = self.size.count_ones() as usize;
        if self.nodes.len() != expected {
            return Err(MerkleError::InvalidFrontier {
                size: self.size,
                expected,
                found: self.nodes.len(),
            });
        }
        let (mut level, mut index, mut hash) = (0u8, self.size, leaf_hash);
        sink(NewNode { level, index, hash });
        while index & 1 == 1 {
            let Some(left) = self.nodes.pop() else {
                // Unreachable: the node count was checked above.
                return Err(MerkleError::InvalidFrontier {
                    size: self.size,
                    expected,
                    found: self.nodes.len(),
                });
            };
            hash = hasher.hash_children(&left, &hash);
            level += 1;
            index >>= 1;
            sink(NewNode { level, index, hash });
        }
        self.nodes.push(hash);
        self.size += 1;
        Ok(())
    }

    /// The current root using [`Sha256LogHasher`].
    pub fn root(&self) -> Hash {
        self.root_with(&Sha256LogHasher)
    }

    /// The current root using `hasher` (the empty root for an empty log).
    pub fn root_with<H: LogHasher + ?Sized>(&self, hasher: &H) -> Hash {
        let mut nodes = self.nodes.iter().rev();
        match nodes.next() {
            None => hasher.empty_root(),
            Some(last) => nodes.fold(*last, |acc, left| hasher.hash_children(left, &acc)),
        }
    }
}

// ---------------------------------------------------------------------------
// In-memory log
// ---------------------------------------------------------------------------

/// A Vec-backed Merkle log: stores every complete subtree node, so roots and
/// proofs for any past size cost O(log n).
#[derive(Debug, Clone, Default)]
pub struct MemoryLog<H = Sha256LogHasher> {
    hasher: H,
    /// `levels[l][i]` is complete node `(l, i)`.
    levels: Vec<Vec<Hash>>,
}

impl MemoryLog<Sha256LogHasher> {
    /// An empty SHA-256 log.
    pub fn new() -> Self {
        MemoryLog::with_hasher(Sha256LogHasher)
    }
}

impl<H: LogHasher> MemoryLog<H> {
    /// An empty log using `hasher`.
    pub fn with_hasher(hasher: H) -> Self {
        MemoryLog {
            hasher,
            levels: Vec::new(),
        }
    }

    /// The log's hasher.
    pub fn hasher(&self) -> &H {
        &self.hasher
    }

    /// Number of leaves.
    pub fn size(&self) -> u64 {
        self.levels.first().map_or(0, |l| l.len() as u64)
    }

    /// Whether the log has no leaves.
    pub fn is_empty(&self) -> bool {
        self.size() == 0
    }

    /// Hashes `leaf` with the log's hasher and appends it; returns its index.
    pub fn append(&mut self, leaf: &[u8]) -> Result<u64, MerkleError> {
        let index = self.size();
        self.append_leaf_hash(self.hasher.hash_leaf(leaf))?;
        Ok(index)
    }

    /// Appends a leaf hash; returns the newly completed nodes.
    pub fn append_leaf_hash(&mut self, leaf_hash: Hash) -> Result<Vec<NewNode>, MerkleError> {
        let nodes = append_leaf(&self.hasher, self, self.size(), leaf_hash)?;
        for n in &nodes {
            let level = usize::from(n.level);
            if self.levels.len() <= level {
                self.levels.resize_with(level + 1, Vec::new);
            }
            // New nodes are always the next node of their level.
            self.levels[level].push(n.hash);
        }
        Ok(nodes)
    }

    fn check_size(&self, size: u64) -> Result<(), MerkleError> {
        let log_size = self.size();
        if size > log_size {
            return Err(MerkleError::SizeBeyondLog { size, log_size });
        }
        Ok(())
    }

    /// The current root.
    pub fn root(&self) -> Hash {
        self.frontier().root_with(&self.hasher)
    }

    /// The root of the first `size` leaves.
    pub fn root_at(&self, size: u64) -> Result<Hash, MerkleError> {
        self.check_size(size)?;
        Ok(root_at(&self.hasher, self, size)?)
    }

    /// The inclusion proof of leaf `index` in the tree of the first `size`
    /// leaves.
    pub fn inclusion_proof(&self, index: u64, size: u64) -> Result<InclusionProof, MerkleError> {
        self.check_size(size)?;
        Ok(inclusion_proof(&self.hasher, self, index, size)?)
    }

    /// The consistency proof from the first `old_size` to the first
    /// `new_size` leaves.
    pub fn consistency_proof(
        &self,
        old_size: u64,
        new_size: u64,
    ) -> Result<ConsistencyProof, MerkleError> {
        self.check_size(new_size)?;
        Ok(consistency_proof(&self.hasher, self, old_size, new_size)?)
    }

    /// The frontier of the current log.
    pub fn frontier(&self) -> Frontier {
        let nodes = tree_math::range_subtrees(0, self.size())
            .into_iter()
            .filter_map(|(level, index)| self.stored(level, index))
            .collect();
        Frontier {
            size: self.size(),
            nodes,
        }
    }

    fn stored(&self, level: u8, index: u64) -> Option<Hash> {
        let i = usize::try_from(index).ok()?;
        self.levels.get(usize::from(level))?.get(i).copied()
    }
}

impl<H: LogHasher> SubtreeStore for MemoryLog<H> {
    type Error = Infallible;

    fn node(&self, level: u8, index: u64) -> Result<Option<Hash>, Infallible> {
        Ok(self.stored(level, index))
    }
}

impl<H: LogHasher> NodeStore for MemoryLog<H> {
    type Error = MerkleError;

    fn leaf_hash(&self, index: u64) -> Result<Hash, MerkleError> {
        self.stored(0, index).ok_or(MerkleError::IndexOutOfRange {
            index,
            size: self.size(),
        })
    }
}

// ---------------------------------------------------------------------------
// Serde / borsh helpers
// ---------------------------------------------------------------------------

/// Serde helpers encoding a [`Hash`](type@Hash) as a 64-character hex string
/// (`#[serde(with = "hex_hash")]`).
pub mod hex_hash {
    use serde::de::Error as _;
    use serde::{Deserialize, Deserializer, Serializer};

    use super::Hash;

    /// Serializes `hash` as lowercase hex.
    pub fn serialize<S: Serializer>(hash: &Hash, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(&hex::encode(hash))
    }

    /// Deserializes a hash from exactly 64 hex characters.
    pub fn deserialize<'de, D: Deserializer<'de>>(deserializer: D) -> Result<Hash, D::Error> {
        let s = <std::borrow::Cow<'de, str>>::deserialize(deserializer)?;
        let mut out = [0u8; 32];
        hex::decode_to_slice(s.as_bytes(), &mut out)
            .map_err(|e| D::Error::custom(format_args!("invalid hex hash: {e}")))?;
        Ok(out)
    }
}

/// Serde helpers encoding a `Vec<Hash>` as a list of hex strings
/// (`#[serde(with = "hex_hash_vec")]`). Deserialization accepts at most
/// [`MAX_CONSISTENCY_PATH_LEN`] hashes; see [`hex_hash_vec::deserialize_bounded`]
/// for other limits.
pub mod hex_hash_vec {
    use std::fmt;

    use serde::de::{Error as _, SeqAccess, Visitor};
    use serde::ser::SerializeSeq;
    use serde::{Deserialize, Deserializer, Serializer};

    use super::{Hash, MAX_CONSISTENCY_PATH_LEN};

    /// Serializes `hashes` as a sequence of lowercase hex strings.
    pub fn serialize<S: Serializer>(hashes: &[Hash], serializer: S) -> Result<S::Ok, S::Error> {
        let mut seq = serializer.serialize_seq(Some(hashes.len()))?;
        for h in hashes {
            seq.serialize_element(&hex::encode(h))?;
        }
        seq.end()
    }

    /// Deserializes at most [`MAX_CONSISTENCY_PATH_LEN`] hex hashes.
    pub fn deserialize<'de, D: Deserializer<'de>>(deserializer: D) -> Result<Vec<Hash>, D::Error> {
        deserialize_bounded(deserializer, MAX_CONSISTENCY_PATH_LEN)
    }

    /// Deserializes at most `max` hex hashes, failing as soon as the input
    /// has more.
    pub fn deserialize_bounded<'de, D: Deserializer<'de>>(
        deserializer: D,
        max: usize,
    ) -> Result<Vec<Hash>, D::Error> {
        deserializer.deserialize_seq(BoundedVisitor { max })
    }

    struct HexHash(Hash);

    impl<'de> Deserialize<'de> for HexHash {
        fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
            super::hex_hash::deserialize(deserializer).map(HexHash)
        }
    }

    struct BoundedVisitor {
        max: usize,
    }

    impl<'de> Visitor<'de> for BoundedVisitor {
        type Value = Vec<Hash>;

        fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            write!(f, "a list of at most {} hex hashes", self.max)
        }

        fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Vec<Hash>, A::Error> {
            let mut out = Vec::with_capacity(seq.size_hint().unwrap_or(0).min(self.max));
            while let Some(HexHash(h)) = seq.next_element()? {
                if out.len() == self.max {
                    return Err(A::Error::custom(format_args!(
                        "too many hashes (more than {})",
                        self.max
                    )));
                }
                out.push(h);
            }
            Ok(out)
        }
    }
}

/// Length-bounded decoders for the hash lists of proofs and frontiers.
mod bounded {
    use borsh::io::{Error, ErrorKind, Read, Result};
    use borsh::BorshDeserialize;
    use serde::Deserializer;

    use super::{
        hex_hash_vec, Hash, MAX_CONSISTENCY_PATH_LEN, MAX_FRONTIER_LEN, MAX_INCLUSION_PATH_LEN,
    };

    fn borsh_hashes<R: Read>(reader: &mut R, max: usize) -> Result<Vec<Hash>> {
        let len = u32::deserialize_reader(reader)?;
        let len = usize::try_from(len).unwrap_or(usize::MAX);
        if len > max {
            return Err(Error::new(
                ErrorKind::InvalidData,
                format!("too many hashes: {len} > {max}"),
            ));
        }
        let mut out = Vec::with_capacity(len);
        for _ in 0..len {
            out.push(Hash::deserialize_reader(reader)?);
        }
        Ok(out)
    }

    pub(super) fn borsh_inclusion_path<R: Read>(reader: &mut R) -> Result<Vec<Hash>> {
        borsh_hashes(reader, MAX_INCLUSION_PATH_LEN)
    }

    pub(super) fn borsh_consistency_path<R: Read>(reader: &mut R) -> Result<Vec<Hash>> {
        borsh_hashes(reader, MAX_CONSISTENCY_PATH_LEN)
    }

    pub(super) fn borsh_frontier_nodes<R: Read>(reader: &mut R) -> Result<Vec<Hash>> {
        borsh_hashes(reader, MAX_FRONTIER_LEN)
    }

    pub(super) fn serde_inclusion_path<'de, D: Deserializer<'de>>(
        d: D,
    ) -> std::result::Result<Vec<Hash>, D::Error> {
        hex_hash_vec::deserialize_bounded(d, MAX_INCLUSION_PATH_LEN)
    }

    pub(super) fn serde_consistency_path<'de, D: Deserializer<'de>>(
        d: D,
    ) -> std::result::Result<Vec<Hash>, D::Error> {
        hex_hash_vec::deserialize_bounded(d, MAX_CONSISTENCY_PATH_LEN)
    }

    pub(super) fn serde_frontier_nodes<'de, D: Deserializer<'de>>(
        d: D,
    ) -> std::result::Result<Vec<Hash>, D::Error> {
        hex_hash_vec::deserialize_bounded(d, MAX_FRONTIER_LEN)
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use std::cell::Cell;

    use proptest::prelude::*;

    use super::*;

    // -----------------------------------------------------------------------
    // Known-answer vectors.
    //
    // Source: transparency-dev/merkle (the Go Merkle library of Certificate
    // Transparency, formerly in google/trillian and google/certificate-
    // transparency-go; the vectors originate from the RFC 6962 reference
    // tests of google/certificate-transparency):
    //  * testonly/constants.go @ 582a6ad190b6848f1d26f8bf08ddef29955d9db1 —
    //    LeafInputs, NodeHashes, RootHashes, EmptyRootHash;
    //  * proof/verify_test.go @ 02194e9afb6c1d95b5381350007963aa70fff472 —
    //    inclusionProofs, consistencyProofs, the corruption probes;
    //  * proof/proof_test.go @ 02a3e2029520f515596d5238c54fb0ac9e19bff4 —
    //    the node layouts of inclusion/consistency proofs (TestInclusion,
    //    TestConsistency), translated here to leaf ranges.
    // -----------------------------------------------------------------------

    const LEAVES: [&[u8]; 8] = [
        b"",
        b"\x00",
        b"\x10",
        b"\x20\x21",
        b"\x30\x31",
        b"\x40\x41\x42\x43",
        b"\x50\x51\x52\x53\x54\x55\x56\x57",
        b"\x60\x61\x62\x63\x64\x65\x66\x67\x68\x69\x6a\x6b\x6c\x6d\x6e\x6f",
    ];

    const EMPTY_ROOT: &str = "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855";

    /// Roots for tree sizes 1..=8.
    const ROOTS: [&str; 8] = [
        "6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d",
        "fac54203e7cc696cf0dfcb42c92a1d9dbaf70ad9e621f4bd8d98662f00e3c125",
        "aeb6bcfe274b70a14fb067a5e5578264db0fa9b51af5e0ba159158f329e06e77",
        "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7",
        "4e3bbb1f7b478dcfe71fb631631519a3bca12c9aefca1612bfce4c13a86264d4",
        "76e67dadbcdf1e10e1b74ddc608abd2f98dfb16fbce75277b5232a127f2087ef",
        "ddb89be403809e325750d3d263cd78929c2942b7942a34b77e122c9594a74c8c",
        "5dc9da79a70659a9ad559cb701ded9a2ab9d823aad2f4960cfe370eff4604328",
    ];

    /// Complete subtree hashes of the 8-leaf tree, `[level][index]`.
    const NODE_HASHES: [&[&str]; 4] = [
        &[
            "6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d",
            "96a296d224f285c67bee93c30f8a309157f0daa35dc5b87e410b78630a09cfc7",
            "0298d122906dcfc10892cb53a73992fc5b9f493ea4c9badb27b791b4127a7fe7",
            "07506a85fd9dd2f120eb694f86011e5bb4662e5c415a62917033d4a9624487e7",
            "bc1a0643b12e4d2d7c77918f44e0f4f79a838b6cf9ec5b5c283e1f4d88599e6b",
            "4271a26be0d8a84f0bd54c8c302e7cb3a3b5d1fa6780a40bcce2873477dab658",
            "b08693ec2e721597130641e8211e7eedccb4c26413963eee6c1e2ed16ffb1a5f",
            "46f6ffadd3d06a09ff3c5860d2755c8b9819db7df44251788c7d8e3180de8eb1",
        ],
        &[
            "fac54203e7cc696cf0dfcb42c92a1d9dbaf70ad9e621f4bd8d98662f00e3c125",
            "5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e",
            "0ebc5d3437fbe2db158b9f126a1d118e308181031d0a949f8dededebc558ef6a",
            "ca854ea128ed050b41b35ffc1b87b8eb2bde461e9e3b5596ece6b9d5975a0ae0",
        ],
        &[
            "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7",
            "6b47aaf29ee3c2af9af889bc1fb9254dabd31177f16232dd6aab035ca39bf6e4",
        ],
        &["5dc9da79a70659a9ad559cb701ded9a2ab9d823aad2f4960cfe370eff4604328"],
    ];

    /// `(leaf_index, tree_size, path)`; verify_test.go lists 1-based leaf
    /// numbers, converted to 0-based indices here.
    const INCLUSION_PROOFS: [(u64, u64, &[&str]); 5] = [
        (0, 1, &[]),
        (
            0,
            8,
            &[
                "96a296d224f285c67bee93c30f8a309157f0daa35dc5b87e410b78630a09cfc7",
                "5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e",
                "6b47aaf29ee3c2af9af889bc1fb9254dabd31177f16232dd6aab035ca39bf6e4",
            ],
        ),
        (
            5,
            8,
            &[
                "bc1a0643b12e4d2d7c77918f44e0f4f79a838b6cf9ec5b5c283e1f4d88599e6b",
                "ca854ea128ed050b41b35ffc1b87b8eb2bde461e9e3b5596ece6b9d5975a0ae0",
                "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7",
            ],
        ),
        (
            2,
            3,
            &["fac54203e7cc696cf0dfcb42c92a1d9dbaf70ad9e621f4bd8d98662f00e3c125"],
        ),
        (
            1,
            5,
            &[
                "6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d",
                "5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e",
                "bc1a0643b12e4d2d7c77918f44e0f4f79a838b6cf9ec5b5c283e1f4d88599e6b",
            ],
        ),
    ];

    /// `(old_size, new_size, path)`.
    const CONSISTENCY_PROOFS: [(u64, u64, &[&str]); 5] = [
        (1, 1, &[]),
        (
            1,
            8,
            &[
                "96a296d224f285c67bee93c30f8a309157f0daa35dc5b87e410b78630a09cfc7",
                "5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e",
                "6b47aaf29ee3c2af9af889bc1fb9254dabd31177f16232dd6aab035ca39bf6e4",
            ],
        ),
        (
            6,
            8,
            &[
                "0ebc5d3437fbe2db158b9f126a1d118e308181031d0a949f8dededebc558ef6a",
                "ca854ea128ed050b41b35ffc1b87b8eb2bde461e9e3b5596ece6b9d5975a0ae0",
                "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7",
            ],
        ),
        (
            2,
            5,
            &[
                "5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e",
                "bc1a0643b12e4d2d7c77918f44e0f4f79a838b6cf9ec5b5c283e1f4d88599e6b",
            ],
        ),
        (
            6,
            7,
            &[
                "0ebc5d3437fbe2db158b9f126a1d118e308181031d0a949f8dededebc558ef6a",
                "b08693ec2e721597130641e8211e7eedccb4c26413963eee6c1e2ed16ffb1a5f",
                "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7",
            ],
        ),
    ];

    /// verify_test.go `sha256SomeHash`.
    const SOME_HASH: &str = "abacaba000000000000000000000000000000000000000000060061e00123456";

    const HASHER: Sha256LogHasher = Sha256LogHasher;

    fn h(s: &str) -> Hash {
        let mut out = [0u8; 32];
        hex::decode_to_slice(s, &mut out).unwrap();
        out
    }

    fn hs(v: &[&str]) -> Vec<Hash> {
        v.iter().map(|s| h(s)).collect()
    }

    fn kat_log() -> MemoryLog {
        let mut log = MemoryLog::new();
        for leaf in LEAVES {
            log.append(leaf).unwrap();
        }
        log
    }

    fn log_of(leaves: &[Vec<u8>]) -> MemoryLog {
        let mut log = MemoryLog::new();
        for leaf in leaves {
            log.append(leaf).unwrap();
        }
        log
    }

    fn leaf_hashes(log: &MemoryLog) -> Vec<Hash> {
        (0..log.size()).map(|i| log.leaf_hash(i).unwrap()).collect()
    }

    // --- literal RFC 9162 recursive definitions, used as references --------

    fn ref_path(m: usize, d: &[Hash]) -> Vec<Hash> {
        let n = d.len();
        if n == 1 {
            return Vec::new();
        }
        let k = tree_math::split_point(n as u64) as usize;
        let (mut p, sibling) = if m < k {
            (ref_path(m, &d[..k]), mth(&HASHER, &d[k..]))
        } else {
            (ref_path(m - k, &d[k..]), mth(&HASHER, &d[..k]))
        };
        p.push(sibling);
        p
    }

    fn ref_subproof(m: usize, d: &[Hash], b: bool) -> Vec<Hash> {
        let n = d.len();
        if m == n {
            return if b { Vec::new() } else { vec![mth(&HASHER, d)] };
        }
        let k = tree_math::split_point(n as u64) as usize;
        let (mut p, last) = if m <= k {
            (ref_subproof(m, &d[..k], b), mth(&HASHER, &d[k..]))
        } else {
            (ref_subproof(m - k, &d[k..], false), mth(&HASHER, &d[..k]))
        };
        p.push(last);
        p
    }

    // --- corruption probes (ported from verify_test.go) ---------------------

    fn with_path(p: &InclusionProof, path: Vec<Hash>) -> InclusionProof {
        InclusionProof { path, ..p.clone() }
    }

    /// `(description, leaf hash, proof, root)` that must all fail.
    fn corrupt_inclusion(
        p: &InclusionProof,
        leaf: Hash,
        root: Hash,
    ) -> Vec<(String, Hash, InclusionProof, Hash)> {
        let mut out = Vec::new();
        let mut add =
            |d: &str, l: Hash, q: InclusionProof, r: Hash| out.push((d.to_string(), l, q, r));
        let idx = |i: u64| InclusionProof {
            leaf_index: i,
            ..p.clone()
        };
        let size = |s: u64| InclusionProof {
            tree_size: s,
            ..p.clone()
        };
        add("index - 1", leaf, idx(p.leaf_index.wrapping_sub(1)), root);
        add("index + 1", leaf, idx(p.leaf_index + 1), root);
        add("index ^ 2", leaf, idx(p.leaf_index ^ 2), root);
        add("size * 2", leaf, size(p.tree_size * 2), root);
        add("size / 2", leaf, size(p.tree_size / 2), root);
        add(
            "wrong leaf",
            HASHER.hash_leaf(b"WrongLeaf"),
            p.clone(),
            root,
        );
        add("empty root", leaf, p.clone(), h(EMPTY_ROOT));
        add("random root", leaf, p.clone(), h(SOME_HASH));
        let ext = |x: Hash| {
            let mut v = p.path.clone();
            v.push(x);
            with_path(p, v)
        };
        let pre = |x: Hash| {
            let mut v = vec![x];
            v.extend_from_slice(&p.path);
            with_path(p, v)
        };
        add("trailing garbage", leaf, ext([0; 32]), root);
        add("trailing root", leaf, ext(root), root);
        add("preceding garbage", leaf, pre([0; 32]), root);
        add("preceding root", leaf, pre(root), root);
        let n = p.path.len();
        for i in 0..n {
            let mut v = p.path.clone();
            v[i][0] ^= 8;
            add(
                &format!("modified proof[{i}] bit 3"),
                leaf,
                with_path(p, v),
                root,
            );
        }
        if n > 0 {
            add(
                "removed component",
                leaf,
                with_path(p, p.path[..n - 1].to_vec()),
                root,
            );
        }
        if n > 1 {
            let mut v = vec![p.path[0], h(SOME_HASH)];
            v.extend_from_slice(&p.path[1..]);
            add("inserted component", leaf, with_path(p, v), root);
        }
        out
    }

    fn with_cpath(p: &ConsistencyProof, path: Vec<Hash>) -> ConsistencyProof {
        ConsistencyProof { path, ..p.clone() }
    }

    /// `(description, old root, new root, proof)` that must all fail.
    fn corrupt_consistency(
        p: &ConsistencyProof,
        r1: Hash,
        r2: Hash,
    ) -> Vec<(String, Hash, Hash, ConsistencyProof)> {
        let mut out = Vec::new();
        let mut add =
            |d: &str, a: Hash, b: Hash, q: ConsistencyProof| out.push((d.to_string(), a, b, q));
        let sizes = |o: u64, n: u64| ConsistencyProof {
            old_size: o,
            new_size: n,
            ..p.clone()
        };
        let (s1, s2) = (p.old_size, p.new_size);
        add("size1 - 1", r1, r2, sizes(s1 - 1, s2));
        add("size1 + 1", r1, r2, sizes(s1 + 1, s2));
        add("size1 ^ 2", r1, r2, sizes(s1 ^ 2, s2));
        add("size2 * 2", r1, r2, sizes(s1, s2 * 2));
        add("size2 / 2", r1, r2, sizes(s1, s2 / 2));
        let wrong = HASHER.hash_leaf(b"WrongRoot");
        add("wrong root1", wrong, r2, p.clone());
        add("wrong root2", r1, wrong, p.clone());
        add("swapped roots", r2, r1, p.clone());
        add("empty proof", r1, r2, with_cpath(p, Vec::new()));
        let ext = |x: Hash| {
            let mut v = p.path.clone();
            v.push(x);
            with_cpath(p, v)
        };
        let pre = |x: Hash| {
            let mut v = vec![x];
            v.extend_from_slice(&p.path);
            with_cpath(p, v)
        };
        add("trailing garbage", r1, r2, ext([0; 32]));
        add("trailing root1", r1, r2, ext(r1));
        add("trailing root2", r1, r2, ext(r2));
        add("preceding garbage", r1, r2, pre([0; 32]));
        add("preceding root1", r1, r2, pre(r1));
        add("preceding root2", r1, r2, pre(r2));
        add("preceding proof[0]", r1, r2, pre(p.path[0]));
        let n = p.path.len();
        add(
            "truncated proof",
            r1,
            r2,
            with_cpath(p, p.path[..n - 1].to_vec()),
        );
        for i in 0..n {
            let mut v = p.path.clone();
            v[i][0] ^= 16;
            add(
                &format!("modified proof[{i}] bit 4"),
                r1,
                r2,
                with_cpath(p, v),
            );
        }
        out
    }

    // -----------------------------------------------------------------------
    // Known-answer tests
    // -----------------------------------------------------------------------

    #[test]
    fn kat_hasher() {
        assert_eq!(HASHER.empty_root(), h(EMPTY_ROOT));
        assert_eq!(HASHER.hash_leaf(b""), h(ROOTS[0]));
        // Node hash = SHA-256(0x01 || left || right).
        let (l, r) = (h(NODE_HASHES[0][0]), h(NODE_HASHES[0][1]));
        let mut buf = vec![1u8];
        buf.extend_from_slice(&l);
        buf.extend_from_slice(&r);
        let direct: Hash = Sha256::digest(&buf).into();
        assert_eq!(HASHER.hash_children(&l, &r), direct);
        assert_eq!(direct, h(NODE_HASHES[1][0]));
    }

    #[test]
    fn kat_node_hashes() {
        let log = kat_log();
        for (level, row) in NODE_HASHES.iter().enumerate() {
            for (index, want) in row.iter().enumerate() {
                assert_eq!(
                    log.node(level as u8, index as u64).unwrap(),
                    Some(h(want)),
                    "node ({level}, {index})"
                );
            }
            assert_eq!(log.node(level as u8, row.len() as u64).unwrap(), None);
        }
        assert_eq!(log.node(4, 0).unwrap(), None);
    }

    #[test]
    fn kat_roots() {
        let log = kat_log();
        let leaves = leaf_hashes(&log);
        let mut frontier = Frontier::new();
        assert_eq!(frontier.root(), h(EMPTY_ROOT));
        assert_eq!(log.root_at(0).unwrap(), h(EMPTY_ROOT));
        assert_eq!(mth(&HASHER, &[]), h(EMPTY_ROOT));
        for (i, want) in ROOTS.iter().enumerate() {
            let size = i as u64 + 1;
            frontier.push(HASHER.hash_leaf(LEAVES[i])).unwrap();
            assert_eq!(frontier.root(), h(want), "frontier size {size}");
            assert_eq!(log.root_at(size).unwrap(), h(want), "store size {size}");
            assert_eq!(mth(&HASHER, &leaves[..=i]), h(want), "mth size {size}");
            let adapter = LeafSubtrees::new(&log, &HASHER);
            assert_eq!(root_at(&HASHER, &adapter, size).unwrap(), h(want));
        }
        assert_eq!(log.root(), h(ROOTS[7]));
    }

    #[test]
    fn kat_inclusion_proofs() {
        let log = kat_log();
        for (index, size, path) in INCLUSION_PROOFS {
            let want = InclusionProof {
                leaf_index: index,
                tree_size: size,
                path: hs(path),
            };
            let proof = log.inclusion_proof(index, size).unwrap();
            assert_eq!(proof, want, "generated proof {index}/{size}");
            let leaf = HASHER.hash_leaf(LEAVES[index as usize]);
            let root = h(ROOTS[size as usize - 1]);
            assert_eq!(
                root_from_inclusion_proof(&HASHER, &leaf, &want).unwrap(),
                root
            );
            verify_inclusion(&HASHER, &leaf, &want, &root).unwrap();
            for (desc, l, p, r) in corrupt_inclusion(&want, leaf, root) {
                assert!(
                    verify_inclusion(&HASHER, &l, &p, &r).is_err(),
                    "{index}/{size}: verified against {desc}"
                );
            }
        }
    }

    #[test]
    fn kat_consistency_proofs() {
        let log = kat_log();
        for (old, new, path) in CONSISTENCY_PROOFS {
            let want = ConsistencyProof {
                old_size: old,
                new_size: new,
                path: hs(path),
            };
            assert_eq!(log.consistency_proof(old, new).unwrap(), want);
            let r1 = h(ROOTS[old as usize - 1]);
            let r2 = h(ROOTS[new as usize - 1]);
            verify_consistency(&HASHER, &r1, &r2, &want).unwrap();
            if want.path.is_empty() {
                continue;
            }
            for (desc, a, b, p) in corrupt_consistency(&want, r1, r2) {
                assert!(
                    verify_consistency(&HASHER, &a, &b, &p).is_err(),
                    "{old}->{new}: verified against {desc}"
                );
            }
        }
    }

    /// Node layouts from proof_test.go (TestInclusion / TestConsistency);
    /// `id(level, index)` becomes the range of leaves it covers and a rehash
    /// group becomes the range of the non-perfect subtree it folds to.
    #[test]
    fn kat_proof_layouts() {
        type Case = (u64, u64, &'static [(u64, u64)]);
        let inclusion: &[Case] = &[
            (0, 1, &[]),
            (0, 2, &[(1, 2)]),
            (1, 2, &[(0, 1)]),
            (1, 3, &[(0, 1), (2, 3)]),
            (0, 7, &[(1, 2), (2, 4), (4, 7)]),
            (1, 7, &[(0, 1), (2, 4), (4, 7)]),
            (2, 7, &[(3, 4), (0, 2), (4, 7)]),
            (3, 7, &[(2, 3), (0, 2), (4, 7)]),
            (4, 7, &[(5, 6), (6, 7), (0, 4)]),
            (5, 7, &[(4, 5), (6, 7), (0, 4)]),
            (6, 7, &[(4, 6), (0, 4)]),
            (2, 4, &[(3, 4), (0, 2)]),
            (3, 5, &[(2, 3), (0, 2), (4, 5)]),
            (3, 6, &[(2, 3), (0, 2), (4, 6)]),
            (4, 6, &[(5, 6), (0, 4)]),
            (10, 15, &[(11, 12), (8, 10), (12, 15), (0, 8)]),
            (24, 31, &[(25, 26), (26, 28), (28, 31), (16, 24), (0, 16)]),
            (
                81,
                95,
                &[(80, 81), (82, 84), (84, 88), (88, 95), (64, 80), (0, 64)],
            ),
        ];
        for &(index, size, want) in inclusion {
            let got = tree_math::inclusion_ranges(index, size).unwrap();
            let want: Vec<Range<u64>> = want.iter().map(|&(a, b)| a..b).collect();
            assert_eq!(got, want, "inclusion {index}/{size}");
        }
        for (index, size) in [(0, 0), (1, 0), (2, 1), (3, 0), (8, 7)] {
            assert_eq!(
                tree_math::inclusion_ranges(index, size),
                Err(MerkleError::IndexOutOfRange { index, size })
            );
        }
        let consistency: &[Case] = &[
            (1, 2, &[(1, 2)]),
            (1, 4, &[(1, 2), (2, 4)]),
            (1, 6, &[(1, 2), (2, 4), (4, 6)]),
            (2, 3, &[(2, 3)]),
            (2, 8, &[(2, 4), (4, 8)]),
            (3, 7, &[(2, 3), (3, 4), (0, 2), (4, 7)]),
            (4, 7, &[(4, 7)]),
            (5, 7, &[(4, 5), (5, 6), (6, 7), (0, 4)]),
            (6, 7, &[(4, 6), (6, 7), (0, 4)]),
            (7, 8, &[(6, 7), (7, 8), (4, 6), (0, 4)]),
            (1, 1, &[]),
            (2, 2, &[]),
            (3, 3, &[]),
            (4, 4, &[]),
            (5, 5, &[]),
            (7, 7, &[]),
            (8, 8, &[]),
            (2, 4, &[(2, 4)]),
            (3, 5, &[(2, 3), (3, 4), (0, 2), (4, 5)]),
            (3, 6, &[(2, 3), (3, 4), (0, 2), (4, 6)]),
            (4, 6, &[(4, 6)]),
            (1, 7, &[(1, 2), (2, 4), (4, 7)]),
            (10, 15, &[(8, 10), (10, 12), (12, 15), (0, 8)]),
            (24, 31, &[(16, 24), (24, 31), (0, 16)]),
            (
                81,
                95,
                &[
                    (80, 81),
                    (81, 82),
                    (82, 84),
                    (84, 88),
                    (88, 95),
                    (64, 80),
                    (0, 64),
                ],
            ),
        ];
        for &(old, new, want) in consistency {
            let got = tree_math::consistency_ranges(old, new).unwrap();
            let want: Vec<Range<u64>> = want.iter().map(|&(a, b)| a..b).collect();
            assert_eq!(got, want, "consistency {old}->{new}");
        }
        assert_eq!(
            tree_math::consistency_ranges(5, 0),
            Err(MerkleError::OldSizeGreaterThanNew { old: 5, new: 0 })
        );
        assert_eq!(
            tree_math::consistency_ranges(9, 8),
            Err(MerkleError::OldSizeGreaterThanNew { old: 9, new: 8 })
        );
    }

    // -----------------------------------------------------------------------
    // Edge cases and errors (verify_test.go TestVerifyInclusion*,
    // TestVerifyConsistency, adapted to typed hashes)
    // -----------------------------------------------------------------------

    #[test]
    fn inclusion_edge_cases() {
        let leaf = HASHER.hash_leaf(b"data");
        let single = InclusionProof {
            leaf_index: 0,
            tree_size: 1,
            path: vec![],
        };
        verify_inclusion(&HASHER, &leaf, &single, &leaf).unwrap();
        assert_eq!(
            verify_inclusion(&HASHER, &leaf, &single, &h(EMPTY_ROOT)),
            Err(MerkleError::RootMismatch)
        );
        for (index, size) in [(0, 0), (1, 0), (2, 1), (u64::MAX, u64::MAX)] {
            let p = InclusionProof {
                leaf_index: index,
                tree_size: size,
                path: vec![],
            };
            assert_eq!(
                verify_inclusion(&HASHER, &h(SOME_HASH), &p, &h(EMPTY_ROOT)),
                Err(MerkleError::IndexOutOfRange { index, size })
            );
        }
        let log = kat_log();
        assert_eq!(
            log.inclusion_proof(8, 8),
            Err(MerkleError::IndexOutOfRange { index: 8, size: 8 })
        );
        assert_eq!(
            log.inclusion_proof(0, 9),
            Err(MerkleError::SizeBeyondLog {
                size: 9,
                log_size: 8
            })
        );
        // Generic functions report the first missing node.
        assert!(matches!(
            inclusion_proof(&HASHER, &log, 0, 9),
            Err(TreeError::Merkle(MerkleError::MissingNode { .. }))
        ));
        assert!(matches!(
            root_at(&HASHER, &log, 12),
            Err(TreeError::Merkle(MerkleError::MissingNode {
                level: 2,
                index: 2
            }))
        ));
        // Huge trees: lengths are checked before any maths, no overflow.
        let p = InclusionProof {
            leaf_index: 0,
            tree_size: u64::MAX,
            path: vec![[7; 32]; 64],
        };
        assert_eq!(
            verify_inclusion(&HASHER, &leaf, &p, &leaf),
            Err(MerkleError::RootMismatch)
        );
        let p = InclusionProof {
            leaf_index: u64::MAX - 1,
            tree_size: u64::MAX,
            path: vec![[7; 32]; 64],
        };
        assert_eq!(
            verify_inclusion(&HASHER, &leaf, &p, &leaf),
            Err(MerkleError::WrongProofLength {
                expected: 63,
                found: 64
            })
        );
    }

    #[test]
    fn consistency_edge_cases() {
        let (r1, r2) = (HASHER.hash_leaf(b"1"), HASHER.hash_leaf(b"2"));
        let empty = h(EMPTY_ROOT);
        let p = |old: u64, new: u64, path: Vec<Hash>| ConsistencyProof {
            old_size: old,
            new_size: new,
            path,
        };
        // Equal sizes: empty proof, equal roots.
        verify_consistency(&HASHER, &r1, &r1, &p(1, 1, vec![])).unwrap();
        verify_consistency(&HASHER, &r2, &r2, &p(5, 5, vec![])).unwrap();
        assert_eq!(
            verify_consistency(&HASHER, &r1, &r2, &p(1, 1, vec![])),
            Err(MerkleError::RootMismatch)
        );
        assert_eq!(
            verify_consistency(&HASHER, &empty, &empty, &p(1, 1, vec![empty])),
            Err(MerkleError::WrongProofLength {
                expected: 0,
                found: 1
            })
        );
        // Empty old tree.
        for new in [0, 1, 8] {
            assert_eq!(
                verify_consistency(&HASHER, &empty, &r2, &p(0, new, vec![])),
                Err(MerkleError::EmptyOldTree)
            );
        }
        // Time travel.
        assert_eq!(
            verify_consistency(&HASHER, &r1, &r2, &p(2, 1, vec![])),
            Err(MerkleError::OldSizeGreaterThanNew { old: 2, new: 1 })
        );
        // Empty proof for different sizes.
        assert_eq!(
            verify_consistency(&HASHER, &r1, &r2, &p(1, 2, vec![])),
            Err(MerkleError::WrongProofLength {
                expected: 1,
                found: 0
            })
        );
        let log = kat_log();
        assert_eq!(log.consistency_proof(0, 3), Err(MerkleError::EmptyOldTree));
        assert_eq!(
            log.consistency_proof(4, 3),
            Err(MerkleError::OldSizeGreaterThanNew { old: 4, new: 3 })
        );
        assert_eq!(
            log.consistency_proof(4, 9),
            Err(MerkleError::SizeBeyondLog {
                size: 9,
                log_size: 8
            })
        );
        // The longest consistency proof has 65 hashes.
        let big = (1u64 << 63) + 1;
        assert_eq!(tree_math::consistency_proof_len(3, big), Ok(65));
        assert_eq!(tree_math::consistency_ranges(3, big).unwrap().len(), 65);
        let q = p(3, big, vec![[9; 32]; 65]);
        assert_eq!(
            verify_consistency(&HASHER, &r1, &r2, &q),
            Err(MerkleError::RootMismatch)
        );
    }

    #[test]
    fn tree_math_lengths_match_ranges_exhaustive() {
        for size in 1..=130u64 {
            for index in 0..size {
                assert_eq!(
                    tree_math::inclusion_proof_len(index, size).unwrap(),
                    tree_math::inclusion_ranges(index, size).unwrap().len(),
                    "inclusion {index}/{size}"
                );
            }
            for old in 1..=size {
                assert_eq!(
                    tree_math::consistency_proof_len(old, size).unwrap(),
                    tree_math::consistency_ranges(old, size).unwrap().len(),
                    "consistency {old}->{size}"
                );
            }
        }
        assert_eq!(tree_math::split_point(0), 0);
        assert_eq!(tree_math::split_point(1), 0);
        assert_eq!(tree_math::split_point(2), 1);
        assert_eq!(tree_math::split_point(5), 4);
        assert_eq!(tree_math::split_point(8), 4);
        assert_eq!(tree_math::split_point(u64::MAX), 1 << 63);
        assert_eq!(tree_math::inclusion_proof_len(0, u64::MAX), Ok(64));
        assert_eq!(
            tree_math::inclusion_proof_len(u64::MAX - 1, u64::MAX),
            Ok(63)
        );
        assert_eq!(tree_math::range_subtrees(0, 0), vec![]);
        assert_eq!(
            tree_math::range_subtrees(0, 7),
            vec![(2, 0), (1, 2), (0, 6)]
        );
        assert_eq!(
            tree_math::range_subtrees(88, 95),
            vec![(2, 22), (1, 46), (0, 94)]
        );
    }

    #[test]
    fn exhaustive_small_trees() {
        let leaves: Vec<Vec<u8>> = (0u32..70).map(|i| i.to_le_bytes().to_vec()).collect();
        let log = log_of(&leaves);
        let hashes = leaf_hashes(&log);
        for n in 1..=70u64 {
            let root = log.root_at(n).unwrap();
            assert_eq!(root, mth(&HASHER, &hashes[..n as usize]));
            for i in 0..n {
                let p = log.inclusion_proof(i, n).unwrap();
                assert_eq!(p.path, ref_path(i as usize, &hashes[..n as usize]));
                verify_inclusion(&HASHER, &hashes[i as usize], &p, &root).unwrap();
            }
            for m in 1..=n {
                let p = log.consistency_proof(m, n).unwrap();
                if m < n {
                    assert_eq!(
                        p.path,
                        ref_subproof(m as usize, &hashes[..n as usize], true)
                    );
                }
                let old_root = log.root_at(m).unwrap();
                verify_consistency(&HASHER, &old_root, &root, &p).unwrap();
            }
        }
        // Full corruption probes on a few non-trivial shapes.
        for (m, n) in [(3, 7), (5, 13), (16, 33), (31, 64), (63, 70)] {
            let p = log.consistency_proof(m, n).unwrap();
            let (r1, r2) = (log.root_at(m).unwrap(), log.root_at(n).unwrap());
            for (desc, a, b, q) in corrupt_consistency(&p, r1, r2) {
                assert!(
                    verify_consistency(&HASHER, &a, &b, &q).is_err(),
                    "{m}->{n}: verified against {desc}"
                );
            }
            let i = m - 1;
            let p = log.inclusion_proof(i, n).unwrap();
            for (desc, l, q, r) in corrupt_inclusion(&p, hashes[i as usize], r2) {
                assert!(
                    verify_inclusion(&HASHER, &l, &q, &r).is_err(),
                    "{i}/{n}: verified against {desc}"
                );
            }
        }
    }

    #[test]
    fn error_codes_are_stable_and_distinct() {
        let all = [
            MerkleError::IndexOutOfRange { index: 1, size: 1 },
            MerkleError::WrongProofLength {
                expected: 1,
                found: 2,
            },
            MerkleError::RootMismatch,
            MerkleError::OldSizeGreaterThanNew { old: 2, new: 1 },
            MerkleError::EmptyOldTree,
            MerkleError::SizeBeyondLog {
                size: 2,
                log_size: 1,
            },
            MerkleError::MissingNode { level: 0, index: 0 },
            MerkleError::TreeFull,
            MerkleError::InvalidFrontier {
                size: 1,
                expected: 1,
                found: 0,
            },
        ];
        let codes: Vec<&str> = all.iter().map(MerkleError::code).collect();
        assert_eq!(
            codes,
            [
                "index_out_of_range",
                "wrong_proof_length",
                "root_mismatch",
                "old_size_greater_than_new",
                "empty_old_tree",
                "size_beyond_log",
                "missing_node",
                "tree_full",
                "invalid_frontier",
            ]
        );
        for e in &all {
            assert!(!e.to_string().is_empty());
        }
        let t: TreeError<String> = TreeError::Store("disk".into());
        assert_eq!(t.code(), "store_error");
        assert_eq!(t.to_string(), "node store error: disk");
        let t: TreeError<String> = MerkleError::RootMismatch.into();
        assert_eq!(t.code(), "root_mismatch");
    }

    // -----------------------------------------------------------------------
    // Appending, frontier, stores
    // -----------------------------------------------------------------------

    #[test]
    fn append_reports_completed_nodes() {
        let mut log = MemoryLog::new();
        let mut frontier = Frontier::new();
        for (i, leaf) in LEAVES.iter().enumerate() {
            let lh = HASHER.hash_leaf(leaf);
            let from_store = append_leaf(&HASHER, &log, i as u64, lh).unwrap();
            let from_frontier = frontier.append(&HASHER, lh).unwrap();
            let stored = log.append_leaf_hash(lh).unwrap();
            assert_eq!(from_store, stored);
            assert_eq!(from_frontier, stored);
            for n in &stored {
                assert_eq!(h(NODE_HASHES[n.level as usize][n.index as usize]), n.hash);
            }
        }
        // Leaf 7 completes (0,7), (1,3), (2,1), (3,0).
        let mut f = Frontier::from_store(&log, 7).unwrap();
        let nodes = f.append(&HASHER, HASHER.hash_leaf(LEAVES[7])).unwrap();
        let ids: Vec<(u8, u64)> = nodes.iter().map(|n| (n.level, n.index)).collect();
        assert_eq!(ids, [(0, 7), (1, 3), (2, 1), (3, 0)]);
        assert_eq!(f, log.frontier());
        assert_eq!(node_key(2, 0x0102), [2, 0, 0, 0, 0, 0, 0, 1, 2]);
        assert_eq!(nodes[3].key(), [3, 0, 0, 0, 0, 0, 0, 0, 0]);
        // Appending at the wrong size reads a missing sibling.
        assert!(matches!(
            append_leaf(&HASHER, &log, 11, [0; 32]),
            Err(TreeError::Merkle(MerkleError::MissingNode {
                level: 0,
                index: 10
            }))
        ));
    }

    #[test]
    fn frontier_full_and_invalid() {
        let nodes = vec![[1u8; 32]; 64];
        let mut f = Frontier::from_parts(u64::MAX, nodes).unwrap();
        assert_eq!(f.push([0; 32]), Err(MerkleError::TreeFull));
        assert_eq!(f.size(), u64::MAX);
        assert!(append_leaf(&HASHER, &MemoryLog::new(), u64::MAX, [0; 32]).is_err());
        assert_eq!(
            Frontier::from_parts(3, vec![[0; 32]]),
            Err(MerkleError::InvalidFrontier {
                size: 3,
                expected: 2,
                found: 1
            })
        );
        assert!(Frontier::new().is_empty());
        assert_eq!(Frontier::new().nodes(), &[] as &[Hash]);
    }

    /// A store that counts node reads.
    struct Counting<'a> {
        inner: &'a MemoryLog,
        reads: Cell<usize>,
    }

    impl SubtreeStore for Counting<'_> {
        type Error = Infallible;
        fn node(&self, level: u8, index: u64) -> Result<Option<Hash>, Infallible> {
            self.reads.set(self.reads.get() + 1);
            self.inner.node(level, index)
        }
    }

    #[test]
    fn generation_uses_logarithmic_reads() {
        let leaves: Vec<Vec<u8>> = (0u32..1000).map(|i| i.to_be_bytes().to_vec()).collect();
        let log = log_of(&leaves);
        let store = Counting {
            inner: &log,
            reads: Cell::new(0),
        };
        let mut max_incl = 0;
        let mut max_cons = 0;
        for n in [1u64, 2, 3, 255, 256, 257, 511, 640, 999, 1000] {
            let depth = 64 - (n - 1).leading_zeros() as usize; // ceil(log2 n)
            store.reads.set(0);
            root_at(&HASHER, &store, n).unwrap();
            assert!(store.reads.get() <= depth + 1);
            for i in (0..n).step_by(7) {
                store.reads.set(0);
                let p = inclusion_proof(&HASHER, &store, i, n).unwrap();
                assert!(
                    store.reads.get() <= 2 * depth,
                    "{i}/{n}: {}",
                    store.reads.get()
                );
                max_incl = max_incl.max(store.reads.get());
                assert_eq!(p, log.inclusion_proof(i, n).unwrap());
            }
            for m in (1..=n).step_by(5) {
                store.reads.set(0);
                consistency_proof(&HASHER, &store, m, n).unwrap();
                assert!(
                    store.reads.get() <= 2 * depth + 1,
                    "{m}->{n}: {}",
                    store.reads.get()
                );
                max_cons = max_cons.max(store.reads.get());
            }
        }
        assert!(max_incl > 0 && max_cons > 0);
    }

    #[test]
    fn leaf_only_store_adapter() {
        let leaves: Vec<Vec<u8>> = (0u32..40).map(|i| vec![i as u8; i as usize]).collect();
        let log = log_of(&leaves);
        let adapter = LeafSubtrees::new(&log, &HASHER);
        for n in 1..=40u64 {
            assert_eq!(
                root_at(&HASHER, &adapter, n).unwrap(),
                log.root_at(n).unwrap()
            );
            for i in (0..n).step_by(3) {
                assert_eq!(
                    inclusion_proof(&HASHER, &adapter, i, n).unwrap(),
                    log.inclusion_proof(i, n).unwrap()
                );
            }
            assert_eq!(
                consistency_proof(&HASHER, &adapter, n / 2 + 1, n).unwrap(),
                log.consistency_proof(n / 2 + 1, n).unwrap()
            );
        }
        // Missing leaves surface as the store's error.
        assert!(matches!(
            root_at(&HASHER, &adapter, 41),
            Err(TreeError::Store(MerkleError::IndexOutOfRange {
                index: 40,
                ..
            }))
        ));
        assert_eq!(adapter.node(64, 0).unwrap(), None);
        assert_eq!(adapter.node(63, 2).unwrap(), None);
    }

    /// A different hasher plugs in without touching the tree maths.
    #[derive(Debug, Default)]
    struct XorHasher;

    impl LogHasher for XorHasher {
        fn hash_leaf(&self, leaf: &[u8]) -> Hash {
            let mut out = [0x55; 32];
            for (i, b) in leaf.iter().enumerate() {
                out[i % 32] ^= b;
            }
            out
        }
        fn hash_children(&self, left: &Hash, right: &Hash) -> Hash {
            let mut out = [0u8; 32];
            for i in 0..32 {
                out[i] = left[i].rotate_left(1) ^ right[(i + 1) % 32] ^ 0xa5;
            }
            out
        }
        fn empty_root(&self) -> Hash {
            [0xee; 32]
        }
    }

    #[test]
    fn pluggable_hasher() {
        let mut log = MemoryLog::with_hasher(XorHasher);
        let mut f = Frontier::new();
        assert_eq!(log.root(), [0xee; 32]);
        for i in 0u8..20 {
            log.append(&[i, i, i]).unwrap();
            f.push_with(&XorHasher, XorHasher.hash_leaf(&[i, i, i]))
                .unwrap();
            assert_eq!(f.root_with(&XorHasher), log.root());
        }
        let leaf = XorHasher.hash_leaf(&[3, 3, 3]);
        let p = log.inclusion_proof(3, 20).unwrap();
        verify_inclusion(&XorHasher, &leaf, &p, &log.root()).unwrap();
        let c = log.consistency_proof(7, 20).unwrap();
        verify_consistency(&XorHasher, &log.root_at(7).unwrap(), &log.root(), &c).unwrap();
        assert_ne!(log.root(), kat_log().root());
    }

    // -----------------------------------------------------------------------
    // Encodings
    // -----------------------------------------------------------------------

    #[test]
    fn serde_json_hex_encoding() {
        let log = kat_log();
        let p = log.inclusion_proof(5, 8).unwrap();
        let json = serde_json::to_value(&p).unwrap();
        assert_eq!(
            json,
            serde_json::json!({
                "leaf_index": 5,
                "tree_size": 8,
                "path": INCLUSION_PROOFS[2].2,
            })
        );
        let back: InclusionProof = serde_json::from_value(json).unwrap();
        assert_eq!(back, p);
        let back: InclusionProof =
            serde_json::from_str(&serde_json::to_string(&p).unwrap()).unwrap();
        assert_eq!(back, p);

        let c = log.consistency_proof(6, 8).unwrap();
        let s = serde_json::to_string(&c).unwrap();
        assert!(s.contains("\"0ebc5d3437fbe2db158b9f126a1d118e308181031d0a949f8dededebc558ef6a\""));
        assert_eq!(serde_json::from_str::<ConsistencyProof>(&s).unwrap(), c);

        // Bad hex, wrong length, unknown fields.
        for bad in [
            r#"{"leaf_index":0,"tree_size":2,"path":["zz"]}"#,
            r#"{"leaf_index":0,"tree_size":2,"path":["00"]}"#,
            r#"{"leaf_index":0,"tree_size":1,"path":[],"extra":1}"#,
        ] {
            assert!(
                serde_json::from_str::<InclusionProof>(bad).is_err(),
                "{bad}"
            );
        }

        // Length bounds: 64 for inclusion paths, 65 for consistency paths.
        let path = |n: usize| vec![hex::encode([0xab; 32]); n];
        let incl = |n: usize| serde_json::json!({"leaf_index": 0, "tree_size": 1, "path": path(n)});
        assert!(serde_json::from_value::<InclusionProof>(incl(64)).is_ok());
        assert!(serde_json::from_value::<InclusionProof>(incl(65)).is_err());
        let cons = |n: usize| serde_json::json!({"old_size": 1, "new_size": 2, "path": path(n)});
        assert!(serde_json::from_value::<ConsistencyProof>(cons(65)).is_ok());
        assert!(serde_json::from_value::<ConsistencyProof>(cons(66)).is_err());
    }

    #[test]
    fn borsh_encoding_and_bounds() {
        let log = kat_log();
        let p = log.inclusion_proof(1, 5).unwrap();
        let bytes = borsh::to_vec(&p).unwrap();
        // u64 + u64 + u32 length + 3 * 32.
        assert_eq!(bytes.len(), 8 + 8 + 4 + 3 * 32);
        assert_eq!(borsh::from_slice::<InclusionProof>(&bytes).unwrap(), p);
        let c = log.consistency_proof(2, 5).unwrap();
        let bytes = borsh::to_vec(&c).unwrap();
        assert_eq!(borsh::from_slice::<ConsistencyProof>(&bytes).unwrap(), c);

        let encode = |n: usize| {
            let mut b = Vec::new();
            b.extend_from_slice(&1u64.to_le_bytes());
            b.extend_from_slice(&2u64.to_le_bytes());
            b.extend_from_slice(&(n as u32).to_le_bytes());
            b.extend(std::iter::repeat_n(7u8, 32 * n));
            b
        };
        assert!(borsh::from_slice::<InclusionProof>(&encode(64)).is_ok());
        assert!(borsh::from_slice::<InclusionProof>(&encode(65)).is_err());
        assert!(borsh::from_slice::<ConsistencyProof>(&encode(65)).is_ok());
        assert!(borsh::from_slice::<ConsistencyProof>(&encode(66)).is_err());
        // A huge length prefix is rejected before allocating.
        let mut huge = encode(0);
        huge[16..20].copy_from_slice(&u32::MAX.to_le_bytes());
        assert!(borsh::from_slice::<InclusionProof>(&huge).is_err());
        // Truncated input.
        let mut short = encode(3);
        short.pop();
        assert!(borsh::from_slice::<InclusionProof>(&short).is_err());
    }

    #[test]
    fn frontier_encodings() {
        let log = kat_log();
        let mut f = Frontier::new();
        for i in 0..7 {
            f.push(log.leaf_hash(i).unwrap()).unwrap();
        }
        assert_eq!(f.size(), 7);
        assert_eq!(
            f.nodes(),
            &[
                h(NODE_HASHES[2][0]),
                h(NODE_HASHES[1][2]),
                h(NODE_HASHES[0][6])
            ]
        );

        let bytes = borsh::to_vec(&f).unwrap();
        assert_eq!(bytes.len(), 8 + 4 + 3 * 32);
        let back: Frontier = borsh::from_slice(&bytes).unwrap();
        assert_eq!(back, f);
        assert_eq!(back.root(), h(ROOTS[6]));
        // Size 7 with 2 nodes is rejected.
        let bad = Frontier {
            size: 7,
            nodes: f.nodes()[..2].to_vec(),
        };
        assert!(borsh::from_slice::<Frontier>(&borsh::to_vec(&bad).unwrap()).is_err());

        let json = serde_json::to_value(&f).unwrap();
        assert_eq!(json["size"], 7);
        assert_eq!(json["nodes"][2], NODE_HASHES[0][6]);
        let back: Frontier = serde_json::from_value(json).unwrap();
        assert_eq!(back, f);
        let bad = serde_json::json!({"size": 4, "nodes": [NODE_HASHES[0][0], NODE_HASHES[0][1]]});
        assert!(serde_json::from_value::<Frontier>(bad).is_err());
        let bad = serde_json::json!({"size": 1, "nodes": [NODE_HASHES[0][0]], "x": 0});
        assert!(serde_json::from_value::<Frontier>(bad).is_err());
    }

    // -----------------------------------------------------------------------
    // Property tests
    // -----------------------------------------------------------------------

    fn leaves_strategy() -> impl Strategy<Value = Vec<Vec<u8>>> {
        prop::collection::vec(prop::collection::vec(any::<u8>(), 0..12), 1..=300)
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(96))]

        #[test]
        fn prop_roots_agree(leaves in leaves_strategy(), k_seed in any::<prop::sample::Index>()) {
            let mut log = MemoryLog::new();
            let mut frontier = Frontier::new();
            let mut hashes = Vec::new();
            for leaf in &leaves {
                let lh = HASHER.hash_leaf(leaf);
                hashes.push(lh);
                log.append(leaf).unwrap();
                frontier.push(lh).unwrap();
                prop_assert_eq!(frontier.root(), log.root_at(frontier.size()).unwrap());
            }
            let n = leaves.len();
            prop_assert_eq!(frontier.root(), mth(&HASHER, &hashes));
            prop_assert_eq!(log.root(), frontier.root());
            prop_assert_eq!(log.frontier(), frontier.clone());
            prop_assert_eq!(Frontier::from_store(&log, n as u64).unwrap(), frontier);
            let k = k_seed.index(n + 1);
            prop_assert_eq!(log.root_at(k as u64).unwrap(), mth(&HASHER, &hashes[..k]));
            prop_assert_eq!(
                Frontier::from_store(&log, k as u64).unwrap().root(),
                mth(&HASHER, &hashes[..k])
            );
        }

        #[test]
        fn prop_inclusion(
            leaves in leaves_strategy(),
            i_seed in any::<prop::sample::Index>(),
            j_seed in any::<prop::sample::Index>(),
            bit in 0usize..256,
        ) {
            let log = log_of(&leaves);
            let hashes = leaf_hashes(&log);
            let n = hashes.len();
            let root = log.root();
            for (i, leaf) in hashes.iter().enumerate() {
                let (i, n) = (i as u64, n as u64);
                let p = log.inclusion_proof(i, n).unwrap();
                prop_assert_eq!(p.path.len(), tree_math::inclusion_proof_len(i, n).unwrap());
                prop_assert!(verify_inclusion(&HASHER, leaf, &p, &root).is_ok());
            }
            let i = i_seed.index(n);
            let p = log.inclusion_proof(i as u64, n as u64).unwrap();
            prop_assert_eq!(&p.path, &ref_path(i, &hashes));
            // Wrong index.
            let j = j_seed.index(n);
            if j != i {
                let q = InclusionProof { leaf_index: j as u64, ..p.clone() };
                prop_assert!(verify_inclusion(&HASHER, &hashes[i], &q, &root).is_err());
            }
            // Wrong leaf.
            let wrong_leaf = HASHER.hash_leaf(b"not a leaf");
            prop_assert_eq!(
                verify_inclusion(&HASHER, &wrong_leaf, &p, &root),
                Err(MerkleError::RootMismatch)
            );
            // Wrong root.
            let mut wrong_root = root;
            wrong_root[bit / 8] ^= 1 << (bit % 8);
            prop_assert_eq!(
                verify_inclusion(&HASHER, &hashes[i], &p, &wrong_root),
                Err(MerkleError::RootMismatch)
            );
            // Flipped bit in a path element.
            if !p.path.is_empty() {
                let mut q = p.clone();
                let e = j_seed.index(q.path.len());
                q.path[e][bit / 8] ^= 1 << (bit % 8);
                prop_assert_eq!(
                    verify_inclusion(&HASHER, &hashes[i], &q, &root),
                    Err(MerkleError::RootMismatch)
                );
                // Missing element.
                let mut q = p.clone();
                q.path.pop();
                prop_assert!(matches!(
                    verify_inclusion(&HASHER, &hashes[i], &q, &root),
                    Err(MerkleError::WrongProofLength { .. })
                ), "expected wrong_proof_length");
            }
            // Extra element.
            let mut q = p.clone();
            q.path.push(root);
            prop_assert!(matches!(
                verify_inclusion(&HASHER, &hashes[i], &q, &root),
                Err(MerkleError::WrongProofLength { .. })
            ), "expected wrong_proof_length");
        }

        #[test]
        fn prop_consistency(
            leaves in leaves_strategy(),
            m_seed in any::<prop::sample::Index>(),
            e_seed in any::<prop::sample::Index>(),
            bit in 0usize..256,
        ) {
            let log = log_of(&leaves);
            let hashes = leaf_hashes(&log);
            let n = hashes.len() as u64;
            let root = log.root();
            for m in 1..=n {
                let p = log.consistency_proof(m, n).unwrap();
                prop_assert_eq!(p.path.len(), tree_math::consistency_proof_len(m, n).unwrap());
                let old_root = log.root_at(m).unwrap();
                prop_assert!(verify_consistency(&HASHER, &old_root, &root, &p).is_ok());
            }
            // A random pair (m <= k) of smaller trees.
            let k = m_seed.index(n as usize) as u64 + 1;
            let m = e_seed.index(k as usize) as u64 + 1;
            let p = log.consistency_proof(m, k).unwrap();
            let (r1, r2) = (log.root_at(m).unwrap(), log.root_at(k).unwrap());
            prop_assert!(verify_consistency(&HASHER, &r1, &r2, &p).is_ok());
            if m < k {
                prop_assert_eq!(&p.path, &ref_subproof(m as usize, &hashes[..k as usize], true));
                let mut wrong = r1;
                wrong[bit / 8] ^= 1 << (bit % 8);
                prop_assert!(verify_consistency(&HASHER, &wrong, &r2, &p).is_err());
                prop_assert!(verify_consistency(&HASHER, &r1, &wrong, &p).is_err());
                let mut q = p.clone();
                let e = e_seed.index(q.path.len());
                q.path[e][bit / 8] ^= 1 << (bit % 8);
                prop_assert!(verify_consistency(&HASHER, &r1, &r2, &q).is_err());
                let mut q = p.clone();
                q.path.pop();
                prop_assert!(verify_consistency(&HASHER, &r1, &r2, &q).is_err());
            }
            let mut q = p.clone();
            q.path.push(r2);
            prop_assert!(matches!(
                verify_consistency(&HASHER, &r1, &r2, &q),
                Err(MerkleError::WrongProofLength { .. })
            ), "expected wrong_proof_length");
        }

        #[test]
        fn prop_tree_math_large(size in 1u64.., a in any::<u64>(), b in any::<u64>()) {
            let index = a % size;
            let ranges = tree_math::inclusion_ranges(index, size).unwrap();
            prop_assert_eq!(ranges.len(), tree_math::inclusion_proof_len(index, size).unwrap());
            prop_assert!(ranges.len() <= MAX_INCLUSION_PATH_LEN);
            let old = b % size + 1;
            let ranges = tree_math::consistency_ranges(old, size).unwrap();
            prop_assert_eq!(ranges.len(), tree_math::consistency_proof_len(old, size).unwrap());
            prop_assert!(ranges.len() <= MAX_CONSISTENCY_PATH_LEN);
            // Every range decomposes into at most 64 complete subtrees that
            // tile it exactly.
            for r in ranges {
                let subs = tree_math::range_subtrees(r.start, r.end);
                let mut pos = r.start;
                for (level, idx) in subs {
                    prop_assert_eq!(idx.checked_shl(u32::from(level)), Some(pos));
                    pos += 1u64 << level;
                }
                prop_assert_eq!(pos, r.end);
            }
        }
    }
}
