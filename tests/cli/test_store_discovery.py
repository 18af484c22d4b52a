"""Read commands run where there is no store: they say so instead of creating an empty one."""

from pathlib import Path

import pytest
from click.testing import CliRunner

from spark_cli.main import cli

READ_COMMANDS = [
    ("task", "list"), ("source", "list"), ("workflow", "list"), ("schedule", "list"), ("status",),
    ("task", "show", "00000000-0000-4000-8000-000000000000"),
    ("schedule", "next", "00000000-0000-4000-8000-000000000000"),
]


@pytest.mark.parametrize("command", READ_COMMANDS, ids=" ".join)
def test_a_read_command_without_a_store_says_where_it_looked_and_creates_nothing(
    workdir: Path, command: tuple[str, ...]
) -> None:
    """In a directory with no store, a read command exits 1 naming the file it looked for and
    the ways to point at the right store, and leaves no file behind."""
    result = CliRunner().invoke(cli, list(command))
    assert result.exit_code == 1, result.output
    expected = workdir / ".spark" / "spark.db"
    assert f"No Spark store at {expected}" in result.stderr
    for way in ("--data-dir", "SPARK_DATA_DIR", "SPARK_DATABASE_URL"):
        assert way in result.stderr
    assert list(workdir.iterdir()) == []


def test_a_write_command_still_creates_the_store_which_read_commands_then_use(
    workdir: Path,
) -> None:
    """`spark db migrate` creates the store in ./.spark; `spark task list` then reads it."""
    assert CliRunner().invoke(cli, ["db", "migrate"]).exit_code == 0
    result = CliRunner().invoke(cli, ["task", "list"])
    assert result.exit_code == 0, result.output
    assert (workdir / ".spark" / "spark.db").is_file()
