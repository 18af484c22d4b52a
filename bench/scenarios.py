"""The measurements: each takes running processes and returns figures."""

import asyncio
import math
import statistics
import time
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

import aiohttp
import msgspec

from bench.baseline import RECORDED_RUN_PATH, RUN_PATH
from bench.fake_langflow import flow_id
from bench.load import LoadResult, Request, Summary, json_body, run_load, summarise
from bench.processes import Cluster, FakeLangflowProcess, SparkProcess
from bench.store import StoreAccess

RUN_INPUT = "benchmark input"


class Api:
    """A small client for setting the server up (not for measuring)."""

    def __init__(self, spark: SparkProcess) -> None:
        self.base = f"{spark.url}/api/v1"
        self.headers = {"X-API-Key": spark.api_key}

    async def call(self, session: aiohttp.ClientSession, method: str, path: str,
                   body: Any = None, expect: int = 200) -> Any:
        """One request; its JSON answer, or an error naming what went wrong."""
        async with session.request(method, f"{self.base}{path}", headers=self.headers,
                                   json=body) as answer:
            payload = await answer.json(content_type=None)
            if answer.status != expect:
                raise RuntimeError(f"{method} {path} answered {answer.status}: {payload}")
            return payload


async def set_up_catalogue(spark: SparkProcess, fake: FakeLangflowProcess,
                           workflows: int) -> list[str]:
    """Add the fake as a source and sync ``workflows`` of its flows; returns the local ids."""
    api = Api(spark)
    async with aiohttp.ClientSession() as session:
        source = await api.call(session, "POST", "/sources", {
            "name": "bench-langflow", "source_type": "langflow", "url": fake.url,
            "api_key": fake.api_key}, expect=201)
        ids = []
        for number in range(workflows):
            synced = await api.call(session, "POST",
                                    f"/workflows/sync/{flow_id(number)}?source_id={source['id']}")
            ids.append(synced["id"])
    return ids


class _PageShape(msgspec.Struct):
    """A list envelope whose items are checked to be JSON but not built into objects."""

    items: list[msgspec.Raw]


_page_shape = msgspec.json.Decoder(_PageShape)


FULL_CHECK_EVERY = 16
"""One answer in this many of a list is parsed and its items counted; the others are accepted
when they have the status and the exact length of the last one that was (a list is measured
while nothing writes, so its page does not change), and parsed when they do not."""


def page_of(items: int) -> Callable[[int, bytes], bool]:
    """The check of a list answer: 200, valid JSON, exactly ``items`` items.

    Items are validated as JSON but kept raw: building them into Python objects cost the load
    generator, which shares the cores with the server, more than the server spent on the
    answer (1.1 ms for the 100-workflow page, 0.26 ms for the bare page; 0.24 and 0.04 raw).
    Even raw, parsing every 115 kB workflow page took the generator's CPU from the server in
    proportion to the page's size (the ratio to the 52 kB bare page moved from 0.64 to 0.76
    in paired rounds when only statuses were checked), so every ``FULL_CHECK_EVERY``-th answer
    is parsed, and so is any answer whose status or length differs from the last one parsed;
    the others are held to its status and exact length.
    """
    seen = 0
    checked_length = -1

    def full_page(status: int, body: bytes) -> bool:
        nonlocal seen, checked_length
        seen += 1
        if status == 200 and len(body) == checked_length and seen % FULL_CHECK_EVERY:
            return True
        try:
            good = status == 200 and len(_page_shape.decode(body).items) == items
        except (msgspec.DecodeError, msgspec.ValidationError):
            good = False
        checked_length = len(body) if good else -1
        return good
    return full_page


def list_request(cluster: Cluster, path: str, items: int) -> list[Request]:
    """A GET of a list endpoint, one per node, that must answer 200 with a page of ``items``
    items."""
    return [Request("GET", f"{spark.url}{path}", headers={"X-API-Key": spark.api_key},
                    ok=page_of(items)) for spark in cluster.nodes]


