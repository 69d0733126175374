//! The receipt recorder: turns the journal of served reads into access-receipt transactions
//! (调阅留痕), signed by this node's department, in batches of up to [`MAX_READS`].
//!
//! A read is journaled (fsync) before its file is handed over, and leaves the journal only once a
//! block holding its receipt is committed — so a crash between the two loses no receipt; the
//! recorder picks the journal up again at start. A read must not postdate the block that records
//! it, so the recorder submits only reads made at or before the head's time (the next block is
//! later still).

use std::sync::Arc;
use std::time::Duration;

use vault_protocol::crypto::KeyPair;
use vault_protocol::encoding::BoundedVec;
use vault_protocol::state::TxError;
use vault_protocol::tx::{AccessReceipts, Transaction, TxBody, MAX_READS};

use crate::context::now;
use crate::pool::{AdmitError, TxOutcome};
use crate::vault::Vault;

/// How long to wait for a receipts transaction before trying again.
const COMMIT_WAIT: Duration = Duration::from_secs(30);

/// Starts the recorder.
pub fn spawn_recorder(vault: Arc<Vault>, signing: KeyPair) {
    tokio::spawn(async move {
        loop {
            match record_once(&vault, &signing).await {
                Ok(true) => continue,
                Ok(false) => {}
                Err(e) => {
                    tracing::warn!(error = %e, "recording access receipts failed; will retry")
                }
            }
            // Wake on a new read, or poll (the head's time moves on without us).
            let _ =
                tokio::time::timeout(Duration::from_millis(300), vault.journal_written.notified())
                    .await;
        }
    });
}

/// Records one batch. `Ok(true)` if it recorded something (there may be more).
async fn record_once(vault: &Vault, signing: &KeyPair) -> Result<bool, String> {
    let ctx = &vault.ctx;
    let journal = vault.docs.journal(MAX_READS).map_err(|e| e.to_string())?;
    if journal.is_empty() {
        return Ok(false);
    }
    let head = ctx.head();
    let gov = ctx.governance().map_err(|e| e.to_string())?;
    let oldest = head.time.minus(gov.params.max_tx_age_ms);
    // Reads too old for any block to accept can never be recorded; keep the log honest about it.
    let (expired, journal): (Vec<_>, Vec<_>) = journal
        .into_iter()
        .partition(|(_, e)| e.read.read_at < oldest);
    if !expired.is_empty() {
        tracing::error!(
            reads = expired.len(),
            "reads older than the ledger accepts could not be recorded; dropping them"
        );
        let seqs: Vec<u64> = expired.iter().map(|(s, _)| *s).collect();
        vault.docs.forget_reads(&seqs).map_err(|e| e.to_string())?;
    }
    let ready: Vec<_> = journal
        .into_iter()
        .filter(|(_, e)| e.read.read_at <= head.time)
        .collect();
    if ready.is_empty() {
        return Ok(false);
    }
    let seqs: Vec<u64> = ready.iter().map(|(s, _)| *s).collect();
    let reads = ready.into_iter().map(|(_, e)| e.read).collect::<Vec<_>>();
    let tx = Transaction {
        chain_id: gov.chain_id.clone(),
        created_at: now().max(head.time),
        nonce: seqs[0],
        body: TxBody::RecordAccess(AccessReceipts {
            recorder: ctx.department.clone(),
            reads: BoundedVec::new(reads).map_err(|e| e.to_string())?,
        }),
    };
    let signed = tx.sign_one(signing);
    let id = match ctx.submit(signed) {
        Ok(id) => id,
        Err(AdmitError::Full { .. }) => return Ok(false),
        Err(AdmitError::Rejected(e)) => return handle_rejection(vault, &seqs, &e).map(|_| true),
        Err(e) => return Err(e.to_string()),
    };
    match ctx.wait_for(id, COMMIT_WAIT).await {
        Some(TxOutcome::Committed { height, .. }) => {
            tracing::info!(reads = seqs.len(), height, tx = %id, "access receipts recorded");
            vault.docs.forget_reads(&seqs).map_err(|e| e.to_string())?;
            Ok(true)
        }
        Some(TxOutcome::Rejected(e)) => handle_rejection(vault, &seqs, &e).map(|_| true),
        None => Ok(false),
    }
}

/// A rejected batch: a read the ledger does not permit (this node's view was behind when it
/// served it) is dropped with an error in the log; the rest are retried.
fn handle_rejection(vault: &Vault, seqs: &[u64], e: &TxError) -> Result<(), String> {
    match e {
        TxError::ReadNotPermitted { index, refusal } => {
            tracing::error!(%refusal, "a served read is not permitted by the ledger; its receipt cannot be recorded");
            if let Some(seq) = seqs.get(*index) {
                vault
                    .docs
                    .forget_reads(&[*seq])
                    .map_err(|e| e.to_string())?;
            }
            Ok(())
        }
        other => Err(format!("receipts rejected: {other} ({})", other.code())),
    }
}
