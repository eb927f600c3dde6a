"""Plugin manager: hookspecs, autoload from entry points, extra modules, helpers."""

from __future__ import annotations

import inspect
import sys
import textwrap

import pluggy
import pytest

import absolutezero
from absolutezero import hookspecs, plugins
from absolutezero.protocol import Task

DOCUMENTED_HOOKS = {
    "absolutezero_run_start": ["config", "run_dir"],
    "absolutezero_run_end": ["run_dir", "status"],
    "absolutezero_step_metrics": ["step", "metrics"],
    "absolutezero_extra_metrics": ["step"],
    "absolutezero_run_summary": ["run_dir", "status"],
    "absolutezero_task_accepted": ["task", "step"],
    "absolutezero_task_rejected": ["task_type", "response", "reason", "step"],
    "absolutezero_checkpoint": ["path", "step"],
    "absolutezero_filter_proposal": ["task", "response"],
    "absolutezero_filter_answer": ["task", "response"],
    "absolutezero_reward_terms": ["role", "task", "response", "reward"],
    "absolutezero_review_responses": ["items"],
}

RECORDING_PLUGIN = '''
from absolutezero import hookimpl

CALLS = []

@hookimpl
def absolutezero_run_start(config, run_dir):
    CALLS.append(("run_start", run_dir))

@hookimpl
def absolutezero_run_end(run_dir, status):
    CALLS.append(("run_end", status))

@hookimpl
def absolutezero_step_metrics(step, metrics):
    CALLS.append(("step_metrics", step, dict(metrics)))

@hookimpl
def absolutezero_task_accepted(task, step):
    CALLS.append(("task_accepted", task.task_type, step))

@hookimpl
def absolutezero_task_rejected(task_type, response, reason, step):
    CALLS.append(("task_rejected", task_type, reason))

@hookimpl
def absolutezero_checkpoint(path, step):
    CALLS.append(("checkpoint", path, step))

@hookimpl
def absolutezero_extra_metrics(step):
    return {"recorder/step": step}

@hookimpl
def absolutezero_run_summary(run_dir, status):
    return [f"recorder: {status}"]

@hookimpl
def absolutezero_filter_proposal(task, response):
    return "no sevens" if "7" in response else None

@hookimpl
def absolutezero_filter_answer(task, response):
    return "no shouting" if response.isupper() else None

@hookimpl
def absolutezero_reward_terms(role, task, response, reward):
    return -0.01 * len(response) if role == "solve" else None
'''


@pytest.fixture
def no_autoload(monkeypatch):
    monkeypatch.setenv(plugins.AUTOLOAD_ENV_VAR, "1")


@pytest.fixture
def module_dir(tmp_path, monkeypatch):
    monkeypatch.syspath_prepend(str(tmp_path))
    created = []

    def write(name: str, source: str) -> str:
        (tmp_path / f"{name}.py").write_text(textwrap.dedent(source))
        created.append(name)
        return name

    yield write
    for name in created:
        sys.modules.pop(name, None)


def test_hookspecs_are_exactly_the_documented_ones():
    pm = pluggy.PluginManager("absolutezero")
    pm.add_hookspecs(hookspecs)
    names = {n for n in dir(pm.hook) if n.startswith("absolutezero_")}
    assert names == set(DOCUMENTED_HOOKS)
    for name, args in DOCUMENTED_HOOKS.items():
        spec = getattr(hookspecs, name)
        assert list(inspect.signature(spec).parameters) == args
        assert spec.__doc__ and len(spec.__doc__.strip()) > 40, f"{name} needs a real docstring"


def test_hookimpl_marker_is_exported():
    assert absolutezero.hookimpl.project_name == "absolutezero"


