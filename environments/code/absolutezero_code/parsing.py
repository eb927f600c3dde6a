"""Extract programs, argument lists, literals and messages from model responses.

Everything here is static: responses are split with regular expressions and checked
with :func:`ast.parse`, which builds a syntax tree and never runs anything. Model text is
never ``eval``'d, ``exec``'d or ``literal_eval``'d in this process (the executor's sandbox
does that), and it is never pasted into other source text that would be executed.

The response format is R1-style: ``<think>...</think>`` then ``<answer>...</answer>``.
Parsing is tolerant where a small model is sloppy and strict where it matters:

* a missing ``<think>`` is fine; the **last** ``<answer>`` block is used; a missing
  ``</answer>`` at the end of the response is fine;
* code fences may be tagged ```` ```python ````, ```` ```py ````, ```` ```input ````,
  ```` ```output ````, ```` ```message ```` or untagged; a missing closing fence at the
  very end is fine;
* a proposal's input may sit in a ```` ```python ```` or untagged fence of its own, and
  inputs may be written as the call ``f(...)``; a solver's value may sit in a
  ```` ```python ```` fence or in no fence at all (every one of these is still checked to
  be literal arguments or one literal);
* an argument list must be *only* literal arguments of one call, so text that tries to
  break out of the call (``0) or True or (0``) is rejected, never "repaired".

Every failure raises :class:`FormatError` whose message is the rejection reason shown in
logs and metrics (e.g. ``"no <answer> block"``).
"""

from __future__ import annotations

import ast
import re
from dataclasses import dataclass

__all__ = [
    "FormatError",
    "Fence",
    "extract_answer",
    "fences",
    "check_program",
    "check_arguments",
    "check_literal",
    "argument_key",
    "program_key",
    "find_program",
    "parse_proposal",
    "parse_induction_proposal",
    "parse_output_answer",
    "parse_input_answer",
    "parse_program_answer",
]


class FormatError(ValueError):
    """A response that cannot be parsed; ``str(error)`` is the human-readable reason."""


@dataclass(frozen=True)
class Fence:
    """One fenced code block: ``tag`` normalised (``"python"``, ``"input"``, ``""``, ...)."""

    tag: str
    content: str


_ANSWER_OPEN = re.compile(r"<answer>", re.IGNORECASE)
_ANSWER_CLOSE = re.compile(r"</answer>", re.IGNORECASE)
# A fence: ``` + optional tag + rest of the line, then the body up to the next ``` (or the
# end of the text, for a response cut at max tokens).
_FENCE = re.compile(r"```[ \t]*([A-Za-z0-9_+.-]*)[^\n]*\n(.*?)(?:```|\Z)", re.DOTALL)
_TAG_ALIASES = {
    "python": "python",
    "python3": "python",
    "py": "python",
    "input": "input",
    "inputs": "input",
    "output": "output",
    "message": "message",
}
# What ast.literal_eval accepts, as syntax-tree node types.
_LITERAL_CONTAINERS = (ast.Tuple, ast.List, ast.Set)


def extract_answer(response: str) -> str:
    """The content of the last ``<answer>`` block, stripped.

    Returns:
        The text between the last ``<answer>`` and the next ``</answer>`` (or the end of
        the response when the closing tag is missing).

    Raises:
        FormatError: there is no ``<answer>`` tag, or the block is empty.
    """
    if not isinstance(response, str):
        raise TypeError(f"response must be a str, got {type(response).__name__}")
    opens = list(_ANSWER_OPEN.finditer(response))
    if not opens:
        raise FormatError("no <answer> block")
    rest = response[opens[-1].end():]
    close = _ANSWER_CLOSE.search(rest)
    answer = (rest[: close.start()] if close else rest).strip()
    if not answer:
        raise FormatError("empty <answer> block")
    return answer


def fences(text: str) -> list[Fence]:
    """All fenced code blocks of ``text`` in order, with normalised tags and stripped bodies.

    Unknown tags are kept lower-cased (e.g. ``"text"``); an untagged fence has tag ``""``.
    """
    blocks = []
    for match in _FENCE.finditer(text):
        tag = match.group(1).lower()
        blocks.append(Fence(_TAG_ALIASES.get(tag, tag), match.group(2).strip()))
    return blocks


