"""Time from launch to the first training step, fresh start, side by side: settings x seeds.

Usage::

    python benchmarks/start_speed.py                       # six-round start against the default, seeds 0 1 2
    python benchmarks/start_speed.py --seeds 0 --variant now= --variant small=selfplay.seed_batch=8

Each run is ``python -m absolutezero.run env=code steps=1 seed=S reuse_start=false``
plus the variant's overrides, in a fresh process and a temporary ``out`` folder (model
cached, no start cache), timed from launch to its step-0 record: seed buffers, probe
set and the untrained probe scores, i.e. everything before step 1 begins. The process
is then killed (step 1 is not part of the start). Variants alternate within each seed,
so a drift of this VM's speed hits them alike.

Printed per run: time to the step-0 record, ``time/seeding``, rounds, and per task type
the valid rate of the start's proposals and the tasks it added to the buffer; then per
variant the mean time, the mean valid rate per type, and each variant's mean time over
the first's. The valid rates must stay within noise for a faster start to count.

The default variants: ``six-rounds`` (``selfplay.seed_batch=16`` with the agent's
former ``batch_size=64``: rounds of 48 prompts, the default until 2026-12-07) and
``default`` (the current defaults).
"""

from __future__ import annotations

import argparse
import json
import shlex
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

DEFAULT_VARIANTS = ("six-rounds=selfplay.seed_batch=16 agent_options.batch_size=64", "default=")


def parse_variant(text: str) -> tuple[str, list[str]]:
    """``NAME=OVERRIDES`` (overrides space-separated ``key=value``, possibly none)."""
    name, sep, overrides = text.partition("=")
    if not sep or not name.strip():
        raise argparse.ArgumentTypeError(f"a variant is NAME=OVERRIDES (e.g. 'big=selfplay.seed_batch=64'), got {text!r}")
    return name.strip(), shlex.split(overrides)


def first_record(metrics: Path) -> dict[str, Any] | None:
    """The run's step-0 record once its line is complete, else None."""
    try:
        text = metrics.read_text(encoding="utf-8")
    except FileNotFoundError:
        return None
    line, newline, _ = text.partition("\n")
    return json.loads(line) if newline else None


def time_start(overrides: list[str], out: Path, timeout: float, python: str = sys.executable) -> dict[str, Any]:
    """Launch one run, return its step-0 record with ``start_seconds`` (launch to record).

    Raises:
        RuntimeError: the run exited, or ran past ``timeout`` seconds, without a step-0
            record (its log's tail is in the message).
    """
    out.mkdir(parents=True, exist_ok=True)
    log = out / "run.log"
    args = [python, "-m", "absolutezero.run", "env=code", "steps=1", f"out={out}", "name=start",
            "reuse_start=false", "progress=false", "checkpoint_every=0", *overrides]
    metrics = out / "start" / "metrics.jsonl"
    with open(log, "wb") as sink:
        started = time.perf_counter()
        process = subprocess.Popen(args, stdout=sink, stderr=subprocess.STDOUT)
        try:
            while (record := first_record(metrics)) is None:
                if process.poll() is not None or time.perf_counter() - started > timeout:
                    tail = log.read_text(encoding="utf-8", errors="replace")[-2000:]
                    raise RuntimeError(f"no step-0 record from {shlex.join(args)} (exit {process.poll()}):\n{tail}")
                time.sleep(0.2)
            record["start_seconds"] = time.perf_counter() - started
        finally:
            process.kill()
            process.wait()
    return record


def task_types(record: dict[str, Any]) -> list[str]:
    return sorted({key.split("/")[1] for key in record if key.startswith("seed/") and key.endswith("/valid_rate")})


def format_runs(runs: list[tuple[str, int, dict[str, Any]]]) -> str:
    """The per-run table, then each variant's means and its time ratio to the first variant."""
    types = task_types(runs[0][2])
    lines = ["| variant | seed | to step 0 (s) | seeding (s) | rounds | " + " | ".join(f"{t} valid / added" for t in types) + " |",
             "| --- " * (5 + len(types)) + "|"]
    for name, seed, record in runs:
        cells = [f"{record[f'seed/{t}/valid_rate']:.1%} / {record[f'seed/{t}/tasks']:.0f}" for t in types]
        lines.append(f"| {name} | {seed} | {record['start_seconds']:.0f} | {record['time/seeding']:.0f} | "
                     f"{record['seed/rounds']:.0f} | " + " | ".join(cells) + " |")
    names = list(dict.fromkeys(name for name, _, _ in runs))
    means = {name: statistics.mean(r["start_seconds"] for n, _, r in runs if n == name) for name in names}
    lines.append("")
    for name in names:
        records = [r for n, _, r in runs if n == name]
        rates = ", ".join(f"{t} {statistics.mean(r[f'seed/{t}/valid_rate'] for r in records):.1%}" for t in types)
        lines.append(f"{name}: mean {means[name]:.0f} s to step 0 over {len(records)} run(s), "
                     f"{means[names[0]] / means[name]:.2f}x sooner than {names[0]}; mean valid rates {rates}")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2], help="run seeds (one run per variant each)")
    parser.add_argument("--variant", type=parse_variant, action="append",
                        help="NAME=OVERRIDES, repeatable; the first is the baseline (default: six-rounds, default)")
    parser.add_argument("--timeout", type=float, default=1800, help="seconds a start may take before it counts as failed")
    parser.add_argument("overrides", nargs="*", help="key=value overrides for every run (e.g. a tiny model)")
    args = parser.parse_args(argv)
    variants = args.variant or [parse_variant(text) for text in DEFAULT_VARIANTS]
    runs: list[tuple[str, int, dict[str, Any]]] = []
    with tempfile.TemporaryDirectory(prefix="start-speed-") as folder:
        for seed in args.seeds:
            for name, overrides in variants:
                out = Path(folder) / f"{name}-{seed}"
                record = time_start([f"seed={seed}", *args.overrides, *overrides], out, args.timeout)
                runs.append((name, seed, record))
                print(f"[{time.strftime('%H:%M:%S')}] {name} seed {seed}: {record['start_seconds']:.0f} s to step 0 "
                      f"({record['seed/rounds']:.0f} rounds)", flush=True)
    print(format_runs(runs))
    return 0


if __name__ == "__main__":
    sys.exit(main())
