//! Canonical encoding.
//!
//! Everything that is signed, hashed, stored or sent is encoded with [borsh], whose specification
//! gives every value exactly one byte string (fixed-width little-endian integers, `u32` length
//! prefixes, strict `0`/`1` for `bool` and `Option`, checked enum tags and UTF-8). On top of that:
//!
//! - every top-level object starts with a one-byte format version ([`FORMAT_VERSION`]);
//! - every variable-length field of what is signed or sent has a hard upper bound, checked
//!   *before* anything is allocated ([`BoundedString`], [`BoundedVec`]); the ledger's own records
//!   are bounded by the rules that write them and by their type's size limit;
//! - a whole object has a maximum size, and bytes left over after decoding are an error.
//!
//! Maps and floating-point values never appear in encoded types: a set is a [`BoundedVec`] whose
//! validity rules require strictly increasing order.

use std::fmt;
use std::io::{Read, Write};
use std::ops::Deref;

use borsh::{BorshDeserialize, BorshSerialize};
use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// The format version written as the first byte of every encoded top-level object.
pub const FORMAT_VERSION: u8 = 1;

/// Why bytes could not be decoded into a value.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DecodeError {
    /// The input was empty: not even a version byte.
    #[error("empty input: expected a version byte")]
    Empty,
    /// The input is longer than any valid object of this kind.
    #[error("input of {len} bytes exceeds the limit of {max} bytes")]
    TooLong {
        /// Bytes given.
        len: usize,
        /// The limit for this kind of object.
        max: usize,
    },
    /// The format version byte is not one this software understands.
    #[error("unsupported format version {found} (expected {expected})")]
    UnsupportedVersion {
        /// Version byte found.
        found: u8,
        /// The version this software writes and reads.
        expected: u8,
    },
    /// Bytes remained after a complete value was read.
    #[error("{count} trailing bytes after a complete value")]
    TrailingBytes {
        /// How many bytes were left over.
        count: usize,
    },
    /// The bytes do not form a valid value (bad tag, bad UTF-8, over a length bound, truncated…).
    #[error("malformed encoding: {message}")]
    Malformed {
        /// What the decoder reported.
        message: String,
    },
}

impl DecodeError {
    /// A stable machine-readable code for this error.
    pub fn code(&self) -> &'static str {
        match self {
            DecodeError::Empty => "decode_empty",
            DecodeError::TooLong { .. } => "decode_too_long",
            DecodeError::UnsupportedVersion { .. } => "decode_unsupported_version",
            DecodeError::TrailingBytes { .. } => "decode_trailing_bytes",
            DecodeError::Malformed { .. } => "decode_malformed",
        }
    }
}

/// A type with a canonical, versioned byte encoding and a size limit.
pub trait Canonical: BorshSerialize + BorshDeserialize + Sized {
    /// The largest encoding (version byte included) accepted by [`Canonical::decode`].
    const MAX_ENCODED_LEN: usize;

    /// The canonical encoding: the version byte, then the borsh encoding.
    fn encode(&self) -> Vec<u8> {
        let mut out = vec![FORMAT_VERSION];
        // Writing into a Vec cannot fail.
        let _ = BorshSerialize::serialize(self, &mut out);
        out
    }

    /// Decodes the canonical encoding, rejecting anything else: a wrong version, a value over a
    /// bound, non-canonical bytes, or trailing bytes.
    fn decode(bytes: &[u8]) -> Result<Self, DecodeError> {
        if bytes.len() > Self::MAX_ENCODED_LEN {
            return Err(DecodeError::TooLong {
                len: bytes.len(),
                max: Self::MAX_ENCODED_LEN,
            });
        }
        let (&version, mut rest) = bytes.split_first().ok_or(DecodeError::Empty)?;
        if version != FORMAT_VERSION {
            return Err(DecodeError::UnsupportedVersion {
                found: version,
                expected: FORMAT_VERSION,
            });
        }
        let value = Self::deserialize(&mut rest).map_err(|e| DecodeError::Malformed {
            message: e.to_string(),
        })?;
        if !rest.is_empty() {
            return Err(DecodeError::TrailingBytes { count: rest.len() });
        }
        Ok(value)
    }
}