def test_every_hook_reaches_a_plugin(no_autoload, module_dir):
    name = module_dir("recording_plugin_mod", RECORDING_PLUGIN)
    pm = plugins.get_plugin_manager([name])
    recorder = sys.modules[name]
    task = Task("evaluate", {"expression": "1 + 1", "value": 2})
    pm.hook.absolutezero_run_start(config={"steps": 1}, run_dir="/tmp/run")
    pm.hook.absolutezero_step_metrics(step=3, metrics={"reward": 0.5})
    pm.hook.absolutezero_task_accepted(task=task, step=3)
    pm.hook.absolutezero_task_rejected(task_type="evaluate", response="x", reason="bad", step=3)
    pm.hook.absolutezero_checkpoint(path="/tmp/run/checkpoints/step_3", step=3)
    pm.hook.absolutezero_run_end(run_dir="/tmp/run", status="completed")
    assert recorder.CALLS == [
        ("run_start", "/tmp/run"),
        ("step_metrics", 3, {"reward": 0.5}),
        ("task_accepted", "evaluate", 3),
        ("task_rejected", "evaluate", "bad"),
        ("checkpoint", "/tmp/run/checkpoints/step_3", 3),
        ("run_end", "completed"),
    ]
    assert plugins.filter_proposal(pm, task, "<answer>7 * 2</answer>") == "no sevens"
    assert plugins.filter_proposal(pm, task, "<answer>3 * 2</answer>") is None
    assert plugins.filter_answer(pm, task, "SHOUT") == "no shouting"
    assert plugins.filter_answer(pm, task, "calm") is None
    assert plugins.reward_bonus(pm, "solve", task, "abcd", 1.0) == pytest.approx(-0.04)
    assert plugins.reward_bonus(pm, "propose", task, "abcd", 1.0) == 0.0
    assert plugins.extra_metrics(pm, 3) == {"recorder/step": 3.0}
    assert plugins.run_summary(pm, "/tmp/run", "stopped") == ["recorder: stopped"]


def test_helpers_combine_several_plugins(no_autoload, module_dir):
    first = module_dir("plugin_a_mod", """
        from absolutezero import hookimpl
        @hookimpl
        def absolutezero_reward_terms(role, task, response, reward):
            return 0.25
    """)
    second = module_dir("plugin_b_mod", """
        from absolutezero import hookimpl
        @hookimpl
        def absolutezero_reward_terms(role, response):
            return 0.5
        @hookimpl
        def absolutezero_filter_proposal(task, response):
            return "b says no"
    """)
    pm = plugins.get_plugin_manager([first, second])
    assert plugins.reward_bonus(pm, "propose", None, "x", 0.0) == 0.75
    assert plugins.filter_proposal(pm, Task("t", {}), "x") == "b says no"
    with pytest.raises(ValueError, match="role must be one of"):
        plugins.reward_bonus(pm, "solver", None, "x", 0.0)


def test_bad_return_types_are_reported(no_autoload, module_dir):
    name = module_dir("bad_return_mod", """
        from absolutezero import hookimpl
        @hookimpl
        def absolutezero_reward_terms(role, task, response, reward):
            return "1.0"
        @hookimpl
        def absolutezero_filter_answer(task, response):
            return True
    """)
    pm = plugins.get_plugin_manager([name])
    with pytest.raises(TypeError, match="must return a number or None"):
        plugins.reward_bonus(pm, "solve", None, "x", 0.0)
    with pytest.raises(TypeError, match="must return a str or None"):
        plugins.filter_answer(pm, Task("t", {}), "x")


def test_object_path_and_duplicate_registration(no_autoload, module_dir):
    name = module_dir("object_plugin_mod", """
        from absolutezero import hookimpl
        class Monitor:
            @hookimpl
            def absolutezero_filter_answer(self, task, response):
                return "object says no"
        MONITOR = Monitor()
    """)
    pm = plugins.get_plugin_manager([f"{name}:MONITOR", f"{name}:MONITOR"])
    assert plugins.filter_answer(pm, Task("t", {}), "x") == "object says no"
    assert [info.source for info in plugins.plugin_infos(pm)] == ["module"]