def baseline_request(url: str) -> Request:
    """The bare Litestar page, which must answer 200 with its 100 rows."""
    return Request("GET", f"{url}/page", ok=page_of(100))


def health_request(cluster: Cluster) -> list[Request]:
    """``GET /health`` (no key), one per node, that must answer 200 ``healthy``."""
    return [Request("GET", f"{spark.url}/health",
                    ok=lambda status, body: status == 200 and b'"healthy"' in body)
            for spark in cluster.nodes]


def run_request(cluster: Cluster, workflow_id: str) -> list[Request]:
    """A run-now, one per node, that waits for the finished task, which must be completed."""
    return [Request("POST", f"{spark.url}/api/v1/workflows/{workflow_id}/run?wait=true",
                    headers={"X-API-Key": spark.api_key, "Content-Type": "application/json"},
                    body=json_body(RUN_INPUT),
                    ok=lambda status, body: status == 200 and b'"status":"completed"' in body)
            for spark in cluster.nodes]


def bare_run_request(url: str) -> Request:
    """The bare Litestar run (``bench.baseline``'s ``POST /run/{flow_id}``, forwarded to the
    fake), which must answer 200 with the fake's answer."""
    return Request("POST", f"{url}{RUN_PATH}/{flow_id(0)}",
                   headers={"Content-Type": "application/json"},
                   body=json_body({"input_value": RUN_INPUT}),
                   ok=lambda status, body: status == 200 and b'"outputs"' in body)


def recorded_run_request(url: str) -> Request:
    """The bare Litestar run recorded in PostgreSQL (``bench.baseline``'s
    ``POST /recorded-run/{flow_id}``), which must answer 200 with the fake's answer."""
    return Request("POST", f"{url}{RECORDED_RUN_PATH}/{flow_id(0)}",
                   headers={"Content-Type": "application/json"},
                   body=json_body({"input_value": RUN_INPUT}),
                   ok=lambda status, body: status == 200 and b'"outputs"' in body)


def direct_request(fake: FakeLangflowProcess) -> Request:
    """The call Spark makes to run a flow, sent straight to the fake."""
    return Request("POST", f"{fake.url}/api/v1/run/{flow_id(0)}?stream=false",
                   headers={"x-api-key": fake.api_key, "Content-Type": "application/json"},
                   body=json_body({"input_value": RUN_INPUT, "input_type": "chat",
                                   "output_type": "chat", "tweaks": {},
                                   "session_id": "bench-session"}))


async def repeated(request: Request | list[Request], *, connections: int, seconds: float,
                   repeats: int) -> Summary:
    """``repeats`` load runs of ``request``, summarised as medians."""
    return summarise(await load_runs(request, connections=connections, seconds=seconds,
                                     repeats=repeats))


async def load_runs(request: Request | list[Request], *, connections: int, seconds: float,
                    repeats: int) -> list[LoadResult]:
    """``repeats`` load runs of ``request``."""
    return [await run_load(request, connections=connections, seconds=seconds)
            for _ in range(repeats)]


class ClaimLatency(msgspec.Struct, frozen=True):
    """started_at - created_at of the runs of a load burst: medians of each burst's p50 and
    p99, in milliseconds."""

    p50_ms: float
    p99_ms: float
    max_ms: float
    runs: int
    never_started: int
    unfinished: int
    """Runs not finished when read back, after their load run had ended."""
    bursts: int


