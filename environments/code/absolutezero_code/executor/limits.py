"""The executor's default limits, in one place: :class:`.pool.Executor` and the code
environment's options (``env_options.timeout`` ...) both take their defaults from here."""

DEFAULT_TIMEOUT = 1.0  # wall-clock seconds per run
DEFAULT_MEMORY_MB = 512  # address-space limit per run, MiB
DEFAULT_OUTPUT_LIMIT = 1_000_000  # characters of a canonical output or printed text
