"""Per-task-type task buffers: what the proposer sees as references and the solver trains on.

Rules (each fixes a trap of the original implementation, which kept the oldest entries
once full, never deduplicated, and sampled with the global ``random`` module):

* **Dedup.** A task whose :meth:`Task.key` is already in its buffer is not added again
  (``add`` returns False and the existing entry keeps its step).
* **Capacity.** A buffer never holds more than ``capacity`` entries. Adding to a full
  buffer evicts the *oldest non-seed* entry, so the buffer tracks the policy's current
  tasks. Seed entries are never evicted: the proposer always has references. Seeds must
  leave room for at least one non-seed entry (``seeds < capacity``).
* **Seeded sampling.** Every random choice uses the caller's ``np.random.Generator``;
  equal generator states give equal samples.
* **Persistence.** :meth:`BufferSet.save` writes JSONL atomically with each entry's step,
  seed flag and insertion serial plus each buffer's insertion counter, so
  :meth:`BufferSet.load` restores the same entries in the same order and the same
  subsequent sampling results for the same generator state.
* **Undo.** :meth:`BufferSet.record_changes` starts an undo log: each add records the
  key it stored, the entries its eviction pushed out and the previous insertion
  counter, so :meth:`BufferChanges.undo` puts the buffers back exactly (same entries,
  order and counters) in time proportional to the changes, not to the buffers. The
  trainer rolls a failed step back this way.

This module passes 400 lines because the buffer, its sampling, its persistence and its
undo log all rely on the same private insertion-order invariants (two serial-ordered
dicts); splitting them would expose those internals across modules.

Entries are ordered by insertion (their ``serial``); "oldest" and "newest" refer to that
order, not to the step tag.
"""

from __future__ import annotations

import heapq
import json
import math
import operator
from collections import OrderedDict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from absolutezero.atomic import atomic_write_text
from absolutezero.buffer_file import FORMAT, VERSION, BufferFileError, parse_buffer_file
from absolutezero.protocol import Task

__all__ = [
    "RECENT_FRACTION",
    "BufferChanges",
    "BufferEntry",
    "BufferFileError",
    "BufferSet",
    "TaskBuffer",
    "UnknownTaskTypeError",
]

RECENT_FRACTION = 0.25  # the "newest entries" of recency-biased solver sampling: newest quarter


class UnknownTaskTypeError(KeyError):
    """No buffer for the requested task type (the message suggests the closest one)."""

    def __str__(self) -> str:  # KeyError would print the message in quotes
        return str(self.args[0]) if self.args else ""


@dataclass(frozen=True)
class BufferEntry:
    """One stored task.

    ``step`` is the self-play step it was added at (seeds: usually 0); ``seed`` marks
    tasks that are never evicted; ``serial`` is the buffer's insertion counter at the time
    it was added (strictly increasing within a buffer, never reused).
    """

    task: Task
    step: int
    seed: bool
    serial: int = -1


def _serial(entry: BufferEntry) -> int:
    return entry.serial


def _check_rng(rng: Any) -> np.random.Generator:
    if not isinstance(rng, np.random.Generator):
        raise TypeError(
            f"rng must be a numpy.random.Generator (e.g. np.random.default_rng(seed)), got "
            f"{type(rng).__name__}; buffers never use global random state"
        )
    return rng


def _check_count(name: str, value: Any) -> int:
    try:
        count = operator.index(value)
    except TypeError:
        raise TypeError(f"{name} must be an integer, got {type(value).__name__} {value!r}") from None
    if count < 0:
        raise ValueError(f"{name} must be >= 0, got {count}")
    return count


def _check_capacity(capacity: Any) -> int:
    capacity = _check_count("capacity", capacity)
    if capacity < 1:
        raise ValueError("capacity must be >= 1 (selfplay.buffer_capacity)")
    return capacity


#: One recorded add: the key stored, the (key, entry) pairs it evicted, the serial it took.
_Undo = tuple[str, list[tuple[str, BufferEntry]], int]


