//! The HTTP API (axum). JSON in and out; digests, keys and signatures as lowercase hex; every
//! error as `{"error": {"code": "...", "message": "..."}}` with a stable machine-readable code.

use std::sync::Arc;
use std::time::Duration;

use axum::body::Bytes;
use axum::extract::{DefaultBodyLimit, Path, Query, State};
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};
use vault_protocol::block::BlockHeader;
use vault_protocol::crypto::{Digest, PublicKey};
use vault_protocol::encoding::{Canonical, DecodeError};
use vault_protocol::ids::{AttestationId, BlockHash, DepartmentId, TxId};
use vault_protocol::state::{self, AttestationRecord, TxError, TxLocation};
use vault_protocol::tx::SignedTransaction;
use vault_protocol::uscc::Uscc;
use vault_protocol::verify::{verify_attestation, Verdict};

use crate::context::{now, NodeContext};
use crate::pool::{AdmitError, TxOutcome};
use crate::store::StoreError;

/// Most transactions in one batch request.
pub const MAX_BATCH: usize = 10_000;
/// Longest a submitter may wait for a commit.
pub const MAX_WAIT: Duration = Duration::from_secs(60);

/// An API error: an HTTP status, a stable code and a human message.
#[derive(Debug)]
pub struct ApiError {
    status: StatusCode,
    code: &'static str,
    message: String,
    retry_after: Option<u64>,
}

impl ApiError {
    /// A new error.
    pub fn new(status: StatusCode, code: &'static str, message: impl Into<String>) -> Self {
        Self {
            status,
            code,
            message: message.into(),
            retry_after: None,
        }
    }

    /// 404.
    pub fn not_found(what: impl Into<String>) -> Self {
        Self::new(StatusCode::NOT_FOUND, "not_found", what)
    }

    /// 400.
    pub fn bad_request(code: &'static str, message: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, code, message)
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let body = json!({"error": {"code": self.code, "message": self.message}});
        let mut resp = (self.status, Json(body)).into_response();
        if let Some(secs) = self.retry_after {
            if let Ok(v) = HeaderValue::from_str(&secs.to_string()) {
                resp.headers_mut().insert(header::RETRY_AFTER, v);
            }
        }
        resp
    }
}

impl From<StoreError> for ApiError {
    fn from(e: StoreError) -> Self {
        tracing::error!(error = %e, "store error while serving a request");
        ApiError::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            "store_error",
            e.to_string(),
        )
    }
}

impl From<state::StoreError> for ApiError {
    fn from(e: state::StoreError) -> Self {
        tracing::error!(error = %e, "state error while serving a request");
        ApiError::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            "store_error",
            e.to_string(),
        )
    }
}

impl From<DecodeError> for ApiError {
    fn from(e: DecodeError) -> Self {
        ApiError::bad_request(e.code(), e.to_string())
    }
}

fn tx_error(e: &TxError) -> Value {
    json!({"code": e.code(), "message": e.to_string()})
}

impl From<AdmitError> for ApiError {
    fn from(e: AdmitError) -> Self {
        match &e {
            AdmitError::Full { .. } => {
                let mut err =
                    ApiError::new(StatusCode::SERVICE_UNAVAILABLE, "pool_full", e.to_string());
                err.retry_after = Some(1);
                err
            }
            AdmitError::Endorsement(x) => ApiError::bad_request(x.code(), e.to_string()),
            AdmitError::Rejected(x) => {
                ApiError::new(StatusCode::UNPROCESSABLE_ENTITY, x.code(), e.to_string())
            }
        }
    }
}

type ApiResult<T> = Result<T, ApiError>;

/// The API's router over the node's context.
pub fn router(ctx: Arc<NodeContext>, max_body_bytes: usize) -> Router {
    Router::new()
        .route("/v1/status", get(status))
        .route("/v1/governance", get(governance))
        .route("/v1/transactions", post(submit))
        .route("/v1/transactions/batch", post(submit_batch))
        .route("/v1/transactions/{id}", get(transaction))
        .route("/v1/blocks/{height}", get(block))
        .route("/v1/attestations", get(attestations_by_digest))
        .route("/v1/attestations/{id}", get(attestation))
        .route("/v1/enterprises/{uscc}", get(enterprise))
        .route(
            "/v1/enterprises/{uscc}/attestations",
            get(enterprise_attestations),
        )
        .fallback(|| async { ApiError::not_found("no such endpoint") })
        .layer(DefaultBodyLimit::max(max_body_bytes))
        .with_state(ctx)
}

