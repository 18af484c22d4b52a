"""The ``Store`` contract, run against ``FakeStore`` and ``SqliteStore`` alike."""

import re
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import msgspec
import pytest

from spark_adapters.sqlite import SqliteStore
from spark_core.errors import ConflictError, InvalidStateError, NotFoundError
from spark_core.models import (
    Schedule,
    ScheduleId,
    ScheduleStatus,
    ScheduleType,
    Source,
    SourceId,
    SourceStatus,
    Task,
    TaskId,
    TaskStatus,
    Workflow,
    WorkflowId,
    new_id,
)
from spark_core.ports import ScheduleFilter, SourceFilter, Store, TaskFilter, WorkflowFilter
from tests.fakes.store import FakeStore

T0 = datetime(2024, 5, 1, 12, 0, tzinfo=UTC)
LEASE = timedelta(minutes=5)


def at(minutes: float) -> datetime:
    """``T0`` plus ``minutes``."""
    return T0 + timedelta(minutes=minutes)


@pytest.fixture(params=["fake", "sqlite"])
def store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Store]:
    """Each store implementation, empty."""
    if request.param == "fake":
        yield FakeStore()
        return
    sqlite_store = SqliteStore(tmp_path / "spark.db")
    yield sqlite_store
    sqlite_store.close()


def make_source(store: Store, *, url: str = "http://langflow.local", created: float = 0,
                sealed_key: str | None = "sealed", **changes: Any) -> Source:
    """Add a source created ``created`` minutes after ``T0``."""
    source = Source(id=SourceId(new_id()), name="LangFlow", source_type="langflow", url=url,
                    created_at=at(created), updated_at=at(created))
    return store.add_source(msgspec.structs.replace(source, **changes), sealed_key=sealed_key)


def make_workflow(store: Store, source: Source, *, remote_id: str = "flow-1",
                  name: str = "Flow", created: float = 0, **changes: Any) -> Workflow:
    """Upsert a workflow of ``source``."""
    workflow = Workflow(id=WorkflowId(new_id()), source_id=source.id, source=source.url,
                        remote_flow_id=remote_id, name=name, flow_type="langflow",
                        created_at=at(created), updated_at=at(created))
    return store.upsert_workflow(msgspec.structs.replace(workflow, **changes))


def new_schedule(workflow: Workflow, *, next_run: float | None = 10, created: float = 0,
                 **changes: Any) -> Schedule:
    """A schedule of ``workflow`` (not yet stored) next due ``next_run`` minutes after ``T0``."""
    schedule = Schedule(id=ScheduleId(new_id()), workflow_id=workflow.id,
                        schedule_type=ScheduleType.INTERVAL, schedule_expr="10m",
                        next_run_at=None if next_run is None else at(next_run), start_at=T0,
                        created_at=at(created), updated_at=at(created))
    return msgspec.structs.replace(schedule, **changes)


def make_schedule(store: Store, workflow: Workflow, **kwargs: Any) -> Schedule:
    """Add a schedule of ``workflow``."""
    return store.add_schedule(new_schedule(workflow, **kwargs))


def new_task(workflow: Workflow, *, created: float = 0, **changes: Any) -> Task:
    """A pending task of ``workflow`` (not yet stored) created ``created`` minutes after ``T0``."""
    task = Task(id=TaskId(new_id()), workflow_id=workflow.id, input_data="hello",
                created_at=at(created), updated_at=at(created))
    return msgspec.structs.replace(task, **changes)


def make_task(store: Store, workflow: Workflow, **kwargs: Any) -> Task:
    """Add a task of ``workflow``."""
    return store.add_task(new_task(workflow, **kwargs))


def a_workflow(store: Store) -> Workflow:
    """A workflow on a fresh source."""
    return make_workflow(store, make_source(store))


