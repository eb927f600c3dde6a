"""Absolute Zero self-play reasoning: propose, validate, solve, verify, train with TRR++.

Importing the package registers a Gymnasium id ``absolutezero/<Name>-v0`` for every
environment registered under the ``absolutezero.environments`` entry-point group (e.g.
``gymnasium.make("absolutezero/Arith-v0")``) without importing any environment module.
Plugins mark their hook implementations with :data:`hookimpl`.
"""

from __future__ import annotations

from absolutezero.hookspecs import hookimpl
from absolutezero.registry import register_gym_environments

__version__ = "0.1.0"
__all__ = ["__version__", "hookimpl", "register_gym_environments"]

register_gym_environments()
