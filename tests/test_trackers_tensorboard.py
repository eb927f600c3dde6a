"""TensorBoard tracker against the real library: written, then read back with TensorBoard's
own ``EventAccumulator``."""

from __future__ import annotations

from pathlib import Path

import pytest

pytest.importorskip("tensorboard", reason="needs the tensorboard extra: pip install -e '.[tensorboard]'")

from tensorboard.backend.event_processing.event_accumulator import EventAccumulator  # noqa: E402
from tensorboard.plugins.hparams import plugin_data_pb2  # noqa: E402
from test_trackers import STEPS, cut_metrics, drive_run  # noqa: E402

from absolutezero.config import load_config  # noqa: E402
from absolutezero.plugins import get_plugin_manager  # noqa: E402
from absolutezero_trackers.tensorboard import TensorBoardTracker  # noqa: E402


def read(folder: Path) -> EventAccumulator:
    events = EventAccumulator(str(folder), size_guidance={"scalars": 0, "images": 0, "tensors": 0})
    events.Reload()
    return events


def series(events: EventAccumulator, tag: str) -> list[tuple[int, float]]:
    return [(e.step, e.value) for e in events.Scalars(tag)]


def text(events: EventAccumulator, tag: str) -> str:
    return events.Tensors(f"{tag}/text_summary")[-1].tensor_proto.string_val[0].decode()


def test_config_metrics_plots_and_status_are_written(tmp_path):
    run_dir = tmp_path / "try1"
    drive_run(TensorBoardTracker(), run_dir, status="stopped")
    events = read(run_dir / "tensorboard")
    assert series(events, "oversight/deception") == [(1, 0.0), (2, 2.0), (3, 1.0)]
    assert series(events, "overall/solve_rate") == [(1, 0.25), (2, 0.5), (3, 0.75)]
    assert "step" not in events.Tags()["scalars"]
    [image] = events.Images("plots/solve_rate")
    assert (image.step, image.width, image.height) == (3, 40, 20)
    assert image.encoded_image_string.startswith(b"\x89PNG")
    assert "propose_batch: 4" in text(events, "config") and text(events, "status") == "stopped"
    content = events.PluginTagToContent("hparams")["_hparams_/session_start_info"]
    hparams = plugin_data_pb2.HParamsPluginData.FromString(content).session_start_info.hparams
    assert hparams["name"].string_value == "try1" and hparams["steps"].number_value == 3
    assert hparams["selfplay.propose_batch"].number_value == 4 and hparams["resume"].string_value == "None"


def test_a_resumed_run_continues_and_hides_what_a_crash_logged_after_the_checkpoint(tmp_path):
    run_dir = tmp_path / "try1"
    drive_run(TensorBoardTracker(), run_dir, status="interrupted")  # steps 1-3 logged ...
    cut_metrics(run_dir, 2)  # ... but the checkpoint holds step 2
    again = {3: {**STEPS[3], "oversight/deception": 5.0}, 4: {**STEPS[3], "step": 4, "oversight/deception": 6.0}}
    drive_run(TensorBoardTracker(), run_dir, steps=again)
    assert len(list((run_dir / "tensorboard").glob("events.out.tfevents.*"))) == 2
    assert series(read(run_dir / "tensorboard"), "oversight/deception") == [(1, 0.0), (2, 2.0), (3, 5.0), (4, 6.0)]


def test_as_a_plugin_module_with_options_from_the_config(tmp_path):
    pm = get_plugin_manager(["absolutezero_trackers.tensorboard"])
    config = load_config(["name=p1", f"plugin_options={{tensorboard: {{log_dir: '{tmp_path / 'tb'}'}}}}"])
    drive_run(pm.hook, tmp_path / "p1", config=config)
    assert series(read(tmp_path / "tb"), "oversight/deception")[-1] == (3, 1.0)
    assert not (tmp_path / "p1" / "tensorboard").exists()


def test_a_real_run_logs_its_step_metrics(tmp_path, tiny_model_dir, monkeypatch, capsys):
    pytest.importorskip("absolutezero_policy.agent")
    from absolutezero.metrics import read_metrics
    from absolutezero.run import main

    monkeypatch.setenv("ABSOLUTEZERO_DISABLE_PLUGIN_AUTOLOAD", "1")
    code = main([f"out={tmp_path}", "name=tb", "env=arith", f"agent_options.model={tiny_model_dir}", "steps=1", "progress=false",
                 "agent_options.max_new_tokens=4", "selfplay.propose_batch=1", "selfplay.solve_batch=1",
                 "selfplay.seed_size=0", "probe.every=0", "agent_options.autocast_bf16=false", "trackers=[tensorboard]"])
    assert code == 0, capsys.readouterr().err
    events = read(tmp_path / "tb" / "tensorboard")
    records = read_metrics(tmp_path / "tb" / "metrics.jsonl")
    assert [r["step"] for r in records] == [0, 1]
    assert series(events, "time/step") == [(1, pytest.approx(records[1]["time/step"]))]
    assert {f"plots/{p.stem}" for p in (tmp_path / "tb" / "plots").glob("*.png")} <= set(events.Tags()["images"])
    assert text(events, "status") == "completed"
