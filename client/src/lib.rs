//! # 数字保险箱 — the Rust SDK
//!
//! [`Client`] talks to a department node's HTTP API: submit signed transactions (one at a time or
//! in batches, optionally waiting until they are committed); store files in the node's vault and
//! fetch documents under an enterprise's grant (with signed requests, [`requests`]); verify files
//! against the ledger; read the chain's status, blocks, transactions, attestations with their
//! verdicts, grants and access receipts. Transactions and requests are built and signed locally
//! with `vault_protocol` ([`compose`] helps with claims, scopes and dates), so a client never
//! sends a secret key anywhere. [`bulk`] issues attestations from a CSV manifest, resumably.
//! [`offline`] verifies a proof bundle against the genesis file with no network at all;
//! [`monitor`] decides, from the cosigned checkpoints nodes serve, when to raise a split-view or
//! stall alarm.
//!
//! ```no_run
//! use vault_client::{file_digest, upload_request, Client};
//! use vault_protocol::access::Requester;
//! use vault_protocol::ids::DepartmentId;
//!
//! # fn main() -> Result<(), Box<dyn std::error::Error>> {
//! let node = Client::new("http://127.0.0.1:8700");
//! println!("height {}", node.status()?["height"]);
//!
//! // A department stores a file in its node's vault.
//! let key = vault_client::keyfile::read("samr/keys/signing.json".as_ref())?;
//! let path = std::path::Path::new("licence.pdf");
//! let (digest, size) = file_digest(path)?;
//! let request = upload_request(
//!     &node.chain_id()?,
//!     Requester::Department(DepartmentId::new("samr")?),
//!     digest,
//!     size,
//!     &key,
//! );
//! let stored = node.upload(&request, path, Some("application/pdf"), |sent| {
//!     eprintln!("{sent} bytes sent")
//! })?;
//! println!("stored {} ({} bytes)", stored.digest, stored.size);
//!
//! // Anyone verifies the file against the ledger.
//! let result = node.verify_file(path, None)?;
//! println!("valid: {}", result.valid);
//! # Ok(())
//! # }
//! ```

#![forbid(unsafe_code)]
#![warn(missing_docs)]
#![cfg_attr(not(test), deny(clippy::unwrap_used))]

pub mod bulk;
mod client;
pub mod compose;
mod error;
mod files;
pub mod keyfile;
pub mod monitor;
pub mod offline;
pub mod requests;
pub mod types;

pub use client::Client;
pub use error::ClientError;
pub use files::{file_digest, guess_media_type};
pub use requests::{read_request, request_header, upload_request};
pub use types::{
    AttestationView, BatchAnswer, BatchResult, BatchStatus, DocumentMeta, FetchedDocument,
    GrantEntry, TxState, UploadReceipt, VerifyResult,
};
