//! The governance state: member departments with their key history, document types with the
//! history of who was authorised to issue them, and the chain's parameters.
//!
//! History is kept as periods (`from`, `until`) rather than overwritten, because verification asks
//! questions about the past: was this department authorised for this type, and was this its key,
//! *when it issued*?

use std::collections::BTreeMap;

use borsh::{BorshDeserialize, BorshSerialize};
use serde::{Deserialize, Serialize};

use crate::crypto::{CryptoSuite, PublicKey};
use crate::ids::{ChainId, DepartmentId, DocTypeCode, Timestamp};
use crate::tx::{DocumentType, Name};

/// Milliseconds in a day.
pub const DAY_MS: u64 = 86_400_000;

/// The chain's parameters, fixed in the genesis.
#[derive(Debug, Clone, PartialEq, Eq, BorshSerialize, BorshDeserialize, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Params {
    /// A transaction older than this (by its `created_at`, against block time) is refused.
    pub max_tx_age_ms: u64,
    /// A transaction from further in the future than this is refused.
    pub max_clock_skew_ms: u64,
    /// Longest a grant may run, from the block that records it.
    pub max_grant_duration_ms: u64,
    /// Longest overlap of old and new department keys in a rotation.
    pub max_key_overlap_ms: u64,
    /// Most transactions in one block.
    pub max_block_transactions: u32,
}

impl Default for Params {
    fn default() -> Self {
        Self {
            max_tx_age_ms: 3 * DAY_MS,
            max_clock_skew_ms: 5 * 60 * 1000,
            max_grant_duration_ms: 366 * DAY_MS,
            max_key_overlap_ms: 90 * DAY_MS,
            max_block_transactions: 10_000,
        }
    }
}

/// A key and when it was (or is) in force: `[from, until)`.
#[derive(Debug, Clone, PartialEq, Eq, BorshSerialize, BorshDeserialize, Serialize, Deserialize)]
pub struct KeyPeriod {
    /// The key.
    pub key: PublicKey,
    /// In force from.
    pub from: Timestamp,
    /// In force until (exclusive); `None` while current.
    pub until: Option<Timestamp>,
}

impl KeyPeriod {
    /// Whether the key is in force at `t`.
    pub fn covers(&self, t: Timestamp) -> bool {
        self.from <= t && self.until.is_none_or(|u| t < u)
    }
}

/// A member (or former member) department.
#[derive(Debug, Clone, PartialEq, Eq, BorshSerialize, BorshDeserialize, Serialize, Deserialize)]
pub struct DepartmentRecord {
    /// Its id.
    pub id: DepartmentId,
    /// Its name.
    pub name: Name,
    /// Transaction-signing keys, oldest first.
    pub signing_keys: Vec<KeyPeriod>,
    /// Node keys (consensus and p2p identity), oldest first.
    pub node_keys: Vec<KeyPeriod>,
    /// When it was admitted.
    pub admitted_at: Timestamp,
    /// When it was removed, if it was.
    pub removed_at: Option<Timestamp>,
}

impl DepartmentRecord {
    /// Whether it is a member at `t`.
    pub fn is_member_at(&self, t: Timestamp) -> bool {
        self.admitted_at <= t && self.removed_at.is_none_or(|r| t < r)
    }

    /// Whether `key` was one of its signing keys at `t`.
    pub fn signing_key_valid_at(&self, key: &PublicKey, t: Timestamp) -> bool {
        self.signing_keys
            .iter()
            .any(|p| &p.key == key && p.covers(t))
    }

    /// Its newest node key.
    pub fn current_node_key(&self) -> Option<&PublicKey> {
        self.node_keys.last().map(|p| &p.key)
    }

    /// Its newest signing key.
    pub fn current_signing_key(&self) -> Option<&PublicKey> {
        self.signing_keys.last().map(|p| &p.key)
    }
}

