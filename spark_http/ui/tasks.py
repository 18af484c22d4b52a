"""The tasks pages: filter by status, workflow, schedule and text; one task with its input,
answer, raw response, error, tries and timing; retry and cancel, one or a whole filter (the
count is shown before anything is done)."""

import urllib.parse
from typing import Any

from litestar import Controller, Response, get, post
from litestar.params import FromPath, FromQuery
from litestar.response import Template

from spark_core.errors import InvalidStateError, SparkError
from spark_core.facade import Spark
from spark_core.models import ScheduleId, TaskId, TaskStatus, WorkflowId
from spark_core.ports import TaskFilter, WorkflowFilter
from spark_http.dependencies import SparkFacade
from spark_http.ui.overview import workflow_names
from spark_http.ui.pages import AnyRequest, form_data, page, redirect, utc_now

PAGE_SIZE = 50
BULK_MAX = 1000
"""At most this many tasks are changed by one bulk action (the page says when more match)."""
FILTER_NAMES = ("status", "workflow_id", "schedule_id", "q")
ACTIVE = (TaskStatus.PENDING, TaskStatus.RUNNING)
UNSUCCESSFUL = (TaskStatus.FAILED, TaskStatus.CANCELLED)


def task_filter(values: dict[str, str]) -> TaskFilter:
    """The store filter for the tasks page's query (unknown statuses are ignored)."""
    status = values.get("status")
    return TaskFilter(
        status=TaskStatus(status) if status in set(TaskStatus) else None,
        workflow_id=WorkflowId(values["workflow_id"]) if values.get("workflow_id") else None,
        schedule_id=ScheduleId(values["schedule_id"]) if values.get("schedule_id") else None,
        q=values.get("q") or None,
    )


def bulk_statuses(action: str, filters: TaskFilter) -> tuple[TaskStatus, ...]:
    """The statuses a bulk action acts on within ``filters``: cancel takes pending and running
    tasks; retry takes failed and cancelled ones, or the finished status the filter names."""
    targets: tuple[TaskStatus, ...]
    if action == "cancel":
        targets = ACTIVE
    elif filters.status is not None and filters.status.is_final:
        targets = (filters.status,)
    else:
        targets = UNSUCCESSFUL
    return tuple(s for s in targets if filters.status in (None, s))


async def bulk_count(spark: Spark, action: str, filters: TaskFilter) -> int:
    """How many tasks a bulk action would change."""
    total = 0
    for status in bulk_statuses(action, filters):
        narrowed = TaskFilter(**{**_as_dict(filters), "status": status})
        total += (await spark.tasks.list(narrowed, limit=1)).total
    return total


def _as_dict(filters: TaskFilter) -> dict[str, Any]:
    return {name: getattr(filters, name) for name in TaskFilter.__struct_fields__}


def _query(request: AnyRequest) -> dict[str, str]:
    return {name: request.query_params.get(name, "").strip() for name in FILTER_NAMES}


class TasksController(Controller):
    """List, inspect, retry and cancel tasks, one at a time or by filter."""

    path = "/tasks"

    @get("/")
    async def list_tasks(self, request: AnyRequest, spark: SparkFacade,
                         offset: FromQuery[int] = 0) -> Template:
        """Tasks newest first, filtered; updated live."""
        values = _query(request)
        filters = task_filter(values)
        listed = await spark.tasks.list(filters, limit=PAGE_SIZE, offset=max(offset, 0))
        catalogue = await spark.workflows.list(WorkflowFilter(), limit=100)
        names: dict[str, str] = {item.workflow.id: item.workflow.name
                                 for item in catalogue.items}
        missing = {task.workflow_id for task in listed.items} - set(names)
        names.update(await workflow_names(spark, missing))
        return page(request, "tasks.html", tasks=listed, values=values, names=names,
                    workflows=[item.workflow for item in catalogue.items],
                    statuses=list(TaskStatus), now=utc_now())

    @get("/bulk")
    async def bulk_confirm(self, request: AnyRequest, spark: SparkFacade,
                           action: FromQuery[str] = "cancel") -> Template:
        """What a bulk action would do (how many tasks), with the button that does it."""
        if action not in ("cancel", "retry"):
            action = "cancel"
        values = _query(request)
        filters = task_filter(values)
        count = await bulk_count(spark, action, filters)
        return page(request, "bulk.html", action=action, values=values, count=count,
                    statuses=bulk_statuses(action, filters), limit=BULK_MAX)

    @post("/bulk")
    async def bulk(self, request: AnyRequest, spark: SparkFacade) -> Response[Any]:
        """Cancel or retry every task of the filter (up to ``BULK_MAX``)."""
        form = await form_data(request)
        action = form.get("action", "")
        values = {name: form.get(name, "") for name in FILTER_NAMES}
        filters = task_filter(values)
        done = 0
        for status in bulk_statuses(action, filters):
            narrowed = TaskFilter(**{**_as_dict(filters), "status": status})
            listed = await spark.tasks.list(narrowed, limit=BULK_MAX - done)
            for task in listed.items:
                try:
                    if action == "cancel":
                        await spark.tasks.cancel(task.id)
                    else:
                        await spark.tasks.retry(task.id)
                except InvalidStateError:
                    continue  # finished or changed meanwhile
                done += 1
        query = urllib.parse.urlencode({name: value for name, value in values.items() if value})
        verb = "Cancelled" if action == "cancel" else "Queued again"
        return redirect(request, f"/tasks/?{query}" if query else "/tasks/",
                        notice=f"{verb} {done} task(s).")

    @get("/{task_id:str}")
    async def task(self, request: AnyRequest, spark: SparkFacade,
                   task_id: FromPath[str]) -> Template:
        """One task: input, answer, raw response, error, tries and timing; updated live."""
        found = await spark.tasks.get(TaskId(task_id))
        names = await workflow_names(spark, [found.workflow_id])
        return page(request, "task.html", task=found, names=names, now=utc_now())

    @post("/{task_id:str}/{action:str}")
    async def act(self, request: AnyRequest, spark: SparkFacade, task_id: FromPath[str],
                  action: FromPath[str]) -> Response[Any]:
        """Retry (as a new task, which opens) or cancel one task."""
        try:
            if action == "retry":
                again = await spark.tasks.retry(TaskId(task_id))
                return redirect(request, f"/tasks/{again.id}", notice="Queued again.")
            if action == "cancel":
                await spark.tasks.cancel(TaskId(task_id))
                return redirect(request, f"/tasks/{task_id}", notice="Cancelled.")
        except SparkError as exc:
            return redirect(request, f"/tasks/{task_id}", alert=exc.message)
        return redirect(request, f"/tasks/{task_id}", alert=f"Unknown action {action!r}.")
