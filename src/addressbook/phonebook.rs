//! Remote XML phone books in each desk phone vendor's documented shape, from the same search as
//! everything else. The shapes (and the vendor documents they come from) are kept as test
//! fixtures in `tests/fixtures/phonebooks/`.

use quick_xml::escape::escape;
use serde::Deserialize;
use utoipa::ToSchema;

use super::entry::dialable;
use crate::domain::{Person, PhoneKind};

/// The phone book formats served at `/phonebooks/{vendor}`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum Vendor {
    /// Cisco IP Phone Services `CiscoIPPhoneDirectory` (at most 32 entries, one number each:
    /// ten people a page, three numbers each at most).
    Cisco,
    /// Yealink remote phone book `YealinkIPPhoneBook`.
    Yealink,
    /// Snom remote XML directory `tbook` (version 2.0).
    Snom,
    /// Polycom (Poly) contact directory `directory/item_list`.
    Polycom,
    /// Grandstream XML phone book `AddressBook`.
    Grandstream,
}

impl Vendor {
    /// People in one page: a Cisco phone shows at most 32 directory entries of one number
    /// each.
    pub fn page_size(self) -> usize {
        match self {
            Vendor::Cisco => CISCO_PEOPLE,
            _ => 500,
        }
    }
}

/// People on one Cisco page, and numbers of each: 30 entries, within the phone's 32.
const CISCO_PEOPLE: usize = 10;
const CISCO_NUMBERS: usize = 3;

/// The numbers of a person, labelled, in the order the source gave them.
fn numbers(person: &Person) -> Vec<(PhoneKind, String)> {
    let mut out: Vec<(PhoneKind, String)> = Vec::new();
    for phone in &person.phones {
        let number = dialable(phone);
        if !number.is_empty() && !out.iter().any(|(_, n)| *n == number) {
            out.push((phone.kind, number));
        }
    }
    out
}

fn label(kind: PhoneKind) -> &'static str {
    match kind {
        PhoneKind::Work => "work",
        PhoneKind::Mobile => "mobile",
        PhoneKind::Home => "home",
        PhoneKind::Fax => "fax",
        PhoneKind::Extension => "ext",
    }
}

/// At most `max` characters.
fn cut(text: &str, max: usize) -> String {
    text.chars().take(max).collect()
}

/// Given and family name, or the display name as the given one when the source has neither.
fn split_name(person: &Person) -> (String, String) {
    match (&person.given_name, &person.family_name) {
        (None, None) => (person.display_name.clone(), String::new()),
        (given, family) => (
            given.clone().unwrap_or_default(),
            family.clone().unwrap_or_default(),
        ),
    }
}

/// One page of the phone book: `people` (already shown through the caller's policy), their
/// position in all matches (`first`, 1-based) and how many match (`total`).
pub fn render(vendor: Vendor, people: &[Person], first: usize, total: usize) -> String {
    let mut xml = String::from("<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n");
    let e = |s: &str| escape(s).into_owned();
    match vendor {
        Vendor::Cisco => {
            xml.push_str("<CiscoIPPhoneDirectory>\n<Title>Switchboard</Title>\n");
            let last = first + people.len().saturating_sub(1);
            let prompt = if people.is_empty() {
                "No matches".to_string()
            } else {
                format!("Records {first} to {last} of {total}")
            };
            xml.push_str(&format!("<Prompt>{}</Prompt>\n", e(&prompt)));
            for person in people.iter().take(CISCO_PEOPLE) {
                let mut numbers = numbers(person);
                numbers.truncate(CISCO_NUMBERS);
                let several = numbers.len() > 1;
                for (kind, number) in numbers {
                    // The phone shows 32 characters of each field.
                    let name = if several {
                        let suffix = format!(" ({})", label(kind));
                        let room = 32usize.saturating_sub(suffix.chars().count());
                        format!("{}{suffix}", cut(&person.display_name, room))
                    } else {
                        cut(&person.display_name, 32)
                    };
                    xml.push_str(&format!(
                        "<DirectoryEntry>\n<Name>{}</Name>\n<Telephone>{}</Telephone>\n</DirectoryEntry>\n",
                        e(&name),
                        e(&cut(&number, 32))
                    ));
                }
            }
            xml.push_str("</CiscoIPPhoneDirectory>\n");
        }
        Vendor::Yealink => {
            xml.push_str(
                "<YealinkIPPhoneBook>\n<Title>Switchboard</Title>\n<Menu Name=\"Directory\">\n",
            );
            for person in people {
                let numbers = numbers(person);
                let phone = |i: usize| numbers.get(i).map(|(_, n)| e(n)).unwrap_or_default();
                xml.push_str(&format!(
                    "<Unit Name=\"{}\" Phone1=\"{}\" Phone2=\"{}\" Phone3=\"{}\"/>\n",
                    e(&person.display_name),
                    phone(0),
                    phone(1),
                    phone(2)
                ));
            }
            xml.push_str("</Menu>\n</YealinkIPPhoneBook>\n");
        }
        Vendor::Snom => {
            xml.push_str("<tbook e=\"2\" version=\"2.0\">\n");
            for person in people {
                let (given, family) = split_name(person);
                xml.push_str(&format!(
                    "<contact fav=\"false\" vip=\"false\" blocked=\"false\">\n<first_name>{}</first_name>\n<last_name>{}</last_name>\n<numbers>\n",
                    e(&given),
                    e(&family)
                ));
                for (kind, number) in numbers(person) {
                    let kind = match kind {
                        PhoneKind::Work => "business",
                        PhoneKind::Mobile => "mobile",
                        PhoneKind::Home => "home",
                        PhoneKind::Fax => "fax",
                        PhoneKind::Extension => "sip",
                    };
                    xml.push_str(&format!(
                        "<number no=\"{}\" type=\"{kind}\" outgoing_id=\"0\"/>\n",
                        e(&number)
                    ));
                }
                xml.push_str("</numbers>\n</contact>\n");
            }
            xml.push_str("</tbook>\n");
        }
        Vendor::Polycom => {
            xml.push_str("<directory>\n<item_list>\n");
            for person in people {
                let (given, family) = split_name(person);
                let numbers = numbers(person);
                let several = numbers.len() > 1;
                // One number per item: the others are items of their own, labelled.
                for (kind, number) in numbers {
                    let family = if several {
                        format!("{family} ({})", label(kind))
                    } else {
                        family.clone()
                    };
                    xml.push_str(&format!(
                        "<item>\n<ln>{}</ln>\n<fn>{}</fn>\n<ct>{}</ct>\n</item>\n",
                        e(&family),
                        e(&given),
                        e(&number)
                    ));
                }
            }
            xml.push_str("</item_list>\n</directory>\n");
        }
        Vendor::Grandstream => {
            xml.push_str("<AddressBook>\n<version>1</version>\n");
            for person in people {
                let (given, family) = split_name(person);
                xml.push_str(&format!(
                    "<Contact>\n<FirstName>{}</FirstName>\n<LastName>{}</LastName>\n",
                    e(&given),
                    e(&family)
                ));
                for (kind, number) in numbers(person) {
                    let kind = match kind {
                        PhoneKind::Mobile => "Mobile",
                        PhoneKind::Home => "Home",
                        _ => "Work",
                    };
                    xml.push_str(&format!(
                        "<Phone type=\"{kind}\">\n<phonenumber>{}</phonenumber>\n<accountindex>0</accountindex>\n</Phone>\n",
                        e(&number)
                    ));
                }
                xml.push_str("</Contact>\n");
            }
            xml.push_str("</AddressBook>\n");
        }
    }
    xml
}
