//! `vault-node`: the 数字保险箱 department node.
//!
//! - `vault-node dev` — a ready single-department vault in a local directory.
//! - `vault-node testnet --nodes N --dir DIR` — N departments on loopback, one process each.
//! - `vault-node init` / `vault-node genesis` / `vault-node run --config FILE` — a real deployment.
//! - `vault-node compact --config FILE` — a stopped node's ledger flushed and compacted.

use std::fs;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use anyhow::{bail, Context, Result};
use clap::{Parser, Subcommand};
use serde::{Deserialize, Serialize};
use vault_node::config::NodeConfig;
use vault_node::deploy::{self, MemberFile};
use vault_protocol::ids::DepartmentId;

/// mimalloc instead of glibc malloc: a loaded node allocates and frees per-block maps and buffers
/// at a rate where glibc's allocator was an eighth of its CPU (see BENCHMARKS.md).
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[derive(Parser)]
#[command(name = "vault-node", version, about = "数字保险箱 department node")]
struct Cli {
    #[command(subcommand)]
    command: Cmd,
}

#[derive(Subcommand)]
enum Cmd {
    /// Start a ready single-department vault in a local directory (created on first use).
    Dev {
        /// The directory holding its genesis, keys, config and data.
        #[arg(long, default_value = ".vault-dev")]
        dir: PathBuf,
        /// HTTP API address.
        #[arg(long, default_value = "127.0.0.1:8700")]
        http: SocketAddr,
    },
    /// Start a local network of N departments on loopback, each node its own process.
    Testnet {
        /// Number of departments.
        #[arg(long, default_value_t = 4)]
        nodes: usize,
        /// Directory for the network (reused if it already holds one).
        #[arg(long, default_value = ".vault-testnet")]
        dir: PathBuf,
        /// First HTTP port; node i listens on base+i, and on base+100+i for p2p.
        #[arg(long, default_value_t = 8710)]
        base_port: u16,
    },
    /// Generate a department's keys and its member file (share member.json, keep keys/).
    Init {
        /// The department id, e.g. `samr`.
        #[arg(long)]
        department: DepartmentId,
        /// Its display name.
        #[arg(long)]
        name: Option<String>,
        /// Where to write keys/ and member.json.
        #[arg(long)]
        dir: PathBuf,
    },
    /// Build the genesis file from the founding departments' member files.
    Genesis {
        /// The chain id, e.g. `jinan-vault-1`.
        #[arg(long)]
        chain_id: String,
        /// Member files (member.json of each founding department).
        #[arg(long = "member", required = true)]
        members: Vec<PathBuf>,
        /// Output file.
        #[arg(long, default_value = "genesis.json")]
        out: PathBuf,
    },
    /// Run a node from its configuration file.
    Run {
        /// The TOML configuration.
        #[arg(long)]
        config: PathBuf,
    },
    /// Compact a stopped node's ledger: flush and compact every column family, so the data
    /// directory holds only live data (RocksDB does this by itself over time).
    Compact {
        /// The node's TOML configuration.
        #[arg(long)]
        config: PathBuf,
    },
}

