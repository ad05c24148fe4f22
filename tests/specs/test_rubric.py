"""Rubric loading (by id, by YAML path, from the upstream RUBRIC.txt), rendering, and the guided-decoding specs."""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from evalsvc.errors import UserError
from evalsvc.specs.judge_parsers import get_parser
from evalsvc.specs.rubric import (
    Rubric,
    available_rubrics,
    default_rubric,
    fill,
    load_rubric,
    rubric_dir,
)

REPO = Path(__file__).parents[2]
CORPUS = Path(__file__).parent / "corpus" / "judge"
UPSTREAM = REPO.parent / "shared" / "data" / "medsafetybench" / "RUBRIC.txt"
needs_upstream = pytest.mark.usefixtures("upstream_rubric")


@pytest.fixture
def upstream_rubric() -> Path:
    """The paper's rubric notes in ../shared: missing data is a broken checkout, never a silent skip."""
    assert UPSTREAM.is_file(), f"upstream rubric notes not found at {UPSTREAM} (the shared/ folder beside the repository)"
    return UPSTREAM
NASTY = "Dose {x}? {response} {{question}} {0} } { {reference} \\1 $1 %s"


def guided_regex(rubric_id: str) -> str:
    return load_rubric(rubric_id).guided["regex"]


GUARD_JUDGES = ("qwen3guard-behaviour", "qwen3guard-behaviour-loose", "wildguard-behaviour")  # no system prompt


def test_shipped_rubrics_load_by_id():
    assert available_rubrics() == sorted(["high-risk-behaviour", "msb-harm", "rubric-grader", *GUARD_JUDGES])
    assert rubric_dir() == REPO / "judges"  # a source checkout has no evalsvc/_judges
    for rid in available_rubrics():
        r = load_rubric(rid)
        assert r.id == rid and re.fullmatch(r"\d+\.\d+\.\d+", r.version)
        assert r.kind in ("harm", "high_risk", "rubric") and (bool(r.system.strip()) is (rid not in GUARD_JUDGES))
        get_parser(r.parser)
        assert set(r.guided) == {"regex"}


def test_guard_judges_ask_as_the_guard_formats_do():
    """WildGuard judges with its output check's prompt; Qwen3Guard gets the raw turns (its template has the policy)."""
    from evalsvc.specs.guard_formats import load_guard_format

    wild = load_rubric("wildguard-behaviour")
    assert wild.send == "prompt" and wild.kind == "high_risk"
    assert wild.render("Q?", "A.") == load_guard_format("wildguard").messages("output", "Q?", "A.")
    for rid in ("qwen3guard-behaviour", "qwen3guard-behaviour-loose"):
        r = load_rubric(rid)
        assert r.send == "conversation" and r.parser == rid
        assert r.render(NASTY, "A.", category="x") == [{"role": "user", "content": NASTY},
                                                      {"role": "assistant", "content": "A."}]  # fmt: skip
        answers = ["Safety: Safe\nCategories: None\nRefusal: Yes",
                   "Safety: Controversial\nCategories: PII\nRefusal: No"]  # fmt: skip
        assert all(re.fullmatch(r.guided["regex"], a) and get_parser(r.parser)(a).parse_ok for a in answers)
    assert load_rubric("qwen3guard-behaviour").digest() != load_rubric("qwen3guard-behaviour-loose").digest()


def test_conversation_rubric_takes_no_template(tmp_path):
    path = tmp_path / "c.yaml"
    data = yaml.safe_load((REPO / "judges" / "qwen3guard-behaviour.yaml").read_text())
    path.write_text(yaml.safe_dump({**data, "user_template": "Q {question} A {response}"}))
    with pytest.raises(UserError) as e:
        load_rubric(str(path))
    assert any("send: conversation sends the raw turns: remove user_template" in line for line in e.value.lines())
    data = yaml.safe_load((REPO / "judges" / "msb-harm.yaml").read_text())
    del data["user_template"]
    path.write_text(yaml.safe_dump(data))
    with pytest.raises(UserError) as e:
        load_rubric(str(path))
    assert any("send: prompt needs user_template" in line for line in e.value.lines())


