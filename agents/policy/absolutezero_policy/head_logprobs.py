"""Log-probabilities of target tokens through the output head, one autograd node per chunk.

Why this module exists: the update needs ``log softmax(h @ W.T)[target]`` for every
completion token, where ``W`` is the ``[vocabulary x hidden]`` output head (152k x 896 in
the embedded Qwen2.5-Coder-0.5B, trained with the top blocks). Written as plain ops under bf16
autocast and activation checkpointing, each logits chunk

* cast the fp32 head to bf16 twice (forward and recomputation) and its gradient back
  once: 22 copies of 136 M elements, 4.8 of a 17 s update in the profile;
* ran the full-vocabulary ``logsumexp`` twice and kept three ``[tokens x vocab]`` fp32
  tensors alive in its backward (logits, ``exp(x - lse)``, the gather's scattered grad).

:func:`target_logprobs` computes the same values with one node: its forward keeps only
the hidden states (in the compute dtype), the targets and the per-token ``lse``; its
backward recomputes the logits once and turns them into their gradient in place
(``-g * softmax``, plus ``g`` at the target). A :class:`HeadWorkspace` supplies the
compute-dtype head, cast once per update inside :meth:`HeadWorkspace.reusing` (the
weights do not change between micro-batches), and on a CPU the big scratch tensors,
kept for the update instead of allocated per chunk. The arithmetic is
the autocast path's: bf16 matmuls with fp32 accumulation, fp32 softmax, the weight
gradient rounded to bf16 before it is cast to the master's dtype, so the gradients equal
the unfused path's to rounding (``tests/test_head_logprobs.py``).
"""

from __future__ import annotations

import contextlib
import math
from collections.abc import Iterator, Sequence

import torch


class HeadWorkspace:
    """The head's weight in the compute dtype, and reusable scratch tensors, per update.

    Outside :meth:`reusing` every call casts afresh and every buffer is a new tensor
    (nothing stays alive between calls). Inside, one cast per weight version is reused,
    so an update of N micro-batches casts the head once instead of 2N times; and on a
    CPU the ``[positions x vocab]`` logits and the head-sized gradient are written into
    buffers kept for the whole update: torch's CPU tensors come from ``malloc``, which
    hands out blocks of 32 MB or more as fresh pages each time, and the page faults cost
    more than the arithmetic (a bf16 -> fp32 copy of ``[800 x 151,936]``: 150 ms into new
    memory, 40 ms into reused memory, 2026-12-06). On a GPU torch's caching allocator
    already reuses memory, so no buffers are kept there.
    """

    def __init__(self, sum_gradients: bool = True) -> None:
        #: whether :meth:`take_grad` may sum the head's gradient itself (off under FSDP2,
        #: whose hooks must see every gradient to reduce-scatter it)
        self.sum_gradients = sum_gradients
        self._reuse = False
        self._cached: tuple[tuple[int, int, torch.dtype], torch.Tensor] | None = None
        self._buffers: dict[str, torch.Tensor] = {}
        self._grad_sum: tuple[torch.Tensor, torch.Tensor] | None = None  # (weight, its summed gradient)

    @contextlib.contextmanager
    def reusing(self) -> Iterator[None]:
        """Keep one cast and the buffers while inside (an update's micro-batches); drop them on exit."""
        previous = self._reuse
        self._reuse = True
        try:
            yield
        finally:
            self._reuse = previous
            if not previous:
                self._cached = None
                self._buffers = {}
                self._flush_grad()

    def take_grad(self, weight: torch.Tensor, product: torch.Tensor) -> bool:
        """Inside :meth:`reusing` on a CPU: add ``product`` (the head's gradient from one
        chunk, in any float dtype) to a float32 sum that reaches ``weight.grad`` when the
        update's :meth:`reusing` ends; True when taken (the node then returns no
        gradient for the weight). Returned through autograd instead, each chunk's
        gradient would be a new head-sized float32 tensor, cast and then added into
        ``.grad`` (0.35-0.45 s per micro-batch on the project's VM)."""
        if not (self._reuse and self.sum_gradients) or weight.device.type != "cpu":
            return False
        if self._grad_sum is None:
            self._grad_sum = (weight, product.to(weight.dtype, copy=product.dtype == weight.dtype))
        elif self._grad_sum[0] is weight:
            self._grad_sum[1].add_(product)
        else:
            return False  # a second trained head: autograd sums its gradient as usual
        return True

    def _flush_grad(self) -> None:
        if self._grad_sum is None:
            return
        weight, total = self._grad_sum
        self._grad_sum = None
        if weight.grad is None:
            weight.grad = total
        else:
            weight.grad.add_(total)

    def weight(self, weight: torch.Tensor, dtype: torch.dtype) -> torch.Tensor:
        """``weight`` in ``dtype``, detached (the node returns the weight's gradient itself)."""
        if weight.dtype == dtype:
            return weight.detach()
        if not self._reuse:
            return weight.detach().to(dtype)
        # the version counter moves with every in-place change (an optimiser step)
        key = (weight.data_ptr(), weight._version, dtype)
        if self._cached is None or self._cached[0] != key:
            self._cached = None  # free the stale copy before making the new one
            self._cached = (key, weight.detach().to(dtype))
        return self._cached[1]

    def keeps(self, device: torch.device) -> bool:
        """Whether :meth:`buffer` hands out kept buffers (inside :meth:`reusing`, on a CPU)."""
        return self._reuse and device.type == "cpu"

    def buffer(self, name: str, shape: Sequence[int], dtype: torch.dtype, device: torch.device) -> torch.Tensor:
        """An uninitialised ``shape`` tensor: a view of the kept buffer ``name`` inside
        :meth:`reusing` on a CPU (grown when too small), else a new tensor. A caller
        overwrites it whole, and does not use it after the next call for ``name``."""
        if not self.keeps(device):
            return torch.empty(shape, dtype=dtype, device=device)
        numel = math.prod(shape)
        kept = self._buffers.get(name)
        if kept is None or kept.numel() < numel or kept.dtype != dtype or kept.device != device:
            self._buffers.pop(name, None)  # free the small one before the larger one exists
            kept = self._buffers[name] = torch.empty(numel, dtype=dtype, device=device)
        return kept[:numel].view(shape)


