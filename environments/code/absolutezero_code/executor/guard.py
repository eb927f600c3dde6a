"""Run-time guards of the sandbox child: builtins, module shims, audit hook, limits.

Why each piece:

* **restricted builtins**: the program's globals get a fresh dict without ``open``,
  ``eval``, ``exec``, ``getattr`` ... and with an ``__import__`` that only hands out
  module *shims*; the real ``builtins`` module is never reachable from user globals.
* **module shims**: ``typing.sys`` or ``collections._sys`` would give a program ``sys``
  and then ``os``; a shim is a new module object holding only the public, non-module
  attributes of an allowed module, with string-based attribute access
  (``operator.attrgetter`` / ``methodcaller``) checked by the policy.
* **audit hook** (:pep:`578`): installed once in the worker and inherited by every
  forked child; it cannot be removed from Python code. It is inert in the worker and
  *armed* in the child just before user code runs; armed, it denies every audited
  operation except a small allow-list: ``open``, ``os.*``, ``socket.*``, ``subprocess``,
  ``os.fork``/``exec``/``spawn``, ``_thread.start_new_thread``, ``compile``/``exec``
  of new code, ``builtins.id``, ``sys._getframe``, restricted attribute reads
  (``gi_frame``, ``__code__``, ``tb_frame``) ... A denied operation raises
  :class:`SandboxViolation` (a ``BaseException``, so ``except Exception`` does not
  swallow it) and is recorded, so the run is rejected even if the program catches it.
* **resource limits**: address space, CPU seconds, no file writes (``RLIMIT_FSIZE=0``),
  no new processes (``RLIMIT_NPROC=0``; root ignores it, hence the hook), no new file
  descriptors, no core dumps.
"""

from __future__ import annotations

import builtins
import codecs
import importlib
import importlib.util
import io
import math
import resource
import sys
import types
from collections.abc import Callable

from .policy import ALLOWED_MODULES, attribute_allowed

__all__ = [
    "SandboxViolation",
    "PrintLimitExceeded",
    "GuardState",
    "install_audit_hook",
    "build_shims",
    "build_builtins",
    "build_stdio",
    "open_stdio",
    "apply_limits",
    "apply_plan",
    "limit_plan",
    "preload_codecs",
    "PRELOADED_CODECS",
    "FULL_TIER_CODECS",
]

#: Audited events that stay allowed once armed: setting/deleting attributes of classes
#: the program defined (a fresh process per job makes this harmless).
_ALLOWED_EVENTS = frozenset({"object.__setattr__", "object.__delattr__"})

#: Builtins handed to programs. Everything else in :mod:`builtins` is absent.
_SAFE_BUILTIN_NAMES = (
    "abs all any ascii bin bool bytearray bytes callable chr classmethod complex dict "
    "dir divmod enumerate filter float format frozenset hash hasattr hex id int "
    "isinstance issubclass iter len list map max min next object oct ord pow property "
    "range repr reversed round set slice sorted staticmethod str sum super tuple type "
    "zip NotImplemented Ellipsis None True False"
).split()


class SandboxViolation(BaseException):
    """A blocked operation inside the sandbox; ``str(error)`` names it."""


class PrintLimitExceeded(BaseException):
    """The program printed more text than the output limit allows."""


class GuardState:
    """Mutable state shared by the audit hook and the child runner.

    Only reachable through the hook's closure and the runner's module, neither of which
    a program can get at (dunder access, frames and ``sys`` are all blocked).
    """

    __slots__ = (
        "armed", "exec_budget", "violation", "printed", "print_limit", "print_overflow",
        "defer_codec_imports", "deferred", "captured", "stdout", "parsing",
    )

    def __init__(self, defer_codec_imports: bool = False) -> None:
        #: Light sandbox tier: a codec that was not preloaded marks the run as
        #: ``deferred`` (to be re-run by the full tier) instead of being unknown.
        self.defer_codec_imports = defer_codec_imports
        self.deferred = False
        self.armed = False
        self.exec_budget = 0
        self.violation: str | None = None
        self.printed = 0
        self.print_limit = 0
        self.print_overflow = False
        #: Printed text of a stdio job (:func:`open_stdio`), None otherwise (print only
        #: counts characters then).
        self.captured: list[str] | None = None
        #: The stdio job's ``sys.stdout`` object (print without ``file`` writes there).
        self.stdout: object = None
        #: True only while trusted code's ``eval`` parses its text into a syntax tree
        #: (:func:`.trusted.safe_eval`: ``ast.parse`` raises a ``compile`` event, but
        #: makes no code object and runs nothing).
        self.parsing = False

    def arm(self, print_limit: int, execs: int = 1) -> None:
        """Deny audited operations from now on, except ``execs`` ``exec`` calls (the
        program's; a check job's test is the second)."""
        self.print_limit = print_limit
        self.exec_budget = execs
        self.armed = True


