//! Verifier commands: verify a file or a digest (online, or offline from a proof bundle), fetch
//! a proof bundle, show an attestation.

use std::io::{IsTerminal, Write};
use std::path::Path;

use anyhow::{bail, Context, Result};
use serde_json::{json, Value};
use vault_client::offline::{self, OfflineError};
use vault_client::{AttestationView, VerifyResult};
use vault_protocol::bundle::BundleVerdict;
use vault_protocol::crypto::Digest;
use vault_protocol::encoding::Canonical;
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

/// What `verify --offline` is given.
pub struct OfflineArgs<'a> {
    /// The genesis file.
    pub genesis: &'a Path,
    /// The bundle file (binary or JSON).
    pub bundle: &'a Path,
    /// The file presented, if any.
    pub file: Option<&'a Path>,
    /// Its SHA-256, instead of the file.
    pub digest: Option<Digest>,
    /// The oldest block accepted, in seconds.
    pub max_age_s: Option<u64>,
    /// A governance proof file, if any.
    pub governance: Option<&'a Path>,
}

/// Verifies a proof bundle against the genesis file, with no network: the verdict, and the
/// block it rests on. Unusable inputs (an unreadable file, a bad genesis) are errors; a bundle
/// that proves nothing is NOT VALID.
pub fn verify_offline(ctx: &Ctx, a: OfflineArgs<'_>) -> Result<Exit> {
    let genesis = offline::read_genesis(a.genesis)?;
    let digest = match (a.file, a.digest) {
        (Some(f), _) => Some(
            vault_client::file_digest(f)
                .with_context(|| f.display().to_string())?
                .0,
        ),
        (None, d) => d,
    };
    let max_age_ms = a.max_age_s.map(|s| s.saturating_mul(1000));
    let now = vault_client::requests::now();
    let governance = a
        .governance
        .map(offline::read_governance_proof)
        .transpose()?;
    let anchor = match offline::anchor(&genesis, governance.as_ref()) {
        Ok(anchor) => anchor,
        Err(e) if e.rejects_bundle() => {
            let path = a.governance.unwrap_or(a.bundle);
            return Ok(not_valid(ctx, path, &e));
        }
        Err(e) => return Err(e.into()),
    };
    let outcome = offline::read_bundle(a.bundle).and_then(|bundle| {
        Ok(vault_protocol::bundle::verify_bundle(
            &anchor,
            &bundle,
            digest.as_ref(),
            now,
            max_age_ms,
        )?)
    });
    let verdict = match outcome {
        Ok(v) => v,
        Err(e) if e.rejects_bundle() => return Ok(not_valid(ctx, a.bundle, &e)),
        Err(e) => return Err(e.into()),
    };
    let valid = verdict.verdict.valid;
    if ctx.json {
        let mut out = serde_json::to_value(&verdict)?;
        out["valid"] = json!(valid);
        output::json(&out);
        return Ok(Exit::valid(valid));
    }
    match (a.file, digest) {
        (Some(f), Some(d)) => println!("file {} — SHA-256 {d}", f.display()),
        (None, Some(d)) => println!("SHA-256 {d}"),
        _ => println!("no file given: the file digest is not checked"),
    }
    print_verdict(&verdict.verdict);
    let validators = genesis.governance().validator_keys().len();
    println!("  {}", rests_on(&verdict, validators));
    println!(
        "{} (offline, from {})",
        if valid { "VALID" } else { "NOT VALID" },
        a.bundle.display()
    );
    Ok(Exit::valid(valid))
}

/// `rests on block 12 (hash 3f2a…) of 2026-01-01 00:00:12 UTC, 5 min 3 s old; certified by
/// hrss, samr, tax (3 of 4 validators)`.
fn rests_on(v: &BundleVerdict, validators: usize) -> String {
    let b = &v.block;
    let hash = b.hash.to_string();
    let certified: Vec<&str> = b.certified_by.iter().map(|d| d.as_str()).collect();
    format!(
        "rests on block {} (hash {}…) of {}, {} old; certified by {} ({} of {validators} \
         validators)",
        b.height,
        &hash[..16.min(hash.len())],
        output::when(b.time),
        output::age(b.age_ms),
        certified.join(", "),
        certified.len(),
    )
}

/// Reports a bundle that proves nothing: `NOT VALID: <code>: <message>`.
fn not_valid(ctx: &Ctx, bundle: &Path, e: &OfflineError) -> Exit {
    if ctx.json {
        output::json(&json!({
            "valid": false,
            "error": {"code": e.code(), "message": e.to_string()},
        }));
    } else {
        println!("bundle {}", bundle.display());
        println!("NOT VALID: {}: {e}", e.code());
    }
    Exit::NotValid
}

/// Fetches an attestation's proof bundle and writes it (binary, or JSON with `--json`) to `out`
/// or standard output; its size goes to standard error.
pub fn bundle(ctx: &Ctx, id: AttestationId, out: Option<&Path>) -> Result<Exit> {
    let bundle = ctx
        .node
        .bundle(&id)
        .with_context(|| format!("fetching the bundle of {id}"))?;
    let what = format!(
        "bundle of attestation {id} at block {}",
        bundle.header.height
    );
    write_proof(ctx, &bundle, out, &what)
}

/// Fetches the governance state with its proof and writes it (binary, or JSON with --json).
pub fn governance_proof(ctx: &Ctx, out: Option<&Path>) -> Result<Exit> {
    let proof = ctx
        .node
        .governance_proof()
        .context("fetching the governance proof")?;
    let what = format!(
        "governance proof ({} departments) at block {}",
        proof.governance.departments.len(),
        proof.header.height
    );
    write_proof(ctx, &proof, out, &what)
}

/// Writes a proof to `out` or standard output and says its size on standard error.
fn write_proof<T: Canonical + serde::Serialize>(
    ctx: &Ctx,
    proof: &T,
    out: Option<&Path>,
    what: &str,
) -> Result<Exit> {
    let bytes = if ctx.json {
        let mut b = serde_json::to_vec_pretty(proof)?;
        b.push(b'\n');
        b
    } else {
        proof.encode()
    };
    match out {
        Some(path) => {
            std::fs::write(path, &bytes).with_context(|| format!("writing {}", path.display()))?
        }
        None => {
            let mut stdout = std::io::stdout().lock();
            if !ctx.json && stdout.is_terminal() {
                bail!("the proof is binary: give -o FILE, redirect the output, or use --json");
            }
            stdout.write_all(&bytes)?;
            stdout.flush()?;
        }
    }
    eprintln!(
        "{} bytes: the {} {what}{}",
        bytes.len(),
        if ctx.json { "JSON" } else { "binary" },
        out.map(|p| format!(", written to {}", p.display()))
            .unwrap_or_default()
    );
    Ok(Exit::Ok)
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
