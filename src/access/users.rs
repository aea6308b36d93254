//! Local accounts (argon2id) for the first admin and for small sites.

use chrono::{DateTime, Utc};
use serde::Serialize;
use sqlx::PgPool;

use super::sessions::SignedIn;
use super::{secret, tokens::check_name, Role};
use crate::error::{Error, Result};

#[derive(Debug, Clone, Serialize)]
pub struct UserInfo {
    pub name: String,
    pub role: Role,
    pub created_at: DateTime<Utc>,
    pub password_changed_at: DateTime<Utc>,
}

async fn hash(password: String) -> Result<String> {
    if password.chars().count() < 8 {
        return Err(Error::invalid("password", "use at least 8 characters"));
    }
    tokio::task::spawn_blocking(move || secret::hash_password(&password))
        .await
        .map_err(|e| Error::Internal(e.into()))?
}

/// Creates an account. With no password given, generates one and returns it (to be shown once).
pub async fn add(
    pool: &PgPool,
    name: &str,
    role: Role,
    password: Option<String>,
) -> Result<Option<String>> {
    add_with_email(pool, name, role, password, None).await
}

/// Like [`add`], linking the account to the person with `email`.
pub async fn add_with_email(
    pool: &PgPool,
    name: &str,
    role: Role,
    password: Option<String>,
    email: Option<&str>,
) -> Result<Option<String>> {
    check_name(name)?;
    let generated = password.is_none().then(secret::random_password);
    let hash = hash(password.or_else(|| generated.clone()).unwrap_or_default()).await?;
    let inserted =
        sqlx::query("INSERT INTO users (name, password_hash, role, email) VALUES ($1, $2, $3, $4)")
            .bind(name)
            .bind(hash)
            .bind(role.as_str())
            .bind(email.map(|e| e.trim().to_lowercase()))
            .execute(pool)
            .await;
    match inserted {
        Ok(_) => Ok(generated),
        Err(sqlx::Error::Database(e)) if e.code().as_deref() == Some("23505") => Err(
            Error::invalid("name", format!("a user named `{name}` exists")),
        ),
        Err(e) => Err(e.into()),
    }
}

/// Sets a new password (generated when none is given, and returned) and ends the user's
/// sessions. False when there is no such user.
pub async fn set_password(
    pool: &PgPool,
    name: &str,
    password: Option<String>,
) -> Result<Option<Option<String>>> {
    let generated = password.is_none().then(secret::random_password);
    let hash = hash(password.or_else(|| generated.clone()).unwrap_or_default()).await?;
    let mut tx = pool.begin().await?;
    let done = sqlx::query(
        "UPDATE users SET password_hash = $2, password_changed_at = now() WHERE name = $1",
    )
    .bind(name)
    .bind(hash)
    .execute(&mut *tx)
    .await?;
    end_sessions(&mut tx, name).await?;
    tx.commit().await?;
    Ok((done.rows_affected() > 0).then_some(generated))
}

/// Removes an account and its sessions; false when there was none.
pub async fn remove(pool: &PgPool, name: &str) -> Result<bool> {
    let mut tx = pool.begin().await?;
    let done = sqlx::query("DELETE FROM users WHERE name = $1")
        .bind(name)
        .execute(&mut *tx)
        .await?;
    end_sessions(&mut tx, name).await?;
    tx.commit().await?;
    Ok(done.rows_affected() > 0)
}

/// Ends every session and app password of a local account (within the change that calls for
/// it).
async fn end_sessions(tx: &mut sqlx::PgConnection, name: &str) -> Result<()> {
    sqlx::query("DELETE FROM sessions WHERE subject = $1")
        .bind(subject(name))
        .execute(&mut *tx)
        .await?;
    sqlx::query("DELETE FROM app_passwords WHERE subject = $1")
        .bind(subject(name))
        .execute(&mut *tx)
        .await?;
    Ok(())
}

pub async fn list(pool: &PgPool) -> Result<Vec<UserInfo>> {
    let rows: Vec<(String, String, DateTime<Utc>, DateTime<Utc>)> = sqlx::query_as(
        "SELECT name, role, created_at, password_changed_at FROM users ORDER BY name",
    )
    .fetch_all(pool)
    .await?;
    rows.into_iter()
        .map(|(name, role, created_at, password_changed_at)| {
            Ok(UserInfo {
                name,
                role: Role::parse(&role)?,
                created_at,
                password_changed_at,
            })
        })
        .collect()
}

pub fn subject(name: &str) -> String {
    format!("local:{name}")
}

/// Checks a local account's password. Unknown names cost the same time as wrong passwords.
pub async fn verify(pool: &PgPool, name: &str, password: &str) -> Result<Option<SignedIn>> {
    let row: Option<(String, String, Option<String>)> =
        sqlx::query_as("SELECT password_hash, role, email FROM users WHERE name = $1")
            .bind(name)
            .fetch_optional(pool)
            .await?;
    let (stored, role, email) = match row {
        Some((hash, role, email)) => (Some(hash), Some(role), email),
        None => (None, None, None),
    };
    let password = password.to_string();
    let ok =
        tokio::task::spawn_blocking(move || secret::verify_password(&password, stored.as_deref()))
            .await
            .map_err(|e| Error::Internal(e.into()))?;
    match (ok, role) {
        (true, Some(role)) => Ok(Some(SignedIn {
            subject: subject(name),
            display_name: name.to_string(),
            role: Role::parse(&role)?,
            method: "local",
            email,
        })),
        _ => Ok(None),
    }
}
