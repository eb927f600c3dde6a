"""The fused head node (absolutezero_policy.head_logprobs) against the plain ops it
replaces: ``log_softmax(head(h).float()).gather(target)``, in fp32 and under bf16 autocast,
same values and same gradients of the hidden states and of the head, to rounding."""

from __future__ import annotations

import contextlib

import pytest

torch = pytest.importorskip("torch")

from absolutezero_policy.head_logprobs import HeadWorkspace, compute_dtype, fusable, target_logprobs  # noqa: E402

VOCAB, HIDDEN = 503, 48


def setup(seed: int, rows: int = 3, positions: int = 7):
    generator = torch.Generator().manual_seed(seed)
    head = torch.nn.Linear(HIDDEN, VOCAB, bias=False)
    with torch.no_grad():
        head.weight.copy_(torch.randn(VOCAB, HIDDEN, generator=generator) * 0.2)
    hidden = torch.randn(rows, positions, HIDDEN, generator=generator, requires_grad=True)
    targets = torch.randint(0, VOCAB, (rows, positions), generator=generator)
    upstream = torch.randn(rows, positions, generator=generator)  # a loss's per-token weights
    return head, hidden, targets, upstream


def plain(head, hidden, targets):
    logits = head(hidden).float()
    return logits.log_softmax(-1).gather(-1, targets[..., None]).squeeze(-1)


def values_and_grads(fn, head, hidden, targets, upstream, autocast: bool, space: HeadWorkspace | None = None):
    """Values and gradients of ``fn``; with ``space``, forward and backward inside its
    ``reusing()`` (as in an update), the gradients read after it ends."""
    head.zero_grad(set_to_none=True)
    hidden.grad = None
    with space.reusing() if space is not None else contextlib.nullcontext():
        with torch.autocast("cpu", dtype=torch.bfloat16, enabled=autocast):
            out = fn(head, hidden, targets)
        (out * upstream).sum().backward()
    return out.detach(), hidden.grad.clone(), head.weight.grad.clone()


def relative(a: torch.Tensor, b: torch.Tensor) -> float:
    return float((a - b).norm() / b.norm())


@pytest.mark.parametrize("reuse", [False, True], ids=["per-call", "kept-buffers"])
@pytest.mark.parametrize("autocast, tolerance", [(False, 1e-5), (True, 1e-4)])
def test_values_and_gradients_equal_the_plain_ops(autocast: bool, tolerance: float, reuse: bool) -> None:
    head, hidden, targets, upstream = setup(0)
    space = HeadWorkspace()
    fused = values_and_grads(
        lambda m, h, t: target_logprobs(h, m, t, space), head, hidden, targets, upstream, autocast, space if reuse else None
    )
    reference = values_and_grads(plain, head, hidden, targets, upstream, autocast)
    assert fused[0].dtype == torch.float32 and fused[0].shape == targets.shape
    for got, want in zip(fused, reference):
        assert relative(got, want) < tolerance
    assert head.weight.grad.dtype == torch.float32  # the master's dtype, not bf16


def test_bf16_rounding_is_what_separates_the_paths() -> None:
    """Under autocast the fused node matches the plain bf16 ops far closer than either
    matches fp32: the test above would catch a node that silently computed in fp32."""
    head, hidden, targets, upstream = setup(1)
    space = HeadWorkspace()
    fused = values_and_grads(lambda m, h, t: target_logprobs(h, m, t, space), head, hidden, targets, upstream, True)
    bf16 = values_and_grads(plain, head, hidden, targets, upstream, True)
    fp32 = values_and_grads(plain, head, hidden, targets, upstream, False)
    assert relative(fused[2], bf16[2]) < relative(fused[2], fp32[2]) / 10


def test_no_grad_forward_matches() -> None:
    head, hidden, targets, _ = setup(2)
    with torch.no_grad():
        got = target_logprobs(hidden, head, targets, HeadWorkspace())
        want = plain(head, hidden, targets)
    assert not got.requires_grad
    assert torch.allclose(got, want, atol=1e-5)


def test_gradients_accumulate_over_calls_like_separate_backwards() -> None:
    """Micro-batches: two backward passes through one reused cast add up their head gradients."""
    head, hidden, targets, upstream = setup(3)
    space = HeadWorkspace()
    head.weight.grad = torch.ones_like(head.weight)  # an earlier gradient is added to, not replaced
    with space.reusing(), torch.autocast("cpu", dtype=torch.bfloat16):
        for half in (slice(0, 1), slice(1, 3)):
            (target_logprobs(hidden[half], head, targets[half], space) * upstream[half]).sum().backward()
    head.weight.grad -= 1.0
    accumulated = head.weight.grad.clone()
    _, _, whole = values_and_grads(plain, head, hidden, targets, upstream, True)
    assert relative(accumulated, whole) < 1e-2


