//! Queries on `people` and `person_sources`.

use std::collections::HashMap;

use chrono::{DateTime, Utc};
use sqlx::types::Json;
use sqlx::{PgConnection, PgPool};
use uuid::Uuid;

use crate::domain::{Person, PersonRef, Phone, SourceRef};
use crate::error::Result;

#[derive(Debug, Clone, sqlx::FromRow)]
pub struct PersonRow {
    pub id: Uuid,
    pub display_name: String,
    pub given_name: Option<String>,
    pub family_name: Option<String>,
    pub nicknames: Vec<String>,
    pub title: Option<String>,
    pub department: Option<String>,
    pub org_unit: Option<String>,
    pub location: Option<String>,
    pub manager_id: Option<Uuid>,
    pub manager_name: Option<String>,
    pub phones: Json<Vec<Phone>>,
    pub emails: Vec<String>,
    pub im: Vec<String>,
    pub photo_url: Option<String>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
    pub deleted_at: Option<DateTime<Utc>>,
    /// Their own choice, else their sources'.
    pub partner_sharing: Option<bool>,
}

/// The columns of `PersonRow`, for `people p LEFT JOIN people m ON m.id = p.manager_id`.
pub const PERSON_COLUMNS: &str = "p.id, p.display_name, p.given_name, p.family_name, p.nicknames, \
    p.title, p.department, p.org_unit, p.location, p.manager_id, m.display_name AS manager_name, p.phones, \
    p.emails, p.im, p.photo_url, p.created_at, p.updated_at, p.deleted_at, \
    COALESCE(p.partner_sharing_own, p.partner_sharing) AS partner_sharing";

impl PersonRow {
    /// What is left of an erased person: a removal for the indexer.
    pub fn erased(id: Uuid) -> PersonRow {
        let epoch = DateTime::<Utc>::UNIX_EPOCH;
        PersonRow {
            id,
            display_name: String::new(),
            given_name: None,
            family_name: None,
            nicknames: Vec::new(),
            title: None,
            department: None,
            org_unit: None,
            location: None,
            manager_id: None,
            manager_name: None,
            phones: Json(Vec::new()),
            emails: Vec::new(),
            im: Vec::new(),
            photo_url: None,
            created_at: epoch,
            updated_at: epoch,
            deleted_at: Some(epoch),
            partner_sharing: None,
        }
    }

    pub fn into_person(self, sources: Vec<SourceRef>) -> Person {
        let manager = match (self.manager_id, self.manager_name) {
            (Some(id), Some(display_name)) => Some(PersonRef { id, display_name }),
            _ => None,
        };
        Person {
            id: self.id,
            display_name: self.display_name,
            given_name: self.given_name,
            family_name: self.family_name,
            nicknames: self.nicknames,
            title: self.title,
            department: self.department,
            org_unit: self.org_unit,
            location: self.location,
            manager,
            phones: self.phones.0,
            emails: self.emails,
            im: self.im,
            photo_url: self.photo_url,
            sources,
            created_at: self.created_at,
            updated_at: self.updated_at,
            presence: None,
            absence: None,
            status: None,
            partner_sharing: self.partner_sharing,
        }
    }
}

/// A policy's scope as SQL over `people` columns: see [`in_scope`].
pub struct ScopeParams {
    pub departments: Vec<String>,
    pub locations: Vec<String>,
    pub org_units: Vec<String>,
    /// `opt_out` / `opt_in`: people's choice about being shown counts (partners).
    pub consent: Option<&'static str>,
}

impl ScopeParams {
    pub fn of(scope: &crate::access::policy::Scope) -> ScopeParams {
        ScopeParams {
            departments: scope.department.clone(),
            locations: scope.location.clone(),
            org_units: scope.org_unit.clone(),
            consent: scope.consent.map(|c| match c {
                crate::domain::Consent::OptOut => "opt_out",
                crate::domain::Consent::OptIn => "opt_in",
            }),
        }
    }

    /// Binds the four values, in the order `in_scope` numbers them.
    pub fn bind<'q, O>(
        &'q self,
        query: sqlx::query::QueryAs<'q, sqlx::Postgres, O, sqlx::postgres::PgArguments>,
    ) -> sqlx::query::QueryAs<'q, sqlx::Postgres, O, sqlx::postgres::PgArguments> {
        query
            .bind(&self.departments)
            .bind(&self.locations)
            .bind(&self.org_units)
            .bind(self.consent)
    }
}

/// Whether a row of `people` is in a scope whose values are bound at `$n`…`$n+3` (departments,
/// locations, org units, consent; empty lists allow all): true or false, never NULL (a person
/// without the attribute is outside a list that names values), as `Scope::admits` decides.
pub fn in_scope(n: usize) -> String {
    let (d, l, o, c) = (n, n + 1, n + 2, n + 3);
    format!(
        "COALESCE((cardinality(${d}::text[]) = 0 OR department = ANY(${d})) \
         AND (cardinality(${l}::text[]) = 0 OR location = ANY(${l})) \
         AND (cardinality(${o}::text[]) = 0 OR org_unit = ANY(${o})) \
         AND (${c}::text IS NULL \
              OR (${c} = 'opt_out' AND COALESCE(partner_sharing_own, partner_sharing) IS DISTINCT FROM false) \
              OR (${c} = 'opt_in' AND COALESCE(partner_sharing_own, partner_sharing))), false)"
    )
}

/// A person who is not deleted, with their manager and sources.
pub async fn get_person(pool: &PgPool, id: Uuid) -> Result<Option<Person>> {
    Ok(get_many(pool, &[id]).await?.pop())
}

