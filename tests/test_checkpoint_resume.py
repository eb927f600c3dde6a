"""Atomic checkpoints, ``latest``, resume paths, exact continuation and Ctrl-C."""

from __future__ import annotations

import os
import signal
import textwrap

import pytest

from absolutezero.buffers import BufferSet
from absolutezero.checkpoint import (
    CheckpointError,
    checkpoint_dirs,
    defer_keyboard_interrupt,
    load_checkpoint,
    resolve_checkpoint,
    save_checkpoint,
)
from absolutezero.config import load_config
from absolutezero.metrics import read_metrics
from test_selfplay_loop import ScriptedAgent, make_trainer, without_timings


def _save(trainer, run_dir, config=None, **kwargs):
    return save_checkpoint(
        run_dir, trainer.step_count, agent=trainer.agent, buffers=trainer.buffers,
        trainer_state=trainer.state_dict(), config=config or load_config(["env=arith"]), **kwargs,
    )


def test_checkpoint_layout_and_latest_pointer(tmp_path):
    trainer = make_trainer()
    list(trainer.iterate(2))
    path = _save(trainer, tmp_path)
    assert path == tmp_path / "checkpoints" / "step_2"
    assert sorted(p.name for p in path.iterdir()) == ["agent", "buffers.jsonl", "config.yaml", "state.json"]
    assert (tmp_path / "latest").read_text().strip() == "checkpoints/step_2"
    assert resolve_checkpoint(tmp_path) == path == resolve_checkpoint(path)
    loaded = load_checkpoint(tmp_path)
    assert loaded.step == 2 and loaded.run_dir == tmp_path and loaded.config.env == "arith"
    assert loaded.load_buffers().to_jsonl() == trainer.buffers.to_jsonl()
    assert not [p for p in (tmp_path / "checkpoints").iterdir() if p.name.startswith(".")]  # no temp left


def test_resume_continues_exactly_like_an_uninterrupted_run(tmp_path):
    straight = make_trainer(seed=7, agent_seed=7)
    expected = [without_timings(r.metrics) for r in straight.iterate(4)]

    first = make_trainer(seed=7, agent_seed=7)
    before = [without_timings(r.metrics) for r in first.iterate(2)]
    _save(first, tmp_path)

    checkpoint = load_checkpoint(tmp_path)
    resumed = make_trainer(seed=123, agent_seed=123)  # state comes from the checkpoint, not the seed
    resumed.agent.load(str(checkpoint.agent_dir))
    resumed.load_state_dict(checkpoint.trainer_state, checkpoint.load_buffers())
    assert resumed.step_count == 2 and resumed.seeded
    after = [without_timings(r.metrics) for r in resumed.iterate(4)]
    assert [r for r in before + after] == expected  # no second seeding, same steps 3 and 4
    assert resumed.buffers.to_jsonl() == straight.buffers.to_jsonl()
    assert resumed.rng.bit_generator.state == straight.rng.bit_generator.state


def test_failed_save_keeps_the_previous_checkpoint(tmp_path):
    trainer = make_trainer()
    trainer.step()
    _save(trainer, tmp_path)
    trainer.step()

    class Broken(ScriptedAgent):
        def save(self, directory):
            super().save(directory)
            raise OSError("disk full")

    trainer.agent.__class__ = Broken
    with pytest.raises(OSError, match="disk full"):
        _save(trainer, tmp_path)
    assert resolve_checkpoint(tmp_path).name == "step_1"
    assert [p.name for p in checkpoint_dirs(tmp_path)] == ["step_1"]
    assert [p.name for p in (tmp_path / "checkpoints").iterdir()] == ["step_1"]


def test_keep_last_prunes_old_checkpoints(tmp_path):
    trainer = make_trainer()
    for _ in range(3):
        trainer.step()
        _save(trainer, tmp_path, keep_last=2)
    assert [p.name for p in checkpoint_dirs(tmp_path)] == ["step_2", "step_3"]
    with pytest.raises(ValueError, match="keep_last"):
        _save(trainer, tmp_path, keep_last=0)


def test_resolve_errors_say_what_is_wrong(tmp_path):
    with pytest.raises(CheckpointError, match="does not exist"):
        resolve_checkpoint(tmp_path / "nope")
    with pytest.raises(CheckpointError, match="neither a checkpoint folder"):
        resolve_checkpoint(tmp_path)
    (tmp_path / "latest").write_text("checkpoints/step_9\n")
    with pytest.raises(CheckpointError, match="not a complete checkpoint"):
        resolve_checkpoint(tmp_path)


def test_resuming_with_other_task_types_is_refused(tmp_path):
    from absolutezero.config import ConfigError

    trainer = make_trainer()
    trainer.step()
    other = BufferSet(["evaluate"], 16)
    with pytest.raises(ConfigError, match="same env"):
        make_trainer().load_state_dict(trainer.state_dict(), other)


def test_sigint_inside_a_deferred_block_is_raised_after_it():
    # A shell's background job starts with SIGINT ignored; this test needs Python's own
    # handler, as an interactive run has it.
    previous = signal.signal(signal.SIGINT, signal.default_int_handler)
    try:
        _sigint_in_deferred_blocks()
    finally:
        signal.signal(signal.SIGINT, previous)


def _sigint_in_deferred_blocks():
    finished = []
    with pytest.raises(KeyboardInterrupt):
        with defer_keyboard_interrupt():
            os.kill(os.getpid(), signal.SIGINT)
            finished.append(True)  # the block is not torn in half
    assert finished == [True]
    with defer_keyboard_interrupt(raise_after=False) as state:
        os.kill(os.getpid(), signal.SIGINT)
    assert state.received
    assert signal.getsignal(signal.SIGINT) is signal.default_int_handler


