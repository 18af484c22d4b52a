"""Request bodies, the response class, and the answers only the API gives.

What the API and ``spark … --json`` both answer (list rows, pages, schedules with counters,
remote flows) lives in ``spark_http.presentation``, re-exported here for the routes;
``SparkResponse`` writes every answer through it, so datetimes carry a ``+00:00`` offset.
"""

from datetime import datetime
from typing import Any, TypeVar

import msgspec
from litestar import Response
from litestar.serialization import default_serializer
from litestar.types import Serializer

from spark_core.errors import ValidationError
from spark_core.models import Source, SourceDeletion, WorkflowDeletion
from spark_core.services.tasks import DEFAULT_MAX_RETRIES
from spark_http.errors import field_errors
from spark_http.presentation import (
    NextRuns,
    PageOut,
    RemoteComponent,
    RemoteFlowOut,
    RemoteOrigin,
    ScheduleOut,
    TaskListItem,
    WorkflowListItem,
    iso_utc,
    page_out,
    to_wire,
    written,
    written_or_none,
)

__all__ = [
    "NextRuns", "PageOut", "RemoteComponent", "RemoteFlowOut", "RemoteOrigin", "ScheduleOut",
    "TaskListItem", "WorkflowListItem", "iso_utc", "page_out", "written", "written_or_none",
]

T = TypeVar("T")


class SparkResponse(Response[T]):
    """A JSON response whose datetimes carry an explicit ``+00:00`` offset."""

    def render(
        self, content: Any, media_type: str, enc_hook: Serializer = default_serializer
    ) -> bytes:
        """Encode ``content`` as ``spark_http.presentation.encode`` does."""
        if isinstance(content, msgspec.Struct | list | dict) and "json" in media_type:
            content = to_wire(content)
        return super().render(content, media_type, enc_hook)


def encoded(body: bytes) -> SparkResponse[Any]:
    """An answer already written by ``spark_http.presentation.encode``, sent as it is."""
    return SparkResponse(body)


def require_all(body: msgspec.Struct, required: tuple[str, ...], noun: str) -> None:
    """Refuse a full replace (PUT) whose ``body`` leaves out any of the ``required`` fields,
    naming every one that is missing."""
    missing = [name for name in required if getattr(body, name) is msgspec.UNSET]
    if missing:
        raise ValidationError(
            f"PUT replaces the whole {noun}: missing {', '.join(missing)}"
            " (use PATCH to change some fields only)",
            errors=[(name, "required by PUT") for name in missing],
        )

# -- sources -------------------------------------------------------------------------------------
class SourceIn(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    """A new source; ``source_type`` is ``langflow`` or ``automagik-hive`` (alias ``hive``)."""

    name: str
    source_type: str
    url: str
    api_key: str | None = None
    verify_tls: bool = True


class SourceDeleted(msgspec.Struct, kw_only=True):
    """What deleting a source removed with it."""

    deleted: bool
    id: str
    workflows_deleted: int
    schedules_deleted: int
    tasks_deleted: int

    @classmethod
    def of(cls, deletion: SourceDeletion) -> "SourceDeleted":
        """The answer for a store deletion record."""
        return cls(
            deleted=True,
            id=deletion.source_id,
            workflows_deleted=deletion.workflows_deleted,
            schedules_deleted=deletion.schedules_deleted,
            tasks_deleted=deletion.tasks_deleted,
        )


def source_out(source: Source) -> Source:
    """A source as answered: the domain record holds no key, so it is its own wire form."""
    return source


class WorkflowDeleted(msgspec.Struct, kw_only=True):
    """What deleting a workflow removed with it (``success`` kept for older clients)."""

    deleted: bool
    success: bool
    id: str
    schedules_deleted: int
    tasks_deleted: int

    @classmethod
    def of(cls, deletion: WorkflowDeletion) -> "WorkflowDeleted":
        """The answer for a store deletion record."""
        return cls(
            deleted=True,
            success=True,
            id=deletion.workflow_id,
            schedules_deleted=deletion.schedules_deleted,
            tasks_deleted=deletion.tasks_deleted,
        )


class RunIn(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    """How to run a workflow now. ``wait`` false answers 202 at once with the pending task."""

    input_value: str = ""
    tweaks: dict[str, Any] | None = None
    session_id: str | None = None
    wait: bool | None = None
    timeout: float | None = None
    max_retries: int = DEFAULT_MAX_RETRIES


def parse_run_body(raw: bytes, content_type: str) -> RunIn:
    """A run request from its body: empty, ``text/plain``, a bare JSON string, or an object."""
    if not raw.strip():
        return RunIn()
    if content_type.split(";", 1)[0].strip().lower() == "text/plain":
        try:
            return RunIn(input_value=raw.decode("utf-8"))
        except UnicodeDecodeError as exc:
            raise ValidationError(
                "Request body is not UTF-8 text", errors=[("body", "must be UTF-8")]
            ) from exc
    try:
        value = msgspec.json.decode(raw)
    except msgspec.DecodeError as exc:
        raise ValidationError(
            f"Request body is not valid JSON: {exc}", errors=[("body", str(exc))]
        ) from exc
    if isinstance(value, str):
        return RunIn(input_value=value)
    if isinstance(value, dict):
        try:
            return msgspec.convert(value, RunIn)
        except msgspec.ValidationError as exc:
            errors = field_errors(exc)
            raise ValidationError(
                f"Invalid run request: {errors[0]['field']}: {errors[0]['message']}",
                errors=[(error["field"], error["message"]) for error in errors],
            ) from exc
    raise ValidationError(
        "The body must be a JSON string, text/plain, or an object with input_value",
        errors=[("body", "must be a string or an object")],
    )


# -- tasks ---------------------------------------------------------------------------------------
class TaskIn(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    """A run to queue for the worker."""

    workflow_id: str
    input_data: str = ""
    max_retries: int = DEFAULT_MAX_RETRIES
    timeout: float | None = None
    session_id: str | None = None
    tweaks: dict[str, Any] | None = None


class TaskDeleted(msgspec.Struct, kw_only=True):
    """What deleting a task did (``cancelled``: it was still pending or running)."""

    deleted: bool
    id: str
    cancelled: bool


# -- schedules -----------------------------------------------------------------------------------
class ScheduleNote(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    """The optional body of a pause or resume: a ``note`` saying why, shown on the
    schedule."""

    note: str | None = None


class ScheduleDeleted(msgspec.Struct, kw_only=True):
    """A deleted schedule; the tasks it created stay as history."""

    deleted: bool
    id: str
    tasks_kept: bool


# -- service -------------------------------------------------------------------------------------
class HealthOut(msgspec.Struct, kw_only=True):
    """The state of the service and of each part."""

    status: str
    version: str
    services: dict[str, str]


class ServiceInfo(msgspec.Struct, kw_only=True):
    """What this server is: the original service's fields (``status``, ``service``,
    ``message``, the doc URLs), plus ``name``."""

    status: str
    service: str
    name: str
    message: str
    version: str
    server_time: datetime
    docs_url: str
    redoc_url: str
    openapi_url: str
