"""Request and response bodies where the wire differs from the domain.

Domain Structs (``Source``, ``Workflow``, ``Schedule``, ``Task``) are returned as they are where
their shape is the contract; these add what lists carry, drop what lists leave out, and
describe request bodies. ``SparkResponse`` writes datetimes as ISO-8601 with a ``+00:00``
offset, the form the original service answered with.
"""

import functools
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any, Generic, TypeVar

import msgspec
import msgspec.inspect
from litestar import Response
from litestar.serialization import default_serializer
from litestar.types import Serializer

from spark_core.errors import ValidationError
from spark_core.fires import FireCounters, FireOutcome
from spark_core.models import (
    Page,
    RemoteFlow,
    Schedule,
    ScheduleId,
    Source,
    SourceDeletion,
    Task,
    TaskId,
    TaskStatus,
    WorkflowDeletion,
    WorkflowId,
    WorkflowSummary,
)
from spark_core.services.tasks import DEFAULT_MAX_RETRIES
from spark_http.errors import field_errors

T = TypeVar("T")
S = TypeVar("S")


class SparkResponse(Response[T]):
    """A JSON response whose datetimes carry an explicit ``+00:00`` offset."""

    def render(
        self, content: Any, media_type: str, enc_hook: Serializer = default_serializer
    ) -> bytes:
        """Encode ``content``, writing every datetime with ``isoformat`` in UTC."""
        if isinstance(content, msgspec.Struct | list | dict) and "json" in media_type:
            content = _iso_datetimes(content)
        return super().render(content, media_type, enc_hook)


def _iso_datetimes(value: Any, *, in_struct: bool = False) -> Any:
    """``value`` with its datetimes as ISO-8601 UTC text (msgspec alone would write ``Z``).

    Datetimes live in Struct fields (or lists of them), and only the fields whose type can
    hold one are visited. A dict inside a Struct is free-form JSON from a source (a flow's
    ``data``, a run's ``output_raw``), which holds none, so it is not walked: a page of
    workflows costs the same however large their definitions are.
    """
    if isinstance(value, datetime):
        return iso_utc(value)
    if isinstance(value, msgspec.Struct):
        changes = {}
        for name in _datetime_fields(type(value)):
            field = getattr(value, name)
            if field is None:  # the common cases are inlined: this runs per row of a page
                continue
            if isinstance(field, datetime):
                changes[name] = iso_utc(field)
                continue
            converted = _iso_datetimes(field, in_struct=True)
            if converted is not field:
                changes[name] = converted
        return msgspec.structs.replace(value, **changes) if changes else value
    if isinstance(value, list):
        items = [_iso_datetimes(item, in_struct=in_struct) for item in value]
        return value if all(a is b for a, b in zip(items, value, strict=True)) else items
    if isinstance(value, dict) and not in_struct:
        return {key: _iso_datetimes(item) for key, item in value.items()}
    return value


_encode = msgspec.json.Encoder().encode


def iso_utc(moment: datetime) -> str:
    """``moment`` as ``moment.astimezone(UTC).isoformat()`` writes it (``+00:00``), about six
    times faster: msgspec writes the same text with ``Z`` for the offset, which is swapped."""
    if moment.tzinfo is not UTC:  # naive (local time) or another zone, as astimezone reads it
        moment = moment.astimezone(UTC)
    return _encode(moment)[1:-2].decode() + "+00:00"


def written(moment: datetime) -> datetime:
    """``moment`` already in its wire form (``iso_utc``), for a list row built once straight
    in the wire shape: msgspec writes the text as it is and ``SparkResponse`` does not visit
    the row again. Typed as the datetime it stands for, so the OpenAPI document still says
    ``date-time``."""
    return iso_utc(moment)  # type: ignore[return-value]


def written_or_none(moment: datetime | None) -> datetime | None:
    """``written(moment)``, or ``None``."""
    return None if moment is None else written(moment)


WRITTEN_ONCE: set[type[msgspec.Struct]] = set()
"""List rows whose ``of`` writes their datetimes in the wire form: never walked again."""


