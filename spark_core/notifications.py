"""Which final outcomes are worth a notification: a failed run, and the first completed run of
a workflow after one or more failed runs (Windmill's on_failure and on_recovery).

The decision is taken once per run, by the process that wrote its final outcome (writes are
fenced, so exactly one does), from the store alone: a completed run is a recovery when the
newest final run of its workflow created before it failed. No node keeps state of its own.
"""

from spark_core.models import RunEvent, RunEventKind, Task, TaskStatus
from spark_core.ports import TaskFilter, TaskRepository


async def run_event(tasks: TaskRepository, task: Task) -> RunEvent | None:
    """The event ``task``'s final outcome calls for, or ``None``. ``task`` carries the outcome
    just written (status, error, finished_at)."""
    if task.status == TaskStatus.FAILED:
        return _event(task, RunEventKind.FAILED)
    if task.status != TaskStatus.COMPLETED:
        return None
    previous = await failed_before(tasks, task)
    if previous is None:
        return None
    return _event(task, RunEventKind.RECOVERED, previous=previous)


async def failed_before(tasks: TaskRepository, task: Task) -> Task | None:
    """The newest ``failed`` or ``completed`` run of ``task``'s workflow created before it
    (runs still under way and cancelled runs do not count), if it failed; else ``None``.

    Asked as: the newest failed run created before ``task``, then whether a completed run
    came after it. A workflow that never failed costs one read of an empty page, where
    reading its last 50 runs cost a page of tasks for every completed run (15 % of a node's
    CPU under run-now load in the profile).
    """
    failed = await _newest(tasks, task, TaskStatus.FAILED, since=None)
    if failed is None:
        return None
    later = await _newest(tasks, task, TaskStatus.COMPLETED, since=failed)
    return failed if later is None else None


async def _newest(tasks: TaskRepository, task: Task, status: TaskStatus, *,
                  since: Task | None) -> Task | None:
    """The newest run of ``task``'s workflow in ``status`` created before ``task`` (and after
    ``since``, in the lists' order: created_at, then id), other than ``task``."""
    page = await tasks.list(
        TaskFilter(workflow_id=task.workflow_id, status=status, created_before=task.created_at,
                   created_after=None if since is None else since.created_at),
        limit=2, offset=0,  # the newest, and one more in case it is ``task`` itself
    )
    for earlier in page.items:  # newest first
        if earlier.id == task.id:
            continue
        if since is not None and (earlier.created_at, earlier.id) <= (since.created_at,
                                                                       since.id):
            return None
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
