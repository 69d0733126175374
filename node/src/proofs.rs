//! Proofs for verifiers who trust no node: proof bundles of attestations, consistency proofs
//! between log sizes, and a server-sent-event stream of status changes.
//!
//! - `GET /v1/attestations/{id}/bundle` — the attestation's [`ProofBundle`] at the head: JSON, or
//!   the canonical binary form with `Accept: application/octet-stream` (or `?format=binary`).
//! - `GET /v1/governance/proof` — the governance state with its proof at the head, so an offline
//!   verifier knows departments admitted and keys rotated since the genesis.
//! - `GET /v1/log/consistency?from=A&to=B` — the RFC 9162 consistency proof between log sizes.
//! - `GET /v1/events/status?attestations=ID,ID…` — one `status` event per change of a watched
//!   attestation's status leaf (suspension, reinstatement, revocation, supersession), each naming
//!   the block it is proven in.

use std::collections::BTreeMap;
use std::convert::Infallible;
use std::sync::Arc;

use axum::extract::{Path, Query, State};
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::sse::{Event, KeepAlive, Sse};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use futures::Stream;
use serde::Deserialize;
use serde_json::json;
use vault_protocol::bundle::{self, AssembleError, ProofBundle};
use vault_protocol::encoding::Canonical;
use vault_protocol::ids::AttestationId;
use vault_protocol::merkle::ConsistencyProof;
use vault_protocol::state::{self, ChainHead, StateView};
use vault_protocol::status::StatusLeaf;

use crate::api::{parse_digest, ApiError};
use crate::context::NodeContext;
use crate::store::Snapshot;

/// Most attestations one event stream watches.
pub const MAX_WATCHED: usize = 1000;

/// The proof routes.
pub fn router(ctx: Arc<NodeContext>) -> Router {
    Router::new()
        .route("/v1/attestations/{id}/bundle", get(get_bundle))
        .route("/v1/governance/proof", get(get_governance_proof))
        .route("/v1/log/consistency", get(consistency))
        .route("/v1/events/status", get(status_events))
        .with_state(ctx)
}

/// The head's header and its own finalization certificate.
fn certified_head(
    ctx: &NodeContext,
    head: &ChainHead,
) -> Result<(vault_protocol::block::BlockHeader, Vec<u8>), ApiError> {
    let store = &ctx.store;
    let header = store.header(head.height)?.ok_or_else(|| {
        ApiError::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "no_block_yet",
            "the chain has no block after the genesis yet",
        )
        .retry_after(1)
    })?;
    let certificate = store.certificate(head.height)?.ok_or_else(|| {
        ApiError::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "head_not_certified",
            format!(
                "block {} was finalized through a later block's certificate, which this node \
                 has not committed yet; retry in a moment",
                head.height
            ),
        )
        .retry_after(1)
    })?;
    Ok((header, quorum_only(certificate)))
}

/// The certificate with only a quorum of its signatures (the first ones, in validator order):
/// still a proof of finality, 64 bytes lighter per signature dropped. A certificate this node
/// cannot read is served as stored.
fn quorum_only(certificate: Vec<u8>) -> Vec<u8> {
    use vault_protocol::certificate::{quorum, Finalization};
    match Finalization::parse(&certificate) {
        Ok(mut f) if f.signers.len() > quorum(f.validators) => {
            let q = quorum(f.validators);
            f.signers.truncate(q);
            f.signatures.truncate(q);
            f.encode()
        }
        _ => certificate,
    }
}

fn assemble_error(e: AssembleError) -> ApiError {
    match e {
        AssembleError::UnknownAttestation { .. } => ApiError::not_found(e.to_string()),
        AssembleError::Store(s) => s.into(),
        other => ApiError::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            "bundle_failed",
            other.to_string(),
        ),
    }
}

/// Answers with the canonical binary form if asked (`?format=binary` or `Accept:
/// application/octet-stream`), JSON otherwise.
fn binary_or_json<T: Canonical + serde::Serialize>(
    value: &T,
    format: Option<&str>,
    headers: &HeaderMap,
) -> Result<Response, ApiError> {
    let binary = match format {
        Some("binary") => true,
        Some("json") => false,
        Some(other) => {
            return Err(ApiError::bad_request(
                "invalid_format",
                format!("format must be json or binary, not {other:?}"),
            ))
        }
        None => headers
            .get(header::ACCEPT)
            .and_then(|v| v.to_str().ok())
            .is_some_and(|a| a.contains("application/octet-stream")),
    };
    if binary {
        let mut resp = value.encode().into_response();
        resp.headers_mut().insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/octet-stream"),
        );
        Ok(resp)
    } else {
        Ok(Json(value).into_response())
    }
}

/// The bundle of attestation `id` at the snapshot's head.
pub fn bundle_at(
    ctx: &NodeContext,
    view: &Snapshot<'_>,
    head: &ChainHead,
    id: &AttestationId,
) -> Result<ProofBundle, ApiError> {
    let store = &ctx.store;
    let record = state::attestation(view, id)?
        .ok_or_else(|| ApiError::not_found(format!("no attestation {id}")))?;
    let tx = store.transaction_at(&record.location)?;
    let (header, certificate) = certified_head(ctx, head)?;
    let inclusion = store.inclusion_proof(record.location.log_index, head.log_size)?;
    bundle::assemble(view, id, tx, inclusion, header, certificate).map_err(assemble_error)
}

