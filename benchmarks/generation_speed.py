"""Print generation throughput, weight-push time and training-step time of the policy agent.

Usage::

    python benchmarks/generation_speed.py [--model embedded] [--backend hf|vllm|both] [--dtype bfloat16]
    .venv-vllm/bin/python benchmarks/generation_speed.py --model smollm2-135m --backend both

Figures, per backend on the same model and the same prompts: load time, generated tokens/s
at batch 1 and batch 32 (200-token random prompts, 128 new tokens, no early stop,
sampling at temperature 1), the time to push the trained weights into the generation
model (``sync_weights``: a bfloat16 copy for ``hf``, the running engine for ``vllm``), and
for ``vllm`` the gap between the engine's log-probabilities of its sampled tokens and the
float32 trainer's for the same tokens (the numerics mismatch the learner corrects for).
Then the wall time of one learner step on 8 x 384 tokens (128-token prompts + 256-token
completions). ``--backend vllm`` needs vLLM (``bash scripts/setup-vllm.sh`` on a CPU).
DESIGN.md reference on 2 CPU cores: 28 tok/s (batch 1), 141 tok/s (batch 32),
14.7 s per training step.
"""

from __future__ import annotations

import argparse
import json
import statistics
import time
from collections.abc import Sequence
from typing import Any

import torch

from absolutezero.protocol import Sample
from absolutezero_policy.agent import PolicyAgent


def _prompt_ids(agent: PolicyAgent, length: int, rng: torch.Generator) -> list[int]:
    vocab = len(agent.tokenizer)
    return torch.randint(100, vocab, (length,), generator=rng).tolist()


def _generate(agent: PolicyAgent, prompts: list[list[int]], rng: torch.Generator) -> tuple[list[Sample], float]:
    seeds = torch.randint(0, 2**62, (len(prompts),), generator=rng).tolist()
    agent.backend.batch_size = max(agent.backend.batch_size, len(prompts))
    started = time.perf_counter()
    samples = agent.backend.generate(prompts, greedy=False, seeds=seeds)
    return samples, time.perf_counter() - started


def generation_tokens_per_second(
    agent: PolicyAgent, batch: int, prompt_tokens: int, new_tokens: int, rng: torch.Generator
) -> tuple[float, list[Sample]]:
    """Generated tokens per second for ``batch`` prompts of ``prompt_tokens`` ids, and the samples."""
    prompts = [_prompt_ids(agent, prompt_tokens, rng) for _ in range(batch)]
    samples, seconds = _generate(agent, prompts, rng)
    return sum(len(s.completion_ids) for s in samples) / seconds, samples


def weight_push_seconds(agent: PolicyAgent, repeats: int = 3) -> float:
    """Median wall time of pushing the trained model's weights to the generation side."""
    times = []
    for _ in range(repeats):
        started = time.perf_counter()
        agent.backend.sync_weights(agent.model)
        times.append(time.perf_counter() - started)
    return statistics.median(times)


def logprob_gap(agent: PolicyAgent, samples: Sequence[Sample]) -> tuple[float, float]:
    """Max and mean |generation logprob - float32 trainer logprob| over the sampled tokens."""
    gaps = []
    with torch.no_grad():
        for sample in samples:
            ids = torch.tensor([sample.prompt_ids + sample.completion_ids])
            logits = agent.model(ids).logits[0, len(sample.prompt_ids) - 1 : -1].float()
            trainer = torch.log_softmax(logits, dim=-1).gather(-1, ids[0, len(sample.prompt_ids) :, None])
            gaps.append((torch.tensor(sample.logprobs) - trainer.squeeze(-1)).abs())
    every = torch.cat(gaps)
    return float(every.max()), float(every.mean())


def training_step_seconds(agent: PolicyAgent, rows: int, prompt: int, completion: int) -> float:
    """Wall time of one learner step on ``rows`` samples of ``prompt + completion`` ids."""
    rng = torch.Generator().manual_seed(1)
    samples = [
        Sample(
            prompt_ids=_prompt_ids(agent, prompt, rng),
            completion_ids=_prompt_ids(agent, completion, rng),
            logprobs=[-5.0] * completion,
            text="",
        )
        for _ in range(rows)
    ]
    advantages = [1.0 if i % 2 else -1.0 for i in range(rows)]
    started = time.perf_counter()
    agent.learner.step(samples, advantages)
    return time.perf_counter() - started


