"""Canonical reprs of plain values and literal parsing (pure functions, plus the
sandboxed canonicalize_many that the environment uses for model answers)."""

from __future__ import annotations

import ast

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from absolutezero_code.executor import Executor, Status
from absolutezero_code.executor.values import (
    InvalidLiteral,
    OutputTooLarge,
    UnsupportedValue,
    canonical_repr,
    parse_arguments,
    parse_literal,
)

scalars = (
    st.none()
    | st.booleans()
    | st.integers(-(10**30), 10**30)
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=8)
    | st.binary(max_size=8)
)
hashables = st.recursive(scalars, lambda inner: st.tuples(inner, inner), max_leaves=6)
values = st.recursive(
    scalars,
    lambda inner: st.lists(inner, max_size=4)
    | st.lists(inner, max_size=4).map(tuple)
    | st.dictionaries(hashables, inner, max_size=4)
    | st.sets(hashables, max_size=4),
    max_leaves=12,
)


def typed_equal(a: object, b: object) -> bool:
    """Reference type-aware equality: same exact types and equal values, recursively."""
    if type(a) is not type(b):
        return False
    if isinstance(a, (list, tuple)):
        return len(a) == len(b) and all(typed_equal(x, y) for x, y in zip(a, b))
    if isinstance(a, dict):
        return len(a) == len(b) and all(
            any(typed_equal(k, k2) and typed_equal(v, b[k2]) for k2 in b) for k, v in a.items()
        )
    if isinstance(a, set):
        return len(a) == len(b) and all(any(typed_equal(x, y) for y in b) for x in a)
    return a == b


@settings(max_examples=150, deadline=None)
@given(values)
def test_canonical_repr_round_trips(value):
    text = canonical_repr(value)
    again = ast.literal_eval(text)
    assert typed_equal(again, value)
    assert canonical_repr(again) == text


@settings(max_examples=150, deadline=None)
@given(values, values)
def test_canonical_reprs_equal_exactly_for_typed_equal_values(a, b):
    assert (canonical_repr(a) == canonical_repr(b)) == typed_equal(a, b)


@pytest.mark.parametrize(
    ("a", "b"),
    [(1, 1.0), (1, True), (0, False), ((1, 2), [1, 2]), ({1: "a"}, {1.0: "a"}), (b"a", "a"), (set(), {})],
)
def test_type_awareness(a, b):
    assert a == b or type(a) is not type(b)
    assert canonical_repr(a) != canonical_repr(b)


def test_order_is_canonical():
    assert canonical_repr({3, 1, 2}) == "{1, 2, 3}"
    assert canonical_repr({"b": 1, "a": [2, {"d": 1, "c": 0}]}) == "{'a': [2, {'c': 0, 'd': 1}], 'b': 1}"
    assert canonical_repr(set()) == "set()"
    assert canonical_repr((1,)) == "(1,)"
    assert canonical_repr(-0.0) == canonical_repr(0.0) == "0.0"


@pytest.mark.parametrize(
    ("value", "fragment"),
    [
        (float("nan"), "NaN"),
        ([float("inf")], "infinity"),
        (frozenset({1}), "frozenset"),
        (1j, "complex"),
        (type("Str", (str,), {})("x"), "not a plain literal"),
        ({"k": object()}, "'object'"),
        ((i for i in []), "generator"),
        (len, "builtin_function_or_method"),
        (10 ** 5000, "4300 digits"),
    ],
    ids=["nan", "inf", "frozenset", "complex", "str-subclass", "object", "generator", "function", "huge-int"],
)
def test_non_plain_values_are_unsupported(value, fragment):
    with pytest.raises(UnsupportedValue) as info:
        canonical_repr(value)
    assert fragment in str(info.value)


def test_recursive_and_deep_values_are_unsupported():
    loop: list = []
    loop.append(loop)
    with pytest.raises(UnsupportedValue, match="recursive"):
        canonical_repr(loop)
    deep: list = []
    for _ in range(150):
        deep = [deep]
    with pytest.raises(UnsupportedValue, match="nested deeper"):
        canonical_repr(deep)
    shared = [1]
    assert canonical_repr([shared, shared]) == "[[1], [1]]"  # sharing is not recursion


def test_length_limit_aborts_early():
    assert canonical_repr("x" * 8, limit=10) == "'xxxxxxxx'"
    with pytest.raises(OutputTooLarge):
        canonical_repr("x" * 9, limit=10)
    blowup: list = [0]
    for _ in range(60):
        blowup = [blowup, blowup]  # 2**60 leaves: must stop at the limit, not expand
    with pytest.raises(OutputTooLarge):
        canonical_repr(blowup, limit=10_000)


@pytest.mark.parametrize(
    ("text", "args"),
    [
        ("", ()),
        ("  \n", ()),
        ("1", (1,)),
        ("1,", (1,)),
        ("'a', [1, 2], {'k': (3,)}", ("a", [1, 2], {"k": (3,)})),
        ("(1, ), (1, ), (1, 2)", ((1,), (1,), (1, 2))),
        ("-5, 2.5, None, True, b'x', set()", (-5, 2.5, None, True, b"x", set())),
        ("1  # a comment", (1,)),
    ],
)
def test_parse_arguments(text, args):
    assert parse_arguments(text) == args


@pytest.mark.parametrize(
    "text",
    [
        "0) or True or (0",
        "1), (2",
        "1)\n_(2",
        "x",
        "f(1)",
        "[i for i in range(3)]",
        "*[1, 2]",
        "a=1",
        "__import__('os').system('true')",
        "1 +",
        "'a' + 'b'",
        "1) # ",
        "\x00",
    ],
)
def test_parse_arguments_rejects_non_literals_and_breakouts(text):
    with pytest.raises(InvalidLiteral):
        parse_arguments(text)


def test_parse_literal():
    assert parse_literal(" [1, {2}] \n") == [1, {2}]
    for text in ("", "1, 2)", "x", "print(1)", "lambda: 1"):
        with pytest.raises(InvalidLiteral):
            parse_literal(text)


def test_canonicalize_many_in_the_sandbox_matches_the_pure_function():
    texts = ["{'b': 1, 'a': 2}", "[3, {2, 1}]", "(1,)", "'x' * 3", "1" * 5000, "[" * 500 + "]" * 500]
    with Executor(workers=1) as executor:
        results = executor.canonicalize_many(texts)
    assert [r.output for r in results[:3]] == [canonical_repr(parse_literal(t)) for t in texts[:3]]
    assert results[3].status is Status.ERROR
    assert results[4].status is Status.ERROR and "4300" in results[4].reason  # int too long
    assert results[5].status is Status.ERROR  # nesting beyond the parser
