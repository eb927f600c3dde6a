"""Run a benchmark with an agent: generate, score through the environment, aggregate.

The harness is benchmark-agnostic: anything following :class:`Benchmark` (prepared
tasks, the environment's solver prompt, the environment's verifier) can be run. Decoding
follows the usual protocol for code benchmarks:

* **greedy pass@1**: one greedy completion per problem (always, unless ``greedy=False``);
* **sampled pass@k**: with ``samples = n > 1``, ``n`` sampled completions per problem at
  the agent's temperature, scored with the unbiased estimator
  ``1 - C(n-c, k) / C(n, k)`` (:mod:`absolutezero_benchmarks.passk`).

Every response handed to the verifier is ``prompt.prefill + completion``, exactly as in
self-play, so the benchmark scores the same parsed answer the trainer would.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol, runtime_checkable

from absolutezero.protocol import Agent, Prompt, Task, Verdict

from absolutezero_benchmarks.passk import mean_pass_at_k

__all__ = [
    "Benchmark",
    "BenchmarkResult",
    "PreparedTask",
    "ProblemLike",
    "ProblemRecord",
    "length_order",
    "prompt_text",
    "run_benchmark",
]


@runtime_checkable
class ProblemLike(Protocol):
    """What the harness reads of a benchmark's problem: its id (each benchmark has its
    own problem type: a CruxEval row, a code-generation problem, a math problem)."""

    id: str


@dataclass(frozen=True)
class PreparedTask:
    """A benchmark problem turned into an environment task with canonical gold answer."""

    problem: ProblemLike
    task: Task


@runtime_checkable
class Benchmark(Protocol):
    """What the harness needs from a benchmark (see ``cruxeval.CruxEvalBenchmark``)."""

    name: str

    def prepare(self, problems: Sequence[ProblemLike]) -> tuple[list[PreparedTask], list[dict[str, str]]]:
        """Tasks with canonical gold, and ``{"id", "reason"}`` for each skipped problem."""
        ...

    def solver_prompt(self, task: Task) -> Prompt:
        """The environment's solver prompt for ``task``."""
        ...

    def score(self, tasks: Sequence[Task], prompts: Sequence[Prompt], responses: Sequence[str]) -> list[Verdict]:
        """The environment's verdicts (sandboxed), element-wise."""
        ...


@dataclass
class ProblemRecord:
    """Everything about one problem, for inspection (one JSONL line in the records file).

    ``responses``/``verdicts``/``correct`` list the greedy response first (when greedy
    decoding ran), then the sampled ones; ``greedy_correct`` is None without greedy.
    """

    id: str
    prompt: str
    messages: list[dict[str, str]]
    prefill: str
    responses: list[str]
    decoding: list[str]
    finish_reasons: list[str]
    verdicts: list[dict[str, Any]]
    correct: list[bool]
    greedy_correct: bool | None
    sampled_correct: int

    def to_json(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "prompt": self.prompt,
            "messages": self.messages,
            "prefill": self.prefill,
            "responses": self.responses,
            "decoding": self.decoding,
            "finish_reasons": self.finish_reasons,
            "verdicts": self.verdicts,
            "correct": self.correct,
            "greedy_correct": self.greedy_correct,
            "sampled_correct": self.sampled_correct,
        }


