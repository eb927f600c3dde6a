"""Generation with and without prompt-lookup drafts on one self-play step's own prompts.

::

    python benchmarks/lookup_decoding.py --seed-buffers runs/<name>/seed_buffers.jsonl \\
        [--budgets 0,32,64] [--repeats 3] [key=value ...]

Why this and not only ``step_speed.py``: with drafts the samples are the same in
distribution but not token for token (bf16 logits depend on a call's shape), so two
self-play runs soon generate different rollouts, and a step-time ratio mixes the speed-up
with a different amount of work. Here every setting replays the *same* generate calls
(prompts, answer templates, greedy or not) of one default step, recorded once, with the
same per-row seeds for every setting in a repeat (new seeds per repeat), and the figure
that compares them is time per generated token.

How: the run's agent and trainer are built as ``absolutezero.run env=code`` builds them,
start from ``--seed-buffers``, and run one step with drafts off while the backend's
``generate`` calls are recorded. Then, ``--repeats`` times, each ``--budgets`` value
(``agent_options.lookup_budget``; 0 = off) replays every recorded call, the order of the
settings rotating from repeat to repeat because this VM's speed drifts. Printed per
setting: seconds, completion tokens, tokens/s, decoding calls (model calls after the
prefill) and tokens per decoding call, summed over repeats, and tokens/s against
budget 0.
"""

from __future__ import annotations

import argparse
import time
from collections.abc import Sequence
from typing import Any


def _record_step(trainer: Any, backend: Any) -> list[dict[str, Any]]:
    """One self-play step with drafts off; the keyword arguments of its generate calls."""
    calls: list[dict[str, Any]] = []
    original = backend.generate

    def recording(prompt_ids: Any, **kwargs: Any) -> Any:
        calls.append({"prompt_ids": [list(p) for p in prompt_ids], **kwargs})
        return original(prompt_ids, **kwargs)

    backend.generate = recording
    try:
        trainer.step()
    finally:
        backend.generate = original
    return calls


def _replay(backend: Any, calls: Sequence[dict[str, Any]], budget: int, repeat: int) -> dict[str, float]:
    """Every recorded call once with ``lookup_budget = budget``; seeds shifted by ``repeat``."""
    backend.lookup_budget = budget
    decoding = 0
    original = backend._forward

    def counting(**inputs: Any) -> Any:
        nonlocal decoding
        decoding += "fed" in inputs  # the decoding loop names it; prefills do not
        return original(**inputs)

    backend._forward = counting
    seconds = tokens = 0.0
    try:
        for call in calls:
            seeds = [int(seed) + 1_000_003 * repeat for seed in call["seeds"]]
            started = time.perf_counter()
            options = {key: value for key, value in call.items() if key not in ("prompt_ids", "seeds")}
            samples = backend.generate(call["prompt_ids"], seeds=seeds, **options)
            seconds += time.perf_counter() - started
            tokens += sum(len(s.completion_ids) for s in samples)
    finally:
        backend._forward = original
    return {"seconds": seconds, "tokens": tokens, "calls": float(decoding)}


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seed-buffers", required=True, help="a run's seed_buffers.jsonl")
    parser.add_argument("--budgets", default="0,32", help="lookup_budget values, comma-separated (0 = off)")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("overrides", nargs="*", help="run options, as for absolutezero.run")
    args = parser.parse_args(argv)
    budgets = [int(b) for b in args.budgets.split(",")]
    if 0 not in budgets or any(b < 0 for b in budgets) or args.repeats < 1:
        parser.error("--budgets needs 0 (the reference) and values >= 0; --repeats >= 1")

    from absolutezero.components import agent_kwargs, env_kwargs, resolve_options
    from absolutezero.config import load_config
    from absolutezero.registry import make_agent, make_environment
    from absolutezero.seeding import start_buffers
    from absolutezero.selfplay import SelfPlayTrainer

    config = resolve_options(load_config(
        ["env=code", "progress=false", "probe.every=0", f"seed_buffers={args.seed_buffers}", *args.overrides]
    ))
    env = make_environment(config.env, env_kwargs(config))
    agent = make_agent(config.agent, agent_kwargs(config))
    try:
        backend = agent.backend
        if not hasattr(backend, "lookup_budget"):
            parser.error("prompt-lookup drafts are the hf backend's; this run uses another")
        trainer = SelfPlayTrainer.from_config(env, agent, config)
        start_buffers(trainer, config.seed_buffers)
        backend.lookup_budget = 0
        calls = _record_step(trainer, backend)
        print(f"recorded {len(calls)} generate calls of one step: "
              f"{', '.join(str(len(c['prompt_ids'])) for c in calls)} prompts", flush=True)
        totals = {b: {"seconds": 0.0, "tokens": 0.0, "calls": 0.0} for b in budgets}
        for repeat in range(args.repeats):
            order = budgets[repeat % len(budgets):] + budgets[: repeat % len(budgets)]
            for budget in order:
                figures = _replay(backend, calls, budget, repeat)
                for key, value in figures.items():
                    totals[budget][key] += value
                print(f"  repeat {repeat + 1} budget {budget}: {figures['seconds']:.1f} s, "
                      f"{figures['tokens']:.0f} tokens, {figures['calls']:.0f} decoding calls", flush=True)
    finally:
        env.close()
        agent.close()
    reference = totals[0]["tokens"] / totals[0]["seconds"]
    print(f"\n{'budget':>8} {'seconds':>9} {'tokens':>8} {'tok/s':>7} {'calls':>7} {'tok/call':>8} {'vs off':>7}")
    for budget in budgets:
        t = totals[budget]
        rate = t["tokens"] / t["seconds"]
        print(f"{budget:>8} {t['seconds']:>9.1f} {t['tokens']:>8.0f} {rate:>7.1f} {t['calls']:>7.0f} "
              f"{t['tokens'] / max(t['calls'], 1):>8.2f} {rate / reference:>6.2f}x")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