def _describe(event: str, args: tuple) -> str:
    shown = []
    for arg in args[:2]:
        if isinstance(arg, (str, bytes, int, float)) or arg is None:
            text = repr(arg)
        else:
            text = type(arg).__name__
        shown.append(text[:80])
    return f"{event}({', '.join(shown)})"


def install_audit_hook(state: GuardState) -> None:
    """Install the (initially inert) audit hook bound to ``state``. Once per process."""
    allowed = _ALLOWED_EVENTS

    def hook(event: str, args: tuple) -> None:
        if not state.armed or event in allowed:
            return
        if event == "compile" and state.parsing:  # an AST only, for trusted eval
            return
        if event == "exec" and state.exec_budget > 0:
            state.exec_budget -= 1
            return
        if event == "import" and args and str(args[0]).startswith("encodings."):
            # A codec that was not preloaded: behave like an unknown encoding
            # (str.encode raises LookupError) instead of reading files; in the light
            # tier, also have the run repeated by the full tier, which has more codecs.
            if state.defer_codec_imports:
                state.deferred = True
            raise ImportError(f"codec module {args[0]!r} is not available in the sandbox")
        reason = "blocked operation " + _describe(event, args)
        if state.violation is None:
            state.violation = reason
        raise SandboxViolation(reason)

    sys.addaudithook(hook)


#: Codecs looked up once in the worker so ``str.encode``/``bytes.decode`` with them need
#: no import (file access) in the child; others raise ``LookupError`` there.
PRELOADED_CODECS = (
    "utf_8 utf_8_sig ascii latin_1 utf_16 utf_16_le utf_16_be utf_32 utf_32_le utf_32_be "
    "utf_7 cp1252 cp1251 cp1250 cp437 cp850 cp932 iso8859_2 iso8859_5 iso8859_15 koi8_r "
    "mac_roman shift_jis euc_jp gbk gb2312 gb18030 big5 euc_kr idna punycode "
    "raw_unicode_escape unicode_escape charmap"
).split()

#: The CJK codecs of :data:`PRELOADED_CODECS`: five C extensions (memory areas every
#: fork copies) that only the full sandbox tier preloads; a light-tier run that
#: looks one up is re-run by the full tier (see :class:`GuardState`).
FULL_TIER_CODECS = frozenset("cp932 shift_jis euc_jp gbk gb2312 gb18030 big5 euc_kr".split())


def preload_codecs(full: bool = True) -> None:
    """Look up :data:`PRELOADED_CODECS` (imports their modules, fills the codec cache);
    without ``full``, all but :data:`FULL_TIER_CODECS`."""
    for name in PRELOADED_CODECS:
        if full or name not in FULL_TIER_CODECS:
            codecs.lookup(name)


def _guarded_attrgetter(real: Callable) -> Callable:
    def attrgetter(attr: str, *attrs: str):
        for name in (attr, *attrs):
            if not isinstance(name, str):
                raise TypeError("attribute name must be a string")
            for part in name.split("."):
                if not attribute_allowed(part):
                    raise SandboxViolation(f"attribute {part!r} is not allowed")
        return real(attr, *attrs)

    attrgetter.__doc__ = real.__doc__
    return attrgetter


def _guarded_methodcaller(real: Callable) -> Callable:
    def methodcaller(name: str, /, *args, **kwargs):
        if not isinstance(name, str):
            raise TypeError("method name must be a string")
        if not attribute_allowed(name):
            raise SandboxViolation(f"attribute {name!r} is not allowed")
        return real(name, *args, **kwargs)

    methodcaller.__doc__ = real.__doc__
    return methodcaller


#: Public attributes removed from shims: string-driven attribute access or exec.
_REMOVED = {
    "collections": {"namedtuple"},
    "string": {"Formatter"},
    "typing": {"NamedTuple", "get_type_hints", "TYPE_CHECKING"},
}


