"""MLflow tracker against the real library: a local file store, read back with
``mlflow.tracking.MlflowClient``."""

from __future__ import annotations

import pytest

pytest.importorskip("mlflow", reason="needs the mlflow extra: pip install -e '.[mlflow]'")

from mlflow.tracking import MlflowClient  # noqa: E402
from test_trackers import STEPS, cut_metrics, drive_run, small_config  # noqa: E402

from absolutezero.config import load_config  # noqa: E402
from absolutezero_trackers.base import remembered_id  # noqa: E402
from absolutezero_trackers.mlflow import MlflowTracker  # noqa: E402


@pytest.fixture(autouse=True)
def file_store_allowed(monkeypatch):
    """The tracker sets MLFLOW_ALLOW_FILE_STORE for the process; undo it after each test."""
    monkeypatch.delenv("MLFLOW_ALLOW_FILE_STORE", raising=False)


def history(client: MlflowClient, run_id: str, key: str) -> list[tuple[int, float]]:
    return sorted((m.step, m.value) for m in client.get_metric_history(run_id, key))


def test_config_metrics_plots_and_status_are_written(tmp_path):
    run_dir = tmp_path / "try1"
    tracker = MlflowTracker()
    drive_run(tracker, run_dir, status="stopped")
    assert tracker.tracking_uri == (run_dir / "mlruns").resolve().as_uri()
    client = MlflowClient(tracking_uri=tracker.tracking_uri)
    run_id = remembered_id(run_dir, "mlflow")
    run = client.get_run(run_id)
    assert client.get_experiment(run.info.experiment_id).name == "absolutezero"
    assert run.info.run_name == "try1" and run.info.status == "KILLED"
    assert run.data.tags["absolutezero.status"] == "stopped"
    params = run.data.params
    assert params["selfplay.propose_batch"] == "4" and params["trackers"] == '["tensorboard"]'
    assert params["env_options.digits"] == "2" and params["resume"] == "None"
    assert history(client, run_id, "oversight/deception") == [(1, 0.0), (2, 2.0), (3, 1.0)]
    assert history(client, run_id, "overall/solve_rate") == [(1, 0.25), (2, 0.5), (3, 0.75)]
    assert "step" not in run.data.metrics
    assert [a.path for a in client.list_artifacts(run_id, "plots")] == ["plots/solve_rate.png"]
    plot = client.download_artifacts(run_id, "plots/solve_rate.png", str(tmp_path / "down"))
    assert open(plot, "rb").read() == (run_dir / "plots" / "solve_rate.png").read_bytes()
    config = client.download_artifacts(run_id, "config.yaml", str(tmp_path / "down"))
    assert "propose_batch: 4" in open(config).read()


def test_long_values_are_cut_to_the_param_limit_and_kept_whole_in_config_yaml(tmp_path):
    tracker = MlflowTracker()
    long_value = "x" * (tracker.max_value + 50)
    params = tracker.params(load_config([f"env_options={{prompt: {long_value}, 'odd@key': 1}}"]))
    assert len(params["env_options.prompt"]) == tracker.max_value and params["env_options.odd_key"] == "1"


def test_a_resumed_run_reopens_the_same_mlflow_run(tmp_path):
    run_dir = tmp_path / "try1"
    drive_run(MlflowTracker(), run_dir, status="interrupted")
    run_id = remembered_id(run_dir, "mlflow")
    cut_metrics(run_dir, 2)
    changed = small_config()
    changed.steps = 5
    changed.env_options.new_option = 1
    tracker = MlflowTracker()
    drive_run(tracker, run_dir, steps={3: {**STEPS[3], "oversight/deception": 4.0}}, config=changed)
    client = MlflowClient(tracking_uri=tracker.tracking_uri)
    assert remembered_id(run_dir, "mlflow") == run_id
    [run] = client.search_runs([client.get_run(run_id).info.experiment_id])
    assert run.info.run_id == run_id and run.info.status == "FINISHED"
    assert run.data.params["steps"] == "3"  # MLflow params cannot change ...
    assert run.data.params["env_options.new_option"] == "1"  # ... new ones are added
    config = client.download_artifacts(run_id, "config.yaml", str(tmp_path / "down"))
    assert "steps: 5" in open(config).read()  # ... and config.yaml is the current config
    assert (3, 4.0) in history(client, run_id, "oversight/deception")
