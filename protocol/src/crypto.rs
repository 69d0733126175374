//! Hashes and signatures, behind one seam: the [`CryptoSuite`] fixed in the genesis.
//!
//! Every signed or hashed object has its own domain-separation tag ([`Domain`]), prefixed to the
//! bytes before hashing or signing, so that a signature or digest made for one kind of object can
//! never be replayed as another. File digests are the exception: they are the plain SHA-256 of the
//! file, so that anyone can recompute them with `sha256sum`.
//!
//! Only `Ed25519Sha256` exists today. The chain's signatures (transactions, signed requests) are
//! checked by the ZIP-215 rule — the consensus engine's own — with `ed25519-zebra`: `s` must be
//! canonical, the cofactored equation `[8][s]B = [8]R + [8][k]A` must hold. Under ZIP-215 single
//! and batch verification accept exactly the same signatures, so nodes may batch (2–4× cheaper
//! per signature) and still agree on every transaction. Small-order (weak) keys are refused,
//! since under the cofactored equation such a key would "sign" anything. C2SP notes, which outside
//! tools check too, are verified strictly (RFC 8032, ed25519-dalek's `verify_strict`).
//!
//! A 国密 SM2/SM3 suite would be another [`CryptoSuite`] variant; the ledger logic only calls the
//! suite's methods and treats keys, signatures and digests as opaque values.

use std::fmt;
use std::str::FromStr;

use borsh::{BorshDeserialize, BorshSerialize};
use ed25519_dalek::{Signer as _, SigningKey, VerifyingKey};
use serde::{Deserialize, Serialize};
use sha2::{Digest as _, Sha256};

use crate::encoding::hex_array;

/// The algorithms a chain uses, fixed once in its genesis.
#[derive(
    Debug,
    Clone,
    Copy,
    PartialEq,
    Eq,
    Hash,
    BorshSerialize,
    BorshDeserialize,
    Serialize,
    Deserialize,
)]
#[borsh(use_discriminant = true)]
#[repr(u8)]
pub enum CryptoSuite {
    /// Ed25519 signatures (strict verification) and SHA-256 hashes.
    #[serde(rename = "ed25519-sha256")]
    Ed25519Sha256 = 1,
}

/// The kind of object being hashed or signed. Each has a distinct tag.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Domain {
    /// A governance transaction (admit, remove, authorise, rotate keys, define a document type).
    Governance,
    /// Enrolling an enterprise.
    Enrolment,
    /// An enterprise rotating its key.
    EnterpriseKey,
    /// Issuing an attestation.
    Attestation,
    /// Suspending, reinstating or revoking an attestation.
    Status,
    /// An enterprise's grant.
    Grant,
    /// Withdrawing a grant.
    GrantWithdrawal,
    /// Access receipts.
    Receipt,
    /// The id of one access receipt within a receipts transaction.
    ReceiptId,
    /// A block header.
    Block,
    /// The genesis document.
    Genesis,
    /// The list of a block's transaction ids.
    BlockTransactions,
    /// A leaf of the ledger's Merkle log.
    LogLeaf,
    /// The ledger-state commitment.
    State,
    /// A signed request to read a document (used by nodes and clients).
    AccessRequest,
}

