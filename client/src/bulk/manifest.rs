//! The CSV manifest: parsing and validating each row on its own.

use std::collections::BTreeMap;
use std::fs;
use std::path::{Path, PathBuf};

use vault_protocol::crypto::{CryptoSuite, Digest};
use vault_protocol::encoding::BoundedVec;
use vault_protocol::ids::{DepartmentId, DocTypeCode, Timestamp};
use vault_protocol::tx::{Attestation, Claim, MAX_CLAIMS};
use vault_protocol::uscc::Uscc;

use super::{BulkError, RowFailure};
use crate::compose::{parse_claims, parse_date, DAY_MS};

/// The manifest's columns, in the documented order.
pub const MANIFEST_COLUMNS: [&str; 6] = [
    "uscc",
    "doc_type",
    "file",
    "valid_from",
    "valid_days",
    "claims",
];
/// The columns every manifest must have.
const REQUIRED_COLUMNS: [&str; 3] = ["uscc", "doc_type", "file"];

/// A manifest row, validated: everything needed to issue its attestation.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IssueSpec {
    /// The row (line number in the manifest).
    pub row: u64,
    /// The enterprise.
    pub uscc: Uscc,
    /// The document type.
    pub doc_type: DocTypeCode,
    /// The file (resolved against the files directory).
    pub file: PathBuf,
    /// Start of validity; `None` = when the transaction is made.
    pub valid_from: Option<Timestamp>,
    /// Validity in days from `valid_from`; `None` = does not expire.
    pub valid_days: Option<u64>,
    /// Claims, sorted by key.
    pub claims: BoundedVec<Claim, MAX_CLAIMS>,
}

impl IssueSpec {
    /// The attestation this row issues, for a file with `file_digest`, with `now` standing in for
    /// an empty `valid_from`.
    pub fn attestation(
        &self,
        issuer: &DepartmentId,
        file_digest: Digest,
        now: Timestamp,
    ) -> Attestation {
        let valid_from = self.valid_from.unwrap_or(now);
        Attestation {
            issuer: issuer.clone(),
            subject: self.uscc,
            doc_type: self.doc_type.clone(),
            file_digest,
            claims: self.claims.clone(),
            valid_from,
            valid_until: self
                .valid_days
                .map(|d| valid_from.plus(d.saturating_mul(DAY_MS))),
            supersedes: None,
        }
    }
}

/// A parsed manifest: its SHA-256 (which ties a state file to it) and each row, valid or not.
#[derive(Debug, Clone)]
pub struct Manifest {
    /// SHA-256 of the manifest file.
    pub sha256: Digest,
    /// Each data row in order: the validated row, or why it cannot be issued.
    pub rows: Vec<Result<IssueSpec, RowFailure>>,
    /// Each well-formed row's fingerprint (SHA-256 of its fields), by row: a state file keeps the
    /// fingerprints of the rows it issued, so a corrected manifest can be checked against them.
    pub fingerprints: BTreeMap<u64, Digest>,
}

impl Manifest {
    /// Reads and validates a manifest; `files_dir` is where relative file names are looked up.
    pub fn read(path: &Path, files_dir: &Path) -> Result<Manifest, BulkError> {
        let bytes = fs::read(path).map_err(|e| BulkError::Manifest {
            path: path.to_path_buf(),
            reason: e.to_string(),
        })?;
        Self::parse(&bytes, files_dir).map_err(|reason| BulkError::Manifest {
            path: path.to_path_buf(),
            reason,
        })
    }

