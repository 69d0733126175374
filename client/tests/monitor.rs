//! The checkpoint monitor's decisions on real, cosigned checkpoints of in-memory ledgers: an
//! honest network raises nothing; forks of one genesis, a node that changes its story, a stall,
//! an unreachable node and a bad checkpoint each raise their alarm, once.

#![allow(clippy::unwrap_used)]

mod common;

use std::cell::RefCell;
use std::collections::BTreeMap;

use common::Chain;
use vault_client::monitor::{AlarmKind, Monitor};
use vault_protocol::checkpoint::cosigned_checkpoint_verdict;
use vault_protocol::ids::Timestamp;
use vault_protocol::merkle::ConsistencyProof;

const SECOND: u64 = 1000;

/// Proofs served by each node from its own ledger; records who was asked for what.
struct Nodes<'a> {
    ledgers: BTreeMap<&'static str, &'a Chain>,
    asked: RefCell<Vec<(String, u64, u64)>>,
}

impl<'a> Nodes<'a> {
    fn new(ledgers: &[(&'static str, &'a Chain)]) -> Self {
        Nodes {
            ledgers: ledgers.iter().copied().collect(),
            asked: RefCell::new(Vec::new()),
        }
    }

    fn proof(&self) -> impl FnMut(&str, u64, u64) -> Result<ConsistencyProof, String> + '_ {
        |holder, from, to| {
            self.asked.borrow_mut().push((holder.to_string(), from, to));
            self.ledgers[holder].proof(from, to)
        }
    }

    fn asked(&self) -> Vec<(String, u64, u64)> {
        std::mem::take(&mut *self.asked.borrow_mut())
    }
}

fn t(s: u64) -> Timestamp {
    Timestamp(1_800_000_000_000 + s * SECOND)
}

#[test]
fn an_honest_network_raises_no_alarm() {
    let mut chain = Chain::new();
    let mut m = Monitor::new(30 * SECOND);
    // Node a is at the head; node b lags one block behind; both serve the one ledger.
    let mut behind = None;
    let mut cross = Vec::new();
    for round in 0..6u32 {
        if round == 3 {
            // An empty block: a new height with the same log size (no proof needed).
            chain.block(vec![]);
        } else {
            chain.enrol(round * 10 + 1, round + 1);
        }
        let head = chain.verified();
        let nodes = Nodes::new(&[("a", &chain), ("b", &chain)]);
        let now = t(u64::from(round));
        assert_eq!(m.observe("a", head.clone(), now, nodes.proof()), []);
        for (holder, from, to) in nodes.asked() {
            // a's step from its previous checkpoint, proven by a.
            assert_eq!(holder, "a");
            assert!(from < to);
        }
        if let Some(cp) = behind.replace(head) {
            assert_eq!(m.observe("b", cp, now, nodes.proof()), []);
            // b's own step, proven by b, and b against a's larger log, proven by a.
            cross.extend(nodes.asked().into_iter().filter(|(h, _, _)| h == "a"));
        }
    }
    assert_eq!(
        m.latest("a").unwrap().checkpoint(),
        &chain.checkpoint(),
        "a follows the head"
    );
    // b behind a: the proof came from a, the holder of the larger log, from b's size to a's.
    // (Round 3's empty block left the size alone: no proof for that comparison.)
    // Sizes by round: 1, 3, 6, 6, 11, 17.
    let cross: Vec<(&str, u64, u64)> = cross.iter().map(|(h, f, t)| (h.as_str(), *f, *t)).collect();
    assert_eq!(
        cross,
        [("a", 1, 3), ("a", 3, 6), ("a", 6, 11), ("a", 11, 17)]
    );

    // A node that serves an older (consistent) checkpoint again raises nothing and keeps its
    // latest.
    let latest = m.latest("a").unwrap().clone();
    let old = m.latest("b").unwrap().clone();
    let nodes = Nodes::new(&[("a", &chain), ("b", &chain)]);
    assert_eq!(m.observe("a", old, t(7), nodes.proof()), []);
    assert_eq!(m.latest("a"), Some(&latest));
}

