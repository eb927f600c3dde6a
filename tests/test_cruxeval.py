"""CruxEval harness: data loading/validation, pass@k, reports, scoring through the sandbox."""

from __future__ import annotations

import json
import math
import subprocess
import sys
from itertools import combinations
from pathlib import Path

import pytest

from absolutezero_benchmarks import dataset
from absolutezero_benchmarks.dataset import DatasetError, Problem, load_jsonl, load_problems, select
from absolutezero_benchmarks.passk import mean_pass_at_k, pass_at_k

ROWS = [
    {"id": "t0", "code": "def f(x):\n    return x * 2", "input": "3", "output": "6"},
    {"id": "t1", "code": "def f(s):\n    return s[::-1]", "input": "'abc'", "output": "'cba'"},
    {"id": "t2", "code": "def f(a, b):\n    return {b, a}", "input": "1, 2", "output": "{1, 2}"},
    {"id": "t3", "code": "def f(xs):\n    return sorted(xs)", "input": "[3, 1, 2]", "output": "[1, 2, 3]"},
    {"id": "t4", "code": "def f(d):\n    return len(d)", "input": "{'a': 1}", "output": "1"},
]


def write_jsonl(path: Path, rows: list[object]) -> Path:
    path.write_text("".join(json.dumps(row) + "\n" for row in rows), encoding="utf-8")
    return path


@pytest.fixture()
def small_file(tmp_path: Path) -> Path:
    return write_jsonl(tmp_path / "small.jsonl", ROWS)


# ---------------------------------------------------------------- dataset loading


def test_load_jsonl_reads_rows_in_order(small_file: Path) -> None:
    problems = load_jsonl(small_file)
    assert [p.id for p in problems] == ["t0", "t1", "t2", "t3", "t4"]
    assert problems[1] == Problem(id="t1", code=ROWS[1]["code"], input="'abc'", output="'cba'")


def test_blank_lines_are_ignored(tmp_path: Path) -> None:
    path = tmp_path / "blank.jsonl"
    path.write_text(json.dumps(ROWS[0]) + "\n\n   \n" + json.dumps(ROWS[1]) + "\n", encoding="utf-8")
    assert [p.id for p in load_jsonl(path)] == ["t0", "t1"]


def test_missing_file_names_the_path_and_the_fix(tmp_path: Path) -> None:
    missing = tmp_path / "nope.jsonl"
    with pytest.raises(DatasetError, match="nope.jsonl.*does not exist.*path="):
        load_jsonl(missing)


def test_bad_json_line_reports_the_line_number(tmp_path: Path) -> None:
    path = tmp_path / "bad.jsonl"
    path.write_text(json.dumps(ROWS[0]) + "\n" + json.dumps(ROWS[1]) + "\n{not json\n", encoding="utf-8")
    with pytest.raises(DatasetError, match=r"bad\.jsonl:3: invalid JSON"):
        load_jsonl(path)


def test_missing_keys_are_named(tmp_path: Path) -> None:
    row = {"id": "x", "code": "def f(a):\n    return a"}
    path = write_jsonl(tmp_path / "keys.jsonl", [ROWS[0], row])
    with pytest.raises(DatasetError, match=r"keys\.jsonl:2: missing key\(s\) 'input', 'output'"):
        load_jsonl(path)


@pytest.mark.parametrize(
    "row, message",
    [
        ({**ROWS[0], "input": 3}, "'input' must be a string"),
        ([1, 2], "expected a JSON object, got list"),
        ({**ROWS[0], "code": "  "}, "'code' is empty"),
    ],
)
def test_malformed_rows_are_rejected(tmp_path: Path, row: object, message: str) -> None:
    path = write_jsonl(tmp_path / "rows.jsonl", [row])
    with pytest.raises(DatasetError, match=message):
        load_jsonl(path)


def test_duplicate_ids_and_empty_files_are_rejected(tmp_path: Path) -> None:
    with pytest.raises(DatasetError, match="duplicate problem id 't0'"):
        load_jsonl(write_jsonl(tmp_path / "dup.jsonl", [ROWS[0], ROWS[0]]))
    empty = tmp_path / "empty.jsonl"
    empty.write_text("\n", encoding="utf-8")
    with pytest.raises(DatasetError, match="no problems"):
        load_jsonl(empty)


