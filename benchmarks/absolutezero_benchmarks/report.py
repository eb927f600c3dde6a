"""Reporting benchmark runs: a terminal table, a JSON results file, per-problem JSONL.

Files are written atomically (temp file + rename) so that an interrupted evaluation never
leaves a half-written results file that a before/after comparison would then trust.
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from absolutezero.atomic import atomic_write_text

from absolutezero_benchmarks.harness import BenchmarkResult

__all__ = ["RESULTS_FILE", "format_table", "records_file", "write_records", "write_results"]

#: Name of the aggregate results file inside the output folder.
RESULTS_FILE = "results.json"


def records_file(out_dir: str | Path, benchmark: str) -> Path:
    """Path of the per-problem records of ``benchmark`` inside ``out_dir``."""
    return Path(out_dir) / f"{benchmark}.records.jsonl"


def _percent(value: float | None) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "-"
    return f"{100.0 * value:.1f}%"


def _flat(results: Sequence[Any]) -> list[BenchmarkResult]:
    """The benchmark results, a group's members in its place (see :mod:`.groups`)."""
    out: list[BenchmarkResult] = []
    for result in results:
        out.extend(getattr(result, "members", None) or [result])
    return out


def format_table(results: Sequence[BenchmarkResult]) -> str:
    """A fixed-width text table, one row per result.

    Columns: benchmark, model, n problems (scored; ``+s skipped`` when some gold could
    not be canonicalised), pass@1, pass@k (``-`` without sampling), format-error rate,
    seconds. A group's members get a row each, and the group's averages (``Code Avg``,
    ``Math Avg``, ``Total``) a line under the table.

    Returns:
        The table as a string without a trailing newline.
    """
    header = ["benchmark", "model", "n", "pass@1", "pass@k", "format err", "seconds"]
    rows = [header]
    for result in _flat(results):
        n = str(result.n_problems) + (f" (+{len(result.skipped)} skipped)" if result.skipped else "")
        pass_k = f"{_percent(result.pass_at_k)} (k={result.k})" if result.pass_at_k is not None else "-"
        rows.append(
            [
                result.benchmark,
                result.model or "-",
                n,
                _percent(result.pass_at_1) + ("" if result.greedy else " (sampled)"),
                pass_k,
                _percent(result.format_error_rate),
                f"{result.seconds:.1f}",
            ]
        )
    widths = [max(len(row[i]) for row in rows) for i in range(len(header))]
    lines = ["  ".join(cell.ljust(width) for cell, width in zip(row, widths)).rstrip() for row in rows]
    lines.insert(1, "  ".join("-" * width for width in widths))
    for result in results:
        averages = getattr(result, "averages", None)
        if averages is not None:
            shown = "  ".join(f"{label}: {_percent(value)}" for label, value in averages().items())
            lines.append(f"{result.benchmark}: {shown}")
    return "\n".join(lines)


def write_records(out_dir: str | Path, result: BenchmarkResult) -> Path:
    """Write one JSON line per scored problem (id, prompt, responses, verdicts, correct).

    Returns:
        The path written (:func:`records_file`).
    """
    path = records_file(out_dir, result.benchmark)
    lines = [json.dumps(record.to_json(), ensure_ascii=False) for record in result.records]
    atomic_write_text(path, "".join(line + "\n" for line in lines))
    return path


def write_results(
    out_dir: str | Path,
    results: Sequence[BenchmarkResult],
    settings: Mapping[str, Any] | None = None,
) -> Path:
    """Write ``results.json`` (figures + settings per benchmark) and the records files.

    ``settings`` (model, limit, seed, k, samples, data path, ...) is stored with each
    benchmark's figures so a results file says how it was produced. Benchmarks already in
    an existing ``results.json`` of ``out_dir`` are kept (one file can collect CruxEval-O
    and CruxEval-I from separate calls); a benchmark run again is replaced. A group
    (:mod:`.groups`) writes each member's figures and records, and its own averages
    under the group's name. NaN figures
    are written as ``null`` to keep the file strict JSON.

    Returns:
        The path of ``results.json``.

    Raises:
        ValueError: an existing ``results.json`` is not a results file (it is not
            overwritten).
    """
    out = Path(out_dir)
    path = out / RESULTS_FILE
    benchmarks: dict[str, Any] = {}
    if path.is_file():
        try:
            previous = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, UnicodeDecodeError, json.JSONDecodeError) as error:
            raise ValueError(f"{path} exists but is not readable JSON ({error}); choose another out dir") from None
        if not isinstance(previous, dict) or not isinstance(previous.get("benchmarks"), dict):
            raise ValueError(f"{path} exists but is not a benchmark results file; choose another out dir")
        benchmarks.update(previous["benchmarks"])
    for result in _flat(results):
        summary = result.summary()
        summary["records"] = write_records(out, result).name
        summary["settings"] = dict(settings or {})
        benchmarks[result.benchmark] = summary
    for result in results:
        if getattr(result, "members", None):  # a group: its averages, next to its members
            benchmarks[result.benchmark] = {**result.summary(), "settings": dict(settings or {})}
    payload = {"format": "absolutezero.benchmark-results", "version": 1, "benchmarks": benchmarks}
    atomic_write_text(path, json.dumps(_strict(payload), indent=2, ensure_ascii=False) + "\n")
    return path


def _strict(value: Any) -> Any:
    """Replace float NaN/inf (not valid JSON) with None, recursively."""
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, Mapping):
        return {str(key): _strict(item) for key, item in value.items()}
    if isinstance(value, (list, tuple)):
        return [_strict(item) for item in value]
    return value
