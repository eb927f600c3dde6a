"""Step time of today's code against an earlier commit, side by side, with FLOPs and utilisation.

::

    python benchmarks/step_speed.py --base ae7aa32 --steps 3 [--rounds 2] [--seed-buffers FILE] [key=value ...]
    python benchmarks/step_speed.py --steps 1 env=arith agent_options.model=smollm2-135m \\
        agent_options.max_new_tokens=32 selfplay.seed_size=2                   # a quick check

**Sides.** "new" is this working tree (uncommitted changes included); "base" is ``--base``
(default ``ae7aa32``, the commit before the step-speed work), checked out with ``git
worktree add --detach`` into a temporary folder that is removed at the end, also after an
error or Ctrl-C. Each side runs in its own process whose ``PYTHONPATH`` starts with that
tree's package roots (the folder holding ``absolutezero/``, ``benchmarks/``,
``agents/*``, ``environments/*``, ``plugins/*``), ahead of the venv's editable installs,
and with ``PYTHONSAFEPATH=1`` (neither the script's folder nor the working folder is put
on ``sys.path``); the child prints where ``absolutezero`` and ``absolutezero_policy`` came
from and fails if any ``absolutezero*`` module was imported from the other tree. Entry
points (environment, agent names) come from the installed distributions' metadata.

**Same start.** Both sides start every step set from the same seed buffers
(``seed_buffers=``) with the same ``seed=`` and overrides: ``--seed-buffers FILE``, or
else the base side seeds once (``trainer.seed()``) and saves them. Each side then runs
``--steps`` steps; this is repeated ``--rounds`` times, alternating which side goes first
(base, new, new, base, ...), since a VM's speed drifts. Every round repeats the same steps
from the same start. Relative paths in the overrides mean the same for both sides (the
children run in this process's working folder).

**What is printed.** Per side, the median over all steps of all rounds of the step time
and its parts (every ``time/*`` metric: generation, validation, verification, update,
...) and base/new for each; generated tokens/s (completion tokens over generation time)
and trained tokens/s (``tokens/trained`` over update time); the work of a median step;
its estimated FLOPs (prefill, decoding, update forward and backward; the formulas are in
``benchmarks/step_flops.py``); this machine's measured matmul throughput in float32 and
bfloat16 on the model's shapes (``[64 x h] @ [h x i]`` as in decoding,
``[512 x h] @ [h x h]`` as in prefill and training; warm-up, then the median of 7
timings, torch's default thread count, on the model's device); and utilisation =
estimated GFLOP / seconds / the best measured matmul GFLOP/s, for the step against
float32, for generation against its dtype, for the update against bf16 when it autocasts.
Quality: valid and learnable proposal rates of both sides with their counts, and the 95%
interval of new - base (Agresti-Caffo, counts divided by ``--rounds``, since rounds
repeat the same seeds).

``--records FILE`` keeps every child record (JSON lines) for later analysis.
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import math
import os
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

DEFAULT_BASE = "ae7aa32"
#: Marks the child's machine-readable lines (one JSON object each) in its stdout.
MARKER = "@@step_speed "
#: The time parts shown first, in this order; other ``time/*`` metrics follow.
MAIN_PARTS = ("step", "generation", "validation", "verification", "update")
SIDES = ("base", "new")
HERE = Path(__file__).resolve().parent


def _load_flops() -> Any:
    """``benchmarks/step_flops.py`` by file (the child puts no benchmark folder on sys.path)."""
    spec = importlib.util.spec_from_file_location("_step_speed_flops", HERE / "step_flops.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up
    spec.loader.exec_module(module)
    return module


class BenchmarkError(RuntimeError):
    """A failure with a message for the user (printed in one line, exit status 2)."""


# -- parsing and tables (pure) --------------------------------------------------------


def parse_child_output(lines: Iterable[str]) -> list[dict[str, Any]]:
    """The JSON records of a child's stdout (lines starting with :data:`MARKER`).

    Raises:
        ValueError: a marked line is not a JSON object with a ``kind``.
    """
    records = []
    for line in lines:
        if not line.startswith(MARKER):
            continue
        try:
            record = json.loads(line[len(MARKER):])
        except json.JSONDecodeError as error:
            raise ValueError(f"bad child record {line.strip()[:200]!r}: {error}") from None
        if not isinstance(record, dict) or "kind" not in record:
            raise ValueError(f"child record without a kind: {line.strip()[:200]!r}")
        records.append(record)
    return records


def median(values: Iterable[float]) -> float:
    """The median, NaN for no values."""
    items = [float(v) for v in values if v is not None and not math.isnan(float(v))]
    return statistics.median(items) if items else math.nan


def time_parts(steps: Sequence[Mapping[str, Any]]) -> list[str]:
    """Every ``time/*`` part of these step records: :data:`MAIN_PARTS` first, then the rest sorted."""
    seen = {name for step in steps for name in step.get("time", {})}
    return ["step"] + [p for p in MAIN_PARTS[1:] if p in seen] + sorted(seen - set(MAIN_PARTS))


def ratio(base: float, new: float) -> float:
    """base / new (> 1: new is faster), NaN where undefined."""
    if math.isnan(base) or math.isnan(new) or new == 0:
        return math.nan
    return base / new


def time_rows(base: Sequence[Mapping[str, Any]], new: Sequence[Mapping[str, Any]]) -> list[tuple[str, float, float, float]]:
    """``(part, base median s, new median s, base/new)`` for every time part of either side."""
    rows = []
    for part in time_parts([*base, *new]):
        b = median(s.get("time", {}).get(part, math.nan) for s in base)
        n = median(s.get("time", {}).get(part, math.nan) for s in new)
        rows.append((part, b, n, ratio(b, n)))
    return rows


def _cell(value: Any, digits: int) -> str:
    if isinstance(value, str):
        return value
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "-"
    if isinstance(value, int):
        return f"{value:,}"
    return f"{value:,.{digits}f}"


def format_table(header: Sequence[str], rows: Sequence[Sequence[Any]], digits: int = 2) -> str:
    """A plain-text table: first column left-aligned, the others right-aligned; floats
    with ``digits`` decimals, NaN/None as ``-``."""
    cells = [list(header)] + [[_cell(v, digits) for v in row] for row in rows]
    widths = [max(len(row[i]) for row in cells) for i in range(len(header))]
    lines = []
    for number, row in enumerate(cells):
        parts = [row[0].ljust(widths[0])] + [c.rjust(w) for c, w in zip(row[1:], widths[1:])]
        lines.append("  ".join(parts).rstrip())
        if number == 0:
            lines.append("  ".join("-" * w for w in widths))
    return "\n".join(lines)


def rate_difference(k_base: int, n_base: int, k_new: int, n_new: int, rounds: int = 1) -> tuple[float, float, float]:
    """``(new - base, low, high)``: the difference of two rates and its 95% interval
    (Agresti-Caffo: one success and one failure added to each side, so that 0/n or n/n
    does not give a zero-width interval), each count divided by ``rounds`` first since
    rounds repeat the same seeds; NaN where a side has no trials."""
    if n_base == 0 or n_new == 0:
        return math.nan, math.nan, math.nan
    rounds = max(rounds, 1)
    adjusted = []
    for k, n in ((k_base, n_base), (k_new, n_new)):
        trials = n / rounds + 2
        adjusted.append(((k / rounds + 1) / trials, trials))
    (p_base, t_base), (p_new, t_new) = adjusted
    spread = 1.96 * math.sqrt(p_base * (1 - p_base) / t_base + p_new * (1 - p_new) / t_new)
    centre = p_new - p_base
    return k_new / n_new - k_base / n_base, centre - spread, centre + spread


def quality_counts(steps: Sequence[Mapping[str, Any]]) -> dict[str, tuple[int, int]]:
    """``name -> (count, out of)`` summed over steps: ``<t> valid`` (valid proposals of
    all proposals) and ``<t> learnable`` (0 < p̄ < 1, of the valid ones), per task type
    and ``all``."""
    totals: dict[str, list[int]] = {}
    for step in steps:
        for task_type, q in step.get("quality", {}).items():
            for kind, k, n in (("valid", q["valid"], q["proposals"]), ("learnable", q["learnable"], q["valid"])):
                for name in (f"{task_type} {kind}", f"all {kind}"):
                    entry = totals.setdefault(name, [0, 0])
                    entry[0] += int(k)
                    entry[1] += int(n)
    order = sorted(totals, key=lambda name: (name.startswith("all "), name.split(" ")[1], name))
    return {name: (totals[name][0], totals[name][1]) for name in order}


# -- the child: one side's trainer ----------------------------------------------------


def _emit(kind: str, **payload: Any) -> None:
    print(MARKER + json.dumps({"kind": kind, **payload}), flush=True)


def _foreign_modules(tree: Path) -> dict[str, str]:
    """``absolutezero*`` modules imported from outside ``tree`` (should be none)."""
    foreign = {}
    for name, module in list(sys.modules.items()):
        if not name.split(".")[0].startswith("absolutezero"):
            continue
        file = getattr(module, "__file__", None)
        if file and not Path(file).resolve().is_relative_to(tree):
            foreign[name] = file
    return foreign


def _model_facts(agent: Any) -> dict[str, Any]:
    """Parameter counts and sizes of the agent's (trained) model."""
    import torch

    model = getattr(agent, "model", None)
    if model is None or not hasattr(model, "config"):
        raise BenchmarkError(f"agent {type(agent).__name__} has no Hugging Face .model to count")
    config = model.config
    parameters = list(model.parameters())  # a tied head appears once
    embedding = model.get_input_embeddings().weight
    head_module = model.get_output_embeddings()
    tied = head_module is None or head_module.weight is embedding or (
        head_module.weight.data_ptr() == embedding.data_ptr()
    )
    layers = int(config.num_hidden_layers)
    blocks = next(
        (m for m in model.modules() if isinstance(m, torch.nn.ModuleList) and len(m) == layers), None
    )
    trainable_blocks = layers if blocks is None else sum(
        any(p.requires_grad for p in block.parameters()) for block in blocks
    )
    heads = int(config.num_attention_heads)
    head_dim = getattr(config, "head_dim", None) or int(config.hidden_size) // heads
    learner = getattr(agent, "learner", None)
    return {
        "model": str(getattr(agent, "model_name", "?")),
        "params": sum(p.numel() for p in parameters),
        "trainable": sum(p.numel() for p in parameters if p.requires_grad),
        "embedding": embedding.numel(),
        "head": 0 if tied else head_module.weight.numel(),
        "tied": bool(tied),
        "layers": layers,
        "trainable_layers": int(trainable_blocks),
        "hidden": int(config.hidden_size),
        "intermediate": int(getattr(config, "intermediate_size", 4 * int(config.hidden_size))),
        "vocab": int(config.vocab_size),
        "heads": heads,
        "attention_width": heads * int(head_dim),
        "device": str(parameters[0].device),
        "generation_dtype": str(getattr(agent, "generation_dtype", "?")).removeprefix("torch."),
        "autocast_bf16": getattr(learner, "autocast_bf16", None),
        "update_from_top": getattr(learner, "first_block", None) is not None,
        "threads": torch.get_num_threads(),
        "torch": torch.__version__,
    }


class _Work:
    """What one step's generate and update calls processed (the agent's methods wrapped)."""

    def __init__(self, agent: Any) -> None:
        from absolutezero.protocol import PROMPT_TOO_LONG

        self.too_long = PROMPT_TOO_LONG
        self.reset()
        generate, update = agent.generate, agent.update

        def counting_generate(*args: Any, **kwargs: Any) -> Any:
            outputs = generate(*args, **kwargs)
            self.record_generated(outputs)
            return outputs

        def counting_update(samples: Any, advantages: Any, *args: Any, **kwargs: Any) -> Any:
            self.record_update(samples, advantages)
            return update(samples, advantages, *args, **kwargs)

        agent.generate, agent.update = counting_generate, counting_update

    def reset(self) -> None:
        self.calls = 0
        self.dropped = 0
        self.forced = 0
        self.generated: list[tuple[int, int]] = []  # (prompt, completion) per completion
        self.unique: list[int] = []  # prompt length per distinct prompt of a call
        self.trained: list[tuple[int, int]] = []  # every sample given to update
        self.active: list[tuple[int, int]] = []  # those the learner back-propagates

    def record_generated(self, outputs: Sequence[Sequence[Any]]) -> None:
        self.calls += 1
        seen: set[tuple[int, ...]] = set()
        for samples in outputs:
            for sample in samples:
                if sample.finish_reason == self.too_long:
                    self.dropped += 1
                    continue
                self.generated.append((len(sample.prompt_ids), len(sample.completion_ids)))
                self.forced += sum(bool(f) for f in (getattr(sample, "forced", None) or []))
                key = tuple(sample.prompt_ids)
                if key not in seen:
                    seen.add(key)
                    self.unique.append(len(key))

    def record_update(self, samples: Sequence[Any], advantages: Sequence[float]) -> None:
        for sample, advantage in zip(samples, advantages):
            pair = (len(sample.prompt_ids), len(sample.completion_ids))
            self.trained.append(pair)
            mask = sample.trained_mask() if hasattr(sample, "trained_mask") else sample.completion_ids
            if float(advantage) != 0.0 and any(mask):
                self.active.append(pair)

    def summary(self) -> dict[str, float]:
        return {
            "generate_calls": self.calls,
            "completions": len(self.generated),
            "prompts_dropped": self.dropped,
            "prompt_tokens": sum(p for p, _ in self.generated),
            "unique_prompts": len(self.unique),
            "unique_prompt_tokens": sum(self.unique),
            "completion_tokens": sum(c for _, c in self.generated),
            "forced_tokens": self.forced,
            "trained_samples": len(self.trained),
            "trained_tokens": sum(p + c for p, c in self.trained),
            "active_samples": len(self.active),
            "active_tokens": sum(p + c for p, c in self.active),
            "active_completion_tokens": sum(c for _, c in self.active),
        }


def _quality(metrics: Mapping[str, float], proposals_per_type: int) -> dict[str, dict[str, int]]:
    """Counts per task type from the step's ``propose/<t>/valid_rate`` and
    ``learnable_rate`` (the latter over the valid proposals)."""
    quality = {}
    for name, value in metrics.items():
        if name.startswith("propose/") and name.endswith("/valid_rate"):
            task_type = name[len("propose/"):-len("/valid_rate")]
            valid = round(float(value) * proposals_per_type)
            learnable = metrics.get(f"propose/{task_type}/learnable_rate")
            quality[task_type] = {
                "proposals": proposals_per_type,
                "valid": valid,
                "learnable": round(float(learnable) * valid) if learnable is not None and valid else 0,
            }
    return quality


def child_main(argv: Sequence[str]) -> int:
    """One side: load, start from the seed buffers (or seed and save them), time the steps."""
    parser = argparse.ArgumentParser(prog="step_speed.py --child")
    parser.add_argument("--tree", required=True)
    parser.add_argument("--steps", type=int, default=0)
    parser.add_argument("--save-seed", default=None, help="seed, save the buffers here, stop")
    parser.add_argument("overrides", nargs="*")
    args = parser.parse_args(argv)
    tree = Path(args.tree).resolve()
    flops = _load_flops()

    from absolutezero.components import agent_kwargs, env_kwargs, resolve_options
    from absolutezero.config import load_config
    from absolutezero.registry import make_agent, make_environment
    from absolutezero.seeding import start_buffers
    from absolutezero.selfplay import SelfPlayTrainer

    config = resolve_options(load_config(["env=code", "progress=false", *args.overrides]))
    started = time.perf_counter()
    env = make_environment(config.env, env_kwargs(config))
    agent = make_agent(config.agent, agent_kwargs(config))
    try:
        import absolutezero
        import absolutezero_policy

        facts = _model_facts(agent)
        _emit("model", load_seconds=time.perf_counter() - started, tree=str(tree), pid=os.getpid(),
              absolutezero=absolutezero.__file__, absolutezero_policy=absolutezero_policy.__file__, **facts)
        trainer = SelfPlayTrainer.from_config(env, agent, config)
        if args.save_seed:
            begun = time.perf_counter()
            start_buffers(trainer, None)
            trainer.buffers.save(args.save_seed)
            _emit("seeded", seconds=time.perf_counter() - begun, sizes=trainer.buffers.sizes())
        else:
            start = start_buffers(trainer, config.seed_buffers)
            if start.source != "file":
                raise BenchmarkError(f"expected to start from seed_buffers=, started from {start.source}")
            shape = flops.ModelShape(**{k: facts[k] for k in (
                "params", "embedding", "head", "layers", "hidden", "vocab", "attention_width", "trainable_layers")},
                update_from_top=bool(facts.get("update_from_top", False)))
            work = _Work(agent)
            for _ in range(args.steps):
                work.reset()
                metrics = trainer.step().metrics
                estimate = flops.step_flops(shape, work.unique, work.generated, work.active)
                _emit(
                    "step", step=trainer.step_count,
                    time={k[len("time/"):]: float(v) for k, v in metrics.items() if k.startswith("time/")},
                    tokens_generated=float(metrics.get("tokens/generated", math.nan)),
                    tokens_trained=float(metrics.get("tokens/trained", math.nan)),
                    work=work.summary(), flops=estimate.as_dict(),
                    quality=_quality(metrics, int(config.selfplay.propose_batch)),
                    valid_rate=metrics.get("overall/valid_rate"), solve_rate=metrics.get("overall/solve_rate"),
                    metrics={k: float(v) for k, v in metrics.items() if isinstance(v, (int, float))},
                )
    finally:
        env.close()
        agent.close()
    foreign = _foreign_modules(tree)
    _emit("modules", tree=str(tree), foreign=foreign)
    if foreign:
        print(f"step_speed child: modules imported from outside {tree}: {foreign}", file=sys.stderr)
        return 3
    return 0


# -- the parent: git, children, machine, report ---------------------------------------


def _git(repo: Path, *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    result = subprocess.run(["git", "-C", str(repo), *args], capture_output=True, text=True)
    if check and result.returncode != 0:
        raise BenchmarkError(f"git {' '.join(args)} failed: {(result.stderr or result.stdout).strip()}")
    return result


def package_roots(tree: Path) -> list[Path]:
    """The folders of ``tree`` that hold an ``absolutezero*`` package (an ``__init__.py``):
    the tree itself, ``benchmarks``, ``agents/*``, ``environments/*``, ``plugins/*``."""
    candidates = [tree, tree / "benchmarks"]
    for group in ("agents", "environments", "plugins"):
        candidates += sorted(p for p in (tree / group).glob("*") if p.is_dir())
    return [
        folder for folder in candidates
        if any((package / "__init__.py").is_file() for package in folder.glob("absolutezero*"))
    ]


def _child_env(tree: Path) -> dict[str, str]:
    env = dict(os.environ)
    roots = [str(p) for p in package_roots(tree)]
    env["PYTHONPATH"] = os.pathsep.join(roots + ([env["PYTHONPATH"]] if env.get("PYTHONPATH") else []))
    env["PYTHONSAFEPATH"] = "1"
    return env


def run_child(label: str, tree: Path, child_args: Sequence[str]) -> list[dict[str, Any]]:
    """Run one child for ``label``; its plain stdout lines are echoed, its records returned.

    Raises:
        BenchmarkError: the child failed.
    """
    command = [sys.executable, str(Path(__file__).resolve()), "--child", "--tree", str(tree), *child_args]
    lines: list[str] = []
    with subprocess.Popen(command, env=_child_env(tree), stdout=subprocess.PIPE, text=True, bufsize=1) as child:
        assert child.stdout is not None
        for line in child.stdout:
            lines.append(line)
            if line.startswith(MARKER):
                _echo(label, parse_child_output([line])[0])
            elif line.strip():
                print(f"  [{label}] {line.rstrip()}", flush=True)
    if child.returncode != 0:
        raise BenchmarkError(f"the {label} child failed (exit status {child.returncode}); its errors are above")
    return parse_child_output(lines)


def _echo(label: str, record: Mapping[str, Any]) -> None:
    kind = record["kind"]
    if kind == "model":
        print(f"  [{label}] loaded in {record['load_seconds']:.1f} s; absolutezero from {record['absolutezero']}, "
              f"absolutezero_policy from {record['absolutezero_policy']}", flush=True)
    elif kind == "seeded":
        print(f"  [{label}] seeded in {record['seconds']:.1f} s, buffers {record['sizes']}", flush=True)
    elif kind == "step":
        t = record["time"]
        parts = ", ".join(f"{p} {t[p]:.2f}" for p in MAIN_PARTS[1:] if p in t)
        print(f"  [{label}] step {record['step']}: {t.get('step', math.nan):.2f} s ({parts}); "
              f"{record['flops']['total'] / 1e9:,.0f} GFLOP", flush=True)


def matmul_gflops(m: int, k: int, n: int, dtype_name: str, device: str, repeats: int = 7,
                  min_seconds: float = 0.05) -> float:
    """GFLOP/s of ``[m x k] @ [k x n]`` in ``dtype_name`` on ``device``: warm-up, enough
    iterations per timing to last ``min_seconds``, the median of ``repeats`` timings."""
    import torch

    dtype = getattr(torch, dtype_name)
    a = torch.randn(m, k, device=device).to(dtype)
    b = torch.randn(k, n, device=device).to(dtype)
    sync = torch.cuda.synchronize if torch.device(device).type == "cuda" else (lambda: None)

    def timed(iterations: int) -> float:
        sync()
        begun = time.perf_counter()
        for _ in range(iterations):
            torch.matmul(a, b)
        sync()
        return time.perf_counter() - begun

    timed(2)
    iterations = 1
    while timed(iterations) < min_seconds and iterations < 1 << 20:
        iterations *= 2
    seconds = statistics.median(timed(iterations) / iterations for _ in range(repeats))
    return 2 * m * k * n / seconds / 1e9


def machine_limits(hidden: int, intermediate: int, device: str) -> dict[str, dict[str, float]]:
    """``dtype -> {shape: GFLOP/s}`` for float32 and bfloat16 on the model's shapes."""
    shapes = {f"[64 x {hidden}] @ [{hidden} x {intermediate}]": (64, hidden, intermediate),
              f"[512 x {hidden}] @ [{hidden} x {hidden}]": (512, hidden, hidden)}
    return {
        dtype: {name: matmul_gflops(*dims, dtype, device) for name, dims in shapes.items()}
        for dtype in ("float32", "bfloat16")
    }


def _side_summary(steps: Sequence[Mapping[str, Any]]) -> dict[str, float]:
    """Medians over steps of throughput, work, FLOPs and achieved GFLOP/s."""
    def med(fn: Any) -> float:
        return median(fn(s) for s in steps)

    def per_second(amount: Any, seconds: Any) -> Any:
        return lambda s: amount(s) / seconds(s) if seconds(s) else math.nan

    step_time = lambda s: s["time"].get("step", math.nan)  # noqa: E731
    gen_time = lambda s: s["time"].get("generation", math.nan)  # noqa: E731
    upd_time = lambda s: s["time"].get("update", math.nan)  # noqa: E731
    summary = {
        "generated tok/s": med(per_second(lambda s: s["work"]["completion_tokens"], gen_time)),
        "trained tok/s": med(per_second(lambda s: s["tokens_trained"], upd_time)),
        "step GFLOP/s": med(per_second(lambda s: s["flops"]["total"] / 1e9, step_time)),
        "generation GFLOP/s": med(per_second(lambda s: s["flops"]["generation"] / 1e9, gen_time)),
        "update GFLOP/s": med(per_second(lambda s: s["flops"]["update"] / 1e9, upd_time)),
    }
    for name in ("prefill", "decode", "update_forward", "update_backward", "total"):
        summary[f"GFLOP {name}"] = med(lambda s, n=name: s["flops"][n] / 1e9)
    for name in ("completions", "unique_prompts", "prompt_tokens", "unique_prompt_tokens", "completion_tokens",
                 "forced_tokens", "trained_samples", "trained_tokens", "active_samples", "active_tokens"):
        summary[f"work {name}"] = med(lambda s, n=name: s["work"][n])
    return summary


def report(
    records: Mapping[str, list[dict[str, Any]]],
    limits: Mapping[str, Mapping[str, float]],
    rounds: int,
    round_times: Sequence[tuple[int, str, float]],
) -> str:
    """The plain-text report of both sides' records (``model`` and ``step`` kinds)."""
    steps = {side: [r for r in records[side] if r["kind"] == "step"] for side in SIDES}
    model = next(r for side in SIDES for r in records[side] if r["kind"] == "model")
    sums = {side: _side_summary(steps[side]) for side in SIDES}
    out = []
    count = {side: len(steps[side]) for side in SIDES}
    out.append(f"model: {model['model']}: {model['params']:,} parameters ({model['trainable']:,} trainable, "
               f"{model['params'] - model['embedding'] - model['head']:,} non-embedding), {model['layers']} layers "
               f"({model['trainable_layers']} trained), hidden {model['hidden']}, intermediate {model['intermediate']}, "
               f"vocab {model['vocab']}, attention width {model['attention_width']}, "
               f"{'tied' if model['tied'] else 'untied'} head")
    out.append(f"device {model['device']}, torch {model['torch']}, {model['threads']} threads; generation dtype "
               f"{model['generation_dtype']}, update autocast bf16: {model['autocast_bf16']}")
    out.append("")
    out.append(f"Step time, seconds (median over {count['base']} base and {count['new']} new steps, {rounds} round(s))")
    out.append(format_table(("part", "base", "new", "base/new"), time_rows(steps["base"], steps["new"]), digits=3))
    if len(round_times) > 2:
        out.append("per round (median step s): " + "; ".join(f"r{r} {side} {t:.2f}" for r, side, t in round_times))
    out.append("")
    out.append("Throughput and work of a median step")
    rows = []
    for name in ("generated tok/s", "trained tok/s", "work completions", "work unique_prompts", "work prompt_tokens",
                 "work unique_prompt_tokens", "work completion_tokens", "work forced_tokens", "work trained_samples",
                 "work trained_tokens", "work active_samples", "work active_tokens"):
        b, n = sums["base"][name], sums["new"][name]
        rows.append((name.removeprefix("work "), b, n, ratio(n, b)))
    out.append(format_table(("", "base", "new", "new/base"), rows, digits=1))
    out.append("")
    out.append("Estimated work of a median step, GFLOP (formulas: benchmarks/step_flops.py)")
    rows = [(name, sums["base"][f"GFLOP {name}"], sums["new"][f"GFLOP {name}"])
            for name in ("prefill", "decode", "update_forward", "update_backward", "total")]
    out.append(format_table(("part", "base", "new"), rows, digits=1))
    out.append("")
    out.append(f"Machine: measured matmul throughput, GFLOP/s (torch, {model['threads']} threads, {model['device']})")
    shapes = list(next(iter(limits.values())))
    out.append(format_table(("dtype", *shapes, "best"),
                            [(dtype, *[limits[dtype][s] for s in shapes], max(limits[dtype].values()))
                             for dtype in limits], digits=1))
    peak = {dtype: max(values.values()) for dtype, values in limits.items()}
    gen_dtype = "bfloat16" if "bfloat16" in str(model["generation_dtype"]) else "float32"
    upd_dtype = "bfloat16" if model["autocast_bf16"] else "float32"
    out.append("")
    out.append("Achieved GFLOP/s and utilisation (estimated FLOPs / time / best matmul GFLOP/s)")
    rows = []
    for label, key, dtype in (("step", "step GFLOP/s", "float32"),
                              ("generation", "generation GFLOP/s", gen_dtype),
                              ("update", "update GFLOP/s", upd_dtype)):
        b, n = sums["base"][key], sums["new"][key]
        rows.append((f"{label} GFLOP/s", b, n, ""))
        rows.append((f"{label} utilisation vs {dtype}", f"{100 * b / peak[dtype]:.1f}%",
                     f"{100 * n / peak[dtype]:.1f}%", f"peak {peak[dtype]:,.0f}"))
        if dtype != "float32":
            rows.append((f"{label} utilisation vs float32", f"{100 * b / peak['float32']:.1f}%",
                         f"{100 * n / peak['float32']:.1f}%", f"peak {peak['float32']:,.0f}"))
    out.append(format_table(("", "base", "new", ""), rows, digits=1))
    out.append("")
    out.append(f"Quality (all steps of all rounds; 95% interval of new - base with counts / {rounds})")
    rows = []
    counts = {side: quality_counts(steps[side]) for side in SIDES}
    for name in dict.fromkeys([*counts["base"], *counts["new"]]):
        kb, nb = counts["base"].get(name, (0, 0))
        kn, nn = counts["new"].get(name, (0, 0))
        if nb == nn == 0:
            continue  # e.g. learnable when no proposal was valid
        diff, low, high = rate_difference(kb, nb, kn, nn, rounds)
        verdict = "-" if math.isnan(diff) else ("within noise" if low <= 0 <= high else "differs")
        rows.append((name, f"{kb}/{nb} ({kb / nb:.2f})" if nb else "-", f"{kn}/{nn} ({kn / nn:.2f})" if nn else "-",
                     "-" if math.isnan(diff) else f"{diff:+.2f} [{low:+.2f}, {high:+.2f}]", verdict))
    out.append(format_table(("rate", "base", "new", "new - base [95%]", ""), rows))
    return "\n".join(out)


def _parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--base", default=DEFAULT_BASE, help=f"git revision to compare against (default {DEFAULT_BASE})")
    parser.add_argument("--steps", type=int, default=3, help="steps per side per round (default 3)")
    parser.add_argument("--rounds", type=int, default=1, help="step sets per side, alternating order (default 1)")
    parser.add_argument("--seed-buffers", default=None, help="start both sides from this seed_buffers.jsonl")
    parser.add_argument("--records", default=None, help="also write every child record to this JSON-lines file")
    parser.add_argument("overrides", nargs="*", help="run-config key=value overrides, the same for both sides")
    args = parser.parse_args(argv)
    if args.steps < 1:
        parser.error("--steps must be >= 1")
    if args.rounds < 1:
        parser.error("--rounds must be >= 1")
    for item in args.overrides:
        if "=" not in item:
            parser.error(f"overrides are key=value, got {item!r}")
        key, _, value = item.partition("=")
        if key == "seed_buffers":  # same meaning as --seed-buffers
            args.seed_buffers = value
    args.overrides = [o for o in args.overrides if not o.startswith("seed_buffers=")]
    return args


def _remove_worktree(repo: Path, folder: Path) -> None:
    """Unregister and delete the base worktree; never raises."""
    if folder.exists():
        if _git(repo, "worktree", "remove", "--force", str(folder), check=False).returncode != 0:
            shutil.rmtree(folder, ignore_errors=True)
    _git(repo, "worktree", "prune", check=False)


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if argv[:1] == ["--child"]:
        try:
            return child_main(argv[1:])
        except Exception as error:
            from absolutezero.config import ConfigError

            if not isinstance(error, (BenchmarkError, ConfigError)):
                raise
            print(f"step_speed child: error: {error}", file=sys.stderr)
            return 2
    args = _parse_args(argv)
    # `kill` (SIGTERM) unwinds like Ctrl-C, so the worktree is removed on the way out
    signal.signal(signal.SIGTERM, lambda signum, frame: sys.exit(128 + signum))
    repo = HERE.parent
    try:
        return _compare(repo, args)
    except BenchmarkError as error:
        print(f"step_speed: error: {error}", file=sys.stderr)
        return 2


def _compare(repo: Path, args: argparse.Namespace) -> int:
    if _git(repo, "rev-parse", "--is-inside-work-tree", check=False).returncode != 0:
        raise BenchmarkError(f"{repo} is not a git working tree")
    found = _git(repo, "rev-parse", "--verify", "--quiet", f"{args.base}^{{commit}}", check=False)
    if found.returncode != 0:
        raise BenchmarkError(f"--base {args.base!r} is not a commit of {repo} (git rev-parse found nothing)")
    base_commit = found.stdout.strip()
    head = _git(repo, "rev-parse", "HEAD").stdout.strip()
    changed = [line for line in _git(repo, "status", "--porcelain").stdout.splitlines() if line.strip()]
    subject = _git(repo, "log", "-1", "--format=%s", base_commit).stdout.strip()
    print(f"base: {base_commit[:10]} {subject[:90]}")
    print(f"new:  the working tree {repo} at {head[:10]}"
          + (f" with {len(changed)} uncommitted change(s)" if changed else " (clean)"))
    if base_commit == head and not changed:
        print("note: base and new are the same code; the ratio measures noise")
    seed_file = Path(args.seed_buffers).expanduser().resolve() if args.seed_buffers else None
    if seed_file is not None and not seed_file.is_file():
        raise BenchmarkError(f"--seed-buffers {seed_file}: no such file")
    print(f"overrides: {' '.join(args.overrides) or '(none)'}; {args.steps} step(s) x {args.rounds} round(s) per side")
    scratch = Path(tempfile.mkdtemp(prefix="step_speed_"))
    base_tree = scratch / "base"
    records: dict[str, list[dict[str, Any]]] = {side: [] for side in SIDES}
    try:
        added = _git(repo, "worktree", "add", "--detach", str(base_tree), base_commit, check=False)
        if added.returncode != 0:
            raise BenchmarkError(f"git worktree add of {args.base} failed: {(added.stderr or added.stdout).strip()}")
        trees = {"base": base_tree.resolve(), "new": repo.resolve()}
        if seed_file is None:
            seed_file = scratch / "seed_buffers.jsonl"
            print(f"seeding once with the base code -> {seed_file}", flush=True)
            run_child("base seed", trees["base"], ["--save-seed", str(seed_file), "--", *args.overrides])
        else:
            print(f"seed buffers: {seed_file}")
        child_args = ["--steps", str(args.steps), "--", *args.overrides, f"seed_buffers={seed_file}"]
        round_times = []
        for number in range(1, args.rounds + 1):
            order = SIDES if number % 2 else SIDES[::-1]
            for side in order:
                print(f"round {number}/{args.rounds}: {side}", flush=True)
                got = run_child(f"{side} r{number}", trees[side], child_args)
                records[side] += [dict(r, side=side, round=number) for r in got]
                times = [r["time"].get("step", math.nan) for r in got if r["kind"] == "step"]
                round_times.append((number, side, median(times)))
        if args.records:
            with open(args.records, "w", encoding="utf-8") as handle:
                for side in SIDES:
                    for record in records[side]:
                        handle.write(json.dumps(record) + "\n")
    finally:
        _remove_worktree(repo, base_tree)
        shutil.rmtree(scratch, ignore_errors=True)
    model = next(r for r in records["new"] if r["kind"] == "model")
    print("measuring matmul throughput ...", flush=True)
    limits = machine_limits(model["hidden"], model["intermediate"], model["device"])
    print()
    print(report(records, limits, args.rounds, round_times))
    return 0


if __name__ == "__main__":
    sys.exit(main())
