"""Source URL normalisation."""

import pytest

from spark_core.errors import ValidationError
from spark_core.urls import normalise_url


@pytest.mark.parametrize(
    ("given", "expected"),
    [
        ("HTTP://Example.COM", "http://example.com"),
        ("https://Example.com/", "https://example.com"),
        ("http://example.com:80", "http://example.com"),
        ("https://example.com:443/", "https://example.com"),
        ("http://example.com:443", "http://example.com:443"),
        ("https://example.com:80", "https://example.com:80"),
        ("http://127.0.0.1:7860/", "http://127.0.0.1:7860"),
        ("http://Host/LangFlow/Api/", "http://host/LangFlow/Api"),
        ("http://host/a//", "http://host/a"),
        ("  http://host:8886  ", "http://host:8886"),
        ("http://[::1]:8080/", "http://[::1]:8080"),
        ("http://[::1]:80", "http://[::1]"),
    ],
)
def test_normalise_url_gives_one_spelling_per_server(given: str, expected: str) -> None:
    """Scheme and host are lower-cased, default ports and trailing slashes dropped, path kept."""
    assert normalise_url(given) == expected


def test_normalise_url_is_idempotent() -> None:
    """Normalising a normalised URL changes nothing, so lookups by stored URL match."""
    once = normalise_url("HTTPS://Example.com:443/base/")
    assert normalise_url(once) == once


@pytest.mark.parametrize(
    "given",
    [
        "",
        "example.com",
        "ftp://example.com",
        "file:///etc/passwd",
        "http://",
        "http:///path",
        "http://example.com:notaport",
        "http://example.com:99999",
        "http://user:secret@example.com",
        "http://example.com/?q=1",
        "http://example.com/#frag",
    ],
)
def test_normalise_url_rejects_anything_but_a_plain_http_base_url(given: str) -> None:
    """Non-http(s) schemes, missing hosts, bad ports, credentials, queries are ValidationErrors."""
    with pytest.raises(ValidationError) as caught:
        normalise_url(given)
    assert caught.value.errors[0][0] == "url"


def test_rejected_url_with_credentials_never_echoes_the_password() -> None:
    """The error names the problem without repeating the credentials it refused."""
    with pytest.raises(ValidationError) as caught:
        normalise_url("http://user:hunter2@example.com")
    assert "hunter2" not in str(caught.value)
    assert "hunter2" not in caught.value.errors[0][1]
