-- Every person_sources row names an existing source, checked once per statement instead of
-- once per row: an import adds up to a million rows in one COPY, and the foreign key ran a
-- lookup in `sources` for each (seconds of a million-person import). The set-based check below
-- is one anti-join over the statement's new rows.

ALTER TABLE person_sources DROP CONSTRAINT person_sources_source_fkey;

CREATE FUNCTION person_sources_check_source() RETURNS trigger
LANGUAGE plpgsql AS $$
DECLARE
    missing text;
BEGIN
    SELECT n.source INTO missing FROM new_rows n
    WHERE NOT EXISTS (SELECT 1 FROM sources s WHERE s.name = n.source)
    LIMIT 1;
    IF FOUND THEN
        RAISE EXCEPTION 'person_sources names the unknown source %', missing
            USING ERRCODE = 'foreign_key_violation';
    END IF;
    RETURN NULL;
END
$$;

CREATE TRIGGER person_sources_source_inserted
    AFTER INSERT ON person_sources
    REFERENCING NEW TABLE AS new_rows
    FOR EACH STATEMENT EXECUTE FUNCTION person_sources_check_source();

-- Nothing moves a row to another source; should something, the row is checked on its own.
CREATE FUNCTION person_sources_check_moved() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    IF NOT EXISTS (SELECT 1 FROM sources WHERE name = NEW.source) THEN
        RAISE EXCEPTION 'person_sources names the unknown source %', NEW.source
            USING ERRCODE = 'foreign_key_violation';
    END IF;
    RETURN NEW;
END
$$;

CREATE TRIGGER person_sources_source_moved
    BEFORE UPDATE ON person_sources
    FOR EACH ROW WHEN (OLD.source IS DISTINCT FROM NEW.source)
    EXECUTE FUNCTION person_sources_check_moved();

-- The other half of the foreign key: a source that people still come from stays.
CREATE FUNCTION sources_keep_referenced() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    IF EXISTS (SELECT 1 FROM person_sources WHERE source = OLD.name) THEN
        RAISE EXCEPTION 'source % still has people', OLD.name
            USING ERRCODE = 'foreign_key_violation';
    END IF;
    RETURN CASE WHEN TG_OP = 'DELETE' THEN OLD ELSE NEW END;
END
$$;

CREATE TRIGGER sources_keep_referenced_deleted
    BEFORE DELETE ON sources
    FOR EACH ROW EXECUTE FUNCTION sources_keep_referenced();

CREATE TRIGGER sources_keep_referenced_renamed
    BEFORE UPDATE ON sources
    FOR EACH ROW WHEN (OLD.name IS DISTINCT FROM NEW.name)
    EXECUTE FUNCTION sources_keep_referenced();
