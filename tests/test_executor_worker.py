"""Worker internals that the speed work relies on: what a forked child keeps, the
result lines it writes, and the trainer-side check of reply lines."""

from __future__ import annotations

import json
import os
import resource

import pytest

from absolutezero_code.executor import guard, pool, worker


def _in_child(body) -> dict:
    """Fork, run ``body(result_fd)`` in the child (which must return a JSON-able value)
    and return what it reported. Only used for the worker's own trusted code."""
    read_fd, write_fd = os.pipe()
    pid = os.fork()
    if pid == 0:
        try:
            data = json.dumps(body(write_fd)).encode()
            os.write(write_fd, data)
            os._exit(0)
        except BaseException:  # noqa: BLE001
            os._exit(70)
    os.close(write_fd)
    chunks = []
    while chunk := os.read(read_fd, 1 << 16):
        chunks.append(chunk)
    os.close(read_fd)
    _, status = os.waitpid(pid, 0)
    assert os.WIFEXITED(status) and os.WEXITSTATUS(status) == 0
    return json.loads(b"".join(chunks))


def test_a_child_keeps_only_its_result_pipe_and_gets_every_limit():
    plan = guard.limit_plan(256, 1.5)
    keep_open = os.open(os.devnull, os.O_RDONLY)  # like the worker's own descriptors
    try:

        def body(result_fd: int) -> dict:
            worker._enter_child(result_fd, plan)
            open_fds = []
            for fd in range(0, 4096):  # fstat needs no new descriptor
                try:
                    os.fstat(fd)
                except OSError:
                    continue
                open_fds.append(fd)
            limits = {
                name: list(resource.getrlimit(getattr(resource, name)))
                for name in ("RLIMIT_AS", "RLIMIT_CPU", "RLIMIT_FSIZE", "RLIMIT_NPROC",
                             "RLIMIT_CORE", "RLIMIT_NOFILE")
            }
            return {"fds": open_fds, "result_fd": result_fd, "limits": limits}

        report = _in_child(body)
    finally:
        os.close(keep_open)
    assert report["fds"] == [report["result_fd"]]  # no stdin/stdout/stderr, nothing else
    assert report["limits"] == {
        "RLIMIT_AS": [256 << 20, 256 << 20],
        "RLIMIT_CPU": [3, 3],
        "RLIMIT_FSIZE": [0, 0],
        "RLIMIT_NPROC": [0, 0],
        "RLIMIT_CORE": [0, 0],
        "RLIMIT_NOFILE": [4, 4],
    }


def test_apply_limits_matches_the_plan():
    plan = dict(guard.limit_plan(512, 0.2))
    assert plan[resource.RLIMIT_CPU] == (2, 2)  # next whole second plus one
    assert plan[resource.RLIMIT_AS] == (512 << 20, 512 << 20)
    seen = []
    guard.apply_plan(tuple(plan.items()), setrlimit=lambda limit, pair: seen.append((limit, pair)))
    assert dict(seen) == plan


@pytest.mark.parametrize(
    "result",
    [
        ["ok", "'a\\nb'\udcff \u00e9", ""],
        ["error", None, 'ValueError: "quoted"\n\ttab'],
        ["rejected", None, "blocked operation open('/etc/passwd')"],
    ],
)
def test_result_lines_are_the_json_of_the_result_on_one_line(result):
    line = worker._encode(result)
    assert b"\n" not in line
    assert json.loads(line) == result
    compact = json.dumps(result, ensure_ascii=False, separators=(",", ":"))
    assert line == compact.encode("utf-8", "backslashreplace")


@pytest.mark.parametrize(
    "line",
    [
        b'["ok", null, ""]',  # ok without an output
        b'["error", "text", ""]',  # an output on a failure
        b'["fine", "1", ""]',  # unknown status
        b'["ok", "1"]',
        b"not json",
    ],
)
def test_the_trainer_rejects_malformed_reply_lines(line):
    with pytest.raises(pool._WorkerFailure):
        pool._decode(line)


def test_the_trainer_accepts_well_formed_reply_lines():
    assert pool._decode(b'["ok", "[1, 2]", ""]') == ["ok", "[1, 2]", ""]
    assert pool._decode(b'["timeout", null, "exceeded"]') == ["timeout", None, "exceeded"]
