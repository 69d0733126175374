//! The `vault` command line against a real four-node network: the README's tour of stories 1–4
//! (keygen, enrol, issue with a file, grant, fetch across departments, receipts, verify, suspend)
//! and a resumable bulk issue with failing rows — the exact commands a newcomer types.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use anyhow::{bail, ensure, Context, Result};
use serde_json::Value;
use vault_tests::Cluster;

const LONG: Duration = Duration::from_secs(120);
const USCC: &str = "91350100M000100Y43";

fn vault_binary() -> Result<PathBuf> {
    let node = vault_tests::node_binary()?;
    let bin = node.with_file_name("vault");
    ensure!(
        bin.exists(),
        "{} not built (run the workspace build)",
        bin.display()
    );
    Ok(bin)
}

struct Cli {
    bin: PathBuf,
    dir: PathBuf,
}

struct Out {
    code: i32,
    stdout: String,
    stderr: String,
}

impl Out {
    fn json(&self) -> Result<Value> {
        serde_json::from_str(self.stdout.trim())
            .with_context(|| format!("not JSON: {}\n{}", self.stdout, self.stderr))
    }
}

impl Cli {
    fn run(&self, node: &str, args: &[&str]) -> Result<Out> {
        let out = Command::new(&self.bin)
            .current_dir(&self.dir)
            .env("VAULT_NODE", node)
            .args(args)
            .output()?;
        Ok(Out {
            code: out.status.code().unwrap_or(-1),
            stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
        })
    }

    fn ok(&self, node: &str, args: &[&str]) -> Result<Out> {
        let out = self.run(node, args)?;
        if out.code != 0 {
            bail!(
                "vault {} exited {}:\n{}\n{}",
                args.join(" "),
                out.code,
                out.stdout,
                out.stderr
            );
        }
        Ok(out)
    }
}

fn key_of(c: &Cluster, i: usize) -> String {
    c.dir
        .path()
        .join(c.nodes[i].department.as_str())
        .join("keys/signing.json")
        .display()
        .to_string()
}

