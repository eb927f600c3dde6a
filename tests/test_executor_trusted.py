"""The trusted-test rule of check jobs (``check_many(trusted="test" | "reference")``).

A benchmark's own test code (and its reference solution) is trusted data: it may import
:data:`policy.TRUSTED_MODULES` (``random``, ``hashlib``, ...) and ``eval`` literal
expressions. The candidate keeps the hardened policy, runs first, in a namespace of its
own, and can reach neither those modules nor the test's namespace. Both parts keep the
sandbox's isolation (no files, network or processes).
"""

from __future__ import annotations

import pytest

from absolutezero_code.executor import Executor, Status
from absolutezero_code.executor.policy import TRUSTED_MODULES, PolicyViolation, check_program
from absolutezero_code.executor.trusted import safe_eval

ADD = "def add(a, b):\n    return a + b\n"
RANDOM_TEST = "import random\nx = random.randint(1, 100)\nassert candidate(x, 1) == x + 1\n"
HASH_TEST = "import hashlib\nassert candidate('a', 'b') == 'ab'\nassert hashlib.md5(b'a').hexdigest()[:4] == '0cc1'\n"


@pytest.fixture(scope="module")
def executor():
    with Executor(workers=1, timeout=3.0) as instance:
        yield instance


def check(executor, program, test, entry="add", trusted="test"):
    (result,) = executor.check_many([(program, test, entry)], trusted=trusted)
    return result


def test_trusted_tests_may_import_what_the_benchmark_needs(executor) -> None:
    for test in (RANDOM_TEST, HASH_TEST, "import cmath, array\nassert cmath.sqrt(-1) == 1j\n"):
        result = check(executor, ADD, test)
        assert result.status is Status.OK, result.reason
        untrusted = check(executor, ADD, test, trusted=None)  # the default stays hardened
        assert untrusted.status is Status.REJECTED and untrusted.reason.startswith("the test: import of module")


def test_the_candidate_keeps_the_hardened_policy(executor) -> None:
    rejected = {
        "import random\n" + ADD: "import of module 'random' is not allowed",
        "import hashlib\n" + ADD: "import of module 'hashlib' is not allowed",
        "def add(a, b):\n    return eval('a + b')\n": "use of the builtin 'eval' is not allowed",
        "def add(a, b):\n    return __import__('random').randint(a, b)\n": "__import__",
        "import os\n" + ADD: "import of module 'os' is not allowed",
    }
    for program, reason in rejected.items():
        result = check(executor, program, RANDOM_TEST)
        assert result.status is Status.REJECTED and reason in result.reason, (program, result.reason)


def test_the_candidate_cannot_reach_the_tests_namespace_or_modules(executor) -> None:
    failing = {
        # the test's `random` is a name of the test's namespace, not of the candidate's
        "def add(a, b):\n    return random.randint(0, 0) + a + b\n": "NameError",
        # a module shim holds no modules: statistics' own `random` is not there
        "import statistics\ndef add(a, b):\n    return statistics.random.randint(0, 0) + a + b\n": "AttributeError",
    }
    for program, reason in failing.items():
        result = check(executor, program, RANDOM_TEST)
        assert result.status is Status.ERROR and reason in result.reason, (program, result.reason)
    escapes = [
        "def add(a, b):\n    return globals()['random']\n",
        "def add(a, b):\n    return __builtins__\n",
        "def add(a, b):\n    g = (x for x in [1])\n    return g.gi_frame.f_back.f_globals\n",
        "def add(a, b):\n    try:\n        1 / 0\n    except Exception as e:\n        return e.__traceback__.tb_frame\n",
        "import sys\ndef add(a, b):\n    return sys._getframe(1).f_globals\n",
        "def add(a, b):\n    return add.__globals__\n",
    ]
    for program in escapes:
        result = check(executor, program, RANDOM_TEST)
        assert result.status is Status.REJECTED, (program, result)


