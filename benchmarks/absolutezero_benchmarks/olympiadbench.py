"""OlympiadBench (English text-only math, 675 problems; ``final_answer`` is a list):
a math benchmark of the paper's suite (see :mod:`.math_sets`).

Data: ``path=``, ``$ABSOLUTEZERO_OLYMPIADBENCH``, ``<data folder>/math/olympiadbench.jsonl``, or
``path=hf://`` for ``math-ai/olympiadbench`` (split ``test``).
"""

from __future__ import annotations

from absolutezero_benchmarks.math_sets import MathBenchmark
from absolutezero_benchmarks.sources import Source

__all__ = ["OlympiadBench"]


class OlympiadBench(MathBenchmark):
    """OlympiadBench: math-verified final answers."""

    name = "olympiadbench"
    source = Source(
        what="OlympiadBench", env_var="ABSOLUTEZERO_OLYMPIADBENCH", relative="math/olympiadbench.jsonl",
        hub="math-ai/olympiadbench", hub_split="test",
    )
