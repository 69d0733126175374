//! Finalization certificates, read and checked without the consensus engine.
//!
//! The nodes agree blocks with commonware's Simplex BFT engine (ed25519 scheme). A block is final
//! once more than two thirds of the validators sign a *finalize* vote for it; the engine gathers
//! those votes into a `Finalization`, which each node stores beside the block. This module reads
//! that byte format and checks it with nothing but the validators' keys, so a verifier holding
//! only the genesis file can tell that a block header was finalized.
//!
//! The format (commonware 2026.10, `Finalization<ed25519::Scheme, sha256::Digest>`):
//!
//! ```text
//! proposal    = varint(epoch) ‖ varint(view) ‖ varint(parent view) ‖ block hash (32)
//! certificate = bit count (u64 big-endian, = number of validators n)
//!             ‖ ⌈n/8⌉ bitmap bytes (validator i ↔ byte i/8, bit 1 << (i % 8); unused bits 0)
//!             ‖ varint(signature count) ‖ count × 64-byte ed25519 signatures, in validator order
//! ```
//!
//! Varints are LEB128 in their shortest form. Validators are indexed in ascending order of their
//! 32 key bytes. Validator `i` signed, with plain ed25519 (RFC 8032), the message
//! `varint(len(NS) + 9) ‖ NS ‖ "_FINALIZE" ‖ proposal`, where `NS` is [`namespace`]. A
//! certificate holds if it has at least [`quorum`]`(n)` signers and *every* signature verifies.

use crate::crypto::{CryptoSuite, PublicKey, Signature};
use crate::ids::BlockHash;

/// The suffix the engine appends to the namespace for finalize votes.
pub const FINALIZE_SUFFIX: &[u8] = b"_FINALIZE";

/// The consensus namespace of a chain: every vote is signed under it, so no vote can be replayed
/// on another chain.
pub fn namespace(chain_id: &str, genesis: &BlockHash) -> Vec<u8> {
    format!("shuzi-baoxianxiang/{chain_id}/{genesis}").into_bytes()
}

/// The least number of signers out of `n` validators that finalizes: more than two thirds
/// (`n - ⌊(n - 1) / 3⌋`).
pub fn quorum(n: usize) -> usize {
    n - n.saturating_sub(1) / 3
}

/// Why a certificate does not hold.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CertificateError {
    /// The bytes are not a certificate.
    #[error("the finalization certificate is malformed: {detail}")]
    Malformed {
        /// What is wrong.
        detail: &'static str,
    },
    /// The certificate finalizes another block.
    #[error("the certificate finalizes block {found}, not {expected}")]
    WrongBlock {
        /// The header's hash.
        expected: BlockHash,
        /// The certificate's payload.
        found: BlockHash,
    },
    /// Its bitmap is for a different validator set.
    #[error("the certificate is for {found} validators; the chain has {expected}")]
    WrongValidatorSet {
        /// Validators known to the verifier.
        expected: usize,
        /// The bitmap's length.
        found: usize,
    },
    /// Too few validators signed.
    #[error("{signers} of {validators} validators signed; finality needs {quorum}")]
    NoQuorum {
        /// Signers.
        signers: usize,
        /// Validators.
        validators: usize,
        /// Needed.
        quorum: usize,
    },
    /// A signature does not verify under its validator's key.
    #[error("the signature of validator {index} ({key}) does not verify")]
    BadSignature {
        /// The validator's index.
        index: usize,
        /// Its key.
        key: PublicKey,
    },
}

impl CertificateError {
    /// A stable machine-readable code.
    pub fn code(&self) -> &'static str {
        match self {
            CertificateError::Malformed { .. } => "certificate_malformed",
            CertificateError::WrongBlock { .. } => "certificate_wrong_block",
            CertificateError::WrongValidatorSet { .. } => "certificate_wrong_validator_set",
            CertificateError::NoQuorum { .. } => "certificate_no_quorum",
            CertificateError::BadSignature { .. } => "certificate_bad_signature",
        }
    }
}

