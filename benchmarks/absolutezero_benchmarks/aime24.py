"""AIME 2024 (30 problems, integer answers):
a math benchmark of the paper's suite (see :mod:`.math_sets`).

Data: ``path=``, ``$ABSOLUTEZERO_AIME24``, ``<data folder>/math/aime24.jsonl``, or
``path=hf://`` for ``HuggingFaceH4/aime_2024`` (split ``train``).
"""

from __future__ import annotations

from absolutezero_benchmarks.math_sets import MathBenchmark
from absolutezero_benchmarks.sources import Source

__all__ = ["AIME24"]


class AIME24(MathBenchmark):
    """AIME 2024: math-verified final answers."""

    name = "aime24"
    source = Source(
        what="AIME24", env_var="ABSOLUTEZERO_AIME24", relative="math/aime24.jsonl",
        hub="HuggingFaceH4/aime_2024", hub_split="train",
    )
