//! Department commands: enrol an enterprise, issue (with the file), suspend, reinstate, revoke,
//! fetch a granted document.

use std::fs;
use std::path::{Path, PathBuf};

use anyhow::{bail, Context, Result};
use serde_json::json;
use vault_client::compose::{sorted_claims, DAY_MS};
use vault_client::{file_digest, guess_media_type, read_request, upload_request, UploadReceipt};
use vault_protocol::access::Requester;
use vault_protocol::crypto::{Digest, KeyPair, PublicKey};
use vault_protocol::ids::{AttestationId, DepartmentId, DocTypeCode, Timestamp};
use vault_protocol::tx::{Attestation, Claim, Enrolment, StatusAction, StatusChange, TxBody};
use vault_protocol::uscc::Uscc;

use super::output::{self, size, transfer_bar, when};
use super::{read_key, submit, Ctx, Exit};

/// Enrols an enterprise: binds its USCC to its public key.
pub fn enrol(
    ctx: &Ctx,
    key: &Path,
    department: DepartmentId,
    uscc: Uscc,
    enterprise_key: PublicKey,
) -> Result<Exit> {
    let k = read_key(key)?;
    let tx = ctx.transaction(TxBody::EnrolEnterprise(Enrolment {
        department,
        enterprise: uscc,
        key: enterprise_key,
    }))?;
    let s = submit(ctx, tx, &k)?;
    if ctx.json {
        let mut v = s.json();
        v["uscc"] = json!(uscc);
        output::json(&v);
    } else {
        println!(
            "enrolled {uscc} with key {enterprise_key}: {}",
            s.describe()
        );
    }
    Ok(Exit::Ok)
}

/// Uploads a file to the node's vault as `requester`, with a progress bar for large files;
/// skipped if the node holds the file already.
pub fn upload_file(
    ctx: &Ctx,
    key: &KeyPair,
    requester: Requester,
    file: &Path,
    digest: Digest,
    len: u64,
    media_type: Option<&str>,
) -> Result<UploadReceipt> {
    let chain_id = ctx.chain_id()?;
    let request = upload_request(&chain_id, requester, digest, len, key);
    let media_type = media_type.or_else(|| guess_media_type(file));
    let bar = transfer_bar(len, "uploading", ctx.json);
    let progress = {
        let bar = bar.clone();
        move |n| bar.set_position(n)
    };
    let result = ctx
        .node
        .upload(&request, file, media_type, progress)
        .with_context(|| format!("uploading {}", file.display()));
    bar.finish_and_clear();
    result
}

/// The arguments of `vault issue`.
#[derive(clap::Args)]
pub struct IssueArgs {
    /// The department's signing key file.
    #[arg(long)]
    pub key: PathBuf,
    /// The department id.
    #[arg(long)]
    pub department: DepartmentId,
    /// The enterprise's USCC.
    #[arg(long)]
    pub uscc: Uscc,
    /// The document type code, e.g. BUSINESS_LICENCE.
    #[arg(long = "type")]
    pub doc_type: DocTypeCode,
    /// The document file.
    #[arg(long)]
    pub file: PathBuf,
    /// Start of validity: YYYY-MM-DD (UTC) or an RFC 3339 time; default now.
    #[arg(long, value_parser = crate::parse_date_arg)]
    pub valid_from: Option<Timestamp>,
    /// Validity in days from the start (omit for documents that do not expire).
    #[arg(long)]
    pub valid_days: Option<u64>,
    /// A key claim as key=value (repeatable).
    #[arg(long = "claim", value_parser = crate::parse_claim_arg)]
    pub claims: Vec<Claim>,
    /// The attestation this one replaces (a new version of the same document).
    #[arg(long)]
    pub supersedes: Option<AttestationId>,
    /// Do not upload the file (it is already in the vault, or kept elsewhere).
    #[arg(long)]
    pub no_upload: bool,
}

