//! Signed vault requests: authentication against the ledger's keys and read authorisation against
//! grants, with every refusal's specific code.

#![allow(clippy::unwrap_used)]

mod common;

use common::*;
use vault_protocol::access::{
    authenticate, authorise_read, upload_of, AccessRequest, RequestAction, RequestError,
    RequestRefusal, Requester, SignedAccessRequest, REQUEST_WINDOW_MS,
};
use vault_protocol::crypto::KeyPair;
use vault_protocol::ids::{AttestationId, ChainId};
use vault_protocol::state::AccessRefusal;
use vault_protocol::tx::{Grantee, TxBody};

struct World {
    fx: Fx,
    ent: Ent,
    licence: AttestationId,
    rating: AttestationId,
}

fn world() -> World {
    let mut fx = Fx::new();
    let ent = Ent::new(1);
    fx.enrol(&ent);
    let licence = fx.issue(fx.licence(&ent, "licence"));
    let rating = fx.issue(fx.rating(&ent, "rating"));
    World {
        fx,
        ent,
        licence,
        rating,
    }
}

fn read_req(
    fx: &Fx,
    requester: Requester,
    attestation: AttestationId,
    purpose: &str,
) -> AccessRequest {
    AccessRequest {
        chain_id: fx.net.genesis.chain_id.clone(),
        requester,
        action: RequestAction::Read {
            attestation,
            purpose: bs(purpose),
        },
        created_at: fx.now(),
        nonce: 7,
    }
}

fn housing() -> Requester {
    Requester::Department(did("housing"))
}

fn check(fx: &Fx, signed: SignedAccessRequest) -> Result<(), RequestRefusal> {
    let gov = fx.ledger.governance().unwrap();
    let auth = authenticate(fx.ledger.state(), &gov, signed, fx.now()).map_err(refusal)?;
    authorise_read(fx.ledger.state(), &auth, fx.now())
        .map(|_| ())
        .map_err(refusal)
}

fn refusal(e: RequestError) -> RequestRefusal {
    match e {
        RequestError::Refused(r) => r,
        RequestError::Store(s) => panic!("store error {s}"),
    }
}

#[test]
fn a_grantee_reads_within_its_grant() {
    let mut w = world();
    let g =
        w.fx.grant(&w.ent, to_dept("housing"), types(&[LICENCE]), 30 * DAY);
    let signed = read_req(&w.fx, housing(), w.licence, "P-001").sign(&w.fx.signing("housing"));
    let gov = w.fx.ledger.governance().unwrap();
    let auth = authenticate(w.fx.ledger.state(), &gov, signed, w.fx.now()).unwrap();
    let ok = authorise_read(w.fx.ledger.state(), &auth, w.fx.now()).unwrap();
    assert_eq!(ok.grant_id, g);
    assert_eq!(ok.reader, Grantee::Department(did("housing")));
    assert_eq!(ok.attestation.id, w.licence);
}

#[test]
fn each_refusal_names_its_reason() {
    let mut w = world();
    let housing_key = w.fx.signing("housing");

    // No grant at all.
    let r = check(
        &w.fx,
        read_req(&w.fx, housing(), w.licence, "P-001").sign(&housing_key),
    );
    assert_eq!(r.unwrap_err().code(), "no_grant");

    // A grant for the licence only: the rating is outside its scope.
    let g =
        w.fx.grant(&w.ent, to_dept("housing"), types(&[LICENCE]), 30 * DAY);
    let r = check(
        &w.fx,
        read_req(&w.fx, housing(), w.rating, "P-001").sign(&housing_key),
    );
    assert_eq!(r.unwrap_err().code(), "grant_out_of_scope");

    // Another purpose.
    let r = check(
        &w.fx,
        read_req(&w.fx, housing(), w.licence, "P-999").sign(&housing_key),
    );
    let e = r.unwrap_err();
    assert_eq!(e.code(), "grant_other_purpose");
    assert!(matches!(
        e,
        RequestRefusal::Access(AccessRefusal::OtherPurpose { ref granted, ref requested })
            if granted == "P-001" && requested == "P-999"
    ));

    // Withdrawn.
    let body = w.fx.withdrawal(&w.ent, g);
    let tx = w.fx.signed(w.ent.key(), body);
    w.fx.accept(tx);
    let r = check(
        &w.fx,
        read_req(&w.fx, housing(), w.licence, "P-001").sign(&housing_key),
    );
    assert_eq!(r.unwrap_err().code(), "grant_withdrawn");

    // Expired.
    w.fx.grant(&w.ent, to_dept("housing"), types(&[LICENCE]), 10 * SECOND);
    assert!(check(
        &w.fx,
        read_req(&w.fx, housing(), w.licence, "P-001").sign(&housing_key)
    )
    .is_ok());
    w.fx.advance(HOUR);
    let r = check(
        &w.fx,
        read_req(&w.fx, housing(), w.licence, "P-001").sign(&housing_key),
    );
    assert_eq!(r.unwrap_err().code(), "grant_expired");
}

