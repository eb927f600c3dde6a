"""Component options: each environment, agent, tracker or plugin declares its own.

A component declares its options where it is defined, once: as the typed keyword
parameters of its constructor, each with a default (or none, for a required option),
and one line of help per option in the class docstring's Google-style ``Args:`` section::

    class MyAgent(Agent):
        \"\"\"...

        Args:
            width: hidden units of the policy network.
            lr: the optimiser's step size.
        \"\"\"

        def __init__(self, *, width: int = 64, lr: float = 1e-3) -> None: ...

The core reads that declaration (:func:`declared_options`) to check a run's
``env_options.*``, ``agent_options.*`` and ``plugin_options.<name>.*`` before anything is
built (:func:`check_options`: unknown names with did-you-mean, wrong types, missing
required options), to print them under ``--help`` and to generate the configuration
reference (:func:`describe`). The core itself knows none of them.

One parameter name is not an option but a service of the run: a constructor parameter
named ``seed`` (see :data:`RUN_PROVIDED`) receives the run's ``seed``, so a run is
reproducible from its one seed. Components that do not declare it never receive it.

Why the signature and not a separate schema: the defaults then exist once, where the
component uses them, and constructing a component directly in Python (tests, notebooks,
``gymnasium.make``) takes the same keywords with the same defaults as the command line.
"""

from __future__ import annotations

import inspect
import re
import types
import typing
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from absolutezero.config import ConfigError, did_you_mean

__all__ = [
    "Option", "REQUIRED", "RUN_PROVIDED", "check_options", "declared_options", "defaults", "describe",
    "docstring_help", "run_provided", "shown",
]

#: Constructor parameters the run fills in itself (never user options).
RUN_PROVIDED: tuple[str, ...] = ("seed",)


class _Required:
    def __repr__(self) -> str:
        return "<required>"


#: The default of an option that has none.
REQUIRED: Any = _Required()


@dataclass(frozen=True)
class Option:
    """One declared option.

    Attributes:
        name: the keyword the constructor takes (and the config key under the
            component's section, e.g. ``agent_options.<name>``).
        annotation: its resolved type hint (``Any`` when the signature has none).
        default: the default value, or :data:`REQUIRED`.
        help: the one-line help from the docstring's ``Args:`` section ("" if absent).
    """

    name: str
    annotation: Any
    default: Any
    help: str

    @property
    def required(self) -> bool:
        return self.default is REQUIRED

    @property
    def type_name(self) -> str:
        return _type_name(self.annotation)


_ARGS_HEADER = re.compile(r"^(\s*)(Args|Arguments|Parameters):\s*$")
_ARG_LINE = re.compile(r"^([A-Za-z_][\w]*(?:\s*,\s*[A-Za-z_][\w]*)*)(?:\s*\([^)]*\))?\s*:\s*(.*)$")


def docstring_help(*docs: str | None) -> dict[str, str]:
    """``name -> help`` from the ``Args:`` sections of Google-style docstrings.

    An entry ``a, b, c: text`` documents the three names with one text. A continuation
    line (indented deeper) extends the entry; the help is the entry's whole text joined
    on one line (the first sentence where it is long).
    """
    found: dict[str, str] = {}
    for doc in docs:
        if not doc:
            continue
        lines = inspect.cleandoc(doc).splitlines()
        index = 0
        while index < len(lines):
            header = _ARGS_HEADER.match(lines[index])
            index += 1
            if not header:
                continue
            base = len(header.group(1))
            entry_indent = None
            names: list[str] = []
            text: list[str] = []

            def flush() -> None:
                if names:
                    joined = " ".join(text).strip()
                    for name in names:
                        found.setdefault(name, _first_sentence(joined))

            while index < len(lines):
                line = lines[index]
                stripped = line.strip()
                indent = len(line) - len(line.lstrip())
                if stripped and indent <= base:
                    break  # the section ended (the next header, or prose)
                if not stripped:
                    index += 1
                    continue
                if entry_indent is None:
                    entry_indent = indent
                match = _ARG_LINE.match(stripped) if indent == entry_indent else None
                if match:
                    flush()
                    names = [name.strip() for name in match.group(1).split(",")]
                    text = [match.group(2)]
                else:
                    text.append(stripped)
                index += 1
            flush()
    return found


