"""Experiment trackers, the shared part: config flattening, errors, wiring into a run.

Nothing here needs a tracker's package: missing packages are simulated with
``sys.modules[name] = None`` (which makes ``import name`` fail), and the wiring is checked
with a recording tracker registered by a throwaway distribution. The per-tracker files
(``test_trackers_<name>.py``) drive the real libraries with :func:`drive_run` and read
back what they wrote.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest
from omegaconf import DictConfig, OmegaConf

from absolutezero import registry
from absolutezero.config import ConfigError, load_config
from absolutezero.metrics import MetricsWriter
from absolutezero.run import main
from absolutezero_trackers import TRACKERS
from absolutezero_trackers.base import (
    IDS_FILE,
    ModulePlugin,
    Tracker,
    flatten,
    last_logged_step,
    plot_files,
    remember_id,
    remembered_id,
    scalars,
)

#: what drive_run logs: step -> metrics (as MetricsWriter returns them, "step" included)
STEPS = {
    1: {"step": 1, "overall/solve_rate": 0.25, "oversight/deception": 0.0, "oversight/flagged": 1.0},
    2: {"step": 2, "overall/solve_rate": 0.5, "oversight/deception": 2.0, "oversight/flagged": 3.0},
    3: {"step": 3, "overall/solve_rate": 0.75, "oversight/deception": 1.0, "oversight/flagged": 1.0},
}


def small_config(name: str = "try1") -> DictConfig:
    """A real resolved run config, small enough to read back."""
    return load_config([f"name={name}", "env=arith", "steps=3", "trackers=[tensorboard]",
                        "env_options={digits: 2}"])


def write_png(path: Path) -> Path:
    """A real (tiny) PNG written by matplotlib, as the run's plots are."""
    from matplotlib.figure import Figure

    path.parent.mkdir(parents=True, exist_ok=True)
    figure = Figure(figsize=(1.0, 0.5), dpi=40)
    figure.add_subplot().plot([0, 1, 2], [0.2, 0.5, 0.4])
    figure.savefig(path)
    return path


def drive_run(tracker, run_dir: Path, steps=STEPS, status: str = "completed", config=None) -> None:
    """Call the three hooks as a run does: start, the step metrics, a plot, end."""
    run_dir.mkdir(parents=True, exist_ok=True)
    write_png(run_dir / "plots" / "solve_rate.png")
    tracker.absolutezero_run_start(config=config if config is not None else small_config(), run_dir=str(run_dir))
    with MetricsWriter(run_dir / "metrics.jsonl") as writer:
        for step, metrics in steps.items():
            record = writer.write(step, metrics)
            tracker.absolutezero_step_metrics(step=step, metrics=record)
    tracker.absolutezero_run_end(run_dir=str(run_dir), status=status)


def cut_metrics(run_dir: Path, last: int) -> None:
    """What a resume does before the run start hook: drop the steps after the checkpoint."""
    from absolutezero.metrics import truncate_metrics

    truncate_metrics(run_dir / "metrics.jsonl", last)


# --- shared logic ---------------------------------------------------------------------


def test_flatten_gives_every_config_key_one_value():
    flat = flatten(small_config())
    assert flat["name"] == "try1" and flat["steps"] == 3
    assert flat["selfplay.propose_batch"] == load_config().selfplay.propose_batch
    assert flat["trackers"] == '["tensorboard"]'  # lists as JSON text
    assert flat["env_options.digits"] == 2 and flat["agent_options"] == "{}"
    assert flat["resume"] is None
    assert all(not isinstance(v, (dict, list)) for v in flat.values())
    assert flatten({"a": {"b": {"c": 1}}, "d": [1, {"e": 2}]}) == {"a.b.c": 1, "d": '[1, {"e": 2}]'}


def test_scalars_drop_the_step_and_keep_oversight_counts():
    assert scalars(STEPS[2]) == {"overall/solve_rate": 0.5, "oversight/deception": 2.0, "oversight/flagged": 3.0}
    assert scalars({"x": float("nan"), "y": "text", "z": True}) == {"z": 1.0}