def test_default_path_honours_the_environment_variable(
    small_file: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(dataset.ENV_VAR, str(small_file))
    assert dataset.default_path() == small_file
    assert [p.id for p in load_problems(None)] == [r["id"] for r in ROWS]


def test_default_path_is_outside_the_repository(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(dataset.ENV_VAR, raising=False)
    repo = Path(__file__).resolve().parents[1]
    path = dataset.default_path()
    assert path == (repo / ".." / "shared" / "data" / "cruxeval" / "cruxeval.jsonl").resolve()
    assert repo not in path.parents  # the data is never copied into the checkout


def test_hub_loading_without_datasets_is_a_clear_error() -> None:
    # run in a fresh interpreter where importing `datasets` fails (not installed, or
    # blocked here when it is) so the test does not depend on the machine's packages
    code = (
        "import sys; sys.modules['datasets'] = None\n"
        "from absolutezero_benchmarks.dataset import load_problems, DatasetError\n"
        "try:\n    load_problems('hf://cruxeval-org/cruxeval')\n"
        "except DatasetError as e:\n    print('ERR', e)\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    assert "ERR" in out.stdout and "'datasets' package" in out.stdout and "absolutezero[hub]" in out.stdout


def test_hub_loading_offline_is_a_clear_error(monkeypatch: pytest.MonkeyPatch) -> None:
    import types

    def offline(*args: object, **kwargs: object) -> None:
        raise ConnectionError("could not reach huggingface.co")

    monkeypatch.setitem(sys.modules, "datasets", types.SimpleNamespace(load_dataset=offline))
    with pytest.raises(DatasetError, match="cannot load 'cruxeval-org/cruxeval'.*ConnectionError.*network"):
        load_problems("hf://")


def test_hub_rows_are_validated(monkeypatch: pytest.MonkeyPatch) -> None:
    import types

    rows = [ROWS[0], {"id": "broken", "code": "def f(): pass"}]
    fake = types.SimpleNamespace(load_dataset=lambda name, split, revision: rows)
    monkeypatch.setitem(sys.modules, "datasets", fake)
    with pytest.raises(DatasetError, match=r"row 1: missing key\(s\) 'input', 'output'"):
        load_problems("hf://cruxeval-org/cruxeval@test")


def test_select_first_n_and_seeded_subsets(small_file: Path) -> None:
    problems = load_jsonl(small_file)
    assert [p.id for p in select(problems, 2)] == ["t0", "t1"]
    assert select(problems, None) == problems
    assert select(problems, 99) == problems
    a = select(problems, 3, seed=7)
    b = select(problems, 3, seed=7)
    assert a == b and len(a) == 3 and len({p.id for p in a}) == 3
    assert [p.id for p in a] == sorted(p.id for p in a)  # dataset order is kept
    subsets = {tuple(p.id for p in select(problems, 3, seed=s)) for s in range(20)}
    assert len(subsets) > 1  # the seed matters
    with pytest.raises(ValueError, match="limit must be a positive integer"):
        select(problems, 0)


# ---------------------------------------------------------------- pass@k


def brute_force_pass_at_k(n: int, c: int, k: int) -> float:
    """Share of k-subsets of n samples (c correct) that contain a correct one."""
    samples = [True] * c + [False] * (n - c)
    subsets = list(combinations(range(n), k))
    return sum(any(samples[i] for i in s) for s in subsets) / len(subsets)


@pytest.mark.parametrize("n, c, k", [(5, 0, 1), (5, 2, 1), (5, 2, 2), (6, 3, 3), (10, 1, 5), (4, 4, 2), (7, 5, 3)])
def test_pass_at_k_matches_counting_subsets(n: int, c: int, k: int) -> None:
    assert pass_at_k(n, c, k) == pytest.approx(brute_force_pass_at_k(n, c, k), abs=1e-12)


def test_pass_at_k_hand_computed_values() -> None:
    assert pass_at_k(10, 3, 1) == pytest.approx(0.3)  # pass@1 is the success rate
    assert pass_at_k(5, 2, 2) == pytest.approx(1 - 3 / 10)  # 1 - C(3,2)/C(5,2)
    assert pass_at_k(4, 1, 2) == pytest.approx(0.5)  # 1 - C(3,2)/C(4,2) = 1 - 3/6
    assert pass_at_k(3, 2, 2) == 1.0  # only one wrong sample: every pair has a correct one
    assert pass_at_k(3, 0, 2) == 0.0


def test_pass_at_k_is_stable_for_large_n() -> None:
    value = pass_at_k(2000, 1, 1000)  # C(2000, 1000) overflows a float
    assert value == pytest.approx(0.5)
    assert math.isfinite(pass_at_k(5000, 17, 100))


def test_pass_at_k_rejects_bad_arguments() -> None:
    with pytest.raises(ValueError, match="at least k=5 samples"):
        pass_at_k(3, 1, 5)
    with pytest.raises(ValueError, match=r"in \[0, n=3\]"):
        pass_at_k(3, 4, 1)
    with pytest.raises(ValueError, match="k must be >= 1"):
        pass_at_k(3, 1, 0)
    with pytest.raises(TypeError, match="integer"):
        pass_at_k(3.0, 1, 1)  # type: ignore[arg-type]


def test_mean_pass_at_k() -> None:
    assert mean_pass_at_k([0, 2, 4], 4, 1) == pytest.approx((0 + 0.5 + 1) / 3)
    assert math.isnan(mean_pass_at_k([], 4, 1))


# ---------------------------------------------------------------- scoring through the sandbox
# (everything below runs the code environment's real executor)

from absolutezero.protocol import Agent, Prompt, Sample  # noqa: E402
from absolutezero_benchmarks.cruxeval import CruxEvalI, CruxEvalO, gold_response  # noqa: E402
from absolutezero_benchmarks.harness import length_order, prompt_text, run_benchmark  # noqa: E402
from absolutezero_benchmarks.report import format_table, write_results  # noqa: E402


@pytest.fixture(scope="module")
def code_env():
    from absolutezero.registry import make_environment

    env = make_environment("code", {"workers": 2})
    yield env
    env.close()


def test_gold_answers_score_correct_and_wrong_ones_do_not(code_env) -> None:
    problems = [Problem(**row) for row in ROWS]
    for cls in (CruxEvalO, CruxEvalI):
        bench = cls(environment=code_env)
        prepared, skipped = bench.prepare(problems)
        assert skipped == [] and [p.problem.id for p in prepared] == [r["id"] for r in ROWS]
        tasks = [p.task for p in prepared]
        assert all(t.task_type == cls.task_type for t in tasks)
        prompts = [bench.solver_prompt(t) for t in tasks]
        gold = [p.output if cls is CruxEvalO else p.input for p in problems]
        right = bench.score(tasks, prompts, [gold_response(cls.task_type, g, pr.prefill) for g, pr in zip(gold, prompts)])
        assert [v.correct for v in right] == [True] * 5, [v.reason for v in right]
        wrong_answers = ["7", "'abc'", "{1, 3}", "[3, 1, 2]", "2"] if cls is CruxEvalO else ["4", "'abd'", "1, 3", "[3, 1]", "{}"]
        wrong = bench.score(tasks, prompts, [gold_response(cls.task_type, w, pr.prefill) for w, pr in zip(wrong_answers, prompts)])
        assert [v.correct for v in wrong] == [False] * 5
        assert all(v.format_ok for v in wrong)


def test_scoring_is_type_aware_and_accepts_any_preimage(code_env) -> None:
    problem = Problem(id="p", code="def f(x):\n    return x % 3", input="7", output="1")
    (o,), _ = CruxEvalO(environment=code_env).prepare([problem])
    (i,), _ = CruxEvalI(environment=code_env).prepare([problem])
    bench_o, bench_i = CruxEvalO(environment=code_env), CruxEvalI(environment=code_env)
    po, pi = bench_o.solver_prompt(o.task), bench_i.solver_prompt(i.task)
    out = bench_o.score([o.task] * 3, [po] * 3, [gold_response("deduction", a, po.prefill) for a in ("1", "1.0", "True")])
    assert [v.correct for v in out] == [True, False, False]  # 1 != 1.0 != True
    inp = bench_i.score(
        [i.task] * 3, [pi] * 3, [gold_response("abduction", a, pi.prefill) for a in ("10", "8", "0) or True or (0")]
    )
    assert [v.correct for v in inp] == [True, False, False]  # 10 % 3 == 1 is another preimage
    assert inp[2].format_ok is False  # an injection attempt is not a literal argument list


def test_rows_whose_gold_is_broken_are_skipped_with_a_reason(code_env) -> None:
    problems = [
        Problem(**ROWS[0]),
        Problem(id="wrong", code="def f(x):\n    return x + 1", input="1", output="3"),
        Problem(id="object", code="def f(x):\n    return object()", input="1", output="<object object at 0x7f>"),
        Problem(id="crash", code="def f(x):\n    return 1 / x", input="0", output="0"),
        Problem(**ROWS[1]),
    ]
    for cls in (CruxEvalO, CruxEvalI):
        prepared, skipped = cls(environment=code_env).prepare(problems)
        assert [p.problem.id for p in prepared] == ["t0", "t1"]
        assert [s["id"] for s in skipped] == ["wrong", "object", "crash"]
        reasons = {s["id"]: s["reason"] for s in skipped}
        assert "gold cannot be canonicalised" in reasons["object"]
        assert "f(input) != output" in reasons["wrong"] and "f(input) != output" in reasons["crash"]


class ScriptedAgent(Agent):
    """Answers from a table (problem input -> completions), to check the harness's arithmetic.

    Greedy calls return ``greedy[key]``; sampled calls cycle through ``sampled[key]``.
    """

    def __init__(self, greedy: dict[str, str], sampled: dict[str, list[str]], default: str = "") -> None:
        self.greedy, self.sampled, self.default, self.calls = greedy, sampled, default, []
        self.seen: list[Prompt] = []

    def _key(self, prompt: Prompt) -> str | None:
        text = prompt.messages[-1]["content"]
        return next((key for key in {**self.greedy, **self.sampled} if f"```input\n{key}\n```" in text), None)

    def generate(self, prompts, num_samples=1, greedy=False):
        self.calls.append((len(prompts), num_samples, greedy))
        self.seen.extend(prompts)
        out = []
        for prompt in prompts:
            key = self._key(prompt)
            if key is None:
                texts = [self.default] * num_samples
            else:
                texts = [self.greedy[key]] * num_samples if greedy else self.sampled[key][:num_samples]
            out.append([Sample([1], [2], [0.0], text, "stop") for text in texts])
        return out

    def update(self, samples, advantages):
        raise AssertionError("evaluation must not train")

    def save(self, directory):
        raise AssertionError("evaluation must not save")

    def load(self, directory):
        raise AssertionError("evaluation must not load")


def _answer(value: str) -> str:
    """A deduction completion (the harness prepends the prompt's prefill)."""
    return gold_response("deduction", value, prefill="")


def test_harness_figures_and_records(code_env, tmp_path: Path, capsys) -> None:
    problems = [Problem(**row) for row in ROWS[:3]]  # inputs 3, 'abc', 1, 2 -> outputs 6, 'cba', {1, 2}
    agent = ScriptedAgent(
        greedy={"3": _answer("6"), "'abc'": _answer("'abc'"), "1, 2": "no answer here"},
        sampled={
            "3": [_answer("6"), _answer("5"), _answer("6"), _answer("7")],  # c = 2
            "'abc'": [_answer("'cba'"), "garbage", _answer("'x'"), _answer("'y'")],  # c = 1
            "1, 2": [_answer("{2, 1}"), _answer("{1, 2}"), _answer("{1, 2}"), _answer("{1, 2}")],  # c = 4
        },
    )
    bench = CruxEvalO(environment=code_env)
    result = run_benchmark(bench, agent, problems, k=2, samples=4, model="scripted", chunk=2)
    assert agent.calls == [(2, 1, True), (1, 1, True), (2, 4, False), (1, 4, False)]
    assert result.n_problems == 3 and result.skipped == []
    assert result.pass_at_1 == pytest.approx(1 / 3)  # greedy: only the first is right
    assert result.pass_at_1_sampled == pytest.approx((2 / 4 + 1 / 4 + 1) / 3)
    # pass@2 = 1 - C(n-c,2)/C(4,2): c=2 -> 1-1/6, c=1 -> 1-3/6, c=4 -> 1
    assert result.pass_at_k == pytest.approx((5 / 6 + 1 / 2 + 1) / 3)
    assert result.format_error_rate == pytest.approx(2 / 15)  # 1 greedy + 1 sampled of 3 + 12
    first, second, third = result.records
    assert first.greedy_correct is True and first.sampled_correct == 2
    assert second.decoding == ["greedy"] + ["sampled"] * 4 and second.correct == [False, True, False, False, False]
    assert third.verdicts[0]["format_ok"] is False and third.verdicts[0]["reason"]
    assert third.prefill  # the environment's default prefill opens the answer
    assert third.responses[0] == third.prefill + "no answer here"  # prefill + completion is what was scored
    assert "```input\n1, 2\n```" in third.prompt and third.messages[-1]["role"] == "user"
    metrics = result.metrics()
    assert metrics["cruxeval-o/pass@1"] == pytest.approx(1 / 3)
    assert metrics["cruxeval-o/pass@2"] == pytest.approx(result.pass_at_k)

    path = write_results(tmp_path, [result], {"model": "scripted"})
    saved = json.loads(path.read_text())
    assert saved["benchmarks"]["cruxeval-o"]["pass@2"] == pytest.approx(result.pass_at_k)
    assert saved["benchmarks"]["cruxeval-o"]["settings"] == {"model": "scripted"}
    lines = (tmp_path / "cruxeval-o.records.jsonl").read_text().splitlines()
    assert [json.loads(line)["id"] for line in lines] == ["t0", "t1", "t2"]
    table = format_table([result])
    assert "cruxeval-o" in table and "scripted" in table and "33.3%" in table and "(k=2)" in table


def test_prompts_go_shortest_first_and_records_keep_problem_order(code_env) -> None:
    """Chunks hold prompts of similar length (less padding); results map back by problem."""
    rows = [
        {"id": "long", "code": "def f(x):\n" + "    y = x\n" * 30 + "    return y", "input": "4", "output": "4"},
        {"id": "short", "code": "def f(x):\n    return x", "input": "5", "output": "5"},
        {"id": "mid", "code": "def f(x):\n" + "    y = x\n" * 5 + "    return y", "input": "6", "output": "6"},
    ]
    agent = ScriptedAgent(greedy={"4": _answer("4"), "5": _answer("0"), "6": _answer("6")}, sampled={})
    result = run_benchmark(CruxEvalO(environment=code_env), agent, [Problem(**r) for r in rows], chunk=2)
    lengths = [len(prompt_text(p)) for p in agent.seen]
    assert lengths == sorted(lengths) and len(agent.seen) == 3
    assert [r.id for r in result.records] == ["long", "short", "mid"]
    assert [r.greedy_correct for r in result.records] == [True, False, True]
    assert length_order([agent.seen[2], agent.seen[0], agent.seen[1]]) == [1, 2, 0]


def test_results_of_several_benchmarks_accumulate_in_one_file(code_env, tmp_path: Path) -> None:
    problems = [Problem(**row) for row in ROWS[:2]]
    agent = ScriptedAgent(greedy={}, sampled={}, default="no answer")
    for cls in (CruxEvalO, CruxEvalI):
        result = run_benchmark(cls(environment=code_env), agent, problems, model="m")
        assert result.pass_at_1 == 0.0 and result.format_error_rate == 1.0 and result.pass_at_k is None
        write_results(tmp_path, [result], {"benchmark": cls.name})
    saved = json.loads((tmp_path / "results.json").read_text())
    assert sorted(saved["benchmarks"]) == ["cruxeval-i", "cruxeval-o"]


def test_harness_rejects_bad_decoding_settings(code_env) -> None:
    agent = ScriptedAgent(greedy={}, sampled={})
    with pytest.raises(ValueError, match="needs samples >= k"):
        run_benchmark(CruxEvalO(environment=code_env), agent, [Problem(**ROWS[0])], k=5, samples=2)
    assert agent.calls == []
