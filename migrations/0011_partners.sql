-- Partner companies that read the shared directory (`/shared/v1`, SCIM, vCard, LDAP binds).
-- Each has a policy (scope, fields, presence) and limits; its keys carry 256 random bits, so
-- their SHA-256 is stored (as for tokens).
CREATE TABLE partners (
    name             text PRIMARY KEY,
    -- {scope, fields, presence} as in `[access.policies]`.
    policy           jsonb NOT NULL,
    rate_per_second  double precision NOT NULL,
    quota_per_day    integer NOT NULL,
    -- Encrypts our person ids into this partner's own ids (AES-128 of the UUID), so that two
    -- partners cannot correlate people by id.
    id_key           bytea NOT NULL,
    -- The SHA-256 of a client certificate (DER) the partner must also present, when set.
    certificate_sha256 bytea,
    created_at       timestamptz NOT NULL DEFAULT now(),
    revoked_at       timestamptz
);

CREATE TABLE partner_keys (
    digest      bytea PRIMARY KEY,
    partner     text NOT NULL REFERENCES partners (name) ON DELETE CASCADE,
    created_at  timestamptz NOT NULL DEFAULT now(),
    -- Set when the key is rotated out: it works until then.
    expires_at  timestamptz
);

CREATE INDEX partner_keys_partner ON partner_keys (partner);

-- Whether a person is shown to partners, as their sources say (`partner_sharing` in a source's
-- mapping) and as they chose themselves (which wins): true (opted in), false (opted out), or
-- null (the `[partners] consent` default).
ALTER TABLE people ADD COLUMN partner_sharing boolean;
ALTER TABLE people ADD COLUMN partner_sharing_own boolean;
