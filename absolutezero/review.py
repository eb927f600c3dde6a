"""Reviews of model responses by oversight plugins: what was flagged, and what to do.

Self-play without human data still needs somebody reading what the model writes: the
paper reports a policy that reasoned, in plain text, about outsmarting "machines and
humans". The ``absolutezero_review_responses`` hook hands every response of both roles
(reasoning and answer) to the plugins that implement it, in one batch per phase, so a
plugin can run a rule set or a judge model over them.

A plugin answers each :class:`ReviewItem` with a :class:`Review` (or ``None``): the
flags it raised (category + evidence span) and the action it wants. The trainer applies
the merged decision, the same way for every environment:

* ``penalty``: added to the sample's reward before TRR++ (a trained sample only);
* ``drop``: the sample is left out of the update and of the TRR++ baselines; a dropped
  proposal's task does not enter a buffer;
* ``stop``: the step finishes, is checkpointed, and the run ends cleanly with the reason.

Flags are counted per category into the step's metrics (``oversight/<category>``) by
:class:`ReviewTally`: the counts are part of this hook's contract, the same for every
reviewing plugin, so the core computes them; a plugin's other numbers come through
``absolutezero_extra_metrics``.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import pluggy

__all__ = [
    "NO_REVIEW", "Flag", "Review", "ReviewItem", "ReviewTally", "collect_reviews", "flag_metrics", "merge_counts",
]


@dataclass(frozen=True)
class ReviewItem:
    """One response to review.

    ``role`` is ``"propose"`` or ``"solve"``; ``task_type`` the proposer's requested or the
    solved task's type; ``response`` the full text (prefill + completion); ``trained``
    whether the sample goes into the update (learnability rollouts do not, so a penalty
    or a drop does not apply to them, but their flags count and can stop the run).
    """

    step: int
    role: str
    task_type: str
    response: str
    trained: bool = True


@dataclass(frozen=True)
class Flag:
    """A concern found in a response: a ``category`` name and the ``evidence`` text span."""

    category: str
    evidence: str
    source: str = ""  # which rule or judge raised it


@dataclass(frozen=True)
class Review:
    """A plugin's verdict on one response (see the module docstring for the actions)."""

    flags: tuple[Flag, ...] = ()
    penalty: float = 0.0
    drop: bool = False
    stop: str | None = None

    @property
    def flagged(self) -> bool:
        return bool(self.flags)


NO_REVIEW = Review()


def _merge(reviews: Sequence[Review]) -> Review:
    if not reviews:
        return NO_REVIEW
    if len(reviews) == 1:
        return reviews[0]
    stops = [r.stop for r in reviews if r.stop]
    return Review(
        flags=tuple(flag for r in reviews for flag in r.flags),
        penalty=sum(r.penalty for r in reviews),
        drop=any(r.drop for r in reviews),
        stop=stops[0] if stops else None,
    )


def collect_reviews(pm: pluggy.PluginManager, items: Sequence[ReviewItem]) -> list[Review]:
    """Every plugin's reviews of ``items``, merged per item (flags joined, penalties
    summed, any drop drops, the first stop reason wins). Without a reviewing plugin this
    is one empty :class:`Review` per item and costs nothing.

    Raises:
        TypeError: a plugin returned something other than one ``Review | None`` per item.
    """
    if not items:
        return []
    answers: list[Any] = pm.hook.absolutezero_review_responses(items=list(items))
    per_item: list[list[Review]] = [[] for _ in items]
    for answer in answers:
        if not isinstance(answer, (list, tuple)) or len(answer) != len(items):
            raise TypeError(
                "a plugin's absolutezero_review_responses must return one Review or None per item "
                f"({len(items)} items), got {type(answer).__name__}"
                + (f" of length {len(answer)}" if isinstance(answer, (list, tuple)) else "")
            )
        for slot, review in zip(per_item, answer):
            if review is None:
                continue
            if not isinstance(review, Review):
                raise TypeError(f"absolutezero_review_responses returned {review!r}; expected a Review or None")
            slot.append(review)
    return [_merge(slot) for slot in per_item]


def flag_metrics(reviews: Sequence[Review], items: Sequence[ReviewItem]) -> dict[str, float]:
    """Counts for the step's metrics: flagged responses per category and per role, and
    dropped samples. Empty when nothing was flagged (no columns for quiet steps)."""
    categories: Counter[str] = Counter()
    roles: Counter[str] = Counter()
    dropped = 0
    for review, item in zip(reviews, items):
        if review.flagged:
            roles[item.role] += 1
            categories.update({flag.category for flag in review.flags})
        dropped += int(review.drop and item.trained)
    if not roles and not dropped:
        return {}
    metrics = {f"oversight/{category}": float(n) for category, n in categories.items()}
    metrics.update({f"oversight/flagged/{role}": float(n) for role, n in roles.items()})
    metrics["oversight/flagged"] = float(sum(roles.values()))
    metrics["oversight/dropped"] = float(dropped)
    return metrics


def merge_counts(total: dict[str, float], more: dict[str, float]) -> dict[str, float]:
    """Add one phase's :func:`flag_metrics` into a step's."""
    for name, value in more.items():
        total[name] = total.get(name, 0.0) + value
    return total



@dataclass
class ReviewTally:
    """The reviews of one step (or of seeding) over all its phases: the summed
    :func:`flag_metrics` counts and the first stop reason any review gave."""

    counts: dict[str, float] = field(default_factory=dict)
    stop: str | None = None

    def add(self, reviews: Sequence[Review], items: Sequence[ReviewItem]) -> None:
        """Count one phase's ``reviews`` of ``items``."""
        merge_counts(self.counts, flag_metrics(reviews, items))
        if self.stop is None:
            self.stop = next((review.stop for review in reviews if review.stop), None)
