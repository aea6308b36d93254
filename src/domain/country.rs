//! Countries as exports write them: ISO 3166 codes (alpha-2, alpha-3, numeric as in LDAP's
//! `countryCode`) and the names Outlook, Google and AD write in English and German. Used to read
//! a person's national phone numbers in their own country's numbering plan.

use phonenumber::country::Id as Region;

use super::phone::parse_region;

/// Alpha-2, alpha-3, numeric, and names (lower case, English then German and other common
/// spellings). Codes not listed here are still read when written as alpha-2.
const COUNTRIES: &[(&str, &str, u16, &[&str])] = &[
    (
        "AE",
        "ARE",
        784,
        &[
            "united arab emirates",
            "vereinigte arabische emirate",
            "uae",
        ],
    ),
    ("AR", "ARG", 32, &["argentina", "argentinien"]),
    ("AT", "AUT", 40, &["austria", "österreich", "oesterreich"]),
    ("AU", "AUS", 36, &["australia", "australien"]),
    (
        "BE",
        "BEL",
        56,
        &["belgium", "belgien", "belgique", "belgië"],
    ),
    ("BG", "BGR", 100, &["bulgaria", "bulgarien"]),
    ("BR", "BRA", 76, &["brazil", "brasilien", "brasil"]),
    ("CA", "CAN", 124, &["canada", "kanada"]),
    (
        "CH",
        "CHE",
        756,
        &["switzerland", "schweiz", "suisse", "svizzera"],
    ),
    ("CL", "CHL", 152, &["chile"]),
    (
        "CN",
        "CHN",
        156,
        &["china", "people's republic of china", "volksrepublik china"],
    ),
    ("CO", "COL", 170, &["colombia", "kolumbien"]),
    ("CY", "CYP", 196, &["cyprus", "zypern"]),
    (
        "CZ",
        "CZE",
        203,
        &[
            "czech republic",
            "czechia",
            "tschechien",
            "tschechische republik",
        ],
    ),
    (
        "DE",
        "DEU",
        276,
        &["germany", "deutschland", "federal republic of germany"],
    ),
    (
        "DK",
        "DNK",
        208,
        &["denmark", "dänemark", "daenemark", "danmark"],
    ),
    ("EE", "EST", 233, &["estonia", "estland"]),
    ("EG", "EGY", 818, &["egypt", "ägypten"]),
    ("ES", "ESP", 724, &["spain", "spanien", "españa", "espana"]),
    ("FI", "FIN", 246, &["finland", "finnland", "suomi"]),
    ("FR", "FRA", 250, &["france", "frankreich"]),
    (
        "GB",
        "GBR",
        826,
        &[
            "united kingdom",
            "great britain",
            "vereinigtes königreich",
            "großbritannien",
            "grossbritannien",
            "england",
            "scotland",
            "wales",
            "northern ireland",
            "uk",
        ],
    ),
    ("GR", "GRC", 300, &["greece", "griechenland"]),
    (
        "HK",
        "HKG",
        344,
        &["hong kong", "hongkong", "hong kong sar"],
    ),
    ("HR", "HRV", 191, &["croatia", "kroatien"]),
    ("HU", "HUN", 348, &["hungary", "ungarn"]),
    ("ID", "IDN", 360, &["indonesia", "indonesien"]),
    ("IE", "IRL", 372, &["ireland", "irland"]),
    ("IL", "ISR", 376, &["israel"]),
    ("IN", "IND", 356, &["india", "indien"]),
    ("IS", "ISL", 352, &["iceland", "island"]),
    ("IT", "ITA", 380, &["italy", "italien", "italia"]),
    ("JP", "JPN", 392, &["japan"]),
    (
        "KR",
        "KOR",
        410,
        &["south korea", "korea", "republic of korea", "südkorea"],
    ),
    ("LT", "LTU", 440, &["lithuania", "litauen"]),
    ("LU", "LUX", 442, &["luxembourg", "luxemburg"]),
    ("LV", "LVA", 428, &["latvia", "lettland"]),
    ("MA", "MAR", 504, &["morocco", "marokko"]),
    ("MT", "MLT", 470, &["malta"]),
    ("MX", "MEX", 484, &["mexico", "mexiko"]),
    ("MY", "MYS", 458, &["malaysia"]),
    ("NG", "NGA", 566, &["nigeria"]),
    (
        "NL",
        "NLD",
        528,
        &[
            "netherlands",
            "the netherlands",
            "niederlande",
            "holland",
            "nederland",
        ],
    ),
    ("NO", "NOR", 578, &["norway", "norwegen", "norge"]),
    ("NZ", "NZL", 554, &["new zealand", "neuseeland"]),
    ("PH", "PHL", 608, &["philippines", "philippinen"]),
    ("PK", "PAK", 586, &["pakistan"]),
    ("PL", "POL", 616, &["poland", "polen", "polska"]),
    ("PT", "PRT", 620, &["portugal"]),
    ("RO", "ROU", 642, &["romania", "rumänien"]),
    ("RS", "SRB", 688, &["serbia", "serbien"]),
    (
        "RU",
        "RUS",
        643,
        &["russia", "russian federation", "russland"],
    ),
    ("SA", "SAU", 682, &["saudi arabia", "saudi-arabien"]),
    ("SE", "SWE", 752, &["sweden", "schweden", "sverige"]),
    ("SG", "SGP", 702, &["singapore", "singapur"]),
    ("SI", "SVN", 705, &["slovenia", "slowenien"]),
    ("SK", "SVK", 703, &["slovakia", "slowakei"]),
    ("TH", "THA", 764, &["thailand"]),
    (
        "TR",
        "TUR",
        792,
        &["turkey", "türkiye", "turkiye", "türkei"],
    ),
    ("TW", "TWN", 158, &["taiwan"]),
    ("UA", "UKR", 804, &["ukraine"]),
    (
        "US",
        "USA",
        840,
        &[
            "united states",
            "united states of america",
            "usa",
            "vereinigte staaten",
            "vereinigte staaten von amerika",
            "u.s.a.",
            "u.s.",
        ],
    ),
    ("VN", "VNM", 704, &["vietnam", "viet nam"]),
    ("ZA", "ZAF", 710, &["south africa", "südafrika"]),
];

