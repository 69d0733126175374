//! vault CLI.
fn main() {}
