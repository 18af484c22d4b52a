"""The worker: runs pending tasks with bounded concurrency, retries, leases and cancellation.

Every run, whether started by the API, the CLI or a schedule, goes through here. A task is
claimed from the store under a lease that the worker keeps renewing; a process that dies stops
renewing, and whoever sees the lease expired, or the process provably gone (``NodeRegistry``),
marks the task ``interrupted`` (and queues a retry if it has retries left). Before retrying an
interrupted run, the worker asks a source that keeps its runs (``RunHistory``) whether it finished
that run anyway, and records its answer instead of running the flow twice. Every write of an
outcome is fenced by owner and attempt, so a process that stalled past its lease can never
overwrite the run that replaced it. Nothing waits on a remote call inside a request handler.
"""

import asyncio
import contextlib
import logging
import os
import random
import socket
import uuid
from collections.abc import AsyncIterator
from datetime import timedelta
from typing import Any

import msgspec

from spark_core.cancellation import cancel_and_wait, raise_if_cancelled
from spark_core.errors import (
    NotFoundError,
    RunTimeoutError,
    SourceError,
    SparkError,
    StoreUnavailableError,
)
from spark_core.models import RunRequest, RunResult, Task, TaskId, TaskStatus
from spark_core.notifications import run_event
from spark_core.ports import (
    Clock,
    Metrics,
    Notifier,
    RunHistory,
    RunTarget,
    Store,
    TaskOutcome,
    patch_fields,
)
from spark_core.services.schedules import count_final_run
from spark_core.services.sources import SourceService
from spark_core.signals import TaskSignals
from spark_core.telemetry import NoMetrics, log_fields

logger = logging.getLogger(__name__)

