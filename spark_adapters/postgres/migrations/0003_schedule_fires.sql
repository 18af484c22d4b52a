-- The fire ledger: one row per schedule and nominal time the scheduler considered, with its
-- outcome and a readable reason; rows go with their schedule, pruning by age uses decided_at.
CREATE TABLE schedule_fires (
    schedule_id text COLLATE "C" NOT NULL REFERENCES schedules (id) ON DELETE CASCADE,
    nominal_time timestamptz NOT NULL,
    outcome text NOT NULL,
    reason text NOT NULL,
    task_id text COLLATE "C",
    decided_at timestamptz NOT NULL,
    delay_seconds double precision NOT NULL,
    PRIMARY KEY (schedule_id, nominal_time)
);
CREATE INDEX schedule_fires_outcome ON schedule_fires (schedule_id, outcome, nominal_time);
CREATE INDEX schedule_fires_decided_at ON schedule_fires (decided_at);
