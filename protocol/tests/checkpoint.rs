//! Tests of `vault_protocol::checkpoint`: C2SP checkpoints (c2sp.org/tlog-checkpoint) in the
//! signed-note format (c2sp.org/signed-note), the departments' Ed25519 cosignatures, the verdict
//! on a cosigned checkpoint, and consistency between checkpoints.
//!
//! - Known answers from Go's `golang.org/x/mod/sumdb/note` tests (key ids, verifier keys, a
//!   deterministic signature, its malformed notes) and the examples of the C2SP specifications.
//! - Property tests: checkpoint bodies and signed notes round-trip.
//! - Verdicts on notes cosigned by the departments of `TestNetwork`: a quorum verifies; too few
//!   cosigners, non-members, strangers using a member's name, duplicate lines, rotated-away keys,
//!   a wrong origin, stale checkpoints and bad signatures each fail with their own error; every
//!   single-bit flip of a cosigned note fails.
//! - Consistency proofs across 1,000 appended leaves between every pair of a sample of cosigned
//!   checkpoints; forged roots, forks and shrinking logs are flagged as split views.
//! - The committed vector `tests/vectors/checkpoint.txt` (a cosigned checkpoint of a real block).

#![allow(clippy::unwrap_used)]

mod common;

use std::collections::BTreeMap;
use std::path::PathBuf;

use common::*;
use proptest::prelude::*;
use vault_protocol::checkpoint::{
    base64, cosigned_checkpoint_verdict, cosigner_name, note_key_id, parse_verifier_key, sign_note,
    verifier_key, verify_consistency_between, verify_note_signature, BlockRef, Checkpoint,
    CheckpointError, IgnoreReason, NoteSignature, SignedNote, SplitViewReason, VaultCheckpoint,
    VerifiedCheckpoint, MAX_NOTE_SIGNATURES,
};
use vault_protocol::crypto::{CryptoSuite, Digest, KeyPair, PublicKey};
use vault_protocol::governance::Governance;
use vault_protocol::ids::{BlockHash, ChainId, Timestamp};
use vault_protocol::merkle::{
    ConsistencyProof, Hash, LogHasher, MemoryLog, MerkleError, Sha256LogHasher,
};
use vault_protocol::tx::{GovernanceAction, TxBody};

// ---------------------------------------------------------------------------------------------
// Go's golang.org/x/mod/sumdb/note test vectors
// ---------------------------------------------------------------------------------------------

const PETER_SKEY: &str =
    "PRIVATE+KEY+PeterNeumann+c74f20a3+AYEKFALVFGyNhPJEMzD1QIDr+Y7hfZx09iUvxdXHKDFz";
const PETER_VKEY: &str = "PeterNeumann+c74f20a3+ARpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10TW";
const ENOCH_VKEY: &str = "EnochRoot+af0cfe78+ATtqJ7zOtqQtYqOo0CpvDXNlMhV3HeJDpjrASKGLWdop";
/// The Go checksum database's published key.
const SUMDB_VKEY: &str = "sum.golang.org+033de0ae+Ac4zctda0e5eza+HJyk9SxEdh+s3Ux18htTTAD8OuAn8";
/// The verifier-key example of c2sp.org/signed-note, and the note it verifies.
const FOO_VKEY: &str = "example.com/foo+530d903a+AekyeRrm56hApGFkyQR4ZCbV54Id2LKaANYcrnKv3U2k";
const FOO_NOTE: &str = "This is an example message.\n\n— example.com/foo Uw2QOkn8srV1yJGh2VYRlL1Tnagv1YEq6TfXppzi2ONncAlTgK7Ztg1ERYNZXsYjOBH3mFXmRKuwHjG1Yu72IneyaQM=\n";
const GO_TEXT: &str = "If you think cryptography is the answer to your problem,\n\
                       then you don't know what your problem is.\n";
const PETER_SIG: &str = "— PeterNeumann x08go/ZJkuBS9UG/SffcvIAQxVBtiFupLLr8pAcElZInNIuGUgYN1FFYC2pZSNXgKvqfqdngotpRZb6KE6RyyBwJnAM=\n";
const ENOCH_SIG: &str = "— EnochRoot rwz+eBzmZa0SO3NbfRGzPCpDckykFXSdeX+MNtCOXm2/5n2tiOHp+vAF1aGrQ5ovTG01oOTGwnWLox33WWd1RvMc+QQ=\n";

/// The name, key id and public key of a verifier key `name+hex id+base64(0x01 ‖ key)`, decoded
/// here independently of `parse_verifier_key`.
fn parse_vkey(vkey: &str) -> (String, [u8; 4], PublicKey) {
    let parts: Vec<&str> = vkey.splitn(3, '+').collect();
    let id: [u8; 4] = hex::decode(parts[1]).unwrap().try_into().unwrap();
    let raw = base64::decode(parts[2]).unwrap();
    assert_eq!(raw[0], 0x01, "Ed25519 signature type");
    (
        parts[0].to_string(),
        id,
        PublicKey::from_bytes(raw[1..].try_into().unwrap()),
    )
}

#[test]
fn go_key_ids_and_verifier_keys() {
    for vkey in [PETER_VKEY, ENOCH_VKEY, SUMDB_VKEY] {
        let (name, id, key) = parse_vkey(vkey);
        assert_eq!(note_key_id(&name, &key), id, "{vkey}");
        assert_eq!(verifier_key(&name, &key), vkey);
    }
    for vkey in [PETER_VKEY, ENOCH_VKEY, SUMDB_VKEY, FOO_VKEY] {
        let (name, _, key) = parse_vkey(vkey);
        assert_eq!(parse_verifier_key(vkey).unwrap(), (name, key));
    }
    for bad in [
        "PeterNeumann+c74f20a4+ARpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10TW",
        "PeterNeumann+C74F20A3+ARpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10TW",
        "PeterNeumann+c74f20a3",
        "PeterNeumann+c74f20a3+ARpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10T",
        // Go's manglings: wrong key length, unknown algorithm (each with a matching key hash).
        "PeterNeumann+cc469956+ARpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10TWBADKEY==",
        "PeterNeumann+173116ae+ZRpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10TW",
        "+c74f20a3+ARpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10TW",
    ] {
        assert_eq!(
            parse_verifier_key(bad).unwrap_err().code(),
            "invalid_verifier_key",
            "{bad}"
        );
    }
    // The key id covers the name: same key, other name, other id.
    let (_, id, key) = parse_vkey(PETER_VKEY);
    assert_ne!(note_key_id("PeterNeumann2", &key), id);
}

