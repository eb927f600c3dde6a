"""GSM8K (Cobbe et al. 2021): grade-school word problems, a math benchmark of the suite.

Data: ``path=``, ``$ABSOLUTEZERO_GSM8K``, ``<data folder>/math/gsm8k.jsonl``, or
``path=hf://`` for ``openai/gsm8k`` (config ``main``, split ``test``). GSM8K's ``answer``
is a worked solution ending in ``#### <number>``: the gold answer is that number
(thousands separators removed); rows with a plain ``answer`` are taken as they are.
"""

from __future__ import annotations

from typing import Any

from absolutezero_benchmarks.dataset import DatasetError
from absolutezero_benchmarks.math_sets import MathBenchmark
from absolutezero_benchmarks.sources import Source

__all__ = ["GSM8K"]


class GSM8K(MathBenchmark):
    """GSM8K test set: math-verified final answers."""

    name = "gsm8k"
    source = Source(
        what="GSM8K", env_var="ABSOLUTEZERO_GSM8K", relative="math/gsm8k.jsonl", hub="openai/gsm8k", hub_config="main"
    )

    def gold(self, row: dict[str, Any], where: str) -> str:
        """The number after ``####`` (or the whole answer when there is no marker).

        Raises:
            DatasetError: no answer, or nothing after ``####``.
        """
        answer = super().gold(row, where)
        if "####" in answer:
            answer = answer.rsplit("####", 1)[1].strip()
            if not answer:
                raise DatasetError(f"{where}: nothing after '####' in the answer")
        return answer.replace(",", "")
