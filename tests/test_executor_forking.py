"""The worker's fork loops (executor/forking.py and its C extension _forkjobs.c).

Both loops must give a child the same isolation (only its result pipe, every limit)
and report the same outcomes; the Executor must give the same results with either.
The loops are driven in a fresh interpreter: they are only for single-threaded
processes, and the test process runs executor threads.
"""

from __future__ import annotations

import json
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from absolutezero_code.executor import Executor, Status
from absolutezero_code.executor.forking import failure, native_available

LOOPS = ["python", pytest.param("native", marks=pytest.mark.skipif(
    not native_available(), reason="the _forkjobs extension is not built"))]

_PACKAGE_ROOT = str(Path(__import__("absolutezero_code").__file__).resolve().parents[1])

_SCENARIOS = r'''
import json, os, resource, signal, sys, time
from absolutezero_code.executor import forking, guard

loop = forking.make_fork_loop(sys.argv[1])
plan = guard.limit_plan(256, 1.5)
keep_open = os.open(os.devnull, os.O_RDONLY)  # like the worker's own descriptors
report = {"name": loop.name}

def isolation(job, fd):
    open_fds = []
    for number in range(4096):  # fstat needs no new descriptor
        try:
            os.fstat(number)
        except OSError:
            continue
        open_fds.append(number)
    limits = {name: list(resource.getrlimit(getattr(resource, name)))
              for name in ("RLIMIT_AS", "RLIMIT_CPU", "RLIMIT_FSIZE", "RLIMIT_NPROC",
                           "RLIMIT_CORE", "RLIMIT_NOFILE")}
    os.write(fd, json.dumps({"fds": open_fds, "result_fd": fd, "limits": limits}).encode())

(data,) = loop.run([None], 0, isolation, plan, 5.0, 1 << 20, 0.0)
report["isolation"] = json.loads(data)

def behave(job, fd):
    if job == "echo":
        os.write(fd, b"x" * 100000)  # more than one pipe buffer
    elif job == "raise":
        raise ValueError("boom")
    elif job == "sleep":
        time.sleep(30)
    elif job == "flood":
        while True:
            os.write(fd, b"y" * 65536)
    elif job == "signal":
        os.kill(os.getpid(), signal.SIGTERM)
    # "silent": writes nothing

jobs = ["echo", "raise", "silent", "sleep", "flood", "signal"]
started = time.monotonic()
outcomes = loop.run(jobs, 0, behave, plan, 0.5, 200000, 60.0)
report["elapsed"] = time.monotonic() - started
report["outcomes"] = [o.decode()[:3] + str(len(o)) if isinstance(o, bytes) else list(o)
                      for o in outcomes]
report["budget_zero"] = len(loop.run(jobs, 1, behave, plan, 0.5, 200000, 0.0))
report["from_start"] = [list(o) for o in loop.run(jobs, 1, behave, plan, 0.5, 200000, 0.0)]
os.close(keep_open)
print(json.dumps(report))
'''


def _scenarios(loop: str) -> dict:
    completed = subprocess.run(
        [sys.executable, "-c", _SCENARIOS, loop],
        capture_output=True,
        text=True,
        timeout=120,
        env={"PYTHONPATH": _PACKAGE_ROOT},
    )
    assert completed.returncode == 0, completed.stderr
    return json.loads(completed.stdout)


@pytest.fixture(scope="module", params=LOOPS)
def report(request) -> dict:
    return _scenarios(request.param)


def test_the_loop_is_the_one_asked_for(report, request):
    assert report["name"] == request.node.callspec.params["report"]


def test_a_child_keeps_only_its_result_pipe_and_gets_every_limit(report):
    isolation = report["isolation"]
    assert isolation["fds"] == [isolation["result_fd"]]  # no stdin/stdout/stderr, nothing else
    assert isolation["limits"] == {
        "RLIMIT_AS": [256 << 20, 256 << 20],
        "RLIMIT_CPU": [3, 3],
        "RLIMIT_FSIZE": [0, 0],
        "RLIMIT_NPROC": [0, 0],
        "RLIMIT_CORE": [0, 0],
        "RLIMIT_NOFILE": [4, 4],
    }


