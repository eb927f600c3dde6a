"""Gold results: two runs must agree, rows must exist, order must not decide the rows."""

from __future__ import annotations

from absolutezero_sql.gold import Gold, gold_from_runs


def _run(rows, variants=None, schema=("CREATE TABLE t (a)",)):
    return {"ok": True, "rows": rows, "variants": variants if variants is not None else [rows, rows, rows], "schema": list(schema)}


ONE, TWO = [["i", 1]], [["i", 2]]


def test_agreeing_runs_give_gold():
    gold = gold_from_runs("SELECT a FROM t ORDER BY a", [_run([ONE, TWO])] * 2)
    assert isinstance(gold, Gold) and gold.ordered and gold.schema == ["CREATE TABLE t (a)"]


def test_disagreeing_processes_are_nondeterministic():
    assert "non-deterministic" in gold_from_runs("SELECT a FROM t", [_run([ONE]), _run([TWO])])


def test_failure_and_empty_results():
    failed = {"ok": False, "stage": "query", "reason": "function random() is not allowed"}
    assert gold_from_runs("SELECT random()", [failed, failed]) == "query: function random() is not allowed"
    assert "no rows" in gold_from_runs("SELECT a FROM t", [_run([])] * 2)


def test_order_dependence():
    limited = _run([ONE], variants=[[TWO], [ONE], [ONE]])
    assert "order" in gold_from_runs("SELECT a FROM t LIMIT 1", [limited] * 2)
    ties = _run([ONE, TWO], variants=[[TWO, ONE], [ONE, TWO], [ONE, TWO]])
    gold = gold_from_runs("SELECT a FROM t ORDER BY b", [ties] * 2)
    assert isinstance(gold, Gold) and gold.ordered is False
    unordered = gold_from_runs("SELECT a FROM t", [ties] * 2)
    assert isinstance(unordered, Gold) and unordered.ordered is False
