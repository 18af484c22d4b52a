"""Use cases for tasks: creating runs, waiting for them, and managing their history."""

import asyncio
from typing import Any

import msgspec

from spark_core.errors import InvalidStateError, ValidationError
from spark_core.models import Page, Task, TaskId, TaskStatus, new_id
from spark_core.ports import Clock, Store, TaskFilter
from spark_core.services.workflows import WorkflowService
from spark_core.signals import TaskSignals

DEFAULT_MAX_RETRIES = 3
MAX_RETRIES_LIMIT = 10
STORE_POLL_SECONDS = 0.5


class TaskService:
    """Creates tasks for the worker to run, waits for them, lists, cancels and retries them."""

    def __init__(
        self, *, store: Store, workflows: WorkflowService, clock: Clock, signals: TaskSignals
    ) -> None:
        self._store = store
        self._workflows = workflows
        self._clock = clock
        self._signals = signals

    def create(
        self,
        workflow_id: str,
        *,
        input_data: str = "",
        max_retries: int = DEFAULT_MAX_RETRIES,
        timeout: float | None = None,
        session_id: str | None = None,
        tweaks: dict[str, Any] | None = None,
    ) -> Task:
        """Queue a run of a workflow (by local or remote id); the worker picks it up."""
        workflow = self._workflows.get(workflow_id)
        _check_run_options(max_retries, timeout)
        now = self._clock.now()
        task = Task(
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
        stored = self._store.add_task(task)
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
        """Queue a run and, with ``wait``, return it once finished (completed or failed)."""
        task = self.create(
            workflow_id,
            input_data=input_data,
            max_retries=max_retries,
            timeout=timeout,
            session_id=session_id,
            tweaks=tweaks,
        )
        return await self.wait(task.id) if wait else task

    async def wait(self, task_id: TaskId, *, timeout: float | None = None) -> Task:
        """Return the task once it is final, or as it stands after ``timeout`` seconds."""
        future = self._signals.watch(task_id)
        loop = asyncio.get_running_loop()
        deadline = None if timeout is None else loop.time() + timeout
        try:
            while True:
                task = self._store.get_task(task_id)
                if task.status.is_final:
                    return task
                step = STORE_POLL_SECONDS
                if deadline is not None:
                    step = min(step, deadline - loop.time())
                    if step <= 0:
                        return task
                try:
                    await asyncio.wait_for(asyncio.shield(future), step)
                except TimeoutError:
                    continue
                return self._store.get_task(task_id)
        finally:
            self._signals.unwatch(task_id, future)

    def list(
        self, filters: TaskFilter | None = None, *, limit: int = 50, offset: int = 0
    ) -> Page[Task]:
        """Tasks, newest first."""
        return self._store.list_tasks(filters or TaskFilter(), limit=limit, offset=offset)

    def get(self, task_id: TaskId) -> Task:
        """One task, with the source's raw response."""
        return self._store.get_task(task_id)

    def cancel(self, task_id: TaskId) -> Task:
        """Cancel a pending or running task; a running remote call is abandoned."""
        task = self._store.cancel_task(task_id, self._clock.now())
        self._signals.cancel_requested(task_id)
        self._signals.task_finished(task)
        return task

    def delete(self, task_id: TaskId) -> Task:
        """Delete a task, cancelling it first if it is still pending or running."""
        task = self._store.get_task(task_id)
        if not task.status.is_final:
            task = self.cancel(task_id)
        self._store.delete_task(task_id)
        return task

    def retry(self, task_id: TaskId) -> Task:
        """Run a finished task again with the same input, as a new task."""
        original = self._store.get_task(task_id)
        if not original.status.is_final:
            raise InvalidStateError(
                f"Task {task_id} is {original.status}; only a finished task can be retried"
            )
        now = self._clock.now()
        task = msgspec.structs.replace(
            original,
            id=TaskId(new_id()),
            status=TaskStatus.PENDING,
            output_data=None,
            output_raw=None,
            error=None,
            tries=0,
            next_retry_at=None,
            scheduled_for=None,
            started_at=None,
            finished_at=None,
            created_at=now,
            updated_at=now,
        )
        stored = self._store.add_task(task)
        self._signals.work_added()
        return stored


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
