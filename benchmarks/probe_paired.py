"""A finished run's probe set, answered by the model before and after: paired counts.

The run's metrics give the probe accuracy at each scoring with a 95% Wilson interval,
an *unpaired* view: with 32 tasks per type those intervals are ~±15 points wide. The
probe tasks are the same before and after, so the strong test is the paired one: how
many tasks the trained model answers that the untrained one did not (gained), how
many the other way round (lost), and the exact two-sided sign-test p-value of gained
against lost (McNemar's exact test), per task type and overall.

Both models answer greedily with the run's own solver prompts and verification
(:meth:`SelfPlayTrainer.solve_greedily`, as the run's probe scoring does), so the
"before" and "after" lines should equal the run's first and last probe metrics; the
script prints those beside them as a check::

    python benchmarks/probe_paired.py runs/default1                 # embedded vs latest checkpoint
    python benchmarks/probe_paired.py runs/default1 --after runs/default1/checkpoints/step_40

The probe set is the model's own (proposed by the untrained model, held out of every
training batch); no benchmark data is read.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

from absolutezero.checkpoint import load_checkpoint
from absolutezero.components import env_kwargs
from absolutezero.evaluate import EvalArgs, build_agent
from absolutezero.intervals import wilson_interval
from absolutezero.paired import sign_test_p
from absolutezero.plugins import get_plugin_manager
from absolutezero.probe import PROBE_FILE, ProbeSet
from absolutezero.registry import make_environment
from absolutezero.selfplay import SelfPlayTrainer


def answer_probe(run_dir: Path, model: str, config: Any, env: Any, probe: ProbeSet) -> list[bool]:
    """Greedy verdicts of ``model`` (a model name or a run/checkpoint folder) on the probe
    set, in :meth:`ProbeSet.all_tasks` order, with the run's decoding length."""
    agent, _ = build_agent(EvalArgs(model=model, max_new_tokens=int(config.agent_options.max_new_tokens)))
    try:
        trainer = SelfPlayTrainer.from_config(env, agent, config, get_plugin_manager([]))
        trainer.progress = False
        return [bool(verdict.correct) for verdict in trainer.solve_greedily(probe.all_tasks())]
    finally:
        close = getattr(agent, "close", None)
        if close is not None:
            close()


def paired_rows(probe: ProbeSet, before: list[bool], after: list[bool]) -> list[dict[str, Any]]:
    """One row per task type and one ``overall``: sizes, both accuracies with their 95%
    Wilson intervals, gained, lost and the exact sign-test p-value."""
    if len(before) != len(after) or len(before) != len(probe.all_tasks()):
        raise ValueError(f"{len(before)} and {len(after)} verdicts for {len(probe.all_tasks())} probe tasks")
    spans, offset = {}, 0
    for task_type, tasks in probe.tasks.items():
        spans[task_type] = (offset, offset + len(tasks))
        offset += len(tasks)
    spans["overall"] = (0, offset)
    rows = []
    for name, (start, end) in spans.items():
        b, a = before[start:end], after[start:end]
        n = end - start
        gained = sum(1 for x, y in zip(b, a) if y and not x)
        lost = sum(1 for x, y in zip(b, a) if x and not y)
        rows.append({
            "type": name, "tasks": n, "before": sum(b), "after": sum(a),
            "before_ci": wilson_interval(sum(b), n) if n else (0.0, 1.0),
            "after_ci": wilson_interval(sum(a), n) if n else (0.0, 1.0),
            "gained": gained, "lost": lost, "p": sign_test_p(gained, lost),
        })
    return rows


def run_metrics_probe(run_dir: Path) -> tuple[dict[str, Any], dict[str, Any]]:
    """The run's first and last metrics records that hold a probe score ({} when none)."""
    scored = []
    with open(run_dir / "metrics.jsonl", encoding="utf-8") as handle:
        for line in handle:
            record = json.loads(line)
            if "probe/overall/accuracy" in record:
                scored.append(record)
    return (scored[0], scored[-1]) if scored else ({}, {})


def format_rows(rows: list[dict[str, Any]], first: dict[str, Any], last: dict[str, Any]) -> str:
    def pct(count: int, total: int, ci: tuple[float, float]) -> str:
        if not total:
            return "no tasks"
        return f"{count}/{total} = {100 * count / total:.1f}% [{100 * ci[0]:.0f}, {100 * ci[1]:.0f}]"

    lines = [
        "| type | before (95% CI) | after (95% CI) | gained | lost | exact p | run's metrics: first -> last |",
        "| --- | --- | --- | --- | --- | --- | --- |",
    ]
    for row in rows:
        key = f"probe/{row['type']}/accuracy"
        logged = f"{100 * first.get(key, float('nan')):.1f}% -> {100 * last.get(key, float('nan')):.1f}%"
        lines.append(
            f"| {row['type']} | {pct(row['before'], row['tasks'], row['before_ci'])} "
            f"| {pct(row['after'], row['tasks'], row['after_ci'])} | {row['gained']} | {row['lost']} "
            f"| {row['p']:.3g} | {logged} (steps {first.get('step')} -> {last.get('step')}) |"
        )
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("run", type=Path, help="the run folder (holds probe_set.jsonl and checkpoints)")
    parser.add_argument("--before", default=None, help="model before training (default: the run's agent_options.model)")
    parser.add_argument("--after", default=None, help="run or checkpoint folder after training (default: the run's latest)")
    args = parser.parse_args(argv)
    if not (args.run / PROBE_FILE).is_file():
        print(f"error: {args.run / PROBE_FILE} does not exist: pass a run folder of a run with probe.every > 0",
              file=sys.stderr)
        return 2
    config = load_checkpoint(args.run).config
    env = make_environment(str(config.env), env_kwargs(config))
    try:
        task_types = tuple(config.selfplay.task_types) or tuple(env.task_types)
        probe = ProbeSet.load(args.run / PROBE_FILE, env, task_types)
        before = answer_probe(args.run, args.before or str(config.agent_options.model), config, env, probe)
        after = answer_probe(args.run, str(args.after or args.run), config, env, probe)
    finally:
        env.close()
    first, last = run_metrics_probe(args.run)
    print(format_rows(paired_rows(probe, before, after), first, last))
    return 0


if __name__ == "__main__":
    sys.exit(main())