fn invalid_data(message: String) -> std::io::Error {
    std::io::Error::new(std::io::ErrorKind::InvalidData, message)
}

/// Why a bounded value could not be built.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("length {len} exceeds the bound of {max}")]
pub struct BoundError {
    /// Length given.
    pub len: usize,
    /// The bound.
    pub max: usize,
}

/// A UTF-8 string of at most `MAX` bytes.
#[derive(Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct BoundedString<const MAX: usize>(String);

impl<const MAX: usize> BoundedString<MAX> {
    /// Wraps `s` if it is at most `MAX` bytes long.
    pub fn new(s: impl Into<String>) -> Result<Self, BoundError> {
        let s = s.into();
        if s.len() > MAX {
            return Err(BoundError {
                len: s.len(),
                max: MAX,
            });
        }
        Ok(Self(s))
    }

    /// The string.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The owned string.
    pub fn into_inner(self) -> String {
        self.0
    }
}

impl<const MAX: usize> Deref for BoundedString<MAX> {
    type Target = str;
    fn deref(&self) -> &str {
        &self.0
    }
}

impl<const MAX: usize> fmt::Debug for BoundedString<MAX> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(&self.0, f)
    }
}

impl<const MAX: usize> fmt::Display for BoundedString<MAX> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl<const MAX: usize> TryFrom<&str> for BoundedString<MAX> {
    type Error = BoundError;
    fn try_from(s: &str) -> Result<Self, BoundError> {
        Self::new(s)
    }
}

impl<const MAX: usize> BorshSerialize for BoundedString<MAX> {
    fn serialize<W: Write>(&self, writer: &mut W) -> std::io::Result<()> {
        BorshSerialize::serialize(&self.0, writer)
    }
}

impl<const MAX: usize> BorshDeserialize for BoundedString<MAX> {
    fn deserialize_reader<R: Read>(reader: &mut R) -> std::io::Result<Self> {
        let len = u32::deserialize_reader(reader)? as usize;
        if len > MAX {
            return Err(invalid_data(format!(
                "string of {len} bytes exceeds the bound of {MAX}"
            )));
        }
        let mut buf = vec![0u8; len];
        reader.read_exact(&mut buf)?;
        let s = String::from_utf8(buf).map_err(|e| invalid_data(format!("invalid UTF-8: {e}")))?;
        Ok(Self(s))
    }
}

impl<const MAX: usize> Serialize for BoundedString<MAX> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(&self.0)
    }
}

impl<'de, const MAX: usize> Deserialize<'de> for BoundedString<MAX> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let s = <String as Deserialize>::deserialize(deserializer)?;
        Self::new(s).map_err(serde::de::Error::custom)
    }
}

/// A vector of at most `MAX` elements.
#[derive(Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct BoundedVec<T, const MAX: usize>(Vec<T>);

impl<T, const MAX: usize> Default for BoundedVec<T, MAX> {
    fn default() -> Self {
        Self(Vec::new())
    }
}

impl<T, const MAX: usize> BoundedVec<T, MAX> {
    /// Wraps `v` if it has at most `MAX` elements.
    pub fn new(v: Vec<T>) -> Result<Self, BoundError> {
        if v.len() > MAX {
            return Err(BoundError {
                len: v.len(),
                max: MAX,
            });
        }
        Ok(Self(v))
    }

    /// The elements.
    pub fn as_slice(&self) -> &[T] {
        &self.0
    }

    /// The owned elements.
    pub fn into_inner(self) -> Vec<T> {
        self.0
    }

