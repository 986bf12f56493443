-- The clash check's prepared plan is made once per connection, often while `seats` is nearly
-- empty. With the email alone in this index the planner could prefer scanning the (session,
-- email) index for the email, a scan that grows with every seat sold; with the session beside
-- the email this index is the better choice whatever the table's size, and answers the check
-- from the index alone.
DROP INDEX seats_by_person;
CREATE INDEX seats_by_person ON seats (attendee_email, session_id) WHERE state IN ('held', 'confirmed');
