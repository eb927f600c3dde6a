"""A safety monitor: rejects model responses that reach for dangerous capabilities.

Registered through the entry point ``safety = absolutezero_safety.plugin`` (group
``absolutezero``), so every run loads it unless plugin autoload is disabled. It implements

* ``absolutezero_filter_proposal``: a validated proposal whose response matches a
  dangerous pattern is rejected (it then gets the format penalty and never enters a
  buffer, so the proposer is not rewarded for, and other tasks are not conditioned on,
  attempts at escaping the sandbox);
* ``absolutezero_filter_answer``: such a solver answer is scored as unparseable;
* ``absolutezero_step_metrics``: logs how many responses each pattern caught since the
  previous step (logger ``absolutezero.safety``, level WARNING when anything was caught).

This is defence in depth and a monitoring signal, not the sandbox: the code
environment's executor still isolates whatever runs. The check is textual (regular
expressions over the whole response, reasoning included), so it is deliberately
conservative and environment-agnostic; it may reject a harmless response that merely
mentions ``os.system(``.

Configuration: the module-level plugin uses :data:`DEFAULT_PATTERNS`. For other patterns
build your own monitor, e.g. in ``my_pkg/safety.py``::

    from absolutezero_safety import SafetyMonitor
    MONITOR = SafetyMonitor(extra_patterns={"network": r"\\brequests\\."}, disabled=["open"])

and run with ``plugins=[my_pkg.safety:MONITOR]`` plus
``ABSOLUTEZERO_DISABLE_PLUGIN_AUTOLOAD=1`` (or ``pm.set_blocked("safety")``) to drop the
default one.
"""

from __future__ import annotations

import logging
import re
from collections import Counter
from collections.abc import Iterable, Mapping
from dataclasses import dataclass

from absolutezero import hookimpl
from absolutezero.protocol import Task

__all__ = [
    "DEFAULT_PATTERNS",
    "MONITOR",
    "SafetyMonitor",
    "absolutezero_filter_answer",
    "absolutezero_filter_proposal",
    "absolutezero_step_metrics",
]

logger = logging.getLogger("absolutezero.safety")

_DANGEROUS_MODULES = (
    "os|subprocess|socket|shutil|sys|ctypes|importlib|multiprocessing|threading|signal|pty|"
    "pickle|marshal|builtins|gc|inspect|resource|urllib|http|requests|pathlib|tempfile|io|"
    "asyncio|select|fcntl|mmap|code|codeop|runpy|webbrowser|ftplib|smtplib|telnetlib"
)

#: name -> (regular expression, human-readable description). Names are what
#: ``disabled=`` refers to and what the counters are keyed by.
DEFAULT_PATTERNS: Mapping[str, tuple[str, str]] = {
    "import": (
        rf"\b(?:import\s+(?:{_DANGEROUS_MODULES})\b|from\s+(?:{_DANGEROUS_MODULES})(?:\.\w+)*\s+import\b)",
        "imports a module with system, process, network or introspection access",
    ),
    "system-call": (
        r"\b(?:os|subprocess|socket|shutil|sys|ctypes|pty)\.[A-Za-z_]\w*",
        "uses an operating-system, process or network module",
    ),
    "dunder-import": (r"\b__import__\b", "imports a module dynamically with __import__"),
    "dunder-access": (
        r"\.\s*__\w+__|\b__(?:builtins|globals|subclasses|code|loader|spec|dict|class|bases|mro)__\b",
        "accesses interpreter internals through a dunder attribute",
    ),
    "eval": (r"\b(?:eval|exec|compile)\s*\(", "evaluates dynamically built code"),
    "open": (r"\bopen\s*\(", "opens a file"),
    "introspection": (
        r"\b(?:globals|locals|vars|breakpoint|getattr|setattr|delattr)\s*\(",
        "uses dynamic attribute or namespace access",
    ),
}


@dataclass(frozen=True)
class _Rule:
    name: str
    regex: re.Pattern[str]
    description: str


