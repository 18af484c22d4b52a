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

        async def main() -> T:
            from spark_adapters.container import build_container, open_spark

            async with open_spark(build_container(settings)) as spark:
                return await operation(spark)

        return asyncio.run(main())


pass_state = click.make_pass_decorator(CliState)
