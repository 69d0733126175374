//! Watching nodes' checkpoints for split views and stalls: the decisions, with no I/O.
//!
//! A [`Monitor`] is given, node by node and round by round, the cosigned checkpoints the nodes
//! serve (verified with [`vault_protocol::checkpoint::cosigned_checkpoint_verdict`]), or the
//! failure to get or verify one, and answers with the [`Alarm`]s to raise:
//!
//! - [`AlarmKind::SplitView`]: two verified checkpoints — from one node over time, or from two
//!   nodes — cannot both be views of one append-only log
//!   ([`vault_protocol::checkpoint::verify_consistency_between`]). The consistency proof comes
//!   from the node holding the larger log (through the caller's `proof` function); equal sizes
//!   and the empty log need none. Once two nodes are found split, they are not compared again
//!   (the alarm is raised once).
//! - [`AlarmKind::Stalled`]: a node's checkpoint height has not advanced for longer than the
//!   stall limit; raised once until it advances.
//! - [`AlarmKind::Unreachable`]: a node could not be asked (no checkpoint, no consistency
//!   proof); raised once while the failure lasts.
//! - [`AlarmKind::BadCheckpoint`]: a node served a checkpoint that does not verify; raised once
//!   while the same failure lasts.
//!
//! Each node keeps as its latest the largest checkpoint known consistent with its earlier ones;
//! a checkpoint whose consistency proof could not be had does not replace it, so no step of a
//! node's history goes unchecked.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;

use serde::Serialize;
use vault_protocol::checkpoint::{
    verify_consistency_between, CheckpointError, VaultCheckpoint, VerifiedCheckpoint,
};
use vault_protocol::ids::Timestamp;
use vault_protocol::merkle::ConsistencyProof;

/// What an alarm is about.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum AlarmKind {
    /// Two verified checkpoints cannot both be true.
    SplitView,
    /// A node's checkpoint height has not advanced for too long.
    Stalled,
    /// A node could not be asked.
    Unreachable,
    /// A node served a checkpoint that does not verify.
    BadCheckpoint,
}

impl AlarmKind {
    /// The label of an alarm line: `SPLIT_VIEW`, `STALLED`, `UNREACHABLE`, `BAD_CHECKPOINT`.
    pub fn label(self) -> &'static str {
        match self {
            AlarmKind::SplitView => "SPLIT_VIEW",
            AlarmKind::Stalled => "STALLED",
            AlarmKind::Unreachable => "UNREACHABLE",
            AlarmKind::BadCheckpoint => "BAD_CHECKPOINT",
        }
    }
}

impl fmt::Display for AlarmKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.label())
    }
}

/// An alarm about one node.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Alarm {
    /// What it is about.
    pub kind: AlarmKind,
    /// The node (as the monitor names it, e.g. its URL).
    pub node: String,
    /// A stable code: the checkpoint error's (`split_view`, `bad_signature`, …), `stalled`, or
    /// the transport's or node's error code.
    pub code: String,
    /// What happened, for people.
    pub details: String,
}

impl fmt::Display for Alarm {
    /// `ALARM <KIND> <node> <details>`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "ALARM {} {} {}", self.kind, self.node, self.details)
    }
}

/// What the monitor knows of one node.
#[derive(Debug, Clone)]
struct Track {
    /// The largest checkpoint known consistent with the node's earlier ones.
    latest: Option<VerifiedCheckpoint>,
    /// The highest block height seen.
    height: Option<u64>,
    /// When the height last advanced (or the node was first seen).
    advanced_at: Timestamp,
    /// A stall alarm was raised and the height has not advanced since.
    stalled: bool,
    /// The code of the failure alarm raised and still lasting.
    failing: Option<String>,
}

impl Track {
    fn new(now: Timestamp) -> Self {
        Track {
            latest: None,
            height: None,
            advanced_at: now,
            stalled: false,
            failing: None,
        }
    }
}

/// How a comparison of two checkpoints ended.
enum Compared {
    Consistent,
    Split(CheckpointError),
    /// The node asked for the proof did not give it.
    NoProof {
        asked: String,
        from: u64,
        to: u64,
        error: String,
    },
    /// The check failed otherwise (a proof of other sizes, other origins).
    Failed(CheckpointError),
}

/// Orders by (size, height), as [`verify_consistency_between`] does.
fn larger<'a>(a: &'a VaultCheckpoint, b: &'a VaultCheckpoint) -> bool {
    (a.size, a.block.height) > (b.size, b.block.height)
}

/// `size 5 (block 3, root 3f2a…)`.
fn describe(cp: &VaultCheckpoint) -> String {
    let root = hex::encode(cp.root);
    format!(
        "size {} (block {}, root {}…)",
        cp.size,
        cp.block.height,
        &root[..16.min(root.len())]
    )
}

