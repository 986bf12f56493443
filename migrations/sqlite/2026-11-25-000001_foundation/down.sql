DROP TABLE seats;
DROP TABLE bookings;
DROP TABLE api_tokens;
DROP TABLE organisers;
DROP TABLE sessions;
DROP TABLE events;
