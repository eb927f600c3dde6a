"""Weights & Biases tracker: ``trackers=[wandb]`` (extra ``wandb``), offline by default.

Offline (the default unless ``$WANDB_MODE`` or ``plugin_options.wandb.mode`` says
otherwise) means no account and no network: the run is written to
``<run_dir>/wandb/offline-run-<time>-<id>/`` and can be uploaded later with
``wandb sync <that folder>``. Logged:

* the config as the run config (nested, as in ``config.yaml``);
* every step metric at its step (``step=``, so W&B's x axis is the training step);
* at the end, each ``plots/*.png`` as an image ``plots/<name>``, the status as the
  summary value ``absolutezero/status``, and the run's exit code (0 completed, 1 failed,
  3 stopped by oversight, 130 interrupted, as the process exits).

The run id is kept in ``<run_dir>/tracker_ids.json``, so ``resume=`` continues the same
W&B run (offline: a new offline folder with the same id, which ``wandb sync`` merges).
"""

from __future__ import annotations

import os
import secrets
from pathlib import Path
from typing import Any

from omegaconf import DictConfig

from absolutezero_trackers.base import EXIT_CODES, ModulePlugin, Tracker, config_dict, remember_id, remembered_id, require

__all__ = ["WandbTracker"]


class WandbTracker(Tracker):
    """Logs a run to Weights & Biases.

    Args:
        project: the W&B project.
        entity: the W&B team or user (online mode; None = your default).
        mode: ``"offline"``, ``"online"`` or ``"disabled"``; None = ``$WANDB_MODE``, else
            ``"offline"``.
        dir: the folder W&B creates its ``wandb/`` folder in (default: the run folder).
        name: the W&B run name (default: the run's ``name``).
        group: an optional W&B group, e.g. to put several seeds together.
        tags: optional W&B tags.

    Raises:
        ConfigError: the ``wandb`` package is not installed.
    """

    name = "wandb"

    def __init__(
        self,
        project: str = "absolutezero",
        entity: str | None = None,
        mode: str | None = None,
        dir: str | None = None,
        name: str | None = None,
        group: str | None = None,
        tags: list[str] | None = None,
    ) -> None:
        super().__init__()
        self._wandb = require(self.name, "wandb", extra="wandb")
        self.project, self.entity, self.group = project, entity, group
        self.mode = mode or os.environ.get("WANDB_MODE") or "offline"
        self.dir, self.run_name = dir, name
        self.tags = [str(tag) for tag in tags] if tags else None
        self.run: Any = None

    def start(self, config: DictConfig, run_dir: Path, resumed_after: int | None) -> None:
        parent = Path(self.dir) if self.dir else run_dir
        parent.mkdir(parents=True, exist_ok=True)
        run_id = remembered_id(run_dir, self.name) or secrets.token_hex(4)
        remember_id(run_dir, self.name, run_id)
        self.run = self._wandb.init(
            project=self.project, entity=self.entity, dir=str(parent), mode=self.mode,
            name=self.run_name or config.get("name"), group=self.group, tags=self.tags,
            config=config_dict(config), id=run_id, resume="allow", allow_val_change=True,
            # console capture would wrap stdout/stderr under the run's own progress bar
            settings=self._wandb.Settings(console="off"),
        )

    def log(self, step: int, values: dict[str, float]) -> None:
        self.run.log(values, step=step)

    def finish(self, plots: list[Path], status: str) -> None:
        run, self.run = self.run, None
        try:
            images = {f"plots/{path.stem}": self._wandb.Image(str(path)) for path in plots}
            if images:
                run.log(images, step=self.last_step)
            run.summary["absolutezero/status"] = status
        finally:
            run.finish(exit_code=EXIT_CODES.get(status, 1))


_PLUGIN = ModulePlugin(WandbTracker)
absolutezero_run_start = _PLUGIN.absolutezero_run_start
absolutezero_step_metrics = _PLUGIN.absolutezero_step_metrics
absolutezero_run_end = _PLUGIN.absolutezero_run_end
