"""Several real `spark serve` nodes on one real PostgreSQL, coordinating only through it.

Each node has its own working and data directory, as on its own machine; they share the
database, `SPARK_API_KEY` and `SPARK_ENCRYPTION_KEY`, as the README's "Run on several machines"
says. The loopback LangFlow records every run it receives, so "reached the source once" is
counted at the source, not inferred from Spark's own records.
"""

import itertools
import os
import signal
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Iterator
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import psycopg
import pytest

from tests.processes import SparkProcess, synced_workflow, wait_for
from tests.servers import FakeLangflow
from tests.servers.langflow import ECHO_ID, SLOW_ID, SLOW_NODE
from tests.system.conftest import parse_time

pytestmark = pytest.mark.slow

ENCRYPTION_KEY = "multinode-test-encryption-passphrase"
FAKETIME_LIBRARY = Path("/usr/lib/x86_64-linux-gnu/faketime/libfaketime.so.1")


class Nodes:
    """`spark serve` nodes on one PostgreSQL schema, each in a directory of its own."""

    def __init__(self, workdir: Path, database_url: str) -> None:
        self.workdir = workdir
        self.database_url = database_url
        self.started: list[SparkProcess] = []

    def start(self, **env: str) -> SparkProcess:
        """One more node; ``env`` adds settings (``SPARK_LEASE_SECONDS``, ``LD_PRELOAD``…)."""
        home = self.workdir / f"node-{len(self.started) + 1}"
        home.mkdir()
        node = SparkProcess(home, env={
            "SPARK_DATABASE_URL": self.database_url,
            "SPARK_ENCRYPTION_KEY": ENCRYPTION_KEY,
            **env,
        })
        self.started.append(node)
        return node

    def close(self) -> None:
        """Stop every node still running (a stopped one is continued first)."""
        for node in self.started:
            if node.process.poll() is None:
                node.process.send_signal(signal.SIGCONT)
            node.stop()


@pytest.fixture
def nodes(tmp_path: Path, postgres_url: str) -> Iterator[Nodes]:
    """A factory of nodes sharing a fresh PostgreSQL schema."""
    started = Nodes(tmp_path, postgres_url)
    try:
        yield started
    finally:
        started.close()


def _runs_per_task(langflow: FakeLangflow) -> Counter[str]:
    """How many times the source received each task (Spark sends the task id as session)."""
    return Counter(str(run["json"].get("session_id")) for run in langflow.runs)


def _slow_run(node: SparkProcess, workflow_id: str, seconds: float) -> dict[str, Any]:
    task: dict[str, Any] = node.call(
        "POST", f"/api/v1/workflows/{workflow_id}/run",
        {"input_value": "slow", "tweaks": {SLOW_NODE: {"delay_seconds": seconds}}},
        params={"wait": "false"}, expect=202,
    )
    return task


def _all_completed(tasks: list[dict[str, Any]]) -> list[dict[str, Any]] | None:
    """``tasks`` when every one of them completed, else ``None`` (keep waiting)."""
    return tasks if tasks and all(task["status"] == "completed" for task in tasks) else None


def _final(node: SparkProcess, task_id: str) -> dict[str, Any] | None:
    task: dict[str, Any] = node.call("GET", f"/api/v1/tasks/{task_id}")
    return task if task["status"] in ("completed", "failed", "cancelled") else None


