"""Rubric benchmarks at the command line: `validate` and `plan` count criteria (grader calls), and a broken rubric
file exits 2 with one line per problem, naming file, line and field, before anything is started."""

from __future__ import annotations

import json

import yaml

from .test_validate import MANIFESTS, data_env  # noqa: F401  (fixtures)

SAMPLE_MANIFEST = MANIFESTS / "rubric-sample.yaml"
GOOD_ROW = {"prompt": [{"role": "user", "content": "Is 38 C a fever?"}],
            "rubrics": [{"criterion": "Says yes.", "points": 3, "tags": ["axis:accuracy"]}]}  # fmt: skip


def test_validate_and_plan_show_the_criteria_of_the_sample(cli):
    code, out, _ = cli("validate", str(SAMPLE_MANIFEST))
    assert code == 0 and "valid: 2 cells, 16 generations, 70 judge calls (70 rubric criteria to grade)" in out
    code, out, _ = cli("plan", str(SAMPLE_MANIFEST))
    assert code == 0 and "rubric benchmarks: 70 criteria to grade" in out and "│ criteria │" not in out
    assert "┃ criteria ┃" in out and "│       35 │" in out
    code, out, _ = cli("plan", str(SAMPLE_MANIFEST), "--json")
    doc = json.loads(out)
    assert doc["totals"]["criteria"] == 70 and [c["criteria"] for c in doc["cells"]] == [35, 35]
    assert doc["benchmarks"][0]["n_criteria"] == 35


def test_a_broken_rubric_file_is_one_line_per_problem(tmp_path, cli):
    data = tmp_path / "hb.jsonl"
    bad = [GOOD_ROW, {**GOOD_ROW, "rubrics": [{"criterion": "Says yes."}]}, {"prompt": [], "rubrics": "x"},
           {**GOOD_ROW, "prompt": [*GOOD_ROW["prompt"], {"role": "assistant", "content": "Yes."}]},
           {**GOOD_ROW, "rubrics": [{"criterion": "Says yes.", "points": "three"}]}]  # fmt: skip
    data.write_text("".join(json.dumps(r) + "\n" for r in bad))
    m = yaml.safe_load(SAMPLE_MANIFEST.read_text())
    m["benchmarks"] = [{"name": "hb", "path": "hb.jsonl", "format": "rubric"}]
    (tmp_path / "m.yaml").write_text(yaml.safe_dump(m))
    for command in ("validate", "plan"):
        code, out, err = cli(command, str(tmp_path / "m.yaml"))
        assert code == 2 and out == ""
        lines = [line for line in err.splitlines() if line.strip()]
        where = f"benchmarks.hb: {data}"
        assert lines[0] == "error: 5 problems in the benchmarks" and len(lines) == 6, err
        expected = [(2, "rubrics[0].points"), (3, "prompt"), (3, "rubrics"), (4, "prompt[1].role"),
                    (5, "rubrics[0].points")]  # fmt: skip
        for line, (n, field) in zip(lines[1:], expected, strict=True):
            assert f"{where} line {n}, column '{field}'" in line, line
        assert "Traceback" not in err
