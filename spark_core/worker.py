"""The worker: runs pending tasks with bounded concurrency, retries, leases and cancellation.

Every run, whether started by the API, the CLI or a schedule, goes through here. A task is
claimed from the store under a lease that the worker keeps renewing; a process that dies stops
renewing, and whoever sees the lease expired marks the task ``interrupted`` (and queues a retry
if it has retries left). Nothing waits on a remote call inside a request handler.
"""

import asyncio
import contextlib
import logging
import random
import uuid
from collections.abc import AsyncIterator
from datetime import timedelta

import msgspec

from spark_core.errors import NotFoundError, RunTimeoutError, SourceError, SparkError
from spark_core.models import RunRequest, Task, TaskId, TaskStatus
from spark_core.ports import Clock, Store
from spark_core.services.sources import SourceService
from spark_core.signals import TaskSignals

logger = logging.getLogger(__name__)

INTERRUPTED = "interrupted"
STORE_POLL_SECONDS = 0.5


class RetryPolicy(msgspec.Struct, frozen=True, kw_only=True):
    """Exponential backoff with jitter: attempt n waits about base * 2**(n-1), capped."""

    base_seconds: float = 1.0
    max_seconds: float = 60.0

    def delay(self, tries: int, rng: random.Random) -> float:
        """Seconds to wait before the next attempt after ``tries`` attempts (full jitter on the
        upper half, so retries of many tasks spread out but never come back at once)."""
        ceiling: float = min(self.max_seconds, self.base_seconds * 2.0 ** max(0, tries - 1))
        return ceiling / 2 + rng.uniform(0, ceiling / 2)