def test_three_nodes_fire_every_second_of_twenty_schedules_exactly_once(
    nodes: Nodes, langflow: FakeLangflow
) -> None:
    """Three nodes, twenty `1s` schedules, twelve seconds: no (schedule, time) twice, no time
    missed between a schedule's first and last fire, and every task reached the source once."""
    first, second, third = nodes.start(), nodes.start(), nodes.start()
    workflow = synced_workflow(first, langflow, ECHO_ID)
    schedule_ids = [
        (first, second, third)[index % 3].call("POST", "/api/v1/schedules", {
            "workflow_id": workflow["id"], "schedule_type": "interval", "schedule_expr": "1s",
            "input_value": f"tick {index}", "overlap_policy": "allow", "catchup_policy": "all",
        }, expect=201)["id"]
        for index in range(20)
    ]
    time.sleep(12)
    for schedule_id in schedule_ids:
        second.call("POST", f"/api/v1/schedules/{schedule_id}/disable")
    tasks = wait_for(lambda: _all_completed(first.tasks()), within=30,
                     what="every scheduled run to complete")

    by_schedule: dict[str, list[datetime]] = {schedule_id: [] for schedule_id in schedule_ids}
    for task in tasks:
        by_schedule[task["schedule_id"]].append(parse_time(task["scheduled_for"]))
    for schedule_id, times in by_schedule.items():
        assert len(times) == len(set(times)), f"schedule {schedule_id} fired a time twice"
        ordered = sorted(times)
        assert len(ordered) >= 8, f"schedule {schedule_id} fired only {len(ordered)} times"
        gaps = [b - a for a, b in itertools.pairwise(ordered)]
        assert set(gaps) == {timedelta(seconds=1)}, f"schedule {schedule_id} missed times"
    runs = _runs_per_task(langflow)
    assert {task["id"]: runs[task["id"]] for task in tasks} == {task["id"]: 1 for task in tasks}
    print(f"MULTINODE: 3 nodes fired {len(tasks)} runs of 20 schedules, 0 twice, 0 missed")


def test_a_killed_node_s_runs_are_finished_by_the_others_before_its_lease_runs_out(
    nodes: Nodes, langflow: FakeLangflow
) -> None:
    """SIGKILL a node holding slow runs: its database session dies with it, so the others
    recover its runs without waiting out the (long) lease, and every run completes."""
    lease = {"SPARK_LEASE_SECONDS": "60"}
    doomed = nodes.start(**lease)
    workflow = synced_workflow(doomed, langflow, SLOW_ID)
    # Long enough to outlast starting the survivors on a loaded machine: the kill cuts them.
    tasks = [_slow_run(doomed, workflow["id"], 10) for _ in range(6)]
    wait_for(lambda: all(doomed.call("GET", f"/api/v1/tasks/{t['id']}")["status"] == "running"
                         for t in tasks), within=15, what="the doomed node to run every task")
    survivors = [nodes.start(**lease), nodes.start(**lease)]
    killed_at = time.monotonic()
    doomed.kill()
    wait_for(lambda: all(survivors[0].call("GET", f"/api/v1/tasks/{t['id']}")["tries"] >= 2
                         for t in tasks), within=45, what="the survivors to re-run every task")
    recovered = time.monotonic() - killed_at
    finished = [wait_for(lambda t=t: _final(survivors[0], t["id"]), within=45,
                         what="a survivor to finish the killed node's run") for t in tasks]
    assert [task["status"] for task in finished] == ["completed"] * len(tasks)
    assert all(task["tries"] == 2 for task in finished)
    assert recovered < 10, f"re-running took {recovered:.1f} s: the 60 s lease was waited out"
    print(f"MULTINODE: 6 runs of a killed node re-run by survivors {recovered:.1f} s after the "
          "kill (lease 60 s)")


