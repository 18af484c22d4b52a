"""The worker: every run goes through it, bounded, retried, cancellable and crash-safe."""

import asyncio
from datetime import timedelta

from spark_core.errors import RemoteRunError, SourceUnavailableError
from spark_core.models import RunResult, Task, TaskStatus, Workflow
from tests.unit.conftest import World, build_world, synced_echo


async def _until(predicate, timeout: float = 5.0) -> None:  # type: ignore[no-untyped-def]
    """Wait (in real time, bounded) until ``predicate()`` holds."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while not predicate():
        assert loop.time() < deadline, "condition not reached in time"
        await asyncio.sleep(0.01)


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


async def test_the_task_id_is_sent_as_session_id_unless_given(
    world: World, echo: Workflow, running_worker: object
) -> None:
    """Runs do not share one remote conversation by accident."""
    first = await world.spark.tasks.run(echo.id, input_data="a")
    await world.spark.tasks.run(echo.id, input_data="b", session_id="mine")
    assert [run.session_id for run in world.remote.runs] == [first.id, "mine"]


async def test_a_transient_failure_is_retried_on_the_same_task(
    world: World, echo: Workflow, running_worker: object
) -> None:
    """A 5xx-like failure schedules a retry with backoff; the same row then completes."""
    world.remote.outcomes = [SourceUnavailableError("boom", status=503),
                             RunResult(output_text="ok", raw={})]
    task = world.spark.tasks.create(echo.id, input_data="x", max_retries=2)
    await _until(lambda: world.store.get_task(task.id).next_retry_at is not None)
    waiting = world.store.get_task(task.id)
    assert waiting.status == TaskStatus.PENDING
    assert waiting.error == "boom"
    delay = (waiting.next_retry_at - world.clock.now()).total_seconds()  # type: ignore[operator]
    assert 0.5 <= delay <= 1.0
    world.clock.advance(2)
    world.signals.work_added()
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
        tasks = [world.spark.tasks.create(echo.id, input_data=str(n)) for n in range(10)]
        await _until(lambda: len(world.remote.runs) == 4)
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
    task = world.spark.tasks.create(echo.id)
    await _until(lambda: world.store.get_task(task.id).status == TaskStatus.RUNNING)
    cancelled = world.spark.tasks.cancel(task.id)
    assert cancelled.status == TaskStatus.CANCELLED
    world.remote.release.set()
    await asyncio.sleep(0.1)
    assert world.store.get_task(task.id).status == TaskStatus.CANCELLED
    assert world.spark.worker.inflight == 0


async def test_stopping_lets_runs_finish_within_the_grace_period(
    world: World, echo: Workflow
) -> None:
    """A graceful stop waits for a run that finishes in time."""
    world.remote.delay = 0.1
    await world.spark.worker.start()
    task = world.spark.tasks.create(echo.id)
    await _until(lambda: world.store.get_task(task.id).status == TaskStatus.RUNNING)
    await world.spark.worker.stop(grace=5)
    assert world.store.get_task(task.id).status == TaskStatus.COMPLETED


async def test_stopping_interrupts_runs_past_the_grace_period(
    world: World, echo: Workflow
) -> None:
    """Runs still going after the grace period are interrupted and queued for a retry."""
    world.remote.release = asyncio.Event()
    await world.spark.worker.start()
    task = world.spark.tasks.create(echo.id, max_retries=1)
    last = world.spark.tasks.create(echo.id, max_retries=0)
    await _until(lambda: len(world.remote.runs) == 2)
    await world.spark.worker.stop(grace=0.05)
    retried, failed = world.store.get_task(task.id), world.store.get_task(last.id)
    assert (retried.status, retried.error) == (TaskStatus.PENDING, "interrupted")
    assert (failed.status, failed.error) == (TaskStatus.FAILED, "interrupted")


def _crashed_run(world: World, workflow: Workflow, *, max_retries: int) -> Task:
    """A task claimed by a process that then died: running under a lease nobody renews."""
    task = world.spark.tasks.create(workflow.id, max_retries=max_retries)
    now = world.clock.now()
    [claimed] = world.store.claim_tasks(now, owner="dead-process",
                                        lease_until=now + timedelta(seconds=30), limit=1)
    assert claimed.id == task.id
    return claimed


async def test_a_run_whose_process_died_is_marked_interrupted_and_retried(
    world: World, echo: Workflow
) -> None:
    """After its lease expires, another worker marks the run interrupted and retries it."""
    task = _crashed_run(world, echo, max_retries=1)
    assert world.spark.worker.recover_expired() == []  # lease still valid
    world.clock.advance(31)
    [recovered] = world.spark.worker.recover_expired()
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
    task = _crashed_run(world, echo, max_retries=0)
    world.clock.advance(31)
    world.spark.worker.recover_expired()
    stored = world.store.get_task(task.id)
    assert (stored.status, stored.error) == (TaskStatus.FAILED, "interrupted")
    assert stored.finished_at is not None


async def test_running_one_task_here_leaves_other_queued_work_alone(
    world: World, echo: Workflow
) -> None:
    """`run_task` (the CLI's in-process run) runs its own task only, retries included."""
    other = world.spark.tasks.create(echo.id, input_data="someone else's")
    world.remote.outcomes = [SourceUnavailableError("flaky", status=503),
                             RunResult(output_text="mine", raw={})]
    mine = world.spark.tasks.create(echo.id, input_data="mine", max_retries=1)
    running = asyncio.create_task(world.spark.worker.run_task(mine.id))
    await _until(lambda: world.store.get_task(mine.id).next_retry_at is not None)
    world.clock.advance(5)
    done = await asyncio.wait_for(running, 5)
    assert (done.status, done.tries, done.output_data) == (TaskStatus.COMPLETED, 2, "mine")
    assert world.store.get_task(other.id).status == TaskStatus.PENDING
    assert [run.input_value for run in world.remote.runs] == ["mine", "mine"]
