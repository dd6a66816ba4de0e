"""The stream consumer never commits past a message an agent is still processing."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Iterator

import pytest
from faust.transport.consumer import Consumer
from faust.types import TP, Message

from streams.commits import StreamsApp, lowest_in_flight

TOPIC = "code-runs"
PARTITION = TP(TOPIC, 0)


@pytest.fixture
def consumer() -> Iterator[Consumer]:
    loop = asyncio.new_event_loop()
    asyncio.set_event_loop(loop)  # Faust's services pick it up lazily
    app = StreamsApp("commits-test", broker="kafka://127.0.0.1:1", loop=loop)
    consumer = app.consumer
    app.topics._acking_topics.add(TOPIC)  # as if an agent subscribed to the topic
    consumer._committed_offset[PARTITION] = 5
    yield consumer
    consumer._thread.thread_loop.close()  # the consumer thread's loop, never started here
    asyncio.set_event_loop(None)
    loop.close()


def delivered(consumer: Consumer, offsets: range) -> list[Message]:
    messages = [
        Message(TOPIC, 0, offset, 0.0, 0, None, b"key", b"value", None, tp=PARTITION)
        for offset in offsets
    ]
    for message in messages:
        consumer.track_message(message)
    return messages


def test_a_slow_message_at_the_head_holds_the_commit_until_it_is_done(
    consumer: Consumer,
) -> None:
    slow, *fast = delivered(consumer, range(5, 10))
    for message in fast:
        consumer.ack(message)
    assert consumer._new_offset(PARTITION) is None  # 6..9 done, 5 still running
    consumer.ack(slow)
    assert consumer._new_offset(PARTITION) == 10


def test_the_run_before_a_slow_message_commits_and_the_rest_waits(
    consumer: Consumer,
) -> None:
    messages = delivered(consumer, range(5, 12))
    for message in messages[:3] + messages[4:]:  # all but offset 8
        consumer.ack(message)
    assert consumer._new_offset(PARTITION) == 8
    consumer._committed_offset[PARTITION] = 8
    assert consumer._new_offset(PARTITION) is None
    consumer.ack(messages[3])
    assert consumer._new_offset(PARTITION) == 12


def test_nothing_in_flight_commits_as_faust_does(consumer: Consumer) -> None:
    for message in delivered(consumer, range(5, 8)):
        consumer.ack(message)
    assert consumer._new_offset(PARTITION) == 8


def test_lowest_in_flight_ignores_messages_behind_the_commit() -> None:
    assert lowest_in_flight([12, 9, 30], committed=10) == 12
    assert lowest_in_flight([3], committed=10) is None
    assert lowest_in_flight([4, 2], committed=None) == 2
    assert lowest_in_flight([], committed=0) is None


class Seeks:
    """The consumer calls `StreamsApp` makes after a rebalance, with a group that
    committed offset 7 on one stream partition and nothing on another."""

    def __init__(self, consumer: Consumer, monkeypatch: pytest.MonkeyPatch) -> None:
        self.sought: dict[TP, int] = {}
        committed = {TP("attempt-events", 0): 7, TP("attempt-events", 1): None}
        for name, call in {
            "seek_to_committed": self.seek_to_committed(committed),
            "earliest_offsets": self.earliest_offsets,
            "seek_wait": self.seek_wait,
        }.items():
            monkeypatch.setattr(consumer, name, call)

    @staticmethod
    def seek_to_committed(committed: dict[TP, int | None]) -> Callable[[], Awaitable[object]]:
        async def call() -> dict[TP, int | None]:
            return committed

        return call

    async def earliest_offsets(self, *partitions: TP) -> dict[TP, int]:
        return dict.fromkeys(partitions, 3)  # the log starts at 3 after retention

    async def seek_wait(self, partitions: dict[TP, int]) -> None:
        self.sought.update(partitions)


def test_the_end_of_a_rebalance_fetches_again_what_flow_control_emptied(
    consumer: Consumer, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Faust resumes flow control (emptying the stream queues) after it sought the
    partitions; the app seeks them once more so the emptied messages come back, from
    the log's start where nothing was committed."""
    app = consumer.app
    seeks = Seeks(consumer, monkeypatch)
    queue = app.FlowControlQueue(maxsize=10, clear_on_resume=True)
    queue.put_nowait("fetched while the partitions were sought")
    app.flow_control.resume()  # as Faust's recovery does last
    assert queue.empty()
    app.rebalancing = False
    app.on_rebalance_end()
    asyncio.get_event_loop().run_until_complete(asyncio.sleep(0.01))
    assert seeks.sought == {TP("attempt-events", 0): 7, TP("attempt-events", 1): 3}


def test_no_extra_seek_once_another_rebalance_began(
    consumer: Consumer, monkeypatch: pytest.MonkeyPatch
) -> None:
    app = consumer.app
    seeks = Seeks(consumer, monkeypatch)
    app.on_rebalance_end()
    app.rebalancing = True
    asyncio.get_event_loop().run_until_complete(asyncio.sleep(0.01))
    assert seeks.sought == {}


@pytest.mark.parametrize("rebalancing", [True, False])
def test_a_failed_seek_crashes_the_worker_unless_a_rebalance_took_over(
    consumer: Consumer, monkeypatch: pytest.MonkeyPatch, rebalancing: bool
) -> None:
    """A rebalance that began during the seek seeks again when it ends; any other
    failure restarts the worker, which recovers and seeks afresh."""
    app = consumer.app
    Seeks(consumer, monkeypatch)
    crashes: list[BaseException] = []

    async def seek_wait(partitions: dict[TP, int]) -> None:
        app.rebalancing = rebalancing
        raise RuntimeError("partition not assigned")

    async def crash(reason: BaseException) -> None:
        crashes.append(reason)

    monkeypatch.setattr(consumer, "seek_wait", seek_wait)
    monkeypatch.setattr(app, "crash", crash)
    app.rebalancing = False
    app.on_rebalance_end()
    asyncio.get_event_loop().run_until_complete(asyncio.sleep(0.01))
    assert len(crashes) == (0 if rebalancing else 1)
