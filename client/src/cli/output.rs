//! Readable output: verdicts, tables, sizes and times.

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use serde::Serialize;
use vault_protocol::ids::Timestamp;
use vault_protocol::tx::{GrantScope, Grantee};
use vault_protocol::verify::{Outcome, Verdict};

/// A value's serialised name (`issuer_key`, `revoke`, …).
pub fn name_of<T: Serialize>(t: &T) -> String {
    match serde_json::to_value(t) {
        Ok(serde_json::Value::String(s)) => s,
        Ok(other) => other.to_string(),
        Err(_) => String::new(),
    }
}

/// A time for people: `2026-11-26 13:33:20 UTC`.
pub fn when(t: Timestamp) -> String {
    let s = t.to_string();
    match s.get(..19) {
        Some(head) => format!("{} UTC", head.replace('T', " ")),
        None => s,
    }
}

/// A duration for people, to the second: `45 s`, `5 min 3 s`, `2 h 5 min`, `3 d 4 h`.
pub fn age(ms: u64) -> String {
    let s = ms / 1000;
    let (d, h, m, s) = (s / 86_400, s / 3600 % 24, s / 60 % 60, s % 60);
    match (d, h, m) {
        (0, 0, 0) => format!("{s} s"),
        (0, 0, m) => format!("{m} min {s} s"),
        (0, h, m) => format!("{h} h {m} min"),
        (d, h, _) => format!("{d} d {h} h"),
    }
}

/// A size for people: `1.2 MiB (1,234,567 bytes)`.
pub fn size(bytes: u64) -> String {
    const UNITS: [&str; 4] = ["KiB", "MiB", "GiB", "TiB"];
    if bytes < 1024 {
        return format!("{bytes} bytes");
    }
    let mut v = bytes as f64 / 1024.0;
    let mut unit = UNITS[0];
    for u in &UNITS[1..] {
        if v < 1024.0 {
            break;
        }
        v /= 1024.0;
        unit = u;
    }
    format!("{v:.1} {unit} ({bytes} bytes)")
}

/// A grantee for a table: a department by id, an application by the start of its key.
pub fn grantee(g: &Grantee) -> String {
    match g {
        Grantee::Department(d) => format!("department {d}"),
        Grantee::Application(k) => {
            let hex = k.to_hex();
            format!("application {}…", &hex[..16.min(hex.len())])
        }
    }
}

/// A grant's scope for people.
pub fn scope(s: &GrantScope) -> String {
    match s {
        GrantScope::DocumentTypes(types) => {
            let names: Vec<&str> = types.iter().map(|t| t.as_str()).collect();
            format!("types {}", names.join(","))
        }
        GrantScope::Attestations(ids) => {
            let short: Vec<String> = ids
                .iter()
                .map(|a| {
                    let hex = a.to_string();
                    format!("{}…", &hex[..12.min(hex.len())])
                })
                .collect();
            format!("attestations {}", short.join(","))
        }
    }
}

/// Columns a character takes in a terminal: two for the wide CJK ranges, one otherwise.
fn char_width(c: char) -> usize {
    let c = c as u32;
    let wide = (0x1100..=0x115F).contains(&c)
        || (0x2E80..=0xA4CF).contains(&c)
        || (0xAC00..=0xD7A3).contains(&c)
        || (0xF900..=0xFAFF).contains(&c)
        || (0xFE30..=0xFE4F).contains(&c)
        || (0xFF00..=0xFF60).contains(&c)
        || (0xFFE0..=0xFFE6).contains(&c)
        || (0x20000..=0x3FFFD).contains(&c);
    if wide {
        2
    } else {
        1
    }
}

/// Columns a string takes in a terminal.
pub fn width(s: &str) -> usize {
    s.chars().map(char_width).sum()
}

/// Prints a table with a header row, columns padded to their widest cell.
pub fn table(header: &[&str], rows: &[Vec<String>]) {
    let mut widths: Vec<usize> = header.iter().map(|h| width(h)).collect();
    for row in rows {
        for (i, cell) in row.iter().enumerate() {
            if let Some(w) = widths.get_mut(i) {
                *w = (*w).max(width(cell));
            }
        }
    }
    let line = |cells: Vec<&str>| {
        let mut out = String::new();
        let last = cells.len().saturating_sub(1);
        for (i, cell) in cells.into_iter().enumerate() {
            out.push_str(cell);
            if i < last {
                let pad = widths[i].saturating_sub(width(cell)) + 2;
                out.push_str(&" ".repeat(pad));
            }
        }
        out
    };
    println!("{}", line(header.to_vec()));
    for row in rows {
        println!("{}", line(row.iter().map(String::as_str).collect()));
    }
}

