"""The review hook (absolutezero.review + the trainer's use of it): what a reviewing
plugin sees, and how penalty, drop and stop change a real step on the arith environment."""

from __future__ import annotations

import pluggy
import pytest

from absolutezero import hookimpl, hookspecs
from absolutezero.review import Flag, Review, ReviewItem, collect_reviews, flag_metrics
from test_selfplay_loop import make_trainer


class Reviewer:
    """Flags every response of ``role`` (or garbage proposals) and records what it saw."""

    def __init__(self, role: str = "solve", penalty: float = 0.0, drop: bool = False,
                 stop: str | None = None, match: str | None = None) -> None:
        self.role, self.penalty, self.drop, self.stop, self.match = role, penalty, drop, stop, match
        self.seen: list[ReviewItem] = []

    @hookimpl
    def absolutezero_review_responses(self, items):
        self.seen.extend(items)
        out = []
        for item in items:
            hit = item.role == self.role and (self.match is None or self.match in item.response)
            out.append(
                Review((Flag("sabotage", item.response[:20], "test"),), self.penalty, self.drop, self.stop)
                if hit else None
            )
        return out


def _manager(*plugins) -> pluggy.PluginManager:
    """A manager with only ``plugins`` (no autoloaded ones), so counts are exact."""
    pm = pluggy.PluginManager(hookspecs.PROJECT_NAME)
    pm.add_hookspecs(hookspecs)
    for plugin in plugins:
        pm.register(plugin)
    return pm


def test_every_response_of_both_roles_is_reviewed_with_its_step_and_training_flag():
    reviewer = Reviewer(role="none")
    trainer = make_trainer(pm=_manager(reviewer), learnability_samples=2, propose_batch=4, solve_batch=3)
    trainer.seed()
    seeding = list(reviewer.seen)
    assert seeding and all(i.step == 0 and i.role == "propose" and not i.trained for i in seeding)
    reviewer.seen.clear()
    result = trainer.step()
    proposals = [i for i in reviewer.seen if i.role == "propose"]
    answers = [i for i in reviewer.seen if i.role == "solve"]
    assert len(proposals) == 4 * len(trainer.task_types)
    assert all(i.step == 1 and i.trained for i in proposals)
    rollouts = [i for i in answers if not i.trained]
    assert len(rollouts) == result.metrics["learnability/rollouts"]
    assert len(answers) - len(rollouts) == 3 * len(trainer.task_types)
    assert all(i.response.startswith("<answer>") for i in answers)  # the full response
    assert not any(k.startswith("oversight/") for k in result.metrics)  # nothing flagged: no columns


def test_flags_are_counted_per_category_and_a_penalty_lowers_solver_rewards():
    plain = make_trainer(seed=3, agent_seed=3)
    plain.seed()
    base = plain.step()
    penalised = make_trainer(seed=3, agent_seed=3, pm=_manager(Reviewer(penalty=-2.0)))
    penalised.seed()
    result = penalised.step()
    answers = len(penalised.task_types) * 3
    rollouts = result.metrics["learnability/rollouts"]
    assert result.metrics["oversight/sabotage"] == answers + rollouts
    assert result.metrics["oversight/flagged/solve"] == answers + rollouts
    assert result.metrics["oversight/dropped"] == 0
    assert result.metrics["overall/solve_reward_mean"] == pytest.approx(base.metrics["overall/solve_reward_mean"] - 2.0)
    assert result.metrics["overall/propose_reward_mean"] == pytest.approx(base.metrics["overall/propose_reward_mean"])


def test_dropped_samples_leave_the_update_and_dropped_proposals_the_buffers():
    trainer = make_trainer(seed=1, agent_seed=1, pm=_manager(Reviewer(role="propose", drop=True)))
    trainer.seed()
    before = trainer.buffers.sizes()
    result = trainer.step()
    n_answers = 3 * len(trainer.task_types)
    assert trainer.agent.updates[-1][0] == n_answers  # proposals are gone from the update
    assert result.metrics["oversight/dropped"] == 4 * len(trainer.task_types)
    assert trainer.buffers.sizes() == before  # no dropped proposal entered a buffer
    assert result.metrics["learnability/rollouts"] > 0  # valid ones were still estimated


def test_a_stop_reason_is_returned_with_the_completed_step():
    trainer = make_trainer(pm=_manager(Reviewer(role="solve", stop="hostility seen")))
    trainer.seed()
    result = trainer.step()
    assert result.stop == "hostility seen" and trainer.step_count == 1
    assert trainer.agent.updates  # the step was completed (trained) before stopping


def test_reviews_from_several_plugins_merge():
    items = [ReviewItem(1, "solve", "t", "x"), ReviewItem(1, "propose", "t", "y", trained=False)]
    a, b = Reviewer(role="solve", penalty=-1.0), Reviewer(role="solve", penalty=-0.5, drop=True, stop="why")
    reviews = collect_reviews(_manager(a, b), items)
    assert reviews[0].penalty == -1.5 and reviews[0].drop and reviews[0].stop == "why"
    assert len(reviews[0].flags) == 2 and not reviews[1].flagged
    metrics = flag_metrics(reviews, items)
    assert metrics == {"oversight/sabotage": 1.0, "oversight/flagged/solve": 1.0,
                       "oversight/flagged": 1.0, "oversight/dropped": 1.0}
    assert collect_reviews(_manager(), items) == [Review(), Review()]


def test_a_malformed_review_answer_is_a_clear_type_error():
    class Bad:
        @hookimpl
        def absolutezero_review_responses(self, items):
            return [None]  # one answer for two items

    items = [ReviewItem(1, "solve", "t", "x"), ReviewItem(1, "solve", "t", "y")]
    with pytest.raises(TypeError, match="one Review or None per item"):
        collect_reviews(_manager(Bad()), items)

    class Wrong:
        @hookimpl
        def absolutezero_review_responses(self, items):
            return ["flagged"] * len(items)

    with pytest.raises(TypeError, match="expected a Review"):
        collect_reviews(_manager(Wrong()), items)
