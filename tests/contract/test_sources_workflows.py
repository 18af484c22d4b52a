"""The source and workflow repositories' contract: CRUD, field-level patches, cascades, lists."""

import asyncio
import re
from datetime import UTC, datetime, timedelta, timezone

import msgspec
import pytest

from spark_core.errors import ConflictError, NotFoundError
from spark_core.models import Source, SourceId, SourceStatus, TaskStatus, WorkflowId, new_id
from spark_core.ports import (
    ScheduleFilter,
    SourceFilter,
    SourcePatch,
    Store,
    TaskFilter,
    WorkflowFilter,
    WorkflowPatch,
)
from tests.contract.builders import (
    LEASE,
    T0,
    a_workflow,
    assert_utc,
    at,
    make_schedule,
    make_source,
    make_task,
    make_workflow,
    outcome,
)


# -- sources ----------------------------------------------------------------------------------
async def test_a_source_reads_back_with_utc_datetimes_and_its_version_info(store: Store) -> None:
    """Datetimes in any offset come back as the same instant in UTC; JSON fields survive."""
    plus_two = timezone(timedelta(hours=2))
    added = await make_source(
        store, created_at=datetime(2024, 5, 1, 14, 0, 0, 123456, plus_two),
        version_info={"version": "1.13", "nested": [1, {"a": None}]},
        status=SourceStatus.INACTIVE, verify_tls=False)
    read = await store.sources.get(added.id)
    assert read == added
    assert_utc(added)
    assert_utc(read)
    assert read.created_at == datetime(2024, 5, 1, 12, 0, 0, 123456, UTC)
    assert read.version_info == {"version": "1.13", "nested": [1, {"a": None}]}
    assert read.status is SourceStatus.INACTIVE
    assert read.verify_tls is False


async def test_a_naive_datetime_is_stored_as_utc(store: Store) -> None:
    """A datetime without offset is read as UTC, not as the machine's local time."""
    added = await make_source(store, created_at=datetime(2024, 5, 1, 12, 0), updated_at=T0)
    read = await store.sources.get(added.id)
    assert read.created_at == T0
    assert_utc(read)


async def test_adding_a_source_with_a_taken_url_is_a_conflict(store: Store) -> None:
    """Source URLs are unique."""
    await make_source(store, url="http://a.local")
    message = re.escape("A source with URL http://a.local already exists")
    with pytest.raises(ConflictError, match=message):
        await make_source(store, url="http://a.local")


async def test_unknown_source_ids_are_not_found(store: Store) -> None:
    """Every source method names the missing id."""
    missing = SourceId(new_id())
    with pytest.raises(NotFoundError, match=f"Source {missing} not found"):
        await store.sources.get(missing)
    with pytest.raises(NotFoundError):
        await store.sources.get_key(missing)
    with pytest.raises(NotFoundError):
        await store.sources.delete(missing)
    with pytest.raises(NotFoundError):
        await store.sources.update(missing, SourcePatch(updated_at=T0, name="x"))
    with pytest.raises(NotFoundError, match="Source nope not found"):
        await store.sources.get(SourceId("nope"))


async def test_a_source_is_found_by_its_url(store: Store) -> None:
    """Lookup by URL finds the source, or nothing."""
    source = await make_source(store, url="http://a.local")
    assert await store.sources.find_by_url("http://a.local") == source
    assert await store.sources.find_by_url("http://b.local") is None


async def test_sources_list_in_creation_order_with_filters_and_totals(store: Store) -> None:
    """Filters narrow the list; the total counts every match, not just the page."""
    third = await make_source(store, url="http://c", created=3, source_type="automagik-hive")
    first = await make_source(store, url="http://a", created=1)
    second = await make_source(store, url="http://b", created=2, status=SourceStatus.INACTIVE)
    page = await store.sources.list(SourceFilter(), limit=2, offset=0)
    assert [s.id for s in page.items] == [first.id, second.id]
    assert (page.total, page.has_more) == (3, True)
    assert (await store.sources.list(SourceFilter(), limit=2, offset=2)).items == [third]
    inactive = await store.sources.list(SourceFilter(status="inactive"), limit=10, offset=0)
    assert inactive.items == [second]
    hive = await store.sources.list(SourceFilter(source_type="automagik-hive"), limit=10,
                                    offset=0)
    assert (hive.items, hive.total) == ([third], 1)
    beyond = await store.sources.list(SourceFilter(), limit=10, offset=10)
    assert (beyond.items, beyond.total) == ([], 3)


