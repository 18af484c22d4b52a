"""Development sessions: `nox` runs lint, typecheck and tests; `nox -s bench` measures."""

import nox

nox.options.sessions = ["lint", "typecheck", "tests"]
nox.options.reuse_existing_virtualenvs = True
nox.options.error_on_missing_interpreters = False

PACKAGES = ["spark_core", "spark_adapters", "spark_http", "spark_cli"]


@nox.session
def lint(session: nox.Session) -> None:
    """Ruff for style and bugs; import-linter for the one-direction layers."""
    session.install("ruff>=0.6", "import-linter>=2.0")
    session.install("-e", ".")
    session.run("ruff", "check", *PACKAGES, "tests", "examples", "bench", "noxfile.py")
    session.run("lint-imports")


@nox.session
def typecheck(session: nox.Session) -> None:
    """mypy --strict over the four packages."""
    session.install("mypy>=1.10", "-e", ".[test]")
    session.run("mypy")
    session.run("mypy", "--strict", "--explicit-package-bases", "examples")


@nox.session
def tests(session: nox.Session) -> None:
    """The whole test suite: unit, contract, adapters, HTTP and CLI."""
    session.install("-e", ".[test]")
    session.run("pytest", *session.posargs)


@nox.session
def bench(session: nox.Session) -> None:
    """Benchmarks on loopback: throughput, latency, schedule lag, memory, start-up time."""
    # psutil: resident memory beyond Linux's /proc; granian: for --server granian
    session.install("-e", ".[test]", "psutil", "granian")
    session.run("python", "-m", "bench", *session.posargs)
