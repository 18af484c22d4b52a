"""The overview page, and the live event stream with the fragments it refreshes."""

import asyncio
from collections.abc import AsyncIterator, Iterable
from datetime import timedelta
from typing import Any

import msgspec
from litestar import Controller, get
from litestar.params import FromPath
from litestar.response import ServerSentEvent, ServerSentEventMessage, Template

from spark_core.errors import NotFoundError
from spark_core.facade import Spark
from spark_core.models import ScheduleStatus, TaskId, TaskStatus, Workflow, WorkflowId
from spark_core.ports import ScheduleFilter, TaskFilter
from spark_http.dependencies import SparkFacade
from spark_http.ui.live import TaskFeed
from spark_http.ui.pages import AnyRequest, page, utc_now

DAY = timedelta(hours=24)
NEXT_FIRES = 8
SCHEDULES_SCANNED = 100
RECENT_FAILURES = 5
IN_FLIGHT_SHOWN = 10
RETRY_MILLISECONDS = 3000


async def workflow_names(spark: Spark, ids: Iterable[str]) -> dict[str, str]:
    """The names of the workflows ``ids`` (a deleted one is missing), read concurrently."""
    wanted = sorted(set(ids))
    found = await asyncio.gather(*(spark.workflows.get(workflow_id) for workflow_id in wanted),
                                 return_exceptions=True)
    names: dict[str, str] = {}
    for workflow in found:
        if isinstance(workflow, Workflow):
            names[workflow.id] = workflow.name
        elif not isinstance(workflow, NotFoundError):
            raise workflow
    return names


async def overview_counts(spark: Spark) -> dict[str, Any]:
    """Tasks by status created in the last 24 h, and the runs in flight (counted by the store
    on its creation-time and status indexes, never loaded)."""
    by_status, running, pending = await asyncio.gather(
        spark.tasks.count_by_status(created_after=utc_now() - DAY),
        spark.tasks.list(TaskFilter(status=TaskStatus.RUNNING), limit=IN_FLIGHT_SHOWN),
        spark.tasks.list(TaskFilter(status=TaskStatus.PENDING), limit=1))
    return {"by_status": {status.value: count for status, count in by_status.items()},
            "total": sum(by_status.values()), "running": running, "pending": pending.total}


class OverviewController(Controller):
    """The overview, the event stream and the live fragments."""

    path = "/"

    @get("/")
    async def overview(self, request: AnyRequest, spark: SparkFacade) -> Template:
        """Health, runs by status over 24 h, runs in flight, next fires, recent failures."""
        counts, active, failures = await asyncio.gather(
            overview_counts(spark),
            spark.schedules.list(ScheduleFilter(status=ScheduleStatus.ACTIVE),
                                 limit=SCHEDULES_SCANNED),
            spark.tasks.list(TaskFilter(status=TaskStatus.FAILED), limit=RECENT_FAILURES))
        upcoming = sorted((item for item in active.items if item.next_run_at is not None),
                          key=lambda item: item.next_run_at or utc_now())[:NEXT_FIRES]
        names = await workflow_names(spark, [
            *(item.workflow_id for item in upcoming),
            *(task.workflow_id for task in failures.items),
            *(task.workflow_id for task in counts["running"].items)])
        return page(request, "overview.html", health=spark.health(), counts=counts,
                    upcoming=upcoming, failures=failures.items, names=names,
                    schedules_total=active.total, now=utc_now())

    @get("/fragments/overview-counts")
    async def counts_fragment(self, request: AnyRequest, spark: SparkFacade) -> Template:
        """The overview's counts and runs in flight, refreshed live."""
        counts = await overview_counts(spark)
        names = await workflow_names(spark, (t.workflow_id for t in counts["running"].items))
        return page(request, "_counts.html", counts=counts, names=names, now=utc_now())

    @get("/fragments/task-row/{task_id:str}")
    async def task_row(self, request: AnyRequest, spark: SparkFacade,
                       task_id: FromPath[str]) -> Template:
        """One row of the task table; empty when the task does not match the table's filter
        (the same query parameters as the tasks page)."""
        task = await spark.tasks.get(TaskId(task_id))
        query = request.query_params
        shown = all((
            not query.get("status") or query.get("status") == task.status,
            not query.get("workflow_id") or query.get("workflow_id") == task.workflow_id,
            not query.get("schedule_id") or query.get("schedule_id") == task.schedule_id,
            not query.get("q") or any(query["q"].casefold() in (text or "").casefold()
                                      for text in (task.input_data, task.output_data,
                                                   task.error)),
        ))
        names = await workflow_names(spark, [task.workflow_id]) if shown else {}
        return page(request, "_task_row.html", task=task if shown else None, names=names,
                    now=utc_now())

    @get("/fragments/task/{task_id:str}")
    async def task_panel(self, request: AnyRequest, spark: SparkFacade,
                         task_id: FromPath[str]) -> Template:
        """The changing part of a task's page: status, answer, error, tries, timing."""
        task = await spark.tasks.get(TaskId(task_id))
        names = await workflow_names(spark, [WorkflowId(task.workflow_id)])
        return page(request, "_task_panel.html", task=task, names=names, now=utc_now())

    @get("/events")
    async def events(self, request: AnyRequest, spark: SparkFacade) -> ServerSentEvent:
        """Task changes as Server-Sent Events (``event: task``), a comment now and then to
        keep the connection open, until the client leaves or the server stops."""
        feed: TaskFeed = request.app.state.ui_feed

        async def messages() -> AsyncIterator[ServerSentEventMessage]:
            yield ServerSentEventMessage(comment="connected", retry=RETRY_MILLISECONDS,
                                         data=None)
            async for change in feed.stream(spark):
                if change is None:
                    yield ServerSentEventMessage(comment="keepalive", data=None)
                else:
                    yield ServerSentEventMessage(event="task",
                                                 data=msgspec.json.encode(change).decode())

        return ServerSentEvent(messages(), headers={"X-Accel-Buffering": "no",
                                                    "Cache-Control": "no-store"})
