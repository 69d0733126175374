//! Signed vault requests: who may store a file in a node's vault, and who may read a document.
//!
//! Files never travel on the ledger, so reading one is not a transaction — but it is just as
//! signed. A requester signs an [`AccessRequest`] (under [`Domain::AccessRequest`]) naming the
//! chain, itself, what it wants and when; the node it asks checks the signature against the
//! ledger's keys ([`authenticate`]) and, for a read, that a grant in force covers the document for
//! that purpose ([`authorise_read`]). A node that fetches the file from another node forwards the
//! same signed request, so the holder checks the reader itself, against its own ledger state.

use borsh::{BorshDeserialize, BorshSerialize};
use serde::{Deserialize, Serialize};

use crate::crypto::{Digest, Domain, KeyPair, PublicKey, Signature};
use crate::encoding::{BoundedString, Canonical};
use crate::governance::Governance;
use crate::ids::{AttestationId, ChainId, DepartmentId, GrantId, Timestamp};
use crate::state::{self, AccessRefusal, AttestationRecord, GrantRecord, StateView, StoreError};
use crate::tx::Grantee;
use crate::uscc::Uscc;

/// How far a request's time may be from the node's clock, either way.
pub const REQUEST_WINDOW_MS: u64 = 5 * 60 * 1000;

/// Who makes a request.
#[derive(
    Debug, Clone, PartialEq, Eq, Hash, BorshSerialize, BorshDeserialize, Serialize, Deserialize,
)]
#[serde(rename_all = "snake_case")]
pub enum Requester {
    /// A member department, signing with its signing key.
    Department(DepartmentId),
    /// An enrolled enterprise, signing with its current key.
    Enterprise(Uscc),
    /// A relying application, by its own key.
    Application(PublicKey),
}

impl Requester {
    /// The grantee this requester reads as (enterprises are not grantees).
    pub fn as_grantee(&self) -> Option<Grantee> {
        match self {
            Requester::Department(d) => Some(Grantee::Department(d.clone())),
            Requester::Application(k) => Some(Grantee::Application(*k)),
            Requester::Enterprise(_) => None,
        }
    }
}

impl std::fmt::Display for Requester {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Requester::Department(d) => write!(f, "department {d}"),
            Requester::Enterprise(u) => write!(f, "enterprise {u}"),
            Requester::Application(k) => write!(f, "application {k}"),
        }
    }
}

/// What a request asks for.
#[derive(Debug, Clone, PartialEq, Eq, BorshSerialize, BorshDeserialize, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RequestAction {
    /// Read the document of an attestation, for a procedure (the purpose code of a grant).
    Read {
        /// The attestation.
        attestation: AttestationId,
        /// The purpose code the read is for.
        purpose: BoundedString<64>,
    },
    /// Store a file in the vault.
    Upload {
        /// SHA-256 of the file.
        digest: Digest,
        /// Its size in bytes.
        size: u64,
    },
}

/// A request to a node's vault.
#[derive(Debug, Clone, PartialEq, Eq, BorshSerialize, BorshDeserialize, Serialize, Deserialize)]
pub struct AccessRequest {
    /// The chain.
    pub chain_id: ChainId,
    /// Who asks.
    pub requester: Requester,
    /// What for.
    pub action: RequestAction,
    /// When it was made; accepted within [`REQUEST_WINDOW_MS`] of the node's clock.
    pub created_at: Timestamp,
    /// Makes each request distinct (a node refuses a request it has already served).
    pub nonce: u64,
}

impl Canonical for AccessRequest {
    const MAX_ENCODED_LEN: usize = 1024;
}

impl AccessRequest {
    /// Signs the request.
    pub fn sign(self, key: &KeyPair) -> SignedAccessRequest {
        let signature = key.sign(Domain::AccessRequest, &self.encode());
        SignedAccessRequest {
            request: self,
            signer: key.public(),
            signature,
        }
    }
}

/// A request with its signature.
#[derive(Debug, Clone, PartialEq, Eq, BorshSerialize, BorshDeserialize, Serialize, Deserialize)]
pub struct SignedAccessRequest {
    /// The request.
    pub request: AccessRequest,
    /// The signing key.
    pub signer: PublicKey,
    /// The signature over the request's canonical encoding.
    pub signature: Signature,
}