# -- sources ----------------------------------------------------------------------------------
def test_a_source_reads_back_with_utc_datetimes_and_its_version_info(store: Store) -> None:
    """Datetimes in any offset come back as the same instant in UTC; JSON fields survive."""
    plus_two = timezone(timedelta(hours=2))
    added = make_source(store, created_at=datetime(2024, 5, 1, 14, 0, 0, 123456, plus_two),
                        version_info={"version": "1.13", "nested": [1, {"a": None}]},
                        status=SourceStatus.INACTIVE, verify_tls=False)
    read = store.get_source(added.id)
    assert read == added
    assert read.created_at == datetime(2024, 5, 1, 12, 0, 0, 123456, UTC)
    assert read.created_at.utcoffset() == timedelta(0)
    assert read.version_info == {"version": "1.13", "nested": [1, {"a": None}]}
    assert read.status is SourceStatus.INACTIVE
    assert read.verify_tls is False


def test_adding_a_source_with_a_taken_url_is_a_conflict(store: Store) -> None:
    """Source URLs are unique."""
    make_source(store, url="http://a.local")
    message = re.escape("A source with URL http://a.local already exists")
    with pytest.raises(ConflictError, match=message):
        make_source(store, url="http://a.local")


def test_unknown_source_ids_are_not_found(store: Store) -> None:
    """Every source method names the missing id."""
    missing = SourceId(new_id())
    with pytest.raises(NotFoundError, match=f"Source {missing} not found"):
        store.get_source(missing)
    with pytest.raises(NotFoundError):
        store.get_source_key(missing)
    with pytest.raises(NotFoundError):
        store.delete_source(missing)
    ghost = Source(id=missing, name="x", source_type="langflow", url="http://x",
                   created_at=T0, updated_at=T0)
    with pytest.raises(NotFoundError):
        store.update_source(ghost)


def test_a_source_is_found_by_its_url(store: Store) -> None:
    """Lookup by URL finds the source, or nothing."""
    source = make_source(store, url="http://a.local")
    assert store.find_source_by_url("http://a.local") == source
    assert store.find_source_by_url("http://b.local") is None


def test_sources_list_in_creation_order_with_filters_and_totals(store: Store) -> None:
    """Filters narrow the list; the total counts every match, not just the page."""
    third = make_source(store, url="http://c", created=3, source_type="automagik-hive")
    first = make_source(store, url="http://a", created=1)
    second = make_source(store, url="http://b", created=2, status=SourceStatus.INACTIVE)
    page = store.list_sources(SourceFilter(), limit=2, offset=0)
    assert [s.id for s in page.items] == [first.id, second.id]
    assert (page.total, page.has_more) == (3, True)
    assert store.list_sources(SourceFilter(), limit=2, offset=2).items == [third]
    assert store.list_sources(SourceFilter(status="inactive"), limit=10, offset=0).items == [
        second]
    hive = store.list_sources(SourceFilter(source_type="automagik-hive"), limit=10, offset=0)
    assert (hive.items, hive.total) == ([third], 1)


def test_updating_a_source_keeps_its_key_unless_told_to_replace_it(store: Store) -> None:
    """The sealed key changes only with ``replace_key``; ``None`` removes it."""
    source = make_source(store, sealed_key="old")
    renamed = store.update_source(msgspec.structs.replace(source, name="Renamed"))
    assert renamed.name == "Renamed"
    assert store.get_source_key(source.id) == "old"
    store.update_source(source, sealed_key="new", replace_key=True)
    assert store.get_source_key(source.id) == "new"
    store.update_source(source, sealed_key=None, replace_key=True)
    assert store.get_source_key(source.id) is None


def test_moving_a_source_to_another_sources_url_is_a_conflict(store: Store) -> None:
    """An update may keep its own URL but not take another source's."""
    make_source(store, url="http://a")
    source = make_source(store, url="http://b")
    assert store.update_source(source).url == "http://b"
    with pytest.raises(ConflictError):
        store.update_source(msgspec.structs.replace(source, url="http://a"))


