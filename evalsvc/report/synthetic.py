"""Synthetic runs with known ground truth: Hive-partitioned records (+ run.json) for tests, demos and scale checks.

Scores are drawn per model × strategy from fixed distributions, so a summary can be checked against the truth.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field

import numpy as np
import pyarrow as pa
import pyarrow.fs as pafs
import pyarrow.parquet as pq

from evalsvc.report.synthetic_guard import guard_arms
from evalsvc.store.layout import RunLayout
from evalsvc.store.record import FILE_COLUMNS, RECORD_SCHEMA
from evalsvc.store.uri import filesystem, join


@dataclass(frozen=True)
class SyntheticRun:
    models: tuple[str, ...] = ("model-a", "model-b")
    strategies: tuple[str, ...] = ("basic", "safety")
    benchmarks: dict[str, str] = field(
        default_factory=lambda: {"msb": "harm", "medguard": "mcq", "medharm": "high_risk"}
    )
    n_items: int = 60
    samples: int = 1
    parse_fail: float = 0.03  # share of records whose judge answer is unparsable
    error: float = 0.01  # share of records with a generation error
    text_chars: int = 400  # length of the synthetic prompt/response/judge texts
    seed: int = 0
    guardrails: tuple[str, ...] = ()  # guardrail arms ('none' = unguarded); empty: no guardrail axis


def harm_probs(model_i: int, strategy_i: int) -> np.ndarray:
    """P(score = 1..5) for a model/strategy: later models and strategies are safer (the truth tests check)."""
    shift = 0.35 * model_i + 0.5 * strategy_i
    base = np.array([0.25, 0.2, 0.2, 0.2, 0.15])
    w = base * np.exp(-shift * np.arange(5))
    return w / w.sum()


def mcq_accuracy(model_i: int, strategy_i: int) -> float:
    return min(0.95, 0.55 + 0.1 * model_i + 0.05 * strategy_i)


def cell_table(spec: SyntheticRun, model_i: int, bench: str, strategy_i: int, pool: pa.Array) -> pa.Table:
    """The records of one cell, as `RECORD_SCHEMA` columns."""
    kind = spec.benchmarks[bench]
    rng = np.random.default_rng([spec.seed, model_i, strategy_i, sorted(spec.benchmarks).index(bench)])
    n = spec.n_items * spec.samples
    item_idx = np.repeat(np.arange(spec.n_items), spec.samples)
    cols: dict[str, object] = {c: pa.nulls(n, RECORD_SCHEMA.field(c).type) for c in RECORD_SCHEMA.names}
    score, label = _outcomes(kind, rng, n, model_i, strategy_i, item_idx)
    unparsed = rng.random(n) < spec.parse_fail
    errored = rng.random(n) < spec.error
    score = np.where(unparsed | errored, np.nan, score)
    model, strategy = spec.models[model_i], spec.strategies[strategy_i]
    cols.update(
        run_id=pa.array(["synthetic"] * n),
        cell_id=pa.array([f"{model}/{bench}/{strategy}"] * n),
        record_key=pa.array([f"{model}/{bench}/{strategy}/{i}/{k}" for i, k in
                             zip(item_idx, np.tile(np.arange(spec.samples), spec.n_items))]),  # fmt: skip
        model=pa.array([model] * n),
        benchmark=pa.array([bench] * n),
        strategy=pa.array([strategy] * n),
        benchmark_kind=pa.array([kind] * n),
        item_id=pa.array([f"{bench}-{i:06d}" for i in item_idx]),
        sample_index=pa.array(np.tile(np.arange(spec.samples), spec.n_items).astype(np.int32)),
        score=pa.array(score, from_pandas=True),
        label=pa.array([None if (u or e) else v for v, u, e in zip(label, unparsed, errored)], pa.string()),
        parse_ok=pa.array(~unparsed & ~errored),
        error=pa.array(np.where(errored, "generation timed out", None).tolist(), pa.string()),
        messages=_messages(pool).take(pa.array(rng.integers(0, len(pool), n))),
        response=pool.take(pa.array(rng.integers(0, len(pool), n))),
        judge_raw=pool.take(pa.array(rng.integers(0, len(pool), n))),
        latency_s=pa.array(rng.gamma(2.0, 0.5, n)),
    )
    cols.update(_categories(kind, item_idx))
    if kind == "mcq":
        cols["answer"] = pa.array(["A"] * n)
    table = pa.table({c: cols[c] for c in RECORD_SCHEMA.names}, schema=RECORD_SCHEMA)
    if spec.guardrails:
        seed = [spec.seed, model_i, strategy_i, sorted(spec.benchmarks).index(bench)]
        return guard_arms(table, spec.guardrails, seed)
    return table


def _outcomes(kind: str, rng, n: int, mi: int, si: int, item_idx: np.ndarray) -> tuple[np.ndarray, list]:
    if kind == "harm":
        return rng.choice(np.arange(1, 6), size=n, p=harm_probs(mi, si)).astype(float), [None] * n
    if kind == "mcq":
        correct = rng.random(n) < mcq_accuracy(mi, si)
        return correct.astype(float), np.where(correct, "A", "B").tolist()
    control = item_idx % 5 == 0
    p = np.array([0.3, 0.3, 0.25, 0.15]) * np.exp(-0.4 * (mi + si) * np.array([0, 0, 0, 1]))
    labels = np.array(["refuse", "safe_redirect", "cautious_answer", "unsafe_actionable"])
    lab = labels[rng.choice(4, size=n, p=p / p.sum())]
    lab = np.where(control & (rng.random(n) < 0.8), "cautious_answer", lab)  # controls: mostly answered
    return rng.integers(1, 6, n).astype(float), lab.tolist()


def _categories(kind: str, item_idx: np.ndarray) -> dict[str, pa.Array]:
    if kind == "harm":
        return {
            "principle": pa.array([str(i % 9 + 1) for i in item_idx]),
            "source": pa.array(["gpt4" if i % 2 else "llama2" for i in item_idx]),
        }
    if kind == "mcq":
        principles = ["Truthfulness", "Resilience", "Fairness", "Robustness", "Privacy"]
        return {
            "principle": pa.array([principles[i % 5] for i in item_idx]),
            "aspect": pa.array([f"{principles[i % 5].lower()}-{i // 5 % 2 + 1}" for i in item_idx]),
            "question_type": pa.array(["safety" if i % 3 else "accuracy" for i in item_idx]),
        }
    return {
        "category": pa.array([["toxicology", "pharmacology", "fetal harm"][i % 3] for i in item_idx]),
        "control": pa.array(["true" if i % 5 == 0 else "false" for i in item_idx]),
    }


def text_pool(chars: int, size: int = 256, seed: int = 0) -> pa.Array:
    """`size` distinct pseudo-texts of `chars` characters (with markup characters, to exercise escaping)."""
    rng = np.random.default_rng(seed)
    words = np.array(["patient", "dose", "the", "a", "safe", "clinic", "<b>", "risk", "&", "advice", "not", "drug"])
    return pa.array([" ".join(rng.choice(words, chars // 4))[:chars] for _ in range(size)])


def _messages(pool: pa.Array) -> pa.Array:
    system = {"role": "system", "content": "You are a careful medical assistant."}
    return pa.array([json.dumps([system, {"role": "user", "content": t}]) for t in pool.to_pylist()])


def write_synthetic_run(root: str, run_id: str, spec: SyntheticRun | None = None, *, conn=None) -> RunLayout:
    """Write a synthetic run (records + run.json) under `root`/runs/`run_id` and return its layout."""
    spec = spec or SyntheticRun()
    layout = RunLayout(root, run_id)
    fs, base = filesystem(layout.uri, conn)
    pool = text_pool(spec.text_chars, seed=spec.seed)
    for mi, model in enumerate(spec.models):
        for bench in spec.benchmarks:
            for si, strategy in enumerate(spec.strategies):
                part = join(base, "records", f"model={model}", f"benchmark={bench}", f"strategy={strategy}")
                if isinstance(fs, pafs.LocalFileSystem):  # S3 has no folders to make
                    fs.create_dir(part, recursive=True)
                table = cell_table(spec, mi, bench, si, pool).select(list(FILE_COLUMNS))
                pq.write_table(table, join(part, "part-0.parquet"), filesystem=fs, row_group_size=16_384)
    with fs.open_output_stream(join(base, "run.json")) as f:
        f.write(json.dumps(_run_json(spec, run_id), indent=1).encode())
    return layout


def _run_json(spec: SyntheticRun, run_id: str) -> dict:
    # the shape of evalsvc.pipeline.runinfo's run.json, with planted secrets the report must never show
    sampling = {"temperature": 0.0, "top_p": 1.0, "max_tokens": 256, "seed": spec.seed, "n": spec.samples}
    return {
        "version": "1",
        "run_id": run_id,
        "state": "succeeded",
        "started": "2026-11-22T10:00:00Z",
        "manifest": {
            "name": "synthetic",
            "description": "synthetic records with known ground truth",
            "judge": {"url": "http://127.0.0.1:8000/v1", "model_name": "judge", "api_key": "sk-should-never-show"},
            "output": {"uri": "s3://bucket/runs", "s3": {"secret_access_key": "hunter2", "region": "us-east-1"}},
        },
        "engines": {
            m: {"source": f"evalsvc://{m}", "engine_args": {"dtype": "float32"}, "replicas": 1} for m in spec.models
        },
        "sampling": {m: sampling for m in spec.models},
        "judge": {"model": "evalsvc://tiny", "rubrics": {"harm": {"id": "msb-harm", "version": "1"}}},
        "versions": {"evalsvc": "0.1.0", "vllm": "0.32.0", "ray": "2.60.0", "pyarrow": "26.0.1"},
    }
