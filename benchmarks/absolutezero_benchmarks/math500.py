"""MATH-500, the 500-problem subset of MATH (Lightman et al. 2023):
a math benchmark of the paper's suite (see :mod:`.math_sets`).

Data: ``path=``, ``$ABSOLUTEZERO_MATH500``, ``<data folder>/math/math500.jsonl``, or
``path=hf://`` for ``HuggingFaceH4/MATH-500`` (split ``test``).
"""

from __future__ import annotations

from absolutezero_benchmarks.math_sets import MathBenchmark
from absolutezero_benchmarks.sources import Source

__all__ = ["MATH500"]


class MATH500(MathBenchmark):
    """MATH-500, the 500-problem subset of MATH: math-verified final answers."""

    name = "math500"
    source = Source(
        what="MATH500", env_var="ABSOLUTEZERO_MATH500", relative="math/math500.jsonl",
        hub="HuggingFaceH4/MATH-500", hub_split="test",
    )
