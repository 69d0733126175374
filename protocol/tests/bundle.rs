//! Proof bundles, the status tree and finalization certificates: a verifier holding only the
//! genesis file relies on an attestation, and catches every way a node could lie.

#![allow(clippy::unwrap_used)]

mod common;

use common::*;
use proptest::prelude::*;
use vault_protocol::bundle::{verify_bundle, Anchor, BundleError, ProofBundle};
use vault_protocol::certificate::{self, CertificateError, Finalization};
use vault_protocol::crypto::Digest;
use vault_protocol::encoding::Canonical;
use vault_protocol::ids::AttestationId;
use vault_protocol::ledger::TestNetwork;
use vault_protocol::merkle::verify_consistency;
use vault_protocol::state::{self, keys, MemoryState, StateView, Status};
use vault_protocol::status::{self, StatusLeaf, StatusProof};
use vault_protocol::tx::StatusAction;
use vault_protocol::verify::Reason;

const ALL: [&str; 4] = ["samr", "tax", "hrss", "housing"];

fn anchor(fx: &Fx) -> Anchor {
    Anchor::from_genesis(&fx.net.genesis)
}

/// A ledger with one enterprise and one licence; returns the licence id.
fn licensed() -> (Fx, Ent, AttestationId) {
    let mut fx = Fx::new();
    let ent = Ent::new(1);
    fx.enrol(&ent);
    let id = fx.issue(fx.licence(&ent, "licence-1"));
    (fx, ent, id)
}

fn bundle_of(fx: &Fx, id: &AttestationId, signers: &[&str]) -> ProofBundle {
    let head = fx.ledger.head().height;
    let header = fx.ledger.block(head).unwrap().header.clone();
    fx.ledger
        .bundle(id, fx.net.certify(&header, signers))
        .unwrap()
}

#[test]
fn a_bundle_verifies_offline_with_the_same_verdict_as_the_ledger() {
    let (mut fx, ent, id) = licensed();
    // Unrelated blocks after the licence: the proofs are against the head, not the issue block.
    let other = Ent::new(2);
    fx.enrol(&other);
    fx.issue(fx.rating(&ent, "rating-1"));
    let bundle = bundle_of(&fx, &id, &ALL);
    let now = fx.now();
    let out = verify_bundle(&anchor(&fx), &bundle, Some(&file("licence-1")), now, None).unwrap();
    let api = fx
        .ledger
        .verify(&id, now, Some(&file("licence-1")))
        .unwrap()
        .unwrap();
    assert!(out.verdict.valid, "{:?}", out.verdict.checks);
    assert_eq!(out.verdict.checks, api.checks);
    assert_eq!(out.verdict.valid, api.valid);
    assert_eq!(out.verdict.status, Status::Active);
    assert_eq!(out.block.height, fx.ledger.head().height);
    assert_eq!(out.block.time, fx.ledger.head().time);
    assert_eq!(out.block.certified_by.len(), 4);

    // The wrong file is a verdict, not an error.
    let wrong = verify_bundle(&anchor(&fx), &bundle, Some(&file("forged")), now, None).unwrap();
    assert_eq!(wrong.verdict.failures(), vec![Reason::DigestMismatch]);

    // Both forms round-trip and still verify.
    let binary = ProofBundle::decode(&bundle.encode()).unwrap();
    assert_eq!(binary, bundle);
    let json: ProofBundle = serde_json::from_str(&serde_json::to_string(&bundle).unwrap()).unwrap();
    assert_eq!(json, bundle);
    assert!(
        verify_bundle(&anchor(&fx), &json, None, now, None)
            .unwrap()
            .verdict
            .valid
    );
}

#[test]
fn a_revocation_shows_in_the_next_bundle_and_a_stale_one_is_refused_when_freshness_is_demanded() {
    let (mut fx, _ent, id) = licensed();
    let before = bundle_of(&fx, &id, &ALL);
    fx.advance(60 * SECOND);
    let tx = fx.status_tx("samr", id, StatusAction::Revoke);
    fx.accept(tx);
    let after = bundle_of(&fx, &id, &ALL);
    let now = fx.now();

    let fresh = verify_bundle(&anchor(&fx), &after, None, now, Some(30 * SECOND)).unwrap();
    assert_eq!(fresh.verdict.status, Status::Revoked);
    assert_eq!(fresh.verdict.failures(), vec![Reason::Revoked]);
    let api = fx.ledger.verify(&id, now, None).unwrap().unwrap();
    assert_eq!(api.failures(), fresh.verdict.failures());

    // A node serving the state from before the revocation: its bundle is genuine, so without a
    // freshness demand it still proves "active" as of its (old) block, and says so ...
    let stale = verify_bundle(&anchor(&fx), &before, None, now, None).unwrap();
    assert_eq!(stale.verdict.status, Status::Active);
    assert!(stale.block.age_ms > 60 * SECOND);
    // ... and a verifier that demands a fresh checkpoint refuses it.
    let err = verify_bundle(&anchor(&fx), &before, None, now, Some(30 * SECOND)).unwrap_err();
    assert_eq!(err.code(), "stale_bundle");
    assert!(matches!(err, BundleError::Stale { max_age_ms, .. } if max_age_ms == 30 * SECOND));

    // The status leaf of the stale bundle cannot be swapped into the fresh header.
    let mut forged = after.clone();
    forged.status = before.status.clone();
    let err = verify_bundle(&anchor(&fx), &forged, None, now, None).unwrap_err();
    assert_eq!(err.code(), "status_proof_invalid");
}

