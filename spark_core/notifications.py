"""Which final outcomes are worth a notification: a failed run, and the first completed run of
a workflow after one or more failed runs (Windmill's on_failure and on_recovery).

The decision is taken once per run, by the process that wrote its final outcome (writes are
fenced, so exactly one does), from the store alone: a completed run is a recovery when the
newest final run of its workflow created before it failed. No node keeps state of its own.
"""

from spark_core.models import RunEvent, RunEventKind, Task, TaskStatus
from spark_core.ports import TaskFilter, TaskRepository

LOOK_BACK = 50
"""How many earlier runs of the workflow are read to find the newest final one."""


async def run_event(tasks: TaskRepository, task: Task) -> RunEvent | None:
    """The event ``task``'s final outcome calls for, or ``None``. ``task`` carries the outcome
    just written (status, error, finished_at)."""
    if task.status == TaskStatus.FAILED:
        return _event(task, RunEventKind.FAILED)
    if task.status != TaskStatus.COMPLETED:
        return None
    previous = await previous_final_run(tasks, task)
    if previous is None or previous.status != TaskStatus.FAILED:
        return None
    return _event(task, RunEventKind.RECOVERED, previous=previous)


async def previous_final_run(tasks: TaskRepository, task: Task) -> Task | None:
    """The newest ``failed`` or ``completed`` run of ``task``'s workflow created before it
    (runs still under way and cancelled runs do not count)."""
    page = await tasks.list(
        TaskFilter(workflow_id=task.workflow_id, created_before=task.created_at),
        limit=LOOK_BACK, offset=0,
    )
    for earlier in page.items:  # newest first
        if earlier.id != task.id and earlier.status in (TaskStatus.FAILED, TaskStatus.COMPLETED):
            return earlier
    return None


def _event(task: Task, kind: RunEventKind, *, previous: Task | None = None) -> RunEvent:
    return RunEvent(
        event=kind,
        task_id=task.id,
        workflow_id=task.workflow_id,
        schedule_id=task.schedule_id,
        status=task.status,
        error=task.error,
        attempts=task.tries,
        finished_at=task.finished_at,
        previous_task_id=previous.id if previous is not None else None,
    )
