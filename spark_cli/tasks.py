"""``spark task …``: runs and their history; and how every command that starts a run waits."""

import contextlib
from collections.abc import Awaitable, Callable
from datetime import timedelta
from typing import TYPE_CHECKING, Any

import click

from spark_cli.output import (
    Column,
    cell,
    note,
    page_json,
    print_fields,
    print_json,
    print_page,
    progress,
)
from spark_cli.state import CliState, CommandFailed, pass_state

if TYPE_CHECKING:
    from datetime import datetime

    from spark_core.facade import Spark
    from spark_core.models import Task
    from spark_core.ports import TaskFilter

STATUSES = ["pending", "running", "completed", "failed", "cancelled"]
FOLLOW_SECONDS = 0.5
"""How often ``task list --follow`` asks the store what changed."""
FOLLOW_OVERLAP = timedelta(seconds=2)
"""How far back each ``--follow`` poll looks again, for changes that committed late."""

COLUMNS: list[Column] = [
    ("ID", lambda t: t.id),
    ("WORKFLOW", lambda t: t.workflow_id),
    ("STATUS", lambda t: t.status),
    ("TRIES", lambda t: t.tries),
    ("CREATED", lambda t: t.created_at),
    ("FINISHED", lambda t: t.finished_at),
    ("INPUT", lambda t: t.input_data),
]

json_option = click.option("--json", "as_json", is_flag=True, help="Print JSON (API field names).")
wait_option = click.option(
    "--wait/--no-wait",
    default=True,
    show_default=True,
    help="Run now in this process and wait for the answer, or only queue the task for a "
    "running `spark serve` or `spark worker`.",
)


def list_item(task: "Task") -> object:
    """A task as list endpoints show it: without the source's raw response or attempts."""
    from spark_http.presentation import TaskListItem

    return TaskListItem.of(task)


def show_task(task: "Task", *, as_json: bool) -> None:
    """Print one task in full (the raw response only in JSON)."""
    if as_json:
        print_json(task)
        return
    fields = {name: getattr(task, name) for name in task.__struct_fields__}
    fields.pop("output_raw")
    print_fields(fields)


def execute(
    state: CliState,
    create: "Callable[[Spark], Awaitable[Task]]",
    *,
    wait: bool,
    label: str,
    as_json: bool,
) -> None:
    """Create a task with ``create`` and, with ``wait``, run it in this process and print it.

    Only this task runs in this process (other queued work is left to the server), until it is
    final. Exit status 1 when the task failed or was cancelled (its error on stderr); Ctrl-C
    cancels it.
    """

    import asyncio

    async def operation(spark: "Spark") -> "Task":
        task = await create(spark)
        if not wait:
            return task
        async with progress(label):
            try:
                return await spark.worker.run_task(task.id)
            except asyncio.CancelledError:  # Ctrl-C: do not leave the run behind
                await spark.tasks.cancel(task.id)
                raise

    task = state.run(operation)
    if as_json:
        print_json(task)
    elif not wait:
        click.echo(task.id)
        note("Queued; a running `spark serve` or `spark worker` will run it.")
    elif task.output_data is not None:
        click.echo(task.output_data)
    if wait and task.status != "completed":
        reason = f": {task.error}" if task.error else ""
        raise CommandFailed(f"Task {task.id} {task.status}{reason}")
    if wait and not as_json:
        note(f"Task {task.id} completed")


def moment(text: str, option: str) -> "datetime":
    """An ISO-8601 time (naive = UTC), or an age such as ``7d`` counted back from now."""
    from datetime import UTC, datetime

    from spark_core.errors import InvalidScheduleError
    from spark_core.schedule_spec import parse_interval

    try:
        return datetime.now(UTC) - parse_interval(text)
    except InvalidScheduleError:
        pass
    try:
        parsed = datetime.fromisoformat(text.strip())
    except ValueError:
        raise click.BadParameter(
            f"{text!r} is neither an ISO-8601 time (2026-01-31T09:00) nor an age (30m, 7d)",
            param_hint=option) from None
    return parsed.replace(tzinfo=UTC) if parsed.tzinfo is None else parsed


