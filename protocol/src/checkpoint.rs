//! Checkpoints of the ledger's Merkle log in the C2SP formats, cosigned by the member
//! departments, and consistency between them.
//!
//! Three layers, each usable on its own:
//!
//! 1. **Checkpoint bodies** ([`Checkpoint`], <https://c2sp.org/tlog-checkpoint>): the origin line,
//!    the tree size in canonical decimal, the root hash in standard base64, then optional
//!    extension lines; every line ends in `\n`.
//! 2. **Signed notes** ([`SignedNote`], <https://c2sp.org/signed-note>): the body, one blank line,
//!    then one or more signature lines `— <key name> base64(key id ‖ signature)`, where `—` is
//!    the em dash U+2014. Ed25519 note signatures ([`sign_note`], [`verify_note_signature`]) are
//!    plain RFC 8032 signatures over the body bytes (signature type `0x01`), with key id
//!    `SHA-256(name ‖ 0x0A ‖ 0x01 ‖ public key)[:4]` ([`note_key_id`]).
//! 3. **The vault's cosigned checkpoints** ([`VaultCheckpoint`], [`cosigned_checkpoint_verdict`],
//!    [`verify_consistency_between`]).
//!
//! # The vault's checkpoint, exactly
//!
//! After each finalized block, the checkpoint is this note body (every line ends in `\n`):
//!
//! ```text
//! <chain id>
//! <log size>
//! <base64 of the 32-byte log root>
//! vault-block <height> <block hash> <block time>
//! ```
//!
//! - the origin is the chain id itself (e.g. `test-vault`), exactly as in the genesis;
//! - `<log size>` and `<log root>` are the header's `log_size` and `log_root` (RFC 9162 tree over
//!   the ledger's transactions), size in decimal without leading zeros (`0` for the empty log);
//! - the single extension line starts with `vault-block`, then one space before each field:
//!   `<height>` in canonical decimal, `<block hash>` as 64 lowercase hex characters (the header
//!   hash), `<block time>` as the header time in canonical decimal milliseconds since the Unix
//!   epoch. It ties the checkpoint to a block ([`VerifiedCheckpoint::check_header`]) and gives the
//!   verifier a time to judge freshness by. Exactly one extension line, this one, is accepted.
//!
//! Each member department cosigns with its **transaction-signing key** (the one in
//! [`DepartmentRecord::signing_keys`]) under the key name `<department id>.<chain id>`
//! ([`cosigner_name`], e.g. `samr.test-vault`), as an Ed25519 note signature (type `0x01`) over
//! the whole body, extension line included. A department id contains no `.`, so the name splits
//! unambiguously at its first `.`.
//!
//! For example (block 1 of the test network, `protocol/tests/vectors/checkpoint.txt`):
//!
//! ```text
//! test-vault
//! 1
//! Jk1Mb/aU1Qn/qhCSdc0FlJiv25XaFWQlZMh5coNRhg4=
//! vault-block 1 716b580fa2c7f066a5e9c7a79bfa54df60b87c03bca7f31bca649d4295decf2f 1767225601000
//!
//! — samr.test-vault fkV6WUE8HVc/A8WuIbcQC3WvGK4xxD8DHm8j7b3FhnPOs4IJ9/XTaqmBQEobe4jPi+rIdfy286KlVhrNZAkMlY/YqQA=
//! — tax.test-vault D6Q/Xe6HGfZ5JOfcKw3MAFSih1vLnIzeWrOCtNO8HQV1eTxriIgED0PiIMvvY0cz+m0Mrt8KqMc3xN+EnvdXEEyJ+wo=
//! — hrss.test-vault 8GMinkg4GHrsHuTz9I2MBqIdgiNYk6s59d9NAa61J/RMvt54le/EQ6DtvLwOANKV/Wvh1XVEZXzHb659e1ZwnX2nYgo=
//! ```
//!
//! A verifier ([`cosigned_checkpoint_verdict`]) accepts the checkpoint when signatures of more
//! than two thirds of the current members ([`Governance::quorum`]) verify: a signature line counts
//! when its name is `<id>.<chain id>` of a current member and its key id is that of one of the
//! member's signing keys in force at the block time; other lines are ignored, as the signed-note
//! specification requires, and reported in [`VerifiedCheckpoint::ignored`]. A line that matches
//! a key but does not verify rejects the whole note.
//!
//! ```
//! use vault_protocol::checkpoint::*;
//! use vault_protocol::ledger::TestNetwork;
//! use vault_protocol::merkle::{LogHasher, Sha256LogHasher};
//!
//! let net = TestNetwork::new(&["samr", "tax", "hrss", "housing"]);
//! let governance = net.genesis.governance();
//! // The checkpoint of the empty log at the genesis (a node makes them with `from_header`).
//! let cp = VaultCheckpoint {
//!     chain_id: net.genesis.chain_id.clone(),
//!     size: 0,
//!     root: Sha256LogHasher.empty_root(),
//!     block: BlockRef { height: 0, hash: net.genesis.hash(), time: net.genesis.genesis_time },
//! };
//! // Each department signs the body with its signing key; the node assembles the note.
//! let sigs = net.departments[..3].iter().map(|d| cp.sign(&d.id, &d.signing)).collect();
//! let text = cp.note(sigs).to_text().unwrap();
//! // A verifier needs only the governance (from the genesis and the changes since).
//! let verified = cosigned_checkpoint_verdict(&text, &governance, None).unwrap();
//! assert_eq!(verified.cosigners().len(), 3);
//! assert_eq!(verified.time(), net.genesis.genesis_time);
//! // Demanding a fresher checkpoint fails, naming both times.
//! let stale = cosigned_checkpoint_verdict(&text, &governance, Some(cp.block.time.plus(1)));
//! assert_eq!(stale.unwrap_err().code(), "stale_checkpoint");
//! ```
//!
//! **Why the signing key can sign notes safely.** Every vault signature signs `tag ‖ message`
//! where each [`crate::crypto::Domain`] tag ends in a NUL byte, and note text can never contain a
//! NUL (or any control character but `\n`); [`sign_note`] and [`verify_note_signature`] refuse
//! such text. So no note signature is ever a valid transaction signature, and no transaction
//! signature is ever a valid note signature.

use std::collections::BTreeSet;
use std::fmt;

use sha2::{Digest as _, Sha256};

use crate::block::BlockHeader;
use crate::crypto::{CryptoSuite, Digest, KeyPair, PublicKey, Signature, SignatureError};
use crate::governance::{DepartmentRecord, Governance};
use crate::ids::{BlockHash, ChainId, DepartmentId, Timestamp};
use crate::merkle::{self, ConsistencyProof, Hash, LogHasher, MerkleError, Sha256LogHasher};

/// The largest signed note accepted, in bytes.
pub const MAX_NOTE_LEN: usize = 65_536;

/// The most signature lines accepted in one note (the specification requires at least 16).
pub const MAX_NOTE_SIGNATURES: usize = 100;

/// The signed-note signature type byte of Ed25519 signatures.
pub const ED25519_SIGNATURE_TYPE: u8 = 0x01;

/// The keyword that starts the vault's block extension line.
pub const BLOCK_LINE_KEYWORD: &str = "vault-block";

/// The prefix of every signature line: em dash (U+2014) and a space.
const SIGNATURE_PREFIX: &str = "\u{2014} ";

// ---------------------------------------------------------------------------
// Errors
// ---------------------------------------------------------------------------