class TaskBuffer:
    """The tasks of one task type, deduplicated, bounded, oldest non-seed evicted first."""

    def __init__(self, task_type: str, capacity: int) -> None:
        if not isinstance(task_type, str) or not task_type:
            raise ValueError(f"task_type must be a non-empty string, got {task_type!r}")
        self.task_type = task_type
        self._capacity = _check_capacity(capacity)
        self._seeds: dict[str, BufferEntry] = {}
        self._others: OrderedDict[str, BufferEntry] = OrderedDict()
        self._next_serial = 0
        self._ordered: list[BufferEntry] | None = []
        self._undo: list[_Undo] | None = None  # open while a BufferChanges records

    @property
    def capacity(self) -> int:
        """Maximum number of entries (read-only: changing it would bypass eviction)."""
        return self._capacity

    # -- mutation ---------------------------------------------------------------------

    def add(self, task: Task, step: int, seed: bool = False) -> bool:
        """Store ``task`` tagged with ``step``; evict the oldest non-seed entry if full.

        Returns:
            True if the task was added, False if an entry with the same ``Task.key()``
            is already stored (nothing changes then).

        Raises:
            ValueError: the task belongs to another task type, ``step`` is negative, or a
                new seed would leave no room for non-seed tasks.
        """
        if not isinstance(task, Task):
            raise TypeError(f"can only add a Task, got {type(task).__name__}")
        if task.task_type != self.task_type:
            raise ValueError(
                f"task of type {task.task_type!r} cannot go into the {self.task_type!r} buffer"
            )
        step = _check_count("step", step)
        try:
            key = task.key()
        except (TypeError, ValueError) as error:
            raise ValueError(
                f"cannot store a {task.task_type!r} task: its payload must be JSON-serialisable ({error})"
            ) from None
        if key in self._seeds or key in self._others:
            return False
        if seed and len(self._seeds) + 1 >= self.capacity:
            raise ValueError(
                f"{self.task_type!r} buffer: capacity {self.capacity} leaves no room for "
                f"non-seed tasks after {len(self._seeds) + 1} seed tasks; raise "
                "selfplay.buffer_capacity"
            )
        serial = self._next_serial
        evicted = self._insert(key, BufferEntry(task, step, bool(seed), serial))
        self._next_serial += 1
        if self._undo is not None:
            self._undo.append((key, evicted, serial))
        return True

    def _insert(self, key: str, entry: BufferEntry) -> list[tuple[str, BufferEntry]]:
        """Store ``entry``; returns the (key, entry) pairs evicted to make room, oldest first."""
        (self._seeds if entry.seed else self._others)[key] = entry
        evicted = []
        while len(self) > self.capacity:
            evicted.append(self._others.popitem(last=False))
        self._ordered = None
        return evicted

    def _revert(self, log: list[_Undo]) -> None:
        """Undo the adds of ``log``, newest first: drop the added entry, put the entries
        its eviction removed back at the old end (they were the oldest), reset the counter."""
        for key, evicted, serial in reversed(log):
            self._seeds.pop(key, None)
            self._others.pop(key, None)
            for old_key, entry in reversed(evicted):
                self._others[old_key] = entry
                self._others.move_to_end(old_key, last=False)
            self._next_serial = serial
        self._ordered = None

    # -- inspection -------------------------------------------------------------------

    def __len__(self) -> int:
        return len(self._seeds) + len(self._others)

    def __contains__(self, task: object) -> bool:
        if not isinstance(task, Task):
            return False
        key = task.key()
        return key in self._seeds or key in self._others

    def entries(self) -> list[BufferEntry]:
        """All entries, oldest first (by insertion serial). A fresh list each call."""
        return list(self._entries())

    def _entries(self) -> list[BufferEntry]:
        if self._ordered is None:  # both dicts are in serial order: merge, O(n)
            merged = heapq.merge(self._seeds.values(), self._others.values(), key=_serial)
            self._ordered = list(merged)
        return self._ordered

    @property
    def next_serial(self) -> int:
        """The serial the next added entry will get (the insertion counter)."""
        return self._next_serial

    # -- sampling ---------------------------------------------------------------------

    def sample_for_solving(
        self, n: int, rng: np.random.Generator, recency_weight: float
    ) -> list[Task]:
        """``n`` tasks for the solver, biased towards the newest entries.

        The rule: let ``N = len(self)`` and ``R`` the newest ``ceil(N / 4)`` entries
        (:data:`RECENT_FRACTION`). Each entry gets probability
        ``recency_weight / |R| * [entry in R] + (1 - recency_weight) / N``, i.e. a draw is
        with probability ``recency_weight`` uniform over the newest quarter and otherwise
        uniform over the whole buffer. ``n`` entries are drawn with these weights through
        ``rng.choice`` *without* replacement when ``N >= n`` and *with* replacement when
        the buffer is smaller (early self-play, when only seeds exist).

        Returns:
            ``n`` tasks (in draw order), or an empty list when the buffer is empty.
        """
        n = _check_count("n", n)
        _check_rng(rng)
        weight = float(recency_weight)
        if not (math.isfinite(weight) and 0.0 <= weight <= 1.0):
            raise ValueError(f"recency_weight must be in [0, 1], got {recency_weight!r}")
        entries = self._entries()
        size = len(entries)
        if size == 0 or n == 0:
            return []
        recent = math.ceil(size * RECENT_FRACTION)
        probabilities = np.full(size, (1.0 - weight) / size)
        probabilities[size - recent :] += weight / recent
        probabilities /= probabilities.sum()
        picks = rng.choice(size, size=n, replace=size < n, p=probabilities)
        return [entries[int(index)].task for index in picks]


