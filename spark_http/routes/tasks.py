"""``/api/v1/tasks``: every execution, queued, running or finished."""

from datetime import UTC, datetime

from litestar import Controller, delete, get, post
from litestar.params import FromPath, FromQuery, JSONBody
from litestar.status_codes import HTTP_200_OK, HTTP_201_CREATED

from spark_core.models import ScheduleId, Task, TaskId, TaskStatus, WorkflowId
from spark_core.ports import TaskFilter
from spark_http.auth import SECURITY_SCHEME
from spark_http.dependencies import DEFAULT_LIMIT, Limit, Offset, Tasks
from spark_http.schemas import (
    PageOut,
    SparkResponse,
    TaskDeleted,
    TaskIn,
    TaskListItem,
    page_answers,
)

_PAGES = page_answers(TaskListItem.of)


class TaskController(Controller):
    """Queue, list, read, cancel, retry and delete tasks."""

    path = "/api/v1/tasks"
    tags = ["tasks"]
    security = [{SECURITY_SCHEME: []}]

    @get(["", "/"])
    async def list_tasks(
        self,
        *,
        tasks: Tasks,
        limit: Limit = DEFAULT_LIMIT,
        offset: Offset = 0,
        workflow_id: FromQuery[str | None] = None,
        schedule_id: FromQuery[str | None] = None,
        status: FromQuery[TaskStatus | None] = None,
        q: FromQuery[str | None] = None,
        created_after: FromQuery[datetime | None] = None,
        created_before: FromQuery[datetime | None] = None,
    ) -> SparkResponse[PageOut[TaskListItem]]:
        """List tasks, newest first; filter by ``workflow_id``, ``schedule_id``, ``status``,
        ``q`` (text in the input, answer or error, any case) and ``created_after`` (inclusive)
        / ``created_before`` (exclusive), ISO-8601 times (naive = UTC). List items leave out
        ``output_raw`` and ``attempts``; read one task for them."""
        filters = TaskFilter(
            workflow_id=WorkflowId(workflow_id) if workflow_id else None,
            schedule_id=ScheduleId(schedule_id) if schedule_id else None,
            status=status,
            q=q or None,
            created_after=_utc(created_after),
            created_before=_utc(created_before),
        )
        page = await tasks.list(filters, limit=limit, offset=offset)
        return _PAGES.answer(page)

    @post(["", "/"], status_code=HTTP_201_CREATED)
    async def create_task(self, tasks: Tasks, data: JSONBody[TaskIn]) -> Task:
        """Queue a run of a workflow (local or remote id); the answer is the pending task."""
        return await tasks.create(
            data.workflow_id,
            input_data=data.input_data,
            max_retries=data.max_retries,
            timeout=data.timeout,
            session_id=data.session_id,
            tweaks=data.tweaks,
        )

    @get("/{task_id:str}")
    async def get_task(self, tasks: Tasks, task_id: FromPath[str]) -> Task:
        """Read one task, with ``output_raw`` (the source's full response)."""
        return await tasks.get(TaskId(task_id))

    @delete("/{task_id:str}", status_code=HTTP_200_OK)
    async def delete_task(self, tasks: Tasks, task_id: FromPath[str]) -> TaskDeleted:
        """Delete a task; a pending or running one is cancelled first (``cancelled`` says so)."""
        before = await tasks.get(TaskId(task_id))
        await tasks.delete(TaskId(task_id))
        return TaskDeleted(deleted=True, id=task_id, cancelled=not before.status.is_final)

    @post("/{task_id:str}/retry", status_code=HTTP_201_CREATED)
    async def retry_task(self, tasks: Tasks, task_id: FromPath[str]) -> Task:
        """Run a finished task again with the same input, as a new pending task."""
        return await tasks.retry(TaskId(task_id))

    @post("/{task_id:str}/cancel", status_code=HTTP_200_OK)
    async def cancel_task(self, tasks: Tasks, task_id: FromPath[str]) -> Task:
        """Cancel a pending or running task (a running remote call is abandoned); a finished
        task cannot be cancelled (400)."""
        return await tasks.cancel(TaskId(task_id))


def _utc(value: datetime | None) -> datetime | None:
    """A query time with its offset, or UTC when it has none."""
    if value is None or value.tzinfo is not None:
        return value
    return value.replace(tzinfo=UTC)