fn main() -> Result<()> {
    vault_node::telemetry::init();
    let cli = Cli::parse();
    match cli.command {
        Cmd::Dev { dir, http } => dev(&dir, http),
        Cmd::Testnet {
            nodes,
            dir,
            base_port,
        } => testnet(nodes, &dir, base_port),
        Cmd::Init {
            department,
            name,
            dir,
        } => {
            let name = name.unwrap_or_else(|| deploy::display_name(department.as_str()));
            let dir = absolute(&dir)?;
            let m = deploy::init_department(&dir, &department, &name)?;
            // A config to edit: the genesis path, listen addresses and the other departments'
            // nodes (`[[p2p.peers]]`) are the deployment's.
            let cfg = deploy::node_config(
                &dir,
                &department,
                &dir.join("genesis.json"),
                SocketAddr::from(([0, 0, 0, 0], 8700)),
                "/ip4/0.0.0.0/tcp/8800".to_string(),
                Vec::new(),
            );
            fs::write(dir.join("node.toml"), cfg.to_toml())?;
            println!(
                "keys written to {}/keys (keep them secret)\nmember file: {}/member.json — send it to the other founding departments\nconfig:      {}/node.toml — put genesis.json beside it and add the other departments' nodes as [[p2p.peers]]\nnode key    {}\nsigning key {}",
                dir.display(),
                dir.display(),
                dir.display(),
                m.node_key,
                m.signing_key
            );
            Ok(())
        }
        Cmd::Genesis {
            chain_id,
            members,
            out,
        } => {
            let members = members
                .iter()
                .map(|p| {
                    let text = fs::read_to_string(p)
                        .with_context(|| format!("reading {}", p.display()))?;
                    serde_json::from_str::<MemberFile>(&text)
                        .with_context(|| format!("parsing {}", p.display()))
                })
                .collect::<Result<Vec<_>>>()?;
            let genesis = deploy::make_genesis(&chain_id, &members)?;
            deploy::write_genesis(&out, &genesis)?;
            println!(
                "genesis {} written to {} ({} departments)",
                genesis.hash(),
                out.display(),
                members.len()
            );
            Ok(())
        }
        Cmd::Run { config } => {
            let cfg = NodeConfig::load(&config)?;
            vault_node::node::run_blocking(cfg)
        }
        Cmd::Compact { config } => {
            let cfg = NodeConfig::load(&config)?;
            let genesis = deploy::read_genesis(&cfg.genesis)?;
            let path = cfg.data_dir.join("ledger");
            let before = dir_bytes(&path);
            let (store, report) = vault_node::store::Store::open(&path, &genesis)
                .with_context(|| format!("opening the ledger in {}", path.display()))?;
            store.compact()?;
            let usage = store.usage()?;
            drop(store);
            println!(
                "ledger {} compacted at height {}: {} → {} bytes",
                path.display(),
                report.head.height,
                before,
                dir_bytes(&path)
            );
            print!("{usage}");
            Ok(())
        }
    }
}

fn dev(dir: &Path, http: SocketAddr) -> Result<()> {
    let dir = &absolute(dir)?;
    let config_path = dir.join("node.toml");
    if !config_path.exists() {
        fs::create_dir_all(dir)?;
        let department = DepartmentId::new("samr")?;
        let member = deploy::init_department(dir, &department, &deploy::display_name("samr"))?;
        let mut genesis = deploy::make_genesis("vault-dev", &[member])?;
        // In the dev vault one department may issue every document type.
        for t in &mut genesis.document_types {
            t.issuers = vec![department.clone()];
        }
        let genesis_path = dir.join("genesis.json");
        deploy::write_genesis(&genesis_path, &genesis)?;
        let p2p = format!("/ip4/127.0.0.1/tcp/{}", free_port()?);
        let cfg = deploy::node_config(dir, &department, &genesis_path, http, p2p, Vec::new());
        fs::write(&config_path, cfg.to_toml())?;
    }
    let mut cfg = NodeConfig::load(&config_path)?;
    cfg.http.listen = http;
    println!("数字保险箱 dev vault");
    println!("  API          http://{http}/v1/status");
    println!("  config       {}", config_path.display());
    println!("  genesis      {}", cfg.genesis.display());
    println!(
        "  keys         {} and {}",
        cfg.node_key.display(),
        cfg.signing_key.display()
    );
    println!("  data         {}", cfg.data_dir.display());
    vault_node::node::run_blocking(cfg)
}

/// The bytes of the files under `p`.
fn dir_bytes(p: &Path) -> u64 {
    fs::read_dir(p)
        .map(|rd| {
            rd.flatten()
                .map(|e| match e.metadata() {
                    Ok(m) if m.is_dir() => dir_bytes(&e.path()),
                    Ok(m) => m.len(),
                    Err(_) => 0,
                })
                .sum()
        })
        .unwrap_or(0)
}

fn free_port() -> Result<u16> {
    Ok(std::net::TcpListener::bind("127.0.0.1:0")?
        .local_addr()?
        .port())
}

/// What `testnet` writes to `DIR/testnet.json`.
#[derive(Debug, Serialize, Deserialize)]
struct TestnetFile {
    genesis: PathBuf,
    nodes: Vec<TestnetNode>,
}

