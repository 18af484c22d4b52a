"""Every ``spark …`` command line in the README is one the CLI accepts."""

import re
import shlex
from pathlib import Path

import pytest
from click.testing import CliRunner

from spark_cli.main import cli

README = Path(__file__).parents[2] / "README.md"
PLACEHOLDER = "00000000-0000-4000-8000-000000000000"


def readme_commands() -> list[str]:
    """The ``spark`` command lines of the README's shell blocks, comments and ``<…>`` filled."""
    found = []
    for block in re.findall(r"```(?:bash|sh|console)\n(.*?)```", README.read_text(), re.S):
        for line in block.splitlines():
            command = line.split("  #")[0].strip()
            if command.startswith("spark "):
                found.append(re.sub(r"<[^>]+>", PLACEHOLDER, command))
    return found


def test_the_readme_shows_cli_commands() -> None:
    """The CLI section is not empty (the extraction below would pass vacuously)."""
    assert len(readme_commands()) >= 8


@pytest.mark.parametrize("command", readme_commands())
def test_every_readme_command_line_parses(command: str) -> None:
    """Each README line names real commands and options; ``--help`` stops before running."""
    arguments = shlex.split(command)[1:]
    result = CliRunner().invoke(cli, [*arguments, "--help"])
    assert result.exit_code == 0, f"{command}\n{result.output}"
