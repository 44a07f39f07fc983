-- A resource's latest check build (its check status in the API and the web
-- UI) and whether a check is in progress are looked up by resource.
CREATE INDEX builds_resource ON builds (resource_id, id) WHERE resource_id IS NOT NULL;