def test_each_way_a_child_can_end_has_its_outcome(report):
    assert report["outcomes"] == [
        "xxx100000",  # all of a long result, across pipe-buffer refills
        ["exit", 70],  # the job function raised
        ["exit", 0],  # exited cleanly without writing a result
        ["timeout", 0],  # killed at the wall-clock limit
        ["output_limit", 0],  # killed once past the byte cap
        ["signal", int(signal.SIGTERM)],
    ]
    assert report["elapsed"] < 10  # the sleeper was killed at 0.5 s, not waited for


def test_the_budget_stops_after_the_first_job_and_start_is_honoured(report):
    assert report["budget_zero"] == 1
    assert report["from_start"] == [["exit", 70]]  # jobs[1], "raise"


def test_failure_outcomes_become_results_with_reasons():
    assert failure("timeout", 0, 1.5, 100) == ["timeout", None, "exceeded the time limit of 1.5 s"]
    assert failure("output_limit", 0, 1.0, 100) == ["output_limit", None, "output longer than 100 characters"]
    assert failure("signal", int(signal.SIGXCPU), 1.0, 100)[0] == "timeout"  # CPU limit
    assert failure("signal", int(signal.SIGKILL), 1.0, 100)[0] == "timeout"  # RLIMIT_CPU hard
    assert failure("signal", int(signal.SIGSEGV), 1.0, 100) == [
        "error", None, "sandboxed process died with signal SIGSEGV"]
    assert failure("exit", 70, 1.0, 100) == ["error", None, "sandboxed process exited (code 70) without a result"]
    assert failure("fork", 11, 1.0, 100)[2].startswith("could not start a sandboxed process: ")


_MIXED_JOBS = [
    ("def f(a, b):\n    return sorted(set(a)) + [b]", "[3, 1, 3], 'x'"),
    ("def f():\n    return 1 / 0", ""),
    ("def f():\n    while True:\n        pass", ""),
    ("def f():\n    return 'a' * 3000", ""),
    ("def f():\n    return open('/etc/passwd').read()", ""),
    ("def f():\n    return [0] * (10 ** 9)", ""),
    ("import math\ndef f(x):\n    return math.factorial(x)", "20"),
]


def test_both_loops_give_the_executor_the_same_results():
    if not native_available():
        pytest.skip("the _forkjobs extension is not built")
    results = {}
    for loop in ("python", "native"):
        with Executor(workers=1, timeout=0.5, memory_mb=256, output_limit=2000, fork_loop=loop) as executor:
            assert executor.fork_loop == loop
            results[loop] = executor.run_many(_MIXED_JOBS)
    assert results["python"] == results["native"]
    statuses = [result.status for result in results["native"]]
    assert statuses == [Status.OK, Status.ERROR, Status.TIMEOUT, Status.OUTPUT_LIMIT,
                        Status.REJECTED, Status.MEMORY, Status.OK]


def test_an_unknown_fork_loop_is_refused_with_the_choices():
    with pytest.raises(ValueError, match="fork_loop must be one of auto, native, python"):
        Executor(workers=1, fork_loop="c")


_THREADED = r'''
import threading, time
from absolutezero_code.executor import forking, guard
loop = forking.NativeForkLoop()
worker = threading.Thread(target=time.sleep, args=(2,))
worker.start()
try:
    loop.run([None], 0, lambda job, fd: None, guard.limit_plan(256, 1.0), 1.0, 1024, 0.0)
except RuntimeError as error:
    print(error)
'''


@pytest.mark.skipif(not native_available(), reason="the _forkjobs extension is not built")
def test_the_native_loop_refuses_to_fork_a_threaded_process():
    completed = subprocess.run(
        [sys.executable, "-c", _THREADED], capture_output=True, text=True, timeout=60,
        env={"PYTHONPATH": _PACKAGE_ROOT},
    )
    assert completed.stdout.strip() == "the native fork loop needs a single-threaded process"
