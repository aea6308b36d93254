//! One person, several sources: records from different sources that share the match key (an
//! email address by default) belong to the same person, and each attribute of that person comes
//! from the first source, in the configured precedence, that has a value for it.
//!
//! People known to one source only take the fast path and keep nothing extra. When a second
//! source joins a person, every source's view of them is kept in `person_sources.record`, and the
//! person is recomputed from those views whenever one changes or leaves.

use std::collections::{BTreeMap, HashMap, HashSet};

use serde::{Deserialize, Serialize};
use sqlx::PgConnection;
use uuid::Uuid;

use crate::config::MergeConfig;
use crate::domain::{NormalizedRecord, Phone};
use crate::error::{Error, Result};

/// What one source says about a person: the stored, mergeable part of a record.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct SourceView {
    pub display_name: String,
    pub given_name: Option<String>,
    pub family_name: Option<String>,
    #[serde(default)]
    pub nicknames: Vec<String>,
    pub title: Option<String>,
    pub department: Option<String>,
    pub org_unit: Option<String>,
    pub location: Option<String>,
    pub manager_id: Option<Uuid>,
    pub manager_ref: Option<String>,
    #[serde(default)]
    pub phones: Vec<Phone>,
    #[serde(default)]
    pub emails: Vec<String>,
    #[serde(default)]
    pub im: Vec<String>,
    pub photo_url: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub partner_sharing: Option<bool>,
}

impl SourceView {
    pub fn of(rec: &NormalizedRecord, manager_id: Option<Uuid>) -> SourceView {
        SourceView {
            display_name: rec.display_name.clone(),
            given_name: rec.given_name.clone(),
            family_name: rec.family_name.clone(),
            nicknames: rec.nicknames.clone(),
            title: rec.title.clone(),
            department: rec.department.clone(),
            org_unit: rec.org_unit.clone(),
            location: rec.location.clone(),
            manager_id,
            manager_ref: rec.manager_ref.clone(),
            phones: rec.phones.clone(),
            emails: rec.emails.clone(),
            im: rec.im.clone(),
            photo_url: rec.photo_url.clone(),
            partner_sharing: rec.partner_sharing,
        }
    }
}

/// Attribute names a precedence list can name.
pub const ATTRIBUTES: &[&str] = &[
    "display_name",
    "given_name",
    "family_name",
    "nicknames",
    "title",
    "department",
    "org_unit",
    "location",
    "manager",
    "phones",
    "emails",
    "im",
    "photo_url",
    "partner_sharing",
];

