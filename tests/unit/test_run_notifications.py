"""Run notifications: a failed run, and the first completed run after failures, are told to the
notifier once; other outcomes are not."""

from collections.abc import AsyncIterator

import pytest

from spark_core.errors import RemoteRunError
from spark_core.models import RunEvent, RunEventKind, RunResult, TaskStatus, Workflow
from spark_core.ports import Notifier
from tests.unit.conftest import World, build_world, synced_echo


class FakeNotifier(Notifier):
    """Keeps every event it is handed, in order."""

    def __init__(self) -> None:
        self.events: list[RunEvent] = []
        self.webhooks: list[str | None] = []
        self.only_workflow_webhooks = False
        """Listen only for workflows with a webhook of their own (no global one configured)."""

    def listens(self, *, workflow_webhook: str | None) -> bool:
        """Always, unless only workflow webhooks count and this workflow has none."""
        return bool(workflow_webhook) or not self.only_workflow_webhooks

    def notify(self, event: RunEvent, *, workflow_webhook: str | None = None) -> None:
        """Record ``event`` and the workflow's webhook."""
        self.events.append(event)
        self.webhooks.append(workflow_webhook)


@pytest.fixture
def notifier() -> FakeNotifier:
    """A notifier that records events."""
    return FakeNotifier()


@pytest.fixture
async def world(notifier: FakeNotifier) -> AsyncIterator[World]:
    """The core over fakes with ``notifier`` wired in, its worker running."""
    world = build_world(notifier=notifier)
    await world.spark.worker.start()
    yield world
    await world.spark.worker.stop(grace=1)


async def _run(world: World, workflow: Workflow, *, fail: bool) -> TaskStatus:
    """Run ``workflow`` once to its end (failing for good when ``fail``), a second later
    than the previous run; return its final status."""
    world.clock.advance(1)
    world.remote.outcomes = [
        RemoteRunError("bad input", status=400) if fail else RunResult(output_text="ok", raw={})
    ]
    task = await world.spark.tasks.run(workflow.id, input_data="x", wait=True)
    return task.status


async def test_a_failed_run_is_notified_with_its_error(
    world: World, notifier: FakeNotifier
) -> None:
    """A run that fails for good hands the notifier a ``failed`` event naming run and error."""
    echo = await synced_echo(world)
    assert await _run(world, echo, fail=True) == TaskStatus.FAILED
    [event] = notifier.events
    assert event.event == RunEventKind.FAILED
    assert event.workflow_id == echo.id
    assert event.status == TaskStatus.FAILED
    assert event.error is not None
    assert "bad input" in event.error
    assert event.attempts == 1
    assert event.finished_at is not None


async def test_only_the_first_success_after_failures_is_notified_as_recovered(
    world: World, notifier: FakeNotifier
) -> None:
    """Two failures then two successes give failed, failed, recovered: the second success is
    not a recovery, and the recovery names the failed run it follows."""
    echo = await synced_echo(world)
    for fail in (True, True, False, False):
        await _run(world, echo, fail=fail)
    kinds = [event.event for event in notifier.events]
    assert kinds == [RunEventKind.FAILED, RunEventKind.FAILED, RunEventKind.RECOVERED]
    assert notifier.events[2].previous_task_id == notifier.events[1].task_id
    assert notifier.events[2].status == TaskStatus.COMPLETED


async def test_successes_without_failures_notify_nothing(
    world: World, notifier: FakeNotifier
) -> None:
    """A first run that completes, and completions after completions, are not news."""
    echo = await synced_echo(world)
    for _ in range(3):
        assert await _run(world, echo, fail=False) == TaskStatus.COMPLETED
    assert notifier.events == []


async def test_a_failure_of_another_workflow_does_not_make_a_recovery(
    world: World, notifier: FakeNotifier
) -> None:
    """Recovery is judged per workflow: another workflow's failure leaves this one's success
    silent."""
    echo = await synced_echo(world)
    world.remote.add_flow("other", "Other")
    other = await world.spark.workflows.sync("other", source_id=echo.source_id)
    await _run(world, other, fail=True)
    await _run(world, echo, fail=False)
    assert [(event.event, event.workflow_id) for event in notifier.events] == [
        (RunEventKind.FAILED, other.id)
    ]


async def test_without_a_listening_webhook_nothing_is_decided_and_a_workflow_s_own_is_used(
    world: World, notifier: FakeNotifier
) -> None:
    """With no global webhook, a workflow without one of its own notifies nothing (and its
    runs pay no reads for it); once it has one, its failure is handed over with that URL."""
    notifier.only_workflow_webhooks = True
    echo = await synced_echo(world)
    await _run(world, echo, fail=True)
    assert notifier.events == []
    await world.spark.workflows.set_webhook_url(echo.id, "https://hooks.example/echo")
    await _run(world, echo, fail=True)
    [event] = notifier.events
    assert (event.event, notifier.webhooks) == (RunEventKind.FAILED, ["https://hooks.example/echo"])
