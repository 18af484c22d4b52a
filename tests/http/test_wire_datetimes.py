"""The one-pass rendering of list pages writes the same bytes as the per-row rendering it
replaced: every datetime ``astimezone(UTC).isoformat()`` (``+00:00``), walked after the rows
were built. The old rendering is kept here, verbatim, as the reference."""

import functools
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import msgspec
import msgspec.inspect
import pytest
from litestar import Response

from spark_core.fires import FireCounters, FireOutcome
from spark_core.models import (
    Page,
    Schedule,
    ScheduleId,
    ScheduleType,
    SourceId,
    Task,
    TaskAttempt,
    TaskId,
    TaskStatus,
    Workflow,
    WorkflowId,
    WorkflowSummary,
)
from spark_http.schemas import (
    PageOut,
    ScheduleOut,
    SparkResponse,
    TaskListItem,
    WorkflowListItem,
    iso_utc,
    page_out,
)

MOMENTS = [
    datetime(2026, 12, 6, 12, 0, 0, tzinfo=UTC),  # no microseconds
    datetime(2026, 12, 6, 12, 0, 0, 123456, tzinfo=UTC),
    datetime(2026, 12, 6, 12, 0, 0, 100000, tzinfo=UTC),  # trailing zeros kept
    datetime(2026, 12, 6, 12, 0, 0, 1, tzinfo=UTC),
    datetime(2026, 12, 6, 12, 0, 0, 5),  # naive: read as local time, as before
    datetime(2026, 12, 6, 13, 30, 0, 42, tzinfo=timezone(timedelta(hours=1, minutes=30))),
    datetime(2026, 12, 6, 12, 0, 0, tzinfo=timezone(timedelta(0), "custom zero")),
    datetime(1, 1, 2, tzinfo=UTC),
    datetime(9999, 12, 31, 23, 59, 59, 999999, tzinfo=UTC),
]


def legacy_walk(value: Any, *, in_struct: bool = False) -> Any:
    """The rendering before the one-pass change, as it was."""
    if isinstance(value, datetime):
        return value.astimezone(UTC).isoformat()
    if isinstance(value, msgspec.Struct):
        changes = {}
        for name in legacy_fields(type(value)):
            field = getattr(value, name)
            if field is None:
                continue
            if isinstance(field, datetime):
                changes[name] = field.astimezone(UTC).isoformat()
                continue
            converted = legacy_walk(field, in_struct=True)
            if converted is not field:
                changes[name] = converted
        return msgspec.structs.replace(value, **changes) if changes else value
    if isinstance(value, list):
        items = [legacy_walk(item, in_struct=in_struct) for item in value]
        return value if all(a is b for a, b in zip(items, value, strict=True)) else items
    if isinstance(value, dict) and not in_struct:
        return {key: legacy_walk(item) for key, item in value.items()}
    return value


@functools.cache
def legacy_fields(struct_type: type[msgspec.Struct]) -> tuple[str, ...]:
    """Every field whose declared type may hold a datetime, as before."""
    info = msgspec.inspect.type_info(struct_type)
    assert isinstance(info, msgspec.inspect.StructType)
    return tuple(field.name for field in info.fields if may_hold(field.type))


def may_hold(kind: msgspec.inspect.Type) -> bool:
    """As ``_may_hold_datetime`` was."""
    if isinstance(kind, msgspec.inspect.DateTimeType | msgspec.inspect.StructType
                  | msgspec.inspect.AnyType):
        return True
    if isinstance(kind, msgspec.inspect.UnionType):
        return any(may_hold(member) for member in kind.types)
    if isinstance(kind, msgspec.inspect.ListType | msgspec.inspect.VarTupleType):
        return may_hold(kind.item_type)
    return False


def legacy_task_item(task: Task) -> TaskListItem:
    """``TaskListItem.of`` as it was: the domain datetimes copied as they are."""
    fields = msgspec.structs.asdict(task)
    del fields["output_raw"], fields["attempts"]
    return TaskListItem(**fields)


def legacy_workflow_item(summary: WorkflowSummary) -> WorkflowListItem:
    """``WorkflowListItem.of`` as it was."""
    return WorkflowListItem(**msgspec.structs.asdict(summary.workflow),
                            latest_run=summary.latest_run, task_count=summary.task_count,
                            failed_task_count=summary.failed_task_count)


