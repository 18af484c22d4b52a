"""No double execution after a crash: before re-running an interrupted run, the worker asks the
source whether it finished that run anyway, and records that answer instead."""

import asyncio
from collections.abc import Awaitable, Callable
from datetime import timedelta

from spark_core.errors import SourceRejectedError, SourceUnavailableError
from spark_core.fires import FireOutcome
from spark_core.models import PastRun, RunRequest, RunResult, Task, TaskStatus, Workflow
from tests.unit.conftest import World, build_world, synced_echo


class RecordingMetrics:
    """The ``Metrics`` port, keeping the outcome of each attempt."""

    def __init__(self) -> None:
        self.outcomes: list[str] = []

    def task_attempt_finished(self, *, outcome: str, duration_seconds: float | None) -> None:
        """Keep the outcome."""
        self.outcomes.append(outcome)

    def schedule_decided(self, *, outcome: FireOutcome, delay_seconds: float) -> None:
        """Not needed here."""

    def worker_busy(self, count: int) -> None:
        """Not needed here."""


async def _until(predicate: Callable[[], Awaitable[bool]] | Callable[[], bool],
                 timeout: float = 5.0) -> None:
    """Wait (in real time, bounded) until ``predicate()`` holds."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while True:
        held = predicate()
        if not isinstance(held, bool):
            held = await held
        if held:
            return
        assert loop.time() < deadline, "condition not reached in time"
        await asyncio.sleep(0.01)


async def _interrupted(world: World, workflow: Workflow, *, session_id: str | None = None,
                       input_data: str = "send the e-mail") -> Task:
    """A task whose process died after the source received its run: claimed by a process
    that is then reported dead, and recovered as ``interrupted``."""
    task = await world.spark.tasks.create(workflow.id, input_data=input_data, max_retries=2,
                                          session_id=session_id)
    [claimed] = await world.store.queue.claim(owner="dead-node", limit=1, lease_seconds=30)
    world.store.nodes.mark_dead("dead-node")
    [recovered] = await world.spark.worker.recover_expired()
    assert claimed.id == task.id
    assert (recovered.id, recovered.error) == (task.id, "interrupted")
    return recovered


def _request(task: Task, workflow: Workflow) -> RunRequest:
    """The request the dead process had sent for ``task``."""
    return RunRequest(remote_flow_id=workflow.remote_flow_id, flow_type=workflow.flow_type,
                      input_value=task.input_data, session_id=task.session_id or task.id,
                      timeout=300)


async def _run_retry(world: World, task: Task) -> Task:
    """Start the worker past the retry's backoff and wait for the task to end."""
    world.clock.advance(10)
    await world.spark.worker.start()
    try:
        return await world.spark.tasks.wait(task.id, timeout=5)
    finally:
        await world.spark.worker.stop(grace=1)


async def test_a_run_the_source_finished_after_its_caller_stopped_is_not_run_again(
    world: World, echo: Workflow
) -> None:
    """The worker stopped mid-call, the source finished the run anyway: the retry records the
    source's answer, and the flow ran once."""
    world.remote.release = asyncio.Event()
    world.remote.finish_abandoned = True
    world.remote.outcomes = [RunResult(output_text="e-mail sent", raw={"sent": 1})]
    await world.spark.worker.start()
    task = await world.spark.tasks.create(echo.id, input_data="send the e-mail", max_retries=2)
    await _until(lambda: len(world.remote.runs) == 1)
    await world.spark.worker.stop(grace=0.05)
    assert (await world.store.tasks.get(task.id)).error == "interrupted"

    done = await _run_retry(world, task)

    assert (done.status, done.output_data) == (TaskStatus.COMPLETED, "e-mail sent")
    assert done.output_raw == {"reconciled": True, "source_record": {"sent": 1}}
    assert done.error is None
    assert len(world.remote.runs) == 1


async def test_a_reconciled_attempt_is_counted_as_such_in_the_metrics() -> None:
    """Operators see how many answers were taken from a source instead of a second run."""
    metrics = RecordingMetrics()
    world = build_world(metrics=metrics)
    echo = await synced_echo(world)
    task = await _interrupted(world, echo)
    world.remote.remember(_request(task, echo), PastRun(
        started_at=world.clock.now(), result=RunResult(output_text="done", raw={})))
    await _run_retry(world, task)
    assert metrics.outcomes == ["reconciled"]


async def test_a_run_the_source_never_received_runs_again(
    world: World, echo: Workflow
) -> None:
    """A process that died before sending the run leaves nothing at the source: the retry
    runs the flow."""
    task = await _interrupted(world, echo)
    done = await _run_retry(world, task)
    assert (done.status, done.output_data) == (TaskStatus.COMPLETED, "send the e-mail")
    assert len(world.remote.runs) == 1


async def test_a_run_the_source_is_still_running_is_waited_for_not_started_twice(
    world: World, echo: Workflow
) -> None:
    """The source has the run but no answer yet: the worker waits for it and records the
    answer when the source finishes, without starting a second run."""
    task = await _interrupted(world, echo)
    request = _request(task, echo)
    world.remote.remember(request, PastRun(started_at=world.clock.now()))
    world.clock.advance(10)
    await world.spark.worker.start()
    try:
        await _until(_status_is(world, task, TaskStatus.RUNNING))
        world.clock.advance(1)
        await asyncio.sleep(0.05)
        assert (await world.store.tasks.get(task.id)).status == TaskStatus.RUNNING
        world.remote.remember(request, PastRun(started_at=world.clock.now(), result=RunResult(
            output_text="ticket #42 opened", raw={"ticket": 42})))
        world.clock.advance(1)
        done = await world.spark.tasks.wait(task.id, timeout=5)
    finally:
        await world.spark.worker.stop(grace=1)
    assert (done.status, done.output_data) == (TaskStatus.COMPLETED, "ticket #42 opened")
    assert world.remote.runs == []