fn write(dir: &Path, name: &str, bytes: &[u8]) -> Result<()> {
    Ok(std::fs::write(dir.join(name), bytes)?)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_readme_tour_with_the_cli() -> Result<()> {
    let c = Cluster::start(4)?;
    for i in 0..4 {
        c.wait_height(i, 1, LONG).await?;
    }
    let work = tempfile::tempdir()?;
    let cli = Cli {
        bin: vault_binary()?,
        dir: work.path().to_path_buf(),
    };
    let samr = c.nodes[0].url.clone();
    let tax = c.nodes[1].url.clone();
    let housing = c.nodes[3].url.clone();
    let (samr_key, tax_key, housing_key) = (key_of(&c, 0), key_of(&c, 1), key_of(&c, 3));
    let mut licence = b"%PDF-1.7\n% licence\n".to_vec();
    licence.extend(std::iter::repeat_n(b'x', 2_500_000));
    write(work.path(), "licence.pdf", &licence)?;

    // Story 1.
    let public = cli
        .ok(&samr, &["keygen", "--out", "acme.key"])?
        .stdout
        .trim()
        .to_string();
    cli.ok(
        &samr,
        &[
            "enrol",
            "--key",
            &samr_key,
            "--department",
            "samr",
            "--uscc",
            USCC,
            "--enterprise-key",
            &public,
        ],
    )?;
    let bad = cli.run(
        &samr,
        &[
            "enrol",
            "--key",
            &samr_key,
            "--department",
            "samr",
            "--uscc",
            "91350100M000100Y44",
            "--enterprise-key",
            &public,
        ],
    )?;
    ensure!(
        bad.code != 0 && bad.stderr.contains("check character"),
        "an invalid USCC names the rule: {}",
        bad.stderr
    );
    let issued = cli
        .ok(
            &samr,
            &[
                "--json",
                "issue",
                "--key",
                &samr_key,
                "--department",
                "samr",
                "--uscc",
                USCC,
                "--type",
                "BUSINESS_LICENCE",
                "--file",
                "licence.pdf",
                "--claim",
                "licence_no=350100200012345",
            ],
        )?
        .json()?;
    let attestation = issued["attestation"]
        .as_str()
        .context("attestation id")?
        .to_string();
    ensure!(issued["status"] == "committed", "{issued}");

    // Story 2.
    let granted = cli
        .ok(
            &samr,
            &[
                "--json",
                "grant",
                "--key",
                "acme.key",
                "--uscc",
                USCC,
                "--to-department",
                "housing",
                "--types",
                "BUSINESS_LICENCE",
                "--purpose-code",
                "JZ-ZZ-001",
                "--purpose",
                "建筑业企业资质申请",
                "--days",
                "30",
            ],
        )?
        .json()?;
    let height = granted["height"].as_u64().context("grant height")?;
    c.wait_height(3, height, LONG).await?;

    // Story 3: through housing's own node, fetched from samr's.
    let fetched = cli.ok(
        &housing,
        &[
            "fetch",
            &attestation,
            "--key",
            &housing_key,
            "--department",
            "housing",
            "--purpose",
            "JZ-ZZ-001",
            "--out",
            "got.pdf",
        ],
    )?;
    ensure!(
        std::fs::read(work.path().join("got.pdf"))? == licence,
        "the same file"
    );
    ensure!(
        fetched.stdout.contains("samr"),
        "says where it came from: {}",
        fetched.stdout
    );
    let refused = cli.run(
        &tax,
        &[
            "fetch",
            &attestation,
            "--key",
            &tax_key,
            "--department",
            "tax",
            "--purpose",
            "JZ-ZZ-001",
            "--out",
            "nope.pdf",
        ],
    )?;
    ensure!(
        refused.code != 0
            && refused.stderr.contains("no_grant")
            && !work.path().join("nope.pdf").exists(),
        "tax has no grant: {}",
        refused.stderr
    );
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let r = cli
            .ok(&samr, &["--json", "receipts", "--uscc", USCC])?
            .json()?;
        if let Some(first) = r.as_array().and_then(|a| a.first()) {
            ensure!(
                first["read"]["reader"]["department"] == "housing",
                "{first}"
            );
            break;
        }
        ensure!(Instant::now() < deadline, "no receipt for the read");
        tokio::time::sleep(Duration::from_millis(300)).await;
    }

    // Story 4: a bank verifies the file at another department's node; a changed byte fails.
    let v = cli.ok(&tax, &["verify", "licence.pdf"])?;
    ensure!(
        v.stdout.contains("VALID") && !v.stdout.contains("NOT VALID"),
        "{}",
        v.stdout
    );
    let mut changed = licence.clone();
    changed[100] ^= 1;
    write(work.path(), "changed.pdf", &changed)?;
    let v = cli.run(
        &tax,
        &["verify", "changed.pdf", "--attestation", &attestation],
    )?;
    ensure!(
        v.code == 2 && v.stdout.contains("digest_mismatch"),
        "{}",
        v.stdout
    );

    // Story 4b: the bank fetches a proof bundle once and verifies offline with the genesis alone.
    let genesis = c.dir.path().join("genesis.json").display().to_string();
    let b = cli.ok(&housing, &["bundle", &attestation, "-o", "licence.bundle"])?;
    ensure!(b.stderr.contains("bytes"), "{}", b.stderr);
    let offline = [
        "--node",
        "http://127.0.0.1:1",
        "verify",
        "--offline",
        "--genesis",
        &genesis,
        "--bundle",
        "licence.bundle",
        "--max-age",
        "600",
    ];
    let v = cli.ok(&samr, &[&offline[..], &["licence.pdf"]].concat())?;
    ensure!(
        v.stdout.contains("VALID") && !v.stdout.contains("NOT VALID") && v.stdout.contains("block"),
        "{}",
        v.stdout
    );
    // With the governance proven too (departments and keys since the genesis).
    let g = cli.ok(&tax, &["governance-proof", "-o", "gov.proof"])?;
    ensure!(g.stderr.contains("governance proof"), "{}", g.stderr);
    let v = cli.ok(
        &samr,
        &[&offline[..], &["--governance", "gov.proof", "licence.pdf"]].concat(),
    )?;
    ensure!(
        v.stdout.contains("VALID") && !v.stdout.contains("NOT VALID"),
        "{}",
        v.stdout
    );
    let v = cli.run(&samr, &[&offline[..], &["changed.pdf"]].concat())?;
    ensure!(
        v.code == 2 && v.stdout.contains("digest_mismatch"),
        "{}",
        v.stdout
    );
    let mut bundle = std::fs::read(work.path().join("licence.bundle"))?;
    let last = bundle.len() - 1;
    bundle[last] ^= 1; // a bit of the last certificate signature
    write(work.path(), "forged.bundle", &bundle)?;
    let forged = [
        "verify",
        "--offline",
        "--genesis",
        &genesis,
        "--bundle",
        "forged.bundle",
        "licence.pdf",
    ];
    let v = cli.run(&samr, &forged)?;
    ensure!(
        v.code == 2 && v.stdout.contains("certificate_bad_signature"),
        "{}\n{}",
        v.stdout,
        v.stderr
    );

    // Story 5 (the status part): suspended → every verifier says so, with the reason.
    let s = cli
        .ok(
            &samr,
            &[
                "--json",
                "suspend",
                &attestation,
                "--key",
                &samr_key,
                "--department",
                "samr",
                "--note",
                "企业休眠",
            ],
        )?
        .json()?;
    c.wait_height(1, s["height"].as_u64().context("height")?, LONG)
        .await?;
    let v = cli.run(&tax, &["verify", "licence.pdf"])?;
    ensure!(
        v.code == 2 && v.stdout.contains("[suspended]"),
        "{}",
        v.stdout
    );

    // Bulk issue: failing rows reported, the rest issued; a rerun after fixing skips what is done.
    std::fs::create_dir(work.path().join("bulk"))?;
    for i in 1..=3 {
        write(
            &work.path().join("bulk"),
            &format!("l{i}.pdf"),
            format!("licence {i}").as_bytes(),
        )?;
    }
    write(
        &work.path().join("bulk"),
        "manifest.csv",
        format!(
            "uscc,doc_type,file,valid_from,valid_days,claims\n\
             {USCC},BUSINESS_LICENCE,l1.pdf,,,licence_no=1\n\
             91350100M000100Y44,BUSINESS_LICENCE,l2.pdf,,,licence_no=2\n\
             {USCC},BUSINESS_LICENCE,l3.pdf,2025-01-01,,licence_no=3;name=示例\n\
             {USCC},TAX_CREDIT_RATING,l2.pdf,,365,grade=A\n\
             {USCC},BUSINESS_LICENCE,missing.pdf,,,\n"
        )
        .as_bytes(),
    )?;
    let args = [
        "--json",
        "bulk-issue",
        "--key",
        &samr_key,
        "--department",
        "samr",
        "--manifest",
        "bulk/manifest.csv",
    ];
    let first = cli.run(&samr, &args)?;
    ensure!(
        first.code == 1,
        "some rows fail: {} {}",
        first.stdout,
        first.stderr
    );
    let s = first.json()?;
    let codes: Vec<&str> = s["failures"]
        .as_array()
        .context("failures")?
        .iter()
        .filter_map(|f| f["code"].as_str())
        .collect();
    ensure!(s["committed"] == 2 && s["failed"] == 3, "{s}");
    ensure!(
        codes.contains(&"uscc_check_character_mismatch")
            && codes.contains(&"issuer_not_authorised")
            && codes.contains(&"file_not_found"),
        "each failing row with its reason: {s}"
    );
    write(&work.path().join("bulk"), "missing.pdf", b"licence 5")?;
    let second = cli.run(&samr, &args)?.json()?;
    ensure!(
        second["committed"] == 1 && second["skipped"] == 2 && second["failed"] == 2,
        "the rerun skips the done rows and issues the fixed one: {second}"
    );
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_monitor_flags_a_split_view_between_two_nodes() -> Result<()> {
    // Two networks from one genesis and the same keys: every validator signs two histories.
    let a = Cluster::start(4)?;
    let b = a.twin()?;
    for i in 0..4 {
        a.wait_height(i, 2, LONG).await?;
        b.wait_height(i, 2, LONG).await?;
    }
    let work = tempfile::tempdir()?;
    let cli = Cli {
        bin: vault_binary()?,
        dir: work.path().to_path_buf(),
    };
    let genesis = a.dir.path().join("genesis.json").display().to_string();
    let monitor = |nodes: &[&str]| -> Result<Out> {
        let mut args = vec![
            "monitor",
            "--genesis",
            &genesis,
            "--rounds",
            "3",
            "--interval-ms",
            "500",
        ];
        for n in nodes {
            args.extend(["--node", n]);
        }
        let first = nodes[0];
        cli.run(first, &args)
    };
    // Two nodes of one network agree: no alarm.
    let out = monitor(&[&a.nodes[0].url, &a.nodes[2].url])?;
    ensure!(
        out.code == 0 && !out.stdout.contains("ALARM"),
        "exit {}: {}\n{}",
        out.code,
        out.stdout,
        out.stderr
    );
    // A node of each: both serve checkpoints cosigned by more than two thirds of the genesis
    // departments, and they cannot both be true.
    let out = monitor(&[&a.nodes[0].url, &b.nodes[1].url])?;
    ensure!(
        out.code == 3 && out.stdout.contains("ALARM SPLIT_VIEW"),
        "exit {}: {}\n{}",
        out.code,
        out.stdout,
        out.stderr
    );
    Ok(())
}
