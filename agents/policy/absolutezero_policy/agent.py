"""PolicyAgent: the language model that proposes and solves, and learns with TRR++.

It owns three things: float32 master weights trained by ``Learner``; a generation backend
(``hf``: our KV-cached sampling loop over a bfloat16 copy refreshed after each update;
``vllm``: a vLLM engine refreshed the same way); and one seeded ``torch.Generator`` from
which all sampling randomness is drawn (no global seeding), saved with checkpoints so a
resumed run draws the same samples.

Prompts are encoded once as ``chat_template(messages, add_generation_prompt=True)`` ids
followed by the prefill's ids; those exact ids travel in ``Sample.prompt_ids`` and the
learner trains on them and on the sampled ids, never on re-tokenised text.

Under ``torchrun`` (see :mod:`absolutezero.distributed`) every rank calls ``generate`` and
``update`` with the same global batch. ``generate`` draws one seed per completion from
the generator (so the generator advances identically on every rank), generates this
rank's share and gathers the others'; ``update`` back-propagates this rank's share and
sums the gradients over the ranks. With ``strategy="ddp"`` every rank holds the same
weights and optimiser state; with ``"fsdp2"`` each holds its shards (see
:mod:`absolutezero_policy.sharding`). Every rank holds the same generator state.
``save``/``load`` are collectives: each rank writes and reads its part of the training
state (:mod:`absolutezero_policy.train_state`).

Around every update the generation backend is put to sleep (vLLM on CUDA frees its
weights and KV cache for the update) and woken with the new weights, gathered from the
trained model one parameter at a time (:func:`absolutezero_policy.sharding.full_parameters`).
"""

from __future__ import annotations

import copy
import json
import logging
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any, Literal

import torch

from absolutezero.config import ConfigError
from absolutezero.distributed import Group
from absolutezero.protocol import PROMPT_TOO_LONG, Agent, Prompt, Sample
from absolutezero_policy import sharding, train_state
from absolutezero_policy.block_inputs import BlockInputs, first_trained_block
from absolutezero_policy.hf_backend import DEFAULT_LOOKUP_BUDGET, HFBackend
from absolutezero_policy.learner import DEFAULT_LOGITS_CHUNK_TOKENS, DEFAULT_TIS_CAP, Learner
from absolutezero_policy.precision import autocast_default, generation_dtype_name
from absolutezero_policy.trainable import select_trainable
from absolutezero_policy.model_loading import (
    load_model_and_tokenizer,
    parse_dtype,
    resolve_model,
    stop_token_ids,
)

logger = logging.getLogger(__name__)

BACKENDS = ("hf", "vllm")
OPTIMIZER_FILE = "optimizer.pt"
GENERATOR_FILE = "generator.pt"
AGENT_FILE = "agent.json"


def _rank_device(device: str, group: Group) -> str:
    """``cuda`` means this rank's GPU (``LOCAL_RANK``) when several ranks share a node."""
    if group.size > 1 and device == "cuda":
        import os

        return f"cuda:{int(os.environ.get('LOCAL_RANK', '0'))}"
    return device


def _check_options(
    *, backend: str, stop_strings: Any, vllm_options: Any, strategy: str, temperature: float, top_p: float,
    cpu_offload: bool, lookup_budget: int, positive: dict[str, int | None],
) -> None:
    """The checks types cannot express, before anything loads (a mistake costs no model load)."""
    if backend not in BACKENDS:
        raise ConfigError(f"agent_options.backend must be one of {list(BACKENDS)}, got {backend!r}")
    if isinstance(stop_strings, str) or not all(isinstance(s, str) for s in stop_strings):
        raise ConfigError(f"agent_options.stop_strings must be a list of strings, got {stop_strings!r}")
    if vllm_options and backend != "vllm":
        raise ConfigError("agent_options.vllm_options only apply to agent_options.backend=vllm")
    if strategy not in sharding.STRATEGIES:
        raise ConfigError(f"agent_options.strategy must be one of {list(sharding.STRATEGIES)}, got {strategy!r}")
    if cpu_offload and strategy != "fsdp2":
        raise ConfigError("agent_options.cpu_offload=true needs agent_options.strategy=fsdp2 (it offloads the sharded state)")
    if not temperature > 0:
        raise ConfigError(f"agent_options.temperature must be > 0 (sampling is needed for learnability), got {temperature!r}")
    if not 0 < top_p <= 1:
        raise ConfigError(f"agent_options.top_p must be in (0, 1], got {top_p!r}")
    if lookup_budget < 0:
        raise ConfigError(f"agent_options.lookup_budget must be >= 0 (0 turns prompt-lookup drafts off), got {lookup_budget!r}")
    for name, value in positive.items():
        if value is not None and value < 1:
            raise ConfigError(f"agent_options.{name} must be >= 1 (a positive integer), got {value!r}")


