"""Paired comparison of two evaluations of the same problems (before/after training,
two models, two prompt styles are refused: see below).

Command line (through the evaluation CLI)::

    python -m absolutezero.evaluate compare=evals/A,evals/B
    python -m absolutezero.evaluate compare=evals/A,evals/B benchmark=humaneval resamples=20000 seed=1

Each folder is the ``out=`` of ``python -m absolutezero.evaluate``: ``results.json``
(figures and settings per benchmark) and ``<benchmark>.records.jsonl`` (one line per
scored problem with its greedy verdict). For every benchmark both hold, the comparison
pairs the greedy verdicts problem by problem and prints:

* both pass@1 figures and their difference (B - A);
* problems **gained** (wrong in A, right in B) and **lost** (right in A, wrong in B);
* the exact two-sided **sign test** (McNemar's exact test) on the discordant pairs:
  under "no difference", gained ~ Binomial(gained + lost, 1/2), so
  ``p = min(1, 2 * sum_{i <= min(g, l)} C(g + l, i) / 2^(g + l))``, computed with exact
  integers (:func:`sign_test_p`);
* a **bootstrap 95% interval** of the pass@1 difference: problems resampled with
  replacement, the same problems for A and B (paired), ``resamples`` times with a seeded
  :class:`numpy.random.Generator` (:func:`bootstrap_interval`; percentile interval).

Two evaluations are comparable only when they scored the same problems with the same
decoding: a benchmark whose problem ids differ, or whose prompt style, samples,
temperature, top_p or max_new_tokens differ, is refused (:class:`ComparisonError`, exit
status 2, the message names what differs). Settings that neither evaluation recorded are
reported as unchecked.
"""

from __future__ import annotations

import json
import math
import sys
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path
from typing import Any

__all__ = [
    "DECODING_KEYS",
    "ComparisonError",
    "PairedResult",
    "bootstrap_interval",
    "compare_dirs",
    "format_comparison",
    "main",
    "paired",
    "sign_test_p",
]

#: Settings that must be equal for two evaluations to be compared (``settings`` of a
#: benchmark in ``results.json``; decoding ones under ``settings["decoding"]``).
SETTING_KEYS = ("prompt", "samples")
DECODING_KEYS = ("temperature", "top_p", "max_new_tokens")

EXIT_USAGE = 2


class ComparisonError(ValueError):
    """Two evaluations cannot be compared (the message says what differs)."""


def sign_test_p(gained: int, lost: int) -> float:
    """Exact two-sided sign-test (McNemar exact) p-value for ``gained`` vs ``lost``
    discordant pairs: ``min(1, 2 * P[X <= min(g, l)])`` with ``X ~ Binomial(g + l, 1/2)``;
    1.0 when there is no discordant pair.

    Raises:
        ValueError: a negative count.
    """
    if gained < 0 or lost < 0:
        raise ValueError(f"counts must be >= 0, got gained={gained}, lost={lost}")
    n = gained + lost
    if n == 0:
        return 1.0
    tail = sum(math.comb(n, i) for i in range(min(gained, lost) + 1))
    return float(min(Fraction(1), Fraction(2 * tail, 2**n)))


