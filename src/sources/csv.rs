//! CSV files as exported by Outlook, Google Contacts, AD's `csvde`, or written to our own column names.
//!
//! The delimiter (`,` `;` tab) and a UTF-8 BOM are detected; files that are not UTF-8 are read as
//! Windows-1252, which is what Outlook writes on Windows. See `schema/csv-columns.md`.

use std::collections::BTreeMap;
use std::path::PathBuf;

use crate::db::runs::Reject;
use crate::domain::{PhoneKind, SourceRecord};
use crate::error::{Error, Result};
use crate::sync::RawBatch;

/// What a column holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Field {
    ExternalId,
    GivenName,
    FamilyName,
    DisplayName,
    /// Names the person goes by (Google's and Thunderbird's "Nickname").
    Nickname,
    Email,
    Phone(PhoneKind),
    Title,
    Department,
    OrgUnit,
    Location,
    ManagerRef,
    Im,
    PhotoUrl,
    /// The person's country (ISO code or English name): the region of their national numbers.
    Country,
    /// Whether partner companies may see them (yes/no).
    PartnerSharing,
    Ignore,
}

impl Field {
    /// Our own column names, also the values accepted in a configured column mapping.
    pub fn from_name(name: &str) -> Option<Field> {
        Some(match name {
            "external_id" => Field::ExternalId,
            "given_name" => Field::GivenName,
            "family_name" => Field::FamilyName,
            "display_name" => Field::DisplayName,
            "nickname" | "nicknames" => Field::Nickname,
            "email" => Field::Email,
            "phone" => Field::Phone(PhoneKind::Work),
            "mobile" => Field::Phone(PhoneKind::Mobile),
            "home_phone" => Field::Phone(PhoneKind::Home),
            "fax" => Field::Phone(PhoneKind::Fax),
            "extension" => Field::Phone(PhoneKind::Extension),
            "title" => Field::Title,
            "department" => Field::Department,
            "org_unit" => Field::OrgUnit,
            "location" => Field::Location,
            "manager_email" | "manager" => Field::ManagerRef,
            "im" => Field::Im,
            "photo_url" => Field::PhotoUrl,
            "country" => Field::Country,
            "partner_sharing" => Field::PartnerSharing,
            "ignore" => Field::Ignore,
            _ => return None,
        })
    }

