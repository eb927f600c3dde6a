"""Seeding as in the paper (seed_size distinct tasks, saved, reusable) and the held-out probe.

The trainer-level tests use the real ``arith`` environment with the scripted agent of
test_selfplay_loop.py (exact bookkeeping); the run-level tests drive
``python -m absolutezero.run`` in-process with the tiny random Llama.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from absolutezero.intervals import wilson_interval

from absolutezero.buffers import BufferSet
from absolutezero.config import ConfigError
from absolutezero.metrics import read_metrics
from absolutezero.paired import sign_test_p
from absolutezero.probe import PROBE_FILE, PROBE_START_FILE, ProbeSet, propose_held_out
from absolutezero.protocol import Task, Verdict
from absolutezero.run import SEED_BUFFERS_FILE, main
from test_selfplay_loop import make_trainer


def test_seeding_fills_every_buffer_with_seed_size_distinct_valid_tasks():
    trainer = make_trainer(seed_size=6, seed_max_rounds=20, propose_batch=4)
    identity = {t: len(trainer.env.seed_tasks(t)) for t in trainer.buffers.task_types}
    result = trainer.seed()
    for task_type in trainer.task_types:
        added = trainer.buffers.sizes()[task_type] - identity[task_type]
        assert added >= 6 and result.metrics[f"seed/{task_type}/tasks"] == added
        keys = [entry.task.key() for entry in trainer.buffers.buffer(task_type).entries()]
        assert len(keys) == len(set(keys))  # deduplicated
        assert 0 < result.metrics[f"seed/{task_type}/valid_rate"] <= 1
    assert 1 <= result.metrics["seed/rounds"] < 20
    assert trainer.agent.updates == []  # seeding never trains


def test_seeding_stops_after_seed_max_rounds_when_proposals_are_invalid():
    trainer = make_trainer(seed_size=50, seed_max_rounds=3)
    trainer.agent.p_garbage = 1.0  # every proposal is unparseable
    result = trainer.seed()
    assert result.metrics["seed/rounds"] == 3 and len(trainer.agent.generate_calls) == 3
    assert all(result.metrics[f"seed/{t}/tasks"] == 0 for t in trainer.task_types)
    assert trainer.seeded


def test_seed_size_zero_keeps_only_the_environments_seeds():
    trainer = make_trainer(seed_size=0)
    trainer.seed()
    assert trainer.agent.generate_calls == []
    assert all(size >= 1 for size in trainer.buffers.sizes().values())


def test_saved_seed_buffers_are_reused_without_seeding():
    first = make_trainer(seed_size=4, seed_max_rounds=10)
    first.seed()
    second = make_trainer(seed_size=4, seed_max_rounds=10)
    second.use_seed_buffers(BufferSet.from_jsonl(first.buffers.to_jsonl(), 4096))
    assert second.seeded and second.buffers.to_jsonl() == first.buffers.to_jsonl()
    second.step()
    assert second.agent.generate_calls[0][0] == 8  # the step's proposals: no seeding call before
    wrong = BufferSet(["evaluate"], 10)
    with pytest.raises(ConfigError, match="task types"):
        make_trainer().use_seed_buffers(wrong)


def test_held_out_tasks_never_enter_a_buffer_or_a_solve_batch():
    trainer = make_trainer(seed_size=2, seed_max_rounds=5, propose_batch=6, solve_batch=4)
    trainer.seed()
    before = trainer.buffers.to_jsonl()
    trainer_rng = trainer.rng.bit_generator.state
    held = propose_held_out(trainer, per_type=3, seed=99, max_rounds=10)
    assert trainer.buffers.to_jsonl() == before  # proposing the probe set adds nothing
    assert trainer.rng.bit_generator.state == trainer_rng  # and uses its own rng
    tasks = [task for chosen in held.values() for task in chosen]
    assert tasks and all(len(chosen) <= 3 for chosen in held.values())
    assert all(task not in trainer.buffers for task in tasks)
    # the model proposes exactly a held-out task again: it is valid but never stored
    probe_task = tasks[0]
    a, b = (int(x) for x in probe_task.payload["expression"].split(" + "))
    solved: list[Task] = []
    original_text, original_verify = trainer.agent._text, trainer.env.verify

    def propose_the_probe_task(prompt):
        if "task_type" in prompt.context and prompt.context["task_type"] == probe_task.task_type:
            return f"<answer>{a} + {b}</answer>"
        return original_text(prompt)

    def record(tasks_, prompts, responses):
        solved.extend(tasks_)
        return original_verify(tasks_, prompts, responses)

    trainer.agent._text = propose_the_probe_task
    trainer.env.verify = record
    result = trainer.step()
    assert result.metrics[f"propose/{probe_task.task_type}/valid_rate"] > 0
    assert all(task not in trainer.buffers for task in tasks)
    # it was solved only as learnability rollouts, never in the trained solve batch
    n = trainer.settings.learnability_samples
    rollouts = int(result.metrics["learnability/rollouts"])
    assert probe_task not in solved[rollouts:] and solved[:rollouts].count(probe_task) % n == 0


def test_probe_set_round_trips_and_scores_greedily(tmp_path):
    trainer = make_trainer(seed_size=2, seed_max_rounds=5)
    trainer.seed()
    probe = ProbeSet(propose_held_out(trainer, per_type=2, seed=5, max_rounds=5))
    path = tmp_path / PROBE_FILE
    probe.save(path, trainer.env)
    loaded = ProbeSet.load(path, trainer.env, trainer.task_types)
    assert [t.key() for t in loaded.all_tasks()] == [t.key() for t in probe.all_tasks()]
    calls_before = len(trainer.agent.generate_calls)
    metrics = loaded.score(trainer.solve_greedily)
    assert trainer.agent.generate_calls[calls_before:] == [(len(loaded), 1, True)]  # one greedy call
    for task_type, chosen in loaded.tasks.items():
        if chosen:
            accuracy = metrics[f"probe/{task_type}/accuracy"]
            assert 0.0 <= accuracy <= 1.0
            assert metrics[f"probe/{task_type}/size"] == len(chosen)
            # its 95% Wilson interval brackets it
            assert metrics[f"probe/{task_type}/accuracy_ci_low"] <= accuracy <= metrics[f"probe/{task_type}/accuracy_ci_high"]
            assert (metrics[f"probe/{task_type}/accuracy_ci_low"], metrics[f"probe/{task_type}/accuracy_ci_high"]) == \
                wilson_interval(round(accuracy * len(chosen)), len(chosen))
    path.write_text('{"task_type": "nope", "payload": {}}\n')
    with pytest.raises(ConfigError, match=f"{PROBE_FILE}:1"):
        ProbeSet.load(path, trainer.env, trainer.task_types)


def _fixed_solver(correct: list[bool]):
    """A solver whose verdicts are given, in task order (the scoring logic, not a model)."""
    return lambda tasks: [Verdict(score=1.0 if ok else 0.0) for ok in correct[: len(tasks)]]


def test_scores_are_paired_with_the_untrained_models_verdicts(tmp_path):
    tasks = {"deduction": [Task("deduction", {"i": i}) for i in range(3)],
             "abduction": [Task("abduction", {"i": i}) for i in range(4)]}
    probe = ProbeSet(tasks)
    first = probe.score(_fixed_solver([True, False, False, True, True, False, False]))
    assert not any(key.endswith(("/gained", "/lost", "/sign_test_p")) for key in first)  # nothing to pair with yet
    probe.start = probe.last_correct
    probe.save_start(tmp_path / PROBE_START_FILE)
    loaded = ProbeSet(tasks)
    loaded.load_start(tmp_path / PROBE_START_FILE)
    assert loaded.start == [True, False, False, True, True, False, False]
    later = loaded.score(_fixed_solver([True, True, True, True, False, True, True]))
    assert (later["probe/deduction/gained"], later["probe/deduction/lost"]) == (2, 0)
    assert (later["probe/abduction/gained"], later["probe/abduction/lost"]) == (2, 1)
    assert (later["probe/overall/gained"], later["probe/overall/lost"]) == (4, 1)
    assert later["probe/overall/sign_test_p"] == sign_test_p(4, 1) == 0.375
    assert later["probe/deduction/sign_test_p"] == 0.5


def test_start_verdicts_of_another_probe_set_are_refused(tmp_path):
    probe = ProbeSet({"deduction": [Task("deduction", {"i": i}) for i in range(3)]})
    with pytest.raises(ConfigError, match="2 verdicts for 3 probe tasks"):
        probe.set_start([True, False])
    path = tmp_path / PROBE_START_FILE
    path.write_text('{"correct": [1, 0]}')
    with pytest.raises(ConfigError, match=f"{PROBE_START_FILE} hold 2 verdicts for 3 probe tasks"):
        probe.load_start(path)
    path.write_text('{"correct": [1, 0, 7]}')
    with pytest.raises(ConfigError, match="cannot read the probe's start verdicts .*not a list of 0/1"):
        probe.load_start(path)
    with pytest.raises(ValueError, match="no start verdicts to save"):
        probe.save_start(path)


def _run_args(tmp_path: Path, model: Path, name: str, *extra: str) -> list[str]:
    return [f"out={tmp_path}", "env=arith", f"agent_options.model={model}", f"name={name}", "steps=1", "progress=false",
            "agent_options.max_new_tokens=6", "selfplay.propose_batch=2", "selfplay.solve_batch=2",
            "selfplay.seed_size=1", "selfplay.seed_max_rounds=2", "probe.every=1", "probe.per_type=2",
            "probe.max_rounds=2", "agent_options.autocast_bf16=false", *extra]


def test_a_run_saves_its_seed_buffers_and_a_second_run_reuses_them(tmp_path, tiny_model_dir, capsys):
    assert main(_run_args(tmp_path, tiny_model_dir, "first")) == 0
    saved = tmp_path / "first" / SEED_BUFFERS_FILE
    assert saved.is_file()
    first = read_metrics(tmp_path / "first" / "metrics.jsonl")
    # the tiny random model rarely proposes a valid task: the probe may be empty, but it is
    # measured at step 0 and every probe.every steps, and saved
    assert "seed/rounds" in first[0] and "probe/evaluate/size" in first[0]
    assert "probe/evaluate/size" in first[1]  # probe.every=1
    assert (tmp_path / "first" / PROBE_FILE).is_file()
    capsys.readouterr()
    assert main(_run_args(tmp_path, tiny_model_dir, "second", f"seed_buffers={saved}")) == 0
    assert "no seeding" in capsys.readouterr().err
    second = read_metrics(tmp_path / "second" / "metrics.jsonl")
    assert second[0]["seed/reused"] == 1.0 and "seed/rounds" not in second[0]
    reused = (tmp_path / "second" / SEED_BUFFERS_FILE).read_text()
    assert reused == saved.read_text()
    # a missing or corrupt seed file is a configuration error (exit 2), not a traceback
    assert main(_run_args(tmp_path, tiny_model_dir, "third", f"seed_buffers={tmp_path / 'none.jsonl'}")) == 2
    (tmp_path / "bad.jsonl").write_text("not json\n")
    assert main(_run_args(tmp_path, tiny_model_dir, "fourth", f"seed_buffers={tmp_path / 'bad.jsonl'}")) == 2
    assert "seed_buffers=" in capsys.readouterr().err


def test_a_runs_probe_scores_are_paired_with_step_0_and_resume_keeps_the_pairing(tmp_path, tiny_model_dir):
    from absolutezero_arith.env import ArithEnvironment
    from absolutezero_arith.expr import parse

    env = ArithEnvironment()  # the tiny model rarely proposes a probe task: the run folder holds three
    tasks = {"evaluate": [env._module("evaluate").make_task(parse(text, env.limits), env.limits)
                          for text in ("1 + 2", "3 + 4", "5 + 6")]}
    run_dir = tmp_path / "r"
    run_dir.mkdir()
    ProbeSet(tasks).save(run_dir / PROBE_FILE, env)
    assert main(_run_args(tmp_path, tiny_model_dir, "r", "checkpoint_every=1")) == 0
    start = ProbeSet(tasks)
    start.load_start(run_dir / PROBE_START_FILE)  # the untrained model's verdicts, one per task
    assert main(_run_args(tmp_path, tiny_model_dir, "r", f"resume={run_dir}", "steps=2")) == 0
    records = read_metrics(run_dir / "metrics.jsonl")
    assert [r["step"] for r in records] == [0, 1, 2]
    assert records[0]["probe/overall/accuracy"] == sum(start.start) / 3
    assert "probe/overall/gained" not in records[0]
    for record in records[1:]:  # after step 0, and after the resume
        for prefix in ("probe/evaluate", "probe/overall"):
            gained, lost = record[f"{prefix}/gained"], record[f"{prefix}/lost"]
            assert record[f"{prefix}/accuracy"] * 3 == pytest.approx(sum(start.start) + gained - lost)
            assert record[f"{prefix}/sign_test_p"] == sign_test_p(int(gained), int(lost))