async def test_a_source_patch_sets_only_its_fields(store: Store) -> None:
    """Two patches of different fields both survive: no update overwrites the whole record."""
    source = await make_source(store, version_info={"version": "1"})
    renamed = await store.sources.update(source.id, SourcePatch(updated_at=at(1), name="New"))
    assert (renamed.name, renamed.status, renamed.updated_at) == ("New", SourceStatus.ACTIVE,
                                                                  at(1))
    await store.sources.update(source.id, SourcePatch(
        updated_at=at(2), status=SourceStatus.INACTIVE, version_info={"version": "2"},
        verify_tls=False))
    read = await store.sources.get(source.id)
    assert read == msgspec.structs.replace(
        source, name="New", status=SourceStatus.INACTIVE, version_info={"version": "2"},
        verify_tls=False, updated_at=at(2))
    assert_utc(read)


async def test_concurrent_patches_of_different_fields_both_survive(store: Store) -> None:
    """Two writers racing on one source each keep their field (no read-modify-write)."""
    source = await make_source(store, sealed_key="old")
    await asyncio.gather(
        store.sources.update(source.id, SourcePatch(updated_at=at(1), name="Renamed")),
        store.sources.update(source.id, SourcePatch(updated_at=at(1),
                                                    status=SourceStatus.INACTIVE)),
        store.sources.update(source.id, SourcePatch(updated_at=at(1), sealed_key="new")),
    )
    read = await store.sources.get(source.id)
    assert (read.name, read.status) == ("Renamed", SourceStatus.INACTIVE)
    assert await store.sources.get_key(source.id) == "new"


async def test_a_source_patch_keeps_replaces_or_removes_the_sealed_key(store: Store) -> None:
    """An unset ``sealed_key`` keeps the key; a string replaces it; ``None`` removes it."""
    source = await make_source(store, sealed_key="old")
    await store.sources.update(source.id, SourcePatch(updated_at=at(1), name="Renamed"))
    assert await store.sources.get_key(source.id) == "old"
    await store.sources.update(source.id, SourcePatch(updated_at=at(2), sealed_key="new"))
    assert await store.sources.get_key(source.id) == "new"
    await store.sources.update(source.id, SourcePatch(updated_at=at(3), sealed_key=None))
    assert await store.sources.get_key(source.id) is None
    assert (await store.sources.get(source.id)).name == "Renamed"


async def test_a_new_source_url_is_written_to_its_workflows(store: Store) -> None:
    """Workflows never keep a stale copy of their source's URL; other sources' stay."""
    source = await make_source(store, url="http://old")
    other = await make_source(store, url="http://other")
    mine = await make_workflow(store, source)
    theirs = await make_workflow(store, other)
    moved = await store.sources.update(source.id, SourcePatch(updated_at=at(1),
                                                              url="http://new"))
    assert moved.url == "http://new"
    assert (await store.workflows.get(mine.id)).source == "http://new"
    assert (await store.workflows.get(theirs.id)).source == "http://other"
    found = await store.workflows.list(WorkflowFilter(source_url="http://new"), limit=10,
                                       offset=0)
    assert [s.workflow.id for s in found.items] == [mine.id]
    assert await store.sources.find_by_url("http://old") is None


async def test_moving_a_source_to_another_sources_url_is_a_conflict(store: Store) -> None:
    """An update may keep its own URL but not take another source's; a conflict writes nothing."""
    await make_source(store, url="http://a")
    source = await make_source(store, url="http://b")
    same = await store.sources.update(source.id, SourcePatch(updated_at=at(1), url="http://b"))
    assert same.url == "http://b"
    with pytest.raises(ConflictError):
        await store.sources.update(source.id, SourcePatch(updated_at=at(2), url="http://a",
                                                          name="Taken"))
    assert (await store.sources.get(source.id)).name == "LangFlow"


