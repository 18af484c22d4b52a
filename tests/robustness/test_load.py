"""Load: a few hundred concurrent clients against a real `spark serve` for a bounded time.

Clients mix list reads, health checks and asynchronous runs against a fast loopback LangFlow.
Every answer must be the expected status (no 5xx, no connection failure, no timeout), and
every run queued under load must then finish.
"""

import asyncio
import itertools
import time
from collections import Counter
from typing import Any

import aiohttp
import pytest

from tests.processes import AUTH, Servers, SparkProcess, synced_workflow
from tests.robustness.conftest import FINAL, report
from tests.servers import FakeLangflow
from tests.servers.langflow import ECHO_ID

pytestmark = pytest.mark.slow

CLIENTS = 300
DURATION = 8.0
REQUEST_TIMEOUT = 60.0
SETTLE_WITHIN = 90.0


class Tally:
    """What the clients did: answers by (kind, status), failures, and queued task ids."""

    def __init__(self) -> None:
        self.answers: Counter[tuple[str, int]] = Counter()
        self.failures: list[str] = []
        self.queued: list[str] = []
        self.latencies: list[float] = []

    @property
    def requests(self) -> int:
        """Requests answered or failed."""
        return sum(self.answers.values()) + len(self.failures)


async def _client(number: int, session: aiohttp.ClientSession, *, base: str, workflow_id: str,
                  until: float, tally: Tally) -> None:
    # Each client starts at a different point of the mix, so all kinds run at every moment.
    mix = itertools.islice(itertools.cycle(
        ["tasks", "workflows", "health", "tasks", "workflows", "health", "run", "health"]),
        number % 8, None)
    for kind in mix:
        if time.monotonic() >= until:
            return
        started = time.monotonic()
        try:
            if kind == "run":
                expected = 202
                request = session.post(f"{base}/api/v1/workflows/{workflow_id}/run",
                                       params={"wait": "false"},
                                       json={"input_value": f"load {number}"})
            else:
                expected = 200
                path = "/health" if kind == "health" else f"/api/v1/{kind}"
                request = session.get(f"{base}{path}", params={"limit": "20"})
            async with request as response:
                body: Any = await response.json()
                tally.answers[kind, response.status] += 1
                if response.status != expected:
                    tally.failures.append(f"{kind}: {response.status} {body}")
                elif kind == "run":
                    tally.queued.append(body["id"])
        except (aiohttp.ClientError, TimeoutError) as exc:
            tally.failures.append(f"{kind}: {type(exc).__name__}: {exc}")
        tally.latencies.append(time.monotonic() - started)


async def _settled(server: SparkProcess, session: aiohttp.ClientSession,
                   queued: list[str]) -> dict[str, int]:
    """Poll the runs queued under load until each is final; their statuses counted."""
    deadline = time.monotonic() + SETTLE_WITHIN
    pending = set(queued)
    statuses: Counter[str] = Counter()
    while pending:
        assert time.monotonic() < deadline, f"{len(pending)} runs never finished"
        for task_id in list(pending):
            async with session.get(f"{server.base}/api/v1/tasks/{task_id}") as response:
                task = await response.json()
            if task["status"] in FINAL:
                statuses[task["status"]] += 1
                pending.discard(task_id)
        await asyncio.sleep(0.5)
    return dict(statuses)


async def test_hundreds_of_concurrent_clients_get_no_errors(
    servers: Servers, langflow: FakeLangflow
) -> None:
    """300 clients for 8 s mixing task and workflow lists, /health and asynchronous runs get
    only the expected answers, and every run they queued then completes."""
    server = servers.start()
    workflow_id = synced_workflow(server, langflow, ECHO_ID)["id"]
    connector = aiohttp.TCPConnector(limit=0)
    timeout = aiohttp.ClientTimeout(total=REQUEST_TIMEOUT)
    tally = Tally()
    async with aiohttp.ClientSession(connector=connector, headers=AUTH,
                                     timeout=timeout) as session:
        started = time.monotonic()
        until = started + DURATION
        await asyncio.gather(*(_client(number, session, base=server.base,
                                       workflow_id=workflow_id, until=until, tally=tally)
                               for number in range(CLIENTS)))
        elapsed = time.monotonic() - started
        statuses = await _settled(server, session, tally.queued)

    server_errors = sum(count for (_, status), count in tally.answers.items() if status >= 500)
    latencies = sorted(tally.latencies)
    report("load", clients=CLIENTS, seconds=round(elapsed, 1), requests=tally.requests,
           requests_per_second=round(tally.requests / elapsed),
           p50_ms=round(latencies[len(latencies) // 2] * 1000),
           p99_ms=round(latencies[int(len(latencies) * 0.99)] * 1000),
           errors=len(tally.failures), server_errors=server_errors,
           runs_queued=len(tally.queued), runs_finished=statuses.get("completed", 0),
           runs_lost=len(tally.queued) - sum(statuses.values()))
    assert not tally.failures, tally.failures[:10]
    assert server_errors == 0
    assert tally.queued, "no run was queued under load"
    assert statuses == {"completed": len(tally.queued)}
    assert "Traceback" not in server.output()