#[test]
fn suspension_and_supersession_are_proven_too() {
    let (mut fx, ent, id) = licensed();
    let tx = fx.status_tx("samr", id, StatusAction::Suspend);
    fx.accept(tx);
    let b = bundle_of(&fx, &id, &ALL);
    let out = verify_bundle(&anchor(&fx), &b, None, fx.now(), None).unwrap();
    assert_eq!(out.verdict.failures(), vec![Reason::Suspended]);
    assert_eq!(b.status.changes, 1);

    let tx = fx.status_tx("samr", id, StatusAction::Reinstate);
    fx.accept(tx);
    let mut next = fx.licence(&ent, "licence-2");
    next.supersedes = Some(id);
    let new_id = fx.issue(next);
    let b = bundle_of(&fx, &id, &ALL);
    let out = verify_bundle(&anchor(&fx), &b, None, fx.now(), None).unwrap();
    assert_eq!(out.verdict.failures(), vec![Reason::Superseded]);
    assert_eq!(out.verdict.superseded_by, Some(new_id));
    let api = fx.ledger.verify(&id, fx.now(), None).unwrap().unwrap();
    assert_eq!(api.failures(), out.verdict.failures());
}

#[test]
fn a_department_admitted_after_the_genesis_is_proven_by_a_governance_proof() {
    let (mut fx, ent, _) = licensed();
    // 医保局 joins by a two-thirds vote and is authorised for business licences (for the test).
    fx.accept(fx.by_all(&["samr", "tax", "hrss"], admit("medins")));
    fx.accept(fx.by_all(
        &["samr", "tax", "hrss", "medins"],
        authorise("medins", LICENCE),
    ));
    let mut a = fx.licence(&ent, "medins-licence");
    a.issuer = did("medins");
    let id = fx.issue(a);
    let bundle = bundle_of(&fx, &id, &ALL);
    let now = fx.now();

    // With the genesis alone the verifier does not know medins's key or authorisation.
    let bare = verify_bundle(&anchor(&fx), &bundle, None, now, None).unwrap();
    assert_eq!(
        bare.verdict.failures(),
        vec![Reason::IssuerKeyNotValid, Reason::IssuerNotAuthorised]
    );

    // A governance proof from the same ledger (at a finalized block) fills it in.
    let header = fx
        .ledger
        .block(fx.ledger.head().height)
        .unwrap()
        .header
        .clone();
    let proof = vault_protocol::bundle::assemble_governance(
        fx.ledger.state(),
        header.clone(),
        fx.net.certify(&header, &ALL),
    )
    .unwrap();
    let proven = anchor(&fx).with_governance(&proof).unwrap();
    let out = verify_bundle(&proven, &bundle, None, now, None).unwrap();
    assert!(out.verdict.valid, "{:?}", out.verdict.checks);
    assert_eq!(out.verdict.issuer_name, "市医疗保障局");
    let api = fx.ledger.verify(&id, now, None).unwrap().unwrap();
    assert_eq!(api.checks, out.verdict.checks);
    // Both forms round-trip.
    use vault_protocol::bundle::GovernanceProof;
    assert_eq!(GovernanceProof::decode(&proof.encode()).unwrap(), proof);
    let json = serde_json::to_string(&proof).unwrap();
    assert_eq!(
        serde_json::from_str::<GovernanceProof>(&json).unwrap(),
        proof
    );

    // A governance state that is not the ledger's is refused, as is one without a quorum.
    let mut forged = proof.clone();
    forged.governance.params.max_grant_duration_ms += 1;
    let err = anchor(&fx).with_governance(&forged).unwrap_err();
    assert_eq!(err.code(), "status_proof_invalid");
    let mut weak = proof.clone();
    weak.certificate = fx
        .net
        .certify(&header, &["samr", "tax"])
        .try_into()
        .unwrap();
    let err = anchor(&fx).with_governance(&weak).unwrap_err();
    assert_eq!(err.code(), "certificate_no_quorum");
}