#[derive(Debug, Serialize, Deserialize)]
struct TestnetNode {
    name: String,
    department: DepartmentId,
    http_url: String,
    p2p_address: String,
    config: PathBuf,
    node_key: PathBuf,
    signing_key: PathBuf,
    pid: Option<u32>,
    restart_command: String,
    log: PathBuf,
}

fn testnet(n: usize, dir: &Path, base_port: u16) -> Result<()> {
    if n == 0 || n > 64 {
        bail!("--nodes must be between 1 and 64");
    }
    let dir = absolute(dir)?;
    let genesis_path = dir.join("genesis.json");
    let departments = deploy::testnet_departments(n);
    let exe = std::env::current_exe().context("locating vault-node")?;
    let http =
        |i: usize| -> SocketAddr { SocketAddr::from(([127, 0, 0, 1], base_port + i as u16)) };
    let p2p = |i: usize| format!("/ip4/127.0.0.1/tcp/{}", base_port + 100 + i as u16);
    if !genesis_path.exists() {
        let http: Vec<SocketAddr> = (0..n).map(http).collect();
        let p2p: Vec<String> = (0..n).map(p2p).collect();
        deploy::create_network(&dir, "vault-testnet", &departments, &http, &p2p, |_| {})?;
    } else {
        let genesis = deploy::read_genesis(&genesis_path)?;
        if genesis.departments.len() != n {
            bail!(
                "{} already holds a network of {} departments; use another --dir or --nodes {}",
                dir.display(),
                genesis.departments.len(),
                genesis.departments.len()
            );
        }
    }
    let mut children: Vec<Child> = Vec::new();
    let mut nodes = Vec::new();
    for (i, d) in departments.iter().enumerate() {
        let ddir = dir.join(d);
        let config = ddir.join("node.toml");
        let log = ddir.join("node.log");
        let restart = format!(
            "{} run --config {} >> {} 2>&1",
            exe.display(),
            config.display(),
            log.display()
        );
        let logfile = fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&log)?;
        let child = Command::new(&exe)
            .arg("run")
            .arg("--config")
            .arg(&config)
            .stdout(Stdio::from(logfile.try_clone()?))
            .stderr(Stdio::from(logfile))
            .spawn()
            .with_context(|| format!("starting the {d} node"))?;
        let (node_key, signing_key) = deploy::key_paths(&ddir);
        nodes.push(TestnetNode {
            name: deploy::display_name(d),
            department: DepartmentId::new(d)?,
            http_url: format!("http://{}", http(i)),
            p2p_address: p2p(i),
            config,
            node_key,
            signing_key,
            pid: Some(child.id()),
            restart_command: restart,
            log,
        });
        children.push(child);
    }
    let file = TestnetFile {
        genesis: genesis_path,
        nodes,
    };
    fs::write(
        dir.join("testnet.json"),
        serde_json::to_string_pretty(&file)? + "\n",
    )?;
    println!("数字保险箱 test network: {n} departments, one process each");
    for node in &file.nodes {
        println!(
            "  {:<10} {}/v1/status   log {}",
            node.department.to_string(),
            node.http_url,
            node.log.display()
        );
    }
    println!("  details    {}", dir.join("testnet.json").display());
    println!("Ctrl-C stops them all.");
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    rt.block_on(async {
        let mut tick = tokio::time::interval(Duration::from_secs(1));
        loop {
            tokio::select! {
                _ = tokio::signal::ctrl_c() => break,
                _ = tick.tick() => {
                    for (c, node) in children.iter_mut().zip(&file.nodes) {
                        if let Ok(Some(status)) = c.try_wait() {
                            eprintln!("node {} exited ({status}); see {}", node.department, node.log.display());
                        }
                    }
                }
            }
        }
    });
    for c in &mut children {
        let _ = c.kill();
        let _ = c.wait();
    }
    println!("stopped");
    Ok(())
}

fn absolute(p: &Path) -> Result<PathBuf> {
    Ok(if p.is_absolute() {
        p.to_path_buf()
    } else {
        std::env::current_dir()?.join(p)
    })
}
