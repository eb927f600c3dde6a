"""What every benchmark of the paper's suite shares: data location, options, prompt
style, the harness run, clean-up and reporting (the CruxEval benchmark's contract, see
``absolutezero.evaluate``). Subclasses add :meth:`parse` (rows -> problems),
``prepare``, ``solver_prompt`` and ``score`` (:mod:`.codegen`, :mod:`.math_sets`).
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any, ClassVar

from absolutezero.protocol import Agent

from absolutezero_benchmarks import prompts, report
from absolutezero_benchmarks.dataset import select
from absolutezero_benchmarks.harness import BenchmarkResult, run_benchmark
from absolutezero_benchmarks.sources import Row, Source

__all__ = ["KNOWN_OPTIONS", "SuiteBenchmark", "check_options"]

#: Options a benchmark of the suite accepts in ``env_options`` (each uses those it
#: needs, so one set of options can go to a whole group): sandbox ``workers``,
#: ``timeout`` (seconds per test job or math check) and ``memory_mb``; LiveCodeBench's
#: ``start_date``/``end_date`` window.
KNOWN_OPTIONS = ("workers", "timeout", "memory_mb", "start_date", "end_date")


def check_options(options: Mapping[str, Any], benchmark: str) -> dict[str, Any]:
    """``options`` as a dict, after checking every key is one the suite knows.

    Raises:
        ValueError: an unknown key (the message lists the known ones).
    """
    unknown = sorted(set(options) - set(KNOWN_OPTIONS))
    if unknown:
        raise ValueError(
            f"{benchmark}: unknown option(s) {', '.join(map(repr, unknown))}; known: {', '.join(KNOWN_OPTIONS)}"
        )
    timeout = options.get("timeout")
    if timeout is not None and (isinstance(timeout, bool) or not isinstance(timeout, (int, float)) or timeout <= 0):
        raise ValueError(f"{benchmark}: timeout must be a positive number of seconds, got {timeout!r}")
    return dict(options)


class SuiteBenchmark:
    """Base of the suite's benchmarks.

    Args:
        path: data file, ``hf://...``, or None for the default (see :mod:`.sources`).
        env_options: see :data:`KNOWN_OPTIONS`.
        prompt: ``azr`` or ``native`` (:mod:`.prompts`).
    """

    name: ClassVar[str] = ""
    source: ClassVar[Source]

    def __init__(
        self, path: str | Path | None = None, env_options: Mapping[str, Any] | None = None, prompt: str = "azr"
    ) -> None:
        self.path = None if path is None else str(path)
        self.options = check_options(env_options or {}, self.name)
        self.prompt_style = prompts.check_style(prompt, self.name)

    @classmethod
    def check_path(cls, path: str | None) -> None:
        """Fail fast (before a model is loaded) when the data file cannot be found.

        Raises:
            DatasetError: the file does not exist (the message says how to point at it).
        """
        cls.source.check(path)

    def parse(self, rows: list[Row]) -> list[Any]:
        """The benchmark's problems from the data rows (subclasses)."""
        raise NotImplementedError

    def load(self, limit: int | None = None, seed: int | None = None) -> list[Any]:
        """All problems, the first ``limit``, or a seeded random subset.

        Raises:
            DatasetError: the data is missing or malformed.
        """
        return select(self.parse(self.source.rows(self.path)), limit, seed)

    def run(
        self,
        agent: Agent,
        limit: int | None = None,
        seed: int | None = None,
        k: int = 1,
        samples: int = 1,
        model: str = "",
        progress: bool = False,
    ) -> BenchmarkResult:
        """Load, prepare and evaluate: see :func:`harness.run_benchmark` for the figures."""
        problems = self.load(limit, seed)
        return run_benchmark(self, agent, problems, k=k, samples=samples, model=model, progress=progress)

    def close(self) -> None:
        """Release what the benchmark started (sandbox, checker). Safe to call twice."""

    def __enter__(self) -> "SuiteBenchmark":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    format_table = staticmethod(report.format_table)
    write_results = staticmethod(report.write_results)
