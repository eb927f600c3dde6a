"""The warm sandbox worker: a small pre-imported process that forks one child per job.

The trainer never runs this module in its own process: :mod:`.pool` starts it as a
separate interpreter (``python -s -S -P`` with an empty environment except
``PYTHONHASHSEED``) through :data:`BOOTSTRAP`, which loads only this package's
stdlib-only modules. Start-up imports the allowed modules, builds their shims, installs
the audit hook, clears ``os.environ``, moves to an empty directory and freezes the GC
heap so forks are cheap. Then it serves JSON-lines requests on stdin:

``{"kind": "run" | "prepare" | "run_tokens" | "literal" | "check", "items": [...],
"timeout": s, "memory_mb": n, "output_limit": n}``

and answers with one JSON line ``[status, output, reason]`` per item, in order, on
stdout. Each ``run`` item ``[program, input]`` runs in a fresh forked child; a
``prepare`` item is only prepared and comes back sealed (``["ok", token, ""]``, see
:mod:`.prepare`), and a ``run_tokens`` item (such a token) runs like a ``run`` item; a
``literal`` batch is parsed in one child (falling back to one child per item if that
child fails). A ``check`` item ``[program, test, entry point, stdin]`` (code-generation
benchmarks) runs the program and then its test in one fresh child (:func:`.child.run_check`);
both pass the same policy, and such items are compiled and run one at a time, since a
benchmark's test can be large. A light-tier worker answers ``defer`` for a job only the full tier can
run (:data:`TIERS`). The forking itself is :mod:`.forking`'s (a C loop when built). Programs
are policy-checked and compiled, and inputs parsed as literals, in the worker before
the fork (pure parsing, nothing runs; rejections cost no process). The child
owns nothing of the worker's: every descriptor but its result pipe is closed (stdin,
stdout and stderr included), limits are applied, and the audit hook is armed before
user code runs. Each worker starts with a random heap ballast, so (with ASLR and the
hash seed) the determinism runs, which always span both worker groups, see different
address layouts.
The worker kills a child at its wall-clock deadline.

Speed (a run costs about one fork, and in this kind of VM a fork is dominated by page
faults: each page a process writes after a fork is copied or re-faulted): the fork
loop is C (:mod:`.forking`); a whole batch is checked, compiled and parsed *before*
its first fork, so the worker writes little memory between forks; a child sends a
status digit and raw text, and the worker builds the JSON lines once per block of
results and replies in blocks (at least every :data:`_FLUSH_SECONDS`) instead of one
write per job; a child inherits its emergency memory reserve instead of zero-filling
a fresh one; the worker is started with ``LD_BIND_NOW`` so children do not resolve
symbols lazily; and the global ``random`` generator (only reachable through
``statistics``) is not re-seeded in every child (see :func:`_import_random`).
"""

from __future__ import annotations

import gc
import json
import os
import sys
import time
from collections.abc import Callable
from json.encoder import encode_basestring as _quote  # the C encoder

from . import child, forking, guard, policy, prepare, trusted
from .child import STATUS_ORDER
from .prepare import DEFER as _DEFER
from .prepare import error_text as _text


def _import_random():
    """Import :mod:`random` without its fork hook (a re-seed of the global generator in
    every forked child: a Python call, a ``getrandom`` and 2.5 KB of writes per run).

    Nothing the worker or the sandbox machinery does uses the global generator, and a
    program can only reach it through ``statistics.NormalDist.samples()`` without a
    seed; those draws differ between the two hash-seed groups (each worker seeds it
    from ``os.urandom`` at start), so the determinism check still rejects them, and a
    child's draws never reach another job (children are forks, nothing flows back).
    """
    if "random" in sys.modules:  # imported in-process (tests): leave it as it is
        return sys.modules["random"]
    register = os.register_at_fork
    os.register_at_fork = lambda **_hooks: None
    try:
        import random
    finally:
        os.register_at_fork = register
    return random


__all__ = ["BOOTSTRAP", "TIERS", "main"]

#: Sandbox tiers. ``light`` loads every allowed module but :data:`.policy.HEAVY_MODULES`
#: (cheaper forks) and answers a program that imports one of those with a ``defer``
#: result, which the trainer side sends on to a ``full`` worker (every module).
TIERS = ("light", "full")