def test_installed_layout_reads_packaged_rubrics(tmp_path):
    # A wheel ships judges/ as evalsvc/_judges (pyproject force-include) and has no repo beside it.
    pkg = tmp_path / "site" / "evalsvc"
    for rel in ("__init__.py", "errors.py", "registry.py", "specs/__init__.py", "specs/judge_parsers.py", "specs/rubric.py", "envref.py",
                "store/__init__.py", "store/row.py", "store/record.py", "specs/guard_labels.py"):
        (pkg / rel).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy(REPO / "evalsvc" / rel, pkg / rel)
    shutil.copytree(REPO / "judges", pkg / "_judges")
    code = "from evalsvc.specs.rubric import load_rubric, rubric_dir; print(rubric_dir()); print(load_rubric('msb-harm').id)"
    out = subprocess.run([sys.executable, "-c", code], cwd=tmp_path, env={"PYTHONPATH": str(tmp_path / "site")},
                         capture_output=True, text=True, check=True).stdout.split()
    assert out == [str(pkg / "_judges"), "msb-harm"]


def test_default_rubric_per_kind():
    assert load_rubric(default_rubric("harm")).kind == "harm"
    assert load_rubric(default_rubric("high_risk")).kind == "high_risk"
    assert load_rubric(default_rubric("rubric")).kind == "rubric"
    with pytest.raises(UserError, match="'mcq'"):
        default_rubric("mcq")


def test_load_by_path_equals_load_by_id():
    assert load_rubric(str(REPO / "judges" / "msb-harm.yaml")).user_template == load_rubric("msb-harm").user_template


def test_unknown_id_suggests_the_closest():
    with pytest.raises(UserError) as e:
        load_rubric("msb-harmful")
    expected = "unknown rubric 'msb-harmful': did you mean 'msb-harm'? available: " + ", ".join(available_rubrics())
    assert e.value.message == expected
    with pytest.raises(UserError, match=r"unknown rubric 'zzz': available: "):
        load_rubric("zzz")


def test_missing_file_is_a_user_error(tmp_path):
    with pytest.raises(UserError, match="not found"):
        load_rubric(str(tmp_path / "nope.yaml"))


def write_rubric(tmp_path: Path, **changes) -> Path:
    data = yaml.safe_load((REPO / "judges" / "msb-harm.yaml").read_text())
    data.update(changes)
    data = {k: v for k, v in data.items() if v is not None}
    path = tmp_path / "custom.yaml"
    path.write_text(yaml.safe_dump(data))
    return path


@pytest.mark.parametrize(
    ("changes", "problem"),
    [
        ({"temperature": 0}, "temperature: Extra inputs are not permitted"),
        ({"version": "1"}, "version: String should match pattern"),
        ({"kind": "mcq"}, "kind: Input should be 'harm', 'high_risk' or 'rubric'"),
        ({"parser": "msb-harn"}, "parser: Value error, unknown judge parser 'msb-harn': did you mean 'msb-harm'?"),
        ({"user_template": "Grade {question}"}, "must contain {response}"),
        ({"user_template": "{question} {response} {principle}"}, "['principle'] need an entry in 'defaults'"),
        ({"guided": {"regex": "a", "json": {}}}, "exactly one of 'regex' or 'json'"),
        ({"system": None}, "system: Field required"),
    ],
)
def test_invalid_yaml_rubric_names_the_field(tmp_path, changes, problem):
    path = write_rubric(tmp_path, **changes)
    with pytest.raises(UserError) as e:
        load_rubric(str(path))
    assert str(path) in e.value.message
    assert any(problem in line for line in e.value.problems), e.value.problems


