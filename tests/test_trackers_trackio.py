"""trackio tracker against the real library: logged locally, read back from trackio's own
SQLite storage (``trackio.Api`` and ``SQLiteStorage``).

trackio fixes its storage folder when it is first imported, so this file does not import
it at collection (the tracker imports it at run start, pointed at the run folder).
"""

from __future__ import annotations

import importlib.util
import sys

import pytest

if importlib.util.find_spec("trackio") is None:
    pytest.skip("needs the trackio extra: pip install -e '.[trackio]'", allow_module_level=True)

from test_trackers import STEPS, cut_metrics, drive_run  # noqa: E402

from absolutezero_trackers.trackio import TrackioTracker  # noqa: E402


@pytest.fixture(autouse=True)
def no_trackio_dir(monkeypatch):
    """No $TRACKIO_DIR, and whatever the tracker sets is removed after the test."""
    monkeypatch.setenv("TRACKIO_DIR", "unset")  # records "absent" for the undo ...
    monkeypatch.delenv("TRACKIO_DIR")  # ... then removes it


def logged(project: str, run: str, key: str) -> list[tuple[int, float]]:
    from trackio.sqlite_storage import SQLiteStorage

    return [(entry["step"], entry[key]) for entry in SQLiteStorage.get_logs(project, run) if key in entry]


def the_run(project: str, name: str):
    import trackio

    [run] = [run for run in trackio.Api().runs(project) if run.name == name]
    return run


def test_config_metrics_plots_and_status_are_written(tmp_path):
    first_import = "trackio" not in sys.modules
    run_dir = tmp_path / "try1"
    tracker = TrackioTracker(project="azr-one")
    drive_run(tracker, run_dir, status="stopped")
    import trackio

    assert tracker.storage_dir == trackio.utils.TRACKIO_DIR.resolve()
    if first_import:  # the usual case: the tracker chose trackio's folder
        assert tracker.storage_dir == (run_dir / "trackio").resolve()
    assert (tracker.storage_dir / "azr-one.db").is_file()
    assert logged("azr-one", "try1", "oversight/deception") == [(1, 0.0), (2, 2.0), (3, 1.0)]
    assert logged("azr-one", "try1", "overall/solve_rate") == [(1, 0.25), (2, 0.5), (3, 0.75)]
    [(step, image)] = logged("azr-one", "try1", "plots/solve_rate")
    assert step == 3 and image["_type"] == "trackio.image"
    assert (tracker.storage_dir / "media" / image["file_path"]).read_bytes().startswith(b"\x89PNG")
    run = the_run("azr-one", "try1")
    assert run.config["selfplay.propose_batch"] == 4 and run.config["trackers"] == '["tensorboard"]'
    [alert] = run.alerts()
    assert alert["title"] == "run stopped" and alert["level"] == "warn"


def test_a_resumed_run_continues_the_same_trackio_run(tmp_path):
    run_dir = tmp_path / "try1"
    drive_run(TrackioTracker(project="azr-two"), run_dir, status="interrupted")
    cut_metrics(run_dir, 2)
    drive_run(TrackioTracker(project="azr-two"), run_dir, steps={3: {**STEPS[3], "oversight/deception": 4.0},
                                                                  4: {**STEPS[3], "step": 4}})
    run = the_run("azr-two", "try1")  # one run, continued
    alerts = sorted(run.alerts(), key=lambda alert: alert["timestamp"])
    assert [a["title"] for a in alerts] == ["run interrupted", "run completed"]
    assert logged("azr-two", "try1", "oversight/deception")[-2:] == [(3, 4.0), (4, 1.0)]