@functools.cache
def _datetime_fields(struct_type: type[msgspec.Struct]) -> tuple[str, ...]:
    """The fields of ``struct_type`` whose declared type may hold a datetime (none for the
    rows of ``WRITTEN_ONCE``, whose datetimes are already text)."""
    if struct_type in WRITTEN_ONCE:
        return ()
    try:
        info = msgspec.inspect.type_info(struct_type)
    except (TypeError, ValueError):  # a type msgspec cannot describe: visit every field
        return struct_type.__struct_fields__
    assert isinstance(info, msgspec.inspect.StructType)
    return tuple(field.name for field in info.fields if _may_hold_datetime(field.type))


def _may_hold_datetime(kind: msgspec.inspect.Type) -> bool:
    if isinstance(kind, msgspec.inspect.DateTimeType | msgspec.inspect.StructType
                  | msgspec.inspect.AnyType):
        return True
    if isinstance(kind, msgspec.inspect.UnionType):
        return any(_may_hold_datetime(member) for member in kind.types)
    if isinstance(kind, msgspec.inspect.ListType | msgspec.inspect.VarTupleType):
        return _may_hold_datetime(kind.item_type)
    if isinstance(kind, msgspec.inspect.TupleType):
        return any(_may_hold_datetime(member) for member in kind.item_types)
    return False


# -- pagination ----------------------------------------------------------------------------------
class Pagination(msgspec.Struct, frozen=True, kw_only=True):
    """The page a list request asks for."""

    limit: int
    offset: int


class PageOut(msgspec.Struct, Generic[T], kw_only=True):
    """The envelope of every list: one page of items and where it sits in the whole."""

    items: list[T]
    total: int
    limit: int
    offset: int
    has_more: bool


def page_out(page: Page[S], convert: Callable[[S], T]) -> PageOut[T]:
    """The envelope of a store page, each item converted for the wire."""
    return PageOut(
        items=[convert(item) for item in page.items],
        total=page.total,
        limit=page.limit,
        offset=page.offset,
        has_more=page.has_more,
    )



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


# -- workflows -----------------------------------------------------------------------------------
class WorkflowListItem(msgspec.Struct, kw_only=True):
    """A catalogue entry with its run statistics."""

    id: WorkflowId
    source_id: str
    source: str
    remote_flow_id: str
    name: str
    flow_type: str
    description: str | None
    input_component: str | None
    output_component: str | None
    data: dict[str, Any] | None
    folder_id: str | None
    folder_name: str | None
    icon: str | None
    icon_bg_color: str | None
    liked: bool
    tags: list[str]
    flow_version: int
    is_component: bool
    created_at: datetime
    updated_at: datetime
    latest_run: str
    task_count: int
    failed_task_count: int
    max_concurrency: int | None = None

    @classmethod
    def of(cls, summary: WorkflowSummary) -> "WorkflowListItem":
        """The list item of a store summary."""
        fields = msgspec.structs.asdict(summary.workflow)
        fields["created_at"] = written(summary.workflow.created_at)
        fields["updated_at"] = written(summary.workflow.updated_at)
        return cls(
            **fields,
            latest_run=summary.latest_run,
            task_count=summary.task_count,
            failed_task_count=summary.failed_task_count,
        )


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


class RemoteOrigin(msgspec.Struct, kw_only=True):
    """Where a remote flow lives."""

    instance: str
    source_url: str


class RemoteComponent(msgspec.Struct, kw_only=True):
    """One node of a remote flow's graph."""

    id: str | None
    name: str | None
    description: str