impl MergeConfig {
    /// Sources for `attribute`, best first; sources nobody listed keep their given order after.
    fn order<'a>(&'a self, attribute: &str, present: &[&'a str]) -> Vec<&'a str> {
        let listed = self.attributes.get(attribute).unwrap_or(&self.precedence);
        let mut order: Vec<&str> = listed
            .iter()
            .map(String::as_str)
            .filter(|s| present.contains(s))
            .collect();
        for s in present {
            if !order.contains(s) {
                order.push(s);
            }
        }
        order
    }

    pub fn by_email(&self) -> bool {
        self.key == "email"
    }
}

/// Merges the views of one person; `views` are (source, view) in a stable order.
pub fn merge(rules: &MergeConfig, views: &[(String, SourceView)]) -> SourceView {
    let present: Vec<&str> = views.iter().map(|(s, _)| s.as_str()).collect();
    let by_source: HashMap<&str, &SourceView> =
        views.iter().map(|(s, v)| (s.as_str(), v)).collect();
    let pick = |attribute: &str| -> Vec<&SourceView> {
        rules
            .order(attribute, &present)
            .into_iter()
            .filter_map(|s| by_source.get(s).copied())
            .collect()
    };
    fn first<T: Clone>(
        views: &[&SourceView],
        get: impl Fn(&SourceView) -> Option<&T>,
    ) -> Option<T> {
        views.iter().find_map(|v| get(v)).cloned()
    }
    let names = pick("display_name");
    let manager = pick("manager")
        .into_iter()
        .find(|v| v.manager_id.is_some() || v.manager_ref.is_some());
    // Lists come from the first source that has any; emails and handles are the union, in
    // precedence order, so a person stays reachable at every address a source knows.
    let phones = pick("phones")
        .into_iter()
        .find(|v| !v.phones.is_empty())
        .map(|v| v.phones.clone())
        .unwrap_or_default();
    let union = |attribute: &str, get: fn(&SourceView) -> &Vec<String>| -> Vec<String> {
        let mut seen = HashSet::new();
        pick(attribute)
            .into_iter()
            .flat_map(get)
            .filter(|e| seen.insert((*e).clone()))
            .cloned()
            .collect()
    };
    SourceView {
        display_name: names
            .first()
            .map(|v| v.display_name.clone())
            .unwrap_or_default(),
        given_name: first(&pick("given_name"), |v| v.given_name.as_ref()),
        family_name: first(&pick("family_name"), |v| v.family_name.as_ref()),
        // Every name any source knows them by.
        nicknames: union("nicknames", |v| &v.nicknames),
        title: first(&pick("title"), |v| v.title.as_ref()),
        department: first(&pick("department"), |v| v.department.as_ref()),
        org_unit: first(&pick("org_unit"), |v| v.org_unit.as_ref()),
        location: first(&pick("location"), |v| v.location.as_ref()),
        manager_id: manager.and_then(|v| v.manager_id),
        manager_ref: manager.and_then(|v| v.manager_ref.clone()),
        phones,
        emails: union("emails", |v| &v.emails),
        im: union("im", |v| &v.im),
        photo_url: first(&pick("photo_url"), |v| v.photo_url.as_ref()),
        partner_sharing: first(&pick("partner_sharing"), |v| v.partner_sharing.as_ref()),
    }
}

/// For records new to `source`, the people of other sources they match by email.
pub async fn find_matches(
    conn: &mut PgConnection,
    source: &str,
    candidates: &[(usize, &[String])],
) -> Result<HashMap<usize, Uuid>> {
    if candidates.is_empty() {
        return Ok(HashMap::new());
    }
    let others: bool =
        sqlx::query_scalar("SELECT EXISTS (SELECT 1 FROM person_sources WHERE source <> $1)")
            .bind(source)
            .fetch_one(&mut *conn)
            .await?;
    if !others {
        return Ok(HashMap::new());
    }
    let emails: Vec<&str> = candidates
        .iter()
        .flat_map(|(_, e)| e.iter().map(String::as_str))
        .collect();
    let owners: HashMap<String, Uuid> = sqlx::query_as::<_, (String, Uuid)>(
        "SELECT DISTINCT ON (e) e, p.id FROM people p CROSS JOIN LATERAL unnest(p.emails) e \
         WHERE p.deleted_at IS NULL AND p.emails && $1::text[] AND e = ANY($1) \
         AND NOT EXISTS (SELECT 1 FROM person_sources ps WHERE ps.person_id = p.id AND ps.source = $2) \
         ORDER BY e, p.created_at, p.id",
    )
    .bind(&emails)
    .bind(source)
    .fetch_all(&mut *conn)
    .await?
    .into_iter()
    .collect();
    let mut taken = HashSet::new();
    let mut matches = HashMap::new();
    for (i, emails) in candidates {
        // One record per source per person: a second record naming the same person stays apart.
        if let Some(person) = emails.iter().find_map(|e| owners.get(e)) {
            if taken.insert(*person) {
                matches.insert(*i, *person);
            }
        }
    }
    Ok(matches)
}

/// Keeps the current row of each person as the view of the one source they had so far.
pub async fn snapshot_single_source(conn: &mut PgConnection, people: &[Uuid]) -> Result<()> {
    sqlx::query(
        "UPDATE person_sources ps SET record = jsonb_build_object( \
           'display_name', p.display_name, 'given_name', p.given_name, 'family_name', p.family_name, \
           'nicknames', to_jsonb(p.nicknames), 'title', p.title, 'department', p.department, 'org_unit', p.org_unit, \
           'location', p.location, 'manager_id', p.manager_id, 'manager_ref', p.manager_ref, \
           'phones', p.phones, 'emails', to_jsonb(p.emails), 'im', to_jsonb(p.im), \
           'photo_url', p.photo_url, 'partner_sharing', p.partner_sharing) \
         FROM people p WHERE ps.person_id = p.id AND p.id = ANY($1) AND ps.record IS NULL",
    )
    .bind(people)
    .execute(conn)
    .await?;
    Ok(())
}

/// Rewrites each person from the views their sources hold, under `rules`.
pub async fn recompute(
    conn: &mut PgConnection,
    people: &[Uuid],
    rules: &MergeConfig,
) -> Result<()> {
    if people.is_empty() {
        return Ok(());
    }
    let rows = sqlx::query_as::<_, (Uuid, String, String, Option<serde_json::Value>)>(
        "SELECT person_id, source, external_id, record FROM person_sources \
         WHERE person_id = ANY($1) ORDER BY person_id, source, external_id",
    )
    .bind(people)
    .fetch_all(&mut *conn)
    .await?;
    let mut views: BTreeMap<Uuid, Vec<(String, SourceView)>> = BTreeMap::new();
    for (person, source, _, record) in rows {
        let Some(record) = record else { continue };
        let view: SourceView =
            serde_json::from_value(record).map_err(|e| Error::Internal(e.into()))?;
        views.entry(person).or_default().push((source, view));
    }
    let merged: Vec<serde_json::Value> = views
        .iter()
        .map(|(id, views)| {
            let m = merge(rules, views);
            serde_json::json!({
                "id": id, "display_name": m.display_name, "given_name": m.given_name,
                "family_name": m.family_name, "nicknames": m.nicknames, "title": m.title, "department": m.department,
                "org_unit": m.org_unit, "location": m.location, "manager_id": m.manager_id,
                "manager_ref": m.manager_ref, "phones": m.phones, "emails": m.emails,
                "im": m.im, "photo_url": m.photo_url, "partner_sharing": m.partner_sharing,
            })
        })
        .collect();
    sqlx::query(&format!(
        "UPDATE people p SET {} \
         FROM jsonb_to_recordset($1::jsonb) AS s(id uuid, display_name text, given_name text, \
           family_name text, nicknames text[], title text, department text, org_unit text, location text, \
           manager_id uuid, manager_ref text, phones jsonb, emails text[], im text[], photo_url text, \
           partner_sharing boolean) \
         WHERE p.id = s.id",
        super::PEOPLE_FROM_S
    ))
    .bind(serde_json::Value::Array(merged))
    .execute(conn)
    .await?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::PhoneKind;

    fn phone(e164: &str) -> Phone {
        Phone {
            kind: PhoneKind::Work,
            e164: Some(e164.into()),
            display: e164.into(),
            extension: None,
            raw: e164.into(),
            valid: true,
        }
    }

    fn views() -> Vec<(String, SourceView)> {
        vec![
            (
                "ad".into(),
                SourceView {
                    display_name: "Jane Smith".into(),
                    title: Some("CFO".into()),
                    phones: vec![phone("+441111")],
                    emails: vec!["jane@corp.example".into()],
                    ..Default::default()
                },
            ),
            (
                "facilities".into(),
                SourceView {
                    display_name: "J. Smith".into(),
                    location: Some("Room 4.12".into()),
                    phones: vec![phone("+442222")],
                    emails: vec!["jane@corp.example".into(), "js@corp.example".into()],
                    ..Default::default()
                },
            ),
        ]
    }

    #[test]
    fn each_attribute_comes_from_its_first_source_with_a_value() {
        let rules = MergeConfig {
            key: "email".into(),
            precedence: vec!["ad".into(), "facilities".into()],
            attributes: [(
                "phones".to_string(),
                vec!["facilities".to_string(), "ad".to_string()],
            )]
            .into_iter()
            .collect(),
        };
        let m = merge(&rules, &views());
        assert_eq!(m.display_name, "Jane Smith");
        assert_eq!(m.title.as_deref(), Some("CFO"));
        // AD has no location: the next source's value fills it.
        assert_eq!(m.location.as_deref(), Some("Room 4.12"));
        assert_eq!(m.phones, vec![phone("+442222")]);
        assert_eq!(m.emails, vec!["jane@corp.example", "js@corp.example"]);
    }

    #[test]
    fn unlisted_sources_follow_in_their_given_order() {
        let rules = MergeConfig {
            key: "email".into(),
            precedence: vec!["facilities".into()],
            attributes: BTreeMap::new(),
        };
        let m = merge(&rules, &views());
        assert_eq!(m.display_name, "J. Smith");
        assert_eq!(m.title.as_deref(), Some("CFO"));
        assert_eq!(m.phones, vec![phone("+442222")]);
    }
}
