//! An in-memory ledger: the state machine, the blocks and the Merkle log together, with no disk
//! and no network. Tests, property tests, examples and the offline tools use it; the node keeps
//! the same three things in RocksDB.
//!
//! [`TestNetwork`] makes a genesis with deterministic keys derived from department names. It is
//! for tests, examples and benchmarks only: anyone can derive those keys.

use std::cell::Cell;

use crate::block::Block;
use crate::crypto::{CryptoSuite, Digest, KeyPair, PublicKey};
use crate::encoding::BoundedString;
use crate::genesis::{Genesis, GenesisDepartment, GenesisDocumentType, GenesisError};
use crate::governance::{Governance, Params};
use crate::ids::{AttestationId, ChainId, DepartmentId, DocTypeCode, Timestamp, TxId};
use crate::merkle::{InclusionProof, MemoryLog, MerkleError};
use crate::state::{
    self, apply_block, build_block, genesis_state, BlockError, BlockOutcome, BuiltBlock, ChainHead,
    MemoryState, StoreError,
};
use crate::tx::{DocumentType, EndorsementError, SignedTransaction, Transaction, TxBody};
use crate::uscc::Uscc;
use crate::verify::{verify_attestation, Verdict};

/// Why the in-memory ledger refused something.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum LedgerError {
    /// A transaction's signatures do not verify.
    #[error("transaction {index}: {error}")]
    Endorsement {
        /// Its index among those given.
        index: usize,
        /// Why.
        error: EndorsementError,
    },
    /// The block was refused.
    #[error(transparent)]
    Block(#[from] BlockError),
    /// The state could not be read.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// The Merkle log refused.
    #[error(transparent)]
    Merkle(#[from] MerkleError),
}

/// The ledger in memory.
#[derive(Debug, Clone)]
pub struct MemoryLedger {
    genesis: Genesis,
    state: MemoryState,
    blocks: Vec<Block>,
    log: MemoryLog,
}

impl MemoryLedger {
    /// A ledger at height 0.
    pub fn new(genesis: Genesis) -> Result<Self, GenesisError> {
        genesis.validate()?;
        let mut state = MemoryState::default();
        state.apply(&genesis_state(&genesis));
        Ok(Self {
            genesis,
            state,
            blocks: Vec::new(),
            log: MemoryLog::new(),
        })
    }

    /// The genesis.
    pub fn genesis(&self) -> &Genesis {
        &self.genesis
    }

    /// The crypto suite.
    pub fn suite(&self) -> CryptoSuite {
        self.genesis.suite
    }

    /// The state.
    pub fn state(&self) -> &MemoryState {
        &self.state
    }

    /// The head.
    pub fn head(&self) -> ChainHead {
        // The head is written at genesis and by every block; a missing one is a bug.
        state::head(&self.state).unwrap_or_else(|e| panic!("in-memory ledger lost its head: {e}"))
    }

    /// The governance state.
    pub fn governance(&self) -> Result<Governance, StoreError> {
        state::governance(&self.state)
    }

    /// Builds the next block from `txs` (verifying their signatures), leaving out those that
    /// break a rule. Changes nothing: commit the block to apply it.
    pub fn propose(
        &self,
        proposer: &DepartmentId,
        time: Timestamp,
        txs: Vec<SignedTransaction>,
    ) -> Result<BuiltBlock, LedgerError> {
        let verified = txs
            .into_iter()
            .enumerate()
            .map(|(index, t)| {
                t.verify(self.suite())
                    .map_err(|error| LedgerError::Endorsement { index, error })
            })
            .collect::<Result<Vec<_>, _>>()?;
        Ok(build_block(&self.state, proposer, time, verified)?)
    }

    /// Applies a block — checking everything, as every node does — or changes nothing.
    pub fn commit(&mut self, block: &Block) -> Result<BlockOutcome, LedgerError> {
        let outcome = apply_block(&self.state, block)?;
        for leaf in &outcome.leaf_hashes {
            self.log.append_leaf_hash(leaf.0)?;
        }
        self.state.apply(&outcome.delta);
        self.blocks.push(block.clone());
        Ok(outcome)
    }

    /// Proposes and commits in one step; returns the block's outcome and what was left out.
    pub fn propose_and_commit(
        &mut self,
        proposer: &DepartmentId,
        time: Timestamp,
        txs: Vec<SignedTransaction>,
    ) -> Result<BuiltBlock, LedgerError> {
        let built = self.propose(proposer, time, txs)?;
        self.commit(&built.block)?;
        Ok(built)
    }

    /// The block at `height` (1-based).
    pub fn block(&self, height: u64) -> Option<&Block> {
        height
            .checked_sub(1)
            .and_then(|h| self.blocks.get(h as usize))
    }

    /// A committed transaction, by id.
    pub fn transaction(&self, id: &TxId) -> Result<Option<&SignedTransaction>, StoreError> {
        Ok(state::tx_location(&self.state, id)?.and_then(|loc| {
            self.block(loc.height)
                .and_then(|b| b.transactions.get(loc.index as usize))
        }))
    }

    /// The verdict on an attestation at `at`, optionally against a presented file's digest.
    pub fn verify(
        &self,
        id: &AttestationId,
        at: Timestamp,
        presented: Option<&Digest>,
    ) -> Result<Option<Verdict>, StoreError> {
        let Some(record) = state::attestation(&self.state, id)? else {
            return Ok(None);
        };
        let Some(tx) = self.transaction(&TxId(id.0))? else {
            return Err(StoreError {
                message: format!("issuing transaction of {id} missing"),
            });
        };
        Ok(Some(verify_attestation(
            &self.governance()?,
            tx,
            &record,
            at,
            presented,
        )))
    }

    /// The Merkle log.
    pub fn log(&self) -> &MemoryLog {
        &self.log
    }

    /// The proof bundle of attestation `id` at the head, with `certificate` for the head block.
    pub fn bundle(
        &self,
        id: &AttestationId,
        certificate: Vec<u8>,
    ) -> Result<crate::bundle::ProofBundle, crate::bundle::AssembleError> {
        use crate::bundle::AssembleError;
        let unknown = || AssembleError::UnknownAttestation { id: *id };
        let record = state::attestation(&self.state, id)?.ok_or_else(unknown)?;
        let tx = self
            .block(record.location.height)
            .and_then(|b| b.transactions.get(record.location.index as usize))
            .ok_or_else(unknown)?
            .clone();
        let head = self.head();
        let header =
            self.block(head.height)
                .map(|b| b.header.clone())
                .ok_or(AssembleError::NotTheHead {
                    header: 0,
                    state: head.height,
                })?;
        let inclusion = self
            .log
            .inclusion_proof(record.location.log_index, self.log.size())
            .map_err(|e| state::StoreError {
                message: e.to_string(),
            })?;
        crate::bundle::assemble(&self.state, id, tx, inclusion, header, certificate)
    }

    /// The inclusion proof of a committed transaction in the log at the head.
    pub fn inclusion_proof(&self, id: &TxId) -> Result<Option<InclusionProof>, LedgerError> {
        let Some(loc) = state::tx_location(&self.state, id)? else {
            return Ok(None);
        };
        Ok(Some(
            self.log.inclusion_proof(loc.log_index, self.log.size())?,
        ))
    }
}

/// A department of a [`TestNetwork`], with its keys.
#[derive(Debug, Clone)]
pub struct TestDepartment {
    /// Its id.
    pub id: DepartmentId,
    /// Its transaction-signing key.
    pub signing: KeyPair,
    /// Its node key.
    pub node: KeyPair,
}

/// A genesis with deterministic, publicly derivable keys — for tests, examples and benchmarks.
#[derive(Debug, Clone)]
pub struct TestNetwork {
    /// The genesis.
    pub genesis: Genesis,
    /// The departments, in the order given.
    pub departments: Vec<TestDepartment>,
    nonce: Cell<u64>,
}

/// The standard catalogue of document types, each with the department id that issues it in a
/// typical city (营业执照 by 市场监管局, …).
pub fn standard_document_types() -> Vec<(DocumentType, &'static str)> {
    let t = |code: &str, zh: &str, en: &str, days: Option<u32>, expiry: bool| DocumentType {
        code: DocTypeCode::new(code).unwrap_or_else(|e| panic!("catalogue code {code}: {e}")),
        name_zh: BoundedString::new(zh).unwrap_or_default(),
        name_en: BoundedString::new(en).unwrap_or_default(),
        max_validity_days: days,
        requires_expiry: expiry,
    };
    vec![
        (
            t(
                "BUSINESS_LICENCE",
                "营业执照",
                "Business licence",
                None,
                false,
            ),
            "samr",
        ),
        (
            t(
                "TAX_CREDIT_RATING",
                "纳税信用等级",
                "Tax credit rating",
                Some(400),
                true,
            ),
            "tax",
        ),
        (
            t(
                "SOCIAL_INSURANCE_CERT",
                "社保缴纳证明",
                "Social-insurance payment certificate",
                Some(366),
                true,
            ),
            "hrss",
        ),
        (
            t(
                "HIGH_TECH_ENTERPRISE",
                "高新技术企业证书",
                "High-tech enterprise certificate",
                Some(1100),
                true,
            ),
            "sti",
        ),
        (
            t(
                "CONSTRUCTION_QUALIFICATION",
                "建筑业企业资质证书",
                "Construction enterprise qualification",
                Some(1830),
                true,
            ),
            "housing",
        ),
        (
            t(
                "ADMIN_PERMIT",
                "行政许可证",
                "Administrative permit",
                Some(1830),
                true,
            ),
            "approval",
        ),
    ]
}

/// A readable name for well-known department ids.
pub fn department_name(id: &str) -> &'static str {
    match id {
        "samr" => "市场监督管理局 (Administration for Market Regulation)",
        "tax" => "税务局 (Tax Bureau)",
        "hrss" => "人力资源和社会保障局 (Human Resources and Social Security Bureau)",
        "sti" => "科学技术局 (Science and Technology Bureau)",
        "housing" => "住房和城乡建设局 (Housing and Urban-Rural Development Bureau)",
        "approval" => "行政审批服务局 (Administrative Approval Service Bureau)",
        "bigdata" => "大数据局 (Big Data Bureau)",
        "medins" => "医疗保障局 (Healthcare Security Bureau)",
        _ => "Department",
    }
}

