//! Criterion micro-benchmarks of the protocol core (issue "Benchmarks"):
//!
//! - `encoding`: canonical encode and decode of a signed issue-attestation transaction and of a
//!   block of 1,000 such transactions;
//! - `signatures`: strict ed25519 verification of one transaction (`SignedTransaction::verify`),
//!   cold and when the same signature was verified before (the remembered-signatures set);
//! - `merkle`: appending to the log frontier (`Frontier::push`, 1,000 leaves per iteration on top
//!   of 100,000), and generating and verifying inclusion and consistency proofs on a `MemoryLog`
//!   of 100,000 leaves;
//! - `state`: applying a block of 1,000 issue-attestation transactions with
//!   `state::apply_block` (signatures included) and `state::apply_verified_block` (signatures
//!   already checked) on a `MemoryLedger`'s state. The block is built with
//!   `MemoryLedger::propose`; no setup is timed.
//!
//! - `proofs`: verifying a proof bundle offline (`bundle::verify_bundle`: log inclusion, status
//!   proof, three certificate signatures, the verdict) and proving one attestation's status
//!   (`status::prove`) in a ledger of 1,001 attestations.
//!
//! Measurement times are short so that `cargo bench -p vault-protocol` finishes in a few minutes
//! on two cores. Run one group with e.g. `cargo bench -p vault-protocol -- merkle`.

use std::hint::black_box;
use std::time::Duration;

use criterion::{criterion_main, BatchSize, Criterion, SamplingMode, Throughput};

use vault_protocol::block::Block;
use vault_protocol::crypto::{CryptoSuite, KeyPair};
use vault_protocol::encoding::{BoundedString, BoundedVec, Canonical};
use vault_protocol::ids::{DocTypeCode, Timestamp};
use vault_protocol::ledger::{MemoryLedger, TestNetwork};
use vault_protocol::merkle::{
    verify_consistency, verify_inclusion, Frontier, Hash, LogHasher, MemoryLog, Sha256LogHasher,
};
use vault_protocol::state::{apply_block, apply_verified_block, verify_transactions};
use vault_protocol::tx::{Attestation, Claim, Enrolment, SignedTransaction, TxBody};
use vault_protocol::uscc::Uscc;

/// Transactions in the benchmark block.
const BLOCK_TXS: usize = 1_000;
/// Leaves in the benchmark Merkle log.
const LOG_LEAVES: u64 = 100_000;
/// Leaves appended per iteration of the frontier benchmark.
const PUSHES: u64 = 1_000;

/// A ledger with one enrolled enterprise, and the next block: 1,000 attestations issued to it.
struct Chain {
    suite: CryptoSuite,
    ledger: MemoryLedger,
    block: Block,
}

fn chain() -> Chain {
    let net = TestNetwork::new(&["samr", "tax", "hrss", "housing"]);
    let suite = net.genesis.suite;
    let samr = net.department("samr");
    let enterprise = KeyPair::from_seed(suite, [42; 32]);
    let uscc: Uscc = "91350100M000100Y43".parse().expect("valid USCC");
    let mut ledger = MemoryLedger::new(net.genesis.clone()).expect("valid genesis");

    let t1 = net.genesis.genesis_time.plus(1_000);
    let enrol = net
        .tx(
            t1,
            TxBody::EnrolEnterprise(Enrolment {
                department: samr.id.clone(),
                enterprise: uscc,
                key: enterprise.public(),
            }),
        )
        .sign_one(&samr.signing);
    let built = ledger
        .propose_and_commit(&samr.id, t1, vec![enrol])
        .expect("enrolment block");
    assert!(built.rejected.is_empty(), "{:?}", built.rejected);

    let t2 = t1.plus(1_000);
    let txs: Vec<SignedTransaction> = (0..BLOCK_TXS)
        .map(|i| attestation(&net, t2, uscc, i))
        .collect();
    let built = ledger
        .propose(&samr.id, t2, txs)
        .expect("attestation block");
    assert!(built.rejected.is_empty(), "{:?}", built.rejected);
    assert_eq!(built.block.transactions.len(), BLOCK_TXS);
    Chain {
        suite,
        ledger,
        block: built.block,
    }
}

