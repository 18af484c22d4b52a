"""``spark api-key …``: the keys clients send in ``X-API-Key``."""

from pathlib import Path

import click

from spark_cli.output import note

DOTENV = Path(".env")
API_KEY_VARIABLE = "SPARK_API_KEY"


def store_api_key(key: str, path: Path = DOTENV) -> None:
    """Write ``SPARK_API_KEY=<key>`` into ``path`` (mode 0600), keeping its other lines."""
    from spark_adapters.settings import write_dotenv_value

    write_dotenv_value(path, API_KEY_VARIABLE, key)


@click.group("api-key")
def api_key() -> None:
    """Make API keys for the REST API. The server never runs without one.

    \b
    Example: spark api-key generate --write
    """


@api_key.command()
@click.option(
    "--write", is_flag=True,
    help="Also store it in ./.env as SPARK_API_KEY (file mode 0600), replacing any there.",
)
def generate(write: bool) -> None:
    """Print a new secure API key (32 random bytes, URL-safe). Several keys may be configured
    comma-separated in SPARK_API_KEY, so a new one can be rolled out before the old one goes.

    \b
    Example: spark api-key generate --write
    """
    from spark_adapters.settings import generate_api_key

    key = generate_api_key()
    if write:
        store_api_key(key)
        note(f"Wrote {API_KEY_VARIABLE} to {DOTENV.resolve()} (mode 0600)")
    click.echo(key)
