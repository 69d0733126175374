//! Key files: a department's signing key and its node key, as small JSON files readable only by
//! their owner.

use std::fs;
use std::io::Write;
use std::path::Path;

use vault_protocol::crypto::{CryptoSuite, KeyFile, KeyPair};

/// Why a key file could not be read or written.
#[derive(Debug, thiserror::Error)]
pub enum KeyFileError {
    /// I/O.
    #[error("key file {path}: {source}")]
    Io {
        /// The file.
        path: String,
        /// The error.
        source: std::io::Error,
    },
    /// Not a key file.
    #[error("key file {path} is not valid: {reason}")]
    Invalid {
        /// The file.
        path: String,
        /// Why.
        reason: String,
    },
}

/// Generates a fresh key pair from the operating system's randomness.
pub fn generate(suite: CryptoSuite) -> Result<KeyPair, getrandom::Error> {
    let mut seed = [0u8; 32];
    getrandom::getrandom(&mut seed)?;
    Ok(KeyPair::from_seed(suite, seed))
}

/// Writes `key` to `path` (mode 0600 on Unix), refusing to overwrite an existing file.
pub fn write(path: &Path, key: &KeyPair, role: &str) -> Result<(), KeyFileError> {
    let p = path.display().to_string();
    let err = |source| KeyFileError::Io {
        path: p.clone(),
        source,
    };
    let json = serde_json::to_string_pretty(&KeyFile::new(key, role)).map_err(|e| {
        KeyFileError::Invalid {
            path: p.clone(),
            reason: e.to_string(),
        }
    })?;
    if let Some(dir) = path.parent() {
        fs::create_dir_all(dir).map_err(err)?;
    }
    let mut opts = fs::OpenOptions::new();
    opts.write(true).create_new(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        opts.mode(0o600);
    }
    let mut f = opts.open(path).map_err(err)?;
    f.write_all(json.as_bytes()).map_err(err)?;
    f.write_all(b"\n").map_err(err)?;
    f.sync_all().map_err(err)
}

/// Reads a key file and checks that its public key matches its secret.
pub fn read(path: &Path) -> Result<KeyPair, KeyFileError> {
    let p = path.display().to_string();
    let text = fs::read_to_string(path).map_err(|source| KeyFileError::Io {
        path: p.clone(),
        source,
    })?;
    KeyFile::parse_key_pair(&text).map_err(|reason| KeyFileError::Invalid { path: p, reason })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn write_read_round_trip_and_no_overwrite() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("k.json");
        let key = generate(CryptoSuite::Ed25519Sha256).unwrap();
        write(&path, &key, "node").unwrap();
        assert_eq!(read(&path).unwrap().public(), key.public());
        assert!(write(&path, &key, "node").is_err());
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = fs::metadata(&path).unwrap().permissions().mode();
            assert_eq!(mode & 0o777, 0o600);
        }
    }

    #[test]
    fn detects_mismatched_public_key() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("k.json");
        let key = generate(CryptoSuite::Ed25519Sha256).unwrap();
        write(&path, &key, "node").unwrap();
        let other = generate(CryptoSuite::Ed25519Sha256).unwrap();
        let text = fs::read_to_string(&path)
            .unwrap()
            .replace(&key.public().to_hex(), &other.public().to_hex());
        fs::write(&path, text).unwrap();
        assert!(read(&path)
            .unwrap_err()
            .to_string()
            .contains("does not match"));
    }
}
