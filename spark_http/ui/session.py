"""Dashboard sessions and CSRF: who may use ``/ui``, without ever storing the API key.

Sign-in takes an API key once. The server answers with a session cookie (``HttpOnly``,
``SameSite=Strict``, ``Secure`` over HTTPS, path ``/ui``) holding a signed session token,
never the key:

    v1.<random session id>.<expiry, unix seconds>.<HMAC-SHA256 signature>

The signature's secret is derived from the API key the user signed in with
(``HMAC(key, "spark-ui-session-v1")``). So any Spark process that knows the same keys
verifies the token without shared state (many nodes behind a load balancer, restarts), and
removing a key from ``SPARK_API_KEY`` signs out every session made with it while sessions of
the other keys live on. A token carries its expiry (``SESSION_LIFETIME``, 12 h).

Sign-out clears the cookie and revokes the session id in this process until the token would
have expired anyway. The revocation is not shared between processes: a copied cookie stays
valid on another node until its expiry (the browser itself no longer has it); rotating the
key ends it everywhere at once.

CSRF: every session has a token, ``HMAC(secret, "csrf." + session id)``, which pages put in a
hidden ``_csrf`` field of each form and in a ``<meta>`` tag that the script copies into an
``X-CSRF-Token`` header for ``fetch()``. Every unsafe request under ``/ui`` must carry it; the
sign-in form, which has no session yet, uses a double-submit cookie instead. ``SameSite=Strict``
is a second line: a cross-site form never carries the cookies.
"""

import base64
import hashlib
import hmac
import secrets
import time
from collections.abc import Callable, Iterable

import msgspec

SESSION_COOKIE = "spark_session"
LOGIN_COOKIE = "spark_login"
CSRF_FIELD = "_csrf"
CSRF_HEADER = "x-csrf-token"
SESSION_LIFETIME = 12 * 3600
"""Seconds a session lasts after sign-in."""

_CONTEXT = b"spark-ui-session-v1"
_VERSION = "v1"


class UiSession(msgspec.Struct, frozen=True, kw_only=True):
    """A verified session: its id, when it ends (unix seconds) and its CSRF token."""

    id: str
    expires_at: int
    csrf: str


def _encode(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()


class SessionSigner:
    """Issues, verifies and revokes session tokens for the configured API keys."""

    def __init__(
        self, keys: Iterable[str], *, lifetime: int = SESSION_LIFETIME,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._secrets = {
            key: hmac.new(key.encode(), _CONTEXT, hashlib.sha256).digest() for key in keys if key
        }
        self.lifetime = lifetime
        self._clock = clock
        self._revoked: dict[str, int] = {}

    def issue(self, key: str) -> tuple[str, UiSession]:
        """A new session for someone who presented ``key`` (already checked): the cookie
        value and the session."""
        secret = self._secrets[key]
        session_id = _encode(secrets.token_bytes(18))
        expires_at = int(self._clock()) + self.lifetime
        payload = f"{_VERSION}.{session_id}.{expires_at}"
        return f"{payload}.{_sign(secret, payload)}", UiSession(
            id=session_id, expires_at=expires_at, csrf=_csrf(secret, session_id))

    def verify(self, token: str | None) -> UiSession | None:
        """The session of a cookie value, or ``None`` when it is missing, malformed, forged,
        signed with a key no longer configured, expired or revoked."""
        if not token:
            return None
        parts = token.split(".")
        if len(parts) != 4 or parts[0] != _VERSION or not parts[2].isdigit():
            return None
        payload, signature = token.rsplit(".", 1)
        session_id, expires_at = parts[1], int(parts[2])
        # Every secret is tried, always: the time taken says nothing about which key matched.
        found = None
        for secret in self._secrets.values():
            if hmac.compare_digest(_sign(secret, payload), signature):
                found = secret
        if found is None or expires_at <= self._clock() or session_id in self._revoked:
            return None
        return UiSession(id=session_id, expires_at=expires_at, csrf=_csrf(found, session_id))

    def revoke(self, session: UiSession) -> None:
        """Refuse ``session`` from now on in this process (sign-out)."""
        now = self._clock()
        self._revoked = {sid: end for sid, end in self._revoked.items() if end > now}
        self._revoked[session.id] = session.expires_at


def _sign(secret: bytes, payload: str) -> str:
    return _encode(hmac.new(secret, payload.encode(), hashlib.sha256).digest())


def _csrf(secret: bytes, session_id: str) -> str:
    return _encode(hmac.new(secret, f"csrf.{session_id}".encode(), hashlib.sha256).digest()[:24])


def same_token(given: str | None, expected: str) -> bool:
    """True when ``given`` equals ``expected`` (compared in constant time)."""
    return given is not None and hmac.compare_digest(given.encode(), expected.encode())


def new_login_token() -> str:
    """A random value for the sign-in form's double-submit cookie."""
    return _encode(secrets.token_bytes(18))