/// Why a split view was detected.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SplitViewReason {
    /// Two checkpoints of the same tree size with different roots.
    SameSizeDifferentRoots,
    /// Two checkpoints that disagree about one block: the same height or the same block hash,
    /// but different blocks or logs (a fork).
    ConflictingBlocks,
    /// A later block has a smaller log: the log shrank.
    LogShrank,
    /// A later block has an earlier or equal time (block times strictly increase).
    TimeWentBack,
    /// A checkpoint of the empty log whose root is not the empty tree's root.
    BadEmptyRoot,
    /// The consistency proof does not verify between the two roots.
    ProofFailed(MerkleError),
}

impl fmt::Display for SplitViewReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            SplitViewReason::SameSizeDifferentRoots => {
                f.write_str("same tree size, different roots")
            }
            SplitViewReason::ConflictingBlocks => {
                f.write_str("same block height or hash, different blocks or logs")
            }
            SplitViewReason::LogShrank => f.write_str("the log is smaller at a later block"),
            SplitViewReason::TimeWentBack => f.write_str("a later block has an earlier time"),
            SplitViewReason::BadEmptyRoot => f.write_str("empty log with a non-empty root"),
            SplitViewReason::ProofFailed(e) => {
                write!(f, "consistency proof does not verify ({}: {e})", e.code())
            }
        }
    }
}

/// Why a signature line of a note was not counted (and, as the signed-note specification
/// requires, ignored rather than rejected).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum IgnoreReason {
    /// The key name is not `<id>.<chain id>` of a current member.
    UnknownSigner,
    /// The name is a current member's, but the key id matches none of its signing keys in force
    /// at the checkpoint's block time (e.g. a key rotated away, or a stranger's key).
    KeyNotInForce {
        /// The member.
        department: DepartmentId,
        /// The checkpoint's block time.
        at: Timestamp,
    },
}

/// A signature line that was ignored, and why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IgnoredSignature {
    /// The key name of the line.
    pub name: String,
    /// The key id of the line.
    pub key_id: [u8; 4],
    /// Why it was ignored.
    pub reason: IgnoreReason,
}

impl fmt::Display for IgnoredSignature {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let id = hex::encode(self.key_id);
        match &self.reason {
            IgnoreReason::UnknownSigner => {
                write!(f, "{}+{id}: not a current member's name", self.name)
            }
            IgnoreReason::KeyNotInForce { department, at } => write!(
                f,
                "{}+{id}: not a signing key of {department} in force at {at}",
                self.name
            ),
        }
    }
}

fn list<T: fmt::Display>(items: &[T]) -> String {
    if items.is_empty() {
        return "none".into();
    }
    items
        .iter()
        .map(|i| i.to_string())
        .collect::<Vec<_>>()
        .join("; ")
}

/// Why a checkpoint, a signed note or a consistency check was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CheckpointError {
    // --- text ---------------------------------------------------------------------------
    /// The note is longer than [`MAX_NOTE_LEN`].
    #[error("note is {len} bytes, more than the maximum {max}")]
    NoteTooLarge {
        /// Its length.
        len: usize,
        /// The maximum.
        max: usize,
    },
    /// The text is not valid UTF-8.
    #[error("text is not valid UTF-8 at byte {offset}")]
    NotUtf8 {
        /// Offset of the first invalid byte.
        offset: usize,
    },
    /// The text contains a control character other than newline (or a newline inside a field).
    #[error("control character 0x{byte:02x} at byte {offset}")]
    ControlCharacter {
        /// Its offset in the text.
        offset: usize,
        /// The byte.
        byte: u8,
    },
    /// The note text (body) does not end in a newline.
    #[error("note text does not end in a newline")]
    NoteUnterminated,
    /// No blank line followed by signature lines ending in a newline.
    #[error("note has no signature block (a blank line, then signature lines ending in newline)")]
    NoteMissingSignatures,
    /// A signature line is malformed.
    #[error("signature line {line}: {reason}")]
    SignatureLine {
        /// 1-based line number within the signature block.
        line: usize,
        /// What is wrong.
        reason: &'static str,
    },
    /// A key name is empty or contains a Unicode space or `+`.
    #[error("invalid key name {name:?}: must be non-empty, without spaces or '+'")]
    InvalidKeyName {
        /// The name.
        name: String,
    },
    /// More than [`MAX_NOTE_SIGNATURES`] signature lines.
    #[error("note has {count} signatures, more than the maximum {max}")]
    TooManySignatures {
        /// Lines found.
        count: usize,
        /// The maximum.
        max: usize,
    },

    // --- checkpoint body --------------------------------------------------------------------
    /// The checkpoint body does not end in a newline.
    #[error("checkpoint body does not end in a newline")]
    BodyUnterminated,
    /// A mandatory line (`origin`, `size` or `root`) is missing.
    #[error("checkpoint has no {line} line")]
    MissingLine {
        /// Which line.
        line: &'static str,
    },
    /// The origin line is empty.
    #[error("checkpoint origin is empty")]
    EmptyOrigin,
    /// A line of the body is empty.
    #[error("checkpoint line {line} is empty")]
    EmptyLine {
        /// Its 1-based number.
        line: usize,
    },
    /// The size line is not a canonical decimal `u64`.
    #[error("checkpoint size {found:?} is not a decimal number without leading zeros below 2^64")]
    InvalidSize {
        /// The line (cut to 80 characters).
        found: String,
    },
    /// The root line is not standard base64 of 32 bytes.
    #[error("checkpoint root {found:?}: {reason}")]
    InvalidRoot {
        /// The line (cut to 80 characters).
        found: String,
        /// What is wrong.
        reason: &'static str,
    },

    // --- the vault's checkpoint ------------------------------------------------------------------
    /// The origin is not this chain's id.
    #[error("checkpoint origin {found:?} is not the chain id {expected:?}")]
    WrongOrigin {
        /// The chain id.
        expected: String,
        /// The origin line (cut to 80 characters).
        found: String,
    },
    /// No `vault-block` extension line.
    #[error("checkpoint has no `vault-block` extension line")]
    MissingBlockLine,
    /// The `vault-block` line is malformed.
    #[error("invalid block line {found:?}: {reason}")]
    InvalidBlockLine {
        /// The line (cut to 80 characters).
        found: String,
        /// What is wrong.
        reason: &'static str,
    },
    /// An extension line after the `vault-block` line.
    #[error("unexpected extension line {line:?}")]
    UnexpectedExtension {
        /// The line (cut to 80 characters).
        line: String,
    },
    /// The checkpoint does not describe the given block header.
    #[error("checkpoint {field} is {checkpoint}, the block header says {header}")]
    HeaderMismatch {
        /// Which field (`height`, `block_hash`, `time`, `log_size`, `log_root`).
        field: &'static str,
        /// The checkpoint's value.
        checkpoint: String,
        /// The header's value.
        header: String,
    },

    // --- signatures --------------------------------------------------------------------------
    /// The signature line names another signer than expected.
    #[error("signature is by {found:?}, expected {expected:?}")]
    SignerMismatch {
        /// The expected key name.
        expected: String,
        /// The line's key name.
        found: String,
    },
    /// The signature's key id is not that of the expected key.
    #[error("signature of {name} has key id {found}, the key's id is {expected}")]
    KeyIdMismatch {
        /// The key name.
        name: String,
        /// The key's id, hex.
        expected: String,
        /// The line's key id, hex.
        found: String,
    },
    /// A verifier key string is malformed.
    #[error("invalid verifier key {vkey:?}: {reason}")]
    InvalidVerifierKey {
        /// The string (cut to 80 characters).
        vkey: String,
        /// What is wrong.
        reason: &'static str,
    },
    /// The public key is not a valid (or is a weak) Ed25519 key.
    #[error("invalid Ed25519 public key {key}")]
    InvalidPublicKey {
        /// The key, hex.
        key: String,
    },
    /// A signature from a known key does not verify.
    #[error("signature of {signer} (key id {key_id}) does not verify")]
    BadSignature {
        /// The key name.
        signer: String,
        /// The key id, hex.
        key_id: String,
    },
    /// Signatures of too few current members verified.
    #[error(
        "{valid} of {members} current members cosigned, {required} required; cosigners: {}; \
         ignored: {}",
        list(cosigners),
        list(ignored)
    )]
    TooFewCosigners {
        /// Distinct members whose signature verified.
        valid: usize,
        /// Signatures required (more than two thirds of the members).
        required: usize,
        /// Current members.
        members: usize,
        /// The members whose signature verified.
        cosigners: Vec<DepartmentId>,
        /// The signature lines ignored, and why.
        ignored: Vec<IgnoredSignature>,
    },
    /// The checkpoint is older than the verifier demands.
    #[error("checkpoint of block time {checkpoint_time} is older than the required {required}")]
    Stale {
        /// The checkpoint's block time.
        checkpoint_time: Timestamp,
        /// The oldest acceptable time.
        required: Timestamp,
    },

    // --- consistency ---------------------------------------------------------------------------
    /// The two checkpoints are of different logs.
    #[error("checkpoints of different logs: {old:?} and {new:?}")]
    OriginMismatch {
        /// The first checkpoint's origin.
        old: String,
        /// The second checkpoint's origin.
        new: String,
    },
    /// The consistency proof is for other tree sizes than the checkpoints'.
    #[error("consistency proof is from size {found_old} to {found_new}, the checkpoints are {old} and {new}")]
    ProofSizeMismatch {
        /// The smaller checkpoint's size.
        old: u64,
        /// The larger checkpoint's size.
        new: u64,
        /// The proof's old size.
        found_old: u64,
        /// The proof's new size.
        found_new: u64,
    },
    /// Two checkpoints that cannot both be views of one append-only log: a split view.
    #[error(
        "split view between size {old_size} (block {old_height}, root {}) and size {new_size} \
         (block {new_height}, root {}): {reason}",
        hex::encode(old_root),
        hex::encode(new_root)
    )]
    SplitView {
        /// The smaller checkpoint's size.
        old_size: u64,
        /// Its block height.
        old_height: u64,
        /// Its root.
        old_root: Hash,
        /// The larger checkpoint's size.
        new_size: u64,
        /// Its block height.
        new_height: u64,
        /// Its root.
        new_root: Hash,
        /// What is inconsistent.
        reason: SplitViewReason,
    },
}

