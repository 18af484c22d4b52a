"""``spark status``: which store the commands use, its schema version and what it holds."""

from typing import TYPE_CHECKING, Any

import click

from spark_cli.output import print_fields, print_json
from spark_cli.state import CliState, pass_state

if TYPE_CHECKING:
    from spark_core.facade import Spark


async def store_status(spark: "Spark") -> dict[str, Any]:
    """The store's description (no password), schema version and counts, tasks by status."""
    from spark_core.models import TaskStatus
    from spark_core.ports import TaskFilter

    tasks = {
        str(status): (await spark.tasks.list(TaskFilter(status=status), limit=1)).total
        for status in TaskStatus
    }
    return {
        "store": spark.store.description,
        # the store was migrated on opening, so this only reads the version it is at
        "schema_version": await spark.store.migrate(),
        "sources": (await spark.sources.list(limit=1)).total,
        "workflows": (await spark.workflows.list(limit=1)).total,
        "schedules": (await spark.schedules.list(limit=1)).total,
        "tasks": tasks,
    }


@click.command()
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
@pass_state
def status(state: CliState, *, as_json: bool) -> None:
    """Show which store the commands use (a path, or a URL without its password), its schema
    version, and how many sources, workflows, schedules and tasks (by status) it holds.

    \b
    Example: spark --data-dir /var/lib/spark status --json
    """
    report = state.run(store_status)
    if as_json:
        print_json(report)
        return
    tasks = report["tasks"]
    print_fields({
        "store": report["store"],
        "schema version": report["schema_version"],
        "sources": report["sources"],
        "workflows": report["workflows"],
        "schedules": report["schedules"],
        "tasks": ", ".join(f"{count} {name}" for name, count in tasks.items()),
    })
