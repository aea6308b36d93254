//! A synthetic but realistic company: an org chart with managers, offices in sixteen countries with
//! valid local numbers, and international names with diacritics. Deterministic for a given seed.

use std::collections::{HashMap, HashSet};

use rand::rngs::SmallRng;
use rand::{Rng, SeedableRng};

use crate::domain::{PhoneKind, SourceRecord};
use crate::error::Result;
use crate::sources::ContactSource;
use crate::sync::RawBatch;

pub const DEMO_SOURCE: &str = "demo";
pub const DEMO_DOMAIN: &str = "example.com";

struct Office {
    name: &'static str,
    /// As an export's country column writes it (a code or a name): the region of the office's
    /// numbers written without a country code.
    country: &'static str,
    /// Numbers written nationally (`020 7946 0018`), as people in this office write them:
    /// the calling code they leave out.
    national: Option<&'static str>,
    /// The office's direct-dial blocks (E.164 digits without `+`); a person's extension follows.
    did_prefixes: &'static [&'static str],
    ext_digits: usize,
    /// Digits of a mobile prefix, followed by `mobile_digits` random digits.
    mobile_prefix: &'static [&'static str],
    mobile_digits: usize,
    given: &'static [&'static str],
    family: &'static [&'static str],
}

const OFFICES: &[Office] = &[
    Office {
        name: "London",
        country: "United Kingdom",
        national: Some("44"),
        did_prefixes: &["44203", "44207"],
        ext_digits: 7,
        mobile_prefix: &["44740", "44770", "44795"],
        mobile_digits: 7,
        given: &[
            "Oliver", "Amelia", "Harry", "Isla", "Siobhán", "Rhys", "Niamh", "Priya", "Olusegun",
            "Zoë",
        ],
        family: &[
            "Smith",
            "Jones",
            "Taylor",
            "Brown",
            "O'Connor",
            "Ó Súilleabháin",
            "Patel",
            "Evans",
            "Okafor",
            "Hughes",
        ],
    },
    Office {
        name: "New York",
        country: "US",
        national: None,
        did_prefixes: &["121246", "121247", "121248"],
        ext_digits: 5,
        mobile_prefix: &["19172", "16463", "13474"],
        mobile_digits: 6,
        given: &[
            "James", "Mary", "Michael", "Jennifer", "Carlos", "Aaliyah", "Wei", "Jessica",
            "DeShawn", "Renée",
        ],
        family: &[
            "Johnson",
            "Williams",
            "García",
            "Miller",
            "Davis",
            "Rodríguez",
            "Nguyen",
            "Kim",
            "Washington",
            "Cohen",
        ],
    },
    Office {
        name: "Berlin",
        country: "Deutschland",
        national: Some("49"),
        did_prefixes: &["4930"],
        ext_digits: 8,
        mobile_prefix: &["49151", "49160", "49170"],
        mobile_digits: 8,
        given: &[
            "Jürgen",
            "Käthe",
            "Lukas",
            "Sophie",
            "Jörg",
            "Maximilian",
            "Anneliese",
            "Günther",
            "Lea",
            "Björn",
        ],
        family: &[
            "Müller",
            "Schmidt",
            "Schneider",
            "Fischer",
            "Weiß",
            "Schäfer",
            "Groß",
            "Köhler",
            "Meyer",
            "Hoffmann",
        ],
    },
    Office {
        name: "Paris",
        country: "FR",
        national: None,
        did_prefixes: &["3314", "3315"],
        ext_digits: 7,
        mobile_prefix: &["3361", "3362", "3376"],
        mobile_digits: 7,
        given: &[
            "Léa",
            "Hugo",
            "Chloé",
            "Théo",
            "Élodie",
            "François",
            "Anaïs",
            "Jérôme",
            "Inès",
            "Benoît",
        ],
        family: &[
            "Martin",
            "Bernard",
            "Dubois",
            "Lefèvre",
            "Moreau",
            "Girard",
            "Fontaine",
            "Chevalier",
            "Bérenger",
            "Lefèbvre",
        ],
    },
    Office {
        name: "Madrid",
        country: "ES",
        national: None,
        did_prefixes: &["3491"],
        ext_digits: 7,
        mobile_prefix: &["346"],
        mobile_digits: 8,
        given: &[
            "José", "María", "Álvaro", "Lucía", "Iñigo", "Begoña", "Sofía", "Ramón", "Nuria",
            "Martín",
        ],
        family: &[
            "García",
            "Fernández",
            "López",
            "Martínez",
            "Sánchez",
            "Pérez",
            "Gómez",
            "Muñoz",
            "Ibáñez",
            "Núñez",
        ],
    },
    Office {
        name: "Warsaw",
        country: "PL",
        national: None,
        did_prefixes: &["4822"],
        ext_digits: 7,
        mobile_prefix: &["4860", "4850", "4879"],
        mobile_digits: 7,
        given: &[
            "Łukasz",
            "Małgorzata",
            "Paweł",
            "Zofia",
            "Michał",
            "Agnieszka",
            "Grzegorz",
            "Józef",
            "Katarzyna",
            "Wojciech",
        ],
        family: &[
            "Nowak",
            "Kowalski",
            "Wiśniewski",
            "Wójcik",
            "Łukaszewicz",
            "Kamiński",
            "Zieliński",
            "Szymański",
            "Woźniak",
            "Dąbrowski",
        ],
    },
    Office {
        name: "Stockholm",
        country: "SE",
        national: None,
        did_prefixes: &["46850"],
        ext_digits: 6,
        mobile_prefix: &["4670", "4672", "4673"],
        mobile_digits: 7,
        given: &[
            "Åsa", "Björn", "Märta", "Lars", "Ingrid", "Øystein", "Sören", "Linnéa", "Mikael",
            "Astrid",
        ],
        family: &[
            "Andersson",
            "Johansson",
            "Karlsson",
            "Nilsson",
            "Ångström",
            "Lindqvist",
            "Sjöberg",
            "Ødegaard",
            "Bäckström",
            "Holm",
        ],
    },
    Office {
        name: "Istanbul",
        country: "TR",
        national: None,
        did_prefixes: &["90212"],
        ext_digits: 7,
        mobile_prefix: &["90532", "90535", "90542"],
        mobile_digits: 7,
        given: &[
            "Ayşe", "Mehmet", "Çağrı", "Gülşen", "Emre", "Şükrü", "Zeynep", "Barış", "Öznur",
            "İlker",
        ],
        family: &[
            "Yılmaz", "Kaya", "Demir", "Şahin", "Çelik", "Öztürk", "Aydın", "Doğan", "Kılıç",
            "Güneş",
        ],
    },
    // Offices whose directories hold names in their own scripts, as a multinational's do.
    Office {
        name: "Shanghai",
        country: "CN",
        national: None,
        did_prefixes: &["86215", "86216"],
        ext_digits: 7,
        mobile_prefix: &["86138", "86139"],
        mobile_digits: 8,
        given: &["伟", "芳", "娜", "敏", "静", "丽", "强", "磊", "军", "洋"],
        family: &["王", "李", "张", "刘", "陈", "杨", "黄", "赵", "吴", "周"],
    },
    Office {
        name: "Seoul",
        country: "KR",
        national: None,
        did_prefixes: &["8223"],
        ext_digits: 7,
        mobile_prefix: &["82102", "82103", "82104"],
        mobile_digits: 7,
        given: &[
            "민준", "서연", "도윤", "하은", "시우", "지유", "주원", "서윤", "예준", "지민",
        ],
        family: &["김", "이", "박", "최", "정", "강", "조", "윤", "장", "임"],
    },
    Office {
        name: "Athens",
        country: "GR",
        national: None,
        did_prefixes: &["30210"],
        ext_digits: 7,
        mobile_prefix: &["30694", "30697"],
        mobile_digits: 7,
        given: &[
            "Γιώργος",
            "Μαρία",
            "Δημήτριος",
            "Ελένη",
            "Νικόλαος",
            "Αικατερίνη",
            "Κωνσταντίνος",
            "Σοφία",
            "Ιωάννης",
            "Αναστασία",
        ],
        family: &[
            "Παπαδάκης",
            "Οικονόμου",
            "Γεωργίου",
            "Νικολάου",
            "Βασιλείου",
            "Αντωνίου",
            "Ιωάννου",
            "Δημητρίου",
            "Κωνσταντίνου",
            "Μακρής",
        ],
    },
    Office {
        name: "Kyiv",
        country: "UA",
        national: None,
        did_prefixes: &["38044"],
        ext_digits: 7,
        mobile_prefix: &["38067", "38050"],
        mobile_digits: 7,
        given: &[
            "Олександр",
            "Олена",
            "Андрій",
            "Наталія",
            "Сергій",
            "Ірина",
            "Дмитро",
            "Оксана",
            "Максим",
            "Юлія",
        ],
        family: &[
            "Шевченко",
            "Коваленко",
            "Бондаренко",
            "Ткаченко",
            "Кравченко",
            "Олійник",
            "Мельник",
            "Шевчук",
            "Поліщук",
            "Бойко",
        ],
    },
    Office {
        name: "Tokyo",
        country: "JP",
        national: None,
        did_prefixes: &["813"],
        ext_digits: 8,
        mobile_prefix: &["8190", "8180"],
        mobile_digits: 8,
        given: &[
            "Haruto", "Yui", "Sōta", "Aoi", "Ren", "Yūki", "Kōji", "Sakura", "Daiki", "Hina",
        ],
        family: &[
            "Satō",
            "Suzuki",
            "Takahashi",
            "Tanaka",
            "Itō",
            "Watanabe",
            "Yamamoto",
            "Nakamura",
            "Kobayashi",
            "Katō",
        ],
    },
    Office {
        name: "Bengaluru",
        country: "IN",
        national: None,
        did_prefixes: &["91804"],
        ext_digits: 7,
        mobile_prefix: &["9198", "9199", "9197"],
        mobile_digits: 8,
        given: &[
            "Aarav", "Ananya", "Vihaan", "Diya", "Arjun", "Saanvi", "Rohan", "Lakshmi", "Karthik",
            "Meera",
        ],
        family: &[
            "Sharma",
            "Iyer",
            "Reddy",
            "Nair",
            "Gupta",
            "Rao",
            "Menon",
            "Krishnan",
            "Bhattacharya",
            "Desai",
        ],
    },
    Office {
        name: "São Paulo",
        country: "BR",
        national: None,
        did_prefixes: &["55113"],
        ext_digits: 7,
        mobile_prefix: &["55119"],
        mobile_digits: 8,
        given: &[
            "João",
            "Ana",
            "Gonçalo",
            "Beatriz",
            "Luíza",
            "Thiago",
            "Conceição",
            "Caio",
            "Fernanda",
            "Antônio",
        ],
        family: &[
            "Silva",
            "Santos",
            "Oliveira",
            "Souza",
            "Conceição",
            "Araújo",
            "Gonçalves",
            "Magalhães",
            "Simões",
            "Brandão",
        ],
    },
    Office {
        name: "Zürich",
        country: "CH",
        national: None,
        did_prefixes: &["4144"],
        ext_digits: 7,
        mobile_prefix: &["4179", "4178", "4176"],
        mobile_digits: 7,
        given: &[
            "Noah", "Mia", "Lüthi", "Elena", "Rémy", "Chiara", "Urs", "Anja", "Reto", "Célia",
        ],
        family: &[
            "Müller", "Meier", "Schmid", "Keller", "Weber", "Huber", "Brunner", "Zürcher",
            "Bühler", "Graf",
        ],
    },
];