#: ``python -c`` program that imports this module without the package ``__init__``
#: files (which may import heavy trainer-side code). argv[1] is the directory that
#: contains the ``absolutezero_code`` package, argv[2] the fork loop to use
#: (:data:`.forking.FORK_LOOPS`), argv[3] the CPU to pin the worker (and its children)
#: to, or ``-1`` for none, argv[4] the tier (:data:`TIERS`), argv[5] the hex key that seals
#: prepared jobs (see :mod:`.prepare`), empty when sealing is off, argv[6] the folder of
#: the RestrictedPython package (the second static layer, :mod:`.restricted`), empty to
#: leave that layer out. RestrictedPython is mapped the same way as this package (a bare
#: package module, no ``__init__``), so the worker loads only its transformer module, not
#: site-packages.
BOOTSTRAP = (
    "import sys, types\n"
    "root = sys.argv[1]\n"
    "for name, path in (('absolutezero_code', root + '/absolutezero_code'),\n"
    "                   ('absolutezero_code.executor', root + '/absolutezero_code/executor')):\n"
    "    module = types.ModuleType(name)\n"
    "    module.__path__ = [path]\n"
    "    sys.modules[name] = module\n"
    "if sys.argv[6]:\n"
    "    module = types.ModuleType('RestrictedPython')\n"
    "    module.__path__ = [sys.argv[6]]\n"
    "    sys.modules['RestrictedPython'] = module\n"
    "from absolutezero_code.executor.worker import main\n"
    "main(sys.argv[2], int(sys.argv[3]), sys.argv[4], sys.argv[5], bool(sys.argv[6]))\n"
)

#: The statuses a result may have (``defer`` is internal, see :data:`_DEFER`).
_STATUSES = frozenset(STATUS_ORDER) - {"defer"}
# Extra bytes a child may send on top of the output limit (JSON escaping, reason).
_RESULT_SLACK = 64 * 1024
#: The worker writes the results it has so far at least this often (seconds), so a
#: slow job never holds back the replies of the quick ones before it.
_FLUSH_SECONDS = 0.05


class _Sandbox:
    """Everything prepared once in the worker and inherited by each forked child."""

    def __init__(
        self, fork_loop: str = "auto", tier: str = "full", key: bytes | None = None, restricted: bool = True
    ) -> None:
        if tier not in TIERS:
            raise ValueError(f"tier must be one of {TIERS}, got {tier!r}")
        self.fork_loop = forking.make_fork_loop(fork_loop)
        self.light = tier == "light"
        self.state = guard.GuardState(defer_codec_imports=self.light)
        guard.preload_codecs(full=not self.light)
        if self.light:
            modules = policy.ALLOWED_MODULES - policy.HEAVY_MODULES
        else:
            _import_random()  # before ``statistics`` (a heavy module) imports it
            modules = policy.ALLOWED_MODULES
        self.shims = guard.build_shims(modules)
        self.builtins = guard.build_builtins(self.shims, self.state)
        self.modules = modules
        # A random amount of long-lived objects of every small size class (and a
        # random-size malloc block), so the heap layout, and with it every address a
        # program can observe, differs between workers even where ASLR is off. The
        # determinism runs of a job always span both worker groups. (Per-child
        # ballast would cost dozens of page faults per run.)
        # Small on purpose: every page the worker maps makes each fork dearer.
        noise = os.urandom(34)
        ballast: list = [object() for _ in range(noise[0] % 16)]  # 16-byte blocks
        ballast += [float(number) for number in range(noise[1] % 16)]  # 32-byte blocks
        ballast += [bytes(16 * size - 33) for size in range(3, 33) for _ in range(noise[size] % 8)]
        ballast.append(bytearray(16 * (1 + noise[33] * 4)))
        self.ballast = ballast
        # Released by a child on MemoryError so that reporting still works; allocated
        # here so children inherit it instead of zero-filling 16 pages each.
        self.reserve: bytearray | None = bytearray(1 << 16)
        child.warm_up()
        # Small: abduction checks one program on many inputs in the same batch, and
        # every cached page is copied again on each fork.
        self.compiled = prepare.CompileCache(64, restricted=restricted)
        self.restricted = restricted
        #: What only check jobs use, built by :meth:`prepare_checks` on the first one,
        #: so that the workers of self-play (which never get one) stay as small.
        self.tests: prepare.CompileCache | None = None
        self.test_builtins: dict | None = None
        #: Trusted parts of check jobs (a benchmark's own test or reference solution,
        #: :mod:`.trusted`): their compile caches and builtins.
        self.trusted_tests: prepare.CompileCache | None = None
        self.trusted_programs: prepare.CompileCache | None = None
        self.trusted_builtins: dict | None = None
        self.stdio_builtins: dict | None = None
        self.sys_shim = None
        #: The key that seals prepared jobs (:mod:`.prepare`); None: sealing is off.
        self.key = key
        guard.install_audit_hook(self.state)

    def prepare_checks(self) -> None:
        """Build what check jobs need, once, in the worker (before any of their forks):
        a small cache for benchmark tests (one per problem, can be large); module shims
        of the test's own, so a program that reassigns ``math.fabs`` in its shim cannot
        change what the test computes; the stdio builtins and ``sys`` shim."""
        if self.tests is None:
            self.tests = prepare.CompileCache(4, restricted=self.restricted)
            self.test_builtins = guard.build_builtins(guard.build_shims(self.modules), self.state)
            self.stdio_builtins, self.sys_shim = guard.build_stdio(self.builtins, self.state)

    def prepare_trusted(self) -> None:
        """Build what trusted parts of jobs need (:mod:`.trusted`), once, on the first
        such job: their compile caches and builtins (the tests' shims plus, in the full
        tier, shims of :data:`.policy.TRUSTED_MODULES`, imported here; a light worker
        defers jobs that import them). Workers that never get one stay as small."""
        self.prepare_checks()
        if self.trusted_builtins is None:
            self.trusted_tests = prepare.CompileCache(4, restricted=self.restricted, trusted=True)
            self.trusted_programs = prepare.CompileCache(4, restricted=self.restricted, trusted=True)
            shims = {} if self.light else trusted.build_trusted_shims()
            self.trusted_builtins = trusted.build_trusted_builtins(self.test_builtins, shims, self.state)


