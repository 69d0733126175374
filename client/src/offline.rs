//! Verifying with no network at all: the genesis file and a proof bundle are enough.
//!
//! A bank or another department keeps the bundle a node gave ([`crate::Client::bundle`], or
//! `POST /v1/verify?bundle=true`) and later checks it against the chain's genesis file alone:
//! the block is finalized by more than two thirds of the genesis validators, the attestation is
//! in that block's log, its status is what that block says, and the verdict is the one the nodes'
//! verify API gives ([`vault_protocol::bundle::verify_bundle`]). No node is trusted and none is
//! asked.
//!
//! ```no_run
//! use std::path::Path;
//! use vault_client::offline;
//!
//! # fn main() -> Result<(), offline::OfflineError> {
//! let genesis = offline::read_genesis(Path::new("genesis.json"))?;
//! let bundle = offline::read_bundle(Path::new("licence.bundle"))?;
//! let now = vault_client::requests::now();
//! // At most a day old, and for this very file.
//! let v = offline::verify_offline(
//!     &genesis,
//!     &bundle,
//!     Some(Path::new("licence.pdf")),
//!     now,
//!     Some(86_400_000),
//! )?;
//! println!("valid: {} (block {})", v.verdict.valid, v.block.height);
//! # Ok(())
//! # }
//! ```

use std::path::{Path, PathBuf};

use vault_protocol::bundle::{
    verify_bundle, Anchor, BundleError, BundleVerdict, GovernanceProof, ProofBundle,
};
use vault_protocol::crypto::Digest;
use vault_protocol::encoding::{Canonical, DecodeError};
use vault_protocol::genesis::Genesis;
use vault_protocol::ids::Timestamp;

/// Why an offline verification gave no verdict.
#[derive(Debug, thiserror::Error)]
pub enum OfflineError {
    /// A local file (the genesis, the bundle, the file presented) could not be read.
    #[error("{}: {error}", path.display())]
    File {
        /// The file.
        path: PathBuf,
        /// The error.
        error: std::io::Error,
    },
    /// The genesis file is not a valid genesis.
    #[error("genesis {}: {message}", path.display())]
    Genesis {
        /// The file.
        path: PathBuf,
        /// What is wrong with it.
        message: String,
    },
    /// The bundle proves nothing: it does not decode, or a link of its proof does not hold
    /// against the genesis (a forgery, a corruption, another chain, a block too old).
    #[error("{0}")]
    Bundle(#[from] BundleError),
}

impl OfflineError {
    /// A stable machine-readable code: the bundle's ([`BundleError::code`]), or
    /// `file_unreadable`, `invalid_genesis`.
    pub fn code(&self) -> &'static str {
        match self {
            OfflineError::File { .. } => "file_unreadable",
            OfflineError::Genesis { .. } => "invalid_genesis",
            OfflineError::Bundle(e) => e.code(),
        }
    }

    /// Whether the bundle itself is at fault, so that the answer is "not valid" — as opposed to
    /// the verifier's own inputs being unusable (an unreadable file, a bad genesis), where there
    /// is no answer.
    pub fn rejects_bundle(&self) -> bool {
        matches!(self, OfflineError::Bundle(_))
    }
}

fn read(path: &Path) -> Result<Vec<u8>, OfflineError> {
    std::fs::read(path).map_err(|error| OfflineError::File {
        path: path.to_path_buf(),
        error,
    })
}

/// Reads a genesis file (the JSON document every node starts from) and checks it is valid.
pub fn read_genesis(path: &Path) -> Result<Genesis, OfflineError> {
    let bytes = read(path)?;
    let invalid = |message: String| OfflineError::Genesis {
        path: path.to_path_buf(),
        message,
    };
    let genesis: Genesis = serde_json::from_slice(&bytes).map_err(|e| invalid(e.to_string()))?;
    genesis.validate().map_err(|e| invalid(e.to_string()))?;
    Ok(genesis)
}

