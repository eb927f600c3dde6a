"""``python -m absolutezero.run key=value ...``: one self-play training run.

What a run does, in order: resolve the config (defaults, or a resumed run's saved config,
plus the command-line overrides), print it and save it to ``<run>/config.yaml``, build
the environment, agent and plugins by name, seed the buffers, train for ``steps`` steps
with a progress bar, append one JSON line per step to ``<run>/metrics.jsonl``, write PNG
curves to ``<run>/plots/`` and atomic checkpoints every ``checkpoint_every`` steps and at
the end (see :mod:`absolutezero.checkpoint` for the layout).

``torchrun --nproc_per_node=N -m absolutezero.run ...`` runs the same code in N processes
(:mod:`absolutezero.distributed`): all of them resolve the same config and hold the same
state; rank 0 alone prints, loads plugins and trackers, and writes the run folder.

Exit codes: 0 completed; 2 configuration mistake (unknown key, environment, agent or
plugin, bad value, bad resume path), reported on stderr without a traceback; 3 stopped
by a reviewing (oversight) plugin, after its step was checkpointed; 130
interrupted by Ctrl-C or SIGTERM (a checkpoint of the last completed step is saved first). Any other
error is a bug or an environment failure and keeps its traceback (exit 1).

It passes ~400 lines because it holds the whole command: argument handling with the
``--help`` text, the run folder's bookkeeping (resume, checkpoints, evaluation, the
probe) and the exit-code contract, which read best in one place.
"""

from __future__ import annotations

import signal
import sys
import threading
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from omegaconf import DictConfig, OmegaConf

from absolutezero.checkpoint import CheckpointError, load_checkpoint, save_checkpoint
from absolutezero.components import agent_kwargs, component_help, env_kwargs, resolve_options
from absolutezero.config import ConfigError, RunConfig, _all_keys, _yaml_value, load_config, save_config, to_yaml
from absolutezero.distributed import DistributedError, Group
from absolutezero.metrics import MetricsWriter, truncate_metrics
from absolutezero.plots import write_plots
from absolutezero.protocol import Agent, Environment
from absolutezero.registry import entries
from absolutezero.seeding import SEED_BUFFERS_FILE, start_buffers
from absolutezero.start_cache import CachedStart, StartCache, start_settings

__all__ = ["EXIT_CONFIG", "EXIT_INTERRUPTED", "EXIT_STOPPED", "RunStopped", "main", "usage"]

EXIT_CONFIG = 2
EXIT_STOPPED = 3  # a reviewing (oversight) plugin stopped the run; its last step is saved
EXIT_INTERRUPTED = 130


class RunStopped(Exception):
    """A reviewing plugin asked the run to stop; raised after the step was checkpointed."""

    def __init__(self, step: int, reason: str) -> None:
        super().__init__(f"stopped after step {step}: {reason}")
        self.step, self.reason = step, reason


def usage(args: Sequence[str] = ()) -> str:
    """The ``--help`` text: synopsis, exit codes, every core config key with its default,
    then the options of the components ``args`` choose (``env=``, ``agent=``, ``trackers=``;
    the defaults otherwise), each with its default and help."""
    defaults = OmegaConf.structured(RunConfig)
    lines = [
        "usage: python -m absolutezero.run [key=value ...]",
        "       python -m absolutezero.run --help [env=NAME] [agent=NAME] [trackers=[NAME,...]]",
        "",
        "Absolute Zero self-play training: the model proposes tasks, the environment",
        "validates them, the same model solves them, both roles are trained with TRR++.",
        "",
        "examples:",
        "  python -m absolutezero.run env=code steps=20",
        "  python -m absolutezero.run env=arith selfplay.propose_batch=8 name=try1",
        "  python -m absolutezero.run resume=runs/try1 steps=40",
        "  python -m absolutezero.run env=code agent_options.learning_rate=2e-5 env_options.timeout=2",
        "  python -m absolutezero.run trackers=[tensorboard,wandb] plugin_options.wandb.project=azr",
        "  python -m absolutezero.run config=configs/qwen2.5-coder-7b.yaml steps=10   (file first, then key=value)",
        "  torchrun --nproc_per_node=2 -m absolutezero.run env=code   (N processes, torch.distributed)",
        "",
        "outputs: <out>/<name>/config.yaml, metrics.jsonl, plots/*.png,",
        "         checkpoints/step_N/ and a 'latest' pointer",
        "exit codes: 0 done, 2 configuration error, 3 stopped by a review, 130 interrupted (checkpoint saved)",
        "",
        "core config keys (default):",
    ]
    for key in _all_keys(defaults):
        node = OmegaConf.select(defaults, key)
        if isinstance(node, DictConfig) and key not in ("env_options", "agent_options", "plugin_options"):
            continue
        value = OmegaConf.to_container(node) if isinstance(node, DictConfig) else node
        lines.append(f"  {key} = {value!r}")
    chosen = {"env": "code", "agent": str(defaults.agent), "trackers": []}  # help shows env=code unless told
    for text in args:
        key, _, value = text.partition("=")
        if key in chosen and value:
            chosen[key] = _yaml_value(value)
    trackers = chosen["trackers"] if isinstance(chosen["trackers"], list) else [chosen["trackers"]]
    lines += component_help(str(chosen["env"]), str(chosen["agent"]), [str(name) for name in trackers])
    return "\n".join(lines)


