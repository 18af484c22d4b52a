"""``spark source …``: the servers where workflows live (LangFlow, Automagik Hive)."""

from typing import TYPE_CHECKING, Any

import click

from spark_cli.output import (
    Column,
    note,
    page_json,
    print_fields,
    print_json,
    print_page,
    progress,
    read_secret,
    to_builtins,
)
from spark_cli.state import CliState, pass_state

if TYPE_CHECKING:
    from spark_core.facade import Spark
    from spark_core.models import Source

API_KEY_ENV = "SPARK_SOURCE_API_KEY"

COLUMNS: list[Column] = [
    ("ID", lambda s: s.id),
    ("NAME", lambda s: s.name),
    ("TYPE", lambda s: s.source_type),
    ("URL", lambda s: s.url),
    ("STATUS", lambda s: s.status),
    ("VERSION", lambda s: s.version_info.get("version")),
]


def show_source(source: "Source", *, as_json: bool) -> None:
    """Print one source: its fields, never its key (the domain object does not carry one)."""
    if as_json:
        print_json(source)
        return
    fields: dict[str, Any] = to_builtins(source)
    print_fields({**fields, "created_at": source.created_at, "updated_at": source.updated_at})


def key_options(command: Any) -> Any:
    """The three ways to give a source's API key, none of which leaves it in shell history
    except the first."""
    command = click.option(
        "--ask-api-key", is_flag=True, help="Prompt for the API key (input hidden)."
    )(command)
    command = click.option(
        "--api-key-stdin", is_flag=True, help="Read the API key from the first line of stdin."
    )(command)
    return click.option(
        "--api-key",
        envvar=API_KEY_ENV,
        show_envvar=True,
        metavar="KEY",
        help="The source's API key (prefer the env var, --api-key-stdin or --ask-api-key).",
    )(command)


json_option = click.option("--json", "as_json", is_flag=True, help="Print JSON (API field names).")


@click.group()
def source() -> None:
    """Add, inspect, check and remove sources: the LangFlow and Automagik Hive servers whose
    flows Spark runs. A source's API key is stored encrypted and never printed.

    \b
    Example: spark source list
    """


@source.command()
@click.option("--name", required=True, help="A name for people to recognise it by.")
@click.option(
    "--type", "source_type", required=True, metavar="TYPE",
    help="langflow or automagik-hive (hive is accepted).",
)
@click.option("--url", required=True, help="The server's base URL.")
@key_options
@click.option("--no-verify-tls", is_flag=True, help="Accept an invalid TLS certificate.")
@json_option
@pass_state
def add(
    state: CliState, *,
    name: str,
    source_type: str,
    url: str,
    api_key: str | None,
    api_key_stdin: bool,
    ask_api_key: bool,
    no_verify_tls: bool,
    as_json: bool,
) -> None:
    """Add a source after checking it answers (health, version, and the key on a listing).

    \b
    Example: spark source add --name lf --type langflow --url http://localhost:7860 --ask-api-key
    """
    key = read_secret(api_key, from_stdin=api_key_stdin, ask=ask_api_key, prompt="API key")

    async def operation(spark: "Spark") -> "Source":
        async with progress(f"Checking {url}"):
            return await spark.sources.add(
                name=name, source_type=source_type, url=url, api_key=key,
                verify_tls=not no_verify_tls,
            )

    added = state.run(operation)
    if as_json:
        print_json(added)
    else:
        click.echo(added.id)
        note(f"Added {added.source_type} source '{added.name}' at {added.url}")


@source.command("list")
@click.option("--status", type=click.Choice(["active", "inactive"]), help="Only this status.")
@click.option("--type", "source_type", metavar="TYPE", help="Only this source type.")
@click.option("--limit", type=click.IntRange(1, 100), default=50, show_default=True)
@click.option("--offset", type=click.IntRange(min=0), default=0, show_default=True)
@json_option
@pass_state
def list_sources(
    state: CliState, *, status: str | None, source_type: str | None, limit: int, offset: int,
    as_json: bool,
) -> None:
    """List sources, oldest first.

    \b
    Example: spark source list --type langflow --json
    """
    from spark_core.ports import SourceFilter

    async def operation(spark: "Spark") -> Any:
        filters = SourceFilter(status=status, source_type=source_type)
        return await spark.sources.list(filters, limit=limit, offset=offset)

    page = state.run(operation)
    if as_json:
        print_json(page_json(page))
    else:
        print_page(page, COLUMNS, "source")


