//! Bulk issue: a department migrating its existing licences issues them from a CSV manifest.
//!
//! The manifest has the header `uscc,doc_type,file,valid_from,valid_days,claims` (the last three
//! optional, columns in any order). Each row is validated on its own — a bad row is reported with
//! its row number and the rule it breaks and does not stop the others — then its file is uploaded
//! to the node's vault and its `IssueAttestation` transaction signed; transactions go to the node
//! in batches, waiting for each batch to commit.
//!
//! A **state file** makes the run resumable. It records, per row, the outcome: `committed` (with
//! the transaction id), `failed` (with the reason), or `submitted` — sent but not known to be
//! committed, with the signed transaction itself. It is written atomically (a temporary file
//! renamed over it) before each batch is sent and after its results are known, so after a crash or
//! Ctrl-C a rerun skips committed rows, retries failed and never-sent rows, and for `submitted` rows
//! asks the node about the very transaction that was sent, resubmitting *that* transaction (same
//! id, so at most a duplicate) rather than signing a new one. The state belongs to its manifest
//! and department: a rerun may use a corrected manifest (failed rows fixed) only if every row that
//! was committed or sent is unchanged at its line.
//!
//! Row numbers are line numbers in the manifest, the header being line 1, as a spreadsheet or an
//! editor shows them.

mod manifest;
mod run;
mod state;
#[cfg(test)]
mod testing;

use serde::{Deserialize, Serialize};
use std::path::PathBuf;

pub use manifest::{IssueSpec, Manifest, MANIFEST_COLUMNS};
pub use run::{BulkEvent, BulkIssue, BulkNode, BulkSummary, IssuedRow, UnconfirmedRow, MAX_BATCH};
pub use state::{BulkState, RowAction, RowOutcome, RowStatus, STATE_VERSION};

/// Why a bulk issue cannot go on at all (as opposed to one row failing).
#[derive(Debug, thiserror::Error)]
pub enum BulkError {
    /// The manifest cannot be read or has no usable header.
    #[error("manifest {}: {reason}", path.display())]
    Manifest {
        /// The manifest.
        path: PathBuf,
        /// What is wrong.
        reason: String,
    },
    /// The state file cannot be read, parsed or written.
    #[error("state file {}: {reason}", path.display())]
    State {
        /// The state file.
        path: PathBuf,
        /// What is wrong.
        reason: String,
    },
    /// The state file belongs to another manifest or department.
    #[error(
        "state file {} was written for {what}; use another --state file, or remove it to start over",
        path.display()
    )]
    StateMismatch {
        /// The state file.
        path: PathBuf,
        /// What it was written for.
        what: String,
    },
}

/// A manifest row that cannot be issued, and why.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RowFailure {
    /// The row (line number in the manifest).
    pub row: u64,
    /// A stable code: the rule broken (`uscc_check_character_mismatch`, `file_not_found`, …) or
    /// the node's error code.
    pub code: String,
    /// A human explanation.
    pub reason: String,
}

impl RowFailure {
    fn new(row: u64, code: impl Into<String>, reason: impl Into<String>) -> Self {
        Self {
            row,
            code: code.into(),
            reason: reason.into(),
        }
    }
}