async def test_a_run_the_source_still_runs_past_its_timeout_runs_again(
    world: World, echo: Workflow
) -> None:
    """A run the source began but never ended within the run's timeout is lost there: the
    worker stops waiting and runs the flow."""
    task = await _interrupted(world, echo)
    world.remote.remember(_request(task, echo), PastRun(started_at=world.clock.now()))
    world.clock.advance(10)
    await world.spark.worker.start()
    try:
        await _until(_status_is(world, task, TaskStatus.RUNNING))
        world.clock.advance(301 + 60)
        done = await world.spark.tasks.wait(task.id, timeout=5)
    finally:
        await world.spark.worker.stop(grace=1)
    assert (done.status, done.output_data) == (TaskStatus.COMPLETED, "send the e-mail")
    assert len(world.remote.runs) == 1


async def test_a_run_that_failed_at_the_source_runs_again(
    world: World, echo: Workflow
) -> None:
    """The source ended the interrupted run without an answer: the retry runs the flow."""
    task = await _interrupted(world, echo)
    world.remote.remember(_request(task, echo),
                          PastRun(started_at=world.clock.now(), failed=True))
    done = await _run_retry(world, task)
    assert done.status == TaskStatus.COMPLETED
    assert len(world.remote.runs) == 1


async def test_an_unreachable_history_retries_later_and_still_runs_once(
    world: World, echo: Workflow
) -> None:
    """When the source cannot be asked now, the attempt is retried (still marked interrupted)
    instead of risking a second run; once the source answers, its answer is recorded."""
    task = await _interrupted(world, echo)
    world.remote.remember(_request(task, echo), PastRun(
        started_at=world.clock.now(), result=RunResult(output_text="done", raw={})))
    world.remote.history_error = SourceUnavailableError("history is down", status=503)
    world.clock.advance(10)
    await world.spark.worker.start()
    try:
        async def asked() -> bool:
            return (await world.store.tasks.get(task.id)).tries == 2
        await _until(asked)
        await _until(lambda: world.spark.worker.inflight == 0)
        stored = await world.store.tasks.get(task.id)
        assert stored.status == TaskStatus.PENDING
        assert stored.error is not None
        assert stored.error.startswith("interrupted; could not ask the source")
        assert "history is down" in stored.error
        world.remote.history_error = None
        world.clock.advance(30)
        done = await world.spark.tasks.wait(task.id, timeout=5)
    finally:
        await world.spark.worker.stop(grace=1)
    assert (done.status, done.output_data, done.tries) == (TaskStatus.COMPLETED, "done", 3)
    assert world.remote.runs == []


async def test_a_source_that_cannot_tell_gets_the_run_again(
    world: World, echo: Workflow
) -> None:
    """A source that refuses the history question for good (its key may not read history)
    is treated like one without history: the run goes ahead."""
    task = await _interrupted(world, echo)
    world.remote.history_error = SourceRejectedError("no history for you", status=403)
    done = await _run_retry(world, task)
    assert (done.status, done.output_data) == (TaskStatus.COMPLETED, "send the e-mail")
    assert len(world.remote.runs) == 1


async def test_in_a_chosen_session_an_earlier_run_of_the_same_input_is_not_taken(
    world: World, echo: Workflow
) -> None:
    """A session the caller chose may hold older runs of the same input; only a run begun
    since the task was created is its run."""
    yesterday = world.clock.now() - timedelta(days=1)
    old = RunRequest(remote_flow_id=echo.remote_flow_id, flow_type=echo.flow_type,
                     input_value="send the e-mail", session_id="conversation-7", timeout=300)
    world.remote.remember(old, PastRun(started_at=yesterday, result=RunResult(
        output_text="yesterday's answer", raw={})))
    task = await _interrupted(world, echo, session_id="conversation-7")
    done = await _run_retry(world, task)
    assert (done.status, done.output_data) == (TaskStatus.COMPLETED, "send the e-mail")
    assert len(world.remote.runs) == 1


async def test_a_run_that_failed_for_another_reason_does_not_ask_the_source(
    world: World, echo: Workflow
) -> None:
    """Only an interrupted run is looked up: a retry after a source error simply runs."""
    world.remote.outcomes = [SourceUnavailableError("boom", status=503)]
    world.remote.history_error = SourceUnavailableError("must not be asked", status=503)
    task = await world.spark.tasks.create(echo.id, input_data="x", max_retries=2)
    await world.spark.worker.start()
    try:
        async def retry_planned() -> bool:
            return (await world.store.tasks.get(task.id)).error == "boom"
        await _until(retry_planned)
        world.clock.advance(10)
        done = await world.spark.tasks.wait(task.id, timeout=5)
    finally:
        await world.spark.worker.stop(grace=1)
    assert (done.status, done.output_data, len(world.remote.runs)) == (
        TaskStatus.COMPLETED, "x", 2)


def _status_is(world: World, task: Task, status: TaskStatus) -> Callable[[], Awaitable[bool]]:
    """A predicate for ``_until``: the stored task has ``status``."""
    async def check() -> bool:
        return (await world.store.tasks.get(task.id)).status == status
    return check
