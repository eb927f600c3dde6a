"""The configuration reference page is generated from the declarations and kept current."""

from __future__ import annotations

from absolutezero.config_reference import DEFAULT_PATH, _components, _plugins, render
from absolutezero.options import declared_options


def test_the_committed_reference_page_is_current():
    assert DEFAULT_PATH.read_text(encoding="utf-8") == render(), (
        "docs/reference/configuration.md is stale: regenerate it with "
        "`.venv/bin/python -m absolutezero.config_reference`"
    )


def test_every_builtin_option_has_one_line_of_help():
    missing = []
    for kind in ("environment", "agent", "tracker"):
        for name, cls in _components(kind):
            missing += [f"{kind} {name}: {option}" for option, o in declared_options(cls).items() if not o.help]
    for name, options in _plugins():
        missing += [f"plugin {name}: {option}" for option, o in declared_options(options).items() if not o.help]
    assert not missing


def test_the_page_lists_core_sections_and_every_builtin_component():
    page = render()
    for heading in ("## Core settings", "### `selfplay`", "### `probe`", "### `code`", "### `arith`", "### `policy`",
                    "### `tensorboard`"):
        assert heading in page
    assert "| `agent_options.learning_rate` | float | `1e-05` | AdamW's step size (constant schedule). |" in page
    assert "train.learning_rate`" not in page
