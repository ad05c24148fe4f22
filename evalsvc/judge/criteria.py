"""Rubric grading (HealthBench format): the request for one (answer, criterion), a jury's verdict on a criterion,
the verdict rows and the example's score. The judging core (judge/core.py) makes the calls.

A criterion whose call failed or whose answer did not parse keeps met=None and counts in neither sum of the score.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict, dataclass

from evalsvc.judge.jury import Vote
from evalsvc.specs.rubric import Rubric


@dataclass(frozen=True)
class CriterionVerdict:
    """One row of a record's `criteria` column (store.record.CRITERION_TYPE)."""

    criterion_id: str
    criterion: str
    points: float
    tags: list[str]
    met: bool | None  # None: the grading failed (error) or its answer did not parse
    parse_ok: bool
    raw: str | None = None
    error: str | None = None
    votes: str | None = None  # a jury's votes as JSON


def example_score(points: Sequence[float], met: Sequence[bool | None]) -> float | None:
    """Points of the met criteria ÷ positive points, over the criteria graded (met not None).

    None when no positive criterion was graded. At most 1; negative when undesirable behaviour outweighs the rest.
    """
    graded = [(p, m) for p, m in zip(points, met, strict=True) if m is not None]
    possible = sum(p for p, _ in graded if p > 0)
    if possible <= 0:
        return None
    return sum(p for p, m in graded if m) / possible


def record_fields(verdicts: list[CriterionVerdict]) -> dict:
    """score, parse_ok, error and criteria of a rubric record.

    parse_ok is false only when the score is undefined (no positive criterion graded, e.g. every grading failed);
    error is set then if some grader call failed, so a judge outage reads as an error, not as unparsable answers.
    """
    score = example_score([v.points for v in verdicts], [v.met for v in verdicts])
    error = None
    failed = [v for v in verdicts if v.error]
    if score is None and failed:
        error = f"judge: {len(failed)} of {len(verdicts)} criterion calls failed: {failed[0].error}"[:1000]
    return {"score": score, "parse_ok": score is not None, "error": error,
            "criteria": [asdict(v) for v in verdicts]}  # fmt: skip


def conversation_text(turns: list[dict]) -> str:
    """The conversation as the grader reads it: each turn under its role."""
    return "\n\n".join(f"[{t['role']}]\n{t['content']}" for t in turns)


def criterion_body(rubric: Rubric, context: dict, question: str, response: str, c: dict, model_id: str,
                   settings) -> dict:  # fmt: skip
    """The chat-completions request asking whether `response` meets criterion `c` (settings: temperature,
    max_tokens, guided — a JudgeConfig or calibration's JudgeSettings)."""
    points = c["points"]
    messages = rubric.render(
        question,
        response,
        conversation=conversation_text(context["conversation"]),
        criterion=c["criterion"],
        points=f"{points:+g}",
        polarity="negative" if points < 0 else "positive",
    )
    body = {"model": model_id, "messages": messages, "temperature": settings.temperature,
            "max_tokens": settings.max_tokens, "stream": False}  # fmt: skip
    if settings.guided and rubric.guided:
        body["structured_outputs"] = dict(rubric.guided)
    return body


def jury_met(votes: list[Vote], points: float) -> bool | None:
    """The jury's verdict on one criterion: the majority of parsed votes, defined when at least half parsed.

    A tie goes to the unfavourable side (a positive criterion unmet, a negative one met), as jury ties do elsewhere:
    disagreement never makes a response look better than a juror saw it.
    """
    parsed = [v for v in votes if v.parse_ok and v.score is not None]
    if not votes or 2 * len(parsed) < len(votes):
        return None
    yes = sum(v.score == 1.0 for v in parsed)
    no = len(parsed) - yes
    if yes != no:
        return yes > no
    return points < 0


def criterion_verdict(c: dict, met: bool | None, parse_ok: bool, raw: str | None, error: str | None = None,
                      votes: str | None = None) -> CriterionVerdict:  # fmt: skip
    """The verdict row of criterion `c` (one of the example's `criteria`)."""
    return CriterionVerdict(c["criterion_id"], c["criterion"], float(c["points"]), list(c.get("tags") or []), met,
                            parse_ok, raw, error, votes)  # fmt: skip
