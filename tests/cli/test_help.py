"""Every group and command has help, and every help text ends with an example."""

import click
import pytest

from spark_cli.main import cli
from tests.cli.conftest import Spark


def _command_paths(group: click.Group, prefix: tuple[str, ...] = ()) -> list[tuple[str, ...]]:
    paths = [prefix]
    for name, command in group.commands.items():
        if isinstance(command, click.Group):
            paths += _command_paths(command, (*prefix, name))
        else:
            paths.append((*prefix, name))
    return paths


@pytest.mark.parametrize("path", _command_paths(cli), ids=lambda path: " ".join(path) or "spark")
def test_help_exits_zero_and_shows_an_example(spark: Spark, path: tuple[str, ...]) -> None:
    """`--help` on every group and command exits 0 and shows an example command line."""
    result = spark(*path, "--help")
    assert result.exit_code == 0, result.output
    assert "Example: spark " in result.stdout or "Example: SPARK_" in result.stdout


def test_every_noun_of_the_spec_is_a_command() -> None:
    """The groups and commands listed in SPEC §6 all exist."""
    paths = {" ".join(path) for path in _command_paths(cli)}
    expected = {
        "serve", "worker", "version", "api-key generate", "db migrate",
        *(f"source {verb}" for verb in ("add", "list", "show", "update", "remove", "check")),
        *(f"workflow {verb}" for verb in ("remote", "sync", "list", "show", "run", "remove")),
        *(f"schedule {verb}" for verb in (
            "add", "list", "show", "update", "pause", "resume", "run", "next", "remove")),
        *(f"task {verb}" for verb in ("list", "show", "retry", "cancel", "remove")),
    }
    assert expected <= paths


def test_an_unknown_command_is_bad_usage(spark: Spark) -> None:
    """An unknown command exits 2."""
    assert spark("frobnicate").exit_code == 2


def test_a_missing_argument_is_bad_usage(spark: Spark) -> None:
    """A command without its required argument exits 2."""
    result = spark("source", "show")
    assert result.exit_code == 2
    assert "Missing argument" in result.stderr
