"""The manifest schema field by field: bounds, types, defaults, names, URIs, env references and cross-field rules.

The corpus in tests/manifest/bad/ checks the messages a user sees; these tests check the models themselves.
"""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from evalsvc.manifest.schema import (
    ENV_REF_RE,
    Benchmark,
    ColumnMap,
    CustomStrategy,
    EngineArgs,
    Judge,
    Manifest,
    Model,
    Output,
    Resources,
    S3Options,
    Sampling,
    SamplingOverride,
    Selection,
    ServedModel,
)

# (model, field, accepted values, rejected values): every bounded or typed field, both sides of each bound
FIELDS = [
    (Sampling, "temperature", [0.0, 0.7, 5.0], [-0.01, 5.01, "hot", None]),
    (Sampling, "top_p", [0.01, 1.0], [0.0, 1.01]),
    (Sampling, "max_tokens", [1, 32768], [0, 32769, 12.5]),
    (Sampling, "seed", [0, 2**40], [-1]),
    (Sampling, "n", [1, 64], [0, 65]),
    (SamplingOverride, "temperature", [None, 0.0, 5.0], [-1.0, 6.0]),
    (SamplingOverride, "top_p", [None, 1.0], [0.0]),
    (SamplingOverride, "max_tokens", [None, 1], [0]),
    (SamplingOverride, "seed", [None, 0], [-5]),
    (SamplingOverride, "n", [None, 64], [65]),
    (EngineArgs, "tensor_parallel_size", [1, 64], [0, 65]),
    (EngineArgs, "max_model_len", [None, 16, 131072], [15]),
    (EngineArgs, "gpu_memory_utilization", [None, 0.01, 1.0], [0.0, 1.5]),
    (EngineArgs, "enforce_eager", [None, True, False], ["sometimes"]),
    (Selection, "limit", [None, 1, 10_000_000], [0, -3, 10_000_001]),
    (Selection, "sample", [None, 1, 10_000_000], [0, 10**12]),
    (Selection, "seed", [0, 7], [-1]),
    (Model, "replicas", [1, 1024], [0, 1025]),
    (Model, "engine", ["vllm"], ["tgi", "VLLM"]),
    (ServedModel, "replicas", [1, 256], [0, 257]),
    (ServedModel, "max_replicas", [None, 1, 256], [0, 257]),
    (Resources, "cpus_per_replica", [0.5, 256], [0, -1, 257]),
    (Resources, "gpus_per_replica", [0, 0.25, 64], [-0.5, 65]),
    (Resources, "max_concurrent_models", [1, 256], [0, 257]),
    (Resources, "batch_size", [1, 4096], [0, 4097]),
    (Resources, "max_concurrent_batches", [1, 256], [0, 257]),
]
REQUIRED = {ServedModel: {"source": "evalsvc://tiny"}, Model: {"name": "m", "source": "org/model"}}


@pytest.mark.parametrize(("cls", "field", "good", "bad"), FIELDS, ids=[f"{c.__name__}.{f}" for c, f, _, _ in FIELDS])
def test_field_bounds(cls, field, good, bad):
    for value in good:
        assert getattr(cls(**REQUIRED.get(cls, {}), **{field: value}), field) == value
    for value in bad:
        with pytest.raises(ValidationError) as e:
            cls(**REQUIRED.get(cls, {}), **{field: value})
        assert e.value.errors()[0]["loc"] == (field,), value


JUDGE_URL = {"url": "http://127.0.0.1:8000/v1", "model_name": "judge"}


def test_judge_numeric_fields():
    assert Judge(**JUDGE_URL, temperature=2.0, max_tokens=8, concurrency=4096).max_tokens == 8
    for bad in ({"temperature": 2.5}, {"max_tokens": 7}, {"max_tokens": 8193}, {"concurrency": 0}):
        with pytest.raises(ValidationError):
            Judge(**JUDGE_URL, **bad)