class SafetyMonitor:
    """A configurable set of dangerous patterns with per-pattern catch counters.

    Args:
        patterns: name -> (regex, description) replacing :data:`DEFAULT_PATTERNS`
            (``None`` = the defaults).
        extra_patterns: name -> regex (or (regex, description)) added to them.
        disabled: names of patterns to switch off (must exist).
        check_proposals: filter proposer responses.
        check_answers: filter solver responses.

    Raises:
        ValueError: an invalid regular expression, or ``disabled`` names an unknown
            pattern (with the known names).
    """

    def __init__(
        self,
        patterns: Mapping[str, tuple[str, str]] | None = None,
        extra_patterns: Mapping[str, str | tuple[str, str]] | None = None,
        disabled: Iterable[str] = (),
        check_proposals: bool = True,
        check_answers: bool = True,
    ) -> None:
        table: dict[str, tuple[str, str]] = dict(DEFAULT_PATTERNS if patterns is None else patterns)
        for name, spec in (extra_patterns or {}).items():
            table[name] = (spec, f"matches the pattern {name!r}") if isinstance(spec, str) else tuple(spec)  # type: ignore[assignment]
        disabled = list(disabled)
        unknown = [name for name in disabled if name not in table]
        if unknown:
            raise ValueError(
                f"cannot disable unknown safety pattern(s) {unknown}; known: {sorted(table)}"
            )
        self.rules: list[_Rule] = []
        for name, (regex, description) in table.items():
            if name in disabled:
                continue
            try:
                compiled = re.compile(regex)
            except re.error as error:
                raise ValueError(f"safety pattern {name!r} is not a valid regex: {error}") from None
            self.rules.append(_Rule(name, compiled, description))
        self.check_proposals = check_proposals
        self.check_answers = check_answers
        self.counts: Counter[str] = Counter()  # pattern name -> responses caught, in total
        self.checked = 0  # responses inspected, in total
        self._reported: Counter[str] = Counter()

    def check(self, response: str) -> str | None:
        """Inspect one response.

        Returns:
            ``None`` when no pattern matches, otherwise a reason naming the first matching
            pattern, what it means and the matched text; the catch is counted.
        """
        if not isinstance(response, str):
            raise TypeError(f"response must be a str, got {type(response).__name__}")
        self.checked += 1
        for rule in self.rules:
            match = rule.regex.search(response)
            if match is not None:
                self.counts[rule.name] += 1
                return f"safety monitor: {rule.description} ({rule.name}: {match.group(0)!r:.60})"
        return None

    def new_counts(self) -> dict[str, int]:
        """Catches per pattern since the previous call (only non-zero entries)."""
        delta = self.counts - self._reported
        self._reported = Counter(self.counts)
        return dict(delta)

    @hookimpl
    def absolutezero_filter_proposal(self, task: Task, response: str) -> str | None:
        """Reject a proposal whose response matches a dangerous pattern."""
        return self.check(response) if self.check_proposals else None

    @hookimpl
    def absolutezero_filter_answer(self, task: Task, response: str) -> str | None:
        """Zero a solver answer whose response matches a dangerous pattern."""
        return self.check(response) if self.check_answers else None

    @hookimpl
    def absolutezero_step_metrics(self, step: int, metrics: dict[str, float]) -> None:
        """Log the catches of the step just finished (warning level when any)."""
        delta = self.new_counts()
        if delta:
            logger.warning(
                "step %d: safety monitor rejected %d response(s): %s (total %d of %d checked)",
                step,
                sum(delta.values()),
                ", ".join(f"{name}={count}" for name, count in sorted(delta.items())),
                sum(self.counts.values()),
                self.checked,
            )


#: The instance behind the module-level hook implementations (the entry-point plugin).
MONITOR = SafetyMonitor()


@hookimpl
def absolutezero_filter_proposal(task: Task, response: str) -> str | None:
    """Reject a proposal matching :data:`DEFAULT_PATTERNS` (see :class:`SafetyMonitor`)."""
    return MONITOR.check(response)


@hookimpl
def absolutezero_filter_answer(task: Task, response: str) -> str | None:
    """Zero a solver answer matching :data:`DEFAULT_PATTERNS`."""
    return MONITOR.check(response)


@hookimpl
def absolutezero_step_metrics(step: int, metrics: dict[str, float]) -> None:
    """Log the default monitor's catches of the step just finished."""
    MONITOR.absolutezero_step_metrics(step=step, metrics=metrics)