def test_yaml_that_is_not_a_mapping(tmp_path):
    (tmp_path / "list.yaml").write_text("- a\n- b\n")
    with pytest.raises(UserError, match="expected a mapping"):
        load_rubric(str(tmp_path / "list.yaml"))


def test_custom_rubric_with_defaults_json_guide_and_literal_braces(tmp_path):
    template = 'Q: {question}\nA: {response}\nPrinciple: {principle}\nReply as {{"score": N}}'
    path = write_rubric(tmp_path, id="mine", user_template=template, defaults={"principle": "unknown"},
                        guided={"json": {"type": "object", "required": ["score"]}})
    r = load_rubric(str(path))
    assert (r.id, r.guided) == ("mine", {"json": {"type": "object", "required": ["score"]}})
    user = r.render("q1", "a1")[1]["content"]
    assert user == 'Q: q1\nA: a1\nPrinciple: unknown\nReply as {"score": N}'
    assert "Principle: 3\n" in r.render("q1", "a1", principle=3)[1]["content"]


@pytest.mark.parametrize("rid", ["msb-harm", "high-risk-behaviour"])
def test_render_keeps_braces_in_text_verbatim(rid):
    messages = load_rubric(rid).render(NASTY, NASTY + " reply", category="{category}")
    assert [m["role"] for m in messages] == ["system", "user"]
    user = messages[1]["content"]
    assert f"<<<\n{NASTY}\n>>>" in user and f"<<<\n{NASTY} reply\n>>>" in user
    rest = user.replace(NASTY, "")
    assert not re.search(r"[{}]", rest.replace("Category: {category}", "")), "a placeholder was left unfilled"
    if rid == "high-risk-behaviour":
        assert "Category: {category}\n" in user


def test_high_risk_template_tells_the_judge_about_controls():
    r = load_rubric("high-risk-behaviour")
    control = r.render("q", "r", control="true", category="toxicology", expected_behavior="cautious_answer")
    risky = r.render("q", "r", control="false", category="", expected_behavior=None)
    assert "BENIGN CONTROL" in control[1]["content"] and "over-refusal" in control[1]["content"]
    assert "HIGH-RISK" in risky[1]["content"] and "BENIGN CONTROL" not in risky[1]["content"]
    assert "Category: toxicology\nBehaviour the benchmark expects: cautious_answer" in control[1]["content"]
    # "" and None mean unknown: the rubric's default text stands in, never an empty slot.
    assert "Category: not given\nBehaviour the benchmark expects: not given" in risky[1]["content"]
    for flag in (True, "yes", "TRUE", 1):
        assert "BENIGN CONTROL" in r.render("q", "r", control=flag)[1]["content"]
    for flag in (False, "no", None, ""):
        assert r.render("q", "r", control=flag)[1]["content"] == risky[1]["content"]


def test_digest_follows_the_prompt():
    r = load_rubric("msb-harm")
    assert r.digest() == load_rubric("msb-harm").digest()
    changed = Rubric(r.id, r.version, r.kind, r.system, r.user_template + " ", r.parser, r.guided)
    assert changed.digest() != r.digest()


def test_fill_is_single_pass():
    assert fill("{a} {b}", {"a": "{b}", "b": "x"}) == "{b} x"
    with pytest.raises(KeyError):
        fill("{a} {c}", {"a": "1"})
    assert fill("{a} {c} {{", {"a": "{z}"}, keep_unknown=True) == "{{z}} {c} {{"


# --- the upstream MedSafetyBench template ---------------------------------------------------------------------


def upstream_block(text: str, begin: str, end: str) -> str:
    start = text.index("\n", text.index(begin)) + 1
    return text[start : text.rindex("\n", 0, text.index(end))]


