//! App passwords: a person signed in to the console (by single sign-on, say) makes one for a
//! client that can only send a name and a password, such as a phone's CardDAV or LDAP account.
//! The login (`app-…`) is generated, the password shown once and stored as SHA-256. An app
//! password acts as its maker, never above the receptionist role (it is no way to administer).

use chrono::{DateTime, Utc};
use serde::Serialize;
use sqlx::PgPool;
use utoipa::ToSchema;
use uuid::Uuid;

use super::{secret, Principal, PrincipalKind, Role};
use crate::error::{Error, Result};

pub const PREFIX: &str = "app-";
/// The most app passwords one person keeps.
const MAX_PER_PERSON: i64 = 20;

#[derive(Debug, Clone, Serialize, ToSchema, sqlx::FromRow)]
pub struct AppPasswordInfo {
    /// The name to give the client.
    pub login: String,
    pub label: String,
    pub created_at: DateTime<Utc>,
    pub last_used_at: Option<DateTime<Utc>>,
}

/// Makes an app password for `principal` (a person); returns its login and password.
pub async fn create(pool: &PgPool, principal: &Principal, label: &str) -> Result<(String, String)> {
    if principal.kind != PrincipalKind::Staff {
        return Err(Error::Forbidden(
            "only a signed-in person makes app passwords".into(),
        ));
    }
    let label = label.trim();
    if label.is_empty() || label.chars().count() > 100 || label.chars().any(char::is_control) {
        return Err(Error::invalid(
            "label",
            "1 to 100 characters, e.g. “Jane's iPhone”",
        ));
    }
    let count: i64 = sqlx::query_scalar("SELECT count(*) FROM app_passwords WHERE subject = $1")
        .bind(&principal.name)
        .fetch_one(pool)
        .await?;
    if count >= MAX_PER_PERSON {
        return Err(Error::invalid(
            "label",
            format!("{MAX_PER_PERSON} app passwords at most: revoke one first"),
        ));
    }
    let login = format!(
        "{PREFIX}{}",
        secret::random_password()[..10].to_ascii_lowercase()
    );
    let password = secret::random_password();
    let role = principal.role.min(Role::Receptionist);
    sqlx::query(
        "INSERT INTO app_passwords (login, subject, display_name, role, person_id, label, password_digest) \
         VALUES ($1, $2, $3, $4, $5, $6, $7)",
    )
    .bind(&login)
    .bind(&principal.name)
    .bind(&principal.display_name)
    .bind(role.as_str())
    .bind(principal.person_id)
    .bind(label)
    .bind(&secret::digest(&password)[..])
    .execute(pool)
    .await?;
    Ok((login, password))
}

/// Who an app password acts as: (subject, display name, role, person), and notes its use.
pub async fn verify(
    pool: &PgPool,
    login: &str,
    password: &str,
) -> Result<Option<(String, String, Role, Option<Uuid>)>> {
    let row: Option<(String, String, String, Option<Uuid>)> = sqlx::query_as(
        "UPDATE app_passwords SET last_used_at = now() WHERE login = $1 AND password_digest = $2 \
         RETURNING subject, display_name, role, person_id",
    )
    .bind(login)
    .bind(&secret::digest(password)[..])
    .fetch_optional(pool)
    .await?;
    row.map(|(subject, name, role, person)| Ok((subject, name, Role::parse(&role)?, person)))
        .transpose()
}

/// The app passwords `subject` has made (never the passwords).
pub async fn list(pool: &PgPool, subject: &str) -> Result<Vec<AppPasswordInfo>> {
    Ok(sqlx::query_as::<_, AppPasswordInfo>(
        "SELECT login, label, created_at, last_used_at FROM app_passwords WHERE subject = $1 \
         ORDER BY created_at",
    )
    .bind(subject)
    .fetch_all(pool)
    .await?)
}

/// Revokes one of `subject`'s app passwords; false when they have none by that login.
pub async fn revoke(pool: &PgPool, subject: &str, login: &str) -> Result<bool> {
    let done = sqlx::query("DELETE FROM app_passwords WHERE subject = $1 AND login = $2")
        .bind(subject)
        .bind(login)
        .execute(pool)
        .await?;
    Ok(done.rows_affected() > 0)
}
