"""``spark db …``: the store itself."""

import click

from spark_cli.state import CliState, pass_state


@click.group()
def db() -> None:
    """Look after the store (SQLite under the data dir unless SPARK_DATABASE_URL says else).

    \b
    Example: spark db migrate
    """


@db.command()
@pass_state
def migrate(state: CliState) -> None:
    """Create the store or bring its schema up to date, and print the schema version.
    Safe to run any time; `spark serve` does the same on start.

    \b
    Example: spark --data-dir /var/lib/spark db migrate
    """
    from spark_adapters.container import sqlite_store

    settings = state.settings()
    store = sqlite_store(settings)
    try:
        version = store.migrate()
    finally:
        store.close()
    click.echo(f"Schema version {version} ({settings.database_path})")