#[test]
fn two_forks_of_one_genesis_are_a_split_view() {
    let mut base = Chain::new();
    base.enrol(1, 2);
    base.enrol(3, 1);
    // Same height, same size, different transactions: no proof is needed to see the split.
    let mut left = base.clone();
    let mut right = base.clone();
    left.enrol(100, 1);
    right.enrol(200, 1);
    assert_eq!(left.checkpoint().size, right.checkpoint().size);
    let mut m = Monitor::new(30 * SECOND);
    let nodes = Nodes::new(&[("a", &left), ("b", &right)]);
    assert_eq!(m.observe("a", left.verified(), t(0), nodes.proof()), []);
    let alarms = m.observe("b", right.verified(), t(0), nodes.proof());
    assert_eq!(alarms.len(), 1, "{alarms:?}");
    let a = &alarms[0];
    assert_eq!(
        (a.kind, a.node.as_str(), a.code.as_str()),
        (AlarmKind::SplitView, "b", "split_view")
    );
    assert!(a.details.contains("node a"), "{}", a.details);
    assert!(
        a.details.contains("same tree size, different roots"),
        "{}",
        a.details
    );
    assert!(a.to_string().starts_with("ALARM SPLIT_VIEW b "), "{a}");
    assert_eq!(nodes.asked(), []);

    // The two keep diverging: known split, not raised again.
    left.enrol(101, 1);
    right.enrol(201, 2);
    right.enrol(203, 1);
    let nodes = Nodes::new(&[("a", &left), ("b", &right)]);
    assert_eq!(m.observe("a", left.verified(), t(1), nodes.proof()), []);
    assert_eq!(m.observe("b", right.verified(), t(1), nodes.proof()), []);

    // A third node on the right fork, a block further and with a larger log than the left: the
    // proof is asked of it (it holds the larger log) and does not reach the left's root.
    let nodes = Nodes::new(&[("a", &left), ("b", &right), ("c", &right)]);
    let alarms = m.observe("c", right.verified(), t(2), nodes.proof());
    let asked = nodes.asked();
    let (l, r) = (left.checkpoint().size, right.checkpoint().size);
    assert!(l < r);
    assert!(asked.contains(&("c".to_string(), l, r)), "{asked:?}");
    assert_eq!(alarms.len(), 1, "{alarms:?}");
    assert_eq!(
        (alarms[0].kind, alarms[0].node.as_str()),
        (AlarmKind::SplitView, "c")
    );
    assert!(
        alarms[0].details.contains("node a"),
        "{}",
        alarms[0].details
    );
    assert!(
        alarms[0]
            .details
            .contains("consistency proof does not verify"),
        "{}",
        alarms[0].details
    );
}

#[test]
fn a_node_that_changes_its_story_is_a_split_view_of_its_own() {
    let mut base = Chain::new();
    base.enrol(1, 1);
    let mut left = base.clone();
    let mut right = base.clone();
    left.enrol(100, 1);
    right.enrol(200, 2);
    right.enrol(202, 1);
    let mut m = Monitor::new(30 * SECOND);
    let nodes = Nodes::new(&[("a", &left)]);
    assert_eq!(m.observe("a", base.verified(), t(0), nodes.proof()), []);
    assert_eq!(m.observe("a", left.verified(), t(1), nodes.proof()), []);
    // Node a now serves the other fork, further on: its proof (from its new log) cannot link
    // what it said before.
    let nodes = Nodes::new(&[("a", &right)]);
    let alarms = m.observe("a", right.verified(), t(2), nodes.proof());
    assert_eq!(alarms.len(), 1, "{alarms:?}");
    assert_eq!(alarms[0].kind, AlarmKind::SplitView);
    assert!(
        alarms[0].details.contains("this node's checkpoints"),
        "{}",
        alarms[0].details
    );
    assert_eq!(
        nodes.asked(),
        [(
            "a".to_string(),
            left.checkpoint().size,
            right.checkpoint().size
        )]
    );
    // The monitor follows its new story (one alarm, not one per round).
    assert_eq!(m.latest("a").unwrap().checkpoint(), &right.checkpoint());
    assert_eq!(m.observe("a", right.verified(), t(3), nodes.proof()), []);
}

