//! Sign-in sessions, server-side in PostgreSQL. The cookie carries 256 random bits; the table
//! keeps only their SHA-256, so a leaked table signs nobody in.

use chrono::{DateTime, Utc};
use sqlx::PgPool;
use uuid::Uuid;

use super::{secret, Access, Role};
use crate::error::Result;

pub const COOKIE: &str = "switchboard_session";

#[derive(Debug, Clone)]
pub struct Session {
    pub subject: String,
    pub display_name: String,
    pub role: Role,
    pub method: String,
    pub person_id: Option<Uuid>,
    pub csrf_token: String,
    pub created_at: DateTime<Utc>,
    pub last_seen_at: DateTime<Utc>,
    pub expires_at: DateTime<Utc>,
}

/// Someone who just proved who they are.
#[derive(Debug, Clone)]
pub struct SignedIn {
    pub subject: String,
    pub display_name: String,
    pub role: Role,
    pub method: &'static str,
    pub email: Option<String>,
}

type SessionRow = (
    String,
    String,
    String,
    String,
    Option<Uuid>,
    String,
    DateTime<Utc>,
    DateTime<Utc>,
    DateTime<Utc>,
);

pub async fn find(pool: &PgPool, key: &[u8; 32]) -> Result<Option<Session>> {
    let row: Option<SessionRow> = sqlx::query_as(
        "SELECT subject, display_name, role, method, person_id, csrf_token, created_at, \
         last_seen_at, expires_at FROM sessions WHERE id_hash = $1",
    )
    .bind(&key[..])
    .fetch_optional(pool)
    .await?;
    row.map(|r| {
        Ok(Session {
            subject: r.0,
            display_name: r.1,
            role: Role::parse(&r.2)?,
            method: r.3,
            person_id: r.4,
            csrf_token: r.5,
            created_at: r.6,
            last_seen_at: r.7,
            expires_at: r.8,
        })
    })
    .transpose()
}

pub async fn touch(pool: &PgPool, key: &[u8; 32], now: DateTime<Utc>) -> Result<()> {
    sqlx::query("UPDATE sessions SET last_seen_at = $2 WHERE id_hash = $1")
        .bind(&key[..])
        .bind(now)
        .execute(pool)
        .await?;
    Ok(())
}

pub async fn delete(pool: &PgPool, key: &[u8; 32]) -> Result<()> {
    sqlx::query("DELETE FROM sessions WHERE id_hash = $1")
        .bind(&key[..])
        .execute(pool)
        .await?;
    Ok(())
}

impl Access {
    /// Starts a new session (a new id every sign-in: a cookie planted before sign-in is never
    /// promoted) and ends `previous`, if the browser had one. Returns the cookie value and the
    /// session. Also drops sessions past their expiry.
    pub async fn start_session(
        &self,
        who: &SignedIn,
        previous: Option<&str>,
    ) -> Result<(String, Session)> {
        let now = self.now();
        if let Some(old) = previous {
            let key = secret::digest(old);
            self.forget_session(&key);
            delete(&self.pool, &key).await?;
        }
        let person_id = match &who.email {
            Some(email) => crate::db::people::id_by_email(&self.pool, email).await?,
            None => None,
        };
        let cookie = secret::random_token("sbs_");
        let session = Session {
            subject: who.subject.clone(),
            display_name: who.display_name.clone(),
            role: who.role,
            method: who.method.to_string(),
            person_id,
            csrf_token: secret::random_token(""),
            created_at: now,
            last_seen_at: now,
            expires_at: now + self.session_absolute,
        };
        sqlx::query(
            "INSERT INTO sessions (id_hash, subject, display_name, role, method, person_id, \
             csrf_token, created_at, last_seen_at, expires_at) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $8, $9)",
        )
        .bind(&secret::digest(&cookie)[..])
        .bind(&session.subject)
        .bind(&session.display_name)
        .bind(session.role.as_str())
        .bind(&session.method)
        .bind(session.person_id)
        .bind(&session.csrf_token)
        .bind(now)
        .bind(session.expires_at)
        .execute(&self.pool)
        .await?;
        sqlx::query("DELETE FROM sessions WHERE expires_at < $1 OR last_seen_at < $2")
            .bind(now)
            .bind(now - self.session_idle)
            .execute(&self.pool)
            .await?;
        Ok((cookie, session))
    }

    /// Ends one session.
    pub async fn end_session(&self, cookie: &str) -> Result<()> {
        let key = secret::digest(cookie);
        self.forget_session(&key);
        delete(&self.pool, &key).await
    }

    /// Ends every session of `subject`, on every device. Returns how many there were.
    pub async fn end_all_sessions(&self, subject: &str) -> Result<u64> {
        self.forget_subject(subject);
        let done = sqlx::query("DELETE FROM sessions WHERE subject = $1")
            .bind(subject)
            .execute(&self.pool)
            .await?;
        Ok(done.rows_affected())
    }
}
