"""Chat prompts for the code environment's proposer and solver roles.

Why they look like this: a 135M model writes a runnable ``def f`` plus an input in only
a few samples out of twenty, so every prompt is short, concrete, and ends with the exact
answer format (R1-style ``<think>`` then ``<answer>`` with fenced blocks) as a skeleton
with ``<placeholders>``, not a worked example: the model copies the last example it
sees, and a copied placeholder is a format error rather than a copied answer. Prefill
styles (:func:`prefill_for`) can open the answer fence for it. No benchmark (CruxEval)
program appears here or anywhere on the training path.

The functions return chat messages only; :mod:`absolutezero_code.env` wraps them in a
:class:`~absolutezero.protocol.Prompt` with the prefill and context.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from absolutezero.protocol import Segment

__all__ = [
    "SYSTEM",
    "DEFAULT_ALLOWED_IMPORTS",
    "Messages",
    "proposer_messages",
    "induction_proposer_messages",
    "deduction_solver_messages",
    "abduction_solver_messages",
    "induction_solver_messages",
    "PREFILL_STYLES",
    "TEMPLATE_STYLE",
    "prefill_for",
    "answer_template",
]

Messages = tuple[Mapping[str, str], ...]

# Short on purpose: every prompt token is paid for at generation and again at training
# time (prefill throughput on a CPU: docs/results.md).
SYSTEM = (
    "You are a helpful assistant. You think inside <think> </think> and then give the "
    "final answer inside <answer> </answer>."
)

# Shown to the proposer when the executor does not publish its own allow-list.
DEFAULT_ALLOWED_IMPORTS: tuple[str, ...] = (
    "math", "string", "re", "collections", "itertools", "functools", "heapq", "bisect",
    "operator",
)

# Assistant prefills by style: the text each assistant turn is forced to start with.
# "think" opens the reasoning block only; "answer" skips reasoning and opens the answer
# fence the role must fill (the model then writes the value/program and closes it);
# "none" forces nothing. See :func:`prefill_for` for why there are styles at all.
PREFILL_STYLES: dict[str, dict[tuple[str, str], str]] = {
    "think": {},
    "answer": {
        # Input first: after closing the program fence the 135M model almost never opens
        # an input fence (7 of 8 "no ```input block"); opened first, the program follows.
        ("propose", "deduction"): "<answer>\n```input\n",
        ("propose", "abduction"): "<answer>\n```input\n",
        ("propose", "induction"): "<answer>\n```input\n",
        ("solve", "deduction"): "<answer>\n```output\n",
        ("solve", "abduction"): "<answer>\n```input\n",
        ("solve", "induction"): "<answer>\n```python\n",
    },
    "none": {},
}
_STYLE_DEFAULTS = {"think": "<think>", "answer": "<answer>\n", "none": ""}

#: The style whose answers are templates: fences and headers forced, the model writes only
#: the program body, the values and the message (see :func:`answer_template`).
TEMPLATE_STYLE = "template"
_CLOSE = "```"
_LINE = "\n"
# Token budgets of the free parts. Decoding on a CPU is memory-bound (each step reads all
# weights whatever the batch size), so a step's time is set by its longest row: without
# budgets one rambling program (or a value that never ends its line) holds a batch for
# the whole max_new_tokens. Measured with Qwen2.5-Coder-0.5B, valid programs stay well
# under 200 tokens and messages under 64; values get 96 (a long list literal).
_PROGRAM_TOKENS, _VALUE_TOKENS, _MESSAGE_TOKENS = 200, 96, 64


def answer_template(role: str, task_type: str, num_inputs: int) -> tuple[str, tuple[Segment, ...]]:
    """The prefill and segments of the ``"template"`` style for ``role`` x ``task_type``.

    Why templates: a 0.5B model knows what a program or a value is far better than it
    keeps to a multi-block answer format (untemplated, Qwen2.5-Coder-0.5B wrote 0% valid
    induction proposals, mostly for want of the ```message block). Here the environment
    forces every fence opener, the ``def f(`` header and the ```message header, and the
    model writes only the free parts, each ended by its closing fence. The forced text
    is never trained on (the learner masks it like the prompt), and the response is
    parsed by the same strict parser as a free-running answer: a part the model fills
    wrongly (two values in one input block, prose in a program) is rejected with the
    parser's reason, never repaired.

    A value (an input, an output) is one line: its segment ends at the first newline and
    the closing fence is forced. Measured with Qwen2.5-Coder-0.5B, a value segment that
    waited for a closing fence lost most induction proposals: the model wrote several
    values into one block, or an explanation, and never closed it. Programs and the
    message end at their closing fence. No ``</answer>`` is forced after the last part (the
    parser accepts a response that ends inside the answer), so no decoding step is spent
    on boilerplate.
    """
    program = Segment(_CLOSE, max_tokens=_PROGRAM_TOKENS)
    if role == "propose" and task_type in ("deduction", "abduction"):
        # Program first: the input is written knowing f's signature.
        return "<answer>\n```python\ndef f(", (
            Segment(_CLOSE, "\n```input\n", _PROGRAM_TOKENS),
            Segment(_LINE, _CLOSE, _VALUE_TOKENS),
        )
    if role == "propose" and task_type == "induction":
        inputs = tuple(Segment(_LINE, _CLOSE + "\n```input\n", _VALUE_TOKENS) for _ in range(num_inputs - 1))
        return "<answer>\n```input\n", inputs + (
            Segment(_LINE, _CLOSE + "\n```message\n", _VALUE_TOKENS),
            Segment(_CLOSE, max_tokens=_MESSAGE_TOKENS),
        )
    if role == "solve" and task_type in ("deduction", "abduction"):
        opener = "```output\n" if task_type == "deduction" else "```input\n"
        return "<answer>\n" + opener, (Segment(_LINE, _CLOSE, _VALUE_TOKENS),)
    if role == "solve" and task_type == "induction":
        return "<answer>\n```python\ndef f(", (program,)
    raise ValueError(f"no answer template for role {role!r} and task type {task_type!r}")


def prefill_for(prefill: str, role: str, task_type: str) -> str:
    """The assistant prefill for ``role`` x ``task_type`` under the option ``prefill``.

    ``prefill`` is a style name (``"think"``, ``"answer"``, ``"none"``) or any other
    text, used verbatim for every prompt. Styles exist because the best start differs
    per role: "answer" must open a different fence for a deduction solver (```output)
    than for an abduction solver (```input) or a proposer (```python).

    Why "answer" helps a small model: the prefill is part of the prompt (not trained)
    and the environment parses ``prefill + completion``, so the model only has to fill
    in a value or a program and close the fence. Measured with
    ``benchmarks/prompt_format_rate.py``.
    """
    if prefill == TEMPLATE_STYLE:
        raise ValueError("the 'template' style has segments too; use answer_template")
    if prefill not in PREFILL_STYLES:
        return prefill
    return PREFILL_STYLES[prefill].get((role, task_type), _STYLE_DEFAULTS[prefill])


_GOALS = {
    "deduction": "so that predicting the output from the program and input takes careful "
    "step-by-step reasoning",
    "abduction": "so that finding an input that gives the output takes careful reasoning "
    "about what the program does",
}


def _fence(tag: str, body: str) -> str:
    return f"```{tag}\n{body}\n```"


def _rules(allowed_imports: Sequence[str]) -> str:
    """The game's rules, the same opening text for every proposer prompt.

    Why identical: the HF backend prefills the prefix common to a batch's prompts once,
    so rules shared by all three proposer prompts are paid for once per batch. Only the
    commonest allowed modules are named (the full allow-list is long and rarely used).
    """
    common = [m for m in DEFAULT_ALLOWED_IMPORTS if m in allowed_imports] if allowed_imports else []
    imports = ", ".join(common) if common else "none"
    return (
        "We play a Python reasoning game. A task is a function `f` and inputs for it.\n"
        "Rules:\n"
        "- The program defines `f` (helper functions are allowed).\n"
        f"- Only standard imports, such as {imports}.\n"
        "- f is deterministic: no randomness, time, printing, files or input().\n"
        "- An input is the argument list of f on one line, plain values only (numbers, "
        "strings, lists, tuples, dicts, sets, booleans, None); f returns such a value."
    )


def _example(index: int, payload: Mapping[str, object]) -> str:
    return (
        f"Example {index}:\n"
        f"{_fence('python', str(payload['program']))}\n"
        f"{_fence('input', str(payload['input']))}\n"
        f"{_fence('output', str(payload['output']))}"
    )


def _answer_format(*blocks: tuple[str, str]) -> str:
    """The answer skeleton, ending the prompt: tags and fences with placeholder content.

    Why placeholders and not a worked example: the embedded 135M model copies the last
    worked example of a prompt (with ``<think> 2*2 + 4*4 = 20 </think>`` it wrote that
    exact thought and then empty fences). Placeholders in angle brackets cannot pass as
    a program, input or output if copied, so copying the skeleton earns the format
    penalty instead of a lucky reward, and the structure is what gets copied.
    """
    body = "\n".join(_fence(tag, text) for tag, text in blocks)
    return f"<answer>\n{body}\n</answer>"


def proposer_messages(
    task_type: str, references: Sequence[Mapping[str, object]], allowed_imports: Sequence[str]
) -> Messages:
    """Ask for a new (program, input) pair for ``deduction`` or ``abduction``.

    Args:
        task_type: ``"deduction"`` or ``"abduction"`` (selects the one-line goal).
        references: payloads with ``program``, ``input`` and ``output`` shown as examples.
        allowed_imports: module names the executor allows, listed in the rules.

    Returns:
        ``(system, user)`` chat messages.
    """
    if task_type not in _GOALS:
        raise ValueError(f"proposer_messages is for 'deduction' or 'abduction', got {task_type!r}")
    examples = "\n\n".join(_example(i + 1, ref) for i, ref in enumerate(references))
    shown = f"Existing tasks:\n\n{examples}\n\n" if examples else ""
    # Rules and format first, the same for deduction and abduction (a shared prefix); the
    # references and the mode's goal last.
    user = (
        f"{_rules(allowed_imports)}\n\n"
        "Write a new task: a program defining `f`, and one input for it, in this format:\n"
        + _answer_format(
            ("python", "def f(<parameter names>):\n    <your code>"),
            ("input", "<argument values, on one line>"),
        )
        + f"\n\n{shown}"
        f"Your task must be new and different from the existing ones, {_GOALS[task_type]}."
    )
    return ({"role": "system", "content": SYSTEM}, {"role": "user", "content": user})


def induction_proposer_messages(
    program: str,
    examples: Sequence[tuple[str, str]],
    num_inputs: int,
    allowed_imports: Sequence[str] = DEFAULT_ALLOWED_IMPORTS,
) -> Messages:
    """Ask for ``num_inputs`` inputs to an existing program plus a message describing it.

    Args:
        program: the program (from a deduction/abduction reference) the inputs are for.
        examples: known ``(input, output)`` pairs of that program, shown as a hint.
        num_inputs: how many distinct inputs to write.
        allowed_imports: as for :func:`proposer_messages` (the rules open both prompts).

    Returns:
        ``(system, user)`` chat messages.
    """
    shown = "\n".join(
        f"{_fence('input', i)}\ngives\n{_fence('output', o)}" for i, o in examples
    )
    shown = f"For example:\n{shown}\n\n" if shown else ""
    user = (
        f"{_rules(allowed_imports)}\n\n"
        "Here is a function f:\n"
        f"{_fence('python', program)}\n"
        f"{shown}"
        f"Write {num_inputs} different inputs for f, each in its own ```input block, chosen so "
        "that someone who sees the outputs can work out what f does. Then write a short "
        "```message that hints at what f does without showing its code, in this format:\n"
        + _answer_format(
            ("input", "<first input>"),
            ("input", "<second input>"),
            ("input", "<... one block per input>"),
            ("message", "<what f does>"),
        )
    )
    return ({"role": "system", "content": SYSTEM}, {"role": "user", "content": user})


def deduction_solver_messages(program: str, input: str) -> Messages:
    """Ask for the output of ``f(<input>)``. Returns ``(system, user)`` messages."""
    user = (
        "Predict the exact value returned by f for the given input.\n"
        f"{_fence('python', program)}\n"
        f"{_fence('input', input)}\n\n"
        "Give the returned value as a Python literal, in this format:\n"
        + _answer_format(("output", "<the returned value>"))
    )
    return ({"role": "system", "content": SYSTEM}, {"role": "user", "content": user})


def abduction_solver_messages(program: str, output: str) -> Messages:
    """Ask for an input that makes ``f`` return ``output``. Returns ``(system, user)``."""
    user = (
        "Find an input for which f returns the given output.\n"
        f"{_fence('python', program)}\n"
        f"{_fence('output', output)}\n\n"
        "Give the arguments of f as plain values, in this format:\n"
        + _answer_format(("input", "<argument values, on one line>"))
    )
    return ({"role": "system", "content": SYSTEM}, {"role": "user", "content": user})


def induction_solver_messages(pairs: Sequence[tuple[str, str]], message: str) -> Messages:
    """Ask for a program reproducing the shown ``(input, output)`` pairs.

    Returns:
        ``(system, user)`` chat messages.
    """
    shown = "\n".join(f"{_fence('input', i)}\ngives\n{_fence('output', o)}" for i, o in pairs)
    user = (
        "Write a Python function f that matches these examples (it is also tested on other "
        "inputs).\n"
        f"{shown}\n"
        f"Hint: {message}\n\n"
        "Write the program in this format:\n"
        + _answer_format(("python", "def f(<parameter names>):\n    <your code>"))
    )
    return ({"role": "system", "content": SYSTEM}, {"role": "user", "content": user})
