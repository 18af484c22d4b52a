"""Sources: validated against their server, stored with a sealed key, changed and removed."""

import asyncio

import pytest

from spark_core.errors import ConflictError, NotFoundError, UnknownSourceTypeError, ValidationError
from spark_core.models import SourceId, SourceStatus
from spark_core.ports import SourcePatch
from spark_core.services.sources import SourceChanges
from tests.unit.conftest import REMOTE_URL, World


async def test_adding_a_source_normalises_its_url_and_records_the_version(world: World) -> None:
    """The URL is stored normalised and the server's version info is kept."""
    source = await world.spark.sources.add(
        name=" flows ", source_type="langflow", url="HTTP://Flows.test:7860/", api_key="remote-key"
    )
    assert source.url == REMOTE_URL
    assert source.name == "flows"
    assert source.version_info == {"version": "fake-1.0"}
    assert source.status == SourceStatus.ACTIVE


async def test_a_source_key_is_stored_sealed_never_in_plain_text(world: World) -> None:
    """The store only ever sees the sealed form of the API key."""
    source = await world.spark.sources.add(
        name="flows", source_type="langflow", url=REMOTE_URL, api_key="remote-key"
    )
    sealed = await world.store.sources.get_key(source.id)
    assert sealed is not None
    assert "remote-key" not in sealed


async def test_the_hive_alias_is_accepted_as_automagik_hive(world: World) -> None:
    """`hive` is an input alias of `automagik-hive`."""
    world.connector.add_remote("http://hive.test")
    source = await world.spark.sources.add(name="h", source_type="hive", url="http://hive.test")
    assert source.source_type == "automagik-hive"


async def test_a_wrong_key_is_rejected_when_the_source_is_added(world: World) -> None:
    """A key the server refuses fails creation with a clear validation error; nothing is stored."""
    with pytest.raises(ValidationError, match="rejected the API key"):
        await world.spark.sources.add(
            name="flows", source_type="langflow", url=REMOTE_URL, api_key="wrong"
        )
    assert (await world.spark.sources.list()).total == 0


async def test_an_unreachable_server_is_rejected_when_the_source_is_added(world: World) -> None:
    """A server nobody answers at fails creation, naming the URL."""
    with pytest.raises(ValidationError, match=r"http://nowhere\.test"):
        await world.spark.sources.add(name="x", source_type="langflow", url="http://nowhere.test")


async def test_an_unknown_source_type_is_rejected(world: World) -> None:
    """Only registered source types can be added."""
    with pytest.raises(UnknownSourceTypeError, match="expected one of"):
        await world.spark.sources.add(name="x", source_type="airflow", url=REMOTE_URL)


async def test_the_same_url_cannot_be_added_twice(world: World) -> None:
    """A second source at a URL that differs only in form is a conflict."""
    await world.spark.sources.add(
        name="a", source_type="langflow", url=REMOTE_URL, api_key="remote-key"
    )
    with pytest.raises(ConflictError):
        await world.spark.sources.add(
            name="b", source_type="langflow", url=REMOTE_URL + "/", api_key="remote-key"
        )


async def test_rekeying_a_source_validates_the_new_key(world: World) -> None:
    """A partial update with a wrong key is refused and the old key still works."""
    source = await world.spark.sources.add(
        name="a", source_type="langflow", url=REMOTE_URL, api_key="remote-key"
    )
    with pytest.raises(ValidationError):
        await world.spark.sources.update(source.id, SourceChanges(api_key="wrong"))
    checked = await world.spark.sources.check(source.id)
    assert checked.status == SourceStatus.ACTIVE


async def test_renaming_a_source_does_not_contact_the_server(world: World) -> None:
    """A name change is stored even while the server is down."""
    source = await world.spark.sources.add(
        name="a", source_type="langflow", url=REMOTE_URL, api_key="remote-key"
    )
    world.remote.healthy = False
    renamed = await world.spark.sources.update(source.id, SourceChanges(name="b"))
    assert renamed.name == "b"


async def test_a_failed_check_marks_the_source_inactive(world: World) -> None:
    """Checking a source whose server is down records it as inactive and says why."""
    source = await world.spark.sources.add(
        name="a", source_type="langflow", url=REMOTE_URL, api_key="remote-key"
    )
    world.remote.healthy = False
    with pytest.raises(Exception, match="Could not reach"):
        await world.spark.sources.check(source.id)
    assert (await world.spark.sources.get(source.id)).status == SourceStatus.INACTIVE


async def test_deleting_a_source_reports_what_went_with_it(world: World, echo: object) -> None:
    """Removing a source removes its workflows and says how many."""
    source = (await world.spark.sources.list()).items[0]
    deletion = await world.spark.sources.delete(source.id)
    assert deletion.workflows_deleted == 1
    with pytest.raises(NotFoundError):
        await world.spark.sources.get(SourceId(source.id))


async def test_a_check_does_not_undo_a_rename_made_while_it_awaited_the_server(
    world: World,
) -> None:
    """A check writes only status and version info: a rename that landed while the check
    waited on the network survives it, and the check's findings are stored too."""
    source = await world.spark.sources.add(
        name="before", source_type="langflow", url=REMOTE_URL, api_key="remote-key"
    )
    await world.store.sources.update(source.id, SourcePatch(
        status=SourceStatus.INACTIVE, version_info={}, updated_at=world.clock.now()))
    world.remote.check_release = asyncio.Event()
    checks = world.remote.checks
    checking = asyncio.create_task(world.spark.sources.check(source.id))
    for _ in range(10):
        await asyncio.sleep(0)
    assert world.remote.checks == checks + 1  # the check now waits on the server
    renamed = await world.spark.sources.update(source.id, SourceChanges(name="after"))
    assert renamed.name == "after"
    world.remote.check_release.set()
    checked = await asyncio.wait_for(checking, 5)
    stored = await world.spark.sources.get(source.id)
    assert (checked.name, stored.name) == ("after", "after")
    assert (stored.status, stored.version_info) == (SourceStatus.ACTIVE, {"version": "fake-1.0"})