def _resolve(overrides: Sequence[str]) -> tuple[DictConfig, Path, Any]:
    """The config, the run folder and the checkpoint to resume from (or None)."""
    config = load_config(overrides)
    checkpoint = None
    if config.resume:
        checkpoint = load_checkpoint(config.resume)
        config = load_config(overrides, base=checkpoint.config)
        run_dir = checkpoint.run_dir
    else:
        name = config.name or f"{config.env}-{time.strftime('%Y%m%d-%H%M%S')}"
        run_dir = Path(config.out) / name
        if not config.name:
            suffix = 1
            while run_dir.exists():
                suffix += 1
                run_dir = Path(config.out) / f"{name}-{suffix}"
        elif (run_dir / "config.yaml").exists():
            raise ConfigError(
                f"run folder {str(run_dir)!r} already holds a run; continue it with resume={run_dir} "
                "or pick another name="
            )
        config.name = run_dir.name
    return resolve_options(config), run_dir, checkpoint


def _build(config: DictConfig, group: Group | None = None) -> tuple[Any, Environment, Agent]:
    """Plugins, environment and agent of a run; ``group`` defaults to one process."""
    group = group if group is not None else Group()
    from absolutezero.plugins import get_plugin_manager
    from absolutezero.registry import make_agent, make_environment, make_tracker

    if group.is_main:
        pm = get_plugin_manager([str(path) for path in config.plugins])
    else:  # plugin decisions are rank 0's (Group.from_main); other ranks only compute
        from absolutezero.selfplay import _empty_plugin_manager

        pm = _empty_plugin_manager()
    tracker_options = OmegaConf.to_container(config.plugin_options, resolve=True)
    assert isinstance(tracker_options, dict)
    for name in dict.fromkeys(str(name) for name in config.trackers if group.is_main):  # trackers by name
        pm.register(make_tracker(name, tracker_options.get(name) or {}), name=f"tracker:{name}")
    env = make_environment(config.env, env_kwargs(config))
    if config.eval.every and not (config.eval.benchmarks or type(env).benchmarks):
        env.close()
        raise ConfigError(
            f"eval.every={config.eval.every} but environment {config.env!r} names no benchmarks; "
            "set eval.benchmarks=[name,...] (python -m absolutezero list shows them) or eval.every=0"
        )
    try:
        agent = make_agent(config.agent, agent_kwargs(config))
    except BaseException:
        env.close()
        raise
    return pm, env, agent


