"""The static policy (AST) and its run-time backstops (shims, guarded builtins, hook)."""

from __future__ import annotations

import pytest

from absolutezero_code.executor import Executor, Status
from absolutezero_code.executor.prepare import compile_program
from absolutezero_code.executor.policy import (
    ALLOWED_MODULES,
    PolicyViolation,
    attribute_allowed,
    check_program,
)


@pytest.fixture(scope="module")
def executor():
    with Executor(workers=1, timeout=2.0) as instance:
        yield instance


@pytest.mark.parametrize(
    ("program", "fragment"),
    [
        ("import os\ndef f():\n    return 1", "import of module 'os'"),
        ("from subprocess import run\ndef f():\n    return 1", "'subprocess'"),
        ("import random\ndef f():\n    return random.random()", "'random'"),
        ("import time\ndef f():\n    return time.time()", "'time'"),
        ("from . import x\ndef f():\n    return 1", "relative imports"),
        ("def f():\n    return __import__('os')", "'__import__'"),
        ("def f():\n    return open('/etc/passwd').read()", "builtin 'open'"),
        ("def f():\n    return eval('1')", "builtin 'eval'"),
        ("def f():\n    exec('x = 1')", "builtin 'exec'"),
        ("def f():\n    return compile('1', 'x', 'eval')", "builtin 'compile'"),
        ("def f(x):\n    return getattr(x, 'real')", "builtin 'getattr'"),
        ("def f():\n    return globals()", "builtin 'globals'"),
        ("def f():\n    return ().__class__.__bases__[0].__subclasses__()", "'__subclasses__'"),
        ("def f():\n    return f.__globals__", "'__globals__'"),
        ("def f():\n    return __builtins__", "'__builtins__'"),
        ("def f():\n    return f.__code__.co_consts", "'co_consts'"),
        ("def f():\n    g = (i for i in [1])\n    return g.gi_frame.f_back", "'f_back'"),
        ("def f():\n    try:\n        1/0\n    except Exception as e:\n        return e.__traceback__", "'__traceback__'"),
        ("def f(x):\n    return x.f_globals", "'f_globals'"),
        ("def f():\n    global __builtins__\n    return 1", "'__builtins__'"),
        ("from string import Formatter as __x__\ndef f():\n    return 1", "__x__"),
        ("def f(**__kw__):\n    return 1", "__kw__"),
        ("def __class__():\n    return 1", "__class__"),
        ("def f():\n    return 1\nif x\n", "syntax error"),
    ],
)
def test_static_policy_rejects(program, fragment):
    """Both static layers, as the executor runs them (policy, then RestrictedPython)."""
    result, _ = compile_program(program)
    assert isinstance(result, list) and result[0] == "rejected", result
    assert fragment in result[2]


@pytest.mark.parametrize(
    "program",
    [
        "def f(input):\n    return input.upper()",  # shadowing a forbidden builtin is fine
        "import math, collections, itertools, functools, re, heapq, bisect\ndef f():\n    return 1",
        "from collections import Counter, defaultdict\nfrom typing import List\ndef f(a: List[int]):\n    return a",
        "class A:\n    def __init__(self, x):\n        self._x = x\n    def __eq__(self, o):\n        return True\n"
        "    def __hash__(self):\n        return 1\ndef f():\n    return A(1) == 2",
        "class B(dict):\n    def __init__(self):\n        super().__init__(a=1)\ndef f():\n    return len(B())",
        "def f():\n    return __name__",
        "def f(id):\n    return id",
    ],
)
def test_static_policy_accepts_ordinary_programs(program):
    check_program(program)
    code, _ = compile_program(program)
    assert not isinstance(code, list), code


def test_attribute_rule():
    assert attribute_allowed("upper") and attribute_allowed("_private") and attribute_allowed("__init__")
    for name in ("__class__", "__dict__", "__subclasses__", "__getattribute__", "gi_frame", "tb_frame", "mro"):
        assert not attribute_allowed(name), name


def test_rejected_programs_never_run(executor, tmp_path):
    marker = tmp_path / "ran"
    program = f"import os\ndef f():\n    return 1\nopen({str(marker)!r}, 'w').write('x')"
    (result,) = executor.run_many([(program, "")])
    assert result.status is Status.REJECTED
    assert not marker.exists()


