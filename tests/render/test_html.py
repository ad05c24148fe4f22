"""The HTML report: self-contained, escaped, redacted, every section present; rendered by headless Chromium."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from fixtures.synthetic import SyntheticRun, cell_table, text_pool

from evalsvc.render.html import build_report
from evalsvc.store.record import FILE_COLUMNS

SECTION_IDS = (
    "overview",
    "categories",
    "paired-tests",
    "data-quality",
    "samples",
    "run-metadata",
    "plot-quality",
    "paired-table",
    "sample-browser",
    "run-json",
    "run-facts",
    "figure-data",
)
HOSTILE = "<script>alert('x')</script>"


@pytest.fixture(scope="module")
def report_html(small_run) -> str:
    return build_report("small", small_run.layout.root, samples=2)


def _figures(html: str) -> dict:
    match = re.search(r'<script type="application/json" id="figure-data">(.*?)</script>', html, re.S)
    return json.loads(match.group(1))


def test_report_has_every_section_and_one_div_per_figure(report_html):
    for ident in SECTION_IDS:
        assert f'id="{ident}"' in report_html, ident
    figures = _figures(report_html)
    assert sum(k.startswith("plot-heatmap") for k in figures) == 3
    assert sum(k.startswith("plot-category") for k in figures) == 3
    for key in figures:
        assert f'id="{key}"' in report_html


def test_report_is_self_contained(report_html):
    assert "Plotly" in report_html and len(report_html) > 3_000_000  # plotly.js is inline
    assert not re.search(r"<script[^>]+src=", report_html)
    assert not re.search(r"<link[^>]+href=", report_html)
    from plotly.offline import get_plotlyjs

    ours = report_html.replace(get_plotlyjs(), "")  # plotly.js itself names CDNs for features we do not use (maps)
    ours = re.sub(r'<pre id="run-json">.*?</pre>', "", ours, flags=re.S)  # escaped text, e.g. the judge URL
    assert len(ours) < len(report_html) - 3_000_000
    assert not re.search(r"https?://", ours), re.findall(r".{40}https?://.{40}", ours)[:3]


def test_run_metadata_is_shown_without_credentials(report_html):
    assert "sk-should-never-show" not in report_html and "hunter2" not in report_html
    assert "&lt;redacted&gt;" in report_html and "2.60.0" in report_html


def test_paired_table_lists_the_comparisons(report_html):
    table = report_html.split('id="paired-table"')[1].split("</table>")[0]
    assert table.count("<tr") == 1 + 24  # header + 12 strategy + 12 model comparisons (synthetic small run)
    assert "McNemar" in table and "Wilcoxon" in table


def _hostile_run(root: Path) -> None:
    spec = SyntheticRun(models=("m",), strategies=("basic",), benchmarks={"msb": "harm"}, n_items=12)
    table = cell_table(spec, 0, "msb", 0, text_pool(20)).select(list(FILE_COLUMNS))
    n = table.num_rows
    for name, value in (
        ("response", HOSTILE),
        ("judge_raw", "</script><img src=x onerror=alert(1)>"),
        ("principle", "</script><b>p</b>"),
    ):
        table = table.set_column(table.schema.get_field_index(name), name, pa.array([value] * n))
    part = root / "runs" / "h" / "records" / "model=m" / "benchmark=msb" / "strategy=basic"
    part.mkdir(parents=True)
    pq.write_table(table, part / "part-0.parquet")


def test_record_text_is_escaped_everywhere(tmp_path):
    _hostile_run(tmp_path)
    html = build_report("h", str(tmp_path), samples=3)
    assert HOSTILE not in html and "<img src=x" not in html and "<b>p</b>" not in html
    assert "&lt;script&gt;alert(&#x27;x&#x27;)&lt;/script&gt;" in html
    figures = _figures(html)  # the category value survives as data inside the JSON, not as markup
    assert "</script><b>p</b>" in json.dumps(figures)
    assert "no run.json found" in html


@pytest.fixture(scope="module")
def guarded_html(guarded_run) -> str:
    return build_report("guarded", guarded_run.layout.root, samples=2)


@pytest.mark.slow
@pytest.mark.chromium
@pytest.mark.parametrize("which", ["report_html", "guarded_html"])
def test_report_renders_in_headless_chromium_without_errors(which, request, tmp_path):
    report_html = request.getfixturevalue(which)
    guarded = which == "guarded_html"
    chromium = shutil.which("chromium") or shutil.which("chromium-browser")
    if chromium is None:
        pytest.skip("chromium not installed: apt-get install -y chromium")
    page = tmp_path / "report.html"
    page.write_text(report_html, encoding="utf-8")
    flags = [
        chromium,
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--no-first-run",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        f"--user-data-dir={tmp_path / 'profile'}",
        "--enable-logging=stderr",
        "--v=0",
        "--virtual-time-budget=15000",
    ]
    dom = subprocess.run([*flags, "--dump-dom", page.as_uri()], capture_output=True, text=True, timeout=120)
    console = [line for line in dom.stderr.splitlines() if "CONSOLE" in line or "Uncaught" in line]
    assert console == [], console
    body = re.search(r"<body[^>]*>", dom.stdout).group(0)
    assert 'data-rendered="ok"' in body, body
    assert int(re.search(r'data-figures="(\d+)"', body).group(1)) == len(_figures(report_html))
    assert re.search(r'<pre id="js-errors">\s*</pre>', dom.stdout)
    assert dom.stdout.count("main-svg") >= 7  # plotly drew its SVG layers
    for ident in SECTION_IDS:
        assert f'id="{ident}"' in dom.stdout
    # the Guardrails section, its tables and tradeoff figures exist exactly when the run has guardrails
    assert ('id="guardrails"' in dom.stdout) is guarded
    assert ('id="guard-table-0"' in dom.stdout) is guarded
    assert sum(k.startswith("plot-guard") for k in _figures(report_html)) == (2 if guarded else 0)
    shot = tmp_path / ("report-guardrails.png" if guarded else "report.png")
    subprocess.run(
        [*flags, "--window-size=1400,2600", f"--screenshot={shot}", page.as_uri()],
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    )
    assert shot.stat().st_size > 50_000