def test_deleting_a_source_removes_and_counts_its_workflows_schedules_and_tasks(
        store: Store) -> None:
    """Cascade delete, with the counts of what went, leaving other sources alone."""
    source = make_source(store, url="http://a")
    other = make_workflow(store, make_source(store, url="http://b"))
    for remote_id in ("f1", "f2"):
        workflow = make_workflow(store, source, remote_id=remote_id)
        make_schedule(store, workflow)
        make_task(store, workflow)
        make_task(store, workflow)
    kept_task = make_task(store, other)
    deletion = store.delete_source(source.id)
    assert (deletion.workflows_deleted, deletion.schedules_deleted,
            deletion.tasks_deleted) == (2, 2, 4)
    with pytest.raises(NotFoundError):
        store.get_source(source.id)
    assert store.list_workflows(WorkflowFilter(), limit=10, offset=0).total == 1
    assert store.list_schedules(ScheduleFilter(), limit=10, offset=0).total == 0
    assert store.list_tasks(TaskFilter(), limit=10, offset=0).items == [kept_task]


# -- workflows --------------------------------------------------------------------------------
def test_syncing_a_workflow_again_updates_it_in_place(store: Store) -> None:
    """Upsert by (source, remote id) keeps the first id and created_at."""
    source = make_source(store)
    first = make_workflow(store, source, name="Old", tags=["a"], data={"nodes": [1]})
    again = make_workflow(store, source, name="New", created=5, tags=["b"], data={"nodes": []})
    assert (again.id, again.created_at) == (first.id, first.created_at)
    assert (again.name, again.tags, again.data) == ("New", ["b"], {"nodes": []})
    assert again.updated_at == at(5)
    assert store.get_workflow(first.id) == again
    assert store.list_workflows(WorkflowFilter(), limit=10, offset=0).total == 1


def test_the_same_remote_id_on_two_sources_is_two_workflows(store: Store) -> None:
    """Uniqueness is per (source, remote id)."""
    one = make_workflow(store, make_source(store, url="http://a"), remote_id="same")
    two = make_workflow(store, make_source(store, url="http://b"), remote_id="same")
    assert one.id != two.id


def test_a_workflow_needs_an_existing_source(store: Store) -> None:
    """Upserting under an unknown source is not found."""
    ghost = Source(id=SourceId(new_id()), name="x", source_type="langflow", url="http://x",
                   created_at=T0, updated_at=T0)
    with pytest.raises(NotFoundError):
        make_workflow(store, ghost)


def test_a_workflow_is_found_by_local_id_or_by_remote_id(store: Store) -> None:
    """Local id first, else the oldest workflow with that remote id."""
    older = make_workflow(store, make_source(store, url="http://a"), remote_id="r", created=1)
    make_workflow(store, make_source(store, url="http://b"), remote_id="r", created=2)
    assert store.find_workflow(older.id) == older
    assert store.find_workflow("r") == older
    assert store.find_workflow("nothing") is None
    with pytest.raises(NotFoundError, match="Workflow nothing not found"):
        store.get_workflow(WorkflowId("nothing"))


def test_workflows_list_by_name_with_filters_and_case_insensitive_search(store: Store) -> None:
    """Name order; filters on source id, source URL, flow type and a name fragment."""
    lang = make_source(store, url="http://lang")
    hive = make_source(store, url="http://hive", source_type="automagik-hive")
    make_workflow(store, lang, remote_id="1", name="Support Bot")
    make_workflow(store, lang, remote_id="2", name="alpha")
    make_workflow(store, hive, remote_id="3", name="Ärger SUPPORT", flow_type="hive_agent")

    def names(filters: WorkflowFilter) -> list[str]:
        page = store.list_workflows(filters, limit=10, offset=0)
        assert page.total == len(page.items)
        return [summary.workflow.name for summary in page.items]

    assert names(WorkflowFilter()) == ["Support Bot", "alpha", "Ärger SUPPORT"]
    assert names(WorkflowFilter(q="support")) == ["Support Bot", "Ärger SUPPORT"]
    assert names(WorkflowFilter(q="ärger")) == ["Ärger SUPPORT"]
    assert names(WorkflowFilter(source_id=lang.id)) == ["Support Bot", "alpha"]
    assert names(WorkflowFilter(source_url="http://hive")) == ["Ärger SUPPORT"]
    assert names(WorkflowFilter(flow_type="hive_agent", q="SUP")) == ["Ärger SUPPORT"]
    assert names(WorkflowFilter(q="100%")) == []


