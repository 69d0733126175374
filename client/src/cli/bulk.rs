//! `vault bulk-issue`: issue attestations from a CSV manifest, with a progress bar, resumably.

use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::{Context, Result};
use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use vault_client::bulk::{BulkEvent, BulkIssue, BulkState, BulkSummary, Manifest};
use vault_protocol::ids::DepartmentId;

use super::{read_key, Ctx, Exit};

/// The default state file of a manifest: `M.csv` → `M.state.json`, beside it.
pub fn default_state_path(manifest: &Path) -> PathBuf {
    manifest.with_extension("state.json")
}

/// The arguments of `vault bulk-issue`.
pub struct BulkArgs {
    /// The department's signing key file.
    pub key: PathBuf,
    /// The department.
    pub department: DepartmentId,
    /// The manifest.
    pub manifest: PathBuf,
    /// Where the files are (default: the manifest's directory).
    pub files: Option<PathBuf>,
    /// The state file (default: beside the manifest).
    pub state: Option<PathBuf>,
    /// Transactions per batch.
    pub batch: usize,
}

/// Runs a bulk issue and prints its summary.
pub fn bulk_issue(ctx: &Ctx, a: BulkArgs) -> Result<Exit> {
    let key = read_key(&a.key)?;
    let files_dir = match a.files {
        Some(d) => d,
        None => a
            .manifest
            .parent()
            .map(Path::to_path_buf)
            .unwrap_or_else(|| PathBuf::from(".")),
    };
    let state_path = a.state.unwrap_or_else(|| default_state_path(&a.manifest));
    let manifest = Manifest::read(&a.manifest, &files_dir)?;
    let loaded = BulkState::load(&state_path)?;
    let mut state = BulkState::resume(&state_path, loaded, &manifest, &a.department)?;
    let job = BulkIssue {
        chain_id: ctx.chain_id()?,
        department: a.department,
        key: &key,
        batch_size: a.batch,
        state_path: state_path.clone(),
        confirm_wait: Duration::from_secs(60),
    };

    let bar = if ctx.json {
        ProgressBar::hidden()
    } else {
        let bar = ProgressBar::with_draw_target(
            Some(manifest.rows.len() as u64),
            ProgressDrawTarget::stderr(),
        );
        bar.set_style(
            ProgressStyle::with_template("{msg:40} [{bar:30}] {pos}/{len} rows, eta {eta}")
                .unwrap_or_else(|_| ProgressStyle::default_bar())
                .progress_chars("=> "),
        );
        bar
    };
    let quiet = ctx.json;
    let summary = job.run(&ctx.node, &manifest, &mut state, |event| match event {
        BulkEvent::Progress { done, .. } => bar.set_position(done as u64),
        BulkEvent::Stage(s) => bar.set_message(s),
        BulkEvent::Failed(f) => {
            if !quiet {
                bar.println(format!("row {}: {} — {}", f.row, f.code, f.reason));
            }
        }
    });
    bar.finish_and_clear();
    let summary = summary.with_context(|| format!("bulk issue from {}", a.manifest.display()))?;

    if ctx.json {
        super::output::json(&serde_json::json!({
            "manifest": a.manifest,
            "state": state_path,
            "rows": summary.rows,
            "committed": summary.issued.len(),
            "failed": summary.failed.len(),
            "skipped": summary.skipped,
            "unconfirmed": summary.unconfirmed.len(),
            "not_attempted": summary.not_attempted,
            "stopped": summary.stopped,
            "issued": summary.issued,
            "failures": summary.failed,
            "pending": summary.unconfirmed,
        }));
    } else {
        print_summary(&summary, &state_path);
    }
    Ok(if summary.complete() {
        Exit::Ok
    } else {
        Exit::Incomplete
    })
}

fn print_summary(s: &BulkSummary, state_path: &Path) {
    let mut line = format!(
        "committed {}, failed {}, skipped {} (done before)",
        s.issued.len(),
        s.failed.len(),
        s.skipped
    );
    if !s.unconfirmed.is_empty() {
        line.push_str(&format!(", unconfirmed {}", s.unconfirmed.len()));
    }
    if s.not_attempted > 0 {
        line.push_str(&format!(", not attempted {}", s.not_attempted));
    }
    println!("{line} — of {} rows", s.rows);
    if !s.failed.is_empty() {
        println!("failed rows:");
        for f in &s.failed {
            println!("  row {:<5} {:<36} {}", f.row, f.code, f.reason);
        }
    }
    if !s.unconfirmed.is_empty() {
        println!("sent, not yet known to be committed:");
        for u in &s.unconfirmed {
            println!("  row {:<5} transaction {}", u.row, u.tx_id);
        }
    }
    if let Some(why) = &s.stopped {
        println!("stopped early: {why}");
    }
    println!("state: {}", state_path.display());
    if !s.complete() {
        println!(
            "rerun the same command to retry: committed rows are skipped, sent transactions are checked again, not resent as new ones"
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn state_file_sits_beside_the_manifest() {
        assert_eq!(
            default_state_path(Path::new("migr/licences.csv")),
            PathBuf::from("migr/licences.state.json")
        );
        assert_eq!(
            default_state_path(Path::new("licences")),
            PathBuf::from("licences.state.json")
        );
    }
}