def test_plots_resume_step_and_remembered_ids(tmp_path):
    assert plot_files(tmp_path) == [] and last_logged_step(tmp_path) is None
    write_png(tmp_path / "plots" / "b.png")
    write_png(tmp_path / "plots" / "a.png")
    (tmp_path / "plots" / "notes.txt").write_text("x")
    assert [p.name for p in plot_files(tmp_path)] == ["a.png", "b.png"]
    with MetricsWriter(tmp_path / "metrics.jsonl") as writer:
        for step in (0, 1, 2):
            writer.write(step, {"a": 1.0})
    assert last_logged_step(tmp_path) == 2
    assert remembered_id(tmp_path, "wandb") is None
    remember_id(tmp_path, "wandb", "abc")
    remember_id(tmp_path, "mlflow", "123")
    assert remembered_id(tmp_path, "wandb") == "abc" and remembered_id(tmp_path, "mlflow") == "123"
    assert json.loads((tmp_path / IDS_FILE).read_text()) == {"mlflow": "123", "wandb": "abc"}


def test_every_tracker_is_registered():
    assert registry.tracker_names() == sorted(TRACKERS)
    for name, value in TRACKERS.items():
        assert registry.entries("tracker")[name].value == value


@pytest.mark.parametrize("name", sorted(TRACKERS))
def test_a_missing_package_names_the_extra(name, monkeypatch):
    monkeypatch.setitem(sys.modules, name, None)  # `import <name>` now fails
    with pytest.raises(ConfigError) as caught:
        registry.make_tracker(name, {})
    assert f"tracker {name!r} needs the {name} package: pip install -e '.[{name}]'" in str(caught.value)


def test_a_missing_package_stops_a_run_with_exit_2(monkeypatch, tmp_path, capsys):
    monkeypatch.setenv("ABSOLUTEZERO_DISABLE_PLUGIN_AUTOLOAD", "1")
    monkeypatch.setitem(sys.modules, "mlflow", None)
    assert main([f"out={tmp_path}", "env=arith", "trackers=[mlflow]"]) == 2
    err = capsys.readouterr().err
    assert "needs the mlflow package: pip install -e '.[mlflow]'" in err and "Traceback" not in err
    assert list(tmp_path.iterdir()) == []  # nothing started


def test_an_unknown_tracker_is_reported_with_a_suggestion(monkeypatch, tmp_path, capsys):
    monkeypatch.setenv("ABSOLUTEZERO_DISABLE_PLUGIN_AUTOLOAD", "1")
    with pytest.raises(registry.UnknownNameError, match="unknown tracker 'tensorbord'; did you mean 'tensorboard'"):
        registry.make_tracker("tensorbord")
    assert main([f"out={tmp_path}", "env=arith", "trackers=[tensorbord]"]) == 2
    assert "unknown tracker 'tensorbord'; did you mean 'tensorboard'?" in capsys.readouterr().err


def test_an_option_typo_is_a_config_error_before_anything_is_imported(monkeypatch, tmp_path, capsys):
    monkeypatch.setitem(sys.modules, "tensorboard", None)  # the check needs no package
    with pytest.raises(ConfigError, match="has no option 'logdir'; did you mean 'log_dir'"):
        registry.make_tracker("tensorboard", {"logdir": "x"})
    monkeypatch.setenv("ABSOLUTEZERO_DISABLE_PLUGIN_AUTOLOAD", "1")
    assert main([f"out={tmp_path}", "env=arith", "trackers=[wandb]", "plugin_options={wandb: {projct: azr}}"]) == 2
    assert "tracker 'wandb' has no option 'plugin_options.wandb.projct'; did you mean 'project'?" in capsys.readouterr().err


def test_plugin_options_take_dotted_overrides():
    config = load_config(["trackers=[wandb]", "plugin_options.wandb.project=azr", "plugin_options.wandb.tags=[a,b]"])
    assert OmegaConf.to_container(config.plugin_options) == {"wandb": {"project": "azr", "tags": ["a", "b"]}}


RECORDER = """
from absolutezero_trackers.base import Tracker

EVENTS = []

class Recorder(Tracker):
    name = "recorder"

    def __init__(self, tag: str = "none") -> None:
        super().__init__()
        self.tag = tag

    def start(self, config, run_dir, resumed_after):
        EVENTS.append(("start", self.tag, config.name, resumed_after))

    def log(self, step, values):
        EVENTS.append(("log", step, values))

    def finish(self, plots, status):
        EVENTS.append(("finish", [p.name for p in plots], status))
"""


@pytest.fixture
def recorder(tmp_path, monkeypatch):
    """A tracker 'recorder' registered by a throwaway distribution."""
    from test_registry import install_distribution

    root = install_distribution(tmp_path / "site", "recorder-tracker", "0.1",
                                {"absolutezero.trackers": {"recorder": "recorder_mod:Recorder"}},
                                {"recorder_mod": RECORDER})
    monkeypatch.syspath_prepend(str(root))
    monkeypatch.setenv("ABSOLUTEZERO_DISABLE_PLUGIN_AUTOLOAD", "1")
    import recorder_mod

    yield recorder_mod
    sys.modules.pop("recorder_mod", None)


