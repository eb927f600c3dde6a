"""Executor.check_many: the "program plus test" job kind of the code benchmarks.

Same isolation and limits as run_many (fresh forked child, static policy for *both* the
program and the test, audit hook, limits); pass iff nothing raises; the test runs in a
namespace of its own; stdin programs get input(), a sys shim and captured output.
"""

from __future__ import annotations

import math
from pathlib import Path

import pytest

from absolutezero_code.executor import Executor, Status

ADD = "def add(a, b):\n    return a + b\n"
TEST = "assert candidate(1, 2) == 3\nassert candidate('a', 'b') == 'ab'\n"


@pytest.fixture(scope="module")
def executor():
    with Executor(workers=1, timeout=2.0) as instance:
        yield instance


def check(executor, *job):
    (result,) = executor.check_many([job])
    return result


def test_pass_fail_and_order(executor) -> None:
    jobs = [(f"def add(a, b):\n    return a + b + {k}\n", "assert candidate(1, 2) == 3\n", "add") for k in range(6)]
    results = executor.check_many(jobs)
    assert [r.status for r in results] == [Status.OK] + [Status.ERROR] * 5
    assert results[0].output == "" and results[0].reason == ""
    assert results[1].reason == "test failed: AssertionError"
    assert executor.check_many([]) == []


@pytest.mark.parametrize(
    "program, test, entry, status, reason",
    [
        (ADD, TEST, "add", Status.OK, ""),
        ("def add(a, b):\n    return 1 / 0\n", TEST, "add", Status.ERROR, "test failed: ZeroDivisionError"),
        ("raise ValueError('at import')\n", TEST, "add", Status.ERROR, "the program raised: ValueError: at import"),
        ("def other():\n    pass\n", TEST, "add", Status.ERROR, "the program defines no 'add'"),
        ("def add(a, b)\n    return a\n", TEST, "add", Status.REJECTED, "syntax error"),
        (ADD, "assert candidate(1, 2) ==\n", "add", Status.REJECTED, "the test: syntax error"),
        ("x = 1\n", "assert candidate is None\n", None, Status.OK, ""),
        ("raise SystemExit(0)\n", "pass\n", None, Status.ERROR, "the program raised: SystemExit"),
    ],
)
def test_statuses_and_reasons(executor, program, test, entry, status, reason) -> None:
    result = check(executor, program, test, entry)
    assert result.status is status
    assert result.reason.startswith(reason), result.reason


def test_malicious_programs_and_tests_are_rejected(executor, tmp_path: Path) -> None:
    target = tmp_path / "pwned"
    attempts = [
        ("import os\n" + ADD, TEST, "add"),  # static: not an allowed module
        (f"def add(a, b):\n    return open({str(target)!r}, 'w')\n", TEST, "add"),
        ("def add(a, b):\n    return open('/etc/hostname').read()\n", TEST, "add"),
        ("import operator\nleak = operator.attrgetter('__class__')(1)\n" + ADD, TEST, "add"),  # run time
        ("def add(a, b):\n    try:\n        id(a)\n    except BaseException:\n        pass\n    return a + b\n", TEST, "add"),
        (ADD, "import os\n" + TEST, "add"),  # the test passes the same policy
        (ADD, "print(open('/etc/hostname').read())\n", "add"),
        ("import sys\n" + ADD, TEST, "add"),  # sys only exists for stdin programs
        ("x = input()\n", "pass\n", None),  # so does input()
    ]
    results = executor.check_many(attempts)
    assert [r.status for r in results] == [Status.REJECTED] * len(attempts), [r.reason for r in results]
    assert results[5].reason.startswith("the test: import of module 'os'")
    assert not target.exists()


def test_the_test_cannot_be_fooled_through_shared_names(executor) -> None:
    tricks = [
        # a builtin the test uses, shadowed in the program's globals
        ("def abs(x):\n    return 0\ndef g(x):\n    return 5\n", "assert abs(candidate(1) - 3) < 1e-9\n"),
        # a module function the test uses, reassigned in the program's shim
        ("import math\nmath.fabs = lambda x: 0.0\ndef g(x):\n    return 5\n", "import math\nassert math.fabs(candidate(1) - 3) < 1e-9\n"),
        # a helper the test defines later cannot be pre-empted either
        ("def check(c):\n    pass\ndef g(x):\n    return 5\n", "def check(c):\n    assert c(1) == 3\ncheck(candidate)\n"),
    ]
    results = executor.check_many([(program, test, "g") for program, test in tricks])
    assert [r.status for r in results] == [Status.ERROR] * 3
    assert math.fabs(-1.0) == 1.0  # this process's modules are untouched


