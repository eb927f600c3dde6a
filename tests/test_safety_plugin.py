"""The safety monitor plugin: patterns, configuration, counters, hook wiring."""

from __future__ import annotations

import logging

import pytest

from absolutezero import plugins
from absolutezero.protocol import Task
from absolutezero_safety import plugin as safety
from absolutezero_safety.plugin import DEFAULT_PATTERNS, SafetyMonitor

TASK = Task("deduction", {"program": "def f(a): return a"})


@pytest.mark.parametrize(
    "response, rule",
    [
        ("import os\ndef f(a): return a", "import"),
        ("from subprocess import run", "import"),
        ("import socket", "import"),
        ("def f(a):\n    return os.listdir(a)", "system-call"),
        ("subprocess.run(['ls'])", "system-call"),
        ("__import__('os').system('ls')", "dunder-import"),
        ("().__class__.__bases__[0].__subclasses__()", "dunder-access"),
        ("f.__globals__", "dunder-access"),
        ("eval('1+1')", "eval"),
        ("exec (code)", "eval"),
        ("open('/etc/passwd').read()", "open"),
        ("getattr(a, 'x')", "introspection"),
        ("globals()['f']", "introspection"),
    ],
)
def test_dangerous_responses_are_caught(response, rule):
    monitor = SafetyMonitor()
    reason = monitor.check(response)
    assert reason is not None and f"({rule}:" in reason
    assert monitor.counts[rule] == 1 and monitor.checked == 1


@pytest.mark.parametrize(
    "response",
    [
        "<answer>3 * (4 + 5)</answer>",
        "def f(a):\n    return sorted(a)[::-1]\n<answer>[1, 2]</answer>",
        "Let me evaluate this: the position is 3 and the cost is 4.",
        "<think>the import of this result is small</think><answer>'abc'</answer>",
    ],
)
def test_benign_responses_pass(response):
    monitor = SafetyMonitor()
    assert monitor.check(response) is None
    assert sum(monitor.counts.values()) == 0 and monitor.checked == 1


def test_configuration():
    monitor = SafetyMonitor(disabled=["open", "introspection"], extra_patterns={"network": r"\brequests\."})
    assert monitor.check("open('x')") is None
    assert "(network: 'requests.'" in monitor.check("requests.get(url)")
    only = SafetyMonitor(patterns={"bad": (r"\bbad\b", "says bad")})
    assert only.check("import os") is None and "says bad" in only.check("bad")
    with pytest.raises(ValueError, match=r"unknown safety pattern\(s\) \['opn'\]"):
        SafetyMonitor(disabled=["opn"])
    with pytest.raises(ValueError, match="'broken' is not a valid regex"):
        SafetyMonitor(extra_patterns={"broken": "("})
    with pytest.raises(TypeError, match="must be a str"):
        SafetyMonitor().check(None)
    assert set(DEFAULT_PATTERNS) >= {"import", "eval", "open", "dunder-import", "dunder-access"}


def test_role_switches():
    monitor = SafetyMonitor(check_proposals=False)
    assert monitor.absolutezero_filter_proposal(task=TASK, response="import os") is None
    assert monitor.absolutezero_filter_answer(task=TASK, response="import os") is not None


def test_step_metrics_logs_new_catches(caplog):
    monitor = SafetyMonitor()
    monitor.check("import os")
    monitor.check("eval(x)")
    monitor.check("1 + 1")
    with caplog.at_level(logging.WARNING, logger="absolutezero.safety"):
        monitor.absolutezero_step_metrics(step=4, metrics={})
        monitor.absolutezero_step_metrics(step=5, metrics={})  # nothing new: silent
    assert len(caplog.records) == 1
    message = caplog.records[0].getMessage()
    assert "step 4" in message and "eval=1" in message and "import=1" in message and "of 3 checked" in message


def test_autoloaded_entry_point_filters_through_the_manager(monkeypatch):
    monkeypatch.delenv(plugins.AUTOLOAD_ENV_VAR, raising=False)
    pm = plugins.get_plugin_manager()
    assert pm.get_plugin("safety") is safety
    before = safety.MONITOR.counts["dunder-import"]
    reason = plugins.filter_proposal(pm, TASK, "__import__('os')")
    assert reason is not None and "safety monitor" in reason
    assert safety.MONITOR.counts["dunder-import"] == before + 1
    assert plugins.filter_answer(pm, TASK, "<answer>5</answer>") is None


def test_custom_monitor_via_plugins_path(monkeypatch):
    monkeypatch.setenv(plugins.AUTOLOAD_ENV_VAR, "1")
    pm = plugins.get_plugin_manager(["absolutezero_safety.plugin:MONITOR"])
    assert plugins.filter_answer(pm, TASK, "open('f')") is not None