def _shim(name: str, module: types.ModuleType) -> types.ModuleType:
    shim = types.ModuleType(name, module.__doc__)
    removed = _REMOVED.get(name, set())
    public = getattr(module, "__all__", None)
    names = public if public is not None else [n for n in vars(module) if not n.startswith("_")]
    for attr in names:
        if attr.startswith("_") or attr in removed or not hasattr(module, attr):
            continue
        value = getattr(module, attr)
        if isinstance(value, types.ModuleType):
            continue
        setattr(shim, attr, value)
    if name == "operator":
        shim.attrgetter = _guarded_attrgetter(module.attrgetter)
        shim.methodcaller = _guarded_methodcaller(module.methodcaller)
    return shim


def _private_copy_module() -> types.ModuleType:
    """A separate instance of :mod:`copy` whose ``deepcopy`` memo does not call ``id()``.

    ``id()`` is blocked in the armed sandbox (addresses differ between processes), but
    ``copy.deepcopy`` keys its memo by ``id``. This instance gets the pointer hash
    ``object.__hash__`` instead (unique for live objects, not audited). The real
    :mod:`copy` module is untouched.
    """
    spec = importlib.util.find_spec("copy")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    module.id = object.__hash__
    return module


def build_shims(modules: frozenset[str] = ALLOWED_MODULES) -> dict[str, types.ModuleType]:
    """Import every module of ``modules`` (allowed modules) and build its shim.

    Returns:
        Mapping from dotted module name to shim; a parent shim exposes allowed
        submodules as attributes (``collections.abc``). A module left out cannot be
        imported by a program (``ImportError``).
    """
    unknown = set(modules) - ALLOWED_MODULES
    if unknown:
        raise ValueError(f"not allowed modules: {sorted(unknown)}")
    real = {name: importlib.import_module(name) for name in sorted(modules)}
    if "copy" in real:
        real["copy"] = _private_copy_module()
    shims = {name: _shim(name, module) for name, module in real.items()}
    for name, shim in shims.items():
        parent, _, child = name.rpartition(".")
        if parent:
            setattr(shims[parent], child, shim)
    return shims


def build_builtins(
    shims: dict[str, types.ModuleType], state: GuardState
) -> dict[str, object]:
    """The builtins dict given to programs: safe builtins, shim import, counting print."""
    safe: dict[str, object] = {name: getattr(builtins, name) for name in _SAFE_BUILTIN_NAMES}
    for name in dir(builtins):
        value = getattr(builtins, name)
        if isinstance(value, type) and issubclass(value, BaseException):
            safe[name] = value

    def __import__(name, globals=None, locals=None, fromlist=(), level=0):  # noqa: A002
        if level:
            raise ImportError("relative imports are not allowed in the sandbox")
        if name not in shims:
            raise ImportError(f"import of module {name!r} is not allowed in the sandbox")
        if fromlist:
            return shims[name]
        return shims[name.partition(".")[0]]

    def print(*values, sep=" ", end="\n", file=None, flush=False):  # noqa: A001
        text_sep = " " if sep is None else sep
        text_end = "\n" if end is None else end
        if state.captured is not None and (file is None or file is state.stdout):
            _capture(state, text_sep.join([str(value) for value in values]) + text_end)
            return
        size = len(text_end) + len(text_sep) * max(0, len(values) - 1)
        for value in values:
            size += len(str(value))
        state.printed += size
        if state.printed > state.print_limit:
            state.print_overflow = True
            raise PrintLimitExceeded(f"printed more than {state.print_limit} characters")

    safe["__import__"] = __import__
    safe["__build_class__"] = builtins.__build_class__
    safe["print"] = print
    return safe


def _capture(state: GuardState, text: str) -> None:
    """Add printed text to a stdio job's output (bounded by the print limit)."""
    if not isinstance(text, str):
        raise TypeError(f"write() argument must be str, not {type(text).__name__}")
    state.printed += len(text)
    if state.printed > state.print_limit:
        state.print_overflow = True
        raise PrintLimitExceeded(f"printed more than {state.print_limit} characters")
    state.captured.append(text)  # type: ignore[union-attr]


def _streams(state: GuardState) -> tuple[types.SimpleNamespace, types.SimpleNamespace]:
    """``sys.stdout`` (with ``.buffer``) and ``sys.stderr`` of stdio jobs.

    Plain namespaces of closures on purpose: the guard state is reachable only through
    closures (``__closure__`` is a blocked dunder), never as an attribute a program could
    read (``sys.stdout._state.armed = False`` would disarm the audit hook). What is
    written to stdout is the job's output; stderr is counted against the print limit
    and dropped.
    """

    def write(text):
        _capture(state, text)
        return len(text)

    def write_bytes(data):
        _capture(state, bytes(data).decode("utf-8", "replace"))
        return len(data)

    def writelines(lines):
        for line in lines:
            _capture(state, line)

    def write_err(text):
        size = len(str(text))
        state.printed += size
        if state.printed > state.print_limit:
            state.print_overflow = True
            raise PrintLimitExceeded(f"printed more than {state.print_limit} characters")
        return size

    def flush():
        return None

    buffer = types.SimpleNamespace(write=write_bytes, flush=flush)
    stdout = types.SimpleNamespace(write=write, writelines=writelines, flush=flush, buffer=buffer)
    return stdout, types.SimpleNamespace(write=write_err, flush=flush)


