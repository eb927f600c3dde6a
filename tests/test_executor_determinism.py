"""The determinism check: runs in separate processes with different hash seeds and
address layouts must agree, and non-deterministic programs end up rejected."""

from __future__ import annotations

import pytest

from absolutezero_code.executor import Executor, Status


@pytest.fixture(scope="module")
def executor():
    with Executor(workers=1, timeout=2.0) as instance:
        yield instance


WORDS = ", ".join(repr(f"w{k}") for k in range(30))


@pytest.mark.parametrize(
    ("program", "statuses"),
    [
        # hash-seed dependent iteration order of a str set (the original never rejected)
        (f"def f():\n    return ''.join(x[1:] + ',' for x in {{{WORDS}}})", {Status.NONDETERMINISTIC}),
        ("def f():\n    return [hash(w) for w in ('a', 'bc', 'def')]", {Status.NONDETERMINISTIC}),
        # address-based reprs
        ("class A:\n    pass\ndef f():\n    return repr(A())", {Status.NONDETERMINISTIC}),
        ("def f():\n    return str(object())", {Status.NONDETERMINISTIC}),
        ("def f():\n    return repr(f)", {Status.NONDETERMINISTIC}),
        # id() is blocked outright
        ("def f():\n    return id([]) % 2", {Status.REJECTED}),
        # randomness, clocks, pids, environment, entropy: not importable
        ("import random\ndef f():\n    return random.random()", {Status.REJECTED}),
        ("import time\ndef f():\n    return time.time()", {Status.REJECTED}),
        ("import os\ndef f():\n    return os.getpid()", {Status.REJECTED}),
        ("import os\ndef f():\n    return os.urandom(4)", {Status.REJECTED}),
        ("import os\ndef f():\n    return os.environ.get('HOME')", {Status.REJECTED}),
        ("import datetime\ndef f():\n    return str(datetime.datetime.now())", {Status.REJECTED}),
    ],
)
def test_nondeterministic_sources_are_rejected(executor, program, statuses):
    (result,) = executor.run_many([(program, "")], determinism_runs=2)
    assert result.status in statuses, result
    assert result.output is None and result.reason


def test_disagreeing_runs_are_reported_with_both_outputs(executor):
    (result,) = executor.run_many([("def f():\n    return str(object())", "")])
    assert result.status is Status.NONDETERMINISTIC
    assert "outputs differ between runs" in result.reason and " vs " in result.reason


def test_sorted_sets_and_dicts_are_deterministic(executor):
    program = (
        f"def f():\n    s = {{{WORDS}}}\n    d = {{w: len(w) for w in s}}\n"
        "    return sorted(s)[:3], s == set(d), d"
    )
    for runs in (2, 3, 4):
        (result,) = executor.run_many([(program, "")], determinism_runs=runs)
        assert result.status is Status.OK, result
    assert result.output.startswith("(['w0', 'w1', 'w10'], True, {'w0': 2")


def test_set_outputs_are_canonical_whatever_the_hash_seed(executor):
    # The set itself iterates differently per hash seed; its canonical repr does not.
    (result,) = executor.run_many([(f"def f():\n    return {{{WORDS}}}", "")], determinism_runs=4)
    assert result.status is Status.OK
    assert result.output == "{" + ", ".join(sorted(repr(f"w{k}") for k in range(30))) + "}"


def test_runs_use_different_hash_seeds(executor):
    # If both groups shared a seed, this would (almost) always agree.
    program = "def f():\n    return hash('absolute zero')"
    disagreements = sum(
        r.status is Status.NONDETERMINISTIC for r in executor.run_many([(program, "")] * 4)
    )
    assert disagreements == 4


def test_single_run_skips_the_check(executor):
    (result,) = executor.run_many([("def f():\n    return hash('abc') * 0 + 1", "")], determinism_runs=1)
    assert result.ok and result.output == "1"


def test_same_failure_in_every_run_keeps_its_status(executor):
    (result,) = executor.run_many([("def f():\n    return {}['k']", "")])
    assert result.status is Status.ERROR and result.reason == "KeyError: 'k'"
