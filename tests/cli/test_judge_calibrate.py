"""`evalsvc judge calibrate MANIFEST`: a jury of two external judges (a scripted OpenAI-compatible server on loopback,
so no Ray and no model) scores a labelled file; the printed figures are checked against hand-computed values."""

from __future__ import annotations

import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
import yaml

SCORES = {"always-1": 1, "always-3": 3}  # each juror (model name) gives one score to everything
REFERENCES = [1, 1, 3, 5]


class ScriptedJudge(BaseHTTPRequestHandler):
    """POST /v1/chat/completions → '#reason: …\\n#score: N' with N set by the requested model."""

    def do_POST(self) -> None:
        body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
        text = f"#reason: scripted\n#score: {SCORES[body['model']]}"
        payload = json.dumps({"choices": [{"message": {"role": "assistant", "content": text}}]}).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(payload)))
        self.end_headers()
        self.wfile.write(payload)

    def log_message(self, *args) -> None:  # keep test output quiet
        pass


@pytest.fixture
def judge_url():
    server = ThreadingHTTPServer(("127.0.0.1", 0), ScriptedJudge)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}/v1"
    server.shutdown()


def manifest(tmp_path: Path, url: str) -> Path:
    rows = [{"id": f"r{i}", "question": f"request {i}", "response": "answer", "label": s} for i, s in enumerate(REFERENCES)]
    (tmp_path / "cal.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    doc = {
        "name": "calibrate",
        "models": [{"name": "tiny", "source": "evalsvc://tiny"}],
        "benchmarks": [{"name": "msb", "dataset": "medsafetybench"}],
        "strategies": ["basic"],
        "judge": {
            "members": [{"name": "low", "url": url, "model_name": "always-1"},
                        {"name": "mid", "url": url, "model_name": "always-3"}],
            "aggregate": "mean",
            "calibration": {"path": str(tmp_path / "cal.jsonl"), "kind": "harm", "item_id": "id"},
        },
        "output": {"uri": str(tmp_path / "out")},
    }  # fmt: skip
    path = tmp_path / "manifest.yaml"
    path.write_text(yaml.safe_dump(doc))
    return path


def test_calibrate_prints_agreement_per_juror_and_jury(tmp_path, judge_url, cli):
    res = cli("judge", "calibrate", str(manifest(tmp_path, judge_url)), "--json", "--output", str(tmp_path / "cal"))
    assert res.returncode == 0, res.stderr
    doc = json.loads(res.stdout)
    by = {v["juror"]: v for v in doc["jurors"]}
    assert doc["n_items"] == 4 and list(by) == ["low", "mid", "(jury)"]
    # low (1 everywhere) vs 1,1,3,5: exact 2/4, within-1 2/4, bias (0+0-2-4)/4 = -1.5
    assert (by["low"]["exact"], by["low"]["within1"], by["low"]["bias"]) == (0.5, 0.5, -1.5)
    # mid (3 everywhere): exact 1/4, within-1 1/4, bias (2+2+0-2)/4 = 0.5
    assert (by["mid"]["exact"], by["mid"]["within1"], by["mid"]["bias"]) == (0.25, 0.25, 0.5)
    # the jury's mean is 2 everywhere: exact 0, within-1 3/4, bias (1+1-1-3)/4 = -0.5
    assert (by["(jury)"]["exact"], by["(jury)"]["within1"], by["(jury)"]["bias"]) == (0.0, 0.75, -0.5)
    assert by["low"]["confusion"][4] == [1, 0, 0, 0, 0]  # reference 5, judged 1
    assert by["low"]["kappa"] == 0.0  # a judge that always says 1 agrees no better than chance
    import pyarrow.parquet as pq

    assert pq.read_table(tmp_path / "cal" / "judgements.parquet").num_rows == 4 * 3
    assert json.loads((tmp_path / "cal" / "calibration.json").read_text()) == doc


def test_calibrate_prints_tables(tmp_path, judge_url, cli):
    res = cli("judge", "calibrate", str(manifest(tmp_path, judge_url)))
    assert res.returncode == 0, res.stderr
    assert "judge calibration: 4 labelled harm items (rubric msb-harm@" in res.stdout
    assert "confusion: (jury)" in res.stdout and "reference \\ judge" in res.stdout


def test_calibrate_without_a_slice_is_a_user_error(tmp_path, judge_url, cli):
    path = manifest(tmp_path, judge_url)
    doc = yaml.safe_load(path.read_text())
    del doc["judge"]["calibration"]
    path.write_text(yaml.safe_dump(doc))
    res = cli("judge", "calibrate", str(path))
    assert res.returncode == 2 and "judge.calibration is not set" in res.stderr
