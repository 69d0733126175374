//! `vault`: the 数字保险箱 command line for departments, enterprises and verifiers.
//!
//! Readable output by default, `--json` for scripts. Exit codes: 0 done; 1 an error (the node's
//! error code and message are printed) or, for `bulk-issue`, rows that failed; 2 a verification
//! (`verify`, `show`, `fetch`) says not valid — offline, a bundle that does not verify too; 3
//! `monitor` raised an alarm.

mod cli;

use std::path::PathBuf;

use anyhow::Result;
use clap::{ArgAction, ArgGroup, Args, Parser, Subcommand};
use serde_json::json;
use vault_client::{keyfile, Client, ClientError};
use vault_protocol::access::Requester;
use vault_protocol::crypto::{Digest, PublicKey};
use vault_protocol::ids::{AttestationId, DepartmentId, DocTypeCode, GrantId, Timestamp};
use vault_protocol::tx::{Claim, StatusAction};
use vault_protocol::uscc::Uscc;

use cli::{Ctx, Exit};

/// The node asked when no --node (nor VAULT_NODE) is given.
const DEFAULT_NODE: &str = "http://127.0.0.1:8700";

#[derive(Parser)]
#[command(name = "vault", version, about = "数字保险箱 command line")]
struct Cli {
    /// The department node's API (`monitor` follows several: repeat --node).
    #[arg(
        long,
        global = true,
        env = "VAULT_NODE",
        default_value = DEFAULT_NODE,
        action = ArgAction::Append
    )]
    node: Vec<String>,
    /// Print JSON instead of readable text (errors too, on standard error).
    #[arg(long, global = true)]
    json: bool,
    #[command(subcommand)]
    command: Cmd,
}

