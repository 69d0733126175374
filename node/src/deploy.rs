//! Setting up deployments: department keys, member files, the genesis, node configs — for a real
//! network (`init`, `genesis`), a local dev vault (`dev`) and a local test network (`testnet`).

use std::fs;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use anyhow::{bail, Context, Result};
use serde::{Deserialize, Serialize};
use vault_protocol::crypto::{CryptoSuite, PublicKey};
use vault_protocol::encoding::BoundedString;
use vault_protocol::genesis::{Genesis, GenesisDepartment, GenesisDocumentType};
use vault_protocol::governance::Params;
use vault_protocol::ids::{ChainId, DepartmentId};
use vault_protocol::ledger::{department_name, standard_document_types};

use crate::config::{ConsensusConfig, HttpConfig, NodeConfig, P2pConfig, PeerConfig, PoolConfig};
use crate::context::now;
use crate::keys;

/// The public half of a department's set-up, shared with the other departments to build the
/// genesis.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MemberFile {
    /// Department id.
    pub department: DepartmentId,
    /// Display name.
    pub name: String,
    /// Transaction-signing key.
    pub signing_key: PublicKey,
    /// Node key.
    pub node_key: PublicKey,
}

/// Paths of a department's key files within its directory.
pub fn key_paths(dir: &Path) -> (PathBuf, PathBuf) {
    (dir.join("keys/node.json"), dir.join("keys/signing.json"))
}

/// Generates a department's keys in `dir/keys/` and writes `dir/member.json`.
pub fn init_department(dir: &Path, department: &DepartmentId, name: &str) -> Result<MemberFile> {
    let (node_path, signing_path) = key_paths(dir);
    let suite = CryptoSuite::Ed25519Sha256;
    let node = keys::generate(suite).context("generating the node key")?;
    let signing = keys::generate(suite).context("generating the signing key")?;
    keys::write(&node_path, &node, "node")?;
    keys::write(&signing_path, &signing, "signing")?;
    let member = MemberFile {
        department: department.clone(),
        name: name.to_string(),
        signing_key: signing.public(),
        node_key: node.public(),
    };
    fs::write(
        dir.join("member.json"),
        serde_json::to_string_pretty(&member)? + "\n",
    )?;
    Ok(member)
}

/// A genesis for these members, with the standard document types, each authorised to its usual
/// issuer (or, if that department is absent, to the first member).
pub fn make_genesis(chain_id: &str, members: &[MemberFile]) -> Result<Genesis> {
    if members.is_empty() {
        bail!("a genesis needs at least one member department");
    }
    let chain_id = ChainId::new(chain_id)?;
    let departments = members
        .iter()
        .map(|m| {
            Ok(GenesisDepartment {
                id: m.department.clone(),
                name: BoundedString::new(m.name.clone())
                    .map_err(|e| anyhow::anyhow!("name of {}: {e}", m.department))?,
                signing_key: m.signing_key,
                node_key: m.node_key,
            })
        })
        .collect::<Result<Vec<_>>>()?;
    let document_types = standard_document_types()
        .into_iter()
        .map(|(definition, usual)| {
            let issuer = members
                .iter()
                .find(|m| m.department.as_str() == usual)
                .unwrap_or(&members[0]);
            GenesisDocumentType {
                definition,
                issuers: vec![issuer.department.clone()],
            }
        })
        .collect();
    let genesis = Genesis {
        chain_id,
        suite: CryptoSuite::Ed25519Sha256,
        genesis_time: now(),
        params: Params::default(),
        departments,
        document_types,
    };
    genesis.validate()?;
    Ok(genesis)
}

/// Writes a genesis as pretty JSON.
pub fn write_genesis(path: &Path, genesis: &Genesis) -> Result<()> {
    fs::write(path, serde_json::to_string_pretty(genesis)? + "\n")
        .with_context(|| format!("writing {}", path.display()))
}