async def test_deleting_a_source_removes_and_counts_its_workflows_schedules_and_tasks(
        store: Store) -> None:
    """Cascade delete, with the counts of what went, leaving other sources alone."""
    source = await make_source(store, url="http://a")
    other = await make_workflow(store, await make_source(store, url="http://b"))
    for remote_id in ("f1", "f2"):
        workflow = await make_workflow(store, source, remote_id=remote_id)
        await make_schedule(store, workflow)
        await make_task(store, workflow)
        await make_task(store, workflow)
    kept_schedule = await make_schedule(store, other)
    kept_task = await make_task(store, other)
    deletion = await store.sources.delete(source.id)
    assert (deletion.source_id, deletion.workflows_deleted, deletion.schedules_deleted,
            deletion.tasks_deleted) == (source.id, 2, 2, 4)
    with pytest.raises(NotFoundError):
        await store.sources.get(source.id)
    assert (await store.workflows.list(WorkflowFilter(), limit=10, offset=0)).total == 1
    schedules = await store.schedules.list(ScheduleFilter(), limit=10, offset=0)
    assert schedules.items == [kept_schedule]
    assert (await store.tasks.list(TaskFilter(), limit=10, offset=0)).items == [kept_task]


# -- workflows --------------------------------------------------------------------------------
async def test_syncing_a_workflow_again_updates_it_in_place(store: Store) -> None:
    """Upsert by (source, remote id) keeps the first id and created_at."""
    source = await make_source(store)
    first = await make_workflow(store, source, name="Old", tags=["a"], data={"nodes": [1]})
    again = await make_workflow(store, source, name="New", created=5, tags=["b"],
                                data={"nodes": []})
    assert (again.id, again.created_at) == (first.id, first.created_at)
    assert (again.name, again.tags, again.data) == ("New", ["b"], {"nodes": []})
    assert again.updated_at == at(5)
    assert await store.workflows.get(first.id) == again
    assert_utc(again)
    assert (await store.workflows.list(WorkflowFilter(), limit=10, offset=0)).total == 1


async def test_the_same_remote_id_on_two_sources_is_two_workflows(store: Store) -> None:
    """Uniqueness is per (source, remote id)."""
    one = await make_workflow(store, await make_source(store, url="http://a"), remote_id="same")
    two = await make_workflow(store, await make_source(store, url="http://b"), remote_id="same")
    assert one.id != two.id


async def test_a_workflow_needs_an_existing_source(store: Store) -> None:
    """Upserting under an unknown source is not found."""
    ghost = Source(id=SourceId(new_id()), name="x", source_type="langflow", url="http://x",
                   created_at=T0, updated_at=T0)
    with pytest.raises(NotFoundError):
        await make_workflow(store, ghost)


async def test_a_workflow_is_found_by_local_id_or_by_remote_id(store: Store) -> None:
    """Local id first, else the oldest workflow with that remote id."""
    older = await make_workflow(store, await make_source(store, url="http://a"), remote_id="r",
                                created=1)
    await make_workflow(store, await make_source(store, url="http://b"), remote_id="r",
                        created=2)
    assert await store.workflows.find(older.id) == older
    assert await store.workflows.find("r") == older
    assert await store.workflows.find("nothing") is None
    with pytest.raises(NotFoundError, match="Workflow nothing not found"):
        await store.workflows.get(WorkflowId("nothing"))


FLOW_DEFINITION = {"nodes": [{"id": "ChatInput-1", "data": {"code": "x" * 2000}}], "edges": []}
"""A flow definition, as LangFlow stores one (each component with its source code)."""


async def test_a_workflow_found_without_its_definition_is_the_same_but_for_data(
    store: Store,
) -> None:
    """``find`` by local or remote id leaves out only the flow definition when asked to."""
    workflow = await make_workflow(store, await make_source(store), remote_id="remote-9",
                                   data=FLOW_DEFINITION)
    for key in (workflow.id, "remote-9"):
        assert await store.workflows.find(key) == workflow
        assert await store.workflows.find(key, definition=False) == msgspec.structs.replace(
            workflow, data=None)
    assert await store.workflows.find("nothing", definition=False) is None


