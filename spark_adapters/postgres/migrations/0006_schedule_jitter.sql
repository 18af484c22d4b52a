-- A schedule's optional jitter, the most a fire's run is delayed by (a duration such as 30s).
ALTER TABLE schedules ADD COLUMN jitter text;
