//! A short smoke run of `vault bench` (the benchmark itself, not a timed test): it starts its own
//! four-department network, drives it, and prints every figure as one JSON object.

use std::process::Command;

use anyhow::{ensure, Context, Result};
use serde_json::Value;

#[test]
fn the_bench_runs_and_reports_every_figure() -> Result<()> {
    let node = vault_tests::node_binary()?;
    let vault = node.with_file_name("vault");
    // A base port with its HTTP (base..base+3) and p2p (base+100..) ranges likely free.
    let base = std::net::TcpListener::bind("127.0.0.1:0")?
        .local_addr()?
        .port()
        % 20_000
        + 30_000;
    let out = Command::new(&vault)
        .args([
            "--json",
            "bench",
            "--nodes",
            "4",
            "--attestations",
            "300",
            "--runs",
            "1",
            "--catch-up",
            "200",
            "--verify-seconds",
            "0.5",
            "--latency-seconds",
            "0.5",
            "--concurrency",
            "4",
            "--base-port",
        ])
        .arg(base.to_string())
        .env("VAULT_NODE_BIN", &node)
        .output()?;
    let stdout = String::from_utf8_lossy(&out.stdout);
    ensure!(
        out.status.success(),
        "vault bench failed:\n{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let v: Value = serde_json::from_str(stdout.trim()).context("bench JSON")?;
    for field in [
        "committed_per_s",
        "disk_bytes_per_attestation_per_node",
        "disk_bytes_per_attestation_per_node_at_rest",
        "catch_up_per_s",
        "offline_bundle_verify_us",
        "bundle_bytes",
    ] {
        ensure!(v[field].as_f64().is_some_and(|x| x > 0.0), "{field}: {v}");
    }
    ensure!(
        v["verify_api"]["requests_per_s"]
            .as_f64()
            .is_some_and(|x| x > 0.0),
        "{v}"
    );
    ensure!(
        v["commit_latency_ms"]["half_load"]["p99"]
            .as_f64()
            .is_some(),
        "{v}"
    );
    ensure!(
        v["ceiling"]["strict_verify_per_s_per_core"]
            .as_f64()
            .is_some_and(|x| x > 0.0),
        "{v}"
    );
    Ok(())
}
