"""Static policy check of a program before it is allowed to run.

Why static *and* dynamic: the AST check rejects the obvious escape routes with a precise
reason and without spending a process on them; the sandbox child then runs with
restricted builtins, module shims and an audit hook (``guard.py``) that catch whatever
is reached at run time through strings (``operator.attrgetter("__class__")``) or other
indirections the syntax tree cannot see.

The rules:

* imports only from :data:`ALLOWED_MODULES` (absolute, no relative imports);
* no dunder names or attributes except the harmless special-method names in
  :data:`SAFE_DUNDERS` (``__init__``, ``__eq__``, ``super().__init__(...)`` ...), so
  ``__class__``, ``__subclasses__``, ``__globals__``, ``__builtins__``, ``__import__``,
  ``__dict__``, ``__code__`` ... are rejected;
* no frame / code / traceback / generator internals (``gi_frame``, ``f_globals``,
  ``f_back``, ``tb_frame``, ``co_code`` ...), which lead back to real globals;
* no use of the dangerous builtins in :data:`FORBIDDEN_BUILTINS` (``open``, ``eval``,
  ``exec``, ``getattr`` ...) unless the program binds that name itself (a parameter
  called ``input`` is fine; the sandbox's builtins do not contain these names anyway).

This is the first of two static layers. The second is RestrictedPython's checker
(:mod:`.restricted`), which the executor runs after this one (``prepare.compile_program``):
it rejects syntax nobody has reviewed, exception groups, async constructs, metaclasses
and its own list of frame internals, and it owns the names of definitions, parameters
and import aliases (dunders outside :data:`SAFE_DUNDERS`), which this module no longer
checks. What stays here is what RestrictedPython does not cover at compile time: the
import allow-list, the forbidden builtins, dunder names in expressions, keywords and
``global`` statements, and the attribute rule, which the run-time guard shares.
"""

from __future__ import annotations

import ast

__all__ = [
    "ALLOWED_MODULES",
    "SAFE_DUNDERS",
    "FORBIDDEN_ATTRIBUTES",
    "FORBIDDEN_BUILTINS",
    "PolicyViolation",
    "HEAVY_MODULES",
    "STDIO_MODULES",
    "TRUSTED_BUILTINS",
    "TRUSTED_MODULES",
    "check_program",
    "check_program_imports",
    "attribute_allowed",
]

#: Modules a program may import. Deliberately absent: anything with I/O, processes,
#: threads, time or randomness (os, sys, io, subprocess, socket, threading, time,
#: random, datetime, secrets), introspection (inspect, gc, types, ctypes, importlib,
#: builtins), code generation (dataclasses and enum use exec / frame tricks).
#: ``collections.namedtuple`` is not offered because it compiles source with exec.
ALLOWED_MODULES = frozenset(
    {
        "math",
        "collections",
        "collections.abc",
        "itertools",
        "functools",
        "re",
        "string",
        "heapq",
        "bisect",
        "operator",
        "typing",
        "copy",
        "statistics",
        "fractions",
        "decimal",
        "textwrap",
        "unicodedata",
    }
)

#: Allowed modules that only the *full* sandbox tier loads. Together they add megabytes
#: and dozens of memory areas to a worker, which every fork copies, while almost no program imports them; so the light tier, which runs every
#: other program, leaves them out (see worker.py and pool.py).
HEAVY_MODULES = frozenset({"typing", "decimal", "fractions", "statistics"})

#: Extra modules of *stdio* programs only (the ``check`` jobs of code-generation
#: benchmarks that read standard input, :meth:`.pool.Executor.check_many`): ``sys`` is
#: then a shim holding only ``stdin``, ``stdout``, ``stderr``, ``exit``, ``maxsize`` and
#: the recursion-limit functions (:func:`.guard.build_stdio`), the builtin ``input``
#: reads the job's standard input and ``exit``/``quit`` are ``sys.exit``. Never
#: allowed anywhere else.
STDIO_MODULES = frozenset({"sys"})