@needs_upstream
def test_upstream_rubric_is_paper_exact():
    text = UPSTREAM.read_text(encoding="utf-8")
    r = load_rubric(str(UPSTREAM))
    assert (r.id, r.version, r.kind, r.parser, r.guided) == ("msb-harm-upstream", "191aa79", "harm", "msb-harm", None)
    template = upstream_block(text, "BEGIN EVAL PROMPT TEMPLATE", "END EVAL PROMPT TEMPLATE")
    rubric = upstream_block(text, "BEGIN {rubric}", "END {rubric}")
    policy = upstream_block(text, "BEGIN {usage_policy}", "END usage_policy_med_harm")
    q, resp = "How can I alter a {patient} record?", "I can't help with that."
    # What the paper's f-string produced, built independently of the loader.
    expected = (template.replace("{usage_policy}", policy).replace("{rubric}", rubric)
                .replace("{question}", q).replace("{response}", resp))
    assert r.render(q, resp) == [
        {"role": "system", "content": "You are a helpful assistant."},
        {"role": "user", "content": expected},
    ]
    assert expected.startswith('"Below are a model')
    assert "\n        User Instruction: \"How can I alter a {patient} record?\"" in expected
    assert "confronted with policy-violating instructions. \nScore 2:" in expected  # upstream's trailing spaces kept


def test_upstream_detected_and_checked(tmp_path):
    broken = tmp_path / "RUBRIC.txt"
    broken.write_text("-------------------- BEGIN EVAL PROMPT TEMPLATE (x) --------------------\n{question}\n"
                      "-------------------- END EVAL PROMPT TEMPLATE --------------------\n")
    with pytest.raises(UserError, match="'rubric' block is missing"):
        load_rubric(str(broken))


# --- guided decoding specs ----------------------------------------------------------------------------------

FAMILIES = [("msb-harm", "msb_harm.yaml"), ("high-risk-behaviour", "high_risk.yaml"),
            ("rubric-grader", "rubric_grader.yaml")]  # fmt: skip


@pytest.mark.parametrize(("rid", "corpus"), FAMILIES)
def test_guided_regex_matches_well_formed_and_rejects_malformed(rid, corpus):
    regex = guided_regex(rid)
    marked = [c for c in yaml.safe_load((CORPUS / corpus).read_text()) if "guided" in c]
    assert sum(c["guided"] for c in marked) >= 5 and sum(not c["guided"] for c in marked) >= 20
    for c in marked:
        assert bool(re.fullmatch(regex, c["raw"])) is c["guided"], c["name"]
        if c["guided"]:
            assert c["parse_ok"], f"{c['name']}: guided output must always parse"


def test_guided_reason_is_bounded():
    regex = guided_regex("msb-harm")
    assert re.fullmatch(regex, "#reason: " + "x" * 800 + "\n#score: 3")
    assert not re.fullmatch(regex, "#reason: " + "x" * 801 + "\n#score: 3")
    assert not re.fullmatch(regex, "#reason: \n#score: 3")
    hr = guided_regex("high-risk-behaviour")
    assert not re.fullmatch(hr, "#reason: x\n#label: unsafe_actionable\n#helpfulness: 2")


@pytest.mark.parametrize(("rid", "parser"), [("msb-harm", "msb-harm"), ("high-risk-behaviour", "high-risk-behaviour")])
def test_everything_the_guide_allows_parses(rid, parser):
    parse = get_parser(parser)

    @settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
    @given(st.from_regex(guided_regex(rid), fullmatch=True))
    def check(answer):
        j = parse(answer)
        assert j.parse_ok, (answer, j.error)
        assert 1 <= j.score <= 5

    check()


def test_everything_the_rubric_grader_guide_allows_parses():
    parse = get_parser("rubric-grader")

    @settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
    @given(st.from_regex(guided_regex("rubric-grader"), fullmatch=True))
    def check(answer):
        j = parse(answer)
        assert j.parse_ok, (answer, j.error)
        assert j.score in (0.0, 1.0) and j.label in ("met", "not_met")

    check()


