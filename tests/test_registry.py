"""Registry: lazy entry-point discovery, did-you-mean errors, options, third-party packages."""

from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path

import gymnasium
import pytest

import absolutezero
from absolutezero import registry
from absolutezero.config import ConfigError
from absolutezero.protocol import Environment

THIRD_PARTY_ENV = '''
from absolutezero.protocol import Environment, Prompt, Task, Validation, Verdict


class EchoEnvironment(Environment):
    """Proposals are words; the answer is the word itself."""

    name = "echo"
    task_types = ("echo",)

    def __init__(self, word: str = "hi", strict: bool = False) -> None:
        self.word = word

    def seed_tasks(self, task_type):
        return [Task("echo", {"word": self.word})]

    def proposer_prompt(self, task_type, references, rng):
        return Prompt(messages=({"role": "user", "content": "say a word"},), context={})

    def validate(self, prompts, responses):
        return [Validation(Task("echo", {"word": r.strip()})) if r.strip().isalpha()
                else Validation(None, "not a word", format_ok=False) for r in responses]

    def solver_prompt(self, task):
        return Prompt(messages=({"role": "user", "content": "repeat " + task.payload["word"]},))

    def verify(self, tasks, prompts, responses):
        return [Verdict(1.0) if r.strip() == t.payload["word"] else Verdict(0.0, reason="different")
                for t, r in zip(tasks, responses)]


class NeedsOption(EchoEnvironment):
    def __init__(self, required: int) -> None:
        super().__init__()


class BrokenInside(EchoEnvironment):
    def __init__(self, word: str = "hi") -> None:
        len(5)  # a bug inside the constructor: a TypeError that is not about options


NOT_A_CLASS = 42
'''


