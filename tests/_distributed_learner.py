"""One learner step on a fixed batch, in as many processes as ``torchrun`` starts.

Run by tests/test_distributed.py (``torchrun --nproc_per_node=N tests/_distributed_learner.py
<model dir> <out file>``, or plain ``python`` for one process). The batch and its
advantages come from a local seeded generator, so every process builds the same global
batch; rank 0 saves the parameters after the step and the step's metrics.
"""

from __future__ import annotations

import json
import sys

import torch


def main(model_dir: str, out: str) -> None:
    from transformers import AutoModelForCausalLM

    from absolutezero.distributed import Group
    from absolutezero.protocol import Sample
    from absolutezero_policy.learner import Learner

    group = Group.from_environment()
    model = AutoModelForCausalLM.from_pretrained(model_dir, dtype=torch.float32)
    learner = Learner(
        model, pad_token_id=0, learning_rate=1e-3, weight_decay=0.0, grad_clip=1.0,
        clip_ratio=0.2, micro_batch=2, autocast_bf16=False, group=group,
    )
    generator = torch.Generator().manual_seed(7)
    vocab = model.config.vocab_size
    samples, advantages = [], []
    for index in range(11):  # odd, so the two shares differ in size
        prompt = torch.randint(1, vocab, (3 + index % 4,), generator=generator).tolist()
        completion = torch.randint(1, vocab, (2 + index % 5,), generator=generator).tolist()
        # behaviour logprobs a little off the model's, so ratios and clipping are exercised
        logprobs = (-torch.rand(len(completion), generator=generator) * 12).tolist()
        samples.append(Sample(prompt_ids=prompt, completion_ids=completion, logprobs=logprobs, text=""))
        advantages.append(0.0 if index == 4 else float(torch.randn(1, generator=generator)))
    metrics = learner.step(samples, advantages)
    if group.is_main:
        torch.save({name: p.detach().clone() for name, p in model.named_parameters()}, out)
        with open(out + ".json", "w", encoding="utf-8") as handle:
            json.dump(metrics, handle)
    group.barrier()
    group.close()


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2])
