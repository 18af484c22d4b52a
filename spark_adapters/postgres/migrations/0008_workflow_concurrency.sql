-- max_concurrency: the most runs of a workflow that are running at once (null: no limit).
-- The partial indexes serve the claim: which workflows are limited, and per limited workflow
-- its running count and its oldest pending tasks.
ALTER TABLE workflows ADD COLUMN max_concurrency integer;
CREATE INDEX workflows_limited ON workflows (id) WHERE max_concurrency IS NOT NULL;
CREATE INDEX tasks_workflow_running ON tasks (workflow_id) WHERE status = 'running';
CREATE INDEX tasks_workflow_pending ON tasks (workflow_id, created_at, id) WHERE status = 'pending';
