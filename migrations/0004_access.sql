-- Access: local accounts, service tokens, sign-in sessions, pending OpenID Connect sign-ins, and
-- the tamper-evident audit trail.

CREATE TABLE users (
    name                 text PRIMARY KEY,
    -- argon2id, PHC string format.
    password_hash        text NOT NULL,
    role                 text NOT NULL CHECK (role IN ('viewer', 'receptionist', 'admin')),
    -- Links the account to the person with this address (who may then edit their own notes).
    email                text,
    created_at           timestamptz NOT NULL DEFAULT now(),
    password_changed_at  timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE api_tokens (
    id            bigserial PRIMARY KEY,
    name          text NOT NULL,
    role          text NOT NULL CHECK (role IN ('viewer', 'receptionist', 'admin')),
    -- SHA-256 of the token, which is shown once and never stored.
    hash          bytea NOT NULL UNIQUE,
    created_at    timestamptz NOT NULL DEFAULT now(),
    revoked_at    timestamptz
);

CREATE UNIQUE INDEX api_tokens_live_name ON api_tokens (name) WHERE revoked_at IS NULL;

CREATE TABLE sessions (
    -- SHA-256 of the cookie value.
    id_hash       bytea PRIMARY KEY,
    -- Who signed in: `local:NAME`, `ldap:SOURCE:DN`, `oidc:ISSUER#SUB`.
    subject       text NOT NULL,
    display_name  text NOT NULL,
    role          text NOT NULL CHECK (role IN ('viewer', 'receptionist', 'admin')),
    method        text NOT NULL,
    person_id     uuid,
    csrf_token    text NOT NULL,
    created_at    timestamptz NOT NULL,
    last_seen_at  timestamptz NOT NULL,
    expires_at    timestamptz NOT NULL
);

CREATE INDEX sessions_subject ON sessions (subject);
CREATE INDEX sessions_expires ON sessions (expires_at);

CREATE TABLE oidc_pending (
    state          text PRIMARY KEY,
    pkce_verifier  text NOT NULL,
    nonce          text NOT NULL,
    created_at     timestamptz NOT NULL
);

-- Append-only: each record's hash is sha256(previous record's hash ‖ canonical record), so an
-- edited, deleted or reordered record breaks the chain (`switchboard audit verify`).
CREATE TABLE audit_log (
    seq         bigserial PRIMARY KEY,
    at          timestamptz NOT NULL,
    principal   text NOT NULL,
    action      text NOT NULL,
    query       text,
    people      uuid[] NOT NULL DEFAULT '{}',
    status      smallint NOT NULL,
    address     text,
    prev_hash   bytea NOT NULL,
    hash        bytea NOT NULL
);

-- Records arrive in time order: a BRIN index serves `--since` at almost no cost per insert.
-- (No index on hash: only `audit verify` looks a hash up, once, when the chain is broken.)
CREATE INDEX audit_log_at ON audit_log USING brin (at);

CREATE FUNCTION audit_log_append_only() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION 'audit_log is append-only';
END;
$$;

CREATE TRIGGER audit_log_no_update BEFORE UPDATE OR DELETE ON audit_log
    FOR EACH ROW EXECUTE FUNCTION audit_log_append_only();
CREATE TRIGGER audit_log_no_truncate BEFORE TRUNCATE ON audit_log
    FOR EACH STATEMENT EXECUTE FUNCTION audit_log_append_only();

-- Photos are served only to callers who may see someone who has them.
CREATE INDEX people_photo_url ON people (photo_url) WHERE photo_url IS NOT NULL;