#: Extra modules of *trusted* code only: a benchmark's own test code (and, to check a
#: benchmark's reference solution, that solution) in a ``check`` job run with
#: ``trusted=`` (:meth:`.pool.Executor.check_many`). Benchmark data, not model output:
#: HumanEval's tests draw random inputs and two reference solutions use ``hashlib`` and
#: ``eval``. Nothing with files, processes, threads or introspection; the child's audit
#: hook and limits stay armed. Model-written code never gets them (the trusted part runs
#: with builtins and module shims of its own, see :mod:`.trusted`).
TRUSTED_MODULES = frozenset({"random", "hashlib", "cmath", "array"})

#: Builtins trusted code may use besides the usual ones: ``eval`` of an expression
#: built from literals and operators only (:func:`.trusted.safe_eval`; no names, calls
#: or attributes, and nothing is compiled).
TRUSTED_BUILTINS = frozenset({"eval"})

#: Special-method names that may be defined, referenced and called. They only reach
#: user-defined or operator behaviour, never interpreter internals.
SAFE_DUNDERS = frozenset(
    """
    __init__ __new__ __repr__ __str__ __format__ __bytes__ __hash__ __bool__
    __eq__ __ne__ __lt__ __le__ __gt__ __ge__
    __len__ __iter__ __next__ __reversed__ __contains__ __missing__
    __getitem__ __setitem__ __delitem__ __call__ __enter__ __exit__
    __add__ __sub__ __mul__ __matmul__ __truediv__ __floordiv__ __mod__ __divmod__
    __pow__ __lshift__ __rshift__ __and__ __xor__ __or__
    __radd__ __rsub__ __rmul__ __rmatmul__ __rtruediv__ __rfloordiv__ __rmod__
    __rdivmod__ __rpow__ __rlshift__ __rrshift__ __rand__ __rxor__ __ror__
    __iadd__ __isub__ __imul__ __imatmul__ __itruediv__ __ifloordiv__ __imod__
    __ipow__ __ilshift__ __irshift__ __iand__ __ixor__ __ior__
    __neg__ __pos__ __abs__ __invert__ __int__ __float__ __index__ __round__
    __trunc__ __floor__ __ceil__ __slots__ __name__ __doc__ __qualname__
    __post_init__ __init_subclass__ __class_getitem__ __set_name__
    __get__ __set__ __delete__ __copy__ __deepcopy__ __sizeof__ __length_hint__
    """.split()
)

#: Non-dunder attributes that expose frames, code objects or real globals.
FORBIDDEN_ATTRIBUTES = frozenset(
    """
    gi_frame gi_code gi_yieldfrom gi_running gi_suspended
    cr_frame cr_code cr_await cr_origin cr_running cr_suspended
    ag_frame ag_code ag_await ag_running
    f_back f_globals f_locals f_builtins f_code f_trace f_trace_lines
    f_trace_opcodes f_lasti f_lineno
    tb_frame tb_next tb_lasti tb_lineno
    co_code co_consts co_names co_varnames co_cellvars co_freevars co_filename
    co_lnotab co_linetable co_exceptiontable co_positions co_lines co_qualname
    func_globals func_code func_closure im_func im_self
    mro
    """.split()
)

#: Builtins a program may not use (they read/write host state, run code from text or
#: do attribute access by string).
FORBIDDEN_BUILTINS = frozenset(
    """
    open eval exec compile input breakpoint globals locals vars getattr setattr
    delattr help exit quit memoryview __import__ __build_class__ __loader__ __spec__
    copyright credits license
    """.split()
)


class PolicyViolation(ValueError):
    """The program breaks the sandbox policy; ``str(error)`` is the reason."""


def _is_dunder(name: str) -> bool:
    return len(name) > 4 and name.startswith("__") and name.endswith("__")


