"""The two prompt styles of the evaluation suite, and reading answers back out.

``prompt=azr`` (default): the R1 think/answer wrapper that self-play trains with (the
code environment's system prompt, the answer asked for inside ``<answer> </answer>``,
the assistant turn forced to open with ``<think>``). A model trained by this project
is scored in the format it learned.

``prompt=native``: the model's own chat template around the benchmark's published
prompt, no system prompt. Base and instruct models that never saw the AZR format need
this one. Sources (each reproduced verbatim, see docs/evaluation-native.md):

* HumanEval, HumanEval+, MBPP+: EvalPlus's chat prompt (``evalplus/evalplus``,
  ``evalplus/codegen.py`` and ``evalplus/provider/utility.py::make_raw_chat_prompt``):
  the user turn is :data:`EVALPLUS_INSTRUCTION`, then the task prompt in a plain fence;
  the assistant turn is pre-filled with :data:`EVALPLUS_RESPONSE_PREFIX` and an open
  ````python`` fence, so the model continues with code (:func:`evalplus_prompt`);
* CruxEval-O / CruxEval-I: CruxEval's chain-of-thought prompts
  (``facebookresearch/cruxeval``, ``prompts.py``: ``make_cot_output_prompt``,
  ``make_cot_input_prompt``; :func:`cruxeval_prompt`), the answer read from
  ``[ANSWER] ... [/ANSWER]`` as CruxEval's ``postprocess_generation`` does
  (:func:`extract_cruxeval_answer`);
* LiveCodeBench: its own question template (:mod:`.livecodebench`);
* math sets: "Please reason step by step, and put your final answer within \\boxed{}."

Reading answers is static (regular expressions, no evaluation): code comes from the
last fenced block (inside the last ``<answer>`` block when there is one), a math
answer from the last ``<answer>`` block or the last ``\\boxed{...}``.
"""

from __future__ import annotations

import ast
import re

from absolutezero.protocol import Prompt
from absolutezero_code.parsing import fences
from absolutezero_code.prompts import SYSTEM

__all__ = [
    "CRUXEVAL_COT_INPUT",
    "CRUXEVAL_COT_OUTPUT",
    "EVALPLUS_INSTRUCTION",
    "EVALPLUS_RESPONSE_PREFIX",
    "STYLES",
    "check_style",
    "code_prompt",
    "cruxeval_prompt",
    "evalplus_prompt",
    "extract_code",
    "extract_cruxeval_answer",
    "extract_math_answer",
    "last_boxed",
    "math_prompt",
]

#: Prompt styles, see the module docstring.
STYLES = ("azr", "native")

_CODE_FORMAT = (
    "Think it through, then give the complete Python program in this format:\n"
    "<answer>\n```python\n<your code>\n```\n</answer>"
)
_MATH_FORMAT = "Think it through, then give only the final answer inside <answer> </answer>."
_MATH_NATIVE = "Please reason step by step, and put your final answer within \\boxed{}."
_ANSWER = re.compile(r"<answer>(.*?)(?:</answer>|\Z)", re.DOTALL | re.IGNORECASE)


#: EvalPlus's instruction for chat models (``evalplus/codegen.py``, ``instruction_prefix``).
EVALPLUS_INSTRUCTION = (
    "Please provide a self-contained Python script that solves the following problem in a markdown code block:"
)
#: EvalPlus's pre-filled start of the answer (``evalplus/codegen.py``, ``response_prefix``).
EVALPLUS_RESPONSE_PREFIX = (
    "Below is a Python script with a self-contained function that solves the problem and passes corresponding tests:"
)