/// A valid USCC made from a serial number (a 市场监管 company code in 济南), for tests and
/// benchmarks that need many distinct enterprises.
pub fn test_uscc(serial: u32) -> Uscc {
    use crate::uscc::{compute_check_character, compute_org_check_character};
    let body = format!("{:08}", 10_000_000 + serial % 90_000_000);
    let org = compute_org_check_character(&body)
        .map(|c| format!("{body}{c}"))
        .unwrap_or_else(|e| panic!("organisation code {body}: {e}"));
    let first17 = format!("91370100{org}");
    compute_check_character(&first17)
        .map_err(|e| e.to_string())
        .and_then(|c| Uscc::parse(&format!("{first17}{c}")).map_err(|e| e.to_string()))
        .unwrap_or_else(|e| panic!("test USCC {serial}: {e}"))
}

/// The deterministic test key of a department's role (`"signing"` or `"node"`).
pub fn test_key(department: &str, role: &str) -> KeyPair {
    let suite = CryptoSuite::Ed25519Sha256;
    let seed = suite.file_digest(format!("vault-test-key/{department}/{role}").as_bytes());
    KeyPair::from_seed(suite, seed.0)
}

impl TestNetwork {
    /// A network of these departments (ids like `samr`, `tax`), with the standard document types;
    /// a type whose usual issuer is absent is issued by the first department.
    pub fn new(ids: &[&str]) -> Self {
        Self::with_params(ids, Params::default())
    }

