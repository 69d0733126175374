//! Enterprise commands: upload, grant, withdraw, list grants, list access receipts.

use std::path::Path;

use anyhow::{bail, Context, Result};
use serde_json::json;
use vault_client::compose::{attestations_scope, document_types_scope, DAY_MS};
use vault_client::{file_digest, GrantEntry};
use vault_protocol::access::Requester;
use vault_protocol::crypto::PublicKey;
use vault_protocol::ids::{AttestationId, DepartmentId, DocTypeCode, GrantId, Timestamp};
use vault_protocol::tx::{Grant, GrantWithdrawal, Grantee, Purpose, TxBody};
use vault_protocol::uscc::Uscc;

use super::department::upload_file;
use super::output::{self, grantee, scope, size, table, when};
use super::{read_key, submit, Ctx, Exit};

/// Stores a file in the node's vault, as an enterprise (or a department).
pub fn upload(
    ctx: &Ctx,
    file: &Path,
    key: &Path,
    requester: Requester,
    media_type: Option<&str>,
) -> Result<Exit> {
    let k = read_key(key)?;
    let (digest, len) = file_digest(file).with_context(|| format!("reading {}", file.display()))?;
    let u = upload_file(ctx, &k, requester, file, digest, len, media_type)?;
    if ctx.json {
        output::json(&u);
    } else {
        println!(
            "stored {} in the vault of {}: {}, SHA-256 {}{}{}",
            file.display(),
            ctx.node.base(),
            size(u.size),
            u.digest,
            u.media_type
                .as_deref()
                .map(|m| format!(", {m}"))
                .unwrap_or_default(),
            if u.already_held {
                " (it held the file already)"
            } else {
                ""
            }
        );
    }
    Ok(Exit::Ok)
}

/// The arguments of `vault grant`.
pub struct GrantArgs<'a> {
    /// The enterprise's key file.
    pub key: &'a Path,
    /// The enterprise.
    pub uscc: Uscc,
    /// A department grantee.
    pub to_department: Option<DepartmentId>,
    /// An application grantee.
    pub to_application: Option<PublicKey>,
    /// Scope: document types.
    pub types: Vec<DocTypeCode>,
    /// Scope: attestations.
    pub attestations: Vec<AttestationId>,
    /// The procedure's code.
    pub purpose_code: &'a str,
    /// The procedure's name.
    pub purpose: &'a str,
    /// Days until it lapses.
    pub days: u64,
}

/// Grants a department or an application access to documents, for a purpose, for some days.
pub fn grant(ctx: &Ctx, a: GrantArgs<'_>) -> Result<Exit> {
    let k = read_key(a.key)?;
    let grantee = match (a.to_department, a.to_application) {
        (Some(d), None) => Grantee::Department(d),
        (None, Some(app)) => Grantee::Application(app),
        _ => bail!("give one grantee: --to-department or --to-application"),
    };
    let scope = if a.attestations.is_empty() {
        document_types_scope(&a.types)?
    } else {
        attestations_scope(&a.attestations)?
    };
    if a.days == 0 {
        bail!("--days must be at least 1");
    }
    let purpose = Purpose {
        code: a
            .purpose_code
            .try_into()
            .map_err(|_| anyhow::anyhow!("--purpose-code is longer than 64 bytes"))?,
        text: a
            .purpose
            .try_into()
            .map_err(|_| anyhow::anyhow!("--purpose is longer than 256 bytes"))?,
    };
    let mut expires_at = Timestamp(0);
    let tx = ctx.transaction_with(|now| {
        expires_at = now.plus(a.days.saturating_mul(DAY_MS));
        TxBody::Grant(Grant {
            enterprise: a.uscc,
            grantee: grantee.clone(),
            scope: scope.clone(),
            purpose: purpose.clone(),
            expires_at,
        })
    })?;
    let s = submit(ctx, tx, &k)?;
    if ctx.json {
        let mut v = s.json();
        v["grant"] = json!(s.id);
        v["expires_at"] = json!(expires_at);
        output::json(&v);
    } else {
        println!("granted: grant {} ({})", s.id, s.describe());
        println!("  to       {grantee}");
        println!("  scope    {}", output::scope(&scope));
        println!("  purpose  {} {}", purpose.code, purpose.text);
        println!("  until    {}", when(expires_at));
    }
    Ok(Exit::Ok)
}

/// Withdraws a grant.
pub fn withdraw(ctx: &Ctx, grant: GrantId, key: &Path, uscc: Uscc) -> Result<Exit> {
    let k = read_key(key)?;
    let tx = ctx.transaction(TxBody::WithdrawGrant(GrantWithdrawal {
        enterprise: uscc,
        grant,
    }))?;
    let s = submit(ctx, tx, &k)?;
    if ctx.json {
        let mut v = s.json();
        v["grant"] = json!(grant);
        output::json(&v);
    } else {
        println!("withdrew grant {grant}: {}", s.describe());
    }
    Ok(Exit::Ok)
}

/// Lists grants: an enterprise's, a department's, or one.
pub fn grants(
    ctx: &Ctx,
    uscc: Option<Uscc>,
    department: Option<DepartmentId>,
    id: Option<GrantId>,
) -> Result<Exit> {
    let list: Vec<GrantEntry> = match (uscc, department, id) {
        (Some(u), _, _) => ctx.node.grants_of_enterprise(&u)?,
        (_, Some(d), _) => ctx.node.grants_to_department(&d)?,
        (_, _, Some(g)) => vec![ctx.node.grant(&g)?],
        _ => bail!("give --uscc, --department or --id"),
    };
    if ctx.json {
        output::json(&list);
        return Ok(Exit::Ok);
    }
    if list.is_empty() {
        println!("no grants");
        return Ok(Exit::Ok);
    }
    let rows: Vec<Vec<String>> = list
        .iter()
        .map(|g| {
            let r = &g.grant.grant;
            vec![
                g.id.to_string(),
                r.enterprise.to_string(),
                grantee(&r.grantee),
                scope(&r.scope),
                format!("{} {}", r.purpose.code, r.purpose.text),
                when(r.expires_at),
                g.state.clone(),
            ]
        })
        .collect();
    table(
        &[
            "GRANT",
            "ENTERPRISE",
            "GRANTEE",
            "SCOPE",
            "PURPOSE",
            "EXPIRES",
            "STATE",
        ],
        &rows,
    );
    Ok(Exit::Ok)
}

/// Lists an enterprise's access receipts: who read which document, when, for what.
pub fn receipts(ctx: &Ctx, uscc: Uscc) -> Result<Exit> {
    let list = ctx.node.receipts(&uscc)?;
    if ctx.json {
        output::json(&list);
        return Ok(Exit::Ok);
    }
    if list.is_empty() {
        println!("no reads of {uscc}'s documents recorded");
        return Ok(Exit::Ok);
    }
    let rows: Vec<Vec<String>> = list
        .iter()
        .map(|r| {
            vec![
                when(r.read.read_at),
                grantee(&r.read.reader),
                r.doc_type.to_string(),
                r.read.attestation.to_string(),
                format!("{} {}", r.purpose_code, r.purpose_text),
                r.recorder.to_string(),
            ]
        })
        .collect();
    table(
        &[
            "WHEN",
            "READER",
            "DOCUMENT TYPE",
            "ATTESTATION",
            "PURPOSE",
            "RECORDED BY",
        ],
        &rows,
    );
    Ok(Exit::Ok)
}