#[test]
fn go_signature_known_answer() {
    // The private key is base64(0x01 ‖ 32-byte Ed25519 seed).
    let raw = base64::decode(PETER_SKEY.splitn(5, '+').nth(4).unwrap()).unwrap();
    assert_eq!(raw[0], 0x01);
    let key = KeyPair::from_seed(CryptoSuite::Ed25519Sha256, raw[1..].try_into().unwrap());
    let (name, id, public) = parse_vkey(PETER_VKEY);
    assert_eq!(key.public(), public);

    let sig = sign_note(GO_TEXT, &name, &key).unwrap();
    assert_eq!(sig.key_id, id);
    assert_eq!(sig.signature.len(), 64);
    assert_eq!(sig.to_line().unwrap(), PETER_SIG);
    let note = SignedNote {
        body: GO_TEXT.into(),
        signatures: vec![sig.clone()],
    };
    // Go's `Sign` output, byte for byte.
    assert_eq!(note.to_text().unwrap(), format!("{GO_TEXT}\n{PETER_SIG}"));
    verify_note_signature(GO_TEXT, &sig, &name, &public).unwrap();
}

#[test]
fn go_open_vectors() {
    let (peter, _, peter_key) = parse_vkey(PETER_VKEY);
    let (enoch, _, enoch_key) = parse_vkey(ENOCH_VKEY);
    let note = SignedNote::parse(&format!("{GO_TEXT}\n{PETER_SIG}{ENOCH_SIG}")).unwrap();
    assert_eq!(note.body, GO_TEXT);
    assert_eq!(note.signatures.len(), 2);
    assert_eq!(note.signatures[0].name, "PeterNeumann");
    assert_eq!(note.signatures[0].key_id, [0xc7, 0x4f, 0x20, 0xa3]);
    assert_eq!(note.signatures[1].key_id, [0xaf, 0x0c, 0xfe, 0x78]);
    verify_note_signature(&note.body, &note.signatures[0], &peter, &peter_key).unwrap();
    verify_note_signature(&note.body, &note.signatures[1], &enoch, &enoch_key).unwrap();

    // The wrong signer, the wrong key, the wrong text.
    let e = verify_note_signature(&note.body, &note.signatures[0], &enoch, &enoch_key);
    assert_eq!(e.unwrap_err().code(), "signer_mismatch");
    let e = verify_note_signature(&note.body, &note.signatures[0], &peter, &enoch_key);
    assert_eq!(e.unwrap_err().code(), "key_id_mismatch");
    let other = GO_TEXT.replace("answer", "Answer");
    let e = verify_note_signature(&other, &note.signatures[0], &peter, &peter_key);
    assert!(matches!(
        e,
        Err(CheckpointError::BadSignature { ref signer, ref key_id })
            if signer == "PeterNeumann" && key_id == "c74f20a3"
    ));

    // Go's "invalid signature": four characters inserted into the base64.
    let mangled = format!("{}ABCD{}", &PETER_SIG[..60], &PETER_SIG[60..]);
    let n = SignedNote::parse(&format!("{GO_TEXT}\n{mangled}")).unwrap();
    assert_eq!(
        verify_note_signature(&n.body, &n.signatures[0], &peter, &peter_key)
            .unwrap_err()
            .code(),
        "bad_signature"
    );

    // Go's malformed notes.
    let bad = [
        (GO_TEXT.to_string(), "note_missing_signatures"),
        (format!("{GO_TEXT}\n"), "note_missing_signatures"),
        (
            format!("{GO_TEXT}\n{}", &PETER_SIG[..PETER_SIG.len() - 1]),
            "note_unterminated",
        ),
        (format!("\x01{GO_TEXT}\n{PETER_SIG}"), "control_character"),
        (
            format!("{GO_TEXT}\n— Bad Name x08go/ZJkuBS9UG/SffcvIAQxVBtiFupLLr8pAcElZInNIuGUgYN1FFYC2pZSNXgKvqfqdngotpRZb6KE6RyyBwJnAM=\n"),
            "bad_signature_line",
        ),
        (
            format!("{GO_TEXT}\n{PETER_SIG}Unexpected line.\n"),
            "bad_signature_line",
        ),
        (
            format!("{GO_TEXT}\n{}", PETER_SIG.repeat(101)),
            "too_many_signatures",
        ),
    ];
    for (text, code) in bad {
        assert_eq!(
            SignedNote::parse(&text).unwrap_err().code(),
            code,
            "{text:?}"
        );
    }
    // Go's "\xff" prefix: not UTF-8.
    let mut bytes = b"\xff".to_vec();
    bytes.extend_from_slice(format!("{GO_TEXT}\n{PETER_SIG}").as_bytes());
    assert_eq!(
        SignedNote::parse_bytes(&bytes).unwrap_err(),
        CheckpointError::NotUtf8 { offset: 0 }
    );
    // The maximum number of signatures is accepted.
    let n = SignedNote::parse(&format!(
        "{GO_TEXT}\n{}",
        PETER_SIG.repeat(MAX_NOTE_SIGNATURES)
    ))
    .unwrap();
    assert_eq!(n.signatures.len(), MAX_NOTE_SIGNATURES);
}

#[test]
fn note_signing_refuses_what_is_not_note_text() {
    let key = key("note-signer");
    // Every vault domain tag ends in NUL: a note can never be a tagged message.
    assert_eq!(
        sign_note("vault/v1/block\0x\n", "a", &key).unwrap_err(),
        CheckpointError::ControlCharacter {
            offset: 14,
            byte: 0
        }
    );
    assert_eq!(
        sign_note("no newline", "a", &key).unwrap_err().code(),
        "note_unterminated"
    );
    for name in ["", "a b", "a+b", "a\u{3000}b"] {
        assert_eq!(
            sign_note("x\n", name, &key).unwrap_err().code(),
            "invalid_key_name"
        );
    }
    let sig = sign_note("x\n", "a", &key).unwrap();
    assert_eq!(
        verify_note_signature("x\0\n", &sig, "a", &key.public())
            .unwrap_err()
            .code(),
        "control_character"
    );
    // A weak (small-order) key is refused.
    let weak = PublicKey::from_bytes([0; 32]);
    let forged = NoteSignature {
        key_id: note_key_id("a", &weak),
        ..sig
    };
    assert_eq!(
        verify_note_signature("x\n", &forged, "a", &weak)
            .unwrap_err()
            .code(),
        "invalid_public_key"
    );
}

// ---------------------------------------------------------------------------------------------
// The C2SP examples and strict parsing
// ---------------------------------------------------------------------------------------------

const SOFA: &str =
    "example.com/behind-the-sofa\n20852163\nCsUYapGGPo4dkMgIAUqom/Xajj7h2fB2MPA3j2jxq2I=\n";

