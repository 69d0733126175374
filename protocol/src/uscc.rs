//! 统一社会信用代码 — the Unified Social Credit Code (USCC) of GB 32100-2015.
//!
//! A USCC is the 18-character legal identifier of every legal entity and
//! other organisation in mainland China (government departments included).
//! [`Uscc`] is a validated value: once constructed, every rule below holds.
//!
//! # Layout (1-based positions)
//!
//! | positions | meaning                                             | rule checked here                                   |
//! |-----------|-----------------------------------------------------|-----------------------------------------------------|
//! | 1         | 登记管理部门代码 registration authority              | one of the authority codes of GB 32100              |
//! | 2         | 机构类别代码 entity type                              | allowed for that authority (see [`allowed_entity_types`]) |
//! | 3–8       | 登记管理机关行政区划码 administrative division (GB/T 2260) | six digits, province-level prefix known       |
//! | 9–17      | 主体标识码 / 组织机构代码 organisation code (GB 11714) | position 17 is the GB 11714 check character       |
//! | 18        | 校验码 check character (GB/T 17710, mod 31)          | must match [`compute_check_character`]              |
//!
//! The character set is [`ALPHABET`]: the ten digits and the capital
//! letters without `I`, `O`, `S`, `V` and `Z`; each character's value is its
//! index in the alphabet (0..=30).
//!
//! # Strictness
//!
//! [`Uscc::parse`] (also [`FromStr`], [`TryFrom<&str>`], serde and borsh
//! decoding) accepts input exactly as given: no trimming, no case folding.
//! [`Uscc::parse_lenient`] trims surrounding whitespace and upper-cases
//! ASCII letters first; it is meant for forms and imports, while the ledger
//! itself uses the strict parser.
//!
//! Some codes issued by early pilot regions (e.g. a few in Xiamen/Fuzhou
//! before the national rollout) do not satisfy the published check-character
//! rules. They are rejected here on purpose: this type only admits codes
//! that conform to GB 32100-2015.

use std::fmt;
use std::str::FromStr;

/// Number of characters (and bytes) in a USCC.
pub const USCC_LEN: usize = 18;

/// The GB 32100-2015 code alphabet. The value of a character is its index.
pub const ALPHABET: &str = "0123456789ABCDEFGHJKLMNPQRTUWXY";

/// Byte form of [`ALPHABET`].
const ALPHABET_BYTES: &[u8; 31] = b"0123456789ABCDEFGHJKLMNPQRTUWXY";

/// Weights of positions 1–17 for the final check character (3^(i-1) mod 31).
const CHECK_WEIGHTS: [u32; 17] = [
    1, 3, 9, 27, 19, 26, 16, 17, 20, 29, 25, 13, 8, 24, 10, 30, 28,
];

/// Weights of the eight body characters of a GB 11714 organisation code.
const ORG_WEIGHTS: [u32; 8] = [3, 7, 9, 10, 5, 8, 4, 2];

/// Capital letters that GB 32100 excludes from the alphabet.
const FORBIDDEN_LETTERS: &[u8] = b"IOSVZ";

/// Registration-authority codes (登记管理部门代码) and the entity-type codes
/// (机构类别代码) each one may use, per the GB 32100-2015 code table:
///
/// * `1` 机构编制: 1 机关, 2 事业单位, 3 中央编办直接管理机构编制的群众团体, 9 其他
/// * `2` 外交: 1 外国常住新闻机构, 9 其他
/// * `3` 司法行政: 1 律师执业机构, 2 公证处, 3 基层法律服务所, 4 司法鉴定机构, 5 仲裁委员会, 9 其他
/// * `4` 文化: 1 外国在华文化中心, 9 其他
/// * `5` 民政: 1 社会团体, 2 民办非企业单位, 3 基金会, 9 其他
/// * `6` 旅游: 1 外国旅游部门常驻代表机构, 2 港澳台地区旅游部门常驻内地（大陆）代表机构, 9 其他
/// * `7` 宗教: 1 宗教活动场所, 2 宗教院校, 9 其他
/// * `8` 工会: 1 基层工会, 9 其他
/// * `9` 工商 (now 市场监管): 1 企业, 2 个体工商户, 3 农民专业合作社
/// * `A` 中央军委改革和编制办公室: 1 军队事业单位, 9 其他
/// * `N` 农业: 1 组级集体经济组织, 2 村级集体经济组织, 3 乡镇级集体经济组织, 9 其他
/// * `Y` 其他: 不再具体划分机构类别, 统一用 1
///
/// Published summaries of the table (several independent copies were
/// compared) agree on this list. Where an authority has an "other" (9)
/// category it is accepted; no codes beyond the documented ones are
/// accepted, so a future amendment that adds an authority or type requires
/// extending this table.
const AUTHORITY_TABLE: &[(u8, &[u8], &str)] = &[
    (b'1', b"1239", "机构编制"),
    (b'2', b"19", "外交"),
    (b'3', b"123459", "司法行政"),
    (b'4', b"19", "文化"),
    (b'5', b"1239", "民政"),
    (b'6', b"129", "旅游"),
    (b'7', b"129", "宗教"),
    (b'8', b"19", "工会"),
    (b'9', b"123", "工商（市场监管）"),
    (b'A', b"19", "中央军委改革和编制办公室"),
    (b'N', b"1239", "农业"),
    (b'Y', b"1", "其他"),
];

/// Province-level prefixes (first two digits of a GB/T 2260 code).
const PROVINCE_PREFIXES: &[&[u8; 2]] = &[
    b"11", b"12", b"13", b"14", b"15", // 华北
    b"21", b"22", b"23", // 东北
    b"31", b"32", b"33", b"34", b"35", b"36", b"37", // 华东
    b"41", b"42", b"43", b"44", b"45", b"46", // 中南
    b"50", b"51", b"52", b"53", b"54", // 西南
    b"61", b"62", b"63", b"64", b"65", // 西北
    b"71", b"81", b"82", // 台湾, 香港, 澳门
];

