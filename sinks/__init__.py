"""Sinks: batch consumers writing results to Postgres and every event to ClickHouse."""
