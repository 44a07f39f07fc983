-- A browser login in progress (`/sky/login` to `/sky/callback`). `id` is the
-- `state` the flow's URLs carry; `browser_binding` is the SHA-256 of a nonce
-- kept in the `skymarshal_login` cookie of the browser that started it, so a
-- login cannot be finished from (or forced into) another browser. Once the
-- user's password is checked, `code_digest` holds the SHA-256 of the
-- one-time code `/sky/callback` redeems, and `username`/`connector` who it is.
CREATE TABLE login_requests (
    id TEXT PRIMARY KEY,
    browser_binding TEXT NOT NULL,
    redirect_uri TEXT NOT NULL,
    code_digest TEXT,
    username TEXT,
    connector TEXT,
    expires_at BIGINT NOT NULL
);
CREATE INDEX login_requests_expires_at ON login_requests (expires_at);
