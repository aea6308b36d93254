-- Who takes a person's calls when they cannot: kept by Switchboard, set by the person or by
-- reception. "Reach instead" tries the deputy first.
CREATE TABLE deputies (
    person_id  uuid PRIMARY KEY REFERENCES people (id) ON DELETE CASCADE,
    deputy_id  uuid NOT NULL REFERENCES people (id) ON DELETE CASCADE,
    set_by     text NOT NULL,
    set_at     timestamptz NOT NULL,
    CHECK (person_id <> deputy_id)
);
CREATE INDEX deputies_deputy ON deputies (deputy_id);

-- Teams (a lead and their direct reports) on each signed-in person's board of favourites, in
-- their order, next to the people pinned one by one. As there, leads since removed or out of
-- the reader's scope are left out when the board is read.
CREATE TABLE favourite_teams (
    subject   text NOT NULL,
    lead_id   uuid NOT NULL,
    position  integer NOT NULL,
    PRIMARY KEY (subject, lead_id)
);
