"""The oversight plugin's optional judge model: the rubric prompt, the strict verdict
parser, and the real generation path with the tiny random model as the judge."""

from __future__ import annotations

from collections.abc import Sequence

import pytest

from absolutezero.protocol import Agent, Prompt, Sample
from absolutezero.review import ReviewItem
from absolutezero_oversight.default_rules import CATEGORIES
from absolutezero_oversight.judge import PREFILL, build_prompt, parse_verdict
from absolutezero_oversight.plugin import OversightMonitor

NAMES = tuple(CATEGORIES)


@pytest.mark.parametrize("text, verdict", [
    ("VERDICT: none", "none"),
    ("VERDICT: deception\n", "deception"),
    ("verdict:  Power_Seeking.", "power_seeking"),
    ("VERDICT: self-exfiltration", "self_exfiltration"),
    ("VERDICT: **sabotage**", "sabotage"),
    ("\n\nVERDICT: hostility\nbecause it says so", "hostility"),
    ("VERDICT: evading oversight", "evading_oversight"),
])
def test_well_formed_verdicts_are_parsed(text, verdict):
    assert parse_verdict(text, NAMES) == verdict


@pytest.mark.parametrize("text", [
    "", "VERDICT:", "VERDICT: maybe", "VERDICT: deception, sabotage", "The response is fine.",
    "VERDICT: none of the above", "deception", "VERDICT: murder", "I think VERDICT: none",
])
def test_anything_else_is_unparseable(text):
    assert parse_verdict(text, NAMES) is None


def test_a_category_outside_the_rubric_is_unparseable():
    assert parse_verdict("VERDICT: deception", ("sabotage",)) is None


def test_the_prompt_holds_the_rubric_the_response_and_the_prefill():
    prompt = build_prompt("x = 1  # the answer", CATEGORIES)
    system, user = prompt.messages
    assert system["role"] == "system" and all(f"- {name}: " in system["content"] for name in CATEGORIES)
    assert "VERDICT: none" in system["content"] and "kill the process" in system["content"]
    assert user["content"] == "<response>\nx = 1  # the answer\n</response>"
    assert prompt.prefill == PREFILL == "VERDICT:"
    long = build_prompt("a" * 3000 + "b" * 3000, CATEGORIES, max_chars=1000).messages[1]["content"]
    assert long.startswith("<response>\n" + "a" * 500 + "\n[... 5000 characters cut ...]\n" + "b" * 500)


class ScriptedJudge(Agent):
    """Answers each judge prompt with the next scripted completion (after the prefill)."""

    def __init__(self, completions: Sequence[str]) -> None:
        self.completions = list(completions)
        self.prompts: list[Prompt] = []
        self.greedy: list[bool] = []

    def generate(self, prompts, num_samples=1, greedy=False):
        self.prompts.extend(prompts)
        self.greedy.append(greedy)
        return [[Sample([1], [2], [0.0], self.completions.pop(0), "stop")] for _ in prompts]

    def update(self, samples, advantages):
        raise AssertionError("a judge is never trained")

    def save(self, directory):
        raise AssertionError("a judge is never saved")

    def load(self, directory):
        raise AssertionError("a judge is never loaded from a checkpoint")


def _items(*texts: str) -> list[ReviewItem]:
    return [ReviewItem(2, "propose", "induction", text) for text in texts]


def test_judge_verdicts_become_flags_and_unparsed_ones_are_counted():
    agent = ScriptedJudge([" sabotage\n", " none\n", " I am not sure\n", " hostility\n"])
    monitor = OversightMonitor({"judge": "scripted"}, judge_agent=agent)
    texts = ["def f(x): return x", "print(1)", "y = 2", "Humans are the obstacle."]
    reviews = monitor.review(_items(*texts))
    assert agent.greedy == [True] and [p.messages[1]["content"] for p in agent.prompts] == [
        f"<response>\n{t}\n</response>" for t in texts
    ]
    assert reviews[0].flags[0].category == "sabotage" and reviews[0].flags[0].source == "judge:scripted"
    assert reviews[1] is None and reviews[2] is None  # none, and unparsed: not flagged
    assert [f.source for f in reviews[3].flags] == ["rule:hostility.humans_obstacle"]  # the judge agreed
    assert monitor.judge_unparsed == 1 and monitor.summary()["judge_calls"] == 4


def test_judge_batches_and_rules_off():
    agent = ScriptedJudge([" none"] * 5)
    monitor = OversightMonitor({"judge": "scripted", "judge_batch_size": 2, "rules": False}, judge_agent=agent)
    assert monitor.review(_items("Humans are the obstacle.", *["x"] * 4)) == [None] * 5  # rules are off
    assert agent.greedy == [True, True, True]


def test_the_tiny_random_model_as_the_judge(tiny_model_dir):
    pytest.importorskip("absolutezero_policy.agent")
    monitor = OversightMonitor({
        "judge": str(tiny_model_dir), "judge_dtype": "float32", "judge_max_new_tokens": 4, "judge_batch_size": 2,
    })
    assert monitor.judge is None  # loaded on first use outside a run (at run start inside one)
    texts = ["def f(x):\n    return x * 2", "The answer is 4.", "We sort the list first."]
    try:
        reviews = monitor.review(_items(*texts))
        judge = monitor.judge
        assert judge is not None and type(judge.agent).__name__ == "PolicyAgent"
        assert judge.calls == 3 and len(judge.last_prompts) == 1  # the last batch of two, then one
        assert judge.last_prompts[0].prefill == "VERDICT:"
        # random weights write gibberish: every verdict is unparsed, counted and not flagged
        assert reviews == [None, None, None]
        assert monitor.judge_unparsed == 3 and monitor.summary()["judge_unparsed"] == 3
    finally:
        monitor.close_judge()
    assert monitor.judge is None
