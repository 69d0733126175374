//! Running a bulk issue: upload, sign, submit in batches, record, resume.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};
use vault_protocol::access::{Requester, SignedAccessRequest};
use vault_protocol::crypto::{CryptoSuite, Digest, KeyPair};
use vault_protocol::ids::{ChainId, DepartmentId, TxId};
use vault_protocol::tx::{SignedTransaction, Transaction, TxBody};

use super::state::RowOutcome;
use super::{BulkError, BulkState, IssueSpec, Manifest, RowAction, RowFailure};
use crate::files::{file_digest, guess_media_type};
use crate::requests::{now, random_nonce, upload_request};
use crate::types::{ApiErrorBody, BatchAnswer, BatchStatus, TxState, UploadReceipt};
use crate::{Client, ClientError};

/// Most transactions the node takes in one batch.
pub const MAX_BATCH: usize = 10_000;

/// The node operations a bulk issue needs — the [`Client`] in real use, a fake in tests.
pub trait BulkNode {
    /// Whether the node already holds a file (then it need not be uploaded again).
    fn holds(&self, digest: &Digest) -> Result<bool, ClientError>;
    /// Uploads a file.
    fn upload(
        &self,
        signed: &SignedAccessRequest,
        path: &Path,
    ) -> Result<UploadReceipt, ClientError>;
    /// Submits a batch and waits for it.
    fn submit_batch(&self, txs: &[SignedTransaction]) -> Result<BatchAnswer, ClientError>;
    /// What the node knows of a transaction.
    fn transaction_state(&self, id: &TxId) -> Result<TxState, ClientError>;
}

impl BulkNode for Client {
    fn holds(&self, digest: &Digest) -> Result<bool, ClientError> {
        self.document_meta(digest).map(|m| m.is_some())
    }

    fn upload(
        &self,
        signed: &SignedAccessRequest,
        path: &Path,
    ) -> Result<UploadReceipt, ClientError> {
        Client::upload(self, signed, path, guess_media_type(path), |_| {})
    }

    fn submit_batch(&self, txs: &[SignedTransaction]) -> Result<BatchAnswer, ClientError> {
        Client::submit_batch(self, txs, true)
    }

    fn transaction_state(&self, id: &TxId) -> Result<TxState, ClientError> {
        Client::transaction_state(self, id)
    }
}

/// A committed row.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct IssuedRow {
    /// The row.
    pub row: u64,
    /// The attestation's id (its transaction's id).
    pub attestation: TxId,
    /// Block height, when the node said.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub height: Option<u64>,
}

/// A row whose transaction was sent but is not known to be committed yet.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct UnconfirmedRow {
    /// The row.
    pub row: u64,
    /// The transaction.
    pub tx_id: TxId,
}

/// The outcome of a run.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct BulkSummary {
    /// Data rows in the manifest.
    pub rows: usize,
    /// Rows committed in this run.
    pub issued: Vec<IssuedRow>,
    /// Rows that failed in this run, with their reasons.
    pub failed: Vec<RowFailure>,
    /// Rows committed by an earlier run, left alone.
    pub skipped: usize,
    /// Rows sent whose outcome is not known yet (a rerun checks them again).
    pub unconfirmed: Vec<UnconfirmedRow>,
    /// Rows not reached because the run stopped.
    pub not_attempted: usize,
    /// Why the run stopped early (the node unreachable), if it did.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stopped: Option<String>,
}

impl BulkSummary {
    /// Whether every row is committed now.
    pub fn complete(&self) -> bool {
        self.failed.is_empty()
            && self.unconfirmed.is_empty()
            && self.not_attempted == 0
            && self.stopped.is_none()
    }
}

/// What a run reports as it goes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum BulkEvent {
    /// Rows settled so far (committed, failed, skipped, or sent and awaiting confirmation), of all.
    Progress {
        /// Settled rows.
        done: usize,
        /// All rows.
        total: usize,
    },
    /// A row failed.
    Failed(RowFailure),
    /// What the run is doing now, for people.
    Stage(String),
}

