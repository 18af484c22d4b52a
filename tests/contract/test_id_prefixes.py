"""The store's id-prefix lookup, which lets the CLI take a unique prefix of an id as git does."""

from spark_core.models import ScheduleId, SourceId, TaskId, WorkflowId
from spark_core.ports import IdKind, Store
from tests.contract.builders import make_schedule, make_source, make_task, make_workflow

AB1 = "ab100000-0000-4000-8000-000000000000"
AB2 = "ab200000-0000-4000-8000-000000000000"
AC = "ac000000-0000-4000-8000-000000000000"


async def test_ids_with_a_prefix_are_found_per_kind_in_id_order(store: Store) -> None:
    """Each kind answers its own ids that start with the prefix, sorted, up to the limit;
    a full id finds itself and a prefix nothing starts with finds nothing."""
    first = await make_source(store, id=SourceId(AB2), url="http://one.local")
    await make_source(store, id=SourceId(AB1), url="http://two.local")
    await make_source(store, id=SourceId(AC), url="http://three.local")
    workflow = await make_workflow(store, first, id=WorkflowId(AB1))
    await make_schedule(store, workflow, id=ScheduleId(AB2))
    await make_task(store, workflow, id=TaskId(AC))

    assert await store.ids_with_prefix(IdKind.SOURCE, "ab", limit=10) == [AB1, AB2]
    assert await store.ids_with_prefix(IdKind.SOURCE, "a", limit=2) == [AB1, AB2]
    assert await store.ids_with_prefix(IdKind.SOURCE, AC, limit=10) == [AC]
    assert await store.ids_with_prefix(IdKind.SOURCE, "abc", limit=10) == []
    assert await store.ids_with_prefix(IdKind.WORKFLOW, "ab", limit=10) == [AB1]
    assert await store.ids_with_prefix(IdKind.SCHEDULE, "ab", limit=10) == [AB2]
    assert await store.ids_with_prefix(IdKind.TASK, "ab", limit=10) == []
    assert await store.ids_with_prefix(IdKind.TASK, "ac0", limit=10) == [AC]
