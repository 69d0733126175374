//! Locks down the canonical encoding (`vault_protocol::encoding::Canonical`) three ways:
//!
//! 1. **Round-trip properties** (proptest) for every wire type and stored record — transactions
//!    and signed transactions with every `TxBody` and `GovernanceAction` variant, blocks and
//!    headers, the genesis, Merkle proofs and frontiers, and the state records: encode → decode is
//!    the identity, the decoded value re-encodes to the same bytes, the serde JSON form round-trips
//!    to the same value, an appended byte is `TrailingBytes`, a truncation is an error and any
//!    other version byte is `UnsupportedVersion`. The largest values the bounds allow must fit
//!    each type's `MAX_ENCODED_LEN`.
//! 2. **Committed test vectors** (`tests/vectors/*.txt`): a fixed chain built from
//!    `TestNetwork::new(&["samr", "tax", "hrss", "housing"])` with fixed times and nonces — one
//!    signed transaction per `TxBody` variant, the genesis, the block `MemoryLedger` builds from
//!    them and the state records it writes — must encode to exactly the committed hex, with the
//!    committed ids, hashes and signatures. Any change of format fails. The committed files must
//!    also stand on their own: they decode, their signatures verify and the block applies.
//!
//!    To regenerate after an *intended* format change (which needs a new `FORMAT_VERSION` once
//!    real data exists):
//!
//!    ```text
//!    VAULT_UPDATE_VECTORS=1 cargo test -p vault-protocol --test encoding vectors
//!    cargo test -p vault-protocol --test encoding     # must now pass
//!    ```
//!
//!    With `VAULT_UPDATE_VECTORS=1` the test rewrites the files and still fails ("vectors
//!    updated; re-run"), so it can never pass silently.
//! 3. **Canonicality under arbitrary input**: random bytes and random mutations (bit flips,
//!    insertions, deletions, overwrites) of valid encodings are fed to every decoder; whenever
//!    decoding succeeds the value must re-encode to exactly the input. The check is the one the
//!    cargo-fuzz targets run (`protocol/fuzz/src/canonical.rs`, included below), so the fuzz code
//!    is compiled and exercised here on stable.

use std::collections::BTreeMap;
use std::fmt::Debug;
use std::path::PathBuf;

use borsh::{BorshDeserialize, BorshSerialize};
use proptest::prelude::*;
use proptest::sample::Index;
use proptest::strategy::Union;
use serde::de::DeserializeOwned;
use serde::Serialize;

use vault_protocol::block::{Block, BlockHeader};
use vault_protocol::crypto::{CryptoSuite, Digest, KeyPair, PublicKey, Signature};
use vault_protocol::encoding::{BoundedString, BoundedVec, Canonical, DecodeError, FORMAT_VERSION};
use vault_protocol::genesis::{Genesis, GenesisDepartment, GenesisDocumentType};
use vault_protocol::governance::{
    DepartmentRecord, DocumentTypeRecord, Governance, IssuerPeriod, KeyPeriod, Params, DAY_MS,
};
use vault_protocol::ids::{
    AttestationId, BlockHash, ChainId, DepartmentId, DocTypeCode, GrantId, ReceiptId, Timestamp,
    TxId,
};
use vault_protocol::ledger::{test_key, MemoryLedger, TestNetwork};
use vault_protocol::merkle::{
    ConsistencyProof, Frontier, Hash, InclusionProof, LogHasher, Sha256LogHasher,
    MAX_CONSISTENCY_PATH_LEN, MAX_INCLUSION_PATH_LEN,
};
use vault_protocol::state::{
    self, AttestationRecord, ChainHead, EnterpriseRecord, GrantRecord, ReceiptRecord, Status,
    StatusEvent, TxLocation,
};
use vault_protocol::tx::{
    receipt_id, AccessRead, AccessReceipts, Attestation, Claim, DocumentType, Endorsement,
    Enrolment, EnterpriseKeyRotation, GovernanceAction, Grant, GrantScope, GrantWithdrawal,
    Grantee, Purpose, SignedTransaction, StatusAction, StatusChange, Transaction, TxBody,
    MAX_CLAIMS, MAX_ENDORSEMENTS, MAX_READS, MAX_SCOPE,
};
use vault_protocol::uscc::{compute_check_character, compute_org_check_character, Uscc, ALPHABET};

#[path = "../fuzz/src/canonical.rs"]
mod canonical;

// =============================================================================================
// Strategies
// =============================================================================================

/// Drops characters from the end until `s` is at most `max` bytes.
fn truncate_to(mut s: String, max: usize) -> String {
    while s.len() > max {
        s.pop();
    }
    s
}

/// A bounded string: usually short, of any Unicode (CJK included), sometimes filled to the bound.
fn bounded_string<const N: usize>() -> impl Strategy<Value = BoundedString<N>> {
    let short = prop::collection::vec(any::<char>(), 0..=12);
    let full = prop::collection::vec(prop_oneof![Just('数'), Just('a'), any::<char>()], N..=N);
    prop_oneof![6 => short, 1 => full].prop_map(|chars| {
        let s = truncate_to(chars.into_iter().collect(), N);
        BoundedString::new(s).expect("truncated to the bound")
    })
}

/// A bounded vector of `len` elements.
fn bounded_vec<S, const N: usize>(
    element: S,
    len: std::ops::RangeInclusive<usize>,
) -> impl Strategy<Value = BoundedVec<S::Value, N>>
where
    S: Strategy,
    S::Value: Debug,
{
    prop::collection::vec(element, len).prop_map(|v| BoundedVec::new(v).expect("within the bound"))
}

/// A valid USCC (GB 32100-2015), with both check characters computed.
fn uscc() -> impl Strategy<Value = Uscc> {
    let kinds = prop::sample::select(vec![
        ('9', '1'),
        ('9', '2'),
        ('9', '3'),
        ('1', '1'),
        ('1', '9'),
        ('3', '4'),
        ('5', '1'),
        ('5', '3'),
        ('N', '2'),
        ('Y', '1'),
    ]);
    let division = prop_oneof![
        4 => (
            prop::sample::select(vec!["11", "31", "35", "37", "44", "51", "65", "81"]),
            0u32..10_000
        )
            .prop_map(|(province, rest)| format!("{province}{rest:04}")),
        1 => Just("100000".to_string()),
    ];
    let alphabet: Vec<char> = ALPHABET.chars().collect();
    let body = prop::collection::vec(prop::sample::select(alphabet), 8);
    (kinds, division, body).prop_map(|((authority, kind), division, body)| {
        let body: String = body.into_iter().collect();
        let org = compute_org_check_character(&body).expect("8 alphabet characters");
        let first17 = format!("{authority}{kind}{division}{body}{org}");
        let check = compute_check_character(&first17).expect("17 alphabet characters");
        Uscc::parse(&format!("{first17}{check}")).expect("a valid USCC")
    })
}

fn department_id() -> impl Strategy<Value = DepartmentId> {
    "[a-z0-9-]{2,32}".prop_map(|s| DepartmentId::new(&s).expect("matches the alphabet"))
}

fn doc_type() -> impl Strategy<Value = DocTypeCode> {
    "[A-Z0-9_.]{2,40}".prop_map(|s| DocTypeCode::new(&s).expect("matches the alphabet"))
}

fn chain_id() -> impl Strategy<Value = ChainId> {
    "[a-z0-9.-]{2,64}".prop_map(|s| ChainId::new(&s).expect("matches the alphabet"))
}

fn hash() -> impl Strategy<Value = Hash> {
    any::<[u8; 32]>()
}

fn digest() -> impl Strategy<Value = Digest> {
    hash().prop_map(Digest)
}

fn public_key() -> impl Strategy<Value = PublicKey> {
    hash().prop_map(PublicKey::from_bytes)
}

