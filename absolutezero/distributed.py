"""The processes of one run: one, or N started by ``torchrun``, through torch.distributed.

Why this module exists: every phase of a self-play step is written once, against a
:class:`Group`, and the same code runs in one process and in N. With one process every
method is the identity (no torch.distributed, no communication); under ``torchrun`` the
group is torch.distributed's default process group, which ``torchrun``'s environment
(``RANK``, ``WORLD_SIZE``, ``MASTER_ADDR``...) sets up. No state of ours is global: a
:class:`Group` is only a view of that default group.

How a step is split across N ranks (see docs/architecture.md, "Multi-process training"):

* every rank holds the same trainer state (config, seed, buffers, trainer rng), so every
  rank builds the same prompts;
* each rank generates a share of them and the shares are gathered (:meth:`Group.map`);
* validation and verification run once per task: each rank checks a share, the results
  are gathered, so every rank holds every verdict;
* decisions taken by plugins are taken once, on rank 0, and broadcast
  (:meth:`Group.from_main`), so rewards and the TRR++ baselines are the global batch's;
* each rank back-propagates a share of the batch and the gradients are summed with
  ``all_reduce`` (:meth:`Group.all_reduce_sum`), so every rank takes the same optimiser
  step;
* only rank 0 writes files (config, metrics, plots, checkpoints).

Backends: ``gloo`` on CPU; ``cpu:gloo,cuda:nccl`` when CUDA is available, so object
collectives go through gloo and gradient tensors on the GPU through NCCL.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import timedelta
from typing import Any, TypeVar

T = TypeVar("T")
R = TypeVar("R")

#: How long a rank waits in a collective for the others (an evaluation pass on rank 0
#: can keep the others waiting; a crashed rank is detected by torchrun, not by this).
TIMEOUT = timedelta(hours=2)


class DistributedError(RuntimeError):
    """The ranks disagree (e.g. one returned a different number of results)."""


def _dist() -> Any:
    import torch.distributed as dist

    return dist


@dataclass(frozen=True)
class Group:
    """``rank`` of ``size`` processes; ``size == 1`` makes every method local."""

    rank: int = 0
    size: int = 1

    @property
    def is_main(self) -> bool:
        """Rank 0: the one process that writes files and takes plugin decisions."""
        return self.rank == 0

    @classmethod
    def current(cls) -> "Group":
        """torch.distributed's default group if it is initialised, else one process."""
        try:
            dist = _dist()
        except ImportError:
            return cls()
        if not (dist.is_available() and dist.is_initialized()):
            return cls()
        return cls(dist.get_rank(), dist.get_world_size())

    @classmethod
    def from_environment(cls) -> "Group":
        """Join the process group ``torchrun`` described in the environment, if any.

        With ``WORLD_SIZE`` unset or 1 this is one process and nothing is initialised.

        Raises:
            DistributedError: ``WORLD_SIZE`` > 1 but torch.distributed is unavailable
                or the rendezvous variables are missing.
        """
        size = int(os.environ.get("WORLD_SIZE", "1") or 1)
        if size <= 1:
            return cls()
        missing = [name for name in ("RANK", "MASTER_ADDR", "MASTER_PORT") if not os.environ.get(name)]
        if missing:
            raise DistributedError(
                f"WORLD_SIZE={size} but {', '.join(missing)} is not set; start multi-process runs "
                "with torchrun --nproc_per_node=N -m absolutezero.run ..."
            )
        try:
            dist = _dist()
            import torch
        except ImportError as error:
            raise DistributedError(f"WORLD_SIZE={size} needs torch.distributed: {error}") from None
        if not dist.is_available():
            raise DistributedError("this torch build has no torch.distributed; run with one process")
        if not dist.is_initialized():
            backend = "cpu:gloo,cuda:nccl" if torch.cuda.is_available() else "gloo"
            dist.init_process_group(backend=backend, timeout=TIMEOUT)
        return cls(dist.get_rank(), dist.get_world_size())

    def close(self) -> None:
        """Leave the process group (a no-op for one process)."""
        if self.size > 1:
            dist = _dist()
            if dist.is_initialized():
                dist.destroy_process_group()

    # -- splitting work -------------------------------------------------------------

    def indices(self, count: int) -> range:
        """The items of ``count`` this rank handles: every ``size``-th, from ``rank``.

        Strided rather than contiguous, so that batches sorted by task type or length
        give every rank a similar mix."""
        return range(self.rank, count, self.size)

    def share(self, items: Sequence[T]) -> list[T]:
        """This rank's items of ``items`` (see :meth:`indices`)."""
        return [items[i] for i in self.indices(len(items))]

    def map(self, function: Callable[[list[T]], Sequence[R]], items: Sequence[T]) -> list[R]:
        """``function(items)`` computed in shares and gathered: one result per item, in order,
        on every rank.

        ``function`` must map a list to one result per element, each depending on its
        element only (``Environment.validate``/``verify``, ``Agent.generate``).

        Raises:
            DistributedError: ``function`` returned the wrong number of results.
        """
        if self.size == 1:
            results = list(function(list(items)))
            _check_count(results, len(items))
            return results
        mine = list(function(self.share(items))) if len(items) > self.rank else []
        _check_count(mine, len(self.indices(len(items))))
        shares = self.all_gather(mine)
        results: list[Any] = [None] * len(items)
        for rank, share in enumerate(shares):
            for index, result in zip(range(rank, len(items), self.size), share):
                results[index] = result
        return results

    # -- collectives ----------------------------------------------------------------

    def all_gather(self, value: T) -> list[T]:
        """Every rank's ``value`` (picklable), in rank order."""
        if self.size == 1:
            return [value]
        gathered: list[Any] = [None] * self.size
        _dist().all_gather_object(gathered, value)
        return gathered

    def broadcast(self, value: T) -> T:
        """Rank 0's ``value`` on every rank (others pass anything, e.g. None)."""
        if self.size == 1:
            return value
        box = [value if self.is_main else None]
        _dist().broadcast_object_list(box, src=0)
        return box[0]

    def from_main(self, function: Callable[[], R]) -> R:
        """``function()`` evaluated on rank 0 only, its result broadcast to every rank.

        For decisions that must be taken once (plugins' filters, bonuses, reviews): the
        other ranks never call ``function``. An exception on rank 0 reaches every rank.
        """
        if self.size == 1:
            return function()
        outcome: tuple[bool, Any] = (True, None)
        if self.is_main:
            try:
                outcome = (True, function())
            except Exception as error:  # re-raised on every rank below
                outcome = (False, error)
        ok, value = self.broadcast(outcome)
        if not ok:
            if self.is_main:
                raise value
            raise DistributedError(f"rank 0 failed: {type(value).__name__}: {value}")
        return value

    def barrier(self) -> None:
        if self.size > 1:
            _dist().barrier()

    def all_reduce_sum(self, tensors: Sequence[Any]) -> None:
        """Sum ``tensors`` (torch tensors of one dtype and device) over the ranks, in place.

        They are flattened into one buffer, so the reduction is one collective whatever
        their number (DDP's bucketing, done once per optimiser step)."""
        if self.size == 1 or not tensors:
            return
        import torch

        flat = torch.cat([t.reshape(-1) for t in tensors])
        _dist().all_reduce(flat)
        offset = 0
        for tensor in tensors:
            count = tensor.numel()
            tensor.copy_(flat[offset : offset + count].view_as(tensor))
            offset += count

    def broadcast_tensors(self, tensors: Sequence[Any]) -> None:
        """Rank 0's values of ``tensors`` on every rank, in place (start-up weights)."""
        if self.size == 1:
            return
        dist = _dist()
        for tensor in tensors:
            dist.broadcast(tensor, src=0)


def _check_count(results: Sequence[Any], expected: int) -> None:
    if len(results) != expected:
        raise DistributedError(f"expected {expected} results (one per item), got {len(results)}")