impl Domain {
    /// The tag prefixed to the bytes. Tags are NUL-terminated so that none is a prefix of another.
    pub const fn tag(self) -> &'static [u8] {
        match self {
            Domain::Governance => b"vault/v1/governance\0",
            Domain::Enrolment => b"vault/v1/enrolment\0",
            Domain::EnterpriseKey => b"vault/v1/enterprise-key\0",
            Domain::Attestation => b"vault/v1/attestation\0",
            Domain::Status => b"vault/v1/status\0",
            Domain::Grant => b"vault/v1/grant\0",
            Domain::GrantWithdrawal => b"vault/v1/grant-withdrawal\0",
            Domain::Receipt => b"vault/v1/receipt\0",
            Domain::ReceiptId => b"vault/v1/receipt-id\0",
            Domain::Block => b"vault/v1/block\0",
            Domain::Genesis => b"vault/v1/genesis\0",
            Domain::BlockTransactions => b"vault/v1/block-transactions\0",
            Domain::LogLeaf => b"vault/v1/log-leaf\0",
            Domain::State => b"vault/v1/state\0",
            Domain::AccessRequest => b"vault/v1/access-request\0",
        }
    }

    /// Every domain, for tests and documentation.
    pub const ALL: [Domain; 15] = [
        Domain::Governance,
        Domain::Enrolment,
        Domain::EnterpriseKey,
        Domain::Attestation,
        Domain::Status,
        Domain::Grant,
        Domain::GrantWithdrawal,
        Domain::Receipt,
        Domain::ReceiptId,
        Domain::Block,
        Domain::Genesis,
        Domain::BlockTransactions,
        Domain::LogLeaf,
        Domain::State,
        Domain::AccessRequest,
    ];
}

/// A 32-byte digest.
#[derive(
    Clone,
    Copy,
    PartialEq,
    Eq,
    PartialOrd,
    Ord,
    Hash,
    Default,
    BorshSerialize,
    BorshDeserialize,
    Serialize,
    Deserialize,
)]
pub struct Digest(#[serde(with = "hex_array")] pub [u8; 32]);

impl Digest {
    /// The all-zero digest (the parent of the genesis block).
    pub const ZERO: Digest = Digest([0u8; 32]);

    /// The bytes.
    pub fn as_bytes(&self) -> &[u8; 32] {
        &self.0
    }

    /// Lowercase hex.
    pub fn to_hex(&self) -> String {
        hex::encode(self.0)
    }
}

impl fmt::Debug for Digest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.to_hex())
    }
}

impl fmt::Display for Digest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.to_hex())
    }
}

/// Why a hex string is not a digest, key or signature.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("expected {expected} hex characters, got {found:?}")]
pub struct HexError {
    /// Hex characters expected.
    pub expected: usize,
    /// What was given (cut to 80 characters).
    pub found: String,
}

fn parse_hex<const N: usize>(s: &str) -> Result<[u8; N], HexError> {
    let mut out = [0u8; N];
    hex::decode_to_slice(s, &mut out).map_err(|_| HexError {
        expected: 2 * N,
        found: s.chars().take(80).collect(),
    })?;
    Ok(out)
}

impl FromStr for Digest {
    type Err = HexError;
    fn from_str(s: &str) -> Result<Self, HexError> {
        parse_hex(s).map(Digest)
    }
}

/// A public key of the chain's crypto suite.
#[derive(
    Clone,
    Copy,
    PartialEq,
    Eq,
    PartialOrd,
    Ord,
    Hash,
    BorshSerialize,
    BorshDeserialize,
    Serialize,
    Deserialize,
)]
pub struct PublicKey(#[serde(with = "hex_array")] [u8; 32]);

impl PublicKey {
    /// Wraps key bytes. Whether they form a valid key is checked when a signature is verified.
    pub fn from_bytes(bytes: [u8; 32]) -> Self {
        Self(bytes)
    }

    /// The key bytes.
    pub fn as_bytes(&self) -> &[u8] {
        &self.0
    }

    /// Lowercase hex.
    pub fn to_hex(&self) -> String {
        hex::encode(self.0)
    }
}

impl fmt::Debug for PublicKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "PublicKey({})", self.to_hex())
    }
}

impl fmt::Display for PublicKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.to_hex())
    }
}

impl FromStr for PublicKey {
    type Err = HexError;
    fn from_str(s: &str) -> Result<Self, HexError> {
        parse_hex(s).map(PublicKey)
    }
}