fn signature() -> impl Strategy<Value = Signature> {
    (hash(), hash()).prop_map(|(r, s)| {
        let mut bytes = [0u8; 64];
        bytes[..32].copy_from_slice(&r);
        bytes[32..].copy_from_slice(&s);
        Signature::from_bytes(bytes)
    })
}

fn timestamp() -> impl Strategy<Value = Timestamp> {
    any::<u64>().prop_map(Timestamp)
}

fn opt_timestamp() -> impl Strategy<Value = Option<Timestamp>> {
    proptest::option::of(timestamp())
}

fn tx_id() -> impl Strategy<Value = TxId> {
    digest().prop_map(TxId)
}

fn attestation_id() -> impl Strategy<Value = AttestationId> {
    digest().prop_map(AttestationId)
}

fn grant_id() -> impl Strategy<Value = GrantId> {
    digest().prop_map(GrantId)
}

fn claim() -> impl Strategy<Value = Claim> {
    (bounded_string(), bounded_string()).prop_map(|(key, value)| Claim { key, value })
}

fn attestation() -> impl Strategy<Value = Attestation> {
    (
        department_id(),
        uscc(),
        doc_type(),
        digest(),
        bounded_vec(claim(), 0..=4),
        timestamp(),
        opt_timestamp(),
        proptest::option::of(attestation_id()),
    )
        .prop_map(
            |(
                issuer,
                subject,
                doc_type,
                file_digest,
                claims,
                valid_from,
                valid_until,
                supersedes,
            )| {
                Attestation {
                    issuer,
                    subject,
                    doc_type,
                    file_digest,
                    claims,
                    valid_from,
                    valid_until,
                    supersedes,
                }
            },
        )
}

fn status_action() -> impl Strategy<Value = StatusAction> {
    prop_oneof![
        Just(StatusAction::Suspend),
        Just(StatusAction::Reinstate),
        Just(StatusAction::Revoke),
    ]
}

fn status_change() -> impl Strategy<Value = StatusChange> {
    (
        department_id(),
        attestation_id(),
        status_action(),
        any::<u16>(),
        bounded_string(),
    )
        .prop_map(
            |(department, attestation, action, reason_code, note)| StatusChange {
                department,
                attestation,
                action,
                reason_code,
                note,
            },
        )
}

fn grantee() -> impl Strategy<Value = Grantee> {
    prop_oneof![
        department_id().prop_map(Grantee::Department),
        public_key().prop_map(Grantee::Application),
    ]
}

fn grant_scope() -> impl Strategy<Value = GrantScope> {
    prop_oneof![
        bounded_vec(doc_type(), 0..=4).prop_map(GrantScope::DocumentTypes),
        bounded_vec(attestation_id(), 0..=4).prop_map(GrantScope::Attestations),
    ]
}

fn purpose() -> impl Strategy<Value = Purpose> {
    (bounded_string(), bounded_string()).prop_map(|(code, text)| Purpose { code, text })
}

fn grant() -> impl Strategy<Value = Grant> {
    (uscc(), grantee(), grant_scope(), purpose(), timestamp()).prop_map(
        |(enterprise, grantee, scope, purpose, expires_at)| Grant {
            enterprise,
            grantee,
            scope,
            purpose,
            expires_at,
        },
    )
}

fn grant_withdrawal() -> impl Strategy<Value = GrantWithdrawal> {
    (uscc(), grant_id()).prop_map(|(enterprise, grant)| GrantWithdrawal { enterprise, grant })
}

fn access_read() -> impl Strategy<Value = AccessRead> {
    (grantee(), attestation_id(), grant_id(), timestamp()).prop_map(
        |(reader, attestation, grant, read_at)| AccessRead {
            reader,
            attestation,
            grant,
            read_at,
        },
    )
}

fn access_receipts() -> impl Strategy<Value = AccessReceipts> {
    (department_id(), bounded_vec(access_read(), 0..=4))
        .prop_map(|(recorder, reads)| AccessReceipts { recorder, reads })
}

fn enrolment() -> impl Strategy<Value = Enrolment> {
    (department_id(), uscc(), public_key()).prop_map(|(department, enterprise, key)| Enrolment {
        department,
        enterprise,
        key,
    })
}

fn key_rotation() -> impl Strategy<Value = EnterpriseKeyRotation> {
    (uscc(), public_key()).prop_map(|(enterprise, new_key)| EnterpriseKeyRotation {
        enterprise,
        new_key,
    })
}

fn document_type() -> impl Strategy<Value = DocumentType> {
    (
        doc_type(),
        bounded_string(),
        bounded_string(),
        proptest::option::of(any::<u32>()),
        any::<bool>(),
    )
        .prop_map(
            |(code, name_zh, name_en, max_validity_days, requires_expiry)| DocumentType {
                code,
                name_zh,
                name_en,
                max_validity_days,
                requires_expiry,
            },
        )
}

/// One value of each `GovernanceAction` variant, in declaration order.
fn every_governance_action() -> impl Strategy<Value = Vec<GovernanceAction>> {
    (
        (
            department_id(),
            bounded_string(),
            public_key(),
            public_key(),
        ),
        department_id(),
        document_type(),
        (department_id(), doc_type()),
        (department_id(), doc_type()),
        (department_id(), public_key(), public_key(), timestamp()),
    )
        .prop_map(|(admit, remove, define, authorise, withdraw, rotate)| {
            vec![
                GovernanceAction::AdmitDepartment {
                    department: admit.0,
                    name: admit.1,
                    signing_key: admit.2,
                    node_key: admit.3,
                },
                GovernanceAction::RemoveDepartment { department: remove },
                GovernanceAction::DefineDocumentType(define),
                GovernanceAction::AuthoriseIssuer {
                    department: authorise.0,
                    doc_type: authorise.1,
                },
                GovernanceAction::WithdrawIssuer {
                    department: withdraw.0,
                    doc_type: withdraw.1,
                },
                GovernanceAction::RotateDepartmentKeys {
                    department: rotate.0,
                    signing_key: rotate.1,
                    node_key: rotate.2,
                    previous_valid_until: rotate.3,
                },
            ]
        })
}

/// One body of each `TxBody` variant, the governance one once per `GovernanceAction` variant.
fn every_tx_body() -> impl Strategy<Value = Vec<TxBody>> {
    (
        every_governance_action(),
        enrolment(),
        key_rotation(),
        attestation(),
        status_change(),
        grant(),
        grant_withdrawal(),
        access_receipts(),
    )
        .prop_map(
            |(governance, enrol, rotate, issue, status, grant, withdraw, access)| {
                let mut bodies: Vec<TxBody> =
                    governance.into_iter().map(TxBody::Governance).collect();
                bodies.extend([
                    TxBody::EnrolEnterprise(enrol),
                    TxBody::RotateEnterpriseKey(rotate),
                    TxBody::IssueAttestation(issue),
                    TxBody::SetStatus(status),
                    TxBody::Grant(grant),
                    TxBody::WithdrawGrant(withdraw),
                    TxBody::RecordAccess(access),
                ]);
                bodies
            },
        )
}

/// Any single body.
fn tx_body() -> impl Strategy<Value = TxBody> {
    prop_oneof![
        every_governance_action()
            .prop_flat_map(prop::sample::select)
            .prop_map(TxBody::Governance),
        enrolment().prop_map(TxBody::EnrolEnterprise),
        key_rotation().prop_map(TxBody::RotateEnterpriseKey),
        attestation().prop_map(TxBody::IssueAttestation),
        status_change().prop_map(TxBody::SetStatus),
        grant().prop_map(TxBody::Grant),
        grant_withdrawal().prop_map(TxBody::WithdrawGrant),
        access_receipts().prop_map(TxBody::RecordAccess),
    ]
}

