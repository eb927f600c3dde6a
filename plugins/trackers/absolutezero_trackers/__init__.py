"""Experiment trackers for absolutezero: TensorBoard, Weights & Biases, MLflow, trackio.

Each is registered in the entry-point group ``absolutezero.trackers`` and chosen with
``trackers=[tensorboard,wandb]`` (settings under ``plugin_options.<name>``), or named as a
plugin module, ``plugins=[absolutezero_trackers.tensorboard]``. The backend packages are
optional extras; nothing here imports them until a tracker is constructed (see
:mod:`absolutezero_trackers.base`).
"""

__all__ = ["TRACKERS"]

#: tracker name -> ``module:class`` (the entry points in pyproject.toml)
TRACKERS = {
    "tensorboard": "absolutezero_trackers.tensorboard:TensorBoardTracker",
    "wandb": "absolutezero_trackers.wandb:WandbTracker",
    "mlflow": "absolutezero_trackers.mlflow:MlflowTracker",
    "trackio": "absolutezero_trackers.trackio:TrackioTracker",
}
