-- A running build is owned through a lease: the node running it renews
-- `lease_deadline_ms` (unix milliseconds); once it passes, another node may
-- take the build over, bumping `lease_epoch`. Every write of the build's
-- events or final status names the owner and epoch it holds (a fencing
-- token), so a node that lost the lease cannot write afterwards.
ALTER TABLE builds ADD COLUMN lease_owner TEXT;
ALTER TABLE builds ADD COLUMN lease_epoch BIGINT NOT NULL DEFAULT 0;
ALTER TABLE builds ADD COLUMN lease_deadline_ms BIGINT;

-- `event_seq` becomes the number of the build's next event, kept by the
-- writers of its events.
UPDATE builds SET event_seq = COALESCE((SELECT MAX(event_id) + 1 FROM build_events WHERE build_id = builds.id), 0);