    /// As [`TestNetwork::new`], with parameters.
    pub fn with_params(ids: &[&str], params: Params) -> Self {
        let departments: Vec<TestDepartment> = ids
            .iter()
            .map(|id| TestDepartment {
                id: DepartmentId::new(id).unwrap_or_else(|e| panic!("department id {id}: {e}")),
                signing: test_key(id, "signing"),
                node: test_key(id, "node"),
            })
            .collect();
        let document_types = standard_document_types()
            .into_iter()
            .map(|(definition, usual)| {
                let issuer = departments
                    .iter()
                    .find(|d| d.id.as_str() == usual)
                    .or(departments.first())
                    .map(|d| d.id.clone());
                GenesisDocumentType {
                    definition,
                    issuers: issuer.into_iter().collect(),
                }
            })
            .collect();
        let genesis = Genesis {
            chain_id: ChainId::new("test-vault").unwrap_or_else(|e| panic!("{e}")),
            suite: CryptoSuite::Ed25519Sha256,
            genesis_time: Timestamp(1_767_225_600_000), // 2026-01-01T00:00:00Z
            params,
            departments: departments
                .iter()
                .map(|d| GenesisDepartment {
                    id: d.id.clone(),
                    name: BoundedString::new(department_name(d.id.as_str())).unwrap_or_default(),
                    signing_key: d.signing.public(),
                    node_key: d.node.public(),
                })
                .collect(),
            document_types,
        };
        Self {
            genesis,
            departments,
            nonce: Cell::new(0),
        }
    }

    /// A finalization certificate for `header`, signed by the node keys of `signers` (department
    /// ids) — what the consensus engine would produce.
    pub fn certify(&self, header: &crate::block::BlockHeader, signers: &[&str]) -> Vec<u8> {
        let keys: Vec<&KeyPair> = signers.iter().map(|s| &self.department(s).node).collect();
        let validators: Vec<PublicKey> = self.departments.iter().map(|d| d.node.public()).collect();
        let ns =
            crate::certificate::namespace(self.genesis.chain_id.as_str(), &self.genesis.hash());
        crate::certificate::Finalization::sign(
            &ns,
            &validators,
            &keys,
            header.height,
            &header.hash(self.genesis.suite),
        )
        .encode()
    }

    /// A department by id. Panics if absent (test helper).
    pub fn department(&self, id: &str) -> &TestDepartment {
        self.departments
            .iter()
            .find(|d| d.id.as_str() == id)
            .unwrap_or_else(|| panic!("no department {id} in the test network"))
    }

    /// A transaction on this chain made at `created_at`, with a fresh nonce.
    pub fn tx(&self, created_at: Timestamp, body: TxBody) -> Transaction {
        let nonce = self.nonce.get();
        self.nonce.set(nonce + 1);
        Transaction {
            chain_id: self.genesis.chain_id.clone(),
            created_at,
            nonce,
            body,
        }
    }
}
