-- Every attempt of a task (start, end, error) as a JSON array, and an index for pruning
-- finished tasks by age. Tasks run before keep an empty history.
ALTER TABLE tasks ADD COLUMN attempts jsonb NOT NULL DEFAULT '[]'::jsonb;
CREATE INDEX tasks_finished_at ON tasks (finished_at)
    WHERE status IN ('completed', 'failed', 'cancelled');