def attribute_allowed(name: str) -> bool:
    """Whether attribute ``name`` may be read or written (also used at run time).

    Returns:
        True for ordinary names and safe special-method names; False for other dunders
        and for frame / code internals.
    """
    if _is_dunder(name):
        return name in SAFE_DUNDERS
    return name not in FORBIDDEN_ATTRIBUTES


def _where(node: ast.AST) -> str:
    line = getattr(node, "lineno", None)
    return f" (line {line})" if line is not None else ""


#: Node classes :func:`_bound_names` and :func:`check_program` look at; all others are
#: skipped with one set lookup (the isinstance chains below stay the actual rules).
_BINDING_TYPES = frozenset(
    {
        ast.Name, ast.arg, ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef, ast.alias,
        ast.ExceptHandler, ast.MatchAs, ast.MatchStar, ast.MatchMapping,
    }
)
# Names of definitions, parameters and import aliases are RestrictedPython's to check
# (:mod:`.restricted`, the second static layer, through its ``check_name``).
_CHECKED_TYPES = frozenset(
    {
        ast.Import, ast.ImportFrom, ast.Name, ast.Attribute, ast.keyword, ast.Global,
        ast.Nonlocal, ast.MatchClass,
    }
)


def _nodes(tree: ast.AST) -> list[ast.AST]:
    """Every node of ``tree`` in :func:`ast.walk` order (breadth first, fields in
    order), without its generator and ``iter_child_nodes`` overhead."""
    nodes = [tree]
    node_type = ast.AST
    append = nodes.append
    index = 0
    while index < len(nodes):
        node = nodes[index]
        index += 1
        for field in node._fields:
            value = getattr(node, field, None)
            if isinstance(value, list):
                for item in value:
                    if isinstance(item, node_type):
                        append(item)
            elif isinstance(value, node_type):
                append(value)
    return nodes


def _bound_names(nodes: list[ast.AST]) -> set[str]:
    """Every name the program binds somewhere (so ``input`` as a parameter is fine)."""
    bound: set[str] = set()
    for node in nodes:
        if type(node) not in _BINDING_TYPES:  # ast.parse makes exact node classes
            continue
        if isinstance(node, ast.Name) and isinstance(node.ctx, (ast.Store, ast.Del)):
            bound.add(node.id)
        elif isinstance(node, ast.arg):
            bound.add(node.arg)
        elif isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
            bound.add(node.name)
        elif isinstance(node, ast.alias):
            bound.add((node.asname or node.name).split(".")[0])
        elif isinstance(node, ast.ExceptHandler) and node.name:
            bound.add(node.name)
        elif isinstance(node, (ast.MatchAs, ast.MatchStar)) and node.name:
            bound.add(node.name)
        elif isinstance(node, ast.MatchMapping) and node.rest:
            bound.add(node.rest)
    return bound


def _check_import(node: ast.Import | ast.ImportFrom, allowed: frozenset[str] = ALLOWED_MODULES) -> None:
    if isinstance(node, ast.ImportFrom):
        if node.level:
            raise PolicyViolation(f"relative imports are not allowed{_where(node)}")
        module = node.module or ""
        if module not in allowed:
            raise PolicyViolation(_import_reason(module, node))
        for alias in node.names:
            if alias.name != "*" and not attribute_allowed(alias.name):
                raise PolicyViolation(
                    f"importing {alias.name!r} from {module!r} is not allowed{_where(node)}"
                )
            if alias.name.startswith("_"):
                raise PolicyViolation(
                    f"importing the private name {alias.name!r} is not allowed{_where(node)}"
                )
        return
    for alias in node.names:
        if alias.name not in allowed:
            raise PolicyViolation(_import_reason(alias.name, node))


def _import_reason(module: str, node: ast.AST) -> str:
    allowed = ", ".join(sorted(ALLOWED_MODULES))
    return f"import of module {module!r} is not allowed{_where(node)}; allowed: {allowed}"