/// A period during which a department was authorised to issue a document type: `[from, until)`.
#[derive(Debug, Clone, PartialEq, Eq, BorshSerialize, BorshDeserialize, Serialize, Deserialize)]
pub struct IssuerPeriod {
    /// The department.
    pub department: DepartmentId,
    /// Authorised from.
    pub from: Timestamp,
    /// Authorised until (exclusive); `None` while authorised.
    pub until: Option<Timestamp>,
}

/// A document type and the history of its issuers.
#[derive(Debug, Clone, PartialEq, Eq, BorshSerialize, BorshDeserialize, Serialize, Deserialize)]
pub struct DocumentTypeRecord {
    /// The definition.
    pub definition: DocumentType,
    /// Who may, or could, issue it, and when.
    pub issuers: Vec<IssuerPeriod>,
}

impl DocumentTypeRecord {
    /// Whether `department` may issue this type at `t`.
    pub fn issuer_authorised_at(&self, department: &DepartmentId, t: Timestamp) -> bool {
        self.issuers
            .iter()
            .any(|p| &p.department == department && p.from <= t && p.until.is_none_or(|u| t < u))
    }

    /// Whether `department` is authorised now (its newest period is open).
    pub fn currently_authorised(&self, department: &DepartmentId) -> bool {
        self.issuers
            .iter()
            .any(|p| &p.department == department && p.until.is_none())
    }
}

/// The whole governance state.
#[derive(Debug, Clone, PartialEq, Eq, BorshSerialize, BorshDeserialize, Serialize, Deserialize)]
pub struct Governance {
    /// The chain.
    pub chain_id: ChainId,
    /// Its algorithms.
    pub suite: CryptoSuite,
    /// Its parameters.
    pub params: Params,
    /// Every department ever admitted, by id.
    pub departments: BTreeMap<DepartmentId, DepartmentRecord>,
    /// Every document type, by code.
    pub document_types: BTreeMap<DocTypeCode, DocumentTypeRecord>,
}

impl Governance {
    /// The departments that are members at `t`.
    pub fn members_at(&self, t: Timestamp) -> impl Iterator<Item = &DepartmentRecord> {
        self.departments.values().filter(move |d| d.is_member_at(t))
    }

    /// The current members (no removal recorded).
    pub fn current_members(&self) -> impl Iterator<Item = &DepartmentRecord> {
        self.departments.values().filter(|d| d.removed_at.is_none())
    }

    /// A current member, by id.
    pub fn member(&self, id: &DepartmentId) -> Option<&DepartmentRecord> {
        self.departments.get(id).filter(|d| d.removed_at.is_none())
    }

    /// The signatures needed for a governance change among `members` members: more than two
    /// thirds.
    pub fn quorum(members: usize) -> usize {
        members * 2 / 3 + 1
    }

    /// The current validators' node keys, in department-id order.
    pub fn validator_keys(&self) -> Vec<(DepartmentId, PublicKey)> {
        self.current_members()
            .filter_map(|d| d.current_node_key().map(|k| (d.id.clone(), *k)))
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quorum_is_more_than_two_thirds() {
        assert_eq!(Governance::quorum(1), 1);
        assert_eq!(Governance::quorum(2), 2);
        assert_eq!(Governance::quorum(3), 3);
        assert_eq!(Governance::quorum(4), 3);
        assert_eq!(Governance::quorum(6), 5);
        assert_eq!(Governance::quorum(7), 5);
        for n in 1..100usize {
            let q = Governance::quorum(n);
            assert!(3 * q > 2 * n, "n={n}");
            assert!(3 * (q - 1) <= 2 * n, "n={n}");
        }
    }

    #[test]
    fn periods() {
        let k = KeyPeriod {
            key: PublicKey::from_bytes([1; 32]),
            from: Timestamp(10),
            until: Some(Timestamp(20)),
        };
        assert!(!k.covers(Timestamp(9)));
        assert!(k.covers(Timestamp(10)));
        assert!(k.covers(Timestamp(19)));
        assert!(!k.covers(Timestamp(20)));
    }
}
