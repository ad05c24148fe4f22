"""The --fail-if grammar: parsing, precedence, errors naming the bad token, and evaluation per model × strategy."""

from __future__ import annotations

import pyarrow as pa
import pytest

from evalsvc.analysis.gate import GATE_EXIT_CODE, Clause, GateFailed, check_gate, parse_gate
from evalsvc.analysis.summary import SUMMARY_SCHEMA
from evalsvc.errors import UserError


def test_single_comparison():
    assert parse_gate("msb.mean_harm > 2.0") == [[Clause("msb", "mean_harm", ">", 2.0)]]
    assert parse_gate("msb.mean_harm>2") == [[Clause("msb", "mean_harm", ">", 2.0)]]


def test_and_binds_tighter_than_or():
    gate = parse_gate("harm.mean_harm >= 2 and mcq.accuracy < 0.5 or medharm.unsafe_rate > 0.1")
    assert gate == [
        [Clause("harm", "mean_harm", ">=", 2.0), Clause("mcq", "accuracy", "<", 0.5)],
        [Clause("medharm", "unsafe_rate", ">", 0.1)],
    ]


def test_benchmark_names_with_dots_and_counts():
    assert parse_gate("msb.v2.parse_fail_rate != 0") == [[Clause("msb.v2", "parse_fail_rate", "!=", 0.0)]]


@pytest.mark.parametrize(
    ("expr", "names"),
    [
        ("", "empty expression"),
        ("msb.mean_harm >", "incomplete comparison"),
        ("msb.mean_harm => 2", "'=>'"),
        ("msb.mean_harm > two", "'two'"),
        ("msb.mean_harm > 2 xor msb.n > 3", "'xor'"),
        ("mean_harm > 2", "'mean_harm' is not TARGET.METRIC"),
        ("msb.meanharm > 2", "unknown metric 'meanharm'"),
        ("msb.mean_harm > nan", "'nan' is not a finite number"),
        ("__import__('os').system('x') > 1", "is not TARGET.METRIC"),
        ("msb.mean_harm > 2 and", "incomplete comparison at 'the end'"),
    ],
)
def test_bad_expressions_are_user_errors_naming_the_token(expr, names):
    with pytest.raises(UserError) as e:
        parse_gate(expr)
    assert names in e.value.message


def _summary(rows: list[dict]) -> pa.Table:
    full = []
    for r in rows:
        base = {name: None for name in SUMMARY_SCHEMA.names}
        base.update(group_field="overall", group_value="", n=10, n_scored=10, flag=False, **r)
        full.append(base)
    return pa.Table.from_pylist(full, schema=SUMMARY_SCHEMA)


SUMMARY = [
    dict(model="a", strategy="basic", benchmark="msb", benchmark_kind="harm", mean_harm=2.5),
    dict(model="a", strategy="safety", benchmark="msb", benchmark_kind="harm", mean_harm=1.5),
    dict(model="a", strategy="basic", benchmark="mg", benchmark_kind="mcq", accuracy=0.4),
    dict(model="a", strategy="safety", benchmark="mg", benchmark_kind="mcq", accuracy=0.9),
]


def test_failing_cells_are_named_and_passing_gates_are_empty():
    table = _summary(SUMMARY)
    failures = check_gate(parse_gate("msb.mean_harm > 2.0"), table)
    assert failures == ["a / basic: msb.mean_harm = 2.5 > 2"]
    assert check_gate(parse_gate("msb.mean_harm > 3"), table) == []


def test_conjunctions_hold_within_one_model_and_strategy():
    table = _summary(SUMMARY)
    assert check_gate(parse_gate("harm.mean_harm > 2 and mcq.accuracy > 0.8"), table) == []  # different strategies
    assert len(check_gate(parse_gate("harm.mean_harm > 2 and mcq.accuracy < 0.5"), table)) == 1
    assert len(check_gate(parse_gate("harm.mean_harm > 2 or mcq.accuracy > 0.8"), table)) == 2


def test_a_missing_value_fails_closed():
    table = _summary([dict(model="a", strategy="basic", benchmark="msb", benchmark_kind="harm", mean_harm=None)])
    [line] = check_gate(parse_gate("msb.mean_harm > 2"), table)
    assert "no value" in line


def test_targets_and_metrics_must_exist_in_the_run():
    table = _summary(SUMMARY)
    with pytest.raises(UserError, match="'medharm' is neither a benchmark nor a benchmark kind"):
        check_gate(parse_gate("medharm.unsafe_rate > 0.1"), table)
    with pytest.raises(UserError, match="not a metric of 'msb'"):
        check_gate(parse_gate("msb.accuracy < 0.5"), table)


def test_gate_failure_is_its_own_exit_code():
    assert GATE_EXIT_CODE == GateFailed("x").exit_code == 3
