"""Putting a trainer back as it was before a step (or seeding) that did not complete.

A step that raises, or is interrupted before its update, must leave no trace: its rng
draws and its buffer adds are undone. The buffers are not copied for this: they record
their adds (and the evictions those caused) from :meth:`Rollback.__init__` on, and
:meth:`Rollback.undo` reverts just those (:class:`absolutezero.buffers.BufferChanges`),
in time proportional to what the step changed.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from absolutezero.selfplay import SelfPlayTrainer

__all__ = ["Rollback"]


class Rollback:
    """The trainer's rng state, seeded flag and buffers as they are now, with the
    buffers recording their changes. Call :meth:`undo` or :meth:`keep` once."""

    def __init__(self, trainer: SelfPlayTrainer) -> None:
        self.trainer = trainer
        self.rng_state = trainer.rng.bit_generator.state
        self.seeded = trainer.seeded
        self.buffers = trainer.buffers
        self.changes = trainer.buffers.record_changes()

    def undo(self) -> None:
        """Put the trainer back as it was (buffers, rng, seeded flag)."""
        self.changes.undo()
        self.trainer.buffers = self.buffers
        self.trainer.rng.bit_generator.state = self.rng_state
        self.trainer.seeded = self.seeded

    def keep(self) -> None:
        """Accept what happened since; the buffers stop recording."""
        self.changes.keep()
