//! Proof bundles: everything a bank or another department needs to rely on an attestation with
//! no network and no trust in the node that produced it — only the genesis file.
//!
//! A [`ProofBundle`] holds
//!
//! 1. the signed issuing transaction;
//! 2. its RFC 9162 inclusion proof in the ledger's Merkle log at a finalized block;
//! 3. the attestation's [`StatusLeaf`] and its proof against that block's status root — the leaf
//!    reflects every status change up to the block, so no change can be hidden;
//! 4. the block header;
//! 5. the block's finalization certificate (more than two thirds of the validators).
//!
//! [`verify_bundle`] checks each link and then runs the same [`verify_attestation`] the nodes'
//! verify API runs, so a bundle and the API give the same verdict for the same ledger state. The
//! binary form is the canonical encoding ([`Canonical`]); the JSON form is the serde form.

use serde::{Deserialize, Serialize};

use crate::block::BlockHeader;
use crate::certificate::{self, CertificateError, Finalization};
use crate::crypto::{CryptoSuite, Digest, PublicKey};
use crate::encoding::{BoundedVec, Canonical, DecodeError};
use crate::genesis::Genesis;
use crate::governance::Governance;
use crate::ids::{AttestationId, BlockHash, ChainId, DepartmentId, Timestamp};
use crate::merkle::{InclusionProof, MerkleError};
use crate::state::{self, AttestationRecord, StatusEvent, TxLocation};
use crate::status::{self, StatusLeaf, StatusProof, StatusProofError};
use crate::tx::{SignedTransaction, TxBody};
use crate::verify::{verify_attestation, Verdict};

/// The largest certificate a bundle carries (4,096 validators).
pub const MAX_CERTIFICATE_BYTES: usize = 8 + 512 + 5 + 4096 * 64 + 64;

/// A proof bundle.
#[derive(
    Debug,
    Clone,
    PartialEq,
    Eq,
    borsh::BorshSerialize,
    borsh::BorshDeserialize,
    Serialize,
    Deserialize,
)]
pub struct ProofBundle {
    /// The signed transaction that issued the attestation.
    pub attestation: SignedTransaction,
    /// Its leaf's inclusion in the log of `header.log_size` leaves.
    pub inclusion: InclusionProof,
    /// What the status tree holds for it at `header`.
    pub status: StatusLeaf,
    /// The proof of `status` against `header.status_root`.
    pub status_proof: StatusProof,
    /// The finalized block the proofs are against.
    pub header: BlockHeader,
    /// The block's finalization certificate, in the consensus engine's encoding.
    #[serde(with = "crate::encoding::hex_bytes")]
    pub certificate: BoundedVec<u8, MAX_CERTIFICATE_BYTES>,
}

impl Canonical for ProofBundle {
    const MAX_ENCODED_LEN: usize = 96 * 1024 + MAX_CERTIFICATE_BYTES;
}

/// What a verifier trusts: the chain's identity and its validators, from the genesis file.
#[derive(Debug, Clone)]
pub struct Anchor {
    /// The chain.
    pub chain_id: ChainId,
    /// Its crypto suite.
    pub suite: CryptoSuite,
    /// The genesis hash.
    pub genesis_hash: BlockHash,
    /// The validators' node keys.
    pub validators: Vec<PublicKey>,
    /// The governance the verdict's issuer checks use.
    pub governance: Governance,
}

impl Anchor {
    /// The anchor a genesis file gives.
    pub fn from_genesis(genesis: &Genesis) -> Self {
        let governance = genesis.governance();
        Anchor {
            chain_id: genesis.chain_id.clone(),
            suite: genesis.suite,
            genesis_hash: genesis.hash(),
            validators: governance
                .validator_keys()
                .into_iter()
                .map(|(_, k)| k)
                .collect(),
            governance,
        }
    }
}

