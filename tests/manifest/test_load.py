"""Reading manifests: files, YAML, every problem reported at once as "field.path: message", env references.

The bad-manifest corpus (tests/manifest/bad/) is checked here at the library level and in tests/cli through the CLI.
"""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from evalsvc.envref import resolve_env
from evalsvc.errors import UserError
from evalsvc.manifest.load import MAX_MANIFEST_BYTES, load_manifest, parse_manifest, validate_manifest
from evalsvc.manifest.schema import Manifest
from evalsvc.plan.grid import build_plan

from .conftest import BAD, MANIFESTS

GOOD = """
name: tiny
models:
  - {name: m, source: evalsvc://tiny}
benchmarks:
  - {name: g, dataset: medguard}
strategies: [basic]
output: {uri: ./runs}
"""


def problems(fn, *args) -> list[str]:
    with pytest.raises(UserError) as e:
        fn(*args)
    assert e.value.exit_code == 2
    return e.value.lines()


def expectations(path: Path) -> list[str]:
    lines = path.read_bytes().decode("utf-8", errors="replace").splitlines()
    return [line.removeprefix("# expect: ") for line in lines if line.startswith("# expect: ")]


def test_corpus_is_large_and_every_file_says_what_to_expect():
    files = sorted(BAD.glob("*.yaml"))
    assert len(files) >= 40
    assert all(expectations(f) for f in files), [f.name for f in files if not expectations(f)]


@pytest.mark.parametrize("path", sorted(BAD.glob("*.yaml")), ids=lambda p: p.stem)
def test_bad_manifest_is_rejected_with_its_field_path(path: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    monkeypatch.chdir(tmp_path)  # relative benchmark paths in the corpus must not exist
    text = "\n".join(problems(lambda: build_plan(load_manifest(path))))
    for expected in expectations(path):
        assert expected in text


def test_missing_file_and_folder(tmp_path: Path):
    assert "no such manifest file" in problems(load_manifest, tmp_path / "nope.yaml")[0]
    assert "no such manifest file" in problems(load_manifest, tmp_path)[0]


def test_truly_empty_file(tmp_path: Path):
    (tmp_path / "e.yaml").write_text("")
    assert "a manifest is a YAML mapping" in problems(load_manifest, tmp_path / "e.yaml")[0]


def test_oversized_file_is_refused_before_parsing(tmp_path: Path):
    big = tmp_path / "big.yaml"
    big.write_text("# " + "x" * MAX_MANIFEST_BYTES + "\n")
    assert "larger than" in problems(load_manifest, big)[0]


def test_yaml_error_names_line_and_column():
    (line,) = problems(parse_manifest, "name: x\nmodels: [\n", "m.yaml")
    assert line.startswith("m.yaml: line 3, column 1 is not valid YAML")


def test_duplicate_keys_are_refused_at_any_depth_but_merge_keys_work():
    twice = GOOD.replace("source: evalsvc://tiny", "source: a, source: b")
    assert "duplicate key 'source'" in problems(parse_manifest, twice)[0]
    assert "duplicate key 'name'" in problems(parse_manifest, "name: a\n" + GOOD)[0]
    merged = """
defaults: &args {dtype: float32, max_model_len: 512}
"""
    # a YAML merge key with an override is legitimate YAML, not a duplicate; the anchor host is an unknown key
    text = GOOD.replace("source: evalsvc://tiny}", "source: x, engine_args: {<<: *args, max_model_len: 1024}}")
    lines = problems(parse_manifest, merged + text)
    assert lines[1:] == ["defaults: unknown key: remove it or check its spelling against `evalsvc validate --help`"]
    m = parse_manifest(text.replace("*args", "{dtype: float32, max_model_len: 512}"))
    assert m.models[0].engine_args.max_model_len == 1024 and m.models[0].engine_args.dtype == "float32"


def test_all_problems_are_reported_at_once_with_a_matching_count():
    data = yaml.safe_load(GOOD)
    data["name"] = "Bad Name"
    data["models"][0]["replicas"] = 0
    data["benchmarks"][0]["select"] = {"limit": 1, "sample": 1}
    data["sampling"] = {"temperature": -1, "n": 0}
    data["output"] = {"uri": "http://x/runs"}
    data["typo"] = True
    head, *lines = problems(validate_manifest, data, "grid.yaml")
    assert head == f"grid.yaml: {len(lines)} problem(s) in the manifest"
    assert [line.split(":")[0] for line in lines] == [
        "name", "models.0.replicas", "benchmarks.0.select", "sampling.temperature", "sampling.n", "output.uri", "typo",
    ]


def test_strategy_errors_show_only_the_form_the_user_wrote():
    data = yaml.safe_load(GOOD)
    data["strategies"] = ["basic", {"name": "c", "user_template": "x"}, 3]
    _, *lines = problems(validate_manifest, data)
    assert lines == [
        "strategies.1.user_template: must contain the {question} placeholder",
        "strategies.2: a strategy is a built-in name (basic, cot, safety, cot_safety) or a mapping "
        "{name, system, user_template, answer_format}",
    ]


def test_messages_never_echo_literal_secrets():
    data = yaml.safe_load(GOOD)
    data["output"] = {"uri": "s3://bucket/x", "s3": {"secret_access_key": "wJalrXUtnFEMI/K7MDENG"}}
    data["judge"] = {"url": "https://j.example/v1", "model_name": "j", "api_key": "sk-live-123"}
    text = "\n".join(problems(validate_manifest, data))
    assert "output.s3.secret_access_key" in text and "judge.api_key: `api_key`" in text
    assert "wJalrXUtnFEMI" not in text and "sk-live-123" not in text


def test_non_mapping_data_to_validate_manifest():
    assert problems(validate_manifest, ["a"])[1].startswith("(top level): Input should be a valid dictionary")


def test_resolve_env(monkeypatch: pytest.MonkeyPatch):
    monkeypatch.setenv("EVALSVC_TEST_SECRET", "s3cr3t")
    monkeypatch.delenv("EVALSVC_TEST_UNSET", raising=False)
    assert resolve_env("${EVALSVC_TEST_SECRET}", "output.s3.secret_access_key") == "s3cr3t"
    assert resolve_env(None, "f") is None
    assert resolve_env("http://127.0.0.1:8333", "output.s3.endpoint_url") == "http://127.0.0.1:8333"
    assert resolve_env("$EVALSVC_TEST_SECRET", "f") == "$EVALSVC_TEST_SECRET"  # only the ${VAR} form is a reference
    (line,) = problems(resolve_env, "${EVALSVC_TEST_UNSET}", "output.s3.access_key_id")
    assert line == "output.s3.access_key_id: environment variable EVALSVC_TEST_UNSET is not set; export it before running"


def test_manifest_keeps_env_references_unresolved(monkeypatch: pytest.MonkeyPatch):
    monkeypatch.setenv("S3_ENDPOINT_URL", "http://10.0.0.5:9000")
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "AKIAEXAMPLEKEY")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "very-secret-value")
    m = load_manifest(MANIFESTS / "medsafety-sweep.yaml")
    assert m.output.s3.endpoint_url == "${S3_ENDPOINT_URL}"
    assert m.output.s3.secret_access_key == "${AWS_SECRET_ACCESS_KEY}"
    dumped = m.model_dump_json()
    assert "very-secret-value" not in dumped and "AKIAEXAMPLEKEY" not in dumped and "10.0.0.5" not in dumped