#[test]
fn flipping_any_single_bit_fails_with_a_specific_reason() {
    let (fx, _ent, id) = licensed();
    let bundle = bundle_of(&fx, &id, &["samr", "tax", "hrss"]);
    let bytes = bundle.encode();
    let anchor = anchor(&fx);
    let now = fx.now();
    assert!(verify_bundle(&anchor, &bundle, None, now, None).is_ok());
    let mut codes = std::collections::BTreeMap::<&'static str, usize>::new();
    for bit in 0..bytes.len() * 8 {
        let mut b = bytes.clone();
        b[bit / 8] ^= 1 << (bit % 8);
        let code = match ProofBundle::decode(&b) {
            Err(e) => BundleError::from(e).code(),
            Ok(flipped) => match verify_bundle(&anchor, &flipped, None, now, None) {
                Err(e) => e.code(),
                Ok(v) => panic!("bit {bit} flipped and the bundle still verified: {v:?}"),
            },
        };
        *codes.entry(code).or_default() += 1;
    }
    // Every part of the bundle is covered by some check.
    for expected in [
        "bundle_malformed",
        "inclusion_invalid",
        "status_proof_invalid",
        "certificate_bad_signature",
        "certificate_wrong_block",
    ] {
        assert!(
            codes.contains_key(expected),
            "no flip gave {expected}: {codes:?}"
        );
    }
}

#[test]
fn too_few_signers_non_members_and_other_blocks_fail() {
    let (fx, _ent, id) = licensed();
    let anchor = anchor(&fx);
    let now = fx.now();
    let header = fx
        .ledger
        .block(fx.ledger.head().height)
        .unwrap()
        .header
        .clone();

    // Two of four is not more than two thirds.
    let mut b = bundle_of(&fx, &id, &["samr", "tax"]);
    let err = verify_bundle(&anchor, &b, None, now, None).unwrap_err();
    assert_eq!(
        err,
        BundleError::Certificate(CertificateError::NoQuorum {
            signers: 2,
            validators: 4,
            quorum: 3
        })
    );

    // Four strangers with their own keys sign the same header under the same namespace: their
    // signatures do not verify under the members' keys.
    let strangers = TestNetwork::new(&["a1", "a2", "a3", "a4"]);
    let ns = certificate::namespace(fx.net.genesis.chain_id.as_str(), &fx.net.genesis.hash());
    let stranger_keys: Vec<_> = strangers.departments.iter().map(|d| &d.node).collect();
    let members: Vec<_> = fx.net.departments.iter().map(|d| d.node.public()).collect();
    // Forge the bitmap as if members had signed, with the strangers' signatures.
    let mut cert = Finalization::sign(&ns, &members, &[], 7, &header.hash(fx.net.genesis.suite));
    let by_strangers = Finalization::sign(
        &ns,
        &strangers
            .departments
            .iter()
            .map(|d| d.node.public())
            .collect::<Vec<_>>(),
        &stranger_keys,
        7,
        &header.hash(fx.net.genesis.suite),
    );
    cert.signers = vec![0, 1, 2, 3];
    cert.signatures = by_strangers.signatures;
    b.certificate = cert.encode().try_into().unwrap();
    let err = verify_bundle(&anchor, &b, None, now, None).unwrap_err();
    assert_eq!(err.code(), "certificate_bad_signature");

    // A certificate made for a five-member set does not fit the chain's four.
    let mut five = members.clone();
    five.push(strangers.departments[0].node.public());
    let keys: Vec<_> = fx.net.departments.iter().map(|d| &d.node).collect();
    let cert = Finalization::sign(&ns, &five, &keys, 7, &header.hash(fx.net.genesis.suite));
    b.certificate = cert.encode().try_into().unwrap();
    let err = verify_bundle(&anchor, &b, None, now, None).unwrap_err();
    assert_eq!(err.code(), "certificate_wrong_validator_set");

    // A genuine certificate of the parent block does not make this header final.
    let parent = fx.ledger.block(header.height - 1).unwrap().header.clone();
    b.certificate = fx.net.certify(&parent, &ALL).try_into().unwrap();
    let err = verify_bundle(&anchor, &b, None, now, None).unwrap_err();
    assert_eq!(err.code(), "certificate_wrong_block");

    // A certificate of another chain (same keys, other namespace) does not verify.
    let other_ns = certificate::namespace("other-chain", &fx.net.genesis.hash());
    let cert = Finalization::sign(
        &other_ns,
        &members,
        &keys,
        7,
        &header.hash(fx.net.genesis.suite),
    );
    b.certificate = cert.encode().try_into().unwrap();
    let err = verify_bundle(&anchor, &b, None, now, None).unwrap_err();
    assert_eq!(err.code(), "certificate_bad_signature");
}

