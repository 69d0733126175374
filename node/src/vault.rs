//! The vault service: uploads, reads under grants (local or fetched from the node that holds the
//! file), and the libp2p transfer protocol between nodes.
//!
//! A read goes: signed request → [`access::authenticate`] against this node's ledger state →
//! [`access::authorise_read`] (a grant in force, in scope, for this purpose) → the file from this
//! node's [`Documents`], or else from another member's node over [`FETCH_PROTOCOL`], presenting
//! the same signed request, which the holder checks again against *its* ledger state before it
//! streams a byte → the digest checked against the attestation on the ledger → the read written
//! to the journal (fsync) → the file handed over. The journal becomes access receipts on the
//! ledger ([`crate::receipts`]).
//!
//! ## Transfer protocol (`/shuzi-baoxianxiang/fetch/1`, one stream per transfer)
//! request: `len (u32 LE) ‖ SignedAccessRequest (canonical)`; answer: one status byte —
//! `0` = here it comes: `size (u64 LE) ‖ media type (u16 LE length ‖ UTF-8) ‖ size bytes`;
//! `1` = refused: `len (u32 LE) ‖ JSON {"code","message"}`; `2` = not held here.

use std::collections::{HashSet, VecDeque};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use futures::{AsyncReadExt, AsyncWriteExt};
use vault_protocol::access::{
    self, AuthenticatedRequest, PermittedRead, RequestError, RequestRefusal, Requester,
    SignedAccessRequest, REQUEST_WINDOW_MS,
};
use vault_protocol::crypto::{Digest, PublicKey};
use vault_protocol::encoding::Canonical;
use vault_protocol::ids::{DepartmentId, Timestamp};
use vault_protocol::tx::AccessRead;

use crate::context::{now, NodeContext};
use crate::documents::{BlobReader, DocumentError, Documents};
use crate::p2p::{Network, FETCH_PROTOCOL};

/// Most signed requests remembered for replay detection.
const MAX_REMEMBERED: usize = 1_000_000;
/// Longest a transfer from another node may take.
const TRANSFER_TIMEOUT: Duration = Duration::from_secs(120);
/// Largest request frame on the transfer protocol.
const MAX_REQUEST_FRAME: usize = 4096;
const READ_PIECE: usize = 256 * 1024;

