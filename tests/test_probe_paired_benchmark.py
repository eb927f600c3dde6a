"""benchmarks/probe_paired.py: the paired counts and table (the script itself loads two
models and is run by hand on a finished run)."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

import pytest

from absolutezero.paired import sign_test_p
from absolutezero.probe import ProbeSet

_PATH = Path(__file__).resolve().parents[1] / "benchmarks" / "probe_paired.py"
_spec = importlib.util.spec_from_file_location("_test_probe_paired", _PATH)
probe_paired = importlib.util.module_from_spec(_spec)
sys.modules[_spec.name] = probe_paired
_spec.loader.exec_module(probe_paired)


def _probe(sizes: dict[str, int]) -> ProbeSet:
    return ProbeSet({name: [f"{name}-{i}" for i in range(size)] for name, size in sizes.items()})


def test_gained_and_lost_are_counted_per_type_and_overall() -> None:
    probe = _probe({"deduction": 3, "abduction": 4})
    before = [True, False, False, False, False, True, True]
    after = [True, True, True, True, True, False, True]
    rows = {row["type"]: row for row in probe_paired.paired_rows(probe, before, after)}
    assert (rows["deduction"]["gained"], rows["deduction"]["lost"]) == (2, 0)
    assert (rows["abduction"]["gained"], rows["abduction"]["lost"]) == (2, 1)
    overall = rows["overall"]
    assert (overall["tasks"], overall["before"], overall["after"], overall["gained"], overall["lost"]) == (7, 3, 6, 4, 1)
    assert overall["p"] == sign_test_p(4, 1) == 0.375


def test_mismatched_verdicts_are_refused_and_an_empty_type_prints() -> None:
    probe = _probe({"deduction": 2, "induction": 0})
    with pytest.raises(ValueError, match="3 and 2 verdicts for 2 probe tasks"):
        probe_paired.paired_rows(probe, [True] * 3, [True] * 2)
    rows = probe_paired.paired_rows(probe, [False, True], [True, True])
    text = probe_paired.format_rows(rows, {"step": 0, "probe/deduction/accuracy": 0.5}, {"step": 5})
    assert "| deduction | 1/2 = 50.0% [" in text and "| induction | no tasks | no tasks | 0 | 0 | 1 |" in text
    assert "50.0% -> nan% (steps 0 -> 5)" in text


def test_the_script_answers_a_finished_runs_probe_with_both_models(tmp_path, tiny_model_dir, capsys) -> None:
    from absolutezero.run import main as run_main
    from absolutezero_arith.env import ArithEnvironment
    from absolutezero_arith.expr import parse

    args = [f"out={tmp_path}", "env=arith", f"agent_options.model={tiny_model_dir}", "name=r", "steps=1",
            "progress=false", "agent_options.max_new_tokens=6", "selfplay.propose_batch=2", "selfplay.solve_batch=2",
            "selfplay.seed_size=1", "selfplay.seed_max_rounds=2", "probe.every=1", "probe.per_type=2",
            "probe.max_rounds=2", "agent_options.autocast_bf16=false", "checkpoint_every=1"]
    assert run_main(args) == 0
    run_dir = tmp_path / "r"
    env = ArithEnvironment()  # the tiny model rarely proposes a probe: give the run three tasks
    tasks = {"evaluate": [env._module("evaluate").make_task(parse(text, env.limits), env.limits)
                          for text in ("1 + 2", "3 + 4", "5 + 6")]}
    ProbeSet(tasks).save(run_dir / "probe_set.jsonl", env)
    capsys.readouterr()
    assert probe_paired.main([str(run_dir), "--before", str(tiny_model_dir)]) == 0
    overall = [line for line in capsys.readouterr().out.splitlines() if line.startswith("| overall |")]
    cells = [cell.strip() for cell in overall[0].split("|")[1:-1]]
    before, after, gained, lost = int(cells[1].split("/")[0]), int(cells[2].split("/")[0]), int(cells[3]), int(cells[4])
    assert cells[1].split("/")[1].startswith("3 ") and before + gained - lost == after