#[test]
fn certificate_format_matches_the_engines_worked_example() {
    // The layout of commonware's Finalization for four validators, three signers (indices 0, 2,
    // 3), epoch 3, view 300, parent 299: varints `03 ac02 ab02`, the payload, the u64 bit count,
    // bitmap 0x0d, count 3, three signatures — 239 bytes.
    let net = TestNetwork::new(&ALL);
    let validators: Vec<_> = net.departments.iter().map(|d| d.node.public()).collect();
    let sorted = certificate::sorted_validators(&validators);
    let signer = |i: usize| {
        net.departments
            .iter()
            .find(|d| d.node.public() == sorted[i])
            .unwrap()
    };
    let keys = [&signer(0).node, &signer(2).node, &signer(3).node];
    let block = vault_protocol::ids::BlockHash(Digest([0xab; 32]));
    let mut cert = Finalization::sign(b"NS", &validators, &keys, 300, &block);
    cert.epoch = 3;
    cert.parent_view = 299;
    let bytes = cert.encode();
    assert_eq!(bytes.len(), 239);
    assert_eq!(&bytes[..5], &[0x03, 0xac, 0x02, 0xab, 0x02]);
    assert_eq!(&bytes[37..47], &[0, 0, 0, 0, 0, 0, 0, 4, 0x0d, 3]);
    let parsed = Finalization::parse(&bytes).unwrap();
    assert_eq!(parsed.signers, vec![0, 2, 3]);
    assert_eq!(
        (parsed.epoch, parsed.view, parsed.parent_view),
        (3, 300, 299)
    );
    // Signed before the epoch was changed, so the signatures no longer match the proposal.
    assert_eq!(
        parsed.verify(
            vault_protocol::crypto::CryptoSuite::Ed25519Sha256,
            b"NS",
            &validators,
            &block
        ),
        Err(CertificateError::BadSignature {
            index: 0,
            key: sorted[0]
        })
    );
    // Non-canonical varints and stray bitmap bits are refused.
    let mut padded = bytes.clone();
    padded.splice(0..1, [0x83, 0x00]);
    assert!(Finalization::parse(&padded).is_err());
    let mut stray = bytes.clone();
    stray[45] |= 0x10;
    assert!(Finalization::parse(&stray).is_err());
    assert_eq!(certificate::quorum(4), 3);
    assert_eq!(certificate::quorum(7), 5);
    assert_eq!(certificate::quorum(10), 7);
}

#[test]
fn bundles_stay_small_at_ten_million_attestations() {
    let (fx, _ent, id) = licensed();
    let b = bundle_of(&fx, &id, &["samr", "tax", "hrss"]);
    let hashes = b.inclusion.path.len() + b.status_proof.hashes.len();
    let fixed = b.encode().len() - 32 * hashes;
    // A bundle's size is its fixed part (transaction, status leaf, header, certificate) plus 32
    // bytes per proof hash. At ten million attestations and as many other transactions the log
    // has 2^24.3 leaves (25 hashes) and a status leaf sits about log2(10^7) + 1 = 25 levels deep.
    let at_ten_million = fixed + 32 * (25 + 25);
    eprintln!(
        "bundle: {} bytes now, fixed part {fixed}, about {at_ten_million} at 10^7",
        b.encode().len()
    );
    assert!(fixed <= 800, "the fixed part grew to {fixed} bytes");
    assert!(
        at_ten_million <= 2400,
        "{at_ten_million} bytes at ten million attestations"
    );
}

#[test]
fn consistency_proofs_hold_across_a_thousand_blocks_and_a_fork_is_caught() {
    let mut fx = Fx::new();
    let mut heads = vec![fx.ledger.head()];
    for i in 0..1000u32 {
        let ent = Ent::new(10 + i);
        fx.enrol(&ent);
        heads.push(fx.ledger.head());
    }
    let hasher = state::log_hasher(SUITE);
    for (a, b) in [
        (1, 1000),
        (1, 2),
        (333, 334),
        (500, 999),
        (17, 640),
        (999, 1000),
    ] {
        let (old, new) = (&heads[a], &heads[b]);
        let proof = fx
            .ledger
            .log()
            .consistency_proof(old.log_size, new.log_size)
            .unwrap();
        verify_consistency(&hasher, &old.log_root.0, &new.log_root.0, &proof).unwrap();
        // Against another ledger's root of the same size, it fails.
        assert!(
            verify_consistency(&hasher, &old.log_root.0, &heads[b - 1].log_root.0, &proof).is_err()
        );
    }
}