def install_distribution(
    root: Path, dist: str, version: str, entry_points: dict[str, dict[str, str]], modules: dict[str, str]
) -> Path:
    """Write an installed-looking distribution (modules + dist-info) under ``root``."""
    root.mkdir(parents=True, exist_ok=True)
    for name, source in modules.items():
        (root / f"{name}.py").write_text(textwrap.dedent(source))
    info = root / f"{dist.replace('-', '_')}-{version}.dist-info"
    info.mkdir()
    (info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {dist}\nVersion: {version}\n")
    lines = []
    for group, items in entry_points.items():
        lines.append(f"[{group}]")
        lines.extend(f"{name} = {value}" for name, value in items.items())
    (info / "entry_points.txt").write_text("\n".join(lines) + "\n")
    return root


@pytest.fixture
def third_party(tmp_path, monkeypatch):
    """A throwaway distribution 'echo-env' with an environment and extras, on sys.path."""
    root = install_distribution(
        tmp_path / "site",
        "echo-env",
        "1.2.3",
        {
            "absolutezero.environments": {
                "echo": "echo_env_mod:EchoEnvironment",
                "needs-option": "echo_env_mod:NeedsOption",
                "broken-inside": "echo_env_mod:BrokenInside",
                "not-a-class": "echo_env_mod:NOT_A_CLASS",
                "missing-module": "no_such_module_xyz:Env",
            }
        },
        {"echo_env_mod": THIRD_PARTY_ENV},
    )
    monkeypatch.syspath_prepend(str(root))
    yield root
    for env_id in [k for k in gymnasium.registry if k.startswith("absolutezero/") and "Echo" in k]:
        del gymnasium.registry[env_id]
    sys.modules.pop("echo_env_mod", None)


def test_builtin_names_are_listed():
    assert {"arith", "code"} <= set(registry.environment_names())
    assert "policy" in registry.agent_names()
    assert {"cruxeval-o", "cruxeval-i"} <= set(registry.benchmark_names())
    assert registry.environment_names() == sorted(registry.environment_names())


def test_listing_names_does_not_import_environment_modules():
    code = (
        "import sys, absolutezero\n"
        "from absolutezero import registry\n"
        "registry.environment_names(); registry.agent_names(); registry.entries('benchmark')\n"
        "print(sorted(m for m in sys.modules if m.startswith(('absolutezero_arith', 'absolutezero_code', 'absolutezero_policy'))))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


def test_unknown_name_suggests_the_closest():
    with pytest.raises(registry.UnknownNameError, match=r"^unknown environment 'cdoe'; did you mean 'code'\?"):
        registry.make_environment("cdoe")
    with pytest.raises(registry.UnknownNameError, match="unknown agent 'polcy'; did you mean 'policy'"):
        registry.load_agent_class("polcy")
    with pytest.raises(registry.UnknownNameError, match="registered benchmarks: .*cruxeval-i, cruxeval-o, .*humaneval"):
        registry.load_benchmark_class("zzz")


def test_bad_option_becomes_config_error_with_suggestion():
    with pytest.raises(ConfigError) as caught:
        registry.make_environment("arith", {"max_chrs": 10})
    message = str(caught.value)
    assert "'max_chrs'" in message and "did you mean 'max_chars'" in message
    assert "accepted options: max_chars, max_nodes" in message
    env = registry.make_environment("arith", {"max_chars": 10})
    assert env.limits.max_chars == 10


def test_load_environment_class_returns_the_subclass():
    cls = registry.load_environment_class("arith")
    assert issubclass(cls, Environment) and cls.name == "arith"


def test_third_party_environment_is_discovered(third_party):
    entry = registry.entries("environment")["echo"]
    assert (entry.distribution, entry.version) == ("echo-env", "1.2.3")
    env = registry.make_environment("echo", {"word": "zebra"})
    assert env.seed_tasks("echo")[0].payload == {"word": "zebra"}
    with pytest.raises(ConfigError, match="did you mean 'word'"):
        registry.make_environment("echo", {"wrd": "x"})


def test_third_party_environment_gets_a_gym_id(third_party):
    added = registry.register_gym_environments()
    assert "absolutezero/Echo-v0" in added
    assert registry.register_gym_environments() == []  # idempotent
    env = gymnasium.make("absolutezero/Echo-v0", seed=0)
    obs, info = env.reset(options={"role": "solve", "task_type": "echo"})
    assert "repeat hi" in obs
    _, reward, terminated, _, info = env.step("hi")
    assert terminated and reward == 1.0 and info["correct"]


def test_missing_required_option_is_a_config_error(third_party):
    with pytest.raises(ConfigError, match="needs the option.*'required'"):
        registry.make_environment("needs-option")


def test_type_error_inside_constructor_is_not_disguised(third_party):
    with pytest.raises(TypeError, match="has no len"):
        registry.make_environment("broken-inside")


def test_bad_targets_give_load_errors(third_party):
    with pytest.raises(registry.EntryPointLoadError, match="not a class"):
        registry.load_environment_class("not-a-class")
    with pytest.raises(registry.EntryPointLoadError, match=r"missing-module.*echo-env 1\.2\.3.*ModuleNotFoundError"):
        registry.load_environment_class("missing-module")


def test_duplicate_names_from_two_distributions(third_party, tmp_path, monkeypatch):
    other = install_distribution(
        tmp_path / "other", "other-dist", "0.9", {"absolutezero.environments": {"echo": "x_mod:Env"}}, {}
    )
    monkeypatch.syspath_prepend(str(other))
    with pytest.raises(registry.DuplicateNameError, match="'echo' is registered twice") as caught:
        registry.environment_names()
    assert "echo-env 1.2.3" in str(caught.value) and "other-dist 0.9" in str(caught.value)
    # importing the package must still work with a broken registry
    assert registry.register_gym_environments() == []


def test_builtin_gym_ids_registered_on_import():
    assert absolutezero.registry.gym_id("code") == "absolutezero/Code-v0"
    for name in registry.environment_names():
        assert registry.gym_id(name) in gymnasium.registry
    env = gymnasium.make("absolutezero/Arith-v0")
    assert env.unwrapped.environment.name == "arith"
    env.close()


def test_code_gym_id_makes_the_code_environment():
    try:
        env = gymnasium.make("absolutezero/Code-v0")
    except (registry.EntryPointLoadError, ModuleNotFoundError) as error:
        missing = error.__cause__ if isinstance(error, registry.EntryPointLoadError) else error
        if isinstance(missing, ModuleNotFoundError) and (missing.name or "").startswith("absolutezero_code"):
            pytest.skip(f"{missing.name} is not in this checkout yet")
        raise
    try:
        assert env.unwrapped.environment.name == "code"
    finally:
        env.close()


def test_entries_rejects_unknown_kind():
    with pytest.raises(ValueError, match="unknown registry kind"):
        registry.entries("environments")
