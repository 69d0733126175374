//! The state file: each row's outcome, written atomically, and what a rerun does with each row.

use std::collections::BTreeMap;
use std::fs;
use std::io::Write;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};
use vault_protocol::crypto::{CryptoSuite, Digest};
use vault_protocol::encoding::Canonical;
use vault_protocol::ids::{DepartmentId, TxId};
use vault_protocol::tx::SignedTransaction;

use super::{BulkError, Manifest, RowFailure};

/// The state file's format version.
pub const STATE_VERSION: u32 = 1;

/// What became of a row, as the state file records it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RowStatus {
    /// Its transaction is on the ledger.
    Committed,
    /// Its transaction was sent; whether it is on the ledger is not known yet.
    Submitted,
    /// It could not be issued (see the reason); a rerun tries it again.
    Failed,
}

/// One row's outcome in the state file.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RowOutcome {
    /// The row (line number in the manifest).
    pub row: u64,
    /// What became of it.
    pub status: RowStatus,
    /// Its transaction's id (= the attestation's id), once it has one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tx_id: Option<TxId>,
    /// Block height, when committed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub height: Option<u64>,
    /// Why it failed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub code: Option<String>,
    /// Why it failed, for people.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    /// While `submitted`: the signed transaction (hex of its canonical encoding), so a rerun can
    /// resubmit exactly it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub transaction: Option<String>,
    /// The row's fingerprint when it was committed or sent ([`crate::bulk::Manifest::fingerprints`]).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub fingerprint: Option<Digest>,
}

impl RowOutcome {
    /// A committed row.
    pub fn committed(row: u64, tx_id: TxId, height: Option<u64>) -> Self {
        Self {
            row,
            status: RowStatus::Committed,
            tx_id: Some(tx_id),
            height,
            code: None,
            reason: None,
            transaction: None,
            fingerprint: None,
        }
    }

    /// A row whose transaction was sent, keeping the signed transaction.
    pub fn submitted(row: u64, tx: &SignedTransaction) -> Self {
        Self {
            row,
            status: RowStatus::Submitted,
            tx_id: Some(tx.id(CryptoSuite::Ed25519Sha256)),
            height: None,
            code: None,
            reason: None,
            transaction: Some(hex::encode(tx.encode())),
            fingerprint: None,
        }
    }

    /// A failed row.
    pub fn failed(f: &RowFailure, tx_id: Option<TxId>) -> Self {
        Self {
            row: f.row,
            status: RowStatus::Failed,
            tx_id,
            height: None,
            code: Some(f.code.clone()),
            reason: Some(f.reason.clone()),
            transaction: None,
            fingerprint: None,
        }
    }

    /// The same outcome, recording the row's fingerprint.
    pub fn with_fingerprint(mut self, fingerprint: Option<Digest>) -> Self {
        self.fingerprint = fingerprint;
        self
    }

    /// The signed transaction a `submitted` row carries, if it decodes.
    pub fn signed_transaction(&self) -> Option<SignedTransaction> {
        let bytes = hex::decode(self.transaction.as_deref()?).ok()?;
        SignedTransaction::decode(&bytes).ok()
    }
}

/// The state of a bulk issue: which manifest and department it is for, and each row's outcome.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BulkState {
    /// SHA-256 of the manifest.
    pub manifest_sha256: Digest,
    /// The issuing department.
    pub department: DepartmentId,
    /// Outcomes by row.
    pub rows: BTreeMap<u64, RowOutcome>,
}

#[derive(Serialize, Deserialize)]
struct StateFile {
    version: u32,
    manifest_sha256: Digest,
    department: DepartmentId,
    rows: Vec<RowOutcome>,
}

/// What a run does with a row, given its outcome in an earlier run.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RowAction {
    /// Committed before: nothing to do.
    Skip,
    /// Sent before with an unknown outcome: ask the node about that transaction (and resubmit
    /// exactly it if the node has never heard of it).
    Recheck {
        /// The transaction sent.
        tx_id: TxId,
        /// The signed transaction, if the state kept it.
        tx: Option<Box<SignedTransaction>>,
    },
    /// Never tried, or failed: issue it now.
    Issue,
}