def legacy_bytes(content: Any) -> bytes:
    """What ``SparkResponse`` answered before."""
    return Response(None).render(legacy_walk(content), "application/json")


def new_bytes(content: Any) -> bytes:
    """What ``SparkResponse`` answers now."""
    return SparkResponse(None).render(content, "application/json")


def moment(number: int) -> datetime:
    """One of ``MOMENTS``, cycling."""
    return MOMENTS[number % len(MOMENTS)]


def maybe(number: int) -> datetime | None:
    """A moment, or ``None`` every third time."""
    return None if number % 3 == 0 else moment(number)


def tasks() -> list[Task]:
    """Tasks with every kind of datetime in every datetime field, and ``None``."""
    return [Task(id=TaskId(f"task-{n}"), workflow_id=WorkflowId("wf"), status=TaskStatus.COMPLETED,
                 input_data="2026-12-06T12:00:00Z", output_data="ends in Z",
                 tweaks={"at": "2026-12-06T12:00:00Z"}, next_retry_at=maybe(n + 1),
                 scheduled_for=maybe(n + 2), started_at=maybe(n), finished_at=maybe(n + 4),
                 attempts=[TaskAttempt(attempt=1, started_at=moment(n))],
                 created_at=moment(n + 5), updated_at=moment(n + 6))
            for n in range(3 * len(MOMENTS))]


def test_iso_utc_writes_what_isoformat_in_utc_writes() -> None:
    """Every kind of datetime, naive and zoned included, is written as before."""
    for value in MOMENTS:
        assert iso_utc(value) == value.astimezone(UTC).isoformat()


def test_a_task_page_renders_the_same_bytes_as_before() -> None:
    """A page of tasks built once in the wire shape is byte-for-byte the old answer."""
    page = Page(items=tasks(), total=99, limit=100, offset=0)
    assert new_bytes(page_out(page, TaskListItem.of)) == legacy_bytes(
        page_out(page, legacy_task_item))


def test_a_single_task_with_attempts_renders_the_same_bytes_as_before() -> None:
    """One task, read with its attempts, is byte-for-byte the old answer."""
    for task in tasks():
        assert new_bytes(task) == legacy_bytes(task)


def test_a_workflow_page_renders_the_same_bytes_as_before() -> None:
    """A page of workflows built once in the wire shape is byte-for-byte the old answer."""
    summaries = [WorkflowSummary(
        workflow=Workflow(id=WorkflowId(f"wf-{n}"), source_id=SourceId("src"), source="langflow",
                          remote_flow_id="r", name="n", flow_type="flow",
                          data={"updated": "2026-12-06T12:00:00Z"},
                          created_at=moment(n), updated_at=moment(n + 1)),
        latest_run="COMPLETED", task_count=n, failed_task_count=0) for n in range(len(MOMENTS))]
    page = Page(items=summaries, total=len(summaries), limit=100, offset=0)
    assert new_bytes(page_out(page, WorkflowListItem.of)) == legacy_bytes(
        page_out(page, legacy_workflow_item))


@pytest.mark.parametrize("number", range(len(MOMENTS)))
def test_schedules_render_the_same_bytes_as_before(number: int) -> None:
    """Schedules (walked as before, with the faster datetime writer) are the old answer."""
    schedule = ScheduleOut.of(
        Schedule(id=ScheduleId(f"s-{number}"), workflow_id=WorkflowId("wf"),
                 schedule_type=ScheduleType.CRON, schedule_expr="* * * * *",
                 next_run_at=maybe(number), last_run_at=maybe(number + 1),
                 end_at=maybe(number + 2), start_at=moment(number),
                 created_at=moment(number + 3), updated_at=moment(number + 4)),
        FireCounters(last_outcome=FireOutcome.FIRED))
    page: PageOut[ScheduleOut] = PageOut(items=[schedule], total=1, limit=1, offset=0,
                                         has_more=False)
    assert new_bytes(page) == legacy_bytes(page)
    assert new_bytes(schedule) == legacy_bytes(schedule)
