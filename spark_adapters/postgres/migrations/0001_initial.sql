-- Spark's schema on PostgreSQL: the SQLite schema (versions 1-3) in native types, plus the
-- leases, the schedule version, the slot constraint and the node registry that N processes
-- coordinate through. Ids and names use the "C" collation so that ordering matches SQLite's
-- byte order whatever the database's locale.

CREATE TABLE sources (
    id text COLLATE "C" PRIMARY KEY,
    name text NOT NULL,
    source_type text NOT NULL,
    url text COLLATE "C" NOT NULL CONSTRAINT sources_url_key UNIQUE,
    status text NOT NULL,
    version_info jsonb NOT NULL DEFAULT '{}',
    verify_tls boolean NOT NULL DEFAULT true,
    sealed_key text,
    created_at timestamptz NOT NULL,
    updated_at timestamptz NOT NULL
);
CREATE INDEX sources_created_at ON sources (created_at, id);
CREATE INDEX sources_status ON sources (status, created_at, id);
CREATE INDEX sources_source_type ON sources (source_type, created_at, id);

CREATE TABLE workflows (
    id text COLLATE "C" PRIMARY KEY,
    source_id text COLLATE "C" NOT NULL REFERENCES sources (id) ON DELETE CASCADE,
    source text COLLATE "C" NOT NULL,
    remote_flow_id text COLLATE "C" NOT NULL,
    name text COLLATE "C" NOT NULL,
    -- Python's str.casefold() of name, written by the adapter: "name contains" then matches
    -- exactly as on SQLite, independent of the database's locale.
    name_folded text NOT NULL,
    flow_type text NOT NULL,
    description text,
    input_component text,
    output_component text,
    data jsonb,
    folder_id text,
    folder_name text,
    icon text,
    icon_bg_color text,
    liked boolean NOT NULL DEFAULT false,
    tags jsonb NOT NULL DEFAULT '[]',
    flow_version bigint NOT NULL DEFAULT 1,
    is_component boolean NOT NULL DEFAULT false,
    created_at timestamptz NOT NULL,
    updated_at timestamptz NOT NULL,
    CONSTRAINT workflows_source_remote_key UNIQUE (source_id, remote_flow_id)
);
CREATE INDEX workflows_name ON workflows (name, id);
CREATE INDEX workflows_source_id ON workflows (source_id, name, id);
CREATE INDEX workflows_source ON workflows (source, name, id);
CREATE INDEX workflows_flow_type ON workflows (flow_type, name, id);
CREATE INDEX workflows_remote_flow_id ON workflows (remote_flow_id, created_at, id);

CREATE TABLE schedules (
    id text COLLATE "C" PRIMARY KEY,
    workflow_id text COLLATE "C" NOT NULL REFERENCES workflows (id) ON DELETE CASCADE,
    schedule_type text NOT NULL,
    schedule_expr text NOT NULL,
    input_value text NOT NULL DEFAULT '',
    timezone text NOT NULL DEFAULT 'UTC',
    status text NOT NULL,
    next_run_at timestamptz,
    last_run_at timestamptz,
    overlap_policy text NOT NULL,
    catchup_policy text NOT NULL,
    max_retries bigint NOT NULL,
    timeout double precision,
    start_at timestamptz NOT NULL,
    version integer NOT NULL DEFAULT 1,
    created_at timestamptz NOT NULL,
    updated_at timestamptz NOT NULL
);
CREATE INDEX schedules_due ON schedules (next_run_at, id) WHERE status = 'active';
CREATE INDEX schedules_created_at ON schedules (created_at, id);
CREATE INDEX schedules_workflow_id ON schedules (workflow_id, created_at, id);
CREATE INDEX schedules_status ON schedules (status, created_at, id);