@dataclass
class BenchmarkResult:
    """Aggregate figures of one benchmark run plus the per-problem records.

    ``pass_at_1`` is greedy pass@1 when greedy decoding ran, else the sampled estimate;
    ``pass_at_k`` is the sampled unbiased pass@k (None without sampling);
    ``format_error_rate`` is the share of all scored responses the parser could not
    read; ``n_problems`` counts scored problems (``skipped`` ones are excluded).
    """

    benchmark: str
    model: str
    n_problems: int
    skipped: list[dict[str, str]]
    k: int
    samples: int
    greedy: bool
    pass_at_1: float
    pass_at_1_sampled: float | None
    pass_at_k: float | None
    format_error_rate: float
    seconds: float
    records: list[ProblemRecord] = field(default_factory=list)

    def summary(self) -> dict[str, Any]:
        """JSON-serialisable figures without the per-problem records."""
        return {
            "benchmark": self.benchmark,
            "model": self.model,
            "n_problems": self.n_problems,
            "n_skipped": len(self.skipped),
            "skipped": self.skipped,
            "k": self.k,
            "samples": self.samples,
            "greedy": self.greedy,
            "pass@1": self.pass_at_1,
            "pass@1_sampled": self.pass_at_1_sampled,
            f"pass@{self.k}": self.pass_at_k if self.k > 1 else self.pass_at_1,
            "format_error_rate": self.format_error_rate,
            "seconds": self.seconds,
        }

    def metrics(self) -> dict[str, float]:
        """Flat ``{"<benchmark>/<metric>": value}`` figures for the self-play metrics log."""
        out = {
            f"{self.benchmark}/pass@1": self.pass_at_1,
            f"{self.benchmark}/format_error_rate": self.format_error_rate,
            f"{self.benchmark}/n_problems": float(self.n_problems),
            f"{self.benchmark}/n_skipped": float(len(self.skipped)),
            f"{self.benchmark}/seconds": self.seconds,
        }
        if self.pass_at_1_sampled is not None:
            out[f"{self.benchmark}/pass@1_sampled"] = self.pass_at_1_sampled
        if self.pass_at_k is not None and self.k > 1:
            out[f"{self.benchmark}/pass@{self.k}"] = self.pass_at_k
        return out


def prompt_text(prompt: Prompt) -> str:
    """A readable rendering of a chat prompt (role headers, then the forced prefill)."""
    parts = [f"[{message['role']}]\n{message['content']}" for message in prompt.messages]
    parts.append(f"[assistant]\n{prompt.prefill}")
    return "\n\n".join(parts)


def _check_decoding(k: int, samples: int, greedy: bool) -> None:
    for name, value in (("k", k), ("samples", samples)):
        if isinstance(value, bool) or not isinstance(value, int) or value < 1:
            raise ValueError(f"{name} must be a positive integer, got {value!r}")
    if k > 1 and samples < k:
        raise ValueError(
            f"pass@{k} needs samples >= k sampled completions per problem, got samples={samples}; "
            f"pass samples={k} or more (e.g. samples={max(2 * k, 10)})"
        )


def _chunks(items: Sequence[Any], size: int) -> list[Sequence[Any]]:
    return [items[i : i + size] for i in range(0, len(items), size)]


def _generate(
    agent: Agent,
    prompts: Sequence[Prompt],
    num_samples: int,
    greedy: bool,
    chunk: int,
    on_chunk: Callable[[int], None] | None,
) -> list[list[Any]]:
    # Prompts go to the agent shortest first, so each chunk holds prompts of similar
    # length: a batched backend pads every row to its chunk's longest prompt, and in
    # problem order that padding is about half of the prefill work. Results come back
    # in problem order.
    order = length_order(prompts)
    out: list[list[Any] | None] = [None] * len(prompts)
    for part in _chunks(order, chunk):
        samples = agent.generate([prompts[i] for i in part], num_samples=num_samples, greedy=greedy)
        if len(samples) != len(part) or any(len(s) != num_samples for s in samples):
            raise RuntimeError(
                f"agent {type(agent).__name__}.generate returned {len(samples)} prompt results "
                f"for {len(part)} prompts (each should hold {num_samples} samples)"
            )
        for i, sample in zip(part, samples):
            out[i] = sample
        if on_chunk is not None:
            on_chunk(len(part))
    return out  # type: ignore[return-value]


def length_order(prompts: Sequence[Prompt]) -> list[int]:
    """Indices of ``prompts`` from shortest to longest rendered text (stable on ties)."""
    return sorted(range(len(prompts)), key=lambda i: len(prompt_text(prompts[i])))


