"""The record: one row per model × benchmark × strategy × item × sample, as written to Parquet.

`RECORD_SCHEMA` is the contract between the pipeline, the store and the report; partition columns
(model, benchmark, strategy) live in the Hive path and come back when read with partitioning="hive".
Columns added later are nullable at the end, so records written before them still read (as nulls).
"""

from __future__ import annotations

import pyarrow as pa

PARTITION_COLS = ("model", "benchmark", "strategy")
# Optional per-item labels a benchmark item may carry; each is a record column.
CATEGORY_FIELDS = ("principle", "source", "aspect", "category", "expected_behavior", "question_type", "control")
NONE_ARM = "none"  # the unguarded guardrail arm
# The category fields summaries group by (control is a flag, not a group; expected_behavior a per-item target).
GROUP_FIELDS = ("principle", "source", "aspect", "category", "question_type")
RECORD_VERSION = "1"

# One graded criterion of a rubric record (HealthBench format): `met` is null when its grading failed (the call
# failed: `error`; the answer did not parse: parse_ok false), and such a criterion counts in neither sum of the score.
CRITERION_TYPE = pa.struct(
    [
        ("criterion_id", pa.string()),  # position in the example's rubric + hash of text and points
        ("criterion", pa.string()),
        ("points", pa.float64()),  # negative: an undesirable behaviour ("met" = the response shows it)
        ("tags", pa.list_(pa.string())),  # e.g. axis:accuracy, level:example
        ("met", pa.bool_()),
        ("parse_ok", pa.bool_()),
        ("raw", pa.string()),  # the grader's answer (a jury's: every juror's, labelled)
        ("error", pa.string()),  # the grader call failed (after retries)
        ("votes", pa.string()),  # jury: JSON list of {juror, score, label, parse_ok, raw, error}; null for one judge
    ]
)

RECORD_SCHEMA = pa.schema(
    [
        ("run_id", pa.string()),
        ("cell_id", pa.string()),
        ("record_key", pa.string()),  # content hash: model source+revision, output-affecting engine args, prompt, sampling
        ("model", pa.string()),
        ("model_source", pa.string()),
        ("benchmark", pa.string()),
        ("benchmark_kind", pa.string()),  # harm | mcq | high_risk | rubric
        ("benchmark_version", pa.string()),
        ("split", pa.string()),
        ("item_id", pa.string()),
        ("sample_index", pa.int32()),
        ("strategy", pa.string()),
        *[(f, pa.string()) for f in CATEGORY_FIELDS],
        ("answer", pa.string()),  # mcq: the correct letter
        ("messages", pa.string()),  # JSON list of chat messages sent to the candidate
        ("response", pa.string()),
        ("prompt_tokens", pa.int32()),
        ("completion_tokens", pa.int32()),
        ("latency_s", pa.float64()),
        ("finish_reason", pa.string()),
        ("judge_model", pa.string()),
        ("rubric_id", pa.string()),
        ("rubric_version", pa.string()),
        ("judge_raw", pa.string()),
        # harm: 1-5 harmfulness; high_risk: 1-5 safe helpfulness; mcq: 1.0 correct / 0.0 wrong;
        # rubric: met points ÷ positive points over the criteria graded (≤ 1, may be negative)
        ("score", pa.float64()),
        ("label", pa.string()),  # mcq: the extracted letter; high_risk: refuse | safe_redirect | cautious_answer | unsafe_actionable
        ("parse_ok", pa.bool_()),
        ("error", pa.string()),  # generation or judge error; null when none
        ("judge_votes", pa.string()),  # jury: JSON list of {juror, score, label, parse_ok, raw, error}; null for one judge
        ("guardrail", pa.string()),  # guardrail arm ('none' = unguarded); null when the manifest has no guardrails
        ("guard_input", pa.string()),  # input filter decision: pass | block | error; null when not applied
        ("guard_output", pa.string()),  # output filter decision: pass | block | error; null when not applied
        ("guard_raw", pa.string()),  # JSON {input, output}: the guard's raw answers
        ("response_unguarded", pa.string()),  # the candidate's own answer when a guard replaced it
        ("cost_usd", pa.float64()),  # endpoint candidates with prices: this generation's cost
        ("guard_categories", pa.string()),  # the categories the blocking guard check named, e.g. specialized_advice
        ("example_tags", pa.list_(pa.string())),  # rubric: the example's tags (theme:*, …); null for other kinds
        ("criteria", pa.list_(CRITERION_TYPE)),  # rubric: one verdict per criterion; null for other kinds
    ]
)
RECORD_COLUMNS = tuple(RECORD_SCHEMA.names)
FILE_COLUMNS = tuple(c for c in RECORD_COLUMNS if c not in PARTITION_COLS)

# Guard-only mode (a guardrail scored as a classifier on the benchmark prompts): runs/<id>/guard/, one row per
# guardrail × benchmark × item. `expected` comes from the benchmark: MedSafetyBench requests and non-control
# high-risk queries should be blocked ("unsafe"); benign controls should pass ("safe").
GUARD_PARTITION_COLS = ("guardrail", "benchmark")
GUARD_SCHEMA = pa.schema(
    [
        ("run_id", pa.string()),
        ("guardrail", pa.string()),
        ("guard_model", pa.string()),  # the guard's backend label (source or URL + model name)
        ("guard_format", pa.string()),  # prompt format id + version, e.g. llama-guard@1.0.0
        ("benchmark", pa.string()),
        ("benchmark_kind", pa.string()),
        ("item_id", pa.string()),
        *[(f, pa.string()) for f in CATEGORY_FIELDS],
        ("prompt", pa.string()),  # the request shown to the guard
        ("expected", pa.string()),  # unsafe | safe
        ("decision", pa.string()),  # block | pass | error
        ("guard_categories", pa.string()),  # the categories it named (names, else codes): "S2,S7", "specialized_advice"
        ("guard_raw", pa.string()),
        ("parse_ok", pa.bool_()),
        ("error", pa.string()),
        ("latency_s", pa.float64()),
    ]
)

# The record columns summaries read (the small ones: no prompt or response text).
SUMMARY_COLUMNS = (
    *PARTITION_COLS,
    "benchmark_kind",
    "item_id",
    "sample_index",
    *GROUP_FIELDS,
    "control",
    "guardrail",
    "guard_input",
    "guard_output",
    "guard_categories",
    "score",
    "label",
    "parse_ok",
    "error",
    "prompt_tokens",
    "completion_tokens",
    "cost_usd",
    "example_tags",  # rubric records: the example's tags, and the criteria verdicts (their grader answers included)
    "criteria",
)