INTERRUPTED = "interrupted"
STORE_POLL_SECONDS = 0.5
WATCH_SECONDS = 0.5
RECOVER_SECONDS = 2.0
RECOVERY_BATCH = 100
RECALL_POLL_SECONDS = 1.0
CLOCK_ALLOWANCE = timedelta(seconds=60)
"""How far the source's clock may be behind Spark's when matching its runs to a task."""


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
        retry: RetryPolicy | None = None,
        rng: random.Random | None = None,
        owner: str | None = None,
        metrics: Metrics | None = None,
        notifier: Notifier | None = None,
    ) -> None:
        self._store = store
        self._metrics: Metrics = metrics or NoMetrics()
        self._notifier = notifier
        self._queue = store.queue
        self._nodes = store.nodes
        self._sources = sources
        self._clock = clock
        self._signals = signals
        self._concurrency = concurrency
        self._default_timeout = default_timeout
        self._lease_seconds = lease_seconds
        self._retry = retry or RetryPolicy()
        self._rng = rng or random.Random()  # noqa: S311 - jitter, not cryptography
        self.owner = owner or node_identity()
        self._inflight: dict[TaskId, asyncio.Task[None]] = {}
        self._cancelled: set[TaskId] = set()
        self._releasing: set[TaskId] = set()
        self._notes: dict[TaskId, _AttemptNotes] = {}
        """What each attempt in flight learned that recording its outcome needs."""
        self._loops: list[asyncio.Task[None]] = []
        self._stopping = False
        self._hurry = asyncio.Event()
        self._registered = False
        self._starting = 0
        """Runs being stored already claimed by ``start_new``: their slots are taken."""
        self._claiming = 0
        """Slots a claim under way may fill."""
        self._handing_over: set[TaskId] = set()
        """Runs ended whose slot goes to the claim loop once their outcome is written."""
        self._work_while_full = False
        """Work may be waiting for a slot: the claim loop's last claim took every free slot,
        or it was woken while none was free."""
        self._no_starts = asyncio.Event()
        self._no_starts.set()
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
        """Register this process, recover abandoned tasks, then claim and run tasks until
        ``stop``."""
        self._stopping = False
        self._hurry = asyncio.Event()
        await self._register()
        await self._recover_safely()
        self._loops = [
            asyncio.create_task(self._claim_loop(), name="spark-worker-claim"),
            asyncio.create_task(self._lease_loop(), name="spark-worker-lease"),
            asyncio.create_task(self._watch_loop(), name="spark-worker-watch"),
            asyncio.create_task(self._recover_loop(), name="spark-worker-recover"),
        ]
        self._signals.offer_starts(self.start_new)

    async def stop(self, grace: float = 10.0) -> None:
        """Stop claiming; let runs in flight finish for up to ``grace`` seconds, then interrupt
        the rest (they are retried later if they have retries left)."""
        self._stopping = True
        self._signals.withdraw_starts(self.start_new)
        self._signals.work_added()
        await cancel_and_wait(self._loops)
        self._loops = []
        await self._no_starts.wait()  # a run being stored claimed is in flight once stored
        if self._inflight:
            await self._finish_inflight(grace)
        await cancel_and_wait(list(self._inflight.values()))
        if self._registered:
            with contextlib.suppress(SparkError):
                await self._nodes.unregister(self.owner)
            self._registered = False

    async def start_new(self, task: Task, target: RunTarget) -> Task | None:
        """Store the new ``task`` already claimed by this worker and start running it now
        with ``target`` (read as the run was asked for, so its first attempt need not read it
        again), when the worker has a free slot: one write, and no wait for the claim loop,
        which is what a lone run's latency is made of. Returns the task as stored
        (``pending`` when its workflow is at its limit: a worker claims it later), or
        ``None`` when declined (the caller stores it for any worker). The store's errors are
        the caller's, as for ``TaskRepository.add``, and ``StaleTargetError`` when the
        catalogue changed since ``target`` was read (``TaskQueue.add_claimed``).

        Declined when every slot is taken or promised (runs in flight or being started, a
        claim under way, ended runs whose slot goes to queued work) or when work was
        announced that the claim loop has not looked for: older work may be about to take
        the slot, and the new run would overtake it. Under load this spares the queue: on
        PostgreSQL at 16 concurrent runs, a run stored pending and then claimed took about
        two statements, a run stored claimed one. Once the store is asked, the run is stored
        and started even if the caller is cancelled meanwhile: a run stored claimed but not
        started would hold its lease with nobody running it."""
        taken = (len(self._inflight) + self._starting + self._claiming
                 + len(self._handing_over))
        if (self._stopping or not self._loops or taken >= self._concurrency
                or self._signals.work_pending):
            return None
        self._starting += 1
        self._no_starts.clear()
        return await asyncio.shield(asyncio.ensure_future(self._store_and_start(task, target)))

    async def _store_and_start(self, task: Task, target: RunTarget) -> Task:
        """``start_new``'s store and start, as one step its caller cannot cut in two."""
        try:
            stored = await self._queue.add_claimed(task, owner=self.owner,
                                                   lease_seconds=self._lease_seconds,
                                                   target=target)
        finally:
            self._starting -= 1
            if not self._starting:
                self._no_starts.set()
        if stored.status is TaskStatus.RUNNING:
            self._inflight[stored.id] = asyncio.create_task(
                self._execute(stored, target), name=f"spark-run-{stored.id}")
        else:
            self._signals.work_added()
        return stored

    def hurry(self) -> None:
        """End the grace period of a ``stop`` under way (or the next one): runs in flight are
        interrupted now instead of being waited for."""
        self._hurry.set()

    async def _finish_inflight(self, grace: float) -> None:
        """Wait until every run in flight has ended, ``grace`` seconds have passed or
        ``hurry`` was called, whichever comes first."""
        runs = asyncio.gather(*self._inflight.values(), return_exceptions=True)
        hurried = asyncio.ensure_future(self._hurry.wait())
        waiting: list[asyncio.Future[Any]] = [runs, hurried]
        try:
            await asyncio.wait(waiting, timeout=grace, return_when=asyncio.FIRST_COMPLETED)
        finally:
            hurried.cancel()

    async def run_task(self, task_id: TaskId) -> Task:
        """Run one task here until it is final, retries included, without claiming any other
        work (what the CLI does for `spark workflow run`). A task another process is running
        is waited for instead."""
        await self._register()
        renewing = asyncio.create_task(self._lease_loop(), name="spark-worker-lease")
        watching = asyncio.create_task(self._watch_loop(), name="spark-worker-watch")
        try:
            while True:
                task = await self._store.tasks.get(task_id)
                if task.status.is_final:
                    return task
                now = self._clock.now()
                retry_at = task.next_retry_at
                if task.status == TaskStatus.PENDING:
                    claimed = await self._queue.claim(
                        owner=self.owner, limit=1, lease_seconds=self._lease_seconds,
                        task_ids=[task_id],
                    )
                    if claimed:
                        run = asyncio.create_task(self._execute(claimed[0]))
                        self._inflight[task_id] = run
                        await run
                        continue
                if task.status == TaskStatus.PENDING and retry_at is not None and retry_at > now:
                    await self._clock.sleep(min((retry_at - now).total_seconds(), 1.0))
                else:  # running in another process, or it claimed the task first
                    await asyncio.sleep(STORE_POLL_SECONDS)
        finally:
            await cancel_and_wait([renewing, watching])

    async def recover_expired(self) -> list[Task]:
        """Mark tasks whose process died (a dead node, or a lease run out) interrupted, and
        queue their retries."""
        dead = await self._nodes.dead()
        recovered = []
        for task in await self._queue.expired(limit=RECOVERY_BATCH, owners=dead):
            if task.id in self._releasing:
                continue  # its outcome is here, waiting for the store: not abandoned
            outcome = self._failure(task, INTERRUPTED, transient=True)
            if await self._queue.recover(task.id, outcome, attempt=task.tries, owners=dead):
                logger.warning("Task %s was interrupted (its process stopped)", task.id)
                recovered.append(msgspec.structs.replace(task, **patch_fields(outcome)))
                self._announce(outcome.status, task.id)
                await self._count_for_schedule(task, outcome)
                await self._notify(task, outcome)
        return recovered

    async def _register(self) -> None:
        if not self._registered:
            await self._nodes.register(self.owner)
            self._registered = True

    async def _recover_safely(self) -> None:
        try:
            await self.recover_expired()
        except SparkError as exc:  # a store hiccup: the next lease tick tries again
            raise_if_cancelled()
            logger.warning("Recovering abandoned tasks failed: %s", exc)

    async def _claim_loop(self) -> None:
        while not self._stopping:
            free = self._concurrency - len(self._inflight) - self._starting
            if free > 0:
                self._claiming = free
                try:
                    claimed = await self._queue.claim(
                        owner=self.owner, limit=free, lease_seconds=self._lease_seconds
                    )
                except SparkError as exc:
                    raise_if_cancelled()
                    logger.warning("Claiming tasks failed: %s", exc)
                    claimed = []
                finally:
                    self._claiming = 0
                for task in claimed:
                    self._inflight[task.id] = asyncio.create_task(
                        self._execute(task), name=f"spark-run-{task.id}"
                    )
                if claimed and len(claimed) == free:
                    self._work_while_full = True  # every free slot taken: more may wait
                    continue
                self._work_while_full = False
            await self._signals.wait_for_work(self._wait_seconds())
            if self._concurrency - len(self._inflight) - self._starting <= 0:
                self._work_while_full = True

    def _wait_seconds(self) -> float:
        """How long the claim loop may wait for a hint: the feed's poll interval, or less
        when a jittered run created here becomes claimable sooner."""
        poll = self._store.wakeups.poll_seconds
        now = self._clock.now()
        due = self._signals.next_work_due(now)
        if due is None:
            return poll
        return min(poll, (due - now).total_seconds())

    async def _lease_loop(self) -> None:
        interval = self._lease_seconds / 3
        while not self._stopping:
            await asyncio.sleep(interval)
            if self._inflight or self._releasing:
                # Only runs already here when the renewal was asked for can be judged by its
                # answer: a run claimed or stored while it was under way (a claim committed
                # after the renewal read the leases) is missing from it, yet still ours.
                # Only they (and outcomes being written) are renewed: a lease of this worker
                # with no run behind it runs out and is recovered.
                asked = dict(self._inflight)
                try:
                    held = set(
                        await self._queue.renew(
                            owner=self.owner, lease_seconds=self._lease_seconds,
                            task_ids=[*asked, *self._releasing],
                        )
                    )
                except SparkError as exc:
                    raise_if_cancelled()
                    logger.warning("Renewing leases failed: %s", exc)
                else:
                    for task_id, run in asked.items():
                        if task_id not in held:
                            self._cancel_local(task_id, run)

    async def _recover_loop(self) -> None:
        """Every ``RECOVER_SECONDS``, take over the runs of processes known dead (at once, not
        after their lease) and of leases run out: two cheap reads when there is nothing."""
        while not self._stopping:
            await asyncio.sleep(RECOVER_SECONDS)
            await self._recover_safely()

    async def _watch_loop(self) -> None:
        """Notice within a second that a run here was cancelled (or taken over) elsewhere,
        even when the wake-up hint never arrives."""
        while not self._stopping:
            await asyncio.sleep(WATCH_SECONDS)
            running = {tid: run for tid, run in self._inflight.items() if not run.done()}
            if not running:
                continue
            try:
                held = set(await self._queue.held(owner=self.owner, task_ids=list(running)))
            except SparkError:
                raise_if_cancelled()
                continue
            for task_id, run in running.items():
                if task_id not in held:
                    self._cancel_local(task_id, run)

    def _cancel_local(self, task_id: TaskId, asked: "asyncio.Task[None] | None" = None) -> None:
        """Stop the run of ``task_id`` here; with ``asked``, only if that run is still the one
        in flight (a store's answer about an earlier attempt says nothing of a later one)."""
        run = self._inflight.get(task_id)
        if asked is not None and run is not asked:
            return
        if run is not None and not run.done():
            self._cancelled.add(task_id)
            run.cancel()

    async def _execute(self, task: Task, target: RunTarget | None = None) -> None:
        """Run one attempt and record its outcome; then wake the claim loop if the slot this
        run held may be wanted: the worker was full and its claim loop heard of work
        meanwhile (pending tasks may be waiting for a slot), the run's workflow has a limit
        (its next task may be claimable now), or the attempt ended abnormally. Otherwise a
        wake-up would only cost an empty claim."""
        wanted = True
        try:
            wanted = await self._attempt_and_record(task, target)
        finally:
            self._handing_over.discard(task.id)
            if wanted:
                self._signals.work_added()

    async def _attempt_and_record(self, task: Task, target: RunTarget | None) -> bool:
        """``_execute``'s attempt (with ``target`` when it was just read: see ``_attempt``);
        whether its slot may be wanted (see ``_execute``)."""
        self._metrics.worker_busy(len(self._inflight))
        started = self._clock.now()
        try:
            outcome = await self._attempt(task, target)
        except asyncio.CancelledError:
            seconds = (self._clock.now() - started).total_seconds()
            if task.id in self._cancelled:
                # cancelled by a user or taken over: the store already says so
                self._notes.pop(task.id, None)
                self._metrics.task_attempt_finished(outcome="cancelled",
                                                    duration_seconds=seconds)
                logger.info("Task %s stopped: cancelled, or taken over by another process",
                            task.id, extra=_task_fields(task))
                return True
            self._metrics.task_attempt_finished(outcome=INTERRUPTED, duration_seconds=seconds)
            outcome = self._failure(task, INTERRUPTED, transient=True)
            await self._release(task, outcome, patient=False)
            raise
        finally:
            notes = self._notes.get(task.id)
            full = len(self._inflight) + self._starting >= self._concurrency
            wanted = (full and self._work_while_full) or notes is None or notes.limited
            if wanted:
                self._handing_over.add(task.id)
            self._inflight.pop(task.id, None)
            self._cancelled.discard(task.id)
            self._metrics.worker_busy(len(self._inflight))
        self._metrics.task_attempt_finished(
            outcome=_attempt_outcome(outcome, notes),
            duration_seconds=(self._clock.now() - started).total_seconds(),
        )
        await self._release(task, outcome, patient=True)
        return wanted

    async def _release(self, task: Task, outcome: TaskOutcome, *, patient: bool) -> None:
        """Write the outcome; while the store is unreachable keep trying (the outcome is only
        in memory), unless shutting down (then the lease's expiry hands the task on)."""
        self._releasing.add(task.id)  # the lease may run out meanwhile: see recover_expired
        self._signals.writing_outcome(task.id)
        try:
            await self._record(task, outcome, patient=patient)
        finally:
            self._releasing.discard(task.id)
            self._notes.pop(task.id, None)
            self._signals.outcome_written(task.id)

    async def _record(self, task: Task, outcome: TaskOutcome, *, patient: bool) -> None:
        delay = 0.1
        while True:
            try:
                written = await self._queue.release(task, outcome, owner=self.owner)
            except StoreUnavailableError as exc:
                raise_if_cancelled()
                if not patient or self._stopping:
                    logger.warning("Could not record the outcome of task %s: %s", task.id, exc)
                    return
                logger.warning("Recording task %s failed, retrying: %s", task.id, exc)
                await asyncio.sleep(delay)
                delay = min(delay * 2, 5.0)
                continue
            if written is not None:
                _log_outcome(task, outcome)
                self._announce(written.status, task.id, written)
                await self._count_for_schedule(task, outcome)
                await self._notify(task, outcome)
            else:
                logger.warning(
                    "Task %s attempt %d was taken over; its late outcome is dropped",
                    task.id, task.tries,
                )
            return

    async def _count_for_schedule(self, task: Task, outcome: TaskOutcome) -> None:
        """Count a scheduled run's final ``failed`` or ``completed`` towards its schedule's
        ``pause_after_failures`` (here, where the final outcome is written, so the pause
        comes before the next fire). A store error is logged: the run's outcome stands."""
        final = outcome.status in (TaskStatus.FAILED, TaskStatus.COMPLETED)
        if task.schedule_id is None or not final:
            return
        counted = msgspec.structs.replace(task, error=outcome.error)
        try:
            note = await count_final_run(
                self._store.schedules, counted, failed=outcome.status == TaskStatus.FAILED,
                now=self._clock.now(),
            )
        except SparkError as exc:
            raise_if_cancelled()
            logger.warning("Counting task %s towards schedule %s failed: %s", task.id,
                           task.schedule_id, exc, extra=_task_fields(task))
            return
        if note is not None:
            logger.warning("Schedule %s paused: %s", task.schedule_id, note,
                           extra=_task_fields(task))
            self._signals.schedules_changed()

    async def _notify(self, task: Task, outcome: TaskOutcome) -> None:
        """Hand the notifier a ``failed`` or ``recovered`` event for a final outcome just
        written, when some webhook listens (deciding a recovery costs reads). A store error is
        logged: the run's outcome stands."""
        if self._notifier is None or not outcome.status.is_final:
            return
        notes = self._notes.get(task.id)
        if notes is not None and notes.read_workflow:  # read with the run's target
            webhook = notes.webhook
        else:  # recovered from another process, or the attempt never read its workflow
            try:
                webhook = (await self._store.workflows.get(task.workflow_id)).webhook_url
            except SparkError as exc:  # the global webhook still hears of it
                raise_if_cancelled()
                logger.warning("Reading the webhook of workflow %s failed: %s",
                               task.workflow_id, exc, extra=_task_fields(task))
                webhook = None
        if not self._notifier.listens(workflow_webhook=webhook):
            return
        final = msgspec.structs.replace(task, **patch_fields(outcome))
        try:
            event = await run_event(self._store.tasks, final)
        except SparkError as exc:
            raise_if_cancelled()
            logger.warning("Deciding the notification for task %s failed: %s", task.id, exc,
                           extra=_task_fields(task))
            return
        if event is not None:
            self._notifier.notify(event, workflow_webhook=webhook)

    def _announce(self, status: TaskStatus, task_id: TaskId,
                  written: Task | None = None) -> None:
        """Wake whoever waits: a final task's watchers (with the task as ``written`` when
        known, so a caller waiting for the run needs no read), else the claim loop."""
        if not status.is_final:
            self._signals.work_added()
        elif written is not None:
            self._signals.task_finished(written)
        else:
            self._signals.task_finished_id(task_id)

    async def _attempt(self, task: Task, target: RunTarget | None) -> TaskOutcome:
        """One attempt of ``task``: its workflow, source and key read now (or ``target``,
        read as the run was asked for, a moment ago), the source asked, the outcome made."""
        timeout = task.timeout or self._default_timeout
        try:
            if target is None:
                target = await self._store.workflows.run_target(task.workflow_id)
            workflow, source = target.workflow, target.source
            self._notes[task.id] = _AttemptNotes(
                read_workflow=True, webhook=workflow.webhook_url,
                limited=workflow.max_concurrency is not None)
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
            if logger.isEnabledFor(logging.INFO):  # its fields are not built otherwise
                logger.info(
                    "Task %s started (attempt %d): workflow %s, schedule %s, source type %s",
                    task.id, task.tries, workflow.id, task.schedule_id or "-",
                    source.source_type, extra=_task_fields(task, source_type=source.source_type),
                )
            client = self._sources.connect_sealed(source, target.sealed_key)
            outcome = None
            if was_interrupted(task) and isinstance(client, RunHistory):
                outcome = await self._reconcile(task, client, request, timeout)
            if outcome is None:
                try:
                    # asyncio.timeout, not wait_for: no task of its own, one loop pass less.
                    async with asyncio.timeout(timeout):
                        result = await client.run(request)
                except TimeoutError as exc:
                    raise RunTimeoutError(f"Run timed out after {timeout:g} s") from exc
                outcome = self._completed(result.output_text, result.raw)
        except NotFoundError as exc:
            return self._failure(task, exc.message, transient=False)
        except StoreUnavailableError as exc:
            return self._failure(task, exc.message, transient=True)
        except SourceError as exc:
            return self._failure(task, exc.message, transient=exc.transient)
        except SparkError as exc:
            return self._failure(task, exc.message, transient=False)
        except Exception as exc:
            raise_if_cancelled()
            logger.exception("Task %s failed with an unexpected error", task.id)
            return self._failure(task, f"Internal error: {type(exc).__name__}", transient=False)
        return outcome

    def _completed(self, output_text: str | None, raw: Any) -> TaskOutcome:
        now = self._clock.now()
        return TaskOutcome(
            status=TaskStatus.COMPLETED,
            output_data=output_text,
            output_raw=raw,
            finished_at=now,
            updated_at=now,
        )

    async def _reconcile(
        self, task: Task, client: RunHistory, request: RunRequest, timeout: float
    ) -> TaskOutcome | None:
        """The outcome of an interrupted run the source finished anyway; a retry (still marked
        interrupted) when the source cannot be asked now; ``None`` to run it again."""
        try:
            recalled = await self._recall(task, client, request, timeout)
        except SourceError as exc:
            if exc.transient:
                return self._failure(
                    task, f"{INTERRUPTED}; could not ask the source whether the run finished: "
                    f"{exc.message}", transient=True)
            logger.warning("Task %s: the source cannot say whether the interrupted run "
                           "finished (%s); running it again", task.id, exc.message,
                           extra=_task_fields(task))
            return None
        if recalled is None:
            return None
        logger.info("Task %s: the source had finished the interrupted run; its answer is "
                    "recorded instead of running the flow again", task.id,
                    extra=_task_fields(task))
        self._notes.setdefault(task.id, _AttemptNotes()).reconciled = True
        return self._completed(recalled.output_text,
                               {"reconciled": True, "source_record": recalled.raw})

    async def _recall(
        self, task: Task, client: RunHistory, request: RunRequest, timeout: float
    ) -> RunResult | None:
        """The answer of an interrupted run that the source finished anyway, waiting while the
        source is still running it (up to the run's timeout); ``None`` when it must run again.

        The session is the task's own unless the caller chose one; a chosen session may hold
        other runs, so then only runs begun since the task was created count.
        """
        since = None if task.session_id is None else task.created_at - CLOCK_ALLOWANCE
        give_up = self._clock.now() + timedelta(seconds=timeout)
        while True:
            past = await client.find_run(request, since=since)
            if past is None or past.failed:
                return None
            if past.result is not None:
                return past.result
            if past.started_at is not None:  # it cannot still be running past its timeout
                give_up = min(give_up, past.started_at + timedelta(seconds=timeout)
                              + CLOCK_ALLOWANCE)
            now = self._clock.now()
            if now >= give_up:
                logger.warning("Task %s: the source began the interrupted run but has not "
                               "finished it within the timeout; running it again", task.id,
                               extra=_task_fields(task))
                return None
            await self._clock.sleep(min(RECALL_POLL_SECONDS, (give_up - now).total_seconds()))

    def _failure(self, task: Task, error: str, *, transient: bool) -> TaskOutcome:
        now = self._clock.now()
        if transient and task.tries <= task.max_retries:
            delay = self._retry.delay(task.tries, self._rng)
            return TaskOutcome(
                status=TaskStatus.PENDING,
                error=error,
                next_retry_at=now + timedelta(seconds=delay),
                updated_at=now,
            )
        return TaskOutcome(
            status=TaskStatus.FAILED, error=error, finished_at=now, updated_at=now
        )