/// The envelope of a transaction: chain, creation time, nonce.
fn envelope() -> impl Strategy<Value = (ChainId, Timestamp, u64)> {
    (chain_id(), timestamp(), any::<u64>())
}

fn endorsement() -> impl Strategy<Value = Endorsement> {
    (public_key(), signature()).prop_map(|(signer, signature)| Endorsement { signer, signature })
}

fn endorsements() -> impl Strategy<Value = BoundedVec<Endorsement, MAX_ENDORSEMENTS>> {
    bounded_vec(endorsement(), 0..=3)
}

fn transaction() -> impl Strategy<Value = Transaction> {
    (envelope(), tx_body()).prop_map(|((chain_id, created_at, nonce), body)| Transaction {
        chain_id,
        created_at,
        nonce,
        body,
    })
}

fn signed_transaction() -> impl Strategy<Value = SignedTransaction> {
    (transaction(), endorsements())
        .prop_map(|(tx, endorsements)| SignedTransaction { tx, endorsements })
}

fn block_header() -> impl Strategy<Value = BlockHeader> {
    (
        any::<u64>(),
        digest().prop_map(BlockHash),
        timestamp(),
        department_id(),
        any::<u32>(),
        digest(),
        any::<u64>(),
        digest(),
        digest(),
        digest(),
    )
        .prop_map(
            |(
                height,
                parent,
                time,
                proposer,
                tx_count,
                txs_digest,
                log_size,
                log_root,
                state_root,
                status_root,
            )| {
                BlockHeader {
                    height,
                    parent,
                    time,
                    proposer,
                    tx_count,
                    txs_digest,
                    log_size,
                    log_root,
                    state_root,
                    status_root,
                }
            },
        )
}

fn block() -> impl Strategy<Value = Block> {
    (block_header(), bounded_vec(signed_transaction(), 0..=3)).prop_map(|(header, transactions)| {
        Block {
            header,
            transactions,
        }
    })
}

fn params() -> impl Strategy<Value = Params> {
    (
        any::<u64>(),
        any::<u64>(),
        any::<u64>(),
        any::<u64>(),
        any::<u32>(),
    )
        .prop_map(
            |(
                max_tx_age_ms,
                max_clock_skew_ms,
                max_grant_duration_ms,
                max_key_overlap_ms,
                max_block_transactions,
            )| Params {
                max_tx_age_ms,
                max_clock_skew_ms,
                max_grant_duration_ms,
                max_key_overlap_ms,
                max_block_transactions,
            },
        )
}

fn genesis() -> impl Strategy<Value = Genesis> {
    let department = (
        department_id(),
        bounded_string(),
        public_key(),
        public_key(),
    )
        .prop_map(|(id, name, signing_key, node_key)| GenesisDepartment {
            id,
            name,
            signing_key,
            node_key,
        });
    let doc_type = (
        document_type(),
        prop::collection::vec(department_id(), 0..=3),
    )
        .prop_map(|(definition, issuers)| GenesisDocumentType {
            definition,
            issuers,
        });
    (
        chain_id(),
        timestamp(),
        params(),
        prop::collection::vec(department, 0..=4),
        prop::collection::vec(doc_type, 0..=3),
    )
        .prop_map(
            |(chain_id, genesis_time, params, departments, document_types)| Genesis {
                chain_id,
                suite: CryptoSuite::Ed25519Sha256,
                genesis_time,
                params,
                departments,
                document_types,
            },
        )
}

fn inclusion_proof() -> impl Strategy<Value = InclusionProof> {
    (
        any::<u64>(),
        any::<u64>(),
        prop::collection::vec(hash(), 0..=MAX_INCLUSION_PATH_LEN),
    )
        .prop_map(|(leaf_index, tree_size, path)| InclusionProof {
            leaf_index,
            tree_size,
            path,
        })
}

fn consistency_proof() -> impl Strategy<Value = ConsistencyProof> {
    (
        any::<u64>(),
        any::<u64>(),
        prop::collection::vec(hash(), 0..=MAX_CONSISTENCY_PATH_LEN),
    )
        .prop_map(|(old_size, new_size, path)| ConsistencyProof {
            old_size,
            new_size,
            path,
        })
}

fn frontier() -> impl Strategy<Value = Frontier> {
    any::<u64>()
        .prop_flat_map(|size| {
            (
                Just(size),
                prop::collection::vec(hash(), size.count_ones() as usize),
            )
        })
        .prop_map(|(size, nodes)| Frontier::from_parts(size, nodes).expect("one node per set bit"))
}

fn chain_head() -> impl Strategy<Value = ChainHead> {
    (
        any::<u64>(),
        digest().prop_map(BlockHash),
        timestamp(),
        any::<u64>(),
        digest(),
        digest(),
        digest(),
    )
        .prop_map(
            |(height, hash, time, log_size, log_root, state_root, status_root)| ChainHead {
                height,
                hash,
                time,
                log_size,
                log_root,
                state_root,
                status_root,
            },
        )
}

fn tx_location() -> impl Strategy<Value = TxLocation> {
    (any::<u64>(), any::<u32>(), any::<u64>(), timestamp()).prop_map(
        |(height, index, log_index, time)| TxLocation {
            height,
            index,
            log_index,
            time,
        },
    )
}

fn key_period() -> impl Strategy<Value = KeyPeriod> {
    (public_key(), timestamp(), opt_timestamp()).prop_map(|(key, from, until)| KeyPeriod {
        key,
        from,
        until,
    })
}

fn enterprise_record() -> impl Strategy<Value = EnterpriseRecord> {
    (
        uscc(),
        prop::collection::vec(key_period(), 0..=4),
        department_id(),
        timestamp(),
    )
        .prop_map(|(uscc, keys, enrolled_by, enrolled_at)| EnterpriseRecord {
            uscc,
            keys,
            enrolled_by,
            enrolled_at,
        })
}

fn status() -> impl Strategy<Value = Status> {
    prop_oneof![
        Just(Status::Active),
        Just(Status::Suspended),
        Just(Status::Revoked),
    ]
}

fn status_event() -> impl Strategy<Value = StatusEvent> {
    (
        status_action(),
        status(),
        any::<u16>(),
        bounded_string(),
        timestamp(),
        any::<u64>(),
        tx_id(),
    )
        .prop_map(
            |(action, status, reason_code, note, at, height, tx)| StatusEvent {
                action,
                status,
                reason_code,
                note,
                at,
                height,
                tx,
            },
        )
}

fn attestation_record() -> impl Strategy<Value = AttestationRecord> {
    (
        attestation_id(),
        attestation(),
        timestamp(),
        tx_location(),
        status(),
        prop::collection::vec(status_event(), 0..=3),
        proptest::option::of(attestation_id()),
        opt_timestamp(),
    )
        .prop_map(
            |(
                id,
                attestation,
                issued_at,
                location,
                status,
                history,
                superseded_by,
                superseded_at,
            )| AttestationRecord {
                id,
                attestation,
                issued_at,
                location,
                status,
                history,
                superseded_by,
                superseded_at,
            },
        )
}

fn grant_record() -> impl Strategy<Value = GrantRecord> {
    (
        grant_id(),
        grant(),
        timestamp(),
        any::<u64>(),
        opt_timestamp(),
    )
        .prop_map(
            |(id, grant, granted_at, height, withdrawn_at)| GrantRecord {
                id,
                grant,
                granted_at,
                height,
                withdrawn_at,
            },
        )
}