/// Prints a verdict: what the attestation is, its status and history, and every check.
pub fn print_verdict(v: &Verdict) {
    println!("attestation {}", v.attestation_id);
    println!(
        "  {} {} for {} — issued by {} ({}) at height {}, {}",
        v.doc_type,
        v.doc_type_name,
        v.subject,
        v.issuer,
        v.issuer_name,
        v.issued_height,
        when(v.issued_at)
    );
    println!(
        "  valid from {}{}",
        when(v.valid_from),
        v.valid_until
            .map(|t| format!(" until {}", when(t)))
            .unwrap_or_else(|| ", does not expire".to_string())
    );
    if !v.claims.is_empty() {
        let claims: Vec<String> = v
            .claims
            .iter()
            .map(|c| format!("{}={}", c.key, c.value))
            .collect();
        println!("  claims {}", claims.join(", "));
    }
    for e in &v.status_history {
        let note = if e.note.is_empty() {
            String::new()
        } else {
            format!(" — {}", e.note)
        };
        println!(
            "  {} {} → {} (reason code {}{note}) at height {}",
            when(e.at),
            name_of(&e.action),
            e.status,
            e.reason_code,
            e.height
        );
    }
    if let Some(by) = &v.superseded_by {
        println!("  superseded by {by}");
    }
    println!(
        "  status {}   verdict: {}",
        v.status,
        if v.valid { "VALID" } else { "NOT VALID" }
    );
    for c in &v.checks {
        let mark = match c.outcome {
            Outcome::Pass => "ok  ",
            Outcome::Fail => "FAIL",
            Outcome::Skipped => "skip",
        };
        let reason = c
            .reason
            .map(|r| format!(" [{}]", r.code()))
            .unwrap_or_default();
        println!("  {mark} {:<18} {}{reason}", name_of(&c.check), c.detail);
    }
}

/// Prints JSON on one line.
pub fn json<T: Serialize>(v: &T) {
    match serde_json::to_string(v) {
        Ok(s) => println!("{s}"),
        Err(e) => eprintln!("error: cannot print JSON: {e}"),
    }
}

/// A progress bar over bytes for transfers over 1 MiB, on standard error; hidden for smaller
/// files and when printing JSON (and by indicatif when standard error is not a terminal).
pub fn transfer_bar(len: u64, message: &str, hidden: bool) -> ProgressBar {
    if hidden || len <= 1024 * 1024 {
        return ProgressBar::hidden();
    }
    let bar = ProgressBar::with_draw_target(Some(len), ProgressDrawTarget::stderr());
    bar.set_style(
        ProgressStyle::with_template(
            "{msg} [{bar:30}] {bytes}/{total_bytes} {bytes_per_sec} eta {eta}",
        )
        .unwrap_or_else(|_| ProgressStyle::default_bar())
        .progress_chars("=> "),
    );
    bar.set_message(message.to_string());
    bar
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn widths_count_cjk_double() {
        assert_eq!(width("abc"), 3);
        assert_eq!(width("营业执照"), 8);
        assert_eq!(width("P-001 建筑业"), 12);
    }

    #[test]
    fn sizes_and_times() {
        assert_eq!(size(512), "512 bytes");
        assert_eq!(size(1536), "1.5 KiB (1536 bytes)");
        assert_eq!(size(3 * 1024 * 1024), "3.0 MiB (3145728 bytes)");
        assert_eq!(
            when(Timestamp(1_795_700_000_123)),
            "2026-11-26 13:33:20 UTC"
        );
        assert_eq!(age(999), "0 s");
        assert_eq!(age(45_000), "45 s");
        assert_eq!(age(303_500), "5 min 3 s");
        assert_eq!(age(7_500_000), "2 h 5 min");
        assert_eq!(age(3 * 86_400_000 + 4 * 3_600_000 + 59_000), "3 d 4 h");
    }
}
