"""The in-flight row is declared once: stages that read it find their columns, and a missing one is named."""

from __future__ import annotations

import pytest

from evalsvc.store.record import RECORD_SCHEMA
from evalsvc.store.row import CANDIDATES, GENERATION_COLUMNS, GUARD_COLUMNS, JUDGE, JUDGE_COLUMNS, check_stage


def test_what_the_stages_add_ends_up_in_the_record():
    for column in (*GENERATION_COLUMNS, *GUARD_COLUMNS, *JUDGE_COLUMNS):
        assert column in RECORD_SCHEMA.names, column


def test_a_stage_missing_a_column_names_it():
    with pytest.raises(RuntimeError, match=r"judge stage: the rows lack \['response'"):
        check_stage(JUDGE, [c for c in JUDGE.needs if c != "response"])
    check_stage(CANDIDATES, CANDIDATES.needs)  # complete rows pass
