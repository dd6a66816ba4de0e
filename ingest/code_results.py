"""Recent results of candidates' "Run code" requests, followed from the code-results
topic so any ingest process can answer a poll for any job."""

from __future__ import annotations

import asyncio
from collections import OrderedDict
from typing import Any

from avro_schemas.codec import Decoded
from avro_schemas.records import Record
from streams.rules.execution import safe_preview

PREVIEW_BYTES = 16 * 1024


class CodeResults:
    """The latest `capacity` run results by job id."""

    def __init__(self, capacity: int = 50_000) -> None:
        self.capacity = capacity
        self.results: OrderedDict[str, dict[str, Any]] = OrderedDict()
        self.ready = asyncio.Event()

    def apply(self, decoded: Decoded) -> None:
        if decoded.name != Record.CODE_EXECUTED or decoded.value["purpose"] != "run":
            return
        self.results[decoded.value["event_id"]] = decoded.value
        while len(self.results) > self.capacity:
            self.results.popitem(last=False)

    def get(self, job_id: str) -> dict[str, Any] | None:
        return self.results.get(job_id)


def shown_to_candidate(result: dict[str, Any]) -> dict[str, Any]:
    """A run result as the candidate sees it: output as safe text, never raw bytes."""
    return {
        "job_id": result["event_id"],
        "status": "done",
        "question_id": result["question_id"],
        "language": result["language"],
        "verdict": result["verdict"],
        "compile_output": safe_preview(result["compile_output"].encode(), PREVIEW_BYTES),
        "tests": [
            {
                "test_id": t["test_id"],
                "verdict": t["verdict"],
                "time_ms": t["time_ms"],
                "memory_kb": t["memory_kb"],
                "stdout": safe_preview(t["stdout"], PREVIEW_BYTES),
                "stderr": safe_preview(t["stderr"], PREVIEW_BYTES),
            }
            for t in result["tests"]
        ],
    }