def _encode(result: list) -> bytes:
    """The JSON line (without newline) of a ``[status, output, reason]`` result.

    The same text as ``json.dumps(result, ensure_ascii=False, separators=(",", ":"))``
    with lone surrogates backslash-escaped, built with the C string encoder only.
    """
    status, output, reason = result
    text = '["' + status + '",' + ("null" if output is None else _quote(output)) + "," + _quote(reason) + "]"
    return text.encode("utf-8", "backslashreplace")


def _result_line_of(data: bytes) -> bytes:
    """The JSON result line of a child's :func:`.child.child_result` bytes."""
    number = data[0] - 48 if data else -1
    if not 0 <= number < len(STATUS_ORDER):
        return _encode(_malformed())
    try:
        text = data[1:].decode("utf-8", "surrogatepass")
    except UnicodeDecodeError:
        return _encode(_malformed())
    status = STATUS_ORDER[number]
    return _encode(["ok", text, ""] if status == "ok" else [status, None, text])


def _valid_result(result: object) -> bool:
    return (
        isinstance(result, list)
        and len(result) == 3
        and result[0] in _STATUSES
        and (result[1] is None or isinstance(result[1], str))
        and isinstance(result[2], str)
        and (result[0] == "ok") == isinstance(result[1], str)
    )


def _literal_child(sandbox: _Sandbox, limits: dict) -> Callable[[list, int], None]:
    """The child function of a ``literal`` batch: parse each text, send one JSON list."""
    limit = limits["output_limit"]

    def parse_all(texts: list, result_fd: int) -> None:
        payload = [child.canonical_literal(text, limit) for text in texts]
        child.send(result_fd, json.dumps(payload, ensure_ascii=False).encode("utf-8", "backslashreplace"))

    return parse_all


def _run_jobs(sandbox: _Sandbox, jobs: list, limits: dict, replies: "_Replies", check: bool = False) -> None:
    """Run prepared ``(code, args)`` jobs (``check``: ``(program, test, entry point,
    stdin)`` jobs), each in a fresh child; add each JSON result line to ``replies`` (at
    least every :data:`_FLUSH_SECONDS`)."""

    if check:

        def run_one(job: tuple, result_fd: int) -> None:
            child.send(result_fd, child.child_result(child.run_check(sandbox, job, limits)))

    else:

        def run_one(job: tuple, result_fd: int) -> None:
            # A third element: a trusted reference program (its own builtins).
            builtins = sandbox.trusted_builtins if len(job) > 2 else None
            child.send(result_fd, child.child_result(child.run_program(sandbox, job[0], job[1], limits, builtins)))

    run = sandbox.fork_loop.run
    plan, timeout = limits["plan"], limits["timeout"]
    cap = limits["output_limit"] * 4 + _RESULT_SLACK
    start = 0
    while start < len(jobs):
        outcomes = run(jobs, start, run_one, plan, timeout, cap, _FLUSH_SECONDS)
        start += len(outcomes)
        for data in outcomes:
            if data.__class__ is bytes:
                replies.add(_result_line_of(data))
            else:
                replies.add(_result_line(_failure(data, limits)))