    /// Recognizes a header from any of the export formats we know. Returns the field and a rank:
    /// when several columns fill one single-valued field, the lowest rank with a value wins.
    pub fn recognize(header: &str) -> Option<(Field, u8)> {
        if let Some(field) = Field::from_name(header.trim()) {
            return Some((field, 0));
        }
        let key = header_key(header);
        let work = Field::Phone(PhoneKind::Work);
        let found = match key.as_str() {
            // Identity
            "externalid" | "employeeid" | "employeenumber" | "objectguid" | "entryuuid" => {
                (Field::ExternalId, 1)
            }
            "uid" | "samaccountname" => (Field::ExternalId, 3),
            "dn" | "distinguishedname" => (Field::ExternalId, 2),
            // Names (Outlook, Google, csvde; German Outlook)
            "givenname" | "firstname" | "vorname" => (Field::GivenName, 1),
            "familyname" | "lastname" | "surname" | "sn" | "nachname" => (Field::FamilyName, 1),
            "displayname" | "fullname" => (Field::DisplayName, 1),
            "name" | "cn" => (Field::DisplayName, 2),
            "nickname" | "nicknames" | "nickname1" | "preferredname" | "knownas" | "rufname"
            | "spitzname" => (Field::Nickname, 1),
            "partnersharing" | "sharewithpartners" | "partnervisible" | "partnervisibility" => {
                (Field::PartnerSharing, 1)
            }
            // Email
            "emailaddress" | "mail" | "email" | "email1value" | "emailaddress1"
            | "primaryemail" | "emailadresse" => (Field::Email, 1),
            "email2address" | "email3address" | "email2value" | "email3value" | "emailaddress2"
            | "secondaryemail" | "email2adresse" | "email3adresse" => (Field::Email, 2),
            // Phones
            "businessphone"
            | "telephonenumber"
            | "workphone"
            | "phone1value"
            | "officephone"
            | "phone"
            | "telephone"
            | "telefongeschäftlich" => (work, 1),
            "businessphone2"
            | "companymainphone"
            | "othertelephone"
            | "phone2value"
            | "phone3value"
            | "telefongeschäftlich2" => (work, 2),
            "mobilephone" | "mobile" | "cellphone" | "cell" | "mobilenumber" | "mobiltelefon"
            | "handy" => (Field::Phone(PhoneKind::Mobile), 1),
            "homephone" | "homephone2" | "hometelephone" | "telefonprivat" => {
                (Field::Phone(PhoneKind::Home), 1)
            }
            "businessfax"
            | "faxnumber"
            | "facsimiletelephonenumber"
            | "homefax"
            | "faxgeschäftlich" => (Field::Phone(PhoneKind::Fax), 1),
            "ext" | "ipphone" | "phoneextension" => (Field::Phone(PhoneKind::Extension), 1),
            // Organisation
            "jobtitle" | "organization1title" | "organizationtitle" | "position" => {
                (Field::Title, 1)
            }
            "department"
            | "dept"
            | "organization1department"
            | "organizationdepartment"
            | "abteilung" => (Field::Department, 1),
            "departmentnumber" => (Field::Department, 2),
            "ou" | "organizationalunit" | "division" | "orgunit" => (Field::OrgUnit, 1),
            "company" | "firma" | "organization1name" | "organizationname" | "organization" => {
                (Field::OrgUnit, 2)
            }
            "officelocation"
            | "office"
            | "physicaldeliveryofficename"
            | "organization1location"
            | "büro" => (Field::Location, 1),
            "location" => (Field::Location, 2),
            // Country: Outlook's business address, Google's first address, csvde/LDAP.
            "businesscountryregion"
            | "countryregion"
            | "address1country"
            | "landregiongeschäftlich"
            | "workcountry"
            | "co"
            | "c"
            | "countrycode" => (Field::Country, 1),
            "homecountryregion" | "address2country" | "homecountry" => (Field::Country, 2),
            "l" | "city" | "businesscity" | "ortgeschäftlich" | "workcity" | "address1city" => {
                (Field::Location, 3)
            }
            "manageremail" | "managerdn" | "manager" => (Field::ManagerRef, 1),
            "imaddress" | "msrtcsipprimaryuseraddress" | "impp" => (Field::Im, 1),
            "photo" | "photourl" | "pictureurl" | "photo1value" => (Field::PhotoUrl, 1),
            _ => return None,
        };
        Some(found)
    }

    /// The field's name as in our own columns (`ignore` for a column set aside).
    pub fn name(self) -> &'static str {
        match self {
            Field::ExternalId => "external_id",
            Field::GivenName => "given_name",
            Field::FamilyName => "family_name",
            Field::DisplayName => "display_name",
            Field::Nickname => "nickname",
            Field::Email => "email",
            Field::Phone(PhoneKind::Work) => "phone",
            Field::Phone(PhoneKind::Mobile) => "mobile",
            Field::Phone(PhoneKind::Home) => "home_phone",
            Field::Phone(PhoneKind::Fax) => "fax",
            Field::Phone(PhoneKind::Extension) => "extension",
            Field::Title => "title",
            Field::Department => "department",
            Field::OrgUnit => "org_unit",
            Field::Location => "location",
            Field::ManagerRef => "manager",
            Field::Im => "im",
            Field::PhotoUrl => "photo_url",
            Field::PartnerSharing => "partner_sharing",
            Field::Country => "country",
            Field::Ignore => "ignore",
        }
    }

    fn multi_valued(self) -> bool {
        matches!(
            self,
            Field::Email | Field::Phone(_) | Field::Im | Field::Nickname
        )
    }
}