/// One bulk issue: who issues, on which chain, how, and where the state lives.
pub struct BulkIssue<'a> {
    /// The chain.
    pub chain_id: ChainId,
    /// The issuing department.
    pub department: DepartmentId,
    /// Its signing key.
    pub key: &'a KeyPair,
    /// Transactions per batch (1 to [`MAX_BATCH`]).
    pub batch_size: usize,
    /// The state file.
    pub state_path: PathBuf,
    /// How long to keep asking about transactions still pending after their batch.
    pub confirm_wait: Duration,
}

enum Work {
    /// Issue from the manifest.
    Issue(IssueSpec),
    /// Resubmit a transaction sent before.
    Resubmit(u64, Box<SignedTransaction>),
}

impl Work {
    fn row(&self) -> u64 {
        match self {
            Work::Issue(s) => s.row,
            Work::Resubmit(row, _) => *row,
        }
    }
}

struct Run<'r, 'a, N: BulkNode, F: FnMut(BulkEvent)> {
    job: &'r BulkIssue<'a>,
    fingerprints: &'r BTreeMap<u64, Digest>,
    node: &'r N,
    state: &'r mut BulkState,
    summary: BulkSummary,
    pending: Vec<UnconfirmedRow>,
    done: usize,
    on_event: F,
}

/// Turns a node error on one row into that row's failure.
fn node_failure(row: u64, what: &str, e: &ClientError) -> RowFailure {
    match e {
        ClientError::Api { code, message, .. } => {
            RowFailure::new(row, code.clone(), format!("{what}: {message}"))
        }
        other => RowFailure::new(row, "client_error", format!("{what}: {other}")),
    }
}

impl<N: BulkNode, F: FnMut(BulkEvent)> Run<'_, '_, N, F> {
    fn progress(&mut self, n: usize) {
        self.done += n;
        let (done, total) = (self.done, self.summary.rows);
        (self.on_event)(BulkEvent::Progress { done, total });
    }

    fn commit(&mut self, row: u64, tx_id: TxId, height: Option<u64>) {
        let outcome = RowOutcome::committed(row, tx_id, height)
            .with_fingerprint(self.fingerprints.get(&row).copied());
        self.state.rows.insert(row, outcome);
        self.summary.issued.push(IssuedRow {
            row,
            attestation: tx_id,
            height,
        });
    }

    fn fail(&mut self, f: RowFailure, tx_id: Option<TxId>) {
        self.state.rows.insert(f.row, RowOutcome::failed(&f, tx_id));
        (self.on_event)(BulkEvent::Failed(f.clone()));
        self.summary.failed.push(f);
    }

    fn stop(&mut self, e: &ClientError, not_attempted: usize) {
        self.summary.stopped = Some(format!("the node could not be used: {e}"));
        self.summary.not_attempted += not_attempted;
    }

    /// Digests, uploads and signs one row; `Err` with a row failure, or `Ok(None)` when the node
    /// is unreachable (the run stops).
    fn prepare(&mut self, spec: &IssueSpec) -> Result<Option<SignedTransaction>, RowFailure> {
        let (digest, size) = file_digest(&spec.file).map_err(|e| {
            RowFailure::new(
                spec.row,
                "file_unreadable",
                format!("{}: {e}", spec.file.display()),
            )
        })?;
        let held = self.node.holds(&digest).unwrap_or(false);
        if !held {
            let request = upload_request(
                &self.job.chain_id,
                Requester::Department(self.job.department.clone()),
                digest,
                size,
                self.job.key,
            );
            if let Err(e) = self.node.upload(&request, &spec.file) {
                if e.is_transient() {
                    self.stop(&e, 0);
                    return Ok(None);
                }
                return Err(node_failure(spec.row, "the node refused the upload", &e));
            }
        }
        let created_at = now();
        let tx = Transaction {
            chain_id: self.job.chain_id.clone(),
            created_at,
            nonce: random_nonce(),
            body: TxBody::IssueAttestation(spec.attestation(
                &self.job.department,
                digest,
                created_at,
            )),
        };
        Ok(Some(tx.sign_one(self.job.key)))
    }