def _syntax_reason(what: str, error: SyntaxError) -> str:
    message = error.msg or "invalid syntax"
    return f"syntax error in {what} at line {error.lineno}: {message}"


def check_program(source: str, max_chars: int) -> str:
    """Check that ``source`` is a syntactically valid program defining a top-level ``f``.

    Returns:
        The stripped program text.

    Raises:
        FormatError: empty, longer than ``max_chars``, a syntax error (with the line), or
            no top-level ``def f`` (or ``f = ...`` assignment).
    """
    source = source.strip()
    if not source:
        raise FormatError("empty program")
    if len(source) > max_chars:
        raise FormatError(
            f"program is {len(source)} characters long, more than the limit of {max_chars}"
        )
    try:
        tree = ast.parse(source)
    except SyntaxError as error:
        raise FormatError(_syntax_reason("program", error)) from None
    except ValueError as error:  # e.g. null bytes
        raise FormatError(f"program cannot be parsed: {error}") from None
    if not _defines_f(tree):
        raise FormatError("program does not define f")
    return source


def _defines_f(tree: ast.Module) -> bool:
    for node in tree.body:
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)) and node.name == "f":
            return not isinstance(node, ast.AsyncFunctionDef)
        if isinstance(node, ast.Assign) and any(
            isinstance(target, ast.Name) and target.id == "f" for target in node.targets
        ):
            return True
    return False


def _is_literal(node: ast.AST) -> bool:
    """True when ``node`` is a plain literal the executor accepts.

    That is :func:`ast.literal_eval`'s grammar without complex numbers (``1+2j``) and
    ``...`` (Ellipsis), which the executor rejects as values.
    """
    if isinstance(node, ast.Constant):
        # "..." is usually a copied placeholder, and complex numbers are not plain values.
        return not isinstance(node.value, complex) and node.value is not Ellipsis
    if isinstance(node, _LITERAL_CONTAINERS):
        return all(_is_literal(element) for element in node.elts)
    if isinstance(node, ast.Dict):
        return all(key is not None and _is_literal(key) for key in node.keys) and all(
            _is_literal(value) for value in node.values
        )
    if isinstance(node, ast.UnaryOp) and isinstance(node.op, (ast.UAdd, ast.USub)):
        return (
            isinstance(node.operand, ast.Constant)
            and isinstance(node.operand.value, (int, float))
            and not isinstance(node.operand.value, bool)
        )
    if isinstance(node, ast.Call):  # set() is the only literal call
        return (
            isinstance(node.func, ast.Name)
            and node.func.id == "set"
            and not node.args
            and not node.keywords
        )
    return False


def _parse_call(text: str) -> ast.Call | None:
    """``text`` parsed as the arguments of one call ``f(<text>)``, or None if it is not."""
    try:
        # The newline keeps a trailing comment from swallowing the closing parenthesis.
        tree = ast.parse(f"f({text}\n)", mode="eval")
    except (SyntaxError, ValueError):
        return None
    call = tree.body
    if not (isinstance(call, ast.Call) and isinstance(call.func, ast.Name) and call.func.id == "f"):
        return None  # e.g. "0) or True or (0" parses as a BoolOp, "1)(2" as a nested call
    return call


def _call_form_arguments(text: str) -> str | None:
    """The argument text of ``text`` when it is written as one call ``f(...)``, else None.

    Small models (and CruxEval-I) often write an input as ``f('abc', 3)``. Only a whole
    text that parses as exactly one call of the name ``f`` qualifies (``f(0) or True``
    is a BoolOp, ``f(1)(2)`` a call of a call); the returned arguments still go through
    :func:`check_arguments`, so nothing is accepted that the plain form would reject.
    """
    text = text.strip()
    if not (text.startswith("f") and text.endswith(")")):
        return None
    try:
        tree = ast.parse(text, mode="eval")
    except (SyntaxError, ValueError):
        return None
    body = tree.body
    if isinstance(body, ast.Call) and isinstance(body.func, ast.Name) and body.func.id == "f":
        return text[1:].lstrip()[1:-1]  # "f ( args )" -> " args "
    return None