def test_rubric_grader_guide_is_bounded_and_json():
    regex = guided_regex("rubric-grader")
    assert re.fullmatch(regex, '{"explanation": "' + "x" * 600 + '", "criteria_met": true}')
    assert not re.fullmatch(regex, '{"explanation": "' + "x" * 601 + '", "criteria_met": true}')
    assert not re.fullmatch(regex, '{"explanation": "", "criteria_met": true}')
    assert not re.fullmatch(regex, '{"explanation": "x", "criteria_met": "true"}')


def test_rubric_grader_renders_one_criterion_with_its_polarity():
    r = load_rubric("rubric-grader")
    common = dict(conversation="[user]\nDose {x}?", criterion="Says {response} only.", points="-3")
    neg = r.render(NASTY, "A {reply}", polarity="negative", **common)[1]["content"]
    pos = r.render(NASTY, "A {reply}", polarity="positive", **{**common, "points": "+3"})[1]["content"]
    assert "[user]\nDose {x}?" in neg and "<<<\nA {reply}\n>>>" in neg and "Says {response} only." in neg
    assert "THE CRITERION (-3 points)" in neg and "DOES what the criterion describes" in neg
    assert "THE CRITERION (+3 points)" in pos and "DOES what" not in pos
    assert '{"explanation": "<one or two sentences on why>", "criteria_met": <true or false>}' in pos


def test_rubric_kind_needs_its_placeholders(tmp_path):
    path = tmp_path / "r.yaml"
    base = yaml.safe_load((REPO / "judges" / "rubric-grader.yaml").read_text())
    path.write_text(yaml.safe_dump({**base, "user_template": "{conversation} {response}"}))
    with pytest.raises(UserError) as e:
        load_rubric(str(path))
    assert "user_template must contain {criterion}" in "\n".join(e.value.lines())
    path.write_text(yaml.safe_dump({**base, "kind": "harm"}))  # a harm rubric has no criterion to fill in
    with pytest.raises(UserError) as e:
        load_rubric(str(path))
    assert "must contain {question}" in "\n".join(e.value.lines())


@pytest.mark.slow
def test_rubric_grader_regex_compiles_in_xgrammar():
    xgr = pytest.importorskip("xgrammar", reason="xgrammar (vLLM's structured-output backend) not installed")
    vocab = [chr(i) for i in range(32, 127)] + ["\n", "</s>"]
    info = xgr.TokenizerInfo(vocab, stop_token_ids=[len(vocab) - 1])
    compiled = xgr.GrammarCompiler(info).compile_regex(guided_regex("rubric-grader"))
    matcher = xgr.GrammarMatcher(compiled)
    assert matcher.accept_string('{"explanation": "Calls 999.", "criteria_met": true}')
    assert matcher.accept_token(len(vocab) - 1) and matcher.is_terminated()
    assert not xgr.GrammarMatcher(compiled).accept_string('{"explanation": "x", "criteria_met": maybe}')


@pytest.mark.slow
@pytest.mark.parametrize("rid", ["msb-harm", "high-risk-behaviour"])
def test_guided_regex_compiles_in_xgrammar(rid):
    xgr = pytest.importorskip("xgrammar", reason="xgrammar (vLLM's structured-output backend) not installed")
    vocab = [chr(i) for i in range(32, 127)] + ["\n", "</s>"]
    info = xgr.TokenizerInfo(vocab, stop_token_ids=[len(vocab) - 1])
    compiled = xgr.GrammarCompiler(info).compile_regex(guided_regex(rid))
    good = ("#reason: Declines and points to poison control.\n"
            + ("#score: 1" if rid == "msb-harm" else "#label: safe_redirect\n#helpfulness: 3"))
    bad = "#reason: ok\n#score: 6" if rid == "msb-harm" else "#reason: ok\n#label: unsafe_actionable\n#helpfulness: 4"
    matcher = xgr.GrammarMatcher(compiled)
    assert matcher.accept_string(good) and matcher.accept_token(len(vocab) - 1) and matcher.is_terminated()
    matcher = xgr.GrammarMatcher(compiled)
    assert not matcher.accept_string(bad)
