"""The TRR++ policy-gradient learner: one optimiser step per batch of scored samples.

Objective, per completion token t of sample i with advantage A_i (already normalised per
role x task type by the core's TRR++)::

    r_it  = exp(logp_new(t) - logp_old(t))                # logp_old: recorded at sampling
    obj   = min(r_it * A_i, clip(r_it, 1-e, 1+e) * A_i)   # clip_ratio = e
    obj   = A_i * logp_new(t)                             # clip_ratio = None (REINFORCE)
    loss  = -sum_{i,t} obj / (total completion tokens in the batch)

Tokens an answer template forced (``Sample.forced``) are masked out like the prompt: they
enter neither the objective nor the token count, because the policy did not choose them.

The token-level mean (over the whole batch, not per sample) weights every generated token
equally, so long and short completions are not re-weighted against each other. The mean
is exact across micro-batches: each micro-batch's summed objective is divided by the
batch-wide token count before ``backward``, so gradient accumulation yields the same
gradient as one big batch. Samples with advantage 0 contribute exactly zero gradient, so
they are skipped (their tokens still count in the denominator, keeping the result
identical to not skipping).

With one optimiser step per batch of on-policy samples, r = 1 up to the numerical gap
between the generation copy (bfloat16) and the fp32 master weights; the clip guards
against that gap and against slightly stale samples. ``clip_fraction`` and ``approx_kl``
report it.

Behaviour/target mismatch (``correction``). The logprobs recorded at sampling come from
the generation engine, whose numerics differ from the trainer's (bfloat16 copy; with
vLLM another engine's kernels, fp32 vs bf16). Two ways to handle it:

* ``"ratio"`` (default with the hf backend): logp_old is the sampler's logprob, as
  above; the PPO clip absorbs the small gap (``ratio_mean`` shows it).
* ``"tis"`` (default with vLLM): truncated importance sampling. logp_old is recomputed
  with the trainer's own numerics; with one optimiser step per batch that is
  ``logp_new`` detached, so r = 1 in value (no extra forward pass). Each token is
  weighted by ``w = min(exp(logp_trainer - logp_sampler), tis_cap)``, the truncated
  importance weight of the trainer's policy against the engine's::

      obj = w * min(r * A, clip(r, 1-e, 1+e) * A)

  ``tis_weight_mean``, ``tis_truncated`` (fraction of tokens at the cap) and
  ``behaviour_gap`` (mean logp_trainer - logp_sampler) report it.

Several processes (``group.size > 1``, see :mod:`absolutezero.distributed`): every rank
gets the global batch, back-propagates its share (strided over the batch sorted by
length, so the shares cost about the same), divides by the *global* token count, and
the gradients are summed with ``all_reduce``; the result is the gradient one process
computes on the whole batch, up to floating-point summation order. Every rank then
clips and steps identically.

Precision: master weights, gradients and AdamW state are float32; the forward pass runs
under ``torch.autocast(bfloat16)`` when ``autocast_bf16`` (measured on 2 CPU cores: 14.7 s
vs 21.8 s per 8 x 384 tokens for SmolLM2-135M).
"""

from __future__ import annotations

import contextlib
import inspect
import math
import time
from collections.abc import Sequence
from typing import Any

import torch

from absolutezero.distributed import Group
from absolutezero.protocol import Sample

CORRECTIONS = ("ratio", "tis")