/// A signature of the chain's crypto suite.
#[derive(
    Clone, Copy, PartialEq, Eq, Hash, BorshSerialize, BorshDeserialize, Serialize, Deserialize,
)]
pub struct Signature(#[serde(with = "hex_array")] [u8; 64]);

impl Signature {
    /// Wraps signature bytes.
    pub fn from_bytes(bytes: [u8; 64]) -> Self {
        Self(bytes)
    }

    /// The signature bytes.
    pub fn as_bytes(&self) -> &[u8] {
        &self.0
    }
}

impl fmt::Debug for Signature {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Signature({})", hex::encode(self.0))
    }
}

impl FromStr for Signature {
    type Err = HexError;
    fn from_str(s: &str) -> Result<Self, HexError> {
        parse_hex(s).map(Signature)
    }
}

/// Why a signature was not accepted.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SignatureError {
    /// The public key bytes are not a valid (or are a weak, small-order) key.
    #[error("invalid public key {key}")]
    InvalidKey {
        /// The key, in hex.
        key: String,
    },
    /// The signature does not verify under the key.
    #[error("signature does not verify under key {key}")]
    Mismatch {
        /// The key, in hex.
        key: String,
    },
}

impl CryptoSuite {
    /// Hashes `parts`, in order, under `domain`'s tag.
    pub fn hash(self, domain: Domain, parts: &[&[u8]]) -> Digest {
        match self {
            CryptoSuite::Ed25519Sha256 => {
                let mut h = Sha256::new();
                h.update(domain.tag());
                for p in parts {
                    h.update(p);
                }
                Digest(h.finalize().into())
            }
        }
    }

    /// The digest of a file, as recorded in attestations: plain SHA-256, no domain tag.
    pub fn file_digest(self, bytes: &[u8]) -> Digest {
        match self {
            CryptoSuite::Ed25519Sha256 => Digest(Sha256::digest(bytes).into()),
        }
    }

    /// A streaming file hasher, for files too large to hold in memory.
    pub fn file_hasher(self) -> FileHasher {
        match self {
            CryptoSuite::Ed25519Sha256 => FileHasher(Sha256::new()),
        }
    }

    /// Verifies a signature over `message` under `domain` by the chain's signature rule (ZIP-215,
    /// see the module documentation).
    pub fn verify(
        self,
        domain: Domain,
        key: &PublicKey,
        message: &[u8],
        signature: &Signature,
    ) -> Result<(), SignatureError> {
        let tagged = [domain.tag(), message].concat();
        self.check_one(Rule::Zip215, key, &tagged, signature)
    }

    /// Verifies a signature over `message` exactly as given, by the consensus engine's rule
    /// (ZIP-215, as the chain's own) — for the engine's votes in finalization certificates, which
    /// carry their own framing.
    pub fn verify_consensus(
        self,
        key: &PublicKey,
        message: &[u8],
        signature: &Signature,
    ) -> Result<(), SignatureError> {
        self.check_one(Rule::Zip215, key, message, signature)
    }

    /// Verifies `signature` over `message` exactly as given, strictly (RFC 8032 with
    /// ed25519-dalek's `verify_strict`) — for formats defined outside the vault that carry their
    /// own framing and are checked by outside tools too (C2SP signed notes), never for the
    /// vault's own objects.
    pub fn verify_untagged(
        self,
        key: &PublicKey,
        message: &[u8],
        signature: &Signature,
    ) -> Result<(), SignatureError> {
        self.check_one(Rule::Strict, key, message, signature)
    }

