//! Which handle each person has in each backend: their IM URIs of the backend's schemes, plus the
//! backend's handle template over their attributes. Loaded from PostgreSQL and kept current from
//! the change log.

use std::collections::HashMap;

use sqlx::PgPool;
use uuid::Uuid;

use crate::error::Result;

const PLACEHOLDERS: &[&str] = &[
    "uid",
    "external_id",
    "email",
    "email_local",
    "given_name",
    "family_name",
    "id",
];

/// Checks that a template only uses known placeholders.
pub fn check_template(template: &str) -> std::result::Result<(), String> {
    let mut rest = template;
    while let Some(start) = rest.find('{') {
        let Some(len) = rest[start..].find('}') else {
            return Err(format!("handle template `{template}` has an unclosed `{{`"));
        };
        let name = &rest[start + 1..start + len];
        if !PLACEHOLDERS.contains(&name) {
            return Err(format!(
                "handle template `{template}`: unknown placeholder {{{name}}} (known: {})",
                PLACEHOLDERS.join(", ")
            ));
        }
        rest = &rest[start + len + 1..];
    }
    if !template.contains(':') {
        return Err(format!(
            "handle template `{template}` must be a URI (scheme:…)"
        ));
    }
    Ok(())
}

/// What a handle can be made of.
#[derive(Debug, Clone, Default, PartialEq, sqlx::FromRow)]
pub struct PersonAttrs {
    pub id: Uuid,
    pub im: Vec<String>,
    pub emails: Vec<String>,
    pub given_name: Option<String>,
    pub family_name: Option<String>,
    pub external_id: Option<String>,
}

fn expand(template: &str, person: &PersonAttrs) -> Option<String> {
    let mut out = String::with_capacity(template.len() + 16);
    let mut rest = template;
    while let Some(start) = rest.find('{') {
        let len = rest[start..].find('}')?;
        out.push_str(&rest[..start]);
        let email = person.emails.first();
        let value = match &rest[start + 1..start + len] {
            "uid" | "external_id" => person.external_id.clone(),
            "email" => email.cloned(),
            "email_local" => email.and_then(|e| e.split('@').next().map(str::to_string)),
            "given_name" => person.given_name.clone(),
            "family_name" => person.family_name.clone(),
            "id" => Some(person.id.to_string()),
            _ => None,
        }?;
        let value = value.trim().to_lowercase();
        if value.is_empty() || value.contains(char::is_whitespace) {
            return None;
        }
        out.push_str(&value);
        rest = &rest[start + len + 1..];
    }
    out.push_str(rest);
    Some(out)
}

/// How one backend finds handles.
#[derive(Debug, Clone)]
pub struct HandleRule {
    pub schemes: Vec<String>,
    pub template: Option<String>,
}

impl HandleRule {
    pub fn handles(&self, person: &PersonAttrs) -> Vec<String> {
        let mut out: Vec<String> = person
            .im
            .iter()
            .filter(|uri| {
                uri.split_once(':')
                    .is_some_and(|(scheme, _)| self.schemes.iter().any(|s| s == scheme))
            })
            .cloned()
            .collect();
        if let Some(handle) = self.template.as_deref().and_then(|t| expand(t, person)) {
            if !out.contains(&handle) {
                out.push(handle);
            }
        }
        out
    }
}

/// Person → (backend index, handle), and back.
#[derive(Debug, Default)]
pub struct Directory {
    pub people: HashMap<Uuid, Vec<(usize, String)>>,
    pub by_handle: Vec<HashMap<String, Vec<Uuid>>>,
}

impl Directory {
    pub fn new(backends: usize) -> Directory {
        Directory {
            people: HashMap::new(),
            by_handle: vec![HashMap::new(); backends],
        }
    }

    pub fn remove(&mut self, id: Uuid) {
        if let Some(handles) = self.people.remove(&id) {
            for (backend, handle) in handles {
                if let Some(ids) = self.by_handle[backend].get_mut(&handle) {
                    ids.retain(|p| *p != id);
                    if ids.is_empty() {
                        self.by_handle[backend].remove(&handle);
                    }
                }
            }
        }
    }

    /// Sets a person's handles; true when they changed.
    pub fn upsert(&mut self, id: Uuid, handles: Vec<(usize, String)>) -> bool {
        if self.people.get(&id) == Some(&handles) {
            return false;
        }
        self.remove(id);
        if handles.is_empty() {
            return true;
        }
        for (backend, handle) in &handles {
            self.by_handle[*backend]
                .entry(handle.clone())
                .or_default()
                .push(id);
        }
        self.people.insert(id, handles);
        true
    }

    pub fn tracked(&self, backend: usize) -> Vec<String> {
        let mut handles: Vec<String> = self.by_handle[backend].keys().cloned().collect();
        handles.sort();
        handles
    }
}

