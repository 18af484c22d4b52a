"""``spark workflow …``: what sources offer, the local catalogue, and running a workflow now."""

import sys
from typing import TYPE_CHECKING, Any

import click

from spark_cli.output import (
    Column,
    note,
    page_json,
    print_fields,
    print_json,
    print_page,
    print_table,
    progress,
)
from spark_cli.state import CliState, pass_state
from spark_cli.tasks import execute, wait_option

if TYPE_CHECKING:
    from spark_core.facade import Spark
    from spark_core.models import Workflow, WorkflowSummary
    from spark_core.services.workflows import RemoteCatalogue, RemoteListing

COLUMNS: list[Column] = [
    ("ID", lambda s: s.workflow.id),
    ("NAME", lambda s: s.workflow.name),
    ("TYPE", lambda s: s.workflow.flow_type),
    ("SOURCE", lambda s: s.workflow.source),
    ("LATEST", lambda s: s.latest_run),
    ("TASKS", lambda s: s.task_count),
    ("FAILED", lambda s: s.failed_task_count),
]
REMOTE_COLUMNS: list[Column] = [
    ("REMOTE ID", lambda r: r.flow.remote_id),
    ("NAME", lambda r: r.flow.name),
    ("TYPE", lambda r: r.flow.flow_type),
    ("FOLDER", lambda r: r.flow.folder_name),
    ("SOURCE", lambda r: r.source.url),
]

json_option = click.option("--json", "as_json", is_flag=True, help="Print JSON (API field names).")
source_option = click.option(
    "--source", "source_ref", metavar="ID|URL", help="A source, by id or by URL."
)


def source_filter(source_ref: str | None) -> dict[str, Any]:
    """``--source`` as the services take it: ``source_url`` when it looks like a URL."""
    from spark_core.models import SourceId

    if not source_ref:
        return {}
    if "://" in source_ref:
        return {"source_url": source_ref}
    return {"source_id": SourceId(source_ref)}


def summary_json(summary: "WorkflowSummary") -> object:
    """A catalogue entry as the API lists it: the workflow's fields plus its run statistics."""
    from spark_http.presentation import WorkflowListItem

    return WorkflowListItem.of(summary)


def remote_json(listing: "RemoteListing", *, simplified: bool = True) -> object:
    """A remote flow as ``GET /api/v1/workflows/remote`` answers it: ``id`` is the remote id,
    with the source it lives on and its graph's components; ``data`` only when not simplified."""
    from spark_http.presentation import RemoteFlowOut

    return RemoteFlowOut.of(listing.flow, listing.source, simplified=simplified)


def show_workflow(workflow: "Workflow", *, as_json: bool) -> None:
    """Print one workflow (its remote definition only in JSON)."""
    if as_json:
        print_json(workflow)
        return
    fields = {name: getattr(workflow, name) for name in workflow.__struct_fields__}
    fields.pop("data")
    print_fields(fields)


@click.group()
def workflow() -> None:
    """Browse what sources offer, sync flows into the local catalogue, and run them.

    \b
    Example: spark workflow remote --source http://localhost:7860
    """


@workflow.command()
@source_option
@click.option("--full", is_flag=True, help="With --json, include each flow's definition.")
@json_option
@pass_state
def remote(state: CliState, *, source_ref: str | None, full: bool, as_json: bool) -> None:
    """List the flows, agents, teams and workflows available on active sources (or on one).

    \b
    Example: spark workflow remote --source 3f6c…-… --json
    """

    async def operation(spark: "Spark") -> "RemoteCatalogue":
        async with progress("Listing remote flows"):
            return await spark.workflows.browse_remote(**source_filter(source_ref))

    catalogue = state.run(operation)
    for unlisted in catalogue.unlisted:
        note(f"Warning: could not list source {unlisted.source.name} ({unlisted.source.url}): "
             f"{unlisted.reason}")
    listings = catalogue.listings
    if as_json:
        print_json([remote_json(listing, simplified=not full) for listing in listings])
    elif listings:
        print_table(listings, REMOTE_COLUMNS)
    else:
        note("No remote flows.")


