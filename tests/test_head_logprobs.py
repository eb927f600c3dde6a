"""The fused head node (absolutezero_policy.head_logprobs) against the plain ops it
replaces: ``log_softmax(head(h).float()).gather(target)``, in fp32 and under bf16 autocast,
same values and same gradients of the hidden states and of the head, to rounding."""

from __future__ import annotations

import pytest

torch = pytest.importorskip("torch")

from absolutezero_policy.head_logprobs import HeadCast, compute_dtype, fusable, target_logprobs  # noqa: E402

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


def values_and_grads(fn, head, hidden, targets, upstream, autocast: bool):
    head.zero_grad(set_to_none=True)
    hidden.grad = None
    with torch.autocast("cpu", dtype=torch.bfloat16, enabled=autocast):
        out = fn(head, hidden, targets)
    (out * upstream).sum().backward()
    return out.detach(), hidden.grad.clone(), head.weight.grad.clone()


def relative(a: torch.Tensor, b: torch.Tensor) -> float:
    return float((a - b).norm() / b.norm())


@pytest.mark.parametrize("autocast, tolerance", [(False, 1e-5), (True, 1e-4)])
def test_values_and_gradients_equal_the_plain_ops(autocast: bool, tolerance: float) -> None:
    head, hidden, targets, upstream = setup(0)
    cast = HeadCast()
    fused = values_and_grads(lambda m, h, t: target_logprobs(h, m, t, cast), head, hidden, targets, upstream, autocast)
    reference = values_and_grads(plain, head, hidden, targets, upstream, autocast)
    assert fused[0].dtype == torch.float32 and fused[0].shape == targets.shape
    for got, want in zip(fused, reference):
        assert relative(got, want) < tolerance
    assert head.weight.grad.dtype == torch.float32  # the master's dtype, not bf16


def test_bf16_rounding_is_what_separates_the_paths() -> None:
    """Under autocast the fused node matches the plain bf16 ops far closer than either
    matches fp32: the test above would catch a node that silently computed in fp32."""
    head, hidden, targets, upstream = setup(1)
    cast = HeadCast()
    fused = values_and_grads(lambda m, h, t: target_logprobs(h, m, t, cast), head, hidden, targets, upstream, True)
    bf16 = values_and_grads(plain, head, hidden, targets, upstream, True)
    fp32 = values_and_grads(plain, head, hidden, targets, upstream, False)
    assert relative(fused[2], bf16[2]) < relative(fused[2], fp32[2]) / 10


def test_no_grad_forward_matches() -> None:
    head, hidden, targets, _ = setup(2)
    with torch.no_grad():
        got = target_logprobs(hidden, head, targets, HeadCast())
        want = plain(head, hidden, targets)
    assert not got.requires_grad
    assert torch.allclose(got, want, atol=1e-5)


def test_gradients_accumulate_over_calls_like_separate_backwards() -> None:
    """Micro-batches: two backward passes through one reused cast add up their head gradients."""
    head, hidden, targets, upstream = setup(3)
    cast = HeadCast()
    with cast.reusing(), torch.autocast("cpu", dtype=torch.bfloat16):
        for half in (slice(0, 1), slice(1, 3)):
            (target_logprobs(hidden[half], head, targets[half], cast) * upstream[half]).sum().backward()
    accumulated = head.weight.grad.clone()
    _, _, whole = values_and_grads(plain, head, hidden, targets, upstream, True)
    assert relative(accumulated, whole) < 1e-2


def test_head_cast_is_reused_only_inside_reusing_and_follows_in_place_changes() -> None:
    weight = torch.nn.Parameter(torch.randn(VOCAB, HIDDEN))
    cast = HeadCast()
    assert cast(weight, torch.bfloat16) is not cast(weight, torch.bfloat16)  # outside: fresh each call
    assert cast(weight, torch.float32).data_ptr() == weight.data_ptr()  # no cast needed: the weight itself
    with cast.reusing():
        first = cast(weight, torch.bfloat16)
        assert cast(weight, torch.bfloat16) is first
        with torch.no_grad():
            weight.add_(1.0)  # an optimiser step
        second = cast(weight, torch.bfloat16)
        assert second is not first
        assert torch.equal(second, weight.detach().to(torch.bfloat16))
    assert cast._cached is None  # nothing held between updates


def test_compute_dtype_follows_autocast() -> None:
    weight = torch.zeros(2, 2)
    assert compute_dtype(weight, "cpu") == torch.float32
    with torch.autocast("cpu", dtype=torch.bfloat16):
        assert compute_dtype(weight, "cpu") == torch.bfloat16


def test_only_bias_free_linear_heads_are_fused() -> None:
    assert fusable(torch.nn.Linear(4, 8, bias=False))
    assert not fusable(torch.nn.Linear(4, 8, bias=True))
    assert not fusable(torch.nn.Embedding(8, 4))