    /// Sends one batch and records each result.
    fn send(&mut self, batch: Vec<(u64, SignedTransaction)>) -> Result<bool, BulkError> {
        for (row, tx) in &batch {
            let outcome = RowOutcome::submitted(*row, tx)
                .with_fingerprint(self.fingerprints.get(row).copied());
            self.state.rows.insert(*row, outcome);
        }
        // Write-ahead: the state names every transaction before the node can see it.
        self.state.save(&self.job.state_path)?;
        let txs: Vec<SignedTransaction> = batch.iter().map(|(_, tx)| tx.clone()).collect();
        (self.on_event)(BulkEvent::Stage(format!(
            "submitting {} transactions",
            txs.len()
        )));
        let answer = match self.node.submit_batch(&txs) {
            Ok(a) => a,
            Err(e) if e.is_transient() => {
                // Sent or not: the rows stay `submitted`, and a rerun asks about them.
                for (row, tx) in &batch {
                    self.pending.push(UnconfirmedRow {
                        row: *row,
                        tx_id: tx.id(CryptoSuite::Ed25519Sha256),
                    });
                }
                self.progress(batch.len());
                self.stop(&e, 0);
                return Ok(false);
            }
            Err(e) => {
                // The batch as a whole was refused: nothing in it was admitted.
                for (row, tx) in &batch {
                    let f = node_failure(*row, "the node refused the batch", &e);
                    self.fail(f, Some(tx.id(CryptoSuite::Ed25519Sha256)));
                }
                self.progress(batch.len());
                self.state.save(&self.job.state_path)?;
                return Ok(true);
            }
        };
        for ((row, tx), result) in batch.iter().zip(answer.results) {
            let id = tx.id(CryptoSuite::Ed25519Sha256);
            let error = result.error.clone().unwrap_or(ApiErrorBody {
                code: "unknown".into(),
                message: String::new(),
            });
            match result.status {
                BatchStatus::Committed => self.commit(*row, id, result.height),
                BatchStatus::Pending => self.pending.push(UnconfirmedRow {
                    row: *row,
                    tx_id: id,
                }),
                BatchStatus::Refused if error.code == "duplicate_transaction" => {
                    // Already on the ledger: a resubmission of a transaction that committed.
                    match self.node.transaction_state(&id) {
                        Ok(TxState::Committed { height }) => self.commit(*row, id, Some(height)),
                        _ => self.pending.push(UnconfirmedRow {
                            row: *row,
                            tx_id: id,
                        }),
                    }
                }
                BatchStatus::Rejected => self.fail(
                    RowFailure::new(
                        *row,
                        error.code,
                        format!("the ledger rejected the transaction: {}", error.message),
                    ),
                    Some(id),
                ),
                BatchStatus::Refused => self.fail(
                    RowFailure::new(
                        *row,
                        error.code,
                        format!("the node refused the transaction: {}", error.message),
                    ),
                    Some(id),
                ),
            }
        }
        self.progress(batch.len());
        self.state.save(&self.job.state_path)?;
        Ok(true)
    }

    /// Asks about pending transactions until they settle or the wait ends.
    fn confirm_pending(&mut self) -> Result<(), BulkError> {
        if self.pending.is_empty() || self.summary.stopped.is_some() {
            return Ok(());
        }
        (self.on_event)(BulkEvent::Stage(format!(
            "waiting for {} transactions to commit",
            self.pending.len()
        )));
        let deadline = Instant::now() + self.job.confirm_wait;
        loop {
            let mut still = Vec::new();
            for p in std::mem::take(&mut self.pending) {
                match self.node.transaction_state(&p.tx_id) {
                    Ok(TxState::Committed { height }) => self.commit(p.row, p.tx_id, Some(height)),
                    Ok(TxState::Rejected { error }) => self.fail(
                        RowFailure::new(
                            p.row,
                            error.code,
                            format!("the ledger rejected the transaction: {}", error.message),
                        ),
                        Some(p.tx_id),
                    ),
                    _ => still.push(p),
                }
            }
            self.pending = still;
            if self.pending.is_empty() || Instant::now() >= deadline {
                break;
            }
            std::thread::sleep(Duration::from_millis(500));
        }
        self.state.save(&self.job.state_path)
    }
}

