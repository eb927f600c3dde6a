"""``prompt=native``: the benchmarks' own published prompts and answer extraction.

CruxEval: the chain-of-thought prompts of facebookresearch/cruxeval (prompts.py,
``make_cot_output_prompt`` / ``make_cot_input_prompt``) and its ``[ANSWER]`` extraction
(inference/tasks/*_prediction.py ``postprocess_generation``), scored as CruxEval's
``assert <output> == <answer>`` in the sandbox. HumanEval / EvalPlus: EvalPlus's chat
prompt (evalplus/codegen.py, provider/utility.py ``make_raw_chat_prompt``).
"""

from __future__ import annotations

import hashlib

import pytest

from absolutezero_benchmarks import prompts
from absolutezero_benchmarks.cruxeval import CruxEvalI, CruxEvalO
from absolutezero_benchmarks.dataset import Problem

ROWS = [
    Problem(id="s0", code="def f(s):\n    return s[::-1] + '{input}'", input="'ab'", output="'ba{input}'"),
    Problem(id="s1", code="def f(x, y):\n    return [x] * y", input="1, 3", output="[1, 1, 1]"),
    Problem(id="s2", code="def f(d):\n    return len(d) / 2", input="{'a': 1, 'b': 2}", output="1.0"),
    # an input that is an expression, as in CruxEval (the azr path cannot canonicalise it)
    Problem(id="s3", code="def f(t):\n    return t.count('A')", input="''.join(['A'] * 20)", output="20"),
]


def answer(text: str) -> str:
    return f"[THOUGHT]\nLet's execute the code step by step.\n[/THOUGHT]\n[ANSWER]\n{text}\n[/ANSWER]"


def test_cruxeval_prompts_are_the_published_ones() -> None:
    # sha256 of the templates as copied from facebookresearch/cruxeval prompts.py (commit c7c7873)
    assert hashlib.sha256(prompts.CRUXEVAL_COT_OUTPUT.encode()).hexdigest()[:16] == "c4bd69547b35ab66"
    assert hashlib.sha256(prompts.CRUXEVAL_COT_INPUT.encode()).hexdigest()[:16] == "3d9813aec4d02ff8"
    out = prompts.cruxeval_prompt("output", ROWS[0].code, ROWS[0].input)
    assert [m["role"] for m in out.messages] == ["user"] and out.prefill == ""
    text = out.messages[0]["content"]
    assert text.startswith("You are given a Python function and an assertion containing an input to the function.")
    # the code is inserted as is ('{input}' inside it is not a placeholder)
    assert text.endswith(f"[PYTHON]\n{ROWS[0].code}\nassert f('ab') == ??\n[/PYTHON]\n[THOUGHT]\n")
    inp = prompts.cruxeval_prompt("input", ROWS[1].code, ROWS[1].output).messages[0]["content"]
    assert inp.startswith("You will be given a function f and an output in the form f(??) == output.")
    assert "We know that f(??) == 17. \n\n" in inp  # the published trailing space
    assert inp.endswith(f"{ROWS[1].code}\nassert f(??) == [1, 1, 1]\n[/PYTHON]\n[THOUGHT]\n")
    with pytest.raises(ValueError):
        prompts.cruxeval_prompt("both", "", "")


@pytest.mark.parametrize(
    "response, output, input_",
    [
        (answer("assert f('ab') == 'ba'"), "'ba'", "f('ab')"),
        ("[ANSWER]assert f(1) == 2", "2", "f(1)"),  # no closing tag: CruxEval stops there
        ("[ANSWER]\nassert f(1) == {1: 2}\n[/ANS", "{1: 2}", "f(1)"),  # a closing tag cut by the budget
        ("[ANSWER]\nassert f(1) == [1]\n[", "[1]", "f(1)"),  # even a lone '[' starting the tag
        (answer("assert f('a==b') == 'x=='"), "'x=='", "f('a==b')"),  # '==' inside strings
        ("[ANSWER]\nassert f(1) == 2\n[/ANSWER]\n[ANSWER]\nassert f(9) == 9\n[/ANSWER]", "2", "f(1)"),  # the first
        (answer("'a' + 'b'"), "'a' + 'b'", "'a' + 'b'"),  # no '==': the whole answer
        (answer("assert f(1 == 2"), "2", "f(1"),  # does not parse: CruxEval's string rule
        ("no tags at all", None, None),
        ("[/ANSWER] assert f(1) == 2", None, None),  # a closing tag only
        ("[ANSWER]\n   \n[/ANSWER]", None, None),  # empty
    ],
)
def test_cruxeval_answer_extraction(response: str, output: str | None, input_: str | None) -> None:
    assert prompts.extract_cruxeval_answer(response, "output") == output
    assert prompts.extract_cruxeval_answer(response, "input") == input_


@pytest.fixture(scope="module")
def code_env():
    from absolutezero.registry import make_environment

    env = make_environment("code", {"workers": 1})
    yield env
    env.close()


