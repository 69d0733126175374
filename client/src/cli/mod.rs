//! The `vault` commands, by kind of user: departments, enterprises, verifiers, and bulk issue.

pub mod bench;
pub mod bulk;
pub mod department;
pub mod enterprise;
pub mod monitor;
pub mod output;
pub mod verifier;

use std::path::Path;

use anyhow::{Context, Result};
use serde_json::{json, Value};
use vault_client::requests::{now, random_nonce};
use vault_client::Client;
use vault_protocol::crypto::{CryptoSuite, KeyPair};
use vault_protocol::ids::{ChainId, Timestamp, TxId};
use vault_protocol::tx::{Transaction, TxBody};

/// What every command gets: the node and the output mode.
pub struct Ctx {
    /// The node's API.
    pub node: Client,
    /// Print JSON instead of readable text.
    pub json: bool,
}

/// How a command that ran ends.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Exit {
    /// Done (exit code 0).
    Ok,
    /// A verification says not valid (exit code 2).
    NotValid,
    /// Some of the work failed and was reported (exit code 1).
    Incomplete,
    /// A monitor raised an alarm (exit code 3).
    Alarm,
}

impl Exit {
    /// The process exit code.
    pub fn code(self) -> i32 {
        match self {
            Exit::Ok => 0,
            Exit::NotValid => 2,
            Exit::Incomplete => 1,
            Exit::Alarm => 3,
        }
    }

    /// `Ok` if valid, `NotValid` otherwise.
    pub fn valid(valid: bool) -> Exit {
        if valid {
            Exit::Ok
        } else {
            Exit::NotValid
        }
    }
}

/// Reads a key file.
pub fn read_key(path: &Path) -> Result<KeyPair> {
    Ok(vault_client::keyfile::read(path)?)
}

impl Ctx {
    /// The chain's id, from the node.
    pub fn chain_id(&self) -> Result<ChainId> {
        self.node
            .chain_id()
            .context("asking the node for the chain id")
    }

    /// A new transaction on this chain, made now.
    pub fn transaction(&self, body: TxBody) -> Result<Transaction> {
        self.transaction_with(|_| body)
    }

    /// A new transaction on this chain, made now, whose body depends on that time (a grant's
    /// expiry, an attestation's validity).
    pub fn transaction_with(&self, body: impl FnOnce(Timestamp) -> TxBody) -> Result<Transaction> {
        let chain_id = self.chain_id()?;
        let created_at = now();
        Ok(Transaction {
            chain_id,
            created_at,
            nonce: random_nonce(),
            body: body(created_at),
        })
    }
}

/// A submitted transaction's fate.
pub struct Submitted {
    /// Its id.
    pub id: TxId,
    /// `committed` or `pending` (a rejection is an error).
    pub status: String,
    /// Block height, when committed.
    pub height: Option<u64>,
}

impl Submitted {
    /// `committed at height 12` or `submitted, not yet committed`.
    pub fn describe(&self) -> String {
        match self.height {
            Some(h) if self.status == "committed" => format!("committed at height {h}"),
            _ => "submitted, not yet committed (the node is still waiting for a block)".into(),
        }
    }

    /// The JSON fields `tx_id`, `status`, `height`.
    pub fn json(&self) -> Value {
        json!({"tx_id": self.id, "status": self.status, "height": self.height})
    }
}

/// Signs a transaction with one key, submits it and waits until it is committed. A transaction
/// the ledger rejects is an error carrying the rule's code.
pub fn submit(ctx: &Ctx, tx: Transaction, key: &KeyPair) -> Result<Submitted> {
    let signed = tx.sign_one(key);
    let id = signed.id(CryptoSuite::Ed25519Sha256);
    let r = ctx
        .node
        .submit(&signed, true)
        .with_context(|| format!("submitting transaction {id}"))?;
    Ok(Submitted {
        id,
        status: r["status"].as_str().unwrap_or("pending").to_string(),
        height: r["height"].as_u64(),
    })
}
