-- Every index on tasks costs each run an entry when its task is inserted, and another when the
-- run's outcome writes a new version of the row (the release changes indexed columns, so it is
-- never a HOT update). Two indexes served only the search for abandoned leases, which reads the
-- running tasks: they are few (each a run in progress on some node), and tasks_status finds them
-- in the order the search wants. The schedule index kept an entry for every manual run too,
-- though every search through it names a schedule.
DROP INDEX tasks_leased;
DROP INDEX tasks_lease_owner;
DROP INDEX tasks_schedule_id;
CREATE INDEX tasks_schedule_id ON tasks (schedule_id, created_at DESC, id DESC)
    WHERE schedule_id IS NOT NULL;
