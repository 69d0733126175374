//! The SDK's one error type.
//!
//! Each message carries its cause itself (no `source()` chain), so printing an error once says
//! everything, once.

use std::path::PathBuf;

use vault_protocol::crypto::Digest;

/// Why a call to a node failed.
#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    /// The node could not be reached, or the connection broke before it answered.
    #[error("cannot reach {url}: {}", root_cause(error))]
    Unreachable {
        /// The URL.
        url: String,
        /// The transport error.
        error: reqwest::Error,
    },
    /// The node answered with an error. `code` is the node's stable error code (for an answer
    /// without one, `http_<status>`).
    #[error("{code}: {message} (HTTP {status})")]
    Api {
        /// HTTP status.
        status: u16,
        /// The stable error code.
        code: String,
        /// The node's message.
        message: String,
    },
    /// The answer was not what the API promises.
    #[error("unexpected answer from the node: {0}")]
    Unexpected(String),
    /// A local file could not be read or written.
    #[error("{}: {error}", path.display())]
    File {
        /// The file.
        path: PathBuf,
        /// The error.
        error: std::io::Error,
    },
    /// Writing a fetched document to its destination failed.
    #[error("writing the document: {0}")]
    Output(std::io::Error),
    /// The transfer broke while the node was sending a document.
    #[error("the transfer from {url} broke: {}", root_cause(error))]
    Transfer {
        /// The URL.
        url: String,
        /// The error.
        error: std::io::Error,
    },
    /// A fetched document's SHA-256 is not the one it must be.
    #[error("digest mismatch: {expected_from} is {expected}, the file received is {found}")]
    DigestMismatch {
        /// The digest it must have.
        expected: Digest,
        /// The digest of what was received.
        found: Digest,
        /// Where `expected` comes from (the ledger's attestation, or the node's `Vault-Digest`).
        expected_from: &'static str,
    },
    /// A signed request or argument does not fit the call (e.g. a read request given to an
    /// upload, or a purpose code over its bound).
    #[error("invalid request: {0}")]
    InvalidRequest(String),
}

impl ClientError {
    /// The API error code, if the node gave one.
    pub fn code(&self) -> Option<&str> {
        match self {
            ClientError::Api { code, .. } => Some(code),
            _ => None,
        }
    }

    /// The HTTP status of an API error.
    pub fn status(&self) -> Option<u16> {
        match self {
            ClientError::Api { status, .. } => Some(*status),
            _ => None,
        }
    }

    /// Whether the outcome of the call is unknown: the node was unreachable, the connection broke,
    /// or it answered with a server error (5xx). A transaction sent in such a call may or may not
    /// have been admitted.
    pub fn is_transient(&self) -> bool {
        match self {
            ClientError::Unreachable { .. } | ClientError::Transfer { .. } => true,
            ClientError::Api { status, .. } => *status >= 500,
            _ => false,
        }
    }

    pub(crate) fn file(path: &std::path::Path) -> impl FnOnce(std::io::Error) -> ClientError + '_ {
        move |error| ClientError::File {
            path: path.to_path_buf(),
            error,
        }
    }
}

/// The innermost cause of an error ("Connection refused (os error 111)", "operation timed out"):
/// what a person needs, without the layers of "error sending request" above it.
fn root_cause(e: &(dyn std::error::Error + 'static)) -> String {
    let mut cause = e;
    while let Some(next) = cause.source() {
        cause = next;
    }
    cause.to_string()
}
