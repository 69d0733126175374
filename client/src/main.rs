//! `vault`: the 数字保险箱 command line for departments, enterprises and verifiers.

use std::path::PathBuf;
use std::time::SystemTime;

use anyhow::{bail, Context, Result};
use clap::{Parser, Subcommand};
use serde_json::Value;
use vault_client::{keyfile, Client};
use vault_protocol::crypto::{CryptoSuite, PublicKey};
use vault_protocol::encoding::BoundedVec;
use vault_protocol::ids::{ChainId, DepartmentId, DocTypeCode, Timestamp};
use vault_protocol::tx::{Attestation, Claim, Enrolment, Transaction, TxBody};
use vault_protocol::uscc::Uscc;

#[derive(Parser)]
#[command(name = "vault", version, about = "数字保险箱 command line")]
struct Cli {
    /// The department node's API.
    #[arg(
        long,
        global = true,
        env = "VAULT_NODE",
        default_value = "http://127.0.0.1:8700"
    )]
    node: String,
    /// Print JSON instead of readable text.
    #[arg(long, global = true)]
    json: bool,
    #[command(subcommand)]
    command: Cmd,
}

#[derive(Subcommand)]
enum Cmd {
    /// Generate a key (for an enterprise or an application) into a new key file.
    Keygen {
        /// The key file to create.
        #[arg(long)]
        out: PathBuf,
        /// What the key is for.
        #[arg(long, default_value = "enterprise")]
        role: String,
    },
    /// The node's view of the chain.
    Status,
    /// Department: enrol an enterprise (bind its USCC to its public key).
    Enrol {
        /// The department's signing key file.
        #[arg(long)]
        key: PathBuf,
        /// The department id.
        #[arg(long)]
        department: DepartmentId,
        /// The enterprise's USCC.
        #[arg(long)]
        uscc: Uscc,
        /// The enterprise's public key (hex).
        #[arg(long)]
        enterprise_key: PublicKey,
    },
    /// Department: issue an attestation for a file.
    Issue {
        /// The department's signing key file.
        #[arg(long)]
        key: PathBuf,
        /// The department id.
        #[arg(long)]
        department: DepartmentId,
        /// The enterprise's USCC.
        #[arg(long)]
        uscc: Uscc,
        /// The document type code, e.g. BUSINESS_LICENCE.
        #[arg(long = "type")]
        doc_type: DocTypeCode,
        /// The document file.
        #[arg(long)]
        file: PathBuf,
        /// Validity in days from now (omit for documents that do not expire).
        #[arg(long)]
        valid_days: Option<u64>,
        /// Key claims as key=value (repeatable).
        #[arg(long = "claim")]
        claims: Vec<String>,
    },
    /// Show an attestation with its status history and the verdict now.
    Show {
        /// The attestation id.
        id: String,
    },
    /// Verify a file against the ledger: every attestation of its SHA-256, with a verdict.
    Verify {
        /// The file.
        file: PathBuf,
    },
}

fn now() -> Timestamp {
    SystemTime::now().into()
}

fn main() {
    let cli = Cli::parse();
    if let Err(e) = run(cli) {
        eprintln!("error: {e:#}");
        std::process::exit(1);
    }
}

fn chain_id(node: &Client) -> Result<ChainId> {
    let s = node.status()?;
    Ok(ChainId::new(s["chain_id"].as_str().unwrap_or_default())?)
}

fn nonce() -> u64 {
    let mut b = [0u8; 8];
    let _ = getrandom::getrandom(&mut b);
    u64::from_le_bytes(b)
}

fn submit(
    node: &Client,
    json: bool,
    tx: Transaction,
    key: &vault_protocol::crypto::KeyPair,
) -> Result<()> {
    let signed = tx.sign_one(key);
    let r = node.submit(&signed, true)?;
    if json {
        println!("{r}");
    } else {
        match r["status"].as_str() {
            Some("committed") => println!(
                "committed: {} at height {}",
                r["tx_id"].as_str().unwrap_or(""),
                r["height"]
            ),
            Some("rejected") => bail!(
                "rejected: {} ({})",
                r["error"]["message"].as_str().unwrap_or(""),
                r["error"]["code"].as_str().unwrap_or("")
            ),
            _ => println!("pending: {}", r["tx_id"].as_str().unwrap_or("")),
        }
    }
    Ok(())
}

