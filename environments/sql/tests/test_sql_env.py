"""SqlEnvironment: registration, Gymnasium, conformance, options, seeds, serialisation."""

from __future__ import annotations

import inspect
import json
import subprocess
import sys

import gymnasium
import numpy as np
import pytest

import absolutezero  # noqa: F401  (registers absolutezero/<Name>-v0)
from absolutezero.conformance import check_env
from absolutezero.protocol import Prompt
from absolutezero.registry import make_environment
from absolutezero_sql.env import SqlEnvironment


@pytest.fixture(scope="module")
def env():
    with SqlEnvironment() as environment:
        yield environment


def test_registered_by_entry_point_and_listed():
    environment = make_environment("sql")
    try:
        assert isinstance(environment, SqlEnvironment)
    finally:
        environment.close()
    listing = subprocess.run([sys.executable, "-m", "absolutezero", "list"], capture_output=True, text=True, timeout=120)
    assert "absolutezero_sql.env:SqlEnvironment" in listing.stdout


def test_gymnasium_make_and_conformance():
    gym_env = gymnasium.make("absolutezero/Sql-v0")
    try:
        check_env(gym_env)
    finally:
        gym_env.close()
        gym_env.unwrapped.environment.close()


def test_every_option_is_keyword_only_typed_and_documented():
    doc = SqlEnvironment.__doc__ or ""
    for name, parameter in inspect.signature(SqlEnvironment.__init__).parameters.items():
        if name == "self":
            continue
        assert parameter.kind is inspect.Parameter.KEYWORD_ONLY
        assert parameter.annotation is not inspect.Parameter.empty
        assert f"        {name}: " in doc, name


@pytest.mark.parametrize(
    "options",
    [{"workers": 0}, {"timeout": -1}, {"max_rows": 0}, {"min_induction_databases": 9}, {"min_induction_databases": 1}, {"prefill": 3}],
)
def test_bad_options_fail_at_construction(options):
    with pytest.raises((ValueError, TypeError)):
        SqlEnvironment(**options)


def test_unknown_option_is_an_error():
    with pytest.raises(TypeError):
        SqlEnvironment(wrkers=2)  # type: ignore[call-arg]


def test_seeds_validate_and_round_trip(env):
    for task_type in env.task_types:
        seeds = env.seed_tasks(task_type)
        assert seeds and all(task.task_type == task_type for task in seeds)
        for task in seeds:
            assert env.deserialize_task(json.loads(json.dumps(env.serialize_task(task)))) == task
    assert env.seed_tasks("deduction")[1].payload["result"] == "(NULL, 1, 35.0)\n('Oslo', 2, 35.5)\n('Rome', 1, 25.0)"


def test_malformed_payloads_are_refused(env):
    with pytest.raises(ValueError, match="lacks"):
        env.deserialize_task({"task_type": "deduction", "payload": {"query": "SELECT 1"}})
    seed = env.seed_tasks("deduction")[0]
    with pytest.raises(ValueError, match="malformed result"):
        env.deserialize_task({"task_type": "deduction", "payload": {**seed.payload, "result": "1, 2"}})
    with pytest.raises(ValueError):
        env.deserialize_task({"task_type": "sorting", "payload": {}})


def test_reference_types_and_unknown_task_type(env):
    assert env.reference_types("induction") == ("deduction", "abduction")
    assert env.reference_types("abduction") == ("abduction",)
    with pytest.raises(ValueError, match="unknown task type"):
        env.proposer_prompt("sorting", [], np.random.default_rng(0))
    with pytest.raises(ValueError, match="task_type"):
        env.validate([Prompt(messages=({"role": "user", "content": "x"},))], ["x"])


def test_validate_is_element_wise_and_batched(env):
    rng = np.random.default_rng(0)
    prompts = [env.proposer_prompt(t, [], rng) for t in ("deduction", "abduction")]
    garbage = ["no blocks", 5]
    results = env.validate(prompts, garbage)  # type: ignore[list-item]
    assert [r.valid for r in results] == [False, False]
    assert all(r.reason for r in results)