def check_arguments(
    text: str, max_chars: int, what: str = "input", allow_empty: bool = False
) -> str:
    """Check that ``text`` is a list of positional literal arguments.

    ``"'abc', 3"`` and ``"[1, 2]"`` pass; keyword or starred arguments, names, calls and
    anything that escapes the argument list do not. An empty list (a call ``f()``) passes
    only with ``allow_empty``: tasks built from existing data and explicit ``f()`` answers
    may have zero arguments, while an empty proposal input is almost always a model slip
    (and a zero-argument task is degenerate for abduction).

    Returns:
        The stripped text (what the executor receives as the job input).

    Raises:
        FormatError: with the reason (``"empty input"``, too long, not literal, ...).
    """
    text = text.strip()
    if not text:
        if allow_empty:
            return text
        raise FormatError(f"empty {what}")
    if len(text) > max_chars:
        raise FormatError(f"{what} is {len(text)} characters long, more than the limit of {max_chars}")
    call = _parse_call(text)
    if call is None:
        raise FormatError(f"{what} is not a comma-separated list of Python literals: {text[:80]!r}")
    if call.keywords or any(isinstance(arg, ast.Starred) for arg in call.args):
        raise FormatError(f"{what} must use positional arguments only (no name=value or *args)")
    if not call.args:
        raise FormatError(f"empty {what}")
    for arg in call.args:
        if not _is_literal(arg):
            segment = ast.get_source_segment(f"f({text}\n)", arg) or ""
            raise FormatError(
                f"{what} argument {segment[:60]!r} is not a plain literal (numbers, strings, "
                "lists, tuples, dicts, sets, booleans, None)"
            )
    return text


def check_literal(text: str, max_chars: int, what: str = "output") -> str:
    """Check that ``text`` is exactly one Python literal (the form of a predicted output).

    Returns:
        The stripped text.

    Raises:
        FormatError: empty, too long, not a literal, or several comma-separated values
            (``1, 2`` is accepted as the tuple it means in Python).
    """
    text = text.strip()
    if not text:
        raise FormatError(f"empty {what}")
    if len(text) > max_chars:
        raise FormatError(f"{what} is {len(text)} characters long, more than the limit of {max_chars}")
    try:
        tree = ast.parse(text, mode="eval")
    except (SyntaxError, ValueError):
        raise FormatError(f"{what} is not a Python literal: {text[:80]!r}") from None
    if not _is_literal(tree.body):
        raise FormatError(
            f"{what} is not a plain literal (numbers, strings, lists, tuples, dicts, sets, "
            f"booleans, None): {text[:80]!r}"
        )
    return text


def argument_key(text: str) -> str:
    """A formatting-independent identity of an argument list (``'a'`` == ``"a"``).

    Used to drop duplicate induction inputs and to spot copied references. Type-aware:
    ``1`` and ``1.0`` give different keys. ``text`` must have passed :func:`check_arguments`.
    """
    call = _parse_call(text)
    if call is None:
        raise ValueError(f"not an argument list: {text!r}")
    return ast.dump(ast.Tuple(elts=call.args, ctx=ast.Load()))


def program_key(source: str) -> str:
    """A formatting- and comment-independent identity of a program (its syntax tree)."""
    return ast.dump(ast.parse(source))


def find_program(answer: str, max_chars: int) -> str:
    """The program in an answer: a ``python``-tagged fence, else an untagged one.

    When several candidate fences exist, the last one that defines ``f`` wins; when none
    does, the reason reported is that of the last candidate.

    Raises:
        FormatError: ``"no ```python block in the answer"`` or the program's own problem.
    """
    blocks = fences(answer)
    candidates = [b.content for b in blocks if b.tag == "python"] or [
        b.content for b in blocks if b.tag == ""
    ]
    if not candidates:
        raise FormatError("no ```python block in the answer")
    last_error: FormatError | None = None
    for content in reversed(candidates):
        try:
            return check_program(content, max_chars)
        except FormatError as error:
            last_error = last_error or error
    assert last_error is not None
    raise last_error