def bootstrap_interval(
    a: Sequence[float], b: Sequence[float], resamples: int = 10_000, seed: int = 0, level: float = 0.95
) -> tuple[float, float]:
    """Percentile bootstrap interval of ``mean(b) - mean(a)`` with paired resampling
    (the same resampled problems for both), from ``numpy.random.default_rng(seed)``.

    Raises:
        ValueError: sequences of different or zero length, or a bad ``resamples``/``level``.
    """
    import numpy as np

    if len(a) != len(b) or not len(a):
        raise ValueError(f"need two non-empty paired sequences, got lengths {len(a)} and {len(b)}")
    if resamples < 1 or not 0 < level < 1:
        raise ValueError("resamples must be >= 1 and level in (0, 1)")
    diff = np.asarray(b, dtype=np.float64) - np.asarray(a, dtype=np.float64)
    rng = np.random.default_rng(seed)
    n = len(diff)
    means = np.empty(resamples)
    batch = max(1, 2_000_000 // n)  # bounded memory: at most ~16 MB of indices at once
    for start in range(0, resamples, batch):
        size = min(batch, resamples - start)
        means[start : start + size] = diff[rng.integers(0, n, size=(size, n))].mean(axis=1)
    tail = (1 - level) / 2
    low, high = np.quantile(means, [tail, 1 - tail])
    return float(low), float(high)


@dataclass(frozen=True)
class PairedResult:
    """The paired figures of one benchmark (``difference`` = pass@1 B - pass@1 A)."""

    benchmark: str
    n: int
    pass_a: float
    pass_b: float
    gained: int
    lost: int
    p_value: float
    ci_low: float
    ci_high: float

    @property
    def difference(self) -> float:
        return self.pass_b - self.pass_a

    def to_json(self) -> dict[str, Any]:
        return {
            "benchmark": self.benchmark, "n": self.n, "pass@1_a": self.pass_a, "pass@1_b": self.pass_b,
            "difference": self.difference, "gained": self.gained, "lost": self.lost, "p_value": self.p_value,
            "ci95": [self.ci_low, self.ci_high],
        }


def paired(
    benchmark: str, a: Mapping[str, bool], b: Mapping[str, bool], resamples: int = 10_000, seed: int = 0
) -> PairedResult:
    """The paired figures of two ``{problem id: correct}`` maps over the same ids.

    Raises:
        ComparisonError: the id sets differ (the message counts and names a few).
    """
    only_a, only_b = sorted(set(a) - set(b)), sorted(set(b) - set(a))
    if only_a or only_b:
        raise ComparisonError(
            f"{benchmark}: the evaluations scored different problems ({len(only_a)} only in A, e.g. "
            f"{only_a[:3]}; {len(only_b)} only in B, e.g. {only_b[:3]}); compare evaluations of the same "
            "problems (same data, limit and seed)"
        )
    if not a:
        raise ComparisonError(f"{benchmark}: no scored problem to compare")
    ids = sorted(a)
    xs = [float(bool(a[i])) for i in ids]
    ys = [float(bool(b[i])) for i in ids]
    gained = sum(1 for x, y in zip(xs, ys) if y > x)
    lost = sum(1 for x, y in zip(xs, ys) if x > y)
    low, high = bootstrap_interval(xs, ys, resamples, seed)
    return PairedResult(
        benchmark=benchmark, n=len(ids), pass_a=sum(xs) / len(ids), pass_b=sum(ys) / len(ids),
        gained=gained, lost=lost, p_value=sign_test_p(gained, lost), ci_low=low, ci_high=high,
    )


def _read_results(folder: Path) -> dict[str, Any]:
    path = folder / "results.json"
    try:
        payload = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ComparisonError(f"{folder} holds no results.json (pass the out= folder of an evaluation)") from None
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as error:
        raise ComparisonError(f"{path} is not readable JSON ({error})") from None
    if not isinstance(payload, dict) or not isinstance(payload.get("benchmarks"), dict):
        raise ComparisonError(f"{path} is not a benchmark results file")
    return payload["benchmarks"]


def _verdicts(folder: Path, benchmark: str, summary: Mapping[str, Any]) -> dict[str, bool]:
    path = folder / str(summary.get("records") or f"{benchmark}.records.jsonl")
    out: dict[str, bool] = {}
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except OSError as error:
        raise ComparisonError(f"{benchmark}: cannot read the per-problem records {path} ({error})") from None
    for number, line in enumerate(lines, 1):
        if not line.strip():
            continue
        try:
            record = json.loads(line)
        except json.JSONDecodeError:
            raise ComparisonError(f"{path}:{number}: not a JSON line") from None
        verdict = record.get("greedy_correct")
        if verdict is None:
            raise ComparisonError(
                f"{path}:{number}: no greedy verdict (the paired comparison uses greedy pass@1)"
            )
        out[str(record["id"])] = bool(verdict)
    return out


def _setting(summary: Mapping[str, Any], key: str) -> Any:
    settings = summary.get("settings") or {}
    if key in DECODING_KEYS:
        return (settings.get("decoding") or {}).get(key)
    if key == "samples":
        return settings.get("samples", summary.get("samples"))
    return settings.get(key)


def check_settings(benchmark: str, a: Mapping[str, Any], b: Mapping[str, Any]) -> list[str]:
    """Raise when a compared setting differs; return the names recorded by neither.

    Raises:
        ComparisonError: a setting differs (or is recorded by one evaluation only).
    """
    differ, unchecked = [], []
    for key in SETTING_KEYS + DECODING_KEYS:
        x, y = _setting(a, key), _setting(b, key)
        if x is None and y is None:
            unchecked.append(key)
        elif x != y:
            differ.append(f"{key}: {x!r} vs {y!r}")
    if differ:
        raise ComparisonError(
            f"{benchmark}: the evaluations used different decoding settings ({'; '.join(differ)}); "
            "a paired comparison needs the same prompt format and decoding"
        )
    return unchecked


def compare_dirs(
    a: str | Path, b: str | Path, benchmarks: Sequence[str] = (), resamples: int = 10_000, seed: int = 0
) -> tuple[list[PairedResult], list[str]]:
    """Compare the evaluations in folders ``a`` and ``b``, benchmark by benchmark.

    Args:
        benchmarks: only these (default: every benchmark both evaluations hold; a
            group's averages are not compared, its members are).

    Returns:
        The paired results, and notes (benchmarks held by one evaluation only,
        settings neither recorded).

    Raises:
        ComparisonError: unreadable folders, no common benchmark, different problem
            sets or decoding settings.
    """
    folder_a, folder_b = Path(a), Path(b)
    results_a, results_b = _read_results(folder_a), _read_results(folder_b)
    scored_a = {name for name, item in results_a.items() if isinstance(item, dict) and "records" in item}
    scored_b = {name for name, item in results_b.items() if isinstance(item, dict) and "records" in item}
    notes = []
    if benchmarks:
        missing = [name for name in benchmarks if name not in scored_a or name not in scored_b]
        if missing:
            raise ComparisonError(f"benchmark(s) {missing} are not in both evaluations")
        names = list(benchmarks)
    else:
        names = sorted(scored_a & scored_b)
        for name in sorted(scored_a ^ scored_b):
            notes.append(f"{name}: only in {'A' if name in scored_a else 'B'}, not compared")
    if not names:
        raise ComparisonError(f"{folder_a} and {folder_b} have no benchmark in common")
    out = []
    for name in names:
        unchecked = check_settings(name, results_a[name], results_b[name])
        if unchecked:
            notes.append(f"{name}: {', '.join(unchecked)} recorded by neither evaluation (not checked)")
        verdicts_a = _verdicts(folder_a, name, results_a[name])
        verdicts_b = _verdicts(folder_b, name, results_b[name])
        out.append(paired(name, verdicts_a, verdicts_b, resamples, seed))
    return out, notes


def _pp(value: float) -> str:
    return f"{100 * value:+.1f}"


def format_comparison(results: Sequence[PairedResult], a: str, b: str, resamples: int, seed: int) -> str:
    """The comparison table (one row per benchmark) with a legend."""
    header = ["benchmark", "n", "pass@1 A", "pass@1 B", "B-A (pp)", "gained", "lost", "p (exact)", "95% CI (pp)"]
    rows = [header]
    for r in results:
        rows.append([
            r.benchmark, str(r.n), f"{100 * r.pass_a:.1f}%", f"{100 * r.pass_b:.1f}%", _pp(r.difference),
            str(r.gained), str(r.lost), f"{r.p_value:.3g}", f"[{_pp(r.ci_low)}, {_pp(r.ci_high)}]",
        ])
    widths = [max(len(row[i]) for row in rows) for i in range(len(header))]
    lines = [f"A: {a}", f"B: {b}"]
    lines += ["  ".join(cell.ljust(w) for cell, w in zip(row, widths)).rstrip() for row in rows]
    lines.insert(3, "  ".join("-" * w for w in widths))
    lines.append(
        f"gained = wrong in A, right in B; p = exact two-sided sign test (McNemar) on gained vs lost; "
        f"CI = paired bootstrap percentile interval of B - A ({resamples} resamples, seed {seed})"
    )
    return "\n".join(lines)


def main(argv: Sequence[str]) -> int:
    """``compare=A,B [benchmark=x,y] [resamples=N] [seed=S] [out=file.json]``; returns
    the exit status (0, or 2 for a usage error or evaluations that cannot be compared)."""
    options: dict[str, str] = {}
    for text in argv:
        key, sep, value = text.partition("=")
        if not sep or key not in ("compare", "benchmark", "resamples", "seed", "out"):
            print(
                f"error: cannot read {text!r} with compare=: use compare=A,B [benchmark=...] [resamples=N] "
                "[seed=S] [out=comparison.json]",
                file=sys.stderr,
            )
            return EXIT_USAGE
        options[key] = value.strip()
    folders = [part.strip() for part in options.get("compare", "").split(",") if part.strip()]
    if len(folders) != 2:
        print("error: compare= takes two evaluation folders, e.g. compare=evals/before,evals/after", file=sys.stderr)
        return EXIT_USAGE
    try:
        resamples = int(options.get("resamples", "10000"))
        seed = int(options.get("seed", "0"))
    except ValueError:
        print("error: resamples and seed must be integers", file=sys.stderr)
        return EXIT_USAGE
    if resamples < 1:
        print("error: resamples must be >= 1", file=sys.stderr)
        return EXIT_USAGE
    names = [part.strip() for part in options.get("benchmark", "").split(",") if part.strip()]
    try:
        results, notes = compare_dirs(folders[0], folders[1], names, resamples, seed)
    except ComparisonError as error:
        print(f"error: {error}", file=sys.stderr)
        return EXIT_USAGE
    print(format_comparison(results, folders[0], folders[1], resamples, seed))
    for note in notes:
        print(f"note: {note}")
    if options.get("out"):
        from absolutezero.atomic import atomic_write_text

        payload = {"a": folders[0], "b": folders[1], "resamples": resamples, "seed": seed,
                   "benchmarks": [r.to_json() for r in results], "notes": notes}
        atomic_write_text(Path(options["out"]), json.dumps(payload, indent=2) + "\n")
    return 0
