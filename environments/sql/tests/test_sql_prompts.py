"""Prompts and answer templates: filled templates parse and score like free answers."""

from __future__ import annotations

import numpy as np
import pytest

from absolutezero.protocol import fill_template
from absolutezero_sql import prompts
from absolutezero_sql.env import SqlEnvironment


@pytest.fixture(scope="module")
def env():
    with SqlEnvironment() as environment:
        yield environment


def test_proposal_templates_parse(env):
    rng = np.random.default_rng(0)
    prompt = env.proposer_prompt("deduction", env.seed_tasks("deduction"), rng)
    assert prompt.prefill.endswith("CREATE TABLE ")
    completion = fill_template(prompt, ["s (n INTEGER);", "s VALUES (4), (5);", "n * 2 FROM s ORDER BY n\n```"])
    result = env.validate([prompt], [prompt.prefill + completion])[0]
    assert result.valid, result.reason
    assert result.task.payload["query"] == "SELECT n * 2 FROM s ORDER BY n"


def test_induction_template_parses(env):
    prompt = env.proposer_prompt("induction", env.seed_tasks("deduction")[:1], np.random.default_rng(0))
    count = len(prompt.segments)
    assert prompt.prefill.endswith("```message\n")
    assert prompt.segments[0].then.endswith("INSERT INTO t VALUES (")
    parts = ["Sorted values.\n"] + [f"{i}), ({i + 10});" for i in range(count - 1)]
    result = env.validate([prompt], [prompt.prefill + fill_template(prompt, parts)])[0]
    assert result.valid, result.reason


@pytest.mark.parametrize(
    "task_type, parts",
    [
        ("deduction", ["(1)\n(2)\n(3)\n```"]),
        ("abduction", ["t (x INTEGER);", "t VALUES (1), (2), (3);"]),
        ("induction", ["x FROM t ORDER BY x\n```"]),
    ],
)
def test_solver_templates_parse(env, task_type, parts):
    task = env.seed_tasks(task_type)[0]
    prompt = env.solver_prompt(task)
    verdict = env.verify([task], [prompt], [prompt.prefill + fill_template(prompt, parts)])[0]
    assert verdict.correct, verdict.reason


def test_references_are_shown_and_rules_are_shared():
    seed = {"database": "CREATE TABLE t (x);", "query": "SELECT x FROM t", "result": "(1)"}
    deduction = prompts.proposer_messages("deduction", [seed])[-1]["content"]
    abduction = prompts.proposer_messages("abduction", [])[-1]["content"]
    assert deduction.startswith(prompts.RULES) and abduction.startswith(prompts.RULES)
    assert "Example 1" in deduction and "Example 1" not in abduction
    with pytest.raises(ValueError):
        prompts.proposer_messages("induction", [])
    with pytest.raises(ValueError):
        prompts.answer_template("judge", "deduction", 5)


def test_non_template_styles(env):
    other = SqlEnvironment(prefill="think")
    try:
        prompt = other.proposer_prompt("deduction", [], np.random.default_rng(0))
        assert prompt.prefill == "<think>" and prompt.segments == ()
    finally:
        other.close()
