"""Reference verdicts of the code-generation benchmarks: the scorer must say yes to every
reference solution and no to a body that returns None.

    .venv/bin/python benchmarks/reference_verdicts.py                       # HumanEval
    .venv/bin/python benchmarks/reference_verdicts.py humaneval humaneval-plus mbpp-plus

For each benchmark (its default data, see ``absolutezero_benchmarks.sources``):

* **references**: problems whose reference solution passes the benchmark's tests in the
  sandbox (checked as trusted code, as ``prepare`` does; a failing one is *skipped*);
  HumanEval must show 164/164;
* **return None**: every prepared problem answered by a model-style response whose
  entry point is ``def <entry>(*args, **kwargs): return None``, scored through the very
  path a model answer takes (code extraction, assembly, hardened policy, tests): must
  pass on 0 problems;
* **references as model answers**: the reference solutions scored as if a model had
  written them (hardened policy): shows which references use what a model may not
  (HumanEval/160's ``eval``, /162's ``hashlib``).

Exits 1 when a reference is skipped or a ``return None`` body passes. Takes well under a
minute for HumanEval on two cores (~500 sandboxed checks).
"""

from __future__ import annotations

import sys
import time

from absolutezero_benchmarks.evalplus import HumanEvalPlus, MBPPPlus
from absolutezero_benchmarks.humaneval import HumanEval

BENCHMARKS = {cls.name: cls for cls in (HumanEval, HumanEvalPlus, MBPPPlus)}


def _response(code: str) -> str:
    return f"```python\n{code}\n```"


def check(name: str) -> bool:
    """Print the three figures of benchmark ``name``; True when they are right."""
    cls = BENCHMARKS[name]
    start = time.perf_counter()
    with cls() as benchmark:
        problems = benchmark.load()
        prepared, skipped = benchmark.prepare(problems)
        tasks = [item.task for item in prepared]
        prompts = [benchmark.solver_prompt(task) for task in tasks]
        nones = [
            _response(f"def {item.problem.entry_points[0]}(*args, **kwargs):\n    return None\n") for item in prepared
        ]
        none_verdicts = benchmark.score(tasks, prompts, nones)
        golds = [(item, benchmark._problems[item.problem.id]) for item in prepared]
        with_gold = [(item, problem) for item, problem in golds if getattr(problem, "gold", None)]
        gold_verdicts = benchmark.score(
            [item.task for item, _ in with_gold],
            [benchmark.solver_prompt(item.task) for item, _ in with_gold],
            [_response(problem.gold) for _, problem in with_gold],
        )
    seconds = time.perf_counter() - start
    none_passed = [item.problem.id for item, verdict in zip(prepared, none_verdicts) if verdict.correct]
    gold_failed = [(item.problem.id, v.reason) for (item, _), v in zip(with_gold, gold_verdicts) if not v.correct]
    print(f"{name}: {len(problems)} problems, {seconds:.1f} s")
    print(f"  references pass:              {len(prepared)}/{len(problems)}")
    for item in skipped:
        print(f"    skipped {item['id']}: {item['reason'][:160]}")
    print(f"  'return None' bodies pass:    {len(none_passed)}/{len(prepared)}  {' '.join(none_passed)}")
    if with_gold:
        print(f"  references as model answers:  {len(with_gold) - len(gold_failed)}/{len(with_gold)}")
        for problem_id, reason in gold_failed:
            print(f"    fails {problem_id}: {reason[:160]}")
    return not skipped and not none_passed


def main(argv: list[str]) -> int:
    names = argv or ["humaneval"]
    unknown = [name for name in names if name not in BENCHMARKS]
    if unknown:
        print(f"unknown benchmark(s) {unknown}; known: {', '.join(BENCHMARKS)}", file=sys.stderr)
        return 2
    ok = True
    for name in names:
        ok = check(name) and ok
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
