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
sums the gradients over the ranks. Every rank therefore holds the same weights, optimiser
state and generator state, and a checkpoint written by rank 0 is the whole state.
"""

from __future__ import annotations

import copy
import json
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import torch

from absolutezero.distributed import Group
from absolutezero.protocol import Agent, Prompt, Sample
from absolutezero_policy.hf_backend import HFBackend
from absolutezero_policy.learner import Learner
from absolutezero_policy.precision import autocast_default, generation_dtype_name
from absolutezero_policy.trainable import select_trainable
from absolutezero_policy.model_loading import (
    load_model_and_tokenizer,
    parse_dtype,
    resolve_model,
    stop_token_ids,
)

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


class PolicyAgent(Agent):
    """A Hugging Face causal LM as the self-play policy.

    Args:
        model: an embedded model name (``"embedded"`` = Qwen2.5-Coder-0.5B-Instruct, or
            ``"smollm2-135m"``; see ``absolutezero_policy.embedded``), a Hugging Face
            name, or a local folder (``save_pretrained`` output or a saved agent).
        backend: ``"hf"`` or ``"vllm"`` (needs ``pip install absolutezero[vllm]``).
        seed: seeds the agent's sampling generator.
        max_new_tokens, temperature, top_p: sampling; ``greedy=True`` ignores the last two.
        batch_size: prompts generated together.
        learning_rate, weight_decay, grad_clip, clip_ratio, micro_batch, autocast_bf16:
            see ``Learner`` (``clip_ratio=None`` is plain REINFORCE; ``grad_clip=0`` off).
        correction, tis_cap: how the learner handles the gap between the engine that
            sampled and the trainer (``"ratio"``, ``"tis"``; see ``Learner``);
            ``"auto"`` is ``"tis"`` with vLLM and ``"ratio"`` with the hf backend.
        trainable_layers: train only the top this-many transformer blocks (plus final
            norm and output head; exact gradients for those, a far cheaper backward pass
            on CPUs); 0 trains every parameter. See ``absolutezero_policy.trainable``.
        device: torch device for training and HF generation.
        dtype: generation dtype, or ``"auto"``: bfloat16 where the device computes it
            natively, else float32 (see :mod:`absolutezero_policy.precision`; with float32
            the trained model itself generates, with no copy to refresh). Training always
            keeps float32 master weights; ``autocast_bf16=None`` likewise means "where
            native".
        cache_dir: where the embedded model's safetensors copy lives
            (default ``$ABSOLUTEZERO_CACHE`` or ``~/.cache/absolutezero``).
        stop_strings: a completion ends once its text contains one of these (kept in the
            text), besides EOS / ``<|im_end|>``.
        chat_template: Jinja chat template overriding the tokenizer's (needed for base
            models that ship none).
        vllm_options: keyword arguments for ``vllm.LLM`` with ``backend="vllm"``
            (``agent_options.vllm_options.gpu_memory_utilization=0.5``,
            ``...kv_cache_memory_bytes=4000000000``, ``...enforce_eager=true``); see
            ``absolutezero_policy.vllm_backend`` for the CPU defaults.
    """

    def __init__(
        self,
        *,
        model: str = "embedded",
        backend: str = "hf",
        seed: int = 0,
        max_new_tokens: int = 256,
        temperature: float = 1.0,
        top_p: float = 1.0,
        batch_size: int = 64,
        learning_rate: float = 1e-5,
        weight_decay: float = 0.0,
        grad_clip: float | None = 1.0,
        clip_ratio: float | None = 0.2,
        micro_batch: int = 4,
        autocast_bf16: bool | None = None,
        correction: str = "auto",
        tis_cap: float = 2.0,
        trainable_layers: int = 4,
        device: str = "cpu",
        dtype: str = "auto",
        cache_dir: str | None = None,
        stop_strings: Sequence[str] = ("</answer>",),
        chat_template: str | None = None,
        vllm_options: dict[str, Any] | None = None,
    ) -> None:
        if backend not in BACKENDS:
            raise ValueError(f"unknown backend {backend!r}; use one of {list(BACKENDS)}")
        if isinstance(stop_strings, str) or not all(isinstance(s, str) for s in stop_strings):
            raise ValueError(f"stop_strings must be a list of strings, got {stop_strings!r}")
        if vllm_options and backend != "vllm":
            raise ValueError("vllm_options only apply to backend=vllm")
        self.group = Group.current()
        device = _rank_device(device, self.group)
        generation_dtype = parse_dtype(generation_dtype_name(dtype, device))
        autocast_bf16 = autocast_default(autocast_bf16, device)
        self.backend_name = backend
        self.model_name = model
        self.stop_strings = tuple(stop_strings)
        self.chat_template = chat_template
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
        )
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
            if generation_dtype == torch.float32:
                generation_model = self.model
            else:
                generation_model = copy.deepcopy(self.model).to(generation_dtype)
                generation_model.requires_grad_(False)
            self.backend = HFBackend(
                generation_model,
                self.tokenizer,
                stop_token_ids=stops,
                stop_strings=self.stop_strings,
                batch_size=batch_size,
                max_new_tokens=max_new_tokens,
                temperature=temperature,
                top_p=top_p,
            )

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
        # One seed per completion, drawn for the whole batch on every rank: the
        # generator advances the same everywhere, and a completion depends on its own
        # seed, not on how the batch is split.
        seeds = torch.randint(0, 2**62, (len(flat),), generator=self.generator).tolist()
        templates = None
        if any(p.segments for p in prompts):
            steps = [self.encode_template(p) for p in prompts]
            templates = [s for s in steps for _ in range(num_samples)]

        def generate_rows(rows: list[int]) -> list[Sample]:
            ids = [flat[i] for i in rows]
            row_seeds = [seeds[i] for i in rows]
            if templates is None:
                return self.backend.generate(ids, greedy=greedy, seeds=row_seeds)
            return self.backend.generate(
                ids, greedy=greedy, seeds=row_seeds, templates=[templates[i] for i in rows]
            )

        samples = self.group.map(generate_rows, list(range(len(flat))))
        return [samples[i * num_samples : (i + 1) * num_samples] for i in range(len(prompts))]

    def update(self, samples: Sequence[Sample], advantages: Sequence[float]) -> dict[str, float]:
        """One TRR++ policy-gradient step; the generation backend sees the new weights.

        Returns:
            The learner's metrics (loss, grad_norm, clip_fraction, approx_kl, tokens,
            trained_samples, seconds, ...).
        """
        metrics = self.learner.step(samples, advantages)
        if metrics["trained_samples"] > 0:
            started = time.perf_counter()
            self.backend.sync_weights(self.model)
            metrics["weight_sync_seconds"] = time.perf_counter() - started
        return metrics

    def save(self, directory: str) -> None:
        """Write a ``from_pretrained``-loadable folder (float32 safetensors + tokenizer)
        plus optimiser and generator state. The folder also works as ``model=``."""
        folder = Path(directory)
        folder.mkdir(parents=True, exist_ok=True)
        self.model.save_pretrained(folder, safe_serialization=True)
        self.tokenizer.save_pretrained(folder)
        torch.save(self.learner.state_dict(), folder / OPTIMIZER_FILE)
        torch.save({"generator": self.generator.get_state()}, folder / GENERATOR_FILE)
        info = {"model": self.model_name, "backend": self.backend_name, "format": 1}
        (folder / AGENT_FILE).write_text(json.dumps(info, indent=2), encoding="utf-8")

    def load(self, directory: str) -> None:
        """Restore weights, optimiser moments and generator state written by ``save``."""
        from transformers import AutoModelForCausalLM

        folder = Path(directory)
        missing = [
            name for name in ("config.json", OPTIMIZER_FILE, GENERATOR_FILE) if not (folder / name).is_file()
        ]
        if missing:
            raise FileNotFoundError(
                f"{folder} is not a saved PolicyAgent (missing {', '.join(missing)}); pass the "
                "folder written by PolicyAgent.save"
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
        state = torch.load(folder / GENERATOR_FILE, weights_only=True)
        self.generator.set_state(state["generator"])
        self.backend.sync_weights(self.model)

    def close(self) -> None:
        """Release the generation engine."""
        self.backend.close()
