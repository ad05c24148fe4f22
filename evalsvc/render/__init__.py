"""Rendering for people and machines: rich terminal tables, Markdown, CSV/JSON and the self-contained HTML report.

Takes what `evalsvc.analysis` computed; computes nothing itself.
"""