/// The national-level division code used by registration authorities of the
/// central government (e.g. 国务院部门, 民政部 for national social
/// organisations). It is not a province, but it is a legitimate registration
/// division, so it is accepted as a whole 6-digit code (and only as that).
const NATIONAL_DIVISION: &[u8; 6] = b"100000";

/// Error returned when a string is not a valid USCC.
///
/// Each variant names the rule that failed; positions are 1-based character
/// positions in the input. [`UsccError::code`] gives a stable
/// machine-readable identifier per variant.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum UsccError {
    /// The input does not have exactly 18 characters.
    #[error("USCC must be exactly 18 characters long, got {len}")]
    WrongLength {
        /// Number of characters (Unicode scalar values) in the input.
        len: usize,
    },
    /// A helper ([`compute_check_character`], [`compute_org_check_character`])
    /// received input of the wrong length.
    #[error("input must be exactly {expected} characters long, got {len}")]
    WrongInputLength {
        /// Number of characters the helper expects.
        expected: usize,
        /// Number of characters (Unicode scalar values) in the input.
        len: usize,
    },
    /// A character is outside the GB 32100 alphabet (not a digit or capital letter).
    #[error(
        "USCC position {position}: {found:?} is not in the code alphabet \
         (digits and capital letters except I, O, S, V, Z)"
    )]
    InvalidCharacter {
        /// 1-based character position.
        position: usize,
        /// The offending character.
        found: char,
    },
    /// A lower-case letter: codes are upper case only (strict parsing does not fold case).
    #[error(
        "USCC position {position}: lower-case letter {found:?}; codes use capital letters only"
    )]
    LowercaseLetter {
        /// 1-based character position.
        position: usize,
        /// The offending character.
        found: char,
    },
    /// One of the capital letters `I`, `O`, `S`, `V`, `Z`, which GB 32100 excludes.
    #[error(
        "USCC position {position}: letter {found:?} is excluded from the code alphabet \
         (I, O, S, V, Z are never used)"
    )]
    ForbiddenLetter {
        /// 1-based character position.
        position: usize,
        /// The offending character.
        found: char,
    },
    /// Position 1 is not a registration-authority code (登记管理部门代码) of GB 32100.
    #[error("USCC position 1: {found:?} is not a registration-authority code (登记管理部门代码)")]
    UnknownRegistrationAuthority {
        /// The character at position 1.
        found: char,
    },
    /// Position 2 is not an entity-type code (机构类别代码) allowed for the authority at position 1.
    #[error(
        "USCC position 2: entity type {entity_type:?} is not defined for registration \
         authority {authority:?} (机构类别代码)"
    )]
    EntityTypeNotAllowed {
        /// The registration-authority code at position 1.
        authority: char,
        /// The entity-type code at position 2.
        entity_type: char,
    },
    /// Positions 3–8 contain a non-digit.
    #[error(
        "USCC position {position}: {found:?} is not a digit; the administrative division \
         code (positions 3-8) is numeric"
    )]
    DivisionCodeNotNumeric {
        /// 1-based character position.
        position: usize,
        /// The offending character.
        found: char,
    },
    /// Positions 3–8 are digits but do not start with a known province-level code.
    #[error(
        "USCC positions 3-8: {code:?} is not an administrative division code with a known \
         province-level prefix (行政区划码)"
    )]
    InvalidDivisionCode {
        /// The six-digit division code found.
        code: String,
    },
    /// Position 17 is not the GB 11714 check character of positions 9–16.
    #[error(
        "USCC position 17: organisation-code (GB 11714) check character is {found:?}, \
         expected {expected:?}"
    )]
    OrganisationCodeCheckMismatch {
        /// The check character computed from positions 9–16.
        expected: char,
        /// The character found at position 17.
        found: char,
    },
    /// Position 18 is not the GB 32100 check character of positions 1–17.
    #[error("USCC position 18: check character is {found:?}, expected {expected:?}")]
    CheckCharacterMismatch {
        /// The check character computed from positions 1–17.
        expected: char,
        /// The character found at position 18.
        found: char,
    },
}

impl UsccError {
    /// Stable machine-readable identifier of the failed rule (snake_case).
    pub fn code(&self) -> &'static str {
        match self {
            UsccError::WrongLength { .. } => "uscc_wrong_length",
            UsccError::WrongInputLength { .. } => "uscc_wrong_input_length",
            UsccError::InvalidCharacter { .. } => "uscc_invalid_character",
            UsccError::LowercaseLetter { .. } => "uscc_lowercase_letter",
            UsccError::ForbiddenLetter { .. } => "uscc_forbidden_letter",
            UsccError::UnknownRegistrationAuthority { .. } => "uscc_unknown_registration_authority",
            UsccError::EntityTypeNotAllowed { .. } => "uscc_entity_type_not_allowed",
            UsccError::DivisionCodeNotNumeric { .. } => "uscc_division_code_not_numeric",
            UsccError::InvalidDivisionCode { .. } => "uscc_invalid_division_code",
            UsccError::OrganisationCodeCheckMismatch { .. } => {
                "uscc_organisation_code_check_mismatch"
            }
            UsccError::CheckCharacterMismatch { .. } => "uscc_check_character_mismatch",
        }
    }
}

/// Value (0..=30) of a byte in the GB 32100 alphabet.
fn alphabet_value(b: u8) -> Option<u32> {
    ALPHABET_BYTES
        .iter()
        .position(|&a| a == b)
        .and_then(|i| u32::try_from(i).ok())
}