@click.group()
def task() -> None:
    """Inspect, retry, cancel and remove tasks: one task per run of a workflow.

    \b
    Example: spark task list --status failed
    """


@task.command("list")
@click.option("--workflow", "workflow_id", metavar="ID", help="Only runs of this workflow.")
@click.option("--schedule", "schedule_id", metavar="ID", help="Only runs fired by this schedule.")
@click.option("--status", type=click.Choice(STATUSES), help="Only tasks in this status.")
@click.option("--search", metavar="TEXT",
              help="Only tasks whose input, answer or error contains TEXT (any case).")
@click.option("--since", metavar="TIME|AGE",
              help="Only tasks created at or after TIME (ISO-8601, naive = UTC) or AGE ago "
              "(like 2h, 7d).")
@click.option("--until", metavar="TIME|AGE", help="Only tasks created before TIME or AGE ago.")
@click.option("--limit", type=click.IntRange(1, 100), default=50, show_default=True)
@click.option("--offset", type=click.IntRange(min=0), default=0, show_default=True)
@click.option("--follow", is_flag=True,
              help="Keep watching: print each task that is created or changes, as it happens "
              "(one line each; JSON lines with --json), until Ctrl-C.")
@json_option
@pass_state
def list_tasks(
    state: CliState, *,
    workflow_id: str | None,
    schedule_id: str | None,
    status: str | None,
    search: str | None,
    since: str | None,
    until: str | None,
    limit: int,
    offset: int,
    follow: bool,
    as_json: bool,
) -> None:
    """List tasks, newest first; filter by workflow, schedule, status, text and time. With
    --follow, print instead each matching task that is created or changes from now on.

    \b
    Example: spark task list --status failed --search timeout --since 1d --json
    Example: spark task list --workflow 3f2a --follow
    """
    from spark_core.models import ScheduleId, TaskStatus, WorkflowId
    from spark_core.ports import TaskFilter

    filters = TaskFilter(
        workflow_id=WorkflowId(workflow_id) if workflow_id else None,
        schedule_id=ScheduleId(schedule_id) if schedule_id else None,
        status=TaskStatus(status) if status else None,
        q=search or None,
        created_after=moment(since, "--since") if since else None,
        created_before=moment(until, "--until") if until else None,
    )
    if follow:
        with contextlib.suppress(KeyboardInterrupt):  # Ctrl-C is how a follow ends: exit 0
            state.run(lambda spark: follow_tasks(spark, filters, as_json=as_json))
        return

    async def operation(spark: "Spark") -> Any:
        return await spark.tasks.list(filters, limit=limit, offset=offset)

    page = state.run(operation)
    if as_json:
        print_json(page_json(page, list_item))
    else:
        print_page(page, COLUMNS, "task")


async def follow_tasks(spark: "Spark", filters: "TaskFilter", *, as_json: bool) -> None:
    """Print each task matching ``filters`` that is created or changes from now on, oldest
    change first, polling the store every ``FOLLOW_SECONDS`` until cancelled.

    Each poll asks for tasks changed since ``FOLLOW_OVERLAP`` before the last change seen, as
    a change stamped a moment earlier may commit a moment later; a task is printed once per
    ``updated_at``."""
    import asyncio
    from datetime import UTC, datetime

    since = datetime.now(UTC)
    # what changed just before now is not news: only the overlap would bring it up
    printed = {task.id: task.updated_at
               for task in await _changed_since(spark, filters, since - FOLLOW_OVERLAP)}
    note("Following tasks; Ctrl-C to stop.")
    while True:
        changed = [task for task in await _changed_since(spark, filters, since - FOLLOW_OVERLAP)
                   if printed.get(task.id) != task.updated_at]
        for task in sorted(changed, key=lambda task: (task.updated_at, task.id)):
            printed[task.id] = task.updated_at
            since = max(since, task.updated_at)
            if as_json:
                print_json(list_item(task))
            else:
                click.echo(f"{cell(task.updated_at)}  {task.id}  {task.status:<9}  "
                           f"tries {task.tries}  {task.workflow_id}  "
                           f"{cell(task.error or task.input_data)}")
        horizon = since - FOLLOW_OVERLAP
        printed = {key: stamp for key, stamp in printed.items() if stamp >= horizon}
        await asyncio.sleep(FOLLOW_SECONDS)


