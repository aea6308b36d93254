//! Service tokens for scripts: `switchboard token add NAME --role viewer|admin`. Shown once,
//! stored as SHA-256, revocable.

use chrono::{DateTime, Utc};
use serde::Serialize;
use sqlx::PgPool;

use super::{secret, Role};
use crate::error::{Error, Result};

pub const PREFIX: &str = "sbt_";

#[derive(Debug, Clone, Serialize)]
pub struct TokenInfo {
    pub name: String,
    pub role: Role,
    pub created_at: DateTime<Utc>,
    pub revoked_at: Option<DateTime<Utc>>,
}

/// The name and role of a live token with this digest.
pub async fn find(pool: &PgPool, digest: &[u8; 32]) -> Result<Option<(String, Role)>> {
    let row: Option<(String, String)> =
        sqlx::query_as("SELECT name, role FROM api_tokens WHERE hash = $1 AND revoked_at IS NULL")
            .bind(&digest[..])
            .fetch_optional(pool)
            .await?;
    row.map(|(name, role)| Ok((name, Role::parse(&role)?)))
        .transpose()
}

/// Creates a token and returns it: the only time it is ever seen.
pub async fn add(pool: &PgPool, name: &str, role: Role) -> Result<String> {
    check_name(name)?;
    let token = secret::random_token(PREFIX);
    let inserted = sqlx::query("INSERT INTO api_tokens (name, role, hash) VALUES ($1, $2, $3)")
        .bind(name)
        .bind(role.as_str())
        .bind(&secret::digest(&token)[..])
        .execute(pool)
        .await;
    match inserted {
        Ok(_) => Ok(token),
        Err(sqlx::Error::Database(e)) if e.code().as_deref() == Some("23505") => {
            Err(Error::invalid(
                "name",
                format!("a live token named `{name}` exists; revoke it first"),
            ))
        }
        Err(e) => Err(e.into()),
    }
}

type TokenRow = (String, String, DateTime<Utc>, Option<DateTime<Utc>>);

pub async fn list(pool: &PgPool) -> Result<Vec<TokenInfo>> {
    let rows: Vec<TokenRow> = sqlx::query_as(
        "SELECT name, role, created_at, revoked_at FROM api_tokens ORDER BY name, created_at",
    )
    .fetch_all(pool)
    .await?;
    rows.into_iter()
        .map(|(name, role, created_at, revoked_at)| {
            Ok(TokenInfo {
                name,
                role: Role::parse(&role)?,
                created_at,
                revoked_at,
            })
        })
        .collect()
}

/// Revokes the live token called `name`; false when there is none.
pub async fn revoke(pool: &PgPool, name: &str) -> Result<bool> {
    let done = sqlx::query(
        "UPDATE api_tokens SET revoked_at = now() WHERE name = $1 AND revoked_at IS NULL",
    )
    .bind(name)
    .execute(pool)
    .await?;
    Ok(done.rows_affected() > 0)
}

pub(super) fn check_name(name: &str) -> Result<()> {
    if name.is_empty()
        || name.len() > 64
        || !name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.' | '@'))
    {
        return Err(Error::invalid(
            "name",
            format!("`{name}`: use 1 to 64 letters, digits, `-`, `_`, `.` or `@`"),
        ));
    }
    Ok(())
}