def run_benchmark(
    benchmark: Benchmark,
    agent: Agent,
    problems: Sequence[ProblemLike],
    k: int = 1,
    samples: int = 1,
    greedy: bool = True,
    model: str = "",
    chunk: int = 32,
    progress: bool = False,
) -> BenchmarkResult:
    """Evaluate ``agent`` on ``problems`` of ``benchmark``.

    Args:
        benchmark: prepares tasks, builds solver prompts and scores (sandboxed).
        agent: any :class:`Agent`; it is used as is (no reload, no state change besides
            its generator advancing).
        problems: the problems to run (already subset by the caller).
        k: the k of pass@k; ``k > 1`` needs ``samples >= k``.
        samples: sampled completions per problem; 1 means greedy only (when ``greedy``).
        greedy: also run one greedy completion per problem (the headline pass@1).
        model: label for the report (model name or checkpoint path).
        chunk: prompts per ``agent.generate`` call (bounds memory, paces the progress bar).
        progress: show a tqdm progress bar on stderr.

    Returns:
        A :class:`BenchmarkResult` with the figures and one record per scored problem.

    Raises:
        ValueError: bad ``k``/``samples`` combination, or every problem was skipped.
    """
    _check_decoding(k, samples, greedy)
    sampled_n = samples if (samples > 1 or not greedy) else 0
    start = time.perf_counter()
    prepared, skipped = benchmark.prepare(problems)
    if not prepared:
        reasons = "; ".join(f"{s['id']}: {s['reason']}" for s in skipped[:3])
        raise ValueError(
            f"{benchmark.name}: none of the {len(problems)} problems could be prepared ({reasons})"
        )
    tasks = [item.task for item in prepared]
    prompts = [benchmark.solver_prompt(task) for task in tasks]

    bar = None
    if progress:
        from tqdm.auto import tqdm

        total = len(prompts) * ((1 if greedy else 0) + (1 if sampled_n else 0))
        bar = tqdm(total=total, desc=f"{benchmark.name} generate", unit="prompt", leave=False)
    on_chunk = bar.update if bar is not None else None
    try:
        greedy_samples = _generate(agent, prompts, 1, True, chunk, on_chunk) if greedy else None
        sampled = _generate(agent, prompts, sampled_n, False, chunk, on_chunk) if sampled_n else None
    finally:
        if bar is not None:
            bar.close()

    # flatten (problem index, decoding, sample) so the environment scores one big batch
    flat: list[tuple[int, str, Any]] = []
    for i in range(len(prompts)):
        if greedy_samples is not None:
            flat.append((i, "greedy", greedy_samples[i][0]))
        if sampled is not None:
            flat.extend((i, "sampled", sample) for sample in sampled[i])
    responses = [prompts[i].prefill + sample.text for i, _, sample in flat]
    verdicts = benchmark.score([tasks[i] for i, _, _ in flat], [prompts[i] for i, _, _ in flat], responses)
    if len(verdicts) != len(flat):
        raise RuntimeError(f"{benchmark.name}: {len(verdicts)} verdicts for {len(flat)} responses")

    records = [
        ProblemRecord(
            id=item.problem.id,
            prompt=prompt_text(prompts[i]),
            messages=[dict(m) for m in prompts[i].messages],
            prefill=prompts[i].prefill,
            responses=[],
            decoding=[],
            finish_reasons=[],
            verdicts=[],
            correct=[],
            greedy_correct=None,
            sampled_correct=0,
        )
        for i, item in enumerate(prepared)
    ]
    for (i, decoding, sample), response, verdict in zip(flat, responses, verdicts):
        record = records[i]
        record.responses.append(response)
        record.decoding.append(decoding)
        record.finish_reasons.append(sample.finish_reason)
        record.verdicts.append({"score": verdict.score, "format_ok": verdict.format_ok, "reason": verdict.reason})
        record.correct.append(verdict.correct)
        if decoding == "greedy":
            record.greedy_correct = verdict.correct
        else:
            record.sampled_correct += int(verdict.correct)

    pass_sampled = mean_pass_at_k([r.sampled_correct for r in records], sampled_n, 1) if sampled_n else None
    pass_k = mean_pass_at_k([r.sampled_correct for r in records], sampled_n, k) if sampled_n and k > 1 else None
    if greedy:
        pass_1 = sum(bool(r.greedy_correct) for r in records) / len(records)
    else:
        pass_1 = float(pass_sampled)  # type: ignore[arg-type]
    format_errors = sum(not v.format_ok for v in verdicts) / len(verdicts)
    return BenchmarkResult(
        benchmark=benchmark.name,
        model=model,
        n_problems=len(records),
        skipped=list(skipped),
        k=k,
        samples=samples,
        greedy=greedy,
        pass_at_1=float(pass_1),
        pass_at_1_sampled=pass_sampled,
        pass_at_k=pass_k,
        format_error_rate=float(format_errors),
        seconds=time.perf_counter() - start,
        records=records,
    )
