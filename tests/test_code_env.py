"""CodeEnvironment as a whole: seeds, batching, serialisation, options, benchmark tasks.

These tests run the real sandboxed executor (two worker processes).
"""

from __future__ import annotations

import json

import numpy as np
import pytest

from absolutezero.conformance import check_env
from absolutezero.protocol import Task
from absolutezero_code.env import CodeEnvironment


@pytest.fixture(scope="module")
def env(make_code_env):
    return make_code_env()


class CountingExecutor:
    """Wraps the real executor to count batched calls (the executor itself is not faked)."""

    def __init__(self, inner):
        self.inner = inner
        self.calls: list[tuple[str, int]] = []

    def run_many(self, jobs, determinism_runs=2):
        self.calls.append(("run_many", len(jobs)))
        return self.inner.run_many(jobs, determinism_runs=determinism_runs)

    def canonicalize_many(self, literals):
        self.calls.append(("canonicalize_many", len(literals)))
        return self.inner.canonicalize_many(literals)

    def close(self):
        self.inner.close()


def proposal(program: str, input: str) -> str:
    return f"<answer>\n```python\n{program}\n```\n```input\n{input}\n```\n</answer>"


def test_identity_seeds_for_every_task_type(env):
    for task_type in env.task_types:
        seeds = env.seed_tasks(task_type)
        assert len(seeds) == 1 and seeds[0].task_type == task_type
        payload = seeds[0].payload
        assert payload["program"] == "def f(a):\n    return a"
        assert payload["input"] == "'Hello World'"
        gold = env.executor.canonicalize_many(["'Hello World'"])[0].output
        assert payload["output"] == gold
    induction = env.seed_tasks("induction")[0].payload
    assert len(induction["inputs"]) == 10 and induction["message"]
    assert induction["outputs"] == [r.output for r in env.executor.canonicalize_many(induction["inputs"])]


def test_seed_tasks_are_solvable(env):
    for task_type, text in [
        ("deduction", "<answer>```output\n'Hello World'\n```</answer>"),
        ("abduction", "<answer>```input\n'Hello World'\n```</answer>"),
        ("induction", "<answer>```python\ndef f(x):\n    return x\n```</answer>"),
    ]:
        task = env.seed_tasks(task_type)[0]
        verdict = env.verify([task], [env.solver_prompt(task)], [text])[0]
        assert verdict.correct, (task_type, verdict.reason)


def test_protocol_conformance(env):
    check_env(env, gym=False)


def test_reference_types(env):
    assert env.reference_types("induction") == ("deduction", "abduction")
    assert env.reference_types("deduction") == ("deduction",)
    assert env.reference_types("abduction") == ("abduction",)


def test_serialise_round_trip_through_json_text(env):
    task = env.validate(
        [env.proposer_prompt("deduction", [], np.random.default_rng(0))],
        [proposal("def f(d):\n    return {k: v * 2 for k, v in d.items()}", "{'é': 1.5, 'b': -2}")],
    )[0].task
    for original in [task, *(env.seed_tasks(t)[0] for t in env.task_types)]:
        restored = env.deserialize_task(json.loads(json.dumps(env.serialize_task(original))))
        assert restored == original and restored.key() == original.key()


def test_deserialise_rejects_malformed_payloads(env):
    with pytest.raises(ValueError, match="missing \\['output'\\]"):
        env.deserialize_task({"task_type": "deduction", "payload": {"program": "x", "input": "1"}})
    seed = env.serialize_task(env.seed_tasks("induction")[0])
    seed["payload"]["hidden"] = []
    with pytest.raises(ValueError, match="'visible' and 'hidden'"):
        env.deserialize_task(seed)
    with pytest.raises(ValueError, match="not one of"):
        env.deserialize_task({"task_type": "sorting", "payload": {}})


def test_mixed_batch_uses_one_executor_call_and_keeps_order():
    with CodeEnvironment(workers=2) as env:
        counting = CountingExecutor(env.executor)
        env._executor = counting
        rng = np.random.default_rng(0)
        prompts = [env.proposer_prompt(t, env.seed_tasks("deduction"), rng) for t in env.task_types]
        words = "\n".join(f"```input\n'{w}'\n```" for w in "abcdefgh")
        responses = [
            proposal("def f(x):\n    return x * 3", "5"),
            proposal("def f(x):\n    return x[0]", "[]"),
            f"<answer>\n{words}\n```message\nsame\n```\n</answer>",
        ]
        counting.calls.clear()
        validations = env.validate(prompts + prompts[:1], responses + ["junk"])
        assert counting.calls == [("run_many", 1 + 1 + 8)]
        assert [v.valid for v in validations] == [True, False, True, False]
        assert [v.format_ok for v in validations] == [True, True, True, False]
        assert validations[0].task.payload["output"] == "15"
        assert "IndexError" in validations[1].reason

        counting.calls.clear()
        deduction, induction = validations[0].task, validations[2].task
        tasks = [deduction, deduction, induction]
        answers = [
            "<answer>15</answer>",
            "nothing",
            "<answer>```python\ndef f(x):\n    return x\n```</answer>",
        ]
        verdicts = env.verify(tasks, [env.solver_prompt(t) for t in tasks], answers)
        assert sorted(counting.calls) == [("canonicalize_many", 1), ("run_many", 4)]
        assert [v.score for v in verdicts] == [1.0, 0.0, 1.0]
        assert env.validate([], []) == [] and env.verify([], [], []) == []


