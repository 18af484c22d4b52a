"""Fault injection on real `spark serve` processes: SIGKILL during slow runs, a second live
process taking over through expired leases, and a graceful SIGTERM with a grace period.

A short ``SPARK_LEASE_SECONDS`` makes a dead process's runs visible as expired in seconds
rather than the default 30; nothing else differs from a production start.
"""

from typing import Any

import pytest

from tests.processes import Servers, SparkProcess, synced_workflow, wait_for
from tests.robustness.conftest import FINAL, report
from tests.servers import FakeLangflow
from tests.servers.langflow import ECHO_ID, SLOW_ID, SLOW_NODE

pytestmark = pytest.mark.slow

RUNS = 30
RUN_SECONDS = 1.5
LEASE = {"SPARK_LEASE_SECONDS": "3", "SPARK_WORKERS": "8"}
SETTLE_WITHIN = 90.0


def _queue_runs(server: SparkProcess, workflow_id: str, count: int) -> list[str]:
    ids = []
    for number in range(count):
        task = server.call("POST", f"/api/v1/workflows/{workflow_id}/run",
                           {"input_value": f"run {number}"}, params={"wait": "false"},
                           expect=202)
        ids.append(task["id"])
    return ids


def _running(server: SparkProcess, at_least: int) -> list[str] | None:
    running = [task["id"] for task in server.tasks(status="running")]
    return running if len(running) >= at_least else None


def _all_final(server: SparkProcess, ids: list[str]) -> dict[str, dict[str, Any]] | None:
    tasks = {task["id"]: task for task in server.tasks()}
    if all(tasks[task_id]["status"] in FINAL for task_id in ids):
        return tasks
    return None


def _retried(server: SparkProcess, ids: list[str]) -> dict[str, dict[str, Any]] | None:
    """Every task by id once each of ``ids`` is on its second attempt, else ``None``."""
    tasks = {task["id"]: task for task in server.tasks()}
    return tasks if all(tasks[task_id]["tries"] >= 2 for task_id in ids) else None


def _figures(name: str, queued: list[str], tasks: dict[str, dict[str, Any]],
             langflow: FakeLangflow, interrupted: set[str]) -> dict[str, int]:
    """Count and report: tasks queued, run attempts started (the fake's count of run requests),
    runs finished, runs interrupted by the fault, and runs lost (never final)."""
    mine = [tasks[task_id] for task_id in queued]
    figures = {
        "tasks": len(queued),
        "runs_started": len(langflow.runs),
        "attempts": sum(task["tries"] for task in mine),
        "runs_finished": sum(task["status"] == "completed" for task in mine),
        "failed_interrupted": sum(task["status"] == "failed" and task["error"] == "interrupted"
                                  for task in mine),
        "interrupted": len(interrupted),
        "runs_lost": sum(task["status"] not in FINAL for task in mine),
    }
    report(name, **figures)
    return figures


def test_every_run_ends_final_after_sigkill_and_restart(
    servers: Servers, langflow: FakeLangflow
) -> None:
    """SIGKILL during slow runs, then a restart on the same data dir: every task ends
    completed (or failed `interrupted`, never stuck), and the runs cut off by the kill are
    marked interrupted and retried on the same task row until they complete."""
    langflow.delay = RUN_SECONDS
    first = servers.start(**LEASE)
    workflow_id = synced_workflow(first, langflow, ECHO_ID)["id"]
    queued = _queue_runs(first, workflow_id, RUNS)
    cut_off = set(wait_for(lambda: _running(first, 4), within=30, what="runs under way"))

    first.kill()
    second = servers.start(**LEASE)
    seen_interrupted: set[str] = set()

    def settled() -> dict[str, dict[str, Any]] | None:
        tasks = _all_final(second, queued)
        if tasks is None:
            seen_interrupted.update(task["id"] for task in second.tasks(status="pending")
                                    if task["error"] == "interrupted")
        return tasks

    tasks = wait_for(settled, within=SETTLE_WITHIN, what="every task to end")
    figures = _figures("crash-recovery", queued, tasks, langflow,
                       seen_interrupted | cut_off)

    assert figures["runs_lost"] == 0
    for task_id in queued:
        task = tasks[task_id]
        assert task["status"] == "completed" or (
            task["status"] == "failed" and task["error"] == "interrupted"), task
    for task_id in cut_off:
        # Default max_retries is 3, so a run cut off once is retried and completes.
        assert tasks[task_id]["status"] == "completed", tasks[task_id]
        assert tasks[task_id]["tries"] >= 2, tasks[task_id]
        assert tasks[task_id]["error"] is None
    assert figures["runs_finished"] == RUNS
    assert {task["output_data"] for task in tasks.values()} == {
        f"run {number}" for number in range(RUNS)}
    assert "Traceback" not in second.output()


