//! Helpers shared by the bulk-issue tests.

#![allow(clippy::unwrap_used, missing_docs)]

use std::fs;
use std::path::Path;

use vault_protocol::crypto::{CryptoSuite, KeyPair};
use vault_protocol::ids::DepartmentId;
use vault_protocol::ledger::test_uscc;

pub fn key() -> KeyPair {
    KeyPair::from_seed(CryptoSuite::Ed25519Sha256, [5; 32])
}

pub fn department() -> DepartmentId {
    DepartmentId::new("samr").unwrap()
}

/// A USCC whose check character is wrong.
pub fn bad_uscc() -> String {
    let good = test_uscc(1).to_string();
    let last = good.chars().last().unwrap();
    let other = if last == '0' { '1' } else { '0' };
    format!("{}{other}", &good[..17])
}

pub struct Files {
    /// The directory.
    pub dir: tempfile::TempDir,
}

impl Files {
    pub fn new(names: &[&str]) -> Files {
        let dir = tempfile::tempdir().unwrap();
        for n in names {
            fs::write(dir.path().join(n), format!("the document {n}")).unwrap();
        }
        Files { dir }
    }

    pub fn path(&self) -> &Path {
        self.dir.path()
    }
}

pub fn manifest_text(rows: &[String]) -> String {
    let mut s = String::from("uscc,doc_type,file,valid_from,valid_days,claims\n");
    for r in rows {
        s.push_str(r);
        s.push('\n');
    }
    s
}