def test_reference_copies_are_rejected_unless_disabled():
    program = "def f(x):\n    return x + 1"
    ref = Task("deduction", {"program": program, "input": "1", "output": "2"})
    copy = proposal("def f(x):  # same\n    return (x + 1)", " 1 ")
    with CodeEnvironment(workers=1) as env:
        prompt = env.proposer_prompt("deduction", [ref], np.random.default_rng(0))
        validation = env.validate([prompt], [copy])[0]
        assert not validation.valid and "copies reference example 1" in validation.reason
        assert env.validate([prompt], [proposal(program, "2")])[0].valid
    with CodeEnvironment(workers=1, reject_reference_copies=False) as env:
        prompt = env.proposer_prompt("deduction", [ref], np.random.default_rng(0))
        assert env.validate([prompt], [copy])[0].valid


def test_make_task_for_benchmarks(env):
    deduction = env.make_task("deduction", "def f(d):\n    return d", "{'b': 1, 'a': 2}", "{'b': 1, 'a': 2}")
    verdict = env.verify([deduction], [env.solver_prompt(deduction)], ["<answer>{'a': 2, 'b': 1}</answer>"])[0]
    assert verdict.correct
    abduction = env.make_task("abduction", "def f(x):\n    return x // 2", "9", "4")
    answers = ["<answer>8</answer>", "<answer>9</answer>", "<answer>10</answer>"]
    verdicts = env.verify([abduction] * 3, [env.solver_prompt(abduction)] * 3, answers)
    assert [v.score for v in verdicts] == [1.0, 1.0, 0.0]
    built = env.build_tasks("deduction", [("def g(x):\n    return x", "1", "1"), ("def f(x):\n    return x", "1", "nan")])
    assert built == ["program does not define f", built[1]] and "not a plain literal" in built[1]
    constant = env.make_task("deduction", "def f():\n    return [1, 2]", "", "[1, 2]")
    assert env.verify([constant], [env.solver_prompt(constant)], ["<answer>[1, 2]</answer>"])[0].correct
    zero = env.make_task("abduction", "def f():\n    return 7", "", "7")
    verdicts = env.verify([zero] * 2, [env.solver_prompt(zero)] * 2,
                          ["<answer>```input\nf()\n```</answer>", "<answer>```input\n1\n```</answer>"])
    assert [v.score for v in verdicts] == [1.0, 0.0]
    with pytest.raises(ValueError, match="item 0: program does not define f"):
        env.make_tasks("deduction", [("def g(x):\n    return x", "1", "1")])
    with pytest.raises(ValueError, match="deduction or abduction"):
        env.make_task("induction", "def f(x):\n    return x", "1", "1")


def test_executor_is_lazy_and_closed_by_context_manager():
    env = CodeEnvironment(workers=1)
    assert env._executor is None  # constructing starts no processes
    with env:
        env.seed_tasks("deduction")
        assert env._executor is not None
    assert env._executor is None
    env.close()  # twice is fine


@pytest.mark.parametrize(
    "options, error, match",
    [
        ({"workers": 0}, ValueError, "workers must be a positive integer"),
        ({"timeout": -1}, ValueError, "timeout must be a positive number"),
        ({"max_program_chars": 0}, ValueError, "max_program_chars must be a positive integer"),
        ({"max_shown_references": -1}, ValueError, "max_shown_references"),
        ({"prefill": None}, TypeError, "prefill must be a str"),
        ({"executor": "sandbx"}, ValueError, "unknown executor 'sandbx'"),
    ],
)
def test_bad_options_have_clear_errors(options, error, match):
    with pytest.raises(error, match=match):
        CodeEnvironment(**options)


def test_misspelt_option_is_an_error():
    with pytest.raises(TypeError, match="max_program_char"):
        CodeEnvironment(max_program_char=10)


def test_validate_and_verify_check_lengths(env):
    prompt = env.proposer_prompt("deduction", [], np.random.default_rng(0))
    with pytest.raises(ValueError, match="1 prompts but 2 responses"):
        env.validate([prompt], ["a", "b"])
    with pytest.raises(ValueError, match="same length"):
        env.verify([env.seed_tasks("deduction")[0]], [], [])
