"""``WebhookNotifier`` against a loopback receiver: signed bodies, retries, and a receiver that
is down."""

import asyncio
import hashlib
import hmac
import logging
import socket
from collections.abc import Callable
from datetime import UTC, datetime

import aiohttp
import pytest

from spark_adapters.notifications import WebhookNotifier
from spark_core.models import RunEvent, RunEventKind, ScheduleId, TaskId, TaskStatus, WorkflowId
from tests.servers.fixtures import http_session
from tests.servers.receiver import FakeReceiver

__all__ = ["http_session"]

SECRET = "webhook-secret-for-tests"
EVENT = RunEvent(
    event=RunEventKind.FAILED,
    task_id=TaskId("task-1"),
    workflow_id=WorkflowId("workflow-1"),
    schedule_id=ScheduleId("schedule-1"),
    status=TaskStatus.FAILED,
    error="Remote run failed: HTTP 400",
    attempts=2,
    finished_at=datetime(2026, 12, 6, 12, 0, tzinfo=UTC),
)


async def _until(predicate: Callable[[], bool], timeout: float = 5.0) -> None:
    """Wait (in real time, bounded) until ``predicate()`` holds."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while not predicate():
        assert loop.time() < deadline, "condition not reached in time"
        await asyncio.sleep(0.01)


def _unused_port() -> int:
    """A loopback port nothing listens on (bound, then released)."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


async def test_the_event_is_posted_as_json_with_a_signature_the_receiver_can_check(
    receiver: FakeReceiver, http_session: aiohttp.ClientSession
) -> None:
    """The body is the event; ``X-Spark-Signature`` is sha256= the HMAC of the exact bytes."""
    notifier = WebhookNotifier(http_session, url=receiver.hook_url, secret=SECRET)
    notifier.notify(EVENT)
    await _until(lambda: len(receiver.deliveries) == 1)
    [delivery] = receiver.deliveries
    expected = hmac.new(SECRET.encode(), delivery.body, hashlib.sha256).hexdigest()
    assert hmac.compare_digest(delivery.headers["X-Spark-Signature"], f"sha256={expected}")
    assert delivery.headers["X-Spark-Event"] == "failed"
    assert delivery.json() == {
        "event": "failed", "task_id": "task-1", "workflow_id": "workflow-1",
        "schedule_id": "schedule-1", "status": "failed", "error": "Remote run failed: HTTP 400",
        "attempts": 2, "finished_at": "2026-12-06T12:00:00Z", "previous_task_id": None,
    }


async def test_without_a_secret_the_body_is_sent_unsigned(
    receiver: FakeReceiver, http_session: aiohttp.ClientSession
) -> None:
    """No secret configured: the event still arrives, without a signature header."""
    assert await WebhookNotifier(http_session, url=receiver.hook_url).deliver(EVENT)
    assert "X-Spark-Signature" not in receiver.deliveries[0].headers


async def test_a_receiver_failing_twice_gets_the_event_on_the_third_attempt(
    receiver: FakeReceiver, http_session: aiohttp.ClientSession
) -> None:
    """Non-2xx answers are retried with backoff; the same signed body is sent each time."""
    receiver.fail_first = 2
    notifier = WebhookNotifier(http_session, url=receiver.hook_url, secret=SECRET,
                               backoff_seconds=0.01)
    assert await notifier.deliver(EVENT)
    assert len(receiver.deliveries) == 3
    assert len({delivery.body for delivery in receiver.deliveries}) == 1
    signatures = {delivery.headers["X-Spark-Signature"] for delivery in receiver.deliveries}
    assert len(signatures) == 1


async def test_a_receiver_that_is_down_is_given_up_after_three_attempts_without_raising(
    http_session: aiohttp.ClientSession, caplog: pytest.LogCaptureFixture
) -> None:
    """Connection refused three times: delivery ends quietly with one warning."""
    url = f"http://127.0.0.1:{_unused_port()}/hook"
    notifier = WebhookNotifier(http_session, url=url, secret=SECRET, backoff_seconds=0.01)
    with caplog.at_level(logging.INFO, logger="spark_adapters.notifications"):
        assert not await notifier.deliver(EVENT)
    assert [record.levelname for record in caplog.records] == ["INFO", "INFO", "WARNING"]
    assert "given up after 3 attempts" in caplog.records[-1].getMessage()


async def test_a_workflow_webhook_is_delivered_without_a_global_one_and_once_when_both_match(
    http_session: aiohttp.ClientSession, receiver: FakeReceiver
) -> None:
    """With no configured webhook the workflow's own still gets the event, signed; a workflow
    webhook equal to the configured one gets it once, not twice."""
    alone = WebhookNotifier(http_session, secret=SECRET)
    alone.notify(EVENT, workflow_webhook=receiver.hook_url)
    await _until(lambda: len(receiver.deliveries) == 1)
    digest = hmac.new(SECRET.encode(), receiver.deliveries[0].body, hashlib.sha256).hexdigest()
    assert receiver.deliveries[0].headers["X-Spark-Signature"] == f"sha256={digest}"

    both = WebhookNotifier(http_session, url=receiver.hook_url, secret=SECRET)
    both.notify(EVENT, workflow_webhook=receiver.hook_url)
    await _until(lambda: len(receiver.deliveries) == 2)
    await asyncio.sleep(0.1)
    assert len(receiver.deliveries) == 2
    alone.notify(EVENT)  # neither webhook: nothing to do
    await asyncio.sleep(0.1)
    assert len(receiver.deliveries) == 2
    assert not alone.listens(workflow_webhook=None)
    assert alone.listens(workflow_webhook=receiver.hook_url)
    assert both.listens(workflow_webhook=None)
