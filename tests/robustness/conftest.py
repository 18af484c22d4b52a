"""Fixtures for the robustness tests, and the figures they report.

``servers`` (real `spark serve` processes on one data dir) and ``langflow`` (a fake LangFlow
serving from its own thread) come from ``tests.processes``. Figures are printed as one
``ROBUSTNESS <name>: key=value …`` line each, so they show in ``pytest -s`` output and can be
quoted (grep for ``ROBUSTNESS``).
"""

from tests.processes import langflow, servers

FINAL = ("completed", "failed", "cancelled")
"""The statuses a task ends in."""


def report(name: str, **figures: object) -> str:
    """Print one quotable line of figures (visible with ``pytest -s``) and return it."""
    line = f"ROBUSTNESS {name}: " + " ".join(f"{key}={value}" for key, value in figures.items())
    print(f"\n{line}", flush=True)
    return line


__all__ = ["FINAL", "langflow", "report", "servers"]