def test_workflow_pages_report_total_and_has_more(store: Store) -> None:
    """Pagination over names, ties broken by id."""
    source = make_source(store)
    for index in range(5):
        make_workflow(store, source, remote_id=str(index), name=f"w{index}")
    page = store.list_workflows(WorkflowFilter(), limit=2, offset=2)
    assert [s.workflow.name for s in page.items] == ["w2", "w3"]
    assert (page.total, page.has_more) == (5, True)
    assert not store.list_workflows(WorkflowFilter(), limit=2, offset=4).has_more


def test_workflow_summaries_carry_the_latest_run_and_task_counts(store: Store) -> None:
    """``NEW`` without tasks, else the newest task's status upper-cased, with counts."""
    source = make_source(store)
    idle = make_workflow(store, source, remote_id="idle", name="a idle")
    busy = make_workflow(store, source, remote_id="busy", name="b busy")
    make_task(store, busy, created=1, status=TaskStatus.FAILED)
    make_task(store, busy, created=3, status=TaskStatus.COMPLETED)
    make_task(store, busy, created=2, status=TaskStatus.FAILED)
    summaries = store.list_workflows(WorkflowFilter(), limit=10, offset=0).items
    assert [(s.workflow.id, s.latest_run, s.task_count, s.failed_task_count)
            for s in summaries] == [(idle.id, "NEW", 0, 0), (busy.id, "COMPLETED", 3, 2)]


def test_deleting_a_workflow_removes_and_counts_its_schedules_and_tasks(store: Store) -> None:
    """Cascade delete with counts; the source stays."""
    workflow = a_workflow(store)
    make_schedule(store, workflow)
    for _ in range(3):
        make_task(store, workflow)
    deletion = store.delete_workflow(workflow.id)
    assert (deletion.schedules_deleted, deletion.tasks_deleted) == (1, 3)
    assert store.find_workflow(workflow.id) is None
    assert store.get_source(workflow.source_id).id == workflow.source_id
    with pytest.raises(NotFoundError):
        store.delete_workflow(workflow.id)


# -- schedules --------------------------------------------------------------------------------
def test_a_schedule_needs_an_existing_workflow(store: Store) -> None:
    """Adding a schedule for an unknown workflow is not found."""
    workflow = a_workflow(store)
    ghost = msgspec.structs.replace(workflow, id=WorkflowId(new_id()))
    with pytest.raises(NotFoundError, match=f"Workflow {ghost.id} not found"):
        make_schedule(store, ghost)


def test_a_schedule_round_trips_with_its_enums_and_datetimes(store: Store) -> None:
    """Every field reads back as written, enums as their StrEnum types."""
    schedule = make_schedule(store, a_workflow(store), status=ScheduleStatus.PAUSED,
                             last_run_at=at(-5), timeout=12.5, timezone="Europe/Paris")
    read = store.get_schedule(schedule.id)
    assert read == schedule
    assert read.status is ScheduleStatus.PAUSED
    assert read.schedule_type is ScheduleType.INTERVAL
    assert read.next_run_at == at(10)
    with pytest.raises(NotFoundError, match="Schedule nope not found"):
        store.get_schedule(ScheduleId("nope"))


def test_schedules_list_in_creation_order_filtered_by_workflow_and_status(
        store: Store) -> None:
    """Creation order, filters and totals."""
    source = make_source(store)
    one = make_workflow(store, source, remote_id="1")
    two = make_workflow(store, source, remote_id="2")
    late = make_schedule(store, one, created=2)
    early = make_schedule(store, one, created=1, status=ScheduleStatus.PAUSED)
    other = make_schedule(store, two, created=0)
    assert store.list_schedules(ScheduleFilter(), limit=10, offset=0).items == [
        other, early, late]
    by_workflow = store.list_schedules(ScheduleFilter(workflow_id=one.id), limit=1, offset=0)
    assert (by_workflow.items, by_workflow.total) == ([early], 2)
    paused = store.list_schedules(ScheduleFilter(status=ScheduleStatus.PAUSED), limit=10,
                                  offset=0)
    assert paused.items == [early]


