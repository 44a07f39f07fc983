-- What a running build's steps have done, so a build picked up again after
-- an atc restart (or by another node) carries on where it was: a step that
-- finished is not run again (its effects on the build are in `result`,
-- encrypted like plans), and a step that was running is attached to again
-- from the output offsets already turned into events. Written with the
-- build's events, under its lease.
CREATE TABLE build_steps (
    build_id BIGINT NOT NULL REFERENCES builds (id) ON DELETE CASCADE,
    plan_id TEXT NOT NULL,
    finished BOOLEAN NOT NULL DEFAULT FALSE,
    stdout_offset BIGINT NOT NULL DEFAULT 0,
    stderr_offset BIGINT NOT NULL DEFAULT 0,
    result TEXT,
    nonce TEXT,
    PRIMARY KEY (build_id, plan_id)
);
