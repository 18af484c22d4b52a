-- pause_after_failures (pause after this many failed runs in a row), consecutive_failures
-- (the count so far) and note (why the schedule was paused or resumed).
ALTER TABLE schedules ADD COLUMN pause_after_failures integer;
ALTER TABLE schedules ADD COLUMN consecutive_failures integer NOT NULL DEFAULT 0;
ALTER TABLE schedules ADD COLUMN note text;
