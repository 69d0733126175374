//! # 数字保险箱 — the Rust SDK
//!
//! [`Client`] talks to a department node's HTTP API: submit signed transactions (optionally
//! waiting until they are committed), read the chain's status, blocks, transactions and
//! attestations with their verdicts. Transactions are built and signed with `vault_protocol`,
//! so a client never sends a secret key anywhere.
//!
//! ```no_run
//! let node = vault_client::Client::new("http://127.0.0.1:8700");
//! let status = node.status().unwrap();
//! println!("height {}", status["height"]);
//! ```

#![forbid(unsafe_code)]
#![warn(missing_docs)]
#![cfg_attr(not(test), deny(clippy::unwrap_used))]

pub mod keyfile;

use std::time::Duration;

use serde_json::Value;
use vault_protocol::crypto::Digest;
use vault_protocol::tx::SignedTransaction;

/// Why a request failed.
#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    /// The node could not be reached.
    #[error("cannot reach {url}: {source}")]
    Unreachable {
        /// The URL.
        url: String,
        /// The transport error.
        source: reqwest::Error,
    },
    /// The node answered with an error.
    #[error("{status} {code}: {message}")]
    Api {
        /// HTTP status.
        status: u16,
        /// The stable error code.
        code: String,
        /// The node's message.
        message: String,
    },
    /// The answer was not the JSON expected.
    #[error("unexpected answer from the node: {0}")]
    Unexpected(String),
}

impl ClientError {
    /// The API error code, if the node gave one.
    pub fn code(&self) -> Option<&str> {
        match self {
            ClientError::Api { code, .. } => Some(code),
            _ => None,
        }
    }
}

/// A department node's API.
#[derive(Debug, Clone)]
pub struct Client {
    base: String,
    http: reqwest::blocking::Client,
}

impl Client {
    /// A client for the node at `base` (e.g. `http://127.0.0.1:8700`).
    pub fn new(base: &str) -> Self {
        Self {
            base: base.trim_end_matches('/').to_string(),
            http: reqwest::blocking::Client::builder()
                .timeout(Duration::from_secs(75))
                .build()
                .unwrap_or_else(|_| reqwest::blocking::Client::new()),
        }
    }

    fn handle(
        &self,
        url: &str,
        resp: reqwest::Result<reqwest::blocking::Response>,
    ) -> Result<Value, ClientError> {
        let resp = resp.map_err(|source| ClientError::Unreachable {
            url: url.to_string(),
            source,
        })?;
        let status = resp.status().as_u16();
        let body: Value = resp
            .json()
            .map_err(|e| ClientError::Unexpected(e.to_string()))?;
        if status >= 400 && body.get("error").is_some() {
            return Err(ClientError::Api {
                status,
                code: body["error"]["code"]
                    .as_str()
                    .unwrap_or("unknown")
                    .to_string(),
                message: body["error"]["message"].as_str().unwrap_or("").to_string(),
            });
        }
        Ok(body)
    }

    fn get(&self, path: &str) -> Result<Value, ClientError> {
        let url = format!("{}{}", self.base, path);
        let resp = self.http.get(&url).send();
        self.handle(&url, resp)
    }

    /// `GET /v1/status`.
    pub fn status(&self) -> Result<Value, ClientError> {
        self.get("/v1/status")
    }

    /// Submits a signed transaction; with `wait`, until it is committed or rejected. The answer's
    /// `status` is `pending`, `committed` (with `height`) or `rejected` (with `error`).
    pub fn submit(&self, tx: &SignedTransaction, wait: bool) -> Result<Value, ClientError> {
        let url = format!("{}/v1/transactions?wait={wait}", self.base);
        let resp = self.http.post(&url).json(tx).send();
        self.handle(&url, resp)
    }

    /// A transaction by id.
    pub fn transaction(&self, id: &str) -> Result<Value, ClientError> {
        self.get(&format!("/v1/transactions/{id}"))
    }

    /// A block by height.
    pub fn block(&self, height: u64) -> Result<Value, ClientError> {
        self.get(&format!("/v1/blocks/{height}"))
    }

    /// An attestation, its signed issuing transaction and the verdict now.
    pub fn attestation(&self, id: &str) -> Result<Value, ClientError> {
        self.get(&format!("/v1/attestations/{id}"))
    }

    /// The attestations of a file digest, each with its verdict.
    pub fn attestations_by_digest(&self, digest: &Digest) -> Result<Value, ClientError> {
        self.get(&format!("/v1/attestations?digest={digest}"))
    }

    /// An enterprise's attestations.
    pub fn enterprise_attestations(&self, uscc: &str) -> Result<Value, ClientError> {
        self.get(&format!("/v1/enterprises/{uscc}/attestations"))
    }

    /// The chain's governance state (members, document types, issuers).
    pub fn governance(&self) -> Result<Value, ClientError> {
        self.get("/v1/governance")
    }
}
