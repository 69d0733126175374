//! The chain's signature rule (ZIP-215) and batch verification.
//!
//! - Checking many transactions at once gives, for each, exactly what checking it alone gives —
//!   whatever the mix of valid, forged, unsigned, doubly-signed and weak-keyed transactions.
//! - A signature whose `R` carries a small-order component is the case where batch and single
//!   verification disagree under other rules (and where `verify_strict` and the cofactorless
//!   batch equation of ed25519-dalek disagree at random): under ZIP-215 both accept it, in a batch
//!   or alone, every time.
//! - Small-order keys are refused: under the cofactored equation they would "sign" anything.

mod common;

use common::*;
use curve25519_dalek::constants::{ED25519_BASEPOINT_POINT, EIGHT_TORSION};
use curve25519_dalek::scalar::Scalar;
use proptest::prelude::*;
use sha2::{Digest as _, Sha512};
use vault_protocol::crypto::{
    clear_signature_cache, CryptoSuite, Domain, KeyPair, PublicKey, Signature, SignatureCheck,
    SignatureError,
};
use vault_protocol::encoding::{BoundedVec, Canonical};
use vault_protocol::ids::Timestamp;
use vault_protocol::tx::{
    Endorsement, EndorsementError, SignedTransaction, Transaction, VerifiedTx,
};

const SUITE: CryptoSuite = CryptoSuite::Ed25519Sha256;

/// How one generated transaction is (mis)signed.
#[derive(Debug, Clone, Copy)]
enum Shape {
    /// Signed by one key.
    Valid,
    /// Signed by three distinct keys.
    ValidMulti,
    /// One bit of the `n`-th signature flipped.
    Forged(u8),
    /// Signed by another key than the one it names.
    WrongKey,
    /// The same key twice (the second copy valid).
    Duplicate,
    /// A forged signature before a repeated signer: the forgery is reported first.
    ForgedThenDuplicate,
    /// No signature.
    Unsigned,
    /// Names the identity point as its key.
    WeakKey,
}

fn shape() -> impl Strategy<Value = Shape> {
    prop_oneof![
        4 => Just(Shape::Valid),
        2 => Just(Shape::ValidMulti),
        2 => any::<u8>().prop_map(Shape::Forged),
        1 => Just(Shape::WrongKey),
        1 => Just(Shape::Duplicate),
        1 => Just(Shape::ForgedThenDuplicate),
        1 => Just(Shape::Unsigned),
        1 => Just(Shape::WeakKey),
    ]
}

fn transaction(n: u64) -> Transaction {
    static CHAIN: std::sync::OnceLock<vault_protocol::ids::ChainId> = std::sync::OnceLock::new();
    Transaction {
        chain_id: CHAIN
            .get_or_init(|| Fx::new().net.genesis.chain_id.clone())
            .clone(),
        created_at: Timestamp(1_700_000_000_000 + n),
        nonce: n,
        body: Ent::new(n as u32 % 50 + 1).enrolment("samr"),
    }
}

fn endorsements(
    v: Vec<Endorsement>,
) -> BoundedVec<Endorsement, { vault_protocol::tx::MAX_ENDORSEMENTS }> {
    BoundedVec::new(v).expect("few endorsements")
}

fn make(n: u64, shape: Shape) -> SignedTransaction {
    let tx = transaction(n);
    let k1 = key("sig/1");
    let k2 = key("sig/2");
    let k3 = key("sig/3");
    let flip = |mut e: Endorsement, bit: u8| {
        let mut b = [0u8; 64];
        b.copy_from_slice(e.signature.as_bytes());
        b[usize::from(bit % 64)] ^= 1 << (bit % 8);
        e.signature = Signature::from_bytes(b);
        e
    };
    let list = match shape {
        Shape::Valid => vec![tx.endorsement(&k1)],
        Shape::ValidMulti => vec![
            tx.endorsement(&k1),
            tx.endorsement(&k2),
            tx.endorsement(&k3),
        ],
        Shape::Forged(bit) => vec![tx.endorsement(&k1), flip(tx.endorsement(&k2), bit)],
        Shape::WrongKey => vec![Endorsement {
            signer: k2.public(),
            signature: tx.endorsement(&k1).signature,
        }],
        Shape::Duplicate => vec![tx.endorsement(&k1), tx.endorsement(&k1)],
        Shape::ForgedThenDuplicate => vec![
            flip(tx.endorsement(&k1), 3),
            tx.endorsement(&k2),
            tx.endorsement(&k2),
        ],
        Shape::Unsigned => vec![],
        Shape::WeakKey => vec![Endorsement {
            signer: identity_key(),
            signature: Signature::from_bytes([0u8; 64]),
        }],
    };
    SignedTransaction {
        tx,
        endorsements: endorsements(list),
    }
}