fn receipt_record() -> impl Strategy<Value = ReceiptRecord> {
    (
        digest().prop_map(ReceiptId),
        access_read(),
        uscc(),
        doc_type(),
        bounded_string::<64>(),
        bounded_string::<256>(),
        department_id(),
        timestamp(),
        any::<u64>(),
        tx_id(),
    )
        .prop_map(
            |(
                id,
                read,
                enterprise,
                doc_type,
                purpose_code,
                purpose_text,
                recorder,
                recorded_at,
                height,
                tx,
            )| ReceiptRecord {
                id,
                read,
                enterprise,
                doc_type,
                purpose_code: purpose_code.into_inner(),
                purpose_text: purpose_text.into_inner(),
                recorder,
                recorded_at,
                height,
                tx,
            },
        )
}

fn governance() -> impl Strategy<Value = Governance> {
    let department = (
        department_id(),
        bounded_string(),
        prop::collection::vec(key_period(), 0..=3),
        prop::collection::vec(key_period(), 0..=3),
        timestamp(),
        opt_timestamp(),
    )
        .prop_map(
            |(id, name, signing_keys, node_keys, admitted_at, removed_at)| DepartmentRecord {
                id,
                name,
                signing_keys,
                node_keys,
                admitted_at,
                removed_at,
            },
        );
    let issuer =
        (department_id(), timestamp(), opt_timestamp()).prop_map(|(department, from, until)| {
            IssuerPeriod {
                department,
                from,
                until,
            }
        });
    let doc_type = (document_type(), prop::collection::vec(issuer, 0..=3)).prop_map(
        |(definition, issuers)| DocumentTypeRecord {
            definition,
            issuers,
        },
    );
    (
        chain_id(),
        params(),
        prop::collection::vec(department, 0..=4),
        prop::collection::vec(doc_type, 0..=3),
    )
        .prop_map(
            |(chain_id, params, departments, document_types)| Governance {
                chain_id,
                suite: CryptoSuite::Ed25519Sha256,
                params,
                departments: departments.into_iter().map(|d| (d.id.clone(), d)).collect(),
                document_types: document_types
                    .into_iter()
                    .map(|t| (t.definition.code.clone(), t))
                    .collect(),
            },
        )
}

// =============================================================================================
// 1. Round-trip properties
// =============================================================================================

/// How to damage an encoding: the byte to append, the version byte to put instead of the right
/// one, and where to cut.
#[derive(Debug, Clone)]
struct Damage {
    extra: u8,
    version: u8,
    cut: Index,
}

fn damage() -> impl Strategy<Value = Damage> {
    (
        any::<u8>(),
        any::<u8>().prop_filter("another version", |v| *v != FORMAT_VERSION),
        any::<Index>(),
    )
        .prop_map(|(extra, version, cut)| Damage {
            extra,
            version,
            cut,
        })
}

fn fail(e: impl std::fmt::Display) -> TestCaseError {
    TestCaseError::fail(e.to_string())
}

/// The cut points to try on an encoding of `len` bytes: all of them for short encodings, else
/// a spread plus the random one and the last.
fn cut_points(len: usize, random: &Index) -> Vec<usize> {
    if len <= 1024 {
        (0..len).collect()
    } else {
        let mut cuts: Vec<usize> = (0..32).map(|i| i * len / 32).collect();
        cuts.extend([random.index(len), len - 1]);
        cuts
    }
}

/// Every property of a canonical type, on one value.
fn check_wire<T>(value: &T, damage: &Damage) -> Result<(), TestCaseError>
where
    T: Canonical + Debug + PartialEq + Serialize + DeserializeOwned,
{
    let bytes = value.encode();
    prop_assert_eq!(bytes.first(), Some(&FORMAT_VERSION));
    prop_assert!(
        bytes.len() <= T::MAX_ENCODED_LEN,
        "{} bytes exceed MAX_ENCODED_LEN {}",
        bytes.len(),
        T::MAX_ENCODED_LEN
    );

    // encode → decode is the identity, and decoding gives back the same bytes.
    let decoded = T::decode(&bytes).map_err(fail)?;
    prop_assert_eq!(&decoded, value);
    prop_assert_eq!(decoded.encode(), bytes.clone());

    // The serde JSON form round-trips to the same value.
    let json = serde_json::to_string(value).map_err(fail)?;
    let from_json: T = serde_json::from_str(&json).map_err(|e| fail(format!("{e}: {json}")))?;
    prop_assert_eq!(&from_json, value);
    prop_assert_eq!(from_json.encode(), bytes.clone());

    // Any byte appended is a trailing byte.
    let mut longer = bytes.clone();
    longer.push(damage.extra);
    prop_assert_eq!(
        T::decode(&longer),
        Err(DecodeError::TrailingBytes { count: 1 })
    );

    // Any truncation is an error.
    prop_assert_eq!(T::decode(&[]), Err(DecodeError::Empty));
    for cut in cut_points(bytes.len(), &damage.cut) {
        prop_assert!(
            T::decode(&bytes[..cut]).is_err(),
            "a {cut}-byte prefix of {} bytes decoded",
            bytes.len()
        );
    }

    // Any other version byte is refused.
    let mut other = bytes;
    other[0] = damage.version;
    prop_assert_eq!(
        T::decode(&other),
        Err(DecodeError::UnsupportedVersion {
            found: damage.version,
            expected: FORMAT_VERSION,
        })
    );
    Ok(())
}

/// The same properties for the Merkle proofs, which are plain borsh (no version byte): they are
/// embedded in other messages rather than sent alone.
fn check_borsh_wire<T>(value: &T, damage: &Damage) -> Result<(), TestCaseError>
where
    T: BorshSerialize + BorshDeserialize + Debug + PartialEq + Serialize + DeserializeOwned,
{
    let bytes = borsh::to_vec(value).map_err(fail)?;
    let decoded: T = borsh::from_slice(&bytes).map_err(fail)?;
    prop_assert_eq!(&decoded, value);
    prop_assert_eq!(borsh::to_vec(&decoded).map_err(fail)?, bytes.clone());

    let json = serde_json::to_string(value).map_err(fail)?;
    let from_json: T = serde_json::from_str(&json).map_err(|e| fail(format!("{e}: {json}")))?;
    prop_assert_eq!(&from_json, value);

    let mut longer = bytes.clone();
    longer.push(damage.extra);
    prop_assert!(borsh::from_slice::<T>(&longer).is_err());
    for cut in cut_points(bytes.len(), &damage.cut) {
        prop_assert!(borsh::from_slice::<T>(&bytes[..cut]).is_err());
    }
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(96))]

    /// Every `TxBody` and `GovernanceAction` variant, as a transaction and signed.
    #[test]
    fn transactions_of_every_kind_round_trip(
        bodies in every_tx_body(),
        (chain_id, created_at, nonce) in envelope(),
        endorsements in endorsements(),
        damage in damage(),
    ) {
        for body in bodies {
            let tx = Transaction { chain_id: chain_id.clone(), created_at, nonce, body };
            check_wire(&tx, &damage)?;
            let signed = SignedTransaction { tx, endorsements: endorsements.clone() };
            check_wire(&signed, &damage)?;
        }
    }

    #[test]
    fn blocks_round_trip(block in block(), damage in damage()) {
        check_wire(&block.header, &damage)?;
        check_wire(&block, &damage)?;
    }

    #[test]
    fn genesis_round_trips(genesis in genesis(), damage in damage()) {
        check_wire(&genesis, &damage)?;
    }

    #[test]
    fn proofs_round_trip(
        inclusion in inclusion_proof(),
        consistency in consistency_proof(),
        damage in damage(),
    ) {
        check_borsh_wire(&inclusion, &damage)?;
        check_borsh_wire(&consistency, &damage)?;
    }

    #[test]
    fn records_round_trip(
        head in chain_head(),
        location in tx_location(),
        enterprise in enterprise_record(),
        attestation in attestation_record(),
        grant in grant_record(),
        receipt in receipt_record(),
        frontier in frontier(),
        damage in damage(),
    ) {
        check_wire(&head, &damage)?;
        check_wire(&location, &damage)?;
        check_wire(&enterprise, &damage)?;
        check_wire(&attestation, &damage)?;
        check_wire(&grant, &damage)?;
        check_wire(&receipt, &damage)?;
        check_wire(&frontier, &damage)?;
    }

    #[test]
    fn governance_round_trips(governance in governance(), damage in damage()) {
        check_wire(&governance, &damage)?;
    }
}

