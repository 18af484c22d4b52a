"""A node whose PostgreSQL goes away mid-run: `/health` says so, nothing is lost, and it
recovers by itself when the database is back.

The node reaches PostgreSQL through a loopback TCP proxy that the test can cut (every open
connection reset, new ones refused) and restore, as a network partition or a database restart
would look from the node.
"""

import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.processes import SparkProcess, synced_workflow, wait_for
from tests.proxy import CuttableProxy
from tests.servers import FakeLangflow
from tests.servers.langflow import SLOW_ID, SLOW_NODE

pytestmark = pytest.mark.slow


@pytest.fixture
def proxied_url(postgres_url: str) -> Iterator[tuple[str, CuttableProxy]]:
    """The test schema's URL, reached through a cuttable proxy."""
    with CuttableProxy.before(postgres_url) as proxy:
        yield proxy.route(postgres_url), proxy


def _health(node: SparkProcess) -> str:
    status, body = node.request("GET", "/health")
    return str(body["status"]) if status == 200 else f"http {status}"


def test_a_run_in_flight_survives_a_database_outage_and_health_tells_the_story(
    tmp_path: Path, proxied_url: tuple[str, CuttableProxy], langflow: FakeLangflow
) -> None:
    """Cut the database while a run is in flight: `/health` turns `degraded` and API calls
    answer 503; the run's answer arrives during the outage and is kept; once the database is
    back the node is `healthy` again on its own and the task is `completed` with that answer."""
    url, proxy = proxied_url
    node = SparkProcess(tmp_path, env={"SPARK_DATABASE_URL": url,
                                       "SPARK_ENCRYPTION_KEY": "outage-test-passphrase"})
    try:
        workflow = synced_workflow(node, langflow, SLOW_ID)
        task = node.call("POST", f"/api/v1/workflows/{workflow['id']}/run",
                         {"input_value": "through the outage",
                          "tweaks": {SLOW_NODE: {"delay_seconds": 2}}},
                         params={"wait": "false"}, expect=202)
        wait_for(lambda: langflow.open_runs == 1, within=15, what="the source to get the run")
        proxy.cut()
        wait_for(lambda: _health(node) == "degraded", within=10, what="/health to say degraded")
        status, body = node.request("GET", "/api/v1/tasks")
        assert status == 503, body
        wait_for(lambda: langflow.open_runs == 0, within=10, what="the source to answer")
        time.sleep(1)  # the answer is now only in the node's memory
        proxy.restore()
        wait_for(lambda: _health(node) == "healthy", within=15, what="/health to recover")
        done = wait_for(lambda: (t if (t := node.call("GET", f"/api/v1/tasks/{task['id']}"))
                                 ["status"] != "running" else None),
                        within=20, what="the kept outcome to be written")
        assert (done["status"], done["output_data"], done["tries"]) == (
            "completed", "through the outage", 1)
    finally:
        node.stop()