/// Classify a character that is not in the GB 32100 alphabet.
fn alphabet_error(position: usize, found: char) -> UsccError {
    if found.is_ascii_lowercase() {
        UsccError::LowercaseLetter { position, found }
    } else if found.is_ascii() && FORBIDDEN_LETTERS.contains(&(found as u8)) {
        UsccError::ForbiddenLetter { position, found }
    } else {
        UsccError::InvalidCharacter { position, found }
    }
}

/// Check that `s` has exactly `expected` characters, all in the GB 32100
/// alphabet, and return its bytes (all ASCII, so one byte per character).
fn alphabet_bytes(
    s: &str,
    expected: usize,
    length_error: impl FnOnce(usize) -> UsccError,
) -> Result<&[u8], UsccError> {
    let len = s.chars().count();
    if len != expected {
        return Err(length_error(len));
    }
    for (i, c) in s.chars().enumerate() {
        let in_alphabet = c.is_ascii() && alphabet_value(c as u8).is_some();
        if !in_alphabet {
            return Err(alphabet_error(i + 1, c));
        }
    }
    Ok(s.as_bytes())
}

/// Final check value over 17 alphabet bytes (caller guarantees the alphabet).
fn check_value(first17: &[u8]) -> usize {
    let sum: u32 = first17
        .iter()
        .zip(CHECK_WEIGHTS.iter())
        .map(|(&b, &w)| alphabet_value(b).unwrap_or(0) * w)
        .sum();
    // 31 - (sum mod 31), with 31 mapped to 0.
    ((31 - sum % 31) % 31) as usize
}

/// GB 11714 value of a body character: digits 0–9, letters A=10 … Z=35.
fn org_value(b: u8) -> Option<u32> {
    match b {
        b'0'..=b'9' => Some(u32::from(b - b'0')),
        b'A'..=b'Z' => Some(u32::from(b - b'A') + 10),
        _ => None,
    }
}

/// GB 11714 check character over 8 body bytes (caller guarantees digits/capitals).
fn org_check(body8: &[u8]) -> char {
    let sum: u32 = body8
        .iter()
        .zip(ORG_WEIGHTS.iter())
        .map(|(&b, &w)| org_value(b).unwrap_or(0) * w)
        .sum();
    match 11 - sum % 11 {
        10 => 'X',
        11 => '0',
        d => char::from_digit(d, 10).unwrap_or('0'),
    }
}

/// Compute the GB 32100 check character (position 18) for the first 17
/// characters of a USCC.
///
/// Only the length and the alphabet of `first17` are checked (the structural
/// rules of positions 1–17 are not), so this can also be used to build test
/// codes. C = 31 − (Σ value(i) × weight(i) mod 31), with 31 mapped to 0; the
/// result is `ALPHABET[C]`.
///
/// # Errors
///
/// [`UsccError::WrongInputLength`] unless `first17` has 17 characters;
/// [`UsccError::InvalidCharacter`], [`UsccError::LowercaseLetter`] or
/// [`UsccError::ForbiddenLetter`] for a character outside [`ALPHABET`].
pub fn compute_check_character(first17: &str) -> Result<char, UsccError> {
    let bytes = alphabet_bytes(first17, USCC_LEN - 1, |len| UsccError::WrongInputLength {
        expected: USCC_LEN - 1,
        len,
    })?;
    Ok(char::from(ALPHABET_BYTES[check_value(bytes)]))
}

/// Compute the GB 11714 check character of an 8-character organisation-code
/// body (the character that goes at USCC position 17).
///
/// GB 11714 allows digits and all capital letters `A`–`Z` in the body, so
/// this helper accepts them all (values `A`=10 … `Z`=35). Inside a USCC the
/// body must additionally use only [`ALPHABET`] characters, which
/// [`Uscc::parse`] enforces. C = 11 − (Σ value(i) × weight(i) mod 11) with
/// weights 3, 7, 9, 10, 5, 8, 4, 2; C = 10 gives `'X'`, C = 11 gives `'0'`.
///
/// # Errors
///
/// [`UsccError::WrongInputLength`] unless `body8` has 8 characters;
/// [`UsccError::InvalidCharacter`] (or [`UsccError::LowercaseLetter`]) for a
/// character that is not a digit or capital letter; positions are relative
/// to `body8`.
pub fn compute_org_check_character(body8: &str) -> Result<char, UsccError> {
    let len = body8.chars().count();
    if len != 8 {
        return Err(UsccError::WrongInputLength { expected: 8, len });
    }
    for (i, c) in body8.chars().enumerate() {
        if !(c.is_ascii_digit() || c.is_ascii_uppercase()) {
            let position = i + 1;
            return Err(if c.is_ascii_lowercase() {
                UsccError::LowercaseLetter { position, found: c }
            } else {
                UsccError::InvalidCharacter { position, found: c }
            });
        }
    }
    Ok(org_check(body8.as_bytes()))
}

/// The entity-type codes (机构类别代码) GB 32100 defines for a
/// registration-authority code (登记管理部门代码), or `None` if `authority`
/// is not a registration-authority code.
///
/// The full table is listed in the module documentation; e.g.
/// `allowed_entity_types('9') == Some("123")`.
pub fn allowed_entity_types(authority: char) -> Option<&'static str> {
    AUTHORITY_TABLE
        .iter()
        .find(|(a, _, _)| char::from(*a) == authority)
        .and_then(|(_, types, _)| std::str::from_utf8(types).ok())
}

/// The Chinese name of a registration-authority code (e.g. `'1'` → "机构编制"),
/// or `None` if it is not one.
pub fn registration_authority_name(authority: char) -> Option<&'static str> {
    AUTHORITY_TABLE
        .iter()
        .find(|(a, _, _)| char::from(*a) == authority)
        .map(|(_, _, name)| *name)
}