/// The largest values the bounds admit still fit their type's `MAX_ENCODED_LEN`: otherwise a
/// valid value could be encoded, signed and stored but never decoded again.
#[test]
fn largest_values_fit_their_limits() {
    fn full<const N: usize>(c: char) -> BoundedString<N> {
        let s: String = std::iter::repeat_n(c, N / c.len_utf8()).collect();
        BoundedString::new(s).expect("at the bound")
    }
    fn fits<T: Canonical + Debug + PartialEq>(value: &T) -> usize {
        let bytes = value.encode();
        assert!(
            bytes.len() <= T::MAX_ENCODED_LEN,
            "{}: {} > {}",
            std::any::type_name::<T>(),
            bytes.len(),
            T::MAX_ENCODED_LEN
        );
        assert_eq!(&T::decode(&bytes).expect("decodes"), value);
        bytes.len()
    }
    let dept = DepartmentId::new(&"d".repeat(32)).expect("32 characters");
    let code = DocTypeCode::new(&"C".repeat(40)).expect("40 characters");
    let uscc: Uscc = "91350100M000100Y43".parse().expect("valid");
    let id = AttestationId(Digest([0xab; 32]));
    let key = PublicKey::from_bytes([7; 32]);
    let attestation = Attestation {
        issuer: dept.clone(),
        subject: uscc,
        doc_type: code.clone(),
        file_digest: Digest([1; 32]),
        claims: BoundedVec::new(
            (0..MAX_CLAIMS)
                .map(|_| Claim {
                    key: full('k'),
                    value: full('值'),
                })
                .collect(),
        )
        .expect("MAX_CLAIMS"),
        valid_from: Timestamp(u64::MAX),
        valid_until: Some(Timestamp(u64::MAX)),
        supersedes: Some(id),
    };
    let reads = BoundedVec::new(
        (0..MAX_READS)
            .map(|_| AccessRead {
                reader: Grantee::Department(dept.clone()),
                attestation: id,
                grant: GrantId(Digest([2; 32])),
                read_at: Timestamp(u64::MAX),
            })
            .collect(),
    )
    .expect("MAX_READS");
    let grant = Grant {
        enterprise: uscc,
        grantee: Grantee::Department(dept.clone()),
        scope: GrantScope::DocumentTypes(
            BoundedVec::new(vec![code.clone(); MAX_SCOPE]).expect("MAX_SCOPE"),
        ),
        purpose: Purpose {
            code: full('p'),
            text: full('事'),
        },
        expires_at: Timestamp(u64::MAX),
    };
    let endorsements = BoundedVec::new(
        (0..MAX_ENDORSEMENTS)
            .map(|_| Endorsement {
                signer: key,
                signature: Signature::from_bytes([9; 64]),
            })
            .collect(),
    )
    .expect("MAX_ENDORSEMENTS");
    let chain_id = ChainId::new(&"c".repeat(64)).expect("64 characters");
    let bodies = [
        TxBody::IssueAttestation(attestation.clone()),
        TxBody::RecordAccess(AccessReceipts {
            recorder: dept.clone(),
            reads,
        }),
        TxBody::Grant(grant.clone()),
        TxBody::Governance(GovernanceAction::DefineDocumentType(DocumentType {
            code: code.clone(),
            name_zh: full('名'),
            name_en: full('n'),
            max_validity_days: Some(u32::MAX),
            requires_expiry: true,
        })),
        TxBody::SetStatus(StatusChange {
            department: dept.clone(),
            attestation: id,
            action: StatusAction::Revoke,
            reason_code: u16::MAX,
            note: full('注'),
        }),
    ];
    for body in bodies {
        let tx = Transaction {
            chain_id: chain_id.clone(),
            created_at: Timestamp(u64::MAX),
            nonce: u64::MAX,
            body,
        };
        fits(&tx);
        fits(&SignedTransaction {
            tx,
            endorsements: endorsements.clone(),
        });
    }
    // The bounded records (those whose fields are all bounded).
    fits(&GrantRecord {
        id: GrantId(Digest([3; 32])),
        grant,
        granted_at: Timestamp(u64::MAX),
        height: u64::MAX,
        withdrawn_at: Some(Timestamp(u64::MAX)),
    });
    fits(&ReceiptRecord {
        id: ReceiptId(Digest([4; 32])),
        read: AccessRead {
            reader: Grantee::Department(dept.clone()),
            attestation: id,
            grant: GrantId(Digest([2; 32])),
            read_at: Timestamp(u64::MAX),
        },
        enterprise: uscc,
        doc_type: code,
        purpose_code: full::<64>('p').into_inner(),
        purpose_text: full::<256>('事').into_inner(),
        recorder: dept,
        recorded_at: Timestamp(u64::MAX),
        height: u64::MAX,
        tx: TxId(Digest([5; 32])),
    });
    fits(&Frontier::from_parts(u64::MAX, vec![[6; 32]; 64]).expect("64 nodes"));
    fits(&AttestationRecord {
        id,
        attestation,
        issued_at: Timestamp(u64::MAX),
        location: TxLocation {
            height: u64::MAX,
            index: u32::MAX,
            log_index: u64::MAX,
            time: Timestamp(u64::MAX),
        },
        status: Status::Revoked,
        history: Vec::new(),
        superseded_by: Some(id),
        superseded_at: Some(Timestamp(u64::MAX)),
    });
}

/// Decoding rejects non-canonical forms of individual fields that borsh could otherwise read.
#[test]
fn field_level_non_canonical_forms_are_rejected() {
    let f = fixture();
    let (_, enrol) = &f.txs[1];
    let bytes = enrol.encode();
    // The chain id is the first field after the version byte: a u32 length, then its bytes.
    // Upper case is outside the chain-id alphabet, though borsh would read it as a string.
    let mut upper = bytes.clone();
    upper[5] = upper[5].to_ascii_uppercase();
    assert!(matches!(
        SignedTransaction::decode(&upper),
        Err(DecodeError::Malformed { .. })
    ));
    // An enum tag past the last variant.
    let body_tag = 1 + 4 + f.net.genesis.chain_id.as_str().len() + 8 + 8;
    let mut tag = bytes.clone();
    assert_eq!(tag[body_tag], 1, "EnrolEnterprise is variant 1");
    tag[body_tag] = 8;
    assert!(matches!(
        SignedTransaction::decode(&tag),
        Err(DecodeError::Malformed { .. })
    ));
    // A USCC whose check character is wrong, although every byte is in the alphabet.
    let uscc_at = body_tag + 1 + 4 + "samr".len();
    let mut check = bytes;
    assert_eq!(&check[uscc_at..uscc_at + 18], b"91350100M000100Y43");
    check[uscc_at + 17] = b'4';
    assert!(matches!(
        SignedTransaction::decode(&check),
        Err(DecodeError::Malformed { .. })
    ));
}

// =============================================================================================
// 2. Committed test vectors
// =============================================================================================

const UPDATE_VAR: &str = "VAULT_UPDATE_VECTORS";