    /// Validates a manifest's bytes. Fails only if the manifest as a whole is unusable (no header,
    /// a required column missing, an unknown column); a bad row becomes a [`RowFailure`].
    pub fn parse(bytes: &[u8], files_dir: &Path) -> Result<Manifest, String> {
        let sha256 = CryptoSuite::Ed25519Sha256.file_digest(bytes);
        let mut reader = csv::ReaderBuilder::new()
            .has_headers(true)
            .flexible(true)
            .trim(csv::Trim::All)
            .comment(Some(b'#'))
            .from_reader(bytes);
        let headers = reader
            .headers()
            .map_err(|e| format!("cannot read the header: {e}"))?
            .clone();
        let names: Vec<String> = headers
            .iter()
            .map(|h| h.trim_start_matches('\u{feff}').trim().to_ascii_lowercase())
            .collect();
        let mut column: BTreeMap<&str, usize> = BTreeMap::new();
        for (i, name) in names.iter().enumerate() {
            let Some(known) = MANIFEST_COLUMNS.iter().find(|c| **c == name.as_str()) else {
                return Err(format!(
                    "unknown column {name:?}; the columns are {}",
                    MANIFEST_COLUMNS.join(",")
                ));
            };
            if column.insert(known, i).is_some() {
                return Err(format!("column {name:?} appears twice"));
            }
        }
        if let Some(missing) = REQUIRED_COLUMNS.iter().find(|c| !column.contains_key(*c)) {
            return Err(format!(
                "no {missing:?} column; the header must be {}",
                MANIFEST_COLUMNS.join(",")
            ));
        }
        let mut rows = Vec::new();
        let mut fingerprints = BTreeMap::new();
        let mut record = csv::StringRecord::new();
        loop {
            match reader.read_record(&mut record) {
                Ok(false) => break,
                Ok(true) => {
                    let row = record.position().map_or(0, |p| p.line());
                    fingerprints.insert(row, fingerprint(&record, &column));
                    rows.push(parse_row(row, &record, &column, names.len(), files_dir));
                }
                Err(e) => {
                    // A malformed record (e.g. bad UTF-8) is that row's failure; the reader
                    // carries on with the next record.
                    let row = e.position().map_or(0, |p| p.line());
                    rows.push(Err(RowFailure::new(row, "malformed_row", e.to_string())));
                    if !matches!(e.kind(), csv::ErrorKind::Utf8 { .. }) {
                        break;
                    }
                }
            }
        }
        Ok(Manifest {
            sha256,
            rows,
            fingerprints,
        })
    }
}

/// SHA-256 of a row's fields, in the documented column order, separated by the unit separator.
fn fingerprint(record: &csv::StringRecord, column: &BTreeMap<&str, usize>) -> Digest {
    let fields: Vec<&str> = MANIFEST_COLUMNS
        .iter()
        .map(|name| {
            column
                .get(name)
                .and_then(|i| record.get(*i))
                .unwrap_or("")
                .trim()
        })
        .collect();
    CryptoSuite::Ed25519Sha256.file_digest(fields.join("\u{1f}").as_bytes())
}

