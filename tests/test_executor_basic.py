"""Executor API and basic run semantics (statuses, outputs, errors, limits)."""

from __future__ import annotations

import os

import ast

import pytest

import absolutezero_code.executor as executor_module
from absolutezero_code.executor import Executor, RunResult, Status, run

IDENTITY = "def f(a):\n    return a\n"


@pytest.fixture(scope="module")
def executor():
    with Executor(workers=1, timeout=2.0) as instance:
        yield instance


def test_status_values_are_plain_strings():
    assert [status.value for status in Status] == [
        "ok", "error", "timeout", "memory", "output_limit", "rejected", "nondeterministic",
    ]
    assert Status.OK == "ok"
    assert RunResult(Status.OK, "1", "").ok
    assert not RunResult(Status.ERROR, None, "boom").ok


def test_results_come_back_in_job_order(executor):
    jobs = [(f"def f(x):\n    return x * {k}\n", str(k)) for k in range(40)]
    results = executor.run_many(jobs)
    assert [r.status for r in results] == [Status.OK] * 40
    assert [r.output for r in results] == [str(k * k) for k in range(40)]


@pytest.mark.parametrize(
    ("program", "text", "expected"),
    [
        ("def f():\n    return 7\n", "", "7"),
        ("def f():\n    return 7\n", "   ", "7"),
        ("def f(a, b, c):\n    return (a, b, c)\n", "(1, ), (1, ), (1, 2)", "((1,), (1,), (1, 2))"),
        ("def f(a, b):\n    return [a, b]\n", "'x', 2,", "['x', 2]"),
        ("def f(a):\n    return a\n", "[\n  1,\n  2,  # comment\n]", "[1, 2]"),
        ("def f(s, n):\n    return s * n\n", "'ab', 3", "'ababab'"),
        ("def f(d):\n    return d\n", "{'b': 1, 'a': 2}", "{'a': 2, 'b': 1}"),
        ("def f(x):\n    return -x\n", "0.0", "0.0"),
        ("def f(b):\n    return b[::-1]\n", "b'abc'", "b'cba'"),
        ("def f():\n    return None\n", "", "None"),
    ],
)
def test_outputs_are_canonical_literals(executor, program, text, expected):
    (result,) = executor.run_many([(program, text)])
    assert result.status is Status.OK, result.reason
    assert result.output == expected
    assert result.reason == ""


def test_long_gold_outputs_are_not_truncated(executor):
    # The original implementation cut gold outputs at 400 characters.
    (result,) = executor.run_many([("def f(n):\n    return 'ab' * n\n", "1000")])
    assert result.ok
    assert ast.literal_eval(result.output) == "ab" * 1000
    assert len(result.output) == 2002


def test_output_limit_is_a_status_not_a_truncation():
    with Executor(workers=1, output_limit=50) as small:
        ok, too_long = small.run_many(
            [("def f():\n    return 'x' * 48\n", ""), ("def f():\n    return 'x' * 49\n", "")]
        )
    assert ok.ok and ok.output == repr("x" * 48)
    assert too_long.status is Status.OUTPUT_LIMIT and too_long.output is None
    assert "50 characters" in too_long.reason


def test_exception_reports_type_and_message(executor):
    (result,) = executor.run_many([("def f(a):\n    return a[5]\n", "[1]")])
    assert result.status is Status.ERROR
    assert result.output is None
    assert result.reason == "IndexError: list index out of range"


def test_long_exception_messages_are_shortened_in_the_reason(executor):
    program = "def f():\n    raise ValueError('y' * 10000)\n"
    (result,) = executor.run_many([(program, "")])
    assert result.status is Status.ERROR
    assert result.reason.startswith("ValueError: yyy") and len(result.reason) <= 300


def test_missing_f_is_an_error(executor):
    (result,) = executor.run_many([("def g():\n    return 1\n", "")])
    assert result.status is Status.ERROR
    assert result.reason == "program defines no function f"


def test_syntax_error_is_rejected_with_its_line(executor):
    (result,) = executor.run_many([("def f():\n    return 1\nif x\n", "")])
    assert result.status is Status.REJECTED
    assert result.reason.startswith("syntax error") and "(line 3)" in result.reason


