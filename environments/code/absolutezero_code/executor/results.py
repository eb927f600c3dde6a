"""Result types of the sandboxed executor: what a run ended with and what it produced.

Kept free of any dependency so the trainer-side pool, the environment and the tests can
share them without importing the worker machinery.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import Enum

__all__ = ["Status", "RunResult"]


class Status(str, Enum):
    """How one sandboxed run ended.

    The values are plain strings so results serialise to JSON unchanged and compare equal
    to their text (``Status.OK == "ok"``).
    """

    OK = "ok"  #: f ran and returned a plain literal value
    ERROR = "error"  #: the program, its input or the literal raised / could not be parsed
    TIMEOUT = "timeout"  #: wall-clock or CPU time limit exceeded
    MEMORY = "memory"  #: address-space limit exceeded (MemoryError or killed)
    OUTPUT_LIMIT = "output_limit"  #: canonical output or printed text above the limit
    REJECTED = "rejected"  #: policy violation (static or at run time) or a non-plain value
    NONDETERMINISTIC = "nondeterministic"  #: runs in different processes disagreed


@dataclass(frozen=True)
class RunResult:
    """The outcome of one job.

    Attributes:
        status: how the run ended (:class:`Status`).
        output: the canonical literal repr of the value when ``status`` is ``OK``, else
            ``None``. Canonical reprs are equal exactly when the values are equal with
            type awareness, and they round-trip through :func:`ast.literal_eval`.
        reason: empty when ``OK``; otherwise a human-readable explanation (exception type
            and message, the blocked operation, the limit that was hit, ...).
    """

    status: Status
    output: str | None
    reason: str = ""

    @property
    def ok(self) -> bool:
        """True when the run succeeded and ``output`` holds the canonical repr."""
        return self.status is Status.OK
