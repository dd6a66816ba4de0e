"""Where the stream worker's Faust app differs from Faust's own: no message is lost
between fetching and processing.

Offset commits never pass a message still being processed. Faust commits the longest
run of acknowledged offsets, and its check for an unacknowledged head lets exactly one
offset through (faust-streaming issue #606): with agent concurrency above 1, a slow
message at the committed position is committed over as soon as the fast ones behind it
finish, and a worker killed at that moment never processes it again. This consumer only
lets Faust consider the offsets below the lowest message still in flight on that
partition.
"""

from __future__ import annotations

import asyncio
import logging
from typing import ClassVar, cast

import faust
from faust.transport.drivers import aiokafka as faust_aiokafka
from faust.types import TP, ConsumerT, TransportT

log = logging.getLogger(__name__)


def lowest_in_flight(offsets: list[int], committed: int | None) -> int | None:
    """The lowest offset still being processed, ignoring ones the group has already
    committed past (a message re-delivered after a rebalance)."""
    pending = [o for o in offsets if committed is None or o >= committed]
    return min(pending, default=None)


class InFlightSafeConsumer(faust_aiokafka.Consumer):
    def _new_offset(self, tp: TP) -> int | None:
        committed = self._committed_offset[tp]
        in_flight = lowest_in_flight(
            [m.offset for m in list(self._unacked_messages) if m.tp == tp and not m.acked],
            committed,
        )
        if in_flight is None:
            return super()._new_offset(tp)
        acked = self._acked[tp]
        held = [offset for offset in acked if offset > in_flight]
        acked[:] = [offset for offset in acked if offset < in_flight]
        try:
            return super()._new_offset(tp)
        finally:
            # Faust removes only the offsets it commits; the held ones wait their turn.
            acked.extend(held)


class InFlightSafeTransport(faust_aiokafka.Transport):
    Consumer: ClassVar[type[ConsumerT]] = InFlightSafeConsumer


class StreamsApp(faust.App):
    """Faust's app on the consumer above, fetching again what a rebalance's end dropped.

    When its table recovery ends, Faust resumes the stream partitions and seeks them to
    their committed offsets first, and only then resumes flow control, which empties
    every stream's queue. Whatever the fetcher delivered in between was dropped: never
    processed, never acknowledged, and behind the consumer's position, so never fetched
    again while the worker ran. A worker restarted onto a backlog lost most of it this
    way. Seeking the stream partitions once more after the queues were emptied (to the
    committed offset, or to the start where nothing was committed yet) fetches it
    again; agents are idempotent, so what is delivered twice does no harm.
    """

    _seek_after_rebalance: asyncio.Task[None] | None = None

    def _new_transport(self) -> TransportT:
        return InFlightSafeTransport(self.conf.broker_consumer, self)

    def on_rebalance_end(self) -> None:
        super().on_rebalance_end()
        self._seek_after_rebalance = asyncio.ensure_future(self._fetch_again())

    async def _fetch_again(self) -> None:
        if self.rebalancing:  # the next rebalance seeks again when it ends
            return
        consumer = cast(InFlightSafeConsumer, self.consumer)
        try:
            committed = await consumer.seek_to_committed()
            changelogs = self.tables.changelog_topics
            stream_partitions = {
                tp: offset for tp, offset in committed.items() if tp.topic not in changelogs
            }
            never_committed = [tp for tp, offset in stream_partitions.items() if not offset]
            earliest = await consumer.earliest_offsets(*never_committed) if never_committed else {}
            # seek_to_committed is how the consumer's thread reports committed offsets;
            # seek_wait seeks again there (a seek from this thread raced the fetcher and
            # crashed it) and also moves Faust's read offsets back, without which it
            # would drop the re-fetched messages as already read.
            await consumer.seek_wait(
                {tp: offset or earliest[tp] for tp, offset in stream_partitions.items()}
            )
        except Exception as exc:
            if self.rebalancing:  # assignment changed under the seek; its end seeks again
                return
            log.exception("could not seek the stream partitions after a rebalance")
            await self.crash(exc)  # a restarted worker recovers and seeks afresh
