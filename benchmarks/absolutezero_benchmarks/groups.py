"""The paper's benchmark groups: ``paper-code``, ``paper-math`` and ``paper``.

Absolute Zero reports code as the mean of HumanEval+, MBPP+ and LiveCodeBench (code
generation), math as the mean of AIME24, AIME25, AMC23, MATH500, Minerva and
OlympiadBench, and the total as (Code Avg + Math Avg) / 2. A group runs its members one
after the other (each with its own data, sandbox or checker) and reports every member
as that benchmark alone would (table rows, ``results.json`` entries, records files),
plus the averages of their pass@1 under the group's name.

``path=`` of a group is a *data folder* (each member reads its usual file under it,
e.g. ``<folder>/evalplus/HumanEvalPlus.jsonl.gz``), ``hf://`` (every member from its
usual hub dataset), or nothing (each member's default, see :mod:`.sources`).
"""

from __future__ import annotations

import os
import time
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar

from absolutezero.protocol import Agent

from absolutezero_benchmarks import report
from absolutezero_benchmarks.aime24 import AIME24
from absolutezero_benchmarks.aime25 import AIME25
from absolutezero_benchmarks.amc23 import AMC23
from absolutezero_benchmarks.base import check_options
from absolutezero_benchmarks.dataset import DatasetError
from absolutezero_benchmarks.evalplus import HumanEvalPlus, MBPPPlus
from absolutezero_benchmarks.harness import BenchmarkResult
from absolutezero_benchmarks.livecodebench import LiveCodeBench
from absolutezero_benchmarks.math500 import MATH500
from absolutezero_benchmarks.minerva import Minerva
from absolutezero_benchmarks.olympiadbench import OlympiadBench
from absolutezero_benchmarks.prompts import check_style
from absolutezero_benchmarks.sources import HUB_PREFIX

__all__ = ["BenchmarkGroup", "GroupResult", "Paper", "PaperCode", "PaperMath"]

CODE = (HumanEvalPlus, MBPPPlus, LiveCodeBench)
MATH = (AIME24, AIME25, AMC23, MATH500, Minerva, OlympiadBench)


def _mean(values: list[float]) -> float | None:
    return sum(values) / len(values) if values else None


@dataclass
class GroupResult:
    """The members' results and the group's averages of their pass@1."""

    benchmark: str
    model: str
    members: list[BenchmarkResult]
    code: tuple[str, ...]
    math: tuple[str, ...]
    seconds: float = 0.0

    def averages(self) -> dict[str, float | None]:
        """``Code Avg``, ``Math Avg`` (those the group has) and ``Total`` (both)."""
        scores = {member.benchmark: member.pass_at_1 for member in self.members}
        out: dict[str, float | None] = {}
        if self.code:
            out["Code Avg"] = _mean([scores[name] for name in self.code])
        if self.math:
            out["Math Avg"] = _mean([scores[name] for name in self.math])
        if self.code and self.math:
            code, math = out["Code Avg"], out["Math Avg"]
            out["Total"] = None if code is None or math is None else (code + math) / 2
        return out

    def summary(self) -> dict[str, Any]:
        """JSON-serialisable figures: members, averages, seconds."""
        keys = {"Code Avg": "code_avg", "Math Avg": "math_avg", "Total": "total"}
        return {
            "benchmark": self.benchmark,
            "model": self.model,
            "group": True,
            "members": [member.benchmark for member in self.members],
            **{keys[label]: value for label, value in self.averages().items()},
            "seconds": self.seconds,
        }

    def metrics(self) -> dict[str, float]:
        """Every member's metrics plus ``<group>/code_avg``, ``/math_avg``, ``/total``."""
        out: dict[str, float] = {}
        for member in self.members:
            out.update(member.metrics())
        summary = self.summary()
        for key in ("code_avg", "math_avg", "total"):
            if summary.get(key) is not None:
                out[f"{self.benchmark}/{key}"] = float(summary[key])
        return out


class BenchmarkGroup:
    """Runs its member benchmarks and averages them (see the module docstring)."""

    name: ClassVar[str] = ""
    code: ClassVar[tuple[type, ...]] = ()
    math: ClassVar[tuple[type, ...]] = ()

    def __init__(
        self, path: str | Path | None = None, env_options: Mapping[str, Any] | None = None, prompt: str = "azr"
    ) -> None:
        self.path = None if path is None else str(path)
        self.options = check_options(env_options or {}, self.name)
        self.prompt_style = check_style(prompt, self.name)

    @classmethod
    def members(cls) -> tuple[type, ...]:
        return cls.code + cls.math

    @classmethod
    def member_path(cls, member: type, path: str | None) -> str | None:
        """A member's data path under the group's ``path`` (folder, ``hf://`` or None)."""
        if path is None:
            return None
        if path.startswith(HUB_PREFIX):
            return HUB_PREFIX
        return os.path.join(path, member.source.relative)

    @classmethod
    def check_path(cls, path: str | None) -> None:
        """Fail fast (before a model is loaded) when a member's data is missing.

        Raises:
            DatasetError: ``path`` is not a folder, or a member's file does not exist.
        """
        if path is not None and not path.startswith(HUB_PREFIX) and not Path(path).expanduser().is_dir():
            raise DatasetError(
                f"{cls.name}: path= must be a data folder holding each member's file (e.g. "
                f"<folder>/{HumanEvalPlus.source.relative}), got {path!r}"
            )
        for member in cls.members():
            member.check_path(cls.member_path(member, path))

    def run(
        self,
        agent: Agent,
        limit: int | None = None,
        seed: int | None = None,
        k: int = 1,
        samples: int = 1,
        model: str = "",
        progress: bool = False,
    ) -> GroupResult:
        """Run every member with the same settings; ``limit`` applies to each member."""
        start = time.perf_counter()
        results = []
        for member in self.members():
            path = self.member_path(member, self.path)
            instance = member(path=path, env_options=self.options, prompt=self.prompt_style)
            try:
                settings = {"limit": limit, "seed": seed, "k": k, "samples": samples, "model": model}
                results.append(instance.run(agent, progress=progress, **settings))
            finally:
                instance.close()
        return GroupResult(
            benchmark=self.name, model=model, members=results,
            code=tuple(m.name for m in self.code), math=tuple(m.name for m in self.math),
            seconds=time.perf_counter() - start,
        )

    def close(self) -> None:
        """Nothing to release: members are closed as soon as they ran."""

    format_table = staticmethod(report.format_table)
    write_results = staticmethod(report.write_results)


class PaperCode(BenchmarkGroup):
    """HumanEval+, MBPP+, LiveCodeBench; prints Code Avg."""

    name = "paper-code"
    code = CODE


class PaperMath(BenchmarkGroup):
    """AIME24, AIME25, AMC23, MATH500, Minerva, OlympiadBench; prints Math Avg."""

    name = "paper-math"
    math = MATH


class Paper(BenchmarkGroup):
    """Both groups; prints Code Avg, Math Avg and Total = (Code Avg + Math Avg) / 2."""

    name = "paper"
    code = CODE
    math = MATH
