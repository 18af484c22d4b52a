"""The public API: every exported name resolves, and importing the packages stays cheap."""

import subprocess
import sys
import tomllib
from pathlib import Path

import pytest

import spark_adapters
import spark_core


@pytest.mark.parametrize("package", [spark_core, spark_adapters])
def test_every_name_in_all_resolves_and_is_listed_by_dir(package: object) -> None:
    """Each name in ``__all__`` is importable from the package and shows in ``dir()``."""
    names: list[str] = package.__all__  # type: ignore[attr-defined]
    assert names == sorted(names)
    for name in names:
        assert getattr(package, name) is not None
    assert set(names) <= set(dir(package))


def test_an_unknown_name_is_an_attribute_error() -> None:
    """Asking a package for a name it does not export fails as Python users expect."""
    with pytest.raises(AttributeError, match="no_such_name"):
        _ = spark_adapters.no_such_name


def test_importing_the_packages_loads_no_heavy_dependency() -> None:
    """``import spark_core, spark_adapters`` loads neither aiohttp, Litestar nor croniter."""
    code = (
        "import sys, spark_core, spark_adapters, spark_adapters.settings\n"
        "heavy = {'aiohttp', 'litestar', 'croniter', 'dependency_injector'}\n"
        "print(sorted(heavy & set(sys.modules)))\n"
    )
    loaded = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    ).stdout.strip()
    assert loaded == "[]"


def test_sqlite_utils_is_not_a_dependency() -> None:
    """The SQLite store uses sqlite3 directly: installing Spark does not pull in sqlite-utils
    (whose 3.x releases could not open a store)."""
    project = tomllib.loads((Path(__file__).parents[2] / "pyproject.toml").read_text())
    names = [requirement.split(">")[0].split("=")[0].split("[")[0].strip().lower()
             for requirement in project["project"]["dependencies"]]
    assert "sqlite-utils" not in names