/// Validate the structure of an 18-byte candidate whose characters are known
/// to be in the alphabet.
fn validate_structure(b: &[u8; USCC_LEN]) -> Result<(), UsccError> {
    // Positions 1–2: authority / entity type.
    let authority = char::from(b[0]);
    let entity_type = char::from(b[1]);
    let types = allowed_entity_types(authority)
        .ok_or(UsccError::UnknownRegistrationAuthority { found: authority })?;
    if !types.contains(entity_type) {
        return Err(UsccError::EntityTypeNotAllowed {
            authority,
            entity_type,
        });
    }

    // Positions 3–8: administrative division code.
    let division = &b[2..8];
    if let Some(i) = division.iter().position(|d| !d.is_ascii_digit()) {
        return Err(UsccError::DivisionCodeNotNumeric {
            position: i + 3,
            found: char::from(division[i]),
        });
    }
    let province_known = PROVINCE_PREFIXES.iter().any(|p| p[..] == division[..2]);
    if !(province_known || division == &NATIONAL_DIVISION[..]) {
        return Err(UsccError::InvalidDivisionCode {
            code: String::from_utf8_lossy(division).into_owned(),
        });
    }

    // Positions 9–17: organisation code with its GB 11714 check character.
    let expected_org = org_check(&b[8..16]);
    if char::from(b[16]) != expected_org {
        return Err(UsccError::OrganisationCodeCheckMismatch {
            expected: expected_org,
            found: char::from(b[16]),
        });
    }

    // Position 18: GB 32100 check character.
    let expected = char::from(ALPHABET_BYTES[check_value(&b[..17])]);
    if char::from(b[17]) != expected {
        return Err(UsccError::CheckCharacterMismatch {
            expected,
            found: char::from(b[17]),
        });
    }
    Ok(())
}

/// A validated 统一社会信用代码 (Unified Social Credit Code, GB 32100-2015).
///
/// Stored as its 18 ASCII bytes, so it is `Copy` and cheap to compare;
/// ordering is the ordering of the code strings.
///
/// Serde encodes it as the code string; borsh encodes it as the 18 ASCII
/// bytes with no length prefix. Both decoders validate with [`Uscc::parse`].
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Uscc([u8; USCC_LEN]);

impl Uscc {
    /// Number of characters in a USCC.
    pub const LEN: usize = USCC_LEN;

    /// Parse and validate a USCC, accepting the input only exactly as given
    /// (no trimming, no case folding).
    ///
    /// Rules are checked in this order, and the first failure is reported:
    /// length, alphabet (per position), registration authority, entity type,
    /// division code, organisation-code check character, final check
    /// character.
    ///
    /// # Errors
    ///
    /// A [`UsccError`] naming the rule that failed.
    pub fn parse(s: &str) -> Result<Self, UsccError> {
        let bytes = alphabet_bytes(s, USCC_LEN, |len| UsccError::WrongLength { len })?;
        let mut code = [0u8; USCC_LEN];
        code.copy_from_slice(bytes);
        validate_structure(&code)?;
        Ok(Uscc(code))
    }

    /// Like [`Uscc::parse`], but first trims surrounding whitespace and
    /// converts ASCII lower-case letters to upper case. Meant for human
    /// input; ledger data must use the strict [`Uscc::parse`].
    ///
    /// # Errors
    ///
    /// A [`UsccError`] naming the rule that failed (positions refer to the
    /// trimmed input).
    pub fn parse_lenient(s: &str) -> Result<Self, UsccError> {
        Self::parse(&s.trim().to_ascii_uppercase())
    }

    /// Whether `s` is a valid USCC under [`Uscc::parse`].
    pub fn is_valid(s: &str) -> bool {
        Self::parse(s).is_ok()
    }

    /// The code as a string slice (18 ASCII characters).
    pub fn as_str(&self) -> &str {
        // Invariant: only constructed from validated ASCII, so this never
        // falls back.
        std::str::from_utf8(&self.0).unwrap_or_default()
    }

    /// The code as its 18 ASCII bytes.
    pub fn as_bytes(&self) -> &[u8; USCC_LEN] {
        &self.0
    }

    /// Position 1: the registration-authority code (登记管理部门代码),
    /// e.g. `'9'` for 工商/市场监管.
    pub fn registration_authority(&self) -> char {
        char::from(self.0[0])
    }

    /// The Chinese name of the registration authority, e.g. "机构编制".
    pub fn registration_authority_name(&self) -> &'static str {
        registration_authority_name(self.registration_authority()).unwrap_or_default()
    }

    /// Position 2: the entity-type code (机构类别代码), e.g. `'1'` for 企业
    /// under authority `'9'`.
    pub fn entity_type(&self) -> char {
        char::from(self.0[1])
    }

    /// Positions 3–8: the administrative division code of the registering
    /// authority (登记管理机关行政区划码), six digits.
    pub fn division_code(&self) -> &str {
        &self.as_str()[2..8]
    }

    /// Positions 3–4: the province-level prefix of the division code
    /// (`"10"` for national-level registrations).
    pub fn province_code(&self) -> &str {
        &self.as_str()[2..4]
    }

    /// Positions 9–17: the nine-character organisation code
    /// (主体标识码 / 组织机构代码, GB 11714), including its check character.
    pub fn organisation_code(&self) -> &str {
        &self.as_str()[8..17]
    }

    /// Position 17: the GB 11714 check character of the organisation code.
    pub fn organisation_check_character(&self) -> char {
        char::from(self.0[16])
    }

    /// Position 18: the GB 32100 check character.
    pub fn check_character(&self) -> char {
        char::from(self.0[17])
    }
}

impl fmt::Display for Uscc {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl fmt::Debug for Uscc {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_tuple("Uscc").field(&self.as_str()).finish()
    }
}

impl FromStr for Uscc {
    type Err = UsccError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::parse(s)
    }
}

impl TryFrom<&str> for Uscc {
    type Error = UsccError;

    fn try_from(s: &str) -> Result<Self, Self::Error> {
        Self::parse(s)
    }
}