# -- through the CLI with the real policy agent ----------------------------------------

def _cli_args(tmp_path, tiny_model_dir, *extra):
    return [f"out={tmp_path / 'runs'}", f"agent_options.model={tiny_model_dir}", "env=arith", "progress=false",
            "agent_options.max_new_tokens=8", "selfplay.propose_batch=2", "selfplay.solve_batch=2",
            "agent_options.autocast_bf16=false", *extra]


@pytest.fixture
def no_autoload(monkeypatch):
    monkeypatch.setenv("ABSOLUTEZERO_DISABLE_PLUGIN_AUTOLOAD", "1")


def test_cli_resume_continues_the_run(tmp_path, tiny_model_dir, no_autoload, capsys):
    pytest.importorskip("absolutezero_policy.agent")
    from absolutezero.run import main

    assert main(_cli_args(tmp_path, tiny_model_dir, "name=r", "steps=2", "checkpoint_every=1")) == 0
    run_dir = tmp_path / "runs" / "r"
    assert [p.name for p in checkpoint_dirs(run_dir)] == ["step_1", "step_2"]
    buffers_at_2 = (run_dir / "checkpoints" / "step_2" / "buffers.jsonl").read_text()
    # a line of a lost step 3 (as after a crash) must not survive the resume
    with open(run_dir / "metrics.jsonl", "a") as handle:
        handle.write('{"step": 3, "lost": 1}\n')
    assert main([f"resume={run_dir}", "steps=3", "checkpoint_keep=2"]) == 0
    # checkpoint_keep prunes the oldest checkpoints once a newer one is safely written
    assert [p.name for p in checkpoint_dirs(run_dir)] == ["step_2", "step_3"]
    records = read_metrics(run_dir / "metrics.jsonl")
    assert [r["step"] for r in records] == [0, 1, 2, 3]
    assert "lost" not in records[-1]
    checkpoint = load_checkpoint(run_dir)
    assert checkpoint.step == 3 and checkpoint.config.steps == 3
    resumed = checkpoint.load_buffers()
    old = BufferSet.from_jsonl(buffers_at_2)
    for task_type in old.task_types:  # step 3 only added tasks (tagged 3) to step 2's buffers
        before = [(e.task, e.step) for e in old[task_type].entries()]
        after = [(e.task, e.step) for e in resumed[task_type].entries()]
        assert after[: len(before)] == before
        assert all(step == 3 for _, step in after[len(before):])


def test_ctrl_c_saves_a_valid_checkpoint_and_exits_130(tmp_path, tiny_model_dir, no_autoload, monkeypatch, capsys):
    pytest.importorskip("absolutezero_policy.agent")
    from absolutezero.run import main

    plugin_dir = tmp_path / "plugin"
    plugin_dir.mkdir()
    (plugin_dir / "interrupting_plugin.py").write_text(textwrap.dedent(
        """
        from absolutezero import hookimpl

        state = {"answers": 0, "armed": None}

        @hookimpl
        def absolutezero_step_metrics(step, metrics):
            if step == 1:
                state["armed"] = state["answers"]

        @hookimpl
        def absolutezero_filter_answer(task, response):
            # like Ctrl-C in the middle of step 2's verification
            state["answers"] += 1
            if state["armed"] is not None and state["answers"] > state["armed"]:
                raise KeyboardInterrupt
            return None
        """
    ))
    monkeypatch.syspath_prepend(str(plugin_dir))
    code = main(_cli_args(tmp_path, tiny_model_dir, "name=c", "steps=5", "checkpoint_every=0",
                          "plugins=[interrupting_plugin]"))
    assert code == 130
    err = capsys.readouterr().err
    assert "interrupted" in err and "resume=" in err and "Traceback" not in err
    run_dir = tmp_path / "runs" / "c"
    checkpoint = load_checkpoint(run_dir)
    assert checkpoint.step == 1  # the torn step 2 was rolled back
    assert [r["step"] for r in read_metrics(run_dir / "metrics.jsonl")] == [0, 1]
    buffers = checkpoint.load_buffers()
    assert max(e.step for t in buffers.task_types for e in buffers[t].entries()) <= 1
    assert (run_dir / "plots" / "solver_accuracy.png").is_file()


def test_sigterm_stops_a_run_like_ctrl_c(tmp_path, tiny_model_dir, no_autoload, monkeypatch, capsys):
    """kill (or a job scheduler) sends SIGTERM; a background run ignores SIGINT. Either way
    the run saves the last completed step and exits 130."""
    pytest.importorskip("absolutezero_policy.agent")
    from absolutezero.run import main

    plugin_dir = tmp_path / "plugin"
    plugin_dir.mkdir()
    (plugin_dir / "terminating_plugin.py").write_text(textwrap.dedent(
        """
        import os, signal
        from absolutezero import hookimpl

        @hookimpl
        def absolutezero_step_metrics(step, metrics):
            if step == 1:
                os.kill(os.getpid(), signal.SIGTERM)
        """
    ))
    monkeypatch.syspath_prepend(str(plugin_dir))
    before = signal.getsignal(signal.SIGTERM)
    code = main(_cli_args(tmp_path, tiny_model_dir, "name=t", "steps=5", "checkpoint_every=0",
                          "plugins=[terminating_plugin]"))
    assert code == 130 and "Traceback" not in capsys.readouterr().err
    assert load_checkpoint(tmp_path / "runs" / "t").step == 1
    assert signal.getsignal(signal.SIGTERM) is before  # main restores the handler


def test_sigterm_inside_a_deferred_block_is_held_back():
    with defer_keyboard_interrupt(raise_after=False) as state:
        os.kill(os.getpid(), signal.SIGTERM)
    assert state.received
