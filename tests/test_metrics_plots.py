"""metrics.jsonl writing/reading/truncation and the PNG curves."""

from __future__ import annotations

import json
import math

import pytest

from absolutezero.metrics import MetricsWriter, read_metrics, sample_metrics, truncate_metrics
from absolutezero.plots import PANELS, _series, plot_metrics, write_plots

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


def test_writer_appends_one_flushed_json_object_per_step(tmp_path):
    path = tmp_path / "run" / "metrics.jsonl"
    with MetricsWriter(path) as writer:
        writer.write(1, {"propose/a/valid_rate": 0.5, "buffer/a/size": 3})
        # readable before close: every line is flushed
        assert read_metrics(path) == [{"step": 1, "propose/a/valid_rate": 0.5, "buffer/a/size": 3}]
        writer.write(2, {"propose/a/valid_rate": 1.0})
    lines = path.read_text().splitlines()
    assert [json.loads(line)["step"] for line in lines] == [1, 2]
    with MetricsWriter(path) as writer:  # a resumed run appends
        writer.write(3, {})
    assert [r["step"] for r in read_metrics(path)] == [1, 2, 3]


@pytest.mark.parametrize("value", [math.nan, math.inf, "0.5", None])
def test_writer_rejects_values_json_cannot_hold_honestly(tmp_path, value):
    with MetricsWriter(tmp_path / "m.jsonl") as writer:
        with pytest.raises((ValueError, TypeError), match="x/y"):
            writer.write(1, {"x/y": value})


def test_closed_writer_refuses(tmp_path):
    writer = MetricsWriter(tmp_path / "m.jsonl")
    writer.close()
    writer.close()
    with pytest.raises(RuntimeError, match="closed"):
        writer.write(1, {})


def test_reader_skips_a_torn_last_line_but_not_a_corrupt_middle(tmp_path):
    path = tmp_path / "m.jsonl"
    path.write_text('{"step": 1, "a": 1}\n{"step": 2, "a"')
    assert read_metrics(path) == [{"step": 1, "a": 1}]
    path.write_text('{"step": 1}\nnot json\n{"step": 3}\n')
    with pytest.raises(ValueError, match=r"m.jsonl:2"):
        read_metrics(path)
    assert read_metrics(tmp_path / "missing.jsonl") == []


def test_truncate_drops_steps_after_the_checkpoint_and_torn_lines(tmp_path):
    path = tmp_path / "m.jsonl"
    path.write_text("".join(json.dumps({"step": s}) + "\n" for s in range(5)) + '{"step": 5')
    assert truncate_metrics(path, 2) == 2
    assert [r["step"] for r in read_metrics(path)] == [0, 1, 2]
    assert path.read_text().endswith("\n")
    assert truncate_metrics(path, 10) == 0
    assert truncate_metrics(tmp_path / "none.jsonl", 1) == 0


def test_sample_metrics_stats_and_empty_group():
    metrics = sample_metrics("solve/x", [1.0, -1.0, 0.0, 0.0], [4, 8, 2, 2], [False, True, False, False])
    assert metrics["solve/x/advantage_mean"] == 0.0
    assert metrics["solve/x/advantage_std"] == pytest.approx(math.sqrt(0.5))
    assert metrics["solve/x/completion_len_mean"] == 4.0
    assert metrics["solve/x/completion_len_max"] == 8.0
    assert metrics["solve/x/truncated_rate"] == 0.25
    assert sample_metrics("solve/x", [], [], []) == {}


def _records():
    return [
        {"step": 0, "buffer/deduction/size": 1, "buffer/abduction/size": 1},
        {"step": 1, "propose/deduction/valid_rate": 0.25, "solve/deduction/solve_rate": 0.5,
         "propose/deduction/reward_mean": -0.5, "solve/deduction/reward_mean": 0.5,
         "buffer/deduction/size": 2, "buffer/abduction/size": 1, "overall/valid_rate": 0.25},
        {"step": 2, "propose/deduction/valid_rate": 0.75, "propose/abduction/valid_rate": 0.5,
         "buffer/deduction/size": 4, "buffer/abduction/size": 2,
         "eval/cruxeval-o/pass@1": 0.125, "eval/cruxeval-o/format_error_rate": 0.5},
    ]


def test_series_pick_the_right_curves():
    records = _records()
    assert _series(records, PANELS["proposer_valid_rate"][2]) == {
        "abduction": ([2], [0.5]),
        "deduction": ([1, 2], [0.25, 0.75]),
    }
    rewards = _series(records, PANELS["rewards"][2])
    assert set(rewards) == {"propose/deduction", "solve/deduction"}
    assert _series(records, PANELS["buffer_sizes"][2])["deduction"] == ([0, 1, 2], [1.0, 2.0, 4.0])
    assert _series(records, PANELS["benchmarks"][2]) == {"cruxeval-o": ([2], [0.125])}


def test_plots_are_written_as_png_files(tmp_path):
    metrics = tmp_path / "metrics.jsonl"
    with MetricsWriter(metrics) as writer:
        for record in _records():
            writer.write(record["step"], record)
    written = write_plots(metrics, tmp_path / "plots")
    assert sorted(p.name for p in written) == sorted(f"{stem}.png" for stem in PANELS)
    for path in written:
        data = path.read_bytes()
        assert data.startswith(PNG_MAGIC) and len(data) > 2000
    # panels without data still produce a (labelled) image rather than a missing file
    empty = plot_metrics([], tmp_path / "empty")
    assert all(p.read_bytes().startswith(PNG_MAGIC) for p in empty)


def test_plotting_does_not_touch_pyplot_state(tmp_path):
    import sys

    import absolutezero.plots  # noqa: F401

    if "matplotlib.pyplot" in sys.modules:  # imported by something else in this session
        pytest.skip("pyplot already imported elsewhere")
    plot_metrics(_records(), tmp_path)
    assert "matplotlib.pyplot" not in sys.modules


def test_noisy_panels_get_a_moving_average_and_the_probe_a_band(tmp_path, monkeypatch):
    from absolutezero.plots import SMOOTHED, SMOOTHING_WINDOW, _bands

    records = [{"step": step, "propose/deduction/valid_rate": float(step % 2),
                "probe/deduction/accuracy": 0.5, "probe/deduction/accuracy_ci_low": 0.3,
                "probe/deduction/accuracy_ci_high": 0.7} for step in range(1, 9)]
    assert "proposer_valid_rate" in SMOOTHED and "buffer_sizes" not in SMOOTHED and SMOOTHING_WINDOW >= 3
    band = _bands(records, "probe_accuracy")
    assert band == {"deduction": (list(range(1, 9)), [0.3] * 8, [0.7] * 8)}
    assert _bands(records, "rewards") == {}
    from matplotlib.figure import Figure

    drawn = []
    original = Figure.add_subplot

    def spy(self, *args, **kwargs):
        axes = original(self, *args, **kwargs)
        drawn.append(axes)
        return axes

    monkeypatch.setattr(Figure, "add_subplot", spy)
    plot_metrics(records, tmp_path)
    by_title = {axes.get_title(): axes for axes in drawn}
    valid = by_title["Proposer valid rate"]
    labels = [line.get_label() for line in valid.get_lines()]
    assert f"deduction ({SMOOTHING_WINDOW}-step mean)" in labels and len(valid.get_lines()) == 2
    probe = by_title["Held-out probe accuracy (greedy, 95% interval)"]
    assert len(probe.collections) == 1  # the interval band
