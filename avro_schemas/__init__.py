"""The wire contract: Avro schemas, the single-object codec and the topic registry."""
