-- Imports keep people with odd fields and say so: warnings beside refusals, and where each
-- record lives in a directory (its DN) when it has no line.
ALTER TABLE sync_rejects ADD COLUMN dn text;
ALTER TABLE sync_rejects ADD COLUMN warning boolean NOT NULL DEFAULT false;
ALTER TABLE sync_runs ADD COLUMN warnings integer NOT NULL DEFAULT 0;
