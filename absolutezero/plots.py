"""PNG curves of a run's ``metrics.jsonl``.

Figures are built with :class:`matplotlib.figure.Figure` and rendered through the Agg
canvas directly, never through ``pyplot``: no backend is selected and no global state is
touched, so importing this module (or plotting from a thread) cannot change how a user's
own matplotlib behaves.

One PNG per panel, written atomically (a reader never sees a half-written image):

    proposer_valid_rate.png   propose/<t>/valid_rate per task type
    solver_accuracy.png       solve/<t>/solve_rate per task type
    rewards.png               <role>/<t>/reward_mean for every role x task type
    buffer_sizes.png          buffer/<t>/size per task type
    learnable_rate.png        propose/<t>/learnable_rate per task type
    probe_accuracy.png        probe/<t>/accuracy, with its 95% interval as a band
    benchmarks.png            eval/<b>/pass@1

Per-step rates and rewards are means over a handful of samples and jump from step to
step, so those panels draw the raw points faintly and a trailing moving average
(:data:`SMOOTHING_WINDOW` steps) as the line to read.
"""

from __future__ import annotations

import io
import re
from collections.abc import Mapping, Sequence
from pathlib import Path

from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

from absolutezero.atomic import atomic_write_bytes
from absolutezero.intervals import moving_average
from absolutezero.metrics import read_metrics

__all__ = ["BANDS", "PANELS", "SMOOTHED", "SMOOTHING_WINDOW", "plot_metrics", "write_plots"]

#: file stem -> (title, y label, regex selecting metric names; group 1 is the legend label)
PANELS: dict[str, tuple[str, str, str]] = {
    "proposer_valid_rate": ("Proposer valid rate", "valid proposals", r"^propose/(.+)/valid_rate$"),
    "solver_accuracy": ("Solver accuracy (solve batch)", "correct answers", r"^solve/(.+)/solve_rate$"),
    "rewards": ("Mean reward per role x task type", "reward", r"^((?:propose|solve)/.+)/reward_mean$"),
    "buffer_sizes": ("Buffer sizes", "tasks", r"^buffer/(.+)/size$"),
    "benchmarks": ("Benchmark pass@1 (eval.every steps)", "pass@1", r"^eval/(.+)/pass@1$"),
    "learnable_rate": (
        "Valid proposals with 0 < p-bar < 1", "learnable share", r"^propose/(.+)/learnable_rate$"
    ),
    "probe_accuracy": ("Held-out probe accuracy (greedy, 95% interval)", "correct answers", r"^probe/(.+)/accuracy$"),
}
#: Panels whose series get a moving average next to the raw points.
SMOOTHED = frozenset({"proposer_valid_rate", "solver_accuracy", "rewards", "learnable_rate"})
SMOOTHING_WINDOW = 5
#: Panels drawn with an interval band: file stem -> (low, high) metric patterns.
BANDS: dict[str, tuple[str, str]] = {
    "probe_accuracy": (r"^probe/(.+)/accuracy_ci_low$", r"^probe/(.+)/accuracy_ci_high$"),
}


def _series(
    records: Sequence[Mapping[str, float]], pattern: str
) -> dict[str, tuple[list[int], list[float]]]:
    """label -> (steps, values) for every metric matching ``pattern`` (missing steps skipped)."""
    regex = re.compile(pattern)
    series: dict[str, tuple[list[int], list[float]]] = {}
    for record in records:
        for name, value in record.items():
            match = regex.match(name)
            if match is None:
                continue
            steps, values = series.setdefault(match.group(1), ([], []))
            steps.append(int(record["step"]))
            values.append(float(value))
    return dict(sorted(series.items()))


def _render(
    title: str,
    ylabel: str,
    series: Mapping[str, tuple[list[int], list[float]]],
    smooth: bool = False,
    bands: Mapping[str, tuple[list[int], list[float], list[float]]] | None = None,
) -> bytes:
    figure = Figure(figsize=(7.0, 4.0), dpi=100, layout="constrained")
    FigureCanvasAgg(figure)
    axes = figure.add_subplot()
    for label, (steps, values) in series.items():
        marker = "o" if len(steps) < 30 else None
        if smooth and len(steps) >= 3:
            (raw,) = axes.plot(steps, values, marker=marker, markersize=3, linewidth=0.8, alpha=0.35)
            axes.plot(steps, moving_average(values, SMOOTHING_WINDOW), color=raw.get_color(),
                      label=f"{label} ({SMOOTHING_WINDOW}-step mean)")
        else:
            (line,) = axes.plot(steps, values, marker=marker, markersize=3, label=label)
            band = (bands or {}).get(label)
            if band is not None:
                axes.fill_between(band[0], band[1], band[2], color=line.get_color(), alpha=0.15, linewidth=0)
    if not series:
        axes.text(0.5, 0.5, "no data yet", ha="center", va="center", transform=axes.transAxes)
    axes.set_title(title)
    axes.set_xlabel("step")
    axes.set_ylabel(ylabel)
    axes.grid(True, alpha=0.3)
    if series:
        axes.legend(fontsize="small")
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png")
    return buffer.getvalue()


def _bands(records: Sequence[Mapping[str, float]], stem: str) -> dict[str, tuple[list[int], list[float], list[float]]]:
    """label -> (steps, lows, highs) for the panel's interval band (steps with both bounds)."""
    if stem not in BANDS:
        return {}
    low_pattern, high_pattern = BANDS[stem]
    lows, highs = _series(records, low_pattern), _series(records, high_pattern)
    bands = {}
    for label, (steps, low) in lows.items():
        high = dict(zip(*highs.get(label, ([], []))))
        kept = [(step, value, high[step]) for step, value in zip(steps, low) if step in high]
        if kept:
            bands[label] = ([k[0] for k in kept], [k[1] for k in kept], [k[2] for k in kept])
    return bands


def plot_metrics(records: Sequence[Mapping[str, float]], out_dir: str | Path) -> list[Path]:
    """Write every panel of :data:`PANELS` for ``records`` into ``out_dir``.

    Returns:
        The paths of the PNG files written (one per panel, also for panels with no data,
        which show "no data yet" so a missing curve is visible rather than a missing file).
    """
    out = Path(out_dir)
    written: list[Path] = []
    for stem, (title, ylabel, pattern) in PANELS.items():
        path = out / f"{stem}.png"
        figure = _render(title, ylabel, _series(records, pattern), stem in SMOOTHED, _bands(records, stem))
        atomic_write_bytes(path, figure)
        written.append(path)
    return written


def write_plots(metrics_path: str | Path, out_dir: str | Path) -> list[Path]:
    """Read ``metrics_path`` (JSONL) and write the PNG panels into ``out_dir``.

    Returns:
        The paths written; see :func:`plot_metrics`.
    """
    return plot_metrics(read_metrics(metrics_path), out_dir)
