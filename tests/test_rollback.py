"""Rolling a failed step back: the buffers' undo log (absolutezero.buffers.BufferChanges)
and the trainer's Rollback built on it, which replaced serialising every buffer each step."""

from __future__ import annotations

import numpy as np
import pytest

from absolutezero.buffers import BufferSet
from test_buffers import TYPES, filled, task
from test_selfplay_loop import make_trainer


def _state(buffers: BufferSet) -> tuple[str, list[int]]:
    """Everything a restore must give back: entries, order, serials, and what sampling draws."""
    rng = np.random.default_rng(7)
    draws = [int(t.payload["input"]) for t in buffers.sample_for_solving("deduction", 5, rng, 0.5)]
    return buffers.to_jsonl(), draws


def test_undo_reverts_adds_and_the_evictions_they_caused():
    buffers = filled(capacity=10, n=12)  # full: every new add evicts the oldest non-seed entry
    before = _state(buffers)
    changes = buffers.record_changes()
    for i in range(100, 125):  # more adds than the capacity: adds of this log evict each other
        buffers.add(task(i), step=9)
        buffers.add(task(i, "induction"), step=9)
    buffers.add(task(3), step=9)  # a duplicate: no change to undo
    assert _state(buffers) != before
    changes.undo()
    assert _state(buffers) == before
    assert buffers["deduction"].next_serial == BufferSet.from_jsonl(before[0]).buffer("deduction").next_serial


def test_keep_accepts_the_changes_and_stops_recording():
    buffers = filled(capacity=10, n=4)
    changes = buffers.record_changes()
    buffers.add(task(50), step=2)
    changes.keep()
    after = _state(buffers)
    changes.undo()  # nothing left to undo
    assert _state(buffers) == after and task(50) in buffers
    assert all(buffers[t]._undo is None for t in TYPES)  # adds are not recorded any more


def test_a_new_log_replaces_the_previous_one():
    buffers = filled(capacity=10, n=4)
    old = buffers.record_changes()
    buffers.add(task(60), step=2)
    new = buffers.record_changes()
    buffers.add(task(61), step=2)
    old.undo()  # superseded: undoes nothing
    assert task(60) in buffers and task(61) in buffers
    new.undo()
    assert task(60) in buffers and task(61) not in buffers


def test_a_failed_step_with_full_buffers_is_undone_exactly():
    trainer = make_trainer(buffer_capacity=6, propose_batch=6)
    trainer.step()
    trainer.step()  # the buffers are full now: the next step's adds evict entries
    assert all(size == 6 for size in trainer.buffers.sizes().values())
    buffers, rng_state = trainer.buffers.to_jsonl(), trainer.rng.bit_generator.state
    same_object = trainer.buffers
    trainer.agent.fail_on_generate = len(trainer.agent.generate_calls) + 2  # the solve call
    with pytest.raises(KeyboardInterrupt):
        trainer.step()
    assert trainer.buffers is same_object  # undone in place, not rebuilt from a copy
    assert trainer.buffers.to_jsonl() == buffers
    assert trainer.rng.bit_generator.state == rng_state and trainer.step_count == 2


def test_a_failed_seeding_leaves_empty_unseeded_buffers():
    trainer = make_trainer()
    empty = trainer.buffers.to_jsonl()
    trainer.agent.fail_on_generate = 1
    with pytest.raises(KeyboardInterrupt):
        trainer.seed()
    assert not trainer.seeded and trainer.buffers.to_jsonl() == empty