/// Checks `a` (held by `node_a`) against `b` (held by `node_b`), asking the holder of the larger
/// log for the proof when one is needed.
fn compare(
    node_a: &str,
    a: &VerifiedCheckpoint,
    node_b: &str,
    b: &VerifiedCheckpoint,
    proof: &mut dyn FnMut(&str, u64, u64) -> Result<ConsistencyProof, String>,
) -> Compared {
    let (ca, cb) = (a.checkpoint(), b.checkpoint());
    let (small, large, holder) = if larger(ca, cb) {
        (cb, ca, node_a)
    } else {
        (ca, cb, node_b)
    };
    let p = if small.size == large.size || small.size == 0 {
        // Equal sizes need no proof (equal roots or a split); nor does the empty log.
        ConsistencyProof {
            old_size: small.size,
            new_size: large.size,
            path: Vec::new(),
        }
    } else {
        match proof(holder, small.size, large.size) {
            Ok(p) => p,
            Err(error) => {
                return Compared::NoProof {
                    asked: holder.to_string(),
                    from: small.size,
                    to: large.size,
                    error,
                }
            }
        }
    };
    match verify_consistency_between(a, b, &p) {
        Ok(()) => Compared::Consistent,
        Err(e @ CheckpointError::SplitView { .. }) => Compared::Split(e),
        Err(e) => Compared::Failed(e),
    }
}

/// The decisions of a checkpoint monitor; see the module documentation.
#[derive(Debug, Clone)]
pub struct Monitor {
    stall_after_ms: u64,
    nodes: BTreeMap<String, Track>,
    /// Pairs of nodes found split (ordered), not compared again.
    split: BTreeSet<(String, String)>,
    /// Consistency proofs a node failed to give (node, from, to), alarmed once.
    proof_failures: BTreeSet<(String, u64, u64)>,
}

impl Monitor {
    /// A monitor that calls a node stalled when its height has not advanced for more than
    /// `stall_after_ms` milliseconds.
    pub fn new(stall_after_ms: u64) -> Self {
        Monitor {
            stall_after_ms,
            nodes: BTreeMap::new(),
            split: BTreeSet::new(),
            proof_failures: BTreeSet::new(),
        }
    }

    /// The node's latest checkpoint: the largest known consistent with its earlier ones.
    pub fn latest(&self, node: &str) -> Option<&VerifiedCheckpoint> {
        self.nodes.get(node).and_then(|t| t.latest.as_ref())
    }

    fn track(&mut self, node: &str, now: Timestamp) -> &mut Track {
        self.nodes
            .entry(node.to_string())
            .or_insert_with(|| Track::new(now))
    }

    /// The stall alarm for `node`, if it is due.
    fn check_stall(&mut self, node: &str, now: Timestamp) -> Option<Alarm> {
        let limit = self.stall_after_ms;
        let track = self.track(node, now);
        let idle = now.0.saturating_sub(track.advanced_at.0);
        if track.stalled || idle <= limit {
            return None;
        }
        track.stalled = true;
        let at = match track.height {
            Some(h) => format!("height {h} has not advanced"),
            None => "no checkpoint has been seen".to_string(),
        };
        Some(Alarm {
            kind: AlarmKind::Stalled,
            node: node.to_string(),
            code: "stalled".to_string(),
            details: format!("{at} for {} s (limit {} s)", idle / 1000, limit / 1000),
        })
    }