/// A signed business-licence attestation, distinct per `i` (its file digest and licence number).
fn attestation(net: &TestNetwork, t: Timestamp, subject: Uscc, i: usize) -> SignedTransaction {
    let samr = net.department("samr");
    let suite = net.genesis.suite;
    fn text<const N: usize>(s: &str) -> BoundedString<N> {
        BoundedString::new(s).expect("within bound")
    }
    let claims = vec![
        Claim {
            key: text("licence_no"),
            value: text(&format!("3501001000{i:05}")),
        },
        Claim {
            key: text("name"),
            value: text("福州数字保险箱测试有限公司"),
        },
    ];
    net.tx(
        t,
        TxBody::IssueAttestation(Attestation {
            issuer: samr.id.clone(),
            subject,
            doc_type: DocTypeCode::new("BUSINESS_LICENCE").expect("valid code"),
            file_digest: suite.file_digest(format!("licence file {i}").as_bytes()),
            claims: BoundedVec::new(claims).expect("2 claims"),
            valid_from: t,
            valid_until: None,
            supersedes: None,
        }),
    )
    .sign_one(&samr.signing)
}

fn encoding(c: &mut Criterion) {
    let Chain { block, .. } = chain();
    let tx = block.transactions[0].clone();
    let tx_bytes = tx.encode();
    let block_bytes = block.encode();

    let mut g = c.benchmark_group("encoding");
    g.throughput(Throughput::Bytes(tx_bytes.len() as u64));
    g.bench_function("encode_signed_attestation_tx", |b| {
        b.iter(|| black_box(&tx).encode())
    });
    g.bench_function("decode_signed_attestation_tx", |b| {
        b.iter(|| SignedTransaction::decode(black_box(&tx_bytes)).expect("decodes"))
    });
    g.throughput(Throughput::Bytes(block_bytes.len() as u64));
    g.bench_function("encode_block_1000_tx", |b| {
        b.iter(|| black_box(&block).encode())
    });
    g.bench_function("decode_block_1000_tx", |b| {
        b.iter(|| Block::decode(black_box(&block_bytes)).expect("decodes"))
    });
    g.finish();
}

fn signatures(c: &mut Criterion) {
    let Chain { suite, block, .. } = chain();
    let tx = block.transactions[0].clone();
    let mut g = c.benchmark_group("signatures");
    g.bench_function("verify_signed_tx", |b| {
        // `verify` consumes the transaction: the clone is setup, not timed; so is forgetting the
        // signatures verified before, so that every check is a real one.
        b.iter_batched(
            || {
                vault_protocol::crypto::clear_signature_cache();
                tx.clone()
            },
            |t| t.verify(suite).expect("verifies"),
            BatchSize::PerIteration,
        )
    });
    g.bench_function("verify_signed_tx_seen_before", |b| {
        tx.clone().verify(suite).expect("verifies");
        b.iter_batched(
            || tx.clone(),
            |t| t.verify(suite).expect("verifies"),
            BatchSize::SmallInput,
        )
    });
    // What the key cache saves each verification: decompressing and checking the key.
    let key = tx.endorsements[0].signer;
    g.bench_function("decompress_public_key", |b| {
        b.iter(|| {
            let bytes: [u8; 32] = black_box(key).as_bytes().try_into().expect("32 bytes");
            ed25519_dalek::VerifyingKey::from_bytes(&bytes)
                .expect("valid")
                .is_weak()
        })
    });
    g.finish();
}

fn merkle(c: &mut Criterion) {
    let hasher = Sha256LogHasher;
    let leaf = |i: u64| hasher.hash_leaf(&i.to_le_bytes());
    let mut log = MemoryLog::new();
    for i in 0..LOG_LEAVES {
        log.append_leaf_hash(leaf(i)).expect("log grows");
    }
    let frontier: Frontier = log.frontier();
    let extra: Vec<Hash> = (LOG_LEAVES..LOG_LEAVES + PUSHES).map(leaf).collect();

    let index = 54_321;
    let inclusion = log.inclusion_proof(index, LOG_LEAVES).expect("in range");
    let root = log.root();
    let old_size = 31_337;
    let old_root = log.root_at(old_size).expect("in range");
    let consistency = log
        .consistency_proof(old_size, LOG_LEAVES)
        .expect("in range");
    verify_inclusion(&hasher, &leaf(index), &inclusion, &root).expect("proof verifies");
    verify_consistency(&hasher, &old_root, &root, &consistency).expect("proof verifies");

    let mut g = c.benchmark_group("merkle");
    g.throughput(Throughput::Elements(PUSHES));
    g.bench_function("frontier_push_1000_onto_100k", |b| {
        b.iter_batched(
            || frontier.clone(),
            |mut f| {
                for h in &extra {
                    f.push(*h).expect("log grows");
                }
                f
            },
            BatchSize::SmallInput,
        )
    });
    g.throughput(Throughput::Elements(1));
    g.bench_function("inclusion_proof_generate_100k", |b| {
        b.iter(|| {
            log.inclusion_proof(black_box(index), LOG_LEAVES)
                .expect("in range")
        })
    });
    g.bench_function("inclusion_proof_verify_100k", |b| {
        b.iter(|| {
            verify_inclusion(&hasher, &leaf(index), black_box(&inclusion), &root).expect("verifies")
        })
    });
    g.bench_function("consistency_proof_generate_100k", |b| {
        b.iter(|| {
            log.consistency_proof(black_box(old_size), LOG_LEAVES)
                .expect("in range")
        })
    });
    g.bench_function("consistency_proof_verify_100k", |b| {
        b.iter(|| {
            verify_consistency(&hasher, &old_root, &root, black_box(&consistency))
                .expect("verifies")
        })
    });
    g.finish();
}

