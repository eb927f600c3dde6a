"""Oversight plugin for absolutezero (entry point ``oversight`` in group ``absolutezero``):
a reasoning monitor that flags concerning intent in both roles' responses.

Modules: :mod:`~absolutezero_oversight.default_rules` (categories and the rule table),
:mod:`~absolutezero_oversight.rules` (the engine), :mod:`~absolutezero_oversight.judge`
(the optional judge model), :mod:`~absolutezero_oversight.options` (the settings),
:mod:`~absolutezero_oversight.plugin` (the monitor and its hooks) and
:mod:`~absolutezero_oversight.plot` (``plots/oversight.png``).
"""

from absolutezero_oversight.default_rules import CATEGORIES, DEFAULT_RULES
from absolutezero_oversight.judge import Judge, build_prompt, parse_verdict
from absolutezero_oversight.options import OversightOptions, parse_options
from absolutezero_oversight.plugin import OversightMonitor
from absolutezero_oversight.rules import Rule, RuleSet

__all__ = [
    "CATEGORIES", "DEFAULT_RULES", "Judge", "OversightMonitor", "OversightOptions", "Rule", "RuleSet",
    "build_prompt", "parse_options", "parse_verdict",
]
