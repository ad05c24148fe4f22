"""Guard formats: loading by id and by path, rendering the input and output checks, versioned content, bad files."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from evalsvc.errors import UserError
from evalsvc.manifest.judging import GUARD_FORMATS
from evalsvc.specs.guard_formats import available_formats, guard_dir, load_guard_format
from evalsvc.specs.guard_labels import QWEN3GUARD_CATEGORIES
from evalsvc.specs.rubric import available_rubrics, rubric_dir

REPO = Path(__file__).parents[2]
NASTY = "Dose {x}? {response} {{question}} } { \\1 $1 %s"


SHIPPED = {  # id -> (parser, send, number of categories, the manifest options it reads)
    "granite-guardian": ("yes-no", "conversation", 7, {"risk", "threshold"}),
    "guard-classifier": ("guard-classifier", "prompt", 12, set()),
    "llama-guard": ("llama-guard", "prompt", 12, set()),
    "llama-guard-3": ("llama-guard", "conversation", 14, set()),
    "qwen3guard": ("qwen3guard", "conversation", 9, {"controversial"}),
    "shieldgemma": ("yes-no", "conversation", 5, {"policies", "threshold"}),
    "wildguard": ("wildguard", "prompt", 0, set()),
}


def test_shipped_formats_beside_the_rubrics():
    assert available_formats() == sorted(SHIPPED)
    assert set(GUARD_FORMATS) == set(SHIPPED)  # the manifest's list of ids is the shipped files
    assert guard_dir() == rubric_dir() / "guards" == REPO / "judges" / "guards"
    assert "llama-guard" not in available_rubrics()  # guard files are not judge rubrics
    for fid, (parser, send, n_categories, options) in SHIPPED.items():
        f = load_guard_format(fid)
        assert f.id == fid and f.version == "1.0.0" and f.label == f"{fid}@1.0.0"
        assert set(f.guided) == {"input", "output"} and (f.parser, f.send) == (parser, send)
        assert len(f.categories) == n_categories and f.option_names() == options


def test_llama_guard_3_names_specialized_advice():
    f = load_guard_format("llama-guard-3")
    assert list(f.categories) == [f"S{i}" for i in range(1, 15)]
    assert f.category_name("S6") == "specialized_advice" and "medical" in f.categories["S6"]
    assert set(f.names) == set(f.categories)  # every code has a name in records
    assert load_guard_format("llama-guard").category_name("S6") == "S6"  # our own prompt's codes stay codes


def test_qwen3guard_lists_the_categories_its_judge_reads():
    assert tuple(load_guard_format("qwen3guard").categories) == QWEN3GUARD_CATEGORIES


@pytest.mark.parametrize("fid", ["llama-guard-3", "qwen3guard", "granite-guardian"])
def test_conversation_formats_send_the_raw_turns(fid):
    f = load_guard_format(fid)
    assert f.messages("input", NASTY) == [{"role": "user", "content": NASTY}]
    turns = [{"role": "user", "content": "q"}, {"role": "assistant", "content": NASTY}]
    assert f.messages("output", "q", NASTY) == turns


def test_granite_guardian_names_the_risk_for_its_chat_template():
    f = load_guard_format("granite-guardian")
    assert f.request_fields("harm") == {"chat_template_kwargs": {"guardian_config": {"risk_name": "harm"}}}
    assert f.request_fields("violence")["chat_template_kwargs"]["guardian_config"]["risk_name"] == "violence"
    assert load_guard_format("llama-guard").request_fields("harm") == {}


def test_shieldgemma_sends_one_policy_per_call_as_the_guideline():
    f = load_guard_format("shieldgemma")
    assert f.per_category and f.uses("policy")
    for policy, text in f.categories.items():
        assert f.request_fields(policy) == {"chat_template_kwargs": {"guideline": text}}
        assert text.startswith('"No ')  # ShieldGemma's guideline shape: "No <harm>": <what it forbids>
    assert f.messages("output", "q", "a", "medical_harm")[-1] == {"role": "assistant", "content": "a"}


def test_wildguard_input_check_shows_an_empty_response():
    f = load_guard_format("wildguard")
    inp, out = f.messages("input", "Q1")[-1]["content"], f.messages("output", "Q1", "A1")[-1]["content"]
    assert inp.startswith("[INST]") and inp.endswith("Answers: [/INST]") and "Human user:\nQ1\n" in inp
    assert inp == out.replace("AI assistant:\nA1\n", "AI assistant:\n\n")
    assert f.categories == {} and not f.system


def test_system_message_may_name_the_risk(tmp_path):
    data = yaml.safe_load((REPO / "judges" / "guards" / "granite-guardian.yaml").read_text())
    data.update(id="granite-ollama", system="{risk}", chat_template_kwargs={})
    path = tmp_path / "g.yaml"
    path.write_text(yaml.safe_dump(data))
    f = load_guard_format(str(path))
    assert f.messages("input", "q", subject="jailbreak") == [{"role": "system", "content": "jailbreak"},
                                                             {"role": "user", "content": "q"}]  # fmt: skip
    assert f.option_names() == {"risk", "threshold"} and f.request_fields("harm") == {}


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
                              + ", ".join(sorted(SHIPPED))  # fmt: skip
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
        ({"per_category": True}, "per_category: true asks one call per category and needs a {policy} placeholder"),
        ({"system": "Judge under {policy}."}, "needs a {policy} placeholder (and {policy} needs per_category: true)"),
        ({"system": "{reference}"}, "system / chat_template_kwargs: unknown placeholders ['reference']"),
        ({"chat_template_kwargs": {"x": "{nope}"}}, "unknown placeholders ['nope']"),
        ({"names": {"S99": "nowhere"}}, "names: ['S99'] are not among the categories"),
        ({"names": {"S6": "Specialized Advice"}}, "names must be lower_snake_case"),
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


def test_an_empty_category_list_is_refused_where_the_prompt_lists_categories(tmp_path):
    data = yaml.safe_load((REPO / "judges" / "guards" / "shieldgemma.yaml").read_text())
    data["categories"] = {}
    path = tmp_path / "bad.yaml"
    path.write_text(yaml.safe_dump(data))
    with pytest.raises(UserError) as e:
        load_guard_format(str(path))
    assert any("categories: empty, but the format lists them" in line for line in e.value.lines()), e.value.lines()


def test_new_fields_change_the_digest_and_old_formats_keep_theirs(tmp_path):
    data = yaml.safe_load((REPO / "judges" / "guards" / "llama-guard-3.yaml").read_text())
    base = load_guard_format("llama-guard-3").digest()
    data["names"]["S6"] = "medical_advice"
    path = tmp_path / "renamed.yaml"
    path.write_text(yaml.safe_dump(data))
    assert load_guard_format(str(path)).digest() != base
    # formats without names / per_category / chat_template_kwargs hash as they did before those fields existed
    assert load_guard_format("llama-guard").digest() == "5068c464637390e7"
    assert load_guard_format("guard-classifier").digest() == "b03ab4beeb75d68d"
