-- Whether a process waits for a task's end without running it (TaskRepository.watch_end). Only
-- the end of such a task is hinted to every node ('finished'): the node that writes an end
-- announces it to its own waiters itself, and a NOTIFY in every run's last commit cost the
-- database ~100 us of CPU and the commit ~90 us (one node, one run at a time). A constant
-- default: the column is added without rewriting the table.
ALTER TABLE tasks ADD COLUMN awaited boolean NOT NULL DEFAULT false;
