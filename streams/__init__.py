"""Stream processing: Faust agents (thin) over the pure rules in `streams.rules`."""