def bench_backend(args: argparse.Namespace, backend: str, train: bool) -> dict[str, Any]:
    """Load the agent with ``backend``, print and return its figures, close it."""
    started = time.perf_counter()
    options: dict[str, Any] = dict(
        model=args.model,
        backend=backend,
        dtype=args.dtype,
        max_new_tokens=args.new_tokens,
        stop_strings=(),
        micro_batch=8,
        learning_rate=1e-6,
        batch_size=max(args.batches),
    )
    if backend == "vllm" and args.vllm_options:
        options["vllm_options"] = json.loads(args.vllm_options)
    agent = PolicyAgent(**options)
    # no early stop: every row generates exactly new_tokens
    if backend == "hf":
        agent.backend.stop_token_ids = frozenset()
    else:
        agent.backend.stop_token_ids = []
        agent.backend.ignore_eos = True
    figures: dict[str, Any] = {"backend": backend, "load_s": time.perf_counter() - started}
    print(f"[{backend}] model={args.model} dtype={args.dtype} threads={torch.get_num_threads()}")
    print(f"[{backend}] load: {figures['load_s']:.1f} s")
    rng = torch.Generator().manual_seed(0)  # same prompts for every backend
    generation_tokens_per_second(agent, 1, 16, 4, rng)  # warm-up
    last: list[Sample] = []
    for batch in args.batches:
        rate, last = generation_tokens_per_second(agent, batch, args.prompt_tokens, args.new_tokens, rng)
        figures[f"tok_s_batch{batch}"] = rate
        print(
            f"[{backend}] generation batch={batch:>3} prompt={args.prompt_tokens} new={args.new_tokens}: "
            f"{rate:7.1f} tok/s"
        )
    figures["weight_push_s"] = weight_push_seconds(agent)
    print(f"[{backend}] weight push (sync_weights, median of 3): {figures['weight_push_s']:.3f} s")
    if backend == "vllm":
        worst, mean = logprob_gap(agent, last[:8])
        figures.update(logprob_gap_max=worst, logprob_gap_mean=mean)
        print(
            f"[{backend}] logprob gap engine vs float32 trainer on {min(len(last), 8)} samples: "
            f"max {worst:.2e}, mean {mean:.2e}"
        )
    if train:
        seconds = training_step_seconds(agent, 8, 128, 256)
        figures["train_step_s"] = seconds
        print(f"[{backend}] training step 8 x 384 tokens (micro_batch 8): {seconds:.1f} s")
    agent.close()
    return figures


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="embedded")
    parser.add_argument("--backend", default="hf", choices=["hf", "vllm", "both"])
    parser.add_argument("--dtype", default="bfloat16")
    parser.add_argument("--new-tokens", type=int, default=128)
    parser.add_argument("--prompt-tokens", type=int, default=200)
    parser.add_argument("--batches", type=int, nargs="+", default=[1, 32])
    parser.add_argument("--skip-training", action="store_true")
    parser.add_argument(
        "--vllm-options",
        default=None,
        help='JSON keyword arguments for vllm.LLM, e.g. \'{"enforce_eager": true}\'',
    )
    parser.add_argument(
        "--threads",
        type=int,
        default=None,
        help="torch intra-op threads (default: torch's choice); on a busy machine 1 thread "
        "avoids OpenMP oversubscription, which can slow 2-thread decoding several-fold "
        "(vLLM's CPU engine binds its own threads)",
    )
    args = parser.parse_args()
    if args.threads is not None:
        torch.set_num_threads(args.threads)
    backends = ["hf", "vllm"] if args.backend == "both" else [args.backend]
    results = [
        bench_backend(args, backend, train=not args.skip_training and index == 0)
        for index, backend in enumerate(backends)
    ]
    if len(results) > 1:
        print("side by side (same model, same prompts):")
        keys = list(dict.fromkeys(key for figures in results for key in figures if key != "backend"))
        for key in keys:
            row = "  ".join(f"{r['backend']}={r[key]:.3g}" for r in results if key in r)
            print(f"  {key:<18} {row}")


if __name__ == "__main__":
    main()
