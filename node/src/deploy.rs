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
    }
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
