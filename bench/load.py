"""A closed-loop HTTP load generator: N connections, each sending its next request as soon
as the previous answer is read, for a fixed time; latencies of every answer are kept. Given one
request per node, connection ``i`` sends to node ``i mod N`` (round-robin over the nodes)."""

import asyncio
import statistics
import time
from collections.abc import Callable, Sequence
from typing import Any

import aiohttp
import msgspec


class Request(msgspec.Struct, frozen=True):
    """One request to repeat; ``ok`` judges an answer by its status and body."""

    method: str
    url: str
    headers: dict[str, str] = {}
    body: bytes | None = None
    ok: Callable[[int, bytes], bool] | None = None


class LoadResult(msgspec.Struct, frozen=True):
    """What one timed load run saw."""

    connections: int
    seconds: float
    answers: int
    errors: int
    latencies: list[float]
    measured_from: float = 0.0
    """Wall-clock time (epoch seconds) when counting began."""
    measured_to: float = 0.0
    """Wall-clock time (epoch seconds) when the last counted answer had arrived."""
    why: dict[str, int] = {}
    """What the errors were, counted: an HTTP status (with ``unexpected body`` when the
    status was fine but the body was not), or the exception's class name."""

    @property
    def per_second(self) -> float:
        """Good answers per second."""
        return (self.answers - self.errors) / self.seconds

    def latency(self, quantile: float) -> float:
        """The latency at ``quantile`` (0-1), in seconds."""
        if not self.latencies:
            return float("nan")
        ordered = sorted(self.latencies)
        return ordered[min(len(ordered) - 1, int(quantile * len(ordered)))]


def _default_ok(status: int, body: bytes) -> bool:
    return 200 <= status < 300


async def run_load(request: Request | Sequence[Request], *, connections: int,
                   seconds: float, warmup: float = 0.5) -> LoadResult:
    """Send ``request`` over ``connections`` keep-alive connections for ``seconds`` after a
    ``warmup`` whose answers are not counted; a sequence of requests (one per node) is spread
    over the connections round-robin."""
    requests = [request] if isinstance(request, Request) else list(request)
    latencies: list[float] = []
    counted = False
    errors = 0
    why: dict[str, int] = {}
    connector = aiohttp.TCPConnector(limit=connections, force_close=False)
    timeout = aiohttp.ClientTimeout(total=60)

    async def one_connection(session: aiohttp.ClientSession, request: Request,
                             stop_at: float) -> None:
        nonlocal errors
        ok = request.ok or _default_ok
        while (now := time.perf_counter()) < stop_at:
            try:
                async with session.request(request.method, request.url, data=request.body,
                                           headers=request.headers) as answer:
                    body = await answer.read()
                    good = ok(answer.status, body)
                    reason = (str(answer.status) if not 200 <= answer.status < 300
                              else f"{answer.status} unexpected body")
            except (aiohttp.ClientError, TimeoutError) as exc:
                good, reason = False, type(exc).__name__
            if counted:
                latencies.append(time.perf_counter() - now)
                if not good:
                    errors += 1
                    why[reason] = why.get(reason, 0) + 1

    async with aiohttp.ClientSession(connector=connector, timeout=timeout) as session:
        begin = time.perf_counter()
        end = begin + warmup + seconds
        workers = [asyncio.create_task(
                       one_connection(session, requests[number % len(requests)], end))
                   for number in range(connections)]
        await asyncio.sleep(warmup)
        counted = True
        measured_from, wall_from = time.perf_counter(), time.time()
        await asyncio.gather(*workers)
        measured = time.perf_counter() - measured_from
    return LoadResult(connections=connections, seconds=measured, answers=len(latencies),
                      errors=errors, latencies=latencies, measured_from=wall_from,
                      measured_to=time.time(), why=why)


class Summary(msgspec.Struct, frozen=True):
    """Medians over repeated load runs."""

    per_second: float
    p50_ms: float
    p99_ms: float
    errors: int
    repeats: int
    why: dict[str, int] = {}
    """The errors of every run, by kind (``LoadResult.why``)."""

    @property
    def errors_cell(self) -> str:
        """The errors for a report's table: ``0``, or the count with its kinds
        (``7 (TimeoutError)``, ``5 (503: 3, TimeoutError: 2)``)."""
        if not self.errors:
            return "0"
        if len(self.why) == 1:
            return f"{self.errors} ({next(iter(self.why))})"
        kinds = ", ".join(f"{kind}: {count}" for kind, count in sorted(self.why.items()))
        return f"{self.errors} ({kinds})" if kinds else str(self.errors)


def summarise(results: list[LoadResult]) -> Summary:
    """The median throughput, median p50 and median p99 of ``results``."""
    return Summary(
        per_second=statistics.median(r.per_second for r in results),
        p50_ms=statistics.median(r.latency(0.50) for r in results) * 1000,
        p99_ms=statistics.median(r.latency(0.99) for r in results) * 1000,
        errors=sum(r.errors for r in results),
        repeats=len(results),
        why={kind: sum(r.why.get(kind, 0) for r in results)
             for kind in sorted({kind for r in results for kind in r.why})},
    )


def json_body(value: Any) -> bytes:
    """``value`` encoded as JSON."""
    return msgspec.json.encode(value)
