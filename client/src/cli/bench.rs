//! `vault bench`: measures a local network of departments against this machine's own limits.
//!
//! It starts `vault-node testnet` (or targets one already running, by its `testnet.json`),
//! enrols enterprises, pre-generates signed attestations (not timed), and measures:
//!
//! - committed attestations per second (median of `--runs`), submitting to every node at once;
//! - commit latency p50/p99 at half and at full measured load (small batches, `wait=true`);
//! - the verify API's requests per second and p99 at one node;
//! - the catch-up rate of a node killed while `--catch-up` attestations are committed;
//! - disk bytes per attestation per node (the data directories' growth over the runs);
//! - the ceiling in the same run: strict ed25519 verifications per second on one core, and batch
//!   verification per signature — every rate is also given as a ratio to it.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};
use serde::Deserialize;
use serde_json::{json, Value};
use vault_protocol::crypto::{CryptoSuite, KeyPair};
use vault_protocol::encoding::{BoundedVec, Canonical};
use vault_protocol::ids::{AttestationId, ChainId, DepartmentId, DocTypeCode, Timestamp};
use vault_protocol::tx::{
    Attestation, Enrolment, SignedTransaction, Transaction, TransactionBatch, TxBody,
};
use vault_protocol::uscc::Uscc;

use super::Exit;

/// What to measure, and how much.
#[derive(Debug, Clone)]
pub struct BenchArgs {
    /// Departments in the network started for the bench.
    pub nodes: usize,
    /// A running network's `testnet.json` to target instead.
    pub target: Option<PathBuf>,
    /// Attestations per throughput run.
    pub attestations: usize,
    /// Throughput runs (the median is reported).
    pub runs: usize,
    /// Attestations committed while one node is down, for the catch-up measurement (0 = skip).
    pub catch_up: usize,
    /// Seconds of verify-API load.
    pub verify_seconds: f64,
    /// Seconds per latency measurement.
    pub latency_seconds: f64,
    /// Concurrent HTTP clients.
    pub concurrency: usize,
    /// First port of the network started for the bench.
    pub base_port: u16,
    /// Print JSON.
    pub json: bool,
}

#[derive(Deserialize)]
struct TestnetFile {
    genesis: PathBuf,
    nodes: Vec<TestnetNode>,
}

#[derive(Deserialize, Clone)]
struct TestnetNode {
    department: String,
    http_url: String,
    config: PathBuf,
    signing_key: PathBuf,
    pid: Option<u32>,
    restart_command: String,
}

/// The network under test, and the processes this bench owns.
struct Network {
    nodes: Vec<TestnetNode>,
    genesis: PathBuf,
    testnet: Option<Child>,
    restarted: Vec<Child>,
    _tmp: Option<tempfile::TempDir>,
}

impl Drop for Network {
    fn drop(&mut self) {
        self.stop();
    }
}

impl Network {
    /// Stops the processes this bench started (a targeted network is left running).
    fn stop(&mut self) {
        for mut c in self.restarted.drain(..) {
            let _ = c.kill();
            let _ = c.wait();
        }
        if let Some(mut t) = self.testnet.take() {
            // The testnet supervisor stops its nodes on SIGINT.
            let _ = Command::new("kill")
                .args(["-INT", &t.id().to_string()])
                .status();
            let deadline = Instant::now() + Duration::from_secs(15);
            while Instant::now() < deadline {
                if let Ok(Some(_)) = t.try_wait() {
                    return;
                }
                std::thread::sleep(Duration::from_millis(100));
            }
            let _ = t.kill();
            let _ = t.wait();
        }
    }
}

fn node_binary() -> Result<PathBuf> {
    if let Ok(p) = std::env::var("VAULT_NODE_BIN") {
        return Ok(PathBuf::from(p));
    }
    let exe = std::env::current_exe()?;
    let bin = exe.with_file_name("vault-node");
    if !bin.exists() {
        bail!(
            "vault-node not found beside {} (build the workspace, or set VAULT_NODE_BIN)",
            exe.display()
        );
    }
    Ok(bin)
}

