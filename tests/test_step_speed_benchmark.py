"""benchmarks/step_speed.py and step_flops.py: the pure parts (FLOPs formulas, child
records, tables, arguments). The benchmark itself loads models and is run by hand."""

from __future__ import annotations

import importlib.util
import json
import math
import sys
from pathlib import Path

import pytest

BENCHMARKS = Path(__file__).resolve().parents[1] / "benchmarks"


def _load(name: str):
    spec = importlib.util.spec_from_file_location(f"_test_{name}", BENCHMARKS / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


flops = _load("step_flops")
speed = _load("step_speed")

# 2 blocks, hidden 4, vocab 10, tied head: embedding 40, blocks + norm 100 -> N = 100
TOY = flops.ModelShape(params=140, embedding=40, head=0, layers=2, hidden=4, vocab=10,
                       attention_width=4, trainable_layers=1)


def test_attention_counts_each_position_once_causally():
    # positions 1, 2, 3: 4 * L * w * (1 + 2 + 3)
    assert flops.attention_flops(2, 4, 0, 3) == 4 * 2 * 4 * 6
    # positions 6, 7 after a 5-token prefix
    assert flops.attention_flops(2, 4, 5, 2) == 4 * 2 * 4 * (6 + 7)
    assert flops.attention_flops(2, 4, 5, 0) == 0
    with pytest.raises(ValueError):
        flops.attention_flops(2, 4, -1, 1)


def test_model_shape_counts():
    assert TOY.non_embedding == 100
    assert TOY.trainable_share == 0.5
    assert TOY.head_flops == 2 * 10 * 4
    untied = flops.ModelShape(params=180, embedding=40, head=40, layers=2, hidden=4, vocab=10,
                              attention_width=4, trainable_layers=2)
    assert untied.non_embedding == 100
    with pytest.raises(ValueError):
        flops.ModelShape(params=10, embedding=40, head=0, layers=2, hidden=4, vocab=10,
                         attention_width=4, trainable_layers=1)
    with pytest.raises(ValueError):
        flops.ModelShape(params=140, embedding=40, head=0, layers=2, hidden=4, vocab=10,
                         attention_width=4, trainable_layers=3)


def test_step_flops_by_hand():
    # one distinct prompt of 3 tokens, two completions of 2 tokens after it; one of them trained
    estimate = flops.step_flops(TOY, [3], [(3, 2), (3, 2)], [(3, 2)])
    attn = lambda start, count: 4 * 2 * 4 * sum(range(start + 1, start + count + 1))  # noqa: E731
    assert estimate.prefill == 2 * 100 * 3 + attn(0, 3)
    assert estimate.decode == 2 * ((2 * 100 + 80) * 2 + attn(3, 2))
    assert estimate.update_forward == 2 * 100 * 5 + attn(0, 5) + 80 * 2
    # backward: half the blocks (k/L = 1/2) at 2x the forward, the head at 2x its forward
    assert estimate.update_backward == 4 * 100 * 0.5 * 5 + 2 * 0.5 * attn(0, 5) + 2 * 80 * 2
    parts = estimate.as_dict()
    assert parts["total"] == pytest.approx(parts["prefill"] + parts["decode"] + parts["update_forward"]
                                           + parts["update_backward"])
    assert parts["generation"] == estimate.prefill + estimate.decode


def test_backward_scales_with_trained_blocks():
    full = flops.ModelShape(**{**TOY.__dict__, "trainable_layers": 2})
    none = flops.ModelShape(**{**TOY.__dict__, "trainable_layers": 0})
    _, backward_full = flops.update_flops(full, [(10, 5)])
    _, backward_half = flops.update_flops(TOY, [(10, 5)])
    _, backward_head = flops.update_flops(none, [(10, 5)])
    assert backward_head == 2 * TOY.head_flops * 5
    assert backward_full - backward_head == pytest.approx(2 * (backward_half - backward_head))


def test_an_update_from_kept_block_inputs_runs_only_the_top_blocks_forward():
    top = flops.ModelShape(**{**TOY.__dict__, "update_from_top": True})
    attn = 4 * 2 * 4 * sum(range(1, 6))
    forward, backward = flops.update_flops(top, [(3, 2)])
    assert forward == 0.5 * (2 * 100 * 5 + attn) + 80 * 2  # one of the two blocks, the head in full
    assert backward == flops.update_flops(TOY, [(3, 2)])[1]


def test_parse_child_output_keeps_marked_lines_only():
    lines = ["loading...\n", speed.MARKER + json.dumps({"kind": "step", "time": {"step": 1.5}}) + "\n",
             "some warning " + speed.MARKER + "\n"]
    assert speed.parse_child_output(lines) == [{"kind": "step", "time": {"step": 1.5}}]
    with pytest.raises(ValueError, match="bad child record"):
        speed.parse_child_output([speed.MARKER + "{not json"])
    with pytest.raises(ValueError, match="without a kind"):
        speed.parse_child_output([speed.MARKER + "[1, 2]"])


def _step(step, generation, update, extra=None, valid=3, learnable=1, proposals=4):
    times = {"step": step, "generation": generation, "update": update, "validation": 0.1, **(extra or {})}
    return {"kind": "step", "time": times, "quality": {"x": {"proposals": proposals, "valid": valid,
                                                             "learnable": learnable}}}


def test_time_rows_medians_and_ratios():
    base = [_step(10, 6, 3), _step(12, 7, 4), _step(11, 6, 3)]
    new = [_step(5, 3, 1, {"weight_sync": 0.2}), _step(6, 3, 2, {"weight_sync": 0.4})]
    rows = {row[0]: row[1:] for row in speed.time_rows(base, new)}
    assert list(rows) == ["step", "generation", "validation", "update", "weight_sync"]
    assert rows["step"] == (11, 5.5, 2.0)
    assert rows["update"] == (3, 1.5, 2.0)
    b, n, r = rows["weight_sync"]
    assert math.isnan(b) and n == pytest.approx(0.3) and math.isnan(r)
    assert speed.ratio(1.0, 0.0) != speed.ratio(1.0, 0.0)  # NaN


def test_format_table_is_plain_and_aligned():
    text = speed.format_table(("part", "base", "new"), [("step", 11.0, math.nan), ("update", 3, "x")])
    lines = text.splitlines()
    assert lines[0].split() == ["part", "base", "new"]
    assert set(lines[1].replace(" ", "")) == {"-"}
    assert lines[2].split() == ["step", "11.00", "-"]
    assert lines[3].split() == ["update", "3", "x"]
    assert len({len(line) for line in lines[:2]}) == 1


def test_quality_counts_and_rate_difference():
    counts = speed.quality_counts([_step(1, 1, 1, valid=3, learnable=1), _step(1, 1, 1, valid=2, learnable=2)])
    assert counts == {"x learnable": (3, 5), "x valid": (5, 8), "all learnable": (3, 5), "all valid": (5, 8)}
    diff, low, high = speed.rate_difference(50, 100, 50, 100)
    assert diff == 0 and low < 0 < high
    _, low_one, high_one = speed.rate_difference(40, 100, 60, 100, rounds=1)
    _, low_two, high_two = speed.rate_difference(40, 100, 60, 100, rounds=3)
    assert low_one > 0 and low_two < 0 < high_two and high_two > high_one  # rounds repeat seeds: wider
    assert all(math.isnan(v) for v in speed.rate_difference(1, 0, 1, 2))
    _, low, high = speed.rate_difference(0, 2, 0, 2)  # no zero-width interval at 0/n
    assert low < 0 < high


def test_parse_args():
    args = speed._parse_args(["--steps", "2", "env=arith", "seed_buffers=/tmp/x.jsonl", "seed=3"])
    assert args.base == speed.DEFAULT_BASE and args.steps == 2 and args.rounds == 1
    assert args.seed_buffers == "/tmp/x.jsonl" and args.overrides == ["env=arith", "seed=3"]
    for bad in (["--steps", "0"], ["--rounds", "0"], ["notakeyvalue"]):
        with pytest.raises(SystemExit):
            speed._parse_args(bad)


def test_package_roots(tmp_path):
    for package in ("absolutezero", "agents/policy/absolutezero_policy", "environments/arith/absolutezero_arith",
                    "plugins/safety/absolutezero_safety", "benchmarks/absolutezero_benchmarks"):
        (tmp_path / package).mkdir(parents=True)
        (tmp_path / package / "__init__.py").write_text("")
    (tmp_path / "environments" / "empty").mkdir()
    roots = speed.package_roots(tmp_path)
    assert roots == [tmp_path, tmp_path / "benchmarks", tmp_path / "agents/policy",
                     tmp_path / "environments/arith", tmp_path / "plugins/safety"]


def test_work_counts_generate_and_update():
    from absolutezero.protocol import PROMPT_TOO_LONG, Sample

    class Agent:
        def generate(self, prompts, num_samples=1, greedy=False):
            shared = Sample([1, 2, 3], [4, 5], [0.0, 0.0], "")
            return [[shared], [Sample([1, 2, 3], [6], [0.0], "", forced=[True])],
                    [Sample([9] * 7, [], [], "", finish_reason=PROMPT_TOO_LONG)]]

        def update(self, samples, advantages):
            return {"ok": 1.0}

    agent = Agent()
    work = speed._Work(agent)
    samples = agent.generate(["a", "b", "c"], num_samples=1, greedy=False)
    agent.update([samples[0][0], samples[1][0]], [0.5, 0.5])
    summary = work.summary()
    assert summary["completions"] == 2 and summary["prompts_dropped"] == 1
    assert summary["unique_prompts"] == 1 and summary["unique_prompt_tokens"] == 3
    assert summary["prompt_tokens"] == 6 and summary["completion_tokens"] == 3 and summary["forced_tokens"] == 1
    # the second sample's only completion token was forced: nothing to back-propagate
    assert summary["trained_samples"] == 2 and summary["active_samples"] == 1 and summary["active_tokens"] == 5


def test_report_renders(tmp_path):
    model = {"kind": "model", "model": "toy", "params": 140, "trainable": 70, "embedding": 40, "head": 0,
             "tied": True, "layers": 2, "trainable_layers": 1, "hidden": 4, "intermediate": 8, "vocab": 10,
             "attention_width": 4, "device": "cpu", "threads": 2, "torch": "x", "generation_dtype": "bfloat16",
             "autocast_bf16": True}
    work = {name: 1 for name in ("completions", "unique_prompts", "prompt_tokens", "unique_prompt_tokens",
                                 "completion_tokens", "forced_tokens", "trained_samples", "trained_tokens",
                                 "active_samples", "active_tokens")}
    def step(seconds):
        return {**_step(seconds, seconds / 2, seconds / 4), "work": work, "tokens_trained": 10.0,
                "flops": flops.StepFlops(1e9, 2e9, 3e9, 4e9).as_dict()}
    records = {"base": [model, step(10.0)], "new": [model, step(5.0)]}
    limits = {"float32": {"a": 100.0, "b": 50.0}, "bfloat16": {"a": 200.0, "b": 80.0}}
    text = speed.report(records, limits, 1, [(1, "base", 10.0), (1, "new", 5.0)])
    assert "step" in text and "2.00" in text  # base/new of the step time
    assert "utilisation vs bfloat16" in text and "x valid" in text and "within noise" in text


def test_unknown_base_is_a_clear_error(capsys):
    assert speed.main(["--base", "no-such-revision-xyz", "--steps", "1"]) == 2
    assert "is not a commit" in capsys.readouterr().err
