"""Generation with a transformers causal LM through our own KV-cached sampling loop.

Why not ``model.generate``: it samples with the global torch RNG (no ``generator``
argument), so reproducibility would need global seeding, and it does not hand back the
log-probability of each sampled token under the *untempered* policy. The loop here is
what ``generate`` does underneath: one prefill forward pass over the left-padded batch,
then one token per step through the KV cache; finished rows are dropped from the cache so
a long straggler does not keep paying for the whole batch.

Log-probabilities: ``Sample.logprobs`` hold log-softmax of the raw logits (temperature
1, before top-p) of the generation model at each sampled token, i.e. the log-probability
under the policy that the learner trains, so the learner's importance ratio compares like
with like. Temperature and top-p only shape which token is drawn.

Randomness: every row is drawn from its own ``torch.Generator``, seeded with the row's
seed (the agent draws one seed per row from its own generator). A row's completion then
depends on its seed and prompt only, not on which other rows share its batch or which
rank generates it, so one process and N ``torchrun`` ranks sample the same batch.
"""

from __future__ import annotations

import contextlib
import copy
from collections.abc import Iterable, Sequence
from typing import TYPE_CHECKING, Any

import torch

from absolutezero.protocol import Sample
from absolutezero_policy.prefill_groups import GroupPrefill, join, length_groups
from absolutezero_policy.decoding_calls import advance_row, feed_inputs, plan_extras
from absolutezero_policy.prompt_lookup import NgramIndex  # noqa: F401 (annotations)
from absolutezero_policy.templating import RowCursor, TemplateStep
from absolutezero_policy.token_choice import RowDraws, choose_tokens

if TYPE_CHECKING:  # block_inputs imports this module (through shared_prompts)
    from absolutezero_policy.block_inputs import BlockInputs


#: Shorter common prefixes are not worth an extra forward pass.
MIN_SHARED_PREFIX = 16
#: Defaults of ``lookup_budget`` and ``lookup_tokens`` (see :func:`~absolutezero_policy.decoding_calls.plan_extras`).
DEFAULT_LOOKUP_BUDGET = 32
DEFAULT_LOOKUP_TOKENS = 8


def common_prefix_length(prompts: Sequence[Sequence[int]]) -> int:
    """Tokens shared by the start of every prompt, leaving each at least one of its own
    (the last prompt token must go through the model to give the first logits)."""
    first = prompts[0]
    length = min(len(p) for p in prompts) - 1
    for other in prompts[1:]:
        limit = min(length, len(other))
        index = 0
        while index < limit and other[index] == first[index]:
            index += 1
        length = index
    return max(length, 0)


def returned_cache(output: Any) -> Any:
    """The KV cache a model call returned: ``output.cache`` (transformers >= 5.2x, where
    reading ``past_key_values`` logs a deprecation warning) or ``output.past_key_values``."""
    return output.cache if hasattr(output, "cache") else output.past_key_values


