"""The code environment's answer templates (env_options.prefill=template, the default).

The free parts a model would write are filled in with ``fill_template`` and the result
goes through the real environment (parsers and sandboxed executor), so these tests show
that a templated answer validates or verifies exactly like a free-running one, and that
parsing stays strict about what the model wrote into a free part.
"""

from __future__ import annotations

import numpy as np
import pytest

from absolutezero.gym_adapter import AbsoluteZeroEnv
from absolutezero.protocol import Task, fill_template
from absolutezero_code.tasks import induction_payload

PROGRAM = "def f(s):\n    return s.upper()"
TRIPLET = {"program": PROGRAM, "input": "'quiet'", "output": "'QUIET'"}


@pytest.fixture(scope="module")
def env():
    from absolutezero_code.env import CodeEnvironment

    environment = CodeEnvironment(workers=2, num_induction_inputs=6, min_induction_inputs=4)
    yield environment
    environment.close()


def proposal(env, task_type, parts):
    prompt = env.proposer_prompt(task_type, [Task("deduction", TRIPLET)], np.random.default_rng(0))
    return prompt, prompt.prefill + fill_template(prompt, parts)


def test_every_prompt_has_a_template_that_forces_fences_and_headers(env):
    rng = np.random.default_rng(0)
    for task_type in env.task_types:
        prompt = env.proposer_prompt(task_type, [Task("deduction", TRIPLET)], rng)
        assert prompt.segments and prompt.prefill.startswith("<answer>\n```")
        payload = TRIPLET if task_type != "induction" else induction_payload(PROGRAM, ["'a'"] * 2, ["'A'"] * 2, "m", 1)
        solver = env.solver_prompt(Task(task_type, payload))
        assert len(solver.segments) == 1 and solver.prefill.startswith("<answer>\n```")
    induction = env.proposer_prompt("induction", [Task("deduction", TRIPLET)], rng)
    assert len(induction.segments) == 6 + 1  # one per input, then the message
    assert "```message" in induction.segments[-2].then


def test_templated_triplet_proposals_validate_in_the_sandbox(env):
    for task_type in ("deduction", "abduction"):
        prompt, response = proposal(env, task_type, ["x):\n    return x * 2\n```", "21\n"])
        assert response.startswith("<answer>\n```python\ndef f(x):")
        validation = env.validate([prompt], [response])[0]
        assert validation.valid, validation.reason
        assert validation.task.payload["output"] == "42"


def test_templated_induction_proposal_validates(env):
    parts = [f"'{word}'\n" for word in ("ab", "cd", "ef", "gh", "ij", "kl")] + ["upper-cases its text```"]
    prompt, response = proposal(env, "induction", parts)
    validation = env.validate([prompt], [response])[0]
    assert validation.valid, validation.reason
    assert validation.task.payload["message"] == "upper-cases its text"


@pytest.mark.parametrize(
    "task_type, part, why",
    [
        ("deduction", "x):\n    return x\nThis returns x.\n```", "syntax error"),  # prose in the program
        ("abduction", "1.5):\n    return 1.5\n```", "syntax error"),  # values as parameter names
    ],
)
def test_free_parts_are_parsed_strictly(env, task_type, part, why):
    prompt, response = proposal(env, task_type, [part, "3\n"])
    validation = env.validate([prompt], [response])[0]
    assert not validation.valid and why in validation.reason and not validation.format_ok


def test_templated_answers_verify_and_wrong_parts_are_rejected(env):
    cases = [
        (Task("deduction", TRIPLET), "'QUIET'\n", True),
        (Task("deduction", TRIPLET), "'QUIET' is the output\n", False),  # prose: not a literal
        (Task("abduction", TRIPLET), "'quiet'\n", True),
        (Task("induction", induction_payload(PROGRAM, ["'a'", "'b'"], ["'A'", "'B'"], "m", 1)),
         "t):\n    return t.upper()\n```", True),
    ]
    prompts = [env.solver_prompt(task) for task, _, _ in cases]
    responses = [p.prefill + fill_template(p, [part]) for p, (_, part, _) in zip(prompts, cases)]
    verdicts = env.verify([task for task, _, _ in cases], prompts, responses)
    assert [v.correct for v in verdicts] == [ok for _, _, ok in cases]
    assert verdicts[1].format_ok is False


def test_the_gymnasium_adapter_takes_a_filled_template(env):
    adapter = AbsoluteZeroEnv(env, seed=0, learnability_samples=2)
    _, info = adapter.reset(options={"role": "propose", "task_type": "deduction"})
    prompt = info["prompt"]
    _, reward, terminated, _, info = adapter.step(fill_template(prompt, ["n):\n    return n + 1\n```", "4\n"]))
    assert info["valid"] and not terminated and info["task"].payload["output"] == "5"
    solver = info["prompt"]
    _, _, _, _, info = adapter.step(fill_template(solver, ["5\n"]))
    assert info["correct"]
    _, reward, terminated, _, info = adapter.step(fill_template(solver, ["6\n"]))
    assert terminated and info["success_rate"] == 0.5 and reward == 0.5
