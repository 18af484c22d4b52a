"""Request bodies, the response class, and the answers only the API gives.

What the API and ``spark … --json`` both answer (list rows, pages, schedules with counters,
remote flows) lives in ``spark_http.presentation``, re-exported here for the routes;
``SparkResponse`` writes every answer through it, so datetimes carry a ``+00:00`` offset.
"""

from collections.abc import Callable, Iterable
from datetime import datetime
from typing import TYPE_CHECKING, Any, TypeVar

import msgspec
from litestar import Response
from litestar.background_tasks import BackgroundTask, BackgroundTasks
from litestar.datastructures import Cookie
from litestar.enums import MediaType
from litestar.response.base import ASGIResponse
from litestar.serialization import default_serializer
from litestar.status_codes import HTTP_200_OK
from litestar.types import Send, Serializer, TypeEncodersMap

from spark_core.errors import ValidationError
from spark_core.models import Source, SourceDeletion, WorkflowDeletion
from spark_core.services.tasks import DEFAULT_MAX_RETRIES
from spark_http.errors import field_errors
from spark_http.presentation import (
    KeptPages,
    NextRuns,
    PageOut,
    RemoteComponent,
    RemoteFlowOut,
    RemoteOrigin,
    ScheduleOut,
    TaskListItem,
    WorkflowListItem,
    encode,
    iso_utc,
    page_out,
    to_wire,
    written,
    written_or_none,
)

if TYPE_CHECKING:
    from litestar import Litestar, Request

__all__ = [
    "NextRuns", "PageOut", "RemoteComponent", "RemoteFlowOut", "RemoteOrigin", "ScheduleOut",
    "TaskListItem", "WorkflowListItem", "iso_utc", "page_out", "written", "written_or_none",
]

T = TypeVar("T")
S = TypeVar("S")


class SparkResponse(Response[T]):
    """A JSON response whose datetimes carry an explicit ``+00:00`` offset."""

    def render(
        self, content: Any, media_type: str, enc_hook: Serializer = default_serializer
    ) -> bytes:
        """Encode ``content`` as ``spark_http.presentation.encode`` does."""
        if isinstance(content, msgspec.Struct | list | dict) and "json" in media_type:
            content = to_wire(content)
        return super().render(content, media_type, enc_hook)


class EncodedResponse(SparkResponse[Any]):
    """A 200 JSON answer whose body ``spark_http.presentation.encode`` already wrote, made into
    its ASGI answer once: a kept page (``KeptPages``) is then answered by the same objects,
    with nothing built per request but its header list. A route that adds headers, cookies,
    a background task or another status gets a response made for the request, as usual."""

    __slots__ = ("_sent",)

    def __init__(self, body: bytes) -> None:
        super().__init__(body, media_type=MediaType.JSON)
        self._sent = _SentAsIs(body)

    def to_asgi_response(
        self,
        app: "Litestar | None",
        request: "Request[Any, Any, Any]",
        *,
        background: BackgroundTask | BackgroundTasks | None = None,
        cookies: Iterable[Cookie] | None = None,
        encoded_headers: Iterable[tuple[bytes, bytes]] | None = None,
        headers: dict[str, str] | None = None,
        is_head_response: bool = False,
        media_type: MediaType | str | None = None,
        status_code: int | None = None,
        type_encoders: "TypeEncodersMap | None" = None,
    ) -> ASGIResponse:
        """The answer made once, unless the route asks for more than a plain 200."""
        if (background or cookies or encoded_headers or headers or is_head_response
                or status_code not in (None, HTTP_200_OK)):
            return super().to_asgi_response(
                app, request, background=background, cookies=cookies,
                encoded_headers=encoded_headers, headers=headers,
                is_head_response=is_head_response, media_type=media_type,
                status_code=status_code, type_encoders=type_encoders)
        return self._sent


class _SentAsIs(ASGIResponse):
    """Litestar's ASGI answer for a body that never changes: its headers encoded once (each
    request gets its own copy of the list, which middleware may extend)."""

    __slots__ = ("_start",)

    def __init__(self, body: bytes) -> None:
        super().__init__(body=body, media_type=MediaType.JSON)
        self._start = tuple(self.encode_headers())

    async def start_response(self, send: Send) -> None:
        """The start event, with a fresh list of the headers encoded once."""
        await send({"type": "http.response.start", "status": self.status_code,
                    "headers": list(self._start)})


def page_answers(convert: Callable[[S], T]) -> KeptPages[S, EncodedResponse]:
    """A list route's answers: a store page through ``page_out(page, convert)`` and
    ``encode``, made into its ``EncodedResponse`` once per page object."""
    return KeptPages(lambda page: EncodedResponse(encode(page_out(page, convert))))


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
