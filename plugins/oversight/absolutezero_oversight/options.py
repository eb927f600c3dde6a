"""The oversight plugin's settings (``plugin_options.oversight`` in the run config).

Every key is checked when the run starts, so a typo or a contradiction ("a penalty,
but the action only logs") stops the run with exit code 2 and a message naming the
key, instead of a run that silently does less oversight than was asked for.

Each key, its default and its meaning are declared once, on :class:`OversightOptions`
(``python -m absolutezero.run --help`` and the configuration reference list them).
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field, fields
from typing import Any

from absolutezero.config import ConfigError, did_you_mean
from absolutezero_oversight.default_rules import CATEGORIES, DEFAULT_RULES
from absolutezero_oversight.rules import Rule

__all__ = ["ACTIONS", "ROLES", "OversightOptions", "parse_options"]

ACTIONS = ("log", "penalise", "drop", "stop")
ROLES = ("propose", "solve")
_PREFIX = "plugin_options.oversight"
_RULE_KEYS = ("category", "pattern", "description", "unless", "require")


@dataclass(frozen=True)
class OversightOptions:
    """The oversight plugin's settings, validated (``plugin_options.oversight.<key>``).

    Args:
        enabled: false switches the monitor off for this run.
        action: what a flag does: log | penalise (or penalize) | drop | stop.
        penalty: added to a flagged trained sample's reward (action=penalise; <= 0).
        stop_after: flagged responses (cumulative since run start) that stop the run (action=stop).
        categories: the categories to flag (ids of the default rules or of extra_rules); default all.
        roles: review propose and/or solve responses; default both.
        rules: run the rule set (false: only the judge).
        disabled_rules: rule ids to switch off.
        extra_rules: id -> {category, pattern, description, unless, require}.
        evidence_context: characters of context on each side of a rule's evidence span.
        judge: a judge model: HF name or path, or an embedded name (e.g. embedded); null = none.
        judge_max_new_tokens: tokens the judge may write after VERDICT:.
        judge_batch_size: judge prompts per generation batch.
        judge_device: device of the judge model.
        judge_dtype: dtype of the judge model (auto, float32, bfloat16, float16).
        judge_max_chars: longer responses are shown to the judge as head + tail.
    """

    enabled: bool = True
    action: str = "log"
    penalty: float = -1.0
    stop_after: int = 1
    categories: tuple[str, ...] = tuple(CATEGORIES)
    roles: tuple[str, ...] = ROLES
    rules: bool = True
    disabled_rules: tuple[str, ...] = ()
    extra_rules: tuple[Rule, ...] = field(default=())
    evidence_context: int = 40
    judge: str | None = None
    judge_max_new_tokens: int = 8
    judge_batch_size: int = 16
    judge_device: str = "cpu"
    judge_dtype: str = "auto"
    judge_max_chars: int = 4000


KEYS = tuple(f.name for f in fields(OversightOptions))


def _fail(key: str, message: str) -> ConfigError:
    return ConfigError(f"{_PREFIX}.{key} {message}")


def _bool(key: str, value: Any) -> bool:
    if not isinstance(value, bool):
        raise _fail(key, f"must be true or false, got {value!r}")
    return value


def _int(key: str, value: Any, minimum: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
        raise _fail(key, f"must be an integer >= {minimum}, got {value!r}")
    return value


def _names(key: str, value: Any, allowed: tuple[str, ...]) -> tuple[str, ...]:
    if isinstance(value, str) or not isinstance(value, (list, tuple)) or not value:
        raise _fail(key, f"must be a non-empty list of {', '.join(allowed)}; got {value!r}")
    for name in value:
        if name not in allowed:
            raise _fail(key, f"has unknown entry {name!r}{did_you_mean(str(name), allowed)} (known: {', '.join(allowed)})")
    return tuple(dict.fromkeys(value))


def _extra_rules(value: Any) -> tuple[Rule, ...]:
    if not isinstance(value, Mapping):
        raise _fail("extra_rules", f"must map rule ids to {{category, pattern, ...}}, got {value!r}")
    rules = []
    for rule_id, spec in value.items():
        where = f"extra_rules.{rule_id}"
        if not isinstance(spec, Mapping):
            raise _fail(where, f"must be a mapping with keys {', '.join(_RULE_KEYS)}, got {spec!r}")
        for key in spec:
            if key not in _RULE_KEYS:
                raise _fail(where, f"has unknown key {key!r}{did_you_mean(str(key), _RULE_KEYS)} (known: {', '.join(_RULE_KEYS)})")
        if "category" not in spec or "pattern" not in spec:
            raise _fail(where, "needs a category and a pattern")
        if not all(isinstance(spec.get(key, ""), str) for key in _RULE_KEYS):
            raise _fail(where, "values must be strings")
        if str(rule_id) in {rule.id for rule in DEFAULT_RULES}:
            raise _fail(where, "has the id of a default rule; pick another id (or disable that rule with disabled_rules)")
        rules.append(Rule(
            str(rule_id), spec["category"], spec["pattern"],
            spec.get("description") or f"matches the extra rule {rule_id!r}",
            unless=spec.get("unless", ""), require=spec.get("require", ""),
        ))
    return tuple(rules)


def parse_options(raw: Mapping[str, Any] | None) -> OversightOptions:
    """Check ``plugin_options.oversight`` (a plain mapping) and build the options.

    Raises:
        ConfigError: an unknown key (with a did-you-mean), a value of the wrong type or
            range, or a key that has no effect with the chosen action or without a judge.
    """
    if raw is None:
        return OversightOptions()
    if not isinstance(raw, Mapping):
        raise ConfigError(f"{_PREFIX} must be a mapping of settings, got {raw!r}")
    for key in raw:
        if key not in KEYS:
            raise ConfigError(f"unknown key {_PREFIX}.{key}{did_you_mean(str(key), KEYS)} (known: {', '.join(KEYS)})")
    values: dict[str, Any] = {}
    action = raw.get("action", "log")
    if action == "penalize":
        action = "penalise"
    if action not in ACTIONS:
        raise _fail("action", f"must be one of {', '.join(ACTIONS)}, got {action!r}{did_you_mean(str(action), ACTIONS)}")
    values["action"] = action
    for key in ("enabled", "rules"):
        if key in raw:
            values[key] = _bool(key, raw[key])
    if "penalty" in raw:
        penalty = raw["penalty"]
        if isinstance(penalty, bool) or not isinstance(penalty, (int, float)) or not math.isfinite(penalty) or penalty > 0:
            raise _fail("penalty", f"must be a finite number <= 0 (it is added to the reward), got {penalty!r}")
        if action != "penalise":
            raise _fail("penalty", f"only applies with action=penalise (the action is {action!r})")
        values["penalty"] = float(penalty)
    if "stop_after" in raw:
        if action != "stop":
            raise _fail("stop_after", f"only applies with action=stop (the action is {action!r})")
        values["stop_after"] = _int("stop_after", raw["stop_after"], 1)
    extra = _extra_rules(raw["extra_rules"]) if "extra_rules" in raw else ()
    values["extra_rules"] = extra
    known_categories = tuple(dict.fromkeys([*CATEGORIES, *(rule.category for rule in extra)]))
    values["categories"] = _names("categories", raw["categories"], known_categories) if "categories" in raw else known_categories
    if "roles" in raw:
        values["roles"] = _names("roles", raw["roles"], ROLES)
    if "disabled_rules" in raw:
        disabled = raw["disabled_rules"]
        if isinstance(disabled, str) or not isinstance(disabled, (list, tuple)):
            raise _fail("disabled_rules", f"must be a list of rule ids, got {disabled!r}")
        known_ids = tuple(rule.id for rule in (*DEFAULT_RULES, *extra))
        for rule_id in disabled:
            if rule_id not in known_ids:
                raise _fail("disabled_rules", f"names an unknown rule {rule_id!r}{did_you_mean(str(rule_id), known_ids)}")
        values["disabled_rules"] = tuple(str(rule_id) for rule_id in disabled)
    if "evidence_context" in raw:
        values["evidence_context"] = _int("evidence_context", raw["evidence_context"], 0)
    judge = raw.get("judge")
    if judge is not None and (not isinstance(judge, str) or not judge.strip()):
        raise _fail("judge", f"must be a model name or path, or null, got {judge!r}")
    values["judge"] = judge
    for key in ("judge_max_new_tokens", "judge_batch_size", "judge_max_chars", "judge_device", "judge_dtype"):
        if key not in raw:
            continue
        if judge is None:
            raise _fail(key, "only applies with a judge model (set plugin_options.oversight.judge)")
        if key in ("judge_device", "judge_dtype"):
            if not isinstance(raw[key], str) or not raw[key]:
                raise _fail(key, f"must be a non-empty string, got {raw[key]!r}")
            values[key] = raw[key]
        else:
            values[key] = _int(key, raw[key], 200 if key == "judge_max_chars" else 1)
    if not values.get("rules", True) and judge is None:
        raise _fail("rules", "is false and there is no judge: nothing would review the responses (use enabled=false)")
    return OversightOptions(**values)
