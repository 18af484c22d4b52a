"""HTTP plumbing shared by the source adapters.

This is the one place where aiohttp exceptions and remote status codes become Spark's
``SourceError`` family. Every message names the source and the remote status, carries a short
excerpt of the body, and has the API key scrubbed out of it. Bodies are read with a size cap so
a hostile source cannot exhaust memory, and redirects are never followed, so a key sent in a
header can never be carried to another host.
"""

import functools
from collections.abc import Callable, Iterable, Mapping
from typing import Any, TypeVar
from urllib.parse import urlencode

import aiohttp
import msgspec

from spark_core.errors import (
    RemoteNotFoundError,
    RemoteRunError,
    RunTimeoutError,
    SourceError,
    SourceProtocolError,
    SourceRejectedError,
    SourceUnavailableError,
)

T = TypeVar("T")

MAX_BODY_BYTES = 10 * 1024 * 1024
"""The largest response body an adapter reads; anything larger is a ``SourceProtocolError``."""

EXCERPT_CHARS = 200
"""How much of a remote body an error message may quote."""

_CHUNK_BYTES = 64 * 1024
_REDACTED = "[redacted]"
_ANY_JSON = msgspec.json.Decoder()
_JSON = msgspec.json.Encoder()
_JSON_TYPE = {"Content-Type": "application/json"}

RequestCounter = Callable[[str, str], None]
"""Told of every request to a source: its source type and its HTTP status (``"200"``), or
``"error"`` when no answer came, or ``"timeout"`` (``PrometheusMetrics.count_source_request``)."""


@functools.lru_cache(maxsize=64)
def _run_timeout(seconds: float, request_timeout: float) -> aiohttp.ClientTimeout:
    """The timeout of a run that may take ``seconds`` in total, connecting within the
    management timeout at most (made once for each: runs share a few values)."""
    return aiohttp.ClientTimeout(total=seconds, sock_connect=min(seconds, request_timeout))


class HttpResponse(msgspec.Struct, frozen=True, kw_only=True):
    """A fully read response: status, body bytes, and what was asked (for messages)."""

    status: int
    body: bytes
    method: str
    path: str
    location: str | None = None

    @property
    def ok(self) -> bool:
        """True for a 2xx status."""
        return 200 <= self.status < 300


