-- Switchboard's source of truth. Forward-only: never edit a migration that has shipped.

CREATE TABLE sources (
    name        text PRIMARY KEY,
    kind        text NOT NULL,
    created_at  timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE people (
    id            uuid PRIMARY KEY,
    display_name  text NOT NULL,
    given_name    text,
    family_name   text,
    title         text,
    department    text,
    org_unit      text,
    location      text,
    manager_id    uuid,
    -- The manager as the source named them (email or external id), kept to resolve later.
    manager_ref   text,
    -- [{kind, e164, display, extension, raw}]
    phones        jsonb NOT NULL DEFAULT '[]',
    -- Lower-cased.
    emails        text[] NOT NULL DEFAULT '{}',
    -- URIs: xmpp:, matrix:, sip:, msteams:, slack:, tel:
    im            text[] NOT NULL DEFAULT '{}',
    photo_url     text,
    created_at    timestamptz NOT NULL DEFAULT now(),
    updated_at    timestamptz NOT NULL DEFAULT now(),
    deleted_at    timestamptz
);

CREATE INDEX people_manager ON people (manager_id) WHERE manager_id IS NOT NULL;

-- Which source(s) a person came from, under which id there, and a digest of what it said.
CREATE TABLE person_sources (
    source        text NOT NULL REFERENCES sources (name),
    external_id   text NOT NULL,
    person_id     uuid NOT NULL,
    content_hash  bigint NOT NULL,
    PRIMARY KEY (source, external_id)
);

CREATE INDEX person_sources_person ON person_sources (person_id);

-- One row per import or sync, dry runs excluded.
CREATE TABLE sync_runs (
    id           bigserial PRIMARY KEY,
    source       text NOT NULL,
    kind         text NOT NULL,
    mode         text NOT NULL CHECK (mode IN ('full', 'partial', 'incremental')),
    status       text NOT NULL CHECK (status IN ('running', 'succeeded', 'failed')),
    started_at   timestamptz NOT NULL DEFAULT now(),
    finished_at  timestamptz,
    added        integer NOT NULL DEFAULT 0,
    updated      integer NOT NULL DEFAULT 0,
    removed      integer NOT NULL DEFAULT 0,
    unchanged    integer NOT NULL DEFAULT 0,
    rejected     integer NOT NULL DEFAULT 0,
    error        text
);

CREATE TABLE sync_rejects (
    run_id       bigint NOT NULL REFERENCES sync_runs (id) ON DELETE CASCADE,
    line         bigint,
    external_id  text,
    reason       text NOT NULL
);

CREATE INDEX sync_rejects_run ON sync_rejects (run_id);

-- Every change to `people`, in commit order (writers serialize on one advisory lock). Each
-- server's indexer follows it from the position stored in its index.
CREATE TABLE change_log (
    seq         bigserial PRIMARY KEY,
    person_id   uuid NOT NULL,
    run_id      bigint,
    changed_at  timestamptz NOT NULL DEFAULT now()
);