def test_a_node_stopped_past_its_lease_never_overwrites_the_run_that_replaced_it(
    nodes: Nodes, langflow: FakeLangflow
) -> None:
    """SIGSTOP the node running a slow task past its lease; another node takes the task over
    (finding the run still under way at LangFlow, it waits for that run's answer instead of
    running the flow twice); after SIGCONT the stopped node's late answer is refused and the
    record stays the one the replacing attempt wrote."""
    paused = nodes.start(SPARK_LEASE_SECONDS="2")
    workflow = synced_workflow(paused, langflow, SLOW_ID)
    task = _slow_run(paused, workflow["id"], 8)  # outlasts starting the other node
    wait_for(lambda: langflow.open_runs == 1 or None, within=15,
             what="LangFlow to hold the first node's run")
    other = nodes.start(SPARK_LEASE_SECONDS="2")
    paused.process.send_signal(signal.SIGSTOP)
    # The other node's attempt either still waits for LangFlow's answer or has recorded it.
    rerun = wait_for(lambda: (t if (t := other.call("GET", f"/api/v1/tasks/{task['id']}"))
                              ["tries"] >= 2 else None),
                     within=30, what="the other node to take the run over")
    assert rerun["tries"] == 2
    paused.process.send_signal(signal.SIGCONT)
    done = wait_for(lambda: _final(other, task["id"]), within=30, what="the re-run to finish")
    time.sleep(3)  # the first node has run again for seconds: its late answer was refused
    after = other.call("GET", f"/api/v1/tasks/{task['id']}")
    assert done["status"] == "completed"
    assert done["tries"] == 2
    assert done["output_raw"]["reconciled"] is True
    assert after == done, "a late answer overwrote the task"
    assert _runs_per_task(langflow)[task["id"]] == 1


def _listener_pids(database_url: str) -> list[int]:
    """The backends LISTENing on this test's schema (other tests may listen on theirs)."""
    with psycopg.connect(database_url, autocommit=True) as conn:
        rows = conn.execute(
            "SELECT pid FROM pg_stat_activity WHERE query ILIKE 'LISTEN%%' "
            "AND position(spark_channel() in query) > 0 AND pid <> pg_backend_pid()"
        ).fetchall()
    return [int(row[0]) for row in rows]


def _cli(database_url: str, workdir: Path, *args: str) -> subprocess.CompletedProcess[str]:
    environment = {
        **{k: v for k, v in os.environ.items() if not k.startswith(("SPARK_", "API_"))},
        "SPARK_DATABASE_URL": database_url, "SPARK_ENCRYPTION_KEY": ENCRYPTION_KEY,
    }
    return subprocess.run([sys.executable, "-m", "spark_cli", *args], cwd=workdir,
                          env=environment, capture_output=True, text=True, timeout=60,
                          check=False)


def test_wake_ups_resume_after_the_listening_connection_is_terminated(
    nodes: Nodes, langflow: FakeLangflow, tmp_path: Path
) -> None:
    """Terminate a node's LISTEN connection with pg_terminate_backend: it listens again, and a
    run queued by another process (the CLI) starts well before the 5 s polling backstop."""
    node = nodes.start()
    workflow = synced_workflow(node, langflow, ECHO_ID)
    [listener] = wait_for(lambda: _listener_pids(nodes.database_url), within=10,
                          what="the node's LISTEN connection")
    with psycopg.connect(nodes.database_url, autocommit=True) as conn:
        conn.execute("SELECT pg_terminate_backend(%s)", [listener])
    [again] = wait_for(lambda: [p for p in _listener_pids(nodes.database_url) if p != listener],
                       within=15, what="the node to LISTEN again")
    assert again != listener
    time.sleep(6)  # past one whole polling interval, so only a hint can start the run quickly
    latencies = []
    for _ in range(3):
        queued = _cli(nodes.database_url, tmp_path, "workflow", "run", workflow["id"],
                      "--input", "hint", "--no-wait")
        assert queued.returncode == 0, queued.stderr
        task_id = queued.stdout.strip().splitlines()[-1]
        started = time.monotonic()
        wait_for(lambda task_id=task_id: _final(node, task_id), within=15,
                 what="the queued run to finish")
        latencies.append(time.monotonic() - started)
    assert sorted(latencies)[1] < 2.5, f"runs started only on polling: {latencies}"


@pytest.mark.skipif(not FAKETIME_LIBRARY.exists(),
                    reason="needs Debian's libfaketime (.ci/run installs it)")