/// Suspend, reinstate or revoke.
#[derive(Args)]
struct StatusArgs {
    /// The attestation id.
    attestation: AttestationId,
    /// The issuing department's signing key file.
    #[arg(long)]
    key: PathBuf,
    /// The issuing department's id.
    #[arg(long)]
    department: DepartmentId,
    /// A machine-readable reason code from the department's catalogue (e.g. 1 = dormant).
    #[arg(long, default_value_t = 0)]
    reason_code: u16,
    /// A note for people (at most 256 bytes).
    #[arg(long, default_value = "")]
    note: String,
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
    /// Department: issue an attestation for a file (uploading the file to the node's vault first).
    Issue(cli::department::IssueArgs),
    /// Department: suspend an attestation (e.g. while the enterprise is dormant).
    Suspend(StatusArgs),
    /// Department: reinstate a suspended attestation.
    Reinstate(StatusArgs),
    /// Department: revoke an attestation, for good.
    Revoke(StatusArgs),
    /// Department or application: fetch a document an enterprise granted you, checked against
    /// the ledger.
    #[command(group(ArgGroup::new("reader").required(true).args(["department", "application"])))]
    Fetch {
        /// The attestation whose document to fetch.
        attestation: AttestationId,
        /// The reader's key file: the department's signing key, or the application's key.
        #[arg(long)]
        key: PathBuf,
        /// Read as this department.
        #[arg(long)]
        department: Option<DepartmentId>,
        /// Read as the application whose key is --key.
        #[arg(long)]
        application: bool,
        /// The purpose code of the grant the read is under.
        #[arg(long)]
        purpose: String,
        /// Where to write the document.
        #[arg(long)]
        out: PathBuf,
    },
    /// Enterprise (or department): store a file in the node's vault.
    #[command(group(ArgGroup::new("owner").required(true).args(["uscc", "department"])))]
    Upload {
        /// The file.
        file: PathBuf,
        /// The key file: the enterprise's key (or the department's signing key).
        #[arg(long)]
        key: PathBuf,
        /// Upload as this enterprise.
        #[arg(long)]
        uscc: Option<Uscc>,
        /// Upload as this department.
        #[arg(long)]
        department: Option<DepartmentId>,
        /// The media type to store (default: from the file's extension).
        #[arg(long)]
        media_type: Option<String>,
    },
    /// Enterprise: grant a department or an application access to documents, for a purpose.
    #[command(group(ArgGroup::new("grantee").required(true).args(["to_department", "to_application"])))]
    #[command(group(ArgGroup::new("scope").required(true).args(["types", "attestations"])))]
    Grant {
        /// The enterprise's key file.
        #[arg(long)]
        key: PathBuf,
        /// The enterprise's USCC.
        #[arg(long)]
        uscc: Uscc,
        /// Grant to this department.
        #[arg(long)]
        to_department: Option<DepartmentId>,
        /// Grant to the application with this public key (hex).
        #[arg(long)]
        to_application: Option<PublicKey>,
        /// Document types covered, comma-separated (every attestation of these types).
        #[arg(long, value_delimiter = ',')]
        types: Vec<DocTypeCode>,
        /// Attestations covered, comma-separated ids.
        #[arg(long, value_delimiter = ',')]
        attestations: Vec<AttestationId>,
        /// The procedure's code (the reader must name it).
        #[arg(long)]
        purpose_code: String,
        /// The procedure's name, e.g. 建筑业企业资质申请.
        #[arg(long)]
        purpose: String,
        /// Days until the grant lapses (at most 366).
        #[arg(long)]
        days: u64,
    },
    /// Enterprise: withdraw a grant.
    Withdraw {
        /// The grant id.
        grant: GrantId,
        /// The enterprise's key file.
        #[arg(long)]
        key: PathBuf,
        /// The enterprise's USCC.
        #[arg(long)]
        uscc: Uscc,
    },
    /// List grants: an enterprise's, those to a department, or one.
    #[command(group(ArgGroup::new("whose").required(true).args(["uscc", "department", "id"])))]
    Grants {
        /// An enterprise's grants.
        #[arg(long)]
        uscc: Option<Uscc>,
        /// The grants to a department.
        #[arg(long)]
        department: Option<DepartmentId>,
        /// One grant.
        #[arg(long)]
        id: Option<GrantId>,
    },
    /// Enterprise: every recorded read of its documents — who, what, when, for which purpose.
    Receipts {
        /// The enterprise's USCC.
        #[arg(long)]
        uscc: Uscc,
    },
    /// Verify a file (or a SHA-256) against the ledger: a verdict for every attestation of it.
    /// With --offline, against a proof bundle and the genesis file alone, with no network.
    Verify {
        /// The file (sent to the node, which hashes it; hashed here with --offline, where it may
        /// be left out to check the bundle alone).
        #[arg(required_unless_present_any = ["digest", "offline"], conflicts_with = "digest")]
        file: Option<PathBuf>,
        /// The file's SHA-256 (hex), instead of the file.
        #[arg(long)]
        digest: Option<Digest>,
        /// Check against this attestation only (online; a bundle is of one attestation).
        #[arg(long, conflicts_with = "offline")]
        attestation: Option<AttestationId>,
        /// Verify with a proof bundle (`vault bundle`) and the genesis file: no network, no node
        /// trusted. A bundle that does not verify is NOT VALID (exit code 2).
        #[arg(long, requires_all = ["genesis", "bundle"])]
        offline: bool,
        /// The chain's genesis file (with --offline).
        #[arg(long, requires = "offline", value_name = "FILE")]
        genesis: Option<PathBuf>,
        /// The proof bundle, binary or JSON (with --offline).
        #[arg(long, requires = "offline", value_name = "FILE")]
        bundle: Option<PathBuf>,
        /// Refuse a bundle whose block is older than this (with --offline).
        #[arg(long, requires = "offline", value_name = "SECONDS")]
        max_age: Option<u64>,
        /// A governance proof (`vault governance-proof`): departments admitted, keys rotated and
        /// types authorised since the genesis, proven against a finalized block (with --offline).
        #[arg(long, requires = "offline", value_name = "FILE")]
        governance: Option<PathBuf>,
    },
    /// Fetch the governance state with its proof from the node, for `verify --offline
    /// --governance`: the canonical binary form, or JSON with --json.
    GovernanceProof {
        /// Where to write it (default: standard output).
        #[arg(short = 'o', long = "out", value_name = "FILE")]
        out: Option<PathBuf>,
    },
    /// Fetch an attestation's proof bundle from the node, to verify later with `verify
    /// --offline`: the canonical binary form, or JSON with --json. Its size goes to standard
    /// error.
    Bundle {
        /// The attestation id.
        id: AttestationId,
        /// Where to write it (default: standard output).
        #[arg(short = 'o', long = "out", value_name = "FILE")]
        out: Option<PathBuf>,
    },
    /// Follow nodes' cosigned checkpoints and raise an alarm line (`ALARM <KIND> <node>
    /// <details>`) on a split view, a stall, an unreachable node or a bad checkpoint.
    ///
    /// Each round asks every --node for its checkpoint (GET /checkpoint) and verifies its
    /// cosignatures against the genesis. Two verified checkpoints — one node's over time, or two
    /// nodes' — that cannot both be true are a SPLIT_VIEW (checked with a consistency proof from
    /// the node holding the larger log); a height that has not advanced for --stall-after
    /// seconds is STALLED; a node that cannot be asked is UNREACHABLE; a checkpoint that does not
    /// verify is BAD_CHECKPOINT, with its error code. `ok <node> height H size S` is printed when
    /// a node's checkpoint advances. With --json, one JSON object per line.
    ///
    /// Exit codes: 0 no alarm was raised during the run; 3 at least one alarm was raised; 1 an
    /// error (e.g. an unreadable genesis file).
    Monitor {
        /// The chain's genesis file (whose members must cosign the checkpoints).
        #[arg(long, value_name = "FILE")]
        genesis: PathBuf,
        /// Milliseconds between rounds.
        #[arg(long, default_value_t = 1000)]
        interval_ms: u64,
        /// Seconds without a new block height before a node is STALLED.
        #[arg(long, default_value_t = 30, value_name = "SECONDS")]
        stall_after: u64,
        /// Rounds to run (0 = until interrupted).
        #[arg(long, default_value_t = 0)]
        rounds: u64,
    },
    /// Show an attestation with its status history and the verdict now.
    Show {
        /// The attestation id.
        id: AttestationId,
    },
    /// Department: issue attestations from a CSV manifest (uscc,doc_type,file,valid_from,
    /// valid_days,claims), resumably.
    BulkIssue {
        /// The department's signing key file.
        #[arg(long)]
        key: PathBuf,
        /// The department id.
        #[arg(long)]
        department: DepartmentId,
        /// The CSV manifest.
        #[arg(long)]
        manifest: PathBuf,
        /// Where the manifest's files are (default: the manifest's directory).
        #[arg(long)]
        files: Option<PathBuf>,
        /// The state file that makes the run resumable (default: M.state.json beside M.csv).
        #[arg(long)]
        state: Option<PathBuf>,
        /// Transactions per batch.
        #[arg(long, default_value_t = 200, value_parser = clap::value_parser!(u64).range(1..=10_000))]
        batch: u64,
    },
    /// Measure a local network: committed attestations/s, commit latency, the verify API,
    /// catch-up and disk per attestation, each against this machine's ed25519 ceiling.
    Bench {
        /// Departments in the network the bench starts (with `vault-node testnet`).
        #[arg(long, default_value_t = 4)]
        nodes: usize,
        /// Target a running testnet by its testnet.json instead of starting one.
        #[arg(long)]
        target: Option<PathBuf>,
        /// Attestations per throughput run.
        #[arg(long, default_value_t = 20_000)]
        attestations: usize,
        /// Throughput runs; the median is reported.
        #[arg(long, default_value_t = 3)]
        runs: usize,
        /// Attestations committed while one node is down, then caught up (0 skips).
        #[arg(long, default_value_t = 100_000)]
        catch_up: usize,
        /// Seconds of verify-API load.
        #[arg(long, default_value_t = 5.0)]
        verify_seconds: f64,
        /// Seconds of load per latency measurement.
        #[arg(long, default_value_t = 5.0)]
        latency_seconds: f64,
        /// Concurrent HTTP clients.
        #[arg(long, default_value_t = 16)]
        concurrency: usize,
        /// First port of the network the bench starts (HTTP base+i, p2p base+100+i).
        #[arg(long, default_value_t = 18710)]
        base_port: u16,
    },
}

