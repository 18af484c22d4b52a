"""Signals between the services, the worker and the scheduler.

The store is the truth; these only make a process react at once instead of at its next poll.
Hints from other processes (the store's ``WakeUpFeed``) arrive through ``deliver``. Every waiter
also polls the store, so a hint that never arrives only costs a poll interval.
"""

import asyncio
import contextlib
from collections.abc import Awaitable, Callable
from datetime import datetime

from spark_core.models import Task, TaskId
from spark_core.ports import RunTarget, WakeUp, WakeUpKind

Starter = Callable[[Task, RunTarget], Awaitable[Task | None]]
"""A worker's offer to store a new task already claimed and start it (``start_here``)."""


class TaskSignals:
    """Wakes the worker when work arrives and wakes waiters when a task finishes."""

    def __init__(self) -> None:
        self._work = asyncio.Event()
        self._schedules = asyncio.Event()
        self._watchers: dict[TaskId, list[asyncio.Future[Task | None]]] = {}
        self._cancel_listeners: list[Callable[[TaskId], None]] = []
        self._due: list[datetime] = []
        self._starter: Starter | None = None
        self._writing: dict[TaskId, bool] = {}
        """Tasks whose outcome this process's worker is writing, each with whether the store's
        hint that it finished was heard meanwhile (and held: see ``writing_outcome``)."""

    # -- work for the worker -------------------------------------------------------------------
    def work_added(self) -> None:
        """A task became runnable in this process."""
        self._work.set()

    @property
    def work_pending(self) -> bool:
        """True when work was announced that the worker has not yet looked for."""
        return self._work.is_set()

    def work_due(self, at: datetime) -> None:
        """A task created in this process becomes claimable at ``at`` (a jittered fire):
        the worker should look again then, not only at its next poll."""
        self._due.append(at)

    def next_work_due(self, now: datetime) -> datetime | None:
        """The earliest time announced by ``work_due`` still after ``now`` (the past ones
        are forgotten), or ``None``."""
        self._due = [at for at in self._due if at > now]
        return min(self._due, default=None)

    async def wait_for_work(self, timeout: float) -> None:
        """Return when work is added or after ``timeout`` seconds, whichever is first."""
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._work.wait(), timeout)
        self._work.clear()

    # -- runs started by the process they are asked of ----------------------------------------
    def offer_starts(self, starter: Starter) -> None:
        """This process's worker offers to store new tasks already claimed by it and start
        them at once."""
        self._starter = starter

    def withdraw_starts(self, starter: Starter) -> None:
        """Withdraw ``starter``'s offer (a later offer by another worker stays)."""
        if self._starter == starter:
            self._starter = None

    async def start_here(self, task: Task, target: RunTarget) -> Task | None:
        """Store the new ``task`` claimed by this process's worker and start running it now
        with ``target`` (what it needs, read as the run was asked for); the task as stored
        (``running``, or ``pending`` when its workflow is at its limit), or ``None`` when no
        worker here takes it: then store it and call ``work_added``."""
        starter = self._starter
        return None if starter is None else await starter(task, target)

    # -- schedule changes for the scheduler ----------------------------------------------------
    def schedules_changed(self) -> None:
        """A schedule was added, changed or removed: the scheduler should look again."""
        self._schedules.set()

    async def wait_for_schedule_change(self, timeout: float) -> None:
        """Return when a schedule changes or after ``timeout`` seconds."""
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._schedules.wait(), timeout)
        self._schedules.clear()

    # -- finished tasks ------------------------------------------------------------------------
    def watch(self, task_id: TaskId) -> "asyncio.Future[Task | None]":
        """A future resolved when this process hears that the task may have finished: with
        the final task as written when whoever wrote it here says so (this process's worker,
        a cancel), else with ``None`` (a hint from another process: read it)."""
        future: asyncio.Future[Task | None] = asyncio.get_running_loop().create_future()
        self._watchers.setdefault(task_id, []).append(future)
        return future

    def unwatch(self, task_id: TaskId, future: "asyncio.Future[Task | None]") -> None:
        """Stop watching (the waiter gave up or got its answer)."""
        futures = self._watchers.get(task_id, [])
        if future in futures:
            futures.remove(future)
        if not futures:
            self._watchers.pop(task_id, None)

    def task_finished(self, task: Task) -> None:
        """Tell every watcher of ``task`` that it reached a final state, as ``task`` (the
        task as it was just written) says."""
        self._wake(task.id, task)

    def task_finished_id(self, task_id: TaskId) -> None:
        """Tell every watcher of ``task_id`` that it reached a final state (they read it)."""
        self._wake(task_id)

    def writing_outcome(self, task_id: TaskId) -> None:
        """This process's worker is writing ``task_id``'s outcome and will announce the task
        as written. The store's hint that the task finished (that very write, heard on
        another connection before the write's own answer) is held meanwhile: delivered at
        once, it would have the caller waiting for the run read back what the worker is about
        to hand over."""
        self._writing.setdefault(task_id, False)

    def outcome_written(self, task_id: TaskId) -> None:
        """The worker's outcome write of ``task_id`` ended, announced or not (failed, or
        refused as taken over elsewhere): a finish hint held meanwhile now wakes whoever
        still waits, to read the task."""
        if self._writing.pop(task_id, False):
            self._wake(task_id)

    def _wake(self, task_id: TaskId, task: Task | None = None) -> None:
        for future in self._watchers.pop(task_id, []):
            if not future.done():
                future.set_result(task)

    # -- cancellation --------------------------------------------------------------------------
    def on_cancel(self, listener: Callable[[TaskId], None]) -> None:
        """Register a listener (the worker) for cancellation requests."""
        self._cancel_listeners.append(listener)

    def cancel_requested(self, task_id: TaskId) -> None:
        """A task was cancelled in the store; whoever runs it here should stop."""
        for listener in list(self._cancel_listeners):
            listener(task_id)

    # -- hints from other processes ------------------------------------------------------------
    def deliver(self, hint: WakeUp) -> None:
        """React to a hint from the store's wake-up feed as to the same event in this process."""
        if hint.kind == WakeUpKind.WORK:
            self.work_added()
        elif hint.kind == WakeUpKind.SCHEDULES:
            self.schedules_changed()
        elif hint.kind == WakeUpKind.CANCEL and hint.id is not None:
            self.cancel_requested(TaskId(hint.id))
            self._wake(TaskId(hint.id))
        elif hint.kind == WakeUpKind.FINISHED and hint.id is not None:
            if hint.id in self._writing:  # the worker here announces it: see writing_outcome
                self._writing[TaskId(hint.id)] = True
                return
            # On the next loop pass: when this process wrote the final status otherwise (a
            # cancel), its own announcement (with the task as written, so a waiting caller
            # need not read it) follows the store's hint at once and is heard first.
            asyncio.get_running_loop().call_soon(self._wake, TaskId(hint.id))
