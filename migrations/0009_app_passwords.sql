-- App passwords: a signed-in person makes one for a device that can only send a name and a
-- password (a phone's CardDAV or LDAP account) when their own sign-in is single sign-on. The
-- login is generated; the password carries ~115 random bits, so its SHA-256 is stored.
CREATE TABLE app_passwords (
    login            text PRIMARY KEY,
    -- The principal who made it, and what it acts as.
    subject          text NOT NULL,
    display_name     text NOT NULL,
    role             text NOT NULL CHECK (role IN ('viewer', 'receptionist')),
    person_id        uuid,
    label            text NOT NULL,
    password_digest  bytea NOT NULL,
    created_at       timestamptz NOT NULL DEFAULT now(),
    last_used_at     timestamptz
);

CREATE INDEX app_passwords_subject ON app_passwords (subject);