#[test]
fn c2sp_examples_parse() {
    let cp = Checkpoint::parse_body(SOFA).unwrap();
    assert_eq!(cp.origin, "example.com/behind-the-sofa");
    assert_eq!(cp.size, 20_852_163);
    assert_eq!(
        hex::encode(cp.root),
        "0ac5186a91863e8e1d90c808014aa89bf5da8e3ee1d9f07630f0378f68f1ab62"
    );
    assert!(cp.extensions.is_empty());
    assert_eq!(cp.to_body().unwrap(), SOFA);

    // signed-note's verifier-key example verifies.
    let n = SignedNote::parse(FOO_NOTE).unwrap();
    let (name, key) = parse_verifier_key(FOO_VKEY).unwrap();
    verify_note_signature(&n.body, &n.signatures[0], &name, &key).unwrap();
    assert_eq!(n.to_text().unwrap(), FOO_NOTE);

    // tlog-cosignature's example: the log's signature and a witness cosignature (type 0x04).
    let note = format!(
        "{SOFA}\n\
         — example.com/behind-the-sofa Az3grlgtzPICa5OS8npVmf1Myq/5IZniMp+ZJurmRDeOoRDe4URYN7u5/Zhcyv2q1gGzGku9nTo+zyWE+xeMcTOAYQ8=\n\
         — witness.example.com/w1 jWbPPwAAAABkGFDLEZMHwSRaJNiIDoe9DYn/zXcrtPHeolMI5OWXEhZCB9dlrDJsX3b2oyin1nPZqhf5nNo0xUe+mbIUBkBIfZ+qnA==\n"
    );
    let n = SignedNote::parse(&note).unwrap();
    assert_eq!(n.body, SOFA);
    assert_eq!(n.signatures[0].name, "example.com/behind-the-sofa");
    assert_eq!(n.signatures[0].signature.len(), 64);
    assert_eq!(n.signatures[1].name, "witness.example.com/w1");
    assert_eq!(n.signatures[1].signature.len(), 8 + 64);
    assert_eq!(n.to_text().unwrap(), note);

    // signed-note's example: the text holds a blank line; the last one separates.
    let poem = "Ognuno sta solo sul cuor della terra\ntrafitto da un raggio di sole:\n\ned è subito sera.\n";
    let note = format!("{poem}\n— quasimodo.example/salvatore NnugSzTjtVAewIS+Z/iJhUPeFDkO/5QQ2i5ddnGITLlC+EhfLW9oJKONrMouFSQU0xMcXxj99ihAQwaqP3ZekRwNtIc=\n");
    let n = SignedNote::parse(&note).unwrap();
    assert_eq!(n.body, poem);
    assert_eq!(n.signatures[0].key_id, [0x36, 0x7b, 0xa0, 0x4b]);
    assert_eq!(n.to_text().unwrap(), note);
}

#[test]
fn checkpoint_bodies_are_parsed_strictly() {
    let root = "CsUYapGGPo4dkMgIAUqom/Xajj7h2fB2MPA3j2jxq2I=";
    let cases: Vec<(String, &str)> = vec![
        (String::new(), "checkpoint_unterminated"),
        ("o\n5\nroot".into(), "checkpoint_unterminated"),
        (format!("o\n5\n{root}"), "checkpoint_unterminated"),
        ("\n".into(), "checkpoint_empty_origin"),
        (format!("\n5\n{root}\n"), "checkpoint_empty_origin"),
        ("o\n".into(), "checkpoint_missing_line"),
        ("o\n5\n".into(), "checkpoint_missing_line"),
        ("o\n\n".into(), "checkpoint_empty_line"),
        (format!("o\n\n{root}\n"), "checkpoint_empty_line"),
        ("o\n5\n\n".into(), "checkpoint_empty_line"),
        (format!("o\n5\n{root}\n\n"), "checkpoint_empty_line"),
        (format!("o\n5\n{root}\next\n\n"), "checkpoint_empty_line"),
        (format!("o\n05\n{root}\n"), "checkpoint_invalid_size"),
        (format!("o\n00\n{root}\n"), "checkpoint_invalid_size"),
        (format!("o\n+5\n{root}\n"), "checkpoint_invalid_size"),
        (format!("o\n-5\n{root}\n"), "checkpoint_invalid_size"),
        (format!("o\n 5\n{root}\n"), "checkpoint_invalid_size"),
        (format!("o\n5 \n{root}\n"), "checkpoint_invalid_size"),
        (format!("o\n0x5\n{root}\n"), "checkpoint_invalid_size"),
        (
            format!("o\n18446744073709551616\n{root}\n"),
            "checkpoint_invalid_size",
        ),
        (format!("o\n٥\n{root}\n"), "checkpoint_invalid_size"),
        // Root: unpadded, URL-safe alphabet, 31 and 33 bytes, non-canonical final character.
        (
            "o\n5\nCsUYapGGPo4dkMgIAUqom/Xajj7h2fB2MPA3j2jxq2I\n".into(),
            "checkpoint_invalid_root",
        ),
        (
            "o\n5\nCsUYapGGPo4dkMgIAUqom_Xajj7h2fB2MPA3j2jxq2I=\n".into(),
            "checkpoint_invalid_root",
        ),
        (
            format!("o\n5\n{}\n", base64::encode(&[7; 31])),
            "checkpoint_invalid_root",
        ),
        (
            format!("o\n5\n{}\n", base64::encode(&[7; 33])),
            "checkpoint_invalid_root",
        ),
        (
            "o\n5\nCsUYapGGPo4dkMgIAUqom/Xajj7h2fB2MPA3j2jxq2J=\n".into(),
            "checkpoint_invalid_root",
        ),
        (format!("o\n5\n {root}\n"), "checkpoint_invalid_root"),
        // Control characters, CRLF included.
        (format!("o\r\n5\n{root}\n"), "control_character"),
        (format!("o\n5\n{root}\nex\tt\n"), "control_character"),
    ];
    for (body, code) in cases {
        assert_eq!(
            Checkpoint::parse_body(&body).unwrap_err().code(),
            code,
            "{body:?}"
        );
    }
    // Size 0, the maximum size, spaces in the origin (allowed: only a recommendation), and
    // extension lines are fine.
    for body in [
        format!("o\n0\n{root}\n"),
        format!("o\n18446744073709551615\n{root}\n"),
        format!("a log with spaces+plus\n1\n{root}\nx\ny y\n"),
    ] {
        let cp = Checkpoint::parse_body(&body).unwrap();
        assert_eq!(cp.to_body().unwrap(), body);
    }
    // Bodies that would not parse back are refused.
    let mut cp = Checkpoint::parse_body(SOFA).unwrap();
    cp.origin = "a\nb".into();
    assert_eq!(cp.to_body().unwrap_err().code(), "control_character");
    cp.origin = String::new();
    assert_eq!(cp.to_body().unwrap_err().code(), "checkpoint_empty_origin");
    cp.origin = "o".into();
    cp.extensions = vec!["x".into(), String::new()];
    assert_eq!(
        cp.to_body().unwrap_err(),
        CheckpointError::EmptyLine { line: 5 }
    );
}

