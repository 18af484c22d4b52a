"""API-key authentication: ``X-API-Key`` on everything under ``/api/v1`` and on ``GET /``.

The check is an ASGI middleware, so it runs before request bodies or parameters are parsed;
unknown paths and wrong methods never reach a route's middleware, so ``errors`` repeats the same
check before answering 404 or 405. Keys are compared in constant time against every configured
key (several keys allow rotation) and are never logged.
"""

import hmac
from collections.abc import Iterable

from litestar.enums import ScopeType
from litestar.exceptions import NotAuthorizedException
from litestar.middleware import ASGIMiddleware
from litestar.types import ASGIApp, Receive, Scope, Send

API_KEY_HEADER = "X-API-Key"
SECURITY_SCHEME = "X-API-Key"
MISSING_KEY = "X-API-Key header is missing"
INVALID_KEY = "Invalid API key"

PUBLIC_PATHS = frozenset({"/health", "/api/v1/health", "/api/v1/openapi.json"})
PUBLIC_PREFIXES = ("/api/v1/docs",)
PROTECTED_PREFIX = "/api/v1"


class ApiKeyAuth:
    """Which paths need a key, and whether a presented key is one of the configured ones."""

    header = API_KEY_HEADER

    def __init__(self, keys: Iterable[str]) -> None:
        self._keys = tuple(key.encode() for key in keys if key)
        if not self._keys:
            raise ValueError(
                "Refusing to serve the API without an API key: configure SPARK_API_KEY "
                "(see `spark api-key generate`)"
            )

    @staticmethod
    def protects(path: str) -> bool:
        """True for ``GET /`` and every path under ``/api/v1`` except health and the docs."""
        if path != "/":
            path = path.rstrip("/")
        if path in PUBLIC_PATHS or path.startswith(PUBLIC_PREFIXES):
            return False
        return path in ("/", PROTECTED_PREFIX) or path.startswith(PROTECTED_PREFIX + "/")

    def accepts(self, presented: str) -> bool:
        """True when ``presented`` equals a configured key; every key is compared, always."""
        candidate = presented.encode("latin-1", errors="replace")
        matched = False
        for key in self._keys:
            matched |= hmac.compare_digest(candidate, key)
        return matched

    def refusal(self, presented: str | None) -> NotAuthorizedException | None:
        """The 401 to answer with, or ``None`` when the key is good."""
        if not presented:
            detail = MISSING_KEY
        elif not self.accepts(presented):
            detail = INVALID_KEY
        else:
            return None
        return NotAuthorizedException(detail=detail, headers={"WWW-Authenticate": "ApiKey"})


class ApiKeyMiddleware(ASGIMiddleware):
    """Refuses protected requests without a valid key with 401 and ``WWW-Authenticate``."""

    scopes = (ScopeType.HTTP,)

    def __init__(self, auth: ApiKeyAuth) -> None:
        self.auth = auth

    async def handle(self, scope: Scope, receive: Receive, send: Send, next_app: ASGIApp) -> None:
        """Check the key of protected requests, then pass them on."""
        # CORS preflights carry no credentials by design; they reveal no data.
        if scope.get("method") != "OPTIONS" and self.auth.protects(scope["path"]):
            refusal = self.auth.refusal(_header(scope, b"x-api-key"))
            if refusal is not None:
                raise refusal
        await next_app(scope, receive, send)


def _header(scope: Scope, name: bytes) -> str | None:
    for key, value in scope["headers"]:
        if key.lower() == name:
            return value.decode("latin-1")
    return None
