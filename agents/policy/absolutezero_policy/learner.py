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

With ``strategy="fsdp2"`` the model is sharded with torch's ``fully_shard`` (see
:mod:`absolutezero_policy.sharding`): the gradient reduction is FSDP2's reduce-scatter
(summed, not averaged), the parameters, gradients and AdamW state are DTensor shards, and
clipping and the AdamW step run on the shards. FSDP2 runs a collective in every forward
and backward, so every rank runs the same number of micro-batches: a rank with fewer
pads with an all-masked one (zero gradient).

Memory bounds, whatever the response length: micro-batches are packed by padded token
count (``max_tokens_per_micro_batch``), the output head's logits exist for
``logits_chunk_tokens`` positions at a time (:mod:`absolutezero_policy.token_logprobs`),
and ``gradient_checkpointing`` recomputes each decoder block in the backward pass.

Shared prompts (``share_prompts``): in a micro-batch, identical prompts run through the
model once and the prefix common to its distinct prompts once; each completion then
runs through the KV cache expanded to its row (:mod:`absolutezero_policy.shared_prompts`).
The cache stays in the autograd graph, so the gradient is the full pass's, up to
rounding. Micro-batches are then packed with rows of one prompt together. It falls back
to the full pass, with one log line saying why, under gradient checkpointing (a
recomputed block cannot fill a cache), ``fsdp2`` (two or three calls of the sharded
model per micro-batch are not tested with FSDP2's hooks) and for models whose cache is
not plain full attention (sliding window, linear attention).

Frozen blocks once (``first_block``): with the blocks below ``first_block`` frozen, their
output was computed by generation already; the agent's generation backend keeps it per
sample (:mod:`absolutezero_policy.block_inputs`) and a micro-batch whose samples all have
it runs only the blocks from ``first_block`` on, in the same stages. Off, with a logged
reason, under ``fsdp2`` and where the self-check of that path fails.

Precision: master weights, gradients and AdamW state are float32; the forward pass runs
in bfloat16 when ``autocast_bf16``: under ``torch.autocast`` with ``ddp``, through FSDP2's
``MixedPrecisionPolicy`` (bf16 parameters in compute, fp32 reduction) with ``fsdp2``.
"""

from __future__ import annotations

import contextlib
import logging
import math
import time
from collections.abc import Iterator, Sequence
from typing import Any

import torch

from absolutezero.distributed import Group
from absolutezero.protocol import Sample
from absolutezero_policy import sharding
from absolutezero_policy.block_inputs import BlockInputs, stage_block_inputs, top_blocks_reason
from absolutezero_policy.shared_prompts import layout, unsupported_reason

#: Defaults shared with PolicyAgent's declaration (written once, here).
DEFAULT_TIS_CAP = 2.0
DEFAULT_LOGITS_CHUNK_TOKENS = 1024
from absolutezero_policy.token_logprobs import TokenLogprobs, pack_micro_batches

CORRECTIONS = ("ratio", "tis")

logger = logging.getLogger(__name__)


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
        tis_cap: float = DEFAULT_TIS_CAP,
        group: Group | None = None,
        strategy: str = "ddp",
        max_tokens_per_micro_batch: int | None = None,
        logits_chunk_tokens: int = DEFAULT_LOGITS_CHUNK_TOKENS,
        gradient_checkpointing: bool = False,
        cpu_offload: bool = False,
        share_prompts: bool = True,
        first_block: int | None = None,
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
        if max_tokens_per_micro_batch is not None and max_tokens_per_micro_batch < 1:
            raise ValueError(
                f"max_tokens_per_micro_batch must be >= 1 or None, got {max_tokens_per_micro_batch}"
            )
        if correction not in CORRECTIONS:
            raise ValueError(f"correction must be one of {list(CORRECTIONS)}, got {correction!r}")
        if not (isinstance(tis_cap, (int, float)) and tis_cap >= 1):
            raise ValueError(f"tis_cap must be a number >= 1 (e.g. 2.0), got {tis_cap!r}")
        if strategy not in sharding.STRATEGIES:
            raise ValueError(f"strategy must be one of {list(sharding.STRATEGIES)}, got {strategy!r}")
        if cpu_offload and strategy != "fsdp2":
            raise ValueError("cpu_offload needs strategy='fsdp2' (it offloads the sharded state)")
        self.correction = correction
        self.tis_cap = float(tis_cap)
        self.group = group if group is not None else Group()
        self.model = model
        self.strategy = strategy
        self.pad_token_id = int(pad_token_id)
        self.grad_clip = grad_clip or None
        self.clip_ratio = clip_ratio
        self.micro_batch = micro_batch
        self.max_tokens_per_micro_batch = max_tokens_per_micro_batch
        self.gradient_checkpointing = bool(gradient_checkpointing)
        self.device = next(model.parameters()).device
        self.scorer = TokenLogprobs(model, logits_chunk_tokens)
        self.scorer.head_space.sum_gradients = strategy != "fsdp2"
        self.share_prompts = bool(share_prompts) and self._sharing_possible(model, strategy)
        self.reused_samples = 0  # samples of the last update that started from kept block inputs
        self.first_block = first_block if first_block is None else self._top_blocks_possible(model, strategy, first_block)
        if self.gradient_checkpointing:
            # Transformers' own per-block checkpointing (non-reentrant; it keeps FSDP2's
            # hooks outside the recomputed region).
            enable = getattr(model, "activation_checkpointing_enable", None)
            if enable is not None:  # transformers >= 5.2x
                enable(activation_checkpointing_kwargs={"use_reentrant": False})
            else:
                model.gradient_checkpointing_enable(gradient_checkpointing_kwargs={"use_reentrant": False})
        if strategy == "fsdp2":
            sharding.shard(
                self.scorer, model, device=self.device, bf16_compute=autocast_bf16, cpu_offload=cpu_offload
            )
            self.autocast_bf16 = False  # FSDP2's mixed-precision policy casts instead
        else:
            self.autocast_bf16 = autocast_bf16
        self.parameters = [p for p in model.parameters() if p.requires_grad]
        # torch's fused AdamW: one pass over each tensor, no temporaries (the default path
        # allocates the 152k x 896 head's sqrt and quotient every step: 0.5-2.5 s against
        # 0.1 s on a CPU); the same arithmetic to rounding. Plain tensors only: the
        # sharded (DTensor) state keeps the default.
        self.fused_optimizer = strategy != "fsdp2" and all(p.device.type in ("cpu", "cuda") for p in self.parameters)
        if not self.fused_optimizer:
            logger.info("fused AdamW off (%s): torch's default AdamW steps the parameters",
                        "fsdp2 shards the state" if strategy == "fsdp2" else "parameters on another device")
        self.optimizer = torch.optim.AdamW(
            self.parameters, lr=learning_rate, weight_decay=weight_decay, fused=self.fused_optimizer or None
        )

    def _sharing_possible(self, model: torch.nn.Module, strategy: str) -> bool:
        """Whether the shared-prompt forward can run here; logs why not once."""
        if self.gradient_checkpointing:
            reason, level = "gradient checkpointing recomputes blocks without their KV cache", logging.INFO
        elif strategy == "fsdp2":
            reason, level = "untested with fsdp2 (several calls of the sharded model per micro-batch)", logging.INFO
        else:
            reason, level = unsupported_reason(model), logging.WARNING
        if reason is not None:
            logger.log(level, "share_prompts_in_update off (%s): the update runs every prompt in full", reason)
        return reason is None

    @staticmethod
    def _top_blocks_possible(model: torch.nn.Module, strategy: str, first: int) -> int | None:
        """``first`` when the update can start there from kept block inputs; logs why not."""
        if strategy == "fsdp2":
            reason = "fsdp2 (the update would call single blocks of the sharded model)"
        else:
            reason = top_blocks_reason(model, first)
        if reason is not None:
            logger.warning("reuse_frozen_states off (%s): the update runs the frozen blocks again", reason)
            return None
        return first

    @property
    def sharded(self) -> bool:
        return self.strategy == "fsdp2"

    def _autocast(self) -> contextlib.AbstractContextManager[Any]:
        if not self.autocast_bf16:
            return contextlib.nullcontext()
        return torch.autocast(self.device.type, dtype=torch.bfloat16)

    @contextlib.contextmanager
    def _training_mode(self) -> Iterator[None]:
        """Train mode for the forward pass when checkpointing (transformers checkpoints
        blocks only in train mode), restored afterwards (generation shares the model)."""
        was_training = self.model.training
        if self.gradient_checkpointing and torch.is_grad_enabled():
            self.model.train()
        try:
            yield
        finally:
            self.model.train(was_training)

    def completion_logprobs(self, samples: Sequence[Sample], kept: BlockInputs | None = None) -> list[torch.Tensor]:
        """Log-probabilities of each sample's completion ids under the current model.

        With ``kept`` holding every sample's input of block ``first_block`` (from
        generation), only the blocks from there on run.

        Returns one 1-D float32 tensor per sample (length = its completion), with the
        autograd graph attached when grad is enabled. Under ``fsdp2`` this is a
        collective: every rank must call it the same number of times.
        """
        plan = layout(samples, self.pad_token_id, share=self.share_prompts)
        inputs = None
        if kept is not None and self.first_block is not None:
            inputs = stage_block_inputs(plan.stages, samples, kept, torch.float32)
        with self._autocast(), self._training_mode():
            if inputs is None:
                token_logprobs = self.scorer(plan.to(self.device))
            else:
                inputs = [tensor.to(self.device) for tensor in inputs]
                token_logprobs = self.scorer(plan.to(self.device), inputs, self.first_block)
        self.reused_samples += len(samples) if inputs is not None else 0
        return [token_logprobs[row, : len(s.completion_ids)] for row, s in enumerate(samples)]

    def micro_batches(self, samples: Sequence[Sample], advantages: Sequence[float]) -> list[list[tuple[Sample, float]]]:
        """This rank's micro-batches of the samples that carry gradient (non-zero
        advantage, at least one trained token), packed by token budget or sample count."""
        active = [(s, a) for s, a in zip(samples, advantages) if a != 0.0 and any(s.trained_mask())]
        # Similar lengths together: less padding per micro-batch (the sum is unchanged);
        # sharing prompts, rows of one prompt together (then by completion length), and
        # prompts of similar length and common start next to each other.
        if self.share_prompts:
            active.sort(key=lambda pair: (len(pair[0].prompt_ids), tuple(pair[0].prompt_ids), len(pair[0].completion_ids)))
        else:
            active.sort(key=lambda pair: len(pair[0].prompt_ids) + len(pair[0].completion_ids))
        mine = self.group.share(active)  # this rank's share; all of it for one process
        return pack_micro_batches(
            mine, sample_of=lambda pair: pair[0], max_samples=self.micro_batch,
            max_tokens=self.max_tokens_per_micro_batch,
        )

    def accumulate_gradients(
        self, samples: Sequence[Sample], advantages: Sequence[float], kept: BlockInputs | None = None,
    ) -> dict[str, float]:
        """Zero the gradients, then back-propagate the batch loss micro-batch by micro-batch.

        Leaves the full-batch gradient in ``.grad`` (no clipping, no optimiser step).
        ``kept``: block inputs kept from generation (see :meth:`completion_logprobs`).

        Returns:
            statistics: ``loss``, ``clip_fraction``, ``approx_kl`` (mean of
            (r - 1) - log r), ``ratio_mean`` over trained tokens, ``tokens`` (all
            completion tokens), ``trained_samples`` (non-zero advantage),
            ``micro_batches`` (this rank's forward/backward passes), ``reused_samples``
            (this rank's samples that started from kept block inputs).
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
        trained = sum(1 for s, a in zip(samples, values) if a != 0.0 and any(s.trained_mask()))
        batches = self.micro_batches(samples, values)
        self.reused_samples = 0
        self.optimizer.zero_grad(set_to_none=True)
        stats = {
            "loss": 0.0,
            "clip_fraction": 0.0,
            "approx_kl": 0.0,
            "ratio_mean": 1.0,
            "tokens": float(total_tokens),
            "trained_samples": float(trained),
            "micro_batches": float(len(batches)),
            "reused_samples": 0.0,
        }
        if self.correction == "tis":
            stats.update(tis_weight_mean=1.0, tis_truncated=0.0, behaviour_gap=0.0)
        if not trained:
            return stats
        padding = 0
        if self.sharded:  # FSDP2 collectives: every rank runs as many passes as the busiest
            padding = max(self.group.all_gather(len(batches))) - len(batches)
        # loss, clipped, kl, ratio, tokens, tis weight, truncated, gap: summed over ranks
        sums = [0.0] * 8
        with self.scorer.head_space.reusing():  # one compute-dtype copy of the head per update
            for chunk in batches:
                self._backward(chunk, total_tokens, sums, kept)
            for _ in range(padding):
                self._backward_nothing()
        self._reduce_gradients()
        totals = torch.tensor(sums, dtype=torch.float64)
        self.group.all_reduce_sum([totals])
        loss_total, clipped, kl_total, ratio_total, active_tokens, weight_total, truncated, gap_total = totals.tolist()
        stats.update(
            reused_samples=float(self.reused_samples),
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

    def _backward(
        self, chunk: list[tuple[Sample, float]], total_tokens: int, sums: list[float], kept: BlockInputs | None,
    ) -> None:
        """Forward and backward of one micro-batch; adds its statistics to ``sums``."""
        chunk_samples = [s for s, _ in chunk]
        new = torch.cat(self.completion_logprobs(chunk_samples, kept))
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
        # FSDP2 averages gradients over ranks; the batch gradient is their sum.
        (loss * self.group.size if self.sharded else loss).backward()
        with torch.no_grad():
            sums[0] += float(loss)
            sums[2] += float(((ratio - 1.0) - log_ratio).sum())
            sums[3] += float(ratio.sum())
            sums[4] += new.numel()

    def _backward_nothing(self) -> None:
        """A pass with zero gradient: FSDP2's all-gathers and reduce-scatters need every
        rank, so a rank with fewer micro-batches than another runs this instead."""
        dummy = Sample(prompt_ids=[self.pad_token_id], completion_ids=[self.pad_token_id], logprobs=[0.0], text="")
        (self.completion_logprobs([dummy])[0].sum() * 0.0).backward()

    def _reduce_gradients(self) -> None:
        """``ddp``: sum the trained parameters' gradients over the ranks (one process:
        nothing). ``fsdp2`` reduce-scattered them in the backward pass already.

        A rank whose share trained nothing still takes part, with zero gradients."""
        if self.group.size == 1 or self.sharded:
            return
        for parameter in self.parameters:
            if parameter.grad is None:
                parameter.grad = torch.zeros_like(parameter)
        by_kind: dict[tuple[torch.dtype, torch.device], list[torch.Tensor]] = {}
        for parameter in self.parameters:
            by_kind.setdefault((parameter.grad.dtype, parameter.grad.device), []).append(parameter.grad)
        for grads in by_kind.values():
            self.group.all_reduce_sum(grads)

    def step(
        self, samples: Sequence[Sample], advantages: Sequence[float], kept: BlockInputs | None = None,
    ) -> dict[str, float]:
        """One optimiser step on all ``samples`` (``kept``: see :meth:`completion_logprobs`).

        Returns:
            metrics: those of ``accumulate_gradients`` plus ``grad_norm`` (before
            clipping), ``grad_norm_clipped`` (after), ``skipped`` (1 when the gradient was
            not finite and no step was taken, else 0) and ``seconds``.
        """
        started = time.perf_counter()
        metrics = self.accumulate_gradients(samples, advantages, kept)
        metrics.update(grad_norm=0.0, grad_norm_clipped=0.0, skipped=0.0)
        grads = [p.grad for p in self.parameters if p.grad is not None]
        if grads:
            if self.grad_clip is not None:
                grad_norm = torch.nn.utils.clip_grad_norm_(self.parameters, self.grad_clip)
            else:
                grad_norm = torch.nn.utils.get_total_norm(grads)
            metrics["grad_norm"] = sharding.scalar(grad_norm)
            metrics["grad_norm_clipped"] = sharding.scalar(torch.nn.utils.get_total_norm(grads))
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
        self.keep_optimizer_kind()

    def keep_optimizer_kind(self) -> None:
        """A loaded optimiser state carries its writer's ``fused`` flag (None in
        checkpoints from before the fused step): keep this learner's."""
        for group in self.optimizer.param_groups:
            group["fused"] = self.fused_optimizer or None
