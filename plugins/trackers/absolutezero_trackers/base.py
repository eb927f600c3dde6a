"""What every experiment tracker shares: the hook wiring and the missing-package error.

A tracker is a plugin object (an instance, so two runs in one process never share state)
built with keyword options from ``plugin_options.<name>``. :class:`Tracker` implements the
three hooks once, so each backend only says how to ``start``, ``log`` and ``finish``:

* run start: the resolved config (flattened for backends that want flat hyperparameters)
  and the last step already in ``metrics.jsonl`` (a resumed run continues after it);
* step metrics: the numbers of the step (``step`` itself is the x axis, not a metric;
  ``oversight/...`` counts are ordinary metrics);
* run end: the PNGs under ``<run_dir>/plots/`` and the run's status, then close.

The backend's package is imported when the tracker is constructed (trackio's is only
looked up then, and imported at run start), so a missing package is a
:class:`~absolutezero.config.ConfigError` (exit 2) naming the extra to install, raised
before anything runs, and other trackers or runs are unaffected.
"""

from __future__ import annotations

import importlib
import logging
from pathlib import Path
from types import ModuleType
from typing import ClassVar

from omegaconf import DictConfig

from absolutezero import hookimpl
from absolutezero.config import ConfigError
from absolutezero_trackers.common import (  # re-exported: one import for a tracker module
    IDS_FILE,
    config_dict,
    flatten,
    last_logged_step,
    plot_files,
    remember_id,
    remembered_id,
    scalars,
)

__all__ = [
    "EXIT_CODES",
    "IDS_FILE",
    "ModulePlugin",
    "Tracker",
    "config_dict",
    "flatten",
    "last_logged_step",
    "missing_package",
    "plot_files",
    "remember_id",
    "remembered_id",
    "require",
    "scalars",
]

logger = logging.getLogger("absolutezero.trackers")

#: run status (hook ``absolutezero_run_end``) -> the process exit code of that outcome
EXIT_CODES: dict[str, int] = {"completed": 0, "failed": 1, "stopped": 3, "interrupted": 130}


def require(tracker: str, module: str, extra: str, package: str | None = None) -> ModuleType:
    """Import ``module`` or explain which extra installs it.

    Raises:
        ConfigError: the import failed; the message names the package and the
            ``pip install`` command (and the original error, which may be a broken
            dependency rather than a missing package).
    """
    try:
        return importlib.import_module(module)
    except ImportError as error:
        raise missing_package(tracker, package or module, extra, error) from error


def missing_package(tracker: str, package: str, extra: str, cause: object = None) -> ConfigError:
    """The error for a tracker whose package is not installed: it names the extra."""
    why = f"; importing it failed: {cause}" if cause else ""
    return ConfigError(
        f"tracker {tracker!r} needs the {package} package: pip install -e '.[{extra}]' "
        f"(or pip install 'absolutezero[{extra}]'){why}"
    )


class Tracker:
    """Base class: the three hooks, calling :meth:`start`, :meth:`log` and :meth:`finish`.

    A failing start stops the run (a wrong option or an unreachable server should be seen
    at once). Once started, a tracker never ends the training it observes: a failure to
    log a step or to finish is a warning (logger ``absolutezero.trackers``; the numbers are
    in ``metrics.jsonl`` anyway), and the other trackers still get their hooks. Hooks
    before a successful start, or after the end, do nothing.
    """

    name: ClassVar[str] = "tracker"

    def __init__(self) -> None:
        self.run_dir: Path | None = None
        self.last_step: int | None = None

    def start(self, config: DictConfig, run_dir: Path, resumed_after: int | None) -> None:
        """Open the backend and log the config; ``resumed_after`` is the last step logged."""
        raise NotImplementedError

    def log(self, step: int, values: dict[str, float]) -> None:
        """Log one step's numbers at ``step``."""
        raise NotImplementedError

    def finish(self, plots: list[Path], status: str) -> None:
        """Log the plot images and the status, then close the backend."""
        raise NotImplementedError

    @hookimpl
    def absolutezero_run_start(self, config: DictConfig, run_dir: str) -> None:
        self.last_step = last_logged_step(run_dir)
        self.start(config, Path(run_dir), self.last_step)
        self.run_dir = Path(run_dir)

    @hookimpl
    def absolutezero_step_metrics(self, step: int, metrics: dict[str, float]) -> None:
        if self.run_dir is None:
            return
        try:
            self.log(int(step), scalars(metrics))
        except Exception as error:  # the backend's failure, not the run's
            logger.warning("tracker %r could not log step %s: %s: %s", self.name, step, type(error).__name__, error)
        self.last_step = int(step)

    @hookimpl
    def absolutezero_run_end(self, run_dir: str, status: str) -> None:
        if self.run_dir is None:
            return
        try:
            self.finish(plot_files(run_dir), status)
        except Exception:
            logger.warning("tracker %r could not finish cleanly", self.name, exc_info=True)
        finally:
            self.run_dir = None


class ModulePlugin:
    """Makes ``plugins=[absolutezero_trackers.<name>]`` work like ``trackers=[<name>]``.

    A module named in ``plugins=`` is registered as it is, so its hook functions delegate
    to this object, which builds the tracker at run start from ``plugin_options.<name>``
    (the config is only known then; option mistakes are then reported at run start).
    """

    def __init__(self, cls: type[Tracker]) -> None:
        self.cls = cls
        self.tracker: Tracker | None = None

    @hookimpl
    def absolutezero_run_start(self, config: DictConfig, run_dir: str) -> None:
        from absolutezero.registry import check_options

        options = config_dict(config).get("plugin_options", {}).get(self.cls.name) or {}
        check_options(self.cls, options, f"tracker {self.cls.name!r}")
        self.tracker = self.cls(**options)
        self.tracker.absolutezero_run_start(config=config, run_dir=run_dir)

    @hookimpl
    def absolutezero_step_metrics(self, step: int, metrics: dict[str, float]) -> None:
        if self.tracker is not None:
            self.tracker.absolutezero_step_metrics(step=step, metrics=metrics)

    @hookimpl
    def absolutezero_run_end(self, run_dir: str, status: str) -> None:
        tracker, self.tracker = self.tracker, None
        if tracker is not None:
            tracker.absolutezero_run_end(run_dir=run_dir, status=status)
