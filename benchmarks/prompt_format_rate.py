"""Print how often the policy writes well-formed proposals and answers in the code env.

Usage::

    python benchmarks/prompt_format_rate.py [--samples 16] [--max-new-tokens 192]
        [--prefill <env option>] [--roles propose,solve] [--task-types deduction,...]
        [--dump /tmp/completions.jsonl]

Why: a 135M model that cannot write a parseable answer gets a constant format penalty,
so every advantage is zero and self-play never starts. Prompts, the assistant prefill
and parsing tolerance decide that bootstrap rate, and this script measures it for every
role x task type with exactly the environment's own prompts, ``validate`` and
``verify`` (the response scored is ``prompt.prefill + completion``, as in training).

What is sampled (no benchmark data: CruxEval is evaluation only and never appears here):

* proposer, per task type: the prompt with the identity seed as the only reference, and
  prompts with the seed plus hand-written reference tasks; ``--samples`` completions
  sampled at the agent's temperature (1.0, as in training), spread over the prompts;
* solver, per task type: hand-written tasks built with ``env.make_task`` (deduction,
  abduction) or validated from a hand-written induction proposal; ``--samples`` sampled
  completions spread over the tasks, plus one greedy completion per task (as in
  evaluation).

Printed per row: format-ok rate, valid rate (proposer) or correct rate (solver), the
share of completions cut at ``--max-new-tokens``, mean completion tokens, and the most
common rejection reasons (numbers in reasons are masked so similar reasons group).
"""

from __future__ import annotations

import argparse
import collections
import json
import re
import sys
import time
from collections.abc import Sequence

import numpy as np

from absolutezero.protocol import Prompt, Task
from absolutezero_code.env import CodeEnvironment

# Hand-written (program, input) pairs for references and solver tasks. Written for this
# benchmark; deliberately small so a 135M model has a real chance to solve some.
HANDWRITTEN: tuple[tuple[str, str], ...] = (
    ("def f(s):\n    return s[::-1]", "'hello'"),
    ("def f(nums):\n    return [n * 2 for n in nums if n > 0]", "[3, -1, 4]"),
    ("def f(a, b):\n    return a * b + 1", "3, 4"),
    (
        "def f(text):\n    count = 0\n    for ch in text:\n        if ch in 'aeiou':\n"
        "            count += 1\n    return count",
        "'banana'",
    ),
    ("def f(d):\n    return sorted(d.keys())", "{'b': 1, 'a': 2}"),
    ("def f(n):\n    total = 0\n    for i in range(n):\n        total += i\n    return total", "5"),
)
# A hand-written induction proposal (program, inputs, message) for the induction solver.
INDUCTION_PROGRAMS: tuple[tuple[str, tuple[str, ...], str], ...] = (
    (
        "def f(x):\n    return x * 3",
        ("1", "2", "5", "10", "0", "-4"),
        "Multiplies the number by three.",
    ),
    (
        "def f(s):\n    return s.upper()",
        ("'abc'", "'Hi'", "'x y'", "'python'", "'ok'", "'Zed'"),
        "Turns the text into capital letters.",
    ),
    (
        "def f(nums):\n    return sum(nums)",
        ("[1, 2]", "[5]", "[]", "[3, 3, 3]", "[10, -2]", "[7, 1, 1]"),
        "Adds the numbers of the list.",
    ),
)


def _fence(tag: str, body: str) -> str:
    return f"```{tag}\n{body}\n```"


def _outputs(env: CodeEnvironment, pairs: Sequence[tuple[str, str]]) -> list[str]:
    results = env.executor.run_many(list(pairs), determinism_runs=1)
    outputs = []
    for (program, input), result in zip(pairs, results):
        if not result.ok or result.output is None:
            raise RuntimeError(f"hand-written task f({input}) failed: {result.reason}")
        outputs.append(result.output)
    return outputs


def triplet_tasks(env: CodeEnvironment, task_type: str) -> list[Task]:
    """Hand-written deduction/abduction tasks, gold outputs from the executor."""
    outputs = _outputs(env, HANDWRITTEN)
    return [env.make_task(task_type, p, i, o) for (p, i), o in zip(HANDWRITTEN, outputs)]


def induction_tasks(env: CodeEnvironment) -> list[Task]:
    """Hand-written induction tasks, validated through the environment's own path."""
    prompts, responses = [], []
    for program, inputs, message in INDUCTION_PROGRAMS:
        reference = Task("deduction", {"program": program, "input": inputs[0], "output": "0"})
        prompts.append(env.proposer_prompt("induction", [reference], np.random.default_rng(0)))
        blocks = "\n".join(_fence("input", item) for item in inputs)
        responses.append(f"<answer>\n{blocks}\n{_fence('message', message)}\n</answer>")
    tasks = []
    for validation in env.validate(prompts, responses):
        if validation.task is None:
            raise RuntimeError(f"hand-written induction task rejected: {validation.reason}")
        tasks.append(validation.task)
    return tasks


def proposer_prompts(env: CodeEnvironment, task_type: str) -> list[Prompt]:
    """The seed-only prompt plus prompts with seed + hand-written references."""
    seed_types = env.reference_types(task_type)
    seeds = [task for t in seed_types for task in env.seed_tasks(t)]
    references = triplet_tasks(env, seed_types[0])
    rng = np.random.default_rng(0)
    prompts = [env.proposer_prompt(task_type, seeds, rng)]
    for start in range(0, 6, 2):
        shown = references[start : start + 2] + seeds
        prompts.append(env.proposer_prompt(task_type, shown, rng))
    return prompts