impl CheckpointError {
    /// A stable snake_case reason code for logs, metrics and API responses.
    pub fn code(&self) -> &'static str {
        match self {
            CheckpointError::NoteTooLarge { .. } => "note_too_large",
            CheckpointError::NotUtf8 { .. } => "not_utf8",
            CheckpointError::ControlCharacter { .. } => "control_character",
            CheckpointError::NoteUnterminated => "note_unterminated",
            CheckpointError::NoteMissingSignatures => "note_missing_signatures",
            CheckpointError::SignatureLine { .. } => "bad_signature_line",
            CheckpointError::InvalidKeyName { .. } => "invalid_key_name",
            CheckpointError::TooManySignatures { .. } => "too_many_signatures",
            CheckpointError::BodyUnterminated => "checkpoint_unterminated",
            CheckpointError::MissingLine { .. } => "checkpoint_missing_line",
            CheckpointError::EmptyOrigin => "checkpoint_empty_origin",
            CheckpointError::EmptyLine { .. } => "checkpoint_empty_line",
            CheckpointError::InvalidSize { .. } => "checkpoint_invalid_size",
            CheckpointError::InvalidRoot { .. } => "checkpoint_invalid_root",
            CheckpointError::WrongOrigin { .. } => "wrong_origin",
            CheckpointError::MissingBlockLine => "missing_block_line",
            CheckpointError::InvalidBlockLine { .. } => "invalid_block_line",
            CheckpointError::UnexpectedExtension { .. } => "unexpected_extension",
            CheckpointError::HeaderMismatch { .. } => "header_mismatch",
            CheckpointError::SignerMismatch { .. } => "signer_mismatch",
            CheckpointError::KeyIdMismatch { .. } => "key_id_mismatch",
            CheckpointError::InvalidVerifierKey { .. } => "invalid_verifier_key",
            CheckpointError::InvalidPublicKey { .. } => "invalid_public_key",
            CheckpointError::BadSignature { .. } => "bad_signature",
            CheckpointError::TooFewCosigners { .. } => "too_few_cosigners",
            CheckpointError::Stale { .. } => "stale_checkpoint",
            CheckpointError::OriginMismatch { .. } => "origin_mismatch",
            CheckpointError::ProofSizeMismatch { .. } => "consistency_proof_size_mismatch",
            CheckpointError::SplitView { .. } => "split_view",
        }
    }
}

fn cut(s: &str) -> String {
    s.chars().take(80).collect()
}

// ---------------------------------------------------------------------------
// Base64 (RFC 4648 §4, standard alphabet, padded, canonical)
// ---------------------------------------------------------------------------

/// Standard base64 (RFC 4648 §4, with padding), as the C2SP formats use it.
///
/// Decoding is strict: the length must be a multiple of 4, `=` may appear only as the last one or
/// two characters, and the unused bits before the padding must be zero, so every byte string has
/// exactly one accepted encoding.
pub mod base64 {
    const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

    /// Why a string is not canonical standard base64.
    #[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
    pub enum Base64Error {
        /// The length is not a multiple of 4.
        #[error("length {0} is not a multiple of 4")]
        Length(usize),
        /// A character outside the alphabet, or misplaced padding, at this offset.
        #[error("invalid character at offset {0}")]
        Character(usize),
        /// The bits before the padding are not zero (a non-canonical encoding).
        #[error("non-canonical encoding: unused bits are not zero")]
        NonCanonical,
    }

    /// Encodes `bytes`.
    pub fn encode(bytes: &[u8]) -> String {
        let mut out = String::with_capacity(bytes.len().div_ceil(3) * 4);
        for chunk in bytes.chunks(3) {
            let b = [
                chunk[0],
                chunk.get(1).copied().unwrap_or(0),
                chunk.get(2).copied().unwrap_or(0),
            ];
            let n = (u32::from(b[0]) << 16) | (u32::from(b[1]) << 8) | u32::from(b[2]);
            for i in 0..4 {
                if i <= chunk.len() {
                    out.push(char::from(ALPHABET[((n >> (18 - 6 * i)) & 63) as usize]));
                } else {
                    out.push('=');
                }
            }
        }
        out
    }

    fn value(c: u8) -> Option<u32> {
        match c {
            b'A'..=b'Z' => Some(u32::from(c - b'A')),
            b'a'..=b'z' => Some(u32::from(c - b'a') + 26),
            b'0'..=b'9' => Some(u32::from(c - b'0') + 52),
            b'+' => Some(62),
            b'/' => Some(63),
            _ => None,
        }
    }

