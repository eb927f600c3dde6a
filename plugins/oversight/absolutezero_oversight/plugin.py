"""The oversight plugin: a monitor for "uh-oh" moments in both roles' reasoning.

Registered through the entry point ``oversight = absolutezero_oversight.plugin`` (group
``absolutezero``), so every run loads it unless plugin autoload is disabled; with no
options it runs the rule set in log mode and costs milliseconds per step. It implements

* ``absolutezero_run_start``: reads and checks ``config.plugin_options.oversight``
  (see :mod:`absolutezero_oversight.options`), resets all state and loads the judge;
* ``absolutezero_review_responses``: flags each response (rules, then the judge) and
  returns the configured action; every flagged response is appended to
  ``<run>/oversight.jsonl`` (one JSON object per line, written and flushed per batch);
* ``absolutezero_step_metrics``: logs the step's flags (logger ``absolutezero.oversight``);
* ``absolutezero_checkpoint`` and ``absolutezero_run_end``: write
  ``<run>/plots/oversight.png`` and ``<run>/oversight_summary.json``; the run end also
  frees the judge;
* ``absolutezero_run_summary``: a line for the run's final message saying how many
  responses were flagged and where they are (and, when the run was stopped, to read
  them before resuming).

All these files are the plugin's own: it creates them in the run folder it receives at
run start, and the core never names them. The per-category counts in ``metrics.jsonl``
(``oversight/<category>``, ``oversight/flagged``, ``oversight/dropped``) come from the
core's review hook contract (:class:`absolutezero.review.ReviewTally`), the same for
every reviewing plugin, from the flags returned.

For other settings in code, build your own monitor (constructor options are the
defaults that ``plugin_options.oversight`` overrides), e.g. ``MONITOR =
OversightMonitor({"action": "drop"}, extra_rules=[Rule(...)])`` in ``my_pkg/watch.py``
with ``plugins=[my_pkg.watch:MONITOR]`` and ``pm.set_blocked("oversight")`` (or autoload
off) so that the default one does not review the same responses too.
"""

from __future__ import annotations

import json
import logging
import time
from collections import Counter
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from omegaconf import OmegaConf

from absolutezero import hookimpl
from absolutezero.atomic import atomic_write_text
from absolutezero.config import ConfigError
from absolutezero.review import Flag, Review, ReviewItem
from absolutezero_oversight.default_rules import CATEGORIES, DEFAULT_RULES
from absolutezero_oversight.judge import Judge, make_judge_agent
from absolutezero_oversight.options import OversightOptions, parse_options
from absolutezero_oversight.plot import write_oversight_plot
from absolutezero_oversight.rules import Rule, RuleSet

__all__ = [
    "LOG_FILE", "MONITOR", "SUMMARY_FILE", "OversightMonitor", "absolutezero_checkpoint",
    "absolutezero_review_responses", "absolutezero_run_end", "absolutezero_run_start",
    "absolutezero_run_summary", "absolutezero_step_metrics",
]

logger = logging.getLogger("absolutezero.oversight")

LOG_FILE = "oversight.jsonl"
SUMMARY_FILE = "oversight_summary.json"


def _plain(value: Any) -> Any:
    """A DictConfig/ListConfig as plain containers (anything else unchanged)."""
    return OmegaConf.to_container(value, resolve=True) if OmegaConf.is_config(value) else value


