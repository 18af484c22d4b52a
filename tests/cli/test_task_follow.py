"""``spark task list --follow``, run as a real process: new and changed tasks as they happen."""

import json
import os
import queue
import signal
import subprocess
import sys
import threading
from pathlib import Path
from typing import Any

from tests.cli.conftest import Spark


def _lines(stream: Any) -> "queue.Queue[str]":
    """The lines of ``stream`` as they come, read on a thread of their own."""
    lines: queue.Queue[str] = queue.Queue()

    def read() -> None:
        for line in stream:
            lines.put(line)

    threading.Thread(target=read, daemon=True).start()
    return lines


def test_follow_prints_tasks_as_they_are_created_and_change_until_ctrl_c(
    spark: Spark, workdir: Path, echo_workflow: str
) -> None:
    """An old task is not printed; a task queued while following is, and again when it is
    cancelled; Ctrl-C ends the follow with exit status 0."""
    old = spark("workflow", "run", echo_workflow, "--no-wait").stdout.strip()
    environment = {key: value for key, value in os.environ.items()
                   if not key.startswith(("SPARK_", "API_"))}
    follower = subprocess.Popen(
        [sys.executable, "-m", "spark_cli", "--data-dir", str(workdir / "data"),
         "task", "list", "--follow", "--json"],
        cwd=workdir, env=environment, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        assert "Following tasks" in follower.stderr.readline()  # type: ignore[union-attr]
        lines = _lines(follower.stdout)
        new = spark("workflow", "run", echo_workflow, "--no-wait", "--input", "follow me")
        new_id = new.stdout.strip()
        created = json.loads(lines.get(timeout=10))
        assert (created["id"], created["status"], created["input_data"]) == (
            new_id, "pending", "follow me")
        assert spark("task", "cancel", new_id).exit_code == 0
        changed = json.loads(lines.get(timeout=10))
        assert (changed["id"], changed["status"]) == (new_id, "cancelled")
        follower.send_signal(signal.SIGINT)
        assert follower.wait(timeout=10) == 0
        rest = [json.loads(line) for line in follower.stdout.read().splitlines()]  # type: ignore[union-attr]
        assert all(item["id"] != old for item in [created, changed, *rest])
    finally:
        if follower.poll() is None:
            follower.kill()
            follower.wait()
