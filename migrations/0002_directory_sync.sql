-- Directory sync: incremental state per source, where each record lives in its directory,
-- who changed in each run, and photos read from directories.

-- What an incremental sync resumes from: an RFC 4533 cookie (OpenLDAP) or the highest
-- uSNChanged seen (Active Directory), with the server it came from.
ALTER TABLE sources ADD COLUMN sync_state jsonb;

-- What this source says about the person, kept once a second source joins them (people merged
-- by email); NULL while the person has this one source, whose view is then the `people` row.
ALTER TABLE person_sources ADD COLUMN record jsonb;

-- The record's current DN (directories), normalized; identity stays `external_id`.
ALTER TABLE person_sources ADD COLUMN dn text;
CREATE INDEX person_sources_dn ON person_sources (source, dn) WHERE dn IS NOT NULL;

-- Who changed, per run: `sync runs` and GET /api/v1/sync/runs/{id} list them.
ALTER TABLE change_log ADD COLUMN kind text CHECK (kind IN ('added', 'updated', 'removed'));
ALTER TABLE change_log ADD COLUMN external_id text;
ALTER TABLE change_log ADD COLUMN display_name text;
CREATE INDEX change_log_run ON change_log (run_id) WHERE run_id IS NOT NULL;

-- Photos by content digest (jpegPhoto, thumbnailPhoto); people.photo_url points at
-- /api/v1/photos/{digest}.
CREATE TABLE photos (
    digest        text PRIMARY KEY,
    content_type  text NOT NULL,
    bytes         bytea NOT NULL,
    created_at    timestamptz NOT NULL DEFAULT now()
);