    /// Verifies many signatures under the chain's rule at once; the answer has one entry per
    /// check, in order. Signatures not verified before are checked together with batch
    /// verification (spread over the machine's cores when there are many); if a batch fails, its
    /// signatures are checked one by one to find which. ZIP-215 makes the batch equation and the
    /// single one accept exactly the same signatures, so the answer does not depend on how the
    /// checks were grouped, or on the batch's random weights.
    pub fn verify_many(self, checks: &[SignatureCheck<'_>]) -> Vec<Result<(), SignatureError>> {
        match self {
            CryptoSuite::Ed25519Sha256 => {
                let mut out: Vec<Result<(), SignatureError>> = vec![Ok(()); checks.len()];
                // What remains to check: (index, memo, key, tagged message, signature).
                let mut todo: Vec<Pending> = Vec::new();
                for (i, c) in checks.iter().enumerate() {
                    let message = [c.domain.tag(), c.message].concat();
                    let memo = memo(Rule::Zip215, c.key, c.signature, &message);
                    if verified_before(&memo) {
                        continue;
                    }
                    match checked_key(c.key) {
                        Ok(k) => todo.push(Pending {
                            index: i,
                            memo,
                            key: k.zip215,
                            key_bytes: *c.key,
                            message,
                            signature: *c.signature,
                        }),
                        Err(e) => out[i] = Err(e),
                    }
                }
                let results: Vec<(usize, Result<(), SignatureError>)> =
                    if todo.len() < PARALLEL_BATCH_MIN || verify_threads() < 2 {
                        check_pending(&todo)
                    } else {
                        let chunk = todo.len().div_ceil(verify_threads());
                        std::thread::scope(|scope| {
                            let handles: Vec<_> = todo
                                .chunks(chunk)
                                .map(|part| scope.spawn(move || check_pending(part)))
                                .collect();
                            handles
                                .into_iter()
                                .flat_map(|h| {
                                    h.join()
                                        .unwrap_or_else(|panic| std::panic::resume_unwind(panic))
                                })
                                .collect()
                        })
                    };
                for (i, r) in results {
                    out[i] = r;
                }
                out
            }
        }
    }

    fn check_one(
        self,
        rule: Rule,
        key: &PublicKey,
        message: &[u8],
        signature: &Signature,
    ) -> Result<(), SignatureError> {
        match self {
            CryptoSuite::Ed25519Sha256 => {
                // Signatures already found valid are remembered by the hash of everything that
                // was checked (rule, key, signature, message); only valid ones are kept, so a hit
                // can only repeat a verification that succeeded under the same rule.
                let memo = memo(rule, key, signature, message);
                if verified_before(&memo) {
                    return Ok(());
                }
                let k = checked_key(key)?;
                let ok = match rule {
                    Rule::Strict => k
                        .strict
                        .verify_strict(message, &ed25519_dalek::Signature::from_bytes(&signature.0))
                        .is_ok(),
                    Rule::Zip215 => k
                        .zip215
                        .verify(&ed25519_zebra::Signature::from_bytes(&signature.0), message)
                        .is_ok(),
                };
                if !ok {
                    return Err(SignatureError::Mismatch { key: key.to_hex() });
                }
                remember_verified(memo);
                Ok(())
            }
        }
    }
}

/// One signature to check with [`CryptoSuite::verify_many`]: made by `key` over `domain`'s tag
/// followed by `message`.
#[derive(Debug, Clone, Copy)]
pub struct SignatureCheck<'a> {
    /// The domain the signature was made under.
    pub domain: Domain,
    /// The signer's key.
    pub key: &'a PublicKey,
    /// The message, without its tag.
    pub message: &'a [u8],
    /// The signature.
    pub signature: &'a Signature,
}

/// The two verification rules, for the memo (a signature valid under one is not thereby valid
/// under the other).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Rule {
    /// RFC 8032 with `verify_strict`: C2SP notes.
    Strict = 1,
    /// ZIP-215: the chain's transactions and requests, and the consensus engine's votes.
    Zip215 = 2,
}

fn memo(rule: Rule, key: &PublicKey, signature: &Signature, message: &[u8]) -> [u8; 32] {
    let mut h = Sha256::new();
    h.update([rule as u8]);
    h.update(key.0);
    h.update(signature.0);
    h.update(message);
    h.finalize().into()
}

/// The threads a large batch is checked on: the machine's cores, at most 8. Asked of the
/// system once — `available_parallelism` reads the cgroup's CPU quota from files on every call,
/// which cost the verify API more than the signature check it answers from the cache.
fn verify_threads() -> usize {
    static THREADS: std::sync::OnceLock<usize> = std::sync::OnceLock::new();
    *THREADS.get_or_init(|| std::thread::available_parallelism().map_or(1, |n| n.get().min(8)))
}