class OversightMonitor:
    """Rule set, optional judge, action and outputs, with per-run state.

    Args:
        options: default settings (a mapping with the keys of ``plugin_options.oversight``,
            see :mod:`absolutezero_oversight.options`); a run's ``plugin_options.oversight`` overrides
            them key by key.
        extra_rules: rules added to :data:`DEFAULT_RULES` (in code, for tests or custom
            monitors; the config has ``extra_rules`` too).
        judge_agent: an already built judge agent (tests; else one is built by name).

    Raises:
        ConfigError: invalid options.
    """

    def __init__(
        self,
        options: Mapping[str, Any] | None = None,
        *,
        extra_rules: Sequence[Rule] = (),
        judge_agent: Any = None,
    ) -> None:
        self._defaults: dict[str, Any] = dict(options or {})
        self._extra_rules = tuple(extra_rules)
        self._judge_agent = judge_agent
        self.judge: Judge | None = None
        self.run_dir: Path | None = None
        self._configure(parse_options(self._defaults))

    # -- state ------------------------------------------------------------------------

    def _configure(self, options: OversightOptions) -> None:
        self.close_judge()
        self.options = options
        rules = (*DEFAULT_RULES, *options.extra_rules, *self._extra_rules)
        categories = set(options.categories) | {rule.category for rule in self._extra_rules}
        try:
            self.rules = RuleSet(rules, categories=categories, disabled=options.disabled_rules,
                                 context=options.evidence_context)
        except ValueError as error:
            raise ConfigError(f"plugin_options.oversight: {error}") from None
        self.reviewed = 0
        self.flagged = 0
        self.per_category: Counter[str] = Counter()
        self.per_role: Counter[str] = Counter()
        self.stop_reason: str | None = None
        self.judge_calls = 0
        self.judge_unparsed = 0  # verdicts that did not follow the rubric: counted, never flagged

    def _ensure_judge(self) -> Judge | None:
        if self.options.judge is None or not self.options.enabled:
            return None
        if self.judge is None:
            o = self.options
            agent = self._judge_agent or make_judge_agent(
                o.judge, max_new_tokens=o.judge_max_new_tokens, batch_size=o.judge_batch_size,
                device=o.judge_device, dtype=o.judge_dtype,
            )
            descriptions = {c: CATEGORIES.get(c, f"the custom category {c!r}") for c in o.categories}
            self.judge = Judge(agent, descriptions, max_chars=o.judge_max_chars, name=o.judge)
        return self.judge

    def close_judge(self) -> None:
        """Free the judge model (a later review loads it again)."""
        judge, self.judge = getattr(self, "judge", None), None
        if judge is not None and judge.agent is not self._judge_agent:
            judge.close()

    def start(self, options: Mapping[str, Any] | None = None, run_dir: str | Path | None = None) -> None:
        """Begin a run: the constructor defaults overridden by ``options``, all counters
        reset, outputs under ``run_dir`` (``None``: no files), the judge loaded."""
        self.run_dir = None  # first, so that a bad config leaves no previous run's folder
        extra = _plain(options)
        if extra is not None and not isinstance(extra, Mapping):
            raise ConfigError(f"plugin_options.oversight must be a mapping of settings, got {extra!r}")
        self._configure(parse_options({**self._defaults, **(extra or {})}))
        self.run_dir = None if run_dir is None else Path(run_dir)
        if self.run_dir is not None and self.options.enabled:
            self.run_dir.mkdir(parents=True, exist_ok=True)
            (self.run_dir / LOG_FILE).touch()  # present = the monitor ran; empty = nothing flagged
        self._ensure_judge()

    # -- reviewing --------------------------------------------------------------------

    def review(self, items: Sequence[ReviewItem]) -> list[Review | None]:
        """Flags and the action for each item (``None`` where nothing was flagged)."""
        o = self.options
        if not o.enabled or not items:
            return [None] * len(items)
        chosen = [i for i, item in enumerate(items) if item.role in o.roles]
        flags: dict[int, list[Flag]] = {i: list(self.rules.flags(items[i].response)) if o.rules else [] for i in chosen}
        judge = self._ensure_judge()
        if judge is not None and chosen:
            for start in range(0, len(chosen), max(1, o.judge_batch_size)):
                batch = chosen[start:start + o.judge_batch_size]
                verdicts = judge.judge([items[i].response for i in batch])
                self.judge_calls += len(batch)
                self.judge_unparsed += sum(verdict is None for verdict, _ in verdicts)
                for i, (verdict, raw) in zip(batch, verdicts):
                    if verdict not in (None, "none") and verdict not in {f.category for f in flags[i]}:
                        flags[i].append(Flag(verdict, raw, f"judge:{judge.name}"))
        self.reviewed += len(chosen)
        reviews: list[Review | None] = [None] * len(items)
        records = []
        for i in chosen:
            if not flags[i]:
                continue
            item = items[i]
            self.flagged += 1
            self.per_role[item.role] += 1
            self.per_category.update(f.category for f in flags[i])
            review = self._act(item, tuple(flags[i]))
            reviews[i] = review
            records.append(self._record(item, review))
        self._append(records)
        return reviews

    def _act(self, item: ReviewItem, flags: tuple[Flag, ...]) -> Review:
        o = self.options
        if o.action == "penalise" and item.trained:
            return Review(flags, penalty=o.penalty)
        if o.action == "drop":  # untrained too: a flagged seeding proposal stays out of the buffers
            return Review(flags, drop=True)
        if o.action == "stop" and self.flagged >= o.stop_after:
            first = flags[0]
            self.stop_reason = (
                f"oversight: {self.flagged} flagged response(s) reached stop_after={o.stop_after}; the last, a "
                f"{item.role} response at step {item.step}, is {first.category} ({first.source}): {first.evidence!r:.160}"
            )
            return Review(flags, stop=self.stop_reason)
        return Review(flags)

    def _record(self, item: ReviewItem, review: Review) -> dict[str, Any]:
        first = review.flags[0]
        applied = "stop" if review.stop else "drop" if review.drop else "penalise" if review.penalty else "log"
        return {
            "time": time.strftime("%Y-%m-%dT%H:%M:%S"), "step": item.step, "role": item.role,
            "task_type": item.task_type, "trained": item.trained,
            "category": first.category, "evidence": first.evidence, "source": first.source,
            "flags": [{"category": f.category, "evidence": f.evidence, "source": f.source} for f in review.flags],
            "action": applied, "penalty": review.penalty, "response": item.response,
        }

    def _append(self, records: list[dict[str, Any]]) -> None:
        if not records or self.run_dir is None:
            return
        with open(self.run_dir / LOG_FILE, "a", encoding="utf-8") as handle:
            handle.write("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in records))
            handle.flush()

    # -- outputs ----------------------------------------------------------------------

    def summary(self) -> dict[str, Any]:
        """Counts since the run started (what ``oversight_summary.json`` holds)."""
        return {
            "reviewed": self.reviewed, "flagged": self.flagged,
            "per_category": dict(sorted(self.per_category.items())), "per_role": dict(sorted(self.per_role.items())),
            "action": self.options.action, "stop_reason": self.stop_reason,
            "rules": [rule.id for rule in self.rules.rules] if self.options.rules else [],
            "judge": self.options.judge,
            "judge_calls": self.judge_calls, "judge_unparsed": self.judge_unparsed,
        }

    def summary_lines(self, status: str) -> list[str]:
        """The run's final-message lines: how many responses were flagged and where they
        are logged (nothing when none was flagged or outside a run)."""
        if self.run_dir is None or not self.options.enabled or not self.flagged:
            return []
        line = f"oversight: {self.flagged} flagged response(s) of {self.reviewed} reviewed are in {self.run_dir / LOG_FILE}"
        if status == "stopped":
            line += "; read them before continuing"
        return [line]

    def write_outputs(self) -> None:
        """The plot and the summary, when in a run."""
        if self.run_dir is None or not self.options.enabled:
            return
        atomic_write_text(self.run_dir / SUMMARY_FILE, json.dumps(self.summary(), indent=2) + "\n")
        write_oversight_plot(self.run_dir / "metrics.jsonl", self.run_dir / "plots" / "oversight.png")

    # -- hooks ------------------------------------------------------------------------

    @hookimpl
    def absolutezero_run_start(self, config: Any, run_dir: str) -> None:
        """Read ``config.plugin_options.oversight`` and reset for the new run."""
        plugin_options = _plain(getattr(config, "plugin_options", None) if config is not None else None) or {}
        if not isinstance(plugin_options, Mapping):
            raise ConfigError(f"plugin_options must be a mapping, got {plugin_options!r}")
        self.start(plugin_options.get("oversight"), run_dir)

    @hookimpl
    def absolutezero_review_responses(self, items: list[ReviewItem]) -> list[Review | None]:
        """Review a phase's responses."""
        return self.review(items)

    @hookimpl
    def absolutezero_step_metrics(self, step: int, metrics: dict[str, float]) -> None:
        """Log the step's flags at warning level (nothing when none)."""
        flagged = metrics.get("oversight/flagged", 0.0)
        if flagged:
            counts = ", ".join(
                f"{name.split('/', 1)[1]}={int(value)}" for name, value in sorted(metrics.items())
                if name.startswith("oversight/") and name.count("/") == 1 and name not in ("oversight/flagged", "oversight/dropped")
            )
            where = f"; see {self.run_dir / LOG_FILE}" if self.run_dir is not None else ""
            logger.warning("step %d: oversight flagged %d response(s): %s%s", step, int(flagged), counts, where)

    @hookimpl
    def absolutezero_checkpoint(self, path: str, step: int) -> None:
        """Refresh the plot and the summary with the checkpoint."""
        self.write_outputs()

    @hookimpl
    def absolutezero_run_summary(self, run_dir: str, status: str) -> list[str]:
        """Where the flagged responses are, for the run's final message."""
        if self.run_dir is None or Path(run_dir) != self.run_dir:
            return []
        return self.summary_lines(status)

    @hookimpl
    def absolutezero_run_end(self, run_dir: str, status: str) -> None:
        """Final plot and summary; free the judge. Later reviews write no file."""
        try:
            if self.run_dir is not None and Path(run_dir) == self.run_dir:
                self.write_outputs()
        finally:
            self.run_dir = None
            self.close_judge()
            if self.judge_unparsed:
                logger.warning("oversight judge: %d verdict(s) did not follow the rubric", self.judge_unparsed)


#: The instance behind the module-level hook implementations (the entry-point plugin).
MONITOR = OversightMonitor()

#: The options ``plugin_options.oversight.<key>`` takes (declared once, on the class;
#: listed by ``--help`` and the configuration reference; checked at run start).
OPTIONS = OversightOptions


@hookimpl
def absolutezero_run_start(config: Any, run_dir: str) -> None:
    """Configure :data:`MONITOR` from ``config.plugin_options.oversight`` and reset it."""
    MONITOR.absolutezero_run_start(config=config, run_dir=run_dir)


@hookimpl
def absolutezero_review_responses(items: list[ReviewItem]) -> list[Review | None]:
    """Review a phase's responses with :data:`MONITOR`."""
    return MONITOR.review(items)


@hookimpl
def absolutezero_step_metrics(step: int, metrics: dict[str, float]) -> None:
    """Log the step's flags."""
    MONITOR.absolutezero_step_metrics(step=step, metrics=metrics)


@hookimpl
def absolutezero_checkpoint(path: str, step: int) -> None:
    """Refresh the oversight plot and summary."""
    MONITOR.absolutezero_checkpoint(path=path, step=step)


@hookimpl
def absolutezero_run_summary(run_dir: str, status: str) -> list[str]:
    """Where :data:`MONITOR`'s flagged responses are."""
    return MONITOR.absolutezero_run_summary(run_dir=run_dir, status=status)


@hookimpl
def absolutezero_run_end(run_dir: str, status: str) -> None:
    """Final oversight plot and summary; free the judge."""
    MONITOR.absolutezero_run_end(run_dir=run_dir, status=status)