#[test]
fn signed_notes_are_parsed_strictly() {
    let sig = "— a AAAAAAE=\n";
    for (text, code) in [
        (
            format!("b\n\n{sig}").replace('—', "-"),
            "bad_signature_line",
        ),
        (
            format!("b\n\n{sig}").replace("— ", "—"),
            "bad_signature_line",
        ),
        ("b\n\n— a\n".to_string(), "bad_signature_line"),
        ("b\n\n— a AAAA\n".to_string(), "bad_signature_line"),
        ("b\n\n— a AAAAAAE\n".to_string(), "bad_signature_line"),
        ("b\n\n— a  AAAAAAE=\n".to_string(), "bad_signature_line"),
        (
            "b\n\n— a AAAAAAE=\n\n".to_string(),
            "note_missing_signatures",
        ),
        ("b\n\n— a+b AAAAAAE=\n".to_string(), "invalid_key_name"),
        ("b\n\n—  AAAAAAE=\n".to_string(), "invalid_key_name"),
        (
            "b\n\n— a\u{3000}b AAAAAAE=\n".to_string(),
            "invalid_key_name",
        ),
        (format!("b\r\n\n{sig}"), "control_character"),
        (format!("{}\n\n{sig}", "x".repeat(70_000)), "note_too_large"),
    ] {
        assert_eq!(
            SignedNote::parse(&text).unwrap_err().code(),
            code,
            "{text:.80?}"
        );
    }
    // A note with no text but its newline is a note; the checkpoint layer refuses it.
    let n = SignedNote::parse(&format!("\n\n{sig}")).unwrap();
    assert_eq!(n.body, "\n");
    // to_text refuses what would not parse back.
    let ok = NoteSignature {
        name: "a".into(),
        key_id: [0; 4],
        signature: vec![1],
    };
    let note = |body: &str, signatures: Vec<NoteSignature>| SignedNote {
        body: body.into(),
        signatures,
    };
    assert_eq!(
        note("b\n", vec![ok.clone()]).to_text().unwrap(),
        format!("b\n\n{sig}")
    );
    assert_eq!(
        note("b", vec![ok.clone()]).to_text().unwrap_err().code(),
        "note_unterminated"
    );
    assert_eq!(
        note("b\n", vec![]).to_text().unwrap_err().code(),
        "note_missing_signatures"
    );
    assert_eq!(
        note("b\x07\n", vec![ok.clone()])
            .to_text()
            .unwrap_err()
            .code(),
        "control_character"
    );
    let bad_name = NoteSignature {
        name: "a b".into(),
        ..ok.clone()
    };
    assert_eq!(
        note("b\n", vec![bad_name]).to_text().unwrap_err().code(),
        "invalid_key_name"
    );
    let empty = NoteSignature {
        signature: vec![],
        ..ok.clone()
    };
    assert_eq!(
        note("b\n", vec![empty]).to_text().unwrap_err().code(),
        "bad_signature_line"
    );
    assert_eq!(
        note("b\n", vec![ok; MAX_NOTE_SIGNATURES + 1])
            .to_text()
            .unwrap_err()
            .code(),
        "too_many_signatures"
    );
}

// ---------------------------------------------------------------------------------------------
// Round trips
// ---------------------------------------------------------------------------------------------

fn text_line() -> impl Strategy<Value = String> {
    // Any characters but control characters below U+0020 (which include the newline).
    "[^\\x00-\\x1f]{1,24}"
}

fn key_name() -> impl Strategy<Value = String> {
    "[^\\x00-\\x1f]{1,24}".prop_filter("valid key name", |n| {
        vault_protocol::checkpoint::is_valid_key_name(n)
    })
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    #[test]
    fn prop_checkpoint_round_trip(
        origin in text_line(),
        size in any::<u64>(),
        root in any::<[u8; 32]>(),
        extensions in prop::collection::vec(text_line(), 0..4),
    ) {
        let cp = Checkpoint { origin, size, root, extensions };
        let body = cp.to_body().unwrap();
        prop_assert_eq!(Checkpoint::parse_body(&body).unwrap(), cp);
    }

    #[test]
    fn prop_signed_note_round_trip(
        lines in prop::collection::vec(prop::option::of(text_line()), 1..6),
        sigs in prop::collection::vec(
            (key_name(), any::<[u8; 4]>(), prop::collection::vec(any::<u8>(), 1..80)),
            1..6,
        ),
    ) {
        // Any text, blank lines included.
        let body: String = lines.iter().map(|l| format!("{}\n", l.as_deref().unwrap_or(""))).collect();
        let note = SignedNote {
            body,
            signatures: sigs
                .into_iter()
                .map(|(name, key_id, signature)| NoteSignature { name, key_id, signature })
                .collect(),
        };
        let text = note.to_text().unwrap();
        prop_assert_eq!(SignedNote::parse(&text).unwrap(), note.clone());
        prop_assert_eq!(SignedNote::parse_bytes(text.as_bytes()).unwrap(), note);
    }

    #[test]
    fn prop_vault_checkpoint_round_trip(
        size in any::<u64>(),
        root in any::<[u8; 32]>(),
        height in any::<u64>(),
        hash in any::<[u8; 32]>(),
        time in any::<u64>(),
    ) {
        let chain = ChainId::new("test-vault").unwrap();
        let vc = VaultCheckpoint {
            chain_id: chain.clone(),
            size,
            root,
            block: BlockRef { height, hash: BlockHash(Digest(hash)), time: Timestamp(time) },
        };
        let body = vc.to_body();
        prop_assert_eq!(&vc.to_checkpoint().to_body().unwrap(), &body);
        let back = VaultCheckpoint::from_checkpoint(&Checkpoint::parse_body(&body).unwrap(), &chain);
        prop_assert_eq!(back.unwrap(), vc);
    }
}

// ---------------------------------------------------------------------------------------------
// Cosigned checkpoints
// ---------------------------------------------------------------------------------------------

/// A ledger with one committed block (an enrolment), and the checkpoint after it.
fn one_block() -> (Fx, VaultCheckpoint) {
    let mut fx = Fx::new();
    let ent = Ent::new(1);
    fx.enrol(&ent);
    let header = fx.ledger.block(1).unwrap().header.clone();
    let cp = VaultCheckpoint::from_header(&fx.net.genesis.chain_id, &header, SUITE);
    (fx, cp)
}

fn governance(fx: &Fx) -> Governance {
    fx.ledger.governance().unwrap()
}

/// The note of `cp` cosigned by these founding departments' signing keys.
fn cosigned(fx: &Fx, cp: &VaultCheckpoint, by: &[&str]) -> String {
    let sigs = by
        .iter()
        .map(|d| cp.sign(&did(d), &fx.signing(d)))
        .collect();
    cp.note(sigs).to_text().unwrap()
}

fn codes_of(e: &CheckpointError) -> &'static str {
    e.code()
}