impl TryFrom<String> for Uscc {
    type Error = UsccError;

    fn try_from(s: String) -> Result<Self, Self::Error> {
        Self::parse(&s)
    }
}

impl From<Uscc> for String {
    fn from(u: Uscc) -> Self {
        u.as_str().to_owned()
    }
}

impl AsRef<str> for Uscc {
    fn as_ref(&self) -> &str {
        self.as_str()
    }
}

impl serde::Serialize for Uscc {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(self.as_str())
    }
}

impl<'de> serde::Deserialize<'de> for Uscc {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct UsccVisitor;

        impl serde::de::Visitor<'_> for UsccVisitor {
            type Value = Uscc;

            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("an 18-character unified social credit code (GB 32100-2015)")
            }

            fn visit_str<E: serde::de::Error>(self, v: &str) -> Result<Uscc, E> {
                Uscc::parse(v).map_err(E::custom)
            }
        }

        deserializer.deserialize_str(UsccVisitor)
    }
}

impl borsh::BorshSerialize for Uscc {
    fn serialize<W: borsh::io::Write>(&self, writer: &mut W) -> borsh::io::Result<()> {
        writer.write_all(&self.0)
    }
}

impl borsh::BorshDeserialize for Uscc {
    fn deserialize_reader<R: borsh::io::Read>(reader: &mut R) -> borsh::io::Result<Self> {
        let mut buf = [0u8; USCC_LEN];
        reader.read_exact(&mut buf)?;
        let invalid = |msg: String| borsh::io::Error::new(borsh::io::ErrorKind::InvalidData, msg);
        let s = std::str::from_utf8(&buf)
            .map_err(|e| invalid(format!("USCC bytes are not valid UTF-8: {e}")))?;
        Uscc::parse(s).map_err(|e| invalid(e.to_string()))
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    /// Real, published codes that conform to GB 32100-2015 (verified by
    /// this implementation).
    const REAL_CODES: &[(&str, &str)] = &[
        ("91350100M000100Y43", "GB 32100 worked example (福州)"),
        ("914403001922038216", "华为技术有限公司"),
        ("9144030071526726XG", "深圳市腾讯计算机系统有限公司"),
        ("91110108795101314G", "谷歌信息技术（中国）有限公司"),
        ("9135020026015919XW", "厦门象屿集团有限公司"),
    ];

    /// Real codes from early pilot regions that do NOT satisfy the published
    /// check rules; a conforming validator must reject them.
    /// Each entry: (code, the check character the standard requires).
    const NON_CONFORMING_PILOT_CODES: &[(&str, char)] = &[
        ("91350211M0000XUF46", 'R'),
        ("91350100M0001TGQXM", '1'),
        ("91350203M0001FUE2P", 'J'),
    ];

    /// Build a full code from 16 leading characters by appending both check characters.
    fn complete(first16: &str) -> String {
        let org = compute_org_check_character(&first16[8..16]).unwrap();
        let mut s = format!("{first16}{org}");
        let check = compute_check_character(&s).unwrap();
        s.push(check);
        s
    }

    #[test]
    fn real_codes_validate() {
        for (code, name) in REAL_CODES {
            let u = Uscc::parse(code).unwrap_or_else(|e| panic!("{name} {code}: {e}"));
            assert_eq!(u.as_str(), *code);
            assert_eq!(u.to_string(), *code);
        }
    }

    #[test]
    fn non_conforming_pilot_codes_rejected() {
        for (code, expected) in NON_CONFORMING_PILOT_CODES {
            let e = Uscc::parse(code).unwrap_err();
            let found = code.chars().last().unwrap();
            assert_eq!(
                e,
                UsccError::CheckCharacterMismatch {
                    expected: *expected,
                    found
                },
                "{code}: {e}"
            );
        }
    }

    #[test]
    fn accessors() {
        let u = Uscc::parse("91350100M000100Y43").unwrap();
        assert_eq!(u.registration_authority(), '9');
        assert_eq!(u.registration_authority_name(), "工商（市场监管）");
        assert_eq!(u.entity_type(), '1');
        assert_eq!(u.division_code(), "350100");
        assert_eq!(u.province_code(), "35");
        assert_eq!(u.organisation_code(), "M000100Y4");
        assert_eq!(u.organisation_check_character(), '4');
        assert_eq!(u.check_character(), '3');
        assert_eq!(u.as_bytes(), b"91350100M000100Y43");
        assert_eq!(format!("{u:?}"), "Uscc(\"91350100M000100Y43\")");
        assert_eq!(String::from(u), "91350100M000100Y43");
        assert_eq!(u.as_ref(), "91350100M000100Y43");
    }

    #[test]
    fn constructors_agree() {
        let s = "914403001922038216";
        let a = Uscc::parse(s).unwrap();
        assert_eq!(s.parse::<Uscc>().unwrap(), a);
        assert_eq!(Uscc::try_from(s).unwrap(), a);
        assert_eq!(Uscc::try_from(s.to_owned()).unwrap(), a);
        assert!(Uscc::is_valid(s));
        assert!(!Uscc::is_valid("914403001922038217"));
    }

    #[test]
    fn helpers_compute_published_check_characters() {
        assert_eq!(compute_org_check_character("M000100Y").unwrap(), '4');
        assert_eq!(compute_org_check_character("19220382").unwrap(), '1');
        assert_eq!(compute_org_check_character("71526726").unwrap(), 'X');
        assert_eq!(compute_check_character("91350100M000100Y4").unwrap(), '3');
        assert_eq!(compute_check_character("9144030071526726X").unwrap(), 'G');
        // GB 11714 bodies may use letters outside the USCC alphabet.
        assert!(compute_org_check_character("ABCDIOSZ").is_ok());
    }

    #[test]
    fn helpers_reject_bad_input() {
        assert_eq!(
            compute_check_character("9135010").unwrap_err(),
            UsccError::WrongInputLength {
                expected: 17,
                len: 7
            }
        );
        assert_eq!(
            compute_check_character("91350100M000100I4").unwrap_err(),
            UsccError::ForbiddenLetter {
                position: 16,
                found: 'I'
            }
        );
        assert_eq!(
            compute_org_check_character("1234567").unwrap_err(),
            UsccError::WrongInputLength {
                expected: 8,
                len: 7
            }
        );
        assert_eq!(
            compute_org_check_character("1234567a").unwrap_err(),
            UsccError::LowercaseLetter {
                position: 8,
                found: 'a'
            }
        );
        assert_eq!(
            compute_org_check_character("1234-567").unwrap_err(),
            UsccError::InvalidCharacter {
                position: 5,
                found: '-'
            }
        );
    }

    #[test]
    fn org_check_maps_10_to_x_and_11_to_0() {
        // Find bodies whose raw C is 10 and 11 and check the mapping.
        let mut seen_x = false;
        let mut seen_0 = false;
        for n in 0..2000u32 {
            let body = format!("{n:08}");
            let sum: u32 = body
                .bytes()
                .zip(ORG_WEIGHTS)
                .map(|(b, w)| u32::from(b - b'0') * w)
                .sum();
            let c = compute_org_check_character(&body).unwrap();
            match 11 - sum % 11 {
                10 => {
                    assert_eq!(c, 'X');
                    seen_x = true;
                }
                11 => {
                    assert_eq!(c, '0');
                    seen_0 = true;
                }
                d => assert_eq!(c, char::from_digit(d, 10).unwrap()),
            }
        }
        assert!(seen_x && seen_0);
    }

    #[test]
    fn wrong_length() {
        for s in ["", "9", "91350100M000100Y4", "91350100M000100Y431"] {
            assert_eq!(
                Uscc::parse(s).unwrap_err(),
                UsccError::WrongLength {
                    len: s.chars().count()
                }
            );
        }
        // Length is counted in characters, not bytes.
        let e = Uscc::parse("统一社会信用代码统一社会信用代码统一").unwrap_err();
        assert_eq!(e.code(), "uscc_invalid_character");
        let e = Uscc::parse("统一社会信用代码").unwrap_err();
        assert_eq!(e, UsccError::WrongLength { len: 8 });
        // No trimming in strict mode.
        let e = Uscc::parse(" 91350100M000100Y43").unwrap_err();
        assert_eq!(e.code(), "uscc_wrong_length");
        let e = Uscc::parse("91350100M000100Y4 ").unwrap_err();
        assert_eq!(
            e,
            UsccError::InvalidCharacter {
                position: 18,
                found: ' '
            }
        );
    }

    #[test]
    fn lower_case_rejected_but_lenient_accepts() {
        let e = Uscc::parse("91350100m000100y43").unwrap_err();
        assert_eq!(
            e,
            UsccError::LowercaseLetter {
                position: 9,
                found: 'm'
            }
        );
        assert_eq!(e.code(), "uscc_lowercase_letter");
        let u = Uscc::parse_lenient("  91350100m000100y43\n").unwrap();
        assert_eq!(u.as_str(), "91350100M000100Y43");
        // Lenient still validates.
        assert!(Uscc::parse_lenient(" 91350100m000100y44 ").is_err());
    }

    #[test]
    fn forbidden_letters_rejected() {
        let base = "91350100M000100Y43";
        for letter in ['I', 'O', 'S', 'V', 'Z'] {
            for pos in [1usize, 9, 12, 18] {
                let mut chars: Vec<char> = base.chars().collect();
                chars[pos - 1] = letter;
                let s: String = chars.into_iter().collect();
                let e = Uscc::parse(&s).unwrap_err();
                assert_eq!(
                    e,
                    UsccError::ForbiddenLetter {
                        position: pos,
                        found: letter
                    },
                    "{s}"
                );
                assert_eq!(e.code(), "uscc_forbidden_letter");
            }
        }
    }

    #[test]
    fn other_invalid_characters_rejected() {
        for (s, pos, c) in [
            ("9135010-M000100Y43", 8, '-'),
            ("91350100M000100Y4é", 18, 'é'),
            ("\u{0}1350100M000100Y43", 1, '\u{0}'),
            ("91350100Ｍ000100Y43", 9, 'Ｍ'),
        ] {
            assert_eq!(
                Uscc::parse(s).unwrap_err(),
                UsccError::InvalidCharacter {
                    position: pos,
                    found: c
                }
            );
        }
    }

    #[test]
    fn authority_and_entity_type_table_is_exhaustively_enforced() {
        let mut accepted = 0;
        for a in ALPHABET.chars() {
            for t in ALPHABET.chars() {
                let s = complete(&format!("{a}{t}350100M000100Y"));
                let r = Uscc::parse(&s);
                match allowed_entity_types(a) {
                    None => assert_eq!(
                        r.unwrap_err(),
                        UsccError::UnknownRegistrationAuthority { found: a }
                    ),
                    Some(types) if types.contains(t) => {
                        let u = r.unwrap();
                        assert_eq!((u.registration_authority(), u.entity_type()), (a, t));
                        accepted += 1;
                    }
                    Some(_) => assert_eq!(
                        r.unwrap_err(),
                        UsccError::EntityTypeNotAllowed {
                            authority: a,
                            entity_type: t
                        }
                    ),
                }
            }
        }
        // 4+2+6+2+4+3+3+2+3+2+4+1 pairs in the GB 32100 table.
        assert_eq!(accepted, 36);
    }

    #[test]
    fn specific_bad_pairs() {
        for (pair, code) in [
            ("94", "uscc_entity_type_not_allowed"),
            ("99", "uscc_entity_type_not_allowed"),
            ("Y2", "uscc_entity_type_not_allowed"),
            ("14", "uscc_entity_type_not_allowed"),
            ("0A", "uscc_unknown_registration_authority"),
            ("B1", "uscc_unknown_registration_authority"),
        ] {
            let s = complete(&format!("{pair}350100M000100Y"));
            assert_eq!(Uscc::parse(&s).unwrap_err().code(), code, "{s}");
        }
    }

    #[test]
    fn division_codes() {
        for p in 0..100u32 {
            let prefix = format!("{p:02}");
            let s = complete(&format!("91{prefix}0100M000100Y"));
            let known = PROVINCE_PREFIXES
                .iter()
                .any(|k| k[..] == *prefix.as_bytes());
            match Uscc::parse(&s) {
                Ok(u) => {
                    assert!(known, "{s}");
                    assert_eq!(u.province_code(), prefix);
                }
                Err(e) => {
                    assert!(!known, "{s}: {e}");
                    assert_eq!(
                        e,
                        UsccError::InvalidDivisionCode {
                            code: format!("{prefix}0100")
                        }
                    );
                }
            }
        }
        // National level: exactly 100000, nothing else with prefix 10.
        let national = complete("11100000M000100Y");
        assert_eq!(Uscc::parse(&national).unwrap().division_code(), "100000");
        let e = Uscc::parse(&complete("11100100M000100Y")).unwrap_err();
        assert_eq!(e.code(), "uscc_invalid_division_code");
        // Letters in the division code.
        let e = Uscc::parse(&complete("9135A100M000100Y")).unwrap_err();
        assert_eq!(
            e,
            UsccError::DivisionCodeNotNumeric {
                position: 5,
                found: 'A'
            }
        );
        assert_eq!(e.code(), "uscc_division_code_not_numeric");
    }

    #[test]
    fn bad_organisation_check_character() {
        // Change position 17 and recompute position 18 so only the org check fails.
        let first16 = "91350100M000100Y";
        for c in ALPHABET.chars().filter(|&c| c != '4') {
            let mut s = format!("{first16}{c}");
            s.push(compute_check_character(&s).unwrap());
            let e = Uscc::parse(&s).unwrap_err();
            assert_eq!(
                e,
                UsccError::OrganisationCodeCheckMismatch {
                    expected: '4',
                    found: c
                }
            );
            assert_eq!(e.code(), "uscc_organisation_code_check_mismatch");
        }
    }

    #[test]
    fn bad_final_check_character() {
        for c in ALPHABET.chars().filter(|&c| c != '3') {
            let s = format!("91350100M000100Y4{c}");
            let e = Uscc::parse(&s).unwrap_err();
            assert_eq!(
                e,
                UsccError::CheckCharacterMismatch {
                    expected: '3',
                    found: c
                }
            );
            assert_eq!(e.code(), "uscc_check_character_mismatch");
        }
    }

    #[test]
    fn error_codes_are_distinct_and_messages_name_the_rule() {
        let errors = [
            UsccError::WrongLength { len: 3 },
            UsccError::WrongInputLength {
                expected: 17,
                len: 3,
            },
            UsccError::InvalidCharacter {
                position: 1,
                found: '-',
            },
            UsccError::LowercaseLetter {
                position: 1,
                found: 'a',
            },
            UsccError::ForbiddenLetter {
                position: 1,
                found: 'I',
            },
            UsccError::UnknownRegistrationAuthority { found: 'B' },
            UsccError::EntityTypeNotAllowed {
                authority: '9',
                entity_type: '9',
            },
            UsccError::DivisionCodeNotNumeric {
                position: 3,
                found: 'A',
            },
            UsccError::InvalidDivisionCode {
                code: "990000".into(),
            },
            UsccError::OrganisationCodeCheckMismatch {
                expected: '4',
                found: '5',
            },
            UsccError::CheckCharacterMismatch {
                expected: '3',
                found: '4',
            },
        ];
        let codes: std::collections::BTreeSet<_> = errors.iter().map(UsccError::code).collect();
        assert_eq!(codes.len(), errors.len());
        for e in &errors {
            assert!(e.code().starts_with("uscc_"));
            assert!(!e.to_string().is_empty());
        }
        assert_eq!(
            UsccError::WrongLength { len: 3 }.to_string(),
            "USCC must be exactly 18 characters long, got 3"
        );
        assert!(UsccError::CheckCharacterMismatch {
            expected: '3',
            found: '4'
        }
        .to_string()
        .contains("position 18"));
    }

    #[test]
    fn serde_round_trip_and_rejection() {
        let u = Uscc::parse("9144030071526726XG").unwrap();
        let json = serde_json::to_string(&u).unwrap();
        assert_eq!(json, "\"9144030071526726XG\"");
        assert_eq!(serde_json::from_str::<Uscc>(&json).unwrap(), u);
        // Owned-string path (via serde_json::Value).
        let v = serde_json::Value::String("9144030071526726XG".into());
        assert_eq!(serde_json::from_value::<Uscc>(v).unwrap(), u);
        let err = serde_json::from_str::<Uscc>("\"9144030071526726XH\"").unwrap_err();
        assert!(err.to_string().contains("position 18"), "{err}");
        assert!(serde_json::from_str::<Uscc>("\"9144030071526726xg\"").is_err());
        assert!(serde_json::from_str::<Uscc>("42").is_err());
    }

    #[test]
    fn borsh_encoding_is_18_raw_bytes() {
        let u = Uscc::parse("91350100M000100Y43").unwrap();
        let bytes = borsh::to_vec(&u).unwrap();
        assert_eq!(bytes, b"91350100M000100Y43");
        assert_eq!(borsh::from_slice::<Uscc>(&bytes).unwrap(), u);
        // Inside a struct: fixed size, no prefix.
        let pair = (u, 7u8);
        let bytes = borsh::to_vec(&pair).unwrap();
        assert_eq!(bytes.len(), 19);
        assert_eq!(borsh::from_slice::<(Uscc, u8)>(&bytes).unwrap(), pair);
    }

    #[test]
    fn borsh_rejects_invalid_bytes() {
        let e = borsh::from_slice::<Uscc>(b"91350100M000100Y44").unwrap_err();
        assert_eq!(e.kind(), borsh::io::ErrorKind::InvalidData);
        assert!(e.to_string().contains("expected '3'"), "{e}");
        let e = borsh::from_slice::<Uscc>(b"91350100m000100y43").unwrap_err();
        assert_eq!(e.kind(), borsh::io::ErrorKind::InvalidData);
        let mut non_utf8 = *b"91350100M000100Y43";
        non_utf8[3] = 0xff;
        let e = borsh::from_slice::<Uscc>(&non_utf8).unwrap_err();
        assert_eq!(e.kind(), borsh::io::ErrorKind::InvalidData);
        // Too short.
        assert!(borsh::from_slice::<Uscc>(b"91350100M000100Y4").is_err());
        // Too long (trailing byte not consumed).
        assert!(borsh::from_slice::<Uscc>(b"91350100M000100Y43X").is_err());
    }

    #[test]
    fn ordering_follows_strings() {
        let mut codes: Vec<Uscc> = REAL_CODES
            .iter()
            .map(|(c, _)| Uscc::parse(c).unwrap())
            .collect();
        codes.sort();
        let mut strings: Vec<&str> = REAL_CODES.iter().map(|(c, _)| *c).collect();
        strings.sort_unstable();
        let sorted: Vec<&str> = codes.iter().map(Uscc::as_str).collect();
        assert_eq!(sorted, strings);
    }

    /// Strategy for valid codes: a table pair, a known division, an
    /// alphabet body, and both computed check characters.
    fn valid_code() -> impl Strategy<Value = String> {
        let pairs: Vec<(char, char)> = AUTHORITY_TABLE
            .iter()
            .flat_map(|(a, types, _)| types.iter().map(move |t| (char::from(*a), char::from(*t))))
            .collect();
        let divisions = prop_oneof![
            9 => (0..PROVINCE_PREFIXES.len(), 0..10_000u32).prop_map(|(i, rest)| {
                let p = PROVINCE_PREFIXES[i];
                format!("{}{}{rest:04}", char::from(p[0]), char::from(p[1]))
            }),
            1 => Just("100000".to_owned()),
        ];
        (
            proptest::sample::select(pairs),
            divisions,
            proptest::collection::vec(proptest::sample::select(ALPHABET_BYTES.to_vec()), 8),
        )
            .prop_map(|((a, t), division, body)| {
                let body = String::from_utf8(body).unwrap();
                complete(&format!("{a}{t}{division}{body}"))
            })
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(512))]

