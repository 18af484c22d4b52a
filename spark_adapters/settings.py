"""Configuration: built-in defaults, then `.env` in the working directory, then the environment,
then command-line flags (later wins). Nothing here reads the environment at import time."""

import os
import secrets
import stat
import urllib.parse
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import msgspec

from spark_core.errors import ValidationError

API_KEY_ALIASES = ("SPARK_API_KEY", "AUTOMAGIK_SPARK_API_KEY")
POSTGRES_SCHEMES = ("postgresql", "postgres", "postgresql+psycopg")


class Settings(msgspec.Struct, frozen=True, kw_only=True):
    """Everything Spark can be configured with; see the README's configuration table."""

    api_host: str = "127.0.0.1"
    api_port: int = 8883
    api_keys: tuple[str, ...] = ()
    data_dir: Path = Path(".spark")
    database_url: str | None = None
    encryption_key: str | None = None
    cors_origins: tuple[str, ...] = ("*",)
    http_timeout: float = 300.0
    workers: int = 16
    lease_seconds: float = 30.0
    task_retention_days: float = 30.0
    log_level: str = "INFO"
    log_format: str = "text"
    metrics_public: bool = False
    fire_retention_days: float = 30.0
    database_pool_size: int = 10
    database_poll_only: bool = False
    webhook_url: str | None = None
    webhook_secret: str | None = None

    @property
    def database_kind(self) -> str:
        """``sqlite`` or ``postgresql``, from ``SPARK_DATABASE_URL``'s scheme."""
        url = self.database_url or "sqlite:///"
        scheme = url.split("://", 1)[0].lower() if "://" in url else ""
        if scheme == "sqlite":
            return "sqlite"
        if scheme in POSTGRES_SCHEMES:
            return "postgresql"
        raise ValidationError(
            f"Unsupported SPARK_DATABASE_URL scheme '{scheme or url.split(':', 1)[0]}': use "
            "sqlite:///path/to/spark.db or postgresql://user:password@host:5432/database"
        )

    @property
    def database_path(self) -> Path:
        """The SQLite file the store lives in."""
        url = self.database_url or f"sqlite:///{self.data_dir / 'spark.db'}"
        if self.database_kind != "sqlite" or not url.startswith("sqlite:///"):
            raise ValidationError(
                "SPARK_DATABASE_URL must look like sqlite:///path/to/spark.db for SQLite"
            )
        return Path(url.removeprefix("sqlite:///"))

    @property
    def postgres_url(self) -> str:
        """The PostgreSQL connection URL (``postgresql://…``), checked for shape."""
        url = self.database_url or ""
        if self.database_kind != "postgresql":
            raise ValidationError("SPARK_DATABASE_URL is not a postgresql:// URL")
        parts = urllib.parse.urlsplit(url)
        try:
            port = parts.port
        except ValueError as exc:
            raise ValidationError(
                f"Malformed SPARK_DATABASE_URL: the port is not a number ({_safe_url(url)})"
            ) from exc
        if not parts.hostname and "host=" not in parts.query:
            raise ValidationError(
                f"Malformed SPARK_DATABASE_URL: no host ({_safe_url(url)}); expected "
                "postgresql://user:password@host:5432/database"
            )
        del port
        return "postgresql://" + url.split("://", 1)[1]

    @property
    def secret_key_path(self) -> Path:
        """Where a generated encryption key is kept when none is configured."""
        return self.data_dir / "secret.key"


def read_dotenv(path: Path) -> dict[str, str]:
    """Parse a `.env` file of KEY=VALUE lines (comments, blank lines, `export` and quotes
    allowed). A missing file is empty."""
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        return {}
    values: dict[str, str] = {}
    for raw in text.splitlines():
        line = raw.strip()
        if not line or line.startswith("#") or "=" not in line:
            continue
        key, _, value = line.removeprefix("export ").partition("=")
        value = value.strip()
        if len(value) >= 2 and value[0] == value[-1] and value[0] in "'\"":
            value = value[1:-1]
        values[key.strip()] = value
    return values


def _split(value: str) -> tuple[str, ...]:
    return tuple(part.strip() for part in value.split(",") if part.strip())