impl BulkState {
    /// A fresh state for a manifest.
    pub fn new(manifest_sha256: Digest, department: DepartmentId) -> Self {
        Self {
            manifest_sha256,
            department,
            rows: BTreeMap::new(),
        }
    }

    /// Loads the state file at `path`, or `None` if there is none.
    pub fn load(path: &Path) -> Result<Option<BulkState>, BulkError> {
        let err = |reason: String| BulkError::State {
            path: path.to_path_buf(),
            reason,
        };
        let bytes = match fs::read(path) {
            Ok(b) => b,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(err(e.to_string())),
        };
        let file: StateFile = serde_json::from_slice(&bytes).map_err(|e| err(e.to_string()))?;
        if file.version != STATE_VERSION {
            return Err(err(format!(
                "format version {} (this tool writes {STATE_VERSION})",
                file.version
            )));
        }
        Ok(Some(BulkState {
            manifest_sha256: file.manifest_sha256,
            department: file.department,
            rows: file.rows.into_iter().map(|r| (r.row, r)).collect(),
        }))
    }

    /// The state to continue from: a fresh one if there was none; the loaded one if it is the
    /// same department's and the manifest is the one it was written for — or a corrected one in
    /// which every row that was committed or sent is unchanged at its line (failed rows may be
    /// fixed; rows may not be inserted, removed or moved above issued ones).
    pub fn resume(
        path: &Path,
        loaded: Option<BulkState>,
        manifest: &Manifest,
        department: &DepartmentId,
    ) -> Result<BulkState, BulkError> {
        let Some(mut state) = loaded else {
            return Ok(BulkState::new(manifest.sha256, department.clone()));
        };
        if &state.department != department {
            return Err(BulkError::StateMismatch {
                path: path.to_path_buf(),
                what: format!("department {}", state.department),
            });
        }
        if state.manifest_sha256 != manifest.sha256 {
            let changed = state.rows.values().find(|o| {
                o.status != RowStatus::Failed
                    && (o.fingerprint.is_none()
                        || manifest.fingerprints.get(&o.row) != o.fingerprint.as_ref())
            });
            if let Some(o) = changed {
                return Err(BulkError::StateMismatch {
                    path: path.to_path_buf(),
                    what: format!(
                        "another manifest: row {} was {} from a row that is not the same now \
                         (only failed rows may be corrected)",
                        o.row,
                        if o.status == RowStatus::Committed {
                            "committed"
                        } else {
                            "sent"
                        }
                    ),
                });
            }
            state.manifest_sha256 = manifest.sha256;
        }
        Ok(state)
    }

    /// Writes the state to `path` atomically: a temporary file beside it, flushed to disk, then
    /// renamed over it, so a crash leaves either the old state or the new one.
    pub fn save(&self, path: &Path) -> Result<(), BulkError> {
        let err = |e: std::io::Error| BulkError::State {
            path: path.to_path_buf(),
            reason: e.to_string(),
        };
        let file = StateFile {
            version: STATE_VERSION,
            manifest_sha256: self.manifest_sha256,
            department: self.department.clone(),
            rows: self.rows.values().cloned().collect(),
        };
        let json = serde_json::to_vec_pretty(&file).map_err(|e| BulkError::State {
            path: path.to_path_buf(),
            reason: e.to_string(),
        })?;
        let mut tmp_name = path.as_os_str().to_owned();
        tmp_name.push(".tmp");
        let tmp = PathBuf::from(tmp_name);
        let mut f = fs::File::create(&tmp).map_err(err)?;
        f.write_all(&json).map_err(err)?;
        f.write_all(b"\n").map_err(err)?;
        f.sync_all().map_err(err)?;
        drop(f);
        fs::rename(&tmp, path).map_err(err)
    }