#[derive(Serialize)]
struct Validator {
    department: DepartmentId,
    node_key: PublicKey,
}

async fn status(State(ctx): State<Arc<NodeContext>>) -> ApiResult<Json<Value>> {
    let head = ctx.head();
    let gov = ctx.governance()?;
    let validators: Vec<Validator> = gov
        .validator_keys()
        .into_iter()
        .map(|(department, node_key)| Validator {
            department,
            node_key,
        })
        .collect();
    Ok(Json(json!({
        "department": ctx.department,
        "chain_id": gov.chain_id,
        "genesis_hash": ctx.store.genesis_hash(),
        "height": head.height,
        "head": head.hash,
        "head_time": head.time,
        "log_size": head.log_size,
        "log_root": head.log_root,
        "state_root": head.state_root,
        "synced": ctx.is_synced(),
        "finalized_seen": ctx.finalized_seen.load(std::sync::atomic::Ordering::Relaxed),
        "peers": ctx.connected_peers(),
        "validators": validators,
        "pool": {"pending": ctx.pool.len(), "capacity": ctx.pool.capacity()},
        "http_url": ctx.http_url,
        "p2p_address": ctx.p2p_address,
    })))
}

async fn governance(State(ctx): State<Arc<NodeContext>>) -> ApiResult<Json<Value>> {
    Ok(Json(
        serde_json::to_value(ctx.governance()?).unwrap_or(Value::Null),
    ))
}

#[derive(Deserialize)]
struct SubmitQuery {
    /// Wait until the transaction is committed or rejected.
    #[serde(default)]
    wait: bool,
    /// How long to wait, in milliseconds (default 15 000, at most 60 000).
    timeout_ms: Option<u64>,
}

fn parse_signed(headers: &HeaderMap, body: &Bytes) -> ApiResult<SignedTransaction> {
    let binary = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|ct| ct.starts_with("application/octet-stream"));
    if binary {
        Ok(SignedTransaction::decode(body)?)
    } else {
        serde_json::from_slice(body).map_err(|e| {
            ApiError::bad_request("invalid_json", format!("not a signed transaction: {e}"))
        })
    }
}

fn outcome_json(id: TxId, outcome: Option<TxOutcome>) -> (StatusCode, Value) {
    match outcome {
        None => (
            StatusCode::ACCEPTED,
            json!({"tx_id": id, "status": "pending"}),
        ),
        Some(TxOutcome::Committed { height, index }) => (
            StatusCode::OK,
            json!({"tx_id": id, "status": "committed", "height": height, "index": index}),
        ),
        Some(TxOutcome::Rejected(e)) => (
            StatusCode::UNPROCESSABLE_ENTITY,
            json!({"tx_id": id, "status": "rejected", "error": tx_error(&e)}),
        ),
    }
}

async fn admit(ctx: &NodeContext, signed: SignedTransaction) -> Result<TxId, AdmitError> {
    let gov = ctx.governance().map_err(|e| {
        AdmitError::Rejected(TxError::InvalidField {
            field: "state",
            reason: e.to_string(),
        })
    })?;
    let (verified, new) =
        ctx.pool
            .admit(&ctx.store.snapshot(), &gov, &ctx.head(), now(), signed)?;
    if new {
        // Spreading is best-effort: if the gossip queue is full the other nodes still receive
        // the transaction in this node's next proposal.
        let _ = ctx.gossip.try_send(verified.signed().clone());
    }
    Ok(verified.id())
}

