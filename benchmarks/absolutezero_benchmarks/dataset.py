"""Loading and validating CruxEval problems (JSONL file or the Hugging Face hub).

CruxEval is evaluation data only. It is never copied into this repository: the default
file lives *next to* the checkout (``../shared/data/cruxeval/cruxeval.jsonl`` relative to
the repository root) or wherever the environment variable ``ABSOLUTEZERO_CRUXEVAL``
points, and users can pass any path or ``hf://<dataset name>`` to read it from the hub.

Every row is checked when loaded (JSON syntax, required keys, string types, unique ids)
so that a broken file fails with the file name and line number rather than as a
confusing score later.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

__all__ = [
    "ENV_VAR",
    "HUB_DATASET",
    "HUB_PREFIX",
    "DatasetError",
    "Problem",
    "default_path",
    "load_hub",
    "load_jsonl",
    "load_problems",
    "select",
]

#: Environment variable naming the CruxEval JSONL file (overrides the default location).
ENV_VAR = "ABSOLUTEZERO_CRUXEVAL"
#: Hugging Face hub dataset used by ``path="hf://"`` (no name given).
HUB_DATASET = "cruxeval-org/cruxeval"
#: A ``path`` starting with this prefix is a hub dataset name, not a file.
HUB_PREFIX = "hf://"
#: Default location relative to the repository root (outside the repository on purpose).
_RELATIVE_DEFAULT = Path("..", "shared", "data", "cruxeval", "cruxeval.jsonl")
_REQUIRED_KEYS = ("id", "code", "input", "output")


class DatasetError(ValueError):
    """The benchmark data is missing or malformed; the message says where and what to do."""


@dataclass(frozen=True)
class Problem:
    """One CruxEval row: ``code`` defines ``f``; ``f(<input>) == <output>``.

    ``input`` is the argument list as Python literal text (e.g. ``"'abc', 3"``) and
    ``output`` the returned value as literal text, both exactly as in the dataset (the
    benchmark canonicalises them through the sandbox before scoring).
    """

    id: str
    code: str
    input: str
    output: str


def _repository_root(start: Path) -> Path | None:
    """The nearest ancestor of ``start`` holding ``pyproject.toml`` (the checkout root)."""
    for folder in (start, *start.parents):
        if (folder / "pyproject.toml").is_file():
            return folder
    return None


def default_path() -> Path:
    """Where the CruxEval JSONL is expected when the user gives no path.

    Returns:
        ``$ABSOLUTEZERO_CRUXEVAL`` if set, else ``<repository root>/../shared/data/
        cruxeval/cruxeval.jsonl`` (the root is found upward from this package). The file
        is not required to exist; :func:`load_jsonl` reports a missing file clearly.

    Raises:
        DatasetError: the variable is unset and no repository root can be found (an
            installed, non-editable package): the user has to say where the data is.
    """
    override = os.environ.get(ENV_VAR)
    if override:
        return Path(override).expanduser()
    root = _repository_root(Path(__file__).resolve().parent)
    if root is None:
        raise DatasetError(
            "no CruxEval file given and no repository checkout to find the default one from; "
            f"pass path=/path/to/cruxeval.jsonl, set {ENV_VAR}, or use path={HUB_PREFIX}"
            f"{HUB_DATASET} (needs the 'datasets' package and network)"
        )
    return (root / _RELATIVE_DEFAULT).resolve()


def _problem_from_row(row: object, where: str) -> Problem:
    if not isinstance(row, dict):
        raise DatasetError(f"{where}: expected a JSON object, got {type(row).__name__}")
    missing = [key for key in _REQUIRED_KEYS if key not in row]
    if missing:
        raise DatasetError(
            f"{where}: missing key(s) {', '.join(map(repr, missing))}; every row needs "
            f"{', '.join(map(repr, _REQUIRED_KEYS))}"
        )
    for key in _REQUIRED_KEYS:
        if not isinstance(row[key], str):
            raise DatasetError(
                f"{where}: {key!r} must be a string (Python literal or source text), "
                f"got {type(row[key]).__name__}"
            )
    if not row["id"].strip():
        raise DatasetError(f"{where}: 'id' is empty")
    if not row["code"].strip():
        raise DatasetError(f"{where}: 'code' is empty")
    return Problem(id=row["id"], code=row["code"], input=row["input"], output=row["output"])


def _check_unique(problems: Sequence[Problem], source: str) -> None:
    seen: set[str] = set()
    for problem in problems:
        if problem.id in seen:
            raise DatasetError(f"{source}: duplicate problem id {problem.id!r}")
        seen.add(problem.id)


def load_jsonl(path: str | os.PathLike[str]) -> list[Problem]:
    """Read and validate a CruxEval JSONL file (one object per line; blank lines ignored).

    Returns:
        The problems in file order.

    Raises:
        DatasetError: the file does not exist or is not readable UTF-8, a line is not
            valid JSON (message names the line number), a row lacks one of ``id``,
            ``code``, ``input``, ``output`` or has a non-string value, ids repeat, or the
            file holds no problems.
    """
    file = Path(path).expanduser()
    if not file.is_file():
        hint = "" if file.exists() else " (it does not exist)"
        raise DatasetError(
            f"CruxEval file {str(file)!r} is not a file{hint}; pass path=/path/to/cruxeval.jsonl "
            f"or set {ENV_VAR}"
        )
    problems: list[Problem] = []
    try:
        with file.open("r", encoding="utf-8") as handle:
            for number, line in enumerate(handle, start=1):
                if not line.strip():
                    continue
                where = f"{file}:{number}"
                try:
                    row = json.loads(line)
                except json.JSONDecodeError as error:
                    raise DatasetError(f"{where}: invalid JSON ({error.msg} at column {error.colno})") from None
                problems.append(_problem_from_row(row, where))
    except UnicodeDecodeError as error:
        raise DatasetError(f"{file}: not UTF-8 text ({error.reason} at byte {error.start})") from None
    if not problems:
        raise DatasetError(f"{file}: no problems in the file")
    _check_unique(problems, str(file))
    return problems


def load_hub(name: str = HUB_DATASET, split: str = "test", revision: str | None = None) -> list[Problem]:
    """Load CruxEval from the Hugging Face hub with the ``datasets`` library.

    ``datasets`` is imported here, lazily, so it stays an optional dependency (extra
    ``absolutezero[hub]``).

    Returns:
        The problems of ``split`` in dataset order.

    Raises:
        DatasetError: ``datasets`` is not installed, the hub cannot be reached (offline)
            or the dataset/split does not exist, or the rows are malformed.
    """
    try:
        import datasets
    except ImportError:
        raise DatasetError(
            "loading CruxEval from the Hugging Face hub needs the 'datasets' package: "
            "pip install 'absolutezero[hub]' (or pass path=/path/to/cruxeval.jsonl)"
        ) from None
    try:
        table = datasets.load_dataset(name, split=split, revision=revision)
    except Exception as error:  # network, auth and missing-dataset errors vary by version
        raise DatasetError(
            f"cannot load {name!r} (split {split!r}) from the Hugging Face hub: "
            f"{type(error).__name__}: {error}. Check the name and your network (offline "
            "machines: download cruxeval.jsonl elsewhere and pass path=...)"
        ) from error
    source = f"{HUB_PREFIX}{name}[{split}]"
    problems = [_problem_from_row(dict(row), f"{source} row {i}") for i, row in enumerate(table)]
    if not problems:
        raise DatasetError(f"{source}: no problems in the split")
    _check_unique(problems, source)
    return problems


def load_problems(path: str | os.PathLike[str] | None = None) -> list[Problem]:
    """Problems from ``path``: a JSONL file, ``hf://<name>[@split]``, or ``None`` (default file).

    ``hf://`` alone means ``hf://cruxeval-org/cruxeval`` split ``test``; a split is chosen
    with ``@``, e.g. ``hf://cruxeval-org/cruxeval@test``.

    Raises:
        DatasetError: see :func:`load_jsonl`, :func:`load_hub` and :func:`default_path`.
    """
    if path is None:
        return load_jsonl(default_path())
    text = os.fspath(path)
    if text.startswith(HUB_PREFIX):
        spec = text[len(HUB_PREFIX):]
        name, _, split = spec.partition("@")
        return load_hub(name or HUB_DATASET, split=split or "test")
    return load_jsonl(text)


def select(problems: Sequence[Problem], limit: int | None = None, seed: int | None = None) -> list[Problem]:
    """A subset for quick runs.

    ``limit=None`` (or ``limit >= len(problems)``) keeps all problems. Otherwise, with
    ``seed=None`` the *first* ``limit`` problems are kept (stable across runs and models,
    good for before/after comparisons); with an integer ``seed`` a uniformly random subset
    of size ``limit`` is drawn with ``numpy.random.default_rng(seed)`` and returned in
    dataset order (the same seed always gives the same subset).

    Raises:
        ValueError: ``limit`` is not a positive integer.
    """
    if limit is None:
        return list(problems)
    if isinstance(limit, bool) or not isinstance(limit, (int, np.integer)) or limit < 1:
        raise ValueError(f"limit must be a positive integer or None (all problems), got {limit!r}")
    if limit >= len(problems):
        return list(problems)
    if seed is None:
        return list(problems[:limit])
    rng = np.random.default_rng(seed)
    chosen = np.sort(rng.choice(len(problems), size=int(limit), replace=False))
    return [problems[int(i)] for i in chosen]


def ids(problems: Iterable[Problem]) -> list[str]:
    """The problem ids, in order (convenience for reports and tests)."""
    return [problem.id for problem in problems]