struct Department {
    name: &'static str,
    units: &'static [&'static str],
    titles: &'static [&'static str],
}

const DEPARTMENTS: &[Department] = &[
    Department {
        name: "Engineering",
        units: &[
            "Platform",
            "Mobile",
            "Data",
            "Security",
            "Developer Experience",
        ],
        titles: &[
            "Software Engineer",
            "Senior Software Engineer",
            "Staff Engineer",
            "Site Reliability Engineer",
            "QA Engineer",
        ],
    },
    Department {
        name: "Sales",
        units: &["EMEA Sales", "Americas Sales", "APAC Sales", "Inside Sales"],
        titles: &[
            "Account Executive",
            "Sales Development Representative",
            "Solutions Consultant",
            "Account Manager",
        ],
    },
    Department {
        name: "Customer Support",
        units: &["Tier 1", "Tier 2", "Customer Success"],
        titles: &[
            "Support Specialist",
            "Support Engineer",
            "Customer Success Manager",
        ],
    },
    Department {
        name: "Finance",
        units: &["Accounting", "Treasury", "Procurement"],
        titles: &[
            "Accountant",
            "Financial Analyst",
            "Controller",
            "Payroll Specialist",
        ],
    },
    Department {
        name: "Human Resources",
        units: &["Recruiting", "People Operations", "Learning"],
        titles: &[
            "Recruiter",
            "HR Business Partner",
            "People Operations Specialist",
        ],
    },
    Department {
        name: "Marketing",
        units: &["Brand", "Growth", "Product Marketing"],
        titles: &[
            "Marketing Manager",
            "Content Strategist",
            "Designer",
            "Product Marketing Manager",
        ],
    },
    Department {
        name: "Legal",
        units: &["Commercial", "Compliance"],
        titles: &["Counsel", "Paralegal", "Compliance Officer"],
    },
    Department {
        name: "IT",
        units: &["Service Desk", "Infrastructure", "Identity"],
        titles: &[
            "IT Support Technician",
            "Systems Administrator",
            "Network Engineer",
        ],
    },
    Department {
        name: "Facilities",
        units: &["Reception", "Workplace"],
        titles: &["Receptionist", "Office Manager", "Facilities Coordinator"],
    },
    Department {
        name: "Product",
        units: &["Product Management", "Research"],
        titles: &["Product Manager", "UX Researcher", "Product Designer"],
    },
];

