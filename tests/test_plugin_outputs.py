"""What plugins contribute to a run's outputs through hooks, so that the core names none
of them: their own files in the run folder (``absolutezero_run_start``), numbers in each
step's record (``absolutezero_extra_metrics``) and lines in the final message
(``absolutezero_run_summary``)."""

from __future__ import annotations

import pluggy
import pytest

from absolutezero import hookimpl, hookspecs
from absolutezero.plugins import extra_metrics, run_summary
from absolutezero.review import ReviewItem
from absolutezero.seeding import start_buffers
from absolutezero_oversight.plugin import LOG_FILE, OversightMonitor
from test_selfplay_loop import make_trainer


class Counter:
    """A small plugin that counts accepted tasks and reports them in its own namespace."""

    def __init__(self) -> None:
        self.accepted = 0
        self.asked: list[int] = []

    @hookimpl
    def absolutezero_task_accepted(self, task, step):
        self.accepted += 1

    @hookimpl
    def absolutezero_extra_metrics(self, step):
        self.asked.append(step)
        return {"counter/accepted": self.accepted}

    @hookimpl
    def absolutezero_run_summary(self, run_dir, status):
        return [f"counter: {self.accepted} tasks accepted ({status}) in {run_dir}"]


def _manager(*plugins) -> pluggy.PluginManager:
    pm = pluggy.PluginManager(hookspecs.PROJECT_NAME)
    pm.add_hookspecs(hookspecs)
    for plugin in plugins:
        pm.register(plugin)
    return pm


def test_a_plugins_metrics_join_the_seeding_and_step_records():
    counter = Counter()
    trainer = make_trainer(pm=_manager(counter))
    seeding = trainer.seed()
    assert seeding.metrics["counter/accepted"] == counter.accepted > 0
    first = counter.accepted
    result = trainer.step()
    assert result.metrics["counter/accepted"] == counter.accepted >= first
    assert counter.asked == [0, 1]


def test_the_same_run_without_the_plugin_differs_only_by_its_metrics():
    plain, counted = make_trainer(seed=2, agent_seed=2), make_trainer(seed=2, agent_seed=2, pm=_manager(Counter()))
    a, b = plain.step().metrics, counted.step().metrics
    strip = lambda m: {k: v for k, v in m.items() if not k.startswith(("time/", "counter/"))}  # noqa: E731
    assert strip(a) == strip(b) and "counter/accepted" in b and "counter/accepted" not in a


def test_seed_buffers_from_a_file_also_get_the_plugins_metrics(tmp_path):
    first = make_trainer()
    first.seed()
    first.buffers.save(tmp_path / "seed.jsonl")
    counter = Counter()
    trainer = make_trainer(pm=_manager(counter))
    start = start_buffers(trainer, str(tmp_path / "seed.jsonl"))
    assert start.source == "file" and start.metrics["counter/accepted"] == 0 and start.metrics["seed/reused"] == 1.0
    assert start_buffers(trainer, None).source == "checkpoint"  # seeded now: nothing more to do


def test_start_buffers_says_what_it_does(tmp_path):
    said: list[str] = []
    start = start_buffers(make_trainer(), None, announce=said.append)
    assert start.source == "seeding" and "seed/rounds" in start.metrics
    assert said == ["seeding the task buffers (no training) ..."]


def test_a_plugin_cannot_overwrite_a_core_metric_or_another_plugins():
    class Thief:
        @hookimpl
        def absolutezero_extra_metrics(self, step):
            return {"overall/solve_rate": 1.0}

    trainer = make_trainer(pm=_manager(Thief()))
    trainer.seed()  # seeding has no overall/solve_rate
    with pytest.raises(ValueError, match="'overall/solve_rate', which is already set"):
        trainer.step()
    with pytest.raises(ValueError, match="counter/accepted"):
        extra_metrics(_manager(Counter(), Counter()), 1)

    class Wrong:
        @hookimpl
        def absolutezero_extra_metrics(self, step):
            return {"wrong/value": "high"}

    with pytest.raises(TypeError, match="expected str -> number"):
        extra_metrics(_manager(Wrong()), 1)


def test_summary_lines_are_collected_in_hook_order():
    assert run_summary(_manager(), "runs/x", "completed") == []
    lines = run_summary(_manager(Counter()), "runs/x", "stopped")
    assert lines == ["counter: 0 tasks accepted (stopped) in runs/x"]

    class Bad:
        @hookimpl
        def absolutezero_run_summary(self, run_dir, status):
            return "one string, not a list"

    with pytest.raises(TypeError, match="expected a list of str"):
        run_summary(_manager(Bad()), "runs/x", "completed")


def test_the_oversight_plugin_names_its_own_log_in_the_summary(tmp_path):
    monitor = OversightMonitor({"extra_rules": {"anything": {"category": "sabotage", "pattern": "\\S"}}})
    monitor.start(None, tmp_path)
    assert monitor.absolutezero_run_summary(run_dir=str(tmp_path), status="completed") == []  # nothing flagged
    monitor.review(_items("x"))
    lines = monitor.absolutezero_run_summary(run_dir=str(tmp_path), status="stopped")
    assert len(lines) == 1 and str(tmp_path / LOG_FILE) in lines[0] and "read them before continuing" in lines[0]
    assert monitor.absolutezero_run_summary(run_dir=str(tmp_path / "other"), status="stopped") == []
    monitor.absolutezero_run_end(run_dir=str(tmp_path), status="stopped")
    assert monitor.absolutezero_run_summary(run_dir=str(tmp_path), status="stopped") == []  # the run is over


def _items(*texts: str) -> list[ReviewItem]:
    return [ReviewItem(1, "solve", "deduction", text) for text in texts]