/// Below this many signatures a batch is checked on one core (the bench's ceiling measures
/// batches of 64 on one core).
const PARALLEL_BATCH_MIN: usize = 128;

/// Below this many signatures, batch verification saves nothing.
const BATCH_MIN: usize = 4;

struct Pending {
    index: usize,
    memo: [u8; 32],
    key: ed25519_zebra::VerificationKey,
    key_bytes: PublicKey,
    message: Vec<u8>,
    signature: Signature,
}

/// Checks `todo` as one batch (one by one if the batch fails, or is too small to gain), and
/// remembers the valid ones.
fn check_pending(todo: &[Pending]) -> Vec<(usize, Result<(), SignatureError>)> {
    let single = |p: &Pending| -> Result<(), SignatureError> {
        p.key
            .verify(
                &ed25519_zebra::Signature::from_bytes(&p.signature.0),
                &p.message,
            )
            .map_err(|_| SignatureError::Mismatch {
                key: p.key_bytes.to_hex(),
            })
    };
    let batch_ok = todo.len() >= BATCH_MIN && {
        let mut batch = ed25519_zebra::batch::Verifier::new();
        for p in todo {
            batch.queue((
                ed25519_zebra::VerificationKeyBytes::from(p.key),
                ed25519_zebra::Signature::from_bytes(&p.signature.0),
                &p.message,
            ));
        }
        batch.verify(rand::rng()).is_ok()
    };
    todo.iter()
        .map(|p| {
            let r = if batch_ok { Ok(()) } else { single(p) };
            if r.is_ok() {
                remember_verified(p.memo);
            }
            (p.index, r)
        })
        .collect()
}

/// Most verified signatures remembered (32 bytes each).
const VERIFIED_CACHE_SIZE: usize = 1 << 16;

fn verified_cache() -> &'static std::sync::Mutex<std::collections::HashSet<[u8; 32]>> {
    static CACHE: std::sync::OnceLock<std::sync::Mutex<std::collections::HashSet<[u8; 32]>>> =
        std::sync::OnceLock::new();
    CACHE.get_or_init(|| std::sync::Mutex::new(std::collections::HashSet::new()))
}

/// Whether a signature with this memo (the hash of rule, key, signature and message) verified
/// before.
fn verified_before(memo: &[u8; 32]) -> bool {
    verified_cache().lock().is_ok_and(|c| c.contains(memo))
}

/// Forgets every remembered signature, so that the next checks verify afresh (for benchmarks of
/// cold verification).
pub fn clear_signature_cache() {
    if let Ok(mut c) = verified_cache().lock() {
        c.clear();
    }
}

/// Remembers a signature that verified (the set is emptied when full).
fn remember_verified(memo: [u8; 32]) {
    if let Ok(mut c) = verified_cache().lock() {
        if c.len() >= VERIFIED_CACHE_SIZE {
            c.clear();
        }
        c.insert(memo);
    }
}

/// Most decompressed keys kept; the set of keys that sign is small (departments, enterprises).
const KEY_CACHE_SIZE: usize = 8192;

/// A public key decompressed and checked once, in the forms both rules verify with.
#[derive(Clone, Copy)]
struct CheckedKey {
    strict: VerifyingKey,
    zip215: ed25519_zebra::VerificationKey,
}

