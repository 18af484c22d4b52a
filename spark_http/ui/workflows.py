"""The workflows pages: the catalogue with latest run and success rate, what each source
offers (with sync), and one workflow with "run now" and its recent runs."""

from typing import Any

from litestar import Controller, Response, get, post
from litestar.params import FromPath, FromQuery
from litestar.response import Template

from spark_core.errors import SparkError
from spark_core.models import SourceId, WorkflowId
from spark_core.ports import ScheduleFilter, SourceFilter, TaskFilter, WorkflowFilter
from spark_core.services.workflows import WorkflowChanges
from spark_http.dependencies import SparkFacade
from spark_http.ui.pages import AnyRequest, form_data, page, redirect, utc_now

PAGE_SIZE = 50
RECENT_RUNS = 10


class WorkflowsController(Controller):
    """The catalogue, remote flows and sync, one workflow and running it."""

    path = "/workflows"

    @get("/")
    async def catalogue(self, request: AnyRequest, spark: SparkFacade,
                        offset: FromQuery[int] = 0, q: FromQuery[str | None] = None) -> Template:
        """The local catalogue by name, each with its latest run and success rate."""
        listed = await spark.workflows.list(WorkflowFilter(q=q or None), limit=PAGE_SIZE,
                                            offset=max(offset, 0))
        return page(request, "workflows.html", workflows=listed, q=q or "")

    @get("/remote")
    async def remote(self, request: AnyRequest, spark: SparkFacade) -> Template:
        """The flows each active source offers, with a sync button."""
        sources = await spark.sources.list(SourceFilter(), limit=100)
        catalogue = await spark.workflows.browse_remote()
        synced = await spark.workflows.list(WorkflowFilter(), limit=100)
        known = {(item.workflow.source_id, item.workflow.remote_flow_id): item.workflow.id
                 for item in synced.items}
        return page(request, "remote.html", sources=sources.items, catalogue=catalogue,
                    known=known)

    @post("/sync")
    async def sync(self, request: AnyRequest, spark: SparkFacade) -> Response[Any]:
        """Copy a remote flow into the catalogue (again: update it in place)."""
        fields = await form_data(request)
        try:
            workflow = await spark.workflows.sync(
                fields.get("flow_id", ""),
                source_id=SourceId(fields["source_id"]) if fields.get("source_id") else None)
        except SparkError as exc:
            return redirect(request, "/workflows/remote", alert=f"Sync failed: {exc.message}")
        return redirect(request, f"/workflows/{workflow.id}", notice=f"Synced {workflow.name}.")

    @get("/{workflow_id:str}")
    async def workflow(self, request: AnyRequest, spark: SparkFacade,
                       workflow_id: FromPath[str]) -> Template:
        """One workflow: run it now with an input; its schedules and recent runs."""
        found = await spark.workflows.get(workflow_id)
        runs = await spark.tasks.list(TaskFilter(workflow_id=found.id), limit=RECENT_RUNS)
        schedules = await spark.schedules.list(ScheduleFilter(workflow_id=found.id), limit=50)
        return page(request, "workflow.html", workflow=found, runs=runs,
                    schedules=schedules.items, names={found.id: found.name}, now=utc_now())

    @post("/{workflow_id:str}/run")
    async def run(self, request: AnyRequest, spark: SparkFacade,
                  workflow_id: FromPath[str]) -> Response[Any]:
        """Queue a run with the given input and open its task, where the answer appears."""
        fields = await form_data(request)
        try:
            task = await spark.tasks.create(WorkflowId(workflow_id),
                                            input_data=fields.get("input", ""))
        except SparkError as exc:
            return redirect(request, f"/workflows/{workflow_id}", alert=exc.message)
        return redirect(request, f"/tasks/{task.id}", notice="Run queued.")

    @post("/{workflow_id:str}/settings")
    async def settings(self, request: AnyRequest, spark: SparkFacade,
                       workflow_id: FromPath[str]) -> Response[Any]:
        """Save the workflow's local settings: its concurrency limit (empty: none) and its own
        webhook (empty: none), validated as the API does."""
        fields = await form_data(request)
        limit = fields.get("max_concurrency", "")
        if limit and not limit.isdigit():
            return redirect(request, f"/workflows/{workflow_id}",
                            alert="Max concurrency must be a whole number of at least 1.")
        changes = WorkflowChanges(max_concurrency=int(limit) if limit else None,
                                  webhook_url=fields.get("webhook_url") or None)
        try:
            await spark.workflows.update(workflow_id, changes)
        except SparkError as exc:
            return redirect(request, f"/workflows/{workflow_id}", alert=exc.message)
        return redirect(request, f"/workflows/{workflow_id}", notice="Settings saved.")