/// A parsed finalization certificate.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Finalization {
    /// Consensus epoch.
    pub epoch: u64,
    /// Consensus view.
    pub view: u64,
    /// The parent's view.
    pub parent_view: u64,
    /// The finalized block.
    pub block: BlockHash,
    /// The signers' indices (ascending) in the sorted validator set.
    pub signers: Vec<usize>,
    /// Their signatures, in the same order.
    pub signatures: Vec<Signature>,
    /// Size of the validator set the bitmap is for.
    pub validators: usize,
    proposal_len: usize,
}

struct Reader<'a> {
    bytes: &'a [u8],
    at: usize,
}

const fn malformed(detail: &'static str) -> CertificateError {
    CertificateError::Malformed { detail }
}

impl<'a> Reader<'a> {
    fn take(&mut self, n: usize) -> Result<&'a [u8], CertificateError> {
        let end = self.at.checked_add(n).filter(|e| *e <= self.bytes.len());
        let end = end.ok_or(malformed("truncated"))?;
        let out = &self.bytes[self.at..end];
        self.at = end;
        Ok(out)
    }

    /// A canonical LEB128 varint of at most `max_bits` bits.
    fn varint(&mut self, max_bits: u32) -> Result<u64, CertificateError> {
        let mut value: u64 = 0;
        let mut shift = 0u32;
        loop {
            let byte = self.take(1)?[0];
            if shift > 0 && byte == 0 {
                return Err(malformed("varint not in shortest form"));
            }
            let data = u64::from(byte & 0x7f);
            if shift >= max_bits || (shift > 0 && data >> (max_bits - shift).min(63) != 0) {
                return Err(malformed("varint overflows"));
            }
            value |= data << shift;
            if byte & 0x80 == 0 {
                return Ok(value);
            }
            shift += 7;
        }
    }
}

/// Writes a LEB128 varint.
fn put_varint(out: &mut Vec<u8>, mut v: u64) {
    while v >= 0x80 {
        out.push((v as u8 & 0x7f) | 0x80);
        v >>= 7;
    }
    out.push(v as u8);
}

impl Finalization {
    /// Parses the engine's encoding.
    pub fn parse(bytes: &[u8]) -> Result<Self, CertificateError> {
        let mut r = Reader { bytes, at: 0 };
        let epoch = r.varint(64)?;
        let view = r.varint(64)?;
        let parent_view = r.varint(64)?;
        let mut block = [0u8; 32];
        block.copy_from_slice(r.take(32)?);
        let proposal_len = r.at;
        let mut count = [0u8; 8];
        count.copy_from_slice(r.take(8)?);
        let validators = u64::from_be_bytes(count);
        if validators == 0 || validators > 4096 {
            return Err(malformed("validator count out of range"));
        }
        let validators = validators as usize;
        let bitmap = r.take(validators.div_ceil(8))?;
        if !validators.is_multiple_of(8) && bitmap[bitmap.len() - 1] >> (validators % 8) != 0 {
            return Err(malformed("bitmap bits past the validator count"));
        }
        let signers: Vec<usize> = (0..validators)
            .filter(|i| bitmap[i / 8] & (1 << (i % 8)) != 0)
            .collect();
        let count = r.varint(32)? as usize;
        if count != signers.len() {
            return Err(malformed(
                "signature count differs from the signers in the bitmap",
            ));
        }
        if count == 0 {
            return Err(malformed("no signers"));
        }
        let mut signatures = Vec::with_capacity(count);
        for _ in 0..count {
            let mut sig = [0u8; 64];
            sig.copy_from_slice(r.take(64)?);
            signatures.push(Signature::from_bytes(sig));
        }
        if r.at != bytes.len() {
            return Err(malformed("trailing bytes"));
        }
        Ok(Finalization {
            epoch,
            view,
            parent_view,
            block: BlockHash(crate::crypto::Digest(block)),
            signers,
            signatures,
            validators,
            proposal_len,
        })
    }

    /// The proposal bytes each signer signed after the namespace.
    fn proposal(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(self.proposal_len);
        put_varint(&mut out, self.epoch);
        put_varint(&mut out, self.view);
        put_varint(&mut out, self.parent_view);
        out.extend_from_slice(&self.block.0 .0);
        out
    }