/// The decompressed, checked form of a public key, from a cache: decompressing a point is about a
/// sixth of a verification, and the same few thousand keys sign everything. Invalid and weak
/// (small-order) keys are refused here under both rules: under ZIP-215 a small-order key would
/// "sign" any message.
fn checked_key(key: &PublicKey) -> Result<CheckedKey, SignatureError> {
    use std::collections::HashMap;
    use std::sync::{Mutex, OnceLock};
    static CACHE: OnceLock<Mutex<HashMap<[u8; 32], CheckedKey>>> = OnceLock::new();
    let cache = CACHE.get_or_init(|| Mutex::new(HashMap::new()));
    if let Some(k) = cache.lock().ok().and_then(|c| c.get(&key.0).copied()) {
        return Ok(k);
    }
    let invalid = || SignatureError::InvalidKey { key: key.to_hex() };
    let strict = VerifyingKey::from_bytes(&key.0)
        .ok()
        .filter(|vk| !vk.is_weak())
        .ok_or_else(invalid)?;
    let zip215 = ed25519_zebra::VerificationKey::try_from(key.0).map_err(|_| invalid())?;
    let k = CheckedKey { strict, zip215 };
    if let Ok(mut c) = cache.lock() {
        if c.len() >= KEY_CACHE_SIZE {
            c.clear();
        }
        c.insert(key.0, k);
    }
    Ok(k)
}

/// An incremental file digest.
pub struct FileHasher(Sha256);

impl FileHasher {
    /// Feeds bytes.
    pub fn update(&mut self, bytes: &[u8]) {
        self.0.update(bytes);
    }

    /// The digest of everything fed.
    pub fn finalize(self) -> Digest {
        Digest(self.0.finalize().into())
    }
}

/// A secret signing key together with its public key.
#[derive(Clone)]
pub struct KeyPair {
    suite: CryptoSuite,
    key: SigningKey,
}

impl KeyPair {
    /// The key pair derived from a 32-byte secret seed.
    pub fn from_seed(suite: CryptoSuite, seed: [u8; 32]) -> Self {
        match suite {
            CryptoSuite::Ed25519Sha256 => Self {
                suite,
                key: SigningKey::from_bytes(&seed),
            },
        }
    }

    /// The 32-byte secret seed (to store in a key file).
    pub fn seed(&self) -> [u8; 32] {
        self.key.to_bytes()
    }

    /// The suite this key belongs to.
    pub fn suite(&self) -> CryptoSuite {
        self.suite
    }

    /// The public key.
    pub fn public(&self) -> PublicKey {
        PublicKey(self.key.verifying_key().to_bytes())
    }

    /// Signs `message` under `domain`.
    pub fn sign(&self, domain: Domain, message: &[u8]) -> Signature {
        let msg = [domain.tag(), message].concat();
        Signature(self.key.sign(&msg).to_bytes())
    }

    /// Signs `message` exactly as given — only for formats defined outside the vault that carry
    /// their own framing (C2SP notes, consensus votes); see [`CryptoSuite::verify_untagged`].
    pub fn sign_untagged(&self, message: &[u8]) -> Signature {
        Signature(self.key.sign(message).to_bytes())
    }
}

/// The key-file format `vault-node` and `vault` share: the suite, what the key is for, the public
/// key, and the 32-byte secret seed in hex (JSON on disk, readable only by its owner).
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct KeyFile {
    /// The suite.
    pub suite: CryptoSuite,
    /// What the key is for (`node`, `signing`, `enterprise`, …).
    pub role: String,
    /// The public key.
    pub public_key: PublicKey,
    /// The secret seed, hex.
    pub secret_seed: String,
}

impl KeyFile {
    /// The file contents for `key`.
    pub fn new(key: &KeyPair, role: &str) -> Self {
        Self {
            suite: key.suite(),
            role: role.to_string(),
            public_key: key.public(),
            secret_seed: hex::encode(key.seed()),
        }
    }

    /// The key pair in a key file's JSON text, after checking its public key against its secret.
    pub fn parse_key_pair(json: &str) -> Result<KeyPair, String> {
        serde_json::from_str::<KeyFile>(json)
            .map_err(|e| e.to_string())
            .and_then(|f| f.key_pair())
    }

    /// The key pair, after checking that the public key matches the secret.
    pub fn key_pair(&self) -> Result<KeyPair, String> {
        let mut seed = [0u8; 32];
        hex::decode_to_slice(self.secret_seed.trim(), &mut seed)
            .map_err(|e| format!("secret_seed: {e}"))?;
        let key = KeyPair::from_seed(self.suite, seed);
        if key.public() != self.public_key {
            return Err("public_key does not match secret_seed".into());
        }
        Ok(key)
    }
}

