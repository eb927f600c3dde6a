"""Absolute Zero's SQL environment: read-only SQLite queries over small literal databases.

Kept import-light on purpose: sandbox workers import this package (``absolutezero_sql.worker``)
and must not pull in the core, numpy or torch. The environment class lives in
:mod:`absolutezero_sql.env`.
"""

__version__ = "0.1.0"