def test_a_node_whose_clock_is_minutes_off_fires_on_time_and_never_twice(
    nodes: Nodes, langflow: FakeLangflow
) -> None:
    """Beside a node with a true clock, a node whose clock runs 5 minutes ahead (libfaketime)
    neither fires early nor twice: due times are judged by the database's clock."""
    honest = nodes.start()
    workflow = synced_workflow(honest, langflow, ECHO_ID)
    nodes.start(LD_PRELOAD=str(FAKETIME_LIBRARY), FAKETIME="+5m", DONT_FAKE_MONOTONIC="1",
                FAKETIME_DONT_RESET="1")
    schedule = honest.call("POST", "/api/v1/schedules", {
        "workflow_id": workflow["id"], "schedule_type": "interval", "schedule_expr": "1s",
        "overlap_policy": "allow", "catchup_policy": "all",
    }, expect=201)
    time.sleep(8)
    honest.call("POST", f"/api/v1/schedules/{schedule['id']}/disable")
    tasks = wait_for(lambda: _all_completed(honest.tasks(schedule_id=schedule["id"])),
                     within=30, what="the scheduled runs to complete")
    times = sorted(parse_time(task["scheduled_for"]) for task in tasks)
    assert len(times) == len(set(times)) >= 5
    assert {b - a for a, b in itertools.pairwise(times)} == {timedelta(seconds=1)}
    assert times[-1] < datetime.now(times[-1].tzinfo) + timedelta(seconds=2), "fired early"


def test_schedule_updates_racing_the_scheduler_never_refire_a_time(
    nodes: Nodes, langflow: FakeLangflow, tmp_path: Path
) -> None:
    """`spark schedule update` run again and again from another process while a node fires a
    `1s` schedule: no time fires twice and fire times only move forward."""
    node = nodes.start()
    workflow = synced_workflow(node, langflow, ECHO_ID)
    schedule = node.call("POST", "/api/v1/schedules", {
        "workflow_id": workflow["id"], "schedule_type": "interval", "schedule_expr": "1s",
        "overlap_policy": "allow",
    }, expect=201)
    deadline = time.monotonic() + 8
    updates = 0
    while time.monotonic() < deadline:
        result = _cli(nodes.database_url, tmp_path, "schedule", "update", schedule["id"],
                      "--input", f"update {updates}")
        assert result.returncode == 0, result.stderr
        updates += 1
    node.call("POST", f"/api/v1/schedules/{schedule['id']}/disable")
    tasks = node.tasks(schedule_id=schedule["id"])
    times = [parse_time(task["scheduled_for"]) for task in tasks]
    assert len(times) == len(set(times)), "a time fired twice"
    by_creation = [parse_time(t["scheduled_for"])
                   for t in sorted(tasks, key=lambda t: parse_time(t["created_at"]))]
    assert by_creation == sorted(by_creation), "a fire time went backwards"
    assert updates >= 3
    assert len(times) >= 5


def test_a_cancel_on_one_node_ends_the_remote_call_on_the_node_running_it_within_a_second(
    nodes: Nodes, langflow: FakeLangflow
) -> None:
    """A slow run executing on one node is cancelled through another node's API: the running
    node drops its remote call within a second and the task stays `cancelled`."""
    runner = nodes.start()
    workflow = synced_workflow(runner, langflow, SLOW_ID)
    task = _slow_run(runner, workflow["id"], 20)
    wait_for(lambda: runner.call("GET", f"/api/v1/tasks/{task['id']}")["status"] == "running",
             within=15, what="the run to start")
    other = nodes.start(SPARK_WORKERS="1")
    cancelled_at = time.monotonic()
    assert other.call("POST", f"/api/v1/tasks/{task['id']}/cancel")["status"] == "cancelled"
    wait_for(lambda: langflow.open_runs == 0, within=5,
             what="the running node to drop its remote call")
    took = time.monotonic() - cancelled_at
    assert took < 1.5, f"the remote call was dropped only after {took:.2f} s"
    time.sleep(1)
    assert runner.call("GET", f"/api/v1/tasks/{task['id']}")["status"] == "cancelled"
    print(f"MULTINODE: a cancel on another node ended the remote call in {took:.2f} s")
