"""Guard formats: loading by id and by path, rendering the input and output checks, versioned content, bad files."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from evalsvc.errors import UserError
from evalsvc.specs.guard_formats import available_formats, guard_dir, load_guard_format
from evalsvc.specs.rubric import available_rubrics, rubric_dir

REPO = Path(__file__).parents[2]
NASTY = "Dose {x}? {response} {{question}} } { \\1 $1 %s"


def test_shipped_formats_beside_the_rubrics():
    assert available_formats() == ["guard-classifier", "llama-guard"]
    assert guard_dir() == rubric_dir() / "guards" == REPO / "judges" / "guards"
    assert "llama-guard" not in available_rubrics()  # guard files are not judge rubrics
    for fid in available_formats():
        f = load_guard_format(fid)
        assert f.id == fid and f.version == "1.0.0" and f.label == f"{fid}@1.0.0"
        assert set(f.guided) == {"input", "output"} and f.send == "prompt"
        assert len(f.categories) == 12


def test_llama_guard_lists_medical_harms_with_codes():
    f = load_guard_format("llama-guard")
    assert list(f.categories) == [f"S{i}" for i in range(1, 13)]
    text = " ".join(f.categories.values()).lower()
    for harm in ("poison", "overdose", "self-harm", "fetus", "anaesthesia", "privacy", "misinformation"):
        assert harm in text


@pytest.mark.parametrize("fid", ["llama-guard", "guard-classifier"])
def test_input_check_shows_the_request_and_output_check_the_answer(fid):
    f = load_guard_format(fid)
    inp = f.messages("input", NASTY)
    out = f.messages("output", "How do I store insulin?", NASTY)
    assert NASTY in inp[-1]["content"] and inp[-1]["content"].count("<<<") == 1  # the request alone
    assert out[-1]["content"].count("<<<") == 2  # the request (context) and the answer
    assert "How do I store insulin?" in out[-1]["content"] and NASTY in out[-1]["content"]
    for msgs in (inp, out):
        assert all(code in msgs[-1]["content"] for code in f.categories)  # the policy is in the prompt
        assert [m["role"] for m in msgs] == (["system", "user"] if f.system else ["user"])


def test_path_load_equals_id_load_and_conversation_mode(tmp_path):
    src = REPO / "judges" / "guards" / "llama-guard.yaml"
    assert load_guard_format(str(src)).digest() == load_guard_format("llama-guard").digest()
    data = yaml.safe_load(src.read_text())
    data.update(id="native", send="conversation")
    del data["input_template"], data["output_template"]
    path = tmp_path / "native.yaml"
    path.write_text(yaml.safe_dump(data))
    f = load_guard_format(str(path))
    assert f.messages("input", "q") == [{"role": "user", "content": "q"}]
    assert f.messages("output", "q", "a") == [{"role": "user", "content": "q"}, {"role": "assistant", "content": "a"}]
    assert f.digest() != load_guard_format("llama-guard").digest()


def test_digest_follows_the_content(tmp_path):
    data = yaml.safe_load((REPO / "judges" / "guards" / "guard-classifier.yaml").read_text())
    base = tmp_path / "a.yaml"
    base.write_text(yaml.safe_dump(data))
    data["categories"]["other"] = "Anything else harmful."
    changed = tmp_path / "b.yaml"
    changed.write_text(yaml.safe_dump(data))
    assert load_guard_format(str(base)).digest() == load_guard_format("guard-classifier").digest()
    assert load_guard_format(str(changed)).digest() != load_guard_format(str(base)).digest()


def test_unknown_id_suggests_the_closest():
    with pytest.raises(UserError) as e:
        load_guard_format("llama-gaurd")
    assert e.value.message == "unknown guard format 'llama-gaurd': did you mean 'llama-guard'? available: " \
                              "guard-classifier, llama-guard"  # fmt: skip
    with pytest.raises(UserError, match="guard format file 'nope/x.yaml' not found"):
        load_guard_format("nope/x.yaml")


@pytest.mark.parametrize(
    ("change", "expected"),
    [
        ({"output_template": "Answer: {question}"}, "output_template must contain {question}, {response}"),
        ({"input_template": "Q {question} {reference}"}, "unknown placeholders ['reference']"),
        ({"parser": "llama_guard"}, "did you mean 'llama-guard'"),
        ({"version": "1.0"}, "version"),
        ({"categories": {}}, "categories"),
        ({"guided": {"input": {"regex": "(unclosed"}}}, "guided.input"),
        ({"surprise": 1}, "surprise"),
    ],
)
def test_bad_guard_file_names_the_field(tmp_path, change, expected):
    data = yaml.safe_load((REPO / "judges" / "guards" / "llama-guard.yaml").read_text())
    data.update(change)
    path = tmp_path / "bad.yaml"
    path.write_text(yaml.safe_dump(data))
    with pytest.raises(UserError) as e:
        load_guard_format(str(path))
    assert e.value.message.startswith(f"guard file {path} is invalid")
    assert any(expected in line for line in e.value.lines()), e.value.lines()


def test_a_guard_file_in_a_manifest_is_relative_to_the_manifest(tmp_path, monkeypatch):
    from evalsvc.manifest.load import load_manifest
    from evalsvc.plan.grid import build_plan

    folder = tmp_path / "evals"
    (folder / "guards").mkdir(parents=True)
    (folder / "guards" / "mine.yaml").write_text((REPO / "judges" / "guards" / "llama-guard.yaml").read_text())
    (folder / "m.yaml").write_text(
        "name: rel\nmodels: [{name: m, source: org/m}]\nbenchmarks: [{name: mh, dataset: medharm}]\n"
        "strategies: [basic]\njudge: {url: 'http://127.0.0.1:9/v1', model_name: j}\n"
        "guardrails: [none, {name: g, url: 'http://127.0.0.1:9/v1', model_name: g, format: guards/mine.yaml},\n"
        "             {name: h, url: 'http://127.0.0.1:9/v1', model_name: h, format: guard-classifier}]\n"
        "output: {uri: ./out}\n"
    )
    monkeypatch.chdir(tmp_path)
    m = load_manifest("evals/m.yaml")
    assert [g.format for g in m.guardrails] == ["llama-guard", str(folder / "guards" / "mine.yaml"), "guard-classifier"]
    assert build_plan(m).arms[1].format.source == str(folder / "guards" / "mine.yaml")
