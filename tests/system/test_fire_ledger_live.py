"""The fire ledger on a real `spark serve` in real time: a server stopped for a few seconds
writes the fire times of its downtime as explicit records when it comes back."""

import time
from datetime import timedelta
from typing import Any

import pytest

from tests.processes import Servers, SparkProcess, synced_workflow, wait_for
from tests.servers import FakeLangflow
from tests.servers.langflow import ECHO_ID
from tests.system.conftest import parse_time

pytestmark = pytest.mark.slow


def _fires(server: SparkProcess, schedule_id: str) -> list[dict[str, Any]]:
    page = server.call("GET", f"/api/v1/schedules/{schedule_id}/fires",
                       params={"limit": "100"})
    items: list[dict[str, Any]] = page["items"]
    return items


def test_downtime_is_recorded_as_missed_and_caught_up_fires_after_a_restart(
    servers: Servers, langflow: FakeLangflow
) -> None:
    """A `1s` schedule (catch-up `latest`) on a server stopped for about four seconds: after
    the restart the ledger names every second of the downtime, folded into one `caught_up`
    run (`coalesced` into it), and the counters on the schedule agree with the records."""
    first = servers.start()
    workflow = synced_workflow(first, langflow, ECHO_ID)
    schedule = first.call("POST", "/api/v1/schedules", {
        "workflow_id": workflow["id"], "schedule_type": "interval", "schedule_expr": "1s",
        "overlap_policy": "allow", "catchup_policy": "latest",
    }, expect=201)
    wait_for(lambda: len(_fires(first, schedule["id"])) >= 2, within=15,
             what="the first fires on time")
    assert first.terminate(within=15) == 0
    time.sleep(4)
    second = servers.start()

    def caught_up() -> list[dict[str, Any]] | None:
        fires = _fires(second, schedule["id"])
        return fires if any(f["outcome"] == "caught_up" for f in fires) else None

    fires = wait_for(caught_up, within=20, what="a caught_up record after the restart")
    times = sorted(parse_time(f["nominal_time"]) for f in fires)
    assert times == [times[0] + timedelta(seconds=n) for n in range(len(times))], (
        "a second has no record")
    [late] = [f for f in fires if f["outcome"] == "caught_up"]
    folded = [f for f in fires if f["outcome"] == "coalesced"]
    assert len(folded) >= 2, "the seconds of the downtime are not in the ledger"
    assert {f["task_id"] for f in folded} == {late["task_id"]}
    assert all(f["reason"] for f in fires)
    assert max(parse_time(f["nominal_time"]) for f in folded) < parse_time(late["nominal_time"])
    counted = second.call("GET", f"/api/v1/schedules/{schedule['id']}")
    assert counted["last_outcome"] is not None
    assert counted["fired_count"] == sum(
        f["outcome"] in ("fired", "caught_up", "buffered") for f in _fires(second, schedule["id"]))
