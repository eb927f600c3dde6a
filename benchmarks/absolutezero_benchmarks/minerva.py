"""Minerva math (OCWCourses, 272 university-level problems):
a math benchmark of the paper's suite (see :mod:`.math_sets`).

Data: ``path=``, ``$ABSOLUTEZERO_MINERVA``, ``<data folder>/math/minerva.jsonl``, or
``path=hf://`` for ``math-ai/minervamath`` (split ``test``).
"""

from __future__ import annotations

from absolutezero_benchmarks.math_sets import MathBenchmark
from absolutezero_benchmarks.sources import Source

__all__ = ["Minerva"]


class Minerva(MathBenchmark):
    """Minerva math: math-verified final answers."""

    name = "minerva"
    source = Source(
        what="Minerva", env_var="ABSOLUTEZERO_MINERVA", relative="math/minerva.jsonl",
        hub="math-ai/minervamath", hub_split="test",
    )