def compute_dtype(weight: torch.Tensor, device_type: str) -> torch.dtype:
    """The dtype the head's matmul runs in: autocast's where it is on, else the weight's."""
    if torch.is_autocast_enabled(device_type):
        return torch.get_autocast_dtype(device_type)
    return weight.dtype


class _TargetLogprobs(torch.autograd.Function):
    """``log_softmax(hidden @ W.T)[target]`` with one recomputation of the logits in backward."""

    @staticmethod
    def forward(  # type: ignore[override]
        ctx: torch.autograd.function.FunctionCtx, hidden: torch.Tensor, weight: torch.Tensor,
        targets: torch.Tensor, space: HeadWorkspace, dtype: torch.dtype,
    ) -> torch.Tensor:
        with torch.autocast(hidden.device.type, enabled=False):
            h = hidden.to(dtype)
            logits = _logits_fp32(h, space.weight(weight, dtype), space)
            picked = logits.gather(-1, targets[..., None]).squeeze(-1)
            # logsumexp in place (torch.logsumexp would allocate two more [positions x vocab])
            top = logits.amax(dim=-1, keepdim=True)
            lse = logits.sub_(top).exp_().sum(dim=-1).log_().add_(top.squeeze(-1))
        ctx.save_for_backward(h, weight, targets, lse)
        ctx.space, ctx.dtype, ctx.hidden_dtype = space, dtype, hidden.dtype
        return picked - lse

    @staticmethod
    def backward(  # type: ignore[override]
        ctx: torch.autograd.function.FunctionCtx, grad: torch.Tensor,
    ) -> tuple[torch.Tensor | None, ...]:
        h, weight, targets, lse = ctx.saved_tensors
        space: HeadWorkspace = ctx.space
        with torch.autocast(h.device.type, enabled=False):
            w = space.weight(weight, ctx.dtype)
            grad = grad.float()
            # d/dlogits of (logit[target] - lse) times g: g * (onehot - softmax), in place
            dlogits = _logits_fp32(h, w, space)
            dlogits.sub_(lse[..., None]).exp_().mul_(-grad[..., None])
            dlogits.scatter_add_(-1, targets[..., None], grad[..., None])
            if dlogits.dtype == ctx.dtype:
                low = dlogits
            else:  # the bf16 buffer is free again: the logits are in the float32 one
                low = space.buffer("logits_low", dlogits.shape, ctx.dtype, h.device).copy_(dlogits)
            del dlogits
            grad_hidden = grad_weight = None
            if ctx.needs_input_grad[0]:
                grad_hidden = torch.matmul(low, w).to(ctx.hidden_dtype)
            if ctx.needs_input_grad[1]:
                flat = low.reshape(-1, low.shape[-1])
                product = space.buffer("head_grad_low", weight.shape, ctx.dtype, h.device)
                torch.mm(flat.t(), h.reshape(-1, h.shape[-1]), out=product)
                if not space.take_grad(weight, product):
                    # never a kept buffer: autograd may keep what a node returns (summed
                    # with other chunks' gradients, or stolen as .grad)
                    grad_weight = product.to(weight.dtype, copy=space.keeps(h.device))
        return grad_hidden, grad_weight, None, None, None


def _logits_fp32(h: torch.Tensor, w: torch.Tensor, space: HeadWorkspace) -> torch.Tensor:
    """``(h @ w.T)`` in ``w``'s dtype (fp32 accumulation), then as a float32 tensor that
    the caller may overwrite (a kept buffer inside an update on a CPU)."""
    shape = (*h.shape[:-1], w.shape[0])
    low = space.buffer("logits_low", shape, w.dtype, h.device)
    torch.mm(h.reshape(-1, h.shape[-1]), w.t(), out=low.view(-1, w.shape[0]))
    if w.dtype == torch.float32:
        return low
    logits = space.buffer("logits", shape, torch.float32, h.device)
    return logits.copy_(low)


def fusable(head: torch.nn.Module) -> bool:
    """Whether ``head`` is a plain bias-free linear map (the fused node's assumption)."""
    return isinstance(head, torch.nn.Linear) and head.bias is None


def target_logprobs(
    hidden: torch.Tensor, head: torch.nn.Linear, targets: torch.Tensor, space: HeadWorkspace,
) -> torch.Tensor:
    """``log_softmax(head(hidden)).gather(targets)`` as float32 ``[... x positions]``.

    ``hidden``: ``[..., hidden size]``; ``targets``: the token ids, same leading shape.
    Memory between forward and backward: ``hidden`` in the compute dtype and one float
    per position; the ``[positions x vocab]`` logits exist only inside each call.
    """
    weight = head.weight
    return _TargetLogprobs.apply(hidden, weight, targets, space, compute_dtype(weight, hidden.device.type))