    /// Decodes `s` strictly.
    pub fn decode(s: &str) -> Result<Vec<u8>, Base64Error> {
        let s = s.as_bytes();
        if !s.len().is_multiple_of(4) {
            return Err(Base64Error::Length(s.len()));
        }
        let mut out = Vec::with_capacity(s.len() / 4 * 3);
        let quads = s.len() / 4;
        for (q, quad) in s.chunks(4).enumerate() {
            let last = q + 1 == quads;
            let pad = if last {
                quad.iter().rev().take_while(|&&c| c == b'=').count()
            } else {
                0
            };
            if pad > 2 {
                return Err(Base64Error::Character(q * 4 + 1));
            }
            let mut n = 0u32;
            for (i, &c) in quad[..4 - pad].iter().enumerate() {
                let v = value(c).ok_or(Base64Error::Character(q * 4 + i))?;
                n |= v << (18 - 6 * i);
            }
            let bytes = [(n >> 16) as u8, (n >> 8) as u8, n as u8];
            let keep = 3 - pad;
            if bytes[keep..].iter().any(|&b| b != 0) {
                return Err(Base64Error::NonCanonical);
            }
            out.extend_from_slice(&bytes[..keep]);
        }
        Ok(out)
    }
}

// ---------------------------------------------------------------------------
// Shared text checks
// ---------------------------------------------------------------------------

/// Checks that `text` holds no control character (below U+0020), except `\n` when
/// `allow_newline`; `base` is added to offsets.
fn check_controls(text: &str, base: usize, allow_newline: bool) -> Result<(), CheckpointError> {
    match text
        .bytes()
        .enumerate()
        .find(|&(_, b)| b < 0x20 && !(allow_newline && b == b'\n'))
    {
        Some((i, byte)) => Err(CheckpointError::ControlCharacter {
            offset: base + i,
            byte,
        }),
        None => Ok(()),
    }
}

/// Parses a canonical decimal `u64`: ASCII digits only, no sign, no leading zeros (except `0`).
fn parse_decimal(s: &str) -> Option<u64> {
    if s.is_empty() || !s.bytes().all(|b| b.is_ascii_digit()) || (s.len() > 1 && s.starts_with('0'))
    {
        return None;
    }
    s.parse().ok()
}

/// Whether `name` is a valid signed-note key name: non-empty, no Unicode space (White_Space
/// property, as Go's `unicode.IsSpace`), no `+`, and no ASCII control character (which no note
/// may hold).
pub fn is_valid_key_name(name: &str) -> bool {
    !name.is_empty()
        && !name
            .chars()
            .any(|c| c.is_whitespace() || c == '+' || c < ' ')
}

// ---------------------------------------------------------------------------
// Checkpoint bodies (c2sp.org/tlog-checkpoint)
// ---------------------------------------------------------------------------

/// A transparency-log checkpoint body (c2sp.org/tlog-checkpoint): origin, tree size, root hash and
/// optional extension lines.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Checkpoint {
    /// The log's identity (first line); non-empty.
    pub origin: String,
    /// Number of leaves.
    pub size: u64,
    /// RFC 9162 root of the tree of `size` leaves.
    pub root: Hash,
    /// Opaque extension lines, each non-empty and without the final newline.
    pub extensions: Vec<String>,
}

impl Checkpoint {
    /// The note text: `origin\nsize\nbase64(root)\n` then `extension\n` per extension line.
    ///
    /// Fails if the origin or an extension line is empty or holds a control character (a
    /// newline included), since the text would not parse back to the same checkpoint.
    pub fn to_body(&self) -> Result<String, CheckpointError> {
        if self.origin.is_empty() {
            return Err(CheckpointError::EmptyOrigin);
        }
        let mut body = String::new();
        check_controls(&self.origin, 0, false)?;
        body.push_str(&self.origin);
        body.push('\n');
        body.push_str(&self.size.to_string());
        body.push('\n');
        body.push_str(&base64::encode(&self.root));
        body.push('\n');
        for (i, ext) in self.extensions.iter().enumerate() {
            if ext.is_empty() {
                return Err(CheckpointError::EmptyLine { line: 4 + i });
            }
            check_controls(ext, body.len(), false)?;
            body.push_str(ext);
            body.push('\n');
        }
        Ok(body)
    }

    /// Parses a checkpoint body strictly: it must end in a newline, have at least three lines,
    /// no empty line, no control character but newlines, a canonical decimal size and a root
    /// that is canonical standard base64 of exactly 32 bytes.
    pub fn parse_body(body: &str) -> Result<Checkpoint, CheckpointError> {
        check_controls(body, 0, true)?;
        let Some(text) = body.strip_suffix('\n') else {
            return Err(CheckpointError::BodyUnterminated);
        };
        let mut lines = text.split('\n');
        let origin = lines.next().unwrap_or_default();
        if origin.is_empty() {
            return Err(CheckpointError::EmptyOrigin);
        }
        let size_line = lines
            .next()
            .ok_or(CheckpointError::MissingLine { line: "size" })?;
        if size_line.is_empty() {
            return Err(CheckpointError::EmptyLine { line: 2 });
        }
        let size = parse_decimal(size_line).ok_or_else(|| CheckpointError::InvalidSize {
            found: cut(size_line),
        })?;
        let root_line = lines
            .next()
            .ok_or(CheckpointError::MissingLine { line: "root" })?;
        if root_line.is_empty() {
            return Err(CheckpointError::EmptyLine { line: 3 });
        }
        let root = match base64::decode(root_line) {
            Ok(bytes) => {
                <Hash>::try_from(bytes.as_slice()).map_err(|_| CheckpointError::InvalidRoot {
                    found: cut(root_line),
                    reason: "not 32 bytes",
                })?
            }
            Err(_) => {
                return Err(CheckpointError::InvalidRoot {
                    found: cut(root_line),
                    reason: "not canonical standard base64",
                })
            }
        };
        let mut extensions = Vec::new();
        for (i, line) in lines.enumerate() {
            if line.is_empty() {
                return Err(CheckpointError::EmptyLine { line: 4 + i });
            }
            extensions.push(line.to_string());
        }
        Ok(Checkpoint {
            origin: origin.to_string(),
            size,
            root,
            extensions,
        })
    }
}

// ---------------------------------------------------------------------------
// Signed notes (c2sp.org/signed-note)
// ---------------------------------------------------------------------------

/// One signature line of a signed note.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NoteSignature {
    /// The key name.
    pub name: String,
    /// The 4-byte key id (big-endian `uint32` in the specification).
    pub key_id: [u8; 4],
    /// The signature bytes (64 for Ed25519); at least one byte.
    pub signature: Vec<u8>,
}

impl NoteSignature {
    /// The line: `— <name> base64(key id ‖ signature)\n`.
    pub fn to_line(&self) -> Result<String, CheckpointError> {
        self.numbered_line(1)
    }

    /// The line, with `line` as its number in errors.
    fn numbered_line(&self, line: usize) -> Result<String, CheckpointError> {
        if !is_valid_key_name(&self.name) {
            return Err(CheckpointError::InvalidKeyName {
                name: cut(&self.name),
            });
        }
        if self.signature.is_empty() {
            return Err(CheckpointError::SignatureLine {
                line,
                reason: "empty signature",
            });
        }
        let mut raw = self.key_id.to_vec();
        raw.extend_from_slice(&self.signature);
        Ok(format!(
            "{SIGNATURE_PREFIX}{} {}\n",
            self.name,
            base64::encode(&raw)
        ))
    }

