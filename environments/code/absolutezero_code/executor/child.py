"""What runs inside a forked sandbox child: the job, and the bytes it sends back.

Kept apart from the worker's request handling (:mod:`.worker`) because this is the
code whose every page write costs a copy-on-write fault: it does as little as it can,
and :func:`warm_up` lets the worker run its pure parts first so children inherit
already specialised bytecode. Stdlib only.
"""

from __future__ import annotations

import os

from . import guard, values
from .prepare import error_text

__all__ = [
    "STATUS_ORDER", "canonical_literal", "child_result", "run_check", "run_program", "send", "warm_up",
]

#: Statuses in the order of their one-digit codes in a child's result (see
#: :func:`child_result`); ``defer`` (last) only from light-tier children.
STATUS_ORDER = (
    "ok", "error", "timeout", "memory", "output_limit", "rejected", "nondeterministic", "defer",
)
#: The digit (as bytes) that stands for each status.
STATUS_DIGIT = {status: str(number).encode() for number, status in enumerate(STATUS_ORDER)}


def warm_up() -> None:
    """Run the pure parts of a child's path a few times in the worker.

    CPython 3.11 rewrites ("quickens") a function's bytecode after a few calls and
    specialises it as it runs; done here once, children inherit the finished code
    instead of each writing (and so copying) those pages again.
    """
    samples = [None, True, 1, 2.5, "text", b"bytes", [1, "a"], (1,), {"k": [1.5]}, {3, 1}]
    state = guard.GuardState()  # a throwaway: the sandbox's own state is never armed here
    plan = guard.limit_plan(512, 1.0)
    for _ in range(16):
        for value in samples:
            child_result(["ok", values.canonical_repr(value, 1000), ""])
        child_result(["error", None, "ValueError: message"])
        state.arm(1000)
        guard.apply_plan(plan, setrlimit=lambda limit, pair: None)


def child_result(result: list) -> bytes:
    """What a child sends for its ``[status, output, reason]``: the status digit, then
    the output (``ok``) or the reason as UTF-8 (surrogates kept).

    Deliberately little work: every page a child writes costs a fault, so the JSON
    line is built by the worker (``worker._result_line_of``), once per block of results.
    """
    status, output, reason = result
    return STATUS_DIGIT[status] + (output if status == "ok" else reason).encode("utf-8", "surrogatepass")


def send(result_fd: int, data: bytes) -> None:
    written = os.write(result_fd, data)
    if written < len(data):  # a large result: the pipe takes it in pieces
        view = memoryview(data)[written:]
        while view:
            view = view[os.write(result_fd, view) :]


def run_program(sandbox, code: object, args: tuple, limits: dict, builtins: dict | None = None) -> list:
    """Run a checked, compiled program on its arguments; the child's whole job.

    ``sandbox`` is the worker's sandbox (its ``state``, ``builtins`` and ``reserve``);
    ``builtins`` replaces its builtins for a trusted reference program.
    """
    state = sandbox.state
    namespace = {"__builtins__": sandbox.builtins if builtins is None else builtins, "__name__": "__sandbox__"}
    state.arm(limits["output_limit"])
    try:
        exec(code, namespace)  # noqa: S102 - armed sandbox child, program passed policy
        function = namespace.get("f")
        if function is None:
            result = ["error", None, "program defines no function f"]
        elif not callable(function):
            result = ["error", None, "f is not a function"]
        else:
            value = function(*args)
            namespace = function = None
            result = ["ok", values.canonical_repr(value, limits["output_limit"]), ""]
    except MemoryError:
        sandbox.reserve = namespace = None
        result = ["memory", None, f"exceeded the memory limit of {limits['memory_mb']} MB"]
    except guard.SandboxViolation as error:
        result = ["rejected", None, str(error)]
    except guard.PrintLimitExceeded as error:
        result = ["output_limit", None, str(error)]
    except values.OutputTooLarge as error:
        result = ["output_limit", None, str(error)]
    except values.UnsupportedValue as error:
        result = ["rejected", None, f"output is not a plain value: {error}"]
    except BaseException as error:  # noqa: BLE001 - everything a program can raise
        result = ["error", None, error_text(error)]
    # A violation or print overflow the program caught and swallowed still counts.
    if state.deferred:  # the full tier decides (it has the codec the program wanted)
        result = ["defer", None, "uses a codec only the full sandbox tier loads"]
    elif state.violation is not None:
        result = ["rejected", None, state.violation]
    elif state.print_overflow:
        result = ["output_limit", None, f"printed more than {limits['output_limit']} characters"]
    return result


