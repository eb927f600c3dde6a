"""``plots/oversight.png``: flagged responses per category per step, from ``metrics.jsonl``.

The core writes ``oversight/<category>`` into a step's metrics only when something was
flagged, so a quiet step has no column; here every step of the run is on the x axis and
a missing count is a zero, which is what makes a sudden burst of flags visible. Bars are
stacked per step (a response flagged in two categories counts in both). Like
:mod:`absolutezero.plots` it renders through the Agg canvas of a
:class:`matplotlib.figure.Figure`, never ``pyplot``, so no global matplotlib state changes,
and writes the file atomically.
"""

from __future__ import annotations

import io
from collections.abc import Mapping, Sequence
from pathlib import Path

from absolutezero.atomic import atomic_write_bytes
from absolutezero.metrics import read_metrics

__all__ = ["oversight_series", "render_oversight", "write_oversight_plot"]

_NOT_CATEGORIES = ("flagged", "dropped")


def oversight_series(records: Sequence[Mapping[str, float]]) -> tuple[list[int], dict[str, list[float]]]:
    """Steps, and category -> flagged responses at each step (0 where none)."""
    steps = [int(record["step"]) for record in records if "step" in record]
    names = sorted({
        name.split("/", 1)[1] for record in records for name in record
        if name.startswith("oversight/") and name.count("/") == 1 and name.split("/", 1)[1] not in _NOT_CATEGORIES
    })
    series = {name: [float(r.get(f"oversight/{name}", 0.0)) for r in records if "step" in r] for name in names}
    return steps, series


def render_oversight(steps: Sequence[int], series: Mapping[str, Sequence[float]]) -> bytes:
    """The PNG: stacked bars per step, or a "no flags" message."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    figure = Figure(figsize=(7.0, 4.0), dpi=100, layout="constrained")
    FigureCanvasAgg(figure)
    axes = figure.add_subplot()
    bottom = [0.0] * len(steps)
    for category, counts in series.items():
        axes.bar(steps, counts, bottom=bottom, label=category, width=0.8)
        bottom = [b + c for b, c in zip(bottom, counts)]
    if not any(bottom):
        axes.text(0.5, 0.5, "no flags" if steps else "no steps yet", ha="center", va="center",
                  transform=axes.transAxes)
    axes.set_title("Oversight: flagged responses per category")
    axes.set_xlabel("step")
    axes.set_ylabel("flagged responses")
    axes.grid(True, axis="y", alpha=0.3)
    if series and any(bottom):
        axes.legend(fontsize="small")
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png")
    return buffer.getvalue()


def write_oversight_plot(metrics_path: str | Path, out_path: str | Path) -> Path:
    """Read ``metrics_path`` (JSONL) and write the oversight PNG to ``out_path``.

    Returns:
        ``out_path`` (written also when nothing was flagged: it then says so).
    """
    steps, series = oversight_series(read_metrics(metrics_path))
    path = Path(out_path)
    atomic_write_bytes(path, render_oversight(steps, series))
    return path