async fn wait_for(ctx: &NodeContext, id: TxId, timeout: Duration) -> Option<TxOutcome> {
    if let Some(loc) = ctx.store.snapshot_tx_location(&id) {
        return Some(TxOutcome::Committed {
            height: loc.height,
            index: loc.index,
        });
    }
    let rx = ctx.pool.watch(id);
    // The commit may have landed between the check and the watch.
    if let Some(loc) = ctx.store.snapshot_tx_location(&id) {
        return Some(TxOutcome::Committed {
            height: loc.height,
            index: loc.index,
        });
    }
    tokio::time::timeout(timeout, rx)
        .await
        .ok()
        .and_then(Result::ok)
}

async fn submit(
    State(ctx): State<Arc<NodeContext>>,
    Query(q): Query<SubmitQuery>,
    headers: HeaderMap,
    body: Bytes,
) -> ApiResult<Response> {
    let signed = parse_signed(&headers, &body)?;
    let id = admit(&ctx, signed).await?;
    let outcome = if q.wait {
        let timeout = Duration::from_millis(q.timeout_ms.unwrap_or(15_000)).min(MAX_WAIT);
        wait_for(&ctx, id, timeout).await
    } else {
        None
    };
    let (code, body) = outcome_json(id, outcome);
    Ok((code, Json(body)).into_response())
}

async fn submit_batch(
    State(ctx): State<Arc<NodeContext>>,
    Query(q): Query<SubmitQuery>,
    body: Bytes,
) -> ApiResult<Json<Value>> {
    let txs: Vec<SignedTransaction> = serde_json::from_slice(&body).map_err(|e| {
        ApiError::bad_request(
            "invalid_json",
            format!("expected an array of signed transactions: {e}"),
        )
    })?;
    if txs.len() > MAX_BATCH {
        return Err(ApiError::bad_request(
            "batch_too_large",
            format!("{} transactions; at most {MAX_BATCH} per batch", txs.len()),
        ));
    }
    let mut ids = Vec::with_capacity(txs.len());
    let mut results = Vec::with_capacity(txs.len());
    for signed in txs {
        match admit(&ctx, signed).await {
            Ok(id) => {
                ids.push(Some(id));
                results.push(json!({"tx_id": id, "status": "pending"}));
            }
            Err(e) => {
                let err = ApiError::from(e);
                ids.push(None);
                results.push(json!({"status": "refused", "error": {"code": err.code, "message": err.message}}));
            }
        }
    }
    if q.wait {
        let timeout = Duration::from_millis(q.timeout_ms.unwrap_or(15_000)).min(MAX_WAIT);
        let deadline = tokio::time::Instant::now() + timeout;
        for (slot, id) in results.iter_mut().zip(ids) {
            if let Some(id) = id {
                let left = deadline.saturating_duration_since(tokio::time::Instant::now());
                let (_, v) = outcome_json(id, wait_for(&ctx, id, left).await);
                *slot = v;
            }
        }
    }
    let accepted = results.iter().filter(|r| r["status"] != "refused").count();
    Ok(Json(json!({"accepted": accepted, "results": results})))
}

fn parse_digest<T: std::str::FromStr>(s: &str, what: &'static str) -> ApiResult<T> {
    s.parse().map_err(|_| {
        ApiError::bad_request("invalid_id", format!("{what} must be 64 hex characters"))
    })
}

fn location_json(loc: &TxLocation) -> Value {
    json!({"height": loc.height, "index": loc.index, "log_index": loc.log_index, "time": loc.time})
}

async fn transaction(
    State(ctx): State<Arc<NodeContext>>,
    Path(id): Path<String>,
) -> ApiResult<Json<Value>> {
    let id: TxId = parse_digest(&id, "transaction id")?;
    if let Some((tx, loc)) = ctx.store.transaction(&id)? {
        return Ok(Json(json!({
            "tx_id": id,
            "status": "committed",
            "location": location_json(&loc),
            "kind": tx.tx.body.kind(),
            "transaction": tx,
        })));
    }
    if ctx.pool.contains(&id) {
        return Ok(Json(json!({"tx_id": id, "status": "pending"})));
    }
    if let Some(e) = ctx.pool.rejection(&id) {
        return Ok(Json(
            json!({"tx_id": id, "status": "rejected", "error": tx_error(&e)}),
        ));
    }
    Err(ApiError::not_found(format!(
        "no transaction {id} committed or pending"
    )))
}