/// A header as it is matched: letters and digits only, lower case ("E-mail 1 - Value" →
/// "email1value").
fn header_key(header: &str) -> String {
    header
        .chars()
        .filter(|c| c.is_alphanumeric())
        .flat_map(char::to_lowercase)
        .collect()
}

/// How the columns of one file map to fields.
#[derive(Debug)]
struct Columns {
    /// For each column, its field and rank.
    fields: Vec<Option<(Field, u8)>>,
    /// Google's "Phone N - Type" column for each "Phone N - Value" column.
    phone_types: BTreeMap<usize, usize>,
}

impl Columns {
    fn new(headers: &[String], overrides: &BTreeMap<String, String>) -> Result<Columns> {
        let overrides: BTreeMap<String, &str> = overrides
            .iter()
            .map(|(h, f)| (h.trim().to_lowercase(), f.as_str()))
            .collect();
        let mut fields = Vec::with_capacity(headers.len());
        for header in headers {
            let field = match overrides.get(&header.trim().to_lowercase()) {
                Some(name) => {
                    let field = Field::from_name(name).ok_or_else(|| {
                        Error::Config(format!(
                            "column mapping: unknown field `{name}` for column `{header}`"
                        ))
                    })?;
                    Some((field, 0))
                }
                None => Field::recognize(header),
            };
            fields.push(field);
        }
        let mut phone_types = BTreeMap::new();
        for (i, header) in headers.iter().enumerate() {
            let key = header_key(header);
            if let Some(n) = key
                .strip_prefix("phone")
                .and_then(|k| k.strip_suffix("value"))
            {
                // "Phone 1 - Type" (older export), "Phone 1 - Label" (current one).
                let type_keys = [format!("phone{n}type"), format!("phone{n}label")];
                if let Some(t) = headers
                    .iter()
                    .position(|h| type_keys.contains(&header_key(h)))
                {
                    phone_types.insert(i, t);
                }
            }
        }
        if !fields
            .iter()
            .flatten()
            .any(|(f, _)| matches!(f, Field::GivenName | Field::FamilyName | Field::DisplayName))
        {
            return Err(Error::Input {
                path: PathBuf::new(),
                reason: format!(
                    "no name column among the headers ({}); expected e.g. `display_name`, `First Name`/`Last Name`, \
                     `givenName`/`sn`, or a column mapping in the config",
                    headers.join(", ")
                ),
            });
        }
        Ok(Columns {
            fields,
            phone_types,
        })
    }

    fn record(&self, row: &[&str]) -> SourceRecord {
        let mut rec = SourceRecord::default();
        let mut ranks: BTreeMap<&'static str, u8> = BTreeMap::new();
        for (i, value) in row.iter().enumerate() {
            let Some(Some((field, rank))) = self.fields.get(i) else {
                continue;
            };
            let value = value.trim();
            if value.is_empty() {
                continue;
            }
            if field.multi_valued() {
                // Google joins several values with " ::: ".
                for part in value.split(":::") {
                    match field {
                        Field::Email => rec
                            .emails
                            .extend(part.split([';', ',', ' ']).map(str::to_string)),
                        Field::Im => rec.im.extend(part.split_whitespace().map(str::to_string)),
                        Field::Nickname => rec.nicknames.push(part.trim().to_string()),
                        Field::Phone(kind) => {
                            let kind = self.phone_kind(i, row).unwrap_or(*kind);
                            rec.phones
                                .extend(part.split(';').map(|p| (kind, p.to_string())));
                        }
                        _ => {}
                    }
                }
                continue;
            }
            let (slot, name): (&mut Option<String>, &'static str) = match field {
                Field::ExternalId => (&mut rec.external_id, "id"),
                Field::GivenName => (&mut rec.given_name, "given"),
                Field::FamilyName => (&mut rec.family_name, "family"),
                Field::DisplayName => (&mut rec.display_name, "display"),
                Field::Title => (&mut rec.title, "title"),
                Field::Department => (&mut rec.department, "department"),
                Field::OrgUnit => (&mut rec.org_unit, "org_unit"),
                Field::Location => (&mut rec.location, "location"),
                Field::ManagerRef => (&mut rec.manager_ref, "manager"),
                Field::PhotoUrl => (&mut rec.photo_url, "photo"),
                Field::Country => (&mut rec.country, "country"),
                Field::PartnerSharing => (&mut rec.partner_sharing, "partner_sharing"),
                _ => continue,
            };
            if ranks.get(name).is_none_or(|best| rank < best) {
                ranks.insert(name, *rank);
                *slot = Some(value.to_string());
            }
        }
        rec
    }