def test_limits_apply(executor) -> None:
    loop = check(executor, "def add(a, b):\n    while True:\n        pass\n", TEST, "add")
    memory = check(executor, "x = [0] * (10 ** 9)\n", "pass\n", None)
    printing = check(executor, "def add(a, b):\n    print('x' * 2_000_000)\n    return a + b\n", TEST, "add")
    assert loop.status is Status.TIMEOUT
    assert memory.status is Status.MEMORY
    assert printing.status is Status.OUTPUT_LIMIT
    slow = executor.check_many([("def add(a, b):\n    while True:\n        pass\n", TEST, "add")], timeout=0.3)
    assert slow[0].status is Status.TIMEOUT and "0.3" in slow[0].reason


def test_a_program_needing_the_full_tier_runs(executor) -> None:
    program = "from typing import List\ndef add(a: List[int], b: List[int]) -> List[int]:\n    return a + b\n"
    assert check(executor, program, "assert candidate([1], [2]) == [1, 2]\n", "add").ok
    assert check(executor, ADD, "from fractions import Fraction\nassert candidate(Fraction(1, 2), 1) == Fraction(3, 2)\n", "add").ok


STDIO_TEST = "assert stdout == '6\\n', repr(stdout)\n"


@pytest.mark.parametrize(
    "program",
    [
        "n = int(input())\nprint(sum(map(int, input().split())) * n)\n",
        "import sys\nn = int(sys.stdin.readline())\nprint(sum(int(x) for x in sys.stdin.read().split()) * n)\n",
        "import sys\ndata = sys.stdin.buffer.read().split()\nsys.stdout.write(str(int(data[0]) * sum(map(int, data[1:]))) + '\\n')\n",
        "from sys import stdin\nlines = stdin.readlines()\nprint(int(lines[0]) * sum(map(int, lines[1].split())))\n",
        "import sys\ninput = sys.stdin.readline\nn = int(input())\nprint(n * 3)\nsys.exit(0)\nprint('not reached')\n",
        "def main():\n    n = int(input())\n    print(n * sum(map(int, input().split())))\n    exit()\n\nif __name__ == '__main__':\n    main()\n",
        "import sys\nsys.setrecursionlimit(10 ** 6)\nprint(6, file=sys.stdout)\nprint('debug', file=sys.stderr)\n",
    ],
)
def test_stdin_programs_read_input_and_print_what_is_checked(executor, program) -> None:
    result = check(executor, program, STDIO_TEST, None, "2\n1 2\n")
    assert result.ok, result.reason


def test_stdin_mode_keeps_the_sandbox(executor) -> None:
    attempts = [
        "import sys\nprint(sys.stdout._state)\n",  # no guard state behind the streams
        "import sys\nprint(sys.modules)\n",  # the shim has no modules
        "import sys\nx = sys.stdout.write.__closure__\n",
        "import os\nprint(1)\n",
        "print(open(0).read())\n",
        "import sys\nx = input()\nx = input()\n",  # EOF is an error, not a hang
    ]
    results = executor.check_many([(p, "pass\n", None, "1\n") for p in attempts])
    assert [r.status for r in results] == [Status.ERROR, Status.ERROR, Status.REJECTED, Status.REJECTED, Status.REJECTED, Status.ERROR]
    assert "EOFError" in results[5].reason
    wrong = check(executor, "print(7)\n", STDIO_TEST, None, "")
    assert wrong.status is Status.ERROR and "test failed: AssertionError: '7\\n'" in wrong.reason


def test_run_jobs_keep_the_strict_policy(executor) -> None:
    for program in ("import sys\ndef f():\n    return 1\n", "def f():\n    return input()\n", "def f():\n    exit()\n"):
        (result,) = executor.run_many([(program, "")])
        assert result.status is Status.REJECTED


@pytest.mark.parametrize(
    "jobs, message",
    [
        ("def f(): pass", "sequence of"),
        ([("only program",)], "must be a"),
        ([(1, "pass")], "must both be str"),
        ([(ADD, TEST, "not a name")], "entry_point must be an identifier"),
        ([(ADD, TEST, "add", 5)], "stdin must be a str"),
    ],
)
def test_malformed_jobs_are_type_errors(executor, jobs, message) -> None:
    with pytest.raises(TypeError, match=message):
        executor.check_many(jobs)
