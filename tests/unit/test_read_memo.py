"""``ReadMemo.read_once``: lists missing the same page under the same change token at once
share one read; an error or a caller going away costs the others nothing."""

import asyncio

import pytest

from spark_adapters.read_memo import ReadMemo


class Reads:
    """A read the test releases by hand, counting how often it was started."""

    def __init__(self) -> None:
        self.started = 0
        self.release = asyncio.Event()
        self.fail_with: Exception | None = None

    async def read(self) -> list[str]:
        self.started += 1
        await self.release.wait()
        if self.fail_with is not None:
            raise self.fail_with
        return [f"page {self.started}"]


async def test_callers_missing_at_once_share_one_read_and_its_answer_is_kept() -> None:
    memo: ReadMemo[list[str]] = ReadMemo()
    reads = Reads()
    callers = [asyncio.create_task(memo.read_once("tasks", "t1", reads.read)) for _ in range(5)]
    await asyncio.sleep(0)
    reads.release.set()
    answers = await asyncio.gather(*callers)
    assert reads.started == 1
    assert all(answer is answers[0] for answer in answers)
    assert await memo.read_once("tasks", "t1", reads.read) is answers[0]
    assert reads.started == 1


async def test_a_new_token_or_another_key_reads_again() -> None:
    memo: ReadMemo[list[str]] = ReadMemo()
    reads = Reads()
    reads.release.set()
    first = await memo.read_once("tasks", "t1", reads.read)
    assert await memo.read_once("tasks", "t2", reads.read) == ["page 2"]
    assert await memo.read_once("workflows", "t2", reads.read) == ["page 3"]
    assert memo.get("tasks", "t1") is None  # replaced by the newer token's answer
    assert first == ["page 1"]


async def test_a_failed_read_fails_every_caller_sharing_it_and_is_not_kept() -> None:
    memo: ReadMemo[list[str]] = ReadMemo()
    reads = Reads()
    reads.fail_with = RuntimeError("database gone")
    callers = [asyncio.create_task(memo.read_once("tasks", "t1", reads.read)) for _ in range(3)]
    await asyncio.sleep(0)
    reads.release.set()
    results = await asyncio.gather(*callers, return_exceptions=True)
    assert [str(result) for result in results] == ["database gone"] * 3
    reads.fail_with = None
    assert await memo.read_once("tasks", "t1", reads.read) == ["page 2"]


async def test_a_caller_cancelled_leaves_the_shared_read_to_the_others() -> None:
    memo: ReadMemo[list[str]] = ReadMemo()
    reads = Reads()
    callers = [asyncio.create_task(memo.read_once("tasks", "t1", reads.read)) for _ in range(3)]
    await asyncio.sleep(0)
    callers[0].cancel()
    await asyncio.sleep(0)
    reads.release.set()
    with pytest.raises(asyncio.CancelledError):
        await callers[0]
    assert await asyncio.gather(*callers[1:]) == [["page 1"], ["page 1"]]
    assert reads.started == 1
