"""Offset commits that never pass a message still being processed.

Faust commits the longest run of acknowledged offsets, and its check for an
unacknowledged head lets exactly one offset through (faust-streaming issue #606): with
agent concurrency above 1, a slow message at the committed position is committed over
as soon as the fast ones behind it finish, and a worker killed at that moment never
processes it again. This consumer only lets Faust consider the offsets below the
lowest message still in flight on that partition.
"""

from __future__ import annotations

from typing import ClassVar

import faust
from faust.transport.drivers import aiokafka as faust_aiokafka
from faust.types import TP, ConsumerT, TransportT


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
    """Faust's app on the consumer above."""

    def _new_transport(self) -> TransportT:
        return InFlightSafeTransport(self.conf.broker_consumer, self)