    /// Parses one line (without its newline); `line` is its number for errors.
    fn parse_line(text: &str, line: usize) -> Result<NoteSignature, CheckpointError> {
        let bad = |reason| CheckpointError::SignatureLine { line, reason };
        let rest = text
            .strip_prefix(SIGNATURE_PREFIX)
            .ok_or_else(|| bad("does not start with an em dash (U+2014) and a space"))?;
        let (name, b64) = rest
            .split_once(' ')
            .ok_or_else(|| bad("no space between key name and signature"))?;
        if !is_valid_key_name(name) {
            return Err(CheckpointError::InvalidKeyName { name: cut(name) });
        }
        let raw =
            base64::decode(b64).map_err(|_| bad("signature is not canonical standard base64"))?;
        if raw.len() < 5 {
            return Err(bad("signature shorter than a key id and one byte"));
        }
        let mut key_id = [0u8; 4];
        key_id.copy_from_slice(&raw[..4]);
        Ok(NoteSignature {
            name: name.to_string(),
            key_id,
            signature: raw[4..].to_vec(),
        })
    }
}

/// A signed note: a text ending in a newline and one or more signatures.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SignedNote {
    /// The note text, including its final newline (for a checkpoint, the checkpoint body).
    pub body: String,
    /// The signatures, in order.
    pub signatures: Vec<NoteSignature>,
}

/// Checks note text: ends in a newline, no control character but newline.
fn check_note_text(body: &str) -> Result<(), CheckpointError> {
    check_controls(body, 0, true)?;
    if !body.ends_with('\n') {
        return Err(CheckpointError::NoteUnterminated);
    }
    Ok(())
}

impl SignedNote {
    /// The note: the body, a blank line, then one line per signature.
    ///
    /// Fails unless the result parses back to `self`: the body must end in a newline and hold no
    /// control character but newlines, there must be 1 to [`MAX_NOTE_SIGNATURES`] signatures with
    /// valid names and non-empty signatures, and the whole must fit [`MAX_NOTE_LEN`].
    pub fn to_text(&self) -> Result<String, CheckpointError> {
        check_note_text(&self.body)?;
        if self.signatures.is_empty() {
            return Err(CheckpointError::NoteMissingSignatures);
        }
        if self.signatures.len() > MAX_NOTE_SIGNATURES {
            return Err(CheckpointError::TooManySignatures {
                count: self.signatures.len(),
                max: MAX_NOTE_SIGNATURES,
            });
        }
        let mut text = self.body.clone();
        text.push('\n');
        for (i, s) in self.signatures.iter().enumerate() {
            text.push_str(&s.numbered_line(i + 1)?);
        }
        if text.len() > MAX_NOTE_LEN {
            return Err(CheckpointError::NoteTooLarge {
                len: text.len(),
                max: MAX_NOTE_LEN,
            });
        }
        Ok(text)
    }

    /// Parses a note from bytes: as [`SignedNote::parse`], after checking UTF-8.
    pub fn parse_bytes(bytes: &[u8]) -> Result<SignedNote, CheckpointError> {
        if bytes.len() > MAX_NOTE_LEN {
            return Err(CheckpointError::NoteTooLarge {
                len: bytes.len(),
                max: MAX_NOTE_LEN,
            });
        }
        let text = std::str::from_utf8(bytes).map_err(|e| CheckpointError::NotUtf8 {
            offset: e.valid_up_to(),
        })?;
        Self::parse(text)
    }

    /// Parses a note strictly: at most [`MAX_NOTE_LEN`] bytes, no control character but
    /// newlines, the text separated from the signatures by the last blank line, then 1 to
    /// [`MAX_NOTE_SIGNATURES`] lines `— <name> <base64>`, each ending in a newline, with a valid
    /// key name and canonical base64 of a 4-byte key id and at least one signature byte.
    ///
    /// Signatures are not verified here.
    pub fn parse(text: &str) -> Result<SignedNote, CheckpointError> {
        if text.len() > MAX_NOTE_LEN {
            return Err(CheckpointError::NoteTooLarge {
                len: text.len(),
                max: MAX_NOTE_LEN,
            });
        }
        check_controls(text, 0, true)?;
        let split = text
            .rfind("\n\n")
            .ok_or(CheckpointError::NoteMissingSignatures)?;
        let (body, sigs) = (&text[..split + 1], &text[split + 2..]);
        if sigs.is_empty() {
            return Err(CheckpointError::NoteMissingSignatures);
        }
        let Some(sigs) = sigs.strip_suffix('\n') else {
            return Err(CheckpointError::NoteUnterminated);
        };
        let count = sigs.split('\n').count();
        if count > MAX_NOTE_SIGNATURES {
            return Err(CheckpointError::TooManySignatures {
                count,
                max: MAX_NOTE_SIGNATURES,
            });
        }
        let signatures = sigs
            .split('\n')
            .enumerate()
            .map(|(i, line)| NoteSignature::parse_line(line, i + 1))
            .collect::<Result<Vec<_>, _>>()?;
        Ok(SignedNote {
            body: body.to_string(),
            signatures,
        })
    }
}

// ---------------------------------------------------------------------------
// Ed25519 note signatures
// ---------------------------------------------------------------------------

/// The key id of an Ed25519 note key: `SHA-256(name ‖ 0x0A ‖ 0x01 ‖ public key)[:4]`.
pub fn note_key_id(name: &str, key: &PublicKey) -> [u8; 4] {
    let mut h = Sha256::new();
    h.update(name.as_bytes());
    h.update([b'\n', ED25519_SIGNATURE_TYPE]);
    h.update(key.as_bytes());
    let d = h.finalize();
    [d[0], d[1], d[2], d[3]]
}

/// The verifier key string of an Ed25519 note key, as Go's `golang.org/x/mod/sumdb/note` and the
/// signed-note specification write it: `<name>+<hex key id>+base64(0x01 ‖ public key)`.
pub fn verifier_key(name: &str, key: &PublicKey) -> String {
    let mut raw = vec![ED25519_SIGNATURE_TYPE];
    raw.extend_from_slice(key.as_bytes());
    format!(
        "{name}+{}+{}",
        hex::encode(note_key_id(name, key)),
        base64::encode(&raw)
    )
}

/// Parses a verifier key `<name>+<hex key id>+base64(0x01 ‖ 32-byte Ed25519 public key)`
/// (c2sp.org/signed-note "Verifier keys"): the name must be valid, the key id 8 lowercase hex
/// characters equal to [`note_key_id`] of the name and key, the signature type Ed25519.
pub fn parse_verifier_key(vkey: &str) -> Result<(String, PublicKey), CheckpointError> {
    let bad = |reason| CheckpointError::InvalidVerifierKey {
        vkey: cut(vkey),
        reason,
    };
    let mut parts = vkey.splitn(3, '+');
    let (Some(name), Some(id), Some(material)) = (parts.next(), parts.next(), parts.next()) else {
        return Err(bad("expected <name>+<key id>+<base64 key>"));
    };
    if !is_valid_key_name(name) {
        return Err(bad("invalid key name"));
    }
    let raw = base64::decode(material).map_err(|_| bad("key is not canonical standard base64"))?;
    let Some((&ED25519_SIGNATURE_TYPE, key)) = raw.split_first() else {
        return Err(bad("not an Ed25519 (type 0x01) key"));
    };
    let key: [u8; 32] = key
        .try_into()
        .map_err(|_| bad("Ed25519 key is not 32 bytes"))?;
    let key = PublicKey::from_bytes(key);
    if id != hex::encode(note_key_id(name, &key)) {
        return Err(bad("key id does not match the name and key"));
    }
    Ok((name.to_string(), key))
}

