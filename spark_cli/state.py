"""What the root group hands every command: the configuration overrides and a way to open Spark."""

from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any, TypeVar

import click

if TYPE_CHECKING:
    from spark_adapters.settings import Settings
    from spark_core.facade import Spark

T = TypeVar("T")

EXIT_FAILED = 1
EXIT_USAGE = 2


class CommandFailed(click.ClickException):
    """An operation failed: ``Error: <message>`` on stderr, exit status 1."""

    exit_code = EXIT_FAILED


class InvalidValue(click.ClickException):
    """A value was refused by Spark's rules: ``Error: <message>`` on stderr, exit status 2."""

    exit_code = EXIT_USAGE


class CliState:
    """The global flags as settings overrides (``None`` means "not given")."""

    def __init__(self, overrides: dict[str, Any]) -> None:
        self.overrides = overrides

    def settings(self) -> "Settings":
        """Settings from defaults, ``.env``, the environment and the global flags (later wins)."""
        from spark_adapters.settings import load_settings

        return load_settings(overrides=self.overrides)

    def run(self, operation: "Callable[[Spark], Awaitable[T]]") -> T:
        """Open the configured store and services, run ``operation`` on them, close everything."""
        import asyncio

        settings = self.settings()
        context = click.get_current_context(silent=True)
        if context is not None and context.command.name in READ_COMMANDS:
            require_store(settings)

        async def main() -> T:
            from spark_adapters.container import build_container, open_spark

            async with open_spark(build_container(settings)) as spark:
                return await operation(spark)

        return asyncio.run(main())


READ_COMMANDS = frozenset({"list", "show", "next", "fires", "explain", "status"})
"""Commands that only read: run from the wrong directory they must not create an empty store
and answer as if it were the right one."""


def require_store(settings: "Settings") -> None:
    """Fail (exit status 1) when the configured SQLite store does not exist, saying which file
    was looked for and how to point at the right one. A PostgreSQL database is created by
    ``spark db migrate`` or ``spark serve``, so it is left to the store to report."""
    if settings.database_kind != "sqlite":
        return
    path = settings.database_path
    if str(path) == ":memory:" or path.exists():
        return
    raise CommandFailed(
        f"No Spark store at {path.resolve()}; a read command does not create one. Point at "
        "the right one with --data-dir, SPARK_DATA_DIR or SPARK_DATABASE_URL (in the "
        "environment or ./.env)."
    )


pass_state = click.make_pass_decorator(CliState)