class HFBackend:
    """Batched sampling from a transformers causal LM.

    ``model`` is the generation copy (e.g. bfloat16) that ``sync_weights`` refreshes from
    the trained model, or the trained model itself (float32); ``share_prefixes=False``
    turns off the shared prefill of identical prompts (for side-by-side measurements);
    ``stop_token_ids`` end a completion (the token is kept, it is part of what the policy
    learns), as do ``stop_strings`` appearing in the decoded completion; ``block_inputs``,
    when given, keeps each sampled completion's input of one block for the update.
    """

    def __init__(
        self,
        model: Any,
        tokenizer: Any,
        *,
        stop_token_ids: Sequence[int],
        stop_strings: Sequence[str],
        batch_size: int,
        max_new_tokens: int,
        temperature: float,
        top_p: float,
        share_prefixes: bool = True,
        block_inputs: BlockInputs | None = None,
        lookup_budget: int = DEFAULT_LOOKUP_BUDGET,
        lookup_tokens: int = DEFAULT_LOOKUP_TOKENS,
    ) -> None:
        if batch_size < 1 or max_new_tokens < 1:
            raise ValueError(
                f"batch_size and max_new_tokens must be >= 1, got {batch_size} and {max_new_tokens}"
            )
        if temperature <= 0:
            raise ValueError(f"temperature must be > 0 (use greedy=True for argmax), got {temperature}")
        if not 0 < top_p <= 1:
            raise ValueError(f"top_p must be in (0, 1], got {top_p}")
        if lookup_budget < 0 or lookup_tokens < 1:
            raise ValueError(f"lookup_budget must be >= 0 and lookup_tokens >= 1, got {lookup_budget} and {lookup_tokens}")
        self.model = model
        self.tokenizer = tokenizer
        self.stop_token_ids = frozenset(int(i) for i in stop_token_ids)
        self.stop_strings = tuple(s for s in stop_strings if s)
        self.batch_size = batch_size
        self.max_new_tokens = max_new_tokens
        self.temperature = temperature
        self.top_p = top_p
        self.pad_token_id = int(tokenizer.pad_token_id)
        self.share_prefixes = share_prefixes
        #: Decoding calls of at most this many tokens feed extras (forced ids, drafts); 0 = never.
        self.lookup_budget = lookup_budget
        #: Most extras fed per row in one call.
        self.lookup_tokens = lookup_tokens
        #: Keeps sampled completions' inputs of the first trained block for the update
        #: (:mod:`absolutezero_policy.block_inputs`); None = keep nothing.
        self.block_inputs = block_inputs
        from absolutezero_policy.shared_prompts import cache_keyword, unsupported_reason  # it imports this module

        # prefill in groups of similar length only where their caches can be joined
        self._joinable = unsupported_reason(model) is None
        #: The keyword the model body takes its KV cache under (transformers renamed it).
        self._cache_keyword = cache_keyword(model.base_model) or "past_key_values"

    @property
    def device(self) -> torch.device:
        return next(self.model.parameters()).device

    def sync_weights(self, source: torch.nn.Module | Iterable[tuple[str, torch.Tensor]]) -> None:
        """Copy ``source``'s parameters into the generation model (casting dtype).

        ``source`` is a model or an iterable of ``(name, tensor)`` pairs, consumed one at
        a time (the agent's gather of sharded parameters). A no-op when ``source`` is the
        generation model itself.

        Raises:
            KeyError: a name the generation model does not have.
        """
        if source is self.model:
            return
        pairs = source.named_parameters() if isinstance(source, torch.nn.Module) else source
        target = dict(self.model.named_parameters())
        with torch.no_grad():
            for name, tensor in pairs:
                if name not in target:
                    raise KeyError(f"the generation model has no parameter {name!r}")
                target[name].copy_(tensor)

    #: Sleeping frees nothing here, so the weights survive it (see :meth:`wake_up`).
    discards_weights = False

    def sleep(self) -> None:
        """Nothing to free: the generation copy is small next to the trainer on the
        machines this backend is for (vLLM's backend frees its engine here)."""

    def wake_up(self, weights: Iterable[tuple[str, torch.Tensor]] | None = None) -> None:
        """Load ``weights`` (the updated model, if any) for the next generation."""
        if weights is not None:
            self.sync_weights(weights)

    def generate(
        self,
        prompt_ids: Sequence[Sequence[int]],
        *,
        greedy: bool,
        seeds: Sequence[int],
        templates: Sequence[Sequence[TemplateStep]] | None = None,
    ) -> list[Sample]:
        """One completion per prompt (in order), in chunks of ``batch_size``.

        ``seeds[i]`` seeds prompt i's sampling (unused when ``greedy``).

        ``templates[i]`` is prompt i's answer template as ``(stop, forced ids, max tokens)`` steps
        (empty: free generation); see :mod:`absolutezero_policy.templating`. Identical
        prompts in a chunk share one prefill pass (their KV cache is copied per row), so
        n learnability rollouts of one task pay for its prompt once.

        Returns:
            Samples whose ``prompt_ids`` are the given ids, ``completion_ids`` the sampled
            (and forced) ids, stop token included, ``logprobs`` their untempered
            log-probabilities (0.0 at forced positions), ``forced`` the template mask,
            ``finish_reason`` ``"stop"`` or ``"length"``.
        """
        if templates is not None and len(templates) != len(prompt_ids):
            raise ValueError(f"{len(templates)} templates for {len(prompt_ids)} prompts")
        if len(seeds) != len(prompt_ids):
            raise ValueError(f"{len(seeds)} seeds for {len(prompt_ids)} prompts")
        samples: list[Sample] = []
        for start in range(0, len(prompt_ids), self.batch_size):
            chunk = [list(map(int, p)) for p in prompt_ids[start : start + self.batch_size]]
            steps = [[] for _ in chunk] if templates is None else templates[start : start + self.batch_size]
            generators = [] if greedy else [
                torch.Generator().manual_seed(int(seed)) for seed in seeds[start : start + self.batch_size]
            ]
            with self._recording(not greedy):
                samples.extend(self._generate_batch(chunk, list(steps), greedy, generators))
        return samples

    def _recording(self, on: bool) -> Any:
        if self.block_inputs is None:
            return contextlib.nullcontext()
        return self.block_inputs.recording(on)

    def _recorded(self) -> torch.Tensor | None:
        """The block input of the last model call, when recording."""
        if self.block_inputs is None or not self.block_inputs.is_recording:
            return None
        return self.block_inputs.take()

    def _decode(self, ids: list[int]) -> str:
        return self.tokenizer.decode(ids, skip_special_tokens=False)

    def _forward(self, cache: Any, fed: torch.Tensor | None = None, **inputs: Any) -> tuple[torch.Tensor, Any]:
        """The model over ``inputs`` and ``cache`` (a KV-cached call): the logits of each row's last
        position ``[rows, vocab]`` (with ``fed``, a ``[rows, width]`` mask: of every fed
        position, row by row, ``[fed positions, vocab]``) and the updated cache.

        Why not ``model(..., logits_to_keep=1)``: transformers then applies the output
        head to a non-contiguous ``[rows, 1, hidden]`` slice, which torch (2.13, bf16,
        inference mode) multiplies by expanding the head's weight once per row: 8 s
        instead of 0.03 s for 12 rows of Qwen2.5-Coder-0.5B's 152k-token head, most of a
        prefill's time. The head here gets a contiguous ``[rows, hidden]`` matrix.
        Assumes logits = output head(last hidden state), as the learner does.
        """
        output = self.model.base_model(**inputs, **{self._cache_keyword: cache}, use_cache=True)
        states = output.last_hidden_state
        hidden = states[:, -1, :].contiguous() if fed is None else states[fed.bool()]
        return self.model.get_output_embeddings()(hidden), returned_cache(output)

    def _prefill(self, prompts: list[list[int]]) -> tuple[torch.Tensor, Any, torch.Tensor, torch.Tensor, Any]:
        """The prompts' forward pass, doing shared work once, expanded to every row.

        With ``share_prefixes``: identical prompts are computed once, and the longest
        prefix common to all distinct prompts (system prompt, instructions) is computed
        once for the chunk and its KV cache copied to each of them; only the rest of each
        prompt then goes through the model, in groups of similar length whose caches are
        joined afterwards (:mod:`absolutezero_policy.prefill_groups`). The suffixes are
        left-padded *between* the shared prefix and the suffix, masked out, with
        positions continuing from the prefix, so every row sees exactly its own prompt.

        Returns the logits of each prompt's last position ``[prompts, vocab]``, the KV
        cache, the attention mask, each row's next position and, when recording block
        inputs, each row's prompt states as pieces (else None).
        """
        device = self.device
        if self.share_prefixes:
            distinct: dict[tuple[int, ...], int] = {}
            rows = [distinct.setdefault(tuple(p), len(distinct)) for p in prompts]
            unique = [list(p) for p in distinct]
        else:
            rows, unique = list(range(len(prompts))), prompts
        shared = common_prefix_length(unique) if self.share_prefixes and len(unique) > 1 else 0
        prefix = prefix_states = None
        if shared >= MIN_SHARED_PREFIX:
            head = torch.tensor([unique[0][:shared]], dtype=torch.long, device=device)
            prefix = returned_cache(self.model.base_model(input_ids=head, use_cache=True))  # no logits needed
            prefix_states = self._recorded()
        else:
            shared = 0
        tails = [p[shared:] for p in unique]
        groups = (
            length_groups([len(t) for t in tails]) if self.share_prefixes and self._joinable
            else [list(range(len(tails)))]
        )
        if len(groups) == 1:  # one batch in the prompts' own order (only join reorders rows)
            groups = [list(range(len(tails)))]
        parts = [self._prefill_group(tails, members, shared, prefix, last=len(groups) == 1) for members in groups]
        if len(parts) == 1:
            part = parts[0]
            attention = torch.cat([part.tail_mask.new_ones((len(unique), shared)), part.tail_mask], dim=1)
            logits, cache, next_position = part.logits, part.cache, part.next_position
        else:
            logits, cache, attention, next_position = join(parts, shared, self.model.config)
        if len(unique) < len(prompts):
            index = torch.tensor(rows, dtype=torch.long, device=device)
            cache.batch_select_indices(index)
            logits = logits[index]
            attention, next_position = attention[index], next_position[index]
        states = None
        if parts[0].states is not None:  # each prompt's block inputs: the prefix's, then its tail's
            tail_states: dict[int, torch.Tensor] = {}
            for part in parts:
                width = part.states.shape[1]
                for row, member in enumerate(part.members):
                    tail_states[member] = part.states[row, width - len(tails[member]) :]
            head_piece = [prefix_states[0]] if prefix_states is not None else []
            states = [head_piece + [tail_states[unique_row]] for unique_row in rows]
        return logits, cache, attention, next_position, states

    def _prefill_group(
        self, tails: list[list[int]], members: list[int], shared: int, prefix: Any, last: bool
    ) -> GroupPrefill:
        """Prefill the prompt tails ``members`` (left-padded to the group's longest) on a
        copy of the ``prefix`` cache (that cache itself when ``last``: no other group
        needs it)."""
        device = self.device
        chosen = [tails[i] for i in members]
        width = max(len(t) for t in chosen)
        input_ids = torch.full((len(chosen), width), self.pad_token_id, dtype=torch.long)
        tail_mask = torch.zeros((len(chosen), width), dtype=torch.long)
        for row, ids in enumerate(chosen):
            input_ids[row, width - len(ids) :] = torch.tensor(ids, dtype=torch.long)
            tail_mask[row, width - len(ids) :] = 1
        input_ids, tail_mask = input_ids.to(device), tail_mask.to(device)
        positions = shared + (tail_mask.cumsum(-1) - 1).clamp(min=0)
        attention = torch.cat([tail_mask.new_ones((len(chosen), shared)), tail_mask], dim=1)
        cache = None
        if prefix is not None:
            cache = prefix if last else copy.deepcopy(prefix)
            cache.batch_select_indices(torch.zeros(len(chosen), dtype=torch.long, device=device))
        logits, cache = self._forward(
            input_ids=input_ids, attention_mask=attention, position_ids=positions, cache=cache
        )
        return GroupPrefill(members, logits, cache, tail_mask, positions[:, -1] + 1, self._recorded())

    @torch.inference_mode()
    def _generate_batch(
        self,
        prompts: list[list[int]],
        templates: list[Sequence[TemplateStep]],
        greedy: bool,
        generators: list[torch.Generator],
    ) -> list[Sample]:
        """Prefill, then decoding calls until every row has finished.

        Each call feeds every active row its next token, followed by *extra* tokens when
        the call is small enough (:func:`~absolutezero_policy.decoding_calls.plan_extras`): ids an answer template forces next, or
        prompt-lookup drafts. The next call's logits then give the tokens of several
        positions of a row at once (:func:`~absolutezero_policy.token_choice.choose_tokens`,
        one draw per position); an extra is kept while it equals the token chosen at its
        position, and the cache slots of the rejected ones are masked out, so the
        completion is the one the one-token loop produces.
        """
        if any(len(p) == 0 for p in prompts):
            raise ValueError("cannot generate from an empty prompt (no token ids)")
        cursors = [
            RowCursor(steps, self.stop_token_ids, self.stop_strings, self._decode) for steps in templates
        ]
        draws = [RowDraws(g) for g in generators]
        lookups: dict[int, NgramIndex] = {}  # rows' prompt-lookup indexes, made when first drafted
        logits, cache, attention, next_position, prompt_states = self._prefill(prompts)
        active = list(range(len(prompts)))
        extras: list[list[int]] = [[] for _ in prompts]  # by batch position: what followed each row's token
        states: torch.Tensor | None = None  # block inputs of the last decoding call
        decoded: list[list[torch.Tensor]] = [[] for _ in prompts]  # block inputs of the valid fed tokens
        width = 0  # slots per row of the last decoding call (0: it was the prefill)
        while True:
            counts = [1 + len(extra) for extra in extras]
            uniforms = None if greedy else [u for row, n in zip(active, counts) for u in draws[row].peek(n)]
            tokens, logprobs = choose_tokens(logits, uniforms, temperature=self.temperature, top_p=self.top_p)
            keep: list[int] = []
            nexts: list[int] = []
            valid: list[int] = []
            offset = 0
            for position, (row, count) in enumerate(zip(active, counts)):
                used, token = advance_row(cursors[row], draws[row] if draws else None, extras[position],
                                          tokens[offset : offset + count], logprobs[offset : offset + count],
                                          self.max_new_tokens)
                offset += count
                valid.append(used)
                if states is not None:
                    decoded[row].append(states[position, width - count : width - count + used])
                if token is not None:
                    keep.append(position)
                    nexts.append(token)
            if not keep:
                break
            if width:  # mask the slots of rejected extras; the next token goes after the kept ones
                for position, (count, used) in enumerate(zip(counts, valid)):
                    if used < count:
                        attention[position, attention.shape[1] - (count - used) :] = 0
                next_position = next_position + torch.tensor(valid, dtype=next_position.dtype, device=next_position.device)
            if len(keep) < len(active):
                index = torch.tensor(keep, dtype=torch.long, device=attention.device)
                cache.batch_select_indices(index)
                attention, next_position = attention[index], next_position[index]
                active = [active[k] for k in keep]
            extras = plan_extras(
                active, cursors, prompts, lookups,
                budget=self.lookup_budget, most=self.lookup_tokens, max_new_tokens=self.max_new_tokens,
            )
            input_ids, fed, positions = feed_inputs(nexts, extras, next_position, self.pad_token_id)
            width = input_ids.shape[1]
            attention = torch.cat([attention, fed], dim=1)
            logits, cache = self._forward(
                fed=fed if width > 1 else None, input_ids=input_ids, attention_mask=attention,
                position_ids=positions, cache=cache,
            )
            states = self._recorded()
        if prompt_states is not None:
            for prompt, cursor, pieces, steps in zip(prompts, cursors, prompt_states, decoded):
                if cursor.completion:
                    tail = [torch.cat(steps)] if steps else []
                    self.block_inputs.keep(prompt, cursor.completion, pieces + tail)
        return [
            Sample(
                prompt_ids=prompt,
                completion_ids=cursor.completion,
                logprobs=cursor.logprobs,
                text=self.tokenizer.decode(cursor.completion, skip_special_tokens=True),
                finish_reason="stop" if cursor.finished and not cursor.truncated else "length",
                forced=cursor.forced if any(cursor.forced) else [],
            )
            for prompt, cursor in zip(prompts, cursors)
        ]

    def close(self) -> None:
        """Nothing to release: the model belongs to the agent."""
