-- A person's active seats, for the clash check every booking makes inside its seat update:
-- without it that check reads every seat of the event.
CREATE INDEX seats_by_person ON seats (attendee_email) WHERE state IN ('held', 'confirmed');