const ATTR_COLUMNS: &str = "p.id, p.im, p.emails, p.given_name, p.family_name, \
    (SELECT min(ps.external_id) FROM person_sources ps WHERE ps.person_id = p.id) AS external_id";

/// Everyone not deleted, and the last change-log position this reflects.
pub async fn load_all(pool: &PgPool) -> Result<(i64, Vec<PersonAttrs>)> {
    let mut tx = pool.begin().await?;
    sqlx::query("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ")
        .execute(&mut *tx)
        .await?;
    let seq = crate::db::people::latest_change(&mut tx).await?;
    let sql = format!("SELECT {ATTR_COLUMNS} FROM people p WHERE p.deleted_at IS NULL");
    let people = sqlx::query_as::<_, PersonAttrs>(&sql)
        .fetch_all(&mut *tx)
        .await?;
    tx.commit().await?;
    Ok((seq, people))
}

/// People changed after `after_seq`: (new position, present ones, deleted ids).
pub async fn load_changes(
    pool: &PgPool,
    after_seq: i64,
) -> Result<(i64, Vec<PersonAttrs>, Vec<Uuid>)> {
    let changed: Vec<(i64, Uuid)> = sqlx::query_as(
        "SELECT seq, person_id FROM change_log WHERE seq > $1 ORDER BY seq LIMIT 100000",
    )
    .bind(after_seq)
    .fetch_all(pool)
    .await?;
    let Some(last) = changed.last().map(|(seq, _)| *seq) else {
        return Ok((after_seq, Vec::new(), Vec::new()));
    };
    let mut ids: Vec<Uuid> = changed.into_iter().map(|(_, id)| id).collect();
    ids.sort();
    ids.dedup();
    let sql = format!(
        "SELECT {ATTR_COLUMNS} FROM people p WHERE p.id = ANY($1) AND p.deleted_at IS NULL"
    );
    let present = sqlx::query_as::<_, PersonAttrs>(&sql)
        .bind(&ids)
        .fetch_all(pool)
        .await?;
    let deleted = ids
        .into_iter()
        .filter(|id| !present.iter().any(|p| p.id == *id))
        .collect();
    Ok((last, present, deleted))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn jane() -> PersonAttrs {
        PersonAttrs {
            id: Uuid::nil(),
            im: vec![
                "xmpp:jane@chat.example.com".into(),
                "sip:jane@pbx.example.com".into(),
            ],
            emails: vec!["jane.smith@example.com".into()],
            given_name: Some("Jane".into()),
            family_name: Some("Smith".into()),
            external_id: Some("JSmith".into()),
        }
    }

    #[test]
    fn handles_come_from_im_uris_of_the_schemes_and_the_template() {
        let rule = HandleRule {
            schemes: vec!["xmpp".into()],
            template: Some("xmpp:{uid}@corp.example".into()),
        };
        assert_eq!(
            rule.handles(&jane()),
            ["xmpp:jane@chat.example.com", "xmpp:jsmith@corp.example"]
        );
        let rule = HandleRule {
            schemes: vec![],
            template: Some("sip:{email_local}@pbx".into()),
        };
        assert_eq!(rule.handles(&jane()), ["sip:jane.smith@pbx"]);
        let mut nobody = jane();
        nobody.external_id = None;
        let rule = HandleRule {
            schemes: vec![],
            template: Some("xmpp:{uid}@corp.example".into()),
        };
        assert!(
            rule.handles(&nobody).is_empty(),
            "a missing attribute means no handle"
        );
    }

    #[test]
    fn templates_are_checked() {
        assert!(check_template("xmpp:{uid}@corp.example").is_ok());
        assert!(check_template("xmpp:{nick}@corp.example").is_err());
        assert!(check_template("xmpp:{uid@corp.example").is_err());
        assert!(check_template("{uid}").is_err(), "not a URI");
    }

    #[test]
    fn the_directory_maps_both_ways() {
        let mut d = Directory::new(2);
        let a = Uuid::from_u128(1);
        let b = Uuid::from_u128(2);
        assert!(d.upsert(a, vec![(0, "xmpp:x@y".into()), (1, "sip:x@y".into())]));
        assert!(d.upsert(b, vec![(0, "xmpp:x@y".into())]));
        assert!(!d.upsert(b, vec![(0, "xmpp:x@y".into())]), "unchanged");
        assert_eq!(d.by_handle[0]["xmpp:x@y"], [a, b]);
        assert_eq!(d.tracked(1), ["sip:x@y"]);
        d.remove(a);
        assert_eq!(d.by_handle[0]["xmpp:x@y"], [b]);
        assert!(d.tracked(1).is_empty());
    }
}
