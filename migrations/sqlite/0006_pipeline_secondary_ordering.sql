-- The instances of a pipeline name (its group) share one place in the
-- team's order, `ordering`, and are ordered among themselves by
-- `secondary_ordering` (`fly order-instanced-pipelines`), as in Concourse.
ALTER TABLE pipelines ADD COLUMN secondary_ordering BIGINT NOT NULL DEFAULT 0;

-- Existing instances keep their relative order, numbered from 1 within
-- their group (before their `ordering` changes below).
UPDATE pipelines SET secondary_ordering = (
    SELECT COUNT(*) FROM pipelines q
    WHERE q.team_id = pipelines.team_id AND q.name = pipelines.name
      AND (q.ordering < pipelines.ordering OR (q.ordering = pipelines.ordering AND q.id <= pipelines.id))
);

-- Each group takes the place of its first instance.
UPDATE pipelines SET ordering = (
    SELECT MIN(q.ordering) FROM pipelines q WHERE q.team_id = pipelines.team_id AND q.name = pipelines.name
);
