//! # 数字保险箱 — multi-node test harness
//!
//! [`Cluster`] starts N department nodes as separate `vault-node` processes on loopback, each with
//! its own RocksDB directory, keys and ports, from one generated genesis — the real binary, the
//! real network, the real disk. A test can stop a node (SIGTERM), kill it (SIGKILL), restart it,
//! and talk to each node's HTTP API.

#![forbid(unsafe_code)]
#![warn(missing_docs)]

use std::fs;
use std::net::{SocketAddr, TcpListener};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};
use serde_json::Value;
use vault_node::deploy;
use vault_protocol::access::{AccessRequest, RequestAction, Requester, SignedAccessRequest};
use vault_protocol::crypto::{CryptoSuite, KeyPair};
use vault_protocol::encoding::Canonical;
use vault_protocol::encoding::{BoundedString, BoundedVec};
use vault_protocol::genesis::Genesis;
use vault_protocol::ids::DocTypeCode;
use vault_protocol::ids::{DepartmentId, Timestamp};
use vault_protocol::tx::{
    Attestation, Claim, Enrolment, SignedTransaction, StatusAction, StatusChange, Transaction,
    TxBody,
};

/// One node of a [`Cluster`].
pub struct ClusterNode {
    /// Its department.
    pub department: DepartmentId,
    /// Its HTTP base URL.
    pub url: String,
    /// Its config file.
    pub config: PathBuf,
    /// Its log file.
    pub log: PathBuf,
    /// The department's signing key.
    pub signing: KeyPair,
    child: Option<Child>,
}

/// N nodes on loopback, each its own process.
pub struct Cluster {
    /// The cluster's directory (deleted on drop).
    pub dir: tempfile::TempDir,
    /// The genesis.
    pub genesis: Genesis,
    /// The nodes.
    pub nodes: Vec<ClusterNode>,
    bin: PathBuf,
    http: reqwest::Client,
    nonce: std::sync::atomic::AtomicU64,
}

/// A port for a node to listen on: free now, never handed out before by this process, and below
/// the kernel's ephemeral range (32768 and up on Linux), so that neither another cluster of the
/// same test binary nor an outgoing connection can take it before the node binds it.
fn free_port() -> Result<u16> {
    use std::collections::BTreeSet;
    use std::sync::Mutex;
    static TAKEN: Mutex<BTreeSet<u16>> = Mutex::new(BTreeSet::new());
    const LOW: u32 = 20_000;
    const SPAN: u32 = 12_000;
    let mut taken = TAKEN.lock().unwrap_or_else(|p| p.into_inner());
    let seed = std::process::id().wrapping_mul(2_654_435_761)
        ^ std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.subsec_nanos());
    for i in 0..SPAN {
        let port = (LOW + (seed.wrapping_add(i.wrapping_mul(7_919))) % SPAN) as u16;
        if taken.contains(&port) {
            continue;
        }
        if TcpListener::bind(("127.0.0.1", port)).is_ok() {
            taken.insert(port);
            return Ok(port);
        }
    }
    bail!("no free port between {LOW} and {}", LOW + SPAN)
}

/// The `vault-node` binary built alongside the tests (building it if needed).
pub fn node_binary() -> Result<PathBuf> {
    let exe = std::env::current_exe()?;
    // target/<profile>/deps/<test> → target/<profile>/vault-node
    let profile_dir = exe
        .parent()
        .and_then(Path::parent)
        .context("locating the target directory")?;
    let bin = profile_dir.join("vault-node");
    if bin.exists() {
        return Ok(bin);
    }
    let status = Command::new(env!("CARGO"))
        .args(["build", "-p", "vault-node", "--bin", "vault-node"])
        .status()
        .context("building vault-node")?;
    if !status.success() || !bin.exists() {
        bail!("vault-node was not built at {}", bin.display());
    }
    Ok(bin)
}

/// `n` HTTP listen addresses and `n` libp2p listen addresses on loopback, each on its own port.
fn loopback_addresses(n: usize) -> Result<(Vec<SocketAddr>, Vec<String>)> {
    let http = (0..n)
        .map(|_| Ok(SocketAddr::from(([127, 0, 0, 1], free_port()?))))
        .collect::<Result<_>>()?;
    let p2p = (0..n)
        .map(|_| Ok(format!("/ip4/127.0.0.1/tcp/{}", free_port()?)))
        .collect::<Result<_>>()?;
    Ok((http, p2p))
}