def _spread(items: Sequence, total: int) -> list:
    """``total`` items cycling through ``items`` (samples spread evenly over prompts)."""
    return [items[k % len(items)] for k in range(total)]


_NUMBER = re.compile(r"\d+")


def _reason_key(reason: str) -> str:
    return _NUMBER.sub("N", reason)[:90]


class Row:
    def __init__(self, label: str) -> None:
        self.label = label
        self.n = self.format_ok = self.good = self.cut = self.tokens = 0
        self.reasons: collections.Counter[str] = collections.Counter()

    def add(self, format_ok: bool, good: bool, reason: str, sample) -> None:
        self.n += 1
        self.format_ok += bool(format_ok)
        self.good += bool(good)
        self.cut += sample.finish_reason == "length"
        self.tokens += len(sample.completion_ids)
        if not good:
            self.reasons[_reason_key(reason)] += 1

    def line(self, top: int) -> str:
        n = max(self.n, 1)
        head = (
            f"{self.label:<28} n={self.n:<3} format={self.format_ok / n:5.0%}  "
            f"good={self.good / n:5.0%}  cut={self.cut / n:4.0%}  tokens={self.tokens / n:5.0f}"
        )
        reasons = "".join(f"\n    {count:>3} x {reason}" for reason, count in self.reasons.most_common(top))
        return head + reasons


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", default="embedded")
    parser.add_argument("--samples", type=int, default=16, help="sampled completions per row")
    parser.add_argument("--max-new-tokens", type=int, default=192)
    parser.add_argument("--batch-size", type=int, default=16)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--prefill", default=None, help="CodeEnvironment prefill option")
    parser.add_argument("--roles", default="propose,solve")
    parser.add_argument("--task-types", default="deduction,abduction,induction")
    parser.add_argument("--no-greedy", action="store_true", help="skip greedy solver rows")
    parser.add_argument("--top", type=int, default=4, help="rejection reasons shown per row")
    parser.add_argument("--dump", default=None, help="write every completion to this JSONL file")
    args = parser.parse_args(argv)

    from absolutezero_policy.agent import PolicyAgent

    env_options = {} if args.prefill is None else {"prefill": args.prefill}
    env = CodeEnvironment(**env_options)
    roles = args.roles.split(",")
    task_types = args.task_types.split(",")
    started = time.perf_counter()
    agent = PolicyAgent(
        model=args.model, backend="hf", seed=args.seed, max_new_tokens=args.max_new_tokens,
        temperature=1.0, top_p=1.0, batch_size=args.batch_size, learning_rate=1e-6,
        weight_decay=0.0, grad_clip=1.0, clip_ratio=0.2, micro_batch=4, autocast_bf16=None,
    )
    # (label, role, prompt, task or None, greedy)
    jobs: list[tuple[str, str, Prompt, Task | None, bool]] = []
    for task_type in task_types:
        if "propose" in roles:
            for prompt in _spread(proposer_prompts(env, task_type), args.samples):
                jobs.append((f"propose/{task_type}", "propose", prompt, None, False))
        if "solve" in roles:
            tasks = induction_tasks(env) if task_type == "induction" else triplet_tasks(env, task_type)
            for task in _spread(tasks, args.samples):
                jobs.append((f"solve/{task_type}/sampled", "solve", env.solver_prompt(task), task, False))
            if not args.no_greedy:
                for task in tasks:
                    jobs.append((f"solve/{task_type}/greedy", "solve", env.solver_prompt(task), task, True))
    rows: dict[str, Row] = {}
    dump = open(args.dump, "w", encoding="utf-8") if args.dump else None
    for greedy in (False, True):
        batch = [job for job in jobs if job[4] == greedy]
        if not batch:
            continue
        samples = [s[0] for s in agent.generate([job[2] for job in batch], greedy=greedy)]
        responses = [job[2].prefill + sample.text for job, sample in zip(batch, samples)]
        proposals = [k for k, job in enumerate(batch) if job[1] == "propose"]
        answers = [k for k, job in enumerate(batch) if job[1] == "solve"]
        results: dict[int, tuple[bool, bool, str]] = {}
        for k, v in zip(proposals, env.validate([batch[k][2] for k in proposals], [responses[k] for k in proposals])):
            results[k] = (v.format_ok, v.valid, v.reason)
        verdicts = env.verify(
            [batch[k][3] for k in answers], [batch[k][2] for k in answers], [responses[k] for k in answers]
        )
        for k, v in zip(answers, verdicts):
            results[k] = (v.format_ok, v.correct, v.reason)
        for k, (job, sample) in enumerate(zip(batch, samples)):
            format_ok, good, reason = results[k]
            rows.setdefault(job[0], Row(job[0])).add(format_ok, good, reason, sample)
            if dump:
                record = {"row": job[0], "format_ok": format_ok, "good": good, "reason": reason,
                          "finish": sample.finish_reason, "response": responses[k]}
                dump.write(json.dumps(record) + "\n")
    if dump:
        dump.close()
    seconds = time.perf_counter() - started
    prefills = sorted({repr(job[2].prefill) for job in jobs})
    print(f"model={args.model} prefill={', '.join(prefills)} max_new_tokens={args.max_new_tokens} "
          f"samples={args.samples} seed={args.seed} ({seconds:.0f} s)")
    print("format = parseable; good = valid proposal / correct answer; cut = hit max tokens")
    for label in sorted(rows):
        print(rows[label].line(args.top))
    agent.close()
    env.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
