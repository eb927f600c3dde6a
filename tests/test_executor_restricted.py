"""RestrictedPython as the second static layer (absolutezero_code.executor.restricted)."""

from __future__ import annotations

import ast

import pytest

from absolutezero_code.executor import Executor, Status
from absolutezero_code.executor import channel
from absolutezero_code.executor.prepare import compile_program
from absolutezero_code.executor.restricted import restriction_errors


@pytest.mark.parametrize(
    ("program", "fragment"),
    [
        ("def f():\n    x = 1\n    try:\n        x = 2\n    except* ValueError:\n        x = 3\n    return x", "TryStar statements are not allowed (line 3)"),
        ("async def f():\n    return 1", "AsyncFunctionDef statements are not allowed (line 1)"),
        ("class A(metaclass=type):\n    pass\ndef f():\n    return 1", 'keyword argument "metaclass"'),
        ("def f(g):\n    return g.f_generator", '"f_generator" is a restricted attribute (line 2)'),
    ],
)
def test_restrictedpython_rejects_what_the_policy_lets_through(program, fragment):
    result, _ = compile_program(program, restricted=False)
    assert not isinstance(result, list), "the hand-written policy alone accepts it"
    rejected, _ = compile_program(program)
    assert rejected[0] == "rejected" and rejected[2].startswith("RestrictedPython: "), rejected
    assert fragment in rejected[2]


@pytest.mark.parametrize(
    "program",
    [
        "def f(d):\n    d['a'] += 1\n    d[1:2] += [0]\n    return d",  # refused by RestrictedPython's default
        "def f(x):\n    __ = x\n    _y = __\n    return _y",  # likewise (names starting with '_')
        "class A:\n    def __init__(self):\n        self._items = []\n        self._items += [1]\n"
        "    def __repr__(self):\n        return 'A'\ndef f():\n    return repr(A())",
        "def f(x):\n    total: int = 0\n    return total + x",
        "def f(x):\n    match x:\n        case {'a': 1, **rest}:\n            return rest\n"
        "        case [1, *others]:\n            return others\n        case int(real=r):\n            return r\n"
        "        case _:\n            return None",
        "def f(*args, **kwargs):\n    print(args)\n    return [a for a in args], {k: v for k, v in kwargs.items()}",
    ],
)
def test_this_sandbox_policy_accepts_ordinary_code_restrictedpython_would_refuse(program):
    assert restriction_errors(ast.parse(program)) == []
    code, _ = compile_program(program)
    assert not isinstance(code, list), code


def test_the_layer_runs_in_the_workers_and_can_be_switched_off():
    program = "def f():\n    x = 1\n    try:\n        x = 2\n    except* ValueError:\n        x = 3\n    return x"
    allowed = "def f(d):\n    d['k'] += 1\n    __ = d\n    return __"
    with Executor(workers=1) as executor:
        refused, ok = executor.run_many([(program, ""), (allowed, "{'k': 1}")])
    assert refused.status is Status.REJECTED and "TryStar" in refused.reason
    assert ok.status is Status.OK and ok.output == "{'k': 2}"
    with Executor(workers=1, restricted_python=False) as executor:
        (unrestricted,) = executor.run_many([(program, "")])
    assert unrestricted.status is Status.OK and unrestricted.output == "2"


def test_a_missing_restrictedpython_is_a_clear_error(monkeypatch):
    monkeypatch.setattr("importlib.util.find_spec", lambda name: None)
    with pytest.raises(ModuleNotFoundError, match="pip install 'RestrictedPython"):
        channel.restricted_python_root()