#: CruxEval's ``make_cot_output_prompt`` (facebookresearch/cruxeval, prompts.py), verbatim;
#: ``{code}`` and ``{input}`` are filled by :func:`cruxeval_prompt`.
CRUXEVAL_COT_OUTPUT = (
    "You are given a Python function and an assertion containing an input to the function. Complete the assertion "
    "with a literal (no unsimplified expressions, no function calls) containing the output when executing the "
    "provided code on the given input, even if the function is incorrect or incomplete. Do NOT output any extra "
    "information. Execute the program step by step before arriving at an answer, and provide the full assertion "
    "with the correct output in [ANSWER] and [/ANSWER] tags, following the examples.\n\n"
    "[PYTHON]\ndef f(s):\n    s = s + s\n    return \"b\" + s + \"a\"\nassert f(\"hi\") == ??\n[/PYTHON]\n"
    "[THOUGHT]\nLet's execute the code step by step:\n\n"
    "1. The function f is defined, which takes a single argument s.\n"
    "2. The function is called with the argument \"hi\", so within the function, s is initially \"hi\".\n"
    "3. Inside the function, s is concatenated with itself, so s becomes \"hihi\".\n"
    "4. The function then returns a new string that starts with \"b\", followed by the value of s (which is now "
    "\"hihi\"), and ends with \"a\".\n"
    "5. The return value of the function is therefore \"bhihia\".\n[/THOUGHT]\n"
    "[ANSWER]\nassert f(\"hi\") == \"bhihia\"\n[/ANSWER]\n\n"
    "[PYTHON]\n{code}\nassert f({input}) == ??\n[/PYTHON]\n[THOUGHT]\n"
)
#: CruxEval's ``make_cot_input_prompt`` (facebookresearch/cruxeval, prompts.py), verbatim
#: (note the spaces before two line breaks, as published); ``{code}``, ``{output}``.
CRUXEVAL_COT_INPUT = (
    "You will be given a function f and an output in the form f(??) == output. Your task is to find any input "
    "such that executing f on the input leads to the given output. There may be multiple answers, but only output "
    "one. First, think step by step. You MUST surround the answer with [ANSWER] and [/ANSWER] tags. Express your "
    "answer as a passing assertion containing the input and the given output.\n\n"
    "[PYTHON]\ndef f(x):\n    return x + 1\nassert f(??) == 17\n[/PYTHON]\n"
    "[THOUGHT]\nTo find an input such that executing f on the input leads to the given output, we can work "
    "backwards from the given assertion. We know that f(??) == 17. \n\n"
    "Since the function f(x) returns x + 1, for f(??) to be equal to 17, the value of ?? should be 16. \n"
    "[/THOUGHT]\n[ANSWER]\nassert f(16) == 17\n[/ANSWER]\n\n"
    "[PYTHON]\n{code}\nassert f(??) == {output}\n[/PYTHON]\n[THOUGHT]\n"
)
_PLACEHOLDER = re.compile(r"\{(code|input|output)\}")


def check_style(style: object, benchmark: str) -> str:
    """``style`` if it is one of :data:`STYLES`.

    Raises:
        ValueError: an unknown style (the message lists the known ones).
    """
    if style not in STYLES:
        raise ValueError(f"{benchmark}: unknown prompt style {style!r}; use prompt=azr or prompt=native")
    return str(style)


def code_prompt(style: str, statement: str) -> Prompt:
    """The prompt asking for a program: ``statement`` is the benchmark's problem text,
    already with its native instruction (e.g. EvalPlus's "Please provide a
    self-contained Python script ...")."""
    if style == "native":
        return Prompt(messages=({"role": "user", "content": statement},))
    return Prompt(
        messages=({"role": "system", "content": SYSTEM}, {"role": "user", "content": f"{statement}\n\n{_CODE_FORMAT}"}),
        prefill="<think>",
    )


def math_prompt(style: str, problem: str) -> Prompt:
    """The prompt for a math problem in ``style``."""
    if style == "native":
        return Prompt(messages=({"role": "user", "content": f"{problem}\n{_MATH_NATIVE}"},))
    return Prompt(
        messages=({"role": "system", "content": SYSTEM}, {"role": "user", "content": f"{problem}\n\n{_MATH_FORMAT}"}),
        prefill="<think>",
    )


def _answer_block(response: str) -> str | None:
    blocks = _ANSWER.findall(response)
    return blocks[-1] if blocks else None


def extract_code(response: str) -> str | None:
    """The program in a response, or None when it holds no fenced code.

    The last ``python``-tagged fence wins, else the last untagged one; inside the last
    ``<answer>`` block when that block has a fence, else anywhere in the response (a
    model may close the think block late or not at all).
    """
    for text in (_answer_block(response), response):
        if not text:
            continue
        blocks = fences(text)
        tagged = [b.content for b in blocks if b.tag == "python"]
        plain = [b.content for b in blocks if b.tag == ""]
        for found in (tagged, plain):
            if found and found[-1].strip():
                return found[-1]
    return None


def last_boxed(text: str) -> str | None:
    r"""The content of the last ``\boxed{...}`` (or ``\fbox{...}``), braces balanced."""
    start = max(text.rfind("\\boxed"), text.rfind("\\fbox"))
    if start < 0:
        return None
    brace = text.find("{", start)
    if brace < 0:
        return None
    depth = 0
    for index in range(brace, len(text)):
        if text[index] == "{":
            depth += 1
        elif text[index] == "}":
            depth -= 1
            if depth == 0:
                return text[brace + 1 : index].strip()
    return None


