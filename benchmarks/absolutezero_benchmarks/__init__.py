"""Evaluation benchmarks for absolutezero: CruxEval-O (deduction) and CruxEval-I (abduction).

Registered under the entry-point group ``absolutezero.benchmarks`` (``cruxeval-o``,
``cruxeval-i``) and run with ``python -m absolutezero.evaluate``. Modules:

* :mod:`.dataset`: JSONL / Hugging Face hub loading and validation, subsets;
* :mod:`.cruxeval`: the two benchmark classes over the code environment;
* :mod:`.harness`: generation, sandboxed scoring, greedy pass@1 and sampled pass@k;
* :mod:`.passk`: the unbiased pass@k estimator;
* :mod:`.report`: terminal table, ``results.json`` and per-problem records.

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
