"""MLflow tracker: ``trackers=[mlflow]`` (extra ``mlflow``), a local file store by default.

The default store is ``file:<run_dir>/mlruns`` (view with ``mlflow ui --backend-store-uri
<run_dir>/mlruns``); ``plugin_options.mlflow.tracking_uri`` points elsewhere (a server,
``sqlite:///...``). MLflow 3 keeps the file store in maintenance mode and refuses it unless
``MLFLOW_ALLOW_FILE_STORE=true``, so for a ``file:`` URI that variable is set for this
process when it is unset. Logged, through :class:`mlflow.tracking.MlflowClient` (no
global "active run", so two runs in one process stay apart):

* the config as params (flattened keys; values cut to MLflow's length limit) and, whole,
  as the artifact ``config.yaml``;
* every step metric at its step;
* at the end, each ``plots/*.png`` as an artifact under ``plots/``, the tag
  ``absolutezero.status``, and the run status: FINISHED (completed), KILLED (interrupted,
  or stopped by oversight) or FAILED.

The run id is kept in ``<run_dir>/tracker_ids.json``: ``resume=`` reopens the same MLflow
run, adds the params that are new (MLflow params cannot change; ``config.yaml`` is
rewritten with the current config) and continues the metrics after the checkpoint.
"""

from __future__ import annotations

import os
import re
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from omegaconf import DictConfig, OmegaConf

from absolutezero_trackers.base import ModulePlugin, Tracker, flatten, remember_id, remembered_id, require

__all__ = ["RUN_STATUS", "MlflowTracker"]

#: run status (hook ``absolutezero_run_end``) -> MLflow run status
RUN_STATUS = {"completed": "FINISHED", "interrupted": "KILLED", "stopped": "KILLED", "failed": "FAILED"}
_BAD_KEY_CHARS = re.compile(r"[^\w\-. /]")  # MLflow allows letters, digits, _ - . space /


def _chunks(items: Sequence[Any], size: int) -> list[Sequence[Any]]:
    return [items[i : i + size] for i in range(0, len(items), size)]


class MlflowTracker(Tracker):
    """Logs a run to MLflow.

    Args:
        tracking_uri: the tracking store (default ``file:<run_dir>/mlruns``).
        experiment: the MLflow experiment name (created when missing).
        run_name: the MLflow run name (default: the run's ``name``).
        tags: extra run tags.

    Raises:
        ConfigError: the ``mlflow`` package is not installed.
    """

    name = "mlflow"

    def __init__(
        self,
        tracking_uri: str | None = None,
        experiment: str = "absolutezero",
        run_name: str | None = None,
        tags: dict[str, str] | None = None,
    ) -> None:
        super().__init__()
        require(self.name, "mlflow", extra="mlflow")
        self._tracking = require(self.name, "mlflow.tracking", extra="mlflow", package="mlflow")
        self._entities = require(self.name, "mlflow.entities", extra="mlflow", package="mlflow")
        validation = require(self.name, "mlflow.utils.validation", extra="mlflow", package="mlflow")
        self.max_value = int(getattr(validation, "MAX_PARAM_VAL_LENGTH", 500))
        self.max_key = int(getattr(validation, "MAX_ENTITY_KEY_LENGTH", 250))
        self.max_params = int(getattr(validation, "MAX_PARAMS_TAGS_PER_BATCH", 100))
        self.max_metrics = int(getattr(validation, "MAX_METRICS_PER_BATCH", 1000))
        self.tracking_uri_option, self.experiment, self.run_name = tracking_uri, experiment, run_name
        self.tags = {str(k): str(v) for k, v in (tags or {}).items()}
        self.tracking_uri: str | None = None
        self.client: Any = None
        self.run_id: str | None = None

    def _key(self, name: str) -> str:
        return _BAD_KEY_CHARS.sub("_", name)[: self.max_key]

    def params(self, config: DictConfig) -> dict[str, str]:
        """The config as MLflow params: flat keys, string values within the length limit."""
        return {self._key(key): str(value)[: self.max_value] for key, value in flatten(config).items()}

    def start(self, config: DictConfig, run_dir: Path, resumed_after: int | None) -> None:
        uri = self.tracking_uri_option or (run_dir / "mlruns").resolve().as_uri()
        if uri.startswith("file:"):
            os.environ.setdefault("MLFLOW_ALLOW_FILE_STORE", "true")
        self.tracking_uri = uri
        client = self.client = self._tracking.MlflowClient(tracking_uri=uri)
        experiment = client.get_experiment_by_name(self.experiment)
        experiment_id = experiment.experiment_id if experiment else client.create_experiment(self.experiment)
        run_id, existing = remembered_id(run_dir, self.name), {}
        if run_id:
            try:
                existing = client.get_run(run_id).data.params
                client.update_run(run_id, status="RUNNING")
            except Exception:  # an id from another store, or a deleted run: start a new one
                run_id = None
        if not run_id:
            tags = {"absolutezero.run_dir": str(run_dir), **self.tags}
            run_id = client.create_run(experiment_id, run_name=self.run_name or config.get("name"), tags=tags).info.run_id
            remember_id(run_dir, self.name, run_id)
        self.run_id = run_id
        params = [self._entities.Param(k, v) for k, v in self.params(config).items() if k not in existing]
        for chunk in _chunks(params, self.max_params):
            client.log_batch(run_id, params=list(chunk))
        client.log_text(run_id, OmegaConf.to_yaml(config, resolve=True), "config.yaml")

    def log(self, step: int, values: dict[str, float]) -> None:
        now = int(time.time() * 1000)
        metrics = [self._entities.Metric(self._key(k), v, now, step) for k, v in values.items()]
        for chunk in _chunks(metrics, self.max_metrics):
            self.client.log_batch(self.run_id, metrics=list(chunk))

    def finish(self, plots: list[Path], status: str) -> None:
        client, run_id = self.client, self.run_id
        try:
            for path in plots:
                client.log_artifact(run_id, str(path), artifact_path="plots")
            client.set_tag(run_id, "absolutezero.status", status)
        finally:
            client.set_terminated(run_id, status=RUN_STATUS.get(status, "FAILED"))
            self.client = None


_PLUGIN = ModulePlugin(MlflowTracker)
absolutezero_run_start = _PLUGIN.absolutezero_run_start
absolutezero_step_metrics = _PLUGIN.absolutezero_step_metrics
absolutezero_run_end = _PLUGIN.absolutezero_run_end
