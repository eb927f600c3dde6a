"""Induction valid-proposal rate of the untrained model, with rejection reasons.

References come from a run's seed buffers (``<run>/seed_buffers.jsonl``: the identity
seeds plus the tables the untrained model itself proposed while seeding), so the
proposer sees the kind of queries and tables it meets in a real run::

    python environments/sql/benchmarks/sql_induction_rate.py 48 /tmp/sqlruns/sql-10/seed_buffers.jsonl

Why a separate script: it measures a changed induction prompt without repeating a whole
run's seeding (deduction and abduction are measured by the run itself, see
``sql_quality.py``). Every proposal is written to ``--dump`` (JSONL) if given.
"""

from __future__ import annotations

import argparse
import collections
import json
import sys
import time

import numpy as np


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("count", type=int, help="number of induction proposals")
    parser.add_argument("seed_buffers", help="a run's seed_buffers.jsonl")
    parser.add_argument("--dump", default=None, help="write every proposal (JSONL) here")
    parser.add_argument("--seed", type=int, default=7, help="generator seed for the reference draws")
    args = parser.parse_args(argv)

    from absolutezero.components import agent_kwargs
    from absolutezero.config import load_config
    from absolutezero.protocol import Task
    from absolutezero.registry import make_agent
    from absolutezero_sql.env import SqlEnvironment

    config = load_config(["env=sql"])
    agent = make_agent(config.agent, agent_kwargs(config))
    env = SqlEnvironment()
    try:
        references = []
        for line in open(args.seed_buffers, encoding="utf-8"):
            record = json.loads(line)
            if "task" in record and record["task"]["task_type"] in env.reference_types("induction"):
                references.append(Task.from_json(record["task"]))
        rng = np.random.default_rng(args.seed)
        prompts = []
        for _ in range(args.count):
            chosen = [references[j] for j in rng.choice(len(references), size=min(3, len(references)), replace=False)]
            prompts.append(env.proposer_prompt("induction", chosen, rng))
        started = time.perf_counter()
        samples = agent.generate(prompts)
        responses = [p.prefill + s[0].text for p, s in zip(prompts, samples)]
        results = env.validate(prompts, responses)
        print(f"generation and validation: {time.perf_counter() - started:.1f} s")
        reasons = collections.Counter(r.reason[:110] for r in results if not r.valid)
        valid = sum(r.valid for r in results)
        print(f"induction valid {valid / len(results):.2f} ({valid}/{len(results)}) [target >= 0.30]")
        for reason, count in reasons.most_common():
            print(f"  {count:3d}x {reason}")
        if args.dump:
            with open(args.dump, "w", encoding="utf-8") as handle:
                for response, result in zip(responses, results):
                    handle.write(json.dumps({"valid": result.valid, "reason": result.reason, "response": response}) + "\n")
    finally:
        env.close()
        agent.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
