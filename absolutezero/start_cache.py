"""A run's starting tasks (seed buffers and probe set), kept for later runs.

Why: before its first step a run proposes its seed buffers and its held-out probe set
with the untrained model, minutes on a CPU. Every run from the same seed and the same
settings that shape those proposals would propose exactly the same tasks again, so the
first such run keeps them under ``<out>/.cache/start/<key>/`` and later runs read them
back: a learning-rate comparison, a rerun after a crash in step 1, the next day's run.
Runs that reuse them are also compared on the same probe set, which is what a paired
comparison needs.

The key is a hash of everything that can change those tasks: the seed; the environment
and its options; the agent and its options except those its class declares training-only
(``Agent.training_options``: the untrained model generates the same without them); the
selfplay settings that drive the proposal rounds; the probe settings; the loaded
plugins and their options (reviewers drop proposals; trackers do not count); and the versions of absolutezero
and of the environment's and agent's distributions. Anything else (steps, rewards,
learning rate, solve batch) leaves the key unchanged. ``reuse_start=false`` proposes
anew; a cache entry that cannot be read is ignored with a warning and rewritten.

Training does not depend on where the tasks came from:
:meth:`SelfPlayTrainer.start_training` restarts the trainer's and the agent's randomness
from the run's seed once the tasks are there, so a run that reads the cache is the run
that wrote it, step for step.
"""

from __future__ import annotations

import hashlib
import json
import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from omegaconf import DictConfig, OmegaConf

from absolutezero import __version__
from absolutezero.atomic import atomic_directory

__all__ = ["CACHE_FOLDER", "CachedStart", "StartCache"]

logger = logging.getLogger(__name__)

#: Where under ``out`` the entries live.
CACHE_FOLDER = Path(".cache") / "start"
#: Bumped when what a cache entry holds, or how its tasks are proposed, changes.
#: 2: entries of 1 were written while the HF backend could hand a chunk's completions to
#: the wrong prompts (a one-group prefill returned rows in length order), so their
#: step-0 probe scores and the seeds' proposal contexts are not to be trusted.
#: 3: entries also hold the untrained model's verdict on each probe task.
FORMAT = 3
_BUFFERS, _PROBE, _INFO = "seed_buffers.jsonl", "probe_set.jsonl", "start.json"


@dataclass
class CachedStart:
    """One cache entry: the seed buffers' and probe set's JSONL text (probe ``None``
    when the run had no probe set), the step-0 metrics of the run that proposed them and
    its untrained model's verdict on each probe task (``None`` without a probe set)."""

    buffers: str
    probe: str | None
    metrics: dict[str, float]
    probe_start: list[bool] | None = None


def start_settings(
    config: DictConfig, training_options: Sequence[str], plugins: Sequence[str], versions: Mapping[str, str]
) -> dict[str, Any]:
    """The settings that shape a run's starting tasks (see the module docstring)."""
    agent_options = {
        name: value for name, value in OmegaConf.to_container(config.agent_options, resolve=True).items()
        if name not in set(training_options)
    }
    selfplay = config.selfplay
    probing = bool(config.probe.every)
    return {
        "format": FORMAT,
        "seed": int(config.seed),
        "env": str(config.env),
        "env_options": OmegaConf.to_container(config.env_options, resolve=True),
        "agent": str(config.agent),
        "agent_options": agent_options,
        "selfplay": {
            name: OmegaConf.to_container(selfplay, resolve=True)[name]
            for name in ("task_types", "references", "buffer_capacity", "seed_size", "seed_max_rounds", "seed_batch")
        },
        "probe": {"per_type": int(config.probe.per_type) if probing else 0,
                  "max_rounds": int(config.probe.max_rounds) if probing else 0},
        # trackers only watch: their names and options change nothing proposed
        "plugins": sorted(name for name in plugins if not name.startswith("tracker:")),
        "plugin_options": {
            name: value for name, value in OmegaConf.to_container(config.plugin_options, resolve=True).items()
            if name not in {str(t) for t in config.trackers}
        },
        "versions": {"absolutezero": __version__, **dict(versions)},
    }


class StartCache:
    """The cache entry for one set of :func:`start_settings` under ``out``."""

    def __init__(self, out: str | Path, settings: Mapping[str, Any]) -> None:
        self.settings = dict(settings)
        text = json.dumps(self.settings, sort_keys=True, default=str)
        self.key = hashlib.sha256(text.encode("utf-8")).hexdigest()[:24]
        self.folder = Path(out).expanduser() / CACHE_FOLDER / self.key

    def read(self) -> CachedStart | None:
        """The entry, or None when there is none or it cannot be used (logged)."""
        if not self.folder.is_dir():
            return None
        try:
            info = json.loads((self.folder / _INFO).read_text(encoding="utf-8"))
            if info.get("settings") != json.loads(json.dumps(self.settings, default=str)):
                raise ValueError("its settings differ from this run's (a hash collision or a hand edit)")
            buffers = (self.folder / _BUFFERS).read_text(encoding="utf-8")
            probe_path = self.folder / _PROBE
            probe = probe_path.read_text(encoding="utf-8") if probe_path.is_file() else None
            metrics = {str(k): float(v) for k, v in info.get("metrics", {}).items()}
            probe_start = info.get("probe_start")
            if probe is not None and not isinstance(probe_start, list):
                raise ValueError("it has a probe set but not the untrained model's verdicts on it")
            probe_start = [bool(value) for value in probe_start] if probe is not None else None
        except (OSError, ValueError, TypeError, AttributeError) as error:
            logger.warning("ignoring the start cache %s: %s; proposing anew", self.folder, error)
            return None
        return CachedStart(buffers, probe, metrics, probe_start)

    def write(self, entry: CachedStart) -> None:
        """Store ``entry`` atomically (a reader sees the old entry or the new, never half)."""
        with atomic_directory(self.folder) as tmp:
            (tmp / _BUFFERS).write_text(entry.buffers, encoding="utf-8")
            if entry.probe is not None:
                (tmp / _PROBE).write_text(entry.probe, encoding="utf-8")
            info = {"settings": self.settings, "metrics": entry.metrics, "probe_start": entry.probe_start}
            (tmp / _INFO).write_text(json.dumps(info, sort_keys=True, indent=1, default=str), encoding="utf-8")
