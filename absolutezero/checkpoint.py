"""Atomic checkpoints of a self-play run and resolving ``resume=`` paths.

Layout of a run folder::

    <run>/config.yaml
    <run>/metrics.jsonl
    <run>/plots/*.png
    <run>/checkpoints/step_N/agent/          Agent.save (model, optimiser, generator state)
    <run>/checkpoints/step_N/buffers.jsonl   BufferSet.save
    <run>/checkpoints/step_N/state.json      step and the trainer's state (RNG, seeding done)
    <run>/checkpoints/step_N/config.yaml     the config the run had when it was written
    <run>/latest                             text: "checkpoints/step_N" (relative to <run>)

A checkpoint folder is filled in a temporary sibling and renamed into place
(:func:`absolutezero.atomic.atomic_directory`), and ``latest`` is replaced atomically
afterwards, so a crash at any moment leaves ``latest`` pointing at a complete checkpoint.
With several ranks (``torchrun``), rank 0 makes the temporary folder, every rank writes
its part of the agent into it (sharded training state), and rank 0 renames it only after
every rank has finished (the ranks must share the file system, as on one node).
SIGINT is deferred while a checkpoint is written (:func:`defer_keyboard_interrupt`): a
second Ctrl-C during the save finishes the save first instead of throwing it away.
"""

from __future__ import annotations

import contextlib
import json
import re
import shutil
import signal
import threading
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from omegaconf import DictConfig, OmegaConf

from absolutezero.atomic import atomic_directory, atomic_write_text
from absolutezero.buffers import BufferSet
from absolutezero.config import ConfigError, save_config
from absolutezero.distributed import Group
from absolutezero.protocol import Agent

__all__ = [
    "CHECKPOINTS_DIR",
    "Checkpoint",
    "CheckpointError",
    "LATEST",
    "checkpoint_dirs",
    "DeferredInterrupt",
    "defer_keyboard_interrupt",
    "load_checkpoint",
    "resolve_checkpoint",
    "save_checkpoint",
]

CHECKPOINTS_DIR = "checkpoints"
LATEST = "latest"
FORMAT = "absolutezero.checkpoint"
VERSION = 1
_STEP_DIR = re.compile(r"^step_(\d+)$")


class CheckpointError(ConfigError):
    """A ``resume=`` path that is not a run folder or checkpoint, or a broken checkpoint.

    A :class:`ConfigError`, because it is the user's path that needs fixing; the CLI
    reports it without a traceback.
    """


class DeferredInterrupt:
    """What :func:`defer_keyboard_interrupt` saw: ``received`` is True if SIGINT arrived."""

    def __init__(self) -> None:
        self.received = False


@contextlib.contextmanager
def defer_keyboard_interrupt(raise_after: bool = True) -> Iterator[DeferredInterrupt]:
    """Hold back SIGINT (Ctrl-C) and SIGTERM until the block is done.

    Used around work that must not be torn in half: writing a checkpoint and the agent's
    optimiser step (an interrupt between two parameter updates would leave a model that
    matches no checkpoint). After the block, a held-back interrupt raises
    KeyboardInterrupt if ``raise_after``, otherwise it is only reported through the
    yielded object's ``received`` so the caller can finish its bookkeeping first.
    Outside the main thread signals cannot be handled, so the block simply runs.
    """
    state = DeferredInterrupt()
    if threading.current_thread() is not threading.main_thread():
        yield state
        return

    def _remember(_signum: int, _frame: Any) -> None:
        state.received = True

    # SIGTERM too: run.py turns it into KeyboardInterrupt (schedulers stop jobs with it).
    previous = {sig: signal.signal(sig, _remember) for sig in (signal.SIGINT, signal.SIGTERM)}
    try:
        yield state
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
    if state.received and raise_after:
        raise KeyboardInterrupt


def checkpoint_dirs(run_dir: str | Path) -> list[Path]:
    """The complete checkpoint folders of a run, oldest step first."""
    root = Path(run_dir) / CHECKPOINTS_DIR
    if not root.is_dir():
        return []
    found = []
    for child in root.iterdir():
        match = _STEP_DIR.match(child.name)
        if match and child.is_dir() and (child / "state.json").is_file():
            found.append((int(match.group(1)), child))
    return [path for _, path in sorted(found)]