def claim_latency(access: StoreAccess, results: list[LoadResult]) -> ClaimLatency:
    """Read back every run-now task created during each measured window of ``results``."""
    per_burst = []
    runs = never = unfinished = 0
    for result in results:
        timings = access.run_timings(RUN_INPUT, result.measured_from, result.measured_to)
        waits = sorted((started - created).total_seconds() * 1000
                       for created, started, _ in timings if started is not None)
        runs += len(timings)
        never += len(timings) - len(waits)
        unfinished += sum(not finished for _, _, finished in timings)
        if waits:
            per_burst.append((_at(waits, 0.5), _at(waits, 0.99), waits[-1]))
    if not per_burst:
        raise RuntimeError("No run-now task was found in the store after the bursts")
    return ClaimLatency(
        p50_ms=statistics.median(b[0] for b in per_burst),
        p99_ms=statistics.median(b[1] for b in per_burst),
        max_ms=statistics.median(b[2] for b in per_burst),
        runs=runs, never_started=never, unfinished=unfinished, bursts=len(per_burst))


def _at(values: list[float], quantile: float) -> float:
    return values[min(len(values) - 1, int(quantile * len(values)))]


class Lag(msgspec.Struct, frozen=True):
    """Schedule lag over repeated rounds: medians of each round's p50, p99 and max."""

    schedules: int
    p50_s: float
    p99_s: float
    max_s: float
    created_p99_s: float
    missing: int
    rounds: int


async def schedule_lag(cluster: Cluster, access: StoreAccess, workflow_ids: list[str], *,
                       schedules: int, rounds: int) -> Lag:
    """Fire ``schedules`` one-time schedules due in the same second, ``rounds`` times, and
    measure started_at - scheduled_for of their tasks. The schedules are created through the
    nodes round-robin; any node may fire and run them."""
    per_round = []
    lead = 10.0
    for _ in range(rounds):
        result, creation = await _one_lag_round(cluster, access, workflow_ids, schedules, lead)
        per_round.append(result)
        lead = max(4.0, creation * 1.5 + 2)
    return Lag(
        schedules=schedules,
        p50_s=statistics.median(r[0] for r in per_round),
        p99_s=statistics.median(r[1] for r in per_round),
        max_s=statistics.median(r[2] for r in per_round),
        created_p99_s=statistics.median(r[3] for r in per_round),
        missing=sum(r[4] for r in per_round),
        rounds=rounds,
    )


async def _one_lag_round(cluster: Cluster, access: StoreAccess, workflow_ids: list[str],
                         count: int, lead: float
                         ) -> tuple[tuple[float, float, float, float, int], float]:
    apis = [Api(spark) for spark in cluster.nodes]
    due = datetime.fromtimestamp(math.ceil(time.time() + lead), UTC)
    began = time.perf_counter()
    connector = aiohttp.TCPConnector(limit=16)
    async with aiohttp.ClientSession(connector=connector) as session:
        semaphore = asyncio.Semaphore(16)

        async def create(number: int) -> str:
            async with semaphore:
                made = await apis[number % len(apis)].call(session, "POST", "/schedules", {
                    "workflow_id": workflow_ids[number % len(workflow_ids)],
                    "schedule_type": "one-time", "schedule_expr": due.isoformat(),
                    "input_value": f"scheduled {number}"}, expect=201)
                return str(made["id"])

        ids = await asyncio.gather(*(create(n) for n in range(count)))
    creation = time.perf_counter() - began
    if datetime.now(UTC) >= due:
        raise RuntimeError(f"Creating {count} schedules took {creation:.1f} s, past their due "
                           "time; the lag round is void")
    deadline = due.timestamp() + 120
    timings = access.schedule_timings(ids)
    while time.time() < deadline:
        await asyncio.sleep(0.5)
        timings = access.schedule_timings(ids)
        if len(timings) == count and all(started for _, started, _ in timings):
            break
    lags = sorted((started - scheduled).total_seconds() for scheduled, started, _ in timings
                  if started is not None)
    created = sorted((made - scheduled).total_seconds() for scheduled, _, made in timings)
    missing = count - len(lags)
    if not lags:
        raise RuntimeError("No scheduled task started")
    return (_at(lags, 0.5), _at(lags, 0.99), lags[-1], _at(created, 0.99), missing), creation