-- schedule_id is deliberately not a foreign key: a run's history outlives its schedule.
CREATE TABLE tasks (
    id text COLLATE "C" PRIMARY KEY,
    workflow_id text COLLATE "C" NOT NULL REFERENCES workflows (id) ON DELETE CASCADE,
    schedule_id text COLLATE "C",
    status text NOT NULL,
    input_data text NOT NULL DEFAULT '',
    output_data text,
    output_raw jsonb,
    error text,
    tries integer NOT NULL DEFAULT 0,
    max_retries bigint NOT NULL,
    next_retry_at timestamptz,
    scheduled_for timestamptz,
    timeout double precision,
    session_id text,
    tweaks jsonb,
    started_at timestamptz,
    finished_at timestamptz,
    created_at timestamptz NOT NULL,
    updated_at timestamptz NOT NULL,
    lease_owner text,
    lease_expires_at timestamptz,
    -- NULLs are distinct, so manual runs (no schedule, no slot) never collide.
    CONSTRAINT tasks_schedule_slot UNIQUE (schedule_id, scheduled_for)
);
CREATE INDEX tasks_claimable ON tasks (created_at, id) WHERE status = 'pending';
CREATE INDEX tasks_leased ON tasks (lease_expires_at) WHERE status = 'running';
CREATE INDEX tasks_lease_owner ON tasks (lease_owner) WHERE status = 'running';
CREATE INDEX tasks_created_at ON tasks (created_at DESC, id DESC);
CREATE INDEX tasks_workflow_id ON tasks (workflow_id, created_at DESC, id DESC);
CREATE INDEX tasks_schedule_id ON tasks (schedule_id, created_at DESC, id DESC);
CREATE INDEX tasks_status ON tasks (status, created_at DESC, id DESC);

-- Per-workflow task counts kept by triggers, so listing workflows costs the same however many
-- tasks they have.
CREATE TABLE workflow_stats (
    workflow_id text COLLATE "C" PRIMARY KEY REFERENCES workflows (id) ON DELETE CASCADE,
    task_count bigint NOT NULL DEFAULT 0,
    failed_task_count bigint NOT NULL DEFAULT 0
);

CREATE FUNCTION spark_tasks_stats_insert() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO workflow_stats AS stats (workflow_id, task_count, failed_task_count)
        VALUES (NEW.workflow_id, 1, (NEW.status = 'failed')::int)
    ON CONFLICT (workflow_id) DO UPDATE SET
        task_count = stats.task_count + 1,
        failed_task_count = stats.failed_task_count + excluded.failed_task_count;
    RETURN NULL;
END;
$$;

CREATE FUNCTION spark_tasks_stats_delete() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    UPDATE workflow_stats SET
        task_count = task_count - 1,
        failed_task_count = failed_task_count - (OLD.status = 'failed')::int
    WHERE workflow_id = OLD.workflow_id;
    RETURN NULL;
END;
$$;

CREATE FUNCTION spark_tasks_stats_status() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    UPDATE workflow_stats SET
        failed_task_count = failed_task_count + (NEW.status = 'failed')::int
                            - (OLD.status = 'failed')::int
    WHERE workflow_id = NEW.workflow_id;
    RETURN NULL;
END;
$$;

CREATE TRIGGER tasks_stats_insert AFTER INSERT ON tasks
    FOR EACH ROW EXECUTE FUNCTION spark_tasks_stats_insert();
CREATE TRIGGER tasks_stats_delete AFTER DELETE ON tasks
    FOR EACH ROW EXECUTE FUNCTION spark_tasks_stats_delete();
CREATE TRIGGER tasks_stats_status AFTER UPDATE OF status ON tasks
    FOR EACH ROW WHEN ((OLD.status = 'failed') IS DISTINCT FROM (NEW.status = 'failed'))
    EXECUTE FUNCTION spark_tasks_stats_status();

-- The Spark processes using this schema. Liveness is the session advisory lock each one holds
-- on lock_key, not this row; the table is unlogged because it means nothing after a crash.
CREATE UNLOGGED TABLE spark_nodes (
    owner text COLLATE "C" PRIMARY KEY,
    host text NOT NULL,
    pid integer NOT NULL,
    lock_key bigint NOT NULL,
    started_at timestamptz NOT NULL DEFAULT now()
);

-- Wake-ups: one channel per schema, so two Spark installations (or two test schemas) in one
-- database never hear each other. Writers call spark_notify inside their transaction, so a
-- hint goes out only if the write commits. A NULL kind sends nothing.
CREATE FUNCTION spark_channel() RETURNS text LANGUAGE sql STABLE AS $$
    SELECT 'spark_' || left(md5(current_schema()), 16)
$$;

CREATE FUNCTION spark_notify(kind text, id text) RETURNS void LANGUAGE sql AS $$
    SELECT pg_notify(spark_channel(), json_build_object('kind', kind, 'id', id)::text)
    WHERE kind IS NOT NULL
$$;