/// The people with these ids who are not deleted, with their managers and sources, in the
/// order of `ids`.
pub async fn get_many(pool: &PgPool, ids: &[Uuid]) -> Result<Vec<Person>> {
    if ids.is_empty() {
        return Ok(Vec::new());
    }
    let sql = format!(
        "SELECT {PERSON_COLUMNS} FROM people p LEFT JOIN people m ON m.id = p.manager_id AND m.deleted_at IS NULL \
         WHERE p.id = ANY($1) AND p.deleted_at IS NULL"
    );
    let rows = sqlx::query_as::<_, PersonRow>(&sql)
        .bind(ids)
        .fetch_all(pool)
        .await?;
    let mut sources: HashMap<Uuid, Vec<SourceRef>> = HashMap::new();
    let rows_of_sources = sqlx::query_as::<_, (Uuid, String, String)>(
        "SELECT person_id, source, external_id FROM person_sources WHERE person_id = ANY($1) \
         ORDER BY source, external_id",
    )
    .bind(ids)
    .fetch_all(pool)
    .await?;
    for (id, source, external_id) in rows_of_sources {
        sources.entry(id).or_default().push(SourceRef {
            source,
            external_id,
        });
    }
    let mut by_id: HashMap<Uuid, PersonRow> = rows.into_iter().map(|r| (r.id, r)).collect();
    Ok(ids
        .iter()
        .filter_map(|id| by_id.remove(id))
        .map(|row| {
            let of = sources.remove(&row.id).unwrap_or_default();
            row.into_person(of)
        })
        .collect())
}

/// Changes after `after_seq`, oldest first: the sequence number and the person as they are now
/// (deleted ones included, so the index can drop them).
pub async fn changes_since(
    conn: &mut PgConnection,
    after_seq: i64,
    limit: i64,
) -> Result<Vec<(i64, PersonRow)>> {
    let changes: Vec<(i64, Uuid)> = sqlx::query_as(
        "SELECT seq, person_id FROM change_log WHERE seq > $1 ORDER BY seq LIMIT $2",
    )
    .bind(after_seq)
    .bind(limit)
    .fetch_all(&mut *conn)
    .await?;
    let ids: Vec<Uuid> = changes.iter().map(|(_, id)| *id).collect();
    let sql = format!(
        "SELECT {PERSON_COLUMNS} FROM people p \
         LEFT JOIN people m ON m.id = p.manager_id AND m.deleted_at IS NULL \
         WHERE p.id = ANY($1)"
    );
    let mut rows: HashMap<Uuid, PersonRow> = sqlx::query_as::<_, PersonRow>(&sql)
        .bind(&ids)
        .fetch_all(&mut *conn)
        .await?
        .into_iter()
        .map(|row| (row.id, row))
        .collect();
    // A person changed several times in the batch: their current row once per change, the
    // last change taking it without a copy.
    let mut remaining: HashMap<Uuid, usize> = HashMap::with_capacity(rows.len());
    for id in &ids {
        *remaining.entry(*id).or_default() += 1;
    }
    Ok(changes
        .into_iter()
        .map(|(seq, id)| {
            let left = remaining.get_mut(&id).map(|n| {
                *n -= 1;
                *n
            });
            let row = match left {
                Some(0) => rows.remove(&id),
                _ => rows.get(&id).cloned(),
            };
            // Erased: no row any more, only that they are gone.
            (seq, row.unwrap_or_else(|| PersonRow::erased(id)))
        })
        .collect())
}

/// Active people with id greater than `after`, in id order (keyset pagination for rebuilds).
pub async fn active_after(
    conn: &mut PgConnection,
    after: Uuid,
    limit: i64,
) -> Result<Vec<PersonRow>> {
    let sql = format!(
        "SELECT {PERSON_COLUMNS} FROM people p LEFT JOIN people m ON m.id = p.manager_id AND m.deleted_at IS NULL \
         WHERE p.id > $1 AND p.deleted_at IS NULL ORDER BY p.id LIMIT $2"
    );
    Ok(sqlx::query_as::<_, PersonRow>(&sql)
        .bind(after)
        .bind(limit)
        .fetch_all(conn)
        .await?)
}

pub async fn latest_change(conn: &mut PgConnection) -> Result<i64> {
    Ok(
        sqlx::query_scalar::<_, Option<i64>>("SELECT max(seq) FROM change_log")
            .fetch_one(conn)
            .await?
            .unwrap_or(0),
    )
}

pub async fn count_active(db: impl sqlx::PgExecutor<'_>, source: Option<&str>) -> Result<i64> {
    let count = match source {
        Some(source) => {
            sqlx::query_scalar(
                "SELECT count(*) FROM person_sources ps JOIN people p ON p.id = ps.person_id \
                 WHERE ps.source = $1 AND p.deleted_at IS NULL",
            )
            .bind(source)
            .fetch_one(db)
            .await?
        }
        None => {
            sqlx::query_scalar("SELECT count(*) FROM people WHERE deleted_at IS NULL")
                .fetch_one(db)
                .await?
        }
    };
    Ok(count)
}

/// The active person with this email address (lower-cased), if exactly one has it.
pub async fn id_by_email(pool: &PgPool, email: &str) -> Result<Option<Uuid>> {
    let ids: Vec<Uuid> = sqlx::query_scalar(
        "SELECT id FROM people WHERE emails @> ARRAY[$1]::text[] AND deleted_at IS NULL LIMIT 2",
    )
    .bind(email.trim().to_lowercase())
    .fetch_all(pool)
    .await?;
    Ok(match ids.as_slice() {
        [one] => Some(*one),
        _ => None,
    })
}