    fn phone_kind(&self, column: usize, row: &[&str]) -> Option<PhoneKind> {
        let kind = row.get(*self.phone_types.get(&column)?)?.to_lowercase();
        Some(match kind.trim_start_matches("* ") {
            k if k.contains("mobile") || k.contains("cell") => PhoneKind::Mobile,
            k if k.contains("fax") => PhoneKind::Fax,
            k if k.contains("home") => PhoneKind::Home,
            _ => PhoneKind::Work,
        })
    }
}

/// 1-based line numbers from byte offsets, counted incrementally (records arrive in order).
/// The csv crate's own line numbers are off by one for CRLF files and after blank lines.
struct Lines<'t> {
    text: &'t [u8],
    offset: usize,
    line: u64,
}

impl Lines<'_> {
    fn at(&mut self, byte: u64) -> u64 {
        let mut start = usize::try_from(byte)
            .unwrap_or(usize::MAX)
            .min(self.text.len());
        while start < self.text.len() && matches!(self.text[start], b'\n' | b'\r') {
            start += 1;
        }
        if start > self.offset {
            self.line += self.text[self.offset..start]
                .iter()
                .filter(|b| **b == b'\n')
                .count() as u64;
            self.offset = start;
        }
        self.line
    }
}

/// The delimiter that splits the header line into the most fields, quotes respected.
pub fn detect_delimiter(text: &str) -> u8 {
    let mut counts = [(b',', 0usize), (b';', 0), (b'\t', 0)];
    let mut in_quotes = false;
    for c in text.bytes() {
        match c {
            b'"' => in_quotes = !in_quotes,
            b'\n' if !in_quotes => break,
            _ if !in_quotes => {
                for (d, n) in counts.iter_mut() {
                    if *d == c {
                        *n += 1;
                    }
                }
            }
            _ => {}
        }
    }
    counts
        .iter()
        .max_by_key(|(_, n)| *n)
        .filter(|(_, n)| *n > 0)
        .map_or(b',', |(d, _)| *d)
}

/// Parses a CSV export into records; a row that cannot be read becomes a reject with its line.
pub fn parse(bytes: &[u8], overrides: &BTreeMap<String, String>) -> Result<RawBatch> {
    crate::sources::file::parse(bytes, Some(crate::sources::file::Format::Csv), overrides)
}

/// Which tool wrote a file with these headers, to say so in a dry run.
fn flavor(headers: &[String]) -> &'static str {
    let has = |name: &str| headers.iter().any(|h| h.trim().eq_ignore_ascii_case(name));
    if has("Vorname") || has("Nachname") {
        "Outlook (German)"
    } else if has("E-mail 1 - Value") && has("Given Name") {
        "Google Contacts (old export)"
    } else if has("E-mail 1 - Value") || has("Phone 1 - Value") {
        "Google Contacts"
    } else if has("Primary Email") {
        "Thunderbird"
    } else if has("E-mail Address") || has("Business Phone") {
        "Outlook"
    } else if has("DN") && (has("objectClass") || has("sAMAccountName")) {
        "AD csvde"
    } else if headers.iter().all(|h| Field::from_name(h.trim()).is_some()) {
        "Switchboard columns"
    } else {
        "columns by name"
    }
}