class _Run:
    """One run's outputs and bookkeeping around :class:`SelfPlayTrainer`."""

    def __init__(
        self, config: DictConfig, run_dir: Path, pm: Any, env: Environment, agent: Agent, checkpoint: Any,
        group: Group,
    ) -> None:
        from absolutezero.selfplay import SelfPlayTrainer

        self.config, self.run_dir, self.pm, self.env, self.agent = config, run_dir, pm, env, agent
        self.group = group
        self.trainer = SelfPlayTrainer.from_config(env, agent, config, pm)
        self.trainer.progress = self.trainer.progress and group.is_main
        self.metrics_path = run_dir / "metrics.jsonl"
        self.saved_step = -1
        if checkpoint is not None:
            agent.load(str(checkpoint.agent_dir))
            buffers = checkpoint.load_buffers(int(config.selfplay.buffer_capacity))
            self.trainer.load_state_dict(checkpoint.trainer_state, buffers)
            if group.is_main:
                truncate_metrics(self.metrics_path, self.trainer.step_count)
            self.saved_step = self.trainer.step_count

    def checkpoint(self) -> Path:
        """Every rank writes its part of the agent (sharded training state), rank 0 the
        rest; none runs ahead of a checkpoint that may still fail."""
        step = self.trainer.step_count
        path = save_checkpoint(
            self.run_dir, step, agent=self.agent, buffers=self.trainer.buffers,
            trainer_state=self.trainer.state_dict(), config=self.config,
            keep_last=self.config.checkpoint_keep, group=self.group,
        )
        if self.group.is_main:
            write_plots(self.metrics_path, self.run_dir / "plots")
            self.pm.hook.absolutezero_checkpoint(path=str(path), step=step)
        self.group.barrier()
        self.saved_step = step
        return path

    def evaluate(self, step: int) -> dict[str, float]:
        """Benchmark scores of the current agent as ``eval/<benchmark>/<metric>``.

        :func:`absolutezero.evaluate.evaluate` already names its scores
        ``<benchmark>/<metric>``; only the ``eval/`` prefix is added here.
        """
        from absolutezero.evaluate import evaluate  # lazy: benchmarks never load unless asked

        scores = evaluate(
            list(self.config.eval.benchmarks or type(self.env).benchmarks), self.agent, path=self.config.eval.path,
            limit=self.config.eval.limit,
            # every rank generates its share (a collective); rank 0 writes the records
            out_dir=str(self.run_dir / "eval" / f"step_{step}") if self.group.is_main else None,
            model=f"{self.config.name} step {step}",
        )
        return {f"eval/{name}": float(value) for name, value in scores.items()}

    def _start(self) -> tuple[dict[str, float] | None, str | None, Any]:
        """The run's starting buffers and probe set (see :mod:`absolutezero.seeding`),
        saved in the run folder; then the training randomness starts from the seed.

        A probe set already in the run folder (a resumed run) is read back; otherwise
        it comes with the buffers: from the start cache, or proposed in the same rounds
        as the seed buffers (after a seed file: in a pass of its own).

        Returns the step-0 metrics (None on resume), a reviewing plugin's stop reason
        and the probe set (None when ``probe.every`` is 0).
        """
        from absolutezero.probe import PROBE_FILE, PROBE_SEED_OFFSET, PROBE_START_FILE, ProbeSet

        cfg = self.config
        probe_path, start_path = self.run_dir / PROBE_FILE, self.run_dir / PROBE_START_FILE
        probe = None
        if cfg.probe.every and probe_path.is_file():
            probe = ProbeSet.load(probe_path, self.env, self.trainer.task_types)
            self.trainer.exclude(probe.all_tasks())
            if start_path.is_file():  # runs from before the start verdicts were kept lack it
                probe.load_start(start_path)
        wanted = int(cfg.probe.per_type) if cfg.probe.every and probe is None else 0
        cache = self._start_cache() if cfg.reuse_start and not cfg.seed_buffers else None
        start = start_buffers(
            self.trainer, cfg.seed_buffers, announce=_announce, probe_per_type=wanted,
            probe_rounds=int(cfg.probe.max_rounds), probe_seed=int(cfg.seed) + PROBE_SEED_OFFSET, cache=cache,
        )
        if start.probe is not None:
            probe = ProbeSet(start.probe, start=start.probe_start)
        metrics = start.metrics
        if metrics is not None and probe is not None and start.stop is None and not any(k.startswith("probe/") for k in metrics):
            # the untrained model's greedy scores (a cache entry has them already), which
            # later scores are paired with
            metrics.update(probe.score(self.trainer.solve_greedily))
            if probe.start is None:
                probe.start = probe.last_correct
        if start.source != "checkpoint":
            self.trainer.start_training()
        if metrics is not None and self.group.is_main:
            self.run_dir.mkdir(parents=True, exist_ok=True)
            self.trainer.buffers.save(self.run_dir / SEED_BUFFERS_FILE)
            if probe is not None:
                probe.save(probe_path, self.env)
                if probe.start is not None:
                    probe.save_start(start_path)
            if cache is not None and start.source == "seeding" and start.stop is None:
                cache.write(CachedStart(
                    self.trainer.buffers.to_jsonl(), probe.to_jsonl(self.env) if probe is not None else None,
                    {k: v for k, v in metrics.items() if k.startswith(("seed/", "probe/"))},
                    probe.start if probe is not None else None,
                ))
        return metrics, start.stop, probe

    def _start_cache(self) -> StartCache:
        """This run's entry in the start cache under ``out``."""
        versions = {}
        for kind, name in (("environment", self.config.env), ("agent", self.config.agent)):
            entry = entries(kind).get(str(name))
            versions[f"{kind}:{name}"] = f"{entry.distribution} {entry.version}" if entry else "?"
        plugins = [name for name, _ in self.pm.list_name_plugin() if name]
        settings = start_settings(self.config, sorted(type(self.agent).training_options), plugins, versions)
        return StartCache(self.config.out, settings)

    def train(self) -> None:
        from tqdm.auto import tqdm

        cfg = self.config
        first, seeding_stop, probe = self._start()
        if seeding_stop:
            probe = None
        main = self.group.is_main
        with MetricsWriter(self.metrics_path if main else None) as writer, tqdm(
            total=int(cfg.steps), initial=min(self.trainer.step_count, int(cfg.steps)),
            desc="self-play", unit="step", disable=not (cfg.progress and main), dynamic_ncols=True,
        ) as bar:
            if first is not None:
                record = writer.write(0, first)
                self.pm.hook.absolutezero_step_metrics(step=0, metrics=record)
            if seeding_stop:
                self.checkpoint()
                raise RunStopped(0, seeding_stop)
            for result in self.trainer.iterate(int(cfg.steps)):
                metrics = dict(result.metrics)
                if probe is not None and result.step % cfg.probe.every == 0:
                    metrics.update(probe.score(self.trainer.solve_greedily))
                if result.step > 0 and cfg.eval.every and result.step % cfg.eval.every == 0:
                    metrics.update(self.evaluate(result.step))
                record = writer.write(result.step, metrics)
                self.pm.hook.absolutezero_step_metrics(step=result.step, metrics=record)
                bar.update(1)
                bar.set_postfix(_postfix(record), refresh=True)
                if result.interrupted:
                    raise KeyboardInterrupt
                if result.stop:
                    self.checkpoint()
                    raise RunStopped(result.step, result.stop)
                if cfg.checkpoint_every and result.step % cfg.checkpoint_every == 0:
                    self.checkpoint()
        if self.saved_step != self.trainer.step_count:
            self.checkpoint()
        elif main:
            write_plots(self.metrics_path, self.run_dir / "plots")