def was_interrupted(task: Task) -> bool:
    """True when the task's last attempt ended with its process (or its call) cut off, so the
    source may have finished the run without Spark hearing the answer."""
    return task.error is not None and task.error.split(";", 1)[0] == INTERRUPTED


class _AttemptNotes(msgspec.Struct, kw_only=True):
    """What an attempt learned on the way that recording its outcome needs: the workflow's own
    webhook and whether it has a concurrency limit (once its run target was read), and whether
    the answer came from the source's history instead of a run."""

    read_workflow: bool = False
    webhook: str | None = None
    limited: bool = False
    """The workflow has a ``max_concurrency``."""
    reconciled: bool = False


def _attempt_outcome(outcome: TaskOutcome, notes: _AttemptNotes | None) -> str:
    """The ``outcome`` label of an attempt for metrics."""
    if outcome.status == TaskStatus.PENDING:
        return "retried"
    if notes is not None and notes.reconciled:
        return "reconciled"
    return str(outcome.status)


def _task_fields(task: Task, **more: object) -> dict[str, object]:
    return log_fields(task_id=task.id, workflow_id=task.workflow_id,
                      schedule_id=task.schedule_id, **more)


def _log_outcome(task: Task, outcome: TaskOutcome) -> None:
    """One line per recorded attempt: INFO when it finished or will be retried, WARNING when
    it failed for good. Nothing is formatted when that level is not logged."""
    failed = outcome.status not in (TaskStatus.COMPLETED, TaskStatus.PENDING)
    if not logger.isEnabledFor(logging.WARNING if failed else logging.INFO):
        return
    where = f"workflow {task.workflow_id}, schedule {task.schedule_id or '-'}"
    extra = _task_fields(task, status=outcome.status)
    if outcome.status == TaskStatus.COMPLETED:
        logger.info("Task %s completed (attempt %d): %s", task.id, task.tries, where,
                    extra=extra)
    elif outcome.status == TaskStatus.PENDING:
        logger.info("Task %s will be retried at %s after attempt %d failed (%s): %s", task.id,
                    outcome.next_retry_at, task.tries, outcome.error, where, extra=extra)
    else:
        logger.warning("Task %s %s after %d attempt(s) (%s): %s", task.id, outcome.status,
                       task.tries, outcome.error, where, extra=extra)


def node_identity() -> str:
    """A name for this process, unique per start: host, pid and a random part."""
    return f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:12]}"


@contextlib.asynccontextmanager
async def running(worker: Worker, *, grace: float = 10.0) -> AsyncIterator[Worker]:
    """Run ``worker`` for the duration of an ``async with`` block."""
    await worker.start()
    try:
        yield worker
    finally:
        await worker.stop(grace)
