"""The pure core: timing, scoring, ranking and the attempt state machine.

Plain functions over plain data, with no Kafka, HTTP or database import, so they are
unit-tested without a broker and reused by ingest (deadline, answer shape).
"""
