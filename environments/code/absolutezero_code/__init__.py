"""The reference Absolute Zero environment: Python programs (entry point ``code``).

``CodeEnvironment`` (in :mod:`absolutezero_code.env`) offers deduction, abduction and
induction tasks; model-written code only ever runs in :mod:`absolutezero_code.executor`.
The class is imported lazily so that importing the executor alone stays light.
"""

from __future__ import annotations

from typing import Any

__all__ = ["CodeEnvironment"]


def __getattr__(name: str) -> Any:
    if name == "CodeEnvironment":
        from absolutezero_code.env import CodeEnvironment

        return CodeEnvironment
    raise AttributeError(f"module 'absolutezero_code' has no attribute {name!r}")