#[test]
fn a_quorum_of_departments_verifies() {
    let (fx, cp) = one_block();
    let gov = governance(&fx);
    let header = fx.ledger.block(1).unwrap().header.clone();
    assert_eq!(cp.size, header.log_size);
    assert_eq!(cp.block.height, 1);

    let text = cosigned(&fx, &cp, &["samr", "tax", "hrss"]);
    // The exact text.
    let body = format!(
        "test-vault\n{}\n{}\nvault-block 1 {} {}\n",
        header.log_size,
        base64::encode(&header.log_root.0),
        header.hash(SUITE),
        header.time.millis()
    );
    assert!(
        text.starts_with(&format!("{body}\n— samr.test-vault ")),
        "{text}"
    );
    assert_eq!(text.lines().count(), 4 + 1 + 3);

    let v = cosigned_checkpoint_verdict(&text, &gov, None).unwrap();
    assert_eq!(v.checkpoint(), &cp);
    assert_eq!(v.time(), header.time);
    assert_eq!(v.cosigners(), [did("hrss"), did("samr"), did("tax")]);
    assert!(v.ignored().is_empty());
    assert_eq!((v.members(), v.required()), (4, 3));
    v.check_header(&header).unwrap();
    // Bytes work as well as text; all four also verify.
    cosigned_checkpoint_verdict(text.as_bytes(), &gov, None).unwrap();
    let all = cosigned_checkpoint_verdict(
        cosigned(&fx, &cp, &["housing", "tax", "samr", "hrss"]),
        &gov,
        None,
    )
    .unwrap();
    assert_eq!(all.cosigners().len(), 4);

    // Key names are `<department>.<chain id>`; key ids follow the signed-note rule.
    let name = cosigner_name(&did("samr"), &gov.chain_id);
    assert_eq!(name, "samr.test-vault");
    let note = SignedNote::parse(&text).unwrap();
    assert_eq!(
        note.signatures[0].key_id,
        note_key_id(&name, &fx.signing("samr").public())
    );
    verify_note_signature(
        &note.body,
        &note.signatures[0],
        &name,
        &fx.signing("samr").public(),
    )
    .unwrap();
}

#[test]
fn a_checkpoint_is_tied_to_its_block_header() {
    let (mut fx, cp) = one_block();
    let header = fx.ledger.block(1).unwrap().header.clone();
    cp.check_header(&header, SUITE).unwrap();
    fx.enrol(&Ent::new(2));
    let next = fx.ledger.block(2).unwrap().header.clone();
    let e = cp.check_header(&next, SUITE).unwrap_err();
    assert!(
        matches!(
            e,
            CheckpointError::HeaderMismatch {
                field: "height",
                ..
            }
        ),
        "{e}"
    );
    for (field, change) in [
        (
            "block_hash",
            Box::new(|c: &mut VaultCheckpoint| c.block.hash = BlockHash(Digest([1; 32])))
                as Box<dyn Fn(&mut VaultCheckpoint)>,
        ),
        (
            "time",
            Box::new(|c: &mut VaultCheckpoint| c.block.time = c.block.time.plus(1)),
        ),
        ("log_size", Box::new(|c: &mut VaultCheckpoint| c.size += 1)),
        (
            "log_root",
            Box::new(|c: &mut VaultCheckpoint| c.root[0] ^= 1),
        ),
    ] {
        let mut c = cp.clone();
        change(&mut c);
        match c.check_header(&header, SUITE) {
            Err(CheckpointError::HeaderMismatch { field: f, .. }) => assert_eq!(f, field),
            other => panic!("{field}: {other:?}"),
        }
    }
}

#[test]
fn every_single_bit_flip_fails() {
    let (fx, cp) = one_block();
    let gov = governance(&fx);
    // Exactly a quorum: losing any one signature must fail too.
    let text = cosigned(&fx, &cp, &["samr", "tax", "hrss"]);
    cosigned_checkpoint_verdict(&text, &gov, None).unwrap();
    let bytes = text.as_bytes();
    let mut seen: BTreeMap<&'static str, usize> = BTreeMap::new();
    for bit in 0..bytes.len() * 8 {
        let mut b = bytes.to_vec();
        b[bit / 8] ^= 1 << (bit % 8);
        match cosigned_checkpoint_verdict(&b, &gov, None) {
            Ok(_) => panic!("bit {bit} flipped still verifies"),
            Err(e) => *seen.entry(codes_of(&e)).or_default() += 1,
        }
    }
    eprintln!("{} bit flips: {seen:?}", bytes.len() * 8);
    // Every failure is specific, and flips land in each part of the note.
    for code in seen.keys() {
        assert!(
            [
                "not_utf8",
                "control_character",
                "note_missing_signatures",
                "note_unterminated",
                "bad_signature_line",
                "invalid_key_name",
                "checkpoint_empty_line",
                "checkpoint_missing_line",
                "checkpoint_invalid_size",
                "checkpoint_invalid_root",
                "wrong_origin",
                "invalid_block_line",
                "unexpected_extension",
                "bad_signature",
                "too_few_cosigners",
            ]
            .contains(code),
            "unexpected {code}: {seen:?}"
        );
    }
    for code in [
        "not_utf8",
        "control_character",
        "bad_signature_line",
        "checkpoint_invalid_size",
        "checkpoint_invalid_root",
        "wrong_origin",
        "invalid_block_line",
        "bad_signature",
        "too_few_cosigners",
    ] {
        assert!(seen.contains_key(code), "no flip gave {code}: {seen:?}");
    }
}

#[test]
fn too_few_cosigners_fail_with_counts() {
    let (fx, cp) = one_block();
    let gov = governance(&fx);
    let e =
        cosigned_checkpoint_verdict(cosigned(&fx, &cp, &["samr", "tax"]), &gov, None).unwrap_err();
    assert_eq!(
        e,
        CheckpointError::TooFewCosigners {
            valid: 2,
            required: 3,
            members: 4,
            cosigners: vec![did("samr"), did("tax")],
            ignored: vec![],
        }
    );
    assert_eq!(e.code(), "too_few_cosigners");
    assert!(
        e.to_string()
            .starts_with("2 of 4 current members cosigned, 3 required"),
        "{e}"
    );
    // The same department twice counts once.
    let e = cosigned_checkpoint_verdict(cosigned(&fx, &cp, &["samr", "tax", "samr"]), &gov, None)
        .unwrap_err();
    assert!(
        matches!(e, CheckpointError::TooFewCosigners { valid: 2, .. }),
        "{e}"
    );
}

