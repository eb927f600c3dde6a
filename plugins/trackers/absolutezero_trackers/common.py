"""Run facts every tracker logs: the config as plain or flat values, the step's numbers,
the plot files, where a resumed run continues, and the backend run ids kept for resuming.

Kept apart from the hook wiring (:mod:`absolutezero_trackers.base`) so that these pure
helpers can be tested, and reused by other trackers, without any backend installed.
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from omegaconf import DictConfig, OmegaConf

from absolutezero.metrics import read_metrics

__all__ = [
    "IDS_FILE",
    "config_dict",
    "flatten",
    "last_logged_step",
    "plot_files",
    "remember_id",
    "remembered_id",
    "scalars",
]

#: ``<run_dir>/<IDS_FILE>``: tracker name -> the backend's run id, so a resume continues it
IDS_FILE = "tracker_ids.json"


def config_dict(config: DictConfig | Mapping[str, Any]) -> dict[str, Any]:
    """The config as plain nested dicts and lists (interpolations resolved)."""
    if isinstance(config, DictConfig):
        container = OmegaConf.to_container(config, resolve=True)
        assert isinstance(container, dict)
        return {str(key): value for key, value in container.items()}
    return {str(key): value for key, value in config.items()}


def flatten(config: DictConfig | Mapping[str, Any], sep: str = ".") -> dict[str, Any]:
    """Nested config -> ``{"selfplay.propose_batch": 4, ...}`` for flat hyperparameter tables.

    Scalars (str, int, float, bool, None) are kept as they are; a list becomes its JSON text
    and an empty mapping ``"{}"``, so every key of the config shows up, each as one value.
    """
    flat: dict[str, Any] = {}

    def walk(node: Mapping[str, Any], prefix: str) -> None:
        for key, value in node.items():
            name = f"{prefix}{key}"
            if isinstance(value, Mapping) and value:
                walk(value, name + sep)
            elif isinstance(value, Mapping):
                flat[name] = "{}"
            elif isinstance(value, (list, tuple)):
                flat[name] = json.dumps(list(value), default=str)
            else:
                flat[name] = value

    walk(config_dict(config), "")
    return flat


def scalars(metrics: Mapping[str, Any]) -> dict[str, float]:
    """The finite numbers of a metrics record, without its ``step`` (the x axis)."""
    out: dict[str, float] = {}
    for name, value in metrics.items():
        if name == "step" or not isinstance(value, (int, float)):
            continue
        number = float(value)
        if math.isfinite(number):
            out[str(name)] = number
    return out


def plot_files(run_dir: str | Path) -> list[Path]:
    """The PNG plots of a run (``<run_dir>/plots/*.png``), sorted by name."""
    folder = Path(run_dir) / "plots"
    return sorted(folder.glob("*.png")) if folder.is_dir() else []


def last_logged_step(run_dir: str | Path) -> int | None:
    """The last step in ``metrics.jsonl``, or None for a fresh run.

    At run start a resumed run has already cut that file back to its checkpoint, so the
    next step logged is this one plus one; TensorBoard purges what a crash left after it.
    """
    try:
        records = read_metrics(Path(run_dir) / "metrics.jsonl")
    except (OSError, ValueError):
        return None
    return int(records[-1]["step"]) if records else None


def remembered_id(run_dir: str | Path, tracker: str) -> str | None:
    """The backend run id a previous start of this run stored for ``tracker``, if any."""
    path = Path(run_dir) / IDS_FILE
    try:
        value = json.loads(path.read_text(encoding="utf-8")).get(tracker)
    except (OSError, ValueError, AttributeError):
        return None
    return str(value) if value else None


def remember_id(run_dir: str | Path, tracker: str, run_id: str) -> None:
    """Store ``run_id`` for ``tracker`` in ``<run_dir>/tracker_ids.json`` (kept on resume)."""
    path = Path(run_dir) / IDS_FILE
    try:
        known = json.loads(path.read_text(encoding="utf-8"))
        known = known if isinstance(known, dict) else {}
    except (OSError, ValueError):
        known = {}
    known[tracker] = run_id
    path.write_text(json.dumps(known, indent=1, sort_keys=True) + "\n", encoding="utf-8")