async def test_a_run_target_is_the_workflow_with_its_current_source_and_sealed_key(
    store: Store,
) -> None:
    """What a run needs comes back in one read, as stored now: a renamed source and a new key
    show, the workflow without its flow definition, and an unknown workflow is not found."""
    source = await make_source(store, sealed_key="sealed-1")
    workflow = await make_workflow(store, source, data=FLOW_DEFINITION)
    await store.sources.update(source.id, SourcePatch(name="renamed", sealed_key="sealed-2",
                                                      updated_at=at(1)))
    target = await store.workflows.run_target(workflow.id)
    assert target.workflow == msgspec.structs.replace(
        await store.workflows.get(workflow.id), data=None)
    assert target.source == await store.sources.get(source.id)
    assert (target.source.name, target.sealed_key) == ("renamed", "sealed-2")
    with pytest.raises(NotFoundError):
        await store.workflows.run_target(WorkflowId(new_id()))


async def test_a_run_target_is_found_by_local_id_or_by_remote_id(store: Store) -> None:
    """As ``find``: the local id first, else the oldest workflow with that remote id, each
    with its own source; an unknown key is not found, by name."""
    first = await make_source(store, url="http://a", sealed_key="key-a")
    older = await make_workflow(store, first, remote_id="r", created=1)
    newer = await make_workflow(store, await make_source(store, url="http://b"),
                                remote_id="r", created=2)
    by_remote = await store.workflows.run_target("r")
    assert by_remote.workflow == await store.workflows.find(older.id, definition=False)
    assert (by_remote.source, by_remote.sealed_key) == (first, "key-a")
    by_local = await store.workflows.run_target(newer.id)
    assert by_local.workflow.id == newer.id
    assert by_local.source.url == "http://b"
    with pytest.raises(NotFoundError, match="Workflow nothing not found"):
        await store.workflows.run_target("nothing")


async def test_a_run_target_asked_again_shows_every_change_made_since(store: Store) -> None:
    """A store may keep the targets it read (one is read for every run), but asked again, by
    local or remote id, it answers as stored now: after the workflow's settings change and
    after its source's key changes; once the workflow is deleted it is not found."""
    source = await make_source(store, sealed_key="sealed-1")
    workflow = await make_workflow(store, source, remote_id="r")
    first = await store.workflows.run_target(workflow.id)
    assert await store.workflows.run_target("r") == first
    assert await store.workflows.run_target(workflow.id) == first
    await store.workflows.update(workflow.id, WorkflowPatch(updated_at=at(1), max_concurrency=2))
    assert (await store.workflows.run_target(workflow.id)).workflow.max_concurrency == 2
    assert (await store.workflows.run_target("r")).workflow.max_concurrency == 2
    await store.sources.update(source.id, SourcePatch(sealed_key="sealed-2", updated_at=at(2)))
    assert (await store.workflows.run_target(workflow.id)).sealed_key == "sealed-2"
    assert (await store.workflows.run_target("r")).source == await store.sources.get(source.id)
    await store.workflows.delete(workflow.id)
    for key in (workflow.id, "r"):
        with pytest.raises(NotFoundError):
            await store.workflows.run_target(key)


async def test_workflows_list_by_name_with_filters_and_case_insensitive_search(
        store: Store) -> None:
    """Name order; filters on source id, source URL, flow type and a name fragment."""
    lang = await make_source(store, url="http://lang")
    hive = await make_source(store, url="http://hive", source_type="automagik-hive")
    await make_workflow(store, lang, remote_id="1", name="Support Bot")
    await make_workflow(store, lang, remote_id="2", name="alpha")
    await make_workflow(store, hive, remote_id="3", name="Ärger SUPPORT", flow_type="hive_agent")

    async def names(filters: WorkflowFilter) -> list[str]:
        page = await store.workflows.list(filters, limit=10, offset=0)
        assert page.total == len(page.items)
        return [summary.workflow.name for summary in page.items]

    assert await names(WorkflowFilter()) == ["Support Bot", "alpha", "Ärger SUPPORT"]
    assert await names(WorkflowFilter(q="support")) == ["Support Bot", "Ärger SUPPORT"]
    assert await names(WorkflowFilter(q="ärger")) == ["Ärger SUPPORT"]
    assert await names(WorkflowFilter(source_id=lang.id)) == ["Support Bot", "alpha"]
    assert await names(WorkflowFilter(source_url="http://hive")) == ["Ärger SUPPORT"]
    assert await names(WorkflowFilter(flow_type="hive_agent", q="SUP")) == ["Ärger SUPPORT"]
    assert await names(WorkflowFilter(q="100%")) == []
    assert await names(WorkflowFilter(q="_")) == []


