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
use vault_protocol::ids::{AttestationId, BlockHash, DepartmentId, GrantId, Timestamp, TxId};
use vault_protocol::state::{
    self, AttestationRecord, GrantRecord, ReceiptRecord, TxError, TxLocation,
};
use vault_protocol::tx::{Grantee, SignedTransaction, TransactionBatch};
use vault_protocol::uscc::Uscc;
use vault_protocol::verify::{verify_attestation, Verdict};

use crate::context::{now, NodeContext};
use crate::pool::{AdmitError, TxOutcome};
use crate::store::StoreError;

/// Most transactions in one batch request.
pub const MAX_BATCH: usize = vault_protocol::tx::MAX_SUBMIT_BATCH;
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

    /// Tells the client when to retry (a `Retry-After` header).
    pub fn retry_after(mut self, secs: u64) -> Self {
        self.retry_after = Some(secs);
        self
    }

    /// 404.
    pub fn not_found(what: impl Into<String>) -> Self {
        Self::new(StatusCode::NOT_FOUND, "not_found", what)
    }

    /// 403: a refused read or upload.
    pub fn forbidden(code: &'static str, message: impl Into<String>) -> Self {
        Self::new(StatusCode::FORBIDDEN, code, message)
    }

    /// The stable code.
    pub fn code(&self) -> &'static str {
        self.code
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
        .route("/v1/enterprises/{uscc}/grants", get(enterprise_grants))
        .route("/v1/enterprises/{uscc}/receipts", get(enterprise_receipts))
        .route("/v1/departments/{id}/grants", get(department_grants))
        .route("/v1/grants/{id}", get(grant))
        .route("/v1/verify", post(verify))
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
        "status_root": head.status_root,
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
        serde_json::to_value(&*ctx.governance()?).unwrap_or(Value::Null),
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

/// Whether a request body is canonical bytes rather than JSON.
fn is_binary(headers: &HeaderMap) -> bool {
    headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|ct| ct.starts_with("application/octet-stream"))
}

fn parse_signed(headers: &HeaderMap, body: &Bytes) -> ApiResult<SignedTransaction> {
    if is_binary(headers) {
        Ok(SignedTransaction::decode(body)?)
    } else {
        let value: Value = serde_json::from_slice(body)
            .map_err(|e| ApiError::bad_request("invalid_json", format!("not JSON: {e}")))?;
        check_usccs(&value)?;
        serde_json::from_value(value).map_err(|e| {
            ApiError::bad_request("invalid_json", format!("not a signed transaction: {e}"))
        })
    }
}

