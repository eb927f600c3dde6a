"""The update's forward/backward with and without the block inputs kept by generation.

::

    python benchmarks/update_paths.py --seed-buffers seeds.jsonl [--rounds 2] [key=value ...]

Runs a default self-play step from the seed buffers; when the step reaches its update
(the first that trains something, within ``--max-steps``),
the same batch is back-propagated (``Learner.accumulate_gradients``, no optimiser step)
alternately from the kept block inputs (``agent_options.reuse_frozen_states``, the
default) and through the whole model, ``--rounds`` times each, before the real update
goes on. Prints the median seconds of both, their ratio, how many samples took the kept
path, and the gradient gap (largest relative norm difference over the trained
parameters) next to the gap between two full passes with different micro-batches (the
size of rounding under the same precision), so the comparison is in one process on one
batch: the VM's drift between runs does not enter.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from collections.abc import Sequence
from typing import Any


def _gradients(agent: Any) -> dict[str, Any]:
    return {n: p.grad.detach().clone() for n, p in agent.model.named_parameters() if p.grad is not None}


def _gap(a: dict[str, Any], b: dict[str, Any]) -> float:
    return max(float((a[n] - b[n]).norm() / b[n].norm().clamp_min(1e-30)) for n in b)


def measure(agent: Any, samples: Sequence[Any], advantages: Sequence[float], rounds: int) -> dict[str, Any] | None:
    """Time both paths on one batch, alternating; gradients of the first of each. None
    when the batch trains nothing (every advantage 0)."""
    learner, kept = agent.learner, agent.backend.block_inputs
    if not any(a != 0 for a in advantages):
        return None
    seconds: dict[str, list[float]] = {"kept": [], "full": []}
    grads: dict[str, dict[str, Any]] = {}
    reused = 0.0
    for number in range(rounds):
        for path in ("kept", "full") if number % 2 == 0 else ("full", "kept"):
            started = time.perf_counter()
            stats = learner.accumulate_gradients(samples, advantages, kept if path == "kept" else None)
            seconds[path].append(time.perf_counter() - started)
            grads.setdefault(path, _gradients(agent))
            if path == "kept":
                reused = stats["reused_samples"]
    micro_batch = learner.micro_batch
    learner.micro_batch = micro_batch * 2  # the same full pass in other micro-batches: rounding's size
    try:
        learner.accumulate_gradients(samples, advantages, None)
        grads["full, other micro-batches"] = _gradients(agent)
    finally:
        learner.micro_batch = micro_batch
    learner.optimizer.zero_grad(set_to_none=True)
    return {
        "kept": statistics.median(seconds["kept"]), "full": statistics.median(seconds["full"]),
        "all": seconds, "reused_samples": reused, "trained_samples": stats["trained_samples"],
        "gap_kept_vs_full": _gap(grads["kept"], grads["full"]),
        "gap_micro_batches": _gap(grads["full, other micro-batches"], grads["full"]),
    }


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seed-buffers", required=True, help="seed_buffers.jsonl to start the step from")
    parser.add_argument("--rounds", type=int, default=2, help="timings per path (default 2)")
    parser.add_argument("--max-steps", type=int, default=3, help="steps to run until one trains something")
    parser.add_argument("overrides", nargs="*", help="run-config key=value overrides")
    args = parser.parse_args(argv)

    from absolutezero.components import agent_kwargs, env_kwargs, resolve_options
    from absolutezero.config import load_config
    from absolutezero.registry import make_agent, make_environment
    from absolutezero.seeding import start_buffers
    from absolutezero.selfplay import SelfPlayTrainer

    config = resolve_options(load_config(["env=code", "progress=false", *args.overrides,
                                          f"seed_buffers={args.seed_buffers}"]))
    env = make_environment(config.env, env_kwargs(config))
    agent = make_agent(config.agent, agent_kwargs(config))
    try:
        if getattr(getattr(agent, "backend", None), "block_inputs", None) is None:
            print("this agent keeps no block inputs (reuse_frozen_states off, see the log); nothing to compare")
            return 2
        trainer = SelfPlayTrainer.from_config(env, agent, config)
        start_buffers(trainer, config.seed_buffers)
        real_update = agent.update
        found: dict[str, Any] = {}

        def update(samples: Sequence[Any], advantages: Sequence[float]) -> dict[str, float]:
            if not found:
                found.update(measure(agent, samples, advantages, args.rounds) or {})
            return real_update(samples, advantages)

        agent.update = update
        for _ in range(args.max_steps):
            trainer.step()
            if found:
                break
    finally:
        env.close()
        agent.close()
    if not found:
        print(f"no update in {args.max_steps} step(s) trained anything (all advantages 0)")
        return 2
    print(f"update of one step's batch ({found['trained_samples']:.0f} trained samples, "
          f"{found['reused_samples']:.0f} from kept block inputs), median of {args.rounds}:")
    print(f"  full pass:           {found['full']:.1f} s   {found['all']['full']}")
    print(f"  from kept inputs:    {found['kept']:.1f} s   {found['all']['kept']}")
    print(f"  full / kept:         {found['full'] / found['kept']:.2f}x")
    print(f"  gradient gap, kept vs full:                 {found['gap_kept_vs_full']:.2e}")
    print(f"  gradient gap, full in other micro-batches:  {found['gap_micro_batches']:.2e}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