    /// Whether the elements are in strictly increasing order (a set in canonical form).
    pub fn is_strictly_sorted(&self) -> bool
    where
        T: Ord,
    {
        self.0.windows(2).all(|w| w[0] < w[1])
    }
}

impl<T, const MAX: usize> Deref for BoundedVec<T, MAX> {
    type Target = [T];
    fn deref(&self) -> &[T] {
        &self.0
    }
}

impl<T: fmt::Debug, const MAX: usize> fmt::Debug for BoundedVec<T, MAX> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(&self.0, f)
    }
}

impl<T, const MAX: usize> TryFrom<Vec<T>> for BoundedVec<T, MAX> {
    type Error = BoundError;
    fn try_from(v: Vec<T>) -> Result<Self, BoundError> {
        Self::new(v)
    }
}

impl<'a, T, const MAX: usize> IntoIterator for &'a BoundedVec<T, MAX> {
    type Item = &'a T;
    type IntoIter = std::slice::Iter<'a, T>;
    fn into_iter(self) -> Self::IntoIter {
        self.0.iter()
    }
}

impl<T: BorshSerialize, const MAX: usize> BorshSerialize for BoundedVec<T, MAX> {
    fn serialize<W: Write>(&self, writer: &mut W) -> std::io::Result<()> {
        BorshSerialize::serialize(&self.0, writer)
    }
}

impl<T: BorshDeserialize, const MAX: usize> BorshDeserialize for BoundedVec<T, MAX> {
    fn deserialize_reader<R: Read>(reader: &mut R) -> std::io::Result<Self> {
        let len = u32::deserialize_reader(reader)? as usize;
        if len > MAX {
            return Err(invalid_data(format!(
                "list of {len} elements exceeds the bound of {MAX}"
            )));
        }
        let mut v = Vec::with_capacity(len.min(1024));
        for _ in 0..len {
            v.push(T::deserialize_reader(reader)?);
        }
        Ok(Self(v))
    }
}

impl<T: Serialize, const MAX: usize> Serialize for BoundedVec<T, MAX> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        self.0.serialize(serializer)
    }
}

impl<'de, T: Deserialize<'de>, const MAX: usize> Deserialize<'de> for BoundedVec<T, MAX> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let v = <Vec<T> as Deserialize>::deserialize(deserializer)?;
        Self::new(v).map_err(serde::de::Error::custom)
    }
}

/// Serde helpers: fixed-size byte arrays as lowercase hex strings.
pub mod hex_array {
    use serde::{Deserialize, Deserializer, Serializer};

    /// Serialises as lowercase hex.
    pub fn serialize<S: Serializer, const N: usize>(
        bytes: &[u8; N],
        serializer: S,
    ) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(&hex::encode(bytes))
    }

    /// Parses hex of exactly `N` bytes.
    pub fn deserialize<'de, D: Deserializer<'de>, const N: usize>(
        deserializer: D,
    ) -> Result<[u8; N], D::Error> {
        let s = <std::borrow::Cow<'de, str>>::deserialize(deserializer)?;
        let mut out = [0u8; N];
        hex::decode_to_slice(s.as_bytes(), &mut out).map_err(|e| {
            serde::de::Error::custom(format!("expected {} hex characters: {e}", 2 * N))
        })?;
        Ok(out)
    }
}

impl<const MAX: usize> AsRef<[u8]> for BoundedVec<u8, MAX> {
    fn as_ref(&self) -> &[u8] {
        &self.0
    }
}

/// Serde helpers: byte strings as lowercase hex strings.
pub mod hex_bytes {
    use serde::{Deserialize, Deserializer, Serializer};

