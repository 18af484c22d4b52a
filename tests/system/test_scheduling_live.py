"""Schedules on a real `spark serve` in real time: a `2s` interval keeps producing runs, and a
server killed with SIGKILL and started again keeps its schedules, their anchors and their
one-time promises."""

import itertools
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from tests.processes import Servers, SparkProcess, synced_workflow, wait_for
from tests.servers import FakeLangflow
from tests.servers.langflow import ECHO_ID
from tests.system.conftest import parse_time

pytestmark = pytest.mark.slow

INTERVAL = timedelta(seconds=2)
RUN_TIMEOUT = 20.0


def _tasks(server: SparkProcess, schedule_id: str) -> list[dict[str, Any]]:
    page = server.call("GET", "/api/v1/tasks",
                       params={"schedule_id": schedule_id, "limit": "100"})
    items: list[dict[str, Any]] = page["items"]
    assert page["total"] == len(items), "more tasks than one page"
    return items


def _completed(tasks: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return sorted((t for t in tasks if t["status"] == "completed"),
                  key=lambda t: t["scheduled_for"])


def _wait_completed(server: SparkProcess, schedule_id: str, count: int, *,
                    since: datetime | None = None) -> list[dict[str, Any]]:
    """Every task of the schedule once ``count`` of them (created after ``since``) completed."""
    def enough() -> list[dict[str, Any]] | None:
        tasks = _tasks(server, schedule_id)
        fresh = [t for t in tasks if since is None or parse_time(t["created_at"]) > since]
        return tasks if len(_completed(fresh)) >= count else None

    return wait_for(enough, within=RUN_TIMEOUT, what=f"{count} completed scheduled runs")


def _on_the_grid(instant: datetime, start: datetime) -> bool:
    return instant > start and (instant - start) % INTERVAL == timedelta(0)


def test_a_2s_interval_runs_on_a_live_server_and_survives_a_kill(
    servers: Servers, langflow: FakeLangflow
) -> None:
    """A `2s` schedule completes runs 2 s apart with the echo answer; after SIGKILL and a
    restart on the same data dir it keeps its id and anchor, catches up the downtime with one
    run (catch-up `latest`), and keeps firing."""
    first = servers.start()
    workflow = synced_workflow(first, langflow, ECHO_ID)
    # `allow`, so that only the catch-up policy limits the runs after the restart (under `skip`
    # a run cut off by the kill would also hold new runs back until its lease expires).
    schedule = first.call("POST", "/api/v1/schedules", {
        "workflow_id": workflow["id"], "schedule_type": "interval", "schedule_expr": "2s",
        "input_value": "ping", "overlap_policy": "allow", "catchup_policy": "latest",
    }, expect=201)
    start = parse_time(schedule["start_at"])
    assert parse_time(schedule["next_run_at"]) == start + INTERVAL

    runs = _completed(_wait_completed(first, schedule["id"], 3))
    fire_times = [parse_time(t["scheduled_for"]) for t in runs]
    assert fire_times[0] == start + INTERVAL
    gaps = {later - earlier for earlier, later in itertools.pairwise(fire_times)}
    # A machine stalled for over 2 s merges missed times into one run (catch-up `latest`), so
    # a gap may be a multiple of the interval; on a healthy machine every gap is the interval.
    assert INTERVAL in gaps
    assert all(gap % INTERVAL == timedelta(0) and gap > timedelta(0) for gap in gaps)
    assert {(t["output_data"], t["input_data"], t["workflow_id"]) for t in runs} == {
        ("ping", "ping", workflow["id"])}

    first.kill()
    killed_at = datetime.now(UTC)
    # Stay down for over two intervals: with several fire times missed, `latest` (one run) and
    # `all` (one run each) differ.
    wait_for(lambda: datetime.now(UTC) > killed_at + 2 * INTERVAL + timedelta(seconds=0.3),
             within=10, what="the downtime to span a fire time")
    second = servers.start()

    kept = second.call("GET", f"/api/v1/schedules/{schedule['id']}")
    assert (kept["status"], kept["start_at"], kept["schedule_expr"]) == (
        "active", schedule["start_at"], "2s")
    assert _on_the_grid(parse_time(kept["next_run_at"]), start)

    tasks = _wait_completed(second, schedule["id"], 2, since=killed_at)
    pairs = [t["scheduled_for"] for t in tasks]
    assert len(pairs) == len(set(pairs)), "a fire time has two tasks"
    assert all(_on_the_grid(parse_time(at), start) for at in pairs)
    old = [t for t in tasks if parse_time(t["created_at"]) <= killed_at]
    new = sorted((t for t in tasks if parse_time(t["created_at"]) > killed_at),
                 key=lambda t: t["scheduled_for"])
    last_before_kill = max(parse_time(t["scheduled_for"]) for t in old)
    back_at = min(parse_time(t["created_at"]) for t in new)
    caught_up = [t for t in new if parse_time(t["scheduled_for"]) <= back_at]
    assert len(caught_up) == 1, f"catch-up `latest` made {len(caught_up)} runs for the downtime"
    missed_until = parse_time(caught_up[0]["scheduled_for"])
    assert last_before_kill < missed_until <= back_at
    assert missed_until - last_before_kill >= 2 * INTERVAL, "fewer than two fire times missed"
    assert missed_until > killed_at, "the latest missed time is the one that fires"
    assert {t["output_data"] for t in _completed(new)} == {"ping"}


def test_a_one_time_schedule_runs_exactly_once_across_a_restart(
    servers: Servers, langflow: FakeLangflow
) -> None:
    """A one-time schedule 2 s ahead runs once and completes; after SIGKILL and a restart
    (whose scheduler is seen firing another schedule) it still has exactly one task."""
    first = servers.start()
    workflow = synced_workflow(first, langflow, ECHO_ID)
    at = (datetime.now(UTC) + timedelta(seconds=2)).replace(microsecond=0)
    schedule = first.call("POST", "/api/v1/schedules", {
        "workflow_id": workflow["id"], "schedule_type": "one-time",
        "schedule_expr": at.isoformat(), "input_value": "once",
    }, expect=201)
    assert parse_time(schedule["next_run_at"]) == at

    [task] = _wait_completed(first, schedule["id"], 1)
    assert (task["scheduled_for"], task["output_data"]) == (schedule["next_run_at"], "once")
    assert parse_time(task["started_at"]) >= at
    done = first.call("GET", f"/api/v1/schedules/{schedule['id']}")
    assert (done["status"], done["next_run_at"]) == ("completed", None)

    first.kill()
    second = servers.start()
    # A witness that the new process's scheduler has made its passes: a one-time `now`
    # created after the restart has run.
    witness = second.call("POST", "/api/v1/schedules", {
        "workflow_id": workflow["id"], "schedule_type": "one-time", "schedule_expr": "now",
        "input_value": "witness",
    }, expect=201)
    _wait_completed(second, witness["id"], 1)

    assert [t["id"] for t in _tasks(second, schedule["id"])] == [task["id"]]
    after = second.call("GET", f"/api/v1/schedules/{schedule['id']}")
    assert (after["status"], after["next_run_at"]) == ("completed", None)