def _tagged(answer: str, tag: str) -> list[str]:
    return [b.content for b in fences(answer) if b.tag == tag]


def parse_proposal(response: str, max_program_chars: int, max_input_chars: int) -> tuple[str, str]:
    """A deduction/abduction proposal: ``(program, input)`` from the answer block.

    The input is the first ```` ```input ```` fence of the answer.

    Raises:
        FormatError: any missing or malformed part, with the reason.
    """
    answer = extract_answer(response)
    program = find_program(answer, max_program_chars)
    inputs = _tagged(answer, "input")
    if inputs:
        return program, _proposal_input(inputs[0], max_input_chars)
    # Tolerance: the input written in a ```python or untagged fence of its own (the
    # fence after the program is the model's habit); it must still be literal arguments.
    for block in fences(answer):
        if block.tag in ("python", "") and block.content.strip() != program:
            try:
                return program, _proposal_input(block.content, max_input_chars)
            except FormatError:
                continue
    raise FormatError("no ```input block in the answer")


def _proposal_input(text: str, max_chars: int) -> str:
    """A proposal's argument text; the call form ``f(...)`` is accepted (not ``f()``)."""
    arguments = _call_form_arguments(text)
    return check_arguments(text if arguments is None else arguments, max_chars)


def parse_induction_proposal(
    response: str, max_inputs: int, max_input_chars: int, max_message_chars: int
) -> tuple[list[str | FormatError], str]:
    """An induction proposal: the ```` ```input ```` fences and the ```` ```message ````.

    Returns:
        ``(inputs, message)``: the first ``max_inputs`` input fences, each either the
        checked argument text or the :class:`FormatError` explaining why it is unusable
        (the caller decides how many bad ones to tolerate), and the stripped message.

    Raises:
        FormatError: no answer, no input fence, no/empty/too long message.
    """
    answer = extract_answer(response)
    raw_inputs = _tagged(answer, "input")
    if not raw_inputs:
        raise FormatError("no ```input block in the answer")
    messages = _tagged(answer, "message")
    if not messages:
        raise FormatError("no ```message block in the answer")
    message = messages[0].strip()
    if not message:
        raise FormatError("empty message")
    if len(message) > max_message_chars:
        raise FormatError(
            f"message is {len(message)} characters long, more than the limit of {max_message_chars}"
        )
    inputs: list[str | FormatError] = []
    for raw in raw_inputs[:max_inputs]:
        try:
            inputs.append(check_arguments(raw, max_input_chars))
        except FormatError as error:
            inputs.append(error)
    return inputs, message


def _answer_value(response: str, tag: str) -> str:
    """The text of the ``tag`` fence, else an untagged or ```python fence, else the bare
    answer (the value written without a fence). The caller checks it is literal."""
    answer = extract_answer(response)
    blocks = fences(answer)
    for wanted in (tag, "", "python"):
        for block in blocks:
            if block.tag == wanted:
                return block.content
    if blocks:
        raise FormatError(f"no ```{tag} block in the answer")
    return answer


def parse_output_answer(response: str, max_chars: int) -> str:
    """A deduction answer: the predicted output as one literal's text (not evaluated).

    Raises:
        FormatError: no answer, or the answer is not a plain literal.
    """
    return check_literal(_answer_value(response, "output"), max_chars, "output")


def parse_input_answer(response: str, max_chars: int) -> str:
    """An abduction answer: the predicted argument list's text (not evaluated).

    Also accepts the call form ``f('abc', 3)`` (the CruxEval-I habit) and uses its
    arguments.

    Raises:
        FormatError: no answer, or not a list of literal arguments.
    """
    text = _answer_value(response, "input").strip()
    arguments = _call_form_arguments(text)
    if arguments is not None:
        # An explicit "f()" is a zero-argument answer; an empty block is still an error.
        return check_arguments(arguments, max_chars, "input", allow_empty=True)
    return check_arguments(text, max_chars, "input")


def parse_program_answer(response: str, max_chars: int) -> str:
    """An induction answer: the solver's program defining ``f``.

    Raises:
        FormatError: no answer, no program fence, syntax error, no ``f``.
    """
    return find_program(extract_answer(response), max_chars)