class RemoteFlowOut(msgspec.Struct, kw_only=True):
    """A flow, agent, team or workflow offered by a source; ``data`` only when not simplified."""

    id: str
    name: str
    description: str | None
    flow_type: str
    source_id: str
    source_url: str
    origin: RemoteOrigin
    folder_id: str | None
    folder_name: str | None
    is_component: bool
    input_component: str | None
    output_component: str | None
    components: list[RemoteComponent]
    data: dict[str, Any] | None = None

    @classmethod
    def of(cls, flow: RemoteFlow, source: Source, *, simplified: bool) -> "RemoteFlowOut":
        """The wire form of a remote flow found on ``source``."""
        return cls(
            id=flow.remote_id,
            name=flow.name,
            description=flow.description,
            flow_type=flow.flow_type,
            source_id=source.id,
            source_url=source.url,
            origin=RemoteOrigin(instance=source.name, source_url=source.url),
            folder_id=flow.folder_id,
            folder_name=flow.folder_name,
            is_component=flow.is_component,
            input_component=flow.input_component,
            output_component=flow.output_component,
            components=_components(flow.data),
            data=None if simplified else flow.data,
        )


def _components(data: dict[str, Any] | None) -> list[RemoteComponent]:
    nodes = (data or {}).get("nodes")
    if not isinstance(nodes, list):
        return []
    components = []
    for node in nodes:
        if not isinstance(node, dict):
            continue
        inner = node.get("data")
        if not isinstance(inner, dict):
            inner = {}
        components.append(
            RemoteComponent(
                id=node.get("id"),
                name=inner.get("name") or inner.get("type"),
                description=str(inner.get("description") or ""),
            )
        )
    return components


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


class TaskListItem(msgspec.Struct, kw_only=True):
    """A task in a list: every task field except ``output_raw`` and ``attempts`` (read one
    task for them)."""

    id: TaskId
    workflow_id: WorkflowId
    schedule_id: ScheduleId | None
    status: TaskStatus
    input_data: str
    output_data: str | None
    error: str | None
    tries: int
    max_retries: int
    next_retry_at: datetime | None
    scheduled_for: datetime | None
    timeout: float | None
    session_id: str | None
    tweaks: dict[str, Any] | None
    started_at: datetime | None
    finished_at: datetime | None
    created_at: datetime
    updated_at: datetime

    @classmethod
    def of(cls, task: Task) -> "TaskListItem":
        """The list item of a task."""
        return cls(
            id=task.id,
            workflow_id=task.workflow_id,
            schedule_id=task.schedule_id,
            status=task.status,
            input_data=task.input_data,
            output_data=task.output_data,
            error=task.error,
            tries=task.tries,
            max_retries=task.max_retries,
            next_retry_at=written_or_none(task.next_retry_at),
            scheduled_for=written_or_none(task.scheduled_for),
            timeout=task.timeout,
            session_id=task.session_id,
            tweaks=task.tweaks,
            started_at=written_or_none(task.started_at),
            finished_at=written_or_none(task.finished_at),
            created_at=written(task.created_at),
            updated_at=written(task.updated_at),
        )


WRITTEN_ONCE.update((WorkflowListItem, TaskListItem))


class TaskDeleted(msgspec.Struct, kw_only=True):
    """What deleting a task did (``cancelled``: it was still pending or running)."""

    deleted: bool
    id: str
    cancelled: bool


# -- schedules -----------------------------------------------------------------------------------
class ScheduleOut(Schedule, kw_only=True, frozen=True):
    """A schedule as the API shows it: every stored field plus its fire-ledger counters
    (over the retained records; see ``GET /api/v1/schedules/{id}/fires``)."""

    fired_count: int = 0
    missed_count: int = 0
    skipped_overlap_count: int = 0
    last_outcome: FireOutcome | None = None

    @classmethod
    def of(cls, schedule: Schedule, counters: FireCounters) -> "ScheduleOut":
        """``schedule`` with ``counters``."""
        return cls(**msgspec.structs.asdict(schedule), **msgspec.structs.asdict(counters))


class ScheduleNote(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    """The optional body of a pause or resume: a ``note`` saying why, shown on the
    schedule."""

    note: str | None = None


class ScheduleDeleted(msgspec.Struct, kw_only=True):
    """A deleted schedule; the tasks it created stay as history."""

    deleted: bool
    id: str
    tasks_kept: bool


class NextRuns(msgspec.Struct, kw_only=True):
    """The next fire times of a schedule (empty when paused or completed)."""

    schedule_id: str
    count: int
    next_runs: list[datetime]


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