#: What the ``sys`` shim of a stdio job holds besides its streams: read-only facts and
#: the functions competitive-programming solutions call. Nothing that reaches modules,
#: frames, the real streams or the interpreter's state beyond the recursion limit (a
#: forked child's own; a too-deep recursion kills only that child).
_STDIO_SYS_NAMES = (
    "maxsize", "float_info", "version_info", "exit", "getrecursionlimit", "setrecursionlimit",
    "set_int_max_str_digits", "get_int_max_str_digits",
)


def build_stdio(builtins_dict: dict[str, object], state: GuardState) -> tuple[dict[str, object], types.ModuleType]:
    """The builtins and ``sys`` shim of stdio jobs (programs that read standard input).

    Built once in the worker, next to :func:`build_builtins`; each job then sets its own
    streams with :func:`open_stdio` (in the forked child). The builtins are the normal
    ones plus ``input`` (reading the job's stdin), ``exit``/``quit`` (``sys.exit``) and an
    ``__import__`` that also hands out the ``sys`` shim. Only check jobs with a stdin use them
    (:data:`.policy.STDIO_MODULES`).

    Returns:
        ``(builtins, sys_shim)``.
    """
    shim = types.ModuleType("sys", "the sandbox's sys: standard streams and a few limits")
    for name in _STDIO_SYS_NAMES:
        if hasattr(sys, name):
            setattr(shim, name, getattr(sys, name))
    shim.argv = [""]
    shim.stdout, shim.stderr = _streams(state)
    state.stdout = shim.stdout
    real_import = builtins_dict["__import__"]

    def __import__(name, globals=None, locals=None, fromlist=(), level=0):  # noqa: A002
        if name == "sys" and not level:
            return shim
        return real_import(name, globals, locals, fromlist, level)  # type: ignore[operator]

    def input(prompt=""):  # noqa: A001
        if prompt:
            _capture(state, str(prompt))
        line = shim.stdin.readline()
        if not line:
            raise EOFError("EOF when reading a line")
        return line[:-1] if line.endswith("\n") else line

    stdio_builtins = dict(builtins_dict)
    stdio_builtins["__import__"] = __import__
    stdio_builtins["input"] = input
    stdio_builtins["exit"] = stdio_builtins["quit"] = sys.exit
    return stdio_builtins, shim


def open_stdio(shim: types.ModuleType, state: GuardState, stdin: str) -> None:
    """Give a stdio job its standard input and an empty output (in the forked child,
    before the audit hook is armed)."""
    shim.stdin = io.TextIOWrapper(io.BytesIO(stdin.encode("utf-8", "surrogatepass")), encoding="utf-8")
    state.captured = []


def limit_plan(memory_mb: int, cpu_seconds: float) -> tuple:
    """The ``(resource, (soft, hard))`` pairs :func:`apply_limits` sets, computed once
    per batch in the worker so a child only makes the ``setrlimit`` calls."""
    cpu = max(1, math.ceil(cpu_seconds)) + 1
    memory = memory_mb * 1024 * 1024
    return (
        (resource.RLIMIT_AS, (memory, memory)),
        (resource.RLIMIT_CPU, (cpu, cpu)),
        (resource.RLIMIT_FSIZE, (0, 0)),
        (resource.RLIMIT_NPROC, (0, 0)),
        (resource.RLIMIT_CORE, (0, 0)),
        (resource.RLIMIT_NOFILE, (4, 4)),
    )


def apply_plan(plan: tuple, setrlimit: Callable = resource.setrlimit) -> None:
    """Set the limits of a :func:`limit_plan` (soft = hard: a program cannot raise them)."""
    for limit, values in plan:
        setrlimit(limit, values)


def apply_limits(memory_mb: int, cpu_seconds: float) -> None:
    """Set the child's resource limits (soft = hard, so the program cannot raise them)."""
    apply_plan(limit_plan(memory_mb, cpu_seconds))
