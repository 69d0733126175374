//! The node's configuration: a typed TOML file, validated once at start-up.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::{Deserialize, Serialize};
use vault_protocol::ids::DepartmentId;

/// Why a configuration is not usable.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// The file could not be read.
    #[error("config file {path}: {source}")]
    Io {
        /// The file.
        path: String,
        /// The error.
        source: std::io::Error,
    },
    /// The file is not valid TOML for this schema.
    #[error("config file {path}: {message}")]
    Parse {
        /// The file.
        path: String,
        /// The parser's message (with line and column).
        message: String,
    },
    /// A value is out of range.
    #[error("config: {field} {reason}")]
    Invalid {
        /// The field.
        field: &'static str,
        /// Why.
        reason: String,
    },
}

/// A peer to dial.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PeerConfig {
    /// The peer's department.
    pub department: DepartmentId,
    /// Its libp2p address, e.g. `/ip4/127.0.0.1/tcp/9001`.
    pub address: String,
}

/// HTTP API settings.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HttpConfig {
    /// Address to listen on.
    pub listen: SocketAddr,
    /// Largest request body (uploads included), in bytes.
    #[serde(default = "default_max_body")]
    pub max_body_bytes: usize,
}

fn default_max_body() -> usize {
    64 * 1024 * 1024
}

/// Peer-to-peer settings.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct P2pConfig {
    /// libp2p listen address, e.g. `/ip4/0.0.0.0/tcp/9000`.
    pub listen: String,
    /// The other departments' nodes.
    #[serde(default)]
    pub peers: Vec<PeerConfig>,
}

/// Consensus timing.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ConsensusConfig {
    /// How long to wait for a leader's proposal.
    #[serde(with = "humantime_serde", default = "default_leader_timeout")]
    pub leader_timeout: Duration,
    /// How long to wait for a notarization.
    #[serde(with = "humantime_serde", default = "default_notarization_timeout")]
    pub notarization_timeout: Duration,
    /// How often to retry a nullify vote.
    #[serde(with = "humantime_serde", default = "default_nullify_retry")]
    pub nullify_retry: Duration,
    /// Shortest time between the proposer's blocks when there is nothing to propose.
    #[serde(with = "humantime_serde", default = "default_empty_block_interval")]
    pub empty_block_interval: Duration,
}

fn default_leader_timeout() -> Duration {
    Duration::from_millis(1000)
}
fn default_notarization_timeout() -> Duration {
    Duration::from_millis(2000)
}
fn default_nullify_retry() -> Duration {
    Duration::from_millis(5000)
}
fn default_empty_block_interval() -> Duration {
    Duration::from_millis(500)
}

impl Default for ConsensusConfig {
    fn default() -> Self {
        Self {
            leader_timeout: default_leader_timeout(),
            notarization_timeout: default_notarization_timeout(),
            nullify_retry: default_nullify_retry(),
            empty_block_interval: default_empty_block_interval(),
        }
    }
}

/// The pool of pending transactions.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PoolConfig {
    /// Most pending transactions; when full, submissions get 503 with a retry hint.
    #[serde(default = "default_pool_capacity")]
    pub capacity: usize,
}

fn default_pool_capacity() -> usize {
    100_000
}

impl Default for PoolConfig {
    fn default() -> Self {
        Self {
            capacity: default_pool_capacity(),
        }
    }
}

/// The document vault.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct VaultConfig {
    /// Largest file the vault stores, in bytes.
    #[serde(default = "default_max_file")]
    pub max_file_bytes: u64,
    /// The key that encrypts stored files (64 hex characters; created at first start if absent).
    /// Default: `vault.key` in the data directory. Back it up: without it the files are lost.
    #[serde(default)]
    pub key_file: Option<PathBuf>,
}

fn default_max_file() -> u64 {
    256 * 1024 * 1024
}

impl Default for VaultConfig {
    fn default() -> Self {
        Self {
            max_file_bytes: default_max_file(),
            key_file: None,
        }
    }
}

/// The whole configuration.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NodeConfig {
    /// This node's department.
    pub department: DepartmentId,
    /// Where RocksDB and the vault live.
    pub data_dir: PathBuf,
    /// The genesis file every department holds.
    pub genesis: PathBuf,
    /// The node key file (consensus votes and p2p identity).
    pub node_key: PathBuf,
    /// The department's signing key file (to sign access receipts the node records).
    pub signing_key: PathBuf,
    /// HTTP API.
    pub http: HttpConfig,
    /// Peer-to-peer.
    pub p2p: P2pConfig,
    /// Consensus timing.
    #[serde(default)]
    pub consensus: ConsensusConfig,
    /// Pending transactions.
    #[serde(default)]
    pub pool: PoolConfig,
    /// The document vault.
    #[serde(default)]
    pub vault: VaultConfig,
}

