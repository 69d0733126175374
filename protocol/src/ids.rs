//! Identifiers and time.

use std::fmt;
use std::str::FromStr;

use borsh::{BorshDeserialize, BorshSerialize};
use serde::{Deserialize, Serialize};

use crate::crypto::{Digest, HexError};
use crate::encoding::BoundedString;

/// Why a code (department id, document-type code, chain id) is not valid.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CodeError {
    /// Too short or too long.
    #[error("{kind} must be {min} to {max} characters, got {len}")]
    Length {
        /// What kind of code.
        kind: &'static str,
        /// Length given.
        len: usize,
        /// Minimum length.
        min: usize,
        /// Maximum length.
        max: usize,
    },
    /// A character outside the code's alphabet.
    #[error("{kind} may contain only {allowed}; found {found:?} at position {position}")]
    Character {
        /// What kind of code.
        kind: &'static str,
        /// The allowed characters, in words.
        allowed: &'static str,
        /// The offending character.
        found: char,
        /// Its 1-based position.
        position: usize,
    },
}

fn check_code(
    kind: &'static str,
    s: &str,
    min: usize,
    max: usize,
    allowed: &'static str,
    ok: impl Fn(char) -> bool,
) -> Result<(), CodeError> {
    let len = s.chars().count();
    if len < min || len > max {
        return Err(CodeError::Length {
            kind,
            len,
            min,
            max,
        });
    }
    if let Some((i, c)) = s.chars().enumerate().find(|(_, c)| !ok(*c)) {
        return Err(CodeError::Character {
            kind,
            allowed,
            found: c,
            position: i + 1,
        });
    }
    Ok(())
}

macro_rules! code_type {
    ($(#[$doc:meta])* $name:ident, $kind:literal, $min:literal, $max:literal, $allowed:literal, $ok:expr) => {
        $(#[$doc])*
        #[derive(Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, BorshSerialize)]
        #[serde(transparent)]
        pub struct $name(BoundedString<$max>);

        impl $name {
            /// Parses and validates a code.
            pub fn new(s: &str) -> Result<Self, CodeError> {
                check_code($kind, s, $min, $max, $allowed, $ok)?;
                // The length was checked above, so the bound holds.
                BoundedString::new(s)
                    .map(Self)
                    .map_err(|e| CodeError::Length { kind: $kind, len: e.len, min: $min, max: $max })
            }

            /// The code.
            pub fn as_str(&self) -> &str {
                self.0.as_str()
            }
        }

        impl fmt::Debug for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                write!(f, "{}({})", stringify!($name), self.as_str())
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(self.as_str())
            }
        }

        impl FromStr for $name {
            type Err = CodeError;
            fn from_str(s: &str) -> Result<Self, CodeError> {
                Self::new(s)
            }
        }

        impl BorshDeserialize for $name {
            fn deserialize_reader<R: std::io::Read>(reader: &mut R) -> std::io::Result<Self> {
                let s = BoundedString::<$max>::deserialize_reader(reader)?;
                Self::new(s.as_str()).map_err(|e| {
                    std::io::Error::new(std::io::ErrorKind::InvalidData, e.to_string())
                })
            }
        }

        impl<'de> Deserialize<'de> for $name {
            fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
                let s = <std::borrow::Cow<'de, str> as Deserialize>::deserialize(d)?;
                Self::new(&s).map_err(serde::de::Error::custom)
            }
        }
    };
}

code_type!(
    /// A department's id on the ledger, e.g. `samr` (市场监管局) or `tax` (税务局): 2–32 characters
    /// of lowercase ASCII letters, digits and `-`.
    DepartmentId,
    "department id",
    2,
    32,
    "lowercase letters, digits and '-'",
    |c: char| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-'
);

code_type!(
    /// A document-type code, e.g. `BUSINESS_LICENCE` (营业执照): 2–40 characters of uppercase
    /// ASCII letters, digits, `_` and `.`.
    DocTypeCode,
    "document type code",
    2,
    40,
    "uppercase letters, digits, '_' and '.'",
    |c: char| c.is_ascii_uppercase() || c.is_ascii_digit() || c == '_' || c == '.'
);

code_type!(
    /// A chain's id, e.g. `jinan-vault-1`: 2–64 characters of lowercase ASCII letters, digits,
    /// `-` and `.`. It is part of every signed transaction, so signatures cannot be replayed on
    /// another chain.
    ChainId,
    "chain id",
    2,
    64,
    "lowercase letters, digits, '-' and '.'",
    |c: char| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-' || c == '.'
);

