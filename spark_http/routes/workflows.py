"""``/api/v1/workflows``: the remote catalogue, syncing, the local catalogue, and runs."""

from typing import Annotated, Any

from litestar import Controller, Request, delete, get, patch, post
from litestar.params import FromPath, FromQuery, JSONBody, QueryParameter
from litestar.status_codes import HTTP_200_OK, HTTP_202_ACCEPTED

from spark_core.models import FlowType, SourceId, Task, Workflow
from spark_core.ports import WorkflowFilter
from spark_core.services.workflows import WorkflowChanges
from spark_http.auth import SECURITY_SCHEME
from spark_http.dependencies import DEFAULT_LIMIT, Limit, Offset, Tasks, Workflows
from spark_http.schemas import (
    PageOut,
    RemoteFlowOut,
    SparkResponse,
    WorkflowDeleted,
    WorkflowListItem,
    page_answers,
    parse_run_body,
)

_PAGES = page_answers(WorkflowListItem.of)

UNAVAILABLE_HEADER = "X-Spark-Unavailable-Sources"
"""Names, by URL, the sources a remote listing had to leave out (the body stays a list)."""


def _source_id(source_id: str | None) -> SourceId | None:
    return SourceId(source_id) if source_id else None


class WorkflowController(Controller):
    """Browse what sources offer, sync it, manage the catalogue, and run workflows."""

    path = "/api/v1/workflows"
    tags = ["workflows"]
    security = [{SECURITY_SCHEME: []}]

    @get(["", "/"])
    async def list_workflows(
        self,
        *,
        workflows: Workflows,
        limit: Limit = DEFAULT_LIMIT,
        offset: Offset = 0,
        source_id: FromQuery[str | None] = None,
        source: Annotated[
            str | None, QueryParameter(description="The source URL; only its workflows are listed")
        ] = None,
        flow_type: FromQuery[FlowType | None] = None,
        q: Annotated[str | None, QueryParameter(description="Name contains (any case)")] = None,
    ) -> SparkResponse[PageOut[WorkflowListItem]]:
        """List the local catalogue by name, each entry with ``latest_run`` (``NEW`` or the
        upper-cased status of its newest task), ``task_count`` and ``failed_task_count``."""
        filters = WorkflowFilter(
            source_id=_source_id(source_id), source_url=source, flow_type=flow_type, q=q
        )
        page = await workflows.list(filters, limit=limit, offset=offset)
        return _PAGES.answer(page)

    @get("/remote")
    async def list_remote_flows(
        self,
        workflows: Workflows,
        source_url: FromQuery[str | None] = None,
        source_id: FromQuery[str | None] = None,
        simplified: FromQuery[bool] = True,
    ) -> SparkResponse[list[RemoteFlowOut]]:
        """List the flows, agents, teams and workflows available on active sources (or on the
        one named by ``source_url`` or ``source_id``). ``simplified`` (default true) leaves out
        each flow's full definition. Sources that could not be listed are left out and named,
        by URL, in the ``X-Spark-Unavailable-Sources`` header (comma-separated)."""
        catalogue = await workflows.browse_remote(
            source_id=_source_id(source_id), source_url=source_url
        )
        flows = [
            RemoteFlowOut.of(listing.flow, listing.source, simplified=simplified)
            for listing in catalogue.listings
        ]
        headers: dict[str, str] = {}
        if catalogue.unlisted:
            headers[UNAVAILABLE_HEADER] = ", ".join(item.source.url for item in catalogue.unlisted)
        return SparkResponse(flows, headers=headers)

    @get("/remote/{flow_id:str}")
    async def get_remote_flow(
        self,
        workflows: Workflows,
        flow_id: FromPath[str],
        source_url: FromQuery[str | None] = None,
        source_id: FromQuery[str | None] = None,
    ) -> RemoteFlowOut:
        """Read one remote flow with its full definition."""
        listing = await workflows.get_remote(
            flow_id, source_id=_source_id(source_id), source_url=source_url
        )
        return RemoteFlowOut.of(listing.flow, listing.source, simplified=False)

    @post("/sync/{flow_id:str}", status_code=HTTP_200_OK)
    async def sync_flow(
        self,
        *,
        workflows: Workflows,
        flow_id: FromPath[str],
        source_url: FromQuery[str | None] = None,
        source_id: FromQuery[str | None] = None,
        input_component: FromQuery[str | None] = None,
        output_component: FromQuery[str | None] = None,
    ) -> Workflow:
        """Copy a remote flow into the catalogue (from the named source, or the first active
        source that has it). Syncing again updates the same workflow in place."""
        return await workflows.sync(
            flow_id,
            source_id=_source_id(source_id),
            source_url=source_url,
            input_component=input_component,
            output_component=output_component,
        )

    @get("/{workflow_id:str}")
    async def get_workflow(self, workflows: Workflows, workflow_id: FromPath[str]) -> Workflow:
        """Read one workflow by its local id or its remote flow id."""
        return await workflows.get(workflow_id)

    @patch("/{workflow_id:str}")
    async def update_workflow(
        self, workflows: Workflows, workflow_id: FromPath[str], data: JSONBody[WorkflowChanges]
    ) -> Workflow:
        """Change a workflow's local settings: ``max_concurrency`` (at least 1, or null for no
        limit) caps how many of its runs are ``running`` at once across all nodes (the others
        wait ``pending``); ``webhook_url`` (http or https, or null) is told of its failed runs
        and of its first completed run after failures, besides the global webhook. Fields left
        out stay as they are; syncing the workflow again keeps them."""
        return await workflows.update(workflow_id, data)

    @delete("/{workflow_id:str}", status_code=HTTP_200_OK)
    async def delete_workflow(
        self, workflows: Workflows, workflow_id: FromPath[str]
    ) -> WorkflowDeleted:
        """Delete a workflow with its schedules and tasks; the answer counts what was removed."""
        return WorkflowDeleted.of(await workflows.delete(workflow_id))

    @post("/{workflow_id:str}/run", status_code=HTTP_200_OK)
    async def run_workflow(
        self,
        request: Request[Any, Any, Any],
        tasks: Tasks,
        workflow_id: FromPath[str],
        wait: Annotated[
            bool | None,
            QueryParameter(description="false: answer 202 at once with the pending task"),
        ] = None,
    ) -> SparkResponse[Task]:
        """Run a workflow now through the worker.

        The body is a bare JSON string or ``text/plain`` (the input), or an object
        ``{"input_value", "tweaks", "session_id", "wait", "timeout", "max_retries"}``.
        By default the answer is the finished task (200, also when it failed: its ``status``
        and ``error`` say so). With ``wait`` false (query or body) the answer is 202 with the
        pending task; poll ``GET /api/v1/tasks/{id}``.
        """
        body = parse_run_body(await request.body(), request.headers.get("content-type", ""))
        waits = wait is not False and body.wait is not False
        task = await tasks.run(
            workflow_id,
            input_data=body.input_value,
            wait=waits,
            max_retries=body.max_retries,
            timeout=body.timeout,
            session_id=body.session_id,
            tweaks=body.tweaks,
        )
        return SparkResponse(task, status_code=HTTP_200_OK if waits else HTTP_202_ACCEPTED)