/// Issues an attestation for a file: uploads the file to the node's vault, then signs and
/// submits the attestation.
pub fn issue(ctx: &Ctx, a: IssueArgs) -> Result<Exit> {
    let k = read_key(&a.key)?;
    let (digest, len) =
        file_digest(&a.file).with_context(|| format!("reading {}", a.file.display()))?;
    let upload = if a.no_upload {
        None
    } else {
        // A file the node holds already need not travel again.
        let held = ctx.node.document_meta(&digest).ok().flatten();
        let u = match held {
            Some(meta) => UploadReceipt {
                digest: meta.digest,
                size: meta.size,
                media_type: meta.media_type,
                already_held: true,
            },
            None => upload_file(
                ctx,
                &k,
                Requester::Department(a.department.clone()),
                &a.file,
                digest,
                len,
                None,
            )?,
        };
        if !ctx.json {
            let what = if u.already_held {
                "is in the node's vault already"
            } else {
                "uploaded to the node's vault"
            };
            println!(
                "{} {what}: {}, SHA-256 {}",
                a.file.display(),
                size(u.size),
                u.digest
            );
        }
        Some(u)
    };
    let claims = sorted_claims(a.claims)?;
    let tx = ctx.transaction_with(|now| {
        let valid_from = a.valid_from.unwrap_or(now);
        TxBody::IssueAttestation(Attestation {
            issuer: a.department.clone(),
            subject: a.uscc,
            doc_type: a.doc_type.clone(),
            file_digest: digest,
            claims,
            valid_from,
            valid_until: a
                .valid_days
                .map(|d| valid_from.plus(d.saturating_mul(DAY_MS))),
            supersedes: a.supersedes,
        })
    })?;
    let s = submit(ctx, tx, &k)?;
    if ctx.json {
        let mut v = s.json();
        v["attestation"] = json!(s.id);
        v["file_digest"] = json!(digest);
        v["upload"] = json!(upload);
        output::json(&v);
    } else {
        println!(
            "issued attestation {} ({} for {}): {}",
            s.id,
            a.doc_type,
            a.uscc,
            s.describe()
        );
    }
    Ok(Exit::Ok)
}

/// Suspends, reinstates or revokes an attestation.
pub fn set_status(
    ctx: &Ctx,
    action: StatusAction,
    attestation: AttestationId,
    key: &Path,
    department: DepartmentId,
    reason_code: u16,
    note: &str,
) -> Result<Exit> {
    let k = read_key(key)?;
    let note = note
        .try_into()
        .map_err(|_| anyhow::anyhow!("--note is longer than 256 bytes"))?;
    let tx = ctx.transaction(TxBody::SetStatus(StatusChange {
        department,
        attestation,
        action,
        reason_code,
        note,
    }))?;
    let s = submit(ctx, tx, &k)?;
    let done = match action {
        StatusAction::Suspend => "suspended",
        StatusAction::Reinstate => "reinstated",
        StatusAction::Revoke => "revoked",
    };
    if ctx.json {
        let mut v = s.json();
        v["attestation"] = json!(attestation);
        v["action"] = json!(action);
        output::json(&v);
    } else {
        println!("{done} attestation {attestation}: {}", s.describe());
    }
    Ok(Exit::Ok)
}

/// Fetches a granted document into a file, checking it against the ledger.
pub fn fetch(
    ctx: &Ctx,
    attestation: AttestationId,
    key: &Path,
    department: Option<DepartmentId>,
    purpose: &str,
    out: &Path,
) -> Result<Exit> {
    let k = read_key(key)?;
    let requester = match department {
        Some(d) => Requester::Department(d),
        None => Requester::Application(k.public()),
    };
    let signed = read_request(
        &ctx.chain_id()?,
        requester.clone(),
        attestation,
        purpose,
        &k,
    )?;
    // Received into a temporary file beside the destination, which appears only once the
    // document is checked.
    let mut part_name = out.as_os_str().to_owned();
    part_name.push(".part");
    let part = PathBuf::from(part_name);
    let mut f = fs::File::create(&part).with_context(|| format!("creating {}", part.display()))?;
    let fetched = ctx.node.fetch_document(&signed, &attestation, &mut f);
    drop(f);
    let fetched = match fetched {
        Ok(d) => d,
        Err(e) => {
            let _ = fs::remove_file(&part);
            return Err(e).context(format!("fetching the document of {attestation}"));
        }
    };
    if let Err(e) = fs::rename(&part, out) {
        let _ = fs::remove_file(&part);
        bail!("writing {}: {e}", out.display());
    }
    if ctx.json {
        output::json(&json!({
            "attestation": attestation,
            "out": out,
            "requester": requester,
            "digest": fetched.digest,
            "digest_verified": true,
            "size": fetched.size,
            "media_type": fetched.media_type,
            "grant": fetched.grant,
            "source": fetched.source,
            "verdict": fetched.verdict,
        }));
    } else {
        println!(
            "fetched {}: {}{}",
            out.display(),
            size(fetched.size),
            fetched
                .media_type
                .as_deref()
                .map(|m| format!(", {m}"))
                .unwrap_or_default()
        );
        println!("  read as   {requester}, for purpose {purpose}");
        println!("  grant     {}", fetched.grant);
        println!(
            "  from      the vault of department {} (through {})",
            fetched.source,
            ctx.node.base()
        );
        println!(
            "  SHA-256   {} — matches the attestation on the ledger",
            fetched.digest
        );
        println!("  receipt   the node records this read on the ledger for the enterprise");
        output::print_verdict(&fetched.verdict);
        if !fetched.verdict.valid {
            println!(
                "note: the document was fetched, but the attestation is NOT VALID now (checked {})",
                when(fetched.verdict.checked_at)
            );
        }
    }
    Ok(Exit::valid(fetched.verdict.valid))
}
