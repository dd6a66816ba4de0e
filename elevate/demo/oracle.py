"""An independent account of what each demo attempt should score.

It restates the published scoring rules directly from the sample contest's answer key
and the server's acknowledgements, without importing the pipeline's rules, so that
the demo's `scores_match` checks the pipeline rather than repeating it.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from elevate.demo.candidates import CandidateLog


@dataclass(frozen=True)
class KeyEntry:
    kind: str
    correct: frozenset[int]
    max_marks: float
    negative: float
    partial: bool


def question_score(key: KeyEntry, answer: dict[str, Any], coding_scores: dict[str, float]) -> float:
    """An answer's marks: a subjective one has none until a grader gives them; a coding
    one earns what the sample contest says its program earns on the hidden tests."""
    if key.kind == "subjective":
        return 0.0
    if key.kind == "coding":
        return coding_scores[answer["text"]]
    selected = answer.get("selected_options")
    if not selected:
        return 0.0
    chosen = set(selected)
    if chosen == key.correct:
        return key.max_marks
    if key.kind == "mcq_multi" and key.partial:
        right = len(chosen & key.correct)
        wrong = len(chosen - key.correct)
        return max(0.0, key.max_marks * right / len(key.correct) - key.negative * wrong)
    return 0.0  # a wrong answer's negative marks cannot take the question below zero


def expected_total(
    log: CandidateLog,
    keys: dict[str, KeyEntry],
    coding_scores: dict[str, float],
    grace_seconds: int,
) -> float:
    """Total from the saves that count: on time (deadline + grace), before an on-time
    submit, the highest sequence per question."""
    assert log.deadline is not None
    cutoff: datetime = log.deadline + timedelta(seconds=grace_seconds)
    if log.submitted_at is not None and log.submitted_at <= cutoff:
        cutoff = log.submitted_at
    latest: dict[str, tuple[int, dict[str, Any]]] = {}
    for save in log.saves:
        if save.server_ts > cutoff:
            continue
        held = latest.get(save.question_id)
        if held is None or save.client_seq > held[0]:
            latest[save.question_id] = (save.client_seq, save.answer)
    return round(
        sum(question_score(keys[q], answer, coding_scores) for q, (_, answer) in latest.items()),
        6,
    )


def keys_from(questions: list[dict[str, Any]]) -> dict[str, KeyEntry]:
    """Answer keys from the admin API's question records."""
    return {
        q["id"]: KeyEntry(
            kind=q["type"],
            correct=frozenset(q["content"].get("correct_answers") or ()),
            max_marks=float(q["scoring"]["max_marks"]),
            negative=float(q["scoring"]["negative_marks"]),
            partial=bool(q["scoring"]["partial_credit"]),
        )
        for q in questions
    }
