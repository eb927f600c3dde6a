"""TensorBoard tracker: ``trackers=[tensorboard]`` (extra ``tensorboard``).

Writes event files with torch's :class:`~torch.utils.tensorboard.SummaryWriter` (torch
is already a dependency; it needs the ``tensorboard`` package) to ``<run_dir>/tensorboard/``
or ``plugin_options.tensorboard.log_dir``. Logged:

* the config as hyperparameters (HPARAMS tab, flattened keys) and as YAML text (TEXT tab);
* every step metric as a scalar at its step;
* at the end, each ``plots/*.png`` as an image ``plots/<name>`` and the status as text.

A resumed run writes a new event file in the same folder with ``purge_step`` = the first
step after its checkpoint, so steps a crashed attempt logged past it are hidden.
View with ``tensorboard --logdir runs``.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from omegaconf import DictConfig, OmegaConf

from absolutezero_trackers.base import ModulePlugin, Tracker, flatten, require

__all__ = ["HPARAM_METRICS", "TensorBoardTracker"]

#: metrics shown as columns next to the hyperparameters in the HPARAMS tab
HPARAM_METRICS = (
    "overall/valid_rate",
    "overall/solve_rate",
    "overall/propose_reward_mean",
    "overall/solve_reward_mean",
    "probe/overall/accuracy",
)


class TensorBoardTracker(Tracker):
    """Logs a run to TensorBoard event files.

    Args:
        log_dir: the event-file folder (default ``<run_dir>/tensorboard``).
        flush_secs: how often pending events are written to disk.

    Raises:
        ConfigError: the ``tensorboard`` package is not installed.
    """

    name = "tensorboard"

    def __init__(self, log_dir: str | None = None, flush_secs: int = 30) -> None:
        super().__init__()
        require(self.name, "tensorboard", extra="tensorboard")
        self._tb = require(self.name, "torch.utils.tensorboard", extra="tensorboard", package="tensorboard")
        self.log_dir_option = log_dir
        self.flush_secs = int(flush_secs)
        self.log_dir: Path | None = None
        self.writer: Any = None

    def start(self, config: DictConfig, run_dir: Path, resumed_after: int | None) -> None:
        from torch.utils.tensorboard.summary import hparams

        self.log_dir = Path(self.log_dir_option) if self.log_dir_option else run_dir / "tensorboard"
        purge = None if resumed_after is None else resumed_after + 1
        writer = self._tb.SummaryWriter(log_dir=str(self.log_dir), purge_step=purge, flush_secs=self.flush_secs)
        self.writer = writer
        table = {key: ("None" if value is None else value) for key, value in flatten(config).items()}
        file_writer = writer._get_file_writer()
        for summary in hparams(table, {name: 0.0 for name in HPARAM_METRICS}):
            file_writer.add_summary(summary)
        yaml = OmegaConf.to_yaml(config, resolve=True)
        # four-space indent: TensorBoard renders text as Markdown, this keeps it verbatim
        writer.add_text("config", "\n".join("    " + line for line in yaml.splitlines()), global_step=purge or 0)

    def log(self, step: int, values: dict[str, float]) -> None:
        for name, value in values.items():
            self.writer.add_scalar(name, value, global_step=step)

    def finish(self, plots: list[Path], status: str) -> None:
        import numpy as np
        from PIL import Image

        writer = self.writer
        step = self.last_step or 0
        try:
            for path in plots:
                with Image.open(path) as image:
                    pixels = np.asarray(image.convert("RGB"))
                writer.add_image(f"plots/{path.stem}", pixels, global_step=step, dataformats="HWC")
            writer.add_text("status", status, global_step=step)
        finally:
            writer.close()
            self.writer = None


_PLUGIN = ModulePlugin(TensorBoardTracker)
absolutezero_run_start = _PLUGIN.absolutezero_run_start
absolutezero_step_metrics = _PLUGIN.absolutezero_step_metrics
absolutezero_run_end = _PLUGIN.absolutezero_run_end