impl Cluster {
    /// Generates keys, a genesis and configs for `n` departments and starts them all.
    pub fn start(n: usize) -> Result<Self> {
        let dir = tempfile::tempdir()?;
        let departments = deploy::testnet_departments(n);
        let (http, p2p) = loopback_addresses(n)?;
        // Let transactions made a little before the genesis time (clock skew between the test
        // and the nodes) be valid.
        let net =
            deploy::create_network(dir.path(), "cluster-test", &departments, &http, &p2p, |g| {
                g.genesis_time = Timestamp(g.genesis_time.0.saturating_sub(60_000));
            })?;
        let mut nodes = Vec::new();
        for (i, cfg) in net.configs.iter().enumerate() {
            nodes.push(ClusterNode {
                department: cfg.department.clone(),
                url: format!("http://{}", http[i]),
                config: net.config_paths[i].clone(),
                log: dir.path().join(cfg.department.as_str()).join("node.log"),
                signing: vault_node::keys::read(&cfg.signing_key)?,
                child: None,
            });
        }
        Self::launch_all(dir, net.genesis, nodes, node_binary()?, 1)
    }

    /// Starts every node of a cluster made of these parts.
    fn launch_all(
        dir: tempfile::TempDir,
        genesis: Genesis,
        nodes: Vec<ClusterNode>,
        bin: PathBuf,
        first_nonce: u64,
    ) -> Result<Self> {
        let mut cluster = Cluster {
            dir,
            genesis,
            nodes,
            bin,
            http: reqwest::Client::builder()
                .timeout(Duration::from_secs(70))
                .build()?,
            nonce: std::sync::atomic::AtomicU64::new(first_nonce),
        };
        for i in 0..cluster.nodes.len() {
            cluster.launch(i)?;
        }
        Ok(cluster)
    }

    /// A second network from the same genesis and the same keys, on its own ports and disks: as
    /// if every validator signed two histories. Its chain diverges from this one at once, with
    /// blocks cosigned by the same departments — a split view, for monitors to catch.
    pub fn twin(&self) -> Result<Self> {
        let dir = tempfile::tempdir()?;
        let n = self.nodes.len();
        let genesis_path = dir.path().join("genesis.json");
        deploy::write_genesis(&genesis_path, &self.genesis)?;
        let (http, p2p) = loopback_addresses(n)?;
        let mut nodes = Vec::new();
        for (i, node) in self.nodes.iter().enumerate() {
            let id = &node.department;
            let ddir = dir.path().join(id.as_str());
            fs::create_dir_all(ddir.join("keys"))?;
            let src = self.dir.path().join(id.as_str()).join("keys");
            for f in ["node.json", "signing.json"] {
                fs::copy(src.join(f), ddir.join("keys").join(f))?;
            }
            let peers = self
                .nodes
                .iter()
                .enumerate()
                .filter(|(j, _)| *j != i)
                .map(|(j, other)| vault_node::config::PeerConfig {
                    department: other.department.clone(),
                    address: p2p[j].clone(),
                })
                .collect();
            let cfg = deploy::node_config(&ddir, id, &genesis_path, http[i], p2p[i].clone(), peers);
            let config = ddir.join("node.toml");
            fs::write(&config, cfg.to_toml())?;
            nodes.push(ClusterNode {
                department: id.clone(),
                url: format!("http://{}", http[i]),
                config,
                log: ddir.join("node.log"),
                signing: node.signing.clone(),
                child: None,
            });
        }
        Self::launch_all(
            dir,
            self.genesis.clone(),
            nodes,
            self.bin.clone(),
            1_000_000,
        )
    }

