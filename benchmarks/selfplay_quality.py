"""Self-play quality at default settings: valid proposals, learnability signal, step time.

Runs the real trainer with the run config's defaults (any ``key=value`` overrides them):
seeding (the untrained model proposes until each buffer holds ``selfplay.seed_size``
tasks), then ``--steps`` training steps, and prints what issue #9 asks of the default
run, each beside its target::

    python benchmarks/selfplay_quality.py                  # seeding + 2 steps, defaults
    python benchmarks/selfplay_quality.py --steps 0 selfplay.seed_size=32
    python benchmarks/selfplay_quality.py --speed           # + generation side by side

Figures:

* valid rate per task type: share of all proposals (seeding and steps) that the
  environment accepted, made by the model before and during its first updates;
* learnable share: valid step proposals whose n sampled solver rollouts gave
  0 < p-bar < 1, i.e. a non-zero proposer reward;
* new tasks: distinct tasks each buffer gained beyond the environment's seed;
* step time with its breakdown (generation, validation, verification, update).

``--speed`` times generation of one step's real prompts (the proposer batch, then the
solve phase: learnability rollouts and solve batch) twice on the same model: first as
the HF backend did before (a bfloat16 copy, batches of 16, every prompt prefilled on its
own), then as it does by default now (float32 where bf16 is emulated, one batch, shared
prompts and prefixes prefilled once). Same prompt ids, same templates, same seed, both
capped at ``--speed-tokens`` new tokens. Tokens per second counts completion tokens over
wall time, prefill included.
"""

from __future__ import annotations

import argparse
import collections
import copy
import json
import os
import re
import sys
import time

import numpy as np
from omegaconf import OmegaConf

from absolutezero import hookimpl

TARGET_VALID = {"deduction": 0.5, "abduction": 0.5, "induction": 0.3}
TARGET_LEARNABLE = 0.25


class _Rejections:
    """Plugin that counts rejection reasons per task type (and can dump the responses)."""

    def __init__(self, dump: str | None) -> None:
        self.reasons: dict[str, collections.Counter] = collections.defaultdict(collections.Counter)
        self.dump = open(dump, "w", encoding="utf-8") if dump else None

    def _write(self, record: dict) -> None:
        if self.dump is not None:
            self.dump.write(json.dumps(record) + "\n")

    @hookimpl
    def absolutezero_task_rejected(self, task_type, response, reason, step):
        # digits and quoted values vary; the kind of failure is what matters
        kind = re.sub(r"'[^']*'|\"[^\"]*\"|\d+", "_", reason)[:70]
        self.reasons[task_type][kind] += 1
        self._write({"step": step, "task_type": task_type, "valid": False, "reason": reason, "response": response})

    @hookimpl
    def absolutezero_task_accepted(self, task, step):
        self._write({"step": step, "task_type": task.task_type, "valid": True, "payload": dict(task.payload)})


def _rate(flags: list[float]) -> str:
    return f"{np.mean(flags):.2f} ({int(sum(flags))}/{len(flags)})" if flags else "n/a"


