"""What one self-play step produces and carries between its phases.

These records are shared by the step pipeline (:mod:`absolutezero.selfplay`), seeding
(:mod:`absolutezero.seeding`), the held-out probe (:mod:`absolutezero.probe`) and metric
assembly (:mod:`absolutezero.step_metrics`); they live here so that none of those has to
import another to read them.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field

from absolutezero.protocol import Prompt, Sample, Task, Validation, Verdict
from absolutezero.review import NO_REVIEW, Review, ReviewTally

__all__ = ["PROMPT_TOO_LONG_VALIDATION", "Answer", "Proposal", "StepResult", "StepStats"]


@dataclass
class StepResult:
    """What one step (or the seeding stage, ``step == 0``) produced.

    ``metrics`` is the flat mapping documented in :mod:`absolutezero.metrics`;
    ``interrupted`` is True when Ctrl-C arrived during the agent update (the step is
    complete and counted; the caller should save and stop); ``stop`` is a reviewing
    plugin's reason to end the run (the step is complete; save, then stop).
    """

    step: int
    metrics: dict[str, float]
    interrupted: bool = False
    stop: str | None = None


@dataclass
class StepStats:
    """Seconds per phase, completion tokens generated and the reviews of one step."""

    times: dict[str, float] = field(
        default_factory=lambda: {"generation": 0.0, "validation": 0.0, "verification": 0.0}
    )
    generated_tokens: int = 0
    prompts_dropped: int = 0  # over the agent's prompt limit: not generated, not trained
    reviews: ReviewTally = field(default_factory=ReviewTally)

    def add_time(self, phase: str, started: float) -> None:
        self.times[phase] = self.times.get(phase, 0.0) + time.perf_counter() - started


@dataclass
class Proposal:
    """One proposer sample and what became of it (validation, buffer, rollouts, reward)."""

    task_type: str
    prompt: Prompt
    sample: Sample
    validation: Validation = field(default_factory=lambda: Validation(None))
    new: bool = False
    verdicts: list[Verdict] = field(default_factory=list)
    reward: float = 0.0
    review: Review = NO_REVIEW

    @property
    def response(self) -> str:
        return self.prompt.prefill + self.sample.text


@dataclass
class Answer:
    """One solver sample, its verdict and reward."""

    task: Task
    prompt: Prompt
    sample: Sample
    verdict: Verdict = field(default_factory=lambda: Verdict(0.0))
    reward: float = 0.0
    review: Review = NO_REVIEW

    @property
    def response(self) -> str:
        return self.prompt.prefill + self.sample.text


#: A proposal whose prompt was over the agent's limit: nothing was generated to validate.
PROMPT_TOO_LONG_VALIDATION = Validation(None, "prompt over the agent's prompt limit (not generated)", format_ok=True)
