"""Evaluation benchmarks for absolutezero: CruxEval and the paper's evaluation suite.

Registered under the entry-point group ``absolutezero.benchmarks`` and run with
``python -m absolutezero.evaluate benchmark=<name>``. Modules:

* :mod:`.dataset`: CruxEval JSONL / Hugging Face hub loading and validation, subsets;
* :mod:`.cruxeval`: CruxEval-O / CruxEval-I over the code environment;
* :mod:`.harness`: generation, sandboxed scoring, greedy pass@1 and sampled pass@k;
* :mod:`.passk`: the unbiased pass@k estimator;
* :mod:`.report`: terminal table, ``results.json`` and per-problem records;
* the suite: :mod:`.sources` (path / data folder / hub), :mod:`.prompts` (``azr`` and
  ``native`` styles), :mod:`.base`, :mod:`.codegen` (programs and tests in the sandbox,
  :meth:`Executor.check_many`), :mod:`.humaneval`, :mod:`.evalplus` (HumanEval+, MBPP+),
  :mod:`.livecodebench`, :mod:`.livecodebench_execution`, :mod:`.mathcheck`
  (math-verify in a hardened helper process), :mod:`.math_sets` with one module per
  set (:mod:`.aime24`, :mod:`.aime25`, :mod:`.amc23`, :mod:`.math500`, :mod:`.minerva`,
  :mod:`.olympiadbench`, :mod:`.gsm8k`) and :mod:`.groups` (``paper-code``,
  ``paper-math``, ``paper``).

Nothing on the training path imports this package (tests/test_benchmark_isolation.py).
"""

from absolutezero_benchmarks.cruxeval import CruxEvalBenchmark, CruxEvalI, CruxEvalO
from absolutezero_benchmarks.dataset import DatasetError, Problem, load_problems, select
from absolutezero_benchmarks.harness import BenchmarkResult, run_benchmark
from absolutezero_benchmarks.passk import pass_at_k

__all__ = [
    "BenchmarkResult",
    "CruxEvalBenchmark",
    "CruxEvalI",
    "CruxEvalO",
    "DatasetError",
    "Problem",
    "load_problems",
    "pass_at_k",
    "run_benchmark",
    "select",
]
