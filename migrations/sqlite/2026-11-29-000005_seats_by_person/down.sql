DROP INDEX seats_by_person;
