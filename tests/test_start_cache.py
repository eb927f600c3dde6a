"""The start cache (absolutezero.start_cache): later runs with the same seed and the
settings that shape the starting tasks reuse the seed buffers and probe set, and train
exactly as the run that proposed them. Runs drive ``python -m absolutezero.run``
in-process with the tiny random Llama."""

from __future__ import annotations

import logging
from pathlib import Path

from omegaconf import OmegaConf

from absolutezero.config import load_config
from absolutezero.metrics import read_metrics
from absolutezero.probe import PROBE_FILE, PROBE_START_FILE
from absolutezero.run import SEED_BUFFERS_FILE, main
from absolutezero.start_cache import CACHE_FOLDER, CachedStart, StartCache, start_settings

TRAINING_ONLY = ["learning_rate"]


def _settings(*overrides: str) -> dict:
    return start_settings(load_config(["env=arith", *overrides]), TRAINING_ONLY, ["oversight"], {"env": "x 1"})


def test_the_key_follows_what_shapes_the_starting_tasks_and_nothing_else(tmp_path):
    key = StartCache(tmp_path, _settings()).key
    same = [["steps=7"], ["agent_options.learning_rate=0.1"], ["rewards.variant=original"],
            ["selfplay.solve_batch=9"], ["trackers=[csv]", "plugin_options.csv.x=1"]]
    for overrides in same:
        assert StartCache(tmp_path, _settings(*overrides)).key == key, overrides
    other = ["seed=1", "agent_options.temperature=0.5", "selfplay.seed_size=3", "probe.per_type=5",
             "env_options.max_operand=9", "selfplay.seed_batch=2", "plugin_options.oversight.mode=block"]
    for override in other:
        assert StartCache(tmp_path, _settings(override)).key != key, override
    # no probe set: its sizes do not count
    assert StartCache(tmp_path, _settings("probe.every=0", "probe.per_type=5")).key == \
        StartCache(tmp_path, _settings("probe.every=0")).key


def test_an_entry_round_trips_and_a_broken_one_is_ignored(tmp_path, caplog):
    cache = StartCache(tmp_path, _settings())
    assert cache.read() is None
    cache.write(CachedStart("buffers\n", "probe\n", {"seed/rounds": 2.0}, [True, False]))
    assert cache.folder.parent == tmp_path / CACHE_FOLDER
    assert cache.read() == CachedStart("buffers\n", "probe\n", {"seed/rounds": 2.0}, [True, False])
    cache.write(CachedStart("buffers\n", "probe\n", {"seed/rounds": 2.0}))  # a probe set without its verdicts
    with caplog.at_level(logging.WARNING, logger="absolutezero.start_cache"):
        assert cache.read() is None
    assert "not the untrained model's verdicts" in caplog.text
    (cache.folder / "start.json").write_text("{not json")
    with caplog.at_level(logging.WARNING, logger="absolutezero.start_cache"):
        assert cache.read() is None
    assert "ignoring the start cache" in caplog.text


def _args(out: Path, model: Path, name: str, *extra: str) -> list[str]:
    return [f"out={out}", "env=arith", f"agent_options.model={model}", f"name={name}", "steps=2", "progress=false",
            "agent_options.max_new_tokens=6", "selfplay.propose_batch=2", "selfplay.solve_batch=2",
            "selfplay.seed_size=1", "selfplay.seed_max_rounds=2", "selfplay.seed_batch=4", "probe.every=1",
            "probe.per_type=1", "probe.max_rounds=2", "agent_options.autocast_bf16=false", "checkpoint_every=0",
            *extra]


def _step(record: dict) -> dict:
    """A step's record without what measures the machine (times, memory)."""
    return {k: v for k, v in record.items()
            if not k.startswith("time/") and "seconds" not in k and "peak_memory" not in k}


def test_a_later_run_reuses_the_start_and_trains_as_the_first(tmp_path, tiny_model_dir, capsys):
    assert main(_args(tmp_path, tiny_model_dir, "first")) == 0
    entries = list((tmp_path / CACHE_FOLDER).iterdir())
    assert len(entries) == 1 and (entries[0] / SEED_BUFFERS_FILE).is_file()
    capsys.readouterr()
    assert main(_args(tmp_path, tiny_model_dir, "second")) == 0
    assert "reused from" in capsys.readouterr().err
    first = read_metrics(tmp_path / "first" / "metrics.jsonl")
    second = read_metrics(tmp_path / "second" / "metrics.jsonl")
    assert "seed/cached" not in first[0] and second[0]["seed/cached"] == 1.0
    assert second[0]["seed/rounds"] == first[0]["seed/rounds"]
    # the untrained model's probe scores come with the entry (greedy: the same numbers)
    assert {k: v for k, v in second[0].items() if k.startswith("probe/")} == \
        {k: v for k, v in first[0].items() if k.startswith("probe/")} != {}
    for name in (SEED_BUFFERS_FILE, PROBE_FILE, PROBE_START_FILE):
        assert (tmp_path / "second" / name).read_text() == (tmp_path / "first" / name).read_text()
    assert [_step(r) for r in second[1:]] == [_step(r) for r in first[1:]]  # step for step

    # a training-only option still reuses; another seed or reuse_start=false proposes anew
    assert main(_args(tmp_path, tiny_model_dir, "lr", "agent_options.learning_rate=0.001")) == 0
    assert "reused from" in capsys.readouterr().err
    assert main(_args(tmp_path, tiny_model_dir, "fresh", "reuse_start=false")) == 0
    assert "reused from" not in capsys.readouterr().err
    assert main(_args(tmp_path, tiny_model_dir, "seed1", "seed=1")) == 0
    assert "reused from" not in capsys.readouterr().err
    assert len(list((tmp_path / CACHE_FOLDER).iterdir())) == 2
    saved = OmegaConf.load(tmp_path / "lr" / "config.yaml")
    assert saved.reuse_start is True  # recorded, so the saved config reruns the same way