    /// A verified checkpoint `cp` that `node` serves at `now`. `proof(holder, from, to)` fetches
    /// the consistency proof between log sizes `from` and `to` from node `holder` (the node
    /// holding the larger log); its error is reported as [`AlarmKind::Unreachable`].
    pub fn observe(
        &mut self,
        node: &str,
        cp: VerifiedCheckpoint,
        now: Timestamp,
        mut proof: impl FnMut(&str, u64, u64) -> Result<ConsistencyProof, String>,
    ) -> Vec<Alarm> {
        let mut alarms = Vec::new();
        let track = self.track(node, now);
        track.failing = None;
        let height = cp.checkpoint().block.height;
        if track.height.is_none_or(|h| height > h) {
            track.height = Some(height);
            track.advanced_at = now;
            track.stalled = false;
        }
        let prev = track.latest.clone();
        if prev.as_ref().map(VerifiedCheckpoint::checkpoint) == Some(cp.checkpoint()) {
            alarms.extend(self.check_stall(node, now));
            return alarms;
        }

        // The node's own history.
        let mut accept = true;
        let mut follow = false;
        if let Some(prev) = &prev {
            match compare(node, prev, node, &cp, &mut proof) {
                Compared::Consistent => {}
                Compared::Split(e) => {
                    follow = true;
                    alarms.push(Alarm {
                        kind: AlarmKind::SplitView,
                        node: node.to_string(),
                        code: e.code().to_string(),
                        details: format!(
                            "this node's checkpoints {} and then {} cannot both be true: {e}",
                            describe(prev.checkpoint()),
                            describe(cp.checkpoint())
                        ),
                    });
                }
                Compared::NoProof {
                    asked,
                    from,
                    to,
                    error,
                } => {
                    accept = false;
                    alarms.extend(self.no_proof(asked, from, to, error));
                }
                Compared::Failed(e) => {
                    accept = false;
                    alarms.push(Alarm {
                        kind: AlarmKind::BadCheckpoint,
                        node: node.to_string(),
                        code: e.code().to_string(),
                        details: format!("{}: {e}", e.code()),
                    });
                }
            }
        }

        if accept {
            // Every other node's latest view.
            let others: Vec<(String, VerifiedCheckpoint)> = self
                .nodes
                .iter()
                .filter(|(n, _)| n.as_str() != node)
                .filter_map(|(n, t)| t.latest.clone().map(|l| (n.clone(), l)))
                .collect();
            for (other, theirs) in others {
                let pair = if node < other.as_str() {
                    (node.to_string(), other.clone())
                } else {
                    (other.clone(), node.to_string())
                };
                if theirs.checkpoint() == cp.checkpoint() || self.split.contains(&pair) {
                    continue;
                }
                match compare(node, &cp, &other, &theirs, &mut proof) {
                    Compared::Consistent => {}
                    Compared::Split(e) => {
                        alarms.push(Alarm {
                            kind: AlarmKind::SplitView,
                            node: node.to_string(),
                            code: e.code().to_string(),
                            details: format!(
                                "this node's checkpoint {} and node {other}'s {} cannot both be \
                                 true: {e}",
                                describe(cp.checkpoint()),
                                describe(theirs.checkpoint())
                            ),
                        });
                        self.split.insert(pair);
                    }
                    Compared::NoProof {
                        asked,
                        from,
                        to,
                        error,
                    } => alarms.extend(self.no_proof(asked, from, to, error)),
                    Compared::Failed(e) => alarms.push(Alarm {
                        kind: AlarmKind::BadCheckpoint,
                        node: node.to_string(),
                        code: e.code().to_string(),
                        details: format!("against node {other}'s checkpoint: {}: {e}", e.code()),
                    }),
                }
            }

            let track = self.track(node, now);
            let keep_prev = !follow
                && track
                    .latest
                    .as_ref()
                    .is_some_and(|p| larger(p.checkpoint(), cp.checkpoint()));
            if !keep_prev {
                track.latest = Some(cp);
            }
        }
        alarms.extend(self.check_stall(node, now));
        alarms
    }

    fn no_proof(&mut self, asked: String, from: u64, to: u64, error: String) -> Option<Alarm> {
        if !self.proof_failures.insert((asked.clone(), from, to)) {
            return None;
        }
        Some(Alarm {
            kind: AlarmKind::Unreachable,
            node: asked,
            code: "no_consistency_proof".to_string(),
            details: format!("no consistency proof from log size {from} to {to}: {error}"),
        })
    }

    /// A failure of one kind with a code lasting on `node`: the alarm when it starts or its code
    /// changes, nothing while it lasts; and the stall alarm when it is due.
    fn failed(
        &mut self,
        node: &str,
        kind: AlarmKind,
        code: &str,
        details: String,
        now: Timestamp,
    ) -> Vec<Alarm> {
        let key = format!("{kind}/{code}");
        let track = self.track(node, now);
        let mut alarms = Vec::new();
        if track.failing.as_deref() != Some(key.as_str()) {
            track.failing = Some(key);
            alarms.push(Alarm {
                kind,
                node: node.to_string(),
                code: code.to_string(),
                details,
            });
        }
        alarms.extend(self.check_stall(node, now));
        alarms
    }

    /// `node` could not be asked for its checkpoint at `now`: `code` is the transport's or the
    /// node's error code, `details` the message.
    pub fn unreachable(
        &mut self,
        node: &str,
        code: &str,
        details: &str,
        now: Timestamp,
    ) -> Vec<Alarm> {
        self.failed(
            node,
            AlarmKind::Unreachable,
            code,
            format!("{code}: {details}"),
            now,
        )
    }

    /// `node` served a checkpoint that does not verify at `now`.
    pub fn bad_checkpoint(
        &mut self,
        node: &str,
        error: &CheckpointError,
        now: Timestamp,
    ) -> Vec<Alarm> {
        self.failed(
            node,
            AlarmKind::BadCheckpoint,
            error.code(),
            format!("{}: {error}", error.code()),
            now,
        )
    }
}
