"""Reading saved task-buffer files (:meth:`absolutezero.buffers.BufferSet.save`).

The whole file is checked before anything is built from it, and every problem is
reported as ``file:line: what is wrong`` (a truncated write, a hand edit, a file from
another version), so a corrupt buffer file never half-loads.
"""

from __future__ import annotations

import json
from typing import Any, NamedTuple

from absolutezero.protocol import Task

__all__ = ["FORMAT", "VERSION", "BufferFileError", "Record", "parse_buffer_file"]

FORMAT = "absolutezero.buffers"
VERSION = 1


class BufferFileError(ValueError):
    """A saved buffer file is unreadable; the message names the file, line and problem."""


class Record(NamedTuple):
    """One checked entry line of a buffer file."""

    lineno: int
    task: Task
    step: int
    seed: bool
    serial: int


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _parse_header(line: str, source: str) -> dict[str, Any]:
    where = f"{source}:1"
    try:
        header = json.loads(line)
    except json.JSONDecodeError as error:
        raise BufferFileError(f"{where}: header is not valid JSON ({error.msg})") from None
    if not isinstance(header, dict) or header.get("format") != FORMAT:
        raise BufferFileError(
            f"{where}: not a buffer file (the first line must be a JSON header with "
            f"\"format\": \"{FORMAT}\"); was it written by BufferSet.save?"
        )
    if header.get("version") != VERSION:
        raise BufferFileError(
            f"{where}: unsupported buffer file version {header.get('version')!r} (this "
            f"absolutezero reads version {VERSION})"
        )
    capacity, names, serials = header.get("capacity"), header.get("task_types"), header.get("next_serial")
    names_ok = (
        isinstance(names, list)
        and bool(names)
        and all(isinstance(name, str) and name for name in names)
        and len(set(names)) == len(names)
    )
    checks = [
        (_is_int(capacity) and capacity >= 1, f"'capacity' must be a positive integer, got {capacity!r}"),
        (names_ok, f"'task_types' must be a non-empty list of unique names, got {names!r}"),
        (
            names_ok
            and isinstance(serials, dict)
            and set(serials) == set(names)
            and all(_is_int(value) and value >= 0 for value in serials.values()),
            f"'next_serial' must map each task type to a counter >= 0, got {serials!r}",
        ),
    ]
    for ok, problem in checks:
        if not ok:
            raise BufferFileError(f"{where}: header {problem}")
    return header


_RECORD_KEYS = {"serial", "step", "seed", "task"}


def parse_buffer_file(text: str, source: str) -> tuple[dict[str, Any], list[Record]]:
    """Validate a whole buffer file before anything is built from it.

    Args:
        text: the file's text (a JSON header line, then one JSON line per entry).
        source: the file's name in error messages.

    Returns:
        The header and one :class:`Record` per entry line, in file order.

    Raises:
        BufferFileError: the first problem, as ``source:line: what is wrong``.
    """
    lines = text.splitlines()
    if not lines or not lines[0].strip():
        raise BufferFileError(f"{source}:1: empty buffer file; expected a JSON header line")
    header = _parse_header(lines[0], source)
    names, serials = header["task_types"], header["next_serial"]
    last_serial = {name: -1 for name in names}
    seen: set[str] = set()
    records: list[Record] = []
    for lineno, line in enumerate(lines[1:], start=2):
        if not line.strip():
            continue
        where = f"{source}:{lineno}"
        try:
            record = json.loads(line)
        except json.JSONDecodeError as error:
            raise BufferFileError(
                f"{where}: entry is not valid JSON ({error.msg} at column {error.colno}); the file "
                "may be truncated or edited by hand"
            ) from None
        if not isinstance(record, dict) or set(record) != _RECORD_KEYS:
            found = sorted(record) if isinstance(record, dict) else type(record).__name__
            raise BufferFileError(f"{where}: an entry needs exactly the keys {sorted(_RECORD_KEYS)}, got {found}")
        try:
            task = Task.from_json(record["task"])
        except (TypeError, ValueError) as error:
            raise BufferFileError(f"{where}: bad 'task': {error}") from None
        name, serial, step, seed = task.task_type, record["serial"], record["step"], record["seed"]
        previous, limit = last_serial.get(name, -1), serials.get(name, 0)
        checks = [
            (name in last_serial, f"task type {name!r} is not in the header's task_types {names}"),
            (_is_int(step) and step >= 0, f"'step' must be an integer >= 0, got {step!r}"),
            (isinstance(seed, bool), f"'seed' must be true or false, got {seed!r}"),
            (
                _is_int(serial) and previous < serial < limit,
                f"'serial' must be an integer above the previous {name!r} entry's ({previous}) "
                f"and below the header's next_serial ({limit}), got {serial!r}",
            ),
        ]
        for ok, problem in checks:
            if not ok:
                raise BufferFileError(f"{where}: {problem}")
        key = task.key()
        if key in seen:
            raise BufferFileError(f"{where}: duplicate task (buffers never hold the same task twice)")
        seen.add(key)
        last_serial[name] = serial
        records.append(Record(lineno, task, step, seed, serial))
    return header, records
