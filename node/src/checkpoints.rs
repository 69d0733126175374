//! Cosigned checkpoints: after each block it commits, a node signs the block's C2SP checkpoint
//! (`protocol::checkpoint`) with its department's signing key and sends the signature to the
//! other nodes (channel 11); it checks each signature it receives against its own copy of the
//! block before keeping it. A checkpoint signed by more than two thirds of the members is served
//! at `GET /checkpoint` (the newest) and `GET /v1/checkpoints/{height}`, as a signed note any
//! verifier can check with only the members' keys.
//!
//! A signature for a block this node has not committed yet waits (bounded) until it has; one
//! that does not verify against this node's block is evidence of a split view and is logged.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};

use axum::extract::{Path, State};
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::Router;
use borsh::{BorshDeserialize, BorshSerialize};
use bytes::Bytes;
use vault_protocol::checkpoint::{
    cosigner_name, verify_note_signature, NoteSignature, VaultCheckpoint,
};
use vault_protocol::crypto::{KeyPair, PublicKey};
use vault_protocol::governance::Governance;
use vault_protocol::ids::{BlockHash, DepartmentId};

use crate::api::ApiError;
use crate::context::NodeContext;
use crate::p2p::{Channel, Inbound, Network};

/// The channel carrying checkpoint signatures.
pub const CHANNEL_COSIGNATURES: Channel = 11;
/// Checkpoints kept (by height).
const KEEP: usize = 4096;
/// Signatures for blocks not yet committed here, kept at most.
const MAX_WAITING: usize = 16_384;
/// A node that commits many blocks at once (catching up) signs only the newest this many.
const SIGN_RECENT: u64 = 16;

/// One department's signature of one block's checkpoint, as sent between nodes.
#[derive(Debug, Clone, PartialEq, Eq, BorshSerialize, BorshDeserialize)]
struct Cosignature {
    height: u64,
    block: BlockHash,
    department: DepartmentId,
    key_id: [u8; 4],
    signature: Vec<u8>,
}

struct Entry {
    checkpoint: VaultCheckpoint,
    signatures: BTreeMap<DepartmentId, NoteSignature>,
}

#[derive(Default)]
struct Inner {
    entries: BTreeMap<u64, Entry>,
    waiting: BTreeMap<u64, Vec<Cosignature>>,
    waiting_len: usize,
}

/// The node's checkpoints and their cosignatures.
pub struct Checkpoints {
    ctx: Arc<NodeContext>,
    inner: Mutex<Inner>,
}

impl Checkpoints {
    /// Starts signing committed blocks, exchanging signatures, and collecting them.
    pub fn start(
        ctx: Arc<NodeContext>,
        net: Network,
        inbound: Inbound,
        signing: KeyPair,
    ) -> Arc<Self> {
        let cp = Arc::new(Self {
            ctx,
            inner: Mutex::new(Inner::default()),
        });
        cp.clone().spawn_signer(net, signing);
        cp.clone().spawn_receiver(inbound);
        cp
    }

    fn spawn_signer(self: Arc<Self>, net: Network, signing: KeyPair) {
        let mut heads = self.ctx.head.clone();
        tokio::spawn(async move {
            let mut done = heads.borrow().height;
            while heads.changed().await.is_ok() {
                let head = heads.borrow_and_update().height;
                for h in (done + 1).max(head.saturating_sub(SIGN_RECENT - 1))..=head {
                    match self.sign_height(h, &signing) {
                        Ok(Some(c)) => {
                            if let Ok(bytes) = borsh::to_vec(&c) {
                                net.broadcast(CHANNEL_COSIGNATURES, Bytes::from(bytes));
                            }
                        }
                        Ok(None) => {}
                        Err(e) => {
                            tracing::warn!(height = h, error = %e, "cannot sign the checkpoint")
                        }
                    }
                }
                done = head;
            }
        });
    }

    fn spawn_receiver(self: Arc<Self>, mut inbound: Inbound) {
        tokio::spawn(async move {
            while let Some((from, bytes)) = inbound.recv().await {
                match borsh::from_slice::<Cosignature>(&bytes) {
                    Ok(c) => self.receive(&from, c),
                    Err(e) => tracing::debug!(%from, error = %e, "undecodable cosignature"),
                }
            }
        });
    }

