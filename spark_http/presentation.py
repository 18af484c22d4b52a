"""What the API answers and ``spark … --json`` prints: one presentation for both.

Domain Structs (``Source``, ``Workflow``, ``Schedule``, ``Task``) are answered as they are where
their shape is the contract; the Structs here add what lists carry and drop what lists leave
out. Every datetime is written as ISO-8601 with a ``+00:00`` offset (``to_wire``), the form the
original service answered with: clients on Python 3.10 and older cannot read ``Z`` with
``datetime.fromisoformat``. ``encode`` gives the exact bytes of an answer, so the CLI prints
what the API sends. This module does not import Litestar: the CLI loads it.
"""

import functools
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any, Generic, TypeVar

import msgspec
import msgspec.inspect

from spark_core.fires import FireCounters, FireOutcome
from spark_core.models import (
    Page,
    RemoteFlow,
    Schedule,
    ScheduleId,
    Source,
    Task,
    TaskId,
    TaskStatus,
    WorkflowId,
    WorkflowSummary,
)

T = TypeVar("T")
S = TypeVar("S")
R = TypeVar("R")


def encode(value: Any) -> bytes:
    """The JSON the API answers for ``value``: its datetimes written by ``to_wire``."""
    return _encode(to_wire(value))


def to_wire(value: Any, *, in_struct: bool = False) -> Any:
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
            converted = to_wire(field, in_struct=True)
            if converted is not field:
                changes[name] = converted
        return msgspec.structs.replace(value, **changes) if changes else value
    if isinstance(value, list):
        if value and type(value[0]) in WRITTEN_ONCE:  # a page's rows: one type, written once
            return value
        items = [to_wire(item, in_struct=in_struct) for item in value]
        return value if all(a is b for a, b in zip(items, value, strict=True)) else items
    if isinstance(value, dict) and not in_struct:
        return {key: to_wire(item) for key, item in value.items()}
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
    in the wire shape: msgspec writes the text as it is and ``to_wire`` does not visit
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


class KeptPages(Generic[S, R]):
    """What the last pages were answered with, made once per page object.

    A store hands back the very same (immutable) ``Page`` while nothing was written
    (``spark_adapters.read_memo``); what it is answered with (its encoded body, or the
    response made of it) is then the same, so it is made once. Kept pages are held, so an id
    is never reused while its answer is kept.
    """

    def __init__(self, make: Callable[[Page[S]], R], entries: int = 8) -> None:
        self._make = make
        self._entries = entries
        self._kept: dict[int, tuple[Page[S], R]] = {}

    def answer(self, page: Page[S]) -> R:
        """``make(page)``, made once per page object."""
        kept = self._kept.get(id(page))
        if kept is not None and kept[0] is page:
            return kept[1]
        made = self._make(page)
        if len(self._kept) >= self._entries:
            del self._kept[next(iter(self._kept))]  # the oldest
        self._kept[id(page)] = (page, made)
        return made


# -- pagination ---------------------------------------------------------------------------------
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
    webhook_url: str | None = None

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


# -- tasks ---------------------------------------------------------------------------------------
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


class NextRuns(msgspec.Struct, kw_only=True):
    """The next fire times of a schedule (empty when paused or completed)."""

    schedule_id: str
    count: int
    next_runs: list[datetime]