#[test]
fn non_members_and_strangers_are_ignored() {
    let (fx, cp) = one_block();
    let gov = governance(&fx);
    let mut sigs: Vec<NoteSignature> = ["samr", "tax"]
        .iter()
        .map(|d| cp.sign(&did(d), &fx.signing(d)))
        .collect();
    // A department that is not a member (its own key, its own name).
    sigs.push(cp.sign(&did("medins"), &key("medins")));
    // A stranger using a member's name: the key id does not match hrss's key.
    sigs.push(cp.sign(&did("hrss"), &key("stranger")));
    // A member signing under another chain's name.
    let other = ChainId::new("other-vault").unwrap();
    sigs.push(
        sign_note(
            &cp.to_body(),
            &cosigner_name(&did("housing"), &other),
            &fx.signing("housing"),
        )
        .unwrap(),
    );
    let text = cp.note(sigs).to_text().unwrap();
    let e = cosigned_checkpoint_verdict(&text, &gov, None).unwrap_err();
    let CheckpointError::TooFewCosigners {
        valid: 2, ignored, ..
    } = &e
    else {
        panic!("{e}")
    };
    let reasons: Vec<(&str, &IgnoreReason)> = ignored
        .iter()
        .map(|i| (i.name.as_str(), &i.reason))
        .collect();
    assert_eq!(
        reasons,
        [
            ("medins.test-vault", &IgnoreReason::UnknownSigner),
            (
                "hrss.test-vault",
                &IgnoreReason::KeyNotInForce {
                    department: did("hrss"),
                    at: cp.block.time
                }
            ),
            ("housing.other-vault", &IgnoreReason::UnknownSigner),
        ]
    );
    assert!(e.to_string().contains("hrss.test-vault+"), "{e}");

    // With a third member, the same ignored lines do no harm.
    let mut note = SignedNote::parse(&text).unwrap();
    note.signatures
        .push(cp.sign(&did("housing"), &fx.signing("housing")));
    let v = cosigned_checkpoint_verdict(note.to_text().unwrap(), &gov, None).unwrap();
    assert_eq!(v.cosigners().len(), 3);
    assert_eq!(v.ignored().len(), 3);
}

#[test]
fn a_rotated_away_key_no_longer_counts() {
    let mut fx = Fx::new();
    let overlap_end = fx.now().plus(10 * SECOND);
    let rotate = TxBody::Governance(GovernanceAction::RotateDepartmentKeys {
        department: did("samr"),
        signing_key: key("samr-signing-2").public(),
        node_key: key("samr-node-2").public(),
        previous_valid_until: overlap_end,
    });
    let rotated_at = fx.now();
    fx.accept(fx.by_all(&["samr", "tax", "hrss"], rotate));
    let gov = governance(&fx);
    let old = fx.signing("samr");
    let new = key("samr-signing-2");

    let base = one_block().1;
    let at = |t: Timestamp| VaultCheckpoint {
        block: BlockRef {
            time: t,
            ..base.block
        },
        ..base.clone()
    };
    let note = |cp: &VaultCheckpoint, samr: &KeyPair| {
        let mut sigs = vec![cp.sign(&did("samr"), samr)];
        sigs.extend(
            ["tax", "hrss"]
                .iter()
                .map(|d| cp.sign(&did(d), &fx.signing(d))),
        );
        cp.note(sigs).to_text().unwrap()
    };

    // During the overlap both keys count.
    let during = at(overlap_end.minus(1));
    cosigned_checkpoint_verdict(note(&during, &old), &gov, None).unwrap();
    cosigned_checkpoint_verdict(note(&during, &new), &gov, None).unwrap();
    // After it, the old key is ignored (so too few), the new one counts.
    let after = at(overlap_end);
    let e = cosigned_checkpoint_verdict(note(&after, &old), &gov, None).unwrap_err();
    let CheckpointError::TooFewCosigners {
        valid: 2, ignored, ..
    } = &e
    else {
        panic!("{e}")
    };
    assert_eq!(
        ignored[0].reason,
        IgnoreReason::KeyNotInForce {
            department: did("samr"),
            at: overlap_end
        }
    );
    assert_eq!(
        ignored[0].key_id,
        note_key_id("samr.test-vault", &old.public())
    );
    cosigned_checkpoint_verdict(note(&after, &new), &gov, None).unwrap();
    // Before the rotation the new key was not yet in force.
    let before = at(rotated_at.minus(1));
    let e = cosigned_checkpoint_verdict(note(&before, &new), &gov, None).unwrap_err();
    assert_eq!(e.code(), "too_few_cosigners");
}

#[test]
fn wrong_origin_and_extension_lines_are_refused() {
    let (fx, cp) = one_block();
    let gov = governance(&fx);
    let sign_all = |body: &str| {
        let sigs = ["samr", "tax", "hrss"]
            .iter()
            .map(|d| {
                sign_note(body, &cosigner_name(&did(d), &gov.chain_id), &fx.signing(d)).unwrap()
            })
            .collect();
        SignedNote {
            body: body.into(),
            signatures: sigs,
        }
        .to_text()
        .unwrap()
    };
    let verdict = |body: &str| cosigned_checkpoint_verdict(sign_all(body), &gov, None);
    verdict(&cp.to_body()).unwrap();

    let other = VaultCheckpoint {
        chain_id: ChainId::new("other-vault").unwrap(),
        ..cp.clone()
    };
    assert_eq!(
        verdict(&other.to_body()).unwrap_err(),
        CheckpointError::WrongOrigin {
            expected: "test-vault".into(),
            found: "other-vault".into()
        }
    );
    let mut generic = cp.to_checkpoint();
    generic.extensions.clear();
    assert_eq!(
        verdict(&generic.to_body().unwrap()).unwrap_err().code(),
        "missing_block_line"
    );
    generic.extensions = vec![cp.block.to_line(), "more".into()];
    assert_eq!(
        verdict(&generic.to_body().unwrap()).unwrap_err(),
        CheckpointError::UnexpectedExtension {
            line: "more".into()
        }
    );
    let hash = cp.block.hash.to_string();
    let t = cp.block.time.millis();
    for line in [
        format!("vault-blocks 1 {hash} {t}"),
        format!("vault-block  1 {hash} {t}"),
        format!("vault-block 01 {hash} {t}"),
        format!("vault-block 1 {} {t}", hash.to_uppercase()),
        format!("vault-block 1 {} {t}", &hash[..62]),
        format!("vault-block 1 {hash} {t} x"),
        format!("vault-block 1 {hash}"),
        format!("vault-block 1 {hash} -{t}"),
        format!("vault-block 1 {hash} {t} "),
    ] {
        generic.extensions = vec![line.clone()];
        assert_eq!(
            verdict(&generic.to_body().unwrap()).unwrap_err().code(),
            "invalid_block_line",
            "{line}"
        );
    }
    // The block line parses back exactly.
    assert_eq!(BlockRef::parse_line(&cp.block.to_line()).unwrap(), cp.block);
}

