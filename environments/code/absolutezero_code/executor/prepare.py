"""Preparing jobs in a worker: policy check, compilation, argument parsing, sealing.

Nothing here runs model-written code; it parses it (in a worker process, never in the
trainer). Two ways a prepared job reaches a fork:

* ``run`` requests: the worker prepares the job and runs it itself.
* ``prepare`` then ``run_tokens`` requests: one worker prepares each job once and
  returns it *sealed* (marshal bytes with a SipHash-2-4 tag under a key only the
  executor's workers and pool hold); each determinism run then unseals it in its own
  worker. That halves the preparation work (parse, walk, compile, arguments), a
  sizeable share of the CPU of a run. A token that fails the tag check is refused,
  so nothing reaches a fork without having passed the policy in some worker, even if
  the trainer side mixed up its messages. Stdlib plus the ``_forkjobs`` extension
  (for the tag); without it, sealing is unavailable and the pool sends ``run``s.
"""

from __future__ import annotations

import marshal

from . import policy, values

__all__ = [
    "DEFER",
    "CompileCache",
    "compile_program",
    "error_text",
    "parse_input",
    "seal",
    "sealing_available",
    "unseal",
]

_REASON_CHARS = 300

#: Imports that only the full sandbox tier can serve.
_FULL_TIER_MODULES = policy.HEAVY_MODULES | policy.TRUSTED_MODULES

#: The result of a job the light tier leaves to the full tier (an internal status: the
#: pool re-runs such jobs on full workers).
DEFER = ["defer", None, "imports a module only the full sandbox tier loads"]

try:
    from ._forkjobs import siphash as _siphash
except ImportError:  # the extension is not built
    _siphash = None


def sealing_available() -> bool:
    """Whether :func:`seal` / :func:`unseal` work (they need the C extension)."""
    return _siphash is not None


def error_text(error: BaseException) -> str:
    """``Type: message`` of an exception, shortened; never raises."""
    try:
        message = str(error)
    except BaseException:  # noqa: BLE001 - a user __str__ may raise anything
        message = "<unprintable message>"
    name = type(error).__name__
    text = f"{name}: {message}" if message else name
    if len(text) > _REASON_CHARS:
        text = text[: _REASON_CHARS - 3] + "..."
    return text


def compile_program(
    program: str, restricted: bool = True, stdio: bool = False, trusted: bool = False
) -> tuple[object, bool]:
    """Policy-check and compile a program; nothing of it runs.

    Two static layers: :mod:`.policy` (the sandbox's own rules, with precise reasons),
    then, with ``restricted``, RestrictedPython's (:mod:`.restricted`), run on the tree
    after it was compiled, since its transformer rewrites the tree. ``stdio`` is the
    policy variant of programs that read standard input (:func:`.policy.check_program`);
    ``trusted`` the variant of a benchmark's own test or reference solution (wider
    import allow-list, ``eval`` of literal expressions; RestrictedPython's objection to
    ``eval`` calls is then dropped, its other rules stay).

    Returns:
        ``(code, needs_full)``: a code object or a ``[status, None, reason]``
        rejection, and whether the program imports a module of
        :data:`.policy.HEAVY_MODULES` or :data:`.policy.TRUSTED_MODULES` (only the
        full tier can run it).
    """
    try:
        tree, imported = policy.check_program_imports(program, stdio, trusted)
        # From the checked tree: what runs is exactly what was checked, and compiling
        # the tree is cheaper here than parsing the text again.
        code = compile(tree, "<program>", "exec")
        if restricted:
            from . import restricted as restricted_layer

            errors = restricted_layer.restriction_errors(tree)
            if trusted:
                errors = [error for error in errors if not error.startswith("Eval calls are not allowed")]
            if errors:
                return ["rejected", None, f"RestrictedPython: {errors[0]}"], False
        return code, not imported.isdisjoint(_FULL_TIER_MODULES)
    except policy.PolicyViolation as error:
        return ["rejected", None, str(error)], False
    except SyntaxError as error:
        return ["rejected", None, f"syntax error: {error.msg} (line {error.lineno})"], False
    except (ValueError, MemoryError, RecursionError) as error:
        return ["rejected", None, f"the program does not compile: {error_text(error)}"], False


class CompileCache:
    """:func:`compile_program` results by source text (abduction runs one program on
    many inputs). Small on purpose: every cached page is copied again on each fork.
    Only the worker's own parse results are cached; nothing a child did can reach it,
    since children never return anything but result bytes."""

    def __init__(self, size: int, restricted: bool = True, trusted: bool = False) -> None:
        self.size = size
        self.restricted = restricted
        #: Compile with the trusted-code policy (a benchmark's test or reference).
        self.trusted = trusted
        self.entries: dict[object, tuple[object, bool]] = {}

    def get(self, program: str, stdio: bool = False) -> tuple[object, bool]:
        key = (program, True) if stdio else program
        entry = self.entries.get(key)
        if entry is None:
            entry = compile_program(program, self.restricted, stdio, self.trusted)
            if len(self.entries) >= self.size:
                self.entries.pop(next(iter(self.entries)))
            self.entries[key] = entry
        return entry


def parse_input(text: str) -> object:
    """The argument tuple of an input text, or an ``error`` result list."""
    try:
        args = values.parse_arguments(text)
        values.canonical_repr(args)
        return args
    except (values.InvalidLiteral, values.UnsupportedValue, values.OutputTooLarge) as error:
        return ["error", None, f"invalid input: {error}"]
    except (MemoryError, RecursionError) as error:
        return ["error", None, f"invalid input: {error_text(error)}"]


def seal(key: bytes, code: object, args: tuple, needs_full: bool) -> str:
    """A prepared job as text: the hex SipHash tag, then the hex marshal bytes.

    Raises:
        ValueError: marshal cannot represent the job (never for checked programs and
            parsed literals, whose nesting the parser already bounds).
    """
    data = marshal.dumps((code, args, needs_full))
    return _siphash(key, data).hex() + data.hex()


def unseal(key: bytes, token: object) -> tuple | None:
    """The ``(code, args, needs_full)`` of a :func:`seal` token, or ``None`` if the text
    is not one sealed under ``key``."""
    if not isinstance(token, str) or len(token) < 16:
        return None
    try:
        tag = bytes.fromhex(token[:16])
        data = bytes.fromhex(token[16:])
    except ValueError:
        return None
    if _siphash(key, data) != tag:
        return None
    job = marshal.loads(data)
    return job if isinstance(job, tuple) and len(job) == 3 else None
