"""Static parsing of model responses for the code environment (no executor involved)."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from absolutezero_code.parsing import (
    FormatError,
    argument_key,
    check_arguments,
    check_literal,
    check_program,
    extract_answer,
    fences,
    parse_induction_proposal,
    parse_input_answer,
    parse_output_answer,
    parse_program_answer,
    parse_proposal,
    program_key,
)

PROGRAM = "def f(a):\n    return a"


def proposal(program: str = PROGRAM, input: str = "'hi'", tag: str = "python") -> str:
    return f"<think>plan</think>\n<answer>\n```{tag}\n{program}\n```\n```input\n{input}\n```\n</answer>"


# --- answer extraction -------------------------------------------------------------


def test_answer_takes_last_block_and_tolerates_missing_think_and_close():
    text = "<answer>first</answer> more words <answer>  second\n"
    assert extract_answer(text) == "second"
    assert extract_answer("<think>x</think><answer>a</answer>trailing") == "a"


@pytest.mark.parametrize(
    "text, reason",
    [("no tags at all", "no <answer> block"), ("<answer>   </answer>", "empty <answer> block")],
)
def test_answer_rejections(text, reason):
    with pytest.raises(FormatError, match=reason):
        extract_answer(text)


def test_fence_tags_are_normalised_and_unclosed_last_fence_is_kept():
    blocks = fences("```py\nx = 1\n```\n```Python3\ny\n```\n```\nz\n```\n```input\n1, 2")
    assert [(b.tag, b.content) for b in blocks] == [
        ("python", "x = 1"), ("python", "y"), ("", "z"), ("input", "1, 2"),
    ]


# --- programs ---------------------------------------------------------------------


@pytest.mark.parametrize("tag", ["python", "py", ""])
def test_proposal_program_fence_variants(tag):
    program, input = parse_proposal(proposal(tag=tag), 1000, 100)
    assert program == PROGRAM
    assert input == "'hi'"


def test_program_rejections_have_specific_reasons():
    with pytest.raises(FormatError, match="program does not define f"):
        check_program("def g(a):\n    return a", 1000)
    with pytest.raises(FormatError, match=r"syntax error in program at line 3"):
        check_program("def f(a):\n    x = 1\n    return (a\n", 1000)
    with pytest.raises(FormatError, match="more than the limit of 10"):
        check_program(PROGRAM, 10)
    with pytest.raises(FormatError, match="empty program"):
        check_program("  \n", 10)
    with pytest.raises(FormatError, match=r"no ```python block in the answer"):
        parse_proposal("<answer>```input\n1\n```</answer>", 1000, 100)
    with pytest.raises(FormatError, match=r"no ```input block in the answer"):
        parse_proposal(f"<answer>```python\n{PROGRAM}\n```</answer>", 1000, 100)


def test_program_accepts_helpers_classes_and_lambda_assignment():
    source = "import math\nclass P:\n    pass\ndef helper(x):\n    return x\ndef f(a):\n    return helper(a)"
    assert check_program(source, 1000) == source
    assert check_program("f = lambda a: a", 1000) == "f = lambda a: a"


def test_last_defining_program_fence_wins():
    answer = f"<answer>```python\nx = 1\n```\n```python\n{PROGRAM}\n```</answer>"
    assert parse_program_answer(answer, 1000) == PROGRAM


def test_program_key_ignores_formatting_and_comments():
    assert program_key("def f(a):  # c\n    return a") == program_key("def f(a):\n  return (a)")
    assert program_key("def f(a):\n    return a") != program_key("def f(b):\n    return b")


# --- argument lists and literals ------------------------------------------------------


@pytest.mark.parametrize(
    "text",
    ["'abc', 3", "[1, 2]", "(1, ), (1, ), (1, 2)", "{'a': [1.5, -2]}, None", "set(), True", "-3  # comment", "b'raw', -1.5"],
)
def test_arguments_accept_literal_lists(text):
    assert check_arguments(text, 100) == text


@pytest.mark.parametrize(
    "text, reason",
    [
        ("", "empty input"),
        ("0) or True or (0", "not a comma-separated list"),
        ("1)(2", "not a comma-separated list"),
        ("x", "is not a plain literal"),
        ("__import__('os')", "is not a plain literal"),
        ("[1] * 3", "is not a plain literal"),
        ("1+2j", "is not a plain literal"),
        ("-True", "is not a plain literal"),
        ("a=1", "positional arguments only"),
        ("*[1, 2]", "positional arguments only"),
        ("'x' * 500", "more than the limit"),
    ],
)
def test_arguments_reject_non_literals_and_injection(text, reason):
    with pytest.raises(FormatError, match=reason):
        check_arguments(text, 8 if "500" in text else 100)


def test_argument_key_is_formatting_independent_and_type_aware():
    assert argument_key("'a', [1,2]") == argument_key('"a" , [1, 2]')
    assert argument_key("1") != argument_key("1.0")
    assert argument_key("1") != argument_key("True")
    assert argument_key("(1, 2)") != argument_key("1, 2")  # one tuple vs two arguments


def test_literal_check():
    assert check_literal("[(4, 1), 'x']", 100) == "[(4, 1), 'x']"
    assert check_literal("1, 2", 100) == "1, 2"
    for bad in ["f(1)", "x", "1 if True else 2", "lambda: 1"]:
        with pytest.raises(FormatError, match="not a plain literal|not a Python literal"):
            check_literal(bad, 100)


# --- solver answers -----------------------------------------------------------------


def test_output_answer_fence_variants():
    assert parse_output_answer("<answer>```output\n'ab'\n```</answer>", 100) == "'ab'"
    assert parse_output_answer("<answer>\n```\n[1, 2]\n```\n</answer>", 100) == "[1, 2]"
    assert parse_output_answer("<think>hm</think><answer> 20 </answer>", 100) == "20"
    # Small-model habits: the value in a ```python fence, an unclosed fence at the end.
    assert parse_output_answer("<answer>```python\n(1, 'a')\n```</answer>", 100) == "(1, 'a')"
    assert parse_output_answer("<answer>\n```output\n[3, 4]", 100) == "[3, 4]"
    # ... but what is in the fence must still be one plain literal.
    with pytest.raises(FormatError, match="not a plain literal"):
        parse_output_answer("<answer>```python\nx\n```</answer>", 100)
    with pytest.raises(FormatError, match=r"no ```output block"):
        parse_output_answer("<answer>```message\n1\n```</answer>", 100)
    with pytest.raises(FormatError, match="empty output"):
        parse_output_answer("<answer>```output\n\n```</answer>", 100)
    with pytest.raises(FormatError, match="not a plain literal"):  # a copied placeholder
        parse_output_answer("<answer>```output\n...\n```</answer>", 100)


def test_input_answer_accepts_call_form_but_not_escapes():
    assert parse_input_answer("<answer>```input\nf('a', 3)\n```</answer>", 100) == "'a', 3"
    assert parse_input_answer("<answer>'a', 3</answer>", 100) == "'a', 3"
    with pytest.raises(FormatError):
        parse_input_answer("<answer>```input\nf(0) or True\n```</answer>", 100)
    with pytest.raises(FormatError):
        parse_input_answer("<answer>```input\n0) or True or (0\n```</answer>", 100)


def test_proposal_input_tolerates_call_form_and_python_fence_but_stays_literal():
    assert parse_proposal(proposal(input="f('hi', 2)"), 500, 100) == (PROGRAM, "'hi', 2")
    in_python_fence = f"<answer>\n```python\n{PROGRAM}\n```\n```python\n[1, 2]\n```\n</answer>"
    assert parse_proposal(in_python_fence, 500, 100) == (PROGRAM, "[1, 2]")
    unclosed = f"<answer>\n```python\n{PROGRAM}\n```\n```input\n'x'"
    assert parse_proposal(unclosed, 500, 100) == (PROGRAM, "'x'")
    for escape in ["f(0) or True", "0) or True or (0", "f(1)(2)", "f()"]:
        with pytest.raises(FormatError):
            parse_proposal(proposal(input=escape), 500, 100)
    # A second fence that is code, not literal arguments, is not mistaken for the input.
    code_fence = f"<answer>\n```python\n{PROGRAM}\n```\n```python\nprint(f(1))\n```\n</answer>"
    with pytest.raises(FormatError, match=r"no ```input block"):
        parse_proposal(code_fence, 500, 100)


def test_zero_argument_inputs_only_where_they_are_meant():
    # An explicit f() answer and tasks built from existing data may have no arguments;
    # an empty proposal input or an empty answer block is a format error.
    assert parse_input_answer("<answer>```input\nf()\n```</answer>", 100) == ""
    assert check_arguments("  ", 100, allow_empty=True) == ""
    with pytest.raises(FormatError, match="empty input"):
        parse_input_answer("<answer>```input\n\n```</answer>", 100)
    with pytest.raises(FormatError, match="empty input"):
        check_arguments("", 100)


def test_induction_proposal_parsing():
    answer = (
        "<answer>```input\n1\n```\n```input\nbad name\n```\n```input\n3\n```\n"
        "```message\n doubles it \n```</answer>"
    )
    inputs, message = parse_induction_proposal(answer, 2, 50, 200)
    assert message == "doubles it"
    assert inputs[0] == "1" and isinstance(inputs[1], FormatError) and len(inputs) == 2
    with pytest.raises(FormatError, match=r"no ```message block"):
        parse_induction_proposal("<answer>```input\n1\n```</answer>", 10, 50, 200)
    with pytest.raises(FormatError, match="empty message"):
        parse_induction_proposal("<answer>```input\n1\n```\n```message\n\n```</answer>", 10, 50, 200)
    with pytest.raises(FormatError, match="message is 9 characters long"):
        parse_induction_proposal("<answer>```input\n1\n```\n```message\nabcdefghi\n```</answer>", 10, 50, 5)


@given(st.text(max_size=200))
def test_parsers_never_raise_anything_but_format_error(text):
    for parse in (
        lambda t: parse_proposal(t, 500, 100),
        lambda t: parse_output_answer(t, 100),
        lambda t: parse_input_answer(t, 100),
        lambda t: parse_program_answer(t, 500),
        lambda t: parse_induction_proposal(t, 10, 100, 100),
    ):
        for candidate in (text, f"<answer>{text}", f"<answer>```python\n{text}\n```"):
            try:
                parse(candidate)
            except FormatError:
                pass