/// Signs `body` as `name`, without checks (callers make sure the body is valid note text).
fn sign_raw(body: &str, name: &str, key: &KeyPair) -> NoteSignature {
    let signature = key.sign_untagged(body.as_bytes()).as_bytes().to_vec();
    NoteSignature {
        name: name.to_string(),
        key_id: note_key_id(name, &key.public()),
        signature,
    }
}

/// An Ed25519 note signature (RFC 8032, no domain tag) over `body` by `key`, under key name
/// `name`.
///
/// Fails if `body` is not valid note text (it must end in a newline and hold no control character
/// but newlines — which also guarantees it never starts with a vault domain tag) or `name` is not
/// a valid key name.
pub fn sign_note(body: &str, name: &str, key: &KeyPair) -> Result<NoteSignature, CheckpointError> {
    check_note_text(body)?;
    if !is_valid_key_name(name) {
        return Err(CheckpointError::InvalidKeyName { name: cut(name) });
    }
    Ok(sign_raw(body, name, key))
}

/// Verifies an Ed25519 note signature over `body`, made as `name` by `key`: the line's name and
/// key id must be `name` and [`note_key_id`]`(name, key)`, and the signature must verify
/// strictly (ed25519-dalek `verify_strict`; weak keys refused).
pub fn verify_note_signature(
    body: &str,
    sig: &NoteSignature,
    name: &str,
    key: &PublicKey,
) -> Result<(), CheckpointError> {
    check_note_text(body)?;
    if sig.name != name {
        return Err(CheckpointError::SignerMismatch {
            expected: cut(name),
            found: cut(&sig.name),
        });
    }
    let expected = note_key_id(name, key);
    if sig.key_id != expected {
        return Err(CheckpointError::KeyIdMismatch {
            name: cut(name),
            expected: hex::encode(expected),
            found: hex::encode(sig.key_id),
        });
    }
    let bad = || CheckpointError::BadSignature {
        signer: cut(name),
        key_id: hex::encode(sig.key_id),
    };
    let sig_bytes: [u8; 64] = sig.signature.as_slice().try_into().map_err(|_| bad())?;
    CryptoSuite::Ed25519Sha256
        .verify_untagged(key, body.as_bytes(), &Signature::from_bytes(sig_bytes))
        .map_err(|e| match e {
            SignatureError::InvalidKey { key } => CheckpointError::InvalidPublicKey { key },
            SignatureError::Mismatch { .. } => bad(),
        })
}

// ---------------------------------------------------------------------------
// The vault's checkpoints
// ---------------------------------------------------------------------------

/// The key name under which `department` cosigns the checkpoints of `chain_id`:
/// `<department id>.<chain id>`, e.g. `samr.test-vault`.
pub fn cosigner_name(department: &DepartmentId, chain_id: &ChainId) -> String {
    format!("{}.{}", department.as_str(), chain_id.as_str())
}

/// The block a checkpoint is taken after.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct BlockRef {
    /// Its height (0 for the genesis).
    pub height: u64,
    /// Its hash.
    pub hash: BlockHash,
    /// Its time.
    pub time: Timestamp,
}

impl BlockRef {
    /// The extension line: `vault-block <height> <64 lowercase hex hash> <time ms>`.
    pub fn to_line(&self) -> String {
        format!(
            "{BLOCK_LINE_KEYWORD} {} {} {}",
            self.height,
            self.hash.0.to_hex(),
            self.time.millis()
        )
    }

    /// Parses the extension line strictly (single spaces, canonical decimals, lowercase hex).
    pub fn parse_line(line: &str) -> Result<BlockRef, CheckpointError> {
        let bad = |reason| CheckpointError::InvalidBlockLine {
            found: cut(line),
            reason,
        };
        let rest = line
            .strip_prefix(BLOCK_LINE_KEYWORD)
            .and_then(|r| r.strip_prefix(' '))
            .ok_or_else(|| bad("does not start with `vault-block `"))?;
        let fields: Vec<&str> = rest.split(' ').collect();
        let [height, hash, time] = fields.as_slice() else {
            return Err(bad(
                "expected `vault-block <height> <block hash> <time ms>`",
            ));
        };
        let height =
            parse_decimal(height).ok_or_else(|| bad("height is not a canonical decimal"))?;
        if hash.len() != 64
            || !hash
                .bytes()
                .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
        {
            return Err(bad("block hash is not 64 lowercase hex characters"));
        }
        let mut h = [0u8; 32];
        hex::decode_to_slice(hash, &mut h).map_err(|_| bad("block hash is not hex"))?;
        let time = parse_decimal(time).ok_or_else(|| bad("time is not a canonical decimal"))?;
        Ok(BlockRef {
            height,
            hash: BlockHash(Digest(h)),
            time: Timestamp(time),
        })
    }
}

/// A checkpoint of the vault's ledger: the log size and root after a finalized block, and that
/// block. See the module documentation for its exact text.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VaultCheckpoint {
    /// The chain (the origin line).
    pub chain_id: ChainId,
    /// The log size after the block.
    pub size: u64,
    /// The log root after the block.
    pub root: Hash,
    /// The block.
    pub block: BlockRef,
}

impl VaultCheckpoint {
    /// The checkpoint after the block with this header.
    pub fn from_header(chain_id: &ChainId, header: &BlockHeader, suite: CryptoSuite) -> Self {
        VaultCheckpoint {
            chain_id: chain_id.clone(),
            size: header.log_size,
            root: header.log_root.0,
            block: BlockRef {
                height: header.height,
                hash: header.hash(suite),
                time: header.time,
            },
        }
    }

    /// As a generic checkpoint: origin = chain id, one `vault-block` extension line.
    pub fn to_checkpoint(&self) -> Checkpoint {
        Checkpoint {
            origin: self.chain_id.as_str().to_string(),
            size: self.size,
            root: self.root,
            extensions: vec![self.block.to_line()],
        }
    }

    /// The note body (what every cosigner signs).
    pub fn to_body(&self) -> String {
        // Built directly: a chain id, decimals, base64 and hex never need the checks of
        // `Checkpoint::to_body`.
        format!(
            "{}\n{}\n{}\n{}\n",
            self.chain_id.as_str(),
            self.size,
            base64::encode(&self.root),
            self.block.to_line()
        )
    }

    /// Reads the vault's checkpoint out of a generic one: the origin must be `chain_id` and the
    /// only extension line a valid `vault-block` line.
    pub fn from_checkpoint(cp: &Checkpoint, chain_id: &ChainId) -> Result<Self, CheckpointError> {
        if cp.origin != chain_id.as_str() {
            return Err(CheckpointError::WrongOrigin {
                expected: chain_id.as_str().to_string(),
                found: cut(&cp.origin),
            });
        }
        let (first, rest) = cp
            .extensions
            .split_first()
            .ok_or(CheckpointError::MissingBlockLine)?;
        let block = BlockRef::parse_line(first)?;
        if let Some(extra) = rest.first() {
            return Err(CheckpointError::UnexpectedExtension { line: cut(extra) });
        }
        Ok(VaultCheckpoint {
            chain_id: chain_id.clone(),
            size: cp.size,
            root: cp.root,
            block,
        })
    }

    /// `department`'s cosignature with its signing key `key`, under [`cosigner_name`].
    pub fn sign(&self, department: &DepartmentId, key: &KeyPair) -> NoteSignature {
        sign_raw(
            &self.to_body(),
            &cosigner_name(department, &self.chain_id),
            key,
        )
    }

    /// The signed note of this checkpoint with these signatures.
    pub fn note(&self, signatures: Vec<NoteSignature>) -> SignedNote {
        SignedNote {
            body: self.to_body(),
            signatures,
        }
    }

