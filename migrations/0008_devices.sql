-- Devices that read the directory as an address book (desk phones, mail clients): each binds to
-- the LDAP server with its own name and a generated password. The password carries ~115 random
-- bits, so its SHA-256 is stored (as for tokens): phones bind before every lookup.
CREATE TABLE devices (
    name             text PRIMARY KEY,
    password_digest  bytea NOT NULL,
    created_at       timestamptz NOT NULL DEFAULT now(),
    last_bind_at     timestamptz
);
