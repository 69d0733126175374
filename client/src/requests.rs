//! Signed vault requests: building, signing and carrying them in the `Vault-Request` header.
//!
//! Reading a document or storing a file is not a transaction, but it is signed all the same
//! ([`vault_protocol::access`]). A node refuses a signed request it has already used, so sign a
//! new one for every call: each helper here takes the time and a fresh random nonce.

use base64::Engine as _;
use vault_protocol::access::{AccessRequest, RequestAction, Requester, SignedAccessRequest};
use vault_protocol::crypto::{Digest, KeyPair};
use vault_protocol::encoding::{BoundedString, Canonical, DecodeError};
use vault_protocol::ids::{AttestationId, ChainId, Timestamp};

use crate::ClientError;

/// The header that carries a signed request.
pub const REQUEST_HEADER: &str = "Vault-Request";

/// The current time, as the ledger counts it (milliseconds since the epoch, UTC).
pub fn now() -> Timestamp {
    std::time::SystemTime::now().into()
}

/// A random nonce from the operating system. Should the OS refuse randomness (it practically
/// never does), the clock's nanoseconds stand in: a nonce needs to be distinct, not secret.
pub fn random_nonce() -> u64 {
    let mut b = [0u8; 8];
    match getrandom::getrandom(&mut b) {
        Ok(()) => u64::from_le_bytes(b),
        Err(_) => std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_nanos() as u64)
            .unwrap_or(0),
    }
}

/// The `Vault-Request` header value: base64 (standard alphabet, padded) of the signed request's
/// canonical encoding.
pub fn request_header(signed: &SignedAccessRequest) -> String {
    base64::engine::general_purpose::STANDARD.encode(signed.encode())
}

/// Why a `Vault-Request` header value could not be read back.
#[derive(Debug, thiserror::Error)]
pub enum HeaderError {
    /// Not base64.
    #[error("not base64: {0}")]
    Base64(#[from] base64::DecodeError),
    /// Not a signed request's canonical encoding.
    #[error("not a signed request: {0}")]
    Decode(#[from] DecodeError),
}

/// Reads a `Vault-Request` header value back into the signed request (the inverse of
/// [`request_header`]).
pub fn decode_request_header(value: &str) -> Result<SignedAccessRequest, HeaderError> {
    let bytes = base64::engine::general_purpose::STANDARD.decode(value.trim())?;
    Ok(SignedAccessRequest::decode(&bytes)?)
}

/// A signed request to read the document of `attestation` for the procedure `purpose` (a grant's
/// purpose code), made now with a fresh nonce.
pub fn read_request(
    chain_id: &ChainId,
    requester: Requester,
    attestation: AttestationId,
    purpose: &str,
    key: &KeyPair,
) -> Result<SignedAccessRequest, ClientError> {
    let purpose = BoundedString::<64>::new(purpose).map_err(|e| {
        ClientError::InvalidRequest(format!(
            "purpose code of {} bytes; at most {}",
            e.len, e.max
        ))
    })?;
    Ok(sign(
        chain_id,
        requester,
        RequestAction::Read {
            attestation,
            purpose,
        },
        key,
    ))
}

/// A signed request to store a file of `size` bytes with SHA-256 `digest`, made now with a fresh
/// nonce.
pub fn upload_request(
    chain_id: &ChainId,
    requester: Requester,
    digest: Digest,
    size: u64,
    key: &KeyPair,
) -> SignedAccessRequest {
    sign(
        chain_id,
        requester,
        RequestAction::Upload { digest, size },
        key,
    )
}

fn sign(
    chain_id: &ChainId,
    requester: Requester,
    action: RequestAction,
    key: &KeyPair,
) -> SignedAccessRequest {
    AccessRequest {
        chain_id: chain_id.clone(),
        requester,
        action,
        created_at: now(),
        nonce: random_nonce(),
    }
    .sign(key)
}

#[cfg(test)]
mod tests {
    use super::*;
    use vault_protocol::crypto::CryptoSuite;
    use vault_protocol::ids::DepartmentId;

    fn key() -> KeyPair {
        KeyPair::from_seed(CryptoSuite::Ed25519Sha256, [7; 32])
    }

    #[test]
    fn header_round_trip() {
        let chain = ChainId::new("test-chain").unwrap();
        let signed = read_request(
            &chain,
            Requester::Department(DepartmentId::new("housing").unwrap()),
            AttestationId(Digest([3; 32])),
            "P-001",
            &key(),
        )
        .unwrap();
        let header = request_header(&signed);
        // Standard alphabet with padding, as the API contract says.
        assert!(header
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '+' || c == '/' || c == '='));
        assert_eq!(header.len() % 4, 0);
        assert_eq!(decode_request_header(&header).unwrap(), signed);

        let upload = upload_request(
            &chain,
            Requester::Application(key().public()),
            Digest([9; 32]),
            1234,
            &key(),
        );
        assert_eq!(
            decode_request_header(&request_header(&upload)).unwrap(),
            upload
        );
        assert_ne!(request_header(&upload), header);
    }

    #[test]
    fn header_refuses_garbage() {
        assert!(matches!(
            decode_request_header("not base64!"),
            Err(HeaderError::Base64(_))
        ));
        assert!(matches!(
            decode_request_header("AAAA"),
            Err(HeaderError::Decode(_))
        ));
    }

    #[test]
    fn each_request_is_distinct() {
        let chain = ChainId::new("test-chain").unwrap();
        let a = upload_request(
            &chain,
            Requester::Application(key().public()),
            Digest([1; 32]),
            1,
            &key(),
        );
        let b = upload_request(
            &chain,
            Requester::Application(key().public()),
            Digest([1; 32]),
            1,
            &key(),
        );
        assert_ne!(a.request.nonce, b.request.nonce);
    }

    #[test]
    fn purpose_is_bounded() {
        let chain = ChainId::new("test-chain").unwrap();
        let long = "x".repeat(65);
        assert!(matches!(
            read_request(
                &chain,
                Requester::Application(key().public()),
                AttestationId(Digest([3; 32])),
                &long,
                &key()
            ),
            Err(ClientError::InvalidRequest(_))
        ));
    }
}
