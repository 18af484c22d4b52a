"""The ``spark`` command: the root group, configuration, and the one error → exit-code mapping.

Every command is a thin skin over the library: it loads settings, opens the configured store
through the container, calls one use case and prints the result. Nothing heavy is imported at
module level so that ``spark --help`` starts in a blink; commands import what they need.

Exit status: 0 on success, 1 when an operation failed, 2 on bad usage or an invalid value.
"""

from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click

from spark_cli.state import CliState, CommandFailed, InvalidValue

if TYPE_CHECKING:
    from spark_core.errors import SparkError


def click_error(exc: "SparkError") -> click.ClickException:
    """The one mapping from Spark's errors to what the CLI prints and its exit status: a value
    Spark's rules refuse is bad usage (2); anything else that failed, including a source that
    does not answer or refuses its key, is a failed operation (1). A database that cannot be
    reached or opened is a configuration problem (2)."""
    from spark_core.errors import SourceValidationError, StoreUnavailableError, ValidationError

    if isinstance(exc, StoreUnavailableError):
        return InvalidValue(exc.message)
    if isinstance(exc, ValidationError) and not isinstance(exc, SourceValidationError):
        details = "".join(f"\n  {field}: {message}" for field, message in exc.errors)
        return InvalidValue(exc.message + details)
    return CommandFailed(exc.message)


class SparkGroup(click.Group):
    """The root group: turns every ``SparkError`` raised below it into a message and exit code."""

    def invoke(self, ctx: click.Context) -> Any:
        """Run the chosen command, mapping Spark's errors in one place."""
        from spark_core.errors import SparkError

        try:
            return super().invoke(ctx)
        except SparkError as exc:
            raise click_error(exc) from exc




@click.group(cls=SparkGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.option(
    "--data-dir",
    type=click.Path(file_okay=False, path_type=Path),
    help="Where the store and generated secrets live [env: SPARK_DATA_DIR; default: ./.spark].",
)
@click.option(
    "--database-url",
    metavar="URL",
    help="The store: sqlite:///path/spark.db or postgresql://user:pw@host/db "
    "[env: SPARK_DATABASE_URL].",
)
@click.version_option(None, "--version", package_name="spark", prog_name="spark")
@click.pass_context
def cli(ctx: click.Context, data_dir: Path | None, database_url: str | None) -> None:
    """Spark gives AI workflows a sense of time: connect LangFlow and Automagik Hive sources,
    sync their flows, run them now or on schedules, and keep every run as a task.

    Commands work directly on the configured store (the one `spark serve` uses), so no server
    needs to be running. Configuration comes from built-in defaults, then `.env` in the
    current directory, then the environment, then these flags.

    Exit status: 0 on success, 1 when an operation failed, 2 on bad usage.

    \b
    Example: spark source add --name lf --type langflow --url http://localhost:7860 --ask-api-key
    """
    ctx.obj = CliState({"data_dir": data_dir, "database_url": database_url})


def _register() -> None:
    from spark_cli import db, ids, keys, schedules, serve, sources, status, tasks, workflows

    cli.add_command(serve.serve)
    cli.add_command(serve.worker)
    cli.add_command(keys.api_key)
    cli.add_command(sources.source)
    cli.add_command(workflows.workflow)
    cli.add_command(schedules.schedule)
    cli.add_command(tasks.task)
    cli.add_command(db.db)
    cli.add_command(status.status)
    cli.add_command(version)
    ids.accept_id_prefixes(cli)


@click.command()
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
def version(as_json: bool) -> None:
    """Print Spark's version.

    \b
    Example: spark version --json
    """
    from importlib.metadata import PackageNotFoundError
    from importlib.metadata import version as package_version

    try:
        number = package_version("spark")
    except PackageNotFoundError:  # running from a source tree that was never installed
        number = "0+unknown"
    if as_json:
        from spark_cli.output import print_json

        print_json({"version": number})
    else:
        click.echo(f"spark {number}")


_register()


def main(argv: Sequence[str] | None = None) -> None:
    """The console script: run the ``spark`` command."""
    cli.main(args=list(argv) if argv is not None else None, prog_name="spark")
