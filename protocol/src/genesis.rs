//! The genesis: the document every department holds, from which every node and every offline
//! verifier starts.

use std::collections::{BTreeMap, BTreeSet};

use borsh::{BorshDeserialize, BorshSerialize};
use serde::{Deserialize, Serialize};

use crate::crypto::{CryptoSuite, Domain, PublicKey};
use crate::encoding::Canonical;
use crate::governance::{
    DepartmentRecord, DocumentTypeRecord, Governance, IssuerPeriod, KeyPeriod, Params,
};
use crate::ids::{BlockHash, ChainId, DepartmentId, Timestamp};
use crate::tx::{DocumentType, Name};

/// A founding member department.
#[derive(Debug, Clone, PartialEq, Eq, BorshSerialize, BorshDeserialize, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct GenesisDepartment {
    /// Its id.
    pub id: DepartmentId,
    /// Its name.
    pub name: Name,
    /// Its transaction-signing key.
    pub signing_key: PublicKey,
    /// Its node key.
    pub node_key: PublicKey,
}

/// A document type defined at genesis, with its initial issuers.
#[derive(Debug, Clone, PartialEq, Eq, BorshSerialize, BorshDeserialize, Serialize, Deserialize)]
pub struct GenesisDocumentType {
    /// The definition.
    #[serde(flatten)]
    pub definition: DocumentType,
    /// Departments authorised to issue it from genesis.
    pub issuers: Vec<DepartmentId>,
}

/// The genesis document.
#[derive(Debug, Clone, PartialEq, Eq, BorshSerialize, BorshDeserialize, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Genesis {
    /// The chain's id.
    pub chain_id: ChainId,
    /// Its algorithms.
    pub suite: CryptoSuite,
    /// The time of the genesis; block 1 must be later.
    pub genesis_time: Timestamp,
    /// Parameters.
    #[serde(default)]
    pub params: Params,
    /// Founding members.
    pub departments: Vec<GenesisDepartment>,
    /// Document types and their issuers.
    pub document_types: Vec<GenesisDocumentType>,
}

impl Canonical for Genesis {
    const MAX_ENCODED_LEN: usize = 4 * 1024 * 1024;
}

/// Why a genesis document is not valid.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum GenesisError {
    /// No department.
    #[error("the genesis names no department")]
    NoDepartments,
    /// A department id appears twice.
    #[error("department {department} appears twice")]
    DuplicateDepartment {
        /// The id.
        department: DepartmentId,
    },
    /// A key is used twice.
    #[error("key {key} is used more than once")]
    DuplicateKey {
        /// The key.
        key: PublicKey,
    },
    /// A document type appears twice.
    #[error("document type {code} appears twice")]
    DuplicateDocumentType {
        /// The code.
        code: String,
    },
    /// A document type names an issuer that is not a founding department.
    #[error("document type {code} names unknown issuer {department}")]
    UnknownIssuer {
        /// The document type.
        code: String,
        /// The unknown department.
        department: DepartmentId,
    },
    /// A parameter is out of range.
    #[error("parameter {name} is invalid: {reason}")]
    InvalidParam {
        /// The parameter.
        name: &'static str,
        /// Why.
        reason: &'static str,
    },
}

impl Genesis {
    /// Checks the document's internal consistency.
    pub fn validate(&self) -> Result<(), GenesisError> {
        if self.departments.is_empty() {
            return Err(GenesisError::NoDepartments);
        }
        let mut ids = BTreeSet::new();
        let mut keys = BTreeSet::new();
        for d in &self.departments {
            if !ids.insert(&d.id) {
                return Err(GenesisError::DuplicateDepartment {
                    department: d.id.clone(),
                });
            }
            for k in [&d.signing_key, &d.node_key] {
                if !keys.insert(k) {
                    return Err(GenesisError::DuplicateKey { key: *k });
                }
            }
        }
        let mut codes = BTreeSet::new();
        for t in &self.document_types {
            let code = &t.definition.code;
            if !codes.insert(code) {
                return Err(GenesisError::DuplicateDocumentType {
                    code: code.to_string(),
                });
            }
            if t.definition.max_validity_days == Some(0) {
                return Err(GenesisError::InvalidParam {
                    name: "max_validity_days",
                    reason: "must be at least 1 day when set",
                });
            }
            for issuer in &t.issuers {
                if !ids.contains(issuer) {
                    return Err(GenesisError::UnknownIssuer {
                        code: code.to_string(),
                        department: issuer.clone(),
                    });
                }
            }
        }
        let p = &self.params;
        if p.max_block_transactions == 0
            || p.max_block_transactions as usize > crate::block::MAX_BLOCK_TRANSACTIONS
        {
            return Err(GenesisError::InvalidParam {
                name: "max_block_transactions",
                reason: "must be between 1 and 20000",
            });
        }
        if p.max_tx_age_ms == 0 || p.max_grant_duration_ms == 0 {
            return Err(GenesisError::InvalidParam {
                name: "max_tx_age_ms/max_grant_duration_ms",
                reason: "must be positive",
            });
        }
        Ok(())
    }

    /// The genesis hash: the parent of block 1, and what every proof finally rests on.
    pub fn hash(&self) -> BlockHash {
        BlockHash(self.suite.hash(Domain::Genesis, &[&self.encode()]))
    }

    /// The governance state the genesis establishes.
    pub fn governance(&self) -> Governance {
        let t = self.genesis_time;
        let period = |key: PublicKey| KeyPeriod {
            key,
            from: t,
            until: None,
        };
        let departments = self
            .departments
            .iter()
            .map(|d| {
                (
                    d.id.clone(),
                    DepartmentRecord {
                        id: d.id.clone(),
                        name: d.name.clone(),
                        signing_keys: vec![period(d.signing_key)],
                        node_keys: vec![period(d.node_key)],
                        admitted_at: t,
                        removed_at: None,
                    },
                )
            })
            .collect::<BTreeMap<_, _>>();
        let document_types = self
            .document_types
            .iter()
            .map(|dt| {
                (
                    dt.definition.code.clone(),
                    DocumentTypeRecord {
                        definition: dt.definition.clone(),
                        issuers: dt
                            .issuers
                            .iter()
                            .map(|d| IssuerPeriod {
                                department: d.clone(),
                                from: t,
                                until: None,
                            })
                            .collect(),
                    },
                )
            })
            .collect();
        Governance {
            chain_id: self.chain_id.clone(),
            suite: self.suite,
            params: self.params.clone(),
            departments,
            document_types,
        }
    }
}
