"""A source type registered from outside Spark's packages: the example webhook adapter, driven
through the facade against a loopback webhook server."""

from collections.abc import AsyncIterator
from pathlib import Path

import pytest

import spark_adapters
from examples.webhook_source import WEBHOOK, WebhookSource
from spark_adapters import Settings
from spark_core import SourceValidationError, Spark, TaskStatus, UnknownSourceTypeError
from tests.library.webhook_server import WEBHOOK_KEY, FakeWebhook


@pytest.fixture
async def webhook() -> AsyncIterator[FakeWebhook]:
    """A started webhook server whose key is ``WEBHOOK_KEY``."""
    server = FakeWebhook(api_key=WEBHOOK_KEY)
    await server.start()
    yield server
    await server.stop()


@pytest.fixture
async def spark(tmp_path: Path) -> AsyncIterator[Spark]:
    """Spark on a temporary store, with the ``webhook`` type registered next to the built-ins."""
    settings = Settings(data_dir=tmp_path, http_timeout=5.0, workers=2)
    async with spark_adapters.connect(
        settings, source_types={WEBHOOK: WebhookSource}, shutdown_grace=1
    ) as opened:
        yield opened


async def test_a_webhook_source_is_added_synced_and_run_through_the_facade(
    spark: Spark, webhook: FakeWebhook
) -> None:
    """Add a ``webhook`` source, sync a path as a flow, run it and read the answer."""
    source = await spark.add_source(
        name="hooks", source_type="webhook", url=webhook.url, api_key=WEBHOOK_KEY
    )
    assert source.source_type == WEBHOOK
    workflow = await spark.sync("shout", source_id=source.id)
    task = await spark.run(workflow.id, "hello hooks")
    assert task.status == TaskStatus.COMPLETED
    assert task.output_data == "HELLO HOOKS"
    assert webhook.runs == [{"flow": "shout", "json": {"input": "hello hooks"}}]


async def test_the_registered_type_sits_next_to_the_built_in_ones(spark: Spark) -> None:
    """Registering ``webhook`` keeps LangFlow and Hive available."""
    assert spark.sources.normalise_type("webhook") == WEBHOOK
    assert spark.sources.normalise_type("hive") == "automagik-hive"
    assert spark.sources.normalise_type("langflow") == "langflow"


async def test_a_refused_webhook_key_fails_when_the_source_is_added(
    spark: Spark, webhook: FakeWebhook
) -> None:
    """A wrong key is caught by the adapter's check, before anything is stored."""
    with pytest.raises(SourceValidationError, match="401"):
        await spark.add_source(name="hooks", source_type="webhook", url=webhook.url,
                               api_key="wrong")
    assert (await spark.sources.list()).total == 0


async def test_webhook_failures_become_failed_tasks_with_the_remote_reason(
    spark: Spark, webhook: FakeWebhook
) -> None:
    """A 404 fails at once; a 500 is retried up to ``max_retries`` and then fails."""
    source = await spark.add_source(
        name="hooks", source_type="webhook", url=webhook.url, api_key=WEBHOOK_KEY
    )
    missing = await spark.run((await spark.sync("nowhere", source_id=source.id)).id, "x")
    assert missing.status == TaskStatus.FAILED
    assert missing.tries == 1
    assert "no such hook" in (missing.error or "")
    broken = await spark.run(
        (await spark.sync("broken", source_id=source.id)).id, "x", max_retries=0
    )
    assert broken.status == TaskStatus.FAILED
    assert "webhook exploded" in (broken.error or "")


async def test_without_registration_the_webhook_type_is_unknown(tmp_path: Path) -> None:
    """The core knows only what is registered: plain ``connect()`` refuses ``webhook``."""
    async with spark_adapters.connect(Settings(data_dir=tmp_path), run_background=False) as spark:
        with pytest.raises(UnknownSourceTypeError):
            await spark.add_source(name="hooks", source_type="webhook", url="http://127.0.0.1:9")
