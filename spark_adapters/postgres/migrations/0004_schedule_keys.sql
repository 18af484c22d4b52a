-- An optional key naming a schedule, unique among the schedules that have one, for
-- create-or-replace by key (NULLs never collide in a unique index).
ALTER TABLE schedules ADD COLUMN key text COLLATE "C";
CREATE UNIQUE INDEX schedules_key ON schedules (key);
