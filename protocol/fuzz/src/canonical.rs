//! The canonicality check shared by the fuzz targets (`fuzz_targets/*.rs`) and by the proptests
//! in `protocol/tests/encoding.rs`, which include this file with `#[path]` so that the fuzz code
//! is compiled and exercised on stable in CI even where `cargo fuzz` cannot run.
//!
//! For arbitrary bytes, every decoder must either fail cleanly (no panic, no huge allocation) or
//! return a value whose canonical encoding is exactly the input: no two byte strings may decode
//! to the same value.

use std::fmt::Debug;

use borsh::{BorshDeserialize, BorshSerialize};
use vault_protocol::block::{Block, BlockHeader};
use vault_protocol::encoding::Canonical;
use vault_protocol::genesis::Genesis;
use vault_protocol::governance::Governance;
use vault_protocol::merkle::{ConsistencyProof, Frontier, InclusionProof};
use vault_protocol::state::{
    AttestationRecord, ChainHead, EnterpriseRecord, GrantRecord, ReceiptRecord, TxLocation,
};
use vault_protocol::tx::{SignedTransaction, Transaction};

/// At most this many characters of each input, re-encoding and value in a failure message.
const SHOW: usize = 4096;

fn show(s: String) -> String {
    match s.char_indices().nth(SHOW) {
        Some((cut, _)) => format!("{}… ({} characters)", &s[..cut], s.chars().count()),
        None => s,
    }
}

fn fail(type_name: &str, data: &[u8], again: &[u8], value: &dyn Debug) -> ! {
    panic!(
        "{type_name} decoded from non-canonical bytes\n input: {}\n again: {}\n value: {}",
        show(hex::encode(data)),
        show(hex::encode(again)),
        show(format!("{value:?}")),
    )
}

/// If `data` decodes as a `T`, its canonical encoding must be `data` itself.
pub fn check<T: Canonical + Debug>(data: &[u8]) {
    if let Ok(value) = T::decode(data) {
        let again = value.encode();
        if again != data {
            fail(std::any::type_name::<T>(), data, &again, &value);
        }
    }
}

/// The same for types encoded with plain borsh (no version byte): the Merkle proofs.
pub fn check_borsh<T: BorshSerialize + BorshDeserialize + Debug>(data: &[u8]) {
    if let Ok(value) = borsh::from_slice::<T>(data) {
        let again = borsh::to_vec(&value).unwrap_or_default();
        if again != data {
            fail(std::any::type_name::<T>(), data, &again, &value);
        }
    }
}

/// Tries `data` as every wire type and stored record.
pub fn check_all(data: &[u8]) {
    check::<SignedTransaction>(data);
    check::<Transaction>(data);
    check::<Block>(data);
    check::<BlockHeader>(data);
    check::<Genesis>(data);
    check::<ChainHead>(data);
    check::<TxLocation>(data);
    check::<EnterpriseRecord>(data);
    check::<AttestationRecord>(data);
    check::<GrantRecord>(data);
    check::<ReceiptRecord>(data);
    check::<Frontier>(data);
    check::<Governance>(data);
    check_borsh::<InclusionProof>(data);
    check_borsh::<ConsistencyProof>(data);
}
