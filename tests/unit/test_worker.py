"""The worker: every run goes through it, bounded, retried, cancellable and crash-safe."""

import asyncio
import logging
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import pytest

from spark_core import worker as worker_module
from spark_core.errors import NotFoundError, RemoteRunError, SourceUnavailableError
from spark_core.facade import Spark
from spark_core.models import RunResult, Task, TaskId, TaskStatus, Workflow
from spark_core.ports import RunTarget, SourcePatch, TaskFilter, TaskOutcome, WakeUp, WakeUpKind
from spark_core.services import tasks as tasks_module
from tests.unit.conftest import World, build_world, synced_echo


async def _until(predicate: Callable[[], Awaitable[bool]], timeout: float = 5.0) -> None:
    """Wait (in real time, bounded) until the awaited ``predicate()`` holds."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while not await predicate():
        assert loop.time() < deadline, "condition not reached in time"
        await asyncio.sleep(0.01)


def _status_is(world: World, task_id: TaskId, status: TaskStatus) -> Callable[[], Awaitable[bool]]:
    """A predicate for ``_until``: the stored task has ``status``."""
    async def check() -> bool:
        return (await world.store.tasks.get(task_id)).status == status
    return check


def _idle(world: World) -> Callable[[], Awaitable[bool]]:
    """A predicate for ``_until``: the worker has no run in flight."""
    async def check() -> bool:
        return world.spark.worker.inflight == 0
    return check


@pytest.fixture
async def running_spark(world: World) -> AsyncIterator[Spark]:
    """The whole facade started without the scheduler: the worker plus the relay of the
    store's wake-ups (hints from other processes) and the health watch."""
    await world.spark.start(scheduler=False)
    yield world.spark
    await world.spark.stop(grace=1)


async def test_a_run_returns_the_answer_text_and_raw_response(
    world: World, echo: Workflow, running_worker: object
) -> None:
    """Waiting on a run gives the completed task with its answer, raw response and timing."""
    task = await world.spark.tasks.run(echo.id, input_data="hello", wait=True)
    assert task.status == TaskStatus.COMPLETED
    assert task.output_data == "hello"
    assert task.output_raw == {"echo": "hello"}
    assert task.tries == 1
    assert task.started_at is not None
    assert task.finished_at is not None


def _record_calls(monkeypatch: pytest.MonkeyPatch, target: object, method: str) -> list[Any]:
    """The first argument of every call of ``target.method`` from now on (each call goes
    through to the method)."""
    calls: list[Any] = []
    original = getattr(target, method)

    async def recording(first: Any, *args: Any, **kwargs: Any) -> Any:
        calls.append(first)
        return await original(first, *args, **kwargs)

    monkeypatch.setattr(target, method, recording)
    return calls