def test_env_references_need_not_be_set_to_validate(monkeypatch: pytest.MonkeyPatch):
    for var in ("S3_ENDPOINT_URL", "AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY"):
        monkeypatch.delenv(var, raising=False)
    assert load_manifest(MANIFESTS / "medsafety-sweep.yaml").output.uri == "s3://medsafety-evals/sweeps"


@pytest.mark.parametrize("path", sorted(MANIFESTS.glob("*.yaml")), ids=lambda p: p.stem)
def test_example_manifests_round_trip(path: Path):
    m = load_manifest(path)
    again = parse_manifest(yaml.safe_dump(m.model_dump(mode="json", exclude_unset=True), sort_keys=False))
    assert again == m
    assert Manifest.model_validate(m.model_dump()) == m  # defaults filled in are themselves valid


def test_parse_manifest_accepts_a_minimal_manifest():
    m = parse_manifest(GOOD)
    assert (m.name, m.models[0].name, m.benchmarks[0].kind, m.strategies) == ("tiny", "m", "mcq", ["basic"])


def test_relative_inputs_are_relative_to_the_manifest_and_outputs_to_the_cwd(tmp_path, monkeypatch):
    folder = tmp_path / "evals"
    (folder / "data").mkdir(parents=True)
    (folder / "data" / "q.jsonl").write_text('{"question": "q1"}\n')
    (folder / "m.yaml").write_text(
        "name: rel\nmodels:\n  - {name: base, source: evalsvc://tiny}\n  - {name: ft, base: base, adapter: adapters/ft}\n"
        "benchmarks:\n  - {name: q, path: data/q.jsonl, format: harm}\n  - {name: s3q, path: s3://bucket/q.jsonl, format: harm}\n"
        "strategies: [basic]\njudge:\n  url: http://127.0.0.1:1/v1\n  model_name: j\n"
        "  calibration: {path: ./cal.jsonl, kind: harm}\noutput: {uri: ./out}\n"
    )
    monkeypatch.chdir(tmp_path)
    m = load_manifest("evals/m.yaml")
    assert m.benchmarks[0].path == str(folder / "data" / "q.jsonl")
    assert m.benchmarks[1].path == "s3://bucket/q.jsonl"
    assert m.models[1].adapter == str(folder / "adapters" / "ft")
    assert m.judge.calibration.path == str(folder / "cal.jsonl")
    assert m.output.uri == "./out"