pub(crate) fn parse_claim_arg(s: &str) -> Result<Claim, String> {
    vault_client::compose::parse_claim(s).map_err(|e| e.to_string())
}

pub(crate) fn parse_date_arg(s: &str) -> Result<Timestamp, String> {
    vault_client::compose::parse_date(s).map_err(|e| e.to_string())
}

fn main() {
    // Usage errors exit with 1, like every other error: 2 means "not valid" here.
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(e) => {
            let _ = e.print();
            std::process::exit(if e.use_stderr() { 1 } else { 0 });
        }
    };
    let json = cli.json;
    let code = match run(cli) {
        Ok(exit) => exit.code(),
        Err(e) => {
            report(&e, json);
            1
        }
    };
    std::process::exit(code);
}

/// Prints an error: readable, or as `{"error": {"code", "message", "status"}}` with `--json`.
fn report(e: &anyhow::Error, json: bool) {
    if json {
        let client = e.downcast_ref::<ClientError>();
        let code = client.and_then(ClientError::code).unwrap_or("error");
        eprintln!(
            "{}",
            json!({"error": {
                "code": code,
                "message": format!("{e:#}"),
                "status": client.and_then(ClientError::status),
            }})
        );
    } else {
        eprintln!("error: {e:#}");
    }
}

fn status_change(ctx: &Ctx, action: StatusAction, a: StatusArgs) -> Result<Exit> {
    cli::department::set_status(
        ctx,
        action,
        a.attestation,
        &a.key,
        a.department,
        a.reason_code,
        &a.note,
    )
}

