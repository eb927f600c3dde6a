"""The code environment's own extension point: executor factories by entry point."""

from __future__ import annotations

import sys

import numpy as np
import pytest

from absolutezero_code.env import CodeEnvironment
from absolutezero_code.executors import ENTRY_POINT_GROUP, executor_factory, executor_names
from test_registry import install_distribution

COUNTING_EXECUTOR = '''
from absolutezero_code.executor import Executor

CALLS = []


class CountingExecutor(Executor):
    """The real sandbox, counting the batches it is sent."""

    def run_many(self, jobs, *args, **kwargs):
        CALLS.append(len(jobs))
        return super().run_many(jobs, *args, **kwargs)


NOT_CALLABLE = 3
'''


@pytest.fixture
def counting(tmp_path, monkeypatch):
    install_distribution(
        tmp_path / "site", "counting-executor", "0.1",
        {ENTRY_POINT_GROUP: {"counting": "counting_executor_mod:CountingExecutor",
                             "broken": "counting_executor_mod:NOT_CALLABLE",
                             "ray": "counting_executor_mod:CountingExecutor"}},
        {"counting_executor_mod": COUNTING_EXECUTOR},
    )
    monkeypatch.syspath_prepend(str(tmp_path / "site"))
    yield
    sys.modules.pop("counting_executor_mod", None)


def test_builtin_names_need_no_registration():
    assert executor_names()[:2] == ["builtin", "ray"]
    with pytest.raises(ValueError, match=r"unknown executor 'bultin'; did you mean 'builtin'\?"):
        executor_factory("bultin")
    with pytest.raises(ValueError, match="unknown executor 'nope'"):
        CodeEnvironment(executor="nope")  # at construction, not mid-run


def test_a_package_may_not_take_a_builtin_executor_name(counting):
    with pytest.raises(ValueError, match="that name is built in"):  # 'ray' is taken
        executor_names()


def test_registered_executors_are_found_by_name(tmp_path, monkeypatch):
    install_distribution(
        tmp_path / "site", "counting-executor", "0.1",
        {ENTRY_POINT_GROUP: {"counting": "counting_executor_mod:CountingExecutor",
                             "broken": "counting_executor_mod:NOT_CALLABLE"}},
        {"counting_executor_mod": COUNTING_EXECUTOR},
    )
    monkeypatch.syspath_prepend(str(tmp_path / "site"))
    try:
        assert executor_names() == ["builtin", "ray", "broken", "counting"]
        with pytest.raises(ValueError, match="executor 'broken' .* is not callable"):
            executor_factory("broken")
        with CodeEnvironment(executor="counting", workers=1) as env:
            rng = np.random.default_rng(0)
            prompt = env.proposer_prompt("deduction", env.seed_tasks("deduction"), rng)
            response = "<answer>\n```python\ndef f(x):\n    return x * 3\n```\n```input\n5\n```\n</answer>"
            validation = env.validate([prompt], [response])[0]
            import counting_executor_mod

            assert validation.valid and validation.task.payload["output"] == "15"
            assert counting_executor_mod.CALLS  # the registered executor ran the program
    finally:
        sys.modules.pop("counting_executor_mod", None)
