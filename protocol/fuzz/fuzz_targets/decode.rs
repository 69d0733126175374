//! Fuzz target: arbitrary bytes fed to `Canonical::decode` of every wire type and stored record
//! (signed transactions, blocks, the genesis, state records, Merkle proofs). Decoding must never
//! panic, and whenever it succeeds the value must re-encode to exactly the input bytes.

#![no_main]

use libfuzzer_sys::fuzz_target;

#[path = "../src/canonical.rs"]
mod canonical;

fuzz_target!(|data: &[u8]| {
    canonical::check_all(data);
});