#[test]
fn freshness_is_judged_by_the_block_time() {
    let (fx, cp) = one_block();
    let gov = governance(&fx);
    let text = cosigned(&fx, &cp, &["samr", "tax", "hrss"]);
    let t = cp.block.time;
    assert_eq!(
        cosigned_checkpoint_verdict(&text, &gov, Some(t))
            .unwrap()
            .time(),
        t
    );
    cosigned_checkpoint_verdict(&text, &gov, Some(t.minus(1))).unwrap();
    let e = cosigned_checkpoint_verdict(&text, &gov, Some(t.plus(1))).unwrap_err();
    assert_eq!(
        e,
        CheckpointError::Stale {
            checkpoint_time: t,
            required: t.plus(1)
        }
    );
    assert_eq!(e.code(), "stale_checkpoint");
    // Too few cosigners is reported before staleness.
    let e = cosigned_checkpoint_verdict(cosigned(&fx, &cp, &["samr"]), &gov, Some(t.plus(1)))
        .unwrap_err();
    assert_eq!(e.code(), "too_few_cosigners");
}

#[test]
fn a_bad_signature_of_a_member_rejects_the_note() {
    let (fx, cp) = one_block();
    let gov = governance(&fx);
    // samr's signature of another checkpoint, moved onto this one.
    let other = VaultCheckpoint {
        size: cp.size + 1,
        ..cp.clone()
    };
    let mut sigs: Vec<NoteSignature> = ["samr", "tax", "hrss", "housing"]
        .iter()
        .map(|d| cp.sign(&did(d), &fx.signing(d)))
        .collect();
    sigs[0] = other.sign(&did("samr"), &fx.signing("samr"));
    let e = cosigned_checkpoint_verdict(cp.note(sigs).to_text().unwrap(), &gov, None).unwrap_err();
    // Even though three good signatures remain, a known key's bad signature rejects the note.
    assert_eq!(
        e,
        CheckpointError::BadSignature {
            signer: "samr.test-vault".into(),
            key_id: hex::encode(note_key_id("samr.test-vault", &fx.signing("samr").public())),
        }
    );
}

// ---------------------------------------------------------------------------------------------
// Consistency and split views
// ---------------------------------------------------------------------------------------------

/// A log of 1,000 leaves and cosigned, verified checkpoints at a sample of its sizes (the block
/// height is the size, so heights grow with the log).
struct Logged {
    log: MemoryLog,
    gov: Governance,
    fx: Fx,
}

impl Logged {
    fn new() -> Self {
        let fx = Fx::new();
        let mut log = MemoryLog::new();
        for i in 0u32..1000 {
            log.append(format!("leaf {i}").as_bytes()).unwrap();
        }
        let gov = governance(&fx);
        Logged { log, gov, fx }
    }

    fn checkpoint(&self, size: u64, height: u64, root: Hash) -> VerifiedCheckpoint {
        let cp = VaultCheckpoint {
            chain_id: self.gov.chain_id.clone(),
            size,
            root,
            block: BlockRef {
                height,
                hash: BlockHash(SUITE.file_digest(format!("block {height}").as_bytes())),
                time: self.fx.net.genesis.genesis_time.plus(height * SECOND),
            },
        };
        let text = cosigned(&self.fx, &cp, &["samr", "tax", "hrss"]);
        cosigned_checkpoint_verdict(text, &self.gov, None).unwrap()
    }

    fn at(&self, size: u64) -> VerifiedCheckpoint {
        self.checkpoint(size, size, self.log.root_at(size).unwrap())
    }

    fn proof(&self, old: u64, new: u64) -> ConsistencyProof {
        if old == 0 {
            ConsistencyProof {
                old_size: 0,
                new_size: new,
                path: vec![],
            }
        } else {
            self.log.consistency_proof(old, new).unwrap()
        }
    }
}

/// `cp` cosigned by a quorum and verified.
fn resign(l: &Logged, cp: &VaultCheckpoint) -> VerifiedCheckpoint {
    cosigned_checkpoint_verdict(cosigned(&l.fx, cp, &["samr", "tax", "hrss"]), &l.gov, None)
        .unwrap()
}

fn split_reason(e: CheckpointError) -> SplitViewReason {
    match e {
        CheckpointError::SplitView { reason, .. } => reason,
        other => panic!("expected a split view, got {other:?}"),
    }
}

#[test]
fn consistency_across_a_thousand_leaves() {
    let l = Logged::new();
    let sizes: Vec<u64> = vec![
        0, 1, 2, 3, 4, 5, 7, 8, 9, 15, 16, 17, 31, 32, 33, 63, 64, 65, 100, 127, 128, 129, 255,
        256, 257, 333, 500, 511, 512, 513, 777, 998, 999, 1000,
    ];
    let cps: Vec<VerifiedCheckpoint> = sizes.iter().map(|&s| l.at(s)).collect();
    assert_eq!(cps[0].checkpoint().root, Sha256LogHasher.empty_root());
    let mut pairs = 0;
    for (i, a) in cps.iter().enumerate() {
        for b in &cps[i..] {
            let (m, n) = (a.checkpoint().size, b.checkpoint().size);
            let proof = l.proof(m, n);
            verify_consistency_between(a, b, &proof).unwrap();
            // Either order.
            verify_consistency_between(b, a, &proof).unwrap();
            pairs += 1;
        }
    }
    assert_eq!(pairs, sizes.len() * (sizes.len() + 1) / 2);

    // A proof for other sizes is refused as such.
    let e = verify_consistency_between(&cps[5], &cps[20], &l.proof(4, 128)).unwrap_err();
    assert_eq!(e.code(), "consistency_proof_size_mismatch");
    // A tampered proof is a split view (the log cannot prove it is append-only).
    let mut p = l.proof(333, 1000);
    p.path[1][7] ^= 0x20;
    let (a, b) = (l.at(333), l.at(1000));
    assert!(matches!(
        split_reason(verify_consistency_between(&a, &b, &p).unwrap_err()),
        SplitViewReason::ProofFailed(MerkleError::RootMismatch)
    ));
    let mut p = l.proof(333, 1000);
    p.path.pop();
    assert!(matches!(
        split_reason(verify_consistency_between(&a, &b, &p).unwrap_err()),
        SplitViewReason::ProofFailed(MerkleError::WrongProofLength { .. })
    ));
    // From the empty log, only the empty proof.
    let mut p = l.proof(0, 1000);
    p.path.push([0; 32]);
    assert!(matches!(
        split_reason(verify_consistency_between(&cps[0], &b, &p).unwrap_err()),
        SplitViewReason::ProofFailed(MerkleError::WrongProofLength { .. })
    ));
}

