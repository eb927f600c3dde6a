"""Saving and restoring the policy's training state, sharded or not, on any number of ranks.

Two things are written into an agent folder, for two readers:

* ``train_state/``: the model and AdamW state through ``torch.distributed.checkpoint``
  (DCP). Every rank writes its own shards (with FSDP2) or the replicated tensors once
  (DCP de-duplicates replicas), and DCP reshards on load, so a run saved on N ranks
  resumes on M (2 -> 1, 1 -> 2, ``ddp`` <-> ``fsdp2``). The state dicts come from
  ``torch.distributed.checkpoint.state_dict``, which names optimizer state by parameter
  name, not by position.
* a Hugging Face export (``config.json``, safetensors, and an index when there are
  several files) for ``from_pretrained``, vLLM and ``absolutezero.evaluate``. It is
  gathered one file's worth of parameters at a time and written by rank 0, so no rank
  ever holds the whole model unsharded.

One process needs no process group: DCP then reads and writes without collectives.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import torch

from absolutezero.distributed import Group
from absolutezero_policy.sharding import is_sharded

TRAIN_STATE_DIR = "train_state"
INDEX_FILE = "model.safetensors.index.json"
SINGLE_FILE = "model.safetensors"
#: Largest safetensors file of an export (transformers' own default is 5 GB); also the
#: most that rank 0 holds gathered at once.
MAX_SHARD_BYTES = 2 * 2**30


def save_train_state(folder: Path, model: torch.nn.Module, optimizer: torch.optim.Optimizer) -> None:
    """Every rank writes its part of the model and optimizer state into ``folder``."""
    import torch.distributed.checkpoint as dcp
    from torch.distributed.checkpoint.state_dict import get_state_dict

    model_state, optim_state = get_state_dict(model, optimizer)
    dcp.save({"model": model_state, "optim": optim_state}, checkpoint_id=str(folder))


def load_train_state(folder: Path, model: torch.nn.Module, optimizer: torch.optim.Optimizer) -> None:
    """Load ``folder`` (written by :func:`save_train_state` on any number of ranks) into
    this rank's (sharded or whole) model and optimizer."""
    import torch.distributed.checkpoint as dcp
    from torch.distributed.checkpoint.state_dict import get_state_dict, set_state_dict

    model_state, optim_state = get_state_dict(model, optimizer)
    state = {"model": model_state, "optim": optim_state}
    dcp.load(state, checkpoint_id=str(folder))
    set_state_dict(model, optimizer, model_state_dict=state["model"], optim_state_dict=state["optim"])


def _file_plan(model: torch.nn.Module, max_bytes: int) -> list[list[tuple[str, torch.nn.Parameter]]]:
    """Parameters (tied ones once) in order, grouped into files of at most ``max_bytes``
    (a parameter larger than that gets a file of its own)."""
    files: list[list[tuple[str, torch.nn.Parameter]]] = [[]]
    size = 0
    for name, parameter in model.named_parameters():
        nbytes = parameter.numel() * parameter.element_size()  # the global shape for a DTensor
        if files[-1] and size + nbytes > max_bytes:
            files.append([])
            size = 0
        files[-1].append((name, parameter))
        size += nbytes
    return files


def export_pretrained(
    folder: Path, model: Any, group: Group, *, max_shard_bytes: int = MAX_SHARD_BYTES
) -> None:
    """Write ``model`` as a ``from_pretrained`` folder (config, safetensors, index).

    Every rank must call this (sharded parameters are all-gathered file by file); only
    rank 0 writes. The tokenizer is the caller's.
    """
    from safetensors.torch import save_file

    plan = _file_plan(model, max_shard_bytes)
    names = [SINGLE_FILE] if len(plan) == 1 else [
        f"model-{i + 1:05d}-of-{len(plan):05d}.safetensors" for i in range(len(plan))
    ]
    weight_map: dict[str, str] = {}
    total = 0
    for file_name, entries in zip(names, plan):
        tensors: dict[str, torch.Tensor] = {}
        for name, parameter in entries:
            tensor = parameter.detach()
            if is_sharded(tensor):
                tensor = tensor.full_tensor()  # collective: every rank, same order
            if group.is_main:
                tensors[name] = tensor.to("cpu").contiguous()
                weight_map[name] = file_name
                total += tensor.numel() * tensor.element_size()
        if group.is_main:
            save_file(tensors, str(folder / file_name), metadata={"format": "pt"})
        del tensors
    if group.is_main:
        model.config.save_pretrained(folder)
        generation_config = getattr(model, "generation_config", None)
        if generation_config is not None:
            generation_config.save_pretrained(folder)
        if len(plan) > 1:
            index = {"metadata": {"total_size": total}, "weight_map": weight_map}
            (folder / INDEX_FILE).write_text(json.dumps(index, indent=2, sort_keys=True), encoding="utf-8")
