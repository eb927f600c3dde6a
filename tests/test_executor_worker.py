"""Worker internals that the speed work relies on: the limit plan, the result lines a
child writes, and the trainer-side check of reply lines. (What a forked child keeps is
in test_executor_forking.py.)"""

from __future__ import annotations

import json
import resource

import pytest

from absolutezero_code.executor import channel, child, guard, worker


def test_apply_limits_matches_the_plan():
    plan = dict(guard.limit_plan(512, 0.2))
    assert plan[resource.RLIMIT_CPU] == (2, 2)  # next whole second plus one
    assert plan[resource.RLIMIT_AS] == (512 << 20, 512 << 20)
    seen = []
    guard.apply_plan(tuple(plan.items()), setrlimit=lambda limit, pair: seen.append((limit, pair)))
    assert dict(seen) == plan


@pytest.mark.parametrize(
    "result",
    [
        ["ok", "'a\\nb'\udcff \u00e9", ""],
        ["error", None, 'ValueError: "quoted"\n\ttab'],
        ["rejected", None, "blocked operation open('/etc/passwd')"],
    ],
)
def test_result_lines_are_the_json_of_the_result_on_one_line(result):
    line = worker._encode(result)
    assert b"\n" not in line
    assert json.loads(line) == result
    compact = json.dumps(result, ensure_ascii=False, separators=(",", ":"))
    assert line == compact.encode("utf-8", "backslashreplace")


@pytest.mark.parametrize(
    "line",
    [
        b'["ok", null, ""]',  # ok without an output
        b'["error", "text", ""]',  # an output on a failure
        b'["fine", "1", ""]',  # unknown status
        b'["ok", "1"]',
        b"not json",
    ],
)
def test_the_trainer_rejects_malformed_reply_lines(line):
    with pytest.raises(channel._WorkerFailure):
        channel._decode(line)


def test_the_trainer_accepts_well_formed_reply_lines():
    assert channel._decode(b'["ok", "[1, 2]", ""]') == ["ok", "[1, 2]", ""]
    assert channel._decode(b'["timeout", null, "exceeded"]') == ["timeout", None, "exceeded"]


@pytest.mark.parametrize(
    "result",
    [
        ["ok", "'a\\nb'\udcff \u00e9", ""],
        ["error", None, 'ValueError: "quoted"\n\ttab \udcff'],
        ["nondeterministic", None, ""],
        ["ok", "", ""],
    ],
)
def test_a_child_result_becomes_the_same_json_line_in_the_worker(result):
    line = worker._result_line_of(child.child_result(result))
    assert line == worker._encode(result)
    assert b"\n" not in line


@pytest.mark.parametrize("data", [b"9oops", b"x", b"0\xff\xfe"])
def test_garbled_child_results_become_malformed_results(data):
    assert json.loads(worker._result_line_of(data)) == worker._malformed()