class BufferSet:
    """One :class:`TaskBuffer` per task type, with reference and solver sampling."""

    def __init__(self, task_types: Sequence[str], capacity: int) -> None:
        if isinstance(task_types, str):
            raise TypeError(f"task_types must be a sequence of names, not the string {task_types!r}")
        names = list(task_types)
        if not names:
            raise ValueError("a BufferSet needs at least one task type")
        duplicates = sorted({name for name in names if names.count(name) > 1})
        if duplicates:
            raise ValueError(f"task types must be unique, repeated: {duplicates}")
        self._capacity = _check_capacity(capacity)
        self._buffers: dict[str, TaskBuffer] = {name: TaskBuffer(name, self._capacity) for name in names}

    @property
    def capacity(self) -> int:
        """Per-task-type capacity (read-only)."""
        return self._capacity

    @property
    def task_types(self) -> tuple[str, ...]:
        return tuple(self._buffers)

    def buffer(self, task_type: str) -> TaskBuffer:
        """The buffer of ``task_type``; a clear error (with did-you-mean) for an unknown one."""
        try:
            return self._buffers[task_type]
        except (KeyError, TypeError):
            from absolutezero.config import did_you_mean

            raise UnknownTaskTypeError(
                f"no buffer for task type {task_type!r}"
                f"{did_you_mean(str(task_type), list(self._buffers))} (known: {list(self._buffers)})"
            ) from None

    __getitem__ = buffer

    def add(self, task: Task, step: int, seed: bool = False) -> bool:
        """Add ``task`` to its task type's buffer; False when it is a duplicate there."""
        if not isinstance(task, Task):
            raise TypeError(f"can only add a Task, got {type(task).__name__}")
        return self.buffer(task.task_type).add(task, step, seed)

    def add_many(self, tasks: Iterable[Task], step: int, seed: bool = False) -> int:
        """Add several tasks; returns how many were new."""
        return sum(self.add(task, step, seed) for task in tasks)

    def __contains__(self, task: object) -> bool:
        return isinstance(task, Task) and task.task_type in self._buffers and task in self._buffers[task.task_type]

    def __len__(self) -> int:
        return sum(len(buffer) for buffer in self._buffers.values())

    def sizes(self) -> dict[str, int]:
        """``{task_type: number of entries}`` for every task type, in construction order."""
        return {name: len(buffer) for name, buffer in self._buffers.items()}

    def sample_references(
        self, task_types: Sequence[str], k: int, rng: np.random.Generator
    ) -> list[Task]:
        """``k`` distinct reference tasks for the proposer.

        Draws uniformly without replacement from the union of the named buffers (taken in
        the given order, each oldest first; a type named twice counts once) using ``rng``.

        Returns:
            ``min(k, union size)`` tasks in draw order (fewer than ``k`` early on).
        """
        if isinstance(task_types, str):
            task_types = (task_types,)
        k = _check_count("k", k)
        _check_rng(rng)
        pool: list[Task] = []
        for name in dict.fromkeys(task_types):
            pool.extend(entry.task for entry in self.buffer(name)._entries())
        count = min(k, len(pool))
        if count == 0:
            return []
        picks = rng.choice(len(pool), size=count, replace=False)
        return [pool[int(index)] for index in picks]

    def sample_for_solving(
        self, task_type: str, n: int, rng: np.random.Generator, recency_weight: float
    ) -> list[Task]:
        """``n`` solver tasks of ``task_type``; see :meth:`TaskBuffer.sample_for_solving`."""
        return self.buffer(task_type).sample_for_solving(n, rng, recency_weight)

    # -- undo -------------------------------------------------------------------------

    def record_changes(self) -> "BufferChanges":
        """Start recording every add (and the evictions it causes) so that they can be
        undone. One log at a time: a new call starts a fresh log and the previous
        :class:`BufferChanges` no longer undoes anything."""
        return BufferChanges(self)

    # -- persistence ------------------------------------------------------------------

    def to_jsonl(self) -> str:
        """The JSONL text :meth:`save` writes: a header line, then one line per entry."""
        header = {
            "format": FORMAT,
            "version": VERSION,
            "capacity": self.capacity,
            "task_types": list(self._buffers),
            "next_serial": {name: buffer.next_serial for name, buffer in self._buffers.items()},
        }
        lines = [json.dumps(header, sort_keys=True)]
        for buffer in self._buffers.values():
            for entry in buffer._entries():
                record = {
                    "serial": entry.serial,
                    "step": entry.step,
                    "seed": entry.seed,
                    "task": entry.task.to_json(),
                }
                lines.append(json.dumps(record, sort_keys=True, ensure_ascii=False))
        return "\n".join(lines) + "\n"

    def save(self, path: str | Path) -> None:
        """Write all buffers to ``path`` atomically (the old file or the new, never half)."""
        atomic_write_text(Path(path), self.to_jsonl())

    @classmethod
    def load(cls, path: str | Path, capacity: int | None = None) -> "BufferSet":
        """Restore buffers written by :meth:`save`.

        ``capacity`` defaults to the saved one; a smaller capacity evicts the oldest
        non-seed entries exactly as adding would have.

        Raises:
            FileNotFoundError: no file at ``path``.
            BufferFileError: the file is not a valid buffer file (message: file, line,
                what is wrong).
        """
        path = Path(path)
        if not path.is_file():
            raise FileNotFoundError(f"no buffer file at {path}")
        try:
            text = path.read_text(encoding="utf-8")
        except UnicodeDecodeError as error:
            raise BufferFileError(f"{path}: not UTF-8 text ({error.reason} at byte {error.start})") from None
        return cls.from_jsonl(text, capacity, source=str(path))

    @classmethod
    def from_jsonl(
        cls, text: str, capacity: int | None = None, source: str = "<buffers>"
    ) -> "BufferSet":
        """Parse :meth:`to_jsonl` text; ``source`` names it in error messages."""
        header, records = parse_buffer_file(text, source)
        buffers = cls(header["task_types"], header["capacity"] if capacity is None else capacity)
        for record in records:
            name = record.task.task_type
            buffer = buffers._buffers[name]
            if record.seed and len(buffer._seeds) + 1 >= buffers.capacity:
                raise BufferFileError(
                    f"{source}:{record.lineno}: capacity {buffers.capacity} is too small for the "
                    f"saved seed tasks of {name!r}; load with a larger capacity"
                )
            entry = BufferEntry(record.task, record.step, record.seed, record.serial)
            buffer._insert(record.task.key(), entry)
        for name, next_serial in header["next_serial"].items():
            buffers._buffers[name]._next_serial = next_serial
        return buffers


class BufferChanges:
    """The undo log of one :class:`BufferSet` since :meth:`BufferSet.record_changes`.

    Call exactly one of :meth:`undo` (put the buffers back as they were when recording
    started) or :meth:`keep` (accept the changes); both stop the recording.
    """

    def __init__(self, buffers: BufferSet) -> None:
        self._logs: list[tuple[TaskBuffer, list[_Undo]]] = []
        for buffer in buffers._buffers.values():
            buffer._undo = []
            self._logs.append((buffer, buffer._undo))

    def undo(self) -> None:
        """Revert every recorded add, newest first, and stop recording."""
        for buffer, log in self._logs:
            if buffer._undo is log:
                buffer._undo = None
                buffer._revert(log)
        self._logs = []

    def keep(self) -> None:
        """Accept the recorded changes and stop recording."""
        for buffer, log in self._logs:
            if buffer._undo is log:
                buffer._undo = None
        self._logs = []