def test_updating_a_schedule_overwrites_it_and_deleting_keeps_its_tasks(store: Store) -> None:
    """Updates replace every field; a deleted schedule's tasks keep their ``schedule_id``."""
    workflow = a_workflow(store)
    schedule = make_schedule(store, workflow)
    changed = store.update_schedule(msgspec.structs.replace(schedule, next_run_at=None,
                                                            schedule_expr="1h"))
    assert store.get_schedule(schedule.id) == changed
    assert (changed.next_run_at, changed.schedule_expr) == (None, "1h")
    task = make_task(store, workflow, schedule_id=schedule.id)
    store.delete_schedule(schedule.id)
    assert store.get_task(task.id).schedule_id == schedule.id
    with pytest.raises(NotFoundError):
        store.delete_schedule(schedule.id)
    with pytest.raises(NotFoundError):
        store.update_schedule(schedule)


def test_due_schedules_are_active_ones_due_by_now_earliest_first(store: Store) -> None:
    """Paused, future and unscheduled schedules are not due; ``limit`` caps the answer."""
    workflow = a_workflow(store)
    later = make_schedule(store, workflow, next_run=5)
    earlier = make_schedule(store, workflow, next_run=1)
    make_schedule(store, workflow, next_run=2, status=ScheduleStatus.PAUSED)
    make_schedule(store, workflow, next_run=30)
    make_schedule(store, workflow, next_run=None)
    assert store.due_schedules(at(5), limit=10) == [earlier, later]
    assert store.due_schedules(at(5), limit=1) == [earlier]
    assert store.due_schedules(at(0), limit=10) == []


def test_next_due_at_is_the_earliest_next_run_of_an_active_schedule(store: Store) -> None:
    """Paused schedules do not count; no active schedule means ``None``."""
    assert store.next_due_at() is None
    workflow = a_workflow(store)
    make_schedule(store, workflow, next_run=1, status=ScheduleStatus.PAUSED)
    make_schedule(store, workflow, next_run=7)
    make_schedule(store, workflow, next_run=3)
    assert store.next_due_at() == at(3)


def test_firing_a_schedule_wins_once_per_expected_time(store: Store) -> None:
    """The compare-and-set writes the schedule and its tasks for exactly one caller."""
    workflow = a_workflow(store)
    schedule = make_schedule(store, workflow, next_run=10)
    fired = msgspec.structs.replace(schedule, next_run_at=at(20), last_run_at=at(10))
    task = new_task(workflow, schedule_id=schedule.id, scheduled_for=at(10))
    assert store.fire_schedule(fired, expected_next_run_at=at(10), tasks=[task])
    rival = new_task(workflow, schedule_id=schedule.id, scheduled_for=at(10))
    assert not store.fire_schedule(fired, expected_next_run_at=at(10), tasks=[rival])
    assert store.get_schedule(schedule.id) == fired
    assert [t.id for t in store.list_tasks(TaskFilter(), limit=10, offset=0).items] == [task.id]
    assert store.get_task(task.id).scheduled_for == at(10)


def test_firing_an_unknown_schedule_changes_nothing(store: Store) -> None:
    """A schedule deleted meanwhile loses the compare-and-set."""
    workflow = a_workflow(store)
    schedule = new_schedule(workflow)
    task = new_task(workflow)
    assert not store.fire_schedule(schedule, expected_next_run_at=at(10), tasks=[task])
    assert store.list_tasks(TaskFilter(), limit=10, offset=0).total == 0


def test_active_task_counts_cover_pending_and_running_tasks_of_one_schedule(
        store: Store) -> None:
    """Finished tasks and other schedules' tasks are not counted."""
    workflow = a_workflow(store)
    schedule = make_schedule(store, workflow)
    for status in (TaskStatus.PENDING, TaskStatus.PENDING, TaskStatus.RUNNING,
                   TaskStatus.COMPLETED, TaskStatus.FAILED):
        make_task(store, workflow, schedule_id=schedule.id, status=status)
    make_task(store, workflow, status=TaskStatus.PENDING)
    assert store.count_active_tasks(schedule.id) == (2, 1)
    assert store.count_active_tasks(ScheduleId("other")) == (0, 0)


