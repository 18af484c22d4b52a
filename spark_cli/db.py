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
    import asyncio

    from spark_adapters.clock import SystemClock
    from spark_adapters.container import configured_store

    settings = state.settings()
    store = configured_store(settings, SystemClock())

    async def run() -> int:
        await store.open()
        try:
            return await store.migrate()
        finally:
            await store.close()

    version = asyncio.run(run())
    click.echo(f"Schema version {version} ({store.description})")
