"""``Rounds``: a caller alone goes at once, a crowd shares the next round, a refused item
fails alone, a caller cancelled is cancelled alone."""

import asyncio

import pytest

from spark_adapters.postgres.rounds import Rounds
from spark_core.errors import SparkError, StoreUnavailableError


class Recorder:
    """A ``write`` that records each round and holds it until released."""

    def __init__(self, refuse: str | None = None, unreachable: bool = False) -> None:
        self.rounds: list[list[str]] = []
        self.gate = asyncio.Event()
        self.serving = asyncio.Event()
        """Set once a round is being written."""
        self.gate.set()
        self.refuse = refuse
        self.unreachable = unreachable

    async def write(self, items: list[str]) -> list[str]:
        self.rounds.append(list(items))
        self.serving.set()
        await self.gate.wait()
        if self.unreachable:
            raise StoreUnavailableError("down")
        if self.refuse in items:
            raise SparkError(f"refused {self.refuse}")
        return [item.upper() for item in items]


async def crowd_behind_a_held_write(
    recorder: Recorder, items: tuple[str, ...],
) -> "tuple[Rounds[str, str], asyncio.Future[str], list[asyncio.Future[str]]]":
    """A leader's write of ``x`` held at ``recorder``'s gate, and ``items`` submitted while
    it is under way (so they wait for the next round): the rounds, the leader, the crowd."""
    rounds = Rounds(recorder.write, name="test-rounds")
    recorder.gate.clear()
    leader = asyncio.ensure_future(rounds.submit("x"))
    await recorder.serving.wait()  # the leader's round has started
    crowd = [asyncio.ensure_future(rounds.submit(item)) for item in items]
    await asyncio.sleep(0)
    return rounds, leader, crowd


async def test_a_lone_write_goes_at_once_and_callers_arriving_meanwhile_share_the_next() -> None:
    """A caller alone is written at once; callers arriving during that write go together
    in the next round; once idle, a caller is alone again."""
    recorder = Recorder()
    rounds, leader, later = await crowd_behind_a_held_write(recorder, ("c", "d", "e"))
    recorder.gate.set()
    assert await asyncio.gather(leader, *later) == ["X", "C", "D", "E"]
    assert recorder.rounds == [["x"], ["c", "d", "e"]]
    assert await rounds.submit("f") == "F"  # idle again: at once, alone
    assert recorder.rounds[-1] == ["f"]


async def test_an_item_refused_in_a_round_fails_only_its_own_caller() -> None:
    """A round refused is written again item by item: the refused item's caller gets the
    error, the others their results."""
    recorder = Recorder(refuse="bad")
    _, leader, crowd = await crowd_behind_a_held_write(recorder, ("good", "bad", "fine"))
    recorder.gate.set()
    assert await leader == "X"
    results = await asyncio.gather(*crowd, return_exceptions=True)
    assert (results[0], results[2]) == ("GOOD", "FINE")
    assert isinstance(results[1], SparkError)
    assert "refused bad" in str(results[1])
    assert recorder.rounds == [["x"], ["good", "bad", "fine"], ["good"], ["bad"], ["fine"]]


async def test_an_unreachable_store_fails_the_whole_round_without_writing_it_again() -> None:
    """An unreachable store fails every caller of the round, with no item-by-item retry."""
    recorder = Recorder()
    _, leader, crowd = await crowd_behind_a_held_write(recorder, ("p", "q"))
    recorder.unreachable = True
    recorder.gate.set()
    for caller in (leader, *crowd):
        with pytest.raises(StoreUnavailableError):
            await caller
    assert recorder.rounds == [["x"], ["p", "q"]]


async def test_a_caller_cancelled_while_it_waits_leaves_its_item_in_the_round() -> None:
    """A caller that gives up while waiting does not take its item out: it is written."""
    recorder = Recorder()
    _, leader, [gone, kept] = await crowd_behind_a_held_write(recorder, ("gone", "kept"))
    gone.cancel()
    recorder.gate.set()
    assert (await leader, await kept) == ("X", "KEPT")
    assert gone.cancelled()
    assert recorder.rounds == [["x"], ["gone", "kept"]]


async def test_a_caller_cancelled_while_its_round_is_served_is_cancelled_alone() -> None:
    """The caller whose round is under way goes away: the round is served all the same, and
    the callers of the next round are answered."""
    recorder = Recorder()
    _, leader, [after] = await crowd_behind_a_held_write(recorder, ("after",))
    leader.cancel()
    recorder.gate.set()
    assert await after == "AFTER"
    assert leader.cancelled()
    assert recorder.rounds == [["x"], ["after"]]


async def test_closing_fails_the_callers_still_waiting_and_stops_the_rounds() -> None:
    """Closed (the store closing), the callers waiting get ``StoreUnavailableError``, the
    round under way is cancelled, and no round starts after."""
    recorder = Recorder()
    rounds, leader, crowd = await crowd_behind_a_held_write(recorder, ("p", "q"))
    await rounds.close()
    for caller in (leader, *crowd):
        with pytest.raises(StoreUnavailableError, match="closed"):
            await caller
    recorder.gate.set()
    await asyncio.sleep(0.01)
    assert recorder.rounds == [["x"]]