/// Whether bundle bytes are the JSON form: a `{` after any leading whitespace. (The canonical
/// binary form starts with its format version byte, never with `{`.)
pub fn is_json(bytes: &[u8]) -> bool {
    bytes
        .iter()
        .find(|b| !b.is_ascii_whitespace())
        .is_some_and(|b| *b == b'{')
}

/// Decodes a bundle from its canonical binary form or its JSON form (told apart by
/// [`is_json`]). Bytes that are neither are [`BundleError::Decode`] (`bundle_malformed`).
pub fn parse_bundle(bytes: &[u8]) -> Result<ProofBundle, BundleError> {
    if is_json(bytes) {
        serde_json::from_slice(bytes).map_err(|e| {
            BundleError::Decode(DecodeError::Malformed {
                message: format!("not a bundle in JSON: {e}"),
            })
        })
    } else {
        Ok(ProofBundle::decode(bytes)?)
    }
}

/// Reads a bundle file, binary or JSON ([`parse_bundle`]).
pub fn read_bundle(path: &Path) -> Result<ProofBundle, OfflineError> {
    Ok(parse_bundle(&read(path)?)?)
}

/// Verifies a bundle against the genesis at `now`, for the file at `file` if given (its SHA-256
/// must be the attested one, or the verdict fails `file_digest`). `max_age_ms` refuses a bundle
/// whose block is older than that (`stale_bundle`). No network.
pub fn verify_offline(
    genesis: &Genesis,
    bundle: &ProofBundle,
    file: Option<&Path>,
    now: Timestamp,
    max_age_ms: Option<u64>,
) -> Result<BundleVerdict, OfflineError> {
    let digest = match file {
        Some(path) => Some(
            crate::file_digest(path)
                .map_err(|error| OfflineError::File {
                    path: path.to_path_buf(),
                    error,
                })?
                .0,
        ),
        None => None,
    };
    verify_offline_digest(genesis, bundle, digest.as_ref(), now, max_age_ms)
}

/// As [`verify_offline`], for a file known by its SHA-256.
pub fn verify_offline_digest(
    genesis: &Genesis,
    bundle: &ProofBundle,
    digest: Option<&Digest>,
    now: Timestamp,
    max_age_ms: Option<u64>,
) -> Result<BundleVerdict, OfflineError> {
    let anchor = Anchor::from_genesis(genesis);
    Ok(verify_bundle(&anchor, bundle, digest, now, max_age_ms)?)
}

/// Reads a governance proof (`vault governance-proof`), binary or JSON.
pub fn read_governance_proof(path: &Path) -> Result<GovernanceProof, OfflineError> {
    let bytes = read(path)?;
    let proof = if is_json(&bytes) {
        serde_json::from_slice(&bytes).map_err(|e| {
            BundleError::Decode(DecodeError::Malformed {
                message: format!("not a governance proof in JSON: {e}"),
            })
        })?
    } else {
        GovernanceProof::decode(&bytes).map_err(BundleError::from)?
    };
    Ok(proof)
}

/// What the verifier trusts: the genesis, and the governance state a proof establishes if one
/// is given (departments admitted, keys rotated, types authorised since the genesis). A proof
/// that does not hold is an error with its code, like a bundle's.
pub fn anchor(
    genesis: &Genesis,
    governance: Option<&GovernanceProof>,
) -> Result<Anchor, OfflineError> {
    let anchor = Anchor::from_genesis(genesis);
    Ok(match governance {
        Some(p) => anchor.with_governance(p)?,
        None => anchor,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn json_is_told_from_binary_by_its_first_non_blank_byte() {
        assert!(is_json(b"{}"));
        assert!(is_json(b" \n\t{\"a\":1}"));
        assert!(!is_json(b"\x01{"));
        assert!(!is_json(b""));
        assert!(!is_json(b"  "));
        assert!(!is_json(b"[1]"));
    }

    #[test]
    fn garbage_is_a_malformed_bundle_in_either_form() {
        for bytes in [&b"{\"attestation\": 1}"[..], b"\x01\x02\x03", b""] {
            let e = parse_bundle(bytes).unwrap_err();
            assert_eq!(e.code(), "bundle_malformed", "{bytes:?}: {e}");
        }
    }
}
