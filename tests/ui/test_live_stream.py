"""The dashboard's event stream against a real `spark serve`: task changes arrive as events,
and a server told to stop ends open streams at once instead of waiting for browsers."""

import json
import time

import httpx
import pytest

from tests.processes import API_KEY, Servers, synced_workflow
from tests.servers import FakeLangflow
from tests.servers.langflow import ECHO_ID
from tests.ui.signin import sign_in

pytestmark = pytest.mark.slow


def test_an_open_event_stream_gets_task_changes_and_does_not_hold_up_shutdown(
    servers: Servers, langflow: FakeLangflow,
) -> None:
    """A signed-in stream receives the changes of a new task until it completes; SIGTERM then
    ends the stream and the process well before the 10 s grace period would."""
    server = servers.start()
    workflow = synced_workflow(server, langflow, ECHO_ID)
    with httpx.Client(base_url=server.base, timeout=20) as client:
        sign_in(client, API_KEY)
        with client.stream("GET", "/ui/events") as stream:
            assert stream.status_code == 200
            assert stream.headers["content-type"].startswith("text/event-stream")
            lines = stream.iter_lines()
            assert next(lines) == ": connected"
            task = server.call("POST", "/api/v1/tasks", {"workflow_id": workflow["id"],
                                                         "input_data": "live"}, expect=201)
            seen: list[str] = []
            for line in lines:
                if line.startswith("data:"):
                    change = json.loads(line.removeprefix("data:"))
                    assert change["id"] == task["id"]
                    seen.append(change["status"])
                    if change["status"] == "completed":
                        break
            assert seen[-1] == "completed"
            started = time.monotonic()
            server.process.terminate()
            for _ in lines:  # ends only when the server ends the stream
                pass
            ended = time.monotonic() - started
    assert ended < 5, f"the stream stayed open {ended:.1f} s after SIGTERM"
    assert server.process.wait(timeout=10) == 0
