"""The math-verify helper process (mathcheck.py): answers, hardening, crashes, timeouts."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest


from absolutezero_benchmarks import mathcheck
from absolutezero_benchmarks.mathcheck import MathChecker, MathVerifyUnavailable


def test_equivalent_answers_verify_and_others_do_not(math_checker) -> None:
    pairs = [("72", "72.0"), ("\\frac{1}{2}", "0.5"), ("(3, \\frac{\\pi}{2})", "(3,\\frac{\\pi}{2})"),
             ("1000", "1,000"), ("5", "6"), ("\\frac{1}{2}", "")]
    results = math_checker.check_many(pairs)
    assert [ok for ok, _ in results] == [True, True, True, True, False, False]
    assert results[4][1] == "not equivalent to the gold answer"


def test_answers_that_try_code_run_nothing_and_echo_nothing(math_checker, tmp_path: Path) -> None:
    marker = tmp_path / "pwned"
    attempts = [f"__import__('os').system('touch {marker}')", "open('/etc/hostname').read()",
                "().__class__.__bases__[0].__subclasses__()"]
    results = math_checker.check_many([("3", attempt) for attempt in attempts])
    assert all(ok is False for ok, _ in results)
    assert not marker.exists()
    # reasons are fixed texts: nothing of the answer (or of a file) comes back
    assert all(reason in ("not equivalent to the gold answer", "the answer does not parse as math")
               or reason.startswith("math check failed (") for _, reason in results)


HARDENED = textwrap.dedent(
    """
    import json, os, socket, subprocess, sys, tempfile
    target = tempfile.mkdtemp()
    from absolutezero_benchmarks import mathcheck
    mathcheck._harden()
    outcome = {}
    def attempt(name, action):
        try:
            action()
            outcome[name] = "allowed"
        except PermissionError:
            outcome[name] = "denied"
        except OSError as error:
            outcome[name] = "denied" if error.errno in (1, 13, 27) else f"oserror {error.errno}"
    attempt("read outside python", lambda: open("/etc/hostname").read())
    attempt("write", lambda: open(os.path.join(target, "x"), "w").write("x"))
    attempt("process", lambda: subprocess.run(["true"]))
    attempt("system", lambda: os.system("true"))
    attempt("network", lambda: socket.create_connection(("127.0.0.1", 9), timeout=1))
    attempt("read python's own files", lambda: open(os.__file__).read(10))
    print(json.dumps({"outcome": outcome, "environ": dict(os.environ), "cwd_empty": os.listdir(".") == []}))
    """
)


def test_the_helper_process_is_hardened_after_it_loads(tmp_path: Path) -> None:
    out = subprocess.run([sys.executable, "-c", HARDENED], capture_output=True, text=True, timeout=120, cwd=tmp_path)
    assert out.returncode == 0, out.stderr[-2000:]
    report = json.loads(out.stdout.strip().splitlines()[-1])
    outcome = report["outcome"]
    assert outcome.pop("read python's own files") == "allowed"  # sympy imports lazily
    assert set(outcome.values()) == {"denied"}, outcome
    assert report["environ"] == {} and report["cwd_empty"] is True


def test_a_crashed_or_hung_helper_costs_one_answer_and_restarts(math_checker) -> None:
    math_checker.check_many([("1", "1")])
    math_checker._process.kill()  # the helper dies between two checks
    math_checker._process.wait()
    assert math_checker.check_many([("2", "2")]) == [(True, "")]
    impatient = MathChecker(item_timeout=0.0001)
    try:
        impatient._start()
        assert impatient.check_many([("2", "2")]) == [(False, "the math check timed out or crashed")]
        assert impatient._process is None  # killed; the next check starts a fresh one
    finally:
        impatient.close()


def test_the_helper_works_in_an_empty_folder_that_close_removes(math_checker) -> None:
    checker = MathChecker()
    try:
        assert checker.check_many([("3", "3")]) == [(True, "")]
        folder = Path(checker._folder.name)
        assert Path(os.readlink(f"/proc/{checker._process.pid}/cwd")) == folder and list(folder.iterdir()) == []
    finally:
        checker.close()
    assert not folder.exists() and checker._folder is None


def test_without_math_verify_the_error_says_how_to_install(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(mathcheck, "available", lambda: "math-verify is not installed: pip install 'absolutezero[eval]'")
    with pytest.raises(MathVerifyUnavailable, match=r"absolutezero\[eval\]"):
        MathChecker().check_many([("1", "1")])
