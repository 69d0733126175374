//! # 数字保险箱 — protocol core
//!
//! Everything the department nodes, the client and every verifier share, testable without a disk
//! or a network:
//!
//! - [`uscc`], [`ids`]: identifiers — the 统一社会信用代码 (GB 32100-2015), department ids,
//!   document-type codes, digests as ids, time.
//! - [`encoding`]: the canonical, versioned, bounded byte encoding of everything signed, hashed,
//!   stored or sent.
//! - [`crypto`]: the crypto suite fixed in the genesis (ed25519 strict + SHA-256 today), with a
//!   domain-separation tag per kind of object.
//! - [`tx`]: transactions, each signed by its author.
//! - [`merkle`]: the ledger as an RFC 9162 Merkle log, with inclusion and consistency proofs.
//! - [`checkpoint`]: C2SP checkpoints of that log in the signed-note format, cosigned by the
//!   member departments, and consistency between them (split-view detection).
//! - [`certificate`]: the consensus engine's finalization certificates, checked with only the
//!   validators' keys.
//! - [`bundle`]: proof bundles and their offline verification from the genesis file alone.
//! - [`block`], [`genesis`], [`governance`]: the hash-chained blocks, the genesis document and
//!   the governance state.
//! - [`state`]: the pure ledger state machine with every permission rule, and its queries.
//! - [`status`]: the status tree (a Jellyfish Merkle tree) whose root each header carries, and
//!   proofs of an attestation's current status against it.
//! - [`verify`]: verdicts on attestations, naming every check.
//! - [`access`]: signed vault requests (uploads, reads under grants) and their authorisation.
//! - [`ledger`]: an in-memory ledger tying them together, for tests, demos and tools.
//!
//! ```
//! use vault_protocol::{crypto::*, ids::*, ledger::*, tx::*};
//!
//! let net = TestNetwork::new(&["samr", "tax", "hrss", "housing"]);
//! let mut ledger = MemoryLedger::new(net.genesis.clone()).unwrap();
//! let samr = net.department("samr");
//! let enterprise = KeyPair::from_seed(CryptoSuite::Ed25519Sha256, [42; 32]);
//! let uscc = "91350100M000100Y43".parse().unwrap();
//! let t = net.genesis.genesis_time.plus(1_000);
//! let enrol = net.tx(t, TxBody::EnrolEnterprise(Enrolment {
//!     department: samr.id.clone(),
//!     enterprise: uscc,
//!     key: enterprise.public(),
//! })).sign_one(&samr.signing);
//! let block = ledger.propose(&samr.id, t, vec![enrol]).unwrap();
//! assert!(block.rejected.is_empty());
//! ledger.commit(&block.block).unwrap();
//! assert_eq!(ledger.head().height, 1);
//! ```

#![forbid(unsafe_code)]
#![warn(missing_docs)]
#![cfg_attr(not(test), deny(clippy::unwrap_used))]

pub mod access;
pub mod block;
pub mod bundle;
pub mod certificate;
pub mod checkpoint;
pub mod crypto;
pub mod encoding;
pub mod genesis;
pub mod governance;
pub mod ids;
pub mod ledger;
pub mod merkle;
pub mod state;
pub mod status;
pub mod tx;
pub mod uscc;
pub mod verify;
