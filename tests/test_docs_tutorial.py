"""The "write an environment" tutorial (docs/tutorials/environment.md) cannot rot.

The page's marked code blocks (the environment module and its entry point) are written
into a throwaway distribution on ``sys.path``; the environment is then found through the
registry, checked with ``check_env``, trained for one self-play step with a tiny random
model and the real policy agent, and played through ``gymnasium.make``.
"""

from __future__ import annotations

import inspect
import re
import sys
import tomllib
from pathlib import Path

import gymnasium
import pytest

from absolutezero import registry
from absolutezero.config import ConfigError, SelfPlayConfig
from absolutezero.conformance import check_env
from absolutezero.selfplay import SelfPlayTrainer

PAGE = Path(__file__).resolve().parents[1] / "docs" / "tutorials" / "environment.md"
MODULE_MARK = re.compile(r"<!-- tutorial-environment: (\S+) -->\n```python\n(.*?)\n```", re.DOTALL)
ENTRY_MARK = re.compile(r"<!-- tutorial-entry-point -->\n```toml\n(.*?)\n```", re.DOTALL)
GROUP = "absolutezero.environments"


def tutorial_blocks() -> tuple[str, str, str]:
    """(module path, module source, entry-point TOML) of the page's marked blocks."""
    text = PAGE.read_text()
    modules = MODULE_MARK.findall(text)
    entries = ENTRY_MARK.findall(text)
    assert len(modules) == 1, f"{PAGE} needs exactly one marked environment block, found {len(modules)}"
    assert len(entries) == 1, f"{PAGE} needs exactly one marked entry-point block, found {len(entries)}"
    (path, source), = modules
    return path, source, entries[0]


@pytest.fixture
def tutorial_env(tmp_path, monkeypatch):
    """Install the tutorial's package and entry point; yield (name, class)."""
    path, source, toml_text = tutorial_blocks()
    entry_points = tomllib.loads(toml_text)["project"]["entry-points"][GROUP]
    assert len(entry_points) == 1, entry_points
    (name, target), = entry_points.items()
    module_name, _, class_name = target.partition(":")
    assert module_name.replace(".", "/") + ".py" == path, (target, path)

    site = tmp_path / "site"
    module_file = site / path
    module_file.parent.mkdir(parents=True)
    for parent in Path(path).parents:
        if str(parent) != ".":
            (site / parent / "__init__.py").touch()
    module_file.write_text(source + "\n")
    info = site / "absolutezero_tutorial_sort-0.0.1.dist-info"
    info.mkdir()
    (info / "METADATA").write_text("Metadata-Version: 2.1\nName: absolutezero-tutorial-sort\nVersion: 0.0.1\n")
    (info / "entry_points.txt").write_text(f"[{GROUP}]\n{name} = {target}\n")
    monkeypatch.syspath_prepend(str(site))
    top = module_name.split(".")[0]
    try:
        yield name, registry.load_environment_class(name), class_name
    finally:
        env_id = registry.gym_id(name)
        if env_id in gymnasium.registry:
            del gymnasium.registry[env_id]
        for loaded in [m for m in sys.modules if m == top or m.startswith(top + ".")]:
            del sys.modules[loaded]


def test_the_page_has_a_short_complete_environment():
    _, source, _ = tutorial_blocks()
    assert len(source.splitlines()) <= 90, "keep the tutorial's environment short"
    compile(source, str(PAGE), "exec")


def test_options_are_typed_keyword_only_and_documented(tutorial_env):
    name, cls, class_name = tutorial_env
    assert cls.__name__ == class_name and cls.name == name
    parameters = [p for p in inspect.signature(cls.__init__).parameters.values() if p.name != "self"]
    assert parameters, "the tutorial should show options"
    args_section = inspect.getdoc(cls).split("Args:", 1)[1]
    for parameter in parameters:
        assert parameter.kind is inspect.Parameter.KEYWORD_ONLY, parameter
        assert parameter.annotation is not inspect.Parameter.empty, parameter
        assert re.search(rf"^\s+{parameter.name}: \S", args_section, re.MULTILINE), parameter.name
    try:
        from absolutezero.options import declared_options
    except ImportError:  # the declaration reader is optional here; the checks above stand alone
        return
    declared = declared_options(cls)
    assert sorted(declared) == sorted(p.name for p in parameters)
    assert all(option.help for option in declared.values()), declared


def test_registered_checked_and_configurable(tutorial_env):
    name, cls, _ = tutorial_env
    assert name in registry.environment_names()
    check_env(name)
    env = registry.make_environment(name, {"max_length": 5})
    assert env.max_length == 5
    with pytest.raises(ConfigError, match="did you mean 'max_length'"):
        registry.make_environment(name, {"max_lenght": 5})


def test_one_self_play_step_with_a_tiny_model(tutorial_env, make_tiny_agent):
    name, _, _ = tutorial_env
    env = registry.make_environment(name)
    agent = make_tiny_agent(max_new_tokens=8)
    try:
        settings = SelfPlayConfig(propose_batch=2, solve_batch=2, learnability_samples=2, seed_size=1, seed_max_rounds=1)
        trainer = SelfPlayTrainer(env, agent, settings, seed=0)
        results = list(trainer.iterate(1))
        assert [r.step for r in results] == [0, 1]
        metrics = results[1].metrics
        assert metrics["tokens/generated"] > 0
        assert any(key.startswith("train/") for key in metrics)
        for task_type in env.task_types:
            assert f"propose/{task_type}/valid_rate" in metrics
    finally:
        env.close()


def test_gymnasium_make(tutorial_env):
    name, cls, _ = tutorial_env
    registry.register_gym_environments()
    env = gymnasium.make(registry.gym_id(name), seed=0)
    try:
        task_type = cls.task_types[0]
        obs, info = env.reset(options={"role": "solve", "task_type": task_type})
        assert info["role"] == "solve" and isinstance(obs, str)
        _, reward, terminated, _, info = env.step("no answer here")
        assert terminated and info["correct"] is False
        obs, info = env.reset(options={"role": "propose", "task_type": task_type})
        _, reward, terminated, _, info = env.step("<answer>[]</answer>")
        assert terminated and info["valid"] is False and info["reason"]
    finally:
        env.close()