impl BulkIssue<'_> {
    /// Runs the bulk issue over `manifest`, continuing from `state` (which it updates and saves
    /// to the state file as it goes). Row failures and an unreachable node end up in the summary;
    /// `Err` only if the state file cannot be written.
    pub fn run(
        &self,
        node: &impl BulkNode,
        manifest: &Manifest,
        state: &mut BulkState,
        on_event: impl FnMut(BulkEvent),
    ) -> Result<BulkSummary, BulkError> {
        let mut run = Run {
            job: self,
            fingerprints: &manifest.fingerprints,
            node,
            state,
            summary: BulkSummary {
                rows: manifest.rows.len(),
                ..Default::default()
            },
            pending: Vec::new(),
            done: 0,
            on_event,
        };
        let batch_size = self.batch_size.clamp(1, MAX_BATCH);

        // Sort the rows: done before, to check again, to issue.
        let mut work: Vec<Work> = Vec::new();
        let mut skipped = 0;
        let mut recheck = Vec::new();
        for spec in &manifest.rows {
            let row = match spec {
                Ok(s) => s.row,
                Err(f) => f.row,
            };
            match run.state.action(row) {
                RowAction::Skip => skipped += 1,
                RowAction::Recheck { tx_id, tx } => recheck.push((row, tx_id, tx, spec)),
                RowAction::Issue => match spec {
                    Ok(s) => work.push(Work::Issue(s.clone())),
                    Err(f) => run.fail(f.clone(), None),
                },
            }
        }
        run.summary.skipped = skipped;
        let invalid = run.summary.failed.len();
        run.progress(skipped + invalid);

        if !recheck.is_empty() {
            (run.on_event)(BulkEvent::Stage(format!(
                "checking {} transactions sent before",
                recheck.len()
            )));
        }
        let mut settled = 0;
        for (i, (row, tx_id, tx, spec)) in recheck.iter().enumerate() {
            match (run.node.transaction_state(tx_id), tx) {
                (Ok(TxState::Committed { height }), _) => {
                    run.commit(*row, *tx_id, Some(height));
                    settled += 1;
                }
                (Ok(TxState::Pending), _) => {
                    run.pending.push(UnconfirmedRow {
                        row: *row,
                        tx_id: *tx_id,
                    });
                    settled += 1;
                }
                // Never heard of: send exactly that transaction again (at worst a duplicate).
                (Ok(TxState::Unknown), Some(tx)) => work.push(Work::Resubmit(*row, tx.clone())),
                // Left out of the ledger (or unknown and not kept): issue it anew.
                (Ok(TxState::Rejected { .. } | TxState::Unknown), _) => match spec {
                    Ok(s) => work.push(Work::Issue(s.clone())),
                    Err(f) => {
                        run.fail(f.clone(), None);
                        settled += 1;
                    }
                },
                (Err(e), _) => {
                    run.progress(settled);
                    run.stop(&e, recheck.len() - i + work.len());
                    run.state.save(&self.state_path)?;
                    return Ok(run.finish());
                }
            }
        }
        run.progress(settled);
        work.sort_by_key(Work::row);

        let total_work = work.len();
        let mut reached = 0;
        let mut work = work.into_iter().peekable();
        while work.peek().is_some() {
            let mut batch = Vec::new();
            let mut failed_here = 0;
            while batch.len() < batch_size {
                let Some(item) = work.next() else { break };
                reached += 1;
                match item {
                    Work::Resubmit(row, tx) => batch.push((row, *tx)),
                    Work::Issue(spec) => match run.prepare(&spec) {
                        Ok(Some(tx)) => batch.push((spec.row, tx)),
                        Ok(None) => {
                            // The node is unreachable: send nothing more.
                            let left = total_work - reached + 1;
                            run.summary.not_attempted += left;
                            run.progress(failed_here);
                            if !batch.is_empty() {
                                // These were signed but never sent: nothing to remember.
                                run.summary.not_attempted += batch.len();
                            }
                            run.state.save(&self.state_path)?;
                            return Ok(run.finish());
                        }
                        Err(f) => {
                            run.fail(f, None);
                            failed_here += 1;
                        }
                    },
                }
            }
            run.progress(failed_here);
            if batch.is_empty() {
                continue;
            }
            if !run.send(batch)? {
                run.summary.not_attempted += total_work - reached;
                run.state.save(&self.state_path)?;
                return Ok(run.finish());
            }
        }
        run.confirm_pending()?;
        run.state.save(&self.state_path)?;
        Ok(run.finish())
    }
}

