"""The warm sandbox worker: a small pre-imported process that forks one child per job.

The trainer never runs this module in its own process: :mod:`.pool` starts it as a
separate interpreter (``python -s -S -P`` with an empty environment except
``PYTHONHASHSEED``) through :data:`BOOTSTRAP`, which loads only this package's
stdlib-only modules. Start-up imports the allowed modules, builds their shims, installs
the audit hook, clears ``os.environ``, moves to an empty directory and freezes the GC
heap so forks are cheap. Then it serves JSON-lines requests on stdin:

``{"kind": "run" | "literal", "items": [...], "timeout": s, "memory_mb": n,
"output_limit": n}``

and answers with one JSON line ``[status, output, reason]`` per item, in order, on
stdout. Each ``run`` item ``[program, input]`` runs in a fresh forked child; a
``literal`` batch is parsed in one child (falling back to one child per item if that
child fails). Programs are policy-checked and compiled, and inputs parsed as literals, in the worker
before the fork (pure parsing, nothing runs; rejections cost no process). The child
owns nothing of the worker's: stdin/stdout/stderr are
``/dev/null``, the result pipe is fd 3, every other fd is closed, limits are applied,
the address layout is perturbed, and the audit hook is armed before user code runs.
The worker kills a child at its wall-clock deadline.
"""

from __future__ import annotations

import gc
import json
import os
import random
import select
import signal
import sys
import time

from . import guard, policy, values

__all__ = ["BOOTSTRAP", "main"]

#: ``python -c`` program that imports this module without the package ``__init__``
#: files (which may import heavy trainer-side code). argv[1] is the directory that
#: contains the ``absolutezero_code`` package.
BOOTSTRAP = (
    "import sys, types\n"
    "root = sys.argv[1]\n"
    "for name, path in (('absolutezero_code', root + '/absolutezero_code'),\n"
    "                   ('absolutezero_code.executor', root + '/absolutezero_code/executor')):\n"
    "    module = types.ModuleType(name)\n"
    "    module.__path__ = [path]\n"
    "    sys.modules[name] = module\n"
    "from absolutezero_code.executor.worker import main\n"
    "main()\n"
)

_RESULT_FD = 3
_STATUSES = frozenset(
    {"ok", "error", "timeout", "memory", "output_limit", "rejected", "nondeterministic"}
)
_REASON_CHARS = 300
# Extra bytes a child may send on top of the output limit (JSON escaping, reason).
_RESULT_SLACK = 64 * 1024


class _Sandbox:
    """Everything prepared once in the worker and inherited by each forked child."""

    def __init__(self) -> None:
        self.state = guard.GuardState()
        guard.preload_codecs()
        self.shims = guard.build_shims()
        self.builtins = guard.build_builtins(self.shims, self.state)
        self.rng = random.Random(os.urandom(16))
        self.devnull = os.open(os.devnull, os.O_RDWR)
        # The descriptors a child must close: everything the worker has open now
        # (except stdio, which the child replaces), plus each job's own pipe.
        self.inherited_fds = tuple(
            fd for fd in map(int, os.listdir("/proc/self/fd")) if fd > 2 and _is_open(fd)
        )
        self.compiled = _CompileCache(256)
        guard.install_audit_hook(self.state)


def _is_open(fd: int) -> bool:
    try:
        os.fstat(fd)
    except OSError:
        return False
    return True


class _CompileCache:
    """Checked-and-compiled programs by source text (abduction runs one program on
    many inputs). Only the worker's own parse results are cached; nothing a child did
    can reach it, since children never return anything but result bytes."""

    def __init__(self, size: int) -> None:
        self.size = size
        self.entries: dict[str, object] = {}

    def get(self, program: str) -> object:
        entry = self.entries.get(program)
        if entry is None:
            entry = _compile(program)
            if len(self.entries) >= self.size:
                self.entries.pop(next(iter(self.entries)))
            self.entries[program] = entry
        return entry


