//! Key files for enterprises, applications and departments: `{suite, role, public_key,
//! secret_seed}` as JSON, readable only by their owner — the same format `vault-node init` writes.

use std::fs;
use std::io::Write;
use std::path::Path;

use vault_protocol::crypto::{CryptoSuite, KeyFile, KeyPair};

/// Why a key file could not be used.
#[derive(Debug, thiserror::Error)]
pub enum KeyFileError {
    /// I/O.
    #[error("{path}: {error}")]
    Io {
        /// The file.
        path: String,
        /// The error.
        error: std::io::Error,
    },
    /// Not a valid key file.
    #[error("{path} is not a valid key file: {reason}")]
    Invalid {
        /// The file.
        path: String,
        /// Why.
        reason: String,
    },
}

/// A fresh key from the operating system's randomness.
pub fn generate() -> Result<KeyPair, getrandom::Error> {
    let mut seed = [0u8; 32];
    getrandom::getrandom(&mut seed)?;
    Ok(KeyPair::from_seed(CryptoSuite::Ed25519Sha256, seed))
}

/// Writes a key file (mode 0600), never overwriting one.
pub fn write(path: &Path, key: &KeyPair, role: &str) -> Result<(), KeyFileError> {
    let p = path.display().to_string();
    let io = |error| KeyFileError::Io {
        path: p.clone(),
        error,
    };
    let json = serde_json::to_string_pretty(&KeyFile::new(key, role)).map_err(|e| {
        KeyFileError::Invalid {
            path: p.clone(),
            reason: e.to_string(),
        }
    })?;
    let mut opts = fs::OpenOptions::new();
    opts.write(true).create_new(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        opts.mode(0o600);
    }
    let mut f = opts.open(path).map_err(io)?;
    f.write_all(json.as_bytes()).map_err(io)?;
    f.write_all(b"\n").map_err(io)
}

/// Reads a key file, checking its public key against its secret.
pub fn read(path: &Path) -> Result<KeyPair, KeyFileError> {
    let p = path.display().to_string();
    let text = fs::read_to_string(path).map_err(|error| KeyFileError::Io {
        path: p.clone(),
        error,
    })?;
    KeyFile::parse_key_pair(&text).map_err(|reason| KeyFileError::Invalid { path: p, reason })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("k.json");
        let k = generate().unwrap();
        write(&path, &k, "enterprise").unwrap();
        assert_eq!(read(&path).unwrap().public(), k.public());
        assert!(write(&path, &k, "enterprise").is_err());
    }
}
