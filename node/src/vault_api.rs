//! The vault's HTTP routes: uploading a file, a file's metadata, and reading a document under a
//! grant. Each upload and read carries a signed request in the `Vault-Request` header (base64 of
//! the canonical `SignedAccessRequest`); a file is never served without one.

use std::sync::Arc;

use axum::body::Body;
use axum::extract::{DefaultBodyLimit, Path, Request, State};
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use base64::Engine as _;
use futures::StreamExt;
use serde_json::{json, Value};
use vault_protocol::access::{self, RequestRefusal, Requester, SignedAccessRequest};
use vault_protocol::crypto::Digest;
use vault_protocol::encoding::Canonical;
use vault_protocol::ids::AttestationId;

use crate::api::{parse_digest, ApiError};
use crate::context::now;
use crate::documents::DocumentError;
use crate::vault::{refusal_code, Vault, VaultError};

/// The header carrying a signed request.
pub const REQUEST_HEADER: &str = "vault-request";

/// The vault routes.
pub fn router(vault: Arc<Vault>) -> Router {
    Router::new()
        .route(
            "/v1/documents/{digest}",
            get(document_meta)
                .put(upload)
                .layer(DefaultBodyLimit::disable()),
        )
        .route("/v1/attestations/{id}/document", get(read_document))
        .with_state(vault)
}

/// Every code a refusal can carry, so a holder's refusal keeps its code through this node.
const KNOWN_CODES: &[&str] = &[
    "no_grant",
    "grant_wrong_grantee",
    "grant_not_yet_in_force",
    "grant_expired",
    "grant_withdrawn",
    "grant_out_of_scope",
    "grant_other_purpose",
    "wrong_chain",
    "request_outside_window",
    "bad_signature",
    "wrong_signer",
    "not_member",
    "not_enrolled",
    "wrong_action",
    "not_a_grantee",
    "unknown_attestation",
    "request_replayed",
];

impl From<VaultError> for ApiError {
    fn from(e: VaultError) -> Self {
        let (code, message) = refusal_code(&e);
        let status = match &e {
            VaultError::Refused(r) => match r {
                RequestRefusal::Access(_) | RequestRefusal::NotAGrantee { .. } => {
                    StatusCode::FORBIDDEN
                }
                RequestRefusal::UnknownAttestation { .. } => StatusCode::NOT_FOUND,
                RequestRefusal::WrongAction { .. } => StatusCode::BAD_REQUEST,
                _ => StatusCode::UNAUTHORIZED,
            },
            VaultError::HolderRefused { code, .. } => {
                let known = KNOWN_CODES.iter().find(|c| *c == code).copied();
                return ApiError::new(
                    StatusCode::FORBIDDEN,
                    known.unwrap_or("holder_refused"),
                    message,
                );
            }
            VaultError::NotHeld { .. } => StatusCode::NOT_FOUND,
            VaultError::BadFile { .. } => StatusCode::BAD_GATEWAY,
            VaultError::Documents(DocumentError::TooLarge { .. }) => StatusCode::PAYLOAD_TOO_LARGE,
            VaultError::Documents(
                DocumentError::DigestMismatch { .. } | DocumentError::SizeMismatch { .. },
            ) => StatusCode::BAD_REQUEST,
            VaultError::Invalid(_) => StatusCode::BAD_REQUEST,
            VaultError::Busy | VaultError::NotSynced { .. } => StatusCode::SERVICE_UNAVAILABLE,
            VaultError::Documents(_) | VaultError::State(_) => {
                tracing::error!(error = %e, "vault store error");
                StatusCode::INTERNAL_SERVER_ERROR
            }
        };
        ApiError::new(status, code, message)
    }
}

/// The signed request in the headers.
fn signed_request(headers: &HeaderMap) -> Result<SignedAccessRequest, ApiError> {
    let raw = headers.get(REQUEST_HEADER).ok_or_else(|| {
        ApiError::new(
            StatusCode::UNAUTHORIZED,
            "missing_request",
            "this endpoint needs a signed request in the Vault-Request header",
        )
    })?;
    let bytes = base64::engine::general_purpose::STANDARD
        .decode(raw.as_bytes())
        .map_err(|e| {
            ApiError::new(
                StatusCode::UNAUTHORIZED,
                "invalid_request",
                format!("Vault-Request is not base64: {e}"),
            )
        })?;
    SignedAccessRequest::decode(&bytes).map_err(|e| {
        ApiError::new(
            StatusCode::UNAUTHORIZED,
            "invalid_request",
            format!("Vault-Request is not a signed request: {e}"),
        )
    })
}

