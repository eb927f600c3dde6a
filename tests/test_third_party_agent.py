"""A third-party agent plugs in cleanly: found by entry point, given only its own options.

The agent lives in an outside distribution written to a temporary folder (as a user's
package would be installed), declares two options of its own, and runs a real
self-play step on the ``arith`` environment through ``python -m absolutezero.run``.
"""

from __future__ import annotations

import json
import sys

import pytest

from absolutezero.run import main
from test_registry import install_distribution

OUTSIDE_AGENT = '''
import json, os, re

import numpy as np

from absolutezero.protocol import Agent, Sample

QUESTION = re.compile(r"\\n\\n(-?\\d+) \\+ (-?\\d+)\\n\\n")


class AdderAgent(Agent):
    """Proposes sums and answers them, right with a set probability.

    Args:
        p_correct: probability that an answer to a sum is right.
        largest: largest number a proposed sum uses.
    """

    def __init__(self, *, p_correct: float = 0.5, largest: int = 30, seed: int = 0) -> None:
        with open(os.environ["OUTSIDE_AGENT_LOG"], "a") as log:
            log.write(json.dumps({"p_correct": p_correct, "largest": largest, "seed": seed}) + "\\n")
        self.p_correct, self.largest = p_correct, largest
        self.rng = np.random.default_rng(seed)
        self.updates = 0

    def _text(self, prompt):
        if "task_type" in prompt.context:
            a, b = self.rng.integers(0, self.largest, size=2)
            return f"<answer>{a} + {b}</answer>"
        match = QUESTION.search(prompt.messages[-1]["content"])
        if match and self.rng.random() < self.p_correct:
            return f"<answer>{int(match.group(1)) + int(match.group(2))}</answer>"
        return f"<answer>{int(self.rng.integers(-5, 60))}</answer>"

    def generate(self, prompts, num_samples=1, greedy=False):
        out = []
        for prompt in prompts:
            texts = [self._text(prompt) for _ in range(num_samples)]
            out.append([Sample([1, 2], [ord(c) for c in t], [-0.5] * len(t), t) for t in texts])
        return out

    def update(self, samples, advantages):
        self.updates += 1
        return {"loss": float(np.mean(np.square(advantages)))}

    def save(self, directory):
        with open(os.path.join(directory, "adder.json"), "w") as handle:
            json.dump({"updates": self.updates, "rng": self.rng.bit_generator.state}, handle)

    def load(self, directory):
        with open(os.path.join(directory, "adder.json")) as handle:
            state = json.load(handle)
        self.updates = state["updates"]
        self.rng.bit_generator.state = state["rng"]
'''


@pytest.fixture
def outside_agent(tmp_path, monkeypatch):
    install_distribution(
        tmp_path / "site", "adder-agent", "0.3.0",
        {"absolutezero.agents": {"adder": "adder_agent_mod:AdderAgent"}},
        {"adder_agent_mod": OUTSIDE_AGENT},
    )
    monkeypatch.syspath_prepend(str(tmp_path / "site"))
    log = tmp_path / "constructed.jsonl"
    monkeypatch.setenv("OUTSIDE_AGENT_LOG", str(log))
    yield log
    sys.modules.pop("adder_agent_mod", None)


ARGS = ["env=arith", "agent=adder", "steps=1", "progress=false", "probe.every=0", "selfplay.seed_size=0",
        "selfplay.propose_batch=2", "selfplay.solve_batch=2", "selfplay.learnability_samples=2"]


def test_outside_agent_runs_a_step_and_receives_only_its_own_options(outside_agent, tmp_path, capsys):
    code = main([*ARGS, f"out={tmp_path / 'runs'}", "name=adder", "seed=7", "agent_options.p_correct=1"])
    assert code == 0, capsys.readouterr().err
    constructed = [json.loads(line) for line in outside_agent.read_text().splitlines()]
    # exactly its two options (p_correct widened to float, largest at its own default)
    # plus the run's seed, because its constructor takes one
    assert constructed == [{"p_correct": 1.0, "largest": 30, "seed": 7}]
    run_dir = tmp_path / "runs" / "adder"
    metrics = [json.loads(line) for line in (run_dir / "metrics.jsonl").read_text().splitlines()]
    assert metrics[-1]["step"] == 1 and metrics[-1]["train/loss"] >= 0
    saved = (run_dir / "config.yaml").read_text()
    assert "p_correct: 1.0" in saved and "largest: 30" in saved and "learning_rate" not in saved


def test_outside_agent_options_are_checked_and_listed(outside_agent, tmp_path, capsys):
    assert main([*ARGS, f"out={tmp_path / 'runs'}", "agent_options.p_corect=1"]) == 2
    err = capsys.readouterr().err
    assert "agent 'adder' has no option 'agent_options.p_corect'; did you mean 'p_correct'?" in err
    assert main([*ARGS, f"out={tmp_path / 'runs'}", "agent_options.largest=many"]) == 2
    assert "bad value 'many' for agent_options.largest: agent 'adder' expects int" in capsys.readouterr().err
    assert main(["--help", "env=arith", "agent=adder"]) == 0
    out = capsys.readouterr().out
    assert "agent 'adder' options (adder_agent_mod.AdderAgent)" in out
    assert "agent_options.p_correct = 0.5  [float]" in out and "probability that an answer to a sum is right." in out
    assert "agent_options.learning_rate =" not in out  # the policy agent's options are not listed
