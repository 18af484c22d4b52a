"""``PrometheusMetrics``: the ``Metrics`` port on prometheus-client, plus the HTTP and source
request counters the entrypoints feed, in a registry of this process's own.

Labels stay bounded: outcomes, statuses, methods, route templates and source types, never an
id or a URL. With several nodes each process reports its own numbers.
"""

import time
from typing import Any

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest
from prometheus_client.exposition import CONTENT_TYPE_LATEST

from spark_core.fires import FireOutcome
from spark_core.models import TaskStatus
from spark_core.ports import Metrics, Store, TaskFilter

CONTENT_TYPE = CONTENT_TYPE_LATEST
_RUN_BUCKETS = (0.1, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300, 600, 1800)
_DELAY_BUCKETS = (0.1, 0.5, 1, 2, 5, 10, 30, 60, 300, 900, 3600, 86400)
_HTTP_METHODS = frozenset({"GET", "POST", "PUT", "PATCH", "DELETE", "HEAD", "OPTIONS"})


class PrometheusMetrics(Metrics):
    """Spark's metrics for one process; ``render`` gives the text exposition format."""

    def __init__(self, *, version: str) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        self._http_series: dict[tuple[str, str, int], tuple[Any, Any]] = {}
        """The labelled request counter and duration of each (method, route, status): looked
        up once, as ``labels`` takes a lock and builds its key on every call."""
        self._source_counters: dict[tuple[str, str], Any] = {}
        """The labelled source request counter of each (source type, status), the same way."""
        registry = self.registry
        self.task_runs = Counter(
            "spark_task_runs_total", "Task attempts ended, by outcome (completed, reconciled, "
            "failed, retried, cancelled, interrupted)", ["outcome"], registry=registry)
        self.task_duration = Histogram(
            "spark_task_run_duration_seconds", "How long one task attempt took",
            buckets=_RUN_BUCKETS, registry=registry)
        self.tasks = Gauge("spark_tasks", "Tasks in the store, by status", ["status"],
                           registry=registry)
        self.fires = Counter(
            "spark_schedule_fires_total", "Fire-ledger decisions, by outcome", ["outcome"],
            registry=registry)
        self.fire_delay = Histogram(
            "spark_schedule_fire_delay_seconds",
            "Seconds from a nominal fire time to the scheduler's decision",
            buckets=_DELAY_BUCKETS, registry=registry)
        self.slots_busy = Gauge("spark_worker_slots_busy", "Runs this process has under way",
                                registry=registry)
        self.source_requests = Counter(
            "spark_source_requests_total", "HTTP requests to sources, by source type and "
            "status (the HTTP status, or error / timeout)", ["source_type", "status"],
            registry=registry)
        self.http_requests = Counter(
            "spark_http_requests_total", "Requests Spark's API answered",
            ["method", "route", "status"], registry=registry)
        self.http_duration = Histogram(
            "spark_http_request_duration_seconds", "How long Spark's API took to answer",
            ["method", "route"], registry=registry)
        build = Gauge("spark_build_info", "Spark's version", ["version"], registry=registry)
        build.labels(version=version).set(1)
        self._task_runs = {outcome: self.task_runs.labels(outcome=outcome)
                           for outcome in ("completed", "reconciled", "failed", "retried",
                                           "cancelled", "interrupted")}
        for fire_outcome in FireOutcome:
            self.fires.labels(outcome=str(fire_outcome))
        self.slots_busy.set(0)

    # -- the Metrics port ------------------------------------------------------------------
    def task_attempt_finished(self, *, outcome: str, duration_seconds: float | None) -> None:
        """Count the attempt and observe its duration."""
        counter = self._task_runs.get(outcome)
        (counter or self.task_runs.labels(outcome=outcome)).inc()
        if duration_seconds is not None:
            self.task_duration.observe(max(0.0, duration_seconds))

    def schedule_decided(self, *, outcome: FireOutcome, delay_seconds: float) -> None:
        """Count the decision and observe its delay."""
        self.fires.labels(outcome=str(outcome)).inc()
        self.fire_delay.observe(max(0.0, delay_seconds))

    def worker_busy(self, count: int) -> None:
        """Set the busy slots."""
        self.slots_busy.set(count)

    # -- fed by the entrypoints ------------------------------------------------------------
    def http_request(self, *, method: str, route: str, status: int, seconds: float) -> None:
        """Count one answered API request (``route`` is the route template)."""
        method = method if method in _HTTP_METHODS else "OTHER"
        series = self._http_series.get((method, route, status))
        if series is None:  # as many as the series themselves: methods, templates, statuses
            series = (self.http_requests.labels(method=method, route=route, status=str(status)),
                      self.http_duration.labels(method=method, route=route))
            self._http_series[(method, route, status)] = series
        series[0].inc()
        series[1].observe(seconds)

    async def refresh(self, store: Store) -> None:
        """Read the task counts by status from the store (before a scrape)."""
        for status in TaskStatus:
            page = await store.tasks.list(TaskFilter(status=status), limit=1, offset=0)
            self.tasks.labels(status=str(status)).set(page.total)

    def render(self) -> bytes:
        """Every metric in the Prometheus text format."""
        return generate_latest(self.registry)

    def count_source_request(self, source_type: str, status: str) -> None:
        """One HTTP request to a source answered with ``status`` (or ``error`` / ``timeout``);
        ``SourceHttp`` calls it (``SourceRegistry.default``'s ``count_requests``). An aiohttp
        trace on the shared session did this before, at ~20 µs a request."""
        counter = self._source_counters.get((source_type, status))
        if counter is None:  # prometheus_client's labels() costs more than the count
            counter = self.source_requests.labels(source_type=source_type, status=status)
            self._source_counters[(source_type, status)] = counter
        counter.inc()


def monotonic() -> float:
    """Seconds on a monotonic clock, for request durations."""
    return time.monotonic()