impl fmt::Debug for KeyPair {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "KeyPair({})", self.public())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const SUITE: CryptoSuite = CryptoSuite::Ed25519Sha256;

    #[test]
    fn tags_are_distinct_and_prefix_free() {
        for a in Domain::ALL {
            for b in Domain::ALL {
                if a != b {
                    assert!(!a.tag().starts_with(b.tag()), "{a:?} / {b:?}");
                }
            }
        }
    }

    #[test]
    fn sign_and_verify() {
        let kp = KeyPair::from_seed(SUITE, [7u8; 32]);
        let sig = kp.sign(Domain::Grant, b"hello");
        SUITE
            .verify(Domain::Grant, &kp.public(), b"hello", &sig)
            .unwrap();
        // Another domain, message or key fails.
        assert!(SUITE
            .verify(Domain::Receipt, &kp.public(), b"hello", &sig)
            .is_err());
        assert!(SUITE
            .verify(Domain::Grant, &kp.public(), b"hellO", &sig)
            .is_err());
        let other = KeyPair::from_seed(SUITE, [8u8; 32]);
        assert!(SUITE
            .verify(Domain::Grant, &other.public(), b"hello", &sig)
            .is_err());
    }

    #[test]
    fn rejects_small_order_key() {
        // The identity point: a small-order key under which "signatures" verify non-strictly.
        let mut identity = [0u8; 32];
        identity[0] = 1;
        let key = PublicKey::from_bytes(identity);
        let sig = Signature::from_bytes([0u8; 64]);
        assert!(matches!(
            SUITE.verify(Domain::Grant, &key, b"x", &sig),
            Err(SignatureError::InvalidKey { .. })
        ));
    }

    #[test]
    fn rejects_non_canonical_s() {
        let kp = KeyPair::from_seed(SUITE, [9u8; 32]);
        let sig = kp.sign(Domain::Block, b"m");
        let mut bytes = [0u8; 64];
        bytes.copy_from_slice(sig.as_bytes());
        // Add the group order L to s: same point equation, non-canonical scalar.
        const L: [u8; 32] = [
            0xed, 0xd3, 0xf5, 0x5c, 0x1a, 0x63, 0x12, 0x58, 0xd6, 0x9c, 0xf7, 0xa2, 0xde, 0xf9,
            0xde, 0x14, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0x10,
        ];
        let mut carry = 0u16;
        for i in 0..32 {
            let v = bytes[32 + i] as u16 + L[i] as u16 + carry;
            bytes[32 + i] = v as u8;
            carry = v >> 8;
        }
        let bad = Signature::from_bytes(bytes);
        assert!(SUITE
            .verify(Domain::Block, &kp.public(), b"m", &bad)
            .is_err());
    }

    #[test]
    fn hash_is_domain_separated() {
        let a = SUITE.hash(Domain::Block, &[b"x"]);
        let b = SUITE.hash(Domain::Genesis, &[b"x"]);
        assert_ne!(a, b);
        // Parts are concatenated.
        assert_eq!(
            SUITE.hash(Domain::Block, &[b"ab", b"c"]),
            SUITE.hash(Domain::Block, &[b"abc"])
        );
    }

    #[test]
    fn file_digest_is_plain_sha256() {
        assert_eq!(
            SUITE.file_digest(b"abc").to_hex(),
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
        let mut h = SUITE.file_hasher();
        h.update(b"a");
        h.update(b"bc");
        assert_eq!(h.finalize(), SUITE.file_digest(b"abc"));
    }

    #[test]
    fn hex_round_trips() {
        let d = SUITE.file_digest(b"abc");
        assert_eq!(d.to_hex().parse::<Digest>().unwrap(), d);
        assert!("abc".parse::<Digest>().is_err());
        let json = serde_json::to_string(&d).unwrap();
        assert_eq!(serde_json::from_str::<Digest>(&json).unwrap(), d);
    }
}
