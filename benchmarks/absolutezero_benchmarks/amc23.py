"""AMC 2023 (40 problems): a math benchmark of the paper's suite (see :mod:`.math_sets`).

Data: ``path=``, ``$ABSOLUTEZERO_AMC23``, ``<data folder>/math/amc23.jsonl``, or
``path=hf://`` for ``math-ai/amc23`` (split ``test``).
"""

from __future__ import annotations

from absolutezero_benchmarks.math_sets import MathBenchmark
from absolutezero_benchmarks.sources import Source

__all__ = ["AMC23"]


class AMC23(MathBenchmark):
    """AMC 2023: math-verified final answers."""

    name = "amc23"
    source = Source(
        what="AMC23", env_var="ABSOLUTEZERO_AMC23", relative="math/amc23.jsonl",
        hub="math-ai/amc23", hub_split="test",
    )