/// How many people report to one team lead.
const TEAM_SIZE: usize = 8;

/// Names some people go by, for the given names they have: short forms, and the English names
/// colleagues in China and Korea often use at work.
const GOES_BY: &[(&str, &str)] = &[
    ("Oliver", "Ollie"),
    ("Olusegun", "Segun"),
    ("James", "Jim"),
    ("Michael", "Mike"),
    ("Jennifer", "Jen"),
    ("José", "Pepe"),
    ("Mikael", "Micke"),
    ("Олександр", "Саша"),
    ("伟", "David"),
    ("芳", "Fiona"),
    ("민준", "Jason"),
];

/// Minutes east of UTC of a demo office (standard time), by its name as people's `location`:
/// the simulated presence keeps each office's working hours.
pub fn utc_offset(location: &str) -> Option<i32> {
    Some(match location {
        "London" => 0,
        "New York" => -300,
        "Berlin" | "Paris" | "Madrid" | "Warsaw" | "Stockholm" | "Zürich" => 60,
        "Athens" | "Kyiv" => 120,
        "Istanbul" => 180,
        "Bengaluru" => 330,
        "Shanghai" => 480,
        "Seoul" | "Tokyo" => 540,
        "São Paulo" => -180,
        _ => return None,
    })
}

/// Generates `count` people. The first is the CEO; each department has a head reporting to the
/// CEO, and teams of about eight report to team leads who report to their department head.
pub fn generate(count: usize, seed: u64) -> Vec<SourceRecord> {
    let mut rng = SmallRng::seed_from_u64(seed);
    let mut emails: HashMap<String, usize> = HashMap::new();
    let mut people = Vec::with_capacity(count);
    // Per department: (external id of head, current team lead, members in that team)
    let mut heads: Vec<Option<String>> = vec![None; DEPARTMENTS.len()];
    let mut teams: Vec<(Option<String>, usize)> = vec![(None, 0); DEPARTMENTS.len()];
    let mut offices = Vec::with_capacity(count);

    for i in 0..count {
        let external_id = format!("E{:07}", i + 1);
        let office_index = rng.random_range(0..OFFICES.len());
        let office = &OFFICES[office_index];
        let given = office.given[rng.random_range(0..office.given.len())];
        let family = office.family[rng.random_range(0..office.family.len())];
        let d = if i == 0 {
            0
        } else {
            rng.random_range(0..DEPARTMENTS.len())
        };
        let dept = &DEPARTMENTS[d];
        let unit = dept.units[rng.random_range(0..dept.units.len())];

        let (title, manager) = if i == 0 {
            ("Chief Executive Officer".to_string(), None)
        } else if heads[d].is_none() {
            heads[d] = Some(external_id.clone());
            (
                format!("Head of {}", dept.name),
                Some("E0000001".to_string()),
            )
        } else {
            let (lead, members) = &mut teams[d];
            if lead.is_none() || *members >= TEAM_SIZE {
                *lead = Some(external_id.clone());
                *members = 0;
                (format!("{} Team Lead", unit), heads[d].clone())
            } else {
                *members += 1;
                (
                    dept.titles[rng.random_range(0..dept.titles.len())].to_string(),
                    lead.clone(),
                )
            }
        };

        let local = email_local(given, family);
        // jane.smith@, jane.smith2@, jane.smith3@…
        let n = emails.entry(local.clone()).or_insert(0);
        *n += 1;
        let email = if *n == 1 {
            format!("{local}@{DEMO_DOMAIN}")
        } else {
            format!("{local}{n}@{DEMO_DOMAIN}")
        };
        let handle = email.split('@').next().unwrap_or(&local).to_string();
        // Numbers are drawn below, office by office.
        let mut phones = vec![(PhoneKind::Work, String::new())];
        if rng.random_bool(0.7) {
            phones.push((PhoneKind::Mobile, String::new()));
        }
        offices.push(office_index);
        let mut im = vec![format!("xmpp:{handle}@chat.{DEMO_DOMAIN}")];
        if rng.random_bool(0.4) {
            im.push(format!("matrix:u/{handle}:{DEMO_DOMAIN}"));
        }
        if rng.random_bool(0.5) {
            im.push(format!("msteams:{email}"));
        }
        // One in four of those with a usual other name goes by it (no random draw, so the rest
        // of the company is the same as without).
        let nicknames = GOES_BY
            .iter()
            .find(|(name, _)| *name == given)
            .filter(|_| i % 4 == 1)
            .map(|(_, nickname)| nickname.to_string())
            .into_iter()
            .collect();
        people.push(SourceRecord {
            external_id: Some(external_id),
            given_name: Some(given.to_string()),
            nicknames,
            family_name: Some(family.to_string()),
            display_name: None,
            title: Some(title),
            department: Some(dept.name.to_string()),
            org_unit: Some(unit.to_string()),
            location: Some(office.name.to_string()),
            country: Some(office.country.to_string()),
            read_warnings: Vec::new(),
            manager_ref: manager,
            emails: vec![email],
            phones,
            im,
            photo_url: None,
            photo: None,
            dn: None,
            // A few have said no to partner companies (HR keeps the flag).
            partner_sharing: (i % 50 == 7).then(|| "no".to_string()),
        });
    }
    assign_numbers(&mut rng, &mut people, &offices);
    people
}

