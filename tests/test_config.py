"""Run config: overrides, unknown keys, bad types, range checks, save/load round trip."""

from __future__ import annotations

import re

import pytest
from omegaconf import OmegaConf

from absolutezero.config import ConfigError, load_config, load_saved_config, save_config


def test_defaults_and_overrides():
    config = load_config()
    assert (config.env, config.steps, config.selfplay.learnability_samples) == ("", 80, 4)  # env= is required
    config = load_config(
        ["env=arith", "steps=7", "selfplay.references=0", "agent_options.clip_ratio=null",
         "rewards.wrong_answer=-0.5", "selfplay.task_types=[evaluate]", "env_options.max_chars=50",
         "plugins=[my.plugin]", "name=run one"]
    )
    assert config.env == "arith" and config.steps == 7 and config.selfplay.references == 0
    assert config.agent_options.clip_ratio is None and config.rewards.wrong_answer == -0.5
    assert list(config.selfplay.task_types) == ["evaluate"]
    assert config.env_options == {"max_chars": 50} and list(config.plugins) == ["my.plugin"]
    assert config.name == "run one"


@pytest.mark.parametrize(
    "override, message",
    [
        ("stpes=3", "unknown config key 'stpes'; did you mean 'steps'?"),
        ("selfplay.propose_bach=3", "did you mean 'selfplay.propose_batch'?"),
        ("nonsense_key_entirely=1", "unknown config key 'nonsense_key_entirely'"),
        ("steps", "overrides are key=value"),
        ("=3", "overrides are key=value"),
    ],
)
def test_unknown_keys_and_malformed_overrides(override, message):
    with pytest.raises(ConfigError) as caught:
        load_config([override])
    assert message in str(caught.value)


@pytest.mark.parametrize(
    "override, message",
    [
        ("steps=abc", "bad value 'abc' for 'steps': expected int"),
        ("seed=1.5", "bad value '1.5' for 'seed': expected int"),
        ("plugins=3", "expected a list of str"),
        ("env_options=5", "expected a mapping"),
        ("selfplay=3", "expected a section"),
    ],
)
def test_bad_types_give_one_clear_sentence(override, message):
    with pytest.raises(ConfigError) as caught:
        load_config([override])
    text = str(caught.value)
    assert message in text
    assert "\n" not in text and "full_key" not in text and "object_type" not in text


@pytest.mark.parametrize(
    "override, message",
    [
        ("steps=0", "steps must be a positive integer"),
        ("selfplay.propose_batch=-1", "selfplay.propose_batch must be a positive integer"),
        ("selfplay.learnability_samples=1", "learnability_samples must be >= 2"),
        ("selfplay.references=-1", "references must be >= 0"),
        ("selfplay.recency_weight=1.5", "recency_weight must be in [0, 1]"),
        ("rewards.variant=papr", "did you mean 'paper'?"),
        ("checkpoint_every=-1", "must be >= 0"),
        ("checkpoint_keep=0", "checkpoint_keep must be >= 1"),
        ("selfplay.fresh_share=2", "fresh_share must be in [0, 1]"),
        ("selfplay.seed_size=-1", "selfplay.seed_size must be >= 0"),
        ("probe.per_type=-2", "probe.per_type must be >= 0"),
    ],
)
def test_range_checks(override, message):
    with pytest.raises(ConfigError) as caught:
        load_config([override])
    assert message in str(caught.value)


def test_save_load_round_trip(tmp_path):
    config = load_config(["env=arith", "steps=3", "env_options.max_chars=40", "rewards.variant=original"])
    path = tmp_path / "run" / "config.yaml"
    path.parent.mkdir()
    save_config(config, path)
    loaded = load_saved_config(path)
    assert OmegaConf.to_container(loaded) == OmegaConf.to_container(config)
    again = load_config(["steps=9"], base=loaded)  # resume with an override
    assert again.steps == 9 and again.env == "arith"


def test_bad_saved_configs(tmp_path):
    with pytest.raises(ConfigError, match="no saved config at"):
        load_saved_config(tmp_path / "missing.yaml")
    path = tmp_path / "config.yaml"
    path.write_text("stepz: 3\n")
    with pytest.raises(ConfigError) as caught:
        load_saved_config(path)
    assert "bad saved config" in str(caught.value) and "'steps'" in str(caught.value)
    assert str(caught.value).count("did you mean") + str(caught.value).count("Did you mean") == 1
    path.write_text("steps: 0\n")
    with pytest.raises(ConfigError, match="steps must be a positive integer"):
        load_saved_config(path)


@pytest.mark.parametrize(
    "override, message",
    [
        ("agent_options.temprature=0.5", "has no option 'agent_options.temprature'; did you mean 'temperature'?"),
        ("agent_options.autocast_bf16=maybe", "expects bool or null"),
        ("agent_options.clip_ratio=abc", "expects float or null"),
        ("agent_options.backend=vlm", "did you mean 'vllm'?"),
        ("agent_options.dtype=flaot32", "did you mean 'float32'?"),
        ("env_options.timeot=2", "environment 'code' has no option 'env_options.timeot'; did you mean 'timeout'?"),
        ("env_options.timeout=soon", "bad value 'soon' for env_options.timeout"),
    ],
)
def test_component_options_are_checked_against_their_declaration(override, message):
    from absolutezero.components import resolve_options

    with pytest.raises(ConfigError) as caught:
        resolve_options(load_config(["env=code", override]))
    assert message in str(caught.value) and "\n" not in str(caught.value)


@pytest.mark.parametrize(
    "options, message",
    [
        ({"temperature": 0}, "agent_options.temperature must be > 0"),
        ({"top_p": 1.5}, "agent_options.top_p must be in (0, 1]"),
        ({"max_new_tokens": 0}, "agent_options.max_new_tokens must be >= 1"),
        ({"cpu_offload": True}, "agent_options.cpu_offload=true needs agent_options.strategy=fsdp2"),
    ],
)
def test_the_policy_agent_checks_its_ranges_before_loading_a_model(options, message):
    from absolutezero_policy.agent import PolicyAgent

    with pytest.raises(ConfigError, match=re.escape(message)):
        PolicyAgent(model="/nonexistent/never/loaded", **options)


def test_the_environment_must_be_named():
    from absolutezero.components import resolve_options

    with pytest.raises(ConfigError, match="env= names the environment to self-play in, e.g. env=code; installed: .*arith.*code"):
        resolve_options(load_config(["steps=2"]))