impl NodeConfig {
    /// Reads and validates a config file. Relative paths in it are taken relative to the file.
    pub fn load(path: &Path) -> Result<Self, ConfigError> {
        let p = path.display().to_string();
        let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Io {
            path: p.clone(),
            source,
        })?;
        let mut cfg: NodeConfig = toml::from_str(&text).map_err(|e| ConfigError::Parse {
            path: p,
            message: e.to_string(),
        })?;
        if let Some(base) = path.parent() {
            for f in [
                &mut cfg.data_dir,
                &mut cfg.genesis,
                &mut cfg.node_key,
                &mut cfg.signing_key,
            ] {
                if f.is_relative() {
                    *f = base.join(&*f);
                }
            }
        }
        if let (Some(base), Some(k)) = (path.parent(), cfg.vault.key_file.as_mut()) {
            if k.is_relative() {
                *k = base.join(&*k);
            }
        }
        cfg.validate()?;
        Ok(cfg)
    }

    /// Checks values that the types alone do not.
    pub fn validate(&self) -> Result<(), ConfigError> {
        if self.pool.capacity == 0 {
            return Err(ConfigError::Invalid {
                field: "pool.capacity",
                reason: "must be at least 1".into(),
            });
        }
        if self.vault.max_file_bytes == 0 {
            return Err(ConfigError::Invalid {
                field: "vault.max_file_bytes",
                reason: "must be at least 1".into(),
            });
        }
        if self.http.max_body_bytes < 1024 {
            return Err(ConfigError::Invalid {
                field: "http.max_body_bytes",
                reason: "must be at least 1024".into(),
            });
        }
        let c = &self.consensus;
        if c.leader_timeout.is_zero() || c.notarization_timeout < c.leader_timeout {
            return Err(ConfigError::Invalid {
                field: "consensus",
                reason: "leader_timeout must be positive and no longer than notarization_timeout"
                    .into(),
            });
        }
        if !self.p2p.listen.starts_with('/') {
            return Err(ConfigError::Invalid {
                field: "p2p.listen",
                reason: format!(
                    "{:?} is not a multiaddr (e.g. /ip4/0.0.0.0/tcp/9000)",
                    self.p2p.listen
                ),
            });
        }
        for peer in &self.p2p.peers {
            if !peer.address.starts_with('/') {
                return Err(ConfigError::Invalid {
                    field: "p2p.peers.address",
                    reason: format!("{:?} is not a multiaddr", peer.address),
                });
            }
        }
        Ok(())
    }

    /// The file holding the vault's encryption key.
    pub fn vault_key_file(&self) -> PathBuf {
        self.vault
            .key_file
            .clone()
            .unwrap_or_else(|| self.data_dir.join("vault.key"))
    }

    /// The TOML text of this configuration.
    pub fn to_toml(&self) -> String {
        toml::to_string_pretty(self).unwrap_or_default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const SAMPLE: &str = r#"
department = "samr"
data_dir = "data"
genesis = "genesis.json"
node_key = "keys/node.json"
signing_key = "keys/signing.json"

[http]
listen = "127.0.0.1:8080"

[p2p]
listen = "/ip4/127.0.0.1/tcp/9000"
peers = [{ department = "tax", address = "/ip4/127.0.0.1/tcp/9001" }]

[consensus]
leader_timeout = "800ms"
"#;

    #[test]
    fn loads_resolves_and_round_trips() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("node.toml");
        std::fs::write(&path, SAMPLE).unwrap();
        let cfg = NodeConfig::load(&path).unwrap();
        assert_eq!(cfg.department.as_str(), "samr");
        assert_eq!(cfg.data_dir, dir.path().join("data"));
        assert_eq!(cfg.consensus.leader_timeout, Duration::from_millis(800));
        assert_eq!(cfg.pool.capacity, 100_000);
        let again: NodeConfig = toml::from_str(&cfg.to_toml()).unwrap();
        assert_eq!(again, cfg);
    }

    #[test]
    fn rejects_unknown_fields_and_bad_values() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("node.toml");
        std::fs::write(&path, format!("{SAMPLE}\nsurprise = 1\n")).unwrap();
        let err = NodeConfig::load(&path).unwrap_err().to_string();
        assert!(err.contains("surprise"), "{err}");
        std::fs::write(&path, SAMPLE.replace("samr", "SAMR")).unwrap();
        assert!(NodeConfig::load(&path).is_err());
        std::fs::write(
            &path,
            SAMPLE.replace("/ip4/127.0.0.1/tcp/9000", "127.0.0.1:9000"),
        )
        .unwrap();
        let err = NodeConfig::load(&path).unwrap_err().to_string();
        assert!(err.contains("p2p.listen"), "{err}");
    }
}
