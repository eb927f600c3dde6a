"""benchmarks/start_speed.py: variants, the table, and one real (tiny) start timed and killed."""

from __future__ import annotations

import argparse
import importlib.util
import sys
from pathlib import Path

import pytest

_PATH = Path(__file__).resolve().parents[1] / "benchmarks" / "start_speed.py"
_spec = importlib.util.spec_from_file_location("_test_start_speed", _PATH)
start_speed = importlib.util.module_from_spec(_spec)
sys.modules[_spec.name] = start_speed
_spec.loader.exec_module(start_speed)


def test_a_variant_is_a_name_and_its_overrides() -> None:
    assert start_speed.parse_variant("big=selfplay.seed_batch=64 agent_options.batch_size=192") == (
        "big", ["selfplay.seed_batch=64", "agent_options.batch_size=192"])
    assert start_speed.parse_variant("default=") == ("default", [])
    with pytest.raises(argparse.ArgumentTypeError, match="NAME=OVERRIDES"):
        start_speed.parse_variant("selfplay.seed_batch")


def _record(seconds: float, rate: float) -> dict[str, float]:
    return {"start_seconds": seconds, "time/seeding": seconds - 10, "seed/rounds": 2.0,
            "seed/deduction/valid_rate": rate, "seed/deduction/tasks": 20.0}


def test_the_table_gives_each_variants_mean_and_ratio_to_the_first() -> None:
    runs = [("six", 0, _record(300, 0.5)), ("two", 0, _record(200, 0.6)),
            ("six", 1, _record(280, 0.7)), ("two", 1, _record(180, 0.4))]
    text = start_speed.format_runs(runs)
    assert "| six | 1 | 280 | 270 | 2 | 70.0% / 20 |" in text
    assert "six: mean 290 s to step 0 over 2 run(s), 1.00x sooner than six; mean valid rates deduction 60.0%" in text
    assert "two: mean 190 s to step 0 over 2 run(s), 1.53x sooner than six; mean valid rates deduction 50.0%" in text


def test_a_partial_line_is_not_a_record(tmp_path) -> None:
    metrics = tmp_path / "metrics.jsonl"
    assert start_speed.first_record(metrics) is None
    metrics.write_text('{"step": 0, "seed/rounds"', encoding="utf-8")
    assert start_speed.first_record(metrics) is None
    metrics.write_text('{"step": 0, "seed/rounds": 1}\n{"step"', encoding="utf-8")
    assert start_speed.first_record(metrics) == {"step": 0, "seed/rounds": 1}


def test_a_real_start_is_timed_to_its_step_0_record(tmp_path, tiny_model_dir) -> None:
    overrides = ["env=arith", f"agent_options.model={tiny_model_dir}", "agent_options.max_new_tokens=6",
                 "selfplay.seed_size=1", "selfplay.seed_max_rounds=2", "selfplay.seed_batch=4",
                 "probe.per_type=1", "probe.max_rounds=1", "agent_options.autocast_bf16=false"]
    record = start_speed.time_start(overrides, tmp_path / "run", timeout=300)
    assert record["step"] == 0 and 0 < record["time/seeding"] < record["start_seconds"]
    assert 1 <= record["seed/rounds"] <= 2


def test_a_start_that_fails_says_why(tmp_path) -> None:
    with pytest.raises(RuntimeError, match=r"no step-0 record (?s:.*)\(exit 2\)(?s:.*)seed_batch must be a positive integer, got 0"):
        start_speed.time_start(["selfplay.seed_batch=0"], tmp_path / "run", timeout=120)
