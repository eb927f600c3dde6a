"""Turning sandbox runs into a gold result, or a rejection with a reason.

A gold result is kept only when two runs of the job, in two separate processes, agree
exactly, and when the result does not depend on an order SQL leaves unspecified: the
query is also run on re-orderings of the same data (see :mod:`.jobs`), and

* as a multiset the rows must be the same in every ordering (else LIMIT/OFFSET without a
  tie-breaking ORDER BY, ``group_concat`` over unordered rows or the like decide it);
* as a list they must be the same too for the result to be compared as a list; a query
  with a top-level ORDER BY whose ties only permute rows is compared as a multiset.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from .sqltext import has_top_level_order_by
from .values import Row, decode_rows, same_result

__all__ = ["Gold", "gold_from_runs", "describe"]


@dataclass(frozen=True)
class Gold:
    rows: list[Row]
    ordered: bool
    schema: list[str]


def describe(result: dict[str, Any]) -> str:
    """``"query: function random() is not allowed ..."``: stage and reason of a failed run."""
    return f"{result.get('stage', 'sandbox')}: {result.get('reason', 'unknown failure')}"


def gold_from_runs(query: str, runs: Sequence[dict[str, Any]]) -> Gold | str:
    """The gold result of one (database, query) job's runs, or why there is none."""
    first = runs[0]
    if not first.get("ok"):
        return describe(first)
    for other in runs[1:]:
        if other != first:
            return "non-deterministic: two runs in separate processes gave different results"
    rows = decode_rows(first["rows"])
    if not rows:
        return "result: the query returns no rows on this database"
    ordered = has_top_level_order_by(query)
    for variant in first.get("variants", []):
        other_rows = decode_rows(variant)
        if not same_result(rows, other_rows, ordered=False):
            return (
                "order: the result depends on the order rows are stored in (LIMIT or OFFSET "
                "without an ORDER BY that breaks ties? group_concat over unordered rows?)"
            )
        if ordered and not same_result(rows, other_rows, ordered=True):
            ordered = False  # ties permute rows: compare as a multiset
    return Gold(rows=rows, ordered=ordered, schema=[str(s) for s in first.get("schema", [])])
