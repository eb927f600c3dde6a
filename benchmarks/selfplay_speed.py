"""Self-play speed: seconds per step, generation and training throughput.

Runs the real trainer (seeding, then ``--steps`` steps) with the configured agent
(default: the embedded Qwen2.5-Coder-0.5B) and prints one line per step and a summary::

    python benchmarks/selfplay_speed.py                       # 3 steps, env=code, defaults
    python benchmarks/selfplay_speed.py --steps 2 env=arith agent_options.max_new_tokens=128

Any ``key=value`` is a run-config override (see ``python -m absolutezero.run --help``).
Figures: ``s/step`` is wall time of a step (generation + validation + verification +
update); generation tok/s counts sampled completion tokens over generation time;
training tok/s counts prompt + completion tokens of the trained samples over update time.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time

from omegaconf import OmegaConf


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--steps", type=int, default=3, help="training steps to time (default 3)")
    parser.add_argument("overrides", nargs="*", help="run-config key=value overrides")
    args = parser.parse_args(argv)
    if args.steps < 1:
        parser.error("--steps must be >= 1")

    from absolutezero.config import ConfigError, load_config
    from absolutezero.registry import make_agent, make_environment
    from absolutezero.components import agent_kwargs, env_kwargs, resolve_options
    from absolutezero.selfplay import SelfPlayTrainer

    try:
        config = resolve_options(load_config(["env=code", *args.overrides]))
    except ConfigError as error:
        print(f"selfplay_speed: error: {error}", file=sys.stderr)
        return 2
    print(f"env={config.env} agent_options={OmegaConf.to_container(config.agent_options)} cores={os.cpu_count()} "
          f"selfplay={OmegaConf.to_container(config.selfplay)} "
          f"")
    started = time.perf_counter()
    env = make_environment(config.env, env_kwargs(config))
    agent = make_agent(config.agent, agent_kwargs(config))
    print(f"load: {time.perf_counter() - started:.1f} s")
    rows = []
    try:
        trainer = SelfPlayTrainer.from_config(env, agent, config)
        seeding = trainer.seed()
        print(f"seeding: {seeding.metrics['time/seeding']:.1f} s, buffers {trainer.buffers.sizes()}")
        for _ in range(args.steps):
            m = trainer.step().metrics
            gen_tps = m["tokens/generated"] / max(m["time/generation"], 1e-9)
            train_tps = m["tokens/trained"] / max(m["time/update"], 1e-9)
            rows.append((m["time/step"], gen_tps, train_tps))
            print(
                f"step {trainer.step_count}: {m['time/step']:.1f} s/step (generation {m['time/generation']:.1f}, "
                f"validation {m['time/validation']:.2f}, verification {m['time/verification']:.2f}, "
                f"update {m['time/update']:.1f}); generated {m['tokens/generated']:.0f} tok at {gen_tps:.0f} tok/s; "
                f"trained {m['tokens/trained']:.0f} tok at {train_tps:.0f} tok/s; "
                f"valid {m.get('overall/valid_rate', 0):.2f} solve {m.get('overall/solve_rate', 0):.2f}",
                flush=True,
            )
    finally:
        env.close()
        agent.close()
    print(
        f"summary over {len(rows)} steps: {statistics.mean(r[0] for r in rows):.1f} s/step, "
        f"generation {statistics.mean(r[1] for r in rows):.0f} tok/s, "
        f"training {statistics.mean(r[2] for r in rows):.0f} tok/s"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