/// The region a country as written names: `GB`, `gbr`, `826`, `United Kingdom`, `Deutschland`.
pub fn region_of_country(written: &str) -> Option<Region> {
    let written = written.trim();
    if written.is_empty() {
        return None;
    }
    if written.len() == 2 {
        if written.eq_ignore_ascii_case("UK") {
            return parse_region("GB").ok();
        }
        return parse_region(written).ok();
    }
    let alpha2 = if let Ok(numeric) = written.parse::<u16>() {
        COUNTRIES.iter().find(|c| c.2 == numeric)?.0
    } else if written.len() == 3 && written.is_ascii() {
        COUNTRIES
            .iter()
            .find(|c| c.1.eq_ignore_ascii_case(written))?
            .0
    } else {
        let name = written.to_lowercase();
        COUNTRIES.iter().find(|c| c.3.contains(&name.as_str()))?.0
    };
    parse_region(alpha2).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_and_names_name_the_same_region() {
        for written in [
            "GB",
            "gb",
            "UK",
            "GBR",
            "826",
            "United Kingdom",
            " england ",
        ] {
            assert_eq!(
                region_of_country(written).map(|r| r.as_ref().to_string()),
                Some("GB".to_string()),
                "{written}"
            );
        }
        for written in ["DE", "DEU", "276", "Germany", "Deutschland"] {
            assert_eq!(
                region_of_country(written).map(|r| r.as_ref().to_string()),
                Some("DE".to_string()),
                "{written}"
            );
        }
        for written in ["", "Atlantis", "XX", "999"] {
            assert!(region_of_country(written).is_none(), "{written}");
        }
    }

    #[test]
    fn every_listed_country_has_a_numbering_plan() {
        for (alpha2, ..) in COUNTRIES {
            let region = parse_region(alpha2).expect("region code");
            assert!(
                phonenumber::metadata::DATABASE
                    .by_id(region.as_ref())
                    .is_some(),
                "{alpha2}"
            );
        }
    }
}