        #[test]
        fn generated_codes_round_trip(code in valid_code()) {
            let u = Uscc::parse(&code).unwrap();
            prop_assert_eq!(u.to_string(), code.clone());
            prop_assert_eq!(u.as_str(), code.as_str());
            let bytes = borsh::to_vec(&u).unwrap();
            prop_assert_eq!(bytes.as_slice(), code.as_bytes());
            prop_assert_eq!(borsh::from_slice::<Uscc>(&bytes).unwrap(), u);
            let json = serde_json::to_string(&u).unwrap();
            prop_assert_eq!(serde_json::from_str::<Uscc>(&json).unwrap(), u);
            prop_assert_eq!(Uscc::parse_lenient(&code.to_ascii_lowercase()).unwrap(), u);
        }

        #[test]
        fn every_single_substitution_is_rejected(
            code in valid_code(),
            position in 0..USCC_LEN,
            shift in 1..31usize,
        ) {
            let mut bytes = code.clone().into_bytes();
            let old = alphabet_value(bytes[position]).unwrap() as usize;
            bytes[position] = ALPHABET_BYTES[(old + shift) % 31];
            let corrupted = String::from_utf8(bytes).unwrap();
            prop_assert_ne!(&corrupted, &code);
            prop_assert!(Uscc::parse(&corrupted).is_err(), "{} accepted", corrupted);
        }