    /// The engine's encoding.
    pub fn encode(&self) -> Vec<u8> {
        let mut out = self.proposal();
        out.extend_from_slice(&(self.validators as u64).to_be_bytes());
        let mut bitmap = vec![0u8; self.validators.div_ceil(8)];
        for i in &self.signers {
            bitmap[i / 8] |= 1 << (i % 8);
        }
        out.extend_from_slice(&bitmap);
        put_varint(&mut out, self.signatures.len() as u64);
        for s in &self.signatures {
            out.extend_from_slice(s.as_bytes());
        }
        out
    }

    /// Checks that this certificate finalizes `block` under `validators` (in any order; they are
    /// sorted here) on the chain with namespace `ns`. Returns the signers' keys.
    pub fn verify(
        &self,
        suite: CryptoSuite,
        ns: &[u8],
        validators: &[PublicKey],
        block: &BlockHash,
    ) -> Result<Vec<PublicKey>, CertificateError> {
        if self.block != *block {
            return Err(CertificateError::WrongBlock {
                expected: *block,
                found: self.block,
            });
        }
        let sorted = sorted_validators(validators);
        if self.validators != sorted.len() {
            return Err(CertificateError::WrongValidatorSet {
                expected: sorted.len(),
                found: self.validators,
            });
        }
        let need = quorum(sorted.len());
        if self.signers.len() < need {
            return Err(CertificateError::NoQuorum {
                signers: self.signers.len(),
                validators: sorted.len(),
                quorum: need,
            });
        }
        let message = finalize_message(ns, &self.proposal());
        let mut keys = Vec::with_capacity(self.signers.len());
        for (i, sig) in self.signers.iter().zip(&self.signatures) {
            let key = sorted[*i];
            suite
                .verify_consensus(&key, &message, sig)
                .map_err(|_| CertificateError::BadSignature { index: *i, key })?;
            keys.push(key);
        }
        Ok(keys)
    }

    /// Makes a certificate by signing as each of `signers` (for tests, tools and the in-memory
    /// ledger; the nodes' certificates come from the consensus engine).
    pub fn sign(
        ns: &[u8],
        validators: &[PublicKey],
        signers: &[&crate::crypto::KeyPair],
        view: u64,
        block: &BlockHash,
    ) -> Self {
        let sorted = sorted_validators(validators);
        let mut cert = Finalization {
            epoch: 0,
            view,
            parent_view: view.saturating_sub(1),
            block: *block,
            signers: Vec::new(),
            signatures: Vec::new(),
            validators: sorted.len(),
            proposal_len: 0,
        };
        let message = finalize_message(ns, &cert.proposal());
        let mut signed: Vec<(usize, Signature)> = signers
            .iter()
            .filter_map(|k| {
                let i = sorted.iter().position(|v| *v == k.public())?;
                Some((i, k.sign_untagged(&message)))
            })
            .collect();
        signed.sort_by_key(|(i, _)| *i);
        signed.dedup_by_key(|(i, _)| *i);
        cert.signers = signed.iter().map(|(i, _)| *i).collect();
        cert.signatures = signed.into_iter().map(|(_, s)| s).collect();
        cert.proposal_len = cert.proposal().len();
        cert
    }
}

/// The validator keys in the engine's order: ascending bytes, without duplicates.
pub fn sorted_validators(validators: &[PublicKey]) -> Vec<PublicKey> {
    let mut sorted = validators.to_vec();
    sorted.sort_by(|a, b| a.as_bytes().cmp(b.as_bytes()));
    sorted.dedup();
    sorted
}

/// The bytes a validator signs to finalize `proposal` under namespace `ns`.
pub fn finalize_message(ns: &[u8], proposal: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(ns.len() + proposal.len() + 16);
    put_varint(&mut out, (ns.len() + FINALIZE_SUFFIX.len()) as u64);
    out.extend_from_slice(ns);
    out.extend_from_slice(FINALIZE_SUFFIX);
    out.extend_from_slice(proposal);
    out
}