def _speed(trainer, agent, phases: list[str], max_new_tokens: int) -> None:
    """Generation of one step's prompts: the previous HF path vs today's default."""
    import torch

    from absolutezero_policy.hf_backend import HFBackend

    env = trainer.env
    settings = trainer.settings
    rng = np.random.default_rng(12345)
    proposer = []
    for task_type in trainer.task_types:
        for _ in range(settings.propose_batch):
            refs = trainer.buffers.sample_references(env.reference_types(task_type), settings.references, rng)
            proposer.append(env.proposer_prompt(task_type, refs, rng))
    solver = []
    for task_type in trainer.task_types:
        tasks = trainer.buffers.sample_for_solving(task_type, settings.propose_batch, rng, 0.0)
        for task in tasks:  # valid proposals' rollouts: n copies each
            solver.extend([env.solver_prompt(task)] * settings.learnability_samples)
        solver.extend(env.solver_prompt(t) for t in trainer.buffers.sample_for_solving(task_type, settings.solve_batch, rng, 0.5))
    current = agent.backend
    saved_limit = current.max_new_tokens
    current.max_new_tokens = max_new_tokens
    previous = HFBackend(
        copy.deepcopy(agent.model).to(torch.bfloat16).requires_grad_(False), agent.tokenizer,
        stop_token_ids=sorted(current.stop_token_ids), stop_strings=current.stop_strings,
        batch_size=16, max_new_tokens=max_new_tokens,
        temperature=current.temperature, top_p=current.top_p, share_prefixes=False,
    )
    print(f"\ngeneration side by side ({os.cpu_count()} cores; {len(proposer)} proposer prompts, "
          f"{len(solver)} solve-phase prompts; batch size before 16, now {current.batch_size}; "
          f"at most {max_new_tokens} new tokens)")
    for phase, prompts in (("propose", proposer), ("solve", solver)):
        if phase not in phases:
            continue
        ids = [agent.encode_prompt(p) for p in prompts]
        templates = [agent.encode_template(p) for p in prompts]
        figures = {}
        for label, backend in (("before: bf16 copy, no sharing", previous), ("now: default", current)):
            started = time.perf_counter()
            samples = backend.generate(ids, greedy=False, seeds=list(range(len(ids))), templates=templates)
            seconds = time.perf_counter() - started
            tokens = sum(len(s.completion_ids) for s in samples)
            figures[label] = tokens / seconds
            print(f"  {phase:8s} {label:32s} {seconds:7.1f} s  {tokens:5d} tokens  {tokens / seconds:6.1f} tok/s  "
                  f"(prompt tokens {sum(map(len, ids))})")
        before, now = figures.values()
        print(f"  {phase:8s} speed-up {now / before:.2f}x (target >= 2x)")
    current.max_new_tokens = saved_limit


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--steps", type=int, default=2, help="training steps after seeding (default 2)")
    parser.add_argument("--speed", action="store_true", help="also time generation side by side")
    parser.add_argument("--speed-phases", default="propose,solve", help="phases to time (default both)")
    parser.add_argument("--speed-tokens", type=int, default=64,
                        help="new-token cap for the side-by-side runs (default 64; the bf16 path is slow)")
    parser.add_argument("--dump", default=None, help="write every proposal (JSONL) here")
    parser.add_argument("--save-seeds", default=None, help="write the seeded buffers here (reuse: seed_buffers=PATH)")
    parser.add_argument("overrides", nargs="*", help="run-config key=value overrides")
    args = parser.parse_args(argv)
    if args.steps < 0:
        parser.error("--steps must be >= 0")

    from absolutezero.config import ConfigError, load_config
    from absolutezero.plugins import get_plugin_manager
    from absolutezero.registry import make_agent, make_environment
    from absolutezero.components import agent_kwargs, env_kwargs, resolve_options
    from absolutezero.selfplay import SelfPlayTrainer

    try:
        config = resolve_options(load_config(["env=code", "progress=false", *args.overrides]))
    except ConfigError as error:
        print(f"selfplay_quality: error: {error}", file=sys.stderr)
        return 2
    print(f"agent={config.agent} cores={os.cpu_count()} selfplay={OmegaConf.to_container(config.selfplay)} "
          f"agent_options={OmegaConf.to_container(config.agent_options)}", flush=True)
    started = time.perf_counter()
    env = make_environment(config.env, env_kwargs(config))
    agent = make_agent(config.agent, agent_kwargs(config))
    print(f"load: {time.perf_counter() - started:.1f} s", flush=True)
    try:
        rejections = _Rejections(args.dump)
        pm = get_plugin_manager()
        pm.register(rejections, name="selfplay-quality-rejections")
        trainer = SelfPlayTrainer.from_config(env, agent, config, pm)
        if config.seed_buffers:
            from absolutezero.buffers import BufferSet

            trainer.use_seed_buffers(BufferSet.load(config.seed_buffers, int(config.selfplay.buffer_capacity)))
            seeding = {"seed/rounds": 0.0, "time/seeding": 0.0,
                       **{f"seed/{t}/tasks": 0.0 for t in trainer.task_types}}
        else:
            seeding = trainer.seed().metrics
        if args.save_seeds:
            trainer.buffers.save(args.save_seeds)
        base = {t: 1 for t in trainer.buffers.task_types}  # the identity seed of each buffer
        valid: dict[str, list[float]] = {t: [] for t in trainer.task_types}
        learnable: dict[str, list[float]] = {t: [] for t in trainer.task_types}
        print(f"seeding: {seeding['time/seeding']:.1f} s, {int(seeding['seed/rounds'])} rounds, "
              + ", ".join(f"{t} valid {seeding.get(f'seed/{t}/valid_rate', float('nan')):.2f} "
                          f"+{int(seeding[f'seed/{t}/tasks'])}" for t in trainer.task_types), flush=True)
        seed_valid = {t: seeding.get(f"seed/{t}/valid_rate") for t in trainer.task_types}
        times = []
        for _ in range(args.steps):
            m = trainer.step().metrics
            times.append(m)
            for task_type in trainer.task_types:
                prefix = f"propose/{task_type}"
                if f"{prefix}/valid_rate" in m:
                    n = config.selfplay.propose_batch
                    valid[task_type].extend([1.0] * round(m[f"{prefix}/valid_rate"] * n))
                    valid[task_type].extend([0.0] * (n - round(m[f"{prefix}/valid_rate"] * n)))
                if f"{prefix}/learnable_rate" in m:
                    k = round(m[f"{prefix}/valid_rate"] * config.selfplay.propose_batch)
                    hits = round(m[f"{prefix}/learnable_rate"] * k)
                    learnable[task_type].extend([1.0] * hits + [0.0] * (k - hits))
            print(f"step {trainer.step_count}: {m['time/step']:.1f} s (generation {m['time/generation']:.1f}, "
                  f"validation {m['time/validation']:.1f}, verification {m['time/verification']:.1f}, "
                  f"update {m['time/update']:.1f}); generated {int(m['tokens/generated'])} tokens, "
                  f"trained on {int(m['tokens/trained'])}; "
                  + ", ".join(f"{t}: valid {m.get(f'propose/{t}/valid_rate', float('nan')):.2f} "
                              f"learnable {m.get(f'propose/{t}/learnable_rate', float('nan')):.2f} "
                              f"solve {m.get(f'solve/{t}/solve_rate', float('nan')):.2f}" for t in trainer.task_types),
                  flush=True)
        sizes = trainer.buffers.sizes()
        print("\nsummary (target in brackets)")
        for task_type in trainer.task_types:
            seeded = seed_valid[task_type]
            print(f"  {task_type:10s} valid: seeding {seeded if seeded is None else f'{seeded:.2f}'}, "
                  f"steps {_rate(valid[task_type])} [>= {TARGET_VALID.get(task_type, 0):.2f}]; "
                  f"learnable {_rate(learnable[task_type])} [>= {TARGET_LEARNABLE:.2f}]; "
                  f"new tasks in buffer {sizes[task_type] - base[task_type]}")
        for task_type, counter in rejections.reasons.items():
            print(f"  {task_type} rejections: " + "; ".join(f"{n}x {kind}" for kind, n in counter.most_common(5)))
        every = [x for flags in learnable.values() for x in flags]
        print(f"  all types  learnable share of valid step proposals: {_rate(every)} [>= {TARGET_LEARNABLE:.2f}]")
        if times:
            for key in ("step", "generation", "validation", "verification", "update"):
                values = [m[f"time/{key}"] for m in times]
                print(f"  time/{key:12s} median {np.median(values):7.1f} s  (per step: "
                      + ", ".join(f"{v:.1f}" for v in values) + ")")
        if args.speed:
            _speed(trainer, agent, args.speed_phases.split(","), args.speed_tokens)
    finally:
        agent.close()
        env.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
