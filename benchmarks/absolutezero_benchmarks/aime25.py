"""AIME 2025 (30 problems, integer answers):
a math benchmark of the paper's suite (see :mod:`.math_sets`).

Data: ``path=``, ``$ABSOLUTEZERO_AIME25``, ``<data folder>/math/aime25.jsonl``, or
``path=hf://`` for ``yentinglin/aime_2025`` (split ``train``).
"""

from __future__ import annotations

from absolutezero_benchmarks.math_sets import MathBenchmark
from absolutezero_benchmarks.sources import Source

__all__ = ["AIME25"]


class AIME25(MathBenchmark):
    """AIME 2025: math-verified final answers."""

    name = "aime25"
    source = Source(
        what="AIME25", env_var="ABSOLUTEZERO_AIME25", relative="math/aime25.jsonl",
        hub="yentinglin/aime_2025", hub_split="train",
    )