def extract_math_answer(response: str) -> str | None:
    r"""The final answer of a math response, or None when there is none.

    The last ``<answer>`` block (its last ``\boxed{}`` if it has one), else the last
    ``\boxed{}`` of the whole response.
    """
    block = _answer_block(response)
    if block is not None and block.strip():
        return last_boxed(block) or block.strip()
    return last_boxed(response)


def evalplus_prompt(task_prompt: str) -> Prompt:
    """EvalPlus's chat prompt for a HumanEval / MBPP task prompt: the user turn
    ``{instruction}\n```\n{prompt.strip()}\n```\n`` and the assistant turn pre-filled
    with ``{response prefix}\n```python\n`` (``make_raw_chat_prompt``)."""
    user = f"{EVALPLUS_INSTRUCTION}\n```\n{task_prompt.strip()}\n```\n"
    return Prompt(messages=({"role": "user", "content": user},), prefill=f"{EVALPLUS_RESPONSE_PREFIX}\n```python\n")


def cruxeval_prompt(mode: str, code: str, value: str) -> Prompt:
    """CruxEval's chain-of-thought prompt as the one user turn: ``mode`` ``"output"``
    (CruxEval-O: ``value`` is the input) or ``"input"`` (CruxEval-I: the output).

    Raises:
        ValueError: an unknown mode.
    """
    if mode not in ("output", "input"):
        raise ValueError(f"mode must be 'output' or 'input', got {mode!r}")
    template = CRUXEVAL_COT_OUTPUT if mode == "output" else CRUXEVAL_COT_INPUT
    fill = {"code": code, "input": value, "output": value}
    # one pass, so a '{input}' inside the code is left alone
    text = _PLACEHOLDER.sub(lambda match: fill[match.group(1)], template)
    return Prompt(messages=({"role": "user", "content": text},))


def _assert_sides(text: str) -> tuple[str, str] | None:
    """``(left, right)`` source of ``assert L == R`` or ``L == R`` (one comparison), else None."""
    try:
        tree = ast.parse(text)
    except (SyntaxError, ValueError, MemoryError, RecursionError):
        return None
    if len(tree.body) != 1:
        return None
    node = tree.body[0]
    test = node.test if isinstance(node, ast.Assert) else node.value if isinstance(node, ast.Expr) else None
    if not (isinstance(test, ast.Compare) and len(test.ops) == 1 and isinstance(test.ops[0], ast.Eq)):
        return None
    left = ast.get_source_segment(text, test.left)
    right = ast.get_source_segment(text, test.comparators[0])
    return (left, right) if left and right else None


def extract_cruxeval_answer(response: str, mode: str) -> str | None:
    """The answer of a CruxEval CoT response, or None without an ``[ANSWER]`` tag.

    As CruxEval's ``postprocess_generation``: the text after the first ``[ANSWER]`` (up to
    ``[/ANSWER]`` when the model wrote it; CruxEval stops generation there; a closing tag
    cut short by the token budget, ``[/ANS``, is dropped); then for
    ``mode="output"`` the right side of ``==`` (the output expression) and for
    ``"input"`` the left side without ``assert`` (the ``f(...)`` call). An answer that
    parses as ``assert L == R`` is split by its syntax tree (so ``==`` inside a string
    does not cut it); anything else by CruxEval's string rule (first ``==``).
    """
    start = response.find("[ANSWER]")
    if start < 0:
        return None
    text = response[start + len("[ANSWER]") :]
    end = text.find("[/ANSWER]")
    if end >= 0:
        text = text[:end]
    else:  # cut off by the token budget inside the closing tag: drop the "[/ANS" part
        text = text.rstrip()
        for size in range(len("[/ANSWER]") - 1, 0, -1):
            if text.endswith("[/ANSWER]"[:size]):
                text = text[:-size]
                break
    text = text.strip()
    if not text:
        return None
    sides = _assert_sides(text)
    if mode == "output":
        if sides is not None:
            return sides[1].strip()
        if "==" in text:
            text = text.split("==")[1].strip()
        return text or None
    if sides is not None:
        return sides[0].strip()
    if "==" in text:
        text = text.split("==")[0].strip()
    if "assert" in text:
        text = text.split("assert")[1].strip()
    return text or None