/// Gives everyone unique numbers of their office's country. Every block is valid in full
/// (`every_number_block_is_valid` checks), so no number needs parsing here.
fn assign_numbers(rng: &mut SmallRng, people: &mut [SourceRecord], offices: &[usize]) {
    let mut used = HashSet::with_capacity(people.len() * 2);
    for (person, office) in people.iter_mut().zip(offices) {
        let office = &OFFICES[*office];
        for (kind, number) in &mut person.phones {
            let (prefixes, digits) = match kind {
                PhoneKind::Mobile => (office.mobile_prefix, office.mobile_digits),
                _ => (office.did_prefixes, office.ext_digits),
            };
            // Blocks hold nearly a million numbers or more; the bound only guards a bad table.
            let mut candidate = random_number(rng, prefixes, digits);
            for _ in 0..100 {
                if used.insert(candidate.clone()) {
                    break;
                }
                candidate = random_number(rng, prefixes, digits);
            }
            *number = match office.national {
                // `+4420…` → `020…`: the trunk prefix where the calling code was.
                Some(code) => format!("0{}", &candidate[1 + code.len()..]),
                None => candidate,
            };
        }
    }
}

fn random_number(rng: &mut SmallRng, prefixes: &[&str], digits: usize) -> String {
    let prefix = prefixes[rng.random_range(0..prefixes.len())];
    format!("+{prefix}{}", random_digits(rng, digits))
}

