"""Per-step metrics: naming, summaries and the ``metrics.jsonl`` file.

Every self-play step produces one flat ``{name: float}`` mapping; :class:`MetricsWriter`
appends it as one JSON object per line (flushed and fsync'd, so a crash loses at most the
line being written) and plugins receive the same mapping through
``absolutezero_step_metrics``. Flat names keep the file trivially loadable (pandas,
``jq``) and make every curve addressable by one string.

Names (``<t>`` is a task type; a key is only present when its value is defined, e.g. no
``solve/<t>/...`` keys for a task type with an empty buffer, and no
``propose/<t>/learnability_solve_rate`` when no proposal was valid)::

    step                                  the step just finished (1-based)
    propose/<t>/reward_mean, reward_std   proposer reward (plugin terms included)
    propose/<t>/count, degenerate         samples in the TRR++ group; 1.0 if all rewards equal
    propose/<t>/valid_rate                share of proposals accepted (env + plugin filters)
    propose/<t>/format_ok_rate            share of proposals that parsed
    propose/<t>/new_rate                  share of proposals that were valid and new to the buffer
    propose/<t>/learnable_rate            share of valid proposals with 0 < p̄ < 1
    propose/<t>/learnability_solve_rate   mean p̄ over valid proposals
    solve/<t>/reward_mean, reward_std, count, degenerate
    solve/<t>/solve_rate                  share of correct solve-batch answers (solver accuracy)
    solve/<t>/format_ok_rate              share of solve-batch answers that parsed
    <role>/<t>/advantage_mean, advantage_std
    <role>/<t>/completion_len_mean, completion_len_max, truncated_rate
    buffer/<t>/size                       entries after the step
    time/generation, time/validation, time/verification, time/update, time/step   seconds
    tokens/generated, tokens/trained      completion tokens sampled / tokens in the update
    train/<name>                          whatever ``Agent.update`` returned
    eval/<benchmark>/<name>               benchmark results on evaluation steps (run.py)
    oversight/<category>, oversight/flagged, oversight/flagged/<role>, oversight/dropped
                                          reviewing plugins' flags (absolutezero.review), when any
    <plugin>/<name>                       what plugins add (hook ``absolutezero_extra_metrics``)

The step's numbers are put together by :mod:`absolutezero.step_metrics`.
"""

from __future__ import annotations

import json
import math
import os
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any, TextIO

import numpy as np

__all__ = [
    "MetricsWriter",
    "group_prefix",
    "mean_or_none",
    "proposer_metrics",
    "read_metrics",
    "sample_metrics",
    "solver_metrics",
    "truncate_metrics",
]


def group_prefix(role: str, task_type: str) -> str:
    """``"<role>/<task_type>"``: the prefix of every per-group metric name."""
    return f"{role}/{task_type}"


def mean_or_none(values: Iterable[float]) -> float | None:
    """The mean of ``values``, or ``None`` for an empty iterable (undefined, not 0)."""
    items = [float(value) for value in values]
    return sum(items) / len(items) if items else None


def sample_metrics(
    prefix: str,
    advantages: Sequence[float],
    completion_lengths: Sequence[int],
    truncated: Sequence[bool],
) -> dict[str, float]:
    """Advantage and completion-length statistics of one (role, task type) group.

    Returns:
        ``{prefix/advantage_mean, prefix/advantage_std, prefix/completion_len_mean,
        prefix/completion_len_max, prefix/truncated_rate}``, or an empty dict when the
        group has no samples (so absent groups leave no misleading zeros).
    """
    if not len(advantages):
        return {}
    values = np.asarray(advantages, dtype=np.float64)
    lengths = np.asarray(completion_lengths, dtype=np.float64)
    return {
        f"{prefix}/advantage_mean": float(values.mean()),
        f"{prefix}/advantage_std": float(values.std()),
        f"{prefix}/completion_len_mean": float(lengths.mean()) if lengths.size else 0.0,
        f"{prefix}/completion_len_max": float(lengths.max()) if lengths.size else 0.0,
        f"{prefix}/truncated_rate": float(np.mean(np.asarray(truncated, dtype=np.float64))),
    }


def proposer_metrics(
    prefix: str,
    valid: Sequence[bool],
    format_ok: Sequence[bool],
    new: Sequence[bool],
    success_rates: Sequence[float],
) -> dict[str, float]:
    """Proposal outcomes of one task type (one entry per proposal; p̄ per valid one).

    Returns:
        ``prefix/valid_rate``, ``format_ok_rate`` and ``new_rate`` (empty dict for no
        proposals), plus ``learnable_rate`` (share with 0 < p̄ < 1) and
        ``learnability_solve_rate`` (mean p̄) when ``success_rates`` is non-empty.
    """
    if not len(valid):
        return {}
    metrics = {
        f"{prefix}/valid_rate": float(np.mean(np.asarray(valid, dtype=np.float64))),
        f"{prefix}/format_ok_rate": float(np.mean(np.asarray(format_ok, dtype=np.float64))),
        f"{prefix}/new_rate": float(np.mean(np.asarray(new, dtype=np.float64))),
    }
    if len(success_rates):
        rates = np.asarray(success_rates, dtype=np.float64)
        metrics[f"{prefix}/learnable_rate"] = float(np.mean((rates > 0.0) & (rates < 1.0)))
        metrics[f"{prefix}/learnability_solve_rate"] = float(rates.mean())
    return metrics


