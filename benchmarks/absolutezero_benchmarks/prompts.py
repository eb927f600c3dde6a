"""The two prompt styles of the evaluation suite, and reading answers back out.

``prompt=azr`` (default): the R1 think/answer wrapper that self-play trains with (the
code environment's system prompt, the answer asked for inside ``<answer> </answer>``,
the assistant turn forced to open with ``<think>``). A model trained by this project
is scored in the format it learned.

``prompt=native``: the model's own chat template around the benchmark's usual
instruction (EvalPlus's for HumanEval/MBPP, LiveCodeBench's own, "put your final
answer within \\boxed{}" for math), no system prompt, no prefill. Base and
instruct models that never saw the AZR format need this one.

Reading answers is static (regular expressions, no evaluation): code comes from the
last fenced block (inside the last ``<answer>`` block when there is one), a math
answer from the last ``<answer>`` block or the last ``\\boxed{...}``.
"""

from __future__ import annotations

import re

from absolutezero.protocol import Prompt
from absolutezero_code.parsing import fences
from absolutezero_code.prompts import SYSTEM

__all__ = ["STYLES", "check_style", "code_prompt", "extract_code", "extract_math_answer", "last_boxed", "math_prompt"]

#: Prompt styles, see the module docstring.
STYLES = ("azr", "native")

_CODE_FORMAT = (
    "Think it through, then give the complete Python program in this format:\n"
    "<answer>\n```python\n<your code>\n```\n</answer>"
)
_MATH_FORMAT = "Think it through, then give only the final answer inside <answer> </answer>."
_MATH_NATIVE = "Please reason step by step, and put your final answer within \\boxed{}."
_ANSWER = re.compile(r"<answer>(.*?)(?:</answer>|\Z)", re.DOTALL | re.IGNORECASE)


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