/// The deterministic chain the vectors are taken from.
struct Fixture {
    net: TestNetwork,
    /// One signed transaction per `TxBody` variant, in block order, by kind.
    txs: Vec<(&'static str, SignedTransaction)>,
    block: Block,
    ledger: MemoryLedger,
}

/// A 4-department test network, then one block holding one transaction of each kind: admit a
/// department (governance, 3 of 4 signatures), enrol an enterprise, issue it a business licence,
/// the enterprise grants the tax bureau access, the tax bureau records a read, the licence is
/// suspended, the grant withdrawn and the enterprise rotates its key. Times and nonces are fixed
/// and ed25519 signatures deterministic, so every byte is reproducible.
fn fixture() -> Fixture {
    let net = TestNetwork::new(&["samr", "tax", "hrss", "housing"]);
    let genesis = net.genesis.clone();
    let suite = genesis.suite;
    let samr = net.department("samr");
    let tax = net.department("tax");
    let hrss = net.department("hrss");
    let enterprise = KeyPair::from_seed(suite, [42; 32]);
    let next_key = KeyPair::from_seed(suite, [43; 32]);
    let uscc: Uscc = "91350100M000100Y43".parse().expect("valid USCC");
    let licence = DocTypeCode::new("BUSINESS_LICENCE").expect("valid code");
    let t0 = genesis.genesis_time.plus(60_000);
    let block_time = t0.plus(60_000);
    let tx = |n: u64, body: TxBody| Transaction {
        chain_id: genesis.chain_id.clone(),
        created_at: t0.plus(n * 1_000),
        nonce: 1_000 + n,
        body,
    };
    fn text<const N: usize>(s: &str) -> BoundedString<N> {
        BoundedString::new(s).expect("within bound")
    }

    let admit = tx(
        1,
        TxBody::Governance(GovernanceAction::AdmitDepartment {
            department: DepartmentId::new("sti").expect("valid id"),
            name: text("科学技术局 (Science and Technology Bureau)"),
            signing_key: test_key("sti", "signing").public(),
            node_key: test_key("sti", "node").public(),
        }),
    )
    .sign(&[&samr.signing, &tax.signing, &hrss.signing])
    .expect("3 signatures");
    let enrol = tx(
        2,
        TxBody::EnrolEnterprise(Enrolment {
            department: samr.id.clone(),
            enterprise: uscc,
            key: enterprise.public(),
        }),
    )
    .sign_one(&samr.signing);
    let issue = tx(
        3,
        TxBody::IssueAttestation(Attestation {
            issuer: samr.id.clone(),
            subject: uscc,
            doc_type: licence.clone(),
            file_digest: suite.file_digest("营业执照 91350100M000100Y43 (test vector)".as_bytes()),
            claims: BoundedVec::new(vec![
                Claim {
                    key: text("legal_form"),
                    value: text("有限责任公司"),
                },
                Claim {
                    key: text("licence_no"),
                    value: text("350100100012345"),
                },
                Claim {
                    key: text("name"),
                    value: text("福州数字保险箱测试有限公司"),
                },
            ])
            .expect("3 claims"),
            valid_from: Timestamp(1_735_689_600_000), // 2025-01-01
            valid_until: None,
            supersedes: None,
        }),
    )
    .sign_one(&samr.signing);
    let attestation = AttestationId(issue.id(suite).0);
    let grant = tx(
        4,
        TxBody::Grant(Grant {
            enterprise: uscc,
            grantee: Grantee::Department(tax.id.clone()),
            scope: GrantScope::DocumentTypes(BoundedVec::new(vec![licence]).expect("1 type")),
            purpose: Purpose {
                code: text("370100-TAX-0001"),
                text: text("纳税信用评价"),
            },
            expires_at: block_time.plus(30 * DAY_MS),
        }),
    )
    .sign_one(&enterprise);
    let grant_id = GrantId(grant.id(suite).0);
    let access = tx(
        5,
        TxBody::RecordAccess(AccessReceipts {
            recorder: tax.id.clone(),
            reads: BoundedVec::new(vec![AccessRead {
                reader: Grantee::Department(tax.id.clone()),
                attestation,
                grant: grant_id,
                read_at: block_time,
            }])
            .expect("1 read"),
        }),
    )
    .sign_one(&tax.signing);
    let suspend = tx(
        6,
        TxBody::SetStatus(StatusChange {
            department: samr.id.clone(),
            attestation,
            action: StatusAction::Suspend,
            reason_code: 1,
            note: text("列入经营异常名录 (test vector)"),
        }),
    )
    .sign_one(&samr.signing);
    let withdraw = tx(
        7,
        TxBody::WithdrawGrant(GrantWithdrawal {
            enterprise: uscc,
            grant: grant_id,
        }),
    )
    .sign_one(&enterprise);
    let rotate = tx(
        8,
        TxBody::RotateEnterpriseKey(EnterpriseKeyRotation {
            enterprise: uscc,
            new_key: next_key.public(),
        }),
    )
    .sign_one(&enterprise);

    let txs = vec![
        ("governance", admit),
        ("enrol_enterprise", enrol),
        ("issue_attestation", issue),
        ("grant", grant),
        ("record_access", access),
        ("set_status", suspend),
        ("withdraw_grant", withdraw),
        ("rotate_enterprise_key", rotate),
    ];
    for (kind, t) in &txs {
        assert_eq!(t.tx.body.kind(), *kind);
    }
    let mut ledger = MemoryLedger::new(genesis).expect("valid genesis");
    let built = ledger
        .propose(
            &samr.id,
            block_time,
            txs.iter().map(|(_, t)| t.clone()).collect(),
        )
        .expect("block builds");
    assert!(built.rejected.is_empty(), "rejected: {:?}", built.rejected);
    ledger.commit(&built.block).expect("block commits");
    Fixture {
        net,
        txs,
        block: built.block,
        ledger,
    }
}

/// One vector file: `name = hex` lines, in a fixed order.
struct VectorFile {
    name: &'static str,
    about: &'static str,
    entries: Vec<(String, String)>,
}

impl VectorFile {
    fn new(name: &'static str, about: &'static str) -> Self {
        Self {
            name,
            about,
            entries: Vec::new(),
        }
    }

    fn add(&mut self, name: impl Into<String>, bytes: impl AsRef<[u8]>) {
        self.entries.push((name.into(), hex::encode(bytes)));
    }

    fn path(&self) -> PathBuf {
        PathBuf::from(env!("CARGO_MANIFEST_DIR"))
            .join("tests/vectors")
            .join(self.name)
    }

