//! Verifier commands: verify a file or a digest, show an attestation.

use std::path::Path;

use anyhow::{bail, Result};
use serde_json::Value;
use vault_client::{AttestationView, VerifyResult};
use vault_protocol::crypto::Digest;
use vault_protocol::ids::AttestationId;

use super::output::{self, print_verdict};
use super::{Ctx, Exit};

/// Verifies a file (sent to the node, which hashes it) or a digest against the ledger.
pub fn verify(
    ctx: &Ctx,
    file: Option<&Path>,
    digest: Option<Digest>,
    attestation: Option<AttestationId>,
) -> Result<Exit> {
    let result: VerifyResult = match (file, digest) {
        (Some(f), None) => ctx.node.verify_file(f, attestation.as_ref())?,
        (None, Some(d)) => ctx.node.verify_digest(&d, attestation.as_ref())?,
        _ => bail!("give a FILE or --digest"),
    };
    if ctx.json {
        output::json(&result);
        return Ok(Exit::valid(result.valid));
    }
    match file {
        Some(f) => println!("file {} — SHA-256 {}", f.display(), result.digest),
        None => println!("SHA-256 {}", result.digest),
    }
    if result.verdicts.is_empty() {
        println!(
            "NOT VALID: no attestation on the ledger for this SHA-256 [{}]",
            result.reason.as_deref().unwrap_or("unknown_digest")
        );
        return Ok(Exit::NotValid);
    }
    for v in &result.verdicts {
        print_verdict(&v.verdict);
    }
    let valid = result.verdicts.iter().filter(|v| v.verdict.valid).count();
    println!(
        "{}: {valid} of {} attestations valid",
        if result.valid { "VALID" } else { "NOT VALID" },
        result.verdicts.len()
    );
    Ok(Exit::valid(result.valid))
}

/// Shows an attestation with its status history and the verdict now.
pub fn show(ctx: &Ctx, id: AttestationId) -> Result<Exit> {
    let raw: Value = ctx.node.attestation(&id.to_string())?;
    let view: AttestationView = serde_json::from_value(raw.clone())
        .map_err(|e| anyhow::anyhow!("unexpected answer from the node: {e}"))?;
    if ctx.json {
        println!("{raw}");
    } else {
        print_verdict(&view.verdict);
    }
    Ok(Exit::valid(view.verdict.valid))
}

/// The node's view of the chain.
pub fn status(ctx: &Ctx) -> Result<Exit> {
    let s = ctx.node.status()?;
    if ctx.json {
        println!("{s}");
    } else {
        println!(
            "department {}  chain {}\nheight {}  head {}\nlog size {}  root {}\npeers {}  synced {}  pending {}",
            s["department"].as_str().unwrap_or(""),
            s["chain_id"].as_str().unwrap_or(""),
            s["height"],
            s["head"].as_str().unwrap_or(""),
            s["log_size"],
            s["log_root"].as_str().unwrap_or(""),
            s["peers"],
            s["synced"],
            s["pool"]["pending"],
        );
    }
    Ok(Exit::Ok)
}
