"""How the training state is laid out over the ranks: replicas (``ddp``) or FSDP2 shards.

Why two strategies: ``ddp`` (every rank holds the whole fp32 model, its gradients and
AdamW state, and gradients are all-reduced) is the simplest and fastest layout when it
fits; it is the CPU default. The paper's 3B and 7B recipes do not fit an 80 GB GPU that
way (16 bytes per parameter before activations), so ``fsdp2`` uses torch's own
``fully_shard``: one unit per decoder block plus the root, so weights, gradients and AdamW
state are divided N ways and each block is all-gathered only while it computes.

FSDP2 needs a process group even for one process; :func:`ensure_process_group` makes a
one-rank gloo group then, so one process and N run the same code.

Gradient reduction: the learner divides every rank's loss by the *global* token count,
so the gradient of the batch is the *sum* over ranks. FSDP2's reduce-scatter averages;
the learner multiplies its loss by N under ``fsdp2`` rather than setting FSDP2's divide
factor to 1, because that becomes a ``PREMUL_SUM`` reduction, which gloo (CPU) refuses.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import torch

from absolutezero_policy.trainable import decoder_layers

STRATEGIES = ("ddp", "fsdp2")


def ensure_process_group() -> bool:
    """Make sure torch.distributed is initialised: the group ``torchrun`` described in the
    environment, or else a one-rank gloo group. True if a one-rank group was made here
    (its owner destroys it)."""
    import torch.distributed as dist

    from absolutezero.distributed import Group

    if dist.is_initialized() or Group.from_environment().size > 1:
        return False
    dist.init_process_group(backend="gloo", store=dist.HashStore(), rank=0, world_size=1)
    return True


def shard(
    root: torch.nn.Module, lm: torch.nn.Module, *, device: torch.device, bf16_compute: bool, cpu_offload: bool
) -> None:
    """``fully_shard`` each decoder block of ``lm``, then ``root`` (the module whose forward
    the learner calls; it owns the embeddings, final norm and output head).

    Args:
        device: the rank's compute device (``cpu`` or ``cuda:k``).
        bf16_compute: FSDP2 mixed precision, bf16 parameters in compute and fp32 gradient
            reduction, over fp32 master shards.
        cpu_offload: keep the sharded parameters (and so the AdamW state built on them)
            in CPU memory; FSDP2 copies each block to the device for its computation.
    """
    import torch.distributed as dist
    from torch.distributed.device_mesh import init_device_mesh
    from torch.distributed.fsdp import CPUOffloadPolicy, MixedPrecisionPolicy, fully_shard

    mesh = init_device_mesh(device.type, (dist.get_world_size(),))
    options: dict[str, Any] = {"mesh": mesh}
    if bf16_compute:
        options["mp_policy"] = MixedPrecisionPolicy(param_dtype=torch.bfloat16, reduce_dtype=torch.float32)
    if cpu_offload:
        options["offload_policy"] = CPUOffloadPolicy()
    for block in decoder_layers(lm):
        fully_shard(block, **options)
    fully_shard(root, **options)


def is_sharded(tensor: torch.Tensor) -> bool:
    from torch.distributed.tensor import DTensor

    return isinstance(tensor, DTensor)


def full_parameters(
    model: torch.nn.Module, dtype: torch.dtype | None = None, trained_only: bool = False,
) -> Iterator[tuple[str, torch.Tensor]]:
    """``(name, full tensor)`` for every parameter of ``model`` (``trained_only``: those
    with ``requires_grad``), gathered one at a time.

    A sharded parameter is all-gathered (a collective: every rank must consume this
    iterator to the end, in the same order) and cast to ``dtype`` if given, so no rank
    ever holds more than one full parameter beyond its own shards. Tied parameters appear
    once, under their first name (as ``named_parameters`` lists them).
    """
    for name, parameter in model.named_parameters():
        if trained_only and not parameter.requires_grad:
            continue
        tensor = parameter.detach()
        if dtype is not None:  # cast the shard first: the gathered copy is then the small one
            tensor = tensor.to(dtype)
        if is_sharded(tensor):
            tensor = tensor.full_tensor()
        yield name, tensor


def scalar(value: Any) -> float:
    """A Python float from a tensor that may be a replicated DTensor (e.g. a grad norm)."""
    if is_sharded(value):
        value = value.full_tensor()
    return float(value)


def local_bytes(tensors: Iterator[torch.Tensor] | list[torch.Tensor]) -> int:
    """Bytes this rank holds for ``tensors`` (a DTensor counts its local shard)."""
    total = 0
    for tensor in tensors:
        if tensor is None:
            continue
        local = tensor.to_local() if is_sharded(tensor) else tensor
        total += local.numel() * local.element_size()
    return total