fn print_verdict(v: &Value) {
    let verdict = &v["verdict"];
    println!(
        "attestation {}\n  {} {} for {} — issued by {} ({}) at height {}",
        verdict["attestation_id"].as_str().unwrap_or(""),
        verdict["doc_type"].as_str().unwrap_or(""),
        verdict["doc_type_name"].as_str().unwrap_or(""),
        verdict["subject"].as_str().unwrap_or(""),
        verdict["issuer"].as_str().unwrap_or(""),
        verdict["issuer_name"].as_str().unwrap_or(""),
        verdict["issued_height"],
    );
    println!(
        "  status {}   verdict: {}",
        verdict["status"].as_str().unwrap_or(""),
        if verdict["valid"] == true {
            "VALID"
        } else {
            "NOT VALID"
        }
    );
    for c in verdict["checks"].as_array().into_iter().flatten() {
        let mark = match c["outcome"].as_str() {
            Some("pass") => "ok  ",
            Some("fail") => "FAIL",
            _ => "skip",
        };
        let reason = c["reason"]
            .as_str()
            .map(|r| format!(" [{r}]"))
            .unwrap_or_default();
        println!(
            "  {mark} {:<18} {}{reason}",
            c["check"].as_str().unwrap_or(""),
            c["detail"].as_str().unwrap_or("")
        );
    }
}

fn run(cli: Cli) -> Result<()> {
    let node = Client::new(&cli.node);
    match cli.command {
        Cmd::Keygen { out, role } => {
            let k = keyfile::generate().context("generating a key")?;
            keyfile::write(&out, &k, &role)?;
            println!("{}", k.public());
        }
        Cmd::Status => {
            let s = node.status()?;
            if cli.json {
                println!("{s}");
            } else {
                println!(
                    "department {}  chain {}\nheight {}  head {}\nlog size {}  root {}\npeers {}  synced {}  pending {}",
                    s["department"].as_str().unwrap_or(""),
                    s["chain_id"].as_str().unwrap_or(""),
                    s["height"],
                    s["head"].as_str().unwrap_or(""),
                    s["log_size"],
                    s["log_root"].as_str().unwrap_or(""),
                    s["peers"],
                    s["synced"],
                    s["pool"]["pending"],
                );
            }
        }
        Cmd::Enrol {
            key,
            department,
            uscc,
            enterprise_key,
        } => {
            let k = keyfile::read(&key)?;
            let tx = Transaction {
                chain_id: chain_id(&node)?,
                created_at: now(),
                nonce: nonce(),
                body: TxBody::EnrolEnterprise(Enrolment {
                    department,
                    enterprise: uscc,
                    key: enterprise_key,
                }),
            };
            submit(&node, cli.json, tx, &k)?;
        }
        Cmd::Issue {
            key,
            department,
            uscc,
            doc_type,
            file,
            valid_days,
            claims,
        } => {
            let k = keyfile::read(&key)?;
            let bytes =
                std::fs::read(&file).with_context(|| format!("reading {}", file.display()))?;
            let mut parsed = claims
                .iter()
                .map(|c| {
                    let (key, value) = c
                        .split_once('=')
                        .with_context(|| format!("claim {c:?} is not key=value"))?;
                    Ok(Claim {
                        key: key.try_into()?,
                        value: value.try_into()?,
                    })
                })
                .collect::<Result<Vec<_>>>()?;
            parsed.sort_by(|a, b| a.key.cmp(&b.key));
            let t = now();
            let tx = Transaction {
                chain_id: chain_id(&node)?,
                created_at: t,
                nonce: nonce(),
                body: TxBody::IssueAttestation(Attestation {
                    issuer: department,
                    subject: uscc,
                    doc_type,
                    file_digest: CryptoSuite::Ed25519Sha256.file_digest(&bytes),
                    claims: BoundedVec::new(parsed)?,
                    valid_from: t,
                    valid_until: valid_days.map(|d| t.plus(d * 86_400_000)),
                    supersedes: None,
                }),
            };
            let id = tx.id(CryptoSuite::Ed25519Sha256);
            submit(&node, cli.json, tx, &k)?;
            if !cli.json {
                println!("attestation id {id}");
            }
        }
        Cmd::Show { id } => {
            let v = node.attestation(&id)?;
            if cli.json {
                println!("{v}");
            } else {
                print_verdict(&v);
            }
        }
        Cmd::Verify { file } => {
            let bytes =
                std::fs::read(&file).with_context(|| format!("reading {}", file.display()))?;
            let digest = CryptoSuite::Ed25519Sha256.file_digest(&bytes);
            let list = node.attestations_by_digest(&digest)?;
            if cli.json {
                println!("{list}");
                return Ok(());
            }
            let items = list.as_array().cloned().unwrap_or_default();
            if items.is_empty() {
                println!("NOT VALID: no attestation on the ledger for SHA-256 {digest}");
                std::process::exit(2);
            }
            println!("file {} — SHA-256 {digest}", file.display());
            for v in &items {
                print_verdict(v);
            }
        }
    }
    Ok(())
}