class Worker:
    """Claims runnable tasks from the store and runs them, at most ``concurrency`` at once."""

    def __init__(
        self,
        *,
        store: Store,
        sources: SourceService,
        clock: Clock,
        signals: TaskSignals,
        concurrency: int = 16,
        default_timeout: float = 300.0,
        lease_seconds: float = 30.0,
        poll_seconds: float = 1.0,
        retry: RetryPolicy | None = None,
        rng: random.Random | None = None,
    ) -> None:
        self._store = store
        self._sources = sources
        self._clock = clock
        self._signals = signals
        self._concurrency = concurrency
        self._default_timeout = default_timeout
        self._lease = timedelta(seconds=lease_seconds)
        self._poll_seconds = poll_seconds
        self._retry = retry or RetryPolicy()
        self._rng = rng or random.Random()  # noqa: S311 - jitter, not cryptography
        self.owner = f"worker-{uuid.uuid4()}"
        self._inflight: dict[TaskId, asyncio.Task[None]] = {}
        self._cancelled: set[TaskId] = set()
        self._loops: list[asyncio.Task[None]] = []
        self._stopping = False
        signals.on_cancel(self._cancel_local)

    @property
    def running(self) -> bool:
        """True between ``start`` and ``stop``."""
        return bool(self._loops) and not self._stopping

    @property
    def inflight(self) -> int:
        """How many runs this worker has under way."""
        return len(self._inflight)

    async def start(self) -> None:
        """Recover abandoned tasks, then claim and run tasks until ``stop``."""
        self._stopping = False
        self.recover_expired()
        self._loops = [
            asyncio.create_task(self._claim_loop(), name="spark-worker-claim"),
            asyncio.create_task(self._lease_loop(), name="spark-worker-lease"),
        ]

    async def stop(self, grace: float = 10.0) -> None:
        """Stop claiming; let runs in flight finish for up to ``grace`` seconds, then interrupt
        the rest (they are retried later if they have retries left)."""
        self._stopping = True
        self._signals.work_added()
        for loop in self._loops:
            loop.cancel()
        await asyncio.gather(*self._loops, return_exceptions=True)
        self._loops = []
        if self._inflight:
            await asyncio.wait(list(self._inflight.values()), timeout=grace)
        remaining = list(self._inflight.values())
        for run in remaining:
            run.cancel()
        await asyncio.gather(*remaining, return_exceptions=True)

    async def run_task(self, task_id: TaskId) -> Task:
        """Run one task here until it is final, retries included, without claiming any other
        work (what the CLI does for `spark workflow run`). A task another process is running
        is waited for instead."""
        renewing = asyncio.create_task(self._lease_loop(), name="spark-worker-lease")
        try:
            while True:
                task = self._store.get_task(task_id)
                if task.status.is_final:
                    return task
                now = self._clock.now()
                retry_at = task.next_retry_at
                if task.status == TaskStatus.PENDING and (retry_at is None or retry_at <= now):
                    claimed = self._store.claim_tasks(
                        now, owner=self.owner, lease_until=now + self._lease, limit=1,
                        task_ids=[task_id],
                    )
                    if claimed:
                        run = asyncio.create_task(self._execute(claimed[0]))
                        self._inflight[task_id] = run
                        await run
                        continue
                if task.status == TaskStatus.PENDING and retry_at is not None and retry_at > now:
                    await self._clock.sleep((retry_at - now).total_seconds())
                else:  # running in another process, or it claimed the task first
                    await asyncio.sleep(STORE_POLL_SECONDS)
        finally:
            renewing.cancel()
            await asyncio.gather(renewing, return_exceptions=True)

    def recover_expired(self) -> list[Task]:
        """Mark tasks whose process died (lease expired) interrupted; queue retries."""
        recovered = []
        for task in self._store.expired_leases(self._clock.now()):
            outcome = self._failure(task, INTERRUPTED, transient=True)
            if self._store.release_task(outcome, owner=None):
                logger.warning("Task %s was interrupted (its process stopped)", task.id)
                recovered.append(outcome)
                self._announce(outcome)
        return recovered

    async def _claim_loop(self) -> None:
        while not self._stopping:
            free = self._concurrency - len(self._inflight)
            if free > 0:
                now = self._clock.now()
                claimed = self._store.claim_tasks(
                    now, owner=self.owner, lease_until=now + self._lease, limit=free
                )
                for task in claimed:
                    self._inflight[task.id] = asyncio.create_task(
                        self._execute(task), name=f"spark-run-{task.id}"
                    )
                if claimed and len(claimed) == free:
                    continue
            await self._signals.wait_for_work(self._poll_seconds)

    async def _lease_loop(self) -> None:
        interval = self._lease.total_seconds() / 3
        while not self._stopping:
            await asyncio.sleep(interval)
            if self._inflight:
                held = set(self._store.renew_leases(self.owner, self._clock.now() + self._lease))
                for task_id in [tid for tid in self._inflight if tid not in held]:
                    self._cancel_local(task_id)
            self.recover_expired()

    def _cancel_local(self, task_id: TaskId) -> None:
        run = self._inflight.get(task_id)
        if run is not None and not run.done():
            self._cancelled.add(task_id)
            run.cancel()

    async def _execute(self, task: Task) -> None:
        try:
            outcome = await self._attempt(task)
        except asyncio.CancelledError:
            if task.id in self._cancelled:
                return  # cancelled by a user: the store already says so
            outcome = self._failure(task, INTERRUPTED, transient=True)
            self._release(outcome)
            raise
        finally:
            self._inflight.pop(task.id, None)
            self._cancelled.discard(task.id)
            self._signals.work_added()
        self._release(outcome)

    def _release(self, outcome: Task) -> None:
        if self._store.release_task(outcome, owner=self.owner):
            self._announce(outcome)

    def _announce(self, outcome: Task) -> None:
        if outcome.status.is_final:
            self._signals.task_finished(outcome)
        else:
            self._signals.work_added()

    async def _attempt(self, task: Task) -> Task:
        timeout = task.timeout or self._default_timeout
        try:
            workflow = self._store.get_workflow(task.workflow_id)
            source = self._store.get_source(workflow.source_id)
            request = RunRequest(
                remote_flow_id=workflow.remote_flow_id,
                flow_type=workflow.flow_type,
                input_value=task.input_data,
                session_id=task.session_id or task.id,
                tweaks=task.tweaks,
                input_component=workflow.input_component,
                output_component=workflow.output_component,
                timeout=timeout,
            )
            client = self._sources.connect(source)
            try:
                result = await asyncio.wait_for(client.run(request), timeout)
            except TimeoutError as exc:
                raise RunTimeoutError(f"Run timed out after {timeout:g} s") from exc
        except NotFoundError as exc:
            return self._failure(task, exc.message, transient=False)
        except SourceError as exc:
            return self._failure(task, exc.message, transient=exc.transient)
        except SparkError as exc:
            return self._failure(task, exc.message, transient=False)
        except Exception as exc:
            logger.exception("Task %s failed with an unexpected error", task.id)
            return self._failure(task, f"Internal error: {type(exc).__name__}", transient=False)
        now = self._clock.now()
        return msgspec.structs.replace(
            task,
            status=TaskStatus.COMPLETED,
            output_data=result.output_text,
            output_raw=result.raw,
            error=None,
            next_retry_at=None,
            finished_at=now,
            updated_at=now,
        )

    def _failure(self, task: Task, error: str, *, transient: bool) -> Task:
        now = self._clock.now()
        if transient and task.tries <= task.max_retries:
            delay = self._retry.delay(task.tries, self._rng)
            return msgspec.structs.replace(
                task,
                status=TaskStatus.PENDING,
                error=error,
                next_retry_at=now + timedelta(seconds=delay),
                updated_at=now,
            )
        return msgspec.structs.replace(
            task,
            status=TaskStatus.FAILED,
            error=error,
            next_retry_at=None,
            finished_at=now,
            updated_at=now,
        )


@contextlib.asynccontextmanager
async def running(worker: Worker, *, grace: float = 10.0) -> AsyncIterator[Worker]:
    """Run ``worker`` for the duration of an ``async with`` block."""
    await worker.start()
    try:
        yield worker
    finally:
        await worker.stop(grace)