class SourceHttp:
    """Talks HTTP to one source through the process-wide session, translating every failure.

    ``label`` names the source in messages (``"LangFlow at http://host:7860"``); ``secrets`` are
    scrubbed from every message this client produces.
    """

    def __init__(
        self,
        session: aiohttp.ClientSession,
        *,
        base_url: str,
        label: str,
        headers: Mapping[str, str],
        secrets: Iterable[str | None] = (),
        verify_tls: bool = True,
        request_timeout: float = 10.0,
        max_body_bytes: int = MAX_BODY_BYTES,
        source_type: str = "unknown",
        count_requests: RequestCounter | None = None,
    ) -> None:
        self._session = session
        self._source_type = source_type
        self._count = count_requests
        self._base_url = base_url.rstrip("/")
        self.label = label
        self._headers = dict(headers)
        self._json_headers = {**self._headers, **_JSON_TYPE}
        self._secrets = tuple(sorted({s for s in secrets if s}, key=len, reverse=True))
        self._ssl: bool = verify_tls
        self._request_timeout = request_timeout
        self._max_body_bytes = max_body_bytes
        self._management_timeout = aiohttp.ClientTimeout(total=request_timeout)

    async def get(self, path: str, *, params: Mapping[str, str] | None = None) -> HttpResponse:
        """GET ``path`` under the base URL; raises only for transport failures."""
        return await self.request("GET", path, params=params)

    async def request(
        self,
        method: str,
        path: str,
        *,
        params: Mapping[str, str] | None = None,
        json_body: Any = None,
        form: Mapping[str, str] | None = None,
        run_timeout: float | None = None,
        fresh_connection: bool = False,
    ) -> HttpResponse:
        """Send one request and read its body, whatever the status.

        ``fresh_connection`` sends ``Connection: close``, so the request never rides a pooled
        connection the server may be closing (see ``HiveSource.run``).

        With ``run_timeout`` the call is a run: it may take that long in total, and running out
        of time is a ``RunTimeoutError``. Otherwise the management ``request_timeout`` applies.
        Transport failures raise ``SourceUnavailableError``; an oversized body raises
        ``SourceProtocolError``.

        A JSON body is encoded here with msgspec, and the query joined to the URL, rather than
        by aiohttp (its ``json=`` and ``params=`` cost ~12 µs a run more).
        """
        url = self._base_url + path
        if params:
            url += "?" + urlencode(params)
        if run_timeout is None:
            timeout = self._management_timeout
        else:
            timeout = _run_timeout(run_timeout, self._request_timeout)
        headers = self._headers if json_body is None else self._json_headers
        if fresh_connection:
            headers = {**headers, "Connection": "close"}
        answered = False
        try:
            async with self._session.request(
                method,
                url,
                headers=headers,
                data=form if json_body is None else _JSON.encode(json_body),
                timeout=timeout,
                ssl=self._ssl,
                allow_redirects=False,
                raise_for_status=False,  # statuses are translated below, whatever the session says
            ) as response:
                answered = True
                if self._count is not None:
                    self._count(self._source_type, str(response.status))
                body = await self._read_capped(response, method, path)
                return HttpResponse(
                    status=response.status,
                    body=body,
                    method=method,
                    path=path,
                    location=response.headers.get("Location"),
                )
        except SourceError:
            raise
        except TimeoutError as exc:
            # Before ClientError: aiohttp's ServerTimeoutError is both.
            self._count_failure(answered, "timeout")
            if run_timeout is not None:
                raise RunTimeoutError(
                    self.scrub(f"{self.label} did not answer {method} {path} "
                               f"within {run_timeout:g} s")
                ) from exc
            raise SourceUnavailableError(
                self.scrub(f"{self.label} did not answer {method} {path} "
                           f"within {self._request_timeout:g} s")
            ) from exc
        except aiohttp.ClientSSLError as exc:
            # A certificate problem will not fix itself on retry.
            self._count_failure(answered, "error")
            raise SourceUnavailableError(
                self.scrub(f"Could not reach {url}: TLS failed ({exc})"), transient=False
            ) from exc
        except aiohttp.InvalidURL as exc:
            self._count_failure(answered, "error")
            raise SourceUnavailableError(
                self.scrub(f"Could not reach {url}: invalid URL"), transient=False
            ) from exc
        except (aiohttp.ClientError, OSError) as exc:
            self._count_failure(answered, "error")
            reason = str(exc) or type(exc).__name__
            raise SourceUnavailableError(
                self.scrub(f"Could not reach {url}: {reason}")
            ) from exc

    def _count_failure(self, answered: bool, status: str) -> None:
        """Count a request that failed before its answer came (one answered and then cut off
        while its body was read was counted with its status already)."""
        if not answered and self._count is not None:
            self._count(self._source_type, status)

    async def _read_capped(
        self, response: aiohttp.ClientResponse, method: str, path: str
    ) -> bytes:
        length = response.content_length
        if length is not None and length > self._max_body_bytes:
            raise self._too_big(response, method, path)
        if length is not None and "Content-Encoding" not in response.headers:
            # Framed by its length and not decompressed: the body is at most that long.
            return await response.read()
        chunks: list[bytes] = []
        size = 0
        async for chunk in response.content.iter_chunked(_CHUNK_BYTES):
            size += len(chunk)
            if size > self._max_body_bytes:
                raise self._too_big(response, method, path)
            chunks.append(chunk)
        return b"".join(chunks)

    def _too_big(self, response: aiohttp.ClientResponse, method: str,
                 path: str) -> SourceProtocolError:
        return SourceProtocolError(
            self.scrub(f"{self.label} answered {method} {path} with a body larger than "
                       f"{self._max_body_bytes} bytes"),
            status=response.status,
        )

    def scrub(self, text: str) -> str:
        """``text`` with every secret of this client replaced by a marker."""
        for secret in self._secrets:
            text = text.replace(secret, _REDACTED)
        return text

    def excerpt(self, response: HttpResponse) -> str:
        """A short, secret-free, human summary of a response body."""
        return self.scrub(describe_body(response.body))

    def error_for(self, response: HttpResponse) -> SourceError:
        """The Spark error for a non-2xx ``response``."""
        status = response.status
        what = f"{self.label} answered {status} to {response.method} {response.path}"
        excerpt = self.excerpt(response)
        detail = f"{what}: {excerpt}" if excerpt else what
        if 300 <= status < 400:
            # Redirects are not followed (a header key must not travel to another host).
            target = response.location or "an unspecified location"
            return SourceProtocolError(
                self.scrub(f"{what}: redirected to {target}; use the final URL as the source "
                           "URL"),
                status=status,
            )
        if status in (401, 403):
            return SourceRejectedError(
                self.scrub(f"{self.label} rejected the API key "
                           f"({status}: {excerpt or 'no detail'})"),
                status=status,
            )
        if status == 404:
            return RemoteNotFoundError(detail, status=status)
        if status in (408, 429) or 500 <= status < 600:
            return SourceUnavailableError(detail, status=status)
        if 400 <= status < 500:
            return RemoteRunError(detail, status=status)
        return SourceProtocolError(detail, status=status)

    def ensure_ok(self, response: HttpResponse) -> HttpResponse:
        """``response`` itself if it is 2xx, else raise its Spark error."""
        if not response.ok:
            raise self.error_for(response)
        return response

    def decode(self, response: HttpResponse, decoder: msgspec.json.Decoder[T]) -> T:
        """Decode a 2xx body with ``decoder``; garbage is a ``SourceProtocolError``."""
        try:
            return decoder.decode(self.ensure_ok(response).body)
        except (msgspec.DecodeError, msgspec.ValidationError) as exc:
            raise self._protocol_error(response, exc) from exc

    def decode_any(self, response: HttpResponse) -> Any:
        """Decode a 2xx body as plain JSON values; garbage is a ``SourceProtocolError``."""
        return self.decode(response, _ANY_JSON)

    def convert(self, response: HttpResponse, value: Any, type_: type[T]) -> T:
        """Convert already-decoded JSON into a wire Struct; a mismatch is a protocol error."""
        try:
            return msgspec.convert(value, type_)
        except msgspec.ValidationError as exc:
            raise self._protocol_error(response, exc) from exc

    def _protocol_error(self, response: HttpResponse, exc: Exception) -> SourceProtocolError:
        return SourceProtocolError(
            self.scrub(
                f"{self.label} answered {response.method} {response.path} with something that "
                f"is not the JSON expected ({exc}): {describe_body(response.body)}"
            ),
            status=response.status,
        )