class PolicyAgent(Agent):
    """A Hugging Face causal LM as the self-play policy.

    Its options (``agent_options.<name>`` in a run; ``python -m absolutezero.run --help``
    lists them) are the keyword arguments below, each declared here once.

    Args:
        model: an embedded model ("embedded" = Qwen2.5-Coder-0.5B-Instruct, "smollm2-135m"), a Hugging Face name, or a local folder.
        backend: the generation engine: "hf" (ours, KV-cached) or "vllm" (pip install absolutezero[vllm]).
        seed: seeds the agent's sampling generator (the run passes its own seed).
        max_new_tokens: most tokens generated per completion.
        temperature: sampling temperature (> 0: learnability needs sampling; greedy calls ignore it).
        top_p: nucleus sampling mass in (0, 1] (greedy calls ignore it).
        batch_size: prompts generated together (more are generated in turns); the CPU default holds one seeding round of 3 x selfplay.seed_batch.
        learning_rate: AdamW's step size (constant schedule).
        weight_decay: AdamW's decoupled weight decay.
        grad_clip: global gradient-norm clip; 0 or null = off.
        clip_ratio: PPO-style ratio clip in (0, 1); null = plain REINFORCE.
        micro_batch: samples per forward/backward pass (when max_tokens_per_micro_batch is null).
        autocast_bf16: bf16 compute over fp32 master weights; null = where the device computes bf16 natively.
        correction: sampler/trainer logprob gap: "ratio" (PPO ratio), "tis" (truncated importance sampling), "auto" (tis with vllm, ratio with hf).
        tis_cap: the truncation of "tis"'s importance weight (>= 1).
        trainable_layers: train only the top this-many decoder blocks (+ final norm and head); 0 = every parameter.
        device: torch device for training and HF generation ("cuda" = this rank's GPU under torchrun).
        dtype: generation dtype: "auto" (bf16 where native, else fp32), "float32", "bfloat16" or "float16".
        cache_dir: where the embedded model's safetensors copy lives; null = $ABSOLUTEZERO_CACHE or ~/.cache/absolutezero.
        stop_strings: a completion ends once its text contains one of these (besides EOS / <|im_end|>).
        chat_template: a Jinja chat template overriding the tokenizer's (for base models that ship none).
        vllm_options: keyword arguments for vllm.LLM with backend=vllm (e.g. gpu_memory_utilization).
        max_prompt_tokens: longer prompts are dropped from the step and counted, never truncated; null = no limit.
        strategy: training-state layout over torchrun ranks: "ddp" (replicas) or "fsdp2" (sharded).
        gradient_checkpointing: recompute each decoder block's activations in the backward pass.
        max_tokens_per_micro_batch: pack micro-batches by padded token count; null = micro_batch samples each.
        logits_chunk_tokens: completion positions whose full-vocabulary logits exist at once.
        cpu_offload: fsdp2 only: keep the sharded parameters and AdamW state in CPU memory.
        share_prompts_in_update: the update runs a micro-batch's shared prompt tokens once (exact gradients; off with gradient_checkpointing or fsdp2).
        reuse_frozen_states: with trainable_layers, the update starts at the first trained block from its inputs kept by generation (hf backend; off with fsdp2).
        lookup_budget: hf backend: decoding calls of at most this many tokens also feed prompt-lookup drafts and forced template ids, kept where they equal what is sampled (the same samples in fewer calls); 0 = off.

    Raises:
        ConfigError: an option value out of range (checked before the model loads).
    """

    # Options that only shape the update: the untrained model generates the same with
    # any value of them, so runs differing only here share their starting tasks.
    training_options = frozenset({
        "learning_rate", "weight_decay", "grad_clip", "clip_ratio", "micro_batch", "autocast_bf16",
        "correction", "tis_cap", "trainable_layers", "gradient_checkpointing", "max_tokens_per_micro_batch",
        "logits_chunk_tokens", "share_prompts_in_update", "reuse_frozen_states",
    })

    def __init__(
        self,
        *,
        model: str = "embedded",
        backend: Literal["hf", "vllm"] = "hf",
        seed: int = 0,
        max_new_tokens: int = 256,
        temperature: float = 1.0,
        top_p: float = 1.0,
        # Decoding a 0.5B model on a CPU costs about as much per step at batch 64 as at
        # 16, so one step's whole solve phase fits one batch.
        batch_size: int = 144,
        # The paper's 1e-6 is for 7B models and thousands of steps; a 0.5B model trained
        # for tens of steps on a CPU needs a larger step to move at all.
        learning_rate: float = 1e-5,
        weight_decay: float = 0.0,
        grad_clip: float | None = 1.0,
        clip_ratio: float | None = 0.2,
        micro_batch: int = 4,
        autocast_bf16: bool | None = None,
        correction: Literal["auto", "ratio", "tis"] = "auto",
        tis_cap: float = DEFAULT_TIS_CAP,
        # 4 of Qwen2.5-Coder-0.5B's 24 blocks make a CPU update about 2x cheaper.
        trainable_layers: int = 4,
        device: str = "cpu",
        dtype: Literal["auto", "float32", "bfloat16", "float16", "fp32", "bf16", "fp16"] = "auto",
        cache_dir: str | None = None,
        stop_strings: Sequence[str] = ("</answer>",),
        chat_template: str | None = None,
        vllm_options: dict[str, Any] | None = None,
        max_prompt_tokens: int | None = None,
        strategy: Literal["ddp", "fsdp2"] = "ddp",
        gradient_checkpointing: bool = False,
        max_tokens_per_micro_batch: int | None = None,
        logits_chunk_tokens: int = DEFAULT_LOGITS_CHUNK_TOKENS,
        cpu_offload: bool = False,
        share_prompts_in_update: bool = True,
        reuse_frozen_states: bool = True,
        # A CPU decoding call of a few rows costs about the same for 1 and for 6 tokens
        # per row; at 32 tokens the extra positions still cost well under their price.
        lookup_budget: int = DEFAULT_LOOKUP_BUDGET,
    ) -> None:
        _check_options(
            backend=backend, stop_strings=stop_strings, vllm_options=vllm_options, strategy=strategy,
            temperature=temperature, top_p=top_p, cpu_offload=cpu_offload, lookup_budget=lookup_budget,
            positive={
                "max_new_tokens": max_new_tokens, "batch_size": batch_size, "micro_batch": micro_batch,
                "logits_chunk_tokens": logits_chunk_tokens, "max_prompt_tokens": max_prompt_tokens,
                "max_tokens_per_micro_batch": max_tokens_per_micro_batch,
            },
        )
        self.max_prompt_tokens = max_prompt_tokens
        # FSDP2 needs a process group even for one process (a one-rank gloo group).
        self._owns_process_group = strategy == "fsdp2" and sharding.ensure_process_group()
        self.group = Group.current()
        device = _rank_device(device, self.group)
        generation_dtype = parse_dtype(generation_dtype_name(dtype, device))
        autocast_bf16 = autocast_default(autocast_bf16, device)
        self.backend_name = backend
        self.model_name = model
        self.stop_strings = tuple(stop_strings)
        self.chat_template = chat_template
        self.generation_dtype = generation_dtype
        self._peak_memory = 0
        self.generator = torch.Generator(device="cpu").manual_seed(int(seed))
        self.model, self.tokenizer = load_model_and_tokenizer(
            model, dtype=torch.float32, device=device, cache_dir=cache_dir
        )
        if chat_template is None and not getattr(self.tokenizer, "chat_template", None):
            raise ValueError(
                f"the tokenizer of {model!r} has no chat template; use an instruct model or "
                "pass agent_options.chat_template=<Jinja template>"
            )
        self.trainable_parameters, self.total_parameters = select_trainable(self.model, trainable_layers)
        # Start every rank from rank 0's weights (a model built in memory, not read from
        # one file, could differ); a no-op for one process.
        self.group.broadcast_tensors([p.data for p in self.model.parameters()])
        generation_model = None
        if backend == "hf":
            # The trained model generates itself when it is whole and float32; otherwise a
            # copy in the generation dtype, made before the learner shards the model.
            if generation_dtype == torch.float32 and strategy == "ddp":
                generation_model = self.model
            else:
                generation_model = copy.deepcopy(self.model).to(generation_dtype)
                generation_model.requires_grad_(False)
        self.learner = Learner(
            self.model,
            pad_token_id=self.tokenizer.pad_token_id,
            learning_rate=learning_rate,
            weight_decay=weight_decay,
            grad_clip=grad_clip,
            clip_ratio=clip_ratio,
            micro_batch=micro_batch,
            autocast_bf16=autocast_bf16,
            correction=("tis" if backend == "vllm" else "ratio") if correction == "auto" else correction,
            tis_cap=tis_cap,
            group=self.group,
            strategy=strategy,
            max_tokens_per_micro_batch=max_tokens_per_micro_batch,
            logits_chunk_tokens=logits_chunk_tokens,
            gradient_checkpointing=gradient_checkpointing,
            cpu_offload=cpu_offload,
            share_prompts=share_prompts_in_update,
            first_block=self._first_reused_block(reuse_frozen_states, trainable_layers, backend),
        )
        self._generates_with_trained_model = generation_model is self.model
        stops = stop_token_ids(self.tokenizer, self.model)
        if backend == "vllm":
            from absolutezero_policy.vllm_backend import VLLMBackend

            self.backend: Any = VLLMBackend(
                resolve_model(model, cache_dir)[0],
                self.tokenizer,
                stop_token_ids=stops,
                stop_strings=self.stop_strings,
                max_new_tokens=max_new_tokens,
                temperature=temperature,
                top_p=top_p,
                dtype=str(generation_dtype).removeprefix("torch."),
                seed=int(seed),
                batch_size=batch_size,
                engine_options=vllm_options,
            )
        else:
            assert generation_model is not None
            self.backend = HFBackend(
                generation_model,
                self.tokenizer,
                stop_token_ids=stops,
                stop_strings=self.stop_strings,
                batch_size=batch_size,
                max_new_tokens=max_new_tokens,
                temperature=temperature,
                top_p=top_p,
                block_inputs=None if self.learner.first_block is None else BlockInputs(
                    generation_model, self.learner.first_block
                ),
                lookup_budget=lookup_budget,
            )

    def _first_reused_block(self, reuse: bool, trainable_layers: int, backend: str) -> int | None:
        """The block the update may start at from inputs kept by generation, or None."""
        first = first_trained_block(self.model, trainable_layers) if reuse else None
        if first is not None and backend != "hf":
            logger.info("reuse_frozen_states off (the %s engine keeps no hidden states)", backend)
            return None
        return first

    @staticmethod
    def memory_plan(options: dict[str, Any], gpus: int, gpu_memory_gb: float) -> Any:
        """Memory per GPU of a run with these constructor ``options`` (``python -m
        absolutezero.plan``); see :mod:`absolutezero_policy.memory_plan`."""
        from absolutezero_policy.memory_plan import memory_plan

        return memory_plan(options, gpus, gpu_memory_gb)

    def encode_prompt(self, prompt: Prompt) -> list[int]:
        """Token ids the model is conditioned on: chat template (with the assistant
        header) followed by the prefill."""
        text = self.tokenizer.apply_chat_template(
            [dict(m) for m in prompt.messages],
            add_generation_prompt=True,
            tokenize=False,
            chat_template=self.chat_template,
        )
        ids = self.tokenizer(text, add_special_tokens=False)["input_ids"]
        if prompt.prefill:
            ids = ids + self.tokenizer(prompt.prefill, add_special_tokens=False)["input_ids"]
        return list(ids)

    def encode_template(self, prompt: Prompt) -> list[tuple[str, list[int], int | None]]:
        """The prompt's answer template as ``(stop string, forced token ids, max tokens)`` steps.

        Each forced text is tokenised on its own; those ids are what the model is then
        conditioned on and what ``Sample.completion_ids`` holds (marked ``forced``).
        """
        return [
            (
                segment.stop,
                list(self.tokenizer(segment.then, add_special_tokens=False)["input_ids"]),
                segment.max_tokens,
            )
            for segment in prompt.segments
        ]

    def generate(
        self, prompts: Sequence[Prompt], num_samples: int = 1, greedy: bool = False
    ) -> list[list[Sample]]:
        """``num_samples`` completions per prompt.

        Returns:
            ``result[i][j]``: sample j of prompt i; each sample's ``logprobs`` are the
            untempered log-probabilities of its ``completion_ids`` under the current policy
            (0.0 where a prompt's answer template forced the token; see ``Sample.forced``).
        """
        if num_samples < 1:
            raise ValueError(f"num_samples must be >= 1, got {num_samples}")
        if not prompts:
            return []
        encoded = [self.encode_prompt(p) for p in prompts]
        flat = [ids for ids in encoded for _ in range(num_samples)]
        limit = self.max_prompt_tokens
        # One seed per completion, drawn for the whole batch on every rank: the
        # generator advances the same everywhere, and a completion depends on its own
        # seed, not on how the batch is split.
        seeds = torch.randint(0, 2**62, (len(flat),), generator=self.generator).tolist()
        templates = None
        if any(p.segments for p in prompts):
            steps = [self.encode_template(p) for p in prompts]
            templates = [s for s in steps for _ in range(num_samples)]

        def generate_rows(all_rows: list[int]) -> list[Sample]:
            results: dict[int, Sample] = {
                i: Sample(flat[i], [], [], "", finish_reason=PROMPT_TOO_LONG)
                for i in all_rows if limit is not None and len(flat[i]) > limit
            }
            rows = [i for i in all_rows if i not in results]
            if rows:
                results.update(zip(rows, generate_within_limit(rows)))
            return [results[i] for i in all_rows]

        def generate_within_limit(rows: list[int]) -> list[Sample]:
            ids = [flat[i] for i in rows]
            row_seeds = [seeds[i] for i in rows]
            if templates is None:
                return self.backend.generate(ids, greedy=greedy, seeds=row_seeds)
            return self.backend.generate(
                ids, greedy=greedy, seeds=row_seeds, templates=[templates[i] for i in rows]
            )

        samples = self.group.map(generate_rows, list(range(len(flat))))
        self._note_memory()
        return [samples[i * num_samples : (i + 1) * num_samples] for i in range(len(prompts))]

    def update(self, samples: Sequence[Sample], advantages: Sequence[float]) -> dict[str, float]:
        """One TRR++ policy-gradient step; the generation backend sees the new weights.

        Returns:
            The learner's metrics (loss, grad_norm, clip_fraction, approx_kl, tokens,
            trained_samples, seconds, ...).
        """
        self.backend.sleep()
        kept = getattr(self.backend, "block_inputs", None)
        metrics = self.learner.step(samples, advantages, kept)
        if kept is not None:
            kept.clear()  # the next update trains on fresh samples: free the memory
        push = metrics["trained_samples"] > 0 or self.backend.discards_weights
        started = time.perf_counter()
        self.backend.wake_up(self.weights(after_update=True) if push and not self._generates_with_trained_model else None)
        if push:
            metrics["weight_sync_seconds"] = time.perf_counter() - started
        self._note_memory()
        for rank, peak in enumerate(self.group.all_gather(self._peak_memory)):
            metrics[f"peak_memory_gb/rank{rank}"] = peak / 1e9
        return metrics

    def _note_memory(self) -> None:
        """Track this rank's peak memory: the GPU's used memory (vLLM's pools included,
        which torch's allocator statistics miss), or the process's peak RSS on a CPU."""
        device = next(self.model.parameters()).device
        if device.type == "cuda":
            free, total = torch.cuda.mem_get_info(device)
            used = max(total - free, torch.cuda.max_memory_reserved(device))
        else:
            import resource

            used = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
        self._peak_memory = max(self._peak_memory, used)

    def weights(self, after_update: bool = False) -> Any:
        """The trained model's parameters as ``(name, full tensor)`` pairs in the
        generation dtype, gathered one at a time (a collective under ``fsdp2``).

        ``after_update`` with the hf backend (which keeps its weights): only the trained
        parameters (an update changes nothing else), and unsharded ones in their own
        dtype, since the backend's ``copy_`` casts in the same pass (on a CPU a separate
        cast of the 152k x 896 head and embedding was 0.5-1 s of each step's push). The
        vLLM backend gets every parameter in the generation dtype, as before."""
        if after_update and self.backend_name == "hf":
            dtype = self.generation_dtype if self.learner.sharded else None
            return sharding.full_parameters(self.model, dtype=dtype, trained_only=True)
        return sharding.full_parameters(self.model, dtype=self.generation_dtype)

    def reseed(self, seed: int) -> None:
        """Restart the sampling generator from ``seed`` (identically on every rank)."""
        self.generator.manual_seed(int(seed))

    def save(self, directory: str) -> None:
        """Write a ``from_pretrained``-loadable folder (float32 safetensors + tokenizer),
        the training state (model and AdamW, sharded as trained) and the generator state.
        The folder also works as ``model=``. Every rank calls it; each writes its part."""
        folder = Path(directory)
        folder.mkdir(parents=True, exist_ok=True)
        train_state.export_pretrained(folder, self.model, self.group)
        train_state.save_train_state(folder / train_state.TRAIN_STATE_DIR, self.model, self.learner.optimizer)
        if self.group.is_main:
            self.tokenizer.save_pretrained(folder)
            torch.save({"generator": self.generator.get_state()}, folder / GENERATOR_FILE)
            info = {"model": self.model_name, "backend": self.backend_name, "format": 2}
            (folder / AGENT_FILE).write_text(json.dumps(info, indent=2), encoding="utf-8")

    def load(self, directory: str) -> None:
        """Restore weights, optimiser moments and generator state written by ``save``, on
        any number of ranks and with either strategy (the training state is resharded)."""
        folder = Path(directory)
        state_dir = folder / train_state.TRAIN_STATE_DIR
        if not (folder / GENERATOR_FILE).is_file() or not (state_dir.is_dir() or (folder / OPTIMIZER_FILE).is_file()):
            raise FileNotFoundError(
                f"{folder} is not a saved PolicyAgent (missing {GENERATOR_FILE} or {train_state.TRAIN_STATE_DIR}/); "
                "pass the folder written by PolicyAgent.save"
            )
        if state_dir.is_dir():
            try:
                train_state.load_train_state(state_dir, self.model, self.learner.optimizer)
                self.learner.keep_optimizer_kind()
            except Exception as error:  # DCP names the missing or mismatched keys
                raise ValueError(
                    f"{folder} holds a different model than the loaded {self.model_name!r} ({error}); "
                    f"construct the agent with model={str(folder)!r} instead"
                ) from None
        else:
            self._load_format_1(folder)
        state = torch.load(folder / GENERATOR_FILE, weights_only=True)
        self.generator.set_state(state["generator"])
        self.backend.sync_weights(self.weights())

    def _load_format_1(self, folder: Path) -> None:
        """Checkpoints written before sharded training state: whole weights in safetensors
        plus ``optimizer.pt`` (replicas only)."""
        from transformers import AutoModelForCausalLM

        if self.learner.sharded:
            raise ValueError(
                f"{folder} is an older checkpoint (optimizer.pt) that only agent_options.strategy=ddp can resume"
            )
        saved = AutoModelForCausalLM.from_pretrained(folder, dtype=torch.float32, local_files_only=True)
        saved_parameters = dict(saved.named_parameters())
        own = dict(self.model.named_parameters())
        if saved_parameters.keys() != own.keys():
            raise ValueError(
                f"{folder} holds a different architecture than the loaded model "
                f"{self.model_name!r}; construct the agent with model={str(folder)!r} instead"
            )
        with torch.no_grad():
            for name, parameter in own.items():
                parameter.copy_(saved_parameters[name])
        del saved, saved_parameters
        self.learner.load_state_dict(torch.load(folder / OPTIMIZER_FILE, weights_only=True))

    def close(self) -> None:
        """Release the generation engine (and the one-rank process group made for fsdp2)."""
        self.backend.close()
        if self._owns_process_group:
            import torch.distributed as dist

            if dist.is_initialized():
                dist.destroy_process_group()
            self._owns_process_group = False