async fn document_meta(
    State(vault): State<Arc<Vault>>,
    Path(digest): Path<String>,
) -> Result<Json<Value>, ApiError> {
    let digest: Digest = parse_digest(&digest, "digest")?;
    let meta = vault
        .docs
        .meta(&digest)
        .map_err(VaultError::from)?
        .ok_or_else(|| ApiError::not_found(format!("this node holds no file {digest}")))?;
    Ok(Json(json!({
        "digest": meta.digest,
        "size": meta.size,
        "media_type": meta.media_type,
        "stored_at": meta.stored_at,
    })))
}

/// `PUT /v1/documents/{digest}`: stores a file, streamed, checked against the declared digest
/// and size, encrypted at rest.
async fn upload(
    State(vault): State<Arc<Vault>>,
    Path(digest): Path<String>,
    request: Request,
) -> Result<Response, ApiError> {
    let digest: Digest = parse_digest(&digest, "digest")?;
    let signed = signed_request(request.headers())?;
    let t = now();
    let auth = vault.authenticate(signed, t)?;
    let (declared, size) = access::upload_of(&auth).map_err(VaultError::from)?;
    if declared != digest {
        return Err(ApiError::bad_request(
            "request_mismatch",
            format!("the signed request is for {declared}, the URL for {digest}"),
        ));
    }
    let limit = vault.docs.max_file_bytes();
    if size > limit {
        return Err(VaultError::Documents(DocumentError::TooLarge { limit }).into());
    }
    let media_type = request
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("application/octet-stream")
        .to_string();
    let uploader = auth.request().requester.to_string();
    let mut body = request.into_body().into_data_stream();
    let mut writer = vault.docs.writer().map_err(VaultError::from)?;
    while let Some(chunk) = body.next().await {
        let chunk = chunk.map_err(|e| {
            ApiError::bad_request("invalid_body", format!("reading the upload: {e}"))
        })?;
        writer.write(&chunk).map_err(VaultError::from)?;
    }
    let stored = writer
        .finish(&digest, Some(size), &media_type, &uploader, t)
        .map_err(VaultError::from)?;
    tracing::info!(%digest, size, by = %uploader, already_held = stored.already_held, "document stored");
    let status = if stored.already_held {
        StatusCode::OK
    } else {
        StatusCode::CREATED
    };
    Ok((
        status,
        Json(json!({
            "digest": stored.meta.digest,
            "size": stored.meta.size,
            "media_type": stored.meta.media_type,
            "already_held": stored.already_held,
        })),
    )
        .into_response())
}

/// `GET /v1/attestations/{id}/document`: the file of an attestation, to a grantee whose grant is
/// in force for the purpose it signed — from this node's vault or fetched from the node holding
/// it — with the read journaled for the ledger first.
async fn read_document(
    State(vault): State<Arc<Vault>>,
    Path(id): Path<String>,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    let id: AttestationId = parse_digest(&id, "attestation id")?;
    let signed = signed_request(&headers)?;
    let t = now();
    let auth = vault.authenticate(signed, t)?;
    match &auth.request().action {
        access::RequestAction::Read { attestation, .. } if *attestation == id => {}
        access::RequestAction::Read { attestation, .. } => {
            return Err(ApiError::bad_request(
                "request_mismatch",
                format!("the signed request is for attestation {attestation}, the URL for {id}"),
            ))
        }
        access::RequestAction::Upload { .. } => {
            return Err(VaultError::Refused(RequestRefusal::WrongAction {
                expected: "a read",
                found: "an upload",
            })
            .into())
        }
    }
    let served = vault.read(&auth, t).await?;
    let reader = match &auth.request().requester {
        Requester::Department(d) => format!("department {d}"),
        other => other.to_string(),
    };
    tracing::info!(
        attestation = %id,
        %reader,
        grant = %served.read.grant_id,
        source = %served.source,
        "document served under a grant"
    );
    let mut resp = Response::new(Body::from_stream(served.reader.into_stream()));
    let h = resp.headers_mut();
    let set = |h: &mut HeaderMap, name: &'static str, v: String| {
        if let Ok(v) = HeaderValue::from_str(&v) {
            h.insert(name, v);
        }
    };
    set(h, "content-type", served.media_type.clone());
    set(h, "content-length", served.size.to_string());
    set(h, "vault-digest", served.digest.to_string());
    set(h, "vault-grant", served.read.grant_id.to_string());
    set(h, "vault-source", served.source.to_string());
    set(h, "vault-attestation", id.to_string());
    Ok(resp)
}