def run_check(sandbox, job: tuple, limits: dict) -> list:
    """Run a checked program, then its test; the child's whole job for ``check`` jobs.

    ``job`` is ``(program code, test code, entry point or None, stdin text or None[,
    trust])``; ``trust`` ``"test"`` gives the test the trusted builtins
    (:mod:`.trusted`), ``"reference"`` the program too (a benchmark's reference).
    The program runs first in its own namespace (with a stdin: as ``__main__``, with
    ``input`` and the ``sys`` shim, its printed text captured; ``sys.exit`` just ends
    it). The test then runs in a *fresh* namespace that holds only ``candidate`` (the
    program's entry point, None without one) and, for stdin jobs, ``stdout`` (what the
    program printed), with module shims of its own: the program cannot shadow a
    builtin, a helper or a module function the test uses.
    The job passes (``ok``, output ``""``) when neither raises within the limits.
    """
    program, test, entry_point, stdin, trust = (*job, "")[:5]
    state = sandbox.state
    stdio = stdin is not None
    if stdio:
        guard.open_stdio(sandbox.sys_shim, state, stdin)
    if trust == "reference":
        program_builtins = sandbox.trusted_builtins
    else:
        program_builtins = sandbox.stdio_builtins if stdio else sandbox.builtins
    namespace = {"__builtins__": program_builtins, "__name__": "__main__" if stdio else "__sandbox__"}
    stage = "the program raised"
    state.arm(limits["output_limit"], execs=2)
    try:
        try:
            exec(program, namespace)  # noqa: S102 - armed sandbox child, program passed policy
        except SystemExit:
            if not stdio:
                raise
        candidate = namespace.get(entry_point) if entry_point else None
        if entry_point and candidate is None:
            result = ["error", None, f"the program defines no {entry_point!r}"]
        else:
            stage = "test failed"
            test_builtins = sandbox.trusted_builtins if trust else sandbox.test_builtins
            checks = {"__builtins__": test_builtins, "__name__": "__test__", "candidate": candidate}
            if stdio:
                checks["stdout"] = "".join(state.captured)
            exec(test, checks)  # noqa: S102 - the benchmark's test, passed the same policy
            result = ["ok", "", ""]
    except MemoryError:
        sandbox.reserve = namespace = None
        result = ["memory", None, f"exceeded the memory limit of {limits['memory_mb']} MB"]
    except guard.SandboxViolation as error:
        result = ["rejected", None, str(error)]
    except guard.PrintLimitExceeded as error:
        result = ["output_limit", None, str(error)]
    except BaseException as error:  # noqa: BLE001 - everything a program can raise
        result = ["error", None, f"{stage}: {error_text(error)}"]
    if state.deferred:
        result = ["defer", None, "uses a codec only the full sandbox tier loads"]
    elif state.violation is not None:
        result = ["rejected", None, state.violation]
    elif state.print_overflow:
        result = ["output_limit", None, f"printed more than {limits['output_limit']} characters"]
    return result


def canonical_literal(text: str, limit: int) -> list:
    try:
        return ["ok", values.canonical_repr(values.parse_literal(text), limit), ""]
    except values.InvalidLiteral as error:
        return ["error", None, str(error)]
    except values.UnsupportedValue as error:
        return ["rejected", None, f"not a plain value: {error}"]
    except values.OutputTooLarge as error:
        return ["output_limit", None, str(error)]
    except MemoryError:
        return ["memory", None, "exceeded the memory limit while parsing the literal"]
    except RecursionError:
        return ["error", None, "the literal is nested too deeply"]