#[test]
fn a_height_that_stands_still_is_stalled_once_until_it_advances() {
    let mut chain = Chain::new();
    chain.enrol(1, 1);
    let mut m = Monitor::new(30 * SECOND);
    let nodes = Nodes::new(&[("a", &chain)]);
    let cp = chain.verified();
    assert_eq!(m.observe("a", cp.clone(), t(0), nodes.proof()), []);
    assert_eq!(m.observe("a", cp.clone(), t(30), nodes.proof()), []);
    let alarms = m.observe("a", cp.clone(), t(31), nodes.proof());
    assert_eq!(alarms.len(), 1, "{alarms:?}");
    assert_eq!(
        (alarms[0].kind, alarms[0].code.as_str()),
        (AlarmKind::Stalled, "stalled")
    );
    assert!(
        alarms[0]
            .details
            .contains("height 1 has not advanced for 31 s"),
        "{}",
        alarms[0].details
    );
    assert_eq!(m.observe("a", cp.clone(), t(50), nodes.proof()), []);

    // It advances: no alarm, and the clock starts again.
    chain.enrol(2, 1);
    let nodes = Nodes::new(&[("a", &chain)]);
    let next = chain.verified();
    assert_eq!(m.observe("a", next.clone(), t(51), nodes.proof()), []);
    assert_eq!(m.observe("a", next.clone(), t(81), nodes.proof()), []);
    let alarms = m.observe("a", next, t(82), nodes.proof());
    assert_eq!(alarms.len(), 1);
    assert_eq!(alarms[0].kind, AlarmKind::Stalled);

    // A node that cannot be asked stalls too.
    let mut m = Monitor::new(30 * SECOND);
    let first = m.unreachable("b", "unreachable", "connection refused", t(0));
    assert_eq!(first.len(), 1);
    let later = m.unreachable("b", "unreachable", "connection refused", t(31));
    assert_eq!(later.len(), 1, "{later:?}");
    assert_eq!(later[0].kind, AlarmKind::Stalled);
    assert!(
        later[0].details.contains("no checkpoint has been seen"),
        "{}",
        later[0].details
    );
}

#[test]
fn unreachable_nodes_and_bad_checkpoints_are_raised_once_while_they_last() {
    let mut chain = Chain::new();
    chain.enrol(1, 1);
    let mut m = Monitor::new(300 * SECOND);
    let a = m.unreachable("a", "unreachable", "connection refused", t(0));
    assert_eq!(a.len(), 1);
    assert_eq!(
        a[0].to_string(),
        "ALARM UNREACHABLE a unreachable: connection refused"
    );
    assert_eq!(
        m.unreachable("a", "unreachable", "connection refused", t(1)),
        []
    );

    // Too few cosigners: the checkpoint does not verify.
    let gov = chain.net.genesis.governance();
    let e = cosigned_checkpoint_verdict(chain.note(&["samr", "tax"]), &gov, None).unwrap_err();
    let bad = m.bad_checkpoint("a", &e, t(2));
    assert_eq!(bad.len(), 1);
    assert_eq!(
        (bad[0].kind, bad[0].code.as_str()),
        (AlarmKind::BadCheckpoint, "too_few_cosigners")
    );
    assert!(bad[0]
        .to_string()
        .starts_with("ALARM BAD_CHECKPOINT a too_few_cosigners: "));
    assert_eq!(m.bad_checkpoint("a", &e, t(3)), []);

    // Back to normal, then down again: raised again.
    let nodes = Nodes::new(&[("a", &chain)]);
    assert_eq!(m.observe("a", chain.verified(), t(4), nodes.proof()), []);
    assert_eq!(
        m.unreachable("a", "unreachable", "timed out", t(5)).len(),
        1
    );
}

#[test]
fn a_missing_consistency_proof_is_raised_and_the_step_checked_later() {
    let mut chain = Chain::new();
    chain.enrol(1, 2);
    let first = chain.verified();
    chain.enrol(3, 3);
    let second = chain.verified();
    let mut m = Monitor::new(300 * SECOND);
    let fail = |_: &str, _: u64, _: u64| Err::<ConsistencyProof, _>("HTTP 503".to_string());
    assert_eq!(m.observe("a", first.clone(), t(0), fail), []);
    let alarms = m.observe("a", second.clone(), t(1), fail);
    assert_eq!(alarms.len(), 1, "{alarms:?}");
    assert_eq!(
        (alarms[0].kind, alarms[0].code.as_str()),
        (AlarmKind::Unreachable, "no_consistency_proof")
    );
    assert!(
        alarms[0].details.contains("from log size 2 to 5"),
        "{}",
        alarms[0].details
    );
    // The unproven step is not taken: a's latest stays the first, and the same failure is not
    // raised twice.
    assert_eq!(m.latest("a"), Some(&first));
    assert_eq!(m.observe("a", second.clone(), t(2), fail), []);
    // Once the proof comes, the step is checked and taken.
    let nodes = Nodes::new(&[("a", &chain)]);
    assert_eq!(m.observe("a", second.clone(), t(3), nodes.proof()), []);
    assert_eq!(nodes.asked(), [("a".to_string(), 2, 5)]);
    assert_eq!(m.latest("a"), Some(&second));
}
