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
"""

from __future__ import annotations

import io
import re
from collections.abc import Mapping, Sequence
from pathlib import Path

from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

from absolutezero.atomic import atomic_write_bytes
from absolutezero.metrics import read_metrics

__all__ = ["PANELS", "plot_metrics", "write_plots"]

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
    "probe_accuracy": ("Held-out probe accuracy (greedy)", "correct answers", r"^probe/(.+)/accuracy$"),
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


def _render(title: str, ylabel: str, series: Mapping[str, tuple[list[int], list[float]]]) -> bytes:
    figure = Figure(figsize=(7.0, 4.0), dpi=100, layout="constrained")
    FigureCanvasAgg(figure)
    axes = figure.add_subplot()
    for label, (steps, values) in series.items():
        axes.plot(steps, values, marker="o" if len(steps) < 30 else None, markersize=3, label=label)
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
        atomic_write_bytes(path, _render(title, ylabel, _series(records, pattern)))
        written.append(path)
    return written


def write_plots(metrics_path: str | Path, out_dir: str | Path) -> list[Path]:
    """Read ``metrics_path`` (JSONL) and write the PNG panels into ``out_dir``.

    Returns:
        The paths written; see :func:`plot_metrics`.
    """
    return plot_metrics(read_metrics(metrics_path), out_dir)