def test_native_cruxeval_o_scores_as_cruxeval_does(code_env) -> None:
    bench = CruxEvalO(environment=code_env, prompt="native")
    prepared, skipped = bench.prepare(ROWS)
    assert skipped == [] and len(prepared) == 4  # s3's expression input too
    tasks = [item.task for item in prepared]
    cot = [bench.solver_prompt(task) for task in tasks]
    assert cot[3].messages[0]["content"].endswith("assert f(''.join(['A'] * 20)) == ??\n[/PYTHON]\n[THOUGHT]\n")
    right = bench.score(tasks, cot, [answer(f"assert f({p.input}) == {p.output}") for p in ROWS])
    assert [v.correct for v in right] == [True] * 4, [v.reason for v in right]
    cases = {
        "assert f(1, 3) == [1, 1]": (False, True),  # wrong value
        "assert f(1, 3) == [1] * 3": (True, True),  # CruxEval evaluates the expression
        "assert f(1, 3) == f(1, 3)": (False, True),  # repeating the call is not an answer
        "assert f(1, 3) == 0) or True or (0": (False, False),  # not one expression: no injection
        "assert f(1, 3) == type('X', (), {'__eq__': lambda s, o: True})()": (False, True),  # not a plain value
        "assert f(1, 3) == __import__('os').getpid()": (False, True),  # the hardened policy
    }
    for text, (correct, format_ok) in cases.items():
        (verdict,) = bench.score([tasks[1]], [cot[1]], [answer(text)])
        assert (verdict.correct, verdict.format_ok) == (correct, format_ok), (text, verdict.reason)
    # CruxEval compares with ==: 1.0 == 1 passes (the azr path is type-aware)
    (loose,) = bench.score([tasks[2]], [cot[2]], [answer("assert f({'a': 1, 'b': 2}) == 1")])
    assert loose.correct
    (missing,) = bench.score([tasks[0]], [cot[0]], ["The answer is 'ba'."])
    assert not missing.correct and not missing.format_ok and "[ANSWER]" in missing.reason


def test_native_cruxeval_i_scores_any_preimage(code_env) -> None:
    bench = CruxEvalI(environment=code_env, prompt="native")
    prepared, skipped = bench.prepare(ROWS)
    assert skipped == []
    tasks = [item.task for item in prepared]
    cot = [bench.solver_prompt(task) for task in tasks]
    assert cot[1].messages[0]["content"].endswith("assert f(??) == [1, 1, 1]\n[/PYTHON]\n[THOUGHT]\n")
    cases = {
        "assert f(1, 3) == [1, 1, 1]": (True, True),
        "assert f(y=3, x=1) == [1, 1, 1]": (True, True),  # another way to the same output
        "assert f(1, 2) == [1, 1, 1]": (False, True),
        "assert g(1, 3) == [1, 1, 1]": (False, False),  # not a call of f
        "assert f(1, 3) or True == [1, 1, 1]": (False, False),  # not a call of f either
    }
    for text, (correct, format_ok) in cases.items():
        (verdict,) = bench.score([tasks[1]], [cot[1]], [answer(text)])
        assert (verdict.correct, verdict.format_ok) == (correct, format_ok), (text, verdict.reason)


def test_native_cruxeval_skips_a_row_whose_own_answer_fails(code_env) -> None:
    broken = Problem(id="bad", code="def f(x):\n    return x + 1", input="1", output="3")
    prepared, skipped = CruxEvalO(environment=code_env, prompt="native").prepare([ROWS[1], broken])
    assert [p.problem.id for p in prepared] == ["s1"]
    assert skipped[0]["id"] == "bad" and "fails CruxEval's check" in skipped[0]["reason"]


def test_evalplus_prompt_and_math_instruction() -> None:
    prompt = prompts.evalplus_prompt('def f(x):\n    """Double."""\n')
    assert prompt.messages == ({
        "role": "user",
        "content": "Please provide a self-contained Python script that solves the following problem in a markdown "
        "code block:\n```\ndef f(x):\n    \"\"\"Double.\"\"\"\n```\n",
    },)
    assert prompt.prefill.endswith("passes corresponding tests:\n```python\n")
    math = prompts.math_prompt("native", "What is 1+1?")
    assert math.messages[0]["content"].endswith("put your final answer within \\boxed{}.")


def test_native_code_answers_are_sanitised_as_evalplus_does() -> None:
    from absolutezero_benchmarks.codegen import sanitize

    code = (
        "import math\nLIMIT = 3\n\n@staticmethod\ndef helper(x):\n    return x\n\ndef add(a, b):\n    return a + b\n\n"
        "print(add(1, 2))\nassert add(1, 1) == 3\nif __name__ == '__main__':\n    add(None, 1)\n"
    )
    kept = sanitize(code)
    assert "print(" not in kept and "assert" not in kept and "__main__" not in kept
    assert "import math" in kept and "LIMIT = 3" in kept and "@staticmethod\ndef helper" in kept and "def add" in kept
    assert sanitize("def broken(:\n") == "def broken(:\n"
