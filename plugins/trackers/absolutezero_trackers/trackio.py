"""trackio tracker: ``trackers=[trackio]`` (extra ``trackio``), local SQLite storage.

trackio (Hugging Face's wandb-compatible, local-first tracker) keeps one SQLite database
per project, ``<dir>/<project>.db``, plus logged media under ``<dir>/media/``. It reads
its folder from ``$TRACKIO_DIR`` once, when it is first imported, so this tracker imports
it at run start, after pointing ``TRACKIO_DIR`` at ``plugin_options.trackio.dir``, else
an existing ``$TRACKIO_DIR``, else ``<run_dir>/trackio``. In a process that imported
trackio earlier, trackio keeps its first folder (a warning says which); the folder used
is :attr:`TrackioTracker.storage_dir`. View with ``TRACKIO_DIR=<dir> trackio show``.
Logged:

* the config (flattened keys) as the run config;
* every step metric at its step;
* at the end, each ``plots/*.png`` as an image ``plots/<name>``, and the status as an
  alert (trackio has no run status): info when completed, warn when interrupted or
  stopped by oversight, error when failed.

A resumed run reopens the trackio run of the same name (``resume="allow"``).
"""

from __future__ import annotations

import importlib.util
import logging
import os
import sys
from pathlib import Path
from typing import Any

from omegaconf import DictConfig

from absolutezero_trackers.base import ModulePlugin, Tracker, flatten, missing_package, require

__all__ = ["ALERT_LEVELS", "TrackioTracker"]

logger = logging.getLogger("absolutezero.trackers.trackio")

#: run status -> trackio alert level
ALERT_LEVELS = {"completed": "info", "interrupted": "warn", "stopped": "warn", "failed": "error"}


class TrackioTracker(Tracker):
    """Logs a run to trackio.

    Args:
        project: the trackio project (one database file).
        name: the trackio run name (default: the run's ``name``).
        group: an optional trackio group.
        dir: trackio's storage folder (default ``$TRACKIO_DIR``, else ``<run_dir>/trackio``).
        space_id: a Hugging Face Space to log to instead of local storage (needs a login).

    Raises:
        ConfigError: the ``trackio`` package is not installed.
    """

    name = "trackio"

    def __init__(
        self,
        project: str = "absolutezero",
        name: str | None = None,
        group: str | None = None,
        dir: str | None = None,
        space_id: str | None = None,
    ) -> None:
        super().__init__()
        # find, do not import: the import fixes trackio's folder, known only at run start
        if importlib.util.find_spec("trackio") is None:
            raise missing_package(self.name, "trackio", "trackio")
        self.project, self.run_name, self.group = project, name, group
        self.dir, self.space_id = dir, space_id
        self.storage_dir: Path | None = None
        self._trackio: Any = None
        self.run: Any = None

    def start(self, config: DictConfig, run_dir: Path, resumed_after: int | None) -> None:
        wanted = Path(self.dir or os.environ.get("TRACKIO_DIR") or run_dir / "trackio").resolve()
        if "trackio" not in sys.modules:
            os.environ["TRACKIO_DIR"] = str(wanted)
        trackio = self._trackio = require(self.name, "trackio", extra="trackio")
        self.storage_dir = Path(trackio.utils.TRACKIO_DIR).resolve()
        if self.storage_dir != wanted and self.space_id is None:
            logger.warning("trackio was imported earlier in this process; it logs to %s, not %s",
                           self.storage_dir, wanted)
        self.run = trackio.init(
            project=self.project, name=self.run_name or config.get("name"), group=self.group,
            space_id=self.space_id, config=flatten(config), resume="allow", embed=False,
            auto_log_gpu=False, auto_log_cpu=False,
        )

    def log(self, step: int, values: dict[str, float]) -> None:
        self.run.log(values, step=step)

    def finish(self, plots: list[Path], status: str) -> None:
        run, self.run = self.run, None
        try:
            images = {f"plots/{path.stem}": self._trackio.Image(str(path)) for path in plots}
            if images:
                run.log(images, step=self.last_step)
            level = self._trackio.AlertLevel(ALERT_LEVELS.get(status, "error"))
            run.alert(title=f"run {status}", text=f"absolutezero run ended: {status}", level=level, step=self.last_step)
        finally:
            run.finish()


_PLUGIN = ModulePlugin(TrackioTracker)
absolutezero_run_start = _PLUGIN.absolutezero_run_start
absolutezero_step_metrics = _PLUGIN.absolutezero_step_metrics
absolutezero_run_end = _PLUGIN.absolutezero_run_end
