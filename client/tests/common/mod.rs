//! Real ledgers for the client's tests: an in-memory ledger on the deterministic test network,
//! its blocks, attestations, proof bundles and cosigned checkpoints.

// Each test file uses a different subset of these helpers.
#![allow(dead_code, clippy::unwrap_used)]

use vault_protocol::bundle::ProofBundle;
use vault_protocol::checkpoint::{
    cosigned_checkpoint_verdict, VaultCheckpoint, VerifiedCheckpoint,
};
use vault_protocol::crypto::{CryptoSuite, KeyPair};
use vault_protocol::ids::{AttestationId, DocTypeCode, Timestamp};
use vault_protocol::ledger::{test_uscc, MemoryLedger, TestNetwork};
use vault_protocol::merkle::ConsistencyProof;
use vault_protocol::tx::{Attestation, Enrolment, SignedTransaction, TxBody};

/// The test network's departments.
pub const DEPARTMENTS: [&str; 4] = ["samr", "tax", "hrss", "housing"];
/// The crypto suite.
pub const SUITE: CryptoSuite = CryptoSuite::Ed25519Sha256;

/// A ledger on the four-department test network. Clone it to fork it.
#[derive(Clone)]
pub struct Chain {
    /// The network (genesis, keys).
    pub net: TestNetwork,
    /// The ledger.
    pub ledger: MemoryLedger,
}

impl Chain {
    /// A ledger at the genesis.
    pub fn new() -> Self {
        let net = TestNetwork::new(&DEPARTMENTS);
        let ledger = MemoryLedger::new(net.genesis.clone()).unwrap();
        Chain { net, ledger }
    }

    /// The time of the next block: one second after the head.
    pub fn next_time(&self) -> Timestamp {
        self.ledger.head().time.plus(1000)
    }

    /// Commits a block of `txs` (all must be accepted).
    pub fn block(&mut self, txs: Vec<SignedTransaction>) {
        let samr = self.net.department("samr").id.clone();
        let built = self
            .ledger
            .propose_and_commit(&samr, self.next_time(), txs)
            .unwrap();
        assert!(built.rejected.is_empty(), "{:?}", built.rejected);
    }

    /// The enrolment of enterprise number `n` by samr.
    pub fn enrolment(&self, n: u32) -> SignedTransaction {
        let samr = self.net.department("samr");
        self.net
            .tx(
                self.next_time(),
                TxBody::EnrolEnterprise(Enrolment {
                    department: samr.id.clone(),
                    enterprise: test_uscc(n),
                    key: enterprise_key(n).public(),
                }),
            )
            .sign_one(&samr.signing)
    }

    /// A block enrolling enterprises `first..first + count` (`count` leaves in the log).
    pub fn enrol(&mut self, first: u32, count: u32) {
        let txs = (first..first + count).map(|n| self.enrolment(n)).collect();
        self.block(txs);
    }

    /// Enrols enterprise `n` and issues it a business licence of `file`, in one block.
    pub fn licence(&mut self, n: u32, file: &[u8]) -> AttestationId {
        let samr = self.net.department("samr");
        let t = self.next_time();
        let issue = self
            .net
            .tx(
                t,
                TxBody::IssueAttestation(Attestation {
                    issuer: samr.id.clone(),
                    subject: test_uscc(n),
                    doc_type: DocTypeCode::new("BUSINESS_LICENCE").unwrap(),
                    file_digest: SUITE.file_digest(file),
                    claims: Default::default(),
                    valid_from: t,
                    valid_until: None,
                    supersedes: None,
                }),
            )
            .sign_one(&samr.signing);
        let id = AttestationId(issue.id(SUITE).0);
        let enrol = self.enrolment(n);
        self.block(vec![enrol, issue]);
        id
    }

    /// The proof bundle of `id` at the head, certified by the node keys of `signers`.
    pub fn bundle(&self, id: &AttestationId, signers: &[&str]) -> ProofBundle {
        let head = self.ledger.head().height;
        let header = self.ledger.block(head).unwrap().header.clone();
        self.ledger
            .bundle(id, self.net.certify(&header, signers))
            .unwrap()
    }

    /// The head's checkpoint.
    pub fn checkpoint(&self) -> VaultCheckpoint {
        let head = self.ledger.head().height;
        let header = self.ledger.block(head).unwrap().header.clone();
        VaultCheckpoint::from_header(&self.net.genesis.chain_id, &header, SUITE)
    }

    /// The head's checkpoint as a signed note, cosigned by `by`.
    pub fn note(&self, by: &[&str]) -> String {
        let cp = self.checkpoint();
        let sigs = by
            .iter()
            .map(|d| {
                let d = self.net.department(d);
                cp.sign(&d.id, &d.signing)
            })
            .collect();
        cp.note(sigs).to_text().unwrap()
    }

    /// The head's checkpoint, cosigned by samr, tax and hrss and verified.
    pub fn verified(&self) -> VerifiedCheckpoint {
        cosigned_checkpoint_verdict(
            self.note(&["samr", "tax", "hrss"]),
            &self.net.genesis.governance(),
            None,
        )
        .unwrap()
    }

    /// The consistency proof between two sizes of this ledger's log, as a node would give it.
    pub fn proof(&self, from: u64, to: u64) -> Result<ConsistencyProof, String> {
        self.ledger
            .log()
            .consistency_proof(from, to)
            .map_err(|e| e.to_string())
    }
}

impl Default for Chain {
    fn default() -> Self {
        Self::new()
    }
}

/// Enterprise `n`'s key.
pub fn enterprise_key(n: u32) -> KeyPair {
    let mut seed = [7u8; 32];
    seed[..4].copy_from_slice(&n.to_le_bytes());
    KeyPair::from_seed(SUITE, seed)
}