def test_build_registers_each_tracker_with_its_options(recorder, monkeypatch, tmp_path):
    import absolutezero.run as run

    monkeypatch.setattr(registry, "make_environment", lambda name, options: _Closable())
    monkeypatch.setattr(registry, "make_agent", lambda name, options: _Closable())
    config = load_config(["env=arith", "name=r1", "trackers=[recorder,recorder]", "plugin_options={recorder: {tag: x}}"])
    pm, _env, _agent = run._build(config)
    tracker = pm.get_plugin("tracker:recorder")
    assert isinstance(tracker, recorder.Recorder) and tracker.tag == "x"
    assert sum(isinstance(p, recorder.Recorder) for p in pm.get_plugins()) == 1  # named twice, logged once
    drive_run(pm.hook, tmp_path / "r1", config=config)
    assert recorder.EVENTS[0] == ("start", "x", "r1", None)
    assert [e[1] for e in recorder.EVENTS[1:4]] == [1, 2, 3]
    assert recorder.EVENTS[2][2]["oversight/deception"] == 2.0 and "step" not in recorder.EVENTS[2][2]
    assert recorder.EVENTS[-1] == ("finish", ["solve_rate.png"], "completed")


def test_hooks_outside_a_started_run_do_nothing(recorder, tmp_path):
    tracker = recorder.Recorder()
    tracker.absolutezero_step_metrics(step=1, metrics={"a": 1.0})
    tracker.absolutezero_run_end(run_dir=str(tmp_path), status="failed")
    assert recorder.EVENTS == []
    drive_run(tracker, tmp_path)
    tracker.absolutezero_run_end(run_dir=str(tmp_path), status="failed")  # a second end: ignored
    assert [e[0] for e in recorder.EVENTS] == ["start", "log", "log", "log", "finish"]


def test_a_resumed_start_knows_the_last_step(recorder, tmp_path):
    drive_run(recorder.Recorder(), tmp_path)
    cut_metrics(tmp_path, 2)
    recorder.EVENTS.clear()
    drive_run(recorder.Recorder(), tmp_path, steps={3: STEPS[3]})
    assert recorder.EVENTS[0][3] == 2 and recorder.EVENTS[1][1] == 3


def test_a_module_plugin_builds_its_tracker_at_run_start(recorder, tmp_path):
    plugin = ModulePlugin(recorder.Recorder)
    drive_run(plugin, tmp_path, config=load_config(["name=m1", "plugin_options={recorder: {tag: y}}"]))
    assert recorder.EVENTS[0] == ("start", "y", "m1", None) and recorder.EVENTS[-1][2] == "completed"
    assert plugin.tracker is None
    with pytest.raises(ConfigError, match="tracker 'recorder' has no option 'tags'"):
        plugin.absolutezero_run_start(config=load_config(["plugin_options={recorder: {tags: y}}"]), run_dir=str(tmp_path))


def test_once_started_a_failing_backend_warns_instead_of_ending_the_run(recorder, tmp_path, caplog):
    class Flaky(recorder.Recorder):
        def log(self, step, values):
            if step == 2:
                raise OSError("disk full")
            super().log(step, values)

        def finish(self, plots, status):
            raise RuntimeError("server gone")

    tracker = Flaky()
    with caplog.at_level("WARNING", logger="absolutezero.trackers"):
        drive_run(tracker, tmp_path)
    assert [e[1] for e in recorder.EVENTS if e[0] == "log"] == [1, 3]
    assert "tracker 'recorder' could not log step 2: OSError: disk full" in caplog.text
    assert "tracker 'recorder' could not finish cleanly" in caplog.text and tracker.run_dir is None


def test_a_failing_start_stops_the_run_and_leaves_nothing_to_end(recorder, tmp_path):
    class Unreachable(recorder.Recorder):
        def start(self, config, run_dir, resumed_after):
            raise ConnectionError("no server")

    tracker = Unreachable()
    with pytest.raises(ConnectionError):
        tracker.absolutezero_run_start(config=small_config(), run_dir=str(tmp_path))
    tracker.absolutezero_step_metrics(step=1, metrics={"a": 1.0})
    tracker.absolutezero_run_end(run_dir=str(tmp_path), status="failed")
    assert recorder.EVENTS == []


class _Closable:
    def close(self) -> None:
        pass


def test_tracker_base_requires_the_three_methods():
    tracker = Tracker()
    with pytest.raises(NotImplementedError):
        tracker.start(small_config(), Path("."), None)
