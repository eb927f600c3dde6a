"""One rank of the colocated vLLM test (tests/test_vllm_colocate.py), started by torchrun:

    torchrun --standalone --nproc_per_node=2 tests/vllm_colocate_script.py MODEL_DIR OUT_DIR

What a trainer rank does, in its order: join torchrun's process group (gloo) first, then
build a VLLMBackend, which must join that group as one ``external_launcher`` engine per
rank; generate this rank's share of a batch (strided, as ``Group.map`` splits it) with
per-row seeds; shard a perturbed copy of the model with FSDP2 (``fully_shard`` per decoder
block) and push it into the sleeping engine through a generator that gathers one parameter
at a time (a collective on every rank); score with the engine; close the engine and check
the trainer's group survived. Each rank writes what it saw to OUT_DIR/rank<N>.json; the
test asserts on those files.
"""

from __future__ import annotations

import copy
import json
import sys
import time
from pathlib import Path

import torch

#: Small, fixed engine memory (as tests/test_vllm_backend.py).
ENGINE_OPTIONS = {"kv_cache_memory_bytes": 128 * 2**20, "enforce_eager": True}
#: Five prompts of different lengths: rank 0 generates three, rank 1 two.
PROMPTS = [list(range(1000 + 7 * i, 1012 + 8 * i)) for i in range(5)]
SEEDS = [101, 202, 303, 404, 505]


def hf_logprobs(model: torch.nn.Module, prompt: list[int], completion: list[int]) -> torch.Tensor:
    with torch.no_grad():
        logits = model(torch.tensor([prompt + completion])).logits[0].float()
    logprobs = torch.log_softmax(logits[len(prompt) - 1 : -1], dim=-1)
    return logprobs.gather(-1, torch.tensor(completion)[:, None]).squeeze(-1)


def hf_greedy(model: torch.nn.Module, prompt: list[int], steps: int) -> list[int]:
    ids = list(prompt)
    with torch.no_grad():
        for _ in range(steps):
            ids.append(int(model(torch.tensor([ids])).logits[0, -1].argmax()))
    return ids[len(prompt) :]