    /// Checks that the checkpoint describes the block with this header: height, hash, time, log
    /// size and log root.
    pub fn check_header(
        &self,
        header: &BlockHeader,
        suite: CryptoSuite,
    ) -> Result<(), CheckpointError> {
        let mismatch = |field, checkpoint: String, header: String| {
            Err(CheckpointError::HeaderMismatch {
                field,
                checkpoint,
                header,
            })
        };
        let hash = header.hash(suite);
        if self.block.height != header.height {
            return mismatch(
                "height",
                self.block.height.to_string(),
                header.height.to_string(),
            );
        }
        if self.block.hash != hash {
            return mismatch("block_hash", self.block.hash.to_string(), hash.to_string());
        }
        if self.block.time != header.time {
            return mismatch(
                "time",
                self.block.time.millis().to_string(),
                header.time.millis().to_string(),
            );
        }
        if self.size != header.log_size {
            return mismatch(
                "log_size",
                self.size.to_string(),
                header.log_size.to_string(),
            );
        }
        if self.root != header.log_root.0 {
            return mismatch("log_root", hex::encode(self.root), header.log_root.to_hex());
        }
        Ok(())
    }
}

/// A checkpoint whose cosignatures were verified by [`cosigned_checkpoint_verdict`]. It can only
/// be made by verifying.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VerifiedCheckpoint {
    checkpoint: VaultCheckpoint,
    suite: CryptoSuite,
    cosigners: Vec<DepartmentId>,
    ignored: Vec<IgnoredSignature>,
    members: usize,
    required: usize,
}

impl VerifiedCheckpoint {
    /// The checkpoint.
    pub fn checkpoint(&self) -> &VaultCheckpoint {
        &self.checkpoint
    }

    /// The block time the checkpoint rests on (for a verdict's freshness).
    pub fn time(&self) -> Timestamp {
        self.checkpoint.block.time
    }

    /// The members whose signature verified, in id order.
    pub fn cosigners(&self) -> &[DepartmentId] {
        &self.cosigners
    }

    /// The signature lines ignored (unknown signers, keys not in force), and why.
    pub fn ignored(&self) -> &[IgnoredSignature] {
        &self.ignored
    }

    /// The number of current members when verified.
    pub fn members(&self) -> usize {
        self.members
    }

    /// The number of cosignatures that were required.
    pub fn required(&self) -> usize {
        self.required
    }

    /// Checks that the checkpoint describes the block with this header.
    pub fn check_header(&self, header: &BlockHeader) -> Result<(), CheckpointError> {
        self.checkpoint.check_header(header, self.suite)
    }
}