def _first_sentence(text: str, limit: int = 160) -> str:
    if len(text) <= limit:
        return text
    end = text.find(". ")
    return text[: end + 1] if 0 < end < limit else text[:limit].rstrip() + " ..."


def declared_options(cls: type) -> dict[str, Option]:
    """The options ``cls`` declares: its constructor's keyword parameters, in order.

    Parameters in :data:`RUN_PROVIDED`, ``self`` and ``*args``/``**kwargs`` are not
    options. A class whose constructor takes ``**kwargs`` declares only its named ones.
    """
    try:
        signature = inspect.signature(cls)
    except (TypeError, ValueError):  # builtins without a signature
        return {}
    try:
        hints = typing.get_type_hints(cls.__init__)  # type: ignore[misc]
    except Exception:  # an annotation that does not evaluate: no type checks for it
        hints = {}
    help_lines = docstring_help(cls.__doc__, getattr(cls.__init__, "__doc__", None))  # type: ignore[misc]
    options: dict[str, Option] = {}
    for parameter in signature.parameters.values():
        if parameter.kind not in (inspect.Parameter.KEYWORD_ONLY, inspect.Parameter.POSITIONAL_OR_KEYWORD):
            continue
        if parameter.name in RUN_PROVIDED:
            continue
        default = REQUIRED if parameter.default is inspect.Parameter.empty else parameter.default
        options[parameter.name] = Option(
            name=parameter.name,
            annotation=hints.get(parameter.name, Any),
            default=default,
            help=help_lines.get(parameter.name, ""),
        )
    return options


def run_provided(cls: type, values: Mapping[str, Any]) -> dict[str, Any]:
    """The run-provided keywords (:data:`RUN_PROVIDED`) that ``cls``'s constructor takes."""
    try:
        parameters = inspect.signature(cls).parameters
    except (TypeError, ValueError):
        return {}
    return {name: values[name] for name in RUN_PROVIDED if name in parameters and name in values}


def _accepts_any_keyword(cls: type) -> bool:
    try:
        parameters = inspect.signature(cls).parameters.values()
    except (TypeError, ValueError):
        return True
    return any(p.kind is inspect.Parameter.VAR_KEYWORD for p in parameters)


def check_options(cls: type, options: Mapping[str, Any], what: str, prefix: str = "") -> dict[str, Any]:
    """Check ``options`` against ``cls``'s declaration; return them with ints widened to float.

    Done before construction, so that a misspelt or mistyped option is reported as a
    configuration mistake naming the option, while an error raised *inside* a
    constructor still surfaces unchanged as the bug it is.

    Args:
        cls: the component class.
        options: option name -> value, as the user gave them.
        what: the component in messages, e.g. ``"agent 'policy'"``.
        prefix: the config section in messages, e.g. ``"agent_options."``.

    Raises:
        ConfigError: an unknown option (with did-you-mean and the accepted options), a
            value of the wrong type, a run-provided name, or a missing required option.
    """
    if not isinstance(options, Mapping):
        raise ConfigError(f"options for {what} must be a mapping, got {type(options).__name__}")
    declared = declared_options(cls)
    open_ended = _accepts_any_keyword(cls)
    checked: dict[str, Any] = {}
    for key, value in options.items():
        if not isinstance(key, str):
            raise ConfigError(f"option names for {what} must be strings, got {key!r}")
        if key in RUN_PROVIDED:
            raise ConfigError(f"{prefix}{key} is not an option of {what}: the run sets it from the top-level {key}=")
        option = declared.get(key)
        if option is None:
            if open_ended:
                checked[key] = value
                continue
            listing = ", ".join(declared) if declared else "none"
            raise ConfigError(
                f"{what} has no option {prefix + key!r}{did_you_mean(key, list(declared))} "
                f"(accepted options: {listing}; see --help)"
            )
        checked[key] = _checked_value(option, value, f"{prefix}{key}", what)
    missing = [name for name, option in declared.items() if option.required and name not in options]
    if missing:
        needed = ", ".join(repr(prefix + name) for name in missing)
        raise ConfigError(f"{what} needs the option(s) {needed}: set them as {prefix or '<option>'}<name>=<value>")
    return checked


