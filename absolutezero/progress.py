"""``progress=false``: no progress bar at all, the libraries' own included.

Our bars (tqdm) honour ``progress``; transformers and huggingface_hub draw their own
("Loading weights", "Writing model shards" at every checkpoint), which would still
scroll through a log. Their switches are process-wide, so only the command-line entry
points call :func:`silence_library_bars`, never library code.
"""

from __future__ import annotations

import importlib


def silence_library_bars() -> None:
    """Turn off transformers' and huggingface_hub's progress bars (if installed)."""
    for module, function in (
        ("transformers.utils.logging", "disable_progress_bar"),
        ("huggingface_hub.utils", "disable_progress_bars"),
    ):
        try:
            getattr(importlib.import_module(module), function)()
        except (ImportError, AttributeError):
            continue
