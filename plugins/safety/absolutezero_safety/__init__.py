"""Safety monitor plugin for absolutezero (entry point ``safety`` in group ``absolutezero``).

See :mod:`absolutezero_safety.plugin`.
"""

from absolutezero_safety.plugin import DEFAULT_PATTERNS, SafetyMonitor

__all__ = ["DEFAULT_PATTERNS", "SafetyMonitor"]
