"""Use cases for tasks: creating runs, waiting for them, and managing their history."""

import asyncio
import contextlib
from datetime import datetime, timedelta
from typing import Any

import msgspec

from spark_core.errors import InvalidStateError, StaleTargetError, ValidationError
from spark_core.models import Page, Task, TaskId, TaskStatus, Workflow, new_id
from spark_core.ports import Clock, RunTarget, TaskFilter, TaskRepository
from spark_core.services.workflows import WorkflowService
from spark_core.signals import TaskSignals

DEFAULT_MAX_RETRIES = 3
MAX_RETRIES_LIMIT = 10
STORE_POLL_SECONDS = 0.5
PRUNE_BATCH = 500


class TaskService:
    """Creates tasks for the worker to run, waits for them, lists, cancels and retries them."""

    def __init__(
        self, *, tasks: TaskRepository, workflows: WorkflowService, clock: Clock,
        signals: TaskSignals,
    ) -> None:
        self._tasks = tasks
        self._workflows = workflows
        self._clock = clock
        self._signals = signals

    async def create(
        self,
        workflow_id: str,
        *,
        input_data: str = "",
        max_retries: int = DEFAULT_MAX_RETRIES,
        timeout: float | None = None,
        session_id: str | None = None,
        tweaks: dict[str, Any] | None = None,
    ) -> Task:
        """Queue a run of a workflow (by local or remote id): stored pending, a worker picks
        it up (and reads its source then)."""
        workflow = await self._workflows.get(workflow_id, definition=False)
        return await self._queue(self._new_task(workflow, input_data=input_data,
                                                max_retries=max_retries, timeout=timeout,
                                                session_id=session_id, tweaks=tweaks))

    def _new_task(self, workflow: Workflow, *, input_data: str, max_retries: int,
                  timeout: float | None, session_id: str | None,
                  tweaks: dict[str, Any] | None) -> Task:
        """A new task of ``workflow``, checked, not yet stored."""
        _check_run_options(max_retries, timeout)
        now = self._clock.now()
        return Task(
            id=TaskId(new_id()),
            workflow_id=workflow.id,
            input_data=input_data,
            max_retries=max_retries,
            timeout=timeout,
            session_id=session_id,
            tweaks=tweaks,
            created_at=now,
            updated_at=now,
        )

    async def _queue(self, task: Task) -> Task:
        """Store a new task pending for any worker."""
        stored = await self._tasks.add(task)
        self._signals.work_added()
        return stored

    async def run(
        self,
        workflow_id: str,
        *,
        input_data: str = "",
        wait: bool = True,
        max_retries: int = DEFAULT_MAX_RETRIES,
        timeout: float | None = None,
        session_id: str | None = None,
        tweaks: dict[str, Any] | None = None,
    ) -> Task:
        """Queue a run and, with ``wait``, return it once finished (completed or failed).

        Without ``wait`` the answer is the pending task, as ``create`` stores it. A run waited
        for is started at once by this process's worker when that worker has a free slot,
        with the workflow and source read here: its caller only sees it finished, so it need
        not pass through the queue."""
        if not wait:
            return await self.create(workflow_id, input_data=input_data,
                                     max_retries=max_retries, timeout=timeout,
                                     session_id=session_id, tweaks=tweaks)
        # The target this process read last, if any, unchecked: the run's own write checks
        # that the catalogue has not changed since (one read fewer per run). If it has, the
        # target is read again and used as read, as a run without a kept target does.
        target = await self._workflows.run_target(workflow_id, remembered=True)
        task = self._new_task(target.workflow, input_data=input_data,
                              max_retries=max_retries, timeout=timeout,
                              session_id=session_id, tweaks=tweaks)
        try:
            stored, finished = await self._start(task, target, workflow_id)
        except StaleTargetError:
            target = await self._workflows.run_target(workflow_id)
            stored, finished = await self._start(
                msgspec.structs.replace(task, workflow_id=target.workflow.id),
                msgspec.structs.replace(target, catalogue=None), workflow_id)
        # Just stored, it is not final: the first look at the store can be skipped. Started
        # here (running), its end is announced by this process's worker; otherwise any
        # process may run it.
        return await self._wait(stored.id, timeout=None, current=stored, watching=finished,
                                runs_here=stored.status is TaskStatus.RUNNING)

    async def _start(self, task: Task, target: RunTarget,
                     workflow_id: str) -> "tuple[Task, asyncio.Future[Task | None]]":
        """The new ``task`` of ``target``'s workflow (asked for as ``workflow_id``) stored,
        and watched for its end: started at once by this process's worker when it has a free
        slot (one write, no wait for its claim loop, no second read of the target; the write
        checks a target's ``catalogue`` version), else stored pending for any worker, with
        its workflow as read now when the target was not checked."""
        # Watched before it is stored: a run that finishes before its caller starts waiting
        # (an instant answer, or a failure at once) is still heard, not found at the next poll.
        finished = self._signals.watch(task.id)
        try:
            stored = await self._signals.start_here(task, target)
            if stored is None:
                if target.catalogue is not None:
                    fresh = await self._workflows.run_target(workflow_id)
                    task = msgspec.structs.replace(task, workflow_id=fresh.workflow.id)
                stored = await self._queue(task)
        except BaseException:
            self._signals.unwatch(task.id, finished)
            raise
        return stored, finished

    async def wait(self, task_id: TaskId, *, timeout: float | None = None) -> Task:
        """Return the task once it is final, or as it stands after ``timeout`` seconds."""
        return await self._wait(task_id, timeout=timeout, current=None)

    async def _wait(
        self, task_id: TaskId, *, timeout: float | None, current: Task | None,
        watching: "asyncio.Future[Task | None] | None" = None, runs_here: bool = False,
    ) -> Task:
        """The task once final, or as it stands at ``timeout``. Unless this process's worker
        just started it (``runs_here``: it announces the end), the store is first asked to
        hint its end to every process (``watch_end``), before any read; a run started here
        and still not final at the first poll (a retry, which any process may run) is
        watched then."""
        loop = asyncio.get_running_loop()
        deadline = None if timeout is None else loop.time() + timeout
        store_watches, first = False, True
        while True:
            # Watched before the read: a finish cannot slip by.
            future = watching or self._signals.watch(task_id)
            watching = None
            try:
                if future.done():  # heard already: the task as written, or None (read it)
                    current = future.result()
                if not (store_watches or (first and runs_here)
                        or (current is not None and current.status.is_final)):
                    # Before any read: an end after it is hinted to this process. Ended
                    # already (unhinted): read it.
                    if not await self._tasks.watch_end(task_id):
                        current = None
                    store_watches = True
                first = False
                task = current or await self._tasks.get(task_id)
                current = None
                if task.status.is_final:
                    return task
                step = STORE_POLL_SECONDS
                if deadline is not None:
                    step = min(step, deadline - loop.time())
                    if step <= 0:
                        return task
                with contextlib.suppress(TimeoutError):
                    # the task as written when this process finished it, else None: read it
                    current = await asyncio.wait_for(future, step)
            finally:
                self._signals.unwatch(task_id, future)

    async def list(
        self, filters: TaskFilter | None = None, *, limit: int = 50, offset: int = 0
    ) -> Page[Task]:
        """Tasks, newest first."""
        return await self._tasks.list(filters or TaskFilter(), limit=limit, offset=offset)

    async def count_by_status(
        self, *, created_after: datetime | None = None
    ) -> dict[TaskStatus, int]:
        """How many tasks have each status (created at or after ``created_after`` when given);
        every status is in the answer, zero when it has no task."""
        found = await self._tasks.count_by_status(created_after=created_after)
        return {status: found.get(status, 0) for status in TaskStatus}

    async def get(self, task_id: TaskId) -> Task:
        """One task, with the source's raw response."""
        return await self._tasks.get(task_id)

    async def prune(
        self, *, before: datetime | None = None, older_than: timedelta | None = None
    ) -> int:
        """Delete finished tasks (with their raw output) that finished before ``before``, or
        more than ``older_than`` ago by the store's clock; returns how many went. Pending and
        running tasks always stay. Deletes in batches, so other writers keep their turn."""
        if (before is None) == (older_than is None):
            raise ValidationError("Give either a time (before) or an age (older_than)")
        deleted = 0
        while True:
            batch = await self._tasks.prune(before=before, older_than=older_than,
                                            limit=PRUNE_BATCH)
            deleted += batch
            if batch < PRUNE_BATCH:
                return deleted

    async def cancel(self, task_id: TaskId) -> Task:
        """Cancel a pending or running task; a running remote call is abandoned, on whichever
        node runs it."""
        task = await self._tasks.cancel(task_id, now=self._clock.now())
        self._signals.cancel_requested(task_id)
        self._signals.task_finished(task)
        return task

    async def delete(self, task_id: TaskId) -> Task:
        """Delete a task, cancelling it first if it is still pending or running."""
        task = await self._tasks.get(task_id)
        if not task.status.is_final:
            task = await self.cancel(task_id)
        await self._tasks.delete(task_id)
        return task

    async def retry(self, task_id: TaskId) -> Task:
        """Run a finished task again with the same input, as a new task."""
        original = await self._tasks.get(task_id)
        if not original.status.is_final:
            raise InvalidStateError(
                f"Task {task_id} is {original.status}; only a finished task can be retried"
            )
        now = self._clock.now()
        # A new task: what it runs is carried over, nothing of the old one's runs (its
        # answer, error, tries, attempts, times).
        task = Task(
            id=TaskId(new_id()),
            workflow_id=original.workflow_id,
            schedule_id=original.schedule_id,
            input_data=original.input_data,
            max_retries=original.max_retries,
            timeout=original.timeout,
            session_id=original.session_id,
            tweaks=original.tweaks,
            created_at=now,
            updated_at=now,
        )
        return await self._queue(task)


def _check_run_options(max_retries: int, timeout: float | None) -> None:
    if not 0 <= max_retries <= MAX_RETRIES_LIMIT:
        raise ValidationError(
            f"max_retries must be between 0 and {MAX_RETRIES_LIMIT}",
            errors=[("max_retries", f"must be between 0 and {MAX_RETRIES_LIMIT}")],
        )
    if timeout is not None and timeout <= 0:
        raise ValidationError(
            "timeout must be a positive number of seconds",
            errors=[("timeout", "must be positive")],
        )