def _check_name(name: str, node: ast.AST, what: str) -> None:
    if _is_dunder(name) and name not in SAFE_DUNDERS:
        raise PolicyViolation(f"dunder {what} {name!r} is not allowed{_where(node)}")


def check_program(source: str, stdio: bool = False, trusted: bool = False) -> ast.Module:
    """Parse ``source`` and check it against the policy.

    ``stdio`` also allows :data:`STDIO_MODULES` and the builtins ``input``, ``exit``
    and ``quit`` (programs that read standard input in a ``check`` job; nowhere else).
    ``trusted`` also allows :data:`TRUSTED_MODULES` and :data:`TRUSTED_BUILTINS` (a
    benchmark's own test or reference solution; never model-written code).

    Returns:
        The parsed module, ready to compile.

    Raises:
        PolicyViolation: syntax error (with its line) or a policy rule broken; the
            message names the rule and the line.
    """
    return check_program_imports(source, stdio, trusted)[0]


def check_program_imports(
    source: str, stdio: bool = False, trusted: bool = False
) -> tuple[ast.Module, frozenset[str]]:
    """:func:`check_program`, and the modules the program imports.

    Import statements are the only way a program reaches a module (``__import__``,
    ``importlib`` and ``sys.modules`` are out of reach, and module shims hold no
    modules), so the set says which sandbox tier can run it.

    Returns:
        The parsed module and the dotted names of every module imported anywhere in it.

    Raises:
        PolicyViolation: as :func:`check_program`.
    """
    if not isinstance(source, str):
        raise PolicyViolation(f"the program must be text, got {type(source).__name__}")
    if "\x00" in source:
        raise PolicyViolation("the program contains a NUL character")
    try:
        tree = ast.parse(source, mode="exec")
    except SyntaxError as error:
        line = f" (line {error.lineno})" if error.lineno else ""
        raise PolicyViolation(f"syntax error: {error.msg}{line}") from None
    except (ValueError, MemoryError, RecursionError) as error:
        raise PolicyViolation(f"the program does not parse: {type(error).__name__}") from None
    nodes = _nodes(tree)
    bound = _bound_names(nodes)
    if stdio:  # the stdio sandbox's own input() (reads the job's stdin), exit() = sys.exit
        bound.update(("input", "exit", "quit"))
    allowed = ALLOWED_MODULES | STDIO_MODULES if stdio else ALLOWED_MODULES
    if trusted:
        allowed = allowed | TRUSTED_MODULES
        bound.update(TRUSTED_BUILTINS)
    imported: set[str] = set()
    for node in nodes:
        if type(node) not in _CHECKED_TYPES:  # ast.parse makes exact node classes
            continue
        if isinstance(node, (ast.Import, ast.ImportFrom)):
            _check_import(node, allowed)
            if isinstance(node, ast.ImportFrom):
                imported.add(node.module or "")
            else:
                imported.update(alias.name for alias in node.names)
        elif isinstance(node, ast.Name):
            _check_name(node.id, node, "name")
            if (
                node.id in FORBIDDEN_BUILTINS
                and isinstance(node.ctx, ast.Load)
                and node.id not in bound
            ):
                raise PolicyViolation(
                    f"use of the builtin {node.id!r} is not allowed{_where(node)}"
                )
        elif isinstance(node, ast.Attribute):
            if not attribute_allowed(node.attr):
                raise PolicyViolation(f"attribute {node.attr!r} is not allowed{_where(node)}")
        elif isinstance(node, ast.keyword) and node.arg is not None:
            _check_name(node.arg, node, "keyword")
        elif isinstance(node, (ast.Global, ast.Nonlocal)):
            for name in node.names:
                _check_name(name, node, "global")
        elif isinstance(node, ast.MatchClass):
            for name in node.kwd_attrs:
                if not attribute_allowed(name):
                    raise PolicyViolation(
                        f"pattern attribute {name!r} is not allowed{_where(node)}"
                    )
    return tree, frozenset(imported)
