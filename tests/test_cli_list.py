"""`python -m absolutezero list` and `--help`."""

from __future__ import annotations

import io
import os
import subprocess
import sys

from absolutezero.__main__ import list_components, main


def run_cli(*args: str, env_extra: dict[str, str] | None = None, pythonpath: str | None = None):
    env = dict(os.environ)
    env.pop("ABSOLUTEZERO_DISABLE_PLUGIN_AUTOLOAD", None)
    env.update(env_extra or {})
    if pythonpath:
        env["PYTHONPATH"] = pythonpath + os.pathsep + env.get("PYTHONPATH", "")
    return subprocess.run([sys.executable, "-m", "absolutezero", *args], capture_output=True, text=True, env=env)


def test_list_shows_every_kind_with_versions():
    result = run_cli("list")
    assert result.returncode == 0, result.stderr
    out = result.stdout
    for header in ("environments (absolutezero.environments)", "agents (absolutezero.agents)",
                   "benchmarks (absolutezero.benchmarks)", "plugins (absolutezero; autoload on)"):
        assert header in out
    lines = {line.split()[0]: line.split() for line in out.splitlines() if line.startswith("  ")}
    for name in ("arith", "code", "policy", "cruxeval-o", "cruxeval-i", "safety"):
        assert lines[name][1:3] == ["absolutezero", "0.1.0"], lines[name]
    assert lines["arith"][3] == "absolutezero_arith.env:ArithEnvironment"


def test_list_does_not_import_environment_modules():
    code = (
        "import io, sys\n"
        "from absolutezero.__main__ import list_components\n"
        "list_components(io.StringIO())\n"
        "print(sorted(m for m in sys.modules if m.startswith(('absolutezero_arith', 'absolutezero_code', 'absolutezero_policy', 'absolutezero_benchmarks'))))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


def test_list_shows_third_party_packages(tmp_path):
    from test_registry import install_distribution

    root = install_distribution(
        tmp_path / "site", "acme-selfplay", "2.0.1",
        {"absolutezero.environments": {"acme": "acme_mod:Env"}, "absolutezero": {"acme-logger": "acme_plugin_mod"}},
        {"acme_plugin_mod": "X = 1\n"},
    )
    result = run_cli("list", pythonpath=str(root))
    assert result.returncode == 0, result.stderr
    rows = [line.split() for line in result.stdout.splitlines()]
    assert ["acme", "acme-selfplay", "2.0.1", "acme_mod:Env"] in rows
    assert ["acme-logger", "acme-selfplay", "2.0.1", "acme_plugin_mod"] in rows


def test_autoload_switch_and_broken_plugin_exit_status():
    result = run_cli("list", "--plugin", "absolutezero_safety.plugin:MONITOR",
                     env_extra={"ABSOLUTEZERO_DISABLE_PLUGIN_AUTOLOAD": "1"})
    assert result.returncode == 0
    assert "autoload off" in result.stdout
    assert "absolutezero_safety.plugin:MONITOR  (module)" in result.stdout
    out = io.StringIO()
    assert list_components(out, ["no_such_plugin_module_xyz"]) == 1
    assert "error: cannot import plugin module 'no_such_plugin_module_xyz'" in out.getvalue()


def test_help_and_no_command(capsys):
    result = run_cli("--help")
    assert result.returncode == 0 and "list" in result.stdout and "python -m absolutezero.run" in result.stdout
    assert main([]) == 2
    assert "usage:" in capsys.readouterr().out