    fn render(&self) -> String {
        let mut out = format!(
            "# {}\n#\n# Canonical encodings (hex) and ids, checked by protocol/tests/encoding.rs.\n\
             # Any change here is a change of the wire or storage format. To regenerate after an\n\
             # intended change: VAULT_UPDATE_VECTORS=1 cargo test -p vault-protocol --test encoding\n\
             # vectors, then re-run without the variable. See tests/vectors/README.md.\n\n",
            self.about
        );
        for (name, value) in &self.entries {
            out.push_str(&format!("{name} = {value}\n"));
        }
        out
    }
}

/// Parses `name = hex` lines, skipping blank lines and `#` comments.
fn parse_vectors(text: &str) -> Vec<(String, String)> {
    text.lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
        .map(|l| {
            let (name, value) = l
                .split_once('=')
                .unwrap_or_else(|| panic!("vector line without '=': {l}"));
            (name.trim().to_string(), value.trim().to_string())
        })
        .collect()
}

fn read_vectors(file: &str) -> BTreeMap<String, String> {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/vectors")
        .join(file);
    let text = std::fs::read_to_string(&path)
        .unwrap_or_else(|e| panic!("cannot read {}: {e}", path.display()));
    parse_vectors(&text).into_iter().collect()
}

fn unhex(s: &str) -> Vec<u8> {
    hex::decode(s).unwrap_or_else(|e| panic!("bad hex in a vector file: {e}"))
}

fn short(s: &str) -> String {
    if s.len() > 72 {
        format!("{}…({} hex chars)", &s[..72], s.len())
    } else {
        s.to_string()
    }
}

/// Every vector, computed from the fixture.
fn compute_vectors() -> Vec<VectorFile> {
    let f = fixture();
    let genesis = &f.net.genesis;
    let suite = genesis.suite;
    let view = f.ledger.state();

    let mut keys = VectorFile::new(
        "genesis.txt",
        "The genesis of TestNetwork::new(&[\"samr\", \"tax\", \"hrss\", \"housing\"]) and its keys.",
    );
    for d in &f.net.departments {
        keys.add(
            format!("key.{}.signing", d.id),
            d.signing.public().as_bytes(),
        );
        keys.add(format!("key.{}.node", d.id), d.node.public().as_bytes());
    }
    keys.add(
        "key.enterprise",
        KeyPair::from_seed(suite, [42; 32]).public().as_bytes(),
    );
    keys.add("genesis.encoding", genesis.encode());
    keys.add("genesis.hash", genesis.hash().0 .0);

    let mut txs = VectorFile::new(
        "transactions.txt",
        "One signed transaction per TxBody variant (the transactions of block 1).",
    );
    for (kind, t) in &f.txs {
        txs.add(format!("{kind}.encoding"), t.encode());
        txs.add(format!("{kind}.id"), t.id(suite).0 .0);
        for (i, e) in t.endorsements.iter().enumerate() {
            txs.add(format!("{kind}.signature.{i}"), e.signature.as_bytes());
        }
        txs.add(
            format!("{kind}.leaf_hash"),
            Sha256LogHasher.hash_leaf(&t.leaf_data()),
        );
    }

    let mut block = VectorFile::new(
        "block.txt",
        "Block 1, built by MemoryLedger::propose from the transactions, and the head after it.",
    );
    block.add("block.encoding", f.block.encode());
    block.add("block.header.encoding", f.block.header.encode());
    block.add("block.hash", f.block.header.hash(suite).0 .0);
    block.add("block.txs_digest", f.block.header.txs_digest.0);
    block.add("block.log_root", f.block.header.log_root.0);
    block.add("block.state_root", f.block.header.state_root.0);
    block.add("head.encoding", f.ledger.head().encode());

    let mut records = VectorFile::new(
        "records.txt",
        "State records written by block 1, and Merkle proofs over its log (proofs are plain borsh).",
    );
    let issue_id = f.txs[2].1.id(suite);
    let access_id = f.txs[4].1.id(suite);
    let grant_id = GrantId(f.txs[3].1.id(suite).0);
    let uscc: Uscc = "91350100M000100Y43".parse().expect("valid USCC");
    let receipt = receipt_id(suite, access_id, 0);
    let get = |what: &str, r: Result<Option<Vec<u8>>, state::StoreError>| {
        r.unwrap_or_else(|e| panic!("{what}: {e}"))
            .unwrap_or_else(|| panic!("{what} missing"))
    };
    records.add(
        "attestation_record.encoding",
        get(
            "attestation",
            state::attestation(view, &AttestationId(issue_id.0)).map(|r| r.map(|r| r.encode())),
        ),
    );
    records.add(
        "grant_record.encoding",
        get(
            "grant",
            state::grant(view, &grant_id).map(|r| r.map(|r| r.encode())),
        ),
    );
    records.add("receipt.id", receipt.0 .0);
    records.add(
        "receipt_record.encoding",
        get(
            "receipt",
            state::receipt(view, &receipt).map(|r| r.map(|r| r.encode())),
        ),
    );
    records.add(
        "enterprise_record.encoding",
        get(
            "enterprise",
            state::enterprise(view, &uscc).map(|r| r.map(|r| r.encode())),
        ),
    );
    records.add(
        "tx_location.encoding",
        get(
            "location",
            state::tx_location(view, &issue_id).map(|r| r.map(|r| r.encode())),
        ),
    );
    records.add(
        "frontier.encoding",
        state::log_frontier(view).expect("frontier").encode(),
    );
    records.add(
        "governance_record.encoding",
        state::governance(view).expect("governance").encode(),
    );
    let inclusion = f
        .ledger
        .inclusion_proof(&issue_id)
        .expect("proof")
        .expect("committed");
    records.add(
        "inclusion_proof.issue_attestation.borsh",
        borsh::to_vec(&inclusion).expect("encodes"),
    );
    let consistency = f.ledger.log().consistency_proof(3, 8).expect("3 ≤ 8");
    records.add(
        "consistency_proof.3_8.borsh",
        borsh::to_vec(&consistency).expect("encodes"),
    );

    vec![keys, txs, block, records]
}

/// The computed vectors must equal the committed files, byte for byte.
#[test]
fn vectors_match_committed_files() {
    let files = compute_vectors();
    if std::env::var(UPDATE_VAR).is_ok_and(|v| v == "1") {
        for file in &files {
            std::fs::write(file.path(), file.render())
                .unwrap_or_else(|e| panic!("cannot write {}: {e}", file.path().display()));
        }
        panic!("vectors updated; re-run without {UPDATE_VAR} (and review the diff)");
    }
    let mut problems = Vec::new();
    for file in &files {
        let committed = read_vectors(file.name);
        let computed: BTreeMap<String, String> = file.entries.iter().cloned().collect();
        for (name, value) in &file.entries {
            match committed.get(name) {
                None => problems.push(format!("{}: {name} is not committed", file.name)),
                Some(old) if old != value => problems.push(format!(
                    "{}: {name} changed\n    committed: {}\n    now:       {}",
                    file.name,
                    short(old),
                    short(value)
                )),
                Some(_) => {}
            }
        }
        for name in committed.keys() {
            if !computed.contains_key(name) {
                problems.push(format!("{}: {name} is no longer produced", file.name));
            }
        }
    }
    assert!(
        problems.is_empty(),
        "the canonical encoding changed ({} differences):\n{}\n\nIf the change is intended, bump \
         FORMAT_VERSION as needed and regenerate with {UPDATE_VAR}=1 (see tests/vectors/README.md).",
        problems.len(),
        problems.join("\n")
    );
}

/// The committed files stand on their own: their encodings decode and re-encode identically,
/// the signatures verify, the ids are the hashes of the encodings, and the block applies on top
/// of the genesis to the committed head.
#[test]
fn committed_vectors_are_self_consistent() {
    let genesis_file = read_vectors("genesis.txt");
    let txs = read_vectors("transactions.txt");
    let block_file = read_vectors("block.txt");
    let records = read_vectors("records.txt");

    let genesis_bytes = unhex(&genesis_file["genesis.encoding"]);
    let genesis = Genesis::decode(&genesis_bytes).expect("genesis decodes");
    assert_eq!(genesis.encode(), genesis_bytes);
    assert_eq!(
        hex::encode(genesis.hash().0 .0),
        genesis_file["genesis.hash"]
    );
    let suite = genesis.suite;

    let kinds: Vec<&str> = txs
        .keys()
        .filter_map(|k| k.strip_suffix(".encoding"))
        .collect();
    assert_eq!(kinds.len(), 8, "one transaction per TxBody variant");
    for kind in kinds {
        let bytes = unhex(&txs[&format!("{kind}.encoding")]);
        let signed = SignedTransaction::decode(&bytes).expect("transaction decodes");
        assert_eq!(signed.encode(), bytes);
        assert_eq!(signed.tx.body.kind(), kind);
        for (i, e) in signed.endorsements.iter().enumerate() {
            assert_eq!(
                hex::encode(e.signature.as_bytes()),
                txs[&format!("{kind}.signature.{i}")]
            );
        }
        let verified = signed.clone().verify(suite).expect("signatures verify");
        assert_eq!(
            hex::encode(verified.id().0 .0),
            txs[&format!("{kind}.id")],
            "{kind}"
        );
        assert_eq!(
            hex::encode(Sha256LogHasher.hash_leaf(&signed.leaf_data())),
            txs[&format!("{kind}.leaf_hash")]
        );
    }

    let block_bytes = unhex(&block_file["block.encoding"]);
    let block = Block::decode(&block_bytes).expect("block decodes");
    assert_eq!(block.encode(), block_bytes);
    assert_eq!(
        hex::encode(block.header.encode()),
        block_file["block.header.encoding"]
    );
    assert_eq!(
        hex::encode(block.header.hash(suite).0 .0),
        block_file["block.hash"]
    );
    let mut ledger = MemoryLedger::new(genesis).expect("valid genesis");
    ledger.commit(&block).expect("the committed block applies");
    assert_eq!(
        hex::encode(ledger.head().encode()),
        block_file["head.encoding"]
    );
    for (name, value) in &records {
        let bytes = unhex(value);
        if name.ends_with(".borsh") {
            canonical::check_all(&bytes);
        } else if name.ends_with(".encoding") {
            assert_eq!(bytes.first(), Some(&FORMAT_VERSION), "{name}");
        }
    }
    let head = ChainHead::decode(&unhex(&block_file["head.encoding"])).expect("head decodes");
    let inclusion: InclusionProof =
        borsh::from_slice(&unhex(&records["inclusion_proof.issue_attestation.borsh"]))
            .expect("proof decodes");
    let leaf = unhex(&txs["issue_attestation.leaf_hash"]);
    let leaf: Hash = leaf.try_into().expect("32 bytes");
    vault_protocol::merkle::verify_inclusion(&Sha256LogHasher, &leaf, &inclusion, &head.log_root.0)
        .expect("the committed inclusion proof verifies against the committed head");
}

// =============================================================================================
// 3. Canonicality under arbitrary input (the fuzz check, on stable)
// =============================================================================================

/// A way to damage bytes.
#[derive(Debug, Clone)]
enum Mutation {
    FlipBit(Index, u8),
    Set(Index, u8),
    Insert(Index, u8),
    Delete(Index),
    /// Overwrite four bytes with a little-endian u32 (hits length prefixes and counts).
    SetU32(Index, u32),
}

fn mutation() -> impl Strategy<Value = Mutation> {
    prop_oneof![
        (any::<Index>(), 0u8..8).prop_map(|(i, b)| Mutation::FlipBit(i, b)),
        (any::<Index>(), any::<u8>()).prop_map(|(i, v)| Mutation::Set(i, v)),
        (any::<Index>(), any::<u8>()).prop_map(|(i, v)| Mutation::Insert(i, v)),
        any::<Index>().prop_map(Mutation::Delete),
        (
            any::<Index>(),
            prop_oneof![0u32..4, 16u32..80, any::<u32>()]
        )
            .prop_map(|(i, v)| Mutation::SetU32(i, v)),
    ]
}

fn mutate(bytes: &mut Vec<u8>, m: &Mutation) {
    if bytes.is_empty() {
        if let Mutation::Insert(_, v) = m {
            bytes.push(*v);
        }
        return;
    }
    let len = bytes.len();
    match m {
        Mutation::FlipBit(i, bit) => bytes[i.index(len)] ^= 1 << bit,
        Mutation::Set(i, v) => bytes[i.index(len)] = *v,
        Mutation::Insert(i, v) => bytes.insert(i.index(len + 1), *v),
        Mutation::Delete(i) => {
            bytes.remove(i.index(len));
        }
        Mutation::SetU32(i, v) => {
            let at = i.index(len);
            for (k, b) in v.to_le_bytes().into_iter().enumerate() {
                if let Some(slot) = bytes.get_mut(at + k) {
                    *slot = b;
                }
            }
        }
    }
}

/// Valid encodings of every type, to mutate.
fn valid_encoding() -> impl Strategy<Value = Vec<u8>> {
    Union::new(vec![
        signed_transaction().prop_map(|t| t.encode()).boxed(),
        transaction().prop_map(|t| t.encode()).boxed(),
        block().prop_map(|b| b.encode()).boxed(),
        block_header().prop_map(|h| h.encode()).boxed(),
        genesis().prop_map(|g| g.encode()).boxed(),
        chain_head().prop_map(|h| h.encode()).boxed(),
        tx_location().prop_map(|l| l.encode()).boxed(),
        enterprise_record().prop_map(|r| r.encode()).boxed(),
        attestation_record().prop_map(|r| r.encode()).boxed(),
        grant_record().prop_map(|r| r.encode()).boxed(),
        receipt_record().prop_map(|r| r.encode()).boxed(),
        frontier().prop_map(|f| f.encode()).boxed(),
        governance().prop_map(|g| g.encode()).boxed(),
        inclusion_proof()
            .prop_map(|p| borsh::to_vec(&p).unwrap_or_default())
            .boxed(),
        consistency_proof()
            .prop_map(|p| borsh::to_vec(&p).unwrap_or_default())
            .boxed(),
    ])
}

/// Fixed valid encodings: the committed vectors' objects (real signatures, a real block).
fn fixture_encodings() -> Vec<Vec<u8>> {
    compute_vectors()
        .into_iter()
        .flat_map(|f| f.entries)
        .filter(|(name, _)| name.ends_with(".encoding") || name.ends_with(".borsh"))
        .map(|(_, value)| unhex(&value))
        .collect()
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    #[test]
    fn random_bytes_decode_canonically_or_not_at_all(
        body in prop::collection::vec(any::<u8>(), 0..512),
        versioned in any::<bool>(),
    ) {
        let mut bytes = body;
        if versioned {
            bytes.insert(0, FORMAT_VERSION);
        }
        canonical::check_all(&bytes);
    }

    #[test]
    fn mutated_encodings_decode_canonically_or_not_at_all(
        original in valid_encoding(),
        mutations in prop::collection::vec(mutation(), 1..=4),
    ) {
        let mut bytes = original;
        for m in &mutations {
            mutate(&mut bytes, m);
            canonical::check_all(&bytes);
        }
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]

    #[test]
    fn mutated_vectors_decode_canonically_or_not_at_all(
        pick in any::<Index>(),
        mutations in prop::collection::vec(mutation(), 1..=4),
    ) {
        thread_local! {
            static ENCODINGS: Vec<Vec<u8>> = fixture_encodings();
        }
        let mut bytes = ENCODINGS.with(|e| pick.get(e).clone());
        for m in &mutations {
            mutate(&mut bytes, m);
            canonical::check_all(&bytes);
        }
    }
}

/// Regression: `Governance` holds `BTreeMap`s, which borsh decodes in any key order unless its
/// `de_strict_order` feature is on; then two byte strings decoded to the same governance record.
#[test]
fn governance_with_unsorted_departments_is_rejected() {
    let gov = fixture().net.genesis.governance();
    assert!(gov.departments.len() >= 2);
    // Re-encode by hand with the first two departments swapped.
    let mut bytes = vec![FORMAT_VERSION];
    let mut departments: Vec<_> = gov.departments.iter().collect();
    departments.swap(0, 1);
    let written = (|| -> std::io::Result<()> {
        BorshSerialize::serialize(&gov.chain_id, &mut bytes)?;
        BorshSerialize::serialize(&gov.suite, &mut bytes)?;
        BorshSerialize::serialize(&gov.params, &mut bytes)?;
        BorshSerialize::serialize(&(departments.len() as u32), &mut bytes)?;
        for (k, v) in &departments {
            BorshSerialize::serialize(*k, &mut bytes)?;
            BorshSerialize::serialize(*v, &mut bytes)?;
        }
        BorshSerialize::serialize(&gov.document_types, &mut bytes)
    })();
    written.expect("writing to a Vec cannot fail");
    assert_ne!(bytes, gov.encode(), "the swap changed the bytes");
    canonical::check_all(&bytes);
    assert!(matches!(
        Governance::decode(&bytes),
        Err(DecodeError::Malformed { .. })
    ));
}
