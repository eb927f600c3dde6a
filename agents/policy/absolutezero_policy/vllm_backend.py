"""Generation with vLLM (optional extra: ``pip install absolutezero[vllm]``).

vLLM is imported lazily, only when ``backend="vllm"`` is chosen, so the core and the HF
backend never need it. The engine runs in this process (``VLLM_ENABLE_V1_MULTIPROCESSING
=0`` unless the user set it) so that ``sync_weights`` can hand the trained weights to the
engine's model by reference through ``LLM.apply_model``.

Same contract as the HF backend: prompts go in as token ids (``TokensPrompt``), never as
text; each ``Sample`` keeps vLLM's sampled ``token_ids`` and their log-probabilities.
vLLM V1's default ``logprobs_mode="raw_logprobs"`` returns log-softmax of the raw logits
(before temperature and top-p), the same quantity the HF backend records. Every request
gets its own seed drawn from the agent's torch Generator, so runs are reproducible and a
restored generator state reproduces the same samples.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from typing import Any

import torch

from absolutezero.protocol import Sample

VLLM_MISSING = (
    "backend=vllm needs vLLM, which is not installed: `pip install absolutezero[vllm]` "
    "(or use backend=hf)"
)


def import_vllm() -> Any:
    """The ``vllm`` module, or ImportError with the install command."""
    try:
        import vllm
    except ImportError as error:
        raise ImportError(VLLM_MISSING) from error
    return vllm


class VLLMBackend:
    """Sampling through a vLLM ``LLM`` engine loaded from ``model_path``.

    ``model_path`` is a Hugging Face folder or name (the embedded model's safetensors
    cache folder works). ``dtype`` is vLLM's weight dtype for generation.
    """

    def __init__(
        self,
        model_path: str,
        tokenizer: Any,
        *,
        stop_token_ids: Sequence[int],
        stop_strings: Sequence[str],
        max_new_tokens: int,
        temperature: float,
        top_p: float,
        dtype: str,
        seed: int,
        batch_size: int,
    ) -> None:
        vllm = import_vllm()
        if max_new_tokens < 1 or batch_size < 1:
            raise ValueError(
                f"max_new_tokens and batch_size must be >= 1, got {max_new_tokens} and {batch_size}"
            )
        os.environ.setdefault("VLLM_ENABLE_V1_MULTIPROCESSING", "0")
        self._vllm = vllm
        self.tokenizer = tokenizer
        self.stop_token_ids = sorted(int(i) for i in stop_token_ids)
        self.stop_strings = [s for s in stop_strings if s]
        self.max_new_tokens = max_new_tokens
        self.temperature = temperature
        self.top_p = top_p
        self.engine = vllm.LLM(
            model=model_path,
            tokenizer=model_path,
            dtype=dtype,
            seed=seed,
            max_num_seqs=batch_size,
        )

    def _params(self, greedy: bool, seed: int) -> Any:
        return self._vllm.SamplingParams(
            n=1,
            temperature=0.0 if greedy else self.temperature,
            top_p=1.0 if greedy else self.top_p,
            max_tokens=self.max_new_tokens,
            stop=self.stop_strings or None,
            stop_token_ids=self.stop_token_ids or None,
            include_stop_str_in_output=True,
            skip_special_tokens=True,
            logprobs=0,
            seed=None if greedy else seed,
        )

    def generate(
        self, prompt_ids: Sequence[Sequence[int]], *, greedy: bool, generator: torch.Generator
    ) -> list[Sample]:
        """One completion per prompt, in order (see HFBackend.generate)."""
        from vllm.inputs import TokensPrompt

        prompts = [TokensPrompt(prompt_token_ids=[int(i) for i in ids]) for ids in prompt_ids]
        seeds = torch.randint(0, 2**31 - 1, (len(prompts),), generator=generator).tolist()
        params = [self._params(greedy, seed) for seed in seeds]
        outputs = self.engine.generate(prompts, params, use_tqdm=False)
        samples = []
        for ids, request in zip(prompt_ids, outputs):
            completion = request.outputs[0]
            token_ids = [int(t) for t in completion.token_ids]
            if completion.logprobs is None or len(completion.logprobs) != len(token_ids):
                raise RuntimeError(
                    "vLLM returned no per-token logprobs for a completion; this vLLM version "
                    "does not honour SamplingParams(logprobs=0)"
                )
            logprobs = [float(step[token].logprob) for step, token in zip(completion.logprobs, token_ids)]
            samples.append(
                Sample(
                    prompt_ids=[int(i) for i in ids],
                    completion_ids=token_ids,
                    logprobs=logprobs,
                    text=completion.text,
                    finish_reason="length" if completion.finish_reason == "length" else "stop",
                )
            )
        return samples

    def sync_weights(self, source: torch.nn.Module) -> None:
        """Load ``source``'s parameters into the engine's model (vLLM casts the dtype)."""
        weights = [(name, parameter.detach()) for name, parameter in source.named_parameters()]

        def load(model: Any) -> None:
            model.load_weights(weights=weights)

        self.engine.apply_model(load)
        reset = getattr(self.engine, "reset_prefix_cache", None)
        if reset is not None:
            reset()

    def close(self) -> None:
        """Drop the engine (frees its KV cache memory)."""
        self.engine = None