impl<N: BulkNode, F: FnMut(BulkEvent)> Run<'_, '_, N, F> {
    fn finish(mut self) -> BulkSummary {
        self.summary.unconfirmed = std::mem::take(&mut self.pending);
        self.summary.issued.sort_by_key(|r| r.row);
        self.summary.failed.sort_by_key(|r| r.row);
        self.summary.unconfirmed.sort_by_key(|r| r.row);
        self.summary
    }
}

#[cfg(test)]
mod tests {
    use std::cell::{Cell, RefCell};
    use std::collections::{BTreeMap, BTreeSet};

    use vault_protocol::ledger::test_uscc;
    use vault_protocol::uscc::Uscc;

    use super::*;
    use crate::bulk::testing::*;
    use crate::bulk::RowStatus;
    use crate::types::BatchResult;

    #[derive(Default)]
    struct FakeNode {
        committed: RefCell<BTreeMap<TxId, u64>>,
        held: RefCell<BTreeSet<Digest>>,
        uploads: RefCell<Vec<(Digest, PathBuf)>>,
        batches: RefCell<Vec<Vec<TxId>>>,
        /// Transactions about these enterprises are rejected as not enrolled.
        not_enrolled: RefCell<BTreeSet<Uscc>>,
        /// Uploads of files whose name contains this are refused.
        refuse_upload: RefCell<Option<String>>,
        /// The next batch call admits and commits, then the connection breaks.
        break_after_admitting: Cell<bool>,
        /// The next batch call breaks before the node sees it.
        break_before_admitting: Cell<bool>,
        height: Cell<u64>,
        /// The node says it knows nothing of these, once each.
        unknown_once: RefCell<BTreeSet<TxId>>,
        /// The state file, checked whenever a batch arrives: it must already name every
        /// transaction in it (write-ahead).
        state_path: RefCell<Option<PathBuf>>,
    }

    fn transient() -> ClientError {
        ClientError::Api {
            status: 502,
            code: "http_502".into(),
            message: "bad gateway".into(),
        }
    }

    impl BulkNode for FakeNode {
        fn holds(&self, digest: &Digest) -> Result<bool, ClientError> {
            Ok(self.held.borrow().contains(digest))
        }

        fn upload(
            &self,
            signed: &SignedAccessRequest,
            path: &Path,
        ) -> Result<UploadReceipt, ClientError> {
            let vault_protocol::access::RequestAction::Upload { digest, size } =
                signed.request.action
            else {
                panic!("not an upload request");
            };
            assert_eq!(
                signed.request.requester,
                Requester::Department(department())
            );
            if let Some(bad) = self.refuse_upload.borrow().as_deref() {
                if path.to_string_lossy().contains(bad) {
                    return Err(ClientError::Api {
                        status: 413,
                        code: "file_too_large".into(),
                        message: "the file is larger than this node accepts".into(),
                    });
                }
            }
            assert_eq!(file_digest(path).unwrap(), (digest, size));
            self.uploads.borrow_mut().push((digest, path.to_path_buf()));
            self.held.borrow_mut().insert(digest);
            Ok(UploadReceipt {
                digest,
                size,
                media_type: None,
                already_held: false,
            })
        }