def _compile(program: str) -> object:
    """Policy-check and compile a program in the worker; nothing of it runs here.

    Returns:
        A code object, or a ``[status, None, reason]`` rejection.
    """
    try:
        tree = policy.check_program(program)
        return compile(tree, "<program>", "exec")
    except policy.PolicyViolation as error:
        return ["rejected", None, str(error)]
    except SyntaxError as error:
        return ["rejected", None, f"syntax error: {error.msg} (line {error.lineno})"]
    except (ValueError, MemoryError, RecursionError) as error:
        return ["rejected", None, f"the program does not compile: {_text(error)}"]


def _arguments(text: str) -> object:
    """The argument tuple of an input text, or an ``error`` result list."""
    try:
        args = values.parse_arguments(text)
        values.canonical_repr(args)
        return args
    except (values.InvalidLiteral, values.UnsupportedValue, values.OutputTooLarge) as error:
        return ["error", None, f"invalid input: {error}"]
    except (MemoryError, RecursionError) as error:
        return ["error", None, f"invalid input: {_text(error)}"]


def _text(error: BaseException) -> str:
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


def _enter_child(sandbox: _Sandbox, result_fd: int, limits: dict, ballast: int) -> list:
    """Detach a freshly forked child from the worker and apply the limits.

    Returns:
        Ballast objects that perturb the address layout; keep them alive.
    """
    for fd in (0, 1, 2):
        os.dup2(sandbox.devnull, fd)
    os.dup2(result_fd, _RESULT_FD)
    for fd in sandbox.inherited_fds + (result_fd,):
        if fd != _RESULT_FD:
            os.close(fd)
    guard.apply_limits(limits["memory_mb"], limits["timeout"])
    # Shift where the program's objects land so address-based reprs differ between
    # the determinism runs (on top of ASLR, which differs between worker groups).
    return [object() for _ in range(ballast)]


def _send(payload: object) -> None:
    data = json.dumps(payload, ensure_ascii=False).encode("utf-8", "backslashreplace")
    view = memoryview(data)
    while view:
        written = os.write(_RESULT_FD, view)
        view = view[written:]


def _run_program(sandbox: _Sandbox, code: object, args: tuple, limits: dict) -> list:
    """Run a checked, compiled program on its arguments; the child's whole job."""
    state = sandbox.state
    namespace = {"__builtins__": sandbox.builtins, "__name__": "__sandbox__"}
    reserve = bytearray(1 << 16)  # released on MemoryError so reporting still works
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
        reserve = namespace = None
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
        result = ["error", None, _text(error)]
    del reserve
    # A violation or print overflow the program caught and swallowed still counts.
    if state.violation is not None:
        result = ["rejected", None, state.violation]
    elif state.print_overflow:
        result = ["output_limit", None, f"printed more than {limits['output_limit']} characters"]
    return result


def _canonical_literal(text: str, limit: int) -> list:
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


def _child_main(sandbox: _Sandbox, result_fd: int, kind: str, items: list, limits: dict, ballast: int) -> None:
    kept = _enter_child(sandbox, result_fd, limits, ballast)
    if kind == "run":
        code, args = items[0]
        payload: object = _run_program(sandbox, code, args, limits)
    else:
        payload = [_canonical_literal(text, limits["output_limit"]) for text in items]
    _send(payload)
    del kept


def _valid_result(result: object) -> bool:
    return (
        isinstance(result, list)
        and len(result) == 3
        and result[0] in _STATUSES
        and (result[1] is None or isinstance(result[1], str))
        and isinstance(result[2], str)
        and (result[0] == "ok") == isinstance(result[1], str)
    )


def _fork_and_collect(sandbox: _Sandbox, kind: str, items: list, limits: dict) -> object:
    """Run one child and return its decoded payload, or a failure result list."""
    ballast = sandbox.rng.randrange(1, 256)
    read_fd, write_fd = os.pipe()
    pid = os.fork()
    if pid == 0:  # child
        try:
            os.close(read_fd)
            _child_main(sandbox, write_fd, kind, items, limits, ballast)
            os._exit(0)
        except BaseException:  # noqa: BLE001
            os._exit(70)
    os.close(write_fd)
    timeout = limits["timeout"] * (len(items) if kind == "literal" else 1)
    cap = limits["output_limit"] * len(items) * 4 + _RESULT_SLACK
    return _collect(pid, read_fd, timeout, cap, limits)