/// Refuses a transaction naming an invalid USCC with the GB 32100-2015 rule that failed (as its
/// code), rather than a generic decoding error.
fn check_usccs(v: &Value) -> ApiResult<()> {
    match v {
        Value::Object(map) => {
            for (k, item) in map {
                if let ("enterprise" | "subject", Value::String(s)) = (k.as_str(), item) {
                    Uscc::parse(s)
                        .map_err(|e| ApiError::bad_request(e.code(), format!("{k} {s:?}: {e}")))?;
                }
                check_usccs(item)?;
            }
            Ok(())
        }
        Value::Array(items) => items.iter().try_for_each(check_usccs),
        _ => Ok(()),
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

async fn submit(
    State(ctx): State<Arc<NodeContext>>,
    Query(q): Query<SubmitQuery>,
    headers: HeaderMap,
    body: Bytes,
) -> ApiResult<Response> {
    let signed = parse_signed(&headers, &body)?;
    let id = ctx.submit(signed)?;
    let outcome = if q.wait {
        let timeout = Duration::from_millis(q.timeout_ms.unwrap_or(15_000)).min(MAX_WAIT);
        ctx.wait_for(id, timeout).await
    } else {
        None
    };
    let (code, body) = outcome_json(id, outcome);
    Ok((code, Json(body)).into_response())
}

async fn submit_batch(
    State(ctx): State<Arc<NodeContext>>,
    Query(q): Query<SubmitQuery>,
    headers: HeaderMap,
    body: Bytes,
) -> ApiResult<Json<Value>> {
    let txs: Vec<SignedTransaction> = if is_binary(&headers) {
        TransactionBatch::decode(&body)?.0.into_inner()
    } else {
        serde_json::from_slice(&body).map_err(|e| {
            ApiError::bad_request(
                "invalid_json",
                format!("expected an array of signed transactions: {e}"),
            )
        })?
    };
    if txs.len() > MAX_BATCH {
        return Err(ApiError::bad_request(
            "batch_too_large",
            format!("{} transactions; at most {MAX_BATCH} per batch", txs.len()),
        ));
    }
    // The batch's signatures are checked together, off the async workers.
    let admitted = {
        let ctx = ctx.clone();
        tokio::task::spawn_blocking(move || ctx.submit_many(txs))
            .await
            .map_err(|e| {
                ApiError::new(
                    StatusCode::INTERNAL_SERVER_ERROR,
                    "internal_error",
                    format!("admission task failed: {e}"),
                )
            })?
    };
    let mut ids = Vec::with_capacity(admitted.len());
    let mut results = Vec::with_capacity(admitted.len());
    for r in admitted {
        match r {
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
                let (_, v) = outcome_json(id, ctx.wait_for(id, left).await);
                *slot = v;
            }
        }
    }
    let accepted = results.iter().filter(|r| r["status"] != "refused").count();
    Ok(Json(json!({"accepted": accepted, "results": results})))
}

/// Parses a digest-shaped path or query value (a digest, or an id made from one).
pub(crate) fn parse_digest<T: std::str::FromStr>(s: &str, what: &'static str) -> ApiResult<T> {
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
    let transaction = ctx.store.transaction_at(&record.location)?;
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

/// A grant with its state now.
#[derive(Serialize)]
struct GrantView {
    id: GrantId,
    /// `in_force`, `expired`, `withdrawn` or `not_yet_in_force`.
    state: &'static str,
    grant: GrantRecord,
}

fn grant_view(g: GrantRecord, at: Timestamp) -> GrantView {
    let state = if g.withdrawn_at.is_some_and(|w| w <= at) {
        "withdrawn"
    } else if g.grant.expires_at <= at {
        "expired"
    } else if at < g.granted_at {
        "not_yet_in_force"
    } else {
        "in_force"
    };
    GrantView {
        id: g.id,
        state,
        grant: g,
    }
}

async fn enterprise_grants(
    State(ctx): State<Arc<NodeContext>>,
    Path(uscc): Path<String>,
) -> ApiResult<Json<Vec<GrantView>>> {
    let uscc = parse_uscc(&uscc)?;
    let t = now();
    Ok(Json(
        state::grants_by_enterprise(&ctx.store.snapshot(), &uscc)?
            .into_iter()
            .map(|g| grant_view(g, t))
            .collect(),
    ))
}

async fn department_grants(
    State(ctx): State<Arc<NodeContext>>,
    Path(id): Path<String>,
) -> ApiResult<Json<Vec<GrantView>>> {
    let id = DepartmentId::new(&id)
        .map_err(|e| ApiError::bad_request("invalid_department", e.to_string()))?;
    let t = now();
    Ok(Json(
        state::grants_to(&ctx.store.snapshot(), &Grantee::Department(id))?
            .into_iter()
            .map(|g| grant_view(g, t))
            .collect(),
    ))
}

async fn grant(
    State(ctx): State<Arc<NodeContext>>,
    Path(id): Path<String>,
) -> ApiResult<Json<GrantView>> {
    let id: GrantId = parse_digest(&id, "grant id")?;
    let g = state::grant(&ctx.store.snapshot(), &id)?
        .ok_or_else(|| ApiError::not_found(format!("no grant {id}")))?;
    Ok(Json(grant_view(g, now())))
}

async fn enterprise_receipts(
    State(ctx): State<Arc<NodeContext>>,
    Path(uscc): Path<String>,
) -> ApiResult<Json<Vec<ReceiptRecord>>> {
    let uscc = parse_uscc(&uscc)?;
    Ok(Json(state::receipts_by_enterprise(
        &ctx.store.snapshot(),
        &uscc,
    )?))
}

#[derive(Deserialize)]
struct VerifyQuery {
    attestation: Option<String>,
    /// Answer only from a ledger state younger than this (by the head block's time), and not
    /// while this node is catching up.
    max_age_ms: Option<u64>,
    /// Attach each verdict's proof bundle (at the same head), for the caller to keep or to
    /// check offline.
    #[serde(default)]
    bundle: bool,
}

#[derive(Deserialize)]
struct VerifyJson {
    digest: String,
    attestation: Option<String>,
}

/// Hashes a byte stream (a file being verified), refusing more than `limit` bytes.
async fn hash_stream<S, E>(mut stream: S, limit: usize) -> ApiResult<Digest>
where
    S: futures::Stream<Item = Result<Bytes, E>> + Unpin,
    E: std::fmt::Display,
{
    use futures::StreamExt;
    use sha2::Digest as _;
    let mut h = sha2::Sha256::new();
    let mut n = 0usize;
    while let Some(chunk) = stream.next().await {
        let chunk = chunk
            .map_err(|e| ApiError::bad_request("invalid_body", format!("reading the file: {e}")))?;
        n += chunk.len();
        if n > limit {
            return Err(ApiError::new(
                StatusCode::PAYLOAD_TOO_LARGE,
                "file_too_large",
                format!("files to verify are limited to {limit} bytes"),
            ));
        }
        h.update(&chunk);
    }
    Ok(Digest(h.finalize().into()))
}

/// `POST /v1/verify`: a file (raw body or multipart part `file`) or a digest (JSON), optionally
/// an attestation id → a verdict on every attestation of the file, naming every check. Needs no
/// grant: it reveals nothing the holder of the file does not have.
async fn verify(
    State(ctx): State<Arc<NodeContext>>,
    Query(q): Query<VerifyQuery>,
    request: axum::extract::Request,
) -> ApiResult<Response> {
    use axum::extract::FromRequest;
    let limit = ctx.max_body_bytes;
    let content_type = request
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
        .to_ascii_lowercase();
    let mut attestation = q.attestation.clone();
    let digest: Digest =
        if content_type.starts_with("application/json") {
            let body = axum::body::to_bytes(request.into_body(), 64 * 1024)
                .await
                .map_err(|e| ApiError::bad_request("invalid_body", e.to_string()))?;
            let j: VerifyJson = serde_json::from_slice(&body).map_err(|e| {
                ApiError::bad_request(
                    "invalid_json",
                    format!("expected {{\"digest\": hex, \"attestation\"?: hex}}: {e}"),
                )
            })?;
            attestation = attestation.or(j.attestation);
            parse_digest(&j.digest, "digest")?
        } else if content_type.starts_with("multipart/form-data") {
            let mut form = axum::extract::Multipart::from_request(request, &())
                .await
                .map_err(|e| ApiError::bad_request("invalid_multipart", e.body_text()))?;
            let mut found = None;
            loop {
                let field = form
                    .next_field()
                    .await
                    .map_err(|e| ApiError::bad_request("invalid_multipart", e.body_text()))?;
                let Some(mut field) = field else { break };
                match field.name() {
                    Some("file") => {
                        let stream = futures::stream::poll_fn(move |cx| {
                            use futures::Stream;
                            std::pin::Pin::new(&mut field).poll_next(cx)
                        });
                        found = Some(hash_stream(stream, limit).await?);
                    }
                    Some("attestation") => {
                        let t = field.text().await.map_err(|e| {
                            ApiError::bad_request("invalid_multipart", e.body_text())
                        })?;
                        attestation = Some(t.trim().to_string());
                    }
                    Some("digest") => {
                        let t = field.text().await.map_err(|e| {
                            ApiError::bad_request("invalid_multipart", e.body_text())
                        })?;
                        found = Some(parse_digest(t.trim(), "digest")?);
                    }
                    _ => {}
                }
            }
            found.ok_or_else(|| {
                ApiError::bad_request(
                    "missing_file",
                    "the form has no part named \"file\" (or \"digest\")",
                )
            })?
        } else {
            hash_stream(request.into_body().into_data_stream(), limit).await?
        };
    // The state the verdicts rest on, and whether it is fresh enough for the caller.
    let view = ctx.store.snapshot();
    let head = state::head(&view)?;
    let synced = ctx.is_synced();
    let age_ms = now().0.saturating_sub(head.time.0);
    if let Some(max) = q.max_age_ms {
        if !synced || age_ms >= max {
            let mut err = ApiError::new(
                StatusCode::SERVICE_UNAVAILABLE,
                "stale_state",
                format!(
                    "this node's ledger state is {age_ms} ms old (height {}, synced: {synced}); \
                     the caller asked for one younger than {max} ms — ask another node or retry",
                    head.height
                ),
            );
            err.retry_after = Some(1);
            return Err(err);
        }
    }
    let as_of = json!({
        "height": head.height,
        "block_hash": head.hash,
        "block_time": head.time,
        "status_root": head.status_root,
        "age_ms": age_ms,
        "synced": synced,
    });
    let mut out = Vec::new();
    if let Some(a) = attestation.filter(|a| !a.is_empty()) {
        let id: AttestationId = parse_digest(&a, "attestation id")?;
        let record = state::attestation(&view, &id)?
            .ok_or_else(|| ApiError::not_found(format!("no attestation {id}")))?;
        out.push(attestation_view(&ctx, record, Some(&digest))?);
    } else {
        for r in state::attestations_by_digest(&view, &digest)? {
            out.push(attestation_view(&ctx, r, Some(&digest))?);
        }
    }
    let valid = out.iter().any(|v| v.verdict.valid);
    let mut verdicts = Vec::with_capacity(out.len());
    for v in &out {
        let bundle = if q.bundle {
            Some(crate::proofs::bundle_at(
                &ctx,
                &view,
                &head,
                &v.verdict.attestation_id,
            )?)
        } else {
            None
        };
        verdicts.push(VerdictOut { view: v, bundle });
    }
    let unknown = out.is_empty();
    // Serialised straight to the response body, with no JSON tree in between.
    Ok(Json(VerifyAnswer {
        digest,
        valid,
        verdicts,
        as_of,
        reason: unknown.then_some("unknown_digest"),
        message: unknown.then(|| format!("no attestation on the ledger for SHA-256 {digest}")),
    })
    .into_response())
}

/// The verify API's answer.
#[derive(Serialize)]
struct VerifyAnswer<'a> {
    digest: Digest,
    valid: bool,
    verdicts: Vec<VerdictOut<'a>>,
    as_of: Value,
    #[serde(skip_serializing_if = "Option::is_none")]
    reason: Option<&'static str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    message: Option<String>,
}

/// One verdict, with its proof bundle when asked for.
#[derive(Serialize)]
struct VerdictOut<'a> {
    #[serde(flatten)]
    view: &'a AttestationView,
    #[serde(skip_serializing_if = "Option::is_none")]
    bundle: Option<vault_protocol::bundle::ProofBundle>,
}