fn run(cli: Cli) -> Result<Exit> {
    let Cli {
        node: nodes,
        json,
        command,
    } = cli;
    if nodes.len() > 1 && !matches!(command, Cmd::Monitor { .. }) {
        anyhow::bail!(
            "--node is given {} times; only `monitor` follows several nodes",
            nodes.len()
        );
    }
    let ctx = Ctx {
        node: Client::new(nodes.first().map_or(DEFAULT_NODE, String::as_str)),
        json,
    };
    match command {
        Cmd::Monitor {
            genesis,
            interval_ms,
            stall_after,
            rounds,
        } => cli::monitor::run(cli::monitor::MonitorArgs {
            genesis,
            nodes,
            interval_ms,
            stall_after_s: stall_after,
            rounds,
            json,
        }),
        Cmd::Keygen { out, role } => {
            let k = keyfile::generate().map_err(|e| anyhow::anyhow!("generating a key: {e}"))?;
            keyfile::write(&out, &k, &role)?;
            if ctx.json {
                cli::output::json(&json!({"public_key": k.public(), "file": out, "role": role}));
            } else {
                println!("{}", k.public());
            }
            Ok(Exit::Ok)
        }
        Cmd::Status => cli::verifier::status(&ctx),
        Cmd::Bench {
            nodes,
            target,
            attestations,
            runs,
            catch_up,
            verify_seconds,
            latency_seconds,
            concurrency,
            base_port,
        } => cli::bench::run(cli::bench::BenchArgs {
            nodes,
            target,
            attestations,
            runs: runs.max(1),
            catch_up,
            verify_seconds,
            latency_seconds,
            concurrency,
            base_port,
            json: ctx.json,
        }),
        Cmd::Enrol {
            key,
            department,
            uscc,
            enterprise_key,
        } => cli::department::enrol(&ctx, &key, department, uscc, enterprise_key),
        Cmd::Issue(a) => cli::department::issue(&ctx, a),
        Cmd::Suspend(a) => status_change(&ctx, StatusAction::Suspend, a),
        Cmd::Reinstate(a) => status_change(&ctx, StatusAction::Reinstate, a),
        Cmd::Revoke(a) => status_change(&ctx, StatusAction::Revoke, a),
        Cmd::Fetch {
            attestation,
            key,
            department,
            application: _,
            purpose,
            out,
        } => cli::department::fetch(&ctx, attestation, &key, department, &purpose, &out),
        Cmd::Upload {
            file,
            key,
            uscc,
            department,
            media_type,
        } => {
            let requester = match (uscc, department) {
                (Some(u), _) => Requester::Enterprise(u),
                (None, Some(d)) => Requester::Department(d),
                (None, None) => anyhow::bail!("give --uscc or --department"),
            };
            cli::enterprise::upload(&ctx, &file, &key, requester, media_type.as_deref())
        }
        Cmd::Grant {
            key,
            uscc,
            to_department,
            to_application,
            types,
            attestations,
            purpose_code,
            purpose,
            days,
        } => cli::enterprise::grant(
            &ctx,
            cli::enterprise::GrantArgs {
                key: &key,
                uscc,
                to_department,
                to_application,
                types,
                attestations,
                purpose_code: &purpose_code,
                purpose: &purpose,
                days,
            },
        ),
        Cmd::Withdraw { grant, key, uscc } => cli::enterprise::withdraw(&ctx, grant, &key, uscc),
        Cmd::Grants {
            uscc,
            department,
            id,
        } => cli::enterprise::grants(&ctx, uscc, department, id),
        Cmd::Receipts { uscc } => cli::enterprise::receipts(&ctx, uscc),
        Cmd::Verify {
            file,
            digest,
            offline: true,
            genesis: Some(genesis),
            bundle: Some(bundle),
            max_age,
            governance,
            ..
        } => cli::verifier::verify_offline(
            &ctx,
            cli::verifier::OfflineArgs {
                genesis: &genesis,
                bundle: &bundle,
                file: file.as_deref(),
                digest,
                max_age_s: max_age,
                governance: governance.as_deref(),
            },
        ),
        Cmd::Verify { offline: true, .. } => {
            anyhow::bail!("--offline needs --genesis and --bundle")
        }
        Cmd::Verify {
            file,
            digest,
            attestation,
            ..
        } => cli::verifier::verify(&ctx, file.as_deref(), digest, attestation),
        Cmd::Bundle { id, out } => cli::verifier::bundle(&ctx, id, out.as_deref()),
        Cmd::GovernanceProof { out } => cli::verifier::governance_proof(&ctx, out.as_deref()),
        Cmd::Show { id } => cli::verifier::show(&ctx, id),
        Cmd::BulkIssue {
            key,
            department,
            manifest,
            files,
            state,
            batch,
        } => cli::bulk::bulk_issue(
            &ctx,
            cli::bulk::BulkArgs {
                key,
                department,
                manifest,
                files,
                state,
                batch: usize::try_from(batch).unwrap_or(200),
            },
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::CommandFactory;

    #[test]
    fn command_line_is_consistent() {
        Cli::command().debug_assert();
    }

    #[test]
    fn exclusive_choices_are_enforced() {
        let parse = |args: &[&str]| Cli::try_parse_from(args.iter().copied());
        let a = "0".repeat(64);
        // A reader is a department or an application, not both, not neither.
        assert!(parse(&[
            "vault",
            "fetch",
            &a,
            "--key",
            "k",
            "--department",
            "tax",
            "--purpose",
            "P",
            "--out",
            "o"
        ])
        .is_ok());
        assert!(parse(&[
            "vault",
            "fetch",
            &a,
            "--key",
            "k",
            "--purpose",
            "P",
            "--out",
            "o"
        ])
        .is_err());
        assert!(parse(&[
            "vault",
            "fetch",
            &a,
            "--key",
            "k",
            "--department",
            "tax",
            "--application",
            "--purpose",
            "P",
            "--out",
            "o"
        ])
        .is_err());
        // Verify takes a file or a digest.
        assert!(parse(&["vault", "verify", "f.pdf"]).is_ok());
        assert!(parse(&["vault", "verify", "--digest", &a]).is_ok());
        assert!(parse(&["vault", "verify"]).is_err());
        assert!(parse(&["vault", "verify", "f.pdf", "--digest", &a]).is_err());
        // A grant has one grantee and one kind of scope.
        let base = [
            "vault",
            "grant",
            "--key",
            "k",
            "--uscc",
            "91350100M000100Y43",
            "--purpose-code",
            "P",
            "--purpose",
            "x",
            "--days",
            "30",
        ];
        let with = |extra: &[&str]| {
            let mut v = base.to_vec();
            v.extend_from_slice(extra);
            Cli::try_parse_from(v)
        };
        assert!(with(&["--to-department", "housing", "--types", "A_B,C_D"]).is_ok());
        assert!(with(&["--types", "A_B"]).is_err());
        assert!(with(&["--to-department", "housing"]).is_err());
        assert!(with(&[
            "--to-department",
            "housing",
            "--types",
            "A_B",
            "--attestations",
            &a
        ])
        .is_err());
        // A bad USCC is refused with the rule it breaks.
        let err = match parse(&["vault", "receipts", "--uscc", "91350100M000100Y44"]) {
            Err(e) => e.to_string(),
            Ok(_) => String::new(),
        };
        assert!(err.contains("check character"), "{err}");
    }

    #[test]
    fn offline_verification_needs_a_genesis_and_a_bundle_and_no_node() {
        let parse = |args: &[&str]| Cli::try_parse_from(args.iter().copied());
        let a = "0".repeat(64);
        let offline = [
            "vault",
            "verify",
            "--offline",
            "--genesis",
            "g.json",
            "--bundle",
            "b.bin",
        ];
        let with = |extra: &[&str]| {
            let mut v = offline.to_vec();
            v.extend_from_slice(extra);
            Cli::try_parse_from(v)
        };
        // The bundle alone, with a file, with a digest, with a freshness limit.
        let Ok(Cli {
            command:
                Cmd::Verify {
                    offline: true,
                    genesis: Some(g),
                    bundle: Some(b),
                    file: None,
                    max_age: None,
                    ..
                },
            ..
        }) = with(&[])
        else {
            panic!("verify --offline did not parse");
        };
        assert_eq!((g.to_str(), b.to_str()), (Some("g.json"), Some("b.bin")));
        let Ok(Cli {
            command:
                Cmd::Verify {
                    file: Some(f),
                    max_age: Some(3600),
                    ..
                },
            ..
        }) = with(&["licence.pdf", "--max-age", "3600"])
        else {
            panic!("verify --offline FILE --max-age did not parse");
        };
        assert_eq!(f.to_str(), Some("licence.pdf"));
        assert!(with(&["--digest", &a]).is_ok());
        // A file and a digest are still exclusive; a bundle is of one attestation.
        assert!(with(&["f.pdf", "--digest", &a]).is_err());
        assert!(with(&["--attestation", &a]).is_err());
        assert!(with(&["--max-age", "soon"]).is_err());
        // --offline needs both files; they, and --max-age, need --offline.
        assert!(parse(&["vault", "verify", "--offline", "--genesis", "g"]).is_err());
        assert!(parse(&["vault", "verify", "--offline", "--bundle", "b"]).is_err());
        assert!(parse(&["vault", "verify", "--offline", "f.pdf"]).is_err());
        assert!(parse(&["vault", "verify", "f.pdf", "--bundle", "b"]).is_err());
        assert!(parse(&["vault", "verify", "f.pdf", "--genesis", "g"]).is_err());
        assert!(parse(&["vault", "verify", "f.pdf", "--max-age", "60"]).is_err());
        // Online, a file or a digest is still required.
        assert!(parse(&["vault", "verify", "--attestation", &a]).is_err());
    }

    #[test]
    fn bundle_and_monitor_parse() {
        let a = "ab".repeat(32);
        let Ok(Cli {
            command: Cmd::Bundle { id, out: Some(out) },
            json: true,
            ..
        }) = Cli::try_parse_from(["vault", "bundle", &a, "-o", "x.bundle", "--json"])
        else {
            panic!("bundle did not parse");
        };
        assert_eq!(id.to_string(), a);
        assert_eq!(out.to_str(), Some("x.bundle"));
        assert!(matches!(
            Cli::try_parse_from(["vault", "bundle", &a]),
            Ok(Cli {
                command: Cmd::Bundle { out: None, .. },
                ..
            })
        ));
        assert!(Cli::try_parse_from(["vault", "bundle", "not-an-id"]).is_err());
        assert!(Cli::try_parse_from(["vault", "bundle"]).is_err());

        // Several --node for a monitor, defaults for the rest.
        let Ok(Cli {
            node,
            command:
                Cmd::Monitor {
                    genesis,
                    interval_ms: 1000,
                    stall_after: 30,
                    rounds: 0,
                },
            ..
        }) = Cli::try_parse_from([
            "vault",
            "monitor",
            "--genesis",
            "g.json",
            "--node",
            "http://a:8710",
            "--node",
            "http://b:8711",
        ])
        else {
            panic!("monitor did not parse");
        };
        assert_eq!(genesis.to_str(), Some("g.json"));
        assert_eq!(node, ["http://a:8710", "http://b:8711"]);
        let Ok(Cli {
            command:
                Cmd::Monitor {
                    interval_ms: 250,
                    stall_after: 5,
                    rounds: 3,
                    ..
                },
            ..
        }) = Cli::try_parse_from([
            "vault",
            "monitor",
            "--genesis",
            "g",
            "--interval-ms",
            "250",
            "--stall-after",
            "5",
            "--rounds",
            "3",
        ])
        else {
            panic!("monitor options did not parse");
        };
        assert!(Cli::try_parse_from(["vault", "monitor"]).is_err());
        // One node for every other command, the default when none is given.
        let Ok(cli) = Cli::try_parse_from(["vault", "status"]) else {
            panic!("status did not parse");
        };
        if std::env::var_os("VAULT_NODE").is_none() {
            assert_eq!(cli.node, [DEFAULT_NODE]);
        }
        let Ok(cli) = Cli::try_parse_from([
            "vault", "--node", "http://a", "--node", "http://b", "status",
        ]) else {
            panic!("two nodes did not parse");
        };
        let err = run(cli).unwrap_err().to_string();
        assert!(err.contains("only `monitor`"), "{err}");
        // The exit code of an alarm, as the help says.
        assert_eq!(Exit::Alarm.code(), 3);
        let mut cmd = Cli::command();
        let help = cmd
            .find_subcommand_mut("monitor")
            .map(|m| m.render_long_help().to_string())
            .unwrap_or_default();
        assert!(help.contains("3 at least one alarm was raised"), "{help}");
    }

    #[test]
    fn claims_and_dates_parse_on_the_command_line() {
        let cli = Cli::try_parse_from([
            "vault",
            "issue",
            "--key",
            "k",
            "--department",
            "samr",
            "--uscc",
            "91350100M000100Y43",
            "--type",
            "BUSINESS_LICENCE",
            "--file",
            "f.pdf",
            "--claim",
            "licence_no=350100200012345",
            "--valid-from",
            "2024-03-01",
        ]);
        let Ok(Cli {
            command: Cmd::Issue(a),
            ..
        }) = cli
        else {
            panic!("issue did not parse");
        };
        assert_eq!(a.claims[0].key.as_str(), "licence_no");
        assert_eq!(
            a.valid_from.map(|t| t.to_string()).as_deref(),
            Some("2024-03-01T00:00:00.000Z")
        );
    }
}
