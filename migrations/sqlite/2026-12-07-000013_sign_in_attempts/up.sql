-- Organiser sign-in failures ('sign_in') and password reset requests ('reset'), one row each,
-- counted over a recent window so that every app instance enforces the same limits; and the
-- latest successful sign-in of each account from each client ('known'), kept 30 days. `account`
-- is the normalised email address as typed (it need not be an organiser's; NULL when what was
-- typed is no email address, as it may be a password in the wrong field); `client` is the
-- client's address, an IPv6 one by its /64 (NULL when the address is unknown).
CREATE TABLE sign_in_attempts (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    kind TEXT NOT NULL CHECK (kind IN ('sign_in', 'reset', 'known')),
    account TEXT,
    client TEXT,
    at TIMESTAMP NOT NULL
);
-- The limits count an account's attempts from one client, an account's from every client, and a
-- client's on any account, each newest first within a window; the first index also finds
-- whether a client is known to an account.
CREATE INDEX sign_in_attempts_by_account_and_client ON sign_in_attempts (account, kind, client, at);
CREATE INDEX sign_in_attempts_by_account ON sign_in_attempts (account, kind, at);
CREATE INDEX sign_in_attempts_by_client ON sign_in_attempts (client, kind, at);
CREATE INDEX sign_in_attempts_by_time ON sign_in_attempts (at);