@workflow.command()
@click.argument("flow_id")
@source_option
@click.option("--input-component", metavar="ID", help="The node that takes the input.")
@click.option("--output-component", metavar="ID", help="The node whose output is the answer.")
@json_option
@pass_state
def sync(
    state: CliState, *,
    flow_id: str,
    source_ref: str | None,
    input_component: str | None,
    output_component: str | None,
    as_json: bool,
) -> None:
    """Copy a remote flow into the catalogue (again: update it in place) and print its local id.

    \b
    Example: spark workflow sync 1b6e2d1c-… --source http://localhost:7860
    """

    async def operation(spark: "Spark") -> "Workflow":
        async with progress(f"Syncing {flow_id}"):
            return await spark.workflows.sync(
                flow_id,
                input_component=input_component,
                output_component=output_component,
                **source_filter(source_ref),
            )

    synced = state.run(operation)
    if as_json:
        print_json(synced)
    else:
        click.echo(synced.id)
        note(f"Synced '{synced.name}' ({synced.flow_type}) from {synced.source}")


@workflow.command("list")
@source_option
@click.option(
    "--type", "flow_type",
    type=click.Choice(["langflow", "hive_agent", "hive_team", "hive_workflow"]),
    help="Only this kind of workflow.",
)
@click.option("-q", "--search", "query", help="Only names containing this text.")
@click.option("--limit", type=click.IntRange(1, 100), default=50, show_default=True)
@click.option("--offset", type=click.IntRange(min=0), default=0, show_default=True)
@json_option
@pass_state
def list_workflows(
    state: CliState, *,
    source_ref: str | None,
    flow_type: str | None,
    query: str | None,
    limit: int,
    offset: int,
    as_json: bool,
) -> None:
    """List the local catalogue with each workflow's latest run and task counts.

    \b
    Example: spark workflow list -q support --json
    """
    from spark_core.ports import WorkflowFilter

    filters = WorkflowFilter(flow_type=flow_type, q=query, **source_filter(source_ref))

    async def operation(spark: "Spark") -> Any:
        return await spark.workflows.list(filters, limit=limit, offset=offset)

    page = state.run(operation)
    if as_json:
        print_json(page_json(page, summary_json))
    else:
        print_page(page, COLUMNS, "workflow")


@workflow.command()
@click.argument("workflow_id")
@json_option
@pass_state
def show(state: CliState, *, workflow_id: str, as_json: bool) -> None:
    """Show one workflow, by local id or remote id (JSON adds its remote definition).

    \b
    Example: spark workflow show 8d2e…-… --json
    """

    async def operation(spark: "Spark") -> "Workflow":
        return await spark.workflows.get(workflow_id)

    show_workflow(state.run(operation), as_json=as_json)


@workflow.command()
@click.argument("workflow_id")
@click.option("--max-concurrency", type=click.IntRange(min=1), metavar="N",
              help="At most N runs of it running at once, across all nodes; the rest wait "
                   "pending.")
@click.option("--unlimited", is_flag=True, help="Lift the concurrency limit.")
@click.option("--webhook-url", metavar="URL",
              help="Also announce its failed runs, and its first success after failures, at "
                   "this http(s) URL (signed with SPARK_WEBHOOK_SECRET).")
