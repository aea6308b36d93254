//! Files people are imported from, recognized by their content: CSV exports (Outlook,
//! Google Contacts, Thunderbird, AD `csvde`, our own columns), Excel sheets, vCard and LDIF; in
//! UTF-8 (with or without BOM), UTF-16 (Outlook's "Unicode" export) or Windows-1252.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use crate::error::{Error, Result};
use crate::sources::{csv, ldif, vcard, ContactSource};
use crate::sync::RawBatch;

/// What kind of file it is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum Format {
    Csv,
    Xlsx,
    Vcard,
    Ldif,
}

impl Format {
    /// Recognizes a file by its first bytes: a zip archive is an Excel workbook, a first line
    /// `BEGIN:VCARD` a vCard file, `version:`/`dn:` LDIF; anything else is read as CSV.
    pub fn detect(bytes: &[u8]) -> Format {
        if bytes.starts_with(b"PK\x03\x04") {
            return Format::Xlsx;
        }
        let head = &bytes[..bytes.len().min(4096)];
        let (text, _) = decode(head);
        if vcard::looks_like(&text) {
            Format::Vcard
        } else if ldif::looks_like(&text) {
            Format::Ldif
        } else {
            Format::Csv
        }
    }

    /// The kind a run of this format is recorded as.
    pub fn kind(self) -> &'static str {
        match self {
            Format::Csv => "csv",
            Format::Xlsx => "xlsx",
            Format::Vcard => "vcard",
            Format::Ldif => "ldif",
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            Format::Csv => "CSV",
            Format::Xlsx => "Excel workbook",
            Format::Vcard => "vCard",
            Format::Ldif => "LDIF",
        }
    }
}

/// Decodes a whole file and names the encoding it was in: a BOM decides; else UTF-16 without
/// BOM when every other byte of the start is zero; else UTF-8; else Windows-1252 (Outlook's
/// export on Windows). A UTF-8 file with a few bad bytes stays UTF-8 (the bad bytes become
/// U+FFFD and their rows are refused).
pub fn decode(bytes: &[u8]) -> (String, &'static str) {
    if let Some(rest) = bytes.strip_prefix(b"\xEF\xBB\xBF") {
        return (String::from_utf8_lossy(rest).into_owned(), "UTF-8 with BOM");
    }
    for (bom, encoding, name) in [
        (&b"\xFF\xFE"[..], encoding_rs::UTF_16LE, "UTF-16LE"),
        (&b"\xFE\xFF"[..], encoding_rs::UTF_16BE, "UTF-16BE"),
    ] {
        if let Some(rest) = bytes.strip_prefix(bom) {
            return (
                encoding.decode_without_bom_handling(rest).0.into_owned(),
                name,
            );
        }
    }
    let head = &bytes[..bytes.len().min(512) & !1];
    if head.len() >= 4 {
        let zeros = |offset: usize| {
            head.iter()
                .skip(offset)
                .step_by(2)
                .filter(|b| **b == 0)
                .count()
        };
        let half = head.len() / 2;
        // Text in Latin letters has a zero as the high byte of nearly every character.
        for (high, low, encoding, name) in [
            (1, 0, encoding_rs::UTF_16LE, "UTF-16LE"),
            (0, 1, encoding_rs::UTF_16BE, "UTF-16BE"),
        ] {
            if zeros(high) * 10 >= half * 9 && zeros(low) == 0 {
                let text = encoding.decode_without_bom_handling(bytes).0.into_owned();
                return (text, name);
            }
        }
    }
    if let Ok(text) = std::str::from_utf8(bytes) {
        return (text.to_string(), "UTF-8");
    }
    if bytes.utf8_chunks().any(|chunk| !chunk.valid().is_ascii()) {
        (
            String::from_utf8_lossy(bytes).into_owned(),
            "UTF-8 (some bytes invalid)",
        )
    } else {
        (
            encoding_rs::WINDOWS_1252
                .decode_without_bom_handling(bytes)
                .0
                .into_owned(),
            "Windows-1252",
        )
    }
}

/// Reads a file of the given format (or the one its content shows). CSV and Excel columns are
/// mapped by their headers, with `columns` (header → field) taking precedence.
pub fn parse(
    bytes: &[u8],
    format: Option<Format>,
    columns: &BTreeMap<String, String>,
) -> Result<RawBatch> {
    let format = format.unwrap_or_else(|| Format::detect(bytes));
    if format == Format::Xlsx {
        let mut batch = csv::parse_table(xlsx_rows(bytes)?, columns)?;
        batch.format = format!("{} (first sheet)", format.name());
        return Ok(batch);
    }
    let (text, encoding) = decode(bytes);
    let (mut batch, name) = match format {
        Format::Vcard => (vcard::parse(&text), format.name().to_string()),
        Format::Ldif => (ldif::parse(&text), format.name().to_string()),
        // The CSV parser names the tool and the delimiter.
        Format::Csv | Format::Xlsx => {
            let batch = csv::parse_text(&text, columns)?;
            let name = batch.format.clone();
            (batch, name)
        }
    };
    batch.format = format!("{name}, {encoding}");
    Ok(batch)
}

