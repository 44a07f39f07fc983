-- The caches of jobs' task steps. A step's cache is stored under a key naming
-- this row, so clearing it (`fly clear-task-cache`) is deleting the row: the
-- next run gets a new row, hence a new, empty cache, on every node at once.
CREATE TABLE task_caches (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    job_id BIGINT NOT NULL REFERENCES jobs (id) ON DELETE CASCADE,
    step_name TEXT NOT NULL,
    path TEXT NOT NULL,
    UNIQUE (job_id, step_name, path)
);

-- The keys of cleared caches, until every node's collector had a day to
-- delete their files from its runtime.
CREATE TABLE cleared_task_caches (
    cache_key TEXT PRIMARY KEY,
    cleared_at BIGINT NOT NULL
);