fn identity_key() -> PublicKey {
    let mut identity = [0u8; 32];
    identity[0] = 1;
    PublicKey::from_bytes(identity)
}

type Answer = Result<VerifiedTx, EndorsementError>;

fn alone(txs: &[SignedTransaction]) -> Vec<Answer> {
    txs.iter().map(|t| t.clone().verify(SUITE)).collect()
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(48))]

    /// Batch answers are per-transaction answers, for any mix and any batch size (below and above
    /// the sizes where batching and spreading over cores start).
    #[test]
    fn checking_many_at_once_answers_as_checking_each_alone(
        shapes in prop::collection::vec(shape(), 0..160)
    ) {
        let txs: Vec<SignedTransaction> =
            shapes.iter().enumerate().map(|(i, s)| make(i as u64, *s)).collect();
        clear_signature_cache();
        let together = SignedTransaction::verify_many(SUITE, txs.clone());
        clear_signature_cache();
        let one_by_one = alone(&txs);
        prop_assert_eq!(&together, &one_by_one);
        // Remembered signatures (the second time round) change nothing either.
        prop_assert_eq!(SignedTransaction::verify_many(SUITE, txs.clone()), one_by_one);
        for (s, r) in shapes.iter().zip(&together) {
            let expected_ok = matches!(s, Shape::Valid | Shape::ValidMulti);
            prop_assert_eq!(r.is_ok(), expected_ok, "{:?}: {:?}", s, r);
            match (s, r) {
                (Shape::Duplicate, Err(e)) => prop_assert_eq!(e.code(), "duplicate_signer"),
                (Shape::ForgedThenDuplicate | Shape::Forged(_) | Shape::WrongKey, Err(e)) => {
                    prop_assert_eq!(e.code(), "bad_signature")
                }
                (Shape::Unsigned, Err(e)) => prop_assert_eq!(e.code(), "unsigned"),
                (Shape::WeakKey, Err(e)) => prop_assert_eq!(e.code(), "invalid_key"),
                _ => {}
            }
        }
    }
}

/// The secret scalar and public point of a key made from `seed` (RFC 8032 key expansion).
fn wide(bytes: &[u8]) -> [u8; 64] {
    let mut w = [0u8; 64];
    w.copy_from_slice(bytes);
    w
}

fn expand(seed: [u8; 32]) -> (Scalar, [u8; 32], PublicKey) {
    let h = Sha512::digest(seed);
    let mut a = [0u8; 32];
    a.copy_from_slice(&h[..32]);
    a[0] &= 248;
    a[31] &= 127;
    a[31] |= 64;
    let a = Scalar::from_bytes_mod_order(a);
    let mut prefix = [0u8; 32];
    prefix.copy_from_slice(&h[32..]);
    let public = (ED25519_BASEPOINT_POINT * a).compress().to_bytes();
    (a, prefix, PublicKey::from_bytes(public))
}

/// A signature by `seed` over `message` (tagged with `domain`) whose `R` has a small-order
/// component of order 8 added: `[s]B = R − T + [k]A`, so only the cofactored equation holds.
fn mixed_order_signature(seed: [u8; 32], domain: Domain, message: &[u8]) -> (PublicKey, Signature) {
    let (a, prefix, public) = expand(seed);
    let tagged = [domain.tag(), message].concat();
    let r = Scalar::from_bytes_mod_order_wide(&wide(&Sha512::digest(
        [&prefix[..], &tagged[..]].concat(),
    )));
    let big_r = (ED25519_BASEPOINT_POINT * r + EIGHT_TORSION[1])
        .compress()
        .to_bytes();
    let k = Scalar::from_bytes_mod_order_wide(&wide(&Sha512::digest(
        [&big_r[..], public.as_bytes(), &tagged[..]].concat(),
    )));
    let s = r + k * a;
    let mut sig = [0u8; 64];
    sig[..32].copy_from_slice(&big_r);
    sig[32..].copy_from_slice(s.as_bytes());
    (public, Signature::from_bytes(sig))
}

#[test]
fn the_expansion_here_is_the_suites_own() {
    let seed = [42u8; 32];
    assert_eq!(expand(seed).2, KeyPair::from_seed(SUITE, seed).public());
}