async def _changed_since(spark: "Spark", filters: "TaskFilter", since: "datetime") -> "list[Task]":
    import msgspec

    window = msgspec.structs.replace(filters, updated_after=since)
    found: list[Task] = []
    while True:
        page = await spark.tasks.list(window, limit=100, offset=len(found))
        found.extend(page.items)
        if not page.has_more:
            return found


@task.command()
@click.argument("task_id")
@json_option
@pass_state
def show(state: CliState, *, task_id: str, as_json: bool) -> None:
    """Show one task: input, answer, error, tries and timing (JSON adds the raw response).

    \b
    Example: spark task show 0b9a…-… --json
    """
    from spark_core.models import TaskId

    async def operation(spark: "Spark") -> "Task":
        return await spark.tasks.get(TaskId(task_id))

    show_task(state.run(operation), as_json=as_json)


@task.command()
@click.argument("task_id")
@wait_option
@json_option
@pass_state
def retry(state: CliState, *, task_id: str, wait: bool, as_json: bool) -> None:
    """Run a finished task again with the same input, as a new task. Like `spark workflow
    run`, it waits for the answer (exit status 1 if the new run fails) unless --no-wait.

    \b
    Example: spark task retry 0b9a…-… --no-wait
    """
    from spark_core.models import TaskId

    execute(
        state,
        lambda spark: spark.tasks.retry(TaskId(task_id)),
        wait=wait,
        label=f"Retrying task {task_id}",
        as_json=as_json,
    )


@task.command()
@click.argument("task_id")
@json_option
@pass_state
def cancel(state: CliState, *, task_id: str, as_json: bool) -> None:
    """Cancel a pending or running task (a running remote call is abandoned).

    \b
    Example: spark task cancel 0b9a…-…
    """
    from spark_core.models import TaskId

    async def operation(spark: "Spark") -> "Task":
        return await spark.tasks.cancel(TaskId(task_id))

    cancelled = state.run(operation)
    if as_json:
        print_json(cancelled)
    else:
        click.echo(f"Task {cancelled.id} is {cancelled.status}")


@task.command()
@click.argument("task_id")
@pass_state
def remove(state: CliState, *, task_id: str) -> None:
    """Remove a task from the history (a task still running is cancelled first).

    \b
    Example: spark task remove 0b9a…-…
    """
    from spark_core.models import TaskId

    async def operation(spark: "Spark") -> "Task":
        return await spark.tasks.delete(TaskId(task_id))

    removed = state.run(operation)
    click.echo(f"Removed task {removed.id}")


@task.command()
@click.option("--before", required=True, metavar="TIME|AGE",
              help="Delete tasks that finished before TIME (ISO-8601, naive = UTC) or more "
              "than AGE ago (like 30d).")
@pass_state
def prune(state: CliState, *, before: str) -> None:
    """Delete finished tasks (completed, failed, cancelled) and their raw output that
    finished before a time or age; pending and running tasks stay. A server also prunes by
    itself after SPARK_TASK_RETENTION_DAYS.

    \b
    Example: spark task prune --before 30d
    """
    from spark_core.errors import InvalidScheduleError
    from spark_core.schedule_spec import parse_interval

    try:
        age = parse_interval(before)
    except InvalidScheduleError:
        cutoff = moment(before, "--before")

        async def operation(spark: "Spark") -> int:
            return await spark.tasks.prune(before=cutoff)
    else:
        async def operation(spark: "Spark") -> int:
            return await spark.tasks.prune(older_than=age)

    deleted = state.run(operation)
    click.echo(f"Deleted {deleted} finished task{'' if deleted == 1 else 's'}")
