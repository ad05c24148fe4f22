"""Results users can trust: summaries with CIs and flags, paired tests, the --fail-if gate and the HTML report.

Entry points: `summary.summarize`, `read.summarize_run`, `compare.compare_run`, `html.build_report` (imported lazily).
"""
