"""The three JSON documents a run leaves beside its records (run.json, status.json, summary.json), as versioned models.

Each is built in one place and written whole; readers get the same models back (`read_doc`), whatever wrote them.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

RUN_DOC_VERSION = "1"
SUMMARY_VERSION = "1"
State = Literal["running", "succeeded", "failed", "cancelled"]
Mode = Literal["grid", "guard_only", "rescore"]


class _Doc(BaseModel):
    model_config = ConfigDict(extra="forbid")

    def to_json(self) -> dict[str, Any]:
        return self.model_dump(mode="json", exclude_none=True)


class RunDoc(_Doc):
    """run.json: what the run is (spec, plan, environment) and how it ended."""

    version: str = Field(RUN_DOC_VERSION, description="Schema version of this document.")
    run_id: str = Field(description="The run's id (folder name under runs/).")
    output_uri: str = Field(description="The run's folder (local path or s3:// URI).")
    mode: Mode = Field("grid", description="grid (candidates + judge), guard_only, or rescore of stored generations.")
    state: State = Field(description="running, succeeded, failed or cancelled.")
    started: str | None = Field(None, description="UTC start time (ISO 8601).")
    finished: str | None = Field(None, description="UTC end time (ISO 8601), once the run ended.")
    cancelled: str | None = Field(None, description="When `evalsvc cancel` stopped the run.")
    wall_s: float | None = Field(None, description="Seconds from the start of work to its end.")
    error: str | None = Field(None, description="The error that failed the run (first line).")
    timeline: dict[str, float] | None = Field(
        None, description="Seconds from the run's start to each event: ray_up, serve_start, judge_ready, "
        "guard_ready, first_generation, first_record, last_record, judged_apart (probes and calibration scored), "
        "pipeline_done, end.",
    )
    manifest: dict[str, Any] = Field(default_factory=dict, description="Resolved manifest; secrets only as ${VAR}.")
    plan: dict[str, Any] = Field(default_factory=dict, description="Cells, engines and totals.")
    engines: dict[str, Any] = Field(default_factory=dict, description="Engine per checkpoint: source, args, replicas.")
    sampling: dict[str, Any] = Field(default_factory=dict, description="Sampling parameters per model.")
    judge: dict[str, Any] = Field(default_factory=dict, description="Judge model and rubrics (id, version, ref).")
    versions: dict[str, str | None] = Field(default_factory=dict, description="Package versions of the driver.")
    reuse: dict[str, Any] | None = Field(None, description="Records resumed in place and taken from the cache.")
    probes: dict[str, Any] | None = Field(
        None, description="Judge-health probes: per kind the number scored, their file (probes/), or why none ran."
    )
    retries: dict[str, Any] | None = Field(None, description="Work redone after a fault (blocks, actors restarted).")
    notes: list[str] = Field(default_factory=list, description="What the run left out, and why.")


class CellStatus(_Doc):
    cell_id: str
    model: str | None = Field(None, description="The candidate (None in guard-only mode).")
    benchmark: str
    strategy: str | None = Field(None, description="The prompt strategy (None in guard-only mode).")
    guardrail: str | None = None
    total: int = Field(description="Records planned for the cell.")
    done: int = Field(description="Records written (or resumed) so far.")
    errors: int = Field(0, description="Records with a generation or judge error.")
    parse_failures: int = Field(0, description="Records whose judge answer did not parse.")
    generated: int = Field(0, description="Answers generated (or taken from the cache), judged or waiting for the judge.")
    completion_tokens: int = Field(0, description="Tokens of the answers this run generated so far (not cached ones).")
    criteria_total: int | None = Field(None, description="Rubric cells: criteria to grade (one judge call each).")
    criteria_done: int | None = Field(None, description="Rubric cells: criteria graded (or resumed) so far.")
    criteria_failed: int | None = Field(None, description="Rubric cells: of those, criteria whose grading failed.")


class StatusDoc(_Doc):
    """status.json: live progress, rewritten every few seconds while the run goes, and once at the end."""

    version: str = Field(RUN_DOC_VERSION, description="Schema version of this document.")
    run_id: str
    mode: Mode = "grid"
    state: State
    updated: str = Field(description="UTC time of this snapshot.")
    done: int
    total: int
    cells: list[CellStatus] = Field(default_factory=list)
    retries: dict[str, int] | None = Field(None, description="Work redone after faults (final status only).")
    replicas: list[dict[str, Any]] | None = Field(
        None, description="While running: each engine and Serve LLM replica with its node, IP, state and restarts."
    )


class SummaryDoc(_Doc):
    """summary.json: one row per model × (guardrail ×) benchmark × strategy × grouping, and the run-wide sections."""

    summary_version: str = Field(SUMMARY_VERSION, description="Schema version of this document.")
    run_id: str | None = None
    mode: Mode = "grid"
    threshold: float | None = Field(None, description="Parse-failure + error share above which a row is flagged.")
    confidence: float | None = Field(None, description="Confidence level of every interval.")
    metric_descriptions: dict[str, str] = Field(default_factory=dict)
    rows: list[dict[str, Any]] = Field(default_factory=list, description="Summary rows (metrics with lo/hi).")
    cost: dict[str, Any] | None = Field(None, description="Tokens and USD per model.")
    agreement: dict[str, Any] | None = Field(None, description="Jury: pairwise agreement between jurors.")
    calibration: dict[str, Any] | None = Field(None, description="Judge agreement with human-labelled rows.")
    judge_health: list[dict[str, Any]] | None = Field(
        None, description="Per judge or juror: known-answer probe agreement, grid spread, parse failures, flags, ok."
    )
    guard_only: dict[str, Any] | None = Field(None, description="Guard-only mode: each guardrail as a classifier.")
    retries: dict[str, int] | None = Field(
        None, description="Work redone after faults: engine_restarts, blocks_redone, judge_calls_waited."
    )
    notes: list[str] = Field(default_factory=list)