#[test]
fn the_status_tree_holds_exactly_the_head() {
    // After many blocks of issues and status changes, the state holds only the nodes reachable
    // from the head's root, and every attestation's proof verifies against the header.
    let mut fx = Fx::new();
    let ent = Ent::new(1);
    fx.enrol(&ent);
    let mut ids = Vec::new();
    for i in 0..40 {
        ids.push(fx.issue(fx.licence(&ent, &format!("l{i}"))));
        if i % 3 == 0 {
            let tx = fx.status_tx("samr", ids[i / 2], StatusAction::Suspend);
            fx.block(vec![tx]);
        }
    }
    let view = fx.ledger.state();
    let head = fx.ledger.head();
    assert_eq!(
        head.status_root,
        fx.ledger.block(head.height).unwrap().header.status_root
    );
    for id in &ids {
        let key = status::attestation_key(id);
        let (value, proof) = status::prove(view, SUITE, head.height, &key)
            .unwrap()
            .unwrap();
        let leaf = StatusLeaf::decode(&value).unwrap();
        let record = state::attestation(view, id).unwrap().unwrap();
        assert_eq!(leaf, StatusLeaf::of(&record));
        proof.verify(&head.status_root, &key, &value).unwrap();
    }
    let nodes = view.scan_prefix(&[status::NODE_TABLE]).unwrap().len();
    // 40 attestations + the governance leaf, and their inner nodes: a 16-ary tree of 41 leaves
    // has at most a handful of inner nodes per leaf; stale versions would add dozens per block.
    assert!(
        nodes <= 41 * 3,
        "{nodes} tree nodes for 41 leaves: stale nodes were kept"
    );
    // The governance leaf proves the governance state.
    let gkey = status::governance_key(SUITE);
    let (gov, proof) = status::prove(view, SUITE, head.height, &gkey)
        .unwrap()
        .unwrap();
    assert_eq!(gov, state::governance(view).unwrap().encode());
    proof.verify(&head.status_root, &gkey, &gov).unwrap();
    // Tree nodes are outside the delta digest, but a block whose header lies about the status
    // root is refused.
    assert!(keys::is_status_node(&[status::NODE_TABLE, 0]));
}

#[test]
fn a_header_with_a_wrong_status_root_is_refused() {
    let (mut fx, ent, _id) = licensed();
    let tx = fx.issue_tx(fx.licence(&ent, "x"));
    let mut built = fx.ledger.propose(&fx.proposer, fx.now(), vec![tx]).unwrap();
    built.block.header.status_root = Digest([7; 32]);
    let err = fx.ledger.commit(&built.block).unwrap_err();
    assert!(err.to_string().contains("status root"), "{err}");
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(24))]

    /// Our verifier (the documented hashing) agrees with the tree crate's roots for any set of
    /// keys and values over several versions, and proofs of other keys' values fail.
    #[test]
    fn prop_proofs_match_the_tree_crate(
        versions in proptest::collection::vec(
            proptest::collection::vec((any::<[u8; 32]>(), proptest::collection::vec(any::<u8>(), 1..40)), 0..12),
            1..5,
        )
    ) {
        let mut state = MemoryState::default();
        let mut latest = std::collections::BTreeMap::new();
        let mut root = Digest([0; 32]);
        for (version, changes) in versions.iter().enumerate() {
            let (r, writes) = status::update(&state, SUITE, version as u64, changes.clone()).unwrap();
            let mut delta = state::StateDelta::default();
            delta.writes.extend(writes);
            state.apply(&delta);
            root = r;
            for (k, v) in changes {
                latest.insert(*k, v.clone());
            }
        }
        let version = versions.len() as u64 - 1;
        for (k, v) in &latest {
            let proof = prove_raw(&state, version, k);
            prop_assert!(proof.verify(&root, k, v).is_ok());
            let mut other = v.clone();
            other.push(0);
            prop_assert!(proof.verify(&root, k, &other).is_err());
        }
    }
}

/// The proof of a raw key (the property test's values are not attestation records).
fn prove_raw(state: &MemoryState, version: u64, key: &[u8; 32]) -> StatusProof {
    match status::prove_key(state, SUITE, version, key) {
        Ok(Some(proof)) => proof,
        other => panic!("no proof for {}: {other:?}", hex::encode(key)),
    }
}
