"""Sandbox tiers: light workers leave out the heavy modules and defer programs that
import them to full workers; callers get the same results either way."""

from __future__ import annotations

import pytest

from absolutezero_code.executor import Executor, Status, guard, policy, prepare

HEAVY = sorted(policy.HEAVY_MODULES)

_JOBS = [
    ("def f(a):\n    return sorted(a)", "[3, 1, 2]"),
    ("from typing import List\ndef f(a: List[int]) -> int:\n    return sum(a)", "[1, 2]"),
    ("import statistics\ndef f(a):\n    return statistics.median(a)", "[5, 1, 3]"),
    ("def f(x):\n    from fractions import Fraction\n    return str(Fraction(x, 6))", "4"),
    ("import decimal as d\ndef f():\n    return str(d.Decimal('1.10') + d.Decimal('2.2'))", ""),
    ("import math, collections\ndef f(n):\n    return math.comb(n, 2), collections.Counter('abca')['a']", "5"),
    ("from typing import List\ndef f():\n    return 1 / 0", ""),
    ("import statistics\ndef f():\n    return statistics.NormalDist().samples(2)", ""),
    ("import typing\ndef f():\n    return open('/etc/passwd').read()", ""),
]


@pytest.mark.parametrize(
    ("program", "imports"),
    [
        ("def f():\n    return 1", set()),
        ("import math, collections.abc\ndef f():\n    from typing import List\n    return 1",
         {"math", "collections.abc", "typing"}),
        ("from statistics import mean as m\nimport decimal as d\ndef f():\n    return 1",
         {"statistics", "decimal"}),
    ],
)
def test_the_policy_reports_every_import_statement(program, imports):
    tree, found = policy.check_program_imports(program)
    assert found == imports
    assert policy.check_program(program).body[0].__class__ is tree.body[0].__class__


def test_heavy_modules_are_allowed_modules():
    assert policy.HEAVY_MODULES < policy.ALLOWED_MODULES


@pytest.mark.parametrize("module", HEAVY)
def test_programs_importing_a_heavy_module_need_the_full_tier(module):
    program = f"def f():\n    import {module}\n    return 1"
    code, needs_full = prepare.compile_program(program)
    assert needs_full and not isinstance(code, list)  # compiles; only the full tier runs it
    assert prepare.compile_program("import math\ndef f():\n    return 1")[1] is False


def test_the_light_tier_builds_no_shim_for_heavy_modules():
    shims = guard.build_shims(policy.ALLOWED_MODULES - policy.HEAVY_MODULES)
    assert not set(shims) & policy.HEAVY_MODULES
    assert set(shims) == policy.ALLOWED_MODULES - policy.HEAVY_MODULES
    with pytest.raises(ValueError, match="not allowed modules"):
        guard.build_shims(frozenset({"os"}))


def test_tiered_and_full_only_executors_give_the_same_results():
    with Executor(workers=1, timeout=2.0) as tiered, Executor(workers=1, timeout=2.0, module_tiers=False) as full:
        light_only = len(tiered.worker_pids())
        tiered_results = tiered.run_many(_JOBS)
        assert len(tiered.worker_pids()) == 2 * light_only  # full workers started on need
        full_results = full.run_many(_JOBS)
        assert len(full.worker_pids()) == 2  # never more than its own workers
    # Same statuses and outputs; reasons too, except the nondeterministic job's (which
    # quotes its random draws).
    assert [(r.status, r.output) for r in tiered_results] == [(r.status, r.output) for r in full_results]
    assert [r.reason for r in tiered_results][:7] == [r.reason for r in full_results][:7]
    statuses = [result.status for result in tiered_results]
    assert statuses == [Status.OK] * 6 + [Status.ERROR, Status.NONDETERMINISTIC, Status.REJECTED]
    assert [result.output for result in tiered_results[:6]] == [
        "[1, 2, 3]", "3", "3", "'2/3'", "'3.30'", "(10, 2)"]


def test_light_only_batches_never_start_full_workers():
    with Executor(workers=1) as executor:
        before = executor.worker_pids()
        executor.run_many([("def f(a):\n    return a + 1", "1")] * 5)
        assert executor.worker_pids() == before


def test_single_runs_are_deferred_too():
    with Executor(workers=1) as executor:
        (result,) = executor.run_many(
            [("from typing import Dict\ndef f():\n    return 2", "")], determinism_runs=1)
    assert result.status is Status.OK and result.output == "2"


_CODEC = "def f(s, e):\n    try:\n        return s.encode(e)\n    except LookupError:\n        return 'unknown'"


def test_a_light_run_needing_a_full_tier_codec_is_rerun_by_the_full_tier():
    jobs = [(_CODEC, "'ab', 'shift_jis'"), (_CODEC, "'ab', 'cp037'"), (_CODEC, "'ab', 'cp1252'")]
    with Executor(workers=1) as tiered, Executor(workers=1, module_tiers=False) as full:
        before = len(tiered.worker_pids())
        (light_codec,) = tiered.run_many(jobs[2:])
        assert len(tiered.worker_pids()) == before  # a preloaded light codec: no deferral
        results = tiered.run_many(jobs)
        assert len(tiered.worker_pids()) == 2 * before  # the others went to full workers
        assert results == full.run_many(jobs)
    assert [result.output for result in results] == ["b'ab'", "'unknown'", "b'ab'"]
    assert light_codec.output == "b'ab'"


def test_the_light_tier_preloads_no_full_tier_codec():
    assert guard.FULL_TIER_CODECS < set(guard.PRELOADED_CODECS)


def test_closing_stops_the_full_workers_too():
    executor = Executor(workers=1)
    executor.run_many([("from typing import List\ndef f():\n    return 1", "")])
    pids = executor.worker_pids()
    assert len(pids) == 4
    executor.close()
    for pid in pids:
        try:
            state = open(f"/proc/{pid}/stat").read().rsplit(")", 1)[1].split()[0]
        except FileNotFoundError:
            continue
        assert state == "Z" or state == "X"  # gone (a zombie until its parent reaps it)