impl Canonical for SignedAccessRequest {
    const MAX_ENCODED_LEN: usize = 1024 + 128;
}

impl SignedAccessRequest {
    /// A digest identifying this signed request (for replay detection).
    pub fn digest(&self, gov: &Governance) -> Digest {
        gov.suite.hash(Domain::AccessRequest, &[&self.encode()])
    }
}

/// Why a request is refused. Each variant has a stable code ([`RequestRefusal::code`]).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RequestRefusal {
    /// For another chain.
    #[error("the request is for chain {found}, this is {expected}")]
    WrongChain {
        /// This chain.
        expected: String,
        /// The request's.
        found: String,
    },
    /// Too old or too far in the future.
    #[error("the request was made at {created_at}; requests are accepted within {window_ms} ms of {now}")]
    OutsideWindow {
        /// Its time.
        created_at: Timestamp,
        /// The node's time.
        now: Timestamp,
        /// The window.
        window_ms: u64,
    },
    /// The signature does not verify.
    #[error("the request's signature does not verify")]
    BadSignature,
    /// The key is not the requester's.
    #[error("key {signer} is not a current key of {requester}")]
    WrongSigner {
        /// Who the request claims to be from.
        requester: String,
        /// The key that signed.
        signer: PublicKey,
    },
    /// The department is not a member.
    #[error("department {department} is not a member")]
    NotMember {
        /// The department.
        department: DepartmentId,
    },
    /// The enterprise is not enrolled.
    #[error("enterprise {enterprise} is not enrolled")]
    NotEnrolled {
        /// The enterprise.
        enterprise: Uscc,
    },
    /// The request asks for something else than the endpoint serves.
    #[error("the request is for {found}, not {expected}")]
    WrongAction {
        /// What the endpoint serves.
        expected: &'static str,
        /// What the request asks.
        found: &'static str,
    },
    /// This requester cannot read under grants.
    #[error("{requester} cannot read under a grant (grants are to departments and applications)")]
    NotAGrantee {
        /// The requester.
        requester: String,
    },
    /// No such attestation.
    #[error("no attestation {attestation}")]
    UnknownAttestation {
        /// The id.
        attestation: AttestationId,
    },
    /// No grant permits the read.
    #[error("read refused: {0}")]
    Access(AccessRefusal),
    /// The same signed request was already used.
    #[error("this signed request was already used; sign a new one")]
    Replayed,
}

impl RequestRefusal {
    /// A stable machine-readable code.
    pub fn code(&self) -> &'static str {
        match self {
            RequestRefusal::WrongChain { .. } => "wrong_chain",
            RequestRefusal::OutsideWindow { .. } => "request_outside_window",
            RequestRefusal::BadSignature => "bad_signature",
            RequestRefusal::WrongSigner { .. } => "wrong_signer",
            RequestRefusal::NotMember { .. } => "not_member",
            RequestRefusal::NotEnrolled { .. } => "not_enrolled",
            RequestRefusal::WrongAction { .. } => "wrong_action",
            RequestRefusal::NotAGrantee { .. } => "not_a_grantee",
            RequestRefusal::UnknownAttestation { .. } => "unknown_attestation",
            RequestRefusal::Access(r) => r.code(),
            RequestRefusal::Replayed => "request_replayed",
        }
    }
}

/// A refusal, or a failure of the state underneath.
#[derive(Debug, thiserror::Error)]
pub enum RequestError {
    /// Refused.
    #[error(transparent)]
    Refused(#[from] RequestRefusal),
    /// The state could not be read.
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// A request whose signature and signer were checked against the ledger.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AuthenticatedRequest {
    signed: SignedAccessRequest,
}

impl AuthenticatedRequest {
    /// The request.
    pub fn request(&self) -> &AccessRequest {
        &self.signed.request
    }

    /// The signed request (to forward to another node).
    pub fn signed(&self) -> &SignedAccessRequest {
        &self.signed
    }
}

fn action_name(a: &RequestAction) -> &'static str {
    match a {
        RequestAction::Read { .. } => "a read",
        RequestAction::Upload { .. } => "an upload",
    }
}