def test_a_live_process_takes_over_the_runs_of_a_killed_one(
    servers: Servers, langflow: FakeLangflow
) -> None:
    """With two servers on one store, SIGKILL of one leaves its runs to the other, which finds
    their leases expired, marks them interrupted and runs them again: nothing is lost and
    nothing needs a restart."""
    langflow.delay = RUN_SECONDS
    doomed = servers.start(**LEASE)
    survivor = servers.start(**LEASE)
    workflow_id = synced_workflow(doomed, langflow, ECHO_ID)["id"]
    queued = _queue_runs(doomed, workflow_id, 20)
    wait_for(lambda: _running(doomed, 4), within=30, what="runs under way")

    doomed.kill()
    tasks = wait_for(lambda: _all_final(survivor, queued), within=SETTLE_WITHIN,
                     what="the survivor to finish every task")
    retried = {task_id for task_id in queued if tasks[task_id]["tries"] >= 2}
    figures = _figures("lease-takeover", queued, tasks, langflow, retried)

    assert figures["runs_lost"] == 0
    assert figures["runs_finished"] == len(queued)
    assert retried, "no run was cut off by the kill; the test proved nothing"


def test_sigterm_lets_runs_in_flight_finish_and_interrupts_the_rest(
    servers: Servers, langflow: FakeLangflow
) -> None:
    """SIGTERM waits for runs that finish within the grace period (they complete) and marks a
    run that would outlast it interrupted (failed, as it has no retries left); the server then
    exits 0."""
    server = servers.start(**LEASE)
    workflow_id = synced_workflow(server, langflow, SLOW_ID)["id"]

    def run(seconds: float, max_retries: int = 3) -> str:
        task = server.call("POST", f"/api/v1/workflows/{workflow_id}/run", {
            "input_value": f"{seconds:g} s", "tweaks": {SLOW_NODE: {"delay_seconds": seconds}},
            "max_retries": max_retries}, params={"wait": "false"}, expect=202)
        return str(task["id"])

    short = [run(3) for _ in range(4)]
    endless = run(120, max_retries=0)
    wait_for(lambda: _running(server, 5), within=30, what="five runs under way")

    # uvicorn stops, then the app's lifespan stops the worker with a 10 s grace.
    assert server.terminate(within=45) == 0, server.output()

    after = servers.start(**LEASE)
    tasks = {task["id"]: task for task in after.tasks()}
    report("graceful-stop", in_flight=5,
           finished_in_grace=sum(tasks[t]["status"] == "completed" for t in short),
           interrupted=int(tasks[endless]["error"] == "interrupted"))
    for task_id in short:
        assert tasks[task_id]["status"] == "completed", tasks[task_id]
        assert tasks[task_id]["tries"] == 1
    assert tasks[endless]["status"] == "failed"
    assert tasks[endless]["error"] == "interrupted"


def test_a_restarted_server_recovers_its_killed_predecessor_s_runs_at_once(
    servers: Servers, langflow: FakeLangflow
) -> None:
    """With the default 30 s lease, SIGKILL and an immediate restart on the same data dir: the
    new process sees its predecessor is gone (its lock file is free) and re-runs the cut-off
    runs within seconds, not after the lease."""
    first = servers.start()
    workflow_id = synced_workflow(first, langflow, SLOW_ID)["id"]
    cut_off = [
        first.call("POST", f"/api/v1/workflows/{workflow_id}/run",
                   {"input_value": f"slow {number}",
                    "tweaks": {SLOW_NODE: {"delay_seconds": 30 if number == 0 else 5}}},
                   params={"wait": "false"}, expect=202)["id"]
        for number in range(3)
    ]
    wait_for(lambda: _running(first, 3), within=15, what="the runs to start")
    first.kill()
    second = servers.start()
    recovered = wait_for(lambda: _retried(second, cut_off), within=10,
                         what="the killed runs to be re-run (the lease is 30 s)")
    assert [recovered[t]["tries"] for t in cut_off] == [2, 2, 2]
    done = wait_for(lambda: _all_final(second, cut_off[1:]), within=20, what="the re-runs")
    assert [done[t]["status"] for t in cut_off[1:]] == ["completed", "completed"]


def test_runs_the_source_finished_after_a_kill_are_recorded_not_run_again(
    servers: Servers, langflow: FakeLangflow
) -> None:
    """SIGKILL while LangFlow runs three flows: LangFlow finishes them without its caller
    (as the real 1.13 does), and the restarted server, before retrying each interrupted run,
    finds its answer in LangFlow's message history and records it: each flow ran once."""
    first = servers.start()
    workflow_id = synced_workflow(first, langflow, SLOW_ID)["id"]
    cut_off = [
        first.call("POST", f"/api/v1/workflows/{workflow_id}/run",
                   {"input_value": f"side effect {number}",
                    "tweaks": {SLOW_NODE: {"delay_seconds": 20}}},
                   params={"wait": "false"}, expect=202)["id"]
        for number in range(3)
    ]
    wait_for(lambda: langflow.open_runs == 3 or None, within=15,
             what="LangFlow to hold the three runs")
    first.kill()
    second = servers.start()
    done = wait_for(lambda: _all_final(second, cut_off), within=20, what="the recovered runs")
    stored = {t: second.call("GET", f"/api/v1/tasks/{t}") for t in cut_off}
    report("reconciliation", killed_runs=len(cut_off), runs_sent=len(langflow.runs),
           reconciled=sum(bool((task["output_raw"] or {}).get("reconciled"))
                          for task in stored.values()))
    for number, task_id in enumerate(cut_off):
        task = stored[task_id]
        assert (done[task_id]["status"], done[task_id]["tries"]) == ("completed", 2), task
        assert task["output_data"] == f"side effect {number}"
        assert task["output_raw"]["reconciled"] is True
        assert task["output_raw"]["source_record"]["messages"][-1]["sender"] == "Machine"
    assert len(langflow.runs) == len(cut_off)