#[derive(Deserialize)]
struct BundleQuery {
    format: Option<String>,
}

async fn get_bundle(
    State(ctx): State<Arc<NodeContext>>,
    Path(id): Path<String>,
    Query(q): Query<BundleQuery>,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    let id: AttestationId = parse_digest(&id, "attestation id")?;
    let view = ctx.store.snapshot();
    let head = state::head(&view)?;
    let bundle = bundle_at(&ctx, &view, &head, &id)?;
    binary_or_json(&bundle, q.format.as_deref(), &headers)
}

async fn get_governance_proof(
    State(ctx): State<Arc<NodeContext>>,
    Query(q): Query<BundleQuery>,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    let view = ctx.store.snapshot();
    let head = state::head(&view)?;
    let (header, certificate) = certified_head(&ctx, &head)?;
    let proof = bundle::assemble_governance(&view, header, certificate).map_err(assemble_error)?;
    binary_or_json(&proof, q.format.as_deref(), &headers)
}

#[derive(Deserialize)]
struct ConsistencyQuery {
    from: u64,
    to: Option<u64>,
}

async fn consistency(
    State(ctx): State<Arc<NodeContext>>,
    Query(q): Query<ConsistencyQuery>,
) -> Result<Json<ConsistencyProof>, ApiError> {
    let head = ctx.store.head()?;
    let to = q.to.unwrap_or(head.log_size);
    if q.from == 0 || q.from > to || to > head.log_size {
        return Err(ApiError::bad_request(
            "invalid_range",
            format!(
                "need 0 < from ≤ to ≤ {} (this node's log size); got from={} to={to}",
                head.log_size, q.from
            ),
        ));
    }
    Ok(Json(ctx.store.consistency_proof(q.from, to)?))
}

#[derive(Deserialize)]
struct EventsQuery {
    attestations: String,
}

/// What a watcher last saw of one attestation.
type Seen = BTreeMap<AttestationId, Option<StatusLeaf>>;

fn leaves(view: &impl StateView, ids: &[AttestationId]) -> Result<Seen, ApiError> {
    ids.iter()
        .map(|id| {
            let leaf = state::attestation(view, id)?.map(|r| StatusLeaf::of(&r));
            Ok((*id, leaf))
        })
        .collect()
}

fn status_event(id: &AttestationId, leaf: &Option<StatusLeaf>, head: &ChainHead) -> Event {
    let data = json!({
        "attestation": id,
        "status": leaf.as_ref().map(|l| l.status),
        "last_change": leaf.as_ref().and_then(|l| l.last_change.clone()),
        "superseded": leaf.as_ref().and_then(|l| l.superseded.clone()),
        "height": head.height,
        "block_hash": head.hash,
        "block_time": head.time,
        "status_root": head.status_root,
    });
    Event::default()
        .event("status")
        .id(format!("{}:{id}", head.height))
        .data(data.to_string())
}

async fn status_events(
    State(ctx): State<Arc<NodeContext>>,
    Query(q): Query<EventsQuery>,
) -> Result<Sse<impl Stream<Item = Result<Event, Infallible>>>, ApiError> {
    let ids = q
        .attestations
        .split(',')
        .filter(|s| !s.trim().is_empty())
        .map(|s| parse_digest::<AttestationId>(s.trim(), "attestation id"))
        .collect::<Result<Vec<_>, _>>()?;
    if ids.is_empty() || ids.len() > MAX_WATCHED {
        return Err(ApiError::bad_request(
            "invalid_watch_list",
            format!("watch 1 to {MAX_WATCHED} attestations, comma-separated"),
        ));
    }
    // The first event of each attestation is its status now; later ones are its changes.
    let mut heads = ctx.head.clone();
    let head = heads.borrow_and_update().clone();
    let mut seen = leaves(&ctx.store.snapshot(), &ids)?;
    let (tx, rx) = tokio::sync::mpsc::channel::<Event>(64);
    let initial: Vec<Event> = seen
        .iter()
        .map(|(id, leaf)| status_event(id, leaf, &head))
        .collect();
    tokio::spawn(async move {
        for e in initial {
            if tx.send(e).await.is_err() {
                return;
            }
        }
        while heads.changed().await.is_ok() {
            // A subscriber that went away is noticed at the next block, changes or not.
            if tx.is_closed() {
                return;
            }
            let head = heads.borrow_and_update().clone();
            let Ok(now) = leaves(&ctx.store.snapshot(), &ids) else {
                continue;
            };
            for (id, leaf) in now {
                if seen.get(&id) != Some(&leaf) {
                    if tx.send(status_event(&id, &leaf, &head)).await.is_err() {
                        return;
                    }
                    seen.insert(id, leaf);
                }
            }
        }
    });
    let stream =
        futures::stream::unfold(
            rx,
            |mut rx| async move { rx.recv().await.map(|e| (Ok(e), rx)) },
        );
    Ok(Sse::new(stream).keep_alive(KeepAlive::default()))
}