fn parse_row(
    row: u64,
    record: &csv::StringRecord,
    column: &BTreeMap<&str, usize>,
    width: usize,
    files_dir: &Path,
) -> Result<IssueSpec, RowFailure> {
    let fail = |code: &str, reason: String| RowFailure::new(row, code, reason);
    if record.len() > width {
        return Err(fail(
            "malformed_row",
            format!("{} fields, the header has {width}", record.len()),
        ));
    }
    let field = |name: &str| {
        column
            .get(name)
            .and_then(|i| record.get(*i))
            .unwrap_or("")
            .trim()
    };
    let uscc_text = field("uscc");
    let uscc =
        Uscc::parse(uscc_text).map_err(|e| fail(e.code(), format!("USCC {uscc_text:?}: {e}")))?;
    let doc_type = DocTypeCode::new(field("doc_type")).map_err(|e| {
        fail(
            "invalid_doc_type",
            format!("doc_type {:?}: {e}", field("doc_type")),
        )
    })?;
    let file_text = field("file");
    if file_text.is_empty() {
        return Err(fail("missing_file", "no file named".into()));
    }
    let file = files_dir.join(file_text);
    if !file.is_file() {
        return Err(fail(
            "file_not_found",
            format!("file {} does not exist", file.display()),
        ));
    }
    let valid_from = match field("valid_from") {
        "" => None,
        s => Some(parse_date(s).map_err(|e| fail(e.code(), format!("valid_from: {e}")))?),
    };
    let valid_days = match field("valid_days") {
        "" => None,
        s => Some(s.parse::<u64>().ok().filter(|d| *d > 0).ok_or_else(|| {
            fail(
                "invalid_valid_days",
                format!("valid_days {s:?} is not a whole number of days above 0"),
            )
        })?),
    };
    let claims =
        parse_claims(field("claims")).map_err(|e| fail(e.code(), format!("claims: {e}")))?;
    Ok(IssueSpec {
        row,
        uscc,
        doc_type,
        file,
        valid_from,
        valid_days,
        claims,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::bulk::testing::*;
    use vault_protocol::ledger::test_uscc;

    #[test]
    fn rows_are_validated_each_on_its_own() {
        let files = Files::new(&["a.pdf", "b.pdf"]);
        let u = test_uscc(1);
        let text = manifest_text(&[
            format!("{u},BUSINESS_LICENCE,a.pdf,2024-03-01,365,\"licence_no=350100200012345;capital=100万, RMB\""),
            format!("{},BUSINESS_LICENCE,b.pdf,,,", bad_uscc()),
            format!("{u},BUSINESS_LICENCE,missing.pdf,,,"),
            format!("{u},business_licence,a.pdf,,,"),
            format!("{u},BUSINESS_LICENCE,a.pdf,2024-02-30,,"),
            format!("{u},BUSINESS_LICENCE,a.pdf,,0,"),
            format!("{u},BUSINESS_LICENCE,a.pdf,,,k=1;k=2"),
            format!("{u},BUSINESS_LICENCE,b.pdf"),
            format!("{u},BUSINESS_LICENCE,b.pdf,,,,extra"),
        ]);
        let m = Manifest::parse(text.as_bytes(), files.path()).unwrap();
        assert_eq!(m.rows.len(), 9);
        assert_eq!(
            m.sha256,
            CryptoSuite::Ed25519Sha256.file_digest(text.as_bytes())
        );

        let first = m.rows[0].as_ref().unwrap();
        assert_eq!(
            first.row, 2,
            "row numbers are line numbers; the header is line 1"
        );
        assert_eq!(first.uscc, u);
        assert_eq!(first.file, files.path().join("a.pdf"));
        assert_eq!(
            first.valid_from.unwrap().to_string(),
            "2024-03-01T00:00:00.000Z"
        );
        assert_eq!(first.valid_days, Some(365));
        let keys: Vec<&str> = first.claims.iter().map(|c| c.key.as_str()).collect();
        assert_eq!(keys, ["capital", "licence_no"]);
        assert_eq!(first.claims[0].value.as_str(), "100万, RMB");

        let failure = |i: usize| m.rows[i].as_ref().unwrap_err();
        // An invalid USCC names the rule it breaks.
        assert_eq!(failure(1).row, 3);
        assert_eq!(failure(1).code, "uscc_check_character_mismatch");
        assert!(
            failure(1).reason.contains("check character"),
            "{}",
            failure(1).reason
        );
        assert_eq!(failure(2).code, "file_not_found");
        assert!(failure(2).reason.contains("missing.pdf"));
        assert_eq!(failure(3).code, "invalid_doc_type");
        assert_eq!(failure(4).code, "invalid_date");
        assert_eq!(failure(5).code, "invalid_valid_days");
        assert_eq!(failure(6).code, "duplicate_claim");
        // Missing trailing optional fields are empty.
        assert!(m.rows[7].is_ok());
        assert_eq!(failure(8).code, "malformed_row");
    }

    #[test]
    fn manifest_header_must_be_usable() {
        let files = Files::new(&["a.pdf"]);
        let u = test_uscc(1);
        // Columns in another order, optional ones left out, a spreadsheet's BOM: fine.
        let ok = format!("\u{feff}file,uscc,doc_type\na.pdf,{u},BUSINESS_LICENCE\n");
        let m = Manifest::parse(ok.as_bytes(), files.path()).unwrap();
        assert_eq!(
            m.rows[0].as_ref().unwrap().doc_type.as_str(),
            "BUSINESS_LICENCE"
        );

        let missing = format!("uscc,file\n{u},a.pdf\n");
        let e = Manifest::parse(missing.as_bytes(), files.path()).unwrap_err();
        assert!(e.contains("doc_type"), "{e}");
        let unknown = format!("uscc,doc_type,file,vaild_days\n{u},X_Y,a.pdf,3\n");
        let e = Manifest::parse(unknown.as_bytes(), files.path()).unwrap_err();
        assert!(e.contains("vaild_days"), "{e}");
    }
}
