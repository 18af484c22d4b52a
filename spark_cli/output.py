"""How the CLI prints: JSON with the REST API's field names, small aligned tables, progress.

JSON is written by ``spark_http.presentation``, the module the API answers with, so
``spark … --json`` prints the same bytes as ``GET /api/v1/…`` for the same store (same shapes,
datetimes with a ``+00:00`` offset), and a script can switch between them freely.
Progress goes to stderr, and only when stderr is a terminal, so stdout stays clean.
"""

import contextlib
import sys
import time
from collections.abc import AsyncIterator, Callable, Iterable, Mapping, Sequence
from datetime import datetime
from typing import TYPE_CHECKING, Any

import click

if TYPE_CHECKING:
    from spark_core.models import Page

Column = tuple[str, Callable[[Any], object]]
"""A table column: its header and how to get the cell's value from a row."""

MAX_CELL = 60


def to_builtins(value: object) -> Any:
    """``value`` as plain JSON-ready Python (Structs → dicts, datetimes → ISO-8601 strings)."""
    import msgspec

    return msgspec.to_builtins(value)


def print_json(value: object) -> None:
    """Print ``value`` on stdout as the API answers it (one line)."""
    from spark_http.presentation import encode

    click.echo(encode(value).decode())


def page_json(page: "Page[Any]", item: Callable[[Any], object] = lambda entry: entry) -> object:
    """The API's list envelope of ``page`` (``items``, ``total``, ``limit``, ``offset``,
    ``has_more``), each item converted by ``item`` as the API's route converts it."""
    from spark_http.presentation import page_out

    return page_out(page, item)


def cell(value: object) -> str:
    """One table cell: short, on one line, ``-`` for nothing."""
    if value is None or value == "":
        return "-"
    if isinstance(value, datetime):
        return value.strftime("%Y-%m-%d %H:%M:%S%z").replace("+0000", "Z")
    if isinstance(value, bool):
        return "yes" if value else "no"
    text = " ".join(str(value).split())
    return text if len(text) <= MAX_CELL else text[: MAX_CELL - 1] + "…"


def print_table(rows: Iterable[Any], columns: Sequence[Column]) -> None:
    """Print ``rows`` as a table with a header, columns aligned by width."""
    lines = [[header for header, _ in columns]]
    lines += [[cell(getter(row)) for _, getter in columns] for row in rows]
    widths = [max(len(line[index]) for line in lines) for index in range(len(columns))]
    for line in lines:
        click.echo("  ".join(text.ljust(width) for text, width in zip(line, widths, strict=True))
                   .rstrip())


def print_page(page: "Page[Any]", columns: Sequence[Column], noun: str) -> None:
    """Print one page of a list as a table, with a footer when more exist."""
    if not page.items:
        click.echo(f"No {noun}s.", err=True)
        return
    print_table(page.items, columns)
    if page.has_more or page.offset:
        first, last = page.offset + 1, page.offset + len(page.items)
        click.echo(f"({first}-{last} of {page.total}; use --offset and --limit for more)",
                   err=True)


def print_fields(fields: Mapping[str, object]) -> None:
    """Print ``name: value`` lines, names aligned; for ``show`` commands."""
    width = max(len(name) for name in fields)
    for name, value in fields.items():
        if isinstance(value, str) and value:
            text = value  # answers and errors are read in full
        elif isinstance(value, dict | list):
            text = cell(to_builtins(value)) if value else "-"
        else:
            text = cell(value)
        click.echo(f"{name.ljust(width)}  {text}")


def note(message: str) -> None:
    """A line for the human at the terminal, on stderr."""
    click.echo(message, err=True)


@contextlib.asynccontextmanager
async def progress(label: str) -> AsyncIterator[None]:
    """Show ``label … (Ns)`` with a spinner on stderr while the body runs (terminals only)."""
    import asyncio

    stream = sys.stderr
    if not stream.isatty():
        yield
        return
    started = time.monotonic()

    async def spin() -> None:
        frames = "|/-\\"
        tick = 0
        while True:
            elapsed = int(time.monotonic() - started)
            stream.write(f"\r{frames[tick % len(frames)]} {label} ({elapsed}s)")
            stream.flush()
            tick += 1
            await asyncio.sleep(0.2)

    spinner = asyncio.create_task(spin())
    try:
        yield
    finally:
        spinner.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await spinner
        stream.write("\r\033[K")
        stream.flush()


def read_secret(value: str | None, *, from_stdin: bool, ask: bool, prompt: str) -> str | None:
    """A secret from a flag (or its env var), one line of stdin, or a hidden prompt."""
    given = sum([value is not None, from_stdin, ask])
    if given > 1:
        raise click.UsageError("Give the key one way: --api-key, --api-key-stdin or --ask-api-key")
    if from_stdin:
        line = sys.stdin.readline().strip()
        if not line:
            raise click.UsageError("--api-key-stdin: nothing was read from stdin")
        return line
    if ask:
        if not sys.stdin.isatty():  # piped: read the line (a hidden prompt would warn)
            return sys.stdin.readline().strip() or None
        answer: str = click.prompt(prompt, hide_input=True)
        return answer.strip() or None
    return value