def test_unimportable_and_malformed_plugins(no_autoload, module_dir):
    with pytest.raises(plugins.PluginLoadError, match="cannot import plugin module 'no_such_plugin_xyz'"):
        plugins.get_plugin_manager(["no_such_plugin_xyz"])
    broken = module_dir("broken_plugin_mod", "raise RuntimeError('boom at import')\n")
    with pytest.raises(plugins.PluginLoadError, match="RuntimeError: boom at import"):
        plugins.get_plugin_manager([broken])
    with pytest.raises(plugins.PluginLoadError, match="bad plugin path"):
        plugins.get_plugin_manager(["mod:"])
    name = module_dir("no_attr_mod", "X = 1\n")
    with pytest.raises(plugins.PluginLoadError, match="has no attribute 'Y'"):
        plugins.get_plugin_manager([f"{name}:Y"])
    with pytest.raises(TypeError, match="not one string"):
        plugins.get_plugin_manager("single.module")


def test_misspelt_hook_is_rejected(no_autoload, module_dir):
    name = module_dir("typo_plugin_mod", """
        from absolutezero import hookimpl
        @hookimpl
        def absolutezero_filter_proposals(task, response):
            return None
    """)
    with pytest.raises(plugins.PluginLoadError, match="unknown hook 'absolutezero_filter_proposals'; did you mean 'absolutezero_filter_proposal'"):
        plugins.get_plugin_manager([name])
    wrong_args = module_dir("wrong_args_mod", """
        from absolutezero import hookimpl
        @hookimpl
        def absolutezero_filter_answer(task, answer_text):
            return None
    """)
    with pytest.raises(plugins.PluginLoadError, match="does not fit the hook specifications"):
        plugins.get_plugin_manager([wrong_args])


def test_entry_point_plugin_autoload_and_disable(tmp_path, monkeypatch):
    from test_registry import install_distribution

    root = install_distribution(
        tmp_path / "site", "thirdparty-plugin", "4.5.6",
        {"absolutezero": {"thirdparty": "thirdparty_plugin_mod"}},
        {"thirdparty_plugin_mod": """
            from absolutezero import hookimpl
            @hookimpl
            def absolutezero_filter_answer(task, response):
                return "third party says no"
        """},
    )
    monkeypatch.syspath_prepend(str(root))
    monkeypatch.delenv(plugins.AUTOLOAD_ENV_VAR, raising=False)
    try:
        pm = plugins.get_plugin_manager()
        infos = {info.name: info for info in plugins.plugin_infos(pm)}
        assert (infos["thirdparty"].distribution, infos["thirdparty"].version) == ("thirdparty-plugin", "4.5.6")
        assert infos["thirdparty"].source == "entry point"
        assert "safety" in infos  # the built-in plugin comes through the same group
        assert plugins.filter_answer(pm, Task("t", {}), "hello") == "third party says no"
        monkeypatch.setenv(plugins.AUTOLOAD_ENV_VAR, "1")
        assert plugins.autoload_disabled()
        pm = plugins.get_plugin_manager()
        assert plugins.plugin_infos(pm) == []
        assert plugins.filter_answer(pm, Task("t", {}), "hello") is None
        monkeypatch.setenv(plugins.AUTOLOAD_ENV_VAR, "")
        assert not plugins.autoload_disabled()
    finally:
        sys.modules.pop("thirdparty_plugin_mod", None)


def test_broken_entry_point_plugin_names_its_distribution(tmp_path, monkeypatch):
    from test_registry import install_distribution

    root = install_distribution(
        tmp_path / "site", "broken-plugin", "0.0.1", {"absolutezero": {"broken": "broken_ep_mod_xyz"}}, {}
    )
    monkeypatch.syspath_prepend(str(root))
    monkeypatch.delenv(plugins.AUTOLOAD_ENV_VAR, raising=False)
    with pytest.raises(plugins.PluginLoadError, match=r"plugin 'broken'.*broken-plugin 0\.0\.1.*ABSOLUTEZERO_DISABLE_PLUGIN_AUTOLOAD"):
        plugins.get_plugin_manager()


def test_each_manager_is_independent(no_autoload, module_dir):
    name = module_dir("independent_mod", """
        from absolutezero import hookimpl
        @hookimpl
        def absolutezero_filter_answer(task, response):
            return "no"
    """)
    with_plugin = plugins.get_plugin_manager([name])
    without = plugins.get_plugin_manager()
    assert plugins.filter_answer(with_plugin, Task("t", {}), "x") == "no"
    assert plugins.filter_answer(without, Task("t", {}), "x") is None