async def test_a_run_waited_for_is_answered_as_stored_without_reading_it_back(
    world: World, echo: Workflow, running_worker: object, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The worker hands the finished task, as the store wrote it, to the caller waiting for
    it: the answer is what a read gives afterwards, and no read of the task was needed."""
    reads = _record_calls(monkeypatch, world.store.tasks, "get")
    task = await world.spark.tasks.run(echo.id, input_data="hello", wait=True)
    assert reads == []
    assert task == await world.store.tasks.get(task.id)
    assert task.status == TaskStatus.COMPLETED


async def test_a_run_started_where_it_is_asked_reads_its_workflow_and_source_once(
    world: World, echo: Workflow, running_spark: Spark, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Asked by its remote flow id, a run started at once by this process's worker uses the
    workflow and source read as it was asked for: one read of them, not one more for the
    attempt. A retry of it reads them again, as they are then."""
    reads = _record_calls(monkeypatch, world.store.workflows, "run_target")
    await asyncio.sleep(0.05)  # the claim loop has looked for the work hinted at start
    task = await world.spark.tasks.run(echo.remote_flow_id, input_data="hello", wait=True)
    assert (task.status, task.output_data, task.workflow_id) == (
        TaskStatus.COMPLETED, "hello", echo.id)
    assert reads == [echo.remote_flow_id]

    reads.clear()
    world.remote.outcomes = [SourceUnavailableError("boom", status=503),
                             RunResult(output_text="ok", raw={})]
    retried = asyncio.ensure_future(world.spark.tasks.run(echo.id, input_data="x"))

    async def retry_planned() -> bool:
        found = await world.store.tasks.list(TaskFilter(), limit=10, offset=0)
        return any(task.next_retry_at is not None for task in found.items)

    await _until(retry_planned)
    world.clock.advance(2)
    world.store.wakeups.publish(WakeUp(kind=WakeUpKind.WORK))
    done = await asyncio.wait_for(retried, 5)
    assert (done.status, done.tries, done.output_data) == (TaskStatus.COMPLETED, 2, "ok")
    assert reads == [echo.id, echo.id]


def _kept_target_then_current(world: World, monkeypatch: pytest.MonkeyPatch,
                              kept: RunTarget) -> list[bool]:
    """Make the store answer ``kept`` to every ``run_target(remembered=True)`` (a target this
    process read before the catalogue changed) and read the others; returns each call's
    ``remembered``."""
    asked: list[bool] = []
    current = world.store.workflows.run_target

    async def run_target(key: str, *, remembered: bool = False) -> RunTarget:
        asked.append(remembered)
        return kept if remembered else await current(key)

    monkeypatch.setattr(world.store.workflows, "run_target", run_target)
    return asked


async def test_a_run_whose_kept_target_is_out_of_date_runs_as_the_catalogue_is_now(
    world: World, echo: Workflow, running_spark: Spark, monkeypatch: pytest.MonkeyPatch
) -> None:
    """This process kept a workflow's target, then its source moved to another address
    (changed by another node, say): the run's write refuses the kept target, the target is
    read again, and one task is stored and run, at the source's new address."""
    kept = await world.store.workflows.run_target(echo.id)
    moved = world.connector.add_remote("http://moved.local", api_key="remote-key")
    moved.add_flow("echo", "Echo")
    await world.store.sources.update(echo.source_id, SourcePatch(
        updated_at=world.clock.now(), url="http://moved.local"))
    asked = _kept_target_then_current(world, monkeypatch, kept)
    await asyncio.sleep(0.05)  # the claim loop has looked for the work hinted at start
    task = await world.spark.tasks.run(echo.id, input_data="hi")
    assert (task.status, task.output_data) == (TaskStatus.COMPLETED, "hi")
    assert (len(world.remote.runs), len(moved.runs)) == (0, 1)
    assert asked == [True, False]
    page = await world.store.tasks.list(TaskFilter(), limit=5, offset=0)
    assert [stored.id for stored in page.items] == [task.id]


async def test_a_run_declined_by_the_worker_is_stored_with_its_workflow_read_now(
    world: World, echo: Workflow, monkeypatch: pytest.MonkeyPatch
) -> None:
    """With no worker here to start it, a run asked with a kept target (unchecked) is stored
    pending for any worker with its workflow read afresh: a workflow deleted since is not
    found, and nothing is stored."""
    kept = await world.store.workflows.run_target(echo.id)
    asked = _kept_target_then_current(world, monkeypatch, kept)
    await world.store.workflows.delete(echo.id)
    with pytest.raises(NotFoundError):
        await world.spark.tasks.run(echo.id, input_data="lost?")
    assert asked == [True, False]
    assert (await world.store.tasks.list(TaskFilter(), limit=5, offset=0)).items == []


async def test_a_queued_run_reads_its_workflow_but_not_its_source_and_key(
    world: World, echo: Workflow, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A task only queued (``create``, or ``run`` without waiting) is checked against its
    workflow; its source and sealed key are read by the worker that claims it, not here."""
    targets = _record_calls(monkeypatch, world.store.workflows, "run_target")
    created = await world.spark.tasks.create(echo.remote_flow_id, input_data="a")
    queued = await world.spark.tasks.run(echo.id, input_data="b", wait=False)
    assert (created.workflow_id, queued.workflow_id) == (echo.id, echo.id)
    assert (created.status, queued.status) == (TaskStatus.PENDING, TaskStatus.PENDING)
    assert targets == []


async def test_the_stores_finish_hint_heard_before_the_outcome_write_returns_costs_no_read(
    world: World, echo: Workflow, running_spark: Spark, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The store's hint that a run finished can reach this process before the worker's own
    write of that outcome has returned (PostgreSQL's NOTIFY comes on another connection): the
    caller waiting for the run still gets the task as written by the worker, without a read
    of the store, and is answered once."""
    release = world.store.queue.release
    heard: list[WakeUp] = []

    async def slow_answer(*args: Any, **kwargs: Any) -> Task | None:
        written = await release(*args, **kwargs)  # the fake publishes FINISHED as it writes
        heard.extend(world.store.wakeups.published)
        await asyncio.sleep(0.05)  # the hint is delivered meanwhile
        return written

    monkeypatch.setattr(world.store.queue, "release", slow_answer)
    reads = _record_calls(monkeypatch, world.store.tasks, "get")
    task = await world.spark.tasks.run(echo.id, input_data="hello", wait=True)
    assert task.status == TaskStatus.COMPLETED
    assert WakeUp(kind=WakeUpKind.FINISHED, id=task.id) in heard
    assert reads == []


async def test_a_finish_hint_held_while_the_outcome_write_is_refused_wakes_the_caller(
    world: World, echo: Workflow, running_spark: Spark, monkeypatch: pytest.MonkeyPatch
) -> None:
    """When the worker's outcome write is refused (the run was taken over and finished by
    another process, whose hint arrived meanwhile), the caller waiting for the run is woken
    by that hint as soon as the write ends and reads the task as the store has it: it does
    not wait for its next poll of the store."""
    release = world.store.queue.release

    async def refused(*args: Any, **kwargs: Any) -> Task | None:
        await release(*args, **kwargs)  # stands for the other process's write, and its hint
        await asyncio.sleep(0.05)  # the hint is delivered meanwhile
        return None  # this write was refused

    monkeypatch.setattr(world.store.queue, "release", refused)
    monkeypatch.setattr(tasks_module, "STORE_POLL_SECONDS", 30.0)
    task = await asyncio.wait_for(
        world.spark.tasks.run(echo.id, input_data="hello", wait=True), 5)
    assert task.status == TaskStatus.COMPLETED
    assert task == await world.store.tasks.get(task.id)


async def test_the_task_id_is_sent_as_session_id_unless_given(
    world: World, echo: Workflow, running_worker: object
) -> None:
    """Runs do not share one remote conversation by accident."""
    first = await world.spark.tasks.run(echo.id, input_data="a")
    await world.spark.tasks.run(echo.id, input_data="b", session_id="mine")
    assert [run.session_id for run in world.remote.runs] == [first.id, "mine"]


async def test_a_transient_failure_is_retried_on_the_same_task(
    world: World, echo: Workflow, running_spark: Spark
) -> None:
    """A 5xx-like failure schedules a retry with backoff; the same row then completes."""
    world.remote.outcomes = [SourceUnavailableError("boom", status=503),
                             RunResult(output_text="ok", raw={})]
    task = await world.spark.tasks.create(echo.id, input_data="x", max_retries=2)

    async def retry_planned() -> bool:
        return (await world.store.tasks.get(task.id)).next_retry_at is not None

    await _until(retry_planned)
    waiting = await world.store.tasks.get(task.id)
    assert waiting.status == TaskStatus.PENDING
    assert waiting.error == "boom"
    delay = (waiting.next_retry_at - world.clock.now()).total_seconds()  # type: ignore[operator]
    assert 0.5 <= delay <= 1.0
    world.clock.advance(2)
    world.store.wakeups.publish(WakeUp(kind=WakeUpKind.WORK))
    done = await world.spark.tasks.wait(task.id, timeout=5)
    assert (done.id, done.status, done.tries, done.output_data) == (
        task.id, TaskStatus.COMPLETED, 2, "ok")
    assert done.error is None


async def test_a_non_transient_failure_fails_at_once(
    world: World, echo: Workflow, running_worker: object
) -> None:
    """A 4xx-like failure is not retried."""
    world.remote.outcomes = [RemoteRunError("bad request", status=400)]
    task = await world.spark.tasks.run(echo.id, max_retries=3)
    assert (task.status, task.tries, task.error) == (TaskStatus.FAILED, 1, "bad request")


async def test_retries_stop_at_max_retries_with_the_last_error(
    world: World, echo: Workflow, running_worker: object
) -> None:
    """With no retries left the task fails and keeps the reason."""
    world.remote.outcomes = [SourceUnavailableError("down", status=502)]
    task = await world.spark.tasks.run(echo.id, max_retries=0)
    assert (task.status, task.tries, task.error) == (TaskStatus.FAILED, 1, "down")


async def test_a_slow_run_times_out_as_a_failed_task(
    world: World, echo: Workflow, running_worker: object
) -> None:
    """A run longer than its timeout fails with a message that says so."""
    world.remote.delay = 1.0
    task = await world.spark.tasks.run(echo.id, timeout=0.05, max_retries=0)
    assert task.status == TaskStatus.FAILED
    assert task.error == "Run timed out after 0.05 s"


async def test_no_more_runs_than_the_concurrency_limit_at_once() -> None:
    """With four slots, four of ten runs are in flight and the rest wait pending."""
    world = build_world(concurrency=4)
    echo = await synced_echo(world)
    world.remote.release = asyncio.Event()
    await world.spark.worker.start()
    try:
        tasks = [await world.spark.tasks.create(echo.id, input_data=str(n)) for n in range(10)]

        async def four_running() -> bool:
            return len(world.remote.runs) == 4

        await _until(four_running)
        await asyncio.sleep(0.1)
        assert len(world.remote.runs) == 4
        world.remote.release.set()
        finished = [await world.spark.tasks.wait(t.id, timeout=5) for t in tasks]
        assert {t.status for t in finished} == {TaskStatus.COMPLETED}
    finally:
        await world.spark.worker.stop(grace=1)


async def test_cancelling_a_running_task_abandons_the_remote_call(
    world: World, echo: Workflow, running_worker: object
) -> None:
    """A cancelled run ends `cancelled` and the worker does not overwrite it later."""
    world.remote.release = asyncio.Event()
    task = await world.spark.tasks.create(echo.id)
    await _until(_status_is(world, task.id, TaskStatus.RUNNING))
    cancelled = await world.spark.tasks.cancel(task.id)
    assert cancelled.status == TaskStatus.CANCELLED
    world.remote.release.set()
    await asyncio.sleep(0.1)
    assert (await world.store.tasks.get(task.id)).status == TaskStatus.CANCELLED
    assert world.spark.worker.inflight == 0


async def test_a_cancel_hint_from_another_process_ends_the_local_run(
    world: World, echo: Workflow, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A task cancelled in the store by another process stops here when its CANCEL wake-up
    arrives, without waiting for the held-check (turned off here)."""
    monkeypatch.setattr(worker_module, "WATCH_SECONDS", 3600.0)
    world.remote.release = asyncio.Event()
    await world.spark.start(scheduler=False)
    try:
        task = await world.spark.tasks.create(echo.id)
        await _until(_status_is(world, task.id, TaskStatus.RUNNING))
        world.store.wakeups.muted = True  # the other process's hint is still on its way
        await world.store.tasks.cancel(task.id, now=world.clock.now())
        world.store.wakeups.muted = False
        await asyncio.sleep(0.1)
        assert world.spark.worker.inflight == 1
        world.store.wakeups.publish(WakeUp(kind=WakeUpKind.CANCEL, id=task.id))
        await _until(_idle(world), timeout=0.5)
        world.remote.release.set()
        await asyncio.sleep(0.05)
        stored = await world.store.tasks.get(task.id)
        assert (stored.status, stored.output_data) == (TaskStatus.CANCELLED, None)
    finally:
        await world.spark.stop(grace=1)


async def test_a_cancel_whose_hint_is_lost_still_ends_the_local_run_within_a_second(
    world: World, echo: Workflow, running_spark: Spark
) -> None:
    """With no wake-up at all, the worker's held-check (every half second) notices that the
    task is no longer its own and abandons the remote call."""
    world.remote.release = asyncio.Event()
    task = await world.spark.tasks.create(echo.id)
    await _until(_status_is(world, task.id, TaskStatus.RUNNING))
    world.store.wakeups.muted = True
    await world.store.tasks.cancel(task.id, now=world.clock.now())
    await _until(_idle(world), timeout=1.2)
    world.remote.release.set()
    await asyncio.sleep(0.05)
    assert (await world.store.tasks.get(task.id)).status == TaskStatus.CANCELLED


async def test_stopping_lets_runs_finish_within_the_grace_period(
    world: World, echo: Workflow
) -> None:
    """A graceful stop waits for a run that finishes in time."""
    world.remote.delay = 0.1
    await world.spark.worker.start()
    task = await world.spark.tasks.create(echo.id)
    await _until(_status_is(world, task.id, TaskStatus.RUNNING))
    await world.spark.worker.stop(grace=5)
    assert (await world.store.tasks.get(task.id)).status == TaskStatus.COMPLETED


async def test_stopping_interrupts_runs_past_the_grace_period(
    world: World, echo: Workflow
) -> None:
    """Runs still going after the grace period are interrupted and queued for a retry."""
    world.remote.release = asyncio.Event()
    await world.spark.worker.start()
    task = await world.spark.tasks.create(echo.id, max_retries=1)
    last = await world.spark.tasks.create(echo.id, max_retries=0)

    async def both_running() -> bool:
        return len(world.remote.runs) == 2

    await _until(both_running)
    await world.spark.worker.stop(grace=0.05)
    retried = await world.store.tasks.get(task.id)
    failed = await world.store.tasks.get(last.id)
    assert (retried.status, retried.error) == (TaskStatus.PENDING, "interrupted")
    assert (failed.status, failed.error) == (TaskStatus.FAILED, "interrupted")


async def _crashed_run(world: World, workflow: Workflow, *, max_retries: int,
                       owner: str = "dead-process") -> Task:
    """A task claimed by a process that then died: running under a lease nobody renews."""
    task = await world.spark.tasks.create(workflow.id, max_retries=max_retries)
    [claimed] = await world.store.queue.claim(owner=owner, limit=1, lease_seconds=30)
    assert claimed.id == task.id
    return claimed


async def test_a_run_whose_process_died_is_marked_interrupted_and_retried(
    world: World, echo: Workflow
) -> None:
    """After its lease expires, another worker marks the run interrupted and retries it."""
    task = await _crashed_run(world, echo, max_retries=1)
    assert await world.spark.worker.recover_expired() == []  # lease still valid
    world.clock.advance(31)
    [recovered] = await world.spark.worker.recover_expired()
    assert (recovered.status, recovered.error) == (TaskStatus.PENDING, "interrupted")
    world.clock.advance(5)
    await world.spark.worker.start()
    try:
        done = await world.spark.tasks.wait(task.id, timeout=5)
    finally:
        await world.spark.worker.stop(grace=1)
    assert (done.status, done.tries, done.output_data) == (TaskStatus.COMPLETED, 2, "")


async def test_a_died_run_without_retries_left_fails_as_interrupted(
    world: World, echo: Workflow
) -> None:
    """No task stays `running` forever: without retries it ends `failed`/`interrupted`."""
    task = await _crashed_run(world, echo, max_retries=0)
    world.clock.advance(31)
    await world.spark.worker.recover_expired()
    stored = await world.store.tasks.get(task.id)
    assert (stored.status, stored.error) == (TaskStatus.FAILED, "interrupted")
    assert stored.finished_at is not None


async def test_a_run_of_a_dead_process_is_recovered_at_start_without_waiting_for_its_lease(
    world: World, echo: Workflow
) -> None:
    """When the node registry says the owner is gone, the worker interrupts and retries its
    run as soon as it starts, though the lease still has half a minute to go."""
    task = await _crashed_run(world, echo, max_retries=1, owner="gone-node")
    world.store.nodes.mark_dead("gone-node")
    await world.spark.worker.start()
    try:
        recovered = await world.store.tasks.get(task.id)
        assert (recovered.status, recovered.error) == (TaskStatus.PENDING, "interrupted")
        world.clock.advance(2)  # past the retry backoff, still well inside the old lease
        world.store.wakeups.publish(WakeUp(kind=WakeUpKind.WORK))
        done = await world.spark.tasks.wait(task.id, timeout=5)
    finally:
        await world.spark.worker.stop(grace=1)
    assert (done.status, done.tries) == (TaskStatus.COMPLETED, 2)


async def test_a_run_of_a_live_process_is_left_alone_until_its_lease_expires(
    world: World, echo: Workflow
) -> None:
    """A process merely slow (not reported dead) keeps its run while the lease holds."""
    task = await _crashed_run(world, echo, max_retries=1, owner="slow-node")
    await world.store.nodes.register("slow-node")
    await world.spark.worker.start()
    try:
        await asyncio.sleep(0.05)
        stored = await world.store.tasks.get(task.id)
        assert (stored.status, stored.error) == (TaskStatus.RUNNING, None)
    finally:
        await world.spark.worker.stop(grace=1)


async def test_the_outcome_of_a_run_is_kept_while_the_store_is_unavailable(
    world: World, echo: Workflow, running_worker: object
) -> None:
    """A run that finishes while the database is gone is not lost: the worker keeps the
    outcome and writes it once the database answers again."""
    world.remote.release = asyncio.Event()
    task = await world.spark.tasks.create(echo.id, input_data="kept")
    await _until(_status_is(world, task.id, TaskStatus.RUNNING))
    world.store.broken = True
    world.remote.release.set()
    await _until(_idle(world))
    await asyncio.sleep(0.3)  # a few failed writes
    world.store.broken = False
    await _until(_status_is(world, task.id, TaskStatus.COMPLETED), timeout=3)
    stored = await world.store.tasks.get(task.id)
    assert (stored.output_data, stored.tries, stored.error) == ("kept", 1, None)


async def test_an_outcome_held_through_an_outage_longer_than_the_lease_is_not_recovered_here(
    world: World, echo: Workflow, running_worker: object
) -> None:
    """When the outage outlasts the lease, this worker's own recovery pass (its lease loop)
    does not mark interrupted, and run again, the task whose answer it still holds: the answer
    is written once the database is back."""
    world.remote.release = asyncio.Event()
    task = await world.spark.tasks.create(echo.id, input_data="held")
    await _until(_status_is(world, task.id, TaskStatus.RUNNING))
    world.store.broken = True
    world.remote.release.set()
    await _until(_idle(world))
    world.clock.advance(31)  # the lease ran out during the outage
    world.store.broken = False
    assert await world.spark.worker.recover_expired() == []
    await _until(_status_is(world, task.id, TaskStatus.COMPLETED), timeout=3)
    stored = await world.store.tasks.get(task.id)
    assert (stored.output_data, stored.tries) == ("held", 1)
    assert len(world.remote.runs) == 1


async def test_a_late_outcome_of_a_run_taken_over_elsewhere_is_dropped(
    world: World, echo: Workflow, monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    """A run that stalled past its lease while another node recovered and re-claimed the task
    cannot write its answer over the new attempt: the release is fenced by owner and attempt."""
    monkeypatch.setattr(worker_module, "WATCH_SECONDS", 3600.0)  # the stall: no held-check
    world.remote.release = asyncio.Event()
    await world.spark.worker.start()
    try:
        task = await world.spark.tasks.create(echo.id, input_data="late")
        await _until(_status_is(world, task.id, TaskStatus.RUNNING))
        world.clock.advance(31)
        [expired] = await world.store.queue.expired(limit=10)
        interrupted = TaskOutcome(status=TaskStatus.PENDING, error="interrupted",
                                  updated_at=world.clock.now())
        assert await world.store.queue.recover(expired.id, interrupted, attempt=1)
        [again] = await world.store.queue.claim(owner="other-node", limit=1, lease_seconds=30)
        assert (again.id, again.tries) == (task.id, 2)
        with caplog.at_level(logging.WARNING, logger="spark_core.worker"):
            world.remote.release.set()
            await _until(_idle(world))
        stored = await world.store.tasks.get(task.id)
        assert (stored.status, stored.tries, stored.output_data) == (
            TaskStatus.RUNNING, 2, None)
        assert "late outcome is dropped" in caplog.text
        done = TaskOutcome(status=TaskStatus.COMPLETED, output_data="new",
                           finished_at=world.clock.now(), updated_at=world.clock.now())
        assert await world.store.queue.release(again, done, owner="other-node")
    finally:
        await world.spark.worker.stop(grace=1)


async def test_running_one_task_here_leaves_other_queued_work_alone(
    world: World, echo: Workflow
) -> None:
    """`run_task` (the CLI's in-process run) runs its own task only, retries included."""
    other = await world.spark.tasks.create(echo.id, input_data="someone else's")
    world.remote.outcomes = [SourceUnavailableError("flaky", status=503),
                             RunResult(output_text="mine", raw={})]
    mine = await world.spark.tasks.create(echo.id, input_data="mine", max_retries=1)
    running = asyncio.create_task(world.spark.worker.run_task(mine.id))

    async def retry_planned() -> bool:
        return (await world.store.tasks.get(mine.id)).next_retry_at is not None

    await _until(retry_planned)
    world.clock.advance(5)
    done = await asyncio.wait_for(running, 5)
    assert (done.status, done.tries, done.output_data) == (TaskStatus.COMPLETED, 2, "mine")
    assert (await world.store.tasks.get(other.id)).status == TaskStatus.PENDING
    assert [run.input_value for run in world.remote.runs] == ["mine", "mine"]


def _record_adds(world: World) -> list[TaskId]:
    """Ids of the tasks stored pending through ``TaskRepository.add`` from now on."""
    added: list[TaskId] = []
    add = world.store.tasks.add

    async def recording(task: Task) -> Task:
        added.append(task.id)
        return await add(task)

    world.store.tasks.add = recording  # type: ignore[method-assign]
    return added


def _record_claims(world: World) -> list[int]:
    """The limits of the claims made through ``TaskQueue.claim`` from now on."""
    limits: list[int] = []
    claim = world.store.queue.claim

    async def recording(**kwargs: Any) -> list[Task]:
        limits.append(kwargs["limit"])
        return await claim(**kwargs)

    world.store.queue.claim = recording  # type: ignore[method-assign]
    return limits


async def test_a_run_waited_for_on_an_idle_worker_starts_without_queueing(
    world: World, echo: Workflow, running_worker: object
) -> None:
    """An idle worker stores a run it is asked to wait for already running and starts it at
    once: the task is never pending, and it finishes in one attempt."""
    added = _record_adds(world)
    task = await world.spark.tasks.run(echo.id, input_data="now", wait=True)
    assert (task.status, task.output_data, task.tries) == (TaskStatus.COMPLETED, "now", 1)
    assert [attempt.attempt for attempt in task.attempts] == [1]
    assert added == []


async def test_only_a_task_another_node_may_end_is_watched_in_the_store(
    world: World, echo: Workflow, running_worker: object, monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The database hints a task's end to every node only for a task a process watches: a
    run this process's worker started is announced by that worker and not watched; a task
    waited for by id is watched before it is read."""
    monkeypatch.setattr(tasks_module, "STORE_POLL_SECONDS", 30.0)  # no first poll meanwhile
    started = await world.spark.tasks.run(echo.id, input_data="here", wait=True)
    assert started.status is TaskStatus.COMPLETED
    assert world.store.watched_ends == []
    queued = await world.spark.tasks.run(echo.id, input_data="later", wait=False)
    finished = await world.spark.tasks.wait(queued.id, timeout=5)
    assert finished.status is TaskStatus.COMPLETED
    assert world.store.watched_ends == [queued.id]


async def test_runs_queued_for_any_worker_are_watched_and_runs_started_here_are_not(
    world: World, echo: Workflow, running_worker: object, monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Runs waited for that the busy worker here could not start are stored pending, for
    any node's worker: each is watched before its waiter reads it; the four started here
    are not."""
    monkeypatch.setattr(tasks_module, "STORE_POLL_SECONDS", 30.0)  # no first poll meanwhile
    world.remote.release = asyncio.Event()
    added = _record_adds(world)
    runs = [asyncio.create_task(world.spark.tasks.run(echo.id, input_data=f"n{i}"))
            for i in range(6)]
    await _until(lambda: _true(len(added) == 2 and len(world.remote.runs) == 4))
    world.remote.release.set()
    finished = await asyncio.gather(*runs)
    assert [task.status for task in finished] == [TaskStatus.COMPLETED] * 6
    assert sorted(world.store.watched_ends) == sorted(added)


async def test_a_run_started_here_and_retried_is_watched_at_its_waiters_first_poll(
    world: World, echo: Workflow, running_worker: object, monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A retry may be run by any node: a waiter that has not heard the end of a run started
    here by its first poll watches it, so a retry ended elsewhere is hinted to it."""
    monkeypatch.setattr(tasks_module, "STORE_POLL_SECONDS", 0.05)
    world.remote.outcomes = [SourceUnavailableError("flaky", status=503),
                             RunResult(output_text="again", raw={})]
    running = asyncio.create_task(world.spark.tasks.run(echo.id, input_data="x",
                                                        max_retries=1))
    await _until(lambda: _true(bool(world.store.watched_ends)))
    [watched] = world.store.watched_ends
    assert (await world.store.tasks.get(watched)).status is TaskStatus.PENDING
    world.clock.advance(60)
    done = await asyncio.wait_for(running, 5)
    assert (done.id, done.status, done.tries) == (watched, TaskStatus.COMPLETED, 2)
    assert world.store.watched_ends == [watched]


async def test_a_run_not_waited_for_is_answered_pending_and_then_runs(
    world: World, echo: Workflow, running_worker: object
) -> None:
    """Without ``wait`` the answer is the queued task, pending (the API's contract), even
    when the worker is idle; the worker then runs it."""
    task = await world.spark.tasks.run(echo.id, input_data="later", wait=False)
    assert task.status is TaskStatus.PENDING
    finished = await world.spark.tasks.wait(task.id, timeout=5)
    assert (finished.status, finished.output_data) == (TaskStatus.COMPLETED, "later")


async def test_runs_asked_of_a_busy_worker_are_queued_and_all_finish(
    world: World, echo: Workflow, running_worker: object
) -> None:
    """Runs asked while the worker has a free slot start at once; once its concurrency (4
    here) is taken, new runs are stored pending and taken by the claim loop as slots free,
    never more at once than the concurrency; every one finishes."""
    world.remote.release = asyncio.Event()
    added = _record_adds(world)
    first = asyncio.create_task(world.spark.tasks.run(echo.id, input_data="first"))
    await _until(lambda: _true(world.spark.worker.inflight == 1))
    others = [asyncio.create_task(world.spark.tasks.run(echo.id, input_data=f"n{i}"))
              for i in range(6)]
    await _until(lambda: _true(len(added) == 3))
    await _until(lambda: _true(len(world.remote.runs) == 4))
    await asyncio.sleep(0.05)
    assert len(world.remote.runs) == 4  # the other three wait for a slot
    world.remote.release.set()
    finished = await asyncio.gather(first, *others)
    assert [task.status for task in finished] == [TaskStatus.COMPLETED] * 7
    assert sorted(task.output_data or "" for task in finished[1:]) == [f"n{i}" for i in range(6)]


async def test_a_stopped_worker_declines_to_start_runs(world: World, echo: Workflow) -> None:
    """Once stopped, the worker no longer offers to start runs: a run asked for is stored
    pending for any worker, and nothing is stored by the worker itself."""
    await world.spark.worker.start()
    await world.spark.worker.stop(grace=1)
    added = _record_adds(world)
    task = await world.spark.tasks.create(echo.id, input_data="x")
    target = await world.store.workflows.run_target(echo.id)
    assert await world.spark.worker.start_new(task, target) is None
    assert added == [task.id]
    assert (await world.store.tasks.get(task.id)).status is TaskStatus.PENDING


async def test_a_run_whose_caller_gives_up_while_it_is_stored_still_runs(
    world: World, echo: Workflow, running_worker: object
) -> None:
    """The caller of a run waited for is cancelled while the run is being stored claimed: the
    run is started all the same (a run stored claimed but not started would hold its lease
    with nobody running it), finishes, and the worker ends idle."""
    storing = asyncio.Event()
    add_claimed = world.store.queue.add_claimed

    async def slow_add_claimed(task: Task, *, owner: str, lease_seconds: float,
                               target: RunTarget | None = None) -> Task:
        await storing.wait()
        return await add_claimed(task, owner=owner, lease_seconds=lease_seconds, target=target)

    world.store.queue.add_claimed = slow_add_claimed  # type: ignore[method-assign]
    caller = asyncio.create_task(world.spark.tasks.run(echo.id, input_data="orphan?"))
    await asyncio.sleep(0.01)
    caller.cancel()
    storing.set()
    with pytest.raises(asyncio.CancelledError):
        await caller
    await _until(lambda: _true(len(world.remote.runs) == 1))
    await _until(_idle(world))
    page = await world.store.tasks.list(TaskFilter(), limit=5, offset=0)
    assert [(task.status, task.output_data) for task in page.items] == [
        (TaskStatus.COMPLETED, "orphan?")]


async def test_a_run_claimed_while_leases_are_renewed_is_not_taken_for_lost() -> None:
    """A lease renewal answers with the runs it found; a run claimed after it read the leases
    is not among them, yet still this worker's: it runs and finishes instead of being
    stopped as taken over (which left it ``running`` under a lease renewed for ever, its
    caller waiting: seen on PostgreSQL at 16 concurrent runs)."""
    world = build_world(concurrency=4, lease_seconds=0.3)  # a renewal every 0.1 s
    echo = await synced_echo(world)
    world.remote.release = asyncio.Event()
    renew, claim = world.store.queue.renew, world.store.queue.claim
    renewing, claimed = asyncio.Event(), asyncio.Event()

    async def slow_renew(**kwargs: Any) -> list[TaskId]:
        held = await renew(**kwargs)  # read before the second run is claimed
        if not claimed.is_set():
            renewing.set()
            await claimed.wait()  # its answer arrives after that claim committed
        return held

    async def noted_claim(**kwargs: Any) -> list[Task]:
        found = await claim(**kwargs)
        if renewing.is_set() and found:
            claimed.set()
        return found

    world.store.queue.renew = slow_renew  # type: ignore[method-assign]
    world.store.queue.claim = noted_claim  # type: ignore[method-assign]
    await world.spark.worker.start()
    try:
        first = await world.spark.tasks.run(echo.id, input_data="first", wait=False)
        await asyncio.wait_for(renewing.wait(), 5)
        second = await world.spark.tasks.run(echo.id, input_data="second", wait=False)
        await asyncio.wait_for(claimed.wait(), 5)
        await asyncio.sleep(0.05)  # the renewal's answer is heard
        world.remote.release.set()
        for task in (first, second):
            await _until(_status_is(world, task.id, TaskStatus.COMPLETED))
    finally:
        world.remote.release.set()
        await world.spark.worker.stop(grace=1)


async def test_a_lease_of_the_worker_with_no_run_behind_it_is_left_to_run_out() -> None:
    """The worker renews the leases of the runs it has under way, not every lease in its
    name: one held with nothing running it (a fault) expires and can be recovered, instead
    of being kept alive as long as the worker is busy."""
    world = build_world(concurrency=4, lease_seconds=0.6)  # a renewal every 0.2 s
    echo = await synced_echo(world)
    owner = world.spark.worker.owner
    orphan = await world.spark.tasks.run(echo.id, input_data="orphan", wait=False)
    [claimed] = await world.store.queue.claim(owner=owner, limit=1, lease_seconds=0.3)
    assert claimed.id == orphan.id
    world.remote.release = asyncio.Event()
    await world.spark.worker.start()
    try:
        busy = await world.spark.tasks.run(echo.id, input_data="busy", wait=False)
        await _until(lambda: _true(len(world.remote.runs) == 1))
        for _ in range(10):  # the store's clock moves on; renewals keep up with it
            world.clock.advance(0.1)
            await asyncio.sleep(0.1)
        assert await world.store.queue.held(owner=owner, task_ids=[busy.id, orphan.id]) == [
            busy.id]
    finally:
        world.remote.release.set()
        await world.spark.worker.stop(grace=1)


async def test_a_run_asked_while_a_claim_is_under_way_keeps_the_concurrency() -> None:
    """A worker of concurrency 1 whose claim loop is claiming a queued run does not also
    start a new run it is asked for: one run at a time, both finish."""
    world = build_world(concurrency=1)
    echo = await synced_echo(world)
    world.remote.release = asyncio.Event()
    claim = world.store.queue.claim

    async def slow_claim(**kwargs: Any) -> list[Task]:
        await asyncio.sleep(0.02)  # a claim takes a while, as on a real store
        return await claim(**kwargs)

    world.store.queue.claim = slow_claim  # type: ignore[method-assign]
    await world.spark.worker.start()
    await asyncio.sleep(0.05)  # the claim loop's first look is done: it waits for work
    try:
        queued = await world.spark.tasks.run(echo.id, input_data="queued", wait=False)
        await asyncio.sleep(0.005)  # woken, the claim loop is inside its claim now
        asked = asyncio.create_task(world.spark.tasks.run(echo.id, input_data="asked"))
        await _until(lambda: _true(len(world.remote.runs) >= 1))
        await asyncio.sleep(0.1)
        assert len(world.remote.runs) == 1
        world.remote.release.set()
        assert (await asked).status is TaskStatus.COMPLETED
        assert (await world.spark.tasks.wait(queued.id, timeout=5)).status is (
            TaskStatus.COMPLETED)
    finally:
        await world.spark.worker.stop(grace=1)


async def test_a_run_asked_as_a_slot_frees_does_not_overtake_older_queued_runs() -> None:
    """With one slot, a run queued earlier starts before a run asked for while the slot's
    previous run is still recording its outcome: first come, first served."""
    world = build_world(concurrency=1)
    echo = await synced_echo(world)
    world.remote.release = asyncio.Event()
    recorded = asyncio.Event()
    release = world.store.queue.release

    async def slow_release(task: Task, outcome: TaskOutcome, *, owner: str) -> Task | None:
        await recorded.wait()
        return await release(task, outcome, owner=owner)

    world.store.queue.release = slow_release  # type: ignore[method-assign]
    await world.spark.worker.start()
    try:
        first = asyncio.create_task(world.spark.tasks.run(echo.id, input_data="T1"))
        await _until(lambda: _true(len(world.remote.runs) == 1))
        second = await world.spark.tasks.run(echo.id, input_data="T2", wait=False)
        world.remote.release.set()  # T1 answers; its outcome waits to be recorded
        await asyncio.sleep(0.02)
        world.clock.advance(1)  # T3 is asked for after T2 was
        third = asyncio.create_task(world.spark.tasks.run(echo.id, input_data="T3"))
        await asyncio.sleep(0.02)
        recorded.set()
        await asyncio.gather(first, third)
        await world.spark.tasks.wait(second.id, timeout=5)
        assert [run.input_value for run in world.remote.runs] == ["T1", "T2", "T3"]
    finally:
        await world.spark.worker.stop(grace=1)


@pytest.mark.parametrize("why", ["worker full", "workflow limited"])
async def test_a_finished_run_hands_its_slot_to_a_waiting_run_at_once(why: str) -> None:
    """When a run ends, a run waiting for its slot (the worker was full, or the workflow is
    at its limit) starts at once, not at the next poll (30 s here)."""
    world = build_world(concurrency=1 if why == "worker full" else 4)
    world.store.wakeups.poll_seconds = 30
    echo = await synced_echo(world)
    if why == "workflow limited":
        await world.spark.workflows.set_max_concurrency(echo.id, 1)
    world.remote.release = asyncio.Event()
    await world.spark.worker.start()
    try:
        first = asyncio.create_task(world.spark.tasks.run(echo.id, input_data="first"))
        await _until(lambda: _true(len(world.remote.runs) == 1))
        waiting = await world.spark.tasks.run(echo.id, input_data="waiting", wait=False)
        await asyncio.sleep(0.05)
        world.remote.release.set()
        await first
        async with asyncio.timeout(5):
            done = await world.spark.tasks.wait(waiting.id, timeout=10)
        assert done.status is TaskStatus.COMPLETED
    finally:
        await world.spark.worker.stop(grace=1)


async def test_runs_on_an_idle_worker_cost_no_claims(world: World, echo: Workflow) -> None:
    """Runs waited for one after another on an idle worker are started where they are asked
    for, and a finished run does not send the claim loop looking for work that is not there
    (the poll, 30 s here, is the claim loop's only other reason to look)."""
    world.store.wakeups.poll_seconds = 30
    await world.spark.worker.start()
    await asyncio.sleep(0.05)  # the claim loop's first look is done
    claims = _record_claims(world)
    try:
        for number in range(5):
            task = await world.spark.tasks.run(echo.id, input_data=f"r{number}")
            assert task.status is TaskStatus.COMPLETED
        await asyncio.sleep(0.05)
        assert claims == []
    finally:
        await world.spark.worker.stop(grace=1)


async def test_concurrent_runs_filling_the_worker_start_at_once_and_cost_no_claims() -> None:
    """Runs asked together up to the worker's concurrency all start where they are asked
    for, none through the queue; when they end with nothing queued meanwhile, the full
    worker's freed slots do not send the claim loop looking (the poll, 30 s here, is its
    only other reason to look)."""
    world = build_world(concurrency=3)
    echo = await synced_echo(world)
    world.store.wakeups.poll_seconds = 30
    world.remote.release = asyncio.Event()
    await world.spark.worker.start()
    added = _record_adds(world)
    await asyncio.sleep(0.05)  # the claim loop's first look is done
    claims = _record_claims(world)
    try:
        runs = [asyncio.create_task(world.spark.tasks.run(echo.id, input_data=f"r{n}"))
                for n in range(3)]
        await _until(lambda: _true(len(world.remote.runs) == 3))
        world.remote.release.set()
        finished = await asyncio.gather(*runs)
        assert [task.status for task in finished] == [TaskStatus.COMPLETED] * 3
        await asyncio.sleep(0.05)
        assert added == []
        assert claims == []
    finally:
        await world.spark.worker.stop(grace=1)


async def test_a_backlog_larger_than_the_worker_is_worked_through_without_waiting_for_polls(
) -> None:
    """Queued runs beyond the worker's concurrency are claimed as slots free, one claim
    after another, with no hint and no poll needed (the poll is 30 s here)."""
    world = build_world(concurrency=2)
    echo = await synced_echo(world)
    world.store.wakeups.poll_seconds = 30
    queued = [await world.spark.tasks.create(echo.id, input_data=f"q{n}") for n in range(7)]
    await world.spark.worker.start()
    try:
        for task in queued:
            done = await world.spark.tasks.wait(task.id, timeout=3)
            assert done.status is TaskStatus.COMPLETED, done
    finally:
        await world.spark.worker.stop(grace=1)


async def _true(value: bool) -> bool:
    return value
