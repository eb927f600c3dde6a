"""Task buffers: dedup, bounded with oldest-non-seed eviction, seeded sampling, persistence."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from absolutezero.buffers import BufferEntry, BufferFileError, BufferSet, TaskBuffer, UnknownTaskTypeError
from absolutezero.protocol import Task

TYPES = ("deduction", "abduction", "induction")


def task(i: int, task_type: str = "deduction") -> Task:
    return Task(task_type, {"program": f"def f(a):\n    return a + {i}", "input": str(i)})


def ids(tasks: list[Task]) -> list[int]:
    return [int(t.payload["input"]) for t in tasks]


def filled(capacity: int = 100, n: int = 40) -> BufferSet:
    buffers = BufferSet(TYPES, capacity)
    buffers.add(task(-1), step=0, seed=True)
    for i in range(n):
        buffers.add(task(i), step=1 + i // 4)
        buffers.add(task(i, "abduction"), step=1 + i // 4)
    return buffers


# -- dedup, capacity, eviction ----------------------------------------------------------


def test_add_tags_step_and_seed_in_insertion_order() -> None:
    buffer = TaskBuffer("deduction", 10)
    assert buffer.add(task(0), step=0, seed=True)
    assert buffer.add(task(1), step=3)
    entries = buffer.entries()
    assert entries == [BufferEntry(task(0), 0, True, 0), BufferEntry(task(1), 3, False, 1)]
    assert task(1) in buffer and task(2) not in buffer


def test_dedup_by_task_key() -> None:
    # Regression (original trap): the original buffer never deduplicated.
    buffers = BufferSet(TYPES, 10)
    assert buffers.add(task(1), step=1)
    same_content = Task("deduction", dict(reversed(list(task(1).payload.items()))))
    assert not buffers.add(same_content, step=5)
    assert not buffers.add(task(1), step=6, seed=True)
    assert buffers.sizes() == {"deduction": 1, "abduction": 0, "induction": 0}
    assert buffers["deduction"].entries()[0].step == 1  # the first entry is kept untouched
    # the same payload under another task type is a different task
    assert buffers.add(task(1, "abduction"), step=1)


def test_full_buffer_evicts_oldest_non_seed_and_keeps_seeds() -> None:
    # Regression (original trap): the original cap kept the oldest entries, so the buffer
    # froze on the first tasks ever proposed.
    buffer = TaskBuffer("deduction", 4)
    buffer.add(task(100), step=0, seed=True)
    for i in range(10):
        assert buffer.add(task(i), step=i + 1)
        assert len(buffer) <= 4
    assert ids([e.task for e in buffer.entries()]) == [100, 7, 8, 9]
    assert [e.seed for e in buffer.entries()] == [True, False, False, False]


def test_seed_added_late_is_kept_and_ordered_by_insertion() -> None:
    buffer = TaskBuffer("deduction", 3)
    buffer.add(task(0), step=1)
    buffer.add(task(1), step=1)
    buffer.add(task(50), step=2, seed=True)  # full now: 0, 1, seed
    buffer.add(task(2), step=3)  # evicts 0
    buffer.add(task(3), step=3)  # evicts 1, not the seed
    assert ids([e.task for e in buffer.entries()]) == [50, 2, 3]
    assert [e.serial for e in buffer.entries()] == [2, 3, 4]


def test_evicted_task_can_come_back() -> None:
    buffer = TaskBuffer("deduction", 2)
    for i in range(3):
        buffer.add(task(i), step=i)
    assert task(0) not in buffer
    assert buffer.add(task(0), step=9)
    assert ids([e.task for e in buffer.entries()]) == [2, 0]


def test_seeds_must_leave_room() -> None:
    buffer = TaskBuffer("deduction", 2)
    assert buffer.add(task(0), step=0, seed=True)
    with pytest.raises(ValueError, match="capacity 2 leaves no room for non-seed tasks"):
        buffer.add(task(1), step=0, seed=True)
    assert len(buffer) == 1


def test_bad_arguments_are_clear_errors() -> None:
    buffers = BufferSet(TYPES, 5)
    with pytest.raises(UnknownTaskTypeError, match="no buffer for task type 'deducton'; did you mean 'deduction'") as info:
        buffers.add(Task("deducton", {}), step=0)
    assert str(info.value).startswith("no buffer")  # not wrapped in quotes like a plain KeyError
    with pytest.raises(ValueError, match="payload must be JSON-serialisable"):
        buffers.add(Task("deduction", {"inputs": {1, 2}}), step=0)
    with pytest.raises(ValueError, match="type 'abduction' cannot go into the 'deduction' buffer"):
        buffers["deduction"].add(task(0, "abduction"), step=0)
    with pytest.raises(ValueError, match="step must be >= 0"):
        buffers.add(task(0), step=-1)
    with pytest.raises(ValueError, match="capacity must be >= 1"):
        BufferSet(TYPES, 0)
    with pytest.raises(ValueError, match=r"repeated: \['a'\]"):
        BufferSet(["a", "b", "a"], 5)
    with pytest.raises(TypeError, match="can only add a Task"):
        buffers.add({"task_type": "deduction"}, step=0)  # type: ignore[arg-type]


# -- sampling ---------------------------------------------------------------------------


def test_sample_references_is_seeded_and_distinct() -> None:
    # Regression (original trap): unseeded sampling through the global random module.
    buffers = filled()
    a = buffers.sample_references(["deduction"], 5, np.random.default_rng(1))
    b = buffers.sample_references(["deduction"], 5, np.random.default_rng(1))
    c = buffers.sample_references(["deduction"], 5, np.random.default_rng(2))
    assert a == b
    assert a != c
    assert len(set(ids(a))) == 5
    np.random.seed(0)  # global state must not matter
    assert buffers.sample_references(["deduction"], 5, np.random.default_rng(1)) == a


def test_sample_references_draws_from_the_union() -> None:
    buffers = filled(n=3)
    refs = buffers.sample_references(["deduction", "abduction"], 100, np.random.default_rng(0))
    assert len(refs) == 7  # fewer than k: everything there is, once each
    assert sorted(t.key() for t in refs) == sorted(
        e.task.key() for name in ("deduction", "abduction") for e in buffers[name].entries()
    )
    assert buffers.sample_references(["induction"], 3, np.random.default_rng(0)) == []
    # a single task type name works like a one-element list (protocol.py's usage)
    assert buffers.sample_references("deduction", 9, np.random.default_rng(0)) == buffers.sample_references(
        ["deduction", "deduction"], 9, np.random.default_rng(0)
    )
    assert buffers.sample_references(["deduction"], 0, np.random.default_rng(0)) == []


def test_sampling_needs_a_generator() -> None:
    buffers = filled(n=3)
    with pytest.raises(TypeError, match="rng must be a numpy.random.Generator"):
        buffers.sample_references(["deduction"], 2, 42)  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="rng must be a numpy.random.Generator"):
        buffers.sample_for_solving("deduction", 2, np.random.RandomState(0), 0.5)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match=r"recency_weight must be in \[0, 1\]"):
        buffers.sample_for_solving("deduction", 2, np.random.default_rng(0), 1.5)
    with pytest.raises(ValueError, match="k must be >= 0"):
        buffers.sample_references(["deduction"], -1, np.random.default_rng(0))


def test_solver_sampling_is_seeded() -> None:
    buffers = filled()
    draw = lambda seed: buffers.sample_for_solving("deduction", 8, np.random.default_rng(seed), 0.5)  # noqa: E731
    assert draw(3) == draw(3)
    assert draw(3) != draw(4)
    assert len(set(ids(draw(3)))) == 8  # without replacement when the buffer is big enough


def test_solver_sampling_small_buffer_repeats() -> None:
    buffers = BufferSet(TYPES, 10)
    buffers.add(task(0), step=0, seed=True)
    assert ids(buffers.sample_for_solving("deduction", 4, np.random.default_rng(0), 0.5)) == [0] * 4
    assert buffers.sample_for_solving("abduction", 4, np.random.default_rng(0), 0.5) == []


def test_recency_bias_prefers_new_entries() -> None:
    buffers = BufferSet(["deduction"], 1000)
    for i in range(400):
        buffers.add(task(i), step=i)
    newest_quarter = set(range(300, 400))
    rng = np.random.default_rng(123)

    def share(weight: float) -> float:
        picks = [i for _ in range(500) for i in ids(buffers.sample_for_solving("deduction", 1, rng, weight))]
        return sum(i in newest_quarter for i in picks) / len(picks)

    # expected: w + (1 - w) / 4 -> 0.25 at w = 0, 0.625 at w = 0.5, 1.0 at w = 1
    assert share(0.0) == pytest.approx(0.25, abs=0.07)
    assert share(0.5) == pytest.approx(0.625, abs=0.07)
    assert share(1.0) == 1.0


def test_recency_bias_holds_for_batches_without_replacement() -> None:
    buffers = BufferSet(["deduction"], 1000)
    for i in range(200):
        buffers.add(task(i), step=i // 10)
    rng = np.random.default_rng(5)
    batches = [ids(buffers.sample_for_solving("deduction", 8, rng, 0.5)) for _ in range(200)]
    assert all(len(set(batch)) == 8 for batch in batches)
    share = sum(i >= 150 for batch in batches for i in batch) / (8 * 200)
    assert share > 0.5  # uniform would give 0.25


# -- persistence ------------------------------------------------------------------------


def test_save_load_round_trip_restores_order_and_sampling(tmp_path: Path) -> None:
    buffers = filled(capacity=20, n=30)  # eviction has happened
    path = tmp_path / "run" / "buffers.jsonl"
    buffers.save(path)
    loaded = BufferSet.load(path)
    assert loaded.task_types == buffers.task_types and loaded.capacity == 20
    for name in TYPES:
        assert loaded[name].entries() == buffers[name].entries()
        assert loaded[name].next_serial == buffers[name].next_serial
    for seed in range(3):
        assert loaded.sample_references(TYPES, 4, np.random.default_rng(seed)) == buffers.sample_references(
            TYPES, 4, np.random.default_rng(seed)
        )
        assert loaded.sample_for_solving("abduction", 6, np.random.default_rng(seed), 0.5) == (
            buffers.sample_for_solving("abduction", 6, np.random.default_rng(seed), 0.5)
        )
    # both continue identically: same serials, same evictions
    for target in (buffers, loaded):
        target.add(task(999), step=50)
    assert loaded["deduction"].entries() == buffers["deduction"].entries()
    assert loaded.to_jsonl() == buffers.to_jsonl()
    assert not list(path.parent.glob(".*tmp"))  # atomic write left no temp file


def test_load_with_smaller_capacity_evicts_oldest_non_seed(tmp_path: Path) -> None:
    path = tmp_path / "b.jsonl"
    filled(capacity=50, n=10).save(path)
    loaded = BufferSet.load(path, capacity=4)
    assert ids([e.task for e in loaded["deduction"].entries()]) == [-1, 7, 8, 9]


def _lines(tmp_path: Path) -> tuple[Path, list[str]]:
    path = tmp_path / "buffers.jsonl"
    filled(n=2).save(path)
    return path, path.read_text().splitlines()


@pytest.mark.parametrize(
    ("edit", "message"),
    [
        (lambda ls: ls[:2] + ["{not json"] + ls[3:], r"buffers.jsonl:3: entry is not valid JSON"),
        (lambda ls: ["[]"] + ls[1:], r"buffers.jsonl:1: not a buffer file"),
        (lambda ls: [], r"buffers.jsonl:1: empty buffer file"),
        (lambda ls: ls[:1] + [ls[1].replace('"step": 0', '"step": -2')] + ls[2:], r":2: 'step' must be an integer >= 0"),
        (lambda ls: ls[:1] + [ls[1].replace('"seed": true', '"seed": "yes"')] + ls[2:], r":2: 'seed' must be true or false"),
        (lambda ls: ls + [ls[2]], r":7: 'serial' must be an integer above"),
        (lambda ls: ls[:1] + [ls[1].replace('"task_type": "deduction"', '"task_type": "sorting"')] + ls[2:], r":2: task type 'sorting' is not in the header"),
        (lambda ls: ls[:1] + [ls[1].replace('"task"', '"tusk"')] + ls[2:], r":2: an entry needs exactly the keys"),
        (lambda ls: [ls[0].replace('"version": 1', '"version": 9')] + ls[1:], r":1: unsupported buffer file version 9"),
    ],
)
def test_corrupt_file_errors_name_line_and_problem(tmp_path: Path, edit, message: str) -> None:
    path, lines = _lines(tmp_path)
    path.write_text("\n".join(edit(lines)) + "\n")
    with pytest.raises(BufferFileError, match=message):
        BufferSet.load(path)


def test_duplicate_entry_in_file_is_an_error(tmp_path: Path) -> None:
    path, lines = _lines(tmp_path)
    record = json.loads(lines[2])
    record["serial"] = 7
    header = json.loads(lines[0])
    header["next_serial"]["deduction"] = 8
    path.write_text("\n".join([json.dumps(header)] + lines[1:] + [json.dumps(record)]) + "\n")
    with pytest.raises(BufferFileError, match=r":7: duplicate task"):
        BufferSet.load(path)


def test_load_with_capacity_too_small_for_seeds(tmp_path: Path) -> None:
    path = tmp_path / "b.jsonl"
    buffers = BufferSet(["deduction"], 10)
    buffers.add_many([task(0), task(1)], step=0, seed=True)
    buffers.save(path)
    with pytest.raises(BufferFileError, match=r"b.jsonl:3: capacity 2 is too small for the saved seed tasks"):
        BufferSet.load(path, capacity=2)


def test_binary_file_is_a_clear_error(tmp_path: Path) -> None:
    path = tmp_path / "b.jsonl"
    path.write_bytes(b"\xff\xfe\x00garbage")
    with pytest.raises(BufferFileError, match="not UTF-8 text"):
        BufferSet.load(path)


def test_missing_file(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError, match="no buffer file at"):
        BufferSet.load(tmp_path / "nope.jsonl")