/// Why a vault operation failed.
#[derive(Debug, thiserror::Error)]
pub enum VaultError {
    /// The request was refused (signature, signer, grant…).
    #[error(transparent)]
    Refused(#[from] RequestRefusal),
    /// The holder of the file refused (its ledger state said no).
    #[error("the node of {holder} refused: {message} ({code})")]
    HolderRefused {
        /// The holder's department.
        holder: DepartmentId,
        /// Its code.
        code: String,
        /// Its message.
        message: String,
    },
    /// No reachable node holds the file.
    #[error("no reachable node holds the document {digest} (asked: {asked})")]
    NotHeld {
        /// The file.
        digest: Digest,
        /// Whom we asked.
        asked: String,
    },
    /// A holder sent a file whose digest is not the ledger's.
    #[error("the node of {holder} sent a file that does not match the ledger: {detail}")]
    BadFile {
        /// The holder.
        holder: DepartmentId,
        /// What was wrong.
        detail: String,
    },
    /// Storage failed or refused (size, digest).
    #[error(transparent)]
    Documents(#[from] DocumentError),
    /// The ledger state could not be read.
    #[error("ledger state: {0}")]
    State(String),
    /// The request does not decode.
    #[error("not a signed request: {0}")]
    Invalid(String),
    /// Too many requests remembered.
    #[error("too many requests in flight; retry shortly")]
    Busy,
    /// This node is catching up: its view of grants may be behind the ledger.
    #[error("this node is catching up (height {height} of {seen}); it serves no document until it has the latest grants")]
    NotSynced {
        /// Its height.
        height: u64,
        /// The highest finalized height it has heard of.
        seen: u64,
    },
}

impl From<RequestError> for VaultError {
    fn from(e: RequestError) -> Self {
        match e {
            RequestError::Refused(r) => VaultError::Refused(r),
            RequestError::Store(s) => VaultError::State(s.to_string()),
        }
    }
}

/// Signed requests already used, for as long as they could still be accepted.
#[derive(Default)]
struct ReplayCache {
    seen: HashSet<Digest>,
    order: VecDeque<(Timestamp, Digest)>,
}

impl ReplayCache {
    fn check_and_remember(&mut self, id: Digest, now: Timestamp) -> Result<(), VaultError> {
        let horizon = now.minus(2 * REQUEST_WINDOW_MS + 1000);
        while let Some((t, d)) = self.order.front() {
            if *t >= horizon {
                break;
            }
            self.seen.remove(d);
            self.order.pop_front();
        }
        if self.seen.contains(&id) {
            return Err(RequestRefusal::Replayed.into());
        }
        if self.seen.len() >= MAX_REMEMBERED {
            return Err(VaultError::Busy);
        }
        self.seen.insert(id);
        self.order.push_back((now, id));
        Ok(())
    }
}

/// A document on its way to a reader.
pub struct Served {
    /// Its chunks.
    pub reader: BlobReader,
    /// Its digest.
    pub digest: Digest,
    /// Its size.
    pub size: u64,
    /// Its media type.
    pub media_type: String,
    /// The department whose node held it.
    pub source: DepartmentId,
    /// The permitted read.
    pub read: PermittedRead,
}

/// The vault service.
pub struct Vault {
    /// The node.
    pub ctx: Arc<NodeContext>,
    /// The document store.
    pub docs: Arc<Documents>,
    /// The network, to fetch from and serve to other nodes (absent in single-process tests).
    pub net: Option<Network>,
    replay: Mutex<ReplayCache>,
    /// Wakes the receipt recorder.
    pub journal_written: tokio::sync::Notify,
}

impl Vault {
    /// A vault over `docs`.
    pub fn new(ctx: Arc<NodeContext>, docs: Arc<Documents>, net: Option<Network>) -> Arc<Self> {
        Arc::new(Self {
            ctx,
            docs,
            net,
            replay: Mutex::new(ReplayCache::default()),
            journal_written: tokio::sync::Notify::new(),
        })
    }

    fn remember(&self, signed: &SignedAccessRequest, now: Timestamp) -> Result<(), VaultError> {
        let id = self.ctx.store.suite().hash(
            vault_protocol::crypto::Domain::AccessRequest,
            &[&signed.encode()],
        );
        self.replay
            .lock()
            .map_err(|_| VaultError::Busy)?
            .check_and_remember(id, now)
    }

    /// Authenticates a signed request against this node's ledger state, once.
    pub fn authenticate(
        &self,
        signed: SignedAccessRequest,
        now: Timestamp,
    ) -> Result<AuthenticatedRequest, VaultError> {
        let gov = self
            .ctx
            .governance()
            .map_err(|e| VaultError::State(e.to_string()))?;
        let auth = access::authenticate(&self.ctx.store.snapshot(), &gov, signed, now)?;
        self.remember(auth.signed(), now)?;
        Ok(auth)
    }

    /// Serves a read: authorised against this node's ledger state, from this node's vault or
    /// fetched from the node that holds the file, digest-checked, and journaled for the ledger
    /// before anything is handed over.
    pub async fn read(
        &self,
        auth: &AuthenticatedRequest,
        at: Timestamp,
    ) -> Result<Served, VaultError> {
        self.require_synced()?;
        let permitted = access::authorise_read(&self.ctx.store.snapshot(), auth, at)?;
        let digest = permitted.attestation.attestation.file_digest;
        let (reader, size, media_type, source) = match self.docs.meta(&digest)? {
            Some(meta) => {
                let reader = self
                    .docs
                    .reader(&digest)?
                    .ok_or_else(|| VaultError::NotHeld {
                        digest,
                        asked: "this node".into(),
                    })?;
                (
                    reader,
                    meta.size,
                    meta.media_type,
                    self.ctx.department.clone(),
                )
            }
            None => self.fetch(auth.signed(), &permitted).await?,
        };
        self.docs.journal_read(AccessRead {
            reader: permitted.reader.clone(),
            attestation: permitted.attestation.id,
            grant: permitted.grant_id,
            read_at: at,
        })?;
        self.journal_written.notify_one();
        Ok(Served {
            reader,
            digest,
            size,
            media_type,
            source,
            read: permitted,
        })
    }

    /// Asks the other members' nodes, the issuer's first, for the file.
    async fn fetch(
        &self,
        signed: &SignedAccessRequest,
        permitted: &PermittedRead,
    ) -> Result<(BlobReader, u64, String, DepartmentId), VaultError> {
        let digest = permitted.attestation.attestation.file_digest;
        let Some(net) = &self.net else {
            return Err(VaultError::NotHeld {
                digest,
                asked: "nobody (no network)".into(),
            });
        };
        let gov = self
            .ctx
            .governance()
            .map_err(|e| VaultError::State(e.to_string()))?;
        let connected = net.connected();
        let issuer = &permitted.attestation.attestation.issuer;
        let mut candidates: Vec<(DepartmentId, PublicKey)> = gov
            .current_members()
            .filter(|m| m.id != self.ctx.department)
            .filter_map(|m| m.current_node_key().map(|k| (m.id.clone(), *k)))
            .filter(|(_, k)| connected.contains(k))
            .collect();
        candidates.sort_by_key(|(d, _)| d != issuer);
        let mut asked = Vec::new();
        let mut bad: Option<VaultError> = None;
        for (dept, key) in candidates {
            asked.push(dept.to_string());
            let attempt = tokio::time::timeout(
                TRANSFER_TIMEOUT,
                self.fetch_from(net, &dept, &key, signed, &digest),
            )
            .await
            .unwrap_or_else(|_| Err(FetchOutcome::Failed("timed out".into())));
            match attempt {
                Ok((blob, media_type)) => {
                    let size = blob.size();
                    return Ok((blob.reader(), size, media_type, dept));
                }
                Err(FetchOutcome::NotHeld) => {}
                Err(FetchOutcome::Refused { code, message }) => {
                    return Err(VaultError::HolderRefused {
                        holder: dept,
                        code,
                        message,
                    })
                }
                Err(FetchOutcome::BadFile(detail)) => {
                    tracing::warn!(holder = %dept, %detail, "a node sent a file that does not match the ledger");
                    bad = Some(VaultError::BadFile {
                        holder: dept,
                        detail,
                    });
                }
                Err(FetchOutcome::Failed(why)) => {
                    tracing::debug!(holder = %dept, %why, "fetch attempt failed");
                }
            }
        }
        Err(bad.unwrap_or(VaultError::NotHeld {
            digest,
            asked: if asked.is_empty() {
                "no connected node".into()
            } else {
                asked.join(", ")
            },
        }))
    }

    async fn fetch_from(
        &self,
        net: &Network,
        dept: &DepartmentId,
        key: &PublicKey,
        signed: &SignedAccessRequest,
        digest: &Digest,
    ) -> Result<(Arc<crate::documents::TempBlob>, String), FetchOutcome> {
        let failed = |e: &dyn std::fmt::Display| FetchOutcome::Failed(format!("{dept}: {e}"));
        let mut stream = net
            .open_stream(key, FETCH_PROTOCOL)
            .await
            .map_err(|e| failed(&e))?;
        let req = signed.encode();
        stream
            .write_all(&(req.len() as u32).to_le_bytes())
            .await
            .map_err(|e| failed(&e))?;
        stream.write_all(&req).await.map_err(|e| failed(&e))?;
        stream.flush().await.map_err(|e| failed(&e))?;
        let mut status = [0u8; 1];
        stream
            .read_exact(&mut status)
            .await
            .map_err(|e| failed(&e))?;
        match status[0] {
            0 => {}
            1 => {
                let mut len = [0u8; 4];
                stream.read_exact(&mut len).await.map_err(|e| failed(&e))?;
                let len = u32::from_le_bytes(len) as usize;
                if len > MAX_REQUEST_FRAME {
                    return Err(FetchOutcome::Failed("refusal too long".into()));
                }
                let mut buf = vec![0u8; len];
                stream.read_exact(&mut buf).await.map_err(|e| failed(&e))?;
                let v: serde_json::Value = serde_json::from_slice(&buf).map_err(|e| failed(&e))?;
                return Err(FetchOutcome::Refused {
                    code: v["code"].as_str().unwrap_or("refused").to_string(),
                    message: v["message"].as_str().unwrap_or("").to_string(),
                });
            }
            2 => return Err(FetchOutcome::NotHeld),
            other => return Err(FetchOutcome::Failed(format!("unknown status {other}"))),
        }
        let mut size = [0u8; 8];
        stream.read_exact(&mut size).await.map_err(|e| failed(&e))?;
        let size = u64::from_le_bytes(size);
        if size > self.docs.max_file_bytes() {
            return Err(FetchOutcome::BadFile(format!(
                "announced {size} bytes, over this vault's limit"
            )));
        }
        let mut mlen = [0u8; 2];
        stream.read_exact(&mut mlen).await.map_err(|e| failed(&e))?;
        let mut media = vec![0u8; u16::from_le_bytes(mlen) as usize];
        stream
            .read_exact(&mut media)
            .await
            .map_err(|e| failed(&e))?;
        let media_type =
            String::from_utf8(media).unwrap_or_else(|_| "application/octet-stream".into());
        let mut writer = self.docs.writer().map_err(|e| failed(&e))?;
        let mut left = size;
        let mut buf = vec![0u8; READ_PIECE];
        while left > 0 {
            let n = (left as usize).min(READ_PIECE);
            stream
                .read_exact(&mut buf[..n])
                .await
                .map_err(|e| failed(&e))?;
            writer.write(&buf[..n]).map_err(|e| failed(&e))?;
            left -= n as u64;
        }
        let blob = writer
            .finish_temporary(digest)
            .map_err(|e| FetchOutcome::BadFile(e.to_string()))?;
        Ok((blob, media_type))
    }

    /// Serves other nodes' transfer requests until the network stops.
    pub fn spawn_transfer_server(self: &Arc<Self>) -> Result<(), crate::p2p::P2pError> {
        let Some(net) = &self.net else { return Ok(()) };
        let mut incoming = net.accept(FETCH_PROTOCOL)?;
        let vault = self.clone();
        tokio::spawn(async move {
            while let Some((from, stream)) = incoming.recv().await {
                let vault = vault.clone();
                tokio::spawn(async move {
                    if let Err(e) = vault.serve_transfer(from, stream).await {
                        tracing::debug!(error = %e, "transfer stream ended early");
                    }
                });
            }
        });
        Ok(())
    }

    /// A node that is behind may not know a grant was withdrawn: it serves no document.
    fn require_synced(&self) -> Result<(), VaultError> {
        if self.ctx.is_synced() {
            return Ok(());
        }
        Err(VaultError::NotSynced {
            height: self.ctx.head().height,
            seen: self
                .ctx
                .finalized_seen
                .load(std::sync::atomic::Ordering::Relaxed),
        })
    }

    /// Why this node will not send the file to the node `from` for `signed`.
    fn judge_transfer(
        &self,
        from: &PublicKey,
        signed: SignedAccessRequest,
    ) -> Result<PermittedRead, VaultError> {
        self.require_synced()?;
        let t = now();
        let auth = self.authenticate(signed, t)?;
        // A department's read may be forwarded only by that department's own node.
        if let Requester::Department(d) = &auth.request().requester {
            let gov = self
                .ctx
                .governance()
                .map_err(|e| VaultError::State(e.to_string()))?;
            let node_ok = gov
                .member(d)
                .and_then(|m| m.current_node_key())
                .is_some_and(|k| k == from);
            if !node_ok {
                return Err(RequestRefusal::WrongSigner {
                    requester: format!("the node of department {d}"),
                    signer: *from,
                }
                .into());
            }
        }
        Ok(access::authorise_read(
            &self.ctx.store.snapshot(),
            &auth,
            t,
        )?)
    }

    async fn serve_transfer(
        &self,
        from: PublicKey,
        mut stream: libp2p::Stream,
    ) -> std::io::Result<()> {
        let mut len = [0u8; 4];
        stream.read_exact(&mut len).await?;
        let len = u32::from_le_bytes(len) as usize;
        if len > MAX_REQUEST_FRAME {
            return Err(std::io::Error::other("request frame too long"));
        }
        let mut buf = vec![0u8; len];
        stream.read_exact(&mut buf).await?;
        let verdict = SignedAccessRequest::decode(&buf)
            .map_err(|e| VaultError::Invalid(e.to_string()))
            .and_then(|signed| self.judge_transfer(&from, signed));
        let permitted = match verdict {
            Ok(p) => p,
            Err(e) => {
                let (code, message) = refusal_code(&e);
                let body = serde_json::json!({"code": code, "message": message}).to_string();
                stream.write_all(&[1]).await?;
                stream.write_all(&(body.len() as u32).to_le_bytes()).await?;
                stream.write_all(body.as_bytes()).await?;
                return stream.close().await;
            }
        };
        let digest = permitted.attestation.attestation.file_digest;
        let (meta, reader) = match (self.docs.meta(&digest), self.docs.reader(&digest)) {
            (Ok(Some(m)), Ok(Some(r))) => (m, r),
            _ => {
                stream.write_all(&[2]).await?;
                return stream.close().await;
            }
        };
        tracing::info!(
            to = %from,
            attestation = %permitted.attestation.id,
            grant = %permitted.grant_id,
            "sending a document to another department's node"
        );
        stream.write_all(&[0]).await?;
        stream.write_all(&meta.size.to_le_bytes()).await?;
        let media = meta.media_type.as_bytes();
        let media = &media[..media.len().min(u16::MAX as usize)];
        stream
            .write_all(&(media.len() as u16).to_le_bytes())
            .await?;
        stream.write_all(media).await?;
        let chunks = reader.into_stream();
        futures::pin_mut!(chunks);
        while let Some(chunk) = futures::StreamExt::next(&mut chunks).await {
            stream.write_all(&chunk?).await?;
        }
        stream.flush().await?;
        stream.close().await
    }
}

enum FetchOutcome {
    NotHeld,
    Refused { code: String, message: String },
    BadFile(String),
    Failed(String),
}

/// The stable code and message of a vault error.
pub fn refusal_code(e: &VaultError) -> (&'static str, String) {
    let code = match e {
        VaultError::Refused(r) => r.code(),
        VaultError::HolderRefused { .. } => "holder_refused",
        VaultError::NotHeld { .. } => "document_not_held",
        VaultError::BadFile { .. } => "holder_sent_bad_file",
        VaultError::Documents(DocumentError::DigestMismatch { .. }) => "digest_mismatch",
        VaultError::Documents(DocumentError::SizeMismatch { .. }) => "size_mismatch",
        VaultError::Documents(DocumentError::TooLarge { .. }) => "file_too_large",
        VaultError::Documents(_) => "store_error",
        VaultError::State(_) => "store_error",
        VaultError::Invalid(_) => "invalid_request",
        VaultError::Busy => "busy",
        VaultError::NotSynced { .. } => "not_synced",
    };
    (code, e.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::BTreeSet;
    use std::sync::atomic::AtomicU64;

    use vault_protocol::access::{AccessRequest, RequestAction};
    use vault_protocol::ids::AttestationId;
    use vault_protocol::ledger::TestNetwork;

    use crate::documents::VaultKey;
    use crate::pool::Pool;
    use crate::store::Store;

    #[tokio::test]
    async fn a_node_that_is_behind_serves_no_document() {
        let dir = tempfile::tempdir().unwrap();
        let net = TestNetwork::new(&["samr", "tax", "hrss", "housing"]);
        let (store, report) = Store::open(&dir.path().join("ledger"), &net.genesis).unwrap();
        let (_heads_tx, heads) = tokio::sync::watch::channel(report.head.clone());
        let (gossip, _rx) = tokio::sync::mpsc::channel(1);
        let ctx = Arc::new(NodeContext {
            department: net.department("housing").id.clone(),
            genesis: net.genesis.clone(),
            store: Arc::new(store),
            pool: Pool::new(10),
            head: heads,
            gossip,
            peers: Mutex::new(BTreeSet::new()),
            // Heard of a block ten heights ahead.
            finalized_seen: AtomicU64::new(report.head.height + 10),
            http_url: String::new(),
            p2p_address: String::new(),
            max_body_bytes: 1 << 20,
            governance_cache: Mutex::new(None),
        });
        let docs = Documents::open(
            &dir.path().join("docs"),
            VaultKey::from_bytes([1; 32]),
            1 << 20,
        )
        .unwrap();
        let vault = Vault::new(ctx, Arc::new(docs), None);
        let t = net.genesis.genesis_time.plus(1_000);
        let signed = AccessRequest {
            chain_id: net.genesis.chain_id.clone(),
            requester: Requester::Department(net.department("housing").id.clone()),
            action: RequestAction::Read {
                attestation: AttestationId(Digest([3; 32])),
                purpose: "P-1".try_into().unwrap(),
            },
            created_at: t,
            nonce: 1,
        }
        .sign(&net.department("housing").signing);
        let auth = vault.authenticate(signed, t).unwrap();
        let err = vault.read(&auth, t).await.err().unwrap();
        assert_eq!(refusal_code(&err).0, "not_synced", "{err}");
    }

    #[test]
    fn a_signed_request_is_accepted_once() {
        let mut c = ReplayCache::default();
        let d = Digest([1; 32]);
        c.check_and_remember(d, Timestamp(1_000_000)).unwrap();
        assert!(matches!(
            c.check_and_remember(d, Timestamp(1_000_001)),
            Err(VaultError::Refused(RequestRefusal::Replayed))
        ));
        // Long after the window it is forgotten (and would be refused as too old anyway).
        c.check_and_remember(d, Timestamp(1_000_000 + 3 * REQUEST_WINDOW_MS))
            .unwrap();
        assert_eq!(c.seen.len(), 1);
    }
}