#[test]
fn a_mixed_order_signature_is_accepted_alone_and_in_every_batch() {
    let (key, sig) = mixed_order_signature([5u8; 32], Domain::Grant, b"grant");
    // Strict RFC 8032 checking (used for C2SP notes) refuses it…
    assert!(SUITE
        .verify_untagged(&key, &[Domain::Grant.tag(), b"grant"].concat(), &sig)
        .is_err());
    // …the chain's rule accepts it, alone…
    clear_signature_cache();
    SUITE
        .verify(Domain::Grant, &key, b"grant", &sig)
        .expect("ZIP-215 accepts");
    // …and in batches of every size, every time (a cofactorless batch equation with random
    // weights would accept it only when the weight is a multiple of 8).
    let other = KeyPair::from_seed(SUITE, [6u8; 32]);
    let msgs: Vec<Vec<u8>> = (0..70).map(|i| format!("m{i}").into_bytes()).collect();
    let sigs: Vec<Signature> = msgs.iter().map(|m| other.sign(Domain::Grant, m)).collect();
    let other_key = other.public();
    for size in [1usize, 4, 9, 70] {
        for _ in 0..8 {
            clear_signature_cache();
            let mut checks: Vec<SignatureCheck<'_>> = (0..size - 1)
                .map(|i| SignatureCheck {
                    domain: Domain::Grant,
                    key: &other_key,
                    message: &msgs[i],
                    signature: &sigs[i],
                })
                .collect();
            checks.insert(
                size / 2,
                SignatureCheck {
                    domain: Domain::Grant,
                    key: &key,
                    message: b"grant",
                    signature: &sig,
                },
            );
            assert!(
                SUITE.verify_many(&checks).iter().all(Result::is_ok),
                "size {size}"
            );
        }
    }
    // Another message under the same signature still fails.
    clear_signature_cache();
    assert!(SUITE.verify(Domain::Grant, &key, b"grant!", &sig).is_err());
}

#[test]
fn a_bad_signature_in_a_batch_is_found_and_only_it_fails() {
    let k = KeyPair::from_seed(SUITE, [9u8; 32]);
    let pk = k.public();
    let msgs: Vec<Vec<u8>> = (0..100)
        .map(|i| format!("receipt {i}").into_bytes())
        .collect();
    let mut sigs: Vec<Signature> = msgs.iter().map(|m| k.sign(Domain::Receipt, m)).collect();
    let mut b = [0u8; 64];
    b.copy_from_slice(sigs[37].as_bytes());
    b[40] ^= 0x10;
    sigs[37] = Signature::from_bytes(b);
    clear_signature_cache();
    let checks: Vec<SignatureCheck<'_>> = msgs
        .iter()
        .zip(&sigs)
        .map(|(m, s)| SignatureCheck {
            domain: Domain::Receipt,
            key: &pk,
            message: m,
            signature: s,
        })
        .collect();
    let answers = SUITE.verify_many(&checks);
    for (i, a) in answers.iter().enumerate() {
        if i == 37 {
            assert!(matches!(a, Err(SignatureError::Mismatch { .. })), "{a:?}");
        } else {
            assert!(a.is_ok(), "{i}: {a:?}");
        }
    }
}

#[test]
fn small_order_keys_are_refused_even_with_a_signature_that_satisfies_the_equation() {
    // With A and R both small-order and s = 0, [8](R − [s]B + [k]A) = 0 for every message: a weak
    // key would sign anything. Each of the eight small-order points is refused as a key.
    for t in EIGHT_TORSION.iter() {
        let key = PublicKey::from_bytes(t.compress().to_bytes());
        let mut sig = [0u8; 64];
        sig[..32].copy_from_slice(&t.compress().to_bytes());
        let sig = Signature::from_bytes(sig);
        clear_signature_cache();
        assert!(matches!(
            SUITE.verify(Domain::Grant, &key, b"anything", &sig),
            Err(SignatureError::InvalidKey { .. })
        ));
        let checks = vec![
            SignatureCheck {
                domain: Domain::Grant,
                key: &key,
                message: b"anything",
                signature: &sig,
            };
            8
        ];
        assert!(SUITE
            .verify_many(&checks)
            .iter()
            .all(|r| matches!(r, Err(SignatureError::InvalidKey { .. }))));
    }
}

#[test]
fn a_batch_submission_round_trips_canonically() {
    let txs: Vec<SignedTransaction> = (0..5).map(|i| make(i, Shape::Valid)).collect();
    let batch = vault_protocol::tx::TransactionBatch(BoundedVec::new(txs).expect("five"));
    let bytes = batch.encode();
    assert_eq!(
        vault_protocol::tx::TransactionBatch::decode(&bytes).expect("decodes"),
        batch
    );
    let mut trailing = bytes.clone();
    trailing.push(0);
    assert!(vault_protocol::tx::TransactionBatch::decode(&trailing).is_err());
}

#[test]
fn every_committed_test_vector_signature_still_verifies_under_the_chain_rule() {
    // The rule change accepts every signature the strict rule accepted (honest signers' signatures
    // satisfy both equations): the same transactions made the same way verify either way.
    for i in 0..50 {
        let t = make(i, Shape::ValidMulti);
        for e in t.endorsements.iter() {
            let msg = t.tx.encode();
            SUITE
                .verify_untagged(
                    &e.signer,
                    &[t.tx.body.domain().tag(), &msg].concat(),
                    &e.signature,
                )
                .expect("strictly valid");
        }
        t.verify(SUITE).expect("valid under ZIP-215");
    }
}