def _announce(message: str) -> None:
    """One line about what the run is doing now, on stderr."""
    print(message, file=sys.stderr, flush=True)


def _postfix(record: dict[str, float]) -> dict[str, str]:
    shown = {
        "r_prop": "overall/propose_reward_mean", "r_solve": "overall/solve_reward_mean",
        "valid": "overall/valid_rate", "solve": "overall/solve_rate",
    }
    return {label: f"{record[key]:.2f}" for label, key in shown.items() if key in record}


def main(argv: Sequence[str] | None = None) -> int:
    """Run ``python -m absolutezero.run`` with ``argv`` (default: ``sys.argv[1:]``).

    Returns:
        The exit code: 0 completed, 2 configuration error, 3 stopped by a review, 130 interrupted.
    """
    args = list(sys.argv[1:] if argv is None else argv)
    if any(arg in ("-h", "--help", "help") for arg in args):
        print(usage([arg for arg in args if arg not in ("-h", "--help", "help")]))
        return 0
    previous_term = _terminate_as_interrupt()
    try:
        return _main(args)
    finally:
        if previous_term is not None:
            signal.signal(signal.SIGTERM, previous_term)


def _terminate_as_interrupt() -> Any:
    """Make SIGTERM (``kill``, job schedulers) stop a run like Ctrl-C: a checkpoint of the
    last completed step is saved first. Also the way to stop a run started in the
    background, where the shell makes SIGINT ignored. Returns the previous handler, or
    None outside the main thread (where handlers cannot be set)."""
    if threading.current_thread() is not threading.main_thread():
        return None

    def _interrupt(_signum: int, _frame: Any) -> None:
        raise KeyboardInterrupt

    return signal.signal(signal.SIGTERM, _interrupt)


