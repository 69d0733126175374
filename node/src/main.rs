//! vault-node binary.
fn main() {}