def load_settings(
    *,
    environ: Mapping[str, str] | None = None,
    dotenv: Path | None = Path(".env"),
    overrides: Mapping[str, Any] | None = None,
) -> Settings:
    """Build settings from defaults, `.env`, the environment and explicit overrides.

    ``overrides`` are Settings field names (from CLI flags); ``None`` values are ignored.
    """
    merged: dict[str, str] = {}
    if dotenv is not None:
        merged.update(read_dotenv(dotenv))
    merged.update(os.environ if environ is None else environ)

    fields: dict[str, Any] = {}
    simple = {
        "API_HOST": "api_host",
        "API_PORT": "api_port",
        "SPARK_DATA_DIR": "data_dir",
        "SPARK_DATABASE_URL": "database_url",
        "SPARK_ENCRYPTION_KEY": "encryption_key",
        "SPARK_HTTP_TIMEOUT": "http_timeout",
        "SPARK_WORKERS": "workers",
        "SPARK_LEASE_SECONDS": "lease_seconds",
        "SPARK_TASK_RETENTION_DAYS": "task_retention_days",
        "SPARK_LOG_LEVEL": "log_level",
        "SPARK_LOG_FORMAT": "log_format",
        "SPARK_METRICS_PUBLIC": "metrics_public",
        "SPARK_FIRE_RETENTION_DAYS": "fire_retention_days",
        "SPARK_DATABASE_POOL_SIZE": "database_pool_size",
        "SPARK_DATABASE_POLL_ONLY": "database_poll_only",
        "SPARK_WEBHOOK_URL": "webhook_url",
        "SPARK_WEBHOOK_SECRET": "webhook_secret",
    }
    for variable, field in simple.items():
        if merged.get(variable):
            fields[field] = merged[variable]
    for variable in API_KEY_ALIASES:
        if merged.get(variable):
            fields["api_keys"] = _split(merged[variable])
            break
    if merged.get("SPARK_CORS_ORIGINS"):
        fields["cors_origins"] = _split(merged["SPARK_CORS_ORIGINS"])
    fields.update({key: value for key, value in (overrides or {}).items() if value is not None})
    if "data_dir" in fields:
        fields["data_dir"] = Path(fields["data_dir"])
    try:
        settings = msgspec.convert(fields, Settings, strict=False)
    except msgspec.ValidationError as exc:
        raise ValidationError(f"Invalid configuration: {exc}") from exc
    if settings.workers < 1:
        raise ValidationError("Invalid configuration: SPARK_WORKERS must be at least 1")
    if settings.http_timeout <= 0:
        raise ValidationError("Invalid configuration: SPARK_HTTP_TIMEOUT must be positive")
    if settings.lease_seconds <= 0:
        raise ValidationError("Invalid configuration: SPARK_LEASE_SECONDS must be positive")
    _check_retention(settings)
    _check_observability(settings)
    if settings.database_pool_size < 1:
        raise ValidationError("Invalid configuration: SPARK_DATABASE_POOL_SIZE must be at least 1")
    _check_webhook(settings)
    _ = settings.database_kind  # refuses an unknown scheme at load time, not at first use
    return settings


def _check_retention(settings: Settings) -> None:
    if settings.task_retention_days < 0:
        raise ValidationError(
            "Invalid configuration: SPARK_TASK_RETENTION_DAYS must be 0 (keep forever) or more")


def _check_observability(settings: Settings) -> None:
    """Refuse an unknown log format or a retention that keeps nothing."""
    if settings.log_format not in ("text", "json"):
        raise ValidationError("Invalid configuration: SPARK_LOG_FORMAT must be text or json")
    if settings.fire_retention_days <= 0:
        raise ValidationError(
            "Invalid configuration: SPARK_FIRE_RETENTION_DAYS must be positive")


def _check_webhook(settings: Settings) -> None:
    """Refuse a webhook URL that is not http(s)."""
    url = settings.webhook_url
    if url and urllib.parse.urlsplit(url).scheme not in ("http", "https"):
        raise ValidationError(
            "Invalid configuration: SPARK_WEBHOOK_URL must be an http:// or https:// URL")


def _safe_url(url: str) -> str:
    """``url`` with any password replaced by ``***``, fit for a message or a log line."""
    parts = urllib.parse.urlsplit(url)
    if parts.password is None:
        return url
    netloc = parts.netloc.replace(f":{parts.password}@", ":***@", 1)
    return urllib.parse.urlunsplit(parts._replace(netloc=netloc))


def generate_api_key() -> str:
    """A new secure API key: 32 random bytes, URL-safe text."""
    return secrets.token_urlsafe(32)


def write_dotenv_value(path: Path, key: str, value: str) -> None:
    """Set ``key`` in a `.env` file (creating it with mode 0600), keeping its other lines."""
    lines: list[str] = []
    if path.exists():
        lines = [
            line for line in path.read_text(encoding="utf-8").splitlines()
            if line.strip().removeprefix("export ").partition("=")[0].strip() != key
        ]
    lines.append(f"{key}={value}")
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, stat.S_IRUSR | stat.S_IWUSR)
    with os.fdopen(fd, "w", encoding="utf-8") as handle:
        handle.write("\n".join(lines) + "\n")
    path.chmod(stat.S_IRUSR | stat.S_IWUSR)