def _main(args: list[str]) -> int:
    try:
        group = Group.from_environment()
    except DistributedError as error:
        print(f"absolutezero.run: error: {error}", file=sys.stderr)
        return EXIT_CONFIG
    try:
        return _run(args, group)
    finally:
        group.close()


def _run(args: list[str], group: Group) -> int:
    from absolutezero.plugins import PluginLoadError
    from absolutezero.registry import EntryPointLoadError, UnknownNameError

    main = group.is_main
    try:
        config, run_dir, checkpoint = _resolve(args)
        if group.size > 1:  # one run folder: rank 0's (a new run's name has a timestamp)
            config.name, run_dir = group.broadcast((config.name, run_dir))
        if main:
            print(to_yaml(config), end="", flush=True)
        if not (config.progress and main):
            from absolutezero.progress import silence_library_bars

            silence_library_bars()
        pm, env, agent = _build(config, group)
    except (ConfigError, CheckpointError, UnknownNameError, PluginLoadError, EntryPointLoadError) as error:
        print(f"absolutezero.run: error: {error}", file=sys.stderr)
        return EXIT_CONFIG
    except KeyboardInterrupt:
        print("\nabsolutezero.run: interrupted before training started; nothing saved", file=sys.stderr)
        return EXIT_INTERRUPTED
    status = "failed"
    run = None
    try:
        run = _Run(config, run_dir, pm, env, agent, checkpoint, group)
        group.barrier()  # every rank has checked the run folder before rank 0 writes to it
        if main:
            run_dir.mkdir(parents=True, exist_ok=True)
            save_config(config, run_dir / "config.yaml")
        pm.hook.absolutezero_run_start(config=config, run_dir=str(run_dir))
        run.train()
        status = "completed"
        if main:
            print(f"absolutezero.run: done, {run.trainer.step_count} steps; outputs in {run_dir}", file=sys.stderr)
        return 0
    except ConfigError as error:  # e.g. task types that do not fit the env or the checkpoint
        print(f"absolutezero.run: error: {error}", file=sys.stderr)
        return EXIT_CONFIG
    except RunStopped as stopped:
        status = "stopped"
        print(
            f"absolutezero.run: {stopped}; checkpoint of step {stopped.step} saved; once the reason "
            f"is understood, continue with resume={run_dir}",
            file=sys.stderr,
        )
        return EXIT_STOPPED
    except KeyboardInterrupt:
        status = "interrupted"
        if run is None:
            print("\nabsolutezero.run: interrupted before training started; nothing saved", file=sys.stderr)
            return EXIT_INTERRUPTED
        try:
            path = run.checkpoint()
            where = f"checkpoint of step {run.trainer.step_count} saved to {path}"
        except KeyboardInterrupt:
            where = "no checkpoint saved (interrupted again while saving)"
        print(f"\nabsolutezero.run: interrupted; {where}; continue with resume={run_dir}", file=sys.stderr)
        return EXIT_INTERRUPTED
    finally:
        if run is not None:
            try:
                if main:  # the plugins' own lines, e.g. where their files are
                    from absolutezero.plugins import run_summary

                    for line in run_summary(pm, str(run_dir), status):
                        print(f"absolutezero.run: {line}", file=sys.stderr)
            finally:
                pm.hook.absolutezero_run_end(run_dir=str(run_dir), status=status)
        env.close()
        agent.close()


if __name__ == "__main__":
    sys.exit(main())