/// Why a bundle does not prove anything.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum BundleError {
    /// The bytes are not a bundle.
    #[error("the bundle does not decode: {0}")]
    Decode(#[from] DecodeError),
    /// The bundle is for another chain.
    #[error("the bundle is for chain {found}, not {expected}")]
    WrongChain {
        /// The anchor's chain.
        expected: String,
        /// The transaction's chain.
        found: String,
    },
    /// The transaction is not an attestation.
    #[error("the bundled transaction is a {kind}, not an attestation")]
    NotAnAttestation {
        /// Its kind.
        kind: &'static str,
    },
    /// The certificate does not finalize the header.
    #[error("the block is not proven final: {0}")]
    Certificate(#[from] CertificateError),
    /// The inclusion proof is for another log size than the header's.
    #[error("the inclusion proof is for a log of {found} leaves; the header's has {expected}")]
    InclusionWrongSize {
        /// The header's log size.
        expected: u64,
        /// The proof's.
        found: u64,
    },
    /// The inclusion proof is for another leaf than the status leaf says.
    #[error("the inclusion proof is for leaf {found}; the attestation's is {expected}")]
    InclusionWrongLeaf {
        /// The status leaf's log index.
        expected: u64,
        /// The proof's.
        found: u64,
    },
    /// The inclusion proof does not lead to the header's log root.
    #[error("the attestation is not proven in the log: {0}")]
    Inclusion(MerkleError),
    /// The status proof does not lead to the header's status root.
    #[error("the status is not proven: {0}")]
    Status(#[from] StatusProofError),
    /// The block is older than the verifier accepts.
    #[error("the bundle's block is from {block_time}, {age_ms} ms ago; at most {max_age_ms} ms is accepted")]
    Stale {
        /// The block's time.
        block_time: Timestamp,
        /// Its age.
        age_ms: u64,
        /// The limit.
        max_age_ms: u64,
    },
}

impl BundleError {
    /// A stable machine-readable code.
    pub fn code(&self) -> &'static str {
        match self {
            BundleError::Decode(_) => "bundle_malformed",
            BundleError::WrongChain { .. } => "wrong_chain",
            BundleError::NotAnAttestation { .. } => "not_an_attestation",
            BundleError::Certificate(e) => e.code(),
            BundleError::InclusionWrongSize { .. } => "inclusion_wrong_size",
            BundleError::InclusionWrongLeaf { .. } => "inclusion_wrong_leaf",
            BundleError::Inclusion(_) => "inclusion_invalid",
            BundleError::Status(StatusProofError::Malformed { .. }) => "status_proof_malformed",
            BundleError::Status(StatusProofError::RootMismatch { .. }) => "status_proof_invalid",
            BundleError::Stale { .. } => "stale_bundle",
        }
    }
}

/// The finalized block a verdict rests on.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ProvenBlock {
    /// Height.
    pub height: u64,
    /// Hash.
    pub hash: BlockHash,
    /// Block time: the ledger state the verdict speaks for.
    pub time: Timestamp,
    /// How old the block was when verified, in milliseconds.
    pub age_ms: u64,
    /// The validators whose signatures finalized it.
    pub certified_by: Vec<DepartmentId>,
}

/// A verdict from a bundle.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct BundleVerdict {
    /// The verdict, as the verify API gives it.
    pub verdict: Verdict,
    /// The block it rests on.
    pub block: ProvenBlock,
}

