"""The documentation site builds with ``mkdocs build --strict``: no broken link, anchor or
nav entry, no page left out of the nav. CI runs only pytest, so this is where the docs
are checked."""

from __future__ import annotations

import importlib.util
import os
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]


def test_mkdocs_build_strict(tmp_path):
    if importlib.util.find_spec("mkdocs") is None or importlib.util.find_spec("material") is None:
        pytest.skip("mkdocs and mkdocs-material are not installed: pip install -e '.[dev]'")
    env = dict(os.environ, NO_MKDOCS_2_WARNING="1")
    done = subprocess.run(
        [sys.executable, "-m", "mkdocs", "build", "--strict", "--config-file", str(REPO / "mkdocs.yml"),
         "--site-dir", str(tmp_path / "site")],
        cwd=REPO, capture_output=True, text=True, env=env, timeout=300,
    )
    output = done.stdout + done.stderr
    assert done.returncode == 0, output[-5000:]
    warnings = [line for line in output.splitlines() if line.startswith(("WARNING", "ERROR"))]
    assert warnings == [], "\n".join(warnings)
    assert (tmp_path / "site" / "index.html").is_file()
    assert (tmp_path / "site" / "tutorials" / "environment" / "index.html").is_file()


def test_readme_keeps_the_ci_test_command_and_stays_short():
    readme = (REPO / "README.md").read_text()
    ci = (REPO / ".ci" / "run").read_text()
    command = "bash scripts/setup.sh && .venv/bin/python -m pytest -q"
    assert command in ci and command in readme
    assert "bash scripts/setup.sh && .venv/bin/python -m absolutezero.run env=code" in readme
    assert len(readme.splitlines()) <= 220, "the README is the front door; details belong in docs/"


def test_readme_links_into_the_docs_resolve():
    import re

    readme = (REPO / "README.md").read_text()
    targets = re.findall(r"\]\(((?:docs|configs)/[^)#\s]*)(?:#[^)\s]*)?\)", readme)
    assert targets, "the README should link into docs/"
    missing = [target for target in targets if not (REPO / target).exists()]
    assert missing == [], f"README links to missing files: {missing}"
