"""Valid-proposal rates with rejection reasons, buffer growth and learnable share of a run.

Reads a run folder written by ``python -m absolutezero.run env=sql plugins=[sql_proposals]``
(see :mod:`sql_proposals`): ``sql_proposals.jsonl`` (every proposal's verdict; step 0 is
seeding, i.e. the untrained model) and ``metrics.jsonl`` (buffer sizes, learnable rates)::

    python environments/sql/benchmarks/sql_quality.py /tmp/sqlruns/sql-10

Targets (issue 20): valid rate >= 0.5 for deduction and abduction, >= 0.3 for induction
on the untrained model; every buffer grows by >= 10 distinct tasks beyond the seeds; >= 25%
of valid step proposals have 0 < p-bar < 1.
"""

from __future__ import annotations

import collections
import json
import re
import sys
from pathlib import Path

TARGET_VALID = {"deduction": 0.5, "abduction": 0.5, "induction": 0.3}


def _kind(reason: str) -> str:
    """The kind of a rejection: quoted values and numbers vary, the kind is what matters."""
    return re.sub(r"'[^']*'|\"[^\"]*\"|\d+", "_", reason)[:90]


def main(argv: list[str]) -> int:
    if len(argv) != 1:
        print(__doc__)
        return 2
    run = Path(argv[0])
    records = [json.loads(line) for line in (run / "sql_proposals.jsonl").read_text().splitlines() if line.strip()]
    metrics = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines() if line.strip()]
    types = sorted({r["task_type"] for r in records})
    for phase, keep in (("seeding (untrained model, step 0)", lambda r: r["step"] == 0), ("training steps", lambda r: r["step"] > 0)):
        print(f"== {phase}")
        for task_type in types:
            mine = [r for r in records if r["task_type"] == task_type and keep(r)]
            if not mine:
                continue
            valid = sum(r["valid"] for r in mine)
            target = TARGET_VALID.get(task_type, 0.0)
            print(f"  {task_type:10s} valid {valid / len(mine):.2f} ({valid}/{len(mine)}) [target >= {target:.2f}]")
            reasons = collections.Counter(_kind(r["reason"]) for r in mine if not r["valid"])
            for kind, count in reasons.most_common(8):
                print(f"      {count:3d}x {kind}")
    first, last = metrics[0], metrics[-1]
    print("== buffers (distinct tasks)")
    for key in sorted(k for k in last if k.startswith("buffer/") and k.endswith("/size")):
        print(f"  {key}: {first.get(key)} at the first record -> {last[key]} at step {last.get('step')}")
    rates = collections.defaultdict(list)
    for m in metrics:
        for task_type in types:
            valid, learnable = m.get(f"propose/{task_type}/valid_rate"), m.get(f"propose/{task_type}/learnable_rate")
            if valid is not None and learnable is not None and m.get("step", 0) > 0:
                rates[task_type].append((valid, learnable))
    print("== learnable share of valid step proposals (0 < p-bar < 1), mean over steps")
    for task_type, pairs in rates.items():
        weights = sum(v for v, _ in pairs)
        share = sum(v * l for v, l in pairs) / weights if weights else float("nan")
        print(f"  {task_type:10s} {share:.2f} over {len(pairs)} steps")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