def describe_body(body: bytes) -> str:
    """A one-line excerpt of a body (at most ``EXCERPT_CHARS``), preferring a JSON ``detail``.

    LangFlow reports failed runs as ``{"detail": "<JSON string>"}`` whose own ``message`` holds
    the error; that inner message is used when present.
    """
    text = body[: EXCERPT_CHARS * 8].decode("utf-8", errors="replace")
    value = _loads(body)
    if isinstance(value, dict) and "detail" in value:
        detail = value["detail"]
        if isinstance(detail, str):
            text = _inner_message(detail) or detail
        else:
            text = msgspec.json.encode(detail).decode()
    elif isinstance(value, dict) and isinstance(value.get("message"), str):
        text = value["message"]
    return _shorten(text)


def flow_reported_error(body: bytes) -> bool:
    """True for LangFlow's answer to a run whose flow failed: ``{"detail": "<JSON string>"}``
    with the error in the inner ``message`` (as opposed to a server that is itself failing)."""
    value = _loads(body)
    detail = value.get("detail") if isinstance(value, dict) else None
    return isinstance(detail, str) and _inner_message(detail) is not None


def _inner_message(detail: str) -> str | None:
    if not detail.lstrip().startswith("{"):
        return None
    inner = _loads(detail.encode())
    if isinstance(inner, dict) and isinstance(inner.get("message"), str):
        return str(inner["message"])
    return None


def _loads(body: bytes) -> Any:
    try:
        return _ANY_JSON.decode(body)
    except msgspec.DecodeError:
        return None


def _shorten(text: str) -> str:
    flat = " ".join(text.split())
    if len(flat) <= EXCERPT_CHARS:
        return flat
    return flat[: EXCERPT_CHARS - 1] + "…"
