-- The names a person goes by ("Peggy" for Margaret), as their sources give them: searched,
-- shown and returned beside the name.
ALTER TABLE people ADD COLUMN nicknames text[] NOT NULL DEFAULT '{}';
