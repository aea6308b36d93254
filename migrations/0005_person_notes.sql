-- Absence notes and status messages kept by Switchboard (set by the person or by reception).
CREATE TABLE person_notes (
    person_id  uuid NOT NULL,
    kind       text NOT NULL CHECK (kind IN ('absence', 'status')),
    text       text NOT NULL,
    until      timestamptz,
    set_by     text NOT NULL,
    set_at     timestamptz NOT NULL,
    PRIMARY KEY (person_id, kind)
);
