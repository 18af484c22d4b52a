"""A real PostgreSQL for the tests that need one, found through one environment variable.

``SPARK_TEST_DATABASE_URL`` (for example ``postgresql://postgres@127.0.0.1:5432/postgres``, what
``.ci/run`` sets) names a server the tests may create schemas in. Each test gets a fresh schema,
dropped afterwards, and a URL whose ``search_path`` points at it. Without the variable, or with a
server that does not answer, these tests are skipped and pytest's summary says why.
"""

import os
import urllib.parse
import uuid
from collections.abc import Iterator

import pytest

TEST_DATABASE_URL = "SPARK_TEST_DATABASE_URL"


def server_url() -> str:
    """The configured server's URL, or skip the calling test with the reason."""
    url = os.environ.get(TEST_DATABASE_URL)
    if not url:
        pytest.skip(f"PostgreSQL tests need {TEST_DATABASE_URL} (CI sets it; see .ci/run)")
    return url


def with_search_path(url: str, schema: str) -> str:
    """``url`` with ``options=-csearch_path=<schema>`` added to its query."""
    parts = urllib.parse.urlsplit(url)
    query = urllib.parse.parse_qsl(parts.query)
    query.append(("options", f"-csearch_path={schema}"))
    return urllib.parse.urlunsplit(parts._replace(query=urllib.parse.urlencode(query)))


@pytest.fixture
def postgres_url() -> Iterator[str]:
    """A URL to a new, empty schema on the test server, dropped after the test."""
    import psycopg

    url = server_url()
    schema = f"spark_test_{uuid.uuid4().hex[:12]}"
    try:
        with psycopg.connect(url, autocommit=True, connect_timeout=5) as conn:
            conn.execute(f'CREATE SCHEMA "{schema}"')
    except psycopg.OperationalError as exc:
        pytest.skip(f"PostgreSQL at {TEST_DATABASE_URL} does not answer: {exc}")
    try:
        yield with_search_path(url, schema)
    finally:
        with psycopg.connect(url, autocommit=True, connect_timeout=5) as conn:
            conn.execute(f'DROP SCHEMA "{schema}" CASCADE')