        #[test]
        fn every_single_substitution_outside_alphabet_is_rejected(
            code in valid_code(),
            position in 0..USCC_LEN,
            c in any::<char>().prop_filter("not in alphabet", |c| !ALPHABET.contains(*c)),
        ) {
            let mut chars: Vec<char> = code.chars().collect();
            chars[position] = c;
            let corrupted: String = chars.into_iter().collect();
            let e = Uscc::parse(&corrupted).unwrap_err();
            prop_assert!(
                matches!(
                    e,
                    UsccError::InvalidCharacter { .. }
                        | UsccError::LowercaseLetter { .. }
                        | UsccError::ForbiddenLetter { .. }
                ),
                "{:?}",
                e
            );
        }

        #[test]
        fn adjacent_transpositions_of_different_characters_are_rejected(
            code in valid_code(),
            position in 0..USCC_LEN - 1,
        ) {
            let mut bytes = code.clone().into_bytes();
            prop_assume!(bytes[position] != bytes[position + 1]);
            bytes.swap(position, position + 1);
            let corrupted = String::from_utf8(bytes).unwrap();
            prop_assert!(Uscc::parse(&corrupted).is_err(), "{} accepted", corrupted);
        }

        #[test]
        fn arbitrary_strings_never_panic(s in "\\PC{0,24}") {
            if let Ok(u) = Uscc::parse(&s) {
                prop_assert_eq!(u.as_str(), s.as_str());
            }
        }

        #[test]
        fn arbitrary_borsh_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..24)) {
            if let Ok(u) = borsh::from_slice::<Uscc>(&bytes) {
                prop_assert_eq!(u.as_bytes().as_slice(), bytes.as_slice());
            }
        }
    }
}
