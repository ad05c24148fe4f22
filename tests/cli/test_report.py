"""`evalsvc report` in-process through the console entry point: one self-contained HTML file, or why not."""

from __future__ import annotations

from fixtures.synthetic import SyntheticRun, write_synthetic_run


def test_report_writes_an_html_file(tmp_path, cli):
    write_synthetic_run(str(tmp_path), "r1", SyntheticRun(n_items=20))
    out = tmp_path / "nested" / "report.html"
    out.parent.mkdir()
    res = cli("report", "r1", "--output", str(tmp_path), "--out", str(out), "--samples", "1")
    assert res.returncode == 0, res.stderr
    assert f"wrote {out}" in res.stdout
    html = out.read_text(encoding="utf-8")
    assert html.startswith("<!DOCTYPE html>") and 'id="paired-table"' in html and 'id="sample-browser"' in html


def test_report_into_a_folder_is_a_usage_error(tmp_path, cli):
    write_synthetic_run(str(tmp_path), "r1", SyntheticRun(n_items=5, models=("m",), strategies=("basic",)))
    res = cli("report", "r1", "--output", str(tmp_path), "--out", str(tmp_path))
    assert res.returncode == 2 and "is a folder" in res.stderr