def main(model_dir: str, out_dir: str) -> None:
    from absolutezero.distributed import Group

    group = Group.from_environment()  # the trainer's process group, before any engine
    import torch.distributed as dist
    from torch.distributed.fsdp import fully_shard
    from torch.multiprocessing.reductions import StorageWeakRef
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from absolutezero_policy.vllm_backend import VLLMBackend

    tokenizer = AutoTokenizer.from_pretrained(model_dir)
    model = AutoModelForCausalLM.from_pretrained(model_dir, dtype=torch.float32)
    model.eval()
    settings = dict(
        stop_token_ids=[tokenizer.eos_token_id], stop_strings=[], max_new_tokens=8, temperature=1.0,
        top_p=1.0, dtype="float32", seed=0, batch_size=8,
    )
    result: dict = {"rank": group.rank, "size": group.size}

    # A tensor-parallel engine would need the same prompts on every rank: refused up front.
    try:
        VLLMBackend(model_dir, tokenizer, **settings, engine_options={**ENGINE_OPTIONS, "tensor_parallel_size": 2})
    except ValueError as error:
        result["tensor_parallel_error"] = str(error)

    started = time.perf_counter()
    backend = VLLMBackend(model_dir, tokenizer, **settings, engine_options=dict(ENGINE_OPTIONS))
    result["start_seconds"] = time.perf_counter() - started
    from vllm.distributed import parallel_state

    result["executor"] = backend.engine.llm_engine.vllm_config.parallel_config.distributed_executor_backend
    result["vllm_world_size"] = parallel_state.get_world_group().world_size
    result["vllm_tp_size"] = parallel_state.get_tp_group().world_size
    result["vllm_dp_size"] = parallel_state.get_dp_group().world_size

    # This rank's share of the batch, with the rows' own seeds.
    mine = list(group.indices(len(PROMPTS)))
    samples = backend.generate([PROMPTS[i] for i in mine], greedy=False, seeds=[SEEDS[i] for i in mine])
    result["share"] = mine
    result["completions"] = {i: s.completion_ids for i, s in zip(mine, samples)}
    result["logprob_gap"] = max(
        float((torch.tensor(s.logprobs) - hf_logprobs(model, PROMPTS[i], s.completion_ids)).abs().max())
        for i, s in zip(mine, samples)
    )
    # The other rank's share, generated here too (so the ranks make different numbers of
    # engine calls): a completion depends on its prompt and seed, not on the rank.
    shares = group.all_gather(result["completions"])
    others = [i for i in range(len(PROMPTS)) if i not in mine]
    again = backend.generate([PROMPTS[i] for i in others], greedy=False, seeds=[SEEDS[i] for i in others])
    theirs = {int(k): v for share in shares for k, v in share.items()}
    result["other_share_reproduced"] = all(theirs[i] == s.completion_ids for i, s in zip(others, again))

    # An "update": perturb every weight (tied embedding included), the same on every rank,
    # keep an unsharded reference, then shard the trainer's copy with FSDP2.
    with torch.no_grad():
        noise = torch.Generator().manual_seed(7)
        for parameter in model.parameters():
            parameter.add_(torch.randn(parameter.shape, generator=noise) * 0.05)
    reference = copy.deepcopy(model)
    for layer in model.model.layers:
        fully_shard(layer)
    fully_shard(model)
    result["sharded"] = all(type(p).__name__ == "DTensor" for p in model.parameters())

    prompt, fixed = PROMPTS[mine[0]], samples[0].completion_ids
    before = torch.tensor(backend.score(prompt, fixed))

    backend.sleep()
    result["asleep"] = backend.asleep
    result["discards_weights"] = backend.discards_weights
    try:
        backend.generate([prompt], greedy=True, seeds=[0])
    except RuntimeError as error:
        result["asleep_generate_error"] = str(error)

    # The block-wise gather: one collective per parameter, each full tensor handed on at
    # once. Count how many gathered tensors are still alive at each step.
    alive: list = []
    counts = {"yielded": 0, "max_alive": 0}

    def gathered():
        with torch.no_grad():
            for name, parameter in model.named_parameters():
                full = parameter.full_tensor()  # all-gather on every rank
                alive[:] = [ref for ref in alive if not ref.expired()]
                counts["max_alive"] = max(counts["max_alive"], len(alive))
                alive.append(StorageWeakRef(full.untyped_storage()))
                counts["yielded"] += 1
                yield name, full

    started = time.perf_counter()
    backend.wake_up(gathered())
    result["push_seconds"] = time.perf_counter() - started
    result["pushed"] = counts["yielded"]
    result["parameters"] = len(list(reference.named_parameters()))
    result["max_gathered_alive"] = counts["max_alive"]
    result["awake"] = not backend.asleep

    after = torch.tensor(backend.score(prompt, fixed))
    expected = hf_logprobs(reference, prompt, fixed)
    result["score_moved"] = float((after - before).abs().max())
    result["score_gap"] = float((after - expected).abs().max())
    greedy = backend.generate([prompt], greedy=True, seeds=[0])[0].completion_ids
    result["greedy_matches"] = greedy == hf_greedy(reference, prompt, len(greedy))

    # A push that fails on one rank only (rank 1 yields a tensor of the wrong shape): that
    # rank raises, but only after it has taken part in every gather, so neither rank hangs.
    counts["yielded"] = 0

    def broken():
        for index, (name, parameter) in enumerate(model.named_parameters()):
            full = parameter.full_tensor()
            counts["yielded"] += 1
            yield name, (full[:1] if group.rank == 1 and index == 2 else full)

    try:
        backend.sync_weights(broken())
        result["bad_push_error"] = None
    except Exception as error:  # noqa: BLE001 - reported to the test
        result["bad_push_error"] = f"{type(error).__name__}: {error}"[:300]
    result["bad_push_gathers"] = counts["yielded"]
    group.barrier()

    # The engine goes, the trainer's group stays.
    backend.close()
    result["group_initialised_after_close"] = dist.is_initialized()
    group.barrier()
    total = torch.ones(1)
    dist.all_reduce(total)
    result["all_reduce_after_close"] = float(total)
    Path(out_dir, f"rank{group.rank}.json").write_text(json.dumps(result, indent=2))
    group.close()


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2])