/// Parses decoded CSV text.
pub fn parse_text(text: &str, overrides: &BTreeMap<String, String>) -> Result<RawBatch> {
    let delimiter = detect_delimiter(text);
    let mut reader = ::csv::ReaderBuilder::new()
        .delimiter(delimiter)
        .flexible(true)
        .has_headers(true)
        .from_reader(text.as_bytes());
    let headers: Vec<String> = reader
        .headers()
        .map_err(|e| Error::Input {
            path: PathBuf::new(),
            reason: format!("cannot read the header line: {e}"),
        })?
        .iter()
        .map(str::to_string)
        .collect();
    let mut table = Table::new(headers, overrides)?;
    let delimiter = match delimiter {
        b'\t' => "tab".to_string(),
        d => format!("`{}`", char::from(d)),
    };
    table.batch.format = format!("CSV ({}), {delimiter}-delimited", flavor(&table.headers));
    let mut row = ::csv::StringRecord::new();
    let mut lines = Lines {
        text: text.as_bytes(),
        offset: 0,
        line: 1,
    };
    loop {
        match reader.read_record(&mut row) {
            Ok(false) => break,
            Ok(true) => {
                let line = row.position().map(|p| lines.at(p.byte()));
                let fields: Vec<&str> = row.iter().collect();
                table.row(line, &fields);
            }
            Err(e) => {
                let line = e.position().map(|p| lines.at(p.byte()));
                table.batch.rejects.push(Reject {
                    line,
                    external_id: None,
                    dn: None,
                    reason: format!("unreadable row: {e}"),
                });
                if !matches!(
                    e.kind(),
                    ::csv::ErrorKind::Utf8 { .. } | ::csv::ErrorKind::UnequalLengths { .. }
                ) {
                    break;
                }
            }
        }
    }
    Ok(table.batch)
}

/// Parses rows of cells (a spreadsheet's), the first being the header, each with its number.
pub fn parse_table(
    rows: Vec<(u64, Vec<String>)>,
    overrides: &BTreeMap<String, String>,
) -> Result<RawBatch> {
    let mut rows = rows
        .into_iter()
        .skip_while(|(_, cells)| cells.iter().all(|c| c.trim().is_empty()));
    let Some((_, headers)) = rows.next() else {
        return Err(Error::Input {
            path: PathBuf::new(),
            reason: "the sheet is empty: no header row".into(),
        });
    };
    let width = headers
        .iter()
        .rposition(|h| !h.trim().is_empty())
        .map_or(0, |i| i + 1);
    let mut table = Table::new(headers[..width].to_vec(), overrides)?;
    for (line, cells) in rows {
        let fields: Vec<&str> = cells.iter().map(String::as_str).collect();
        table.row(Some(line), &fields);
    }
    Ok(table.batch)
}

/// A header row's mapping and the batch its rows go into.
struct Table {
    headers: Vec<String>,
    columns: Columns,
    batch: RawBatch,
}

impl Table {
    fn new(headers: Vec<String>, overrides: &BTreeMap<String, String>) -> Result<Table> {
        let columns = Columns::new(&headers, overrides)?;
        let batch = RawBatch {
            columns: headers
                .iter()
                .zip(&columns.fields)
                .map(|(header, field)| (header.clone(), field.map(|(f, _)| f.name())))
                .collect(),
            ..RawBatch::default()
        };
        Ok(Table {
            headers,
            columns,
            batch,
        })
    }