    /// Serialises as lowercase hex.
    pub fn serialize<S: Serializer, B: AsRef<[u8]>>(
        bytes: &B,
        serializer: S,
    ) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(&hex::encode(bytes.as_ref()))
    }

    /// Parses hex.
    pub fn deserialize<'de, D: Deserializer<'de>, B: TryFrom<Vec<u8>>>(
        deserializer: D,
    ) -> Result<B, D::Error> {
        let s = <std::borrow::Cow<'de, str>>::deserialize(deserializer)?;
        let bytes = hex::decode(s.as_bytes())
            .map_err(|e| serde::de::Error::custom(format!("expected hex: {e}")))?;
        B::try_from(bytes).map_err(|_| serde::de::Error::custom("too many bytes"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug, PartialEq, BorshSerialize, BorshDeserialize)]
    struct Sample {
        name: BoundedString<4>,
        items: BoundedVec<u16, 2>,
        flag: bool,
    }

    impl Canonical for Sample {
        const MAX_ENCODED_LEN: usize = 64;
    }

    fn sample() -> Sample {
        Sample {
            name: BoundedString::new("ab").unwrap(),
            items: BoundedVec::new(vec![1, 2]).unwrap(),
            flag: true,
        }
    }

    #[test]
    fn round_trip_and_layout() {
        let bytes = sample().encode();
        assert_eq!(
            bytes,
            vec![1, 2, 0, 0, 0, b'a', b'b', 2, 0, 0, 0, 1, 0, 2, 0, 1]
        );
        assert_eq!(Sample::decode(&bytes).unwrap(), sample());
    }

    #[test]
    fn rejects_trailing_bytes() {
        let mut bytes = sample().encode();
        bytes.push(0);
        assert_eq!(
            Sample::decode(&bytes),
            Err(DecodeError::TrailingBytes { count: 1 })
        );
    }

    #[test]
    fn rejects_wrong_version_and_empty() {
        let mut bytes = sample().encode();
        bytes[0] = 2;
        assert!(matches!(
            Sample::decode(&bytes),
            Err(DecodeError::UnsupportedVersion { found: 2, .. })
        ));
        assert_eq!(Sample::decode(&[]), Err(DecodeError::Empty));
    }

    #[test]
    fn rejects_non_canonical_bool() {
        let mut bytes = sample().encode();
        let last = bytes.len() - 1;
        bytes[last] = 2;
        assert!(matches!(
            Sample::decode(&bytes),
            Err(DecodeError::Malformed { .. })
        ));
    }

    #[test]
    fn rejects_over_bound_before_allocating() {
        // name length claims 5 bytes (bound is 4).
        let bytes = vec![1, 5, 0, 0, 0, b'a', b'b', b'c', b'd', b'e'];
        assert!(matches!(
            Sample::decode(&bytes),
            Err(DecodeError::Malformed { .. })
        ));
        // A list length of u32::MAX must fail at once, not try to allocate.
        let bytes = vec![1, 0, 0, 0, 0, 0xff, 0xff, 0xff, 0xff];
        assert!(matches!(
            Sample::decode(&bytes),
            Err(DecodeError::Malformed { .. })
        ));
    }

    #[test]
    fn rejects_too_long_input() {
        let bytes = vec![1u8; 65];
        assert_eq!(
            Sample::decode(&bytes),
            Err(DecodeError::TooLong { len: 65, max: 64 })
        );
    }

    #[test]
    fn bounded_constructors_check() {
        assert!(BoundedString::<2>::new("abc").is_err());
        assert!(BoundedVec::<u8, 1>::new(vec![1, 2]).is_err());
        let v: BoundedVec<u8, 3> = BoundedVec::new(vec![1, 2, 3]).unwrap();
        assert!(v.is_strictly_sorted());
        let v: BoundedVec<u8, 3> = BoundedVec::new(vec![1, 1]).unwrap();
        assert!(!v.is_strictly_sorted());
    }

    #[test]
    fn serde_bounds_apply() {
        let r: Result<BoundedString<2>, _> = serde_json::from_str("\"abc\"");
        assert!(r.is_err());
        let r: Result<BoundedVec<u8, 1>, _> = serde_json::from_str("[1,2]");
        assert!(r.is_err());
    }
}
