//! Devices that read the directory as an address book (desk phones, mail clients):
//! `switchboard device add NAME` prints a generated password once. Devices see what a staff
//! viewer sees.

use chrono::{DateTime, Utc};
use sqlx::PgPool;

use super::secret;
use crate::error::{Error, Result};

#[derive(Debug, Clone)]
pub struct DeviceInfo {
    pub name: String,
    pub created_at: DateTime<Utc>,
    pub last_bind_at: Option<DateTime<Utc>>,
}

/// Creates a device and returns its password: the only time it is ever seen.
pub async fn add(pool: &PgPool, name: &str) -> Result<String> {
    super::tokens::check_name(name)?;
    let password = secret::random_password();
    let inserted = sqlx::query("INSERT INTO devices (name, password_digest) VALUES ($1, $2)")
        .bind(name)
        .bind(&secret::digest(&password)[..])
        .execute(pool)
        .await;
    match inserted {
        Ok(_) => Ok(password),
        Err(sqlx::Error::Database(e)) if e.code().as_deref() == Some("23505") => {
            Err(Error::invalid(
                "name",
                format!("a device named `{name}` exists; remove it first"),
            ))
        }
        Err(e) => Err(e.into()),
    }
}

/// Whether `password` is the password of the device `name` (and notes the bind).
pub async fn verify(pool: &PgPool, name: &str, password: &str) -> Result<bool> {
    let done = sqlx::query(
        "UPDATE devices SET last_bind_at = now() WHERE name = $1 AND password_digest = $2",
    )
    .bind(name)
    .bind(&secret::digest(password)[..])
    .execute(pool)
    .await?;
    Ok(done.rows_affected() > 0)
}

pub async fn list(pool: &PgPool) -> Result<Vec<DeviceInfo>> {
    let rows: Vec<(String, DateTime<Utc>, Option<DateTime<Utc>>)> =
        sqlx::query_as("SELECT name, created_at, last_bind_at FROM devices ORDER BY name")
            .fetch_all(pool)
            .await?;
    Ok(rows
        .into_iter()
        .map(|(name, created_at, last_bind_at)| DeviceInfo {
            name,
            created_at,
            last_bind_at,
        })
        .collect())
}

/// Removes a device: its binds are refused from then on. False when there was none.
pub async fn remove(pool: &PgPool, name: &str) -> Result<bool> {
    let done = sqlx::query("DELETE FROM devices WHERE name = $1")
        .bind(name)
        .execute(pool)
        .await?;
    Ok(done.rows_affected() > 0)
}
