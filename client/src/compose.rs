//! Building transactions from what people type: claims, grant scopes, dates.
//!
//! The ledger accepts sets only in canonical form (strictly increasing, no duplicates) and claims
//! only by strictly increasing key, so these helpers sort, deduplicate where that is harmless,
//! and refuse where it is not (two values for one claim).

use vault_protocol::encoding::BoundedVec;
use vault_protocol::ids::{AttestationId, ChainId, DocTypeCode, Timestamp};
use vault_protocol::tx::{Claim, GrantScope, Transaction, TxBody, MAX_CLAIMS, MAX_SCOPE};

use crate::requests::{now, random_nonce};

/// Milliseconds in a day.
pub const DAY_MS: u64 = 86_400_000;

/// Why an input could not be turned into part of a transaction. Each variant has a stable code
/// ([`InputError::code`]).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum InputError {
    /// A claim is not `key=value`, or a part of it is empty or too long.
    #[error("claim {claim:?}: {reason}")]
    InvalidClaim {
        /// The claim as given.
        claim: String,
        /// What is wrong.
        reason: String,
    },
    /// Two claims with one key.
    #[error("claim {key:?} is given twice")]
    DuplicateClaim {
        /// The key.
        key: String,
    },
    /// More claims than an attestation may carry.
    #[error("{count} claims; an attestation carries at most {max}")]
    TooManyClaims {
        /// How many were given.
        count: usize,
        /// The limit.
        max: usize,
    },
    /// A grant's scope is empty.
    #[error("a grant's scope needs at least one document type or attestation")]
    EmptyScope,
    /// A grant's scope is too large.
    #[error("{count} entries in the scope; a grant covers at most {max}")]
    ScopeTooLarge {
        /// How many were given.
        count: usize,
        /// The limit.
        max: usize,
    },
    /// Not a date or time this tool reads.
    #[error("{value:?} is not a date (YYYY-MM-DD) or an RFC 3339 time: {reason}")]
    InvalidDate {
        /// The value as given.
        value: String,
        /// What is wrong.
        reason: String,
    },
}

impl InputError {
    /// A stable machine-readable code.
    pub fn code(&self) -> &'static str {
        match self {
            InputError::InvalidClaim { .. } => "invalid_claim",
            InputError::DuplicateClaim { .. } => "duplicate_claim",
            InputError::TooManyClaims { .. } => "too_many_claims",
            InputError::EmptyScope => "empty_scope",
            InputError::ScopeTooLarge { .. } => "scope_too_large",
            InputError::InvalidDate { .. } => "invalid_date",
        }
    }
}

/// A new transaction on `chain_id`, made now, with a random nonce.
pub fn new_transaction(chain_id: &ChainId, body: TxBody) -> Transaction {
    Transaction {
        chain_id: chain_id.clone(),
        created_at: now(),
        nonce: random_nonce(),
        body,
    }
}

/// One claim from `key=value` (the value may itself contain `=`; surrounding spaces are
/// trimmed).
pub fn parse_claim(s: &str) -> Result<Claim, InputError> {
    let invalid = |reason: &str| InputError::InvalidClaim {
        claim: s.to_string(),
        reason: reason.to_string(),
    };
    let (key, value) = s.split_once('=').ok_or_else(|| invalid("not key=value"))?;
    let (key, value) = (key.trim(), value.trim());
    if key.is_empty() {
        return Err(invalid("the key is empty"));
    }
    Ok(Claim {
        key: key
            .try_into()
            .map_err(|_| invalid("the key is longer than 64 bytes"))?,
        value: value
            .try_into()
            .map_err(|_| invalid("the value is longer than 512 bytes"))?,
    })
}

/// Claims from `key=value;key=value` (a manifest's `claims` column); empty parts are ignored, so
/// an empty string is no claims. The result is sorted by key, as the ledger requires.
pub fn parse_claims(s: &str) -> Result<BoundedVec<Claim, MAX_CLAIMS>, InputError> {
    let claims = s
        .split(';')
        .filter(|part| !part.trim().is_empty())
        .map(parse_claim)
        .collect::<Result<Vec<_>, _>>()?;
    sorted_claims(claims)
}

/// Claims in the order the ledger requires (strictly increasing key). Two claims with one key
/// are refused rather than one silently dropped.
pub fn sorted_claims(mut claims: Vec<Claim>) -> Result<BoundedVec<Claim, MAX_CLAIMS>, InputError> {
    claims.sort_by(|a, b| a.key.cmp(&b.key));
    if let Some(w) = claims.windows(2).find(|w| w[0].key == w[1].key) {
        return Err(InputError::DuplicateClaim {
            key: w[0].key.to_string(),
        });
    }
    let count = claims.len();
    BoundedVec::new(claims).map_err(|_| InputError::TooManyClaims {
        count,
        max: MAX_CLAIMS,
    })
}

