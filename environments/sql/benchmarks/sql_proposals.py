"""Run plugin: write every proposal's verdict to ``<run_dir>/sql_proposals.jsonl``.

Load it into a real run (it is a measurement aid, not part of the environment)::

    PYTHONPATH=environments/sql/benchmarks python -m absolutezero.run env=sql \\
        plugins=[sql_proposals] ...

then summarise with ``python environments/sql/benchmarks/sql_quality.py RUN_DIR``.
Step 0 is seeding: the untrained model's proposals.
"""

from __future__ import annotations

import json
import os

from absolutezero import hookimpl

_state: dict[str, str] = {}


def _write(record: dict) -> None:
    path = _state.get("path")
    if path:
        with open(path, "a", encoding="utf-8") as handle:
            handle.write(json.dumps(record) + "\n")


@hookimpl
def absolutezero_run_start(config, run_dir):
    _state["path"] = os.path.join(run_dir, "sql_proposals.jsonl")


@hookimpl
def absolutezero_task_accepted(task, step):
    _write({"step": step, "task_type": task.task_type, "valid": True, "key": task.key()})


@hookimpl
def absolutezero_task_rejected(task_type, response, reason, step):
    _write({"step": step, "task_type": task_type, "valid": False, "reason": reason, "response": response})