/// Reads a genesis file and validates it.
pub fn read_genesis(path: &Path) -> Result<Genesis> {
    let text = fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
    let genesis: Genesis =
        serde_json::from_str(&text).with_context(|| format!("parsing {}", path.display()))?;
    genesis
        .validate()
        .with_context(|| format!("genesis {} is not valid", path.display()))?;
    Ok(genesis)
}

/// A node configuration for a department in `dir`.
pub fn node_config(
    dir: &Path,
    department: &DepartmentId,
    genesis: &Path,
    http: SocketAddr,
    p2p_listen: String,
    peers: Vec<PeerConfig>,
) -> NodeConfig {
    let (node_key, signing_key) = key_paths(dir);
    NodeConfig {
        department: department.clone(),
        data_dir: dir.join("data"),
        genesis: genesis.to_path_buf(),
        node_key,
        signing_key,
        http: HttpConfig {
            listen: http,
            max_body_bytes: 64 * 1024 * 1024,
        },
        p2p: P2pConfig {
            listen: p2p_listen,
            peers,
        },
        consensus: ConsensusConfig::default(),
        pool: PoolConfig::default(),
        vault: crate::config::VaultConfig::default(),
    }
}

/// A local network made by [`create_network`]: the genesis and each node's config file.
pub struct LocalNetwork {
    /// The genesis (also written to `dir/genesis.json`).
    pub genesis: Genesis,
    /// Each node's configuration, in the order of the departments given.
    pub configs: Vec<NodeConfig>,
    /// Each node's config file (`dir/<department>/node.toml`).
    pub config_paths: Vec<PathBuf>,
}

/// Creates keys, a genesis (adjusted by `tweak`) and one config per department in `dir`, the
/// nodes listening on `http[i]` and `p2p[i]` and dialling each other.
pub fn create_network(
    dir: &Path,
    chain_id: &str,
    departments: &[String],
    http: &[SocketAddr],
    p2p: &[String],
    tweak: impl FnOnce(&mut Genesis),
) -> Result<LocalNetwork> {
    if departments.len() != http.len() || departments.len() != p2p.len() {
        bail!("one HTTP and one p2p address per department");
    }
    fs::create_dir_all(dir)?;
    let ids = departments
        .iter()
        .map(|d| DepartmentId::new(d))
        .collect::<Result<Vec<_>, _>>()?;
    let members = ids
        .iter()
        .map(|id| init_department(&dir.join(id.as_str()), id, &display_name(id.as_str())))
        .collect::<Result<Vec<_>>>()?;
    let mut genesis = make_genesis(chain_id, &members)?;
    tweak(&mut genesis);
    genesis.validate()?;
    let genesis_path = dir.join("genesis.json");
    write_genesis(&genesis_path, &genesis)?;
    let mut configs = Vec::new();
    let mut config_paths = Vec::new();
    for (i, id) in ids.iter().enumerate() {
        let peers = ids
            .iter()
            .enumerate()
            .filter(|(j, _)| *j != i)
            .map(|(j, other)| PeerConfig {
                department: other.clone(),
                address: p2p[j].clone(),
            })
            .collect();
        let ddir = dir.join(id.as_str());
        let cfg = node_config(&ddir, id, &genesis_path, http[i], p2p[i].clone(), peers);
        let path = ddir.join("node.toml");
        fs::write(&path, cfg.to_toml())?;
        configs.push(cfg);
        config_paths.push(path);
    }
    Ok(LocalNetwork {
        genesis,
        configs,
        config_paths,
    })
}

/// The departments a test network of `n` nodes uses, in order.
pub fn testnet_departments(n: usize) -> Vec<String> {
    let known = [
        "samr", "tax", "hrss", "housing", "sti", "approval", "bigdata", "medins",
    ];
    (0..n)
        .map(|i| match known.get(i) {
            Some(k) => (*k).to_string(),
            None => format!("dept-{i}"),
        })
        .collect()
}

/// The display name of a department id.
pub fn display_name(department: &str) -> String {
    match department_name(department) {
        "Department" => format!("Department {department}"),
        n => n.to_string(),
    }
}