fn start_network(args: &BenchArgs) -> Result<Network> {
    if let Some(t) = &args.target {
        let file: TestnetFile = serde_json::from_slice(
            &std::fs::read(t).with_context(|| format!("reading {}", t.display()))?,
        )?;
        return Ok(Network {
            nodes: file.nodes,
            genesis: file.genesis,
            testnet: None,
            restarted: Vec::new(),
            _tmp: None,
        });
    }
    let tmp = tempfile::tempdir()?;
    let dir = tmp.path().join("net");
    let log = std::fs::File::create(tmp.path().join("testnet.out"))?;
    let child = Command::new(node_binary()?)
        .args(["testnet", "--nodes", &args.nodes.to_string(), "--base-port"])
        .arg(args.base_port.to_string())
        .arg("--dir")
        .arg(&dir)
        .stdout(Stdio::from(log.try_clone()?))
        .stderr(Stdio::from(log))
        .spawn()
        .context("starting vault-node testnet")?;
    let mut net = Network {
        nodes: Vec::new(),
        genesis: PathBuf::new(),
        testnet: Some(child),
        restarted: Vec::new(),
        _tmp: Some(tmp),
    };
    let deadline = Instant::now() + Duration::from_secs(60);
    let file = dir.join("testnet.json");
    while !file.exists() {
        if Instant::now() > deadline {
            bail!("the testnet did not start (see {})", dir.display());
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    std::thread::sleep(Duration::from_millis(200));
    let parsed: TestnetFile = serde_json::from_slice(&std::fs::read(&file)?)?;
    net.nodes = parsed.nodes;
    net.genesis = parsed.genesis;
    Ok(net)
}

struct Http {
    client: reqwest::Client,
}

impl Http {
    async fn status(&self, url: &str) -> Option<Value> {
        let r = self
            .client
            .get(format!("{url}/v1/status"))
            .send()
            .await
            .ok()?;
        r.json().await.ok()
    }

    async fn wait<F: Fn(&Value) -> bool>(
        &self,
        url: &str,
        what: &str,
        timeout: Duration,
        f: F,
    ) -> Result<Value> {
        let deadline = Instant::now() + timeout;
        loop {
            if let Some(s) = self.status(url).await {
                if f(&s) {
                    return Ok(s);
                }
            }
            if Instant::now() > deadline {
                bail!("{url}: {what} not reached in {timeout:?}");
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    /// Waits until every node has reached the height the first one is at now.
    async fn all_at_first_height(&self, urls: &[String]) -> Result<()> {
        let head = self.status(&urls[0]).await.context("status")?["height"]
            .as_u64()
            .unwrap_or(0);
        for u in urls {
            self.wait(u, "the same height", Duration::from_secs(120), |s| {
                s["height"].as_u64().unwrap_or(0) >= head
            })
            .await?;
        }
        Ok(())
    }

    /// Submits a batch; retries while the pool is full. Returns the answer.
    async fn batch(&self, url: &str, txs: &[SignedTransaction], wait: bool) -> Result<Value> {
        loop {
            let r = self
                .client
                .post(format!(
                    "{url}/v1/transactions/batch?wait={wait}&timeout_ms=60000"
                ))
                .header(reqwest::header::CONTENT_TYPE, "application/octet-stream")
                .body(TransactionBatch(BoundedVec::new(txs.to_vec())?).encode())
                .send()
                .await?;
            if r.status().as_u16() == 503 {
                tokio::time::sleep(Duration::from_millis(50)).await;
                continue;
            }
            let v: Value = r.json().await?;
            let refused_full = v["results"]
                .as_array()
                .is_some_and(|a| a.iter().any(|x| x["error"]["code"] == "pool_full"));
            if refused_full {
                // Resubmit the lot: the admitted ones are deduplicated by id.
                tokio::time::sleep(Duration::from_millis(50)).await;
                continue;
            }
            return Ok(v);
        }
    }
}

fn percentile(sorted: &[f64], p: f64) -> f64 {
    if sorted.is_empty() {
        return f64::NAN;
    }
    let i = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[i.min(sorted.len() - 1)]
}

fn median(v: &mut [f64]) -> f64 {
    v.sort_by(f64::total_cmp);
    percentile(v, 0.5)
}

fn dir_bytes(p: &Path) -> u64 {
    let mut total = 0;
    if let Ok(rd) = std::fs::read_dir(p) {
        for e in rd.flatten() {
            let path = e.path();
            match e.metadata() {
                Ok(m) if m.is_dir() => total += dir_bytes(&path),
                Ok(m) => total += m.len(),
                Err(_) => {}
            }
        }
    }
    total
}

/// The machine's ceiling: strict single verifications per second on one core (ed25519-dalek's
/// `verify_strict`, the unit every ratio is in), and the chain's batch verification per signature
/// on one core (ZIP-215 batches of 64 distinct keys through `CryptoSuite::verify_many`, the
/// signature memo emptied before each batch), measured now.
fn ceiling() -> (f64, f64) {
    use ed25519_dalek::{Signer, SigningKey};
    use vault_protocol::crypto::{Domain, SignatureCheck};
    let n = 256;
    let keys: Vec<SigningKey> = (0..n)
        .map(|i| SigningKey::from_bytes(&CryptoSuite::Ed25519Sha256.file_digest(&[i as u8, 7]).0))
        .collect();
    let msgs: Vec<Vec<u8>> = (0..n)
        .map(|i| format!("attestation {i} {}", "x".repeat(300)).into_bytes())
        .collect();
    let sigs: Vec<ed25519_dalek::Signature> =
        keys.iter().zip(&msgs).map(|(k, m)| k.sign(m)).collect();
    let vks: Vec<ed25519_dalek::VerifyingKey> = keys.iter().map(|k| k.verifying_key()).collect();
    // The same messages, signed under a domain tag as the chain's transactions are.
    let pairs: Vec<KeyPair> = keys
        .iter()
        .map(|k| KeyPair::from_seed(CryptoSuite::Ed25519Sha256, k.to_bytes()))
        .collect();
    let publics: Vec<vault_protocol::crypto::PublicKey> =
        pairs.iter().map(KeyPair::public).collect();
    let tagged: Vec<vault_protocol::crypto::Signature> = pairs
        .iter()
        .zip(&msgs)
        .map(|(k, m)| k.sign(Domain::Attestation, m))
        .collect();
    let mut singles = Vec::new();
    let mut batches = Vec::new();
    for _ in 0..5 {
        let t = Instant::now();
        let mut count = 0usize;
        while t.elapsed() < Duration::from_millis(200) {
            let i = count % n;
            let ok = vks[i].verify_strict(&msgs[i], &sigs[i]).is_ok();
            std::hint::black_box(ok);
            count += 1;
        }
        singles.push(count as f64 / t.elapsed().as_secs_f64());
        let t = Instant::now();
        let mut sigs_done = 0usize;
        while t.elapsed() < Duration::from_millis(200) {
            let lo = (sigs_done / 64 % (n / 64)) * 64;
            let checks: Vec<SignatureCheck<'_>> = (lo..lo + 64)
                .map(|i| SignatureCheck {
                    domain: Domain::Attestation,
                    key: &publics[i],
                    message: &msgs[i],
                    signature: &tagged[i],
                })
                .collect();
            vault_protocol::crypto::clear_signature_cache();
            // 64 checks: below the size `verify_many` spreads over cores.
            let ok = CryptoSuite::Ed25519Sha256.verify_many(&checks);
            std::hint::black_box(ok);
            sigs_done += 64;
        }
        batches.push(t.elapsed().as_secs_f64() * 1e9 / sigs_done as f64);
    }
    (median(&mut singles), median(&mut batches))
}

fn uscc_for(i: usize) -> Result<Uscc> {
    Ok(vault_protocol::ledger::test_uscc(i as u32 + 1))
}

struct Generator {
    chain: ChainId,
    department: DepartmentId,
    key: KeyPair,
    enterprises: usize,
    next: AtomicU64,
}

impl Generator {
    /// `n` signed attestations (on all cores; not timed).
    fn attestations(self: &Arc<Self>, n: usize) -> Result<Vec<SignedTransaction>> {
        let threads = std::thread::available_parallelism().map_or(2, |n| n.get());
        let start = self.next.fetch_add(n as u64, Ordering::Relaxed);
        let per = n.div_ceil(threads);
        let handles: Vec<_> = (0..threads)
            .map(|t| {
                let g = self.clone();
                std::thread::spawn(move || -> Result<Vec<SignedTransaction>> {
                    let lo = t * per;
                    let hi = ((t + 1) * per).min(n);
                    (lo..hi).map(|i| g.one(start + i as u64)).collect()
                })
            })
            .collect();
        let mut out = Vec::with_capacity(n);
        for h in handles {
            out.extend(
                h.join()
                    .map_err(|_| anyhow::anyhow!("generator thread panicked"))??,
            );
        }
        Ok(out)
    }

    fn one(&self, i: u64) -> Result<SignedTransaction> {
        let t: Timestamp = std::time::SystemTime::now().into();
        let suite = CryptoSuite::Ed25519Sha256;
        Ok(Transaction {
            chain_id: self.chain.clone(),
            created_at: t,
            nonce: i,
            body: TxBody::IssueAttestation(Attestation {
                issuer: self.department.clone(),
                subject: uscc_for(i as usize % self.enterprises)?,
                doc_type: DocTypeCode::new("BUSINESS_LICENCE")?,
                file_digest: suite.file_digest(format!("bench licence {i} {t}").as_bytes()),
                claims: BoundedVec::new(vec![vault_protocol::tx::Claim {
                    key: "licence_no".try_into()?,
                    value: format!("370100{i:012}").as_str().try_into()?,
                }])?,
                valid_from: t.minus(86_400_000),
                valid_until: None,
                supersedes: None,
            }),
        }
        .sign_one(&self.key))
    }
}

/// Submits `txs` spread over `urls`, `concurrency` batches in flight; returns when all are
/// admitted.
async fn submit_all(
    http: &Arc<Http>,
    urls: &[String],
    txs: Vec<SignedTransaction>,
    concurrency: usize,
) -> Result<()> {
    let batches: Vec<Vec<SignedTransaction>> = txs.chunks(500).map(<[_]>::to_vec).collect();
    let sem = Arc::new(tokio::sync::Semaphore::new(concurrency.max(1)));
    let mut tasks = Vec::new();
    for (i, b) in batches.into_iter().enumerate() {
        let permit = sem.clone().acquire_owned().await?;
        let http = http.clone();
        let url = urls[i % urls.len()].clone();
        tasks.push(tokio::spawn(async move {
            let r = http.batch(&url, &b, false).await;
            drop(permit);
            r
        }));
    }
    for t in tasks {
        let v = t.await??;
        let refused: Vec<&Value> = v["results"]
            .as_array()
            .map(|a| a.iter().filter(|x| x["status"] == "refused").collect())
            .unwrap_or_default();
        if let Some(r) = refused.first() {
            bail!("the node refused a bench transaction: {r}");
        }
    }
    Ok(())
}

/// Runs the bench.
pub fn run(args: BenchArgs) -> Result<Exit> {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()?;
    rt.block_on(run_async(args))
}

async fn run_async(args: BenchArgs) -> Result<Exit> {
    let say = |s: &str| {
        if !args.json {
            eprintln!("{s}");
        }
    };
    say("measuring the ceiling: ed25519 strict and batch verification on this machine…");
    let (strict_per_s, batch_ns) = tokio::task::spawn_blocking(ceiling).await?;
    say(&format!(
        "  strict verify {strict_per_s:.0}/s per core; the chain's batch verify (ZIP-215) {batch_ns:.0} ns per signature"
    ));

    let mut net = start_network(&args)?;
    let http = Arc::new(Http {
        client: reqwest::Client::builder()
            .timeout(Duration::from_secs(120))
            .build()?,
    });
    let urls: Vec<String> = net.nodes.iter().map(|n| n.http_url.clone()).collect();
    for u in &urls {
        http.wait(u, "height 1", Duration::from_secs(120), |s| {
            s["height"].as_u64().unwrap_or(0) >= 1
        })
        .await?;
    }
    let first = &net.nodes[0];
    let key = crate_keyfile(&first.signing_key)?;
    let status = http.status(&urls[0]).await.context("status")?;
    let chain = ChainId::new(status["chain_id"].as_str().unwrap_or_default())?;
    let department = DepartmentId::new(&first.department)?;
    say(&format!(
        "network: {} departments ({})",
        urls.len(),
        net.nodes
            .iter()
            .map(|n| n.department.as_str())
            .collect::<Vec<_>>()
            .join(", ")
    ));

    // Enrol the enterprises the attestations are about.
    let enterprises = 100;
    let enrol: Vec<SignedTransaction> = (0..enterprises)
        .map(|i| -> Result<SignedTransaction> {
            let k = KeyPair::from_seed(
                CryptoSuite::Ed25519Sha256,
                CryptoSuite::Ed25519Sha256
                    .file_digest(format!("bench enterprise {i}").as_bytes())
                    .0,
            );
            Ok(Transaction {
                chain_id: chain.clone(),
                created_at: std::time::SystemTime::now().into(),
                nonce: i as u64,
                body: TxBody::EnrolEnterprise(Enrolment {
                    department: department.clone(),
                    enterprise: uscc_for(i)?,
                    key: k.public(),
                }),
            }
            .sign_one(&key))
        })
        .collect::<Result<_>>()?;
    let r = http.batch(&urls[0], &enrol, true).await?;
    let bad = r["results"]
        .as_array()
        .into_iter()
        .flatten()
        .find(|x| x["status"] != "committed" && x["error"]["code"] != "already_enrolled");
    if let Some(b) = bad {
        bail!("enrolling the bench's enterprises failed: {b}");
    }
    let generator = Arc::new(Generator {
        chain,
        department,
        key,
        enterprises,
        next: AtomicU64::new(
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)?
                .as_millis() as u64
                * 1000,
        ),
    });

    // Throughput runs.
    let disk_before: Vec<u64> = net.nodes.iter().map(|n| dir_bytes(&node_dir(n))).collect();
    let log_start = http.status(&urls[0]).await.context("status")?["log_size"]
        .as_u64()
        .unwrap_or(0);
    let mut rates = Vec::new();
    let mut committed_total = 0u64;
    let mut sample: Option<AttestationId> = None;
    for run in 1..=args.runs {
        let g = generator.clone();
        let n = args.attestations;
        let txs = tokio::task::spawn_blocking(move || g.attestations(n)).await??;
        if let Some(t) = txs.first() {
            sample = Some(AttestationId(t.id(CryptoSuite::Ed25519Sha256).0));
        }
        let before = http.status(&urls[0]).await.context("status")?["log_size"]
            .as_u64()
            .unwrap_or(0);
        let t = Instant::now();
        submit_all(&http, &urls, txs, args.concurrency).await?;
        let target = before + n as u64;
        http.wait(&urls[0], "all committed", Duration::from_secs(600), |s| {
            s["log_size"].as_u64().unwrap_or(0) >= target
        })
        .await?;
        let rate = n as f64 / t.elapsed().as_secs_f64();
        committed_total += n as u64;
        say(&format!(
            "  run {run}: {n} attestations committed in {:.2} s → {rate:.0}/s",
            t.elapsed().as_secs_f64()
        ));
        rates.push(rate);
    }
    let committed_per_s = median(&mut rates.clone());
    // Let every node finish the same blocks before measuring disks.
    http.all_at_first_height(&urls).await?;
    let mut per_node_disk: Vec<f64> = net
        .nodes
        .iter()
        .zip(&disk_before)
        .map(|(n, b)| {
            dir_bytes(&node_dir(n)).saturating_sub(*b) as f64 / committed_total.max(1) as f64
        })
        .collect();
    let disk_per_attestation = median(&mut per_node_disk);

    // Commit latency at half and full load.
    let mut latency = Vec::new();
    for (label, fraction) in [("half", 0.5), ("full", 1.0)] {
        let rate = (committed_per_s * fraction).max(10.0);
        let (p50, p99, n) =
            latency_at(&http, &urls, &generator, rate, args.latency_seconds).await?;
        say(&format!("  latency at {label} load ({rate:.0}/s, {n} batches): p50 {p50:.0} ms, p99 {p99:.0} ms"));
        latency.push((p50, p99));
    }

    // The verify API.
    let (verify_rps, verify_p99) =
        verify_load(&http, &urls[0], args.verify_seconds, args.concurrency).await?;
    say(&format!(
        "  verify API: {verify_rps:.0} requests/s, p99 {verify_p99:.1} ms"
    ));

    // Offline verification of one attestation's proof bundle, from the genesis alone.
    let bundle = match sample {
        Some(id) => Some(bundle_verify(&http, &urls[1 % urls.len()], &net.genesis, &id).await?),
        None => None,
    };
    if let Some((us, bytes)) = bundle {
        say(&format!(
            "  offline bundle: {bytes} bytes, verified in {us:.0} µs (median)"
        ));
    }

    // Catch-up.
    let catch_up = if args.catch_up > 0 && net.nodes.len() >= 4 {
        let r = catch_up(
            &http,
            &mut net,
            &urls,
            &generator,
            args.catch_up,
            args.concurrency,
        )
        .await?;
        say(&format!(
            "  catch-up: {} attestations in {:.2} s → {r:.0}/s",
            args.catch_up,
            args.catch_up as f64 / r
        ));
        Some(r)
    } else {
        None
    };

    // Disk at rest: every transaction of the bench on every node, the ledgers compacted.
    let log_end = http.status(&urls[0]).await.context("status")?["log_size"]
        .as_u64()
        .unwrap_or(0);
    http.all_at_first_height(&urls).await?;
    let disk_rest = disk_at_rest(&mut net, &disk_before, log_start, log_end)?;
    if let Some(d) = disk_rest {
        say(&format!(
            "  disk at rest: {d:.0} bytes per transaction per node ({} transactions, ledgers compacted)",
            log_end - log_start
        ));
    }

    let report = json!({
        "departments": urls.len(),
        "attestations_per_run": args.attestations,
        "runs": args.runs,
        "committed_per_s": committed_per_s,
        "committed_per_s_runs": rates,
        "commit_latency_ms": {
            "half_load": {"p50": latency[0].0, "p99": latency[0].1},
            "full_load": {"p50": latency[1].0, "p99": latency[1].1},
        },
        "verify_api": {"requests_per_s": verify_rps, "p99_ms": verify_p99},
        "catch_up_per_s": catch_up,
        "disk_bytes_per_attestation_per_node": disk_per_attestation,
        "disk_bytes_per_attestation_per_node_at_rest": disk_rest,
        "offline_bundle_verify_us": bundle.map(|b| b.0),
        "bundle_bytes": bundle.map(|b| b.1),
        "ceiling": {
            "strict_verify_per_s_per_core": strict_per_s,
            "batch_verify_ns_per_signature": batch_ns,
        },
        "ratios": {
            "committed_per_s_to_strict_verify_per_s": committed_per_s / strict_per_s,
            "verify_api_rps_to_strict_verify_per_s": verify_rps / strict_per_s,
            "catch_up_per_s_to_strict_verify_per_s": catch_up.map(|c| c / strict_per_s),
        },
    });
    if args.json {
        println!("{report}");
    } else {
        println!("数字保险箱 bench — {} departments on loopback", urls.len());
        println!("  ceiling            strict ed25519 verify {strict_per_s:.0}/s per core; batch {batch_ns:.0} ns/signature");
        println!("  committed          {committed_per_s:.0} attestations/s (median of {}; {:.3} × the strict-verify ceiling)", args.runs, committed_per_s / strict_per_s);
        println!("  commit latency     half load p50 {:.0} ms p99 {:.0} ms; full load p50 {:.0} ms p99 {:.0} ms", latency[0].0, latency[0].1, latency[1].0, latency[1].1);
        println!("  verify API         {verify_rps:.0} requests/s, p99 {verify_p99:.1} ms");
        match catch_up {
            Some(c) => println!("  catch-up           {c:.0} attestations/s"),
            None => println!("  catch-up           skipped"),
        }
        println!("  disk               {disk_per_attestation:.0} bytes per attestation per node right after the runs (write-ahead log, memtables, stale status-tree nodes included)");
        match disk_rest {
            Some(d) => println!("  disk at rest       {d:.0} bytes per attestation per node (network stopped, ledgers compacted)"),
            None => println!("  disk at rest       not measured (a network this bench did not start)"),
        }
        match bundle {
            Some((us, bytes)) => {
                println!("  offline bundle     verified in {us:.0} µs (median), {bytes} bytes")
            }
            None => println!("  offline bundle     not measured (no attestation)"),
        }
    }
    Ok(Exit::Ok)
}

/// Fetches the bundle of `id` from `url` and verifies it offline 200 times: (median µs, bytes).
async fn bundle_verify(
    http: &Http,
    url: &str,
    genesis: &Path,
    id: &AttestationId,
) -> Result<(f64, usize)> {
    let genesis = vault_client::offline::read_genesis(genesis)?;
    let anchor = vault_protocol::bundle::Anchor::from_genesis(&genesis);
    let deadline = Instant::now() + Duration::from_secs(30);
    let bytes = loop {
        let r = http
            .client
            .get(format!("{url}/v1/attestations/{id}/bundle"))
            .header("accept", "application/octet-stream")
            .send()
            .await?;
        if r.status().is_success() {
            break r.bytes().await?.to_vec();
        }
        if Instant::now() > deadline {
            bail!("no bundle for {id} from {url}: {}", r.status());
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    let now: Timestamp = std::time::SystemTime::now().into();
    let mut times = Vec::with_capacity(200);
    for _ in 0..200 {
        // Each time from scratch: no signature remembered from the time before.
        vault_protocol::crypto::clear_signature_cache();
        let t = Instant::now();
        let bundle = vault_protocol::bundle::ProofBundle::decode(&bytes)?;
        vault_protocol::bundle::verify_bundle(&anchor, &bundle, None, now, None)
            .map_err(|e| anyhow::anyhow!("the bench's own bundle does not verify: {e}"))?;
        times.push(t.elapsed().as_secs_f64() * 1e6);
    }
    Ok((median(&mut times), bytes.len()))
}

/// Disk per attestation per node at rest: the network stopped, each ledger compacted
/// (`vault-node compact`), each data directory's growth since `before` ÷ the transactions
/// committed since `log_start`. `None` for a network this bench did not start.
fn disk_at_rest(
    net: &mut Network,
    before: &[u64],
    log_start: u64,
    log_end: u64,
) -> Result<Option<f64>> {
    if net.testnet.is_none() {
        return Ok(None);
    }
    net.stop();
    let bin = node_binary()?;
    for n in &net.nodes {
        let out = Command::new(&bin)
            .arg("compact")
            .arg("--config")
            .arg(&n.config)
            .output()
            .context("running vault-node compact")?;
        if !out.status.success() {
            bail!(
                "vault-node compact failed for {}: {}",
                n.department,
                String::from_utf8_lossy(&out.stderr)
            );
        }
    }
    let count = log_end.saturating_sub(log_start).max(1) as f64;
    let mut per_node: Vec<f64> = net
        .nodes
        .iter()
        .zip(before)
        .map(|(n, b)| dir_bytes(&node_dir(n)).saturating_sub(*b) as f64 / count)
        .collect();
    Ok(Some(median(&mut per_node)))
}

fn crate_keyfile(p: &Path) -> Result<KeyPair> {
    Ok(vault_client::keyfile::read(p)?)
}

fn node_dir(n: &TestnetNode) -> PathBuf {
    n.config
        .parent()
        .map(|p| p.join("data"))
        .unwrap_or_default()
}

async fn latency_at(
    http: &Arc<Http>,
    urls: &[String],
    generator: &Arc<Generator>,
    rate: f64,
    seconds: f64,
) -> Result<(f64, f64, usize)> {
    let batch = 20usize;
    let batches = ((rate * seconds) / batch as f64).ceil().max(5.0) as usize;
    let g = generator.clone();
    let txs = tokio::task::spawn_blocking(move || g.attestations(batches * batch)).await??;
    let interval = Duration::from_secs_f64(batch as f64 / rate);
    let start = Instant::now();
    let mut tasks = Vec::new();
    for (i, chunk) in txs.chunks(batch).enumerate() {
        let due = start + interval * i as u32;
        tokio::time::sleep_until(due.into()).await;
        let http = http.clone();
        let url = urls[i % urls.len()].clone();
        let chunk = chunk.to_vec();
        tasks.push(tokio::spawn(async move {
            let t = Instant::now();
            let r = http.batch(&url, &chunk, true).await?;
            let all = r["results"]
                .as_array()
                .is_some_and(|a| a.iter().all(|x| x["status"] == "committed"));
            if !all {
                bail!("a latency batch was not committed: {r}");
            }
            Ok::<f64, anyhow::Error>(t.elapsed().as_secs_f64() * 1000.0)
        }));
    }
    let mut lat = Vec::new();
    for t in tasks {
        lat.push(t.await??);
    }
    lat.sort_by(f64::total_cmp);
    Ok((percentile(&lat, 0.5), percentile(&lat, 0.99), lat.len()))
}

/// The field of a verify answer the load generator checks.
#[derive(Deserialize)]
struct VerifyValid {
    valid: bool,
}

async fn verify_load(
    http: &Arc<Http>,
    url: &str,
    seconds: f64,
    concurrency: usize,
) -> Result<(f64, f64)> {
    // Verify digests that are on the ledger.
    let r: Value = http
        .client
        .get(format!(
            "{url}/v1/enterprises/{}/attestations",
            uscc_for(0)?
        ))
        .send()
        .await?
        .json()
        .await?;
    let digests: Vec<String> = r
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|v| {
            v["record"]["attestation"]["file_digest"]
                .as_str()
                .map(str::to_string)
        })
        .take(200)
        .collect();
    if digests.is_empty() {
        bail!("no attestations to verify");
    }
    let digests = Arc::new(digests);
    let deadline = Instant::now() + Duration::from_secs_f64(seconds);
    let start = Instant::now();
    let mut tasks = Vec::new();
    for w in 0..concurrency.max(1) {
        let http = http.clone();
        let url = url.to_string();
        let digests = digests.clone();
        tasks.push(tokio::spawn(async move {
            let mut lat = Vec::new();
            let mut i = w;
            while Instant::now() < deadline {
                let d = &digests[i % digests.len()];
                i += 7;
                let t = Instant::now();
                let r = http
                    .client
                    .post(format!("{url}/v1/verify"))
                    .json(&json!({"digest": d}))
                    .send()
                    .await?;
                // Read as an application would, into the one field it acts on (not into a
                // tree of every field: on two shared cores the client's parsing is CPU the
                // node under test does not get).
                let body = r.bytes().await?;
                let answer: VerifyValid = serde_json::from_slice(&body)?;
                if !answer.valid {
                    bail!("verify said {}", String::from_utf8_lossy(&body));
                }
                lat.push(t.elapsed().as_secs_f64() * 1000.0);
            }
            Ok::<Vec<f64>, anyhow::Error>(lat)
        }));
    }
    let mut all = Vec::new();
    for t in tasks {
        all.extend(t.await??);
    }
    let elapsed = start.elapsed().as_secs_f64();
    all.sort_by(f64::total_cmp);
    Ok((all.len() as f64 / elapsed, percentile(&all, 0.99)))
}

async fn catch_up(
    http: &Arc<Http>,
    net: &mut Network,
    urls: &[String],
    generator: &Arc<Generator>,
    n: usize,
    concurrency: usize,
) -> Result<f64> {
    let down = net.nodes.len() - 1;
    let node = net.nodes[down].clone();
    let pid = node.pid.context("the node's process id (testnet.json)")?;
    let _ = Command::new("kill").args(["-9", &pid.to_string()]).status();
    let live: Vec<String> = urls[..down].to_vec();
    let g = generator.clone();
    let txs = tokio::task::spawn_blocking(move || g.attestations(n)).await??;
    let before = http.status(&live[0]).await.context("status")?["log_size"]
        .as_u64()
        .unwrap_or(0);
    submit_all(http, &live, txs, concurrency).await?;
    let target = before + n as u64;
    let s = http
        .wait(
            &live[0],
            "committed without the stopped node",
            Duration::from_secs(1200),
            |s| s["log_size"].as_u64().unwrap_or(0) >= target,
        )
        .await?;
    let head = s["height"].as_u64().unwrap_or(0);
    let t = Instant::now();
    let child = Command::new("sh")
        .arg("-c")
        .arg(format!("exec {}", node.restart_command))
        .stdin(Stdio::null())
        .spawn()
        .context("restarting the node")?;
    net.restarted.push(child);
    http.wait(
        &node.http_url,
        "caught up",
        Duration::from_secs(1200),
        |s| s["height"].as_u64().unwrap_or(0) >= head,
    )
    .await?;
    Ok(n as f64 / t.elapsed().as_secs_f64())
}
