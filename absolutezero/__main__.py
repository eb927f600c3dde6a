"""``python -m absolutezero``: inspect an installation.

``list`` shows the registered environments, agents, benchmarks and experiment trackers
(read from package metadata, without importing their modules) and the plugins (which are
loaded, so a broken plugin shows up here first), each with the distribution and version
that provides it.
Training and evaluation have their own entry points: ``python -m absolutezero.run`` and
``python -m absolutezero.evaluate``.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from typing import TextIO

__all__ = ["main"]


def _table(rows: list[tuple[str, ...]], out: TextIO) -> None:
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    for row in rows:
        out.write("  " + "  ".join(cell.ljust(width) for cell, width in zip(row, widths)).rstrip() + "\n")


def list_components(out: TextIO, plugins: Sequence[str] = ()) -> int:
    """Write the ``list`` report to ``out``; returns the exit status (0, or 1 on an error)."""
    from absolutezero import plugins as plugin_module
    from absolutezero import registry

    status = 0
    for kind in ("environment", "agent", "benchmark", "tracker"):
        out.write(f"{kind}s ({registry.GROUPS[kind]}):\n")
        try:
            entries = registry.entries(kind)
        except registry.DuplicateNameError as error:
            out.write(f"  error: {error}\n")
            status = 1
            continue
        if not entries:
            out.write("  (none)\n")
            continue
        rows = [("name", "distribution", "version", "object")]
        rows += [(e.name, e.distribution, e.version, e.value) for e in entries.values()]
        _table(rows, out)
    autoload = "off: " + plugin_module.AUTOLOAD_ENV_VAR + " is set" if plugin_module.autoload_disabled() else "on"
    out.write(f"plugins ({plugin_module.ENTRY_POINT_GROUP}; autoload {autoload}):\n")
    try:
        manager = plugin_module.get_plugin_manager(plugins)
    except plugin_module.PluginLoadError as error:
        out.write(f"  error: {error}\n")
        return 1
    infos = plugin_module.plugin_infos(manager)
    if not infos:
        out.write("  (none)\n")
    else:
        rows = [("name", "distribution", "version", "object")]
        rows += [(i.name, i.distribution or f"({i.source})", i.version or "-", i.target) for i in infos]
        _table(rows, out)
    return status


def main(argv: Sequence[str] | None = None) -> int:
    """Command-line entry point (also installed as the ``absolutezero`` script)."""
    parser = argparse.ArgumentParser(
        prog="python -m absolutezero",
        description="Absolute Zero self-play reasoning. Train with `python -m absolutezero.run "
        "key=value ...`, evaluate with `python -m absolutezero.evaluate ...`.",
    )
    commands = parser.add_subparsers(dest="command", metavar="COMMAND")
    lister = commands.add_parser(
        "list", help="show environments, agents, benchmarks, trackers and plugins with their versions"
    )
    lister.add_argument(
        "--plugin", action="append", default=[], metavar="MODULE",
        help="also load this plugin module (import path), as the run config's plugins= does",
    )
    args = parser.parse_args(argv)
    if args.command is None:
        parser.print_help()
        return 2
    return list_components(sys.stdout, args.plugin)


if __name__ == "__main__":
    sys.exit(main())