/// Checks a bundle against the anchor and returns the verdict on its attestation at `now`.
///
/// `file_digest` is the SHA-256 of a presented file, if any; `max_age_ms` refuses a bundle whose
/// block is older than that (a node serving an old state cannot pass as current).
pub fn verify_bundle(
    anchor: &Anchor,
    bundle: &ProofBundle,
    file_digest: Option<&Digest>,
    now: Timestamp,
    max_age_ms: Option<u64>,
) -> Result<BundleVerdict, BundleError> {
    let suite = anchor.suite;
    let tx = &bundle.attestation;
    if tx.tx.chain_id != anchor.chain_id {
        return Err(BundleError::WrongChain {
            expected: anchor.chain_id.to_string(),
            found: tx.tx.chain_id.to_string(),
        });
    }
    let TxBody::IssueAttestation(attestation) = &tx.tx.body else {
        return Err(BundleError::NotAnAttestation {
            kind: tx.tx.body.kind(),
        });
    };

    let header = &bundle.header;

    // The attestation is in the header's log.
    if bundle.inclusion.tree_size != header.log_size {
        return Err(BundleError::InclusionWrongSize {
            expected: header.log_size,
            found: bundle.inclusion.tree_size,
        });
    }
    if bundle.inclusion.leaf_index != bundle.status.log_index {
        return Err(BundleError::InclusionWrongLeaf {
            expected: bundle.status.log_index,
            found: bundle.inclusion.leaf_index,
        });
    }
    let hasher = state::log_hasher(suite);
    let leaf = crate::merkle::LogHasher::hash_leaf(&hasher, &tx.leaf_data());
    crate::merkle::verify_inclusion(&hasher, &leaf, &bundle.inclusion, &header.log_root.0)
        .map_err(BundleError::Inclusion)?;

    // Its status at the header is what the leaf says.
    let id = AttestationId(tx.id(suite).0);
    bundle.status_proof.verify(
        &header.status_root,
        &status::attestation_key(&id),
        &bundle.status.encode(),
    )?;

    // The header is final (checked last: the signatures are the expensive part).
    let (block_hash, signers) = check_final(anchor, header, &bundle.certificate)?;

    let age_ms = now.0.saturating_sub(header.time.0);
    if let Some(max) = max_age_ms {
        if age_ms > max {
            return Err(BundleError::Stale {
                block_time: header.time,
                age_ms,
                max_age_ms: max,
            });
        }
    }

    let record = record_from_leaf(id, attestation.clone(), &bundle.status);
    let verdict = verify_attestation(&anchor.governance, tx, &record, now, file_digest);
    let certified_by = anchor
        .governance
        .validator_keys()
        .into_iter()
        .filter(|(_, k)| signers.contains(k))
        .map(|(d, _)| d)
        .collect();
    Ok(BundleVerdict {
        verdict,
        block: ProvenBlock {
            height: header.height,
            hash: block_hash,
            time: header.time,
            age_ms,
            certified_by,
        },
    })
}

/// Checks that `certificate` finalizes `header` under the anchor's validators; returns the block
/// hash and the signers' keys.
fn check_final(
    anchor: &Anchor,
    header: &BlockHeader,
    certificate: &[u8],
) -> Result<(BlockHash, Vec<PublicKey>), BundleError> {
    let block_hash = header.hash(anchor.suite);
    let ns = certificate::namespace(anchor.chain_id.as_str(), &anchor.genesis_hash);
    let signers = Finalization::parse(certificate)?.verify(
        anchor.suite,
        &ns,
        &anchor.validators,
        &block_hash,
    )?;
    Ok((block_hash, signers))
}

/// A proof of the governance state (members, their key histories, document types and who may
/// issue them) at a finalized block: the state, its status-tree proof, the header and its
/// certificate. With it, an offline verifier knows the departments admitted and the keys rotated
/// since the genesis.
#[derive(
    Debug,
    Clone,
    PartialEq,
    Eq,
    borsh::BorshSerialize,
    borsh::BorshDeserialize,
    Serialize,
    Deserialize,
)]
pub struct GovernanceProof {
    /// The governance state.
    pub governance: Governance,
    /// Its proof against `header.status_root` (key: [`status::governance_key`]).
    pub proof: StatusProof,
    /// The finalized block.
    pub header: BlockHeader,
    /// The block's finalization certificate.
    #[serde(with = "crate::encoding::hex_bytes")]
    pub certificate: BoundedVec<u8, MAX_CERTIFICATE_BYTES>,
}

impl Canonical for GovernanceProof {
    const MAX_ENCODED_LEN: usize = 4 * 1024 * 1024 + 64 * 1024 + MAX_CERTIFICATE_BYTES;
}

impl Anchor {
    /// This anchor with the governance state a proof establishes (for the verdicts' issuer
    /// checks). The validators stay the genesis ones: the consensus engine runs one validator set,
    /// the genesis members' node keys.
    pub fn with_governance(mut self, proof: &GovernanceProof) -> Result<Self, BundleError> {
        if proof.governance.chain_id != self.chain_id {
            return Err(BundleError::WrongChain {
                expected: self.chain_id.to_string(),
                found: proof.governance.chain_id.to_string(),
            });
        }
        proof.proof.verify(
            &proof.header.status_root,
            &status::governance_key(self.suite),
            &proof.governance.encode(),
        )?;
        check_final(&self, &proof.header, &proof.certificate)?;
        self.governance = proof.governance.clone();
        Ok(self)
    }
}

