"""Log-probabilities of target tokens through the output head, one autograd node per chunk.

Why this module exists: the update needs ``log softmax(h @ W.T)[target]`` for every
completion token, where ``W`` is the ``[vocabulary x hidden]`` output head (152k x 896 in
Qwen2.5-0.5B, tied to the input embedding and trained). Written as plain ops under bf16
autocast and activation checkpointing, each logits chunk

* cast the fp32 head to bf16 twice (forward and recomputation) and its gradient back
  once: 22 copies of 136 M elements, 4.8 of a 17 s update in the profile;
* ran the full-vocabulary ``logsumexp`` twice and kept three ``[tokens x vocab]`` fp32
  tensors alive in its backward (logits, ``exp(x - lse)``, the gather's scattered grad).

:func:`target_logprobs` computes the same values with one node: its forward keeps only
the hidden states (in the compute dtype), the targets and the per-token ``lse``; its
backward recomputes the logits once and turns them into their gradient in place
(``-g * softmax``, plus ``g`` at the target). The compute-dtype head comes from a
:class:`HeadCast`, which casts it once per update inside :meth:`HeadCast.reusing` (the
weights do not change between micro-batches) and per call outside it. The arithmetic is
the autocast path's: bf16 matmuls with fp32 accumulation, fp32 softmax, the weight
gradient rounded to bf16 before it is cast to the master's dtype, so the gradients equal
the unfused path's to rounding (``tests/test_head_logprobs.py``).
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

import torch


class HeadCast:
    """The head's weight in the dtype the head's matmul computes in.

    Outside :meth:`reusing` every call casts afresh (nothing stays alive between
    calls); inside, one cast per weight version is reused, so an update of N
    micro-batches casts the head once instead of 2N times.
    """

    def __init__(self) -> None:
        self._reuse = False
        self._cached: tuple[tuple[int, int, torch.dtype], torch.Tensor] | None = None

    @contextlib.contextmanager
    def reusing(self) -> Iterator[None]:
        """Keep one cast while inside (an update's micro-batches); drop it on exit."""
        previous = self._reuse
        self._reuse = True
        try:
            yield
        finally:
            self._reuse = previous
            if not previous:
                self._cached = None

    def __call__(self, weight: torch.Tensor, dtype: torch.dtype) -> torch.Tensor:
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
        targets: torch.Tensor, cast: HeadCast, dtype: torch.dtype,
    ) -> torch.Tensor:
        with torch.autocast(hidden.device.type, enabled=False):
            h = hidden.to(dtype)
            logits = torch.matmul(h, cast(weight, dtype).t()).float()
            lse = torch.logsumexp(logits, dim=-1)
            picked = logits.gather(-1, targets[..., None]).squeeze(-1)
            del logits
        ctx.save_for_backward(h, weight, targets, lse)
        ctx.cast, ctx.dtype, ctx.hidden_dtype = cast, dtype, hidden.dtype
        return picked - lse

    @staticmethod
    def backward(  # type: ignore[override]
        ctx: torch.autograd.function.FunctionCtx, grad: torch.Tensor,
    ) -> tuple[torch.Tensor | None, ...]:
        h, weight, targets, lse = ctx.saved_tensors
        with torch.autocast(h.device.type, enabled=False):
            w = ctx.cast(weight, ctx.dtype)
            grad = grad.float()
            # d/dlogits of (logit[target] - lse) times g: g * (onehot - softmax), in place
            dlogits = torch.matmul(h, w.t()).float()
            dlogits.sub_(lse[..., None]).exp_().mul_(-grad[..., None])
            dlogits.scatter_add_(-1, targets[..., None], grad[..., None])
            dlogits = dlogits.to(ctx.dtype)
            grad_hidden = grad_weight = None
            if ctx.needs_input_grad[0]:
                grad_hidden = torch.matmul(dlogits, w).to(ctx.hidden_dtype)
            if ctx.needs_input_grad[1]:
                flat = dlogits.reshape(-1, dlogits.shape[-1])
                grad_weight = torch.matmul(flat.t(), h.reshape(-1, h.shape[-1])).to(weight.dtype)
        return grad_hidden, grad_weight, None, None, None


def fusable(head: torch.nn.Module) -> bool:
    """Whether ``head`` is a plain bias-free linear map (the fused node's assumption)."""
    return isinstance(head, torch.nn.Linear) and head.bias is None


def target_logprobs(
    hidden: torch.Tensor, head: torch.nn.Linear, targets: torch.Tensor, cast: HeadCast,
) -> torch.Tensor:
    """``log_softmax(head(hidden)).gather(targets)`` as float32 ``[... x positions]``.

    ``hidden``: ``[..., hidden size]``; ``targets``: the token ids, same leading shape.
    Memory between forward and backward: ``hidden`` in the compute dtype and one float
    per position; the ``[positions x vocab]`` logits exist only inside each call.
    """
    weight = head.weight
    return _TargetLogprobs.apply(hidden, weight, targets, cast, compute_dtype(weight, hidden.device.type))
