"""Logging: readable text in development, one JSON object per line in production.

Records may carry `contest_id`, `attempt_id`, `topic`, `partition` and `offset` extras;
they are kept as fields. Answer contents and secrets are never logged.
"""

from __future__ import annotations

import json
import logging
import sys
from datetime import UTC, datetime

from elevate.settings import Settings

CONTEXT_FIELDS = ("contest_id", "attempt_id", "topic", "partition", "offset")


class JsonFormatter(logging.Formatter):
    def __init__(self, role: str) -> None:
        super().__init__()
        self.role = role

    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, object] = {
            "ts": datetime.fromtimestamp(record.created, UTC).isoformat(),
            "level": record.levelname,
            "role": self.role,
            "logger": record.name,
            "message": record.getMessage(),
        }
        for field in CONTEXT_FIELDS:
            if hasattr(record, field):
                entry[field] = getattr(record, field)
        if record.exc_info:
            entry["exception"] = self.formatException(record.exc_info)
        return json.dumps(entry, default=str)


def configure_logging(settings: Settings, role: str, level: int = logging.INFO) -> None:
    """Set up the root logger once per process."""
    handler = logging.StreamHandler(sys.stderr)
    if settings.log_format == "json":
        handler.setFormatter(JsonFormatter(role))
    else:
        handler.setFormatter(
            logging.Formatter(f"%(asctime)s %(levelname)-7s {role:<8} %(name)s: %(message)s")
        )
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level)
    for noisy in ("aiokafka", "kafka", "uvicorn.access", "faust", "mode", "httpx"):
        logging.getLogger(noisy).setLevel(logging.WARNING)
