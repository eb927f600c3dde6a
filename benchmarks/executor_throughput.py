"""Throughput of the sandboxed executor on CruxEval programs.

Validates every CruxEval program the way the code environment validates a proposal:
each (program, input) runs twice in fresh sandboxed processes from the two hash-seed
worker groups (determinism check), and the canonical output is compared with the
canonical form of the dataset's output (parsed in the sandbox too). Prints
programs/s (validation only, and including the canonicalisation of the expected
outputs), the agreement count and every disagreement. One untimed pass warms the
executor up (and starts the full-tier workers that a few programs need); then every
timed pass is printed with the best and the median, since a shared VM's speed varies
from pass to pass.

CruxEval is evaluation data: this script only measures, it feeds nothing into training.

Usage::

    python benchmarks/executor_throughput.py [path/to/cruxeval.jsonl] [--repeat N]
        [--workers N] [--timeout S] [--fork-loop auto|native|python] [--restricted on|off|both]
        [--backend local|ray|both] [--ray-address ADDRESS] [--chunk-size N]

``--restricted both`` runs two executors, without and with RestrictedPython's static
layer, and interleaves their passes, so the two figures share the VM's drift.

``--backend ray`` runs the Ray executor (one node-local pool per node of the cluster at
``--ray-address``, else ``RAY_ADDRESS``, else a new local cluster) instead of the local
one; ``--backend both`` runs the two side by side (interleaved passes) and also prints
how many of the Ray executor's results are identical (status, output and reason) to the
local executor's. On a single-machine cluster the CPU figures include the Ray actors but
not Ray's own daemons (raylet, GCS).
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import time
from pathlib import Path
from typing import Any

from absolutezero_code.executor import Executor, RunResult

DEFAULT_PATH = Path(__file__).resolve().parents[2] / "shared" / "data" / "cruxeval" / "cruxeval.jsonl"


def load(path: Path) -> list[dict]:
    """The CruxEval problems (``code``, ``input``, ``output``, ``id``) of a JSONL file."""
    if not path.is_file():
        raise SystemExit(f"no such file: {path} (pass the path to cruxeval.jsonl)")
    with path.open(encoding="utf-8") as handle:
        return [json.loads(line) for line in handle if line.strip()]


def _cpu_split(pids: list[int]) -> tuple[float, float]:
    """CPU seconds used so far by the given workers themselves and by their reaped job
    children."""
    ticks = os.sysconf("SC_CLK_TCK")
    own = children = 0
    for pid in pids:
        try:
            fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        own += int(fields[11]) + int(fields[12])  # utime stime
        children += int(fields[13]) + int(fields[14])  # cutime cstime
    return own / ticks, children / ticks


def _cpu_seconds(pids: list[int]) -> float:
    """CPU seconds used so far by the given workers and their reaped job children."""
    return sum(_cpu_split(pids))


def _monitored_pids(executor: Any) -> list[int]:
    """The sandbox workers, and for a Ray executor also its actors (their own CPU time is
    the node-side cost of shipping jobs; their sandbox workers are not yet reaped, so
    nothing is counted twice)."""
    actors = [node["pid"] for node in getattr(executor, "nodes", [])]
    return executor.worker_pids() + actors


def _timed_pass(executor: Any, jobs: list, expected: list) -> tuple:
    """One timed validation pass: (rate, rate incl. canonicalisation, CPU ms per program,
    CPU split, results, canonical expected outputs)."""
    pids = _monitored_pids(executor)
    (workers0, children0), own0 = _cpu_split(pids), time.process_time()
    t0 = time.perf_counter()
    results = executor.run_many(jobs, determinism_runs=2)
    t1 = time.perf_counter()
    workers1, children1 = _cpu_split(pids)
    split = (workers1 - workers0, children1 - children0, time.process_time() - own0)
    gold = executor.canonicalize_many(expected)
    t2 = time.perf_counter()
    return len(jobs) / (t1 - t0), len(jobs) / (t2 - t0), 1000 * sum(split) / len(jobs), split, results, gold


def _report(label: str, passes: list[tuple], problems: list[dict]) -> None:
    rates = [p[0] for p in passes]
    totals = [p[1] for p in passes]
    cpu_ms = [p[2] for p in passes]
    results, gold = passes[-1][4], passes[-1][5]
    agree, disagreements = 0, []
    for problem, result, want in zip(problems, results, gold):
        if result.ok and want.ok and result.output == want.output:
            agree += 1
        else:
            got = result.output if result.ok else f"{result.status.value}: {result.reason}"
            disagreements.append((problem["id"], got, want.output if want.ok else want.reason))
    print(f"[{label}] programs: {len(problems)} (2 runs each, every run a fresh sandboxed process)")
    print(
        f"[{label}] validation programs/s: " + ", ".join(f"{rate:.0f}" for rate in rates)
        + f" (best {max(rates):.0f}, median {statistics.median(rates):.0f})"
    )
    print(f"[{label}] incl. expected-output canonicalisation programs/s: " + ", ".join(f"{rate:.0f}" for rate in totals) + f" (best {max(totals):.0f})")
    cores = os.cpu_count() or 1
    print(
        f"[{label}] CPU per program (workers + job processes + this process): "
        + ", ".join(f"{value:.2f}" for value in cpu_ms)
        + f" ms -> {1000 * cores / min(cpu_ms):.0f} programs/s on {cores} idle cores"
    )
    print(
        f"[{label}] CPU seconds per pass (workers / job processes / this process): "
        + ", ".join(f"{w:.2f}/{c:.2f}/{o:.2f}" for w, c, o in (p[3] for p in passes))
    )
    print(f"[{label}] agreement: {agree}/{len(problems)}")
    for ident, got, want in disagreements:
        print(f"  disagree {ident}: got {got[:200]!s} expected {want[:200]!s}")


def _report_identity(local: str, remote: str, passes: dict[str, list[tuple]], problems: list[dict]) -> None:
    """How many of ``remote``'s last-pass results equal ``local``'s exactly."""
    ours: list[RunResult] = passes[local][-1][4]
    theirs: list[RunResult] = passes[remote][-1][4]
    differ = [(problem["id"], a, b) for problem, a, b in zip(problems, ours, theirs) if a != b]
    print(f"[{remote} vs {local}] identical results: {len(problems) - len(differ)}/{len(problems)}")
    for ident, a, b in differ:
        print(f"  differ {ident}: local {a} ray {b}")


def _start(backend: str, restricted: bool, args: argparse.Namespace) -> tuple[str, Any]:
    """A started executor of ``backend`` and its label (printing how it started)."""
    started = time.perf_counter()
    label = "RestrictedPython " + ("on" if restricted else "off")
    if args.backend != "local":  # local-only runs keep their historical labels
        label = ("Ray" if backend == "ray" else "local") + ", " + label
    options = {"workers": args.workers, "timeout": args.timeout, "fork_loop": args.fork_loop, "restricted_python": restricted}
    if backend == "ray":
        from absolutezero_code.executor import RayExecutor

        executor: Any = RayExecutor(address=args.ray_address, chunk_size=args.chunk_size, **options)
        shown = ", ".join(f"{node['hostname']}: {2 * node['workers']} workers ({node['fork_loop']})" for node in executor.nodes)
        print(f"[{label}] started {len(executor.nodes)} node pool(s) [{shown}] in {time.perf_counter() - started:.2f} s")
    else:
        executor = Executor(**options)
        print(
            f"[{label}] started {2 * executor.workers} workers ({executor.fork_loop} fork loop) "
            f"in {time.perf_counter() - started:.2f} s"
        )
    return label, executor


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("path", nargs="?", type=Path, default=DEFAULT_PATH)
    parser.add_argument("--repeat", type=int, default=5, help="timed passes (all, best and median are printed)")
    parser.add_argument("--workers", type=int, default=None, help="workers per hash-seed group")
    parser.add_argument("--timeout", type=float, default=1.0)
    parser.add_argument(
        "--fork-loop", choices=("auto", "native", "python"), default="auto",
        help="the workers' fork loop (native: the C extension; python: the fallback)",
    )
    parser.add_argument(
        "--restricted", choices=("on", "off", "both"), default="on",
        help="RestrictedPython's static layer; 'both' interleaves passes with and without it",
    )
    parser.add_argument(
        "--backend", choices=("local", "ray", "both"), default="local",
        help="the local executor, the Ray executor, or both side by side (with their agreement)",
    )
    parser.add_argument("--ray-address", default=None, help="Ray cluster to join (default: RAY_ADDRESS, else a local one)")
    parser.add_argument("--chunk-size", type=int, default=None, help="jobs per Ray actor call (default: automatic)")
    args = parser.parse_args(argv)
    problems = load(args.path)
    jobs = [(problem["code"], problem["input"]) for problem in problems]
    expected = [problem["output"] for problem in problems]

    variants = {"on": [True], "off": [False], "both": [False, True]}[args.restricted]
    backends = {"local": ["local"], "ray": ["ray"], "both": ["local", "ray"]}[args.backend]
    executors: dict[str, Any] = {}
    pairs: list[tuple[str, str]] = []
    try:
        for restricted in variants:
            labels: list[str] = []
            for backend in backends:
                label, executor = _start(backend, restricted, args)
                executors[label] = executor
                labels.append(label)
            if len(labels) == 2:
                pairs.append((labels[0], labels[1]))
    except BaseException:
        for executor in executors.values():
            executor.close()
        raise
    passes: dict[str, list[tuple]] = {label: [] for label in executors}
    try:
        for executor in executors.values():
            executor.run_many(jobs)  # warm-up (also starts the full-tier workers some jobs need)
        for _ in range(max(1, args.repeat)):
            for label, executor in executors.items():  # interleaved: the VM's speed drifts
                passes[label].append(_timed_pass(executor, jobs, expected))
    finally:
        for executor in executors.values():
            executor.close()
    for label, runs in passes.items():
        _report(label, runs, problems)
    for local, remote in pairs:
        _report_identity(local, remote, passes, problems)
    print(f"machine load average during the run: {os.getloadavg()[0]:.1f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