# -- tasks ------------------------------------------------------------------------------------
def test_a_task_needs_an_existing_workflow_and_a_fresh_id(store: Store) -> None:
    """Unknown workflow is not found; a reused id is a conflict."""
    workflow = a_workflow(store)
    ghost = msgspec.structs.replace(workflow, id=WorkflowId(new_id()))
    with pytest.raises(NotFoundError, match=f"Workflow {ghost.id} not found"):
        make_task(store, ghost)
    task = make_task(store, workflow)
    with pytest.raises(ConflictError):
        store.add_task(task)


def test_a_task_round_trips_with_its_raw_output_and_tweaks(store: Store) -> None:
    """JSON fields, optional datetimes and numbers read back as written."""
    task = make_task(store, a_workflow(store), status=TaskStatus.FAILED, output_data="answer",
                     output_raw={"outputs": [{"text": "é"}], "n": 1.5}, tweaks={"A": {"b": 1}},
                     error="boom", tries=2, next_retry_at=at(3), scheduled_for=at(1),
                     timeout=30.0, session_id="s", started_at=at(1), finished_at=at(2))
    read = store.get_task(task.id)
    assert read == task
    assert read.output_raw == {"outputs": [{"text": "é"}], "n": 1.5}
    assert read.finished_at == at(2)
    assert read.status is TaskStatus.FAILED


def test_tasks_list_newest_first_without_their_raw_output(store: Store) -> None:
    """The list leaves out ``output_raw``; a single read has it."""
    workflow = a_workflow(store)
    old = make_task(store, workflow, created=1, output_raw={"big": "x" * 1000})
    new = make_task(store, workflow, created=2, output_raw=["raw"])
    items = store.list_tasks(TaskFilter(), limit=10, offset=0).items
    assert [t.id for t in items] == [new.id, old.id]
    assert [t.output_raw for t in items] == [None, None]
    assert items[1] == msgspec.structs.replace(old, output_raw=None)
    assert store.get_task(old.id).output_raw == {"big": "x" * 1000}


def test_tasks_list_filters_by_workflow_schedule_and_status_with_totals(store: Store) -> None:
    """Each filter narrows the list and its total."""
    source = make_source(store)
    one = make_workflow(store, source, remote_id="1")
    two = make_workflow(store, source, remote_id="2")
    schedule = make_schedule(store, one)
    scheduled = make_task(store, one, created=1, schedule_id=schedule.id)
    failed = make_task(store, one, created=2, status=TaskStatus.FAILED)
    make_task(store, two, created=3)
    by_workflow = store.list_tasks(TaskFilter(workflow_id=one.id), limit=1, offset=0)
    assert ([t.id for t in by_workflow.items], by_workflow.total) == ([failed.id], 2)
    assert by_workflow.has_more
    by_schedule = store.list_tasks(TaskFilter(schedule_id=schedule.id), limit=10, offset=0)
    assert [t.id for t in by_schedule.items] == [scheduled.id]
    by_status = store.list_tasks(TaskFilter(status=TaskStatus.FAILED), limit=10, offset=0)
    assert [t.id for t in by_status.items] == [failed.id]


def test_updating_and_deleting_tasks_needs_them_to_exist(store: Store) -> None:
    """Update overwrites a task; unknown ids are not found."""
    task = make_task(store, a_workflow(store))
    done = store.update_task(msgspec.structs.replace(task, status=TaskStatus.COMPLETED,
                                                     output_data="ok", finished_at=at(1)))
    assert store.get_task(task.id) == done
    store.delete_task(task.id)
    with pytest.raises(NotFoundError, match=f"Task {task.id} not found"):
        store.get_task(task.id)
    with pytest.raises(NotFoundError):
        store.delete_task(task.id)
    with pytest.raises(NotFoundError):
        store.update_task(task)