@click.option("--no-webhook", is_flag=True, help="Stop announcing its runs at its own URL.")
@json_option
@pass_state
def update(
    state: CliState, *, workflow_id: str, max_concurrency: int | None, unlimited: bool,
    webhook_url: str | None, no_webhook: bool, as_json: bool,
) -> None:
    """Change a workflow's local settings (syncing again keeps them) and show it.

    \b
    Example: spark workflow update 8d2e…-… --max-concurrency 2
    Example: spark workflow update 8d2e…-… --webhook-url https://hooks.example.com/spark
    """
    if max_concurrency is not None and unlimited:
        raise click.UsageError("Give --max-concurrency N or --unlimited, not both.")
    if webhook_url is not None and no_webhook:
        raise click.UsageError("Give --webhook-url URL or --no-webhook, not both.")
    changes: dict[str, Any] = {}
    if max_concurrency is not None or unlimited:
        changes["max_concurrency"] = max_concurrency
    if webhook_url is not None or no_webhook:
        changes["webhook_url"] = webhook_url
    if not changes:
        raise click.UsageError(
            "Give a setting to change: --max-concurrency N, --unlimited, --webhook-url URL or "
            "--no-webhook.")

    async def operation(spark: "Spark") -> "Workflow":
        from spark_core.services.workflows import WorkflowChanges

        return await spark.workflows.update(workflow_id, WorkflowChanges(**changes))

    show_workflow(state.run(operation), as_json=as_json)


@workflow.command()
@click.argument("workflow_id")
@click.option("-i", "--input", "input_value", default="", help="The input text (the message).")
@click.option("--stdin", "from_stdin", is_flag=True, help="Read the input text from stdin.")
@wait_option
@click.option("--timeout", type=click.FloatRange(min=0, min_open=True), metavar="SECONDS",
              help="How long one remote attempt may take [default: SPARK_HTTP_TIMEOUT].")
@click.option("--max-retries", type=click.IntRange(0, 10), default=3, show_default=True,
              help="Retries after transient failures.")
@click.option("--session-id", help="The conversation to continue (default: a new one).")
@click.option("--tweaks", metavar="JSON", help="Per-component overrides, as a JSON object.")
@json_option
@pass_state
def run(
    state: CliState, *,
    workflow_id: str,
    input_value: str,
    from_stdin: bool,
    wait: bool,
    timeout: float | None,
    max_retries: int,
    session_id: str | None,
    tweaks: str | None,
    as_json: bool,
) -> None:
    """Run a workflow now, in this process, and print its answer (--json: the finished task).

    Exit status 1 when the run failed or was cancelled, with its error on stderr (with --json
    the task is still printed). With --no-wait the task is only queued and its id printed; a
    running `spark serve` or `spark worker` picks it up.

    \b
    Example: spark workflow run 8d2e…-… --input "Hello"
    """
    import msgspec

    if from_stdin:
        input_value = sys.stdin.read()
    tweak_values: dict[str, Any] | None = None
    if tweaks is not None:
        try:
            tweak_values = msgspec.json.decode(tweaks, type=dict[str, Any])
        except msgspec.DecodeError as exc:
            raise click.BadParameter(f"not a JSON object ({exc})", param_hint="--tweaks") from exc

    execute(
        state,
        lambda spark: spark.tasks.create(
            workflow_id,
            input_data=input_value,
            max_retries=max_retries,
            timeout=timeout,
            session_id=session_id,
            tweaks=tweak_values,
        ),
        wait=wait,
        label=f"Running {workflow_id}",
        as_json=as_json,
    )


@workflow.command()
@click.argument("workflow_id")
@click.option("--yes", is_flag=True, help="Do not ask for confirmation.")
@pass_state
def remove(state: CliState, *, workflow_id: str, yes: bool) -> None:
    """Remove a workflow from the catalogue with its schedules and tasks.

    \b
    Example: spark workflow remove 8d2e…-… --yes
    """
    from spark_core.models import WorkflowDeletion

    if not yes:
        click.confirm(f"Remove workflow {workflow_id} with its schedules and tasks?", abort=True)

    async def operation(spark: "Spark") -> WorkflowDeletion:
        return await spark.workflows.delete(workflow_id)

    deletion = state.run(operation)
    click.echo(
        f"Removed workflow {deletion.workflow_id} with {deletion.schedules_deleted} schedule(s) "
        f"and {deletion.tasks_deleted} task(s)"
    )
