"""The GPU check script's reduced form (``scripts/gpu-check.sh --cpu MODEL``) runs here, so
the script the GPU machine runs cannot rot: the same launch (torchrun, FSDP2, gradient
checkpointing, token budgets, prompt limit) on 2 gloo ranks, and the same report."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


@pytest.mark.slow
def test_gpu_check_cpu_form_runs_two_steps_and_reports(tiny_model_dir, tmp_path):
    from test_distributed import REWARD_PLUGIN

    # a reward term that varies with the response, so the random model's steps train and
    # push weights (the real model's rewards vary on their own)
    (tmp_path / "length_reward_plugin.py").write_text(REWARD_PLUGIN)
    env = dict(
        os.environ, PYTHON=sys.executable, OUT=str(tmp_path / "runs"),
        PYTHONPATH=os.pathsep.join([str(tmp_path), os.environ.get("PYTHONPATH", "")]),
    )
    result = subprocess.run(
        ["bash", str(ROOT / "scripts" / "gpu-check.sh"), "--cpu", str(tiny_model_dir),
         "plugins=[length_reward_plugin]"],
        cwd=ROOT, env=env, capture_output=True, text=True, timeout=900,
    )
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-5000:]
    report = result.stdout[result.stdout.index("run "):]
    rows = [line.split() for line in report.splitlines() if line.strip()[:1].isdigit()]
    assert [row[0] for row in rows] == ["1", "2"]  # two steps
    for row in rows:
        tokens, rate, step = float(row[1]), float(row[2]), float(row[3])
        update, push = float(row[7]), float(row[8])
        assert tokens > 0 and rate > 0 and step > 0 and update > 0 and push > 0
    # each rank's peak memory, beside the planner's figure for the same config
    peaks = [line for line in report.splitlines() if line.strip().startswith("rank ")]
    assert len(peaks) == 2 and all(" / " in line for line in peaks), report