def test_defaults():
    s = Sampling()
    assert (s.temperature, s.top_p, s.max_tokens, s.seed, s.n) == (0.0, 1.0, 256, 0, 1)
    r = Resources()
    assert (r.cpus_per_replica, r.gpus_per_replica, r.max_concurrent_models, r.batch_size) == (1.0, 0.0, 1, 64)
    m = Model(name="m", source="org/model")
    assert (m.engine, m.replicas, m.revision, m.sampling, m.base, m.adapter) == ("vllm", 1, None, None, None, None)
    assert m.engine_args.tensor_parallel_size == 1 and m.engine_args.dtype is None
    j = Judge(**JUDGE_URL)
    assert (j.temperature, j.max_tokens, j.guided, j.concurrency) == (0.0, 512, True, 16)
    assert (j.app_name, j.rubrics, j.model, j.api_key) == ("judge_app", {}, None, None)
    b = Benchmark(name="b", dataset="medguard")
    assert (b.split, b.filters, b.select, b.version) == (None, {}, Selection(), None)
    assert ColumnMap().text == "question" and ColumnMap().categories == {}
    assert Output(uri="./runs").s3 == S3Options() and S3Options().region == "us-east-1"
    assert CustomStrategy(name="c").user_template == "{question}"


@pytest.mark.parametrize("name", ["a", "m0", "llama-3.1-8b", "qwen2.5_7b", "x" * 63, "0abc"])
def test_valid_names(name):
    assert Model(name=name, source="x").name == name
    assert Benchmark(name=name, dataset="medharm").name == name
    assert CustomStrategy(name=name).name == name


@pytest.mark.parametrize("name", ["", "../x", "a/b", "A", "Llama", "-x", ".hidden", "_x", "a b", "x" * 64, "a\\b", "é"])
def test_invalid_names(name):
    for make in (lambda: Model(name=name, source="x"), lambda: Benchmark(name=name, dataset="medharm")):
        with pytest.raises(ValidationError):
            make()


def test_every_section_forbids_unknown_keys():
    sections = [
        (Sampling, {}), (SamplingOverride, {}), (Model, {"name": "m", "source": "x"}), (Selection, {}), (ColumnMap, {}),
        (Benchmark, {"name": "b", "dataset": "medguard"}), (CustomStrategy, {"name": "c"}),
        (ServedModel, {"source": "x"}), (Judge, JUDGE_URL), (S3Options, {}), (Output, {"uri": "./r"}), (Resources, {}),
    ]
    for cls, required in sections:
        with pytest.raises(ValidationError) as e:
            cls(**required, typo_key=1)
        assert e.value.errors()[0]["type"] == "extra_forbidden", cls


def test_engine_args_pass_other_vllm_kwargs_through():
    args = EngineArgs(dtype="bfloat16", max_num_seqs=64, kv_cache_dtype="fp8")
    assert args.model_dump(exclude_none=True) == {
        "tensor_parallel_size": 1, "dtype": "bfloat16", "max_num_seqs": 64, "kv_cache_dtype": "fp8"
    }


def test_models_are_frozen():
    m = Model(name="m", source="x")
    with pytest.raises(ValidationError):
        m.name = "other"  # type: ignore[misc]


def test_model_forms():
    assert Model(name="lora", base="m", adapter="./a").source is None
    with pytest.raises(ValidationError, match="set `source`"):
        Model(name="m", source="")
    with pytest.raises(ValidationError, match="needs both `base`"):
        Model(name="l", adapter="./a")
    with pytest.raises(ValidationError, match="remove `source`"):
        Model(name="l", base="m", adapter="./a", source="x")


def test_benchmark_forms_and_kind():
    assert Benchmark(name="b", dataset="medsafetybench").kind == "harm"
    assert Benchmark(name="b", dataset="medguard").kind == "mcq"
    assert Benchmark(name="b", dataset="medharm").kind == "high_risk"
    custom = Benchmark(name="b", path="s3://bucket/q.parquet", format="mcq", columns=ColumnMap(text="q", answer="a"))
    assert custom.kind == "mcq" and custom.columns.text == "q"
    with pytest.raises(ValidationError, match="for custom files"):
        Benchmark(name="b", dataset="medguard", format="mcq")


def test_filter_values_from_yaml_numbers_and_booleans_become_text():
    b = Benchmark(name="b", dataset="medharm", filters={"principle": [1, "2"], "control": [True, False]})
    assert b.filters == {"principle": ["1", "2"], "control": ["true", "false"]}
    with pytest.raises(ValidationError):
        Benchmark(name="b", dataset="medharm", filters={"principle": [1.5]})


def test_selection_rules():
    assert Selection(sample=5, per="principle", seed=3).per == "principle"
    with pytest.raises(ValidationError, match="either `limit` or `sample`"):
        Selection(limit=1, sample=1)
    with pytest.raises(ValidationError, match="`per` needs"):
        Selection(per="principle")