@source.command()
@click.argument("source_id")
@json_option
@pass_state
def show(state: CliState, *, source_id: str, as_json: bool) -> None:
    """Show one source.

    \b
    Example: spark source show 3f6c…-…
    """
    from spark_core.models import SourceId

    async def operation(spark: "Spark") -> "Source":
        return await spark.sources.get(SourceId(source_id))

    show_source(state.run(operation), as_json=as_json)


@source.command()
@click.argument("source_id")
@click.option("--name", help="A new name.")
@click.option("--type", "source_type", metavar="TYPE", help="A new source type.")
@click.option("--url", help="A new base URL (checked against the server).")
@key_options
@click.option("--clear-api-key", is_flag=True, help="Remove the stored key.")
@click.option("--status", type=click.Choice(["active", "inactive"]), help="Set the status.")
@click.option("--verify-tls/--no-verify-tls", default=None, help="Verify the TLS certificate.")
@json_option
@pass_state
def update(
    state: CliState, *,
    source_id: str,
    name: str | None,
    source_type: str | None,
    url: str | None,
    api_key: str | None,
    api_key_stdin: bool,
    ask_api_key: bool,
    clear_api_key: bool,
    status: str | None,
    verify_tls: bool | None,
    as_json: bool,
) -> None:
    """Change a source; a new URL, type or key is checked against the server first.

    \b
    Example: spark source update 3f6c…-… --name production --api-key-stdin < key.txt
    """
    import msgspec

    from spark_core.models import SourceId, SourceStatus
    from spark_core.services.sources import SourceChanges

    key = read_secret(api_key, from_stdin=api_key_stdin, ask=ask_api_key, prompt="New API key")
    if clear_api_key and key is not None:
        raise click.UsageError("Give either a new API key or --clear-api-key, not both")
    unset: Any = msgspec.UNSET
    changes = SourceChanges(
        name=name if name is not None else unset,
        source_type=source_type if source_type is not None else unset,
        url=url if url is not None else unset,
        api_key=None if clear_api_key else (key if key is not None else unset),
        status=SourceStatus(status) if status is not None else unset,
        verify_tls=verify_tls if verify_tls is not None else unset,
    )

    async def operation(spark: "Spark") -> "Source":
        async with progress("Updating source"):
            return await spark.sources.update(SourceId(source_id), changes)

    updated = state.run(operation)
    if as_json:
        print_json(updated)
    else:
        note(f"Updated source '{updated.name}'")
        show_source(updated, as_json=False)


@source.command()
@click.argument("source_id")
@click.option("--yes", is_flag=True, help="Do not ask for confirmation.")
@json_option
@pass_state
def remove(state: CliState, *, source_id: str, yes: bool, as_json: bool) -> None:
    """Remove a source with its workflows, their schedules and their tasks.

    \b
    Example: spark source remove 3f6c…-… --yes
    """
    from spark_core.models import SourceDeletion, SourceId

    if not yes:
        click.confirm(
            f"Remove source {source_id} with its workflows, schedules and tasks?", abort=True
        )

    async def operation(spark: "Spark") -> SourceDeletion:
        return await spark.sources.delete(SourceId(source_id))

    deletion = state.run(operation)
    if as_json:
        print_json(deletion)
    else:
        click.echo(
            f"Removed source {deletion.source_id} with {deletion.workflows_deleted} workflow(s), "
            f"{deletion.schedules_deleted} schedule(s) and {deletion.tasks_deleted} task(s)"
        )


@source.command()
@click.argument("source_id")
@json_option
@pass_state
def check(state: CliState, *, source_id: str, as_json: bool) -> None:
    """Check a source now and record its status and version. Exit status 1 (and the source
    marked inactive) when it does not answer or refuses its key.

    \b
    Example: spark source check 3f6c…-… --json
    """
    from spark_core.models import SourceId

    async def operation(spark: "Spark") -> "Source":
        async with progress("Checking source"):
            return await spark.sources.check(SourceId(source_id))

    checked = state.run(operation)
    if as_json:
        print_json(checked)
    else:
        version = checked.version_info.get("version", "unknown version")
        click.echo(f"{checked.name} ({checked.url}) is {checked.status}: {version}")
