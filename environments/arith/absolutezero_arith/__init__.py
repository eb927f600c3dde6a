"""A tiny integer-arithmetic environment for absolutezero (entry point ``arith``).

See :mod:`absolutezero_arith.env`.
"""

from absolutezero_arith.env import ArithEnvironment

__all__ = ["ArithEnvironment"]
