"""The judging core, free of Ray: one judge or a jury grades one answer with a rubric and returns the verdict, or
grades each criterion of a rubric example (HealthBench format).

The grid's judge stage, calibration slices and known-answer probes all call `Judging.judge` (rubric examples
`Judging.grade`), so a judgement means the same wherever it is made; tests drive it with a fake client behind the
ChatClient protocol.
"""

from __future__ import annotations

import asyncio
import json
from dataclasses import dataclass

from evalsvc.engines.chat import ChatClient, ChatTarget, make_client
from evalsvc.judge.criteria import CriterionVerdict, criterion_body, criterion_verdict, jury_met
from evalsvc.judge.jury import Jury, Vote, cast_vote, joined_raw, verdict, votes_json
from evalsvc.specs.rubric import Rubric

SINGLE_JUDGE = "judge"  # the voter name of a single judge (calibration tables, votes)
RUBRIC_FIELDS = ("reference", "category", "expected_behavior", "principle", "control")


@dataclass(frozen=True)
class JudgeSettings:
    """What a judge request carries besides the prompt, from the manifest's judge section."""

    temperature: float = 0.0
    max_tokens: int = 512
    guided: bool = True
    concurrency: int = 16


@dataclass(frozen=True)
class Judgement:
    """The outcome of judging one answer: the verdict, the raw answer(s), and every vote of a jury."""

    score: float | None
    label: str | None
    parse_ok: bool
    raw: str | None
    error: str | None
    votes: tuple[Vote, ...]
    jury: bool = False

    @property
    def votes_json(self) -> str | None:
        return votes_json(list(self.votes)) if self.jury else None


def judge_body(rubric: Rubric, row: dict, response: str, model_id: str, settings: JudgeSettings) -> dict:
    """The chat-completions request asking one judge to grade `response` to `row["question"]`."""
    fields = {k: row.get(k) or "" for k in RUBRIC_FIELDS}
    body = {
        "model": model_id,
        "messages": rubric.render(row["question"], response, **fields),
        "temperature": settings.temperature,
        "max_tokens": settings.max_tokens,
        "stream": False,
    }
    if settings.guided and rubric.guided:
        body["structured_outputs"] = dict(rubric.guided)
    return body


class Judging:
    """A judge (or a jury) ready to grade: its clients, its settings, and one bound on requests in flight.

    Build it inside the event loop that will await it (Serve handles bind to the loop that made them).
    """

    def __init__(
        self, target: ChatTarget | Jury, settings: JudgeSettings, clients: dict[str, ChatClient] | None = None
    ):
        self.target, self.settings = target, settings
        self.members = list(target.members) if isinstance(target, Jury) else [(SINGLE_JUDGE, target)]
        self.clients = clients or {name: make_client(t) for name, t in self.members}
        self.sem = asyncio.Semaphore(settings.concurrency)

    @property
    def is_jury(self) -> bool:
        return isinstance(self.target, Jury)

    @property
    def label(self) -> str:
        return self.target.label

    def labels(self) -> dict[str, str]:
        """Voter name → the model it is (for tables that list every juror)."""
        return {name: t.label for name, t in self.members}

    async def votes(self, rubric: Rubric, row: dict, response: str) -> list[Vote]:
        """Every voter's vote on one answer, concurrently; a failed call is a vote that says so."""
        calls = [
            cast_vote(name, self.clients[name], judge_body(rubric, row, response, t.model_id, self.settings),
                      rubric.parser, self.sem)
            for name, t in self.members
        ]  # fmt: skip
        return list(await asyncio.gather(*calls))

    async def judge(self, rubric: Rubric, row: dict, response: str) -> Judgement:
        """The verdict on one answer: a single judge's parsed answer, or the jury's combined votes."""
        votes = await self.votes(rubric, row, response)
        if isinstance(self.target, Jury):
            v = verdict(votes, rubric.kind, self.target.aggregate)
            return Judgement(v.score, v.label, v.parse_ok, joined_raw(votes), v.error, tuple(votes), jury=True)
        (one,) = votes
        error = f"judge: {one.error}" if one.error else None
        return Judgement(one.score, one.label, one.parse_ok and error is None, one.raw, error, tuple(votes))

    async def grade(self, rubric: Rubric, row: dict, response: str) -> list[CriterionVerdict]:
        """Every criterion of the row's rubric example, graded concurrently by each voter (one request per voter
        and criterion, within the one bound on requests in flight): a single judge's verdict, or the jury's."""
        context = json.loads(row["rubric_json"])
        question = row.get("question") or ""

        async def one(c: dict) -> CriterionVerdict:
            calls = [
                cast_vote(name, self.clients[name],
                          criterion_body(rubric, context, question, response, c, t.model_id, self.settings),
                          rubric.parser, self.sem)
                for name, t in self.members
            ]  # fmt: skip
            votes = list(await asyncio.gather(*calls))
            if not self.is_jury:
                (v,) = votes
                return criterion_verdict(c, (v.label == "met") if v.parse_ok else None, v.parse_ok, v.raw, v.error)
            met = jury_met(votes, c["points"])
            failed = [v for v in votes if v.error]
            error = None
            if met is None and failed:
                error = f"{len(failed)} of {len(votes)} jurors failed: " + "; ".join(f"{v.juror}: {v.error}" for v in failed)
            return criterion_verdict(c, met, met is not None, joined_raw(votes), error[:1000] if error else None,
                                     votes_json(votes))  # fmt: skip

        return list(await asyncio.gather(*(one(c) for c in context["criteria"])))