    /// Takes one row: a record, or a reject with its line.
    fn row(&mut self, line: Option<u64>, fields: &[&str]) {
        let width = self.headers.len();
        if fields.iter().all(|f| f.trim().is_empty()) {
            return;
        }
        // Refused rows keep their id when they have one, so a full import keeps the person.
        let known = &fields[..fields.len().min(width)];
        let refuse = |reason: String| Reject {
            line,
            external_id: self.columns.record(known).identity(),
            dn: None,
            reason,
        };
        if fields.len() > width && fields[width..].iter().any(|f| !f.trim().is_empty()) {
            let reject = refuse(format!(
                "{} fields, but the header has {width}",
                fields.len()
            ));
            self.batch.rejects.push(reject);
            return;
        }
        if fields.iter().any(|f| f.contains('\u{FFFD}')) {
            let reject = refuse("contains bytes that are not valid UTF-8".into());
            self.batch.rejects.push(reject);
            return;
        }
        self.batch.records.push((line, self.columns.record(known)));
    }
}

/// Writes records in our own column format, the one `import csv` reads without a mapping.
pub fn write_records<W: std::io::Write>(out: W, records: &[SourceRecord]) -> Result<()> {
    let mut writer = ::csv::Writer::from_writer(out);
    writer
        .write_record([
            "external_id",
            "given_name",
            "family_name",
            "display_name",
            "nickname",
            "email",
            "phone",
            "mobile",
            "extension",
            "title",
            "department",
            "org_unit",
            "location",
            "manager_email",
            "im",
            "country",
        ])
        .map_err(|e| Error::Internal(e.into()))?;
    for r in records {
        let phone = |kind| {
            r.phones
                .iter()
                .filter(|(k, _)| *k == kind)
                .map(|(_, p)| p.as_str())
                .collect::<Vec<_>>()
                .join(";")
        };
        writer
            .write_record([
                r.external_id.as_deref().unwrap_or(""),
                r.given_name.as_deref().unwrap_or(""),
                r.family_name.as_deref().unwrap_or(""),
                r.display_name.as_deref().unwrap_or(""),
                &r.nicknames.join(", "),
                &r.emails.join(" "),
                &phone(PhoneKind::Work),
                &phone(PhoneKind::Mobile),
                &phone(PhoneKind::Extension),
                r.title.as_deref().unwrap_or(""),
                r.department.as_deref().unwrap_or(""),
                r.org_unit.as_deref().unwrap_or(""),
                r.location.as_deref().unwrap_or(""),
                r.manager_ref.as_deref().unwrap_or(""),
                &r.im.join(" "),
                r.country.as_deref().unwrap_or(""),
            ])
            .map_err(|e| Error::Internal(e.into()))?;
    }
    writer.flush()?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse_str(text: &str) -> RawBatch {
        parse(text.as_bytes(), &BTreeMap::new()).expect("parse")
    }

    #[test]
    fn delimiters_are_detected() {
        assert_eq!(detect_delimiter("a;b;c\n1,2;3"), b';');
        assert_eq!(detect_delimiter("a\tb\tc\n"), b'\t');
        assert_eq!(detect_delimiter("\"x;y\",b,c\n"), b',');
    }

    #[test]
    fn outlook_headers_map_to_fields() {
        let b = parse_str(
            "First Name,Last Name,E-mail Address,Business Phone,Mobile Phone,Job Title,Department,Office Location\n\
             Jane,Smith,jane@example.com,+44 20 7946 0018,+44 7700 900123,CFO,Finance,London\n",
        );
        let r = &b.records[0].1;
        assert_eq!(r.given_name.as_deref(), Some("Jane"));
        assert_eq!(r.family_name.as_deref(), Some("Smith"));
        assert_eq!(r.emails, vec!["jane@example.com"]);
        assert_eq!(r.phones.len(), 2);
        assert_eq!(r.phones[1].0, PhoneKind::Mobile);
        assert_eq!(r.title.as_deref(), Some("CFO"));
        assert_eq!(r.location.as_deref(), Some("London"));
        assert_eq!(b.records[0].0, Some(2));
    }

    #[test]
    fn google_phone_types_are_honoured() {
        let b = parse_str(
            "Name,Phone 1 - Type,Phone 1 - Value,E-mail 1 - Value\n\
             Ana Lima,Mobile,+55 11 91234 5678,ana@example.com ::: ana.lima@example.org\n",
        );
        let r = &b.records[0].1;
        assert_eq!(r.phones[0].0, PhoneKind::Mobile);
        assert_eq!(r.emails.iter().filter(|e| !e.is_empty()).count(), 2);
    }

    #[test]
    fn overrides_win_and_unknown_overrides_fail() {
        let mut map = BTreeMap::new();
        map.insert("Emp No".to_string(), "external_id".to_string());
        let b = parse("Emp No,display_name\n42,Jo\n".as_bytes(), &map).expect("parse");
        assert_eq!(b.records[0].1.external_id.as_deref(), Some("42"));
        map.insert("Emp No".to_string(), "shoe_size".to_string());
        assert!(parse("Emp No,display_name\n42,Jo\n".as_bytes(), &map).is_err());
    }

    #[test]
    fn a_file_without_name_columns_is_refused() {
        let err = parse("foo,bar\n1,2\n".as_bytes(), &BTreeMap::new()).expect_err("no names");
        assert!(err.to_string().contains("no name column"), "{err}");
    }

    #[test]
    fn windows_1252_is_decoded() {
        let bytes = b"display_name\nJos\xe9 M\xfcller\n";
        let b = parse(bytes, &BTreeMap::new()).expect("parse");
        assert_eq!(b.records[0].1.display_name.as_deref(), Some("José Müller"));
    }

    #[test]
    fn line_numbers_are_right_with_crlf_and_blank_lines() {
        let b = parse_str("display_name,email\r\nAna,a@example.com\r\n\r\nBo,b@example.com\r\n\"Cy\r\nZ\",c@example.com\r\nDi,d@example.com\r\n");
        let lines: Vec<Option<u64>> = b.records.iter().map(|(l, _)| *l).collect();
        assert_eq!(lines, [Some(2), Some(4), Some(5), Some(7)]);
    }

    #[test]
    fn a_few_bad_bytes_do_not_turn_a_utf8_file_into_windows_1252() {
        let mut bytes = "display_name\nJosé Müller\nAna\n".as_bytes().to_vec();
        bytes.extend_from_slice(b"Bad \xff Byte\n");
        let b = parse(&bytes, &BTreeMap::new()).expect("parse");
        assert_eq!(b.records[0].1.display_name.as_deref(), Some("José Müller"));
        assert_eq!(b.rejects.len(), 1);
        assert_eq!(b.rejects[0].line, Some(4));
        assert!(b.rejects[0].reason.contains("UTF-8"));
    }

    #[test]
    fn refused_rows_keep_their_id() {
        let b = parse_str("external_id,display_name\nE1,Ana,extra\n");
        assert_eq!(b.rejects[0].external_id.as_deref(), Some("E1"));
        assert_eq!(b.rejects[0].line, Some(2));
    }

    #[test]
    fn written_records_read_back_with_their_country() {
        // The benchmark writes the demo company out and imports it: London's national numbers
        // need their country to come back as UK numbers.
        let rec = SourceRecord {
            display_name: Some("Kim".into()),
            country: Some("United Kingdom".into()),
            phones: vec![(PhoneKind::Work, "020 7946 0018".into())],
            ..Default::default()
        };
        let mut out = Vec::new();
        write_records(&mut out, std::slice::from_ref(&rec)).expect("write");
        let b = parse(&out, &BTreeMap::new()).expect("parse");
        assert_eq!(b.records[0].1.country, rec.country);
        assert_eq!(b.records[0].1.phones, rec.phones);
    }

    #[test]
    fn ranks_pick_the_best_id_column() {
        let b = parse_str("DN,objectGUID,cn\n\"CN=Jo,OU=x\",abc-123,Jo\n");
        assert_eq!(b.records[0].1.external_id.as_deref(), Some("abc-123"));
    }
}