#[derive(Serialize)]
struct BlockView {
    hash: BlockHash,
    header: BlockHeader,
    transactions: Vec<TxId>,
    certificate: Option<String>,
}

async fn block(
    State(ctx): State<Arc<NodeContext>>,
    Path(height): Path<u64>,
) -> ApiResult<Json<BlockView>> {
    let b = ctx
        .store
        .block(height)?
        .ok_or_else(|| ApiError::not_found(format!("no block at height {height}")))?;
    let suite = ctx.store.suite();
    Ok(Json(BlockView {
        hash: b.header.hash(suite),
        transactions: b.transactions.iter().map(|t| t.id(suite)).collect(),
        header: b.header,
        certificate: ctx.store.certificate(height)?.map(hex::encode),
    }))
}

/// An attestation as the API shows it: the ledger record, the signed issuing transaction, and
/// the verdict now.
#[derive(Serialize)]
pub struct AttestationView {
    /// The ledger record (status and history included).
    pub record: AttestationRecord,
    /// The signed issuing transaction.
    pub transaction: SignedTransaction,
    /// The verdict at the time of the request.
    pub verdict: Verdict,
}

fn attestation_view(
    ctx: &NodeContext,
    record: AttestationRecord,
    presented: Option<&Digest>,
) -> ApiResult<AttestationView> {
    let (transaction, _) = ctx.store.transaction(&TxId(record.id.0))?.ok_or_else(|| {
        ApiError::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            "store_error",
            format!("issuing transaction of {} missing", record.id),
        )
    })?;
    let gov = ctx.governance()?;
    let verdict = verify_attestation(&gov, &transaction, &record, now(), presented);
    Ok(AttestationView {
        record,
        transaction,
        verdict,
    })
}

async fn attestation(
    State(ctx): State<Arc<NodeContext>>,
    Path(id): Path<String>,
) -> ApiResult<Json<AttestationView>> {
    let id: AttestationId = parse_digest(&id, "attestation id")?;
    let record = state::attestation(&ctx.store.snapshot(), &id)?
        .ok_or_else(|| ApiError::not_found(format!("no attestation {id}")))?;
    Ok(Json(attestation_view(&ctx, record, None)?))
}

#[derive(Deserialize)]
struct DigestQuery {
    digest: Option<String>,
}

async fn attestations_by_digest(
    State(ctx): State<Arc<NodeContext>>,
    Query(q): Query<DigestQuery>,
) -> ApiResult<Json<Vec<AttestationView>>> {
    let d = q
        .digest
        .ok_or_else(|| ApiError::bad_request("missing_digest", "give ?digest=<sha256 hex>"))?;
    let digest: Digest = parse_digest(&d, "digest")?;
    let records = state::attestations_by_digest(&ctx.store.snapshot(), &digest)?;
    // The caller holds a file with this digest: the verdicts check it.
    Ok(Json(
        records
            .into_iter()
            .map(|r| attestation_view(&ctx, r, Some(&digest)))
            .collect::<ApiResult<_>>()?,
    ))
}

fn parse_uscc(s: &str) -> ApiResult<Uscc> {
    Uscc::parse(s).map_err(|e| ApiError::bad_request(e.code(), e.to_string()))
}

async fn enterprise(
    State(ctx): State<Arc<NodeContext>>,
    Path(uscc): Path<String>,
) -> ApiResult<Json<Value>> {
    let uscc = parse_uscc(&uscc)?;
    let record = state::enterprise(&ctx.store.snapshot(), &uscc)?
        .ok_or_else(|| ApiError::not_found(format!("enterprise {uscc} is not enrolled")))?;
    Ok(Json(serde_json::to_value(record).unwrap_or(Value::Null)))
}

async fn enterprise_attestations(
    State(ctx): State<Arc<NodeContext>>,
    Path(uscc): Path<String>,
) -> ApiResult<Json<Vec<AttestationView>>> {
    let uscc = parse_uscc(&uscc)?;
    let records = state::attestations_by_subject(&ctx.store.snapshot(), &uscc)?;
    Ok(Json(
        records
            .into_iter()
            .map(|r| attestation_view(&ctx, r, None))
            .collect::<ApiResult<_>>()?,
    ))
}