def test_wrong_arity_is_an_error(executor):
    (result,) = executor.run_many([(IDENTITY, "1, 2")])
    assert result.status is Status.ERROR
    assert result.reason.startswith("TypeError")


def test_solver_input_is_parsed_never_pasted(executor):
    # Regression: the original pasted inputs into code, so this scored as a success.
    program = "def f(x):\n    return x == 5\n"
    for text in ("0) or True or (0", "1), (2", "5) if True else f(0", "__import__('os')"):
        (result,) = executor.run_many([(program, text)])
        assert result.status is Status.ERROR, text
        assert result.reason.startswith("invalid input"), result.reason


def test_non_plain_input_literal_is_an_error(executor):
    (result,) = executor.run_many([(IDENTITY, "1j")])
    assert result.status is Status.ERROR and "complex" in result.reason


def test_canonicalize_many(executor):
    results = executor.canonicalize_many(
        ["{3, 1, 2}", " [1, (2,)] ", "{'b': [], 'a': {1}}", "set()", "1 + ", "f(1)", "frozenset({1})", "float('nan')"]
    )
    assert [r.status for r in results] == [Status.OK] * 4 + [Status.ERROR] * 4
    assert [r.output for r in results[:4]] == ["{1, 2, 3}", "[1, (2,)]", "{'a': {1}, 'b': []}", "set()"]


def test_canonicalize_rejects_non_plain_values(executor):
    (nan,) = executor.canonicalize_many(["[1e999]"])
    assert nan.status is Status.REJECTED and "infinity" in nan.reason


def test_module_level_run_uses_a_shared_executor():
    result = run("def f(a, b):\n    return a + b\n", "2, 3", timeout=2.0)
    assert result == RunResult(Status.OK, "5", "")
    executor_module._close_shared()


def test_empty_batches(executor):
    assert executor.run_many([]) == []
    assert executor.canonicalize_many([]) == []


@pytest.mark.parametrize(
    ("jobs", "error"),
    [
        ("def f(): pass", TypeError),
        ([("def f(): pass",)], TypeError),
        ([(b"def f(): pass", "")], TypeError),
    ],
)
def test_malformed_jobs_raise_clear_errors(executor, jobs, error):
    with pytest.raises(error, match="job|sequence"):
        executor.run_many(jobs)


def test_bad_arguments_raise_clear_errors(executor):
    with pytest.raises(ValueError, match="determinism_runs"):
        executor.run_many([(IDENTITY, "1")], determinism_runs=0)
    with pytest.raises(ValueError, match="timeout"):
        executor.run_many([(IDENTITY, "1")], timeout=-1)
    with pytest.raises(ValueError, match="workers"):
        Executor(workers=0)
    with pytest.raises(ValueError, match="memory_mb"):
        Executor(memory_mb=1)
    with pytest.raises(TypeError, match="literals"):
        executor.canonicalize_many("[1]")


def test_closed_executor_refuses_work():
    instance = Executor(workers=1)
    pids = instance.worker_pids()
    assert len(pids) == 2
    instance.close()
    instance.close()  # idempotent
    with pytest.raises(RuntimeError, match="closed"):
        instance.run_many([(IDENTITY, "1")])


def test_workers_are_pinned_round_robin_over_the_allowed_cpus():
    allowed = sorted(os.sched_getaffinity(0))
    with Executor(workers=2, pin_workers=True) as executor:
        pinned = [sorted(os.sched_getaffinity(pid)) for pid in executor.worker_pids()]
    assert pinned == [[allowed[index % len(allowed)]] for index in range(4)]


def test_unpinned_workers_keep_every_allowed_cpu():
    allowed = sorted(os.sched_getaffinity(0))
    with Executor(workers=1, pin_workers=False) as executor:
        assert all(sorted(os.sched_getaffinity(pid)) == allowed for pid in executor.worker_pids())


def test_the_default_is_one_worker_per_core_in_all():
    with Executor() as executor:
        assert 2 * executor.workers == max(2, (os.cpu_count() or 1) // 2 * 2)
