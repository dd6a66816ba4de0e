"""Ingest: the thin candidate HTTP API that writes every action to Kafka as Avro."""