@pytest.mark.parametrize(
    ("template", "ok"),
    [("{question}", True), ("Q: {question}\n{options}", True), ("{options} {question} {question}", True),
     ("no placeholder", False), ("{options}", False), ("{question} {context}", False), ("{Question}", False)],
)
def test_custom_strategy_template(template, ok):
    if ok:
        assert CustomStrategy(name="c", user_template=template).user_template == template
    else:
        with pytest.raises(ValidationError):
            CustomStrategy(name="c", user_template=template)


@pytest.mark.parametrize("ref", ["${A}", "${AWS_SECRET_ACCESS_KEY}", "${_x1}"])
def test_env_ref_accepted(ref):
    assert ENV_REF_RE.match(ref)
    assert S3Options(access_key_id=ref, secret_access_key=ref).access_key_id == ref
    assert Judge(**JUDGE_URL, api_key=ref).api_key == ref


@pytest.mark.parametrize("literal", ["AKIAIOSFODNN7EXAMPLE", "$AWS_KEY", "${1A}", "${A}x", "x${A}", "${A B}", "${}", ""])
def test_literal_credentials_rejected(literal):
    assert not ENV_REF_RE.match(literal)
    with pytest.raises(ValidationError, match="env reference"):
        S3Options(secret_access_key=literal)
    with pytest.raises(ValidationError, match="env reference"):
        Judge(**JUDGE_URL, api_key=literal)


def test_judge_backends():
    assert Judge(model=ServedModel(source="evalsvc://smollm2")).url is None
    assert Judge(url="https://judge.example/v1", model_name="m").model is None
    for bad in ({}, {"url": "http://x/v1", "model_name": "m", "model": {"source": "x"}}, {"url": "http://x/v1"},
                {"url": "judge.example/v1", "model_name": "m"}, {"url": "http:// x", "model_name": "m"}):
        with pytest.raises(ValidationError):
            Judge(**bad)


def test_judge_rubrics_keys_are_judged_kinds():
    assert Judge(**JUDGE_URL, rubrics={"harm": "msb-harm", "high_risk": "./my-rubric.yaml"}).rubrics["harm"] == "msb-harm"
    for key in ("mcq", "harmful", "Harm"):
        with pytest.raises(ValidationError):
            Judge(**JUDGE_URL, rubrics={key: "msb-harm"})


@pytest.mark.parametrize(
    "uri", ["./runs", "runs", "/data/evals", "~/evals", "s3://bucket", "s3://my-bucket.eu/a/b/", "s3://abc/x..y"]
)
def test_output_uri_accepted(uri):
    assert Output(uri=uri).uri == uri


@pytest.mark.parametrize(
    "uri",
    ["", "  ", "http://host/runs", "https://host/runs", "gs://bucket/x", "file:///tmp/x", "s3://Bucket/x", "s3://ab",
     "s3://-bucket/x", "s3://bucket_name/x", "s3:///x", "../runs", "runs/../../etc", "s3://bucket/a/../b"],
)
def test_output_uri_rejected(uri):
    with pytest.raises(ValidationError):
        Output(uri=uri)


MINIMAL = {
    "name": "m",
    "models": [{"name": "a", "source": "x"}],
    "benchmarks": [{"name": "g", "dataset": "medguard"}],
    "strategies": ["basic"],
    "output": {"uri": "./runs"},
}


def test_mcq_only_manifest_needs_no_judge():
    m = Manifest.model_validate(MINIMAL)
    assert m.judge is None and m.sampling == Sampling() and m.resources == Resources()


def test_strategies_mix_builtins_and_custom():
    m = Manifest.model_validate({**MINIMAL, "strategies": ["basic", {"name": "mine", "system": "Be careful."}]})
    assert m.strategies[0] == "basic" and isinstance(m.strategies[1], CustomStrategy)


def test_cross_field_problems_are_one_per_line():
    data = {
        **MINIMAL,
        "models": [
            {"name": "a", "source": "x"}, {"name": "a", "source": "y"}, {"name": "l", "base": "zz", "adapter": "./a"}
        ],
        "benchmarks": [{"name": "h", "dataset": "medharm"}],
        "strategies": ["cot", "cot"],
    }
    with pytest.raises(ValidationError) as e:
        Manifest.model_validate(data)
    lines = e.value.errors()[0]["msg"].removeprefix("Value error, ").splitlines()
    assert len(lines) == 4
    assert lines[0].startswith("models: duplicate names") and lines[1].startswith("strategies: duplicate names")
    assert lines[2].startswith("models.2.base:") and lines[3].startswith("benchmarks.0 (h) is judged (high_risk)")
