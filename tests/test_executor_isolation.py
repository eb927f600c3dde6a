"""Hostile programs: the host (files, processes, the trainer) stays untouched and every
attack ends with the right status and reason."""

from __future__ import annotations

import math
import os
import time

import pytest

from absolutezero_code.executor import Executor, Status


@pytest.fixture(scope="module")
def executor():
    with Executor(workers=1, timeout=3.0, memory_mb=256) as instance:
        yield instance


def _run(executor, program, text=""):
    (result,) = executor.run_many([(program, text)])
    return result


def test_file_write_is_blocked_and_leaves_no_file(executor, tmp_path):
    target = tmp_path / "pwned.txt"
    attempts = [
        f"def f():\n    open({str(target)!r}, 'w').write('x')\n    return 1",
        f"def f():\n    print('x', file={str(target)!r})\n    return 1",
        "import pathlib\ndef f():\n    return 1",
    ]
    results = executor.run_many([(program, "") for program in attempts])
    assert results[0].status is Status.REJECTED and "open" in results[0].reason
    assert results[1].ok  # print goes nowhere, whatever its file argument
    assert results[2].status is Status.REJECTED
    assert list(tmp_path.iterdir()) == []


def test_reading_host_files_is_blocked(executor):
    result = _run(executor, "def f():\n    return open('/etc/passwd').read()")
    assert result.status is Status.REJECTED and "'open'" in result.reason


@pytest.mark.parametrize(
    "program",
    [
        "import socket\ndef f():\n    return socket.socket()",
        "import subprocess\ndef f():\n    return subprocess.run(['true'])",
        "import threading\ndef f():\n    threading.Thread(target=print).start()\n    return 1",
        "import _thread\ndef f():\n    return _thread.start_new_thread(print, ())",
        "import os\ndef f():\n    while True:\n        os.fork()",
        "import os\ndef f():\n    os._exit(0)",
        "import multiprocessing\ndef f():\n    return 1",
        "import ctypes\ndef f():\n    return 1",
    ],
)
def test_network_processes_threads_are_rejected(executor, program):
    result = _run(executor, program)
    assert result.status is Status.REJECTED
    assert "import of module" in result.reason


def test_infinite_loop_times_out_with_a_hard_kill(executor):
    started = time.monotonic()
    result = _run(executor, "def f():\n    while True:\n        pass")
    assert result.status is Status.TIMEOUT and "time limit" in result.reason
    assert time.monotonic() - started < 15


def test_a_loop_that_catches_everything_still_times_out(executor):
    program = "def f():\n    while True:\n        try:\n            sum(range(10**6))\n        except BaseException:\n            pass"
    assert _run(executor, program).status is Status.TIMEOUT


@pytest.mark.parametrize(
    "program",
    [
        "def f():\n    return len([0] * (10 ** 10 // 8))",
        "def f():\n    return len('x' * 10 ** 10)",
        "def f():\n    return len(bytearray(10 ** 10))",
        "def f():\n    xs = []\n    while True:\n        xs.append('y' * 10 ** 6)",
    ],
)
def test_huge_allocations_hit_the_memory_limit(executor, program):
    result = _run(executor, program)
    assert result.status is Status.MEMORY, result
    assert "256 MB" in result.reason


def test_printing_100_mb_hits_the_output_limit(executor):
    program = "def f():\n    s = 'z' * 10 ** 6\n    for _ in range(100):\n        print(s)\n    return 1"
    result = _run(executor, program)
    assert result.status is Status.OUTPUT_LIMIT and "printed more than" in result.reason


def test_swallowing_the_print_limit_does_not_help(executor):
    program = (
        "def f():\n    s = 'z' * 10 ** 6\n    for _ in range(3):\n"
        "        try:\n            print(s)\n        except BaseException:\n            pass\n    return 1"
    )
    assert _run(executor, program).status is Status.OUTPUT_LIMIT


@pytest.mark.parametrize(
    ("program", "fragment"),
    [
        ("def f():\n    raise SystemExit(3)", "SystemExit: 3"),
        ("def f():\n    raise KeyboardInterrupt", "KeyboardInterrupt"),
        ("def f():\n    return exit()", "builtin 'exit'"),
    ],
)
def test_exiting_the_interpreter_is_an_error_or_rejected(executor, program, fragment):
    result = _run(executor, program)
    assert result.status in (Status.ERROR, Status.REJECTED)
    assert fragment in result.reason


def test_deep_recursion_is_an_error(executor):
    result = _run(executor, "def f(n):\n    return f(n + 1)", "0")
    assert result.status is Status.ERROR and result.reason.startswith("RecursionError")


def test_patching_builtins_and_modules_does_not_poison_later_jobs(executor):
    # Regression: the original reused one worker, so a patched builtin leaked.
    poison = (
        "import math\n"
        "def f():\n"
        "    global len\n"
        "    math.pi = 3\n"
        "    math.sqrt = lambda x: 0\n"
        "    list.__init__\n"  # harmless safe dunder read
        "    return 1\n"
        "len = lambda x: -1\n"
    )
    probe = "import math\ndef f(xs):\n    return (len(xs), math.pi, math.sqrt(16.0))"
    results = executor.run_many([(poison, "")] * 4 + [(probe, "[1, 2, 3]")] * 8)
    assert all(r.ok for r in results[:4])
    assert {r.output for r in results[4:]} == {f"(3, {math.pi!r}, 4.0)"}
    assert math.pi == 3.141592653589793  # and the trainer's own modules are untouched


def test_programs_do_not_run_in_the_callers_process(executor):
    program = "def f():\n    return 1\nraise SystemExit('would end the trainer')"
    result = _run(executor, program)
    assert result.status is Status.ERROR  # and this test process is still alive


def test_child_sees_no_environment_and_no_arguments(executor):
    os.environ["ABSOLUTEZERO_SECRET_TEST"] = "leak"
    try:
        result = _run(executor, "import os\ndef f():\n    return dict(os.environ)")
    finally:
        del os.environ["ABSOLUTEZERO_SECRET_TEST"]
    assert result.status is Status.REJECTED  # os is not importable at all


def test_a_killed_worker_is_replaced(executor):
    pids = executor.worker_pids()
    os.kill(pids[0], 9)
    results = executor.run_many([("def f(x):\n    return x + 1", "1")] * 6)
    assert all(r.ok and r.output == "2" for r in results[1:])
    assert results[0].ok or "worker" in results[0].reason
    assert executor.run_many([("def f():\n    return 5", "")])[0].output == "5"
    assert executor.worker_pids()[0] != pids[0]


def test_memory_and_time_limits_do_not_apply_to_the_caller(executor):
    # The caller can still allocate and compute after its jobs hit the limits.
    data = bytearray(300 * 1024 * 1024)
    assert len(data) == 300 * 1024 * 1024
