-- Each signed-in person's board of favourites (the receptionist console's busy-lamp field): the
-- people they keep an eye on, in their order.
CREATE TABLE favourites (
    subject    text NOT NULL,
    person_id  uuid NOT NULL,
    position   integer NOT NULL,
    PRIMARY KEY (subject, person_id)
);