/// The signing keys of `member` in force at `t`, with their key ids under `name`.
fn keys_in_force<'a>(
    member: &'a DepartmentRecord,
    name: &'a str,
    t: Timestamp,
) -> impl Iterator<Item = (&'a PublicKey, [u8; 4])> + 'a {
    member
        .signing_keys
        .iter()
        .filter(move |p| p.covers(t))
        .map(move |p| (&p.key, note_key_id(name, &p.key)))
}

/// Verifies a cosigned vault checkpoint against the governance a verifier trusts.
///
/// In order: the note parses ([`SignedNote::parse_bytes`]); the body is a valid checkpoint
/// ([`Checkpoint::parse_body`]) whose origin is `governance.chain_id` and whose only extension is
/// a `vault-block` line; every signature line whose name is `<id>.<chain id>` of a current member
/// and whose key id is that of one of the member's signing keys in force at the block time must
/// verify (otherwise [`CheckpointError::BadSignature`]); other lines are ignored; signatures of at
/// least [`Governance::quorum`] distinct current members must have verified (otherwise
/// [`CheckpointError::TooFewCosigners`]); and, if `min_time` is given, the block time must not be
/// before it (otherwise [`CheckpointError::Stale`]).
pub fn cosigned_checkpoint_verdict(
    note_text: impl AsRef<[u8]>,
    governance: &Governance,
    min_time: Option<Timestamp>,
) -> Result<VerifiedCheckpoint, CheckpointError> {
    let note = SignedNote::parse_bytes(note_text.as_ref())?;
    let cp = Checkpoint::parse_body(&note.body)?;
    let checkpoint = VaultCheckpoint::from_checkpoint(&cp, &governance.chain_id)?;
    let t = checkpoint.block.time;

    let members: Vec<(&DepartmentRecord, String)> = governance
        .current_members()
        .map(|d| (d, cosigner_name(&d.id, &governance.chain_id)))
        .collect();
    let required = Governance::quorum(members.len());

    let mut cosigners = BTreeSet::new();
    let mut ignored = Vec::new();
    for sig in &note.signatures {
        let Some((member, name)) = members.iter().find(|(_, n)| *n == sig.name) else {
            ignored.push(IgnoredSignature {
                name: sig.name.clone(),
                key_id: sig.key_id,
                reason: IgnoreReason::UnknownSigner,
            });
            continue;
        };
        let candidates: Vec<&PublicKey> = keys_in_force(member, name, t)
            .filter(|(_, id)| *id == sig.key_id)
            .map(|(k, _)| k)
            .collect();
        if candidates.is_empty() {
            ignored.push(IgnoredSignature {
                name: sig.name.clone(),
                key_id: sig.key_id,
                reason: IgnoreReason::KeyNotInForce {
                    department: member.id.clone(),
                    at: t,
                },
            });
            continue;
        }
        // Key ids are 32 bits, so two keys of one member could share one; any may verify.
        let mut result = Ok(());
        for key in candidates {
            result = verify_note_signature(&note.body, sig, name, key);
            if result.is_ok() {
                break;
            }
        }
        result?;
        cosigners.insert(member.id.clone());
    }

    let cosigners: Vec<DepartmentId> = cosigners.into_iter().collect();
    if cosigners.len() < required {
        return Err(CheckpointError::TooFewCosigners {
            valid: cosigners.len(),
            required,
            members: members.len(),
            cosigners,
            ignored,
        });
    }
    if let Some(required) = min_time {
        if t < required {
            return Err(CheckpointError::Stale {
                checkpoint_time: t,
                required,
            });
        }
    }
    Ok(VerifiedCheckpoint {
        checkpoint,
        suite: governance.suite,
        cosigners,
        ignored,
        members: members.len(),
        required,
    })
}

/// Checks that two verified checkpoints are views of one append-only log, given a consistency
/// proof from the smaller tree to the larger (RFC 9162 §2.1.4).
///
/// The checkpoints may be given in either order; they are ordered by (size, height). Refused
/// with [`CheckpointError::SplitView`] when: the sizes are equal but the roots differ; the heights
/// or block hashes are equal but the blocks or logs differ; the smaller log belongs to the later
/// block; the later block's time is not after the earlier's; an empty log has a root other than
/// the empty tree's; or the proof does not verify. The proof's sizes
/// must be the checkpoints' (otherwise [`CheckpointError::ProofSizeMismatch`]); for equal sizes
/// it is the empty proof, and from size 0 too.
pub fn verify_consistency_between(
    old: &VerifiedCheckpoint,
    new: &VerifiedCheckpoint,
    proof: &ConsistencyProof,
) -> Result<(), CheckpointError> {
    let (a, b) = (&old.checkpoint, &new.checkpoint);
    if a.chain_id != b.chain_id {
        return Err(CheckpointError::OriginMismatch {
            old: a.chain_id.as_str().to_string(),
            new: b.chain_id.as_str().to_string(),
        });
    }
    let (a, b) = if (a.size, a.block.height) <= (b.size, b.block.height) {
        (a, b)
    } else {
        (b, a)
    };
    let split = |reason| {
        Err(CheckpointError::SplitView {
            old_size: a.size,
            old_height: a.block.height,
            old_root: a.root,
            new_size: b.size,
            new_height: b.block.height,
            new_root: b.root,
            reason,
        })
    };
    if a.size == b.size && a.root != b.root {
        return split(SplitViewReason::SameSizeDifferentRoots);
    }
    if (a.block.height == b.block.height || a.block.hash == b.block.hash) && a != b {
        return split(SplitViewReason::ConflictingBlocks);
    }
    if a.size < b.size && a.block.height > b.block.height {
        return split(SplitViewReason::LogShrank);
    }
    let (early, late) = if a.block.height < b.block.height {
        (a, b)
    } else {
        (b, a)
    };
    if early.block.height < late.block.height && early.block.time >= late.block.time {
        return split(SplitViewReason::TimeWentBack);
    }
    if proof.old_size != a.size || proof.new_size != b.size {
        return Err(CheckpointError::ProofSizeMismatch {
            old: a.size,
            new: b.size,
            found_old: proof.old_size,
            found_new: proof.new_size,
        });
    }
    let result = match old.suite {
        CryptoSuite::Ed25519Sha256 => {
            let hasher = Sha256LogHasher;
            if a.size == 0 {
                if a.root != hasher.empty_root() {
                    return split(SplitViewReason::BadEmptyRoot);
                }
                if proof.path.is_empty() {
                    Ok(())
                } else {
                    Err(MerkleError::WrongProofLength {
                        expected: 0,
                        found: proof.path.len(),
                    })
                }
            } else {
                merkle::verify_consistency(&hasher, &a.root, &b.root, proof)
            }
        }
    };
    match result {
        Ok(()) => Ok(()),
        Err(e) => split(SplitViewReason::ProofFailed(e)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn base64_rfc4648_vectors() {
        let vectors: [(&[u8], &str); 7] = [
            (b"", ""),
            (b"f", "Zg=="),
            (b"fo", "Zm8="),
            (b"foo", "Zm9v"),
            (b"foob", "Zm9vYg=="),
            (b"fooba", "Zm9vYmE="),
            (b"foobar", "Zm9vYmFy"),
        ];
        for (raw, enc) in vectors {
            assert_eq!(base64::encode(raw), enc);
            assert_eq!(base64::decode(enc).unwrap(), raw);
        }
        assert_eq!(base64::encode(&[0xfb, 0xff, 0xfe]), "+//+");
        assert_eq!(base64::decode("+//+").unwrap(), [0xfb, 0xff, 0xfe]);
    }

    #[test]
    fn base64_is_strict() {
        use base64::Base64Error::*;
        for (bad, err) in [
            ("Zg=", Length(3)),
            ("Zg", Length(2)),
            ("Zm9vY", Length(5)),
            ("Zh==", NonCanonical),
            ("Zm9=", NonCanonical),
            ("Z===", Character(1)),
            ("====", Character(1)),
            ("Zg==Zg==", Character(2)),
            ("Zm=v", Character(2)),
            ("Zm9v\n", Length(5)),
            ("Zm 9", Character(2)),
            ("Zm-_", Character(2)),
        ] {
            assert_eq!(base64::decode(bad), Err(err), "{bad}");
        }
    }

    #[test]
    fn decimal_is_canonical() {
        assert_eq!(parse_decimal("0"), Some(0));
        assert_eq!(parse_decimal("10"), Some(10));
        assert_eq!(parse_decimal("18446744073709551615"), Some(u64::MAX));
        for bad in [
            "",
            "00",
            "01",
            "+1",
            "-1",
            " 1",
            "1 ",
            "18446744073709551616",
            "١",
            "1e3",
        ] {
            assert_eq!(parse_decimal(bad), None, "{bad:?}");
        }
    }

    #[test]
    fn key_names() {
        assert!(is_valid_key_name("samr.test-vault"));
        assert!(is_valid_key_name("example.com/log—42"));
        assert!(is_valid_key_name("del\u{7f}"));
        for bad in [
            "",
            "a b",
            "a+b",
            "a\tb",
            "a\u{1}b",
            "a\u{3000}b",
            "a\u{a0}b",
            "a\u{85}b",
            "a\u{2028}b",
        ] {
            assert!(!is_valid_key_name(bad), "{bad:?}");
        }
    }

    #[test]
    fn error_codes_are_stable_and_distinct() {
        use CheckpointError as E;
        let s = String::new;
        let all = [
            E::NoteTooLarge { len: 0, max: 0 },
            E::NotUtf8 { offset: 0 },
            E::ControlCharacter { offset: 0, byte: 0 },
            E::NoteUnterminated,
            E::NoteMissingSignatures,
            E::SignatureLine {
                line: 0,
                reason: "",
            },
            E::InvalidKeyName { name: s() },
            E::TooManySignatures { count: 0, max: 0 },
            E::BodyUnterminated,
            E::MissingLine { line: "" },
            E::EmptyOrigin,
            E::EmptyLine { line: 0 },
            E::InvalidSize { found: s() },
            E::InvalidRoot {
                found: s(),
                reason: "",
            },
            E::WrongOrigin {
                expected: s(),
                found: s(),
            },
            E::MissingBlockLine,
            E::InvalidBlockLine {
                found: s(),
                reason: "",
            },
            E::UnexpectedExtension { line: s() },
            E::HeaderMismatch {
                field: "",
                checkpoint: s(),
                header: s(),
            },
            E::SignerMismatch {
                expected: s(),
                found: s(),
            },
            E::KeyIdMismatch {
                name: s(),
                expected: s(),
                found: s(),
            },
            E::InvalidVerifierKey {
                vkey: s(),
                reason: "",
            },
            E::InvalidPublicKey { key: s() },
            E::BadSignature {
                signer: s(),
                key_id: s(),
            },
            E::TooFewCosigners {
                valid: 0,
                required: 1,
                members: 0,
                cosigners: vec![],
                ignored: vec![],
            },
            E::Stale {
                checkpoint_time: Timestamp(0),
                required: Timestamp(1),
            },
            E::OriginMismatch { old: s(), new: s() },
            E::ProofSizeMismatch {
                old: 0,
                new: 0,
                found_old: 0,
                found_new: 0,
            },
            E::SplitView {
                old_size: 0,
                old_height: 0,
                old_root: [0; 32],
                new_size: 0,
                new_height: 0,
                new_root: [0; 32],
                reason: SplitViewReason::LogShrank,
            },
        ];
        let codes: BTreeSet<&str> = all.iter().map(|e| e.code()).collect();
        assert_eq!(codes.len(), all.len());
        for c in codes {
            assert!(
                c.bytes()
                    .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_'),
                "{c}"
            );
        }
        for e in &all {
            assert!(!e.to_string().is_empty());
        }
    }

    proptest! {
        #[test]
        fn prop_base64_round_trip(bytes in prop::collection::vec(any::<u8>(), 0..100)) {
            let enc = base64::encode(&bytes);
            prop_assert_eq!(enc.len() % 4, 0);
            prop_assert_eq!(base64::decode(&enc).unwrap(), bytes);
        }

        #[test]
        fn prop_base64_decode_never_panics_and_is_injective(s in "[A-Za-z0-9+/=]{0,16}") {
            if let Ok(bytes) = base64::decode(&s) {
                prop_assert_eq!(base64::encode(&bytes), s);
            }
        }
    }
}
