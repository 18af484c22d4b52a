"""Unique id prefixes, as git takes them, wherever a command takes an id.

Rather than each command resolving its own arguments, ``accept_id_prefixes`` wraps every
command below a group once: before the command runs, each id parameter it was given (by its
name, below) that is not a whole id is resolved by the library's ``IdService``. An ambiguous
prefix is an error listing the candidates; one that starts no id is the usual not-found.
"""

import functools
import uuid
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

import click

from spark_cli.state import CliState

if TYPE_CHECKING:
    from spark_core.facade import Spark

ID_PARAMETERS = {
    "source_id": "source",
    "source_ref": "source",  # --source ID|URL: a URL is left alone
    "workflow_id": "workflow",
    "schedule_id": "schedule",
    "task_id": "task",
}
"""Parameter names that hold an id, and the kind of thing each one names."""
UUID_LENGTH = 36


def accept_id_prefixes(group: click.Group) -> None:
    """Let every command below ``group`` take unique id prefixes for its id parameters."""
    for command in set(_commands(group)):  # an alias is the same command under a second name
        kinds = {param.name: ID_PARAMETERS[param.name] for param in command.params
                 if param.name in ID_PARAMETERS}
        if kinds and command.callback is not None:
            command.callback = _resolving(command.callback, kinds)


def _commands(group: click.Group) -> Iterator[click.Command]:
    for command in group.commands.values():
        if isinstance(command, click.Group):
            yield from _commands(command)
        else:
            yield command


def _resolving(callback: Any, kinds: dict[str, str]) -> Any:
    """``callback`` with the id parameters named in ``kinds`` resolved before it runs."""

    @functools.wraps(callback)
    def resolve_then_run(*args: Any, **params: Any) -> Any:
        given = {name: params[name] for name in kinds
                 if params.get(name) and not _needs_no_lookup(params[name])}
        if given:
            state = click.get_current_context().find_object(CliState)
            assert state is not None, "the root group sets the state"
            params.update(state.run(functools.partial(_resolve, given, kinds)))
        return callback(*args, **params)

    return resolve_then_run


def _needs_no_lookup(text: str) -> bool:
    """A URL, or a whole id (a UUID, the form every Spark id and LangFlow flow id takes):
    the command itself reads it, so the store is not opened an extra time to resolve it."""
    if "://" in text:
        return True
    try:
        return len(text) == UUID_LENGTH and str(uuid.UUID(text)) == text.lower()
    except ValueError:
        return False


async def _resolve(given: dict[str, str], kinds: dict[str, str], spark: "Spark") -> dict[str, str]:
    from spark_core.ports import IdKind

    return {name: await spark.ids.resolve(IdKind(kinds[name]), text)
            for name, text in given.items()}