def solver_metrics(prefix: str, correct: Sequence[bool], format_ok: Sequence[bool]) -> dict[str, float]:
    """Solve-batch outcomes of one task type.

    Returns:
        ``prefix/solve_rate`` (solver accuracy) and ``prefix/format_ok_rate``, or an
        empty dict when the task type had no solve-batch answers.
    """
    if not len(correct):
        return {}
    return {
        f"{prefix}/solve_rate": float(np.mean(np.asarray(correct, dtype=np.float64))),
        f"{prefix}/format_ok_rate": float(np.mean(np.asarray(format_ok, dtype=np.float64))),
    }


def _clean(metrics: Mapping[str, Any]) -> dict[str, float]:
    """Check names and values: finite real numbers under string keys, as JSON allows."""
    record: dict[str, float] = {}
    for name, value in metrics.items():
        if not isinstance(name, str) or not name:
            raise TypeError(f"metric names must be non-empty strings, got {name!r}")
        if isinstance(value, (bool, np.bool_)):
            value = float(value)
        if not isinstance(value, (int, float, np.integer, np.floating)):
            raise TypeError(f"metric {name!r} must be a number, got {type(value).__name__} {value!r}")
        number = float(value)
        if not math.isfinite(number):
            raise ValueError(
                f"metric {name!r} is {number!r}; metrics must be finite (leave a key out when its "
                "value is undefined)"
            )
        record[name] = int(value) if isinstance(value, (int, np.integer)) else number
    return record


class MetricsWriter:
    """Appends one JSON object per step to ``metrics.jsonl``.

    The file is opened in append mode, so a resumed run continues the same file (after
    :func:`truncate_metrics` dropped the steps the checkpoint does not contain). Each
    line is flushed and fsync'd: a reader (or a crash) never sees a half-written record
    except possibly the very last line, which :func:`read_metrics` tolerates.
    """

    def __init__(self, path: str | Path | None) -> None:
        """``path=None`` writes nothing and only returns the records (the ranks other
        than 0 of a multi-process run, which compute the same records)."""
        self.path = Path(path) if path is not None else None
        self._handle: TextIO | None = None
        self._closed = False
        if self.path is not None:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            self._handle = open(self.path, "a", encoding="utf-8")

    def write(self, step: int, metrics: Mapping[str, Any]) -> dict[str, float]:
        """Append ``{"step": step, **metrics}`` as one line.

        Returns:
            The record as written (``step`` first, numbers as floats/ints).

        Raises:
            ValueError / TypeError: a value is not a finite number (the message names it).
            RuntimeError: the writer was closed.
        """
        if self._closed:
            raise RuntimeError(f"metrics writer for {self.path} is closed")
        record = {"step": int(step), **_clean({k: v for k, v in metrics.items() if k != "step"})}
        if self._handle is not None:
            self._handle.write(json.dumps(record) + "\n")
            self._handle.flush()
            os.fsync(self._handle.fileno())
        return record

    def close(self) -> None:
        """Close the file. Safe to call twice."""
        self._closed = True
        if self._handle is not None:
            self._handle.close()
            self._handle = None

    def __enter__(self) -> "MetricsWriter":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def read_metrics(path: str | Path) -> list[dict[str, float]]:
    """All records of a ``metrics.jsonl`` file, in file order.

    A torn last line (the process died while writing it) is skipped; a malformed line
    anywhere else is an error, because it means the file was edited or corrupted.

    Returns:
        A list of dicts (possibly empty; also empty when the file does not exist).

    Raises:
        ValueError: a line other than the last is not a JSON object (names file and line).
    """
    path = Path(path)
    if not path.is_file():
        return []
    lines = path.read_text(encoding="utf-8").splitlines()
    records: list[dict[str, float]] = []
    for number, line in enumerate(lines, start=1):
        if not line.strip():
            continue
        try:
            record = json.loads(line)
        except json.JSONDecodeError as error:
            if number == len(lines):
                break  # torn final line
            raise ValueError(f"{path}:{number}: not a JSON metrics record ({error.msg})") from None
        if not isinstance(record, dict) or "step" not in record:
            raise ValueError(f"{path}:{number}: a metrics record must be a JSON object with a 'step'")
        records.append(record)
    return records


def truncate_metrics(path: str | Path, last_step: int) -> int:
    """Drop records with ``step > last_step`` (steps a resumed checkpoint does not hold).

    Rewrites the file atomically. Needed so that resuming from step N after a crash at
    step N+3 does not leave the lost steps' lines (and duplicates of N+1..N+3) in the file.

    Returns:
        The number of records removed (0 when the file does not exist).
    """
    from absolutezero.atomic import atomic_write_text

    path = Path(path)
    records = read_metrics(path)
    kept = [record for record in records if record["step"] <= last_step]
    if len(kept) != len(records) or (path.is_file() and not path.read_text(encoding="utf-8").endswith("\n")):
        atomic_write_text(path, "".join(json.dumps(record) + "\n" for record in kept))
    return len(records) - len(kept)