def test_head_weight_cast_is_reused_only_inside_reusing_and_follows_in_place_changes() -> None:
    weight = torch.nn.Parameter(torch.randn(VOCAB, HIDDEN))
    space = HeadWorkspace()
    assert space.weight(weight, torch.bfloat16) is not space.weight(weight, torch.bfloat16)  # outside: fresh each call
    assert space.weight(weight, torch.float32).data_ptr() == weight.data_ptr()  # no cast needed: the weight itself
    with space.reusing():
        first = space.weight(weight, torch.bfloat16)
        assert space.weight(weight, torch.bfloat16) is first
        with torch.no_grad():
            weight.add_(1.0)  # an optimiser step
        second = space.weight(weight, torch.bfloat16)
        assert second is not first
        assert torch.equal(second, weight.detach().to(torch.bfloat16))
    assert space._cached is None  # nothing held between updates


def test_compute_dtype_follows_autocast() -> None:
    weight = torch.zeros(2, 2)
    assert compute_dtype(weight, "cpu") == torch.float32
    with torch.autocast("cpu", dtype=torch.bfloat16):
        assert compute_dtype(weight, "cpu") == torch.bfloat16


def test_only_bias_free_linear_heads_are_fused() -> None:
    assert fusable(torch.nn.Linear(4, 8, bias=False))
    assert not fusable(torch.nn.Linear(4, 8, bias=True))
    assert not fusable(torch.nn.Embedding(8, 4))


def test_buffers_are_kept_only_inside_reusing_and_grow() -> None:
    space = HeadWorkspace()
    cpu = torch.device("cpu")
    a, b = space.buffer("x", (2, 3), torch.float32, cpu), space.buffer("x", (2, 3), torch.float32, cpu)
    assert a.data_ptr() != b.data_ptr() or a is not b  # outside: new tensors
    with space.reusing():
        first = space.buffer("x", (4, 5), torch.float32, cpu)
        smaller = space.buffer("x", (2, 3), torch.float32, cpu)
        assert smaller.shape == (2, 3) and smaller.data_ptr() == first.data_ptr()
        larger = space.buffer("x", (8, 5), torch.float32, cpu)
        assert larger.shape == (8, 5) and larger.numel() == 40
        assert space.buffer("x", (4, 5), torch.float32, cpu).data_ptr() == larger.data_ptr()
        assert space.buffer("x", (4, 5), torch.bfloat16, cpu).dtype == torch.bfloat16
    assert space._buffers == {}


def test_chunks_sharing_buffers_keep_their_own_gradients() -> None:
    """Two chunks' forwards run before either backward (as in one micro-batch): the kept
    buffers hold only scratch, so each backward still gets its own chunk's gradient."""
    head, hidden, targets, upstream = setup(4, positions=9)
    space = HeadWorkspace()
    with space.reusing():
        with torch.autocast("cpu", dtype=torch.bfloat16):
            out = torch.cat([target_logprobs(hidden[:, s], head, targets[:, s], space) for s in (slice(0, 4), slice(4, 9))], 1)
        (out * upstream).sum().backward()
        assert head.weight.grad is None  # summed in the workspace until the update ends
    fused = (out.detach(), hidden.grad.clone(), head.weight.grad.clone())
    # the plain ops per chunk, each under its own autocast (its own bf16 head copy, so each
    # chunk's head gradient is rounded to bf16 on its own, as in the fused node)
    head.zero_grad(set_to_none=True)
    hidden.grad = None
    pieces = []
    for part in (slice(0, 4), slice(4, 9)):
        with torch.autocast("cpu", dtype=torch.bfloat16):
            pieces.append(plain(head, hidden[:, part], targets[:, part]))
    out = torch.cat(pieces, 1)
    (out * upstream).sum().backward()
    reference = (out.detach(), hidden.grad, head.weight.grad)
    for got, want in zip(fused, reference):
        assert relative(got, want) < 1e-4


def test_without_summing_the_gradient_goes_through_autograd() -> None:
    """FSDP2's hooks must see the head's gradient in the backward pass: with
    ``sum_gradients`` off it reaches ``.grad`` there, inside ``reusing()``."""
    head, hidden, targets, upstream = setup(5)
    space = HeadWorkspace(sum_gradients=False)
    with space.reusing():
        with torch.autocast("cpu", dtype=torch.bfloat16):
            out = target_logprobs(hidden, head, targets, space)
        (out * upstream).sum().backward()
        assert head.weight.grad is not None
        inside = head.weight.grad.clone()
    assert torch.equal(head.weight.grad, inside)  # nothing added again on exit
    _, _, want = values_and_grads(plain, head, hidden, targets, upstream, True)
    assert relative(inside, want) < 1e-4