#[test]
fn authentication_checks_chain_time_signature_and_signer() {
    let mut w = world();
    w.fx.grant(&w.ent, to_dept("housing"), types(&[LICENCE]), 30 * DAY);
    let fx = &w.fx;
    let housing_key = fx.signing("housing");

    let mut other_chain = read_req(fx, housing(), w.licence, "P-001");
    other_chain.chain_id = ChainId::new("another-city").unwrap();
    assert_eq!(
        check(fx, other_chain.sign(&housing_key))
            .unwrap_err()
            .code(),
        "wrong_chain"
    );

    let mut old = read_req(fx, housing(), w.licence, "P-001");
    old.created_at = fx.now().minus(REQUEST_WINDOW_MS + 1);
    assert_eq!(
        check(fx, old.sign(&housing_key)).unwrap_err().code(),
        "request_outside_window"
    );
    let mut future = read_req(fx, housing(), w.licence, "P-001");
    future.created_at = fx.now().plus(REQUEST_WINDOW_MS + 1);
    assert_eq!(
        check(fx, future.sign(&housing_key)).unwrap_err().code(),
        "request_outside_window"
    );

    // A forged signature: the bytes changed after signing.
    let mut forged = read_req(fx, housing(), w.licence, "P-001").sign(&housing_key);
    forged.request.nonce += 1;
    assert_eq!(check(fx, forged).unwrap_err().code(), "bad_signature");

    // Signed by another department's key while claiming to be housing.
    let r = check(
        fx,
        read_req(fx, housing(), w.licence, "P-001").sign(&fx.signing("tax")),
    );
    assert_eq!(r.unwrap_err().code(), "wrong_signer");

    // Not a member.
    let r = check(
        fx,
        read_req(fx, Requester::Department(did("nobody")), w.licence, "P-001").sign(&housing_key),
    );
    assert_eq!(r.unwrap_err().code(), "not_member");

    // An application must sign with its own key.
    let app = KeyPair::from_seed(SUITE, [9; 32]);
    let other = KeyPair::from_seed(SUITE, [10; 32]);
    let r = check(
        fx,
        read_req(fx, Requester::Application(app.public()), w.licence, "P-001").sign(&other),
    );
    assert_eq!(r.unwrap_err().code(), "wrong_signer");
    // …and with it, it is authenticated but holds no grant.
    let r = check(
        fx,
        read_req(fx, Requester::Application(app.public()), w.licence, "P-001").sign(&app),
    );
    assert_eq!(r.unwrap_err().code(), "no_grant");

    // An enterprise is not a grantee.
    let r = check(
        fx,
        read_req(fx, Requester::Enterprise(w.ent.uscc), w.licence, "P-001").sign(w.ent.key()),
    );
    assert_eq!(r.unwrap_err().code(), "not_a_grantee");

    // An unknown attestation.
    let r = check(
        fx,
        read_req(fx, housing(), AttestationId(file("nothing")), "P-001").sign(&housing_key),
    );
    assert_eq!(r.unwrap_err().code(), "unknown_attestation");
}

#[test]
fn uploads_are_by_members_or_enrolled_enterprises() {
    let w = world();
    let fx = &w.fx;
    let gov = fx.ledger.governance().unwrap();
    let upload = |requester: Requester| AccessRequest {
        chain_id: fx.net.genesis.chain_id.clone(),
        requester,
        action: RequestAction::Upload {
            digest: file("licence"),
            size: 1234,
        },
        created_at: fx.now(),
        nonce: 1,
    };
    let auth = authenticate(
        fx.ledger.state(),
        &gov,
        upload(Requester::Enterprise(w.ent.uscc)).sign(w.ent.key()),
        fx.now(),
    )
    .unwrap();
    assert_eq!(upload_of(&auth).unwrap(), (file("licence"), 1234));
    // An upload request cannot be used to read.
    assert_eq!(
        refusal(authorise_read(fx.ledger.state(), &auth, fx.now()).unwrap_err()).code(),
        "wrong_action"
    );

    let stranger = Ent::new(2);
    let e = authenticate(
        fx.ledger.state(),
        &gov,
        upload(Requester::Enterprise(stranger.uscc)).sign(stranger.key()),
        fx.now(),
    )
    .unwrap_err();
    assert_eq!(refusal(e).code(), "not_enrolled");

    // A rotated-away enterprise key no longer authenticates.
    let mut fx2 = world();
    let rot = TxBody::RotateEnterpriseKey(vault_protocol::tx::EnterpriseKeyRotation {
        enterprise: fx2.ent.uscc,
        new_key: fx2.ent.keys[1].public(),
    });
    let tx = fx2.fx.signed(fx2.ent.key(), rot);
    fx2.fx.accept(tx);
    let gov2 = fx2.fx.ledger.governance().unwrap();
    let req = AccessRequest {
        chain_id: fx2.fx.net.genesis.chain_id.clone(),
        requester: Requester::Enterprise(fx2.ent.uscc),
        action: RequestAction::Upload {
            digest: file("x"),
            size: 1,
        },
        created_at: fx2.fx.now(),
        nonce: 1,
    };
    let e = authenticate(
        fx2.fx.ledger.state(),
        &gov2,
        req.clone().sign(fx2.ent.key()),
        fx2.fx.now(),
    )
    .unwrap_err();
    assert_eq!(refusal(e).code(), "wrong_signer");
    assert!(authenticate(
        fx2.fx.ledger.state(),
        &gov2,
        req.sign(&fx2.ent.keys[1]),
        fx2.fx.now()
    )
    .is_ok());
}