def test_claiming_takes_runnable_pending_tasks_oldest_first(store: Store) -> None:
    """Tasks waiting for a future retry, or not pending, are left alone."""
    workflow = a_workflow(store)
    newer = make_task(store, workflow, created=2)
    older = make_task(store, workflow, created=1)
    retry_due = make_task(store, workflow, created=3, next_retry_at=at(5))
    make_task(store, workflow, created=0, next_retry_at=at(6))
    make_task(store, workflow, created=0, status=TaskStatus.COMPLETED)
    first = store.claim_tasks(at(5), owner="w1", lease_until=at(5) + LEASE, limit=2)
    assert [t.id for t in first] == [older.id, newer.id]
    rest = store.claim_tasks(at(5), owner="w1", lease_until=at(5) + LEASE, limit=10)
    assert [t.id for t in rest] == [retry_due.id]


def test_a_claimed_task_is_running_with_a_start_time_and_one_more_try(store: Store) -> None:
    """Claiming sets status, ``started_at``, ``updated_at`` and ``tries``; it reads back so."""
    task = make_task(store, a_workflow(store), tries=1)
    [claimed] = store.claim_tasks(at(1), owner="w1", lease_until=at(1) + LEASE, limit=5)
    assert (claimed.status, claimed.tries) == (TaskStatus.RUNNING, 2)
    assert claimed.started_at == claimed.updated_at == at(1)
    assert store.get_task(task.id) == claimed


def test_a_task_is_never_claimed_twice(store: Store) -> None:
    """A second claimer gets only what the first left."""
    workflow = a_workflow(store)
    for index in range(5):
        make_task(store, workflow, created=index)
    one = store.claim_tasks(at(9), owner="w1", lease_until=at(9) + LEASE, limit=3)
    two = store.claim_tasks(at(9), owner="w2", lease_until=at(9) + LEASE, limit=3)
    assert len(one) == 3
    assert len(two) == 2
    assert not {t.id for t in one} & {t.id for t in two}
    assert store.claim_tasks(at(9), owner="w3", lease_until=at(9) + LEASE, limit=3) == []


def test_claiming_named_tasks_leaves_every_other_task_alone(store: Store) -> None:
    """A claim narrowed to ids takes only those, and only while they are runnable."""
    workflow = a_workflow(store)
    older = make_task(store, workflow, created=1)
    mine = make_task(store, workflow, created=2)
    claimed = store.claim_tasks(at(9), owner="w1", lease_until=at(9) + LEASE, limit=5,
                                task_ids=[mine.id])
    assert [t.id for t in claimed] == [mine.id]
    assert store.get_task(older.id).status == TaskStatus.PENDING
    again = store.claim_tasks(at(9), owner="w2", lease_until=at(9) + LEASE, limit=5,
                              task_ids=[mine.id])
    assert again == []


def test_renewing_leases_returns_only_the_tasks_the_owner_still_holds(store: Store) -> None:
    """Cancelled or other owners' tasks drop out of the answer."""
    workflow = a_workflow(store)
    kept = make_task(store, workflow, created=1)
    cancelled = make_task(store, workflow, created=2)
    store.claim_tasks(at(0), owner="w1", lease_until=at(1), limit=2)
    theirs = make_task(store, workflow, created=3)
    store.claim_tasks(at(0), owner="w2", lease_until=at(1), limit=1)
    store.cancel_task(cancelled.id, at(0.5))
    assert store.renew_leases("w1", at(10)) == [kept.id]
    assert store.renew_leases("w2", at(10)) == [theirs.id]
    assert store.renew_leases("nobody", at(10)) == []
    assert store.expired_leases(at(5)) == []


def test_expired_leases_are_running_tasks_past_their_lease_oldest_first(store: Store) -> None:
    """A lease ending at ``now`` has not yet expired; finished tasks never count."""
    workflow = a_workflow(store)
    first = make_task(store, workflow, created=1)
    second = make_task(store, workflow, created=2)
    store.claim_tasks(at(3), owner="dead", lease_until=at(4), limit=2)
    assert store.expired_leases(at(4)) == []
    expired = store.expired_leases(at(4.5))
    assert [t.id for t in expired] == [first.id, second.id]
    assert expired[0] == store.get_task(first.id)