async def test_workflow_pages_report_total_and_has_more(store: Store) -> None:
    """Pagination over names, ties broken by id."""
    source = await make_source(store)
    for index in range(5):
        await make_workflow(store, source, remote_id=str(index), name=f"w{index}")
    page = await store.workflows.list(WorkflowFilter(), limit=2, offset=2)
    assert [s.workflow.name for s in page.items] == ["w2", "w3"]
    assert (page.total, page.has_more) == (5, True)
    assert not (await store.workflows.list(WorkflowFilter(), limit=2, offset=4)).has_more


async def test_workflow_summaries_carry_the_latest_run_and_task_counts(store: Store) -> None:
    """``NEW`` without tasks, else the newest task's status upper-cased, with counts."""
    source = await make_source(store)
    idle = await make_workflow(store, source, remote_id="idle", name="a idle")
    busy = await make_workflow(store, source, remote_id="busy", name="b busy")
    await make_task(store, busy, created=1, status=TaskStatus.FAILED)
    await make_task(store, busy, created=3, status=TaskStatus.COMPLETED)
    await make_task(store, busy, created=2, status=TaskStatus.FAILED)
    summaries = (await store.workflows.list(WorkflowFilter(), limit=10, offset=0)).items
    assert [(s.workflow.id, s.latest_run, s.task_count, s.failed_task_count)
            for s in summaries] == [(idle.id, "NEW", 0, 0), (busy.id, "COMPLETED", 3, 2)]


async def test_workflow_summaries_follow_runs_through_claims_failures_cancels_and_deletes(
        store: Store) -> None:
    """Counts and ``latest_run`` stay right as tasks are added, fail, are cancelled or go."""
    workflow = await a_workflow(store)

    async def summary() -> tuple[str, int, int]:
        [item] = (await store.workflows.list(WorkflowFilter(), limit=10, offset=0)).items
        return item.latest_run, item.task_count, item.failed_task_count

    first = await make_task(store, workflow, created=1)
    assert await summary() == ("PENDING", 1, 0)
    [claimed] = await store.queue.claim(owner="w1", limit=1, lease_seconds=LEASE)
    assert await summary() == ("RUNNING", 1, 0)
    assert await store.queue.release(claimed, outcome(TaskStatus.FAILED, 2, error="boom"),
                                     owner="w1")
    assert await summary() == ("FAILED", 1, 1)
    second = await make_task(store, workflow, created=3)
    assert await summary() == ("PENDING", 2, 1)
    await store.tasks.cancel(second.id, now=at(4))
    assert await summary() == ("CANCELLED", 2, 1)
    await store.tasks.delete(second.id)
    assert await summary() == ("FAILED", 1, 1)
    await store.tasks.delete(first.id)
    assert await summary() == ("NEW", 0, 0)


async def test_deleting_a_workflow_removes_and_counts_its_schedules_and_tasks(
        store: Store) -> None:
    """Cascade delete with counts; the source stays."""
    workflow = await a_workflow(store)
    await make_schedule(store, workflow)
    for _ in range(3):
        await make_task(store, workflow)
    deletion = await store.workflows.delete(workflow.id)
    assert (deletion.workflow_id, deletion.schedules_deleted,
            deletion.tasks_deleted) == (workflow.id, 1, 3)
    assert await store.workflows.find(workflow.id) is None
    assert (await store.sources.get(workflow.source_id)).id == workflow.source_id
    with pytest.raises(NotFoundError):
        await store.workflows.delete(workflow.id)