def test_a_candidate_that_patches_its_modules_changes_nothing_in_the_test(executor) -> None:
    # the candidate's shims are not the test's: reassigning math.fabs or random-like
    # helpers in its own modules cannot make the test pass
    program = (
        "import math\nimport collections\nmath.fabs = lambda x: 0.0\nmath.isclose = lambda *a, **k: True\n"
        "def add(a, b):\n    return a - b\n"
    )
    test = "import math, random\nassert math.fabs(-2.0) == 2.0\nassert candidate(2, 2) == 4\n"
    result = check(executor, program, test)
    assert result.status is Status.ERROR and result.reason.startswith("test failed: AssertionError"), result.reason
    assert check(executor, program.replace("a - b", "a + b"), test).status is Status.OK


def test_the_tests_random_draws_are_reproducible_and_private(executor) -> None:
    # a private Random(0) behind the shim: the same draws in every job
    probe = "import random\nvalues = [random.randint(0, 10**9) for _ in range(4)]\nassert candidate(values[0], 0) == {}\n"
    from random import Random

    generator = Random(0)
    first = generator.randint(0, 10**9)
    results = [check(executor, ADD, probe.format(first)) for _ in range(3)]
    assert [r.status for r in results] == [Status.OK] * 3, [r.reason for r in results]


def test_trusted_code_stays_in_the_sandbox(executor) -> None:
    for test in (
        "import os\n",
        "open('/etc/passwd').read()\n",
        "import random\nrandom.os.getpid()\n",
        "x = eval(\"__import__('os')\")\n",
        "import hashlib\nhashlib.__loader__\n",
    ):
        result = check(executor, ADD, test)
        assert result.status in (Status.REJECTED, Status.ERROR), (test, result)
    result = check(executor, ADD, "x = eval(\"__import__('os')\")\n")
    assert "only literals and operators" in result.reason


def test_reference_solutions_are_trusted_code_too(executor) -> None:
    reference = "import hashlib\ndef h(t):\n    return hashlib.md5(t.encode('ascii')).hexdigest()\n"
    test = "assert candidate('a') == '0cc175b9c0f1b6a831c399e269772661'\n"
    assert check(executor, reference, test, "h", trusted="reference").status is Status.OK
    assert check(executor, reference, test, "h", trusted="test").status is Status.REJECTED
    evaluator = "def g(s):\n    return eval(s)\n"
    assert check(executor, evaluator, "assert candidate('2 ** 3 - 1') == 7\n", "g", trusted="reference").status is Status.OK
    (run,) = executor.run_many([("def f(s):\n    return eval(s)\n", "'3 * 4'")], determinism_runs=1, trusted="reference")
    assert run.status is Status.OK and run.output == "12"
    (hardened,) = executor.run_many([("def f(s):\n    return eval(s)\n", "'3 * 4'")], determinism_runs=1)
    assert hardened.status is Status.REJECTED


def test_bad_trust_levels_are_refused(executor) -> None:
    with pytest.raises(ValueError, match="trusted must be"):
        executor.check_many([(ADD, "pass\n", "add")], trusted="yes")
    with pytest.raises(ValueError, match="not stdin programs"):
        executor.check_many([("print(1)\n", "pass\n", None, "")], trusted="reference")
    with pytest.raises(ValueError, match="determinism_runs=1"):
        executor.run_many([("def f():\n    return 1\n", "")], trusted="reference")


def test_policy_and_safe_eval_in_process() -> None:
    assert TRUSTED_MODULES >= {"random", "hashlib"}
    check_program("import random\nx = eval('1')\n", trusted=True)
    for source in ("import random\n", "x = eval('1')\n"):
        with pytest.raises(PolicyViolation):
            check_program(source)
    with pytest.raises(PolicyViolation, match="'os'"):
        check_program("import os\n", trusted=True)
    with pytest.raises(PolicyViolation, match="__class__"):
        check_program("x = ().__class__\n", trusted=True)
    assert safe_eval("3+4*5-6//2") == 20 and safe_eval("[1, (2, -3), {'a': 2 ** 3}]") == [1, (2, -3), {"a": 8}]
    assert safe_eval("1 < 2 < 3 and not False") is True
    for bad in ("__import__('os')", "x + 1", "(1).real", "[i for i in range(3)]", "f()"):
        with pytest.raises(ValueError, match="only literals and operators"):
            safe_eval(bad)
    with pytest.raises(ValueError, match="names are not supported"):
        safe_eval("1", {"x": 1})