    /// Builds, signs and records the checkpoint of committed block `height`.
    fn sign_height(&self, height: u64, signing: &KeyPair) -> Result<Option<Cosignature>, String> {
        let Some(header) = self.ctx.store.header(height).map_err(|e| e.to_string())? else {
            return Ok(None);
        };
        let gov = self.ctx.governance().map_err(|e| e.to_string())?;
        let suite = self.ctx.store.suite();
        let checkpoint = VaultCheckpoint::from_header(&gov.chain_id, &header, suite);
        let me = self.ctx.department.clone();
        let sig = checkpoint.sign(&me, signing);
        let cosig = Cosignature {
            height,
            block: header.hash(suite),
            department: me.clone(),
            key_id: sig.key_id,
            signature: sig.signature.clone(),
        };
        let waiting = {
            let mut inner = self.lock();
            inner.entries.entry(height).or_insert_with(|| Entry {
                checkpoint,
                signatures: BTreeMap::new(),
            });
            if let Some(e) = inner.entries.get_mut(&height) {
                e.signatures.insert(me, sig);
            }
            while inner.entries.len() > KEEP {
                inner.entries.pop_first();
            }
            let w = inner.waiting.remove(&height).unwrap_or_default();
            inner.waiting_len -= w.len();
            w
        };
        for c in waiting {
            self.accept(&gov, c);
        }
        Ok(Some(cosig))
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn receive(&self, from: &PublicKey, c: Cosignature) {
        let Ok(gov) = self.ctx.governance() else {
            return;
        };
        // Only a department's own node sends its signatures.
        let sender_ok = gov
            .member(&c.department)
            .and_then(|m| m.current_node_key())
            .is_some_and(|k| k == from);
        if !sender_ok {
            tracing::debug!(%from, department = %c.department, "cosignature from another node than the department's");
            return;
        }
        let known = self.lock().entries.contains_key(&c.height);
        if known {
            self.accept(&gov, c);
        } else if c.height > self.ctx.head().height {
            let mut inner = self.lock();
            if inner.waiting_len < MAX_WAITING {
                inner.waiting_len += 1;
                inner.waiting.entry(c.height).or_default().push(c);
            }
        }
    }

    /// Checks a department's signature against this node's checkpoint of the same height.
    fn accept(&self, gov: &Governance, c: Cosignature) {
        let mut inner = self.lock();
        let Some(entry) = inner.entries.get_mut(&c.height) else {
            return;
        };
        if entry.checkpoint.block.hash != c.block {
            tracing::error!(
                height = c.height,
                department = %c.department,
                ours = %entry.checkpoint.block.hash,
                theirs = %c.block,
                "a department signed a different block at this height: split view"
            );
            return;
        }
        let name = cosigner_name(&c.department, &gov.chain_id);
        let sig = NoteSignature {
            name: name.clone(),
            key_id: c.key_id,
            signature: c.signature,
        };
        let body = entry.checkpoint.to_body();
        let at = entry.checkpoint.block.time;
        let ok = gov.member(&c.department).is_some_and(|m| {
            m.signing_keys
                .iter()
                .filter(|p| p.covers(at))
                .any(|p| verify_note_signature(&body, &sig, &name, &p.key).is_ok())
        });
        if ok {
            entry.signatures.insert(c.department, sig);
        } else {
            tracing::warn!(height = c.height, department = %c.department, "a checkpoint signature does not verify");
        }
    }

    /// The cosigned note of `height` (or the newest cosigned one), if more than two thirds of
    /// the members signed it.
    pub fn note(&self, height: Option<u64>) -> Option<String> {
        let gov = self.ctx.governance().ok()?;
        let quorum = Governance::quorum(gov.current_members().count());
        let inner = self.lock();
        let entry = match height {
            Some(h) => inner
                .entries
                .get(&h)
                .filter(|e| e.signatures.len() >= quorum)?,
            None => inner
                .entries
                .values()
                .rev()
                .find(|e| e.signatures.len() >= quorum)?,
        };
        entry
            .checkpoint
            .note(entry.signatures.values().cloned().collect())
            .to_text()
            .ok()
    }

    /// The routes: `GET /checkpoint` and `GET /v1/checkpoints/{height}`.
    pub fn router(self: Arc<Self>) -> Router {
        Router::new()
            .route("/checkpoint", get(latest))
            .route("/v1/checkpoint", get(latest))
            .route("/v1/checkpoints/{height}", get(at_height))
            .with_state(self)
    }
}

fn note_response(note: String) -> Response {
    (
        StatusCode::OK,
        [(header::CONTENT_TYPE, "text/plain; charset=utf-8")],
        note,
    )
        .into_response()
}

async fn latest(State(cp): State<Arc<Checkpoints>>) -> Result<Response, ApiError> {
    cp.note(None).map(note_response).ok_or_else(|| {
        ApiError::not_found("no checkpoint is cosigned by more than two thirds of the members yet")
    })
}

async fn at_height(
    State(cp): State<Arc<Checkpoints>>,
    Path(height): Path<u64>,
) -> Result<Response, ApiError> {
    cp.note(Some(height)).map(note_response).ok_or_else(|| {
        ApiError::not_found(format!(
            "no checkpoint of height {height} cosigned by more than two thirds of the members here"
        ))
    })
}
