"""Print generation throughput and training-step time of the policy agent.

Usage::

    python benchmarks/generation_speed.py [--model embedded] [--backend hf] [--dtype bfloat16]

Figures: generated tokens/s at batch 1 and batch 32 (200-token prompt, 128 new tokens,
no early stop, sampling at temperature 1), and the wall time of one learner step on
8 x 384 tokens (128-token prompts + 256-token completions) with bf16 autocast.
DESIGN.md reference on 2 CPU cores: 28 tok/s (batch 1), 141 tok/s (batch 32),
14.7 s per training step.
"""

from __future__ import annotations

import argparse
import time

import torch

from absolutezero.protocol import Sample
from absolutezero_policy.agent import PolicyAgent


def _prompt_ids(agent: PolicyAgent, length: int, rng: torch.Generator) -> list[int]:
    vocab = len(agent.tokenizer)
    return torch.randint(100, vocab, (length,), generator=rng).tolist()


def generation_tokens_per_second(
    agent: PolicyAgent, batch: int, prompt_tokens: int, new_tokens: int, rng: torch.Generator
) -> float:
    """Generated tokens per second for ``batch`` prompts of ``prompt_tokens`` ids."""
    prompts = [_prompt_ids(agent, prompt_tokens, rng) for _ in range(batch)]
    agent.backend.batch_size = batch
    started = time.perf_counter()
    samples = agent.backend.generate(prompts, greedy=False, generator=agent.generator)
    seconds = time.perf_counter() - started
    return sum(len(s.completion_ids) for s in samples) / seconds


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


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="embedded")
    parser.add_argument("--backend", default="hf", choices=["hf", "vllm"])
    parser.add_argument("--dtype", default="bfloat16")
    parser.add_argument("--new-tokens", type=int, default=128)
    parser.add_argument("--prompt-tokens", type=int, default=200)
    parser.add_argument("--batches", type=int, nargs="+", default=[1, 32])
    parser.add_argument("--skip-training", action="store_true")
    parser.add_argument(
        "--threads",
        type=int,
        default=None,
        help="torch intra-op threads (default: torch's choice); on a busy machine 1 thread "
        "avoids OpenMP oversubscription, which can slow 2-thread decoding several-fold",
    )
    args = parser.parse_args()
    if args.threads is not None:
        torch.set_num_threads(args.threads)

    started = time.perf_counter()
    agent = PolicyAgent(
        model=args.model,
        backend=args.backend,
        dtype=args.dtype,
        max_new_tokens=args.new_tokens,
        stop_strings=(),
        micro_batch=8,
        learning_rate=1e-6,
    )
    # no early stop: every row generates exactly new_tokens
    if args.backend == "hf":
        agent.backend.stop_token_ids = frozenset()
    else:
        agent.backend.stop_token_ids = []
    print(f"model={args.model} backend={args.backend} dtype={args.dtype} threads={torch.get_num_threads()}")
    print(f"load: {time.perf_counter() - started:.1f} s")
    rng = torch.Generator().manual_seed(0)
    generation_tokens_per_second(agent, 1, 16, 4, rng)  # warm-up
    for batch in args.batches:
        rate = generation_tokens_per_second(agent, batch, args.prompt_tokens, args.new_tokens, rng)
        print(
            f"generation batch={batch:>3} prompt={args.prompt_tokens} new={args.new_tokens}: "
            f"{rate:7.1f} tok/s"
        )
    if not args.skip_training:
        seconds = training_step_seconds(agent, 8, 128, 256)
        print(f"training step 8 x 384 tokens (bf16 autocast, micro_batch 8): {seconds:.1f} s")
    agent.close()


if __name__ == "__main__":
    main()
