//! `vault monitor`: follow nodes' cosigned checkpoints and raise alarms. The decisions are
//! [`vault_client::monitor::Monitor`]'s; this is the polling loop and the output.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::Duration;

use anyhow::Result;
use serde_json::json;
use vault_client::monitor::{Alarm, Monitor};
use vault_client::{Client, ClientError};
use vault_protocol::checkpoint::{cosigned_checkpoint_verdict, VerifiedCheckpoint};

use super::{output, Exit};

/// How long one call to a node may take: a hanging node must not hold up the others for long.
const CALL_TIMEOUT: Duration = Duration::from_secs(10);

/// What `vault monitor` is given.
pub struct MonitorArgs {
    /// The genesis file.
    pub genesis: PathBuf,
    /// The nodes' URLs.
    pub nodes: Vec<String>,
    /// Milliseconds between rounds.
    pub interval_ms: u64,
    /// Seconds without a new height before a node is stalled.
    pub stall_after_s: u64,
    /// Rounds to run; 0 runs until interrupted.
    pub rounds: u64,
    /// One JSON object per line.
    pub json: bool,
}

/// The code of a failed call: the node's error code, or what broke.
fn code_of(e: &ClientError) -> &str {
    match e {
        ClientError::Api { code, .. } => code,
        ClientError::Unexpected(_) => "unexpected_answer",
        _ => "unreachable",
    }
}

fn print_alarm(a: &Alarm, json: bool) {
    if json {
        output::json(&json!({
            "event": "alarm",
            "kind": a.kind,
            "node": a.node,
            "code": a.code,
            "details": a.details,
        }));
    } else {
        println!("{a}");
    }
}

fn print_ok(node: &str, cp: &VerifiedCheckpoint, json: bool) {
    let c = cp.checkpoint();
    if json {
        output::json(&json!({
            "event": "ok",
            "node": node,
            "height": c.block.height,
            "size": c.size,
            "root": hex::encode(c.root),
            "block_hash": c.block.hash,
            "block_time": c.block.time,
            "cosigners": cp.cosigners(),
        }));
    } else {
        println!("ok {node} height {} size {}", c.block.height, c.size);
    }
}

/// Runs the monitor: `Exit::Alarm` if any alarm was raised.
pub fn run(a: MonitorArgs) -> Result<Exit> {
    let genesis = vault_client::offline::read_genesis(&a.genesis)?;
    let governance = genesis.governance();
    let mut nodes: Vec<String> = Vec::new();
    for n in a.nodes {
        let n = n.trim_end_matches('/').to_string();
        if !nodes.contains(&n) {
            nodes.push(n);
        }
    }
    let clients: BTreeMap<String, Client> = nodes
        .iter()
        .map(|n| (n.clone(), Client::with_timeout(n, CALL_TIMEOUT)))
        .collect();
    let mut monitor = Monitor::new(a.stall_after_s.saturating_mul(1000));
    let mut shown: BTreeMap<String, (u64, u64, [u8; 32])> = BTreeMap::new();
    let mut alarmed = false;
    let mut round = 0u64;
    loop {
        for (node, client) in &clients {
            let now = vault_client::requests::now();
            let alarms = match client.checkpoint_note() {
                Err(e) => monitor.unreachable(node, code_of(&e), &e.to_string(), now),
                Ok(text) => match cosigned_checkpoint_verdict(&text, &governance, None) {
                    Err(e) => monitor.bad_checkpoint(node, &e, now),
                    Ok(cp) => {
                        let c = cp.checkpoint();
                        let key = (c.block.height, c.size, c.root);
                        let seen = cp.clone();
                        let alarms = monitor.observe(node, cp, now, |holder, from, to| {
                            clients
                                .get(holder)
                                .ok_or_else(|| format!("no node {holder}"))?
                                .consistency(from, to)
                                .map_err(|e| e.to_string())
                        });
                        if alarms.is_empty() && shown.get(node) != Some(&key) {
                            print_ok(node, &seen, a.json);
                            shown.insert(node.clone(), key);
                        }
                        alarms
                    }
                },
            };
            for alarm in &alarms {
                print_alarm(alarm, a.json);
            }
            alarmed |= !alarms.is_empty();
        }
        round += 1;
        if a.rounds != 0 && round >= a.rounds {
            break;
        }
        std::thread::sleep(Duration::from_millis(a.interval_ms));
    }
    Ok(if alarmed { Exit::Alarm } else { Exit::Ok })
}