fn random_digits(rng: &mut SmallRng, n: usize) -> String {
    // No leading zero: some numbering plans reserve it.
    (0..n)
        .map(|i| {
            char::from(
                b'0' + if i == 0 {
                    rng.random_range(1..10)
                } else {
                    rng.random_range(0..10)
                },
            )
        })
        .collect()
}

/// `Jürgen Groß` → `jurgen.gross`: emails stay ASCII.
fn email_local(given: &str, family: &str) -> String {
    // Addresses are in Latin letters, whatever the script of the name.
    let fold = |s: &str| {
        crate::search::names::transliterate(s).unwrap_or_else(|| crate::search::fold(s).join(""))
    };
    format!("{}.{}", fold(given), fold(family))
}

/// The demo company as a contact source.
pub struct DemoSource {
    pub count: usize,
    pub seed: u64,
}

impl ContactSource for DemoSource {
    fn kind(&self) -> &'static str {
        "demo"
    }

    async fn read(&mut self) -> Result<RawBatch> {
        let records = generate(self.count, self.seed)
            .into_iter()
            .map(|r| (None, r))
            .collect();
        Ok(RawBatch {
            records,
            format: "demo company".into(),
            ..RawBatch::default()
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::{Phone, PhoneNormalizer};

    #[test]
    fn every_office_has_a_time_zone() {
        for office in OFFICES {
            assert!(utc_offset(office.name).is_some(), "{}", office.name);
        }
    }

    #[test]
    fn every_generated_person_is_valid() {
        let phones = PhoneNormalizer::new("US").expect("region");
        let people = generate(3_000, 7);
        let (valid, rejects) = crate::sync::validate(
            RawBatch {
                records: people.into_iter().map(|r| (None, r)).collect(),
                ..RawBatch::default()
            },
            &phones,
        );
        assert!(rejects.is_empty(), "{:?}", &rejects[..rejects.len().min(5)]);
        assert_eq!(valid.len(), 3_000);
        // Nothing odd either: every number is valid in its plan.
        let odd: Vec<&String> = valid.iter().flat_map(|(_, r)| &r.warnings).collect();
        assert!(odd.is_empty(), "{:?}", &odd[..odd.len().min(5)]);
        // London and Berlin write their numbers nationally; each person's country places them.
        for (office, code) in [("London", "+44"), ("Berlin", "+49")] {
            let phones: Vec<&Phone> = valid
                .iter()
                .filter(|(_, r)| r.location.as_deref() == Some(office))
                .flat_map(|(_, r)| &r.phones)
                .collect();
            assert!(!phones.is_empty(), "{office}");
            for phone in phones {
                assert!(phone.raw.starts_with('0'), "{office}: {phone:?}");
                assert!(
                    phone.e164.as_deref().is_some_and(|e| e.starts_with(code)),
                    "{office}: {phone:?}"
                );
            }
        }
    }

    #[test]
    fn the_org_chart_has_one_root_and_managers_exist() {
        let people = generate(500, 1);
        let ids: HashSet<_> = people
            .iter()
            .filter_map(|p| p.external_id.clone())
            .collect();
        assert_eq!(people.iter().filter(|p| p.manager_ref.is_none()).count(), 1);
        assert!(people
            .iter()
            .filter_map(|p| p.manager_ref.as_ref())
            .all(|m| ids.contains(m)));
    }

    fn blocks(office: &Office) -> impl Iterator<Item = (&'static str, usize)> + '_ {
        office
            .did_prefixes
            .iter()
            .map(|p| (*p, office.ext_digits))
            .chain(
                office
                    .mobile_prefix
                    .iter()
                    .map(|p| (*p, office.mobile_digits)),
            )
    }

    #[test]
    fn every_office_has_room_for_a_million_people() {
        // Each office gets about 1/16 of a million people, 1.7 numbers each.
        for office in OFFICES {
            let work: usize =
                office.did_prefixes.len() * 9 * 10usize.pow(office.ext_digits as u32 - 1);
            let mobile: usize =
                office.mobile_prefix.len() * 9 * 10usize.pow(office.mobile_digits as u32 - 1);
            assert!(
                work >= 250_000 && mobile >= 250_000,
                "{}: {work} work, {mobile} mobile",
                office.name
            );
        }
    }

    #[test]
    fn every_number_block_is_valid() {
        let mut rng = SmallRng::seed_from_u64(5);
        for office in OFFICES {
            for (prefix, digits) in blocks(office) {
                for _ in 0..300 {
                    let n = random_number(&mut rng, &[prefix], digits);
                    let parsed = phonenumber::parse(None, &n).expect("parses");
                    assert!(phonenumber::is_valid(&parsed), "{}: {n}", office.name);
                }
            }
        }
    }

    #[test]
    fn generation_is_deterministic_and_emails_unique() {
        let a = generate(2_000, 42);
        assert_eq!(a, generate(2_000, 42));
        let emails: HashSet<_> = a.iter().flat_map(|p| p.emails.clone()).collect();
        assert_eq!(emails.len(), 2_000);
        assert!(a
            .iter()
            .any(|p| p.family_name.as_deref().is_some_and(|f| !f.is_ascii())));
    }
}