class Learner:
    """AdamW + clipped policy gradient over ``Sample`` token ids (never re-tokenised)."""

    def __init__(
        self,
        model: torch.nn.Module,
        *,
        pad_token_id: int,
        learning_rate: float,
        weight_decay: float,
        grad_clip: float | None,
        clip_ratio: float | None,
        micro_batch: int,
        autocast_bf16: bool,
        correction: str = "ratio",
        tis_cap: float = 2.0,
        group: Group | None = None,
    ) -> None:
        if learning_rate < 0 or weight_decay < 0:
            raise ValueError(
                f"learning_rate and weight_decay must be >= 0, got {learning_rate} and {weight_decay}"
            )
        if grad_clip is not None and grad_clip < 0:
            raise ValueError(f"grad_clip must be > 0, or 0/None for no clipping, got {grad_clip}")
        if clip_ratio is not None and not 0 < clip_ratio < 1:
            raise ValueError(
                f"clip_ratio must be in (0, 1) (e.g. 0.2), or None for plain REINFORCE, got {clip_ratio}"
            )
        if micro_batch < 1:
            raise ValueError(f"micro_batch must be >= 1, got {micro_batch}")
        if correction not in CORRECTIONS:
            raise ValueError(f"correction must be one of {list(CORRECTIONS)}, got {correction!r}")
        if not (isinstance(tis_cap, (int, float)) and tis_cap >= 1):
            raise ValueError(f"tis_cap must be a number >= 1 (e.g. 2.0), got {tis_cap!r}")
        self.correction = correction
        self.tis_cap = float(tis_cap)
        self.group = group if group is not None else Group()
        self.model = model
        self.pad_token_id = int(pad_token_id)
        self.grad_clip = grad_clip or None
        self.clip_ratio = clip_ratio
        self.micro_batch = micro_batch
        self.autocast_bf16 = autocast_bf16
        self.parameters = [p for p in model.parameters() if p.requires_grad]
        self.optimizer = torch.optim.AdamW(
            self.parameters, lr=learning_rate, weight_decay=weight_decay
        )
        self._keeps_logits = "logits_to_keep" in inspect.signature(model.forward).parameters

    def _autocast(self, device: torch.device) -> contextlib.AbstractContextManager[Any]:
        if not self.autocast_bf16:
            return contextlib.nullcontext()
        return torch.autocast(device.type, dtype=torch.bfloat16)

    def completion_logprobs(self, samples: Sequence[Sample]) -> list[torch.Tensor]:
        """Log-probabilities of each sample's completion ids under the current model.

        Returns one 1-D float32 tensor per sample (length = its completion), with the
        autograd graph attached when grad is enabled.

        Layout: prompts left-padded and completions right-padded so every completion
        starts in the same column; then only the last ``max completion + 1`` positions
        need logits (``logits_to_keep``), which saves the [tokens x vocab] memory of the
        prompts.
        """
        device = next(self.model.parameters()).device
        prompt_width = max(len(s.prompt_ids) for s in samples)
        completion_width = max(len(s.completion_ids) for s in samples)
        rows = len(samples)
        input_ids = torch.full((rows, prompt_width + completion_width), self.pad_token_id, dtype=torch.long)
        attention = torch.zeros_like(input_ids)
        for row, sample in enumerate(samples):
            start = prompt_width - len(sample.prompt_ids)
            end = prompt_width + len(sample.completion_ids)
            input_ids[row, start:end] = torch.tensor(sample.prompt_ids + sample.completion_ids)
            attention[row, start:end] = 1
        positions = (attention.cumsum(-1) - 1).clamp(min=0)
        input_ids, attention, positions = input_ids.to(device), attention.to(device), positions.to(device)
        keep = completion_width + 1
        extra = {"logits_to_keep": keep} if self._keeps_logits else {}
        with self._autocast(device):
            logits = self.model(
                input_ids=input_ids, attention_mask=attention, position_ids=positions, use_cache=False, **extra
            ).logits
        # logits[:, j] predicts the token after position (width - keep + j); the
        # completion's first token is predicted at column prompt_width - 1.
        logits = logits[:, -keep:-1, :].float()
        targets = input_ids[:, prompt_width:]
        token_logprobs = logits.gather(-1, targets[..., None]).squeeze(-1) - torch.logsumexp(logits, dim=-1)
        return [token_logprobs[row, : len(s.completion_ids)] for row, s in enumerate(samples)]

    def accumulate_gradients(
        self, samples: Sequence[Sample], advantages: Sequence[float]
    ) -> dict[str, float]:
        """Zero the gradients, then back-propagate the batch loss micro-batch by micro-batch.

        Leaves the full-batch gradient in ``.grad`` (no clipping, no optimiser step).

        Returns:
            statistics: ``loss``, ``clip_fraction``, ``approx_kl`` (mean of
            (r - 1) - log r), ``ratio_mean`` over trained tokens, ``tokens`` (all
            completion tokens), ``trained_samples`` (non-zero advantage).
        """
        if len(samples) != len(advantages):
            raise ValueError(
                f"update needs one advantage per sample, got {len(samples)} samples and "
                f"{len(advantages)} advantages"
            )
        values = [float(a) for a in advantages]
        if any(not math.isfinite(a) for a in values):
            raise ValueError(f"advantages must be finite numbers, got {values}")
        total_tokens = sum(sum(s.trained_mask()) for s in samples)
        active = [(s, a) for s, a in zip(samples, values) if a != 0.0 and any(s.trained_mask())]
        # Similar lengths together: less padding per micro-batch (the sum is unchanged).
        active.sort(key=lambda pair: len(pair[0].prompt_ids) + len(pair[0].completion_ids))
        trained = len(active)
        active = self.group.share(active)  # this rank's share; all of it for one process
        self.optimizer.zero_grad(set_to_none=True)
        stats = {
            "loss": 0.0,
            "clip_fraction": 0.0,
            "approx_kl": 0.0,
            "ratio_mean": 1.0,
            "tokens": float(total_tokens),
            "trained_samples": float(trained),
        }
        if self.correction == "tis":
            stats.update(tis_weight_mean=1.0, tis_truncated=0.0, behaviour_gap=0.0)
        if not trained:
            return stats
        # loss, clipped, kl, ratio, tokens, tis weight, truncated, gap: summed over ranks
        sums = [0.0] * 8
        for start in range(0, len(active), self.micro_batch):
            chunk = active[start : start + self.micro_batch]
            chunk_samples = [s for s, _ in chunk]
            new = torch.cat(self.completion_logprobs(chunk_samples))
            device = new.device
            old = torch.cat([torch.tensor(s.logprobs, dtype=torch.float32) for s in chunk_samples]).to(device)
            adv = torch.cat(
                [torch.full((len(s.completion_ids),), a, dtype=torch.float32) for s, a in chunk]
            ).to(device)
            mask = torch.cat([torch.tensor(s.trained_mask(), dtype=torch.bool) for s in chunk_samples]).to(device)
            new, behaviour, adv = new[mask], old[mask], adv[mask]
            # "tis": the old policy is the trainer's own (one step per batch: new, detached)
            old = new.detach() if self.correction == "tis" else behaviour
            log_ratio = new - old
            ratio = torch.exp(log_ratio)
            if self.clip_ratio is None:
                objective = adv * new
            else:
                bounded = ratio.clamp(1.0 - self.clip_ratio, 1.0 + self.clip_ratio)
                objective = torch.minimum(ratio * adv, bounded * adv)
                with torch.no_grad():
                    sums[1] += float(((ratio * adv) > (bounded * adv)).sum())
            if self.correction == "tis":
                with torch.no_grad():
                    gap = new.detach() - behaviour
                    weight = torch.exp(gap).clamp(max=self.tis_cap)
                    sums[5] += float(weight.sum())
                    sums[6] += float((torch.exp(gap) >= self.tis_cap).sum())
                    sums[7] += float(gap.sum())
                objective = objective * weight
            loss = -objective.sum() / total_tokens
            loss.backward()
            with torch.no_grad():
                sums[0] += float(loss)
                sums[2] += float(((ratio - 1.0) - log_ratio).sum())
                sums[3] += float(ratio.sum())
                sums[4] += new.numel()
        self._reduce_gradients()
        totals = torch.tensor(sums, dtype=torch.float64)
        self.group.all_reduce_sum([totals])
        loss_total, clipped, kl_total, ratio_total, active_tokens, weight_total, truncated, gap_total = totals.tolist()
        stats.update(
            loss=loss_total,
            clip_fraction=clipped / active_tokens,
            approx_kl=kl_total / active_tokens,
            ratio_mean=ratio_total / active_tokens,
        )
        if self.correction == "tis":
            stats.update(
                tis_weight_mean=weight_total / active_tokens,
                tis_truncated=truncated / active_tokens,
                behaviour_gap=gap_total / active_tokens,
            )
        return stats

    def _reduce_gradients(self) -> None:
        """Sum the trained parameters' gradients over the ranks (one process: nothing).

        A rank whose share trained nothing still takes part, with zero gradients."""
        if self.group.size == 1:
            return
        for parameter in self.parameters:
            if parameter.grad is None:
                parameter.grad = torch.zeros_like(parameter)
        by_kind: dict[tuple[torch.dtype, torch.device], list[torch.Tensor]] = {}
        for parameter in self.parameters:
            by_kind.setdefault((parameter.grad.dtype, parameter.grad.device), []).append(parameter.grad)
        for grads in by_kind.values():
            self.group.all_reduce_sum(grads)

    def step(self, samples: Sequence[Sample], advantages: Sequence[float]) -> dict[str, float]:
        """One optimiser step on all ``samples``.

        Returns:
            metrics: those of ``accumulate_gradients`` plus ``grad_norm`` (before
            clipping), ``grad_norm_clipped`` (after), ``skipped`` (1 when the gradient was
            not finite and no step was taken, else 0) and ``seconds``.
        """
        started = time.perf_counter()
        metrics = self.accumulate_gradients(samples, advantages)
        metrics.update(grad_norm=0.0, grad_norm_clipped=0.0, skipped=0.0)
        grads = [p.grad for p in self.parameters if p.grad is not None]
        if grads:
            if self.grad_clip is not None:
                grad_norm = torch.nn.utils.clip_grad_norm_(self.parameters, self.grad_clip)
            else:
                grad_norm = torch.nn.utils.get_total_norm(grads)
            metrics["grad_norm"] = float(grad_norm)
            metrics["grad_norm_clipped"] = float(torch.nn.utils.get_total_norm(grads))
            if math.isfinite(metrics["grad_norm"]):
                self.optimizer.step()
            else:
                metrics["skipped"] = 1.0
            self.optimizer.zero_grad(set_to_none=True)
        metrics["seconds"] = time.perf_counter() - started
        return metrics

    def state_dict(self) -> dict[str, Any]:
        """Optimiser state (moments, step counts) for checkpoints."""
        return self.optimizer.state_dict()

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.optimizer.load_state_dict(state)