def test_policy_rejection_comes_back_through_the_executor(executor):
    (result,) = executor.run_many([("def f():\n    return __import__('os').getpid()", "")])
    assert result.status is Status.REJECTED and "__import__" in result.reason


def test_allowed_modules_work_in_the_sandbox(executor):
    program = (
        "import math, heapq, bisect, string, statistics, textwrap, unicodedata, copy\n"
        "from collections import Counter, deque\nfrom fractions import Fraction\n"
        "from decimal import Decimal\nfrom functools import reduce, lru_cache\n"
        "import itertools, operator, re\nfrom collections.abc import Sequence\n"
        "def f(xs):\n"
        "    h = list(xs); heapq.heapify(h)\n"
        "    return (math.gcd(12, 18), heapq.heappop(h), bisect.bisect([1, 3], 2),\n"
        "            Counter('aab')['a'], str(Fraction(1, 3) + 1), str(Decimal('1.1') * 2),\n"
        "            reduce(operator.add, xs), list(itertools.accumulate(xs)),\n"
        "            re.sub('a', 'b', 'aa'), string.ascii_lowercase[:3], statistics.median(xs),\n"
        "            isinstance(xs, Sequence), copy.deepcopy([xs])[0], unicodedata.name('a'))\n"
    )
    (result,) = executor.run_many([(program, "[3, 1, 2]")])
    assert result.status is Status.OK, result.reason
    assert result.output == (
        "(6, 1, 1, 2, '4/3', '2.2', 6, [3, 4, 6], 'bb', 'abc', 2, True, [3, 1, 2], "
        "'LATIN SMALL LETTER A')"
    )


@pytest.mark.parametrize(
    ("program", "status", "fragment"),
    [
        # Module shims hold no submodules or private names: no route to sys / os.
        ("import typing\ndef f():\n    return typing.sys", Status.ERROR, "no attribute 'sys'"),
        ("import collections\ndef f():\n    return collections._sys", Status.ERROR, "no attribute '_sys'"),
        ("import string\ndef f():\n    return string.Formatter", Status.ERROR, "no attribute 'Formatter'"),
        ("import collections\ndef f():\n    return collections.namedtuple", Status.ERROR, "namedtuple"),
        # String-based attribute access is checked at run time.
        ("import operator\ndef f():\n    return operator.attrgetter('__class__')(1)", Status.REJECTED, "'__class__'"),
        ("import operator\ndef f():\n    return operator.methodcaller('__subclasses__')(object)", Status.REJECTED, "__subclasses__"),
        ("import operator\ndef f():\n    return operator.attrgetter('real.__class__')(1)", Status.REJECTED, "'__class__'"),
        # Audited operations reached without forbidden syntax are blocked by the hook.
        ("def f():\n    return id(1)", Status.REJECTED, "builtins.id"),
        ("def f():\n    return hasattr(f, '__code__')", Status.REJECTED, "__code__"),
    ],
)
def test_runtime_backstops(executor, program, status, fragment):
    (result,) = executor.run_many([(program, "")])
    assert result.status is status, result
    assert fragment in result.reason


def test_a_swallowed_violation_still_rejects(executor):
    program = (
        "def f():\n    try:\n        id(1)\n    except BaseException:\n        pass\n    return 1"
    )
    (result,) = executor.run_many([(program, "")])
    assert result.status is Status.REJECTED and "builtins.id" in result.reason


def test_unknown_codecs_fail_like_unknown_encodings(executor):
    program = "def f(s, e):\n    try:\n        return s.encode(e)\n    except LookupError:\n        return 'unknown'"
    known, rare = executor.run_many([(program, "'ab', 'shift_jis'"), (program, "'ab', 'cp037'")])
    assert known.output == "b'ab'"
    assert rare.output == "'unknown'"


def test_allow_list_is_documented_and_safe():
    forbidden = {"os", "sys", "subprocess", "socket", "random", "time", "threading", "io", "builtins", "importlib", "ctypes"}
    assert not forbidden & ALLOWED_MODULES