macro_rules! digest_id {
    ($(#[$doc:meta])* $name:ident) => {
        $(#[$doc])*
        #[derive(
            Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default,
            BorshSerialize, BorshDeserialize, Serialize, Deserialize,
        )]
        #[serde(transparent)]
        pub struct $name(pub Digest);

        impl fmt::Debug for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                write!(f, "{}({})", stringify!($name), self.0)
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                fmt::Display::fmt(&self.0, f)
            }
        }

        impl FromStr for $name {
            type Err = HexError;
            fn from_str(s: &str) -> Result<Self, HexError> {
                s.parse().map(Self)
            }
        }
    };
}

digest_id!(
    /// A transaction's id: the domain-separated hash of its unsigned content.
    TxId
);
digest_id!(
    /// An attestation's id: the id of the transaction that issued it.
    AttestationId
);
digest_id!(
    /// A grant's id: the id of the transaction that made it.
    GrantId
);
digest_id!(
    /// An access receipt's id: the hash of its transaction's id and its index within it.
    ReceiptId
);
digest_id!(
    /// A block's hash: the domain-separated hash of its header.
    BlockHash
);

/// Milliseconds since the Unix epoch, UTC.
#[derive(
    Clone,
    Copy,
    PartialEq,
    Eq,
    PartialOrd,
    Ord,
    Hash,
    Default,
    Debug,
    BorshSerialize,
    BorshDeserialize,
    Serialize,
    Deserialize,
)]
#[serde(transparent)]
pub struct Timestamp(pub u64);

impl Timestamp {
    /// Milliseconds since the epoch.
    pub fn millis(self) -> u64 {
        self.0
    }

    /// `self + ms`, saturating.
    pub fn plus(self, ms: u64) -> Timestamp {
        Timestamp(self.0.saturating_add(ms))
    }

    /// `self - ms`, saturating at the epoch.
    pub fn minus(self, ms: u64) -> Timestamp {
        Timestamp(self.0.saturating_sub(ms))
    }
}

impl From<std::time::SystemTime> for Timestamp {
    /// The time as milliseconds since the epoch (times before it become 0).
    fn from(t: std::time::SystemTime) -> Self {
        Timestamp(
            t.duration_since(std::time::UNIX_EPOCH)
                .map(|d| d.as_millis() as u64)
                .unwrap_or(0),
        )
    }
}

impl fmt::Display for Timestamp {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // Civil-from-days (Howard Hinnant), so the protocol needs no date crate.
        let ms = self.0 % 1000;
        let secs = self.0 / 1000;
        let days = (secs / 86_400) as i64;
        let rem = secs % 86_400;
        let z = days + 719_468;
        let era = z.div_euclid(146_097);
        let doe = z.rem_euclid(146_097);
        let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
        let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
        let mp = (5 * doy + 2) / 153;
        let d = doy - (153 * mp + 2) / 5 + 1;
        let m = if mp < 10 { mp + 3 } else { mp - 9 };
        let y = yoe + era * 400 + i64::from(m <= 2);
        write!(
            f,
            "{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}.{ms:03}Z",
            rem / 3600,
            (rem / 60) % 60,
            rem % 60
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn department_ids() {
        assert!(DepartmentId::new("samr").is_ok());
        assert!(DepartmentId::new("hr-ss2").is_ok());
        assert!(matches!(
            DepartmentId::new("S"),
            Err(CodeError::Length { len: 1, .. })
        ));
        assert!(matches!(
            DepartmentId::new("Samr"),
            Err(CodeError::Character {
                found: 'S',
                position: 1,
                ..
            })
        ));
        assert!(DepartmentId::new("市场").is_err());
    }

    #[test]
    fn doc_type_codes() {
        assert!(DocTypeCode::new("BUSINESS_LICENCE").is_ok());
        assert!(DocTypeCode::new("business").is_err());
    }

    #[test]
    fn codes_decode_only_when_valid() {
        let bad = borsh::to_vec(&BoundedString::<32>::new("BAD!").unwrap()).unwrap();
        assert!(borsh::from_slice::<DepartmentId>(&bad).is_err());
        let good = borsh::to_vec(&DepartmentId::new("tax").unwrap()).unwrap();
        assert_eq!(
            borsh::from_slice::<DepartmentId>(&good).unwrap().as_str(),
            "tax"
        );
        assert!(serde_json::from_str::<DepartmentId>("\"TAX\"").is_err());
    }

    #[test]
    fn timestamp_display() {
        assert_eq!(Timestamp(0).to_string(), "1970-01-01T00:00:00.000Z");
        assert_eq!(
            Timestamp(1_795_700_000_123).to_string(),
            "2026-11-26T13:33:20.123Z"
        );
    }
}