    fn launch(&mut self, i: usize) -> Result<()> {
        let node = &mut self.nodes[i];
        let log = fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&node.log)?;
        let child = Command::new(&self.bin)
            .arg("run")
            .arg("--config")
            .arg(&node.config)
            .env(
                "RUST_LOG",
                std::env::var("VAULT_TEST_LOG").unwrap_or_else(|_| "info".into()),
            )
            .stdout(Stdio::from(log.try_clone()?))
            .stderr(Stdio::from(log))
            .spawn()
            .with_context(|| format!("starting node {}", node.department))?;
        node.child = Some(child);
        Ok(())
    }

    /// Stops node `i` gracefully (SIGTERM) and waits for it to exit.
    pub fn stop(&mut self, i: usize) -> Result<()> {
        if let Some(mut c) = self.nodes[i].child.take() {
            let _ = Command::new("kill")
                .args(["-TERM", &c.id().to_string()])
                .status();
            let deadline = Instant::now() + Duration::from_secs(15);
            while Instant::now() < deadline {
                if c.try_wait()?.is_some() {
                    return Ok(());
                }
                std::thread::sleep(Duration::from_millis(50));
            }
            c.kill()?;
            c.wait()?;
        }
        Ok(())
    }

    /// Kills node `i` at once (SIGKILL), as a crash would.
    pub fn kill9(&mut self, i: usize) -> Result<()> {
        if let Some(mut c) = self.nodes[i].child.take() {
            c.kill()?;
            c.wait()?;
        }
        Ok(())
    }

    /// Starts node `i` again from its data directory.
    pub fn restart(&mut self, i: usize) -> Result<()> {
        self.launch(i)
    }

    /// The last lines of node `i`'s log (for failure messages).
    pub fn log_tail(&self, i: usize) -> String {
        let text = fs::read_to_string(&self.nodes[i].log).unwrap_or_default();
        let lines: Vec<&str> = text.lines().collect();
        // A panic's message comes before its long backtrace: show it whatever the tail holds.
        let panics: Vec<&str> = lines
            .iter()
            .enumerate()
            .filter(|(_, l)| l.contains("panicked at"))
            .flat_map(|(n, _)| lines[n..(n + 3).min(lines.len())].iter().copied())
            .collect();
        let tail = lines[lines.len().saturating_sub(40)..].join("\n");
        if panics.is_empty() {
            tail
        } else {
            format!("{}\n…\n{tail}", panics.join("\n"))
        }
    }

    /// GET a path on node `i`, as JSON.
    pub async fn get(&self, i: usize, path: &str) -> Result<(u16, Value)> {
        let resp = self
            .http
            .get(format!("{}{}", self.nodes[i].url, path))
            .send()
            .await?;
        let status = resp.status().as_u16();
        Ok((status, resp.json().await.unwrap_or(Value::Null)))
    }

    /// Node `i`'s `/v1/status`, or `None` while it is not answering.
    pub async fn status(&self, i: usize) -> Option<Value> {
        match self.get(i, "/v1/status").await {
            Ok((200, v)) => Some(v),
            _ => None,
        }
    }

    /// Waits until node `i` has committed at least `height`.
    pub async fn wait_height(&self, i: usize, height: u64, timeout: Duration) -> Result<Value> {
        let deadline = Instant::now() + timeout;
        loop {
            if let Some(s) = self.status(i).await {
                if s["height"].as_u64().unwrap_or(0) >= height {
                    return Ok(s);
                }
            }
            if Instant::now() > deadline {
                bail!(
                    "node {i} did not reach height {height} in {timeout:?}; log:\n{}",
                    self.log_tail(i)
                );
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// Submits a signed transaction to node `i`; with `wait`, until committed or rejected.
    pub async fn submit(
        &self,
        i: usize,
        tx: &SignedTransaction,
        wait: bool,
    ) -> Result<(u16, Value)> {
        let url = format!(
            "{}/v1/transactions?wait={wait}&timeout_ms=30000",
            self.nodes[i].url
        );
        let resp = self.http.post(url).json(tx).send().await?;
        let status = resp.status().as_u16();
        Ok((status, resp.json().await.unwrap_or(Value::Null)))
    }

    /// Submits signed transactions to node `i` in one batch — the canonical binary form, or a
    /// JSON array — with `wait`, until each is committed or rejected.
    pub async fn submit_batch(
        &self,
        i: usize,
        txs: &[SignedTransaction],
        binary: bool,
        wait: bool,
    ) -> Result<(u16, Value)> {
        let url = format!(
            "{}/v1/transactions/batch?wait={wait}&timeout_ms=30000",
            self.nodes[i].url
        );
        let req = self.http.post(url);
        let req = if binary {
            let batch = vault_protocol::tx::TransactionBatch(
                vault_protocol::encoding::BoundedVec::new(txs.to_vec())?,
            );
            req.header("content-type", "application/octet-stream")
                .body(vault_protocol::encoding::Canonical::encode(&batch))
        } else {
            req.json(txs)
        };
        let resp = req.send().await?;
        let status = resp.status().as_u16();
        Ok((status, resp.json().await.unwrap_or(Value::Null)))
    }

    /// A signed vault request on this chain, made now, with a fresh nonce.
    pub fn request(&self, requester: Requester, action: RequestAction, key: &KeyPair) -> String {
        let signed = AccessRequest {
            chain_id: self.genesis.chain_id.clone(),
            requester,
            action,
            created_at: now(),
            nonce: self
                .nonce
                .fetch_add(1, std::sync::atomic::Ordering::Relaxed),
        }
        .sign(key);
        request_header(&signed)
    }

    /// Uploads `file` to node `i` as `requester` (signed with `key`).
    pub async fn upload(
        &self,
        i: usize,
        requester: Requester,
        key: &KeyPair,
        file: &[u8],
    ) -> Result<(u16, Value)> {
        let digest = CryptoSuite::Ed25519Sha256.file_digest(file);
        let header = self.request(
            requester,
            RequestAction::Upload {
                digest,
                size: file.len() as u64,
            },
            key,
        );
        let resp = self
            .http
            .put(format!("{}/v1/documents/{digest}", self.nodes[i].url))
            .header("vault-request", header)
            .header("content-type", "application/pdf")
            .body(file.to_vec())
            .send()
            .await?;
        let status = resp.status().as_u16();
        Ok((status, resp.json().await.unwrap_or(Value::Null)))
    }

    /// Reads an attestation's document through node `i` with a signed request header (or none).
    pub async fn read_document(
        &self,
        i: usize,
        attestation: &str,
        header: Option<String>,
    ) -> Result<Read> {
        let mut req = self.http.get(format!(
            "{}/v1/attestations/{attestation}/document",
            self.nodes[i].url
        ));
        if let Some(h) = header {
            req = req.header("vault-request", h);
        }
        let resp = req.send().await?;
        let status = resp.status().as_u16();
        let headers = resp.headers().clone();
        let body = resp.bytes().await?.to_vec();
        let error = if status >= 400 {
            serde_json::from_slice::<Value>(&body).ok()
        } else {
            None
        };
        Ok(Read {
            status,
            source: headers
                .get("vault-source")
                .and_then(|v| v.to_str().ok())
                .map(str::to_string),
            body,
            error,
        })
    }

    /// `POST /v1/verify` with a file as the raw body (and optionally an attestation id).
    pub async fn verify(&self, i: usize, file: &[u8], attestation: Option<&str>) -> Result<Value> {
        let mut url = format!("{}/v1/verify", self.nodes[i].url);
        if let Some(a) = attestation {
            url.push_str(&format!("?attestation={a}"));
        }
        let resp = self
            .http
            .post(url)
            .header("content-type", "application/pdf")
            .body(file.to_vec())
            .send()
            .await?;
        Ok(resp.json().await?)
    }

    /// Submits `tx` to node `via`, requires it committed, and waits until every running node has
    /// its block (they commit a moment apart).
    pub async fn commit(&self, via: usize, tx: &SignedTransaction) -> Result<Value> {
        let (code, r) = self.submit(via, tx, true).await?;
        if code != 200 || r["status"] != "committed" {
            bail!("expected a commit, got {code} {r}");
        }
        let height = r["height"].as_u64().context("height")?;
        for i in 0..self.nodes.len() {
            if self.status(i).await.is_some() {
                self.wait_height(i, height, Duration::from_secs(20)).await?;
            }
        }
        Ok(r)
    }

    /// Enterprise `n`'s enrolment by node 0's department.
    pub fn enrol_tx(&self, n: u32) -> SignedTransaction {
        let by = &self.nodes[0];
        self.tx(TxBody::EnrolEnterprise(Enrolment {
            department: by.department.clone(),
            enterprise: uscc(n),
            key: enterprise_key(n).public(),
        }))
        .sign_one(&by.signing)
    }

    /// `issuer` (signing with `key`) attests `file` as enterprise `n`'s document of `doc_type`,
    /// valid from a day ago for `valid_days` (or without end).
    pub fn issue_tx(
        &self,
        issuer: &DepartmentId,
        key: &KeyPair,
        n: u32,
        doc_type: &str,
        file: &[u8],
        valid_days: Option<u64>,
    ) -> Result<SignedTransaction> {
        const DAY: u64 = 86_400_000;
        let t = now();
        Ok(self
            .tx(TxBody::IssueAttestation(Attestation {
                issuer: issuer.clone(),
                subject: uscc(n),
                doc_type: DocTypeCode::new(doc_type)?,
                file_digest: CryptoSuite::Ed25519Sha256.file_digest(file),
                claims: BoundedVec::new(vec![Claim {
                    key: BoundedString::new("licence_no")?,
                    value: BoundedString::new(format!("{doc_type}-{n}"))?,
                }])?,
                valid_from: t.minus(DAY),
                valid_until: valid_days.map(|d| t.plus(d * DAY)),
                supersedes: None,
            }))
            .sign_one(key))
    }

    /// Node `i`'s department changes the status of attestation `id`.
    pub fn status_tx(&self, i: usize, id: &str, action: StatusAction) -> Result<SignedTransaction> {
        Ok(self
            .tx(TxBody::SetStatus(StatusChange {
                department: self.nodes[i].department.clone(),
                attestation: id.parse()?,
                action,
                reason_code: 1,
                note: BoundedString::new("企业休眠 (dormant)")?,
            }))
            .sign_one(&self.nodes[i].signing))
    }

    /// `GET` a path of node `i` as raw bytes, with an `Accept` header.
    pub async fn get_bytes(&self, i: usize, path: &str, accept: &str) -> Result<(u16, Vec<u8>)> {
        let resp = self
            .http
            .get(format!("{}{}", self.nodes[i].url, path))
            .header("accept", accept)
            .send()
            .await?;
        let status = resp.status().as_u16();
        Ok((status, resp.bytes().await?.to_vec()))
    }

    /// A transaction on this chain, made now, with a fresh nonce.
    pub fn tx(&self, body: TxBody) -> Transaction {
        Transaction {
            chain_id: self.genesis.chain_id.clone(),
            created_at: now(),
            nonce: self
                .nonce
                .fetch_add(1, std::sync::atomic::Ordering::Relaxed),
            body,
        }
    }
}

impl Drop for Cluster {
    fn drop(&mut self) {
        for n in &mut self.nodes {
            if let Some(mut c) = n.child.take() {
                let _ = c.kill();
                let _ = c.wait();
            }
        }
    }
}

/// The answer to a document read.
#[derive(Debug)]
pub struct Read {
    /// HTTP status.
    pub status: u16,
    /// The department whose node held the file (on success).
    pub source: Option<String>,
    /// The file (on success).
    pub body: Vec<u8>,
    /// The error (on failure).
    pub error: Option<Value>,
}

impl Read {
    /// The error code, if refused.
    pub fn code(&self) -> &str {
        self.error
            .as_ref()
            .and_then(|e| e["error"]["code"].as_str())
            .unwrap_or("")
    }
}

/// The `Vault-Request` header value of a signed request.
pub fn request_header(signed: &SignedAccessRequest) -> String {
    use base64::Engine as _;
    base64::engine::general_purpose::STANDARD.encode(signed.encode())
}

/// Now, as a protocol timestamp.
pub fn now() -> Timestamp {
    std::time::SystemTime::now().into()
}

pub use vault_protocol::ledger::test_uscc as uscc;

/// An enterprise key derived from a number.
pub fn enterprise_key(n: u32) -> KeyPair {
    let suite = CryptoSuite::Ed25519Sha256;
    KeyPair::from_seed(
        suite,
        suite.file_digest(format!("enterprise-{n}").as_bytes()).0,
    )
}