        fn submit_batch(&self, txs: &[SignedTransaction]) -> Result<BatchAnswer, ClientError> {
            if self.break_before_admitting.replace(false) {
                return Err(transient());
            }
            let ids: Vec<TxId> = txs
                .iter()
                .map(|t| t.id(CryptoSuite::Ed25519Sha256))
                .collect();
            if let Some(path) = self.state_path.borrow().as_ref() {
                let on_disk = BulkState::load(path).unwrap().unwrap();
                for id in &ids {
                    assert!(
                        on_disk.rows.values().any(|r| r.tx_id == Some(*id)
                            && r.status == RowStatus::Submitted
                            && r.signed_transaction().is_some()),
                        "transaction {id} sent before the state file recorded it"
                    );
                }
            }
            self.batches.borrow_mut().push(ids.clone());
            let mut results = Vec::new();
            for (tx, id) in txs.iter().zip(ids) {
                let TxBody::IssueAttestation(a) = &tx.tx.body else {
                    panic!("not an issue")
                };
                assert!(self.held.borrow().contains(&a.file_digest));
                let r = if self.committed.borrow().contains_key(&id) {
                    BatchResult {
                        tx_id: None,
                        status: BatchStatus::Refused,
                        height: None,
                        error: Some(ApiErrorBody {
                            code: "duplicate_transaction".into(),
                            message: "already on the ledger".into(),
                        }),
                    }
                } else if self.not_enrolled.borrow().contains(&a.subject) {
                    BatchResult {
                        tx_id: Some(id),
                        status: BatchStatus::Rejected,
                        height: None,
                        error: Some(ApiErrorBody {
                            code: "not_enrolled".into(),
                            message: format!("enterprise {} is not enrolled", a.subject),
                        }),
                    }
                } else {
                    self.height.set(self.height.get() + 1);
                    self.committed.borrow_mut().insert(id, self.height.get());
                    BatchResult {
                        tx_id: Some(id),
                        status: BatchStatus::Committed,
                        height: Some(self.height.get()),
                        error: None,
                    }
                };
                results.push(r);
            }
            if self.break_after_admitting.replace(false) {
                return Err(transient());
            }
            Ok(BatchAnswer {
                accepted: results.len(),
                results,
            })
        }

        fn transaction_state(&self, id: &TxId) -> Result<TxState, ClientError> {
            if self.unknown_once.borrow_mut().remove(id) {
                return Ok(TxState::Unknown);
            }
            Ok(match self.committed.borrow().get(id) {
                Some(h) => TxState::Committed { height: *h },
                None => TxState::Unknown,
            })
        }
    }

