"""One learner step on a fixed batch, in as many processes as ``torchrun`` starts.

Run by tests/test_distributed.py and tests/test_fsdp2.py (``torchrun --nproc_per_node=N
tests/_distributed_learner.py <model dir> <out file> [key=value ...]``, or plain ``python``
for one process). The batch and its advantages come from a local seeded generator, so
every process builds the same global batch; after ``steps`` steps (one batch per step)
rank 0 saves the full parameters (gathered when sharded) and the last step's metrics.

Options: ``strategy`` (ddp|fsdp2), ``steps``, ``trainable_layers``, ``checkpointing``
(0|1), ``max_tokens`` (token budget per micro-batch), ``save``/``load`` (a folder for the
agent-format training state after/before the steps), ``first_step`` (the index of the
first step, for a resumed run: step k's batch is seeded with 7 + k).
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import torch


def batch(vocab: int, seed: int) -> tuple[list, list[float]]:
    from absolutezero.protocol import Sample

    generator = torch.Generator().manual_seed(seed)
    samples, advantages = [], []
    for index in range(11):  # odd, so the two shares differ in size
        prompt = torch.randint(1, vocab, (3 + index % 4,), generator=generator).tolist()
        completion = torch.randint(1, vocab, (2 + index % 5,), generator=generator).tolist()
        # behaviour logprobs a little off the model's, so ratios and clipping are exercised
        logprobs = (-torch.rand(len(completion), generator=generator) * 12).tolist()
        samples.append(Sample(prompt_ids=prompt, completion_ids=completion, logprobs=logprobs, text=""))
        advantages.append(0.0 if index == 4 else float(torch.randn(1, generator=generator)))
    return samples, advantages


def main(model_dir: str, out: str, options: dict[str, str]) -> None:
    from transformers import AutoModelForCausalLM

    from absolutezero.distributed import Group
    from absolutezero_policy import sharding, train_state
    from absolutezero_policy.learner import Learner
    from absolutezero_policy.trainable import select_trainable

    strategy = options.get("strategy", "ddp")
    if strategy == "fsdp2":
        sharding.ensure_process_group()
    group = Group.from_environment() if strategy == "ddp" else Group.current()
    model = AutoModelForCausalLM.from_pretrained(model_dir, dtype=torch.float32)
    select_trainable(model, int(options.get("trainable_layers", "0")))
    max_tokens = options.get("max_tokens")
    learner = Learner(
        model, pad_token_id=0, learning_rate=1e-3, weight_decay=0.0, grad_clip=1.0,
        clip_ratio=0.2, micro_batch=2, autocast_bf16=False, group=group, strategy=strategy,
        gradient_checkpointing=options.get("checkpointing", "0") == "1",
        max_tokens_per_micro_batch=int(max_tokens) if max_tokens else None,
        logits_chunk_tokens=int(options.get("logits_chunk", "1024")),
    )
    if options.get("load"):
        train_state.load_train_state(Path(options["load"]), model, learner.optimizer)
    metrics: dict = {}
    first = int(options.get("first_step", "0"))  # a resumed run continues the batch sequence
    for step in range(first, first + int(options.get("steps", "1"))):
        samples, advantages = batch(model.config.vocab_size, seed=7 + step)
        metrics = learner.step(samples, advantages)
    if options.get("save"):
        train_state.save_train_state(Path(options["save"]), model, learner.optimizer)
    full = {name: tensor.clone() for name, tensor in sharding.full_parameters(model)}
    if group.is_main:
        torch.save(full, out)
        with open(out + ".json", "w", encoding="utf-8") as handle:
            json.dump(metrics, handle)
    group.barrier()
    group.close()
    if strategy == "fsdp2" and torch.distributed.is_initialized():
        torch.distributed.destroy_process_group()


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2], dict(arg.split("=", 1) for arg in sys.argv[3:]))