#[test]
fn a_forged_root_is_a_split_view() {
    let l = Logged::new();
    let mut forged_root = l.log.root_at(500).unwrap();
    forged_root[31] ^= 1;
    // A quorum signed it (colluding or compromised keys): it verifies on its own…
    let forged = l.checkpoint(500, 500, forged_root);
    let e = |a: &VerifiedCheckpoint, b: &VerifiedCheckpoint, p: &ConsistencyProof| {
        let err = verify_consistency_between(a, b, p).unwrap_err();
        assert_eq!(err.code(), "split_view");
        split_reason(err)
    };
    // …but not against the honest checkpoints.
    assert_eq!(
        e(&l.at(500), &forged, &l.proof(500, 500)),
        SplitViewReason::SameSizeDifferentRoots
    );
    assert_eq!(
        e(&forged, &l.at(1000), &l.proof(500, 1000)),
        SplitViewReason::ProofFailed(MerkleError::RootMismatch)
    );
    assert_eq!(
        e(&l.at(100), &forged, &l.proof(100, 500)),
        SplitViewReason::ProofFailed(MerkleError::RootMismatch)
    );
    // The error names both sides.
    let msg = verify_consistency_between(&l.at(500), &forged, &l.proof(500, 500))
        .unwrap_err()
        .to_string();
    assert!(msg.contains(&hex::encode(forged_root)), "{msg}");

    // Two blocks at one height (a fork).
    let fork = l.checkpoint(600, 601, l.log.root_at(600).unwrap());
    let honest = l.checkpoint(601, 601, l.log.root_at(601).unwrap());
    assert_eq!(
        e(&fork, &honest, &l.proof(600, 601)),
        SplitViewReason::ConflictingBlocks
    );
    // One block hash claimed at two heights.
    let mut renumbered = l.at(700).checkpoint().clone();
    renumbered.block.height = 701;
    renumbered.block.time = renumbered.block.time.plus(SECOND);
    let renumbered = resign(&l, &renumbered);
    assert_eq!(
        e(&l.at(700), &renumbered, &l.proof(700, 700)),
        SplitViewReason::ConflictingBlocks
    );
    // A later block with an earlier (or the same) time.
    let mut early = l.at(300).checkpoint().clone();
    early.block.time = l.at(200).time();
    let early = resign(&l, &early);
    assert_eq!(
        e(&l.at(200), &early, &l.proof(200, 300)),
        SplitViewReason::TimeWentBack
    );
    // A later block with a smaller log.
    let shrunk = l.checkpoint(400, 900, l.log.root_at(400).unwrap());
    assert_eq!(
        e(&l.at(800), &shrunk, &l.proof(400, 800)),
        SplitViewReason::LogShrank
    );
    // An empty log with a root other than the empty tree's.
    let empty = l.checkpoint(0, 0, [9; 32]);
    assert_eq!(
        e(&empty, &l.at(10), &l.proof(0, 10)),
        SplitViewReason::BadEmptyRoot
    );
    // Equal checkpoints, and checkpoints of blocks without transactions, are consistent.
    verify_consistency_between(&l.at(10), &l.at(10), &l.proof(10, 10)).unwrap();
    let idle = l.checkpoint(10, 11, l.log.root_at(10).unwrap());
    verify_consistency_between(&l.at(10), &idle, &l.proof(10, 10)).unwrap();
}

#[test]
fn checkpoints_of_different_chains_are_not_compared() {
    let l = Logged::new();
    let mut other_gov = l.gov.clone();
    other_gov.chain_id = ChainId::new("other-vault").unwrap();
    let cp = VaultCheckpoint {
        chain_id: other_gov.chain_id.clone(),
        ..l.at(10).checkpoint().clone()
    };
    let other = cosigned_checkpoint_verdict(
        cp.note(
            ["samr", "tax", "hrss"]
                .iter()
                .map(|d| cp.sign(&did(d), &l.fx.signing(d)))
                .collect(),
        )
        .to_text()
        .unwrap(),
        &other_gov,
        None,
    )
    .unwrap();
    assert_eq!(
        verify_consistency_between(&l.at(10), &other, &l.proof(10, 10))
            .unwrap_err()
            .code(),
        "origin_mismatch"
    );
}

// ---------------------------------------------------------------------------------------------
// The committed vector
// ---------------------------------------------------------------------------------------------

/// `tests/vectors/checkpoint.txt`: block 1 of `Fx::new()` (one enrolment) cosigned by all four
/// departments, with each department's key name and key id. Regenerate after an intended format
/// change with `VAULT_UPDATE_VECTORS=1 cargo test -p vault-protocol --test checkpoint vector`.
#[test]
fn committed_vector_matches() {
    let (fx, cp) = one_block();
    let gov = governance(&fx);
    let departments = ["samr", "tax", "hrss", "housing"];
    let text = cosigned(&fx, &cp, &departments);
    cosigned_checkpoint_verdict(&text, &gov, None).unwrap();

    let mut out = String::from(
        "# A cosigned checkpoint of the vault (protocol/src/checkpoint.rs): block 1 of the test\n\
         # network of genesis.txt (one enrolment), cosigned by the four departments' signing keys.\n\
         # Checked by protocol/tests/checkpoint.rs (committed_vector_matches); `name = hex` lines,\n\
         # hex of the UTF-8 text. Regenerate after an intended change:\n\
         # VAULT_UPDATE_VECTORS=1 cargo test -p vault-protocol --test checkpoint vector\n\
         #\n\
         # The note, verbatim:\n#\n",
    );
    for line in text.lines() {
        if line.is_empty() {
            out.push_str("#\n");
        } else {
            out.push_str(&format!("#   {line}\n"));
        }
    }
    out.push('\n');
    for d in departments {
        let name = cosigner_name(&did(d), &gov.chain_id);
        let public = fx.signing(d).public();
        out.push_str(&format!("name.{d} = {}\n", hex::encode(&name)));
        out.push_str(&format!("key.{d} = {}\n", hex::encode(public.as_bytes())));
        out.push_str(&format!(
            "key_id.{d} = {}\n",
            hex::encode(note_key_id(&name, &public))
        ));
        out.push_str(&format!(
            "verifier_key.{d} = {}\n",
            hex::encode(verifier_key(&name, &public))
        ));
    }
    out.push_str(&format!(
        "checkpoint.body = {}\n",
        hex::encode(cp.to_body())
    ));
    out.push_str(&format!("checkpoint.note = {}\n", hex::encode(&text)));

    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/vectors/checkpoint.txt");
    if std::env::var_os("VAULT_UPDATE_VECTORS").is_some() {
        std::fs::write(&path, &out).unwrap();
        panic!(
            "vectors rewritten to {}; re-run without VAULT_UPDATE_VECTORS",
            path.display()
        );
    }
    let committed = std::fs::read_to_string(&path)
        .unwrap_or_else(|e| panic!("cannot read {}: {e}", path.display()));
    assert_eq!(committed, out, "the checkpoint format changed");

    // The committed note verifies on its own.
    let note_hex = committed
        .lines()
        .find_map(|l| l.strip_prefix("checkpoint.note = "))
        .unwrap();
    let v = cosigned_checkpoint_verdict(hex::decode(note_hex).unwrap(), &gov, None).unwrap();
    assert_eq!(v.cosigners().len(), 4);
}