def _run_literals(sandbox: _Sandbox, texts: list, limits: dict) -> object:
    """Parse literal texts in one child.

    Returns:
        The decoded payload (one result per text if all went well), or a failure result.
    """
    timeout = limits["timeout"] * len(texts)
    cap = limits["output_limit"] * len(texts) * 4 + _RESULT_SLACK
    parse_all = _literal_child(sandbox, limits)
    (data,) = sandbox.fork_loop.run([texts], 0, parse_all, limits["plan"], timeout, cap, 0.0)
    if data.__class__ is not bytes:
        return _failure(data, dict(limits, timeout=timeout))
    try:
        return json.loads(data)
    except (ValueError, RecursionError):
        return _malformed()


def _failure(outcome: tuple, limits: dict) -> list:
    return forking.failure(outcome[0], outcome[1], limits["timeout"], limits["output_limit"])


class _Replies:
    """Result lines on their way to stdout, written in blocks (see _FLUSH_SECONDS)."""

    def __init__(self) -> None:
        self.lines: list[bytes] = []
        self.since = time.monotonic()

    def add(self, line: bytes) -> None:
        self.lines.append(line)
        if time.monotonic() - self.since >= _FLUSH_SECONDS:
            self.flush()

    def flush(self) -> None:
        if self.lines:
            self.lines.append(b"")
            _write_all(b"\n".join(self.lines))
            self.lines = []
        self.since = time.monotonic()


def _result_line(result: object) -> bytes:
    return _encode(result) if _valid_result(result) else _encode(_malformed())


def _checked(sandbox: _Sandbox, program: str, text: str, trust: str = "") -> object:
    """``(code, args, needs_full)`` for a program and its input text, or the result list
    of whichever of them is rejected. ``trust`` ``"reference"``: a benchmark's reference
    solution, compiled with the trusted policy (``(code, args, needs_full, trust)``)."""
    if trust:
        if trust != "reference":
            return ["error", None, f"sandbox error: unknown trust level {trust!r} for this job"]
        sandbox.prepare_trusted()
        code, needs_full = sandbox.trusted_programs.get(program)  # type: ignore[union-attr]
    else:
        code, needs_full = sandbox.compiled.get(program)
    if isinstance(code, list):
        return code
    args = prepare.parse_input(text)
    if isinstance(args, list):
        return args
    return (code, args, needs_full, trust) if trust else (code, args, needs_full)


def _runnable(sandbox: _Sandbox, job: object) -> object:
    """The ``(code, args)`` of a checked job this worker's tier can run, :data:`_DEFER`,
    or the job's result list."""
    if isinstance(job, list):
        return job
    code, args, needs_full, *trust = job
    return _DEFER if needs_full and sandbox.light else (code, args, *trust)


def _prepared(sandbox: _Sandbox, program: str, text: str) -> list:
    """The reply to a ``prepare`` item: ``["ok", token, ""]`` or the job's result."""
    if sandbox.key is None:
        return ["error", None, "sandbox error: this worker has no sealing key"]
    job = _checked(sandbox, program, text)
    if isinstance(job, list):
        return job
    try:
        return ["ok", prepare.seal(sandbox.key, *job), ""]
    except ValueError as error:
        return ["error", None, f"invalid input: {_text(error)}"]


def _unsealed(sandbox: _Sandbox, token: str) -> object:
    """The ``(code, args, needs_full)`` of a ``run_tokens`` item, or its result list."""
    job = None if sandbox.key is None else prepare.unseal(sandbox.key, token)
    if job is None:
        return ["error", None, "sandbox error: a prepared job failed its integrity check"]
    return job


#: The trust levels of a check item (its optional fifth element): ``""`` both parts
#: hardened; ``"test"`` the test is trusted (:mod:`.trusted`); ``"reference"`` the
#: program too (a benchmark's own reference solution, never model output).
_TRUST_LEVELS = ("", "test", "reference")