def _checked_value(option: Option, value: Any, key: str, what: str) -> Any:
    matched, converted = _match(value, option.annotation)
    if not matched:
        hint = did_you_mean(str(value), [str(choice) for choice in _choices(option.annotation)])
        raise ConfigError(
            f"bad value {value!r} for {key}: {what} expects {option.type_name}{hint}"
            + (f" ({option.help})" if option.help and not hint else "")
        )
    return converted


def _choices(hint: Any) -> list[Any]:
    """The values a ``Literal`` (possibly inside a union) allows."""
    origin, args = typing.get_origin(hint), typing.get_args(hint)
    if origin is typing.Literal:
        return list(args)
    if origin is typing.Union or origin is types.UnionType:
        return [choice for arg in args for choice in _choices(arg)]
    return []


def _match(value: Any, hint: Any) -> tuple[bool, Any]:
    """Whether ``value`` fits the type hint, and the value converted (int -> float)."""
    if hint is Any or hint is inspect.Parameter.empty:
        return True, value
    if hint is None or hint is type(None):
        return value is None, value
    origin, args = typing.get_origin(hint), typing.get_args(hint)
    if origin is typing.Union or origin is types.UnionType:
        for arg in args:
            matched, converted = _match(value, arg)
            if matched:
                return True, converted
        return False, value
    if origin is typing.Literal:
        return value in args, value
    if hint is bool:
        return isinstance(value, bool), value
    if hint is int:
        return isinstance(value, int) and not isinstance(value, bool), value
    if hint is float:
        if isinstance(value, bool):
            return False, value
        if isinstance(value, int):
            return True, float(value)
        if isinstance(value, str):  # YAML 1.1 reads 1e-5 (no dot) as a string
            try:
                return True, float(value)
            except ValueError:
                return False, value
        return isinstance(value, float), value
    if hint is str:
        return isinstance(value, str), value
    sequence_types = (list, tuple, Sequence, typing.Sequence)
    if hint in (list, tuple) or origin in sequence_types or origin in (list, tuple):
        if isinstance(value, (str, bytes, Mapping)) or not isinstance(value, (list, tuple)):
            return False, value
        item = args[0] if args and not (origin is tuple and len(args) != 2) else Any
        converted = []
        for element in value:
            matched, element = _match(element, item)
            if not matched:
                return False, value
            converted.append(element)
        return True, type(value)(converted) if isinstance(value, tuple) else converted
    if hint in (dict, Mapping) or origin in (dict, Mapping, typing.Mapping):
        return isinstance(value, Mapping), value
    if isinstance(hint, type):
        return isinstance(value, hint), value
    return True, value  # a hint we cannot check (a TypeVar, a Protocol, ...)


def _type_name(hint: Any) -> str:
    if hint is Any or hint is inspect.Parameter.empty:
        return "any value"
    if hint is None or hint is type(None):
        return "null"
    origin, args = typing.get_origin(hint), typing.get_args(hint)
    if origin is typing.Union or origin is types.UnionType:
        names = [_type_name(arg) for arg in args if arg is not type(None)]
        return " or ".join(names) + (" or null" if type(None) in args else "")
    if origin is typing.Literal:
        return "one of " + ", ".join(repr(arg) for arg in args)
    if origin in (list, tuple, Sequence, typing.Sequence) or hint in (list, tuple):
        return f"a list of {_type_name(args[0])}" if args else "a list"
    if origin in (dict, Mapping, typing.Mapping) or hint in (dict, Mapping):
        return "a mapping"
    return getattr(hint, "__name__", str(hint))


def shown(value: Any) -> str:
    if value is REQUIRED:
        return "(required)"
    if isinstance(value, tuple):
        value = list(value)
    if isinstance(value, bool) or value is None:
        return {True: "true", False: "false", None: "null"}[value]
    return repr(value)


def describe(cls: type, prefix: str) -> list[tuple[str, str, str, str]]:
    """``(key, type, default, help)`` rows of ``cls``'s options, keys under ``prefix``."""
    return [
        (f"{prefix}{option.name}", option.type_name, shown(option.default), option.help)
        for option in declared_options(cls).values()
    ]


def defaults(cls: type) -> dict[str, Any]:
    """The declared defaults (required options left out), lists for tuples."""
    values = {}
    for option in declared_options(cls).values():
        if option.required:
            continue
        value = option.default
        values[option.name] = list(value) if isinstance(value, tuple) else value
    return values