def _collect(pid: int, read_fd: int, timeout: float, cap: int, limits: dict) -> object:
    deadline = time.monotonic() + timeout
    pidfd = os.pidfd_open(pid)
    poller = select.poll()
    poller.register(read_fd, select.POLLIN)
    poller.register(pidfd, select.POLLIN)
    chunks: list[bytes] = []
    size = 0
    exited = eof = False
    failure = None
    try:
        while not (exited and eof):
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                failure = ["timeout", None, f"exceeded the time limit of {timeout:g} s"]
                break
            for fd, _ in poller.poll(remaining * 1000):
                if fd == pidfd:
                    exited = True
                    poller.unregister(pidfd)
                    continue
                data = os.read(read_fd, 1 << 20)
                if not data:
                    eof = True
                    poller.unregister(read_fd)
                    continue
                chunks.append(data)
                size += len(data)
            if size > cap:
                failure = [
                    "output_limit",
                    None,
                    f"output longer than {limits['output_limit']} characters",
                ]
                break
        if failure is not None:
            os.kill(pid, signal.SIGKILL)
        _, status = os.waitpid(pid, 0)
    finally:
        os.close(pidfd)
        os.close(read_fd)
    if failure is not None:
        return failure
    if os.WIFSIGNALED(status):
        number = os.WTERMSIG(status)
        if number in (signal.SIGXCPU, signal.SIGKILL):
            return ["timeout", None, "exceeded the CPU time limit"]
        return ["error", None, f"sandboxed process died with signal {signal.Signals(number).name}"]
    if not chunks:
        code = os.WEXITSTATUS(status)
        return ["error", None, f"sandboxed process exited (code {code}) without a result"]
    try:
        return json.loads(b"".join(chunks))
    except (ValueError, RecursionError):
        return ["error", None, "sandboxed process sent a malformed result"]


def _handle(sandbox: _Sandbox, request: dict) -> list:
    kind = request["kind"]
    items = request["items"]
    limits = {
        "timeout": float(request["timeout"]),
        "memory_mb": int(request["memory_mb"]),
        "output_limit": int(request["output_limit"]),
    }
    if kind == "run":
        results = []
        for program, text in items:
            code = sandbox.compiled.get(program)
            args = _arguments(text) if not isinstance(code, list) else None
            if isinstance(code, list):
                result = code
            elif isinstance(args, list):
                result = args
            else:
                result = _fork_and_collect(sandbox, "run", [(code, args)], limits)
            results.append(result if _valid_result(result) else _malformed())
            _emit([results[-1]])
        return results
    batch = _fork_and_collect(sandbox, "literal", items, limits)
    if isinstance(batch, list) and len(batch) == len(items) and all(map(_valid_result, batch)):
        _emit(batch)
        return batch
    results = []
    for text in items:  # the batch child failed: isolate the culprit
        single = _fork_and_collect(sandbox, "literal", [text], limits)
        if isinstance(single, list) and len(single) == 1 and _valid_result(single[0]):
            result = single[0]
        elif _valid_result(single):
            result = single
        else:
            result = _malformed()
        results.append(result)
        _emit([result])
    return results


def _malformed() -> list:
    return ["error", None, "sandboxed process sent a malformed result"]


def _emit(results: list) -> None:
    data = b"".join(
        json.dumps(result, ensure_ascii=False).encode("utf-8", "backslashreplace") + b"\n"
        for result in results
    )
    view = memoryview(data)
    while view:
        view = view[os.write(1, view) :]


def main() -> None:
    """Serve requests on stdin until EOF. Only ever run in a dedicated process."""
    sandbox = _Sandbox()
    os.environ.clear()
    gc.collect()
    gc.freeze()
    stdin = sys.stdin.buffer
    os.write(1, b"ready\n")
    while True:
        line = stdin.readline()
        if not line:
            return
        request = json.loads(line)
        _handle(sandbox, request)
