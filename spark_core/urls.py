"""Source URL normalisation (one spelling per server, used on input, output and lookup), and
the check of a webhook URL."""

from urllib.parse import urlsplit, urlunsplit

from spark_core.errors import ValidationError

_DEFAULT_PORTS = {"http": 80, "https": 443}


def normalise_url(url: str) -> str:
    """The canonical form of a source URL.

    Scheme and host are lower-cased, the default port and any trailing slash are dropped, the
    path is kept. Raises ``ValidationError`` unless ``url`` is an http(s) URL with a host and no
    credentials, query or fragment (a source URL is a base that paths are appended to).
    """
    text = url.strip()
    try:
        parts = urlsplit(text)
        port = parts.port
    except ValueError as exc:
        raise _invalid(url, f"it is not a valid URL ({exc})") from exc
    scheme = parts.scheme.lower()
    if scheme not in _DEFAULT_PORTS:
        raise _invalid(url, "it must start with http:// or https://")
    host = parts.hostname
    if not host:
        raise _invalid(url, "it has no host")
    if parts.username is not None or parts.password is not None:
        # Credentials in a URL would be stored and shown in clear; keys go in the api_key field.
        raise _invalid("<redacted>", "it must not contain a user name or password")
    if parts.query or parts.fragment:
        raise _invalid(url, "it must not contain a query string or fragment")
    if ":" in host:  # an IPv6 literal keeps its brackets
        host = f"[{host}]"
    netloc = host if port is None or port == _DEFAULT_PORTS[scheme] else f"{host}:{port}"
    return urlunsplit((scheme, netloc, parts.path.rstrip("/"), "", ""))


def check_webhook_url(url: str) -> str:
    """``url`` without surrounding blanks, if it is an http(s) URL with a host and no user name
    or password (a receiver's token may ride in the query); else ``ValidationError`` naming the
    ``webhook_url`` field."""
    text = url.strip()
    reason = None
    try:
        parts = urlsplit(text)
        parts.port  # noqa: B018 - parsing the port is what validates it
    except ValueError as exc:
        reason = f"it is not a valid URL ({exc})"
    else:
        if parts.scheme.lower() not in _DEFAULT_PORTS:
            reason = "it must start with http:// or https://"
        elif not parts.hostname:
            reason = "it has no host"
        elif parts.username is not None or parts.password is not None:
            reason = "it must not contain a user name or password"
            text = "<redacted>"
    if reason is not None:
        raise ValidationError(f"Invalid webhook URL {text!r}: {reason}",
                              errors=[("webhook_url", reason)])
    return text


def _invalid(url: str, reason: str) -> ValidationError:
    message = f"Invalid source URL {url!r}: {reason}"
    return ValidationError(message, errors=[("url", reason)])