def test_only_the_lease_owner_can_release_a_task_unless_its_lease_expired(store: Store) -> None:
    """Release writes the task and clears the lease for its owner, or with ``None`` once the
    lease has run out (recovering the task of a process that died)."""
    workflow = a_workflow(store)
    mine = make_task(store, workflow, created=1)
    orphan = make_task(store, workflow, created=2)
    store.claim_tasks(at(0), owner="w1", lease_until=at(1), limit=2)
    done = msgspec.structs.replace(mine, status=TaskStatus.COMPLETED, output_data="ok",
                                   finished_at=at(0.5))
    assert not store.release_task(done, owner="w2")
    assert store.get_task(mine.id).status is TaskStatus.RUNNING
    assert store.release_task(done, owner="w1")
    assert store.get_task(mine.id) == done
    early = msgspec.structs.replace(orphan, status=TaskStatus.PENDING, updated_at=at(0.5))
    assert not store.release_task(early, owner=None)
    retry = msgspec.structs.replace(orphan, status=TaskStatus.PENDING, error="interrupted",
                                    updated_at=at(2))
    assert store.release_task(retry, owner=None)
    assert store.get_task(orphan.id).error == "interrupted"
    assert store.expired_leases(at(5)) == []
    assert store.renew_leases("w1", at(10)) == []


def test_a_recovered_task_that_was_claimed_again_is_not_overwritten(store: Store) -> None:
    """Two processes recovering the same expired task: the second write finds it re-claimed
    by a live worker and leaves it alone, so the run is not interrupted twice."""
    workflow = a_workflow(store)
    task = make_task(store, workflow)
    store.claim_tasks(at(0), owner="dead", lease_until=at(1), limit=1)
    [stale] = store.expired_leases(at(2))
    recovered = msgspec.structs.replace(stale, status=TaskStatus.PENDING, error="interrupted",
                                        updated_at=at(2))
    assert store.release_task(recovered, owner=None)
    [again] = store.claim_tasks(at(2), owner="live", lease_until=at(32), limit=1)
    assert not store.release_task(recovered, owner=None)
    assert store.get_task(task.id) == again
    assert store.renew_leases("live", at(40)) == [task.id]


def test_releasing_a_task_that_is_not_running_writes_nothing(store: Store) -> None:
    """A task already finished (or cancelled meanwhile) or unknown is not overwritten."""
    workflow = a_workflow(store)
    task = make_task(store, workflow)
    store.claim_tasks(at(0), owner="w1", lease_until=at(1), limit=1)
    store.cancel_task(task.id, at(0.5))
    late = msgspec.structs.replace(task, status=TaskStatus.COMPLETED)
    assert not store.release_task(late, owner="w1")
    assert not store.release_task(late, owner=None)
    assert store.get_task(task.id).status is TaskStatus.CANCELLED
    assert not store.release_task(new_task(workflow), owner=None)


def test_cancelling_a_pending_or_running_task_finishes_it_as_cancelled(store: Store) -> None:
    """Cancel stamps ``finished_at`` and ``updated_at`` and clears the lease."""
    workflow = a_workflow(store)
    pending = make_task(store, workflow, created=2)
    running = make_task(store, workflow, created=1)
    store.claim_tasks(at(0), owner="w1", lease_until=at(1), limit=1)
    for task in (pending, running):
        cancelled = store.cancel_task(task.id, at(3))
        assert cancelled.status is TaskStatus.CANCELLED
        assert cancelled.finished_at == cancelled.updated_at == at(3)
        assert store.get_task(task.id) == cancelled
    assert store.expired_leases(at(9)) == []


def test_cancelling_a_finished_task_is_an_invalid_state(store: Store) -> None:
    """Completed, failed and cancelled tasks stay as they are."""
    workflow = a_workflow(store)
    for status in (TaskStatus.COMPLETED, TaskStatus.FAILED, TaskStatus.CANCELLED):
        task = make_task(store, workflow, status=status)
        with pytest.raises(InvalidStateError):
            store.cancel_task(task.id, at(1))
        assert store.get_task(task.id) == task
    with pytest.raises(NotFoundError):
        store.cancel_task(TaskId("nope"), at(1))


def test_the_store_reports_itself_healthy(store: Store) -> None:
    """A working store answers the health probe."""
    assert store.is_healthy()