def _checked_check(sandbox: _Sandbox, item: list) -> object:
    """The ``(program, test, entry point, stdin, trust)`` code job of a ``check`` item,
    :data:`_DEFER`, or the item's result list (the program or the test was rejected)."""
    program, test, entry_point, stdin, trust = (*item, "")[:5]
    if trust not in _TRUST_LEVELS or (trust == "reference" and stdin is not None):
        return ["error", None, f"sandbox error: unknown trust level {trust!r} for this job"]
    if trust:
        sandbox.prepare_trusted()
    if trust == "reference":
        code, program_full = sandbox.trusted_programs.get(program)  # type: ignore[union-attr]
    else:
        code, program_full = sandbox.compiled.get(program, stdin is not None)
    if isinstance(code, list):
        return code
    tests = sandbox.trusted_tests if trust else sandbox.tests
    test_code, test_full = tests.get(test)  # type: ignore[union-attr]
    if isinstance(test_code, list):
        return [test_code[0], None, f"the test: {test_code[2]}"]
    if (program_full or test_full) and sandbox.light:
        return _DEFER
    return (code, test_code, entry_point, stdin, trust)


def _handle(sandbox: _Sandbox, request: dict) -> None:
    kind = request["kind"]
    items = request["items"]
    limits = {
        "timeout": float(request["timeout"]),
        "memory_mb": int(request["memory_mb"]),
        "output_limit": int(request["output_limit"]),
    }
    limits["plan"] = guard.limit_plan(limits["memory_mb"], limits["timeout"])
    replies = _Replies()
    if kind == "prepare":
        for program, text in items:
            replies.add(_encode(_prepared(sandbox, program, text)))
        replies.flush()
        return
    if kind == "check":
        sandbox.prepare_checks()
        for item in items:
            job = _checked_check(sandbox, item)
            if isinstance(job, tuple):
                _run_jobs(sandbox, [job], limits, replies, check=True)
            else:
                replies.add(_encode(_DEFER) if job is _DEFER else _result_line(job))
            replies.flush()
        return
    if kind in ("run", "run_tokens"):
        # Check, compile and parse (or unseal) the whole batch before the first fork:
        # every page the worker writes after a fork costs a page fault.
        checked = (_checked(sandbox, *item) if kind == "run" else _unsealed(sandbox, item) for item in items)
        jobs = [_runnable(sandbox, job) for job in checked]
        start = 0
        for index, entry in enumerate(jobs):  # a (code, args) job or a result list
            if not isinstance(entry, tuple):
                _run_jobs(sandbox, jobs[start:index], limits, replies)
                # _DEFER is the worker's own verdict, not a child's: no status check.
                replies.add(_encode(_DEFER) if entry is _DEFER else _result_line(entry))
                start = index + 1
        _run_jobs(sandbox, jobs[start:], limits, replies)
        replies.flush()
        return
    batch = _run_literals(sandbox, items, limits)
    if isinstance(batch, list) and len(batch) == len(items) and all(map(_valid_result, batch)):
        for result in batch:
            replies.add(_encode(result))
        replies.flush()
        return
    for text in items:  # the batch child failed: isolate the culprit
        single = _run_literals(sandbox, [text], limits)
        if isinstance(single, list) and len(single) == 1 and _valid_result(single[0]):
            result = single[0]
        else:
            result = single
        replies.add(_result_line(result))
    replies.flush()


def _malformed() -> list:
    return ["error", None, "sandboxed process sent a malformed result"]


def _write_all(data: bytes) -> None:
    view = memoryview(data)
    while view:
        view = view[os.write(1, view) :]


def main(fork_loop: str = "auto", cpu: int = -1, tier: str = "full", key: str = "", restricted: bool = True) -> None:
    """Serve requests on stdin until EOF. Only ever run in a dedicated process.

    ``cpu >= 0`` pins the worker, and so every child it forks, to that CPU: a child
    then runs where its parent's page tables and pages are cache-hot, and the fork's
    TLB flushes stay local instead of interrupting other CPUs (up to a third less CPU
    per run on a 2-core VM). Pinning is best effort (a CPU set may forbid it).

    Announces ``ready <fork loop name> <tier>`` (see :data:`.forking.FORK_LOOPS`,
    :data:`TIERS`) once set up.
    """
    if cpu >= 0:
        try:
            os.sched_setaffinity(0, {cpu})
        except (OSError, AttributeError):
            pass
    sandbox = _Sandbox(fork_loop, tier, bytes.fromhex(key) if key else None, restricted)
    os.environ.clear()
    gc.collect()
    gc.freeze()
    stdin = sys.stdin.buffer
    os.write(1, f"ready {sandbox.fork_loop.name} {tier}\n".encode())
    while True:
        line = stdin.readline()
        if not line:
            return
        request = json.loads(line)
        _handle(sandbox, request)
