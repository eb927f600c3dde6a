"""The report of ``scripts/gpu-check.sh``: what a short run measured, next to the planner.

Reads a run folder (``config.yaml``, ``metrics.jsonl``) and prints, per step: generated
tokens per second, the step time by phase (generation, validation, verification, update,
weight push) and each rank's peak memory (GPU used memory, or peak RSS on a CPU), beside
the memory planner's prediction for the run's own config on ``--gpus`` devices of
``--gpu-memory-gb``.

    python benchmarks/gpu_check_report.py runs/gpu-check/gpu-20261205-120000 --gpus 2 --gpu-memory-gb 80
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

PHASES = ("generation", "validation", "verification", "update")


def report(run_dir: Path, gpus: int, gpu_memory_gb: float) -> str:
    records = [json.loads(line) for line in (run_dir / "metrics.jsonl").read_text().splitlines() if line.strip()]
    steps = [r for r in records if r.get("step", 0) > 0]
    if not steps:
        raise SystemExit(f"gpu_check_report: {run_dir} has no completed step in metrics.jsonl")
    lines = [f"run {run_dir}: {len(steps)} step(s) on {gpus} rank(s)"]
    lines.append(f"{'step':>4} {'tokens':>7} {'tok/s':>8} {'step s':>7} " + " ".join(f"{p:>12}" for p in PHASES)
                 + f" {'push s':>7}")
    for record in steps:
        tokens = record.get("tokens/generated", 0.0)
        generation = record.get("time/generation", 0.0)
        rate = tokens / generation if generation else 0.0
        phases = " ".join(f"{record.get(f'time/{p}', 0.0):12.2f}" for p in PHASES)
        lines.append(f"{record['step']:>4} {tokens:7.0f} {rate:8.1f} {record.get('time/step', 0.0):7.1f} {phases}"
                     f" {record.get('train/weight_sync_seconds', 0.0):7.2f}")
    peaks = {key.rsplit("rank", 1)[-1]: value for key, value in steps[-1].items()
             if key.startswith("train/peak_memory_gb/rank")}
    predicted = _planned(run_dir, gpus, gpu_memory_gb)
    lines.append("peak memory per rank (GB): measured" + ("" if predicted is None else " / planner"))
    for rank in sorted(peaks, key=int):
        extra = "" if predicted is None else f" / {predicted:.2f}"
        lines.append(f"  rank {rank}: {peaks[rank]:.2f}{extra}")
    return "\n".join(lines)


def _planned(run_dir: Path, gpus: int, gpu_memory_gb: float) -> float | None:
    """The planner's peak per device for the run's config, or None where it cannot plan."""
    from absolutezero.config import ConfigError
    from absolutezero.plan import plan

    try:
        result = plan([f"config={run_dir / 'config.yaml'}", f"gpus={gpus}", f"gpu_memory_gb={gpu_memory_gb}",
                       "resume=null", "name=null"])
    except ConfigError as error:
        print(f"gpu_check_report: no planner figure: {error}", file=sys.stderr)
        return None
    return result.total / 1e9


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("run_dir", type=Path)
    parser.add_argument("--gpus", type=int, default=1)
    parser.add_argument("--gpu-memory-gb", type=float, default=80.0)
    args = parser.parse_args(argv)
    print(report(args.run_dir, args.gpus, args.gpu_memory_gb))


if __name__ == "__main__":
    main()