/// The first sheet's rows as text, each with its row number.
fn xlsx_rows(bytes: &[u8]) -> Result<Vec<(u64, Vec<String>)>> {
    use calamine::Reader;
    let unreadable = |reason: String| Error::Input {
        path: PathBuf::new(),
        reason: format!("cannot read the workbook: {reason}"),
    };
    let mut workbook =
        calamine::Xlsx::new(std::io::Cursor::new(bytes)).map_err(|e| unreadable(e.to_string()))?;
    let range = workbook
        .worksheet_range_at(0)
        .ok_or_else(|| unreadable("it has no sheet".into()))?
        .map_err(|e| unreadable(e.to_string()))?;
    let first_row = range.start().map_or(0, |(row, _)| u64::from(row));
    Ok(range
        .rows()
        .enumerate()
        .map(|(i, cells)| {
            let row = first_row + i as u64 + 1;
            (row, cells.iter().map(cell_text).collect())
        })
        .collect())
}

fn cell_text(cell: &calamine::Data) -> String {
    match cell {
        // Numbers typed into a cell (phone numbers, ids) come back as floats.
        calamine::Data::Float(f) if f.fract() == 0.0 && f.abs() < 1e15 => format!("{}", *f as i64),
        calamine::Data::Empty => String::new(),
        other => other.to_string(),
    }
}

/// Reads and parses a file, naming it in errors.
pub fn parse_file(
    path: &Path,
    format: Option<Format>,
    columns: &BTreeMap<String, String>,
) -> Result<RawBatch> {
    let bytes = std::fs::read(path).map_err(|e| Error::Input {
        path: path.into(),
        reason: e.to_string(),
    })?;
    parse(&bytes, format, columns).map_err(|e| match e {
        Error::Input { reason, .. } => Error::Input {
            path: path.into(),
            reason,
        },
        e => e,
    })
}

/// A file as a contact source.
pub struct FileSource {
    path: PathBuf,
    format: Option<Format>,
    columns: BTreeMap<String, String>,
}

impl FileSource {
    pub fn new(
        path: impl Into<PathBuf>,
        format: Option<Format>,
        columns: BTreeMap<String, String>,
    ) -> Self {
        FileSource {
            path: path.into(),
            format,
            columns,
        }
    }
}

impl ContactSource for FileSource {
    fn kind(&self) -> &'static str {
        self.format.unwrap_or(Format::Csv).kind()
    }

    async fn read(&mut self) -> Result<RawBatch> {
        let path = self.path.clone();
        let columns = self.columns.clone();
        let format = self.format;
        tokio::task::spawn_blocking(move || parse_file(&path, format, &columns))
            .await
            .map_err(|e| Error::Internal(e.into()))?
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn utf16le(text: &str, bom: bool) -> Vec<u8> {
        let mut bytes = if bom { vec![0xFF, 0xFE] } else { vec![] };
        bytes.extend(text.encode_utf16().flat_map(u16::to_le_bytes));
        bytes
    }

    #[test]
    fn utf16_is_read_with_and_without_bom() {
        let text = "First Name\tLast Name\tMobile Phone\r\nJürgen\tMüller\t+49 151 23456789\r\n";
        for bom in [true, false] {
            let batch = parse(&utf16le(text, bom), None, &BTreeMap::new()).expect("parse");
            let r = &batch.records[0].1;
            assert_eq!(r.family_name.as_deref(), Some("Müller"), "bom: {bom}");
            assert!(batch.format.contains("UTF-16LE"), "{}", batch.format);
        }
    }

    #[test]
    fn formats_are_recognized_by_content() {
        assert_eq!(
            Format::detect(b"BEGIN:VCARD\r\nFN:A\r\nEND:VCARD\r\n"),
            Format::Vcard
        );
        assert_eq!(
            Format::detect(b"\xEF\xBB\xBFbegin:vcard\nFN:A\n"),
            Format::Vcard
        );
        assert_eq!(
            Format::detect(b"# export\nversion: 1\n\ndn: cn=a\n"),
            Format::Ldif
        );
        assert_eq!(Format::detect(b"dn: cn=a,dc=x\ncn: a\n"), Format::Ldif);
        assert_eq!(Format::detect(b"DN,cn\n\"CN=a\",a\n"), Format::Csv);
        assert_eq!(Format::detect(b"PK\x03\x04rest"), Format::Xlsx);
        assert_eq!(
            Format::detect(&utf16le("BEGIN:VCARD\r\n", true)),
            Format::Vcard
        );
    }

    #[test]
    fn a_damaged_workbook_is_a_clear_error() {
        let err = parse(b"PK\x03\x04not really a zip", None, &BTreeMap::new()).expect_err("broken");
        assert!(
            err.to_string().contains("cannot read the workbook"),
            "{err}"
        );
    }
}