/// Checks the chain, the time window, the signature, and that the key is the requester's at
/// `now`: a department's signing key in force, an enterprise's current key, an application's own.
pub fn authenticate<V: StateView + ?Sized>(
    view: &V,
    gov: &Governance,
    signed: SignedAccessRequest,
    now: Timestamp,
) -> Result<AuthenticatedRequest, RequestError> {
    let r = &signed.request;
    if r.chain_id != gov.chain_id {
        return Err(RequestRefusal::WrongChain {
            expected: gov.chain_id.to_string(),
            found: r.chain_id.to_string(),
        }
        .into());
    }
    if r.created_at < now.minus(REQUEST_WINDOW_MS) || r.created_at > now.plus(REQUEST_WINDOW_MS) {
        return Err(RequestRefusal::OutsideWindow {
            created_at: r.created_at,
            now,
            window_ms: REQUEST_WINDOW_MS,
        }
        .into());
    }
    gov.suite
        .verify(
            Domain::AccessRequest,
            &signed.signer,
            &r.encode(),
            &signed.signature,
        )
        .map_err(|_| RequestRefusal::BadSignature)?;
    let wrong_signer = || RequestRefusal::WrongSigner {
        requester: r.requester.to_string(),
        signer: signed.signer,
    };
    match &r.requester {
        Requester::Department(d) => {
            let rec = gov
                .member(d)
                .filter(|m| m.is_member_at(now))
                .ok_or_else(|| RequestRefusal::NotMember {
                    department: d.clone(),
                })?;
            if !rec.signing_key_valid_at(&signed.signer, now) {
                return Err(wrong_signer().into());
            }
        }
        Requester::Enterprise(u) => {
            let rec = state::enterprise(view, u)?
                .ok_or(RequestRefusal::NotEnrolled { enterprise: *u })?;
            if rec.current_key() != Some(&signed.signer) {
                return Err(wrong_signer().into());
            }
        }
        Requester::Application(k) => {
            if k != &signed.signer {
                return Err(wrong_signer().into());
            }
        }
    }
    Ok(AuthenticatedRequest { signed })
}

/// A read the ledger permits: the attestation, the grant it is read under, and the reader.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PermittedRead {
    /// The reader.
    pub reader: Grantee,
    /// The attestation whose document is read.
    pub attestation: AttestationRecord,
    /// The grant in force that covers it.
    pub grant: GrantRecord,
    /// The grant's id.
    pub grant_id: GrantId,
}

/// Whether an authenticated read request is permitted at `now`: the attestation exists, the
/// requester is a grantee, and a grant from the attestation's subject to the requester is in
/// force, covers the document and is for the purpose asked. A refusal says exactly why (no
/// grant, expired, withdrawn, out of scope, another purpose).
pub fn authorise_read<V: StateView + ?Sized>(
    view: &V,
    req: &AuthenticatedRequest,
    now: Timestamp,
) -> Result<PermittedRead, RequestError> {
    let r = req.request();
    let RequestAction::Read {
        attestation,
        purpose,
    } = &r.action
    else {
        return Err(RequestRefusal::WrongAction {
            expected: "a read",
            found: action_name(&r.action),
        }
        .into());
    };
    let reader = r
        .requester
        .as_grantee()
        .ok_or_else(|| RequestRefusal::NotAGrantee {
            requester: r.requester.to_string(),
        })?;
    let record =
        state::attestation(view, attestation)?.ok_or(RequestRefusal::UnknownAttestation {
            attestation: *attestation,
        })?;
    match state::find_grant(view, &reader, &record, Some(purpose.as_str()), now)? {
        Ok(grant) => Ok(PermittedRead {
            reader,
            grant_id: grant.id,
            attestation: record,
            grant,
        }),
        Err(refusal) => Err(RequestRefusal::Access(refusal).into()),
    }
}

/// The digest and size an authenticated upload request declares, if it is one.
pub fn upload_of(req: &AuthenticatedRequest) -> Result<(Digest, u64), RequestRefusal> {
    match &req.request().action {
        RequestAction::Upload { digest, size } => Ok((*digest, *size)),
        other => Err(RequestRefusal::WrongAction {
            expected: "an upload",
            found: action_name(other),
        }),
    }
}