/// Assembles the governance proof from a state at `header` (the head block) and its certificate.
pub fn assemble_governance<V: crate::state::StateView + ?Sized>(
    view: &V,
    header: BlockHeader,
    certificate: Vec<u8>,
) -> Result<GovernanceProof, AssembleError> {
    let head = state::head(view)?;
    if head.height != header.height {
        return Err(AssembleError::NotTheHead {
            header: header.height,
            state: head.height,
        });
    }
    let governance = state::governance(view)?;
    let key = status::governance_key(governance.suite);
    let proof = status::prove_key(view, governance.suite, head.height, &key)?.ok_or_else(|| {
        crate::state::StoreError {
            message: "the status tree has no governance leaf".into(),
        }
    })?;
    let len = certificate.len();
    Ok(GovernanceProof {
        governance,
        proof,
        header,
        certificate: BoundedVec::new(certificate)
            .map_err(|_| AssembleError::CertificateTooLarge { len })?,
    })
}

/// The attestation record a status leaf stands for (the latest status change only; its note
/// stays on the ledger).
fn record_from_leaf(
    id: AttestationId,
    attestation: crate::tx::Attestation,
    leaf: &StatusLeaf,
) -> AttestationRecord {
    AttestationRecord {
        id,
        attestation,
        issued_at: leaf.issued_at,
        location: TxLocation {
            height: leaf.issued_height,
            index: 0,
            log_index: leaf.log_index,
            time: leaf.issued_at,
        },
        status: leaf.status,
        history: leaf
            .last_change
            .iter()
            .map(|c| StatusEvent {
                action: c.action,
                status: leaf.status,
                reason_code: c.reason_code,
                note: Default::default(),
                at: c.at,
                height: c.height,
                tx: c.tx,
            })
            .collect(),
        superseded_by: leaf.superseded.as_ref().map(|s| s.by),
        superseded_at: leaf.superseded.as_ref().map(|s| s.at),
    }
}

/// Why a bundle could not be made.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AssembleError {
    /// No such attestation at the head.
    #[error("no attestation {id} on the ledger")]
    UnknownAttestation {
        /// The id asked for.
        id: AttestationId,
    },
    /// The header given is not the state's head.
    #[error("the header is block {header}; the state is at {state}")]
    NotTheHead {
        /// The header's height.
        header: u64,
        /// The state's head height.
        state: u64,
    },
    /// The certificate is larger than a bundle carries.
    #[error("the certificate is {len} bytes; a bundle carries at most {MAX_CERTIFICATE_BYTES}")]
    CertificateTooLarge {
        /// Its size.
        len: usize,
    },
    /// Reading the state failed.
    #[error(transparent)]
    Store(#[from] crate::state::StoreError),
}

/// Assembles the bundle of attestation `id` from a state at `header` (the head block), the
/// issuing transaction, its inclusion proof at `header.log_size` and the header's certificate.
pub fn assemble<V: crate::state::StateView + ?Sized>(
    view: &V,
    id: &AttestationId,
    attestation: SignedTransaction,
    inclusion: InclusionProof,
    header: BlockHeader,
    certificate: Vec<u8>,
) -> Result<ProofBundle, AssembleError> {
    let head = state::head(view)?;
    if head.height != header.height {
        return Err(AssembleError::NotTheHead {
            header: header.height,
            state: head.height,
        });
    }
    let suite = state::governance(view)?.suite;
    let key = status::attestation_key(id);
    let (value, status_proof) = status::prove(view, suite, head.height, &key)?
        .ok_or(AssembleError::UnknownAttestation { id: *id })?;
    let status = StatusLeaf::decode(&value).map_err(crate::state::StoreError::from)?;
    let len = certificate.len();
    Ok(ProofBundle {
        attestation,
        inclusion,
        status,
        status_proof,
        header,
        certificate: BoundedVec::new(certificate)
            .map_err(|_| AssembleError::CertificateTooLarge { len })?,
    })
}
