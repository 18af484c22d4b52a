-- A workflow's task counts were one row, which every insert of one of its tasks updated and
-- held locked until its commit: runs of one workflow recorded on many connections (one node's
-- pool, or many nodes) waited for each other's commits, disk flush included, one at a time.
-- Now the counts are spread over up to 16 rows per workflow (stripes): a connection adds to
-- the stripe its backend's pid picks, so writers on different connections rarely meet, and
-- readers sum a workflow's stripes. A stripe's counts alone mean nothing (a delete may make one
-- negative); only their sum does. workflow_stats stays, as a view of the sums, so nodes of the
-- previous version still running during an upgrade read the same counts as before.
ALTER TABLE workflow_stats RENAME TO workflow_stat_stripes;
ALTER TABLE workflow_stat_stripes ADD COLUMN stripe smallint NOT NULL DEFAULT 0;
ALTER TABLE workflow_stat_stripes DROP CONSTRAINT workflow_stats_pkey;
ALTER TABLE workflow_stat_stripes ADD CONSTRAINT workflow_stat_stripes_pkey
    PRIMARY KEY (workflow_id, stripe);
CREATE VIEW workflow_stats AS
    SELECT workflow_id, sum(task_count)::bigint AS task_count,
           sum(failed_task_count)::bigint AS failed_task_count
    FROM workflow_stat_stripes GROUP BY workflow_id;

-- Add to a workflow's counts, on this connection's stripe. An update when the stripe exists
-- (cheaper than an upsert, which also locks the row it finds); else an insert, unless the
-- workflow itself is gone (the tasks of a deleted workflow are deleted by its cascade, and
-- its counts with it).
CREATE FUNCTION spark_count_tasks(workflow text, tasks bigint, failed bigint)
RETURNS void LANGUAGE plpgsql AS $$
DECLARE
    mine constant smallint := pg_backend_pid() % 16;
BEGIN
    UPDATE workflow_stat_stripes SET task_count = task_count + tasks,
                                     failed_task_count = failed_task_count + failed
        WHERE workflow_id = workflow AND stripe = mine;
    IF NOT FOUND THEN
        INSERT INTO workflow_stat_stripes AS stats
                (workflow_id, stripe, task_count, failed_task_count)
            SELECT workflow, mine, tasks, failed WHERE EXISTS (
                SELECT 1 FROM workflows WHERE id = workflow)
        ON CONFLICT (workflow_id, stripe) DO UPDATE SET
            task_count = stats.task_count + excluded.task_count,
            failed_task_count = stats.failed_task_count + excluded.failed_task_count;
    END IF;
END;
$$;

CREATE OR REPLACE FUNCTION spark_tasks_stats_insert() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    PERFORM spark_count_tasks(NEW.workflow_id, 1, (NEW.status = 'failed')::int);
    RETURN NULL;
END;
$$;

CREATE OR REPLACE FUNCTION spark_tasks_stats_delete() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    PERFORM spark_count_tasks(OLD.workflow_id, -1, -(OLD.status = 'failed')::int);
    RETURN NULL;
END;
$$;

CREATE OR REPLACE FUNCTION spark_tasks_stats_status() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    PERFORM spark_count_tasks(NEW.workflow_id, 0,
                              (NEW.status = 'failed')::int - (OLD.status = 'failed')::int);
    RETURN NULL;
END;
$$;