def save_checkpoint(
    run_dir: str | Path,
    step: int,
    *,
    agent: Agent,
    buffers: BufferSet,
    trainer_state: Mapping[str, Any],
    config: DictConfig,
    keep_last: int | None = None,
    group: Group | None = None,
) -> Path:
    """Write ``<run_dir>/checkpoints/step_<step>`` atomically and point ``latest`` at it.

    Every rank of ``group`` calls it (default: one process); each writes its part of the
    agent, rank 0 everything else.

    Args:
        run_dir: the run folder.
        step: completed steps the checkpoint holds.
        agent: saved with ``agent.save(<checkpoint>/agent)``.
        buffers: the task buffers.
        trainer_state: JSON-serialisable state of the trainer (RNG state, flags).
        config: the run's config, saved next to the state so the checkpoint is
            self-contained.
        keep_last: if set, delete all but the newest ``keep_last`` checkpoints after the
            new one is in place (``latest`` is never deleted).

    Returns:
        The checkpoint folder.

    Raises:
        ValueError: negative ``step`` or ``keep_last`` < 1.
    """
    if step < 0:
        raise ValueError(f"step must be >= 0, got {step}")
    if keep_last is not None and keep_last < 1:
        raise ValueError(f"keep_last must be >= 1 or None, got {keep_last}")
    run_dir = Path(run_dir)
    target = run_dir / CHECKPOINTS_DIR / f"step_{step}"
    state = {"format": FORMAT, "version": VERSION, "step": int(step), "trainer": dict(trainer_state)}
    text = json.dumps(state, indent=1, sort_keys=True)
    group = group if group is not None else Group()
    with defer_keyboard_interrupt():
        if not group.is_main:
            tmp = Path(group.broadcast(None))
            agent.save(str(tmp / "agent"))
            group.barrier()  # rank 0 renames only after every rank has written
            group.barrier()  # ... and returns only once the checkpoint is in place
            return target
        with atomic_directory(target) as tmp:
            agent_dir = tmp / "agent"
            agent_dir.mkdir()
            group.broadcast(str(tmp))
            agent.save(str(agent_dir))
            group.barrier()
            buffers.save(tmp / "buffers.jsonl")
            save_config(config, tmp / "config.yaml")
            atomic_write_text(tmp / "state.json", text)
        atomic_write_text(run_dir / LATEST, f"{CHECKPOINTS_DIR}/{target.name}\n")
        if keep_last is not None:
            for old in checkpoint_dirs(run_dir)[:-keep_last]:
                if old != target:
                    shutil.rmtree(old, ignore_errors=True)
        group.barrier()
    return target


@dataclass(frozen=True)
class Checkpoint:
    """A checkpoint found on disk (nothing loaded into an agent yet).

    ``path`` is the checkpoint folder, ``run_dir`` the run it belongs to, ``step`` the
    completed steps, ``trainer_state`` what the trainer saved, ``config`` the saved
    config (validated against the current schema).
    """

    path: Path
    run_dir: Path
    step: int
    trainer_state: dict[str, Any]
    config: DictConfig

    @property
    def agent_dir(self) -> Path:
        return self.path / "agent"

    def load_buffers(self, capacity: int | None = None) -> BufferSet:
        """The saved buffers (``capacity`` defaults to the saved one)."""
        return BufferSet.load(self.path / "buffers.jsonl", capacity)


def resolve_checkpoint(path: str | Path) -> Path:
    """The checkpoint folder meant by ``path``: a checkpoint itself, or a run's ``latest``.

    Raises:
        CheckpointError: ``path`` does not exist, is a run folder without checkpoints, or
            ``latest`` points at a missing folder; the message says what was found.
    """
    path = Path(path).expanduser()
    if not path.exists():
        raise CheckpointError(f"resume path {str(path)!r} does not exist")
    if (path / "state.json").is_file():
        return path
    latest = path / LATEST
    if latest.is_file():
        relative = latest.read_text(encoding="utf-8").strip()
        target = path / relative
        if not (target / "state.json").is_file():
            raise CheckpointError(
                f"{latest} points at {relative!r}, which is not a complete checkpoint; pass a "
                f"checkpoint folder from {path / CHECKPOINTS_DIR} explicitly"
            )
        return target
    found = checkpoint_dirs(path)
    if found:
        return found[-1]
    raise CheckpointError(
        f"cannot resume from {str(path)!r}: it is neither a checkpoint folder (with state.json) "
        f"nor a run folder with a '{LATEST}' file or {CHECKPOINTS_DIR}/step_N folders"
    )


def load_checkpoint(path: str | Path) -> Checkpoint:
    """Read the checkpoint meant by ``path`` (see :func:`resolve_checkpoint`).

    Raises:
        CheckpointError: no checkpoint there, or its state.json / config.yaml is unreadable.
    """
    from absolutezero.config import load_saved_config

    folder = resolve_checkpoint(path)
    try:
        state = json.loads((folder / "state.json").read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError) as error:
        raise CheckpointError(f"unreadable checkpoint state {folder / 'state.json'}: {error}") from None
    if not isinstance(state, dict) or state.get("format") != FORMAT:
        raise CheckpointError(f"{folder / 'state.json'} is not an absolutezero checkpoint state")
    if state.get("version") != VERSION:
        raise CheckpointError(
            f"{folder / 'state.json'} has checkpoint version {state.get('version')!r}; this "
            f"absolutezero reads version {VERSION}"
        )
    config = load_saved_config(folder / "config.yaml")
    OmegaConf.set_readonly(config, False)
    run_dir = folder.parent.parent if folder.parent.name == CHECKPOINTS_DIR else folder.parent
    return Checkpoint(
        path=folder,
        run_dir=run_dir,
        step=int(state["step"]),
        trainer_state=dict(state.get("trainer", {})),
        config=config,
    )