fn canonical_set<T: Ord>(mut items: Vec<T>) -> Result<BoundedVec<T, MAX_SCOPE>, InputError> {
    items.sort();
    items.dedup();
    if items.is_empty() {
        return Err(InputError::EmptyScope);
    }
    let count = items.len();
    BoundedVec::new(items).map_err(|_| InputError::ScopeTooLarge {
        count,
        max: MAX_SCOPE,
    })
}

/// A grant's scope over document types, in canonical order (sorted, duplicates dropped).
pub fn document_types_scope(types: &[DocTypeCode]) -> Result<GrantScope, InputError> {
    canonical_set(types.to_vec()).map(GrantScope::DocumentTypes)
}

/// A grant's scope over attestations, in canonical order (sorted, duplicates dropped).
pub fn attestations_scope(ids: &[AttestationId]) -> Result<GrantScope, InputError> {
    canonical_set(ids.to_vec()).map(GrantScope::Attestations)
}

/// Days since 1970-01-01 of a proleptic Gregorian date (Howard Hinnant's days-from-civil).
fn days_from_civil(y: i64, m: i64, d: i64) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (m + 9) % 12;
    let doy = (153 * mp + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

fn days_in_month(y: i64, m: i64) -> i64 {
    match m {
        4 | 6 | 9 | 11 => 30,
        2 if (y % 4 == 0 && y % 100 != 0) || y % 400 == 0 => 29,
        2 => 28,
        _ => 31,
    }
}

fn number(s: &str, what: &str) -> Result<i64, String> {
    if s.is_empty() || !s.bytes().all(|b| b.is_ascii_digit()) {
        return Err(format!("the {what} is not a number"));
    }
    s.parse().map_err(|_| format!("the {what} is not a number"))
}

/// A date or time as a ledger timestamp: `YYYY-MM-DD` (midnight UTC) or an RFC 3339 time
/// `YYYY-MM-DDTHH:MM:SS[.fff](Z|±HH:MM)`.
pub fn parse_date(value: &str) -> Result<Timestamp, InputError> {
    parse_date_inner(value.trim()).map_err(|reason| InputError::InvalidDate {
        value: value.to_string(),
        reason,
    })
}

fn parse_date_inner(s: &str) -> Result<Timestamp, String> {
    let (date, time) = match s.find(['T', 't', ' ']) {
        Some(i) => (&s[..i], Some(&s[i + 1..])),
        None => (s, None),
    };
    let parts: Vec<&str> = date.split('-').collect();
    let [y, m, d] = parts.as_slice() else {
        return Err("the date is not YYYY-MM-DD".into());
    };
    if y.len() != 4 || m.len() != 2 || d.len() != 2 {
        return Err("the date is not YYYY-MM-DD".into());
    }
    let (y, m, d) = (number(y, "year")?, number(m, "month")?, number(d, "day")?);
    if !(1..=12).contains(&m) {
        return Err(format!("month {m} does not exist"));
    }
    if d < 1 || d > days_in_month(y, m) {
        return Err(format!("day {d} does not exist in {y:04}-{m:02}"));
    }
    let mut ms = days_from_civil(y, m, d) * DAY_MS as i64;
    if let Some(time) = time {
        let (clock, offset_ms) = if let Some(c) = time.strip_suffix(['Z', 'z']) {
            (c, 0)
        } else if let Some(i) = time.rfind(['+', '-']) {
            let (c, off) = time.split_at(i);
            let sign = if off.starts_with('-') { -1 } else { 1 };
            let (oh, om) = off[1..].split_once(':').ok_or("the offset is not ±HH:MM")?;
            let (oh, om) = (number(oh, "offset")?, number(om, "offset")?);
            if oh > 23 || om > 59 {
                return Err("the offset is not ±HH:MM".into());
            }
            (c, sign * (oh * 3_600_000 + om * 60_000))
        } else {
            return Err("a time needs its offset (Z or ±HH:MM)".into());
        };
        let (hms, frac) = match clock.split_once('.') {
            Some((hms, frac)) => (hms, Some(frac)),
            None => (clock, None),
        };
        let hms: Vec<&str> = hms.split(':').collect();
        let [h, mi, sec] = hms.as_slice() else {
            return Err("the time is not HH:MM:SS".into());
        };
        let (h, mi, sec) = (
            number(h, "hour")?,
            number(mi, "minute")?,
            number(sec, "second")?,
        );
        if h > 23 || mi > 59 || sec > 60 {
            return Err("the time is not HH:MM:SS".into());
        }
        let frac_ms = match frac {
            Some(f) => {
                let digits: String = f.chars().chain("000".chars()).take(3).collect();
                number(&digits, "fraction of a second")?
            }
            None => 0,
        };
        ms += h * 3_600_000 + mi * 60_000 + sec * 1000 + frac_ms - offset_ms;
    }
    u64::try_from(ms)
        .map(Timestamp)
        .map_err(|_| "times before 1970 cannot be recorded".to_string())
}

#[cfg(test)]
mod tests {
    use super::*;
    use vault_protocol::crypto::Digest;

    #[test]
    fn claims_parse_sorted() {
        let c = parse_claims("licence_no=350100200012345; capital = 100万;b=x=y;;").unwrap();
        let keys: Vec<&str> = c.iter().map(|c| c.key.as_str()).collect();
        assert_eq!(keys, ["b", "capital", "licence_no"]);
        assert_eq!(c[0].value.as_str(), "x=y");
        assert_eq!(c[1].value.as_str(), "100万");
        assert!(c.windows(2).all(|w| w[0].key < w[1].key));
        assert!(parse_claims("").unwrap().is_empty());
        assert!(parse_claims("  ").unwrap().is_empty());
    }

    #[test]
    fn bad_claims_are_refused() {
        assert_eq!(parse_claims("novalue").unwrap_err().code(), "invalid_claim");
        assert_eq!(parse_claims("=v").unwrap_err().code(), "invalid_claim");
        assert_eq!(
            parse_claims("a=1;a=2").unwrap_err(),
            InputError::DuplicateClaim { key: "a".into() }
        );
        let long_key = format!("{}=v", "k".repeat(65));
        assert_eq!(parse_claims(&long_key).unwrap_err().code(), "invalid_claim");
        let many: Vec<String> = (0..33).map(|i| format!("k{i:02}=v")).collect();
        assert_eq!(
            parse_claims(&many.join(";")).unwrap_err(),
            InputError::TooManyClaims { count: 33, max: 32 }
        );
    }

    #[test]
    fn scopes_are_canonical() {
        let t = |s: &str| DocTypeCode::new(s).unwrap();
        let scope = document_types_scope(&[
            t("TAX_CREDIT"),
            t("BUSINESS_LICENCE"),
            t("TAX_CREDIT"),
            t("A.B"),
        ])
        .unwrap();
        let GrantScope::DocumentTypes(types) = scope else {
            panic!("wrong scope kind")
        };
        assert!(types.is_strictly_sorted());
        let names: Vec<&str> = types.iter().map(|t| t.as_str()).collect();
        assert_eq!(names, ["A.B", "BUSINESS_LICENCE", "TAX_CREDIT"]);

        let a = |b: u8| AttestationId(Digest([b; 32]));
        let GrantScope::Attestations(ids) = attestations_scope(&[a(9), a(1), a(9), a(5)]).unwrap()
        else {
            panic!("wrong scope kind")
        };
        assert_eq!(ids.as_slice(), &[a(1), a(5), a(9)]);

        assert_eq!(document_types_scope(&[]), Err(InputError::EmptyScope));
        let too_many: Vec<AttestationId> = (0..65).map(|i| a(i as u8)).collect();
        assert_eq!(
            attestations_scope(&too_many),
            Err(InputError::ScopeTooLarge { count: 65, max: 64 })
        );
    }

    #[test]
    fn dates() {
        assert_eq!(parse_date("1970-01-01").unwrap(), Timestamp(0));
        assert_eq!(
            parse_date("2026-11-26T13:33:20.123Z").unwrap(),
            Timestamp(1_795_700_000_123)
        );
        assert_eq!(
            parse_date("2026-11-26T21:33:20.123+08:00").unwrap(),
            Timestamp(1_795_700_000_123)
        );
        assert_eq!(
            parse_date("2024-02-29").unwrap().to_string(),
            "2024-02-29T00:00:00.000Z"
        );
        for bad in [
            "2023-02-29",
            "2024-13-01",
            "24-01-01",
            "2024/01/01",
            "2024-01-01T10:00:00",
            "1969-12-31",
            "",
            "yesterday",
        ] {
            assert_eq!(parse_date(bad).unwrap_err().code(), "invalid_date", "{bad}");
        }
    }
}