    fn job<'a>(key: &'a KeyPair, state_path: &Path, batch_size: usize) -> BulkIssue<'a> {
        BulkIssue {
            chain_id: ChainId::new("test-chain").unwrap(),
            department: department(),
            key,
            batch_size,
            state_path: state_path.to_path_buf(),
            confirm_wait: Duration::ZERO,
        }
    }

    fn setup(rows: &[String], names: &[&str]) -> (Files, Manifest, PathBuf) {
        let files = Files::new(names);
        let text = manifest_text(rows);
        let m = Manifest::parse(text.as_bytes(), files.path()).unwrap();
        let state_path = files.path().join("m.state.json");
        (files, m, state_path)
    }

    fn good_rows(n: u32) -> Vec<String> {
        (1..=n)
            .map(|i| {
                format!(
                    "{},BUSINESS_LICENCE,f{i}.pdf,,30,licence_no={i}",
                    test_uscc(i)
                )
            })
            .collect()
    }

    fn run(
        node: &FakeNode,
        m: &Manifest,
        state_path: &Path,
        batch: usize,
    ) -> (BulkSummary, BulkState, Vec<BulkEvent>) {
        let k = key();
        *node.state_path.borrow_mut() = Some(state_path.to_path_buf());
        let loaded = BulkState::load(state_path).unwrap();
        let mut state = BulkState::resume(state_path, loaded, m, &department()).unwrap();
        let mut events = Vec::new();
        let summary = job(&k, state_path, batch)
            .run(node, m, &mut state, |e| events.push(e))
            .unwrap();
        // What was saved is what the run holds.
        assert_eq!(BulkState::load(state_path).unwrap().unwrap(), state);
        (summary, state, events)
    }

    #[test]
    fn issues_in_batches_and_a_rerun_skips_what_is_done() {
        let mut rows = good_rows(3);
        rows.insert(1, format!("{},BUSINESS_LICENCE,f2.pdf,,,", bad_uscc()));
        let (_files, m, state_path) = setup(&rows, &["f1.pdf", "f2.pdf", "f3.pdf"]);
        let node = FakeNode::default();

        let (s, state, events) = run(&node, &m, &state_path, 2);
        assert_eq!(s.rows, 4);
        assert_eq!(
            s.issued.iter().map(|r| r.row).collect::<Vec<_>>(),
            [2, 4, 5]
        );
        assert_eq!(s.failed.len(), 1);
        assert_eq!(s.failed[0].row, 3);
        assert_eq!(s.failed[0].code, "uscc_check_character_mismatch");
        assert_eq!(s.skipped, 0);
        assert!(!s.complete());
        assert_eq!(node.uploads.borrow().len(), 3);
        assert_eq!(
            node.batches.borrow().len(),
            2,
            "3 transactions in batches of 2"
        );
        assert!(events.contains(&BulkEvent::Failed(s.failed[0].clone())));
        assert!(events.contains(&BulkEvent::Progress { done: 4, total: 4 }));
        // The attestation carries the row's claims, and expires 30 days after it starts.
        let committed: Vec<&RowOutcome> = state
            .rows
            .values()
            .filter(|r| r.status == RowStatus::Committed)
            .collect();
        assert_eq!(committed.len(), 3);
        assert_eq!(state.rows[&3].status, RowStatus::Failed);
        assert_eq!(
            state.rows[&3].code.as_deref(),
            Some("uscc_check_character_mismatch")
        );

        // Rerun: the committed rows are skipped, nothing is uploaded or sent again, and the bad
        // row fails again with its reason.
        let (s2, _, _) = run(&node, &m, &state_path, 2);
        assert_eq!(s2.skipped, 3);
        assert!(s2.issued.is_empty());
        assert_eq!(s2.failed.len(), 1);
        assert_eq!(node.uploads.borrow().len(), 3);
        assert_eq!(node.batches.borrow().len(), 2);
    }

    #[test]
    fn rejected_and_refused_rows_do_not_stop_the_rest() {
        let (_files, m, state_path) =
            setup(&good_rows(4), &["f1.pdf", "f2.pdf", "f3.pdf", "f4.pdf"]);
        let node = FakeNode::default();
        node.not_enrolled.borrow_mut().insert(test_uscc(2));
        *node.refuse_upload.borrow_mut() = Some("f3.pdf".into());

        let (s, state, _) = run(&node, &m, &state_path, 200);
        assert_eq!(s.issued.iter().map(|r| r.row).collect::<Vec<_>>(), [2, 5]);
        let failed: Vec<(u64, &str)> = s.failed.iter().map(|f| (f.row, f.code.as_str())).collect();
        assert_eq!(failed, [(3, "not_enrolled"), (4, "file_too_large")]);
        assert!(s.failed[0].reason.contains("rejected"));
        assert!(s.failed[1].reason.contains("upload"));
        assert_eq!(state.rows[&3].status, RowStatus::Failed);
        assert!(state.rows[&3].tx_id.is_some());

        // Once the cause is fixed, a rerun retries exactly the failed rows, with new transactions.
        node.not_enrolled.borrow_mut().clear();
        *node.refuse_upload.borrow_mut() = None;
        let (s2, _, _) = run(&node, &m, &state_path, 200);
        assert_eq!(s2.skipped, 2);
        assert_eq!(s2.issued.iter().map(|r| r.row).collect::<Vec<_>>(), [3, 4]);
        assert!(s2.complete());
    }

    #[test]
    fn a_batch_admitted_before_a_crash_is_not_issued_twice() {
        let (_files, m, state_path) = setup(&good_rows(3), &["f1.pdf", "f2.pdf", "f3.pdf"]);
        let node = FakeNode::default();
        node.break_after_admitting.set(true);

        let (s, state, _) = run(&node, &m, &state_path, 2);
        assert!(s.stopped.is_some());
        assert_eq!(s.unconfirmed.len(), 2);
        assert_eq!(s.not_attempted, 1);
        assert_eq!(state.rows[&2].status, RowStatus::Submitted);
        assert!(state.rows[&2].transaction.is_some());
        assert!(!state.rows.contains_key(&4));
        let sent: Vec<TxId> = node.batches.borrow()[0].clone();

        let (s2, state2, _) = run(&node, &m, &state_path, 2);
        assert!(s2.complete(), "{s2:?}");
        assert_eq!(
            s2.issued.iter().map(|r| r.row).collect::<Vec<_>>(),
            [2, 3, 4]
        );
        // Rows 2 and 3 were confirmed by asking about their transactions, not sent again.
        assert_eq!(node.batches.borrow().len(), 2);
        assert!(node.batches.borrow()[1].iter().all(|id| !sent.contains(id)));
        assert_eq!(state2.rows[&2].tx_id, Some(sent[0]));
        assert_eq!(node.committed.borrow().len(), 3);
    }

    #[test]
    fn a_batch_lost_before_the_node_saw_it_is_resubmitted_unchanged() {
        let (_files, m, state_path) = setup(&good_rows(2), &["f1.pdf", "f2.pdf"]);
        let node = FakeNode::default();
        node.break_before_admitting.set(true);

        let (s, state, _) = run(&node, &m, &state_path, 200);
        assert!(s.stopped.is_some());
        assert_eq!(s.unconfirmed.len(), 2);
        let ids: Vec<TxId> = [2, 3]
            .iter()
            .map(|r| state.rows[r].tx_id.unwrap())
            .collect();
        assert!(node.committed.borrow().is_empty());

        let (s2, _, _) = run(&node, &m, &state_path, 200);
        assert!(s2.complete(), "{s2:?}");
        // The very transactions recorded were sent: same ids, so never a second attestation.
        assert_eq!(node.batches.borrow().as_slice(), std::slice::from_ref(&ids));
        assert_eq!(
            s2.issued.iter().map(|r| r.attestation).collect::<Vec<_>>(),
            ids
        );
        assert_eq!(
            node.uploads.borrow().len(),
            2,
            "files are not uploaded again"
        );
    }

    #[test]
    fn a_resubmission_of_a_committed_transaction_counts_as_committed() {
        let (_files, m, state_path) = setup(&good_rows(1), &["f1.pdf"]);
        let node = FakeNode::default();
        node.break_after_admitting.set(true);
        let (_, state, _) = run(&node, &m, &state_path, 200);
        let id = state.rows[&2].tx_id.unwrap();
        assert_eq!(state.rows[&2].status, RowStatus::Submitted);
        // The node committed it, but (say, just restarted) first says it knows nothing of it.
        node.unknown_once.borrow_mut().insert(id);

        let (s, state, _) = run(&node, &m, &state_path, 200);
        assert!(s.complete(), "{s:?}");
        assert_eq!(s.issued[0].attestation, id);
        assert_eq!(state.rows[&2].status, RowStatus::Committed);
        // Resubmitted unchanged, refused as a duplicate: still one attestation.
        assert_eq!(node.batches.borrow().as_slice(), &[vec![id], vec![id]]);
        assert_eq!(node.committed.borrow().len(), 1);
    }

    #[test]
    fn a_corrected_manifest_resumes_if_issued_rows_are_unchanged() {
        let mut rows = good_rows(2);
        rows.push(format!("{},BUSINESS_LICENCE,f3.pdf,,,", bad_uscc()));
        let (files, m, state_path) = setup(&rows, &["f1.pdf", "f2.pdf", "f3.pdf"]);
        let node = FakeNode::default();
        let (s, _, _) = run(&node, &m, &state_path, 200);
        assert_eq!((s.issued.len(), s.failed.len()), (2, 1));

        // The failed row is corrected: the rerun takes the new manifest and issues only it.
        rows[2] = format!("{},BUSINESS_LICENCE,f3.pdf,,,", test_uscc(3));
        let fixed = Manifest::parse(manifest_text(&rows).as_bytes(), files.path()).unwrap();
        assert_ne!(fixed.sha256, m.sha256);
        let (s2, state, _) = run(&node, &fixed, &state_path, 200);
        assert_eq!(s2.skipped, 2);
        assert_eq!(s2.issued.iter().map(|r| r.row).collect::<Vec<_>>(), [4]);
        assert_eq!(state.manifest_sha256, fixed.sha256);

        // An issued row may not change, nor move.
        let mut changed = rows.clone();
        changed[0] = changed[0].replace("licence_no=1", "licence_no=9");
        let moved: Vec<String> = std::iter::once(rows[2].clone())
            .chain(rows.clone())
            .collect();
        for other in [changed, moved] {
            let other = Manifest::parse(manifest_text(&other).as_bytes(), files.path()).unwrap();
            let loaded = BulkState::load(&state_path).unwrap();
            assert!(matches!(
                BulkState::resume(&state_path, loaded, &other, &department()),
                Err(BulkError::StateMismatch { .. })
            ));
        }
    }
}
