"""Training memory of the policy, measured on this machine next to the memory planner's figures.

Two measurements, each printed beside :func:`absolutezero_policy.memory_plan.plan_memory`'s
prediction for the same settings (the planner's accuracy target is 20%):

1. **Training state per rank** (``--ranks 1 2 4``): real ``torchrun`` processes (gloo) load
   the model, build the learner with ``agent_options.strategy=fsdp2`` (and ``ddp`` for one
   process), take one step on a small batch, and count the bytes each rank holds for its
   parameters, gradients and AdamW state (a DTensor counts its local shard). With FSDP2
   the three should fall as ~1/N. Each rank's peak RSS is printed too (it also holds the
   Python runtime, the tokenizer and the fully loaded model before sharding).
2. **Activations at a long sequence** (``--tokens 4096``): one forward pass of one
   sequence through the learner, with and without ``agent_options.gradient_checkpointing``,
   counting the bytes autograd saves for the backward pass
   (``torch.autograd.graph.saved_tensors_hooks``; unique storages, parameters excluded). The peak of a checkpointed backward
   adds one block's activations while it is recomputed, so the measured checkpointed
   peak is ``saved(checkpointed) + saved(full) / trained blocks``.

Usage::

    python benchmarks/training_memory.py --ranks 1 2 4 --tokens 4096
    python benchmarks/training_memory.py --model /path/to/model --trainable-layers 4 --ranks 1 2

All in fp32 (this CPU path's training precision); no vLLM.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

GB = 1e9


def _learner(model_name: str, strategy: str, trainable_layers: int, checkpointing: bool = False):
    import torch

    from absolutezero_policy import sharding
    from absolutezero_policy.learner import Learner
    from absolutezero_policy.model_loading import load_model_and_tokenizer
    from absolutezero_policy.trainable import select_trainable

    if strategy == "fsdp2":
        sharding.ensure_process_group()
    from absolutezero.distributed import Group

    group = Group.from_environment() if strategy == "ddp" else Group.current()
    model, tokenizer = load_model_and_tokenizer(model_name, dtype=torch.float32, device="cpu")
    select_trainable(model, trainable_layers)
    learner = Learner(
        model, pad_token_id=tokenizer.pad_token_id, learning_rate=1e-6, weight_decay=0.0, grad_clip=1.0,
        clip_ratio=0.2, micro_batch=2, autocast_bf16=False, group=group, strategy=strategy,
        gradient_checkpointing=checkpointing,
    )
    return model, learner, group


def worker_state(model_name: str, strategy: str, trainable_layers: int, out: str) -> None:
    """One rank: one step, then the bytes of its training state (JSON, one file per rank)."""
    import torch

    from absolutezero.protocol import Sample
    from absolutezero_policy.sharding import local_bytes

    model, learner, group = _learner(model_name, strategy, trainable_layers)
    generator = torch.Generator().manual_seed(0)
    vocab = model.config.vocab_size
    samples = [
        Sample(torch.randint(1, vocab, (16,), generator=generator).tolist(),
               torch.randint(1, vocab, (8,), generator=generator).tolist(), [-1.0] * 8, "")
        for _ in range(4)
    ]
    advantages = [1.0, -1.0, 0.5, -0.5]
    learner.accumulate_gradients(samples, advantages)
    gradients = local_bytes([p.grad for p in learner.parameters])
    learner.optimizer.step()
    optimizer = local_bytes(
        [value for state in learner.optimizer.state.values() for value in state.values()
         if isinstance(value, torch.Tensor) and value.dim() > 0]
    )
    result = {
        "rank": group.rank, "ranks": group.size, "strategy": strategy,
        "weights": local_bytes(list(model.parameters())), "gradients": gradients, "optimizer": optimizer,
        "peak_rss": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024,
    }
    Path(out, f"rank{group.rank}.json").write_text(json.dumps(result), encoding="utf-8")
    group.barrier()


def measure_state(model: str, strategy: str, ranks: int, trainable_layers: int) -> list[dict]:
    with tempfile.TemporaryDirectory() as out:
        command = [
            sys.executable, "-m", "torch.distributed.run", "--standalone", f"--nproc_per_node={ranks}",
            __file__, "--worker-state", model, strategy, str(trainable_layers), out,
        ]
        env = dict(os.environ, OMP_NUM_THREADS="1", TOKENIZERS_PARALLELISM="false")
        result = subprocess.run(command, env=env, capture_output=True, text=True)
        if result.returncode != 0:
            raise SystemExit(f"torchrun failed:\n{result.stderr[-4000:]}")
        return [json.loads(Path(out, f"rank{r}.json").read_text()) for r in range(ranks)]


def measure_activations(model_name: str, tokens: int, trainable_layers: int, checkpointing: bool) -> dict:
    import torch

    from absolutezero.protocol import Sample

    model, learner, _ = _learner(model_name, "ddp", trainable_layers, checkpointing)
    vocab = model.config.vocab_size
    generator = torch.Generator().manual_seed(0)
    completion = 256
    sample = Sample(torch.randint(1, vocab, (tokens - completion,), generator=generator).tolist(),
                    torch.randint(1, vocab, (completion,), generator=generator).tolist(), [-1.0] * completion, "")
    # Unique storages, parameters excluded: autograd saves a linear layer's weight (a
    # parameter, already counted in the training state) and several nodes save the same
    # tensor (q, k and v share their input), which a per-pack count would add up twice.
    parameters = {p.untyped_storage().data_ptr() for p in model.parameters()}
    storages: dict[int, int] = {}

    def pack(tensor):
        storage = tensor.untyped_storage()
        if storage.data_ptr() not in parameters:
            storages[storage.data_ptr()] = storage.nbytes()
        return tensor

    started = time.perf_counter()
    with torch.autograd.graph.saved_tensors_hooks(pack, lambda t: t):
        logprobs = learner.completion_logprobs([sample])[0]
    forward = time.perf_counter() - started
    started = time.perf_counter()
    logprobs.sum().backward()
    return {"saved": sum(storages.values()), "forward_s": forward, "backward_s": time.perf_counter() - started}


def _plan(arch, **settings):
    from absolutezero_policy.memory_plan import plan_memory

    return plan_memory(arch, gpu_memory_gb=1000.0, compute_dtype_bytes=4, backend="hf", **settings)


def _gap(measured: float, predicted: float) -> str:
    return f"{(predicted - measured) / measured:+.0%}" if measured else "n/a"


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", default="embedded", help="model name or folder (default: embedded 0.5B)")
    parser.add_argument("--ranks", type=int, nargs="*", default=[1, 2], help="torchrun sizes for the state")
    parser.add_argument("--trainable-layers", type=int, default=0, help="0 = every block (the paper)")
    parser.add_argument("--tokens", type=int, default=4096, help="sequence length for activations (0 = skip)")
    args = parser.parse_args(argv)

    from absolutezero_policy.memory_plan import resolve_architecture

    arch = resolve_architecture(args.model)
    print(f"model {arch.name}: {arch.num_layers} blocks, hidden {arch.hidden_size}, vocab {arch.vocab_size}; "
          f"trainable_layers={args.trainable_layers}; fp32; {time.strftime('%Y-%m-%d %H:%M')}")
    print("\n1. training state per rank (GB): measured / planner (gap)")
    print(f"{'strategy':8} {'N':>2} {'weights':>22} {'gradients':>22} {'AdamW':>22} {'total':>22} {'peak RSS':>9}")
    runs = [("ddp", 1)] + [("fsdp2", n) for n in args.ranks]
    for strategy, ranks in runs:
        per_rank = measure_state(args.model, strategy, ranks, args.trainable_layers)
        plan = _plan(arch, gpus=ranks, strategy=strategy, trainable_layers=args.trainable_layers)
        worst = max(per_rank, key=lambda r: r["weights"] + r["gradients"] + r["optimizer"])
        cells = []
        for key, predicted in (("weights", plan.weights), ("gradients", plan.gradients), ("optimizer", plan.optimizer)):
            cells.append(f"{worst[key] / GB:6.3f} / {predicted / GB:6.3f} ({_gap(worst[key], predicted)})")
        measured_total = worst["weights"] + worst["gradients"] + worst["optimizer"]
        predicted_total = plan.weights + plan.gradients + plan.optimizer
        cells.append(f"{measured_total / GB:6.3f} / {predicted_total / GB:6.3f} ({_gap(measured_total, predicted_total)})")
        rss = max(r["peak_rss"] for r in per_rank)
        print(f"{strategy:8} {ranks:>2} " + " ".join(f"{c:>22}" for c in cells) + f" {rss / GB:8.2f}")
    if args.tokens:
        print(f"\n2. activations of one {args.tokens}-token sequence (GB): measured / planner (gap)")
        full = measure_activations(args.model, args.tokens, args.trainable_layers, False)
        ckpt = measure_activations(args.model, args.tokens, args.trainable_layers, True)
        trained_blocks = args.trainable_layers or arch.num_layers
        ckpt_peak = ckpt["saved"] + full["saved"] / trained_blocks
        plan = _plan(arch, gpus=1, strategy="ddp", trainable_layers=args.trainable_layers,
                     tokens_per_micro_batch=args.tokens, completion_tokens=256)
        print(f"  without checkpointing: {full['saved'] / GB:7.3f} / {plan.activations_full / GB:7.3f} "
              f"({_gap(full['saved'], plan.activations_full)}); forward {full['forward_s']:.1f} s, "
              f"backward {full['backward_s']:.1f} s")
        print(f"  with checkpointing:    {ckpt_peak / GB:7.3f} / {plan.activations_checkpointed / GB:7.3f} "
              f"({_gap(ckpt_peak, plan.activations_checkpointed)}); forward {ckpt['forward_s']:.1f} s, "
              f"backward {ckpt['backward_s']:.1f} s (recomputes the blocks)")
        print(f"  saving: {1 - ckpt_peak / full['saved']:.0%} of the activation memory")


if __name__ == "__main__":
    if len(sys.argv) > 1 and sys.argv[1] == "--worker-state":
        worker_state(*sys.argv[2:4], int(sys.argv[4]), sys.argv[5])
    else:
        main()
