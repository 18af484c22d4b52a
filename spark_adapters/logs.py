"""Log output: plain text or one JSON object per line (``SPARK_LOG_FORMAT``), never a secret.

The core logs through the standard ``logging`` module with ids as ``extra=`` fields
(``task_id``, ``schedule_id``, ``workflow_id``, ``source_type``…); the HTTP app sets
``REQUEST_ID`` for the duration of a request. Both formats pass every line through a redactor
that removes the configured API keys, the encryption key, the database password and anything
shaped like a key header or bearer token, as a last line behind code that never logs them.
"""

import contextvars
import json
import logging
import re
import sys
from collections.abc import Iterable
from datetime import UTC, datetime
from urllib.parse import unquote, urlsplit

from spark_adapters.settings import Settings

REQUEST_ID: contextvars.ContextVar[str | None] = contextvars.ContextVar(
    "spark_request_id", default=None)
"""The id of the HTTP request being handled (``X-Request-ID``), for every line it logs."""

TEXT_FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"
CONTEXT_FIELDS = ("request_id", "task_id", "schedule_id", "workflow_id", "source_type",
                  "outcome", "status")
REDACTED = "***"
_MIN_SECRET = 6  # shorter strings would redact ordinary words
_SHAPES = re.compile(
    r"(?i)(bearer\s+|x-api-key[\"']?\s*[:=]\s*[\"']?|api[_-]?key[\"']?\s*[:=]\s*[\"']?)"
    r"[A-Za-z0-9._~+/=-]{8,}")


class Redactor:
    """Replaces known secrets, and key-shaped text, with ``***``."""

    def __init__(self, secrets: Iterable[str | None]) -> None:
        found = {s for s in secrets if s and len(s) >= _MIN_SECRET}
        self._secrets = sorted(found, key=len, reverse=True)

    def __call__(self, text: str) -> str:
        """``text`` without secrets."""
        for secret in self._secrets:
            text = text.replace(secret, REDACTED)
        return _SHAPES.sub(lambda match: match.group(1) + REDACTED, text)


def settings_secrets(settings: Settings) -> list[str]:
    """Every secret the settings hold: API keys, the encryption key, the database password."""
    secrets: list[str | None] = [*settings.api_keys, settings.encryption_key]
    if settings.database_url and "://" in settings.database_url:
        password = urlsplit(settings.database_url).password
        secrets += [password, unquote(password) if password else None]
    return [s for s in secrets if s]


class _RequestIdFilter(logging.Filter):
    """Stamps the current request id on every record logged while a request is handled."""

    def filter(self, record: logging.LogRecord) -> bool:
        if getattr(record, "request_id", None) is None:
            record.request_id = REQUEST_ID.get()
        return True


class TextFormatter(logging.Formatter):
    """The classic one-line format, ids appended as ``key=value``, secrets redacted."""

    def __init__(self, redact: Redactor) -> None:
        super().__init__(TEXT_FORMAT)
        self._redact = redact

    def format(self, record: logging.LogRecord) -> str:
        """One redacted line (plus the traceback, if any)."""
        text = super().format(record)
        context = " ".join(f"{name}={getattr(record, name)}" for name in CONTEXT_FIELDS
                           if getattr(record, name, None) is not None
                           and f"{getattr(record, name)}" not in record.getMessage())
        if context:
            head, newline, rest = text.partition("\n")
            text = f"{head} [{context}]{newline}{rest}"
        return self._redact(text)


class JsonFormatter(logging.Formatter):
    """One JSON object per line: ``time``, ``level``, ``message``, ``logger``, the ids that
    are known, and ``traceback`` for an exception; secrets redacted."""

    def __init__(self, redact: Redactor) -> None:
        super().__init__()
        self._redact = redact

    def format(self, record: logging.LogRecord) -> str:
        """The record as one JSON line."""
        entry: dict[str, object] = {
            "time": datetime.fromtimestamp(record.created, UTC).isoformat(
                timespec="milliseconds"),
            "level": record.levelname,
            "message": self._redact(record.getMessage()),
            "logger": record.name,
        }
        for name in CONTEXT_FIELDS:
            value = getattr(record, name, None)
            if value is not None:
                entry[name] = self._redact(str(value))
        if record.exc_info:
            entry["traceback"] = self._redact(self.formatException(record.exc_info))
        return json.dumps(entry, ensure_ascii=False)


def configure_logging(settings: Settings) -> None:
    """Log at ``SPARK_LOG_LEVEL`` to stderr in ``SPARK_LOG_FORMAT`` (``text`` or ``json``),
    replacing any handler configured before."""
    redact = Redactor(settings_secrets(settings))
    formatter: logging.Formatter = (JsonFormatter(redact) if settings.log_format == "json"
                                    else TextFormatter(redact))
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(formatter)
    handler.addFilter(_RequestIdFilter())
    root = logging.getLogger()
    for old in list(root.handlers):
        root.removeHandler(old)
    root.addHandler(handler)
    root.setLevel(settings.log_level.upper())