fn state(c: &mut Criterion) {
    let Chain {
        suite,
        ledger,
        block,
    } = chain();
    let verified = verify_transactions(suite, &block).expect("signatures verify");
    let view = ledger.state();
    apply_block(view, &block).expect("the block applies");

    let mut g = c.benchmark_group("state");
    // Each iteration takes tens of milliseconds: few, equal-sized samples.
    g.sample_size(10);
    g.sampling_mode(SamplingMode::Flat);
    g.measurement_time(Duration::from_secs(5));
    g.throughput(Throughput::Elements(BLOCK_TXS as u64));
    g.bench_function("apply_block_1000_issue_attestations", |b| {
        b.iter_batched(
            vault_protocol::crypto::clear_signature_cache,
            |()| apply_block(view, black_box(&block)).expect("applies"),
            BatchSize::PerIteration,
        )
    });
    g.bench_function("apply_verified_block_1000_issue_attestations", |b| {
        b.iter(|| apply_verified_block(view, &block.header, black_box(&verified)).expect("applies"))
    });
    g.finish();
}

fn proofs(c: &mut Criterion) {
    let Chain {
        suite,
        mut ledger,
        block,
    } = chain();
    let net = TestNetwork::new(&["samr", "tax", "hrss", "housing"]);
    ledger.commit(&block).expect("commits");
    let id = vault_protocol::ids::AttestationId(block.transactions[500].id(suite).0);
    let head = ledger.head();
    let bundle = ledger
        .bundle(&id, net.certify(&block.header, &["samr", "tax", "hrss"]))
        .expect("bundle");
    let anchor = vault_protocol::bundle::Anchor::from_genesis(&net.genesis);
    let now = head.time.plus(1_000);
    let mut g = c.benchmark_group("proofs");
    // Every iteration verifies the signatures afresh, as a verifier meeting the bundle does.
    g.bench_function("verify_bundle_offline", |b| {
        b.iter_batched(
            vault_protocol::crypto::clear_signature_cache,
            |()| {
                vault_protocol::bundle::verify_bundle(&anchor, black_box(&bundle), None, now, None)
                    .expect("verifies")
            },
            BatchSize::PerIteration,
        )
    });
    g.bench_function("decode_and_verify_bundle_offline", |b| {
        let bytes = bundle.encode();
        b.iter_batched(
            vault_protocol::crypto::clear_signature_cache,
            |()| {
                let decoded = vault_protocol::bundle::ProofBundle::decode(black_box(&bytes))
                    .expect("decodes");
                vault_protocol::bundle::verify_bundle(&anchor, &decoded, None, now, None)
                    .expect("verifies")
            },
            BatchSize::PerIteration,
        )
    });
    let key = vault_protocol::status::attestation_key(&id);
    g.bench_function("prove_status_1001_attestations", |b| {
        b.iter(|| {
            vault_protocol::status::prove(ledger.state(), suite, head.height, black_box(&key))
                .expect("proves")
        })
    });
    g.finish();
}

fn config() -> Criterion {
    Criterion::default()
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(3))
        .sample_size(20)
}

/// `criterion_group!` makes a public, undocumented function: keep it out of the crate's API.
mod group {
    use super::{config, encoding, merkle, proofs, signatures, state};

    criterion::criterion_group! {
        name = benches;
        config = config();
        targets = encoding, signatures, merkle, state, proofs
    }
}

criterion_main!(group::benches);
