DROP INDEX seats_by_person;
CREATE INDEX seats_by_person ON seats (attendee_email) WHERE state IN ('held', 'confirmed');
