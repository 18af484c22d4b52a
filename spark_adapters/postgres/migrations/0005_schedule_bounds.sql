-- A schedule's optional end_at and max_runs, and run_count, the runs its fires created (what
-- max_runs is compared with).
ALTER TABLE schedules ADD COLUMN end_at timestamptz;
ALTER TABLE schedules ADD COLUMN max_runs integer;
ALTER TABLE schedules ADD COLUMN run_count integer NOT NULL DEFAULT 0;
