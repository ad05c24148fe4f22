"""Analysis: pure functions over Arrow tables of records — summaries with intervals and flags, paired tests, agreement,
calibration, guardrail metrics and the --fail-if gate. No Ray, no rendering.
"""