    /// What to do with `row` in this run.
    pub fn action(&self, row: u64) -> RowAction {
        match self.rows.get(&row) {
            Some(o) if o.status == RowStatus::Committed => RowAction::Skip,
            Some(o) if o.status == RowStatus::Submitted => match o.tx_id {
                Some(tx_id) => RowAction::Recheck {
                    tx_id,
                    tx: o.signed_transaction().map(Box::new),
                },
                None => RowAction::Issue,
            },
            _ => RowAction::Issue,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::bulk::testing::*;
    use crate::bulk::IssueSpec;
    use std::path::PathBuf;
    use vault_protocol::encoding::BoundedVec;
    use vault_protocol::ids::{ChainId, DocTypeCode, Timestamp};
    use vault_protocol::ledger::test_uscc;
    use vault_protocol::tx::{Transaction, TxBody};

    fn signed_issue(n: u8) -> SignedTransaction {
        let spec = IssueSpec {
            row: 2,
            uscc: test_uscc(u32::from(n)),
            doc_type: DocTypeCode::new("BUSINESS_LICENCE").unwrap(),
            file: PathBuf::from("a.pdf"),
            valid_from: None,
            valid_days: Some(10),
            claims: BoundedVec::default(),
        };
        Transaction {
            chain_id: ChainId::new("test-chain").unwrap(),
            created_at: Timestamp(1_700_000_000_000),
            nonce: u64::from(n),
            body: TxBody::IssueAttestation(spec.attestation(
                &department(),
                Digest([n; 32]),
                Timestamp(1_700_000_000_000),
            )),
        }
        .sign_one(&key())
    }

    #[test]
    fn state_round_trips_and_selects_what_to_resume() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("m.state.json");
        assert_eq!(BulkState::load(&path).unwrap(), None);

        let mut state = BulkState::new(Digest([1; 32]), department());
        let done = signed_issue(1);
        let sent = signed_issue(2);
        let done_id = done.id(CryptoSuite::Ed25519Sha256);
        state
            .rows
            .insert(2, RowOutcome::committed(2, done_id, Some(7)));
        state.rows.insert(3, RowOutcome::submitted(3, &sent));
        state.rows.insert(
            4,
            RowOutcome::failed(&RowFailure::new(4, "not_enrolled", "not enrolled"), None),
        );
        state.save(&path).unwrap();
        assert!(!dir.path().join("m.state.json.tmp").exists());

        let loaded = BulkState::load(&path).unwrap().unwrap();
        assert_eq!(loaded, state);
        let text = fs::read_to_string(&path).unwrap();
        assert!(text.contains("\"status\": \"committed\""), "{text}");
        assert!(text.contains(&done_id.to_string()));

        assert_eq!(loaded.action(2), RowAction::Skip);
        assert_eq!(
            loaded.action(3),
            RowAction::Recheck {
                tx_id: sent.id(CryptoSuite::Ed25519Sha256),
                tx: Some(Box::new(sent)),
            }
        );
        assert_eq!(loaded.action(4), RowAction::Issue);
        assert_eq!(loaded.action(5), RowAction::Issue);

        // The state belongs to its manifest and department.
        let manifest = |sha: u8| Manifest {
            sha256: Digest([sha; 32]),
            rows: Vec::new(),
            fingerprints: BTreeMap::new(),
        };
        let resumed =
            BulkState::resume(&path, Some(loaded.clone()), &manifest(1), &department()).unwrap();
        assert_eq!(resumed, loaded);
        assert!(matches!(
            BulkState::resume(&path, Some(loaded.clone()), &manifest(2), &department()),
            Err(BulkError::StateMismatch { .. })
        ));
        assert!(matches!(
            BulkState::resume(
                &path,
                Some(loaded),
                &manifest(1),
                &DepartmentId::new("tax").unwrap()
            ),
            Err(BulkError::StateMismatch { .. })
        ));
        fs::write(&path, "{not json").unwrap();
        assert!(matches!(
            BulkState::load(&path),
            Err(BulkError::State { .. })
        ));
    }
}
