//! # 数字保险箱 — the department node
//!
//! A department's node keeps the ledger in RocksDB ([`store`]), agrees on it with the other
//! departments' nodes through commonware's Simplex BFT engine ([`consensus`], [`chain`]) over one
//! libp2p network ([`p2p`]), holds submitted transactions in a bounded [`pool`], and serves the
//! HTTP API ([`api`]). Every rule it applies is `vault_protocol`'s, the same code every other node
//! and every verifier runs.
//!
//! A transaction's path: `POST /v1/transactions` → [`pool::Pool::admit`] (decode, verify every
//! signature once, chain/time/duplicate checks) → gossip to the other nodes → a leader's
//! `propose` builds a block with `vault_protocol::state::build_block` → every validator's
//! `verify` re-checks it with `apply_verified_block` → Simplex finalizes it → marshal delivers it
//! in order → [`chain::Chain::commit_finalized`] writes block, certificate, state delta and log
//! nodes in one fsynced RocksDB batch → the submitter's `wait` returns.

#![forbid(unsafe_code)]
#![warn(missing_docs)]
#![cfg_attr(not(test), deny(clippy::unwrap_used))]

pub mod api;
pub mod blocks;
pub mod chain;
pub mod checkpoints;
pub mod config;
pub mod consensus;
pub mod context;
pub mod deploy;
pub mod documents;
pub mod keys;
pub mod node;
pub mod p2p;
pub mod pool;
pub mod proofs;
pub mod receipts;
pub mod store;
pub mod telemetry;
pub mod vault;
pub mod vault_api;
