"""The trainer side of one sandbox worker process: start it, talk to it, restart it.

A worker (:mod:`.worker`) is a separate interpreter started with its own hash seed, an
empty environment and the sandbox directory as its working directory; the trainer
sends it one JSON line per batch and reads one JSON line back per item. Everything it
sends back is checked here for shape (:func:`_decode`), and a worker that dies, hangs
or breaks the protocol is killed and restarted, costing only the item in progress.
"""

from __future__ import annotations

import json
import os
import select
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from .results import Status
from .worker import BOOTSTRAP

__all__ = ["SandboxError", "WorkerProcess", "DEFER"]

_PACKAGE_ROOT = str(Path(__file__).resolve().parents[2])


def restricted_python_root() -> str:
    """The folder of the installed RestrictedPython package (the workers map it by path).

    Raises:
        ModuleNotFoundError: RestrictedPython is not installed, with the fix.
    """
    import importlib.util

    spec = importlib.util.find_spec("RestrictedPython")
    if spec is None or not spec.submodule_search_locations:
        raise ModuleNotFoundError(
            "the code sandbox's static check needs RestrictedPython (a dependency of this "
            "package): pip install 'RestrictedPython>=8.0', or reinstall with pip install -e ."
        )
    return str(list(spec.submodule_search_locations)[0])
_STATUS_VALUES = frozenset(status.value for status in Status)
#: What a light-tier worker answers for a program that needs the full tier (internal:
#: such jobs are sent on to a full worker, callers never see this status).
DEFER = "defer"
_REPLY_STATUSES = _STATUS_VALUES | {DEFER}
#: Seconds a worker may take beyond the job's own time limit before it is presumed hung
#: (generous: other processes may load the machine).
_GRACE = 10.0
_START_TIMEOUT = 60.0


class SandboxError(RuntimeError):
    """The sandbox workers cannot be started or keep failing (not a job failure)."""


class _WorkerFailure(Exception):
    """A worker died, hung or broke the protocol; ``str()`` is the job's reason."""


class WorkerProcess:
    """One warm worker process and its line-oriented pipe protocol."""

    def __init__(
        self, seed: int, workdir: str, fork_loop: str, cpu: int, tier: str, key: bytes | None,
        restricted_root: str = "",
    ) -> None:
        self._seed = seed
        self._restricted_root = restricted_root
        self._key = "" if key is None else key.hex()
        self._workdir = workdir
        self._fork_loop = fork_loop
        self._cpu = cpu
        self.tier = tier
        #: The fork loop the worker announced (``native`` or ``python``).
        self.fork_loop_name = ""
        self._process: subprocess.Popen | None = None
        self._buffer = bytearray()
        self._stderr = None

    @property
    def pid(self) -> int | None:
        return None if self._process is None else self._process.pid

    def start(self) -> None:
        """Launch the interpreter (does not wait for it; see :meth:`wait_ready`)."""
        flags = ["-s", "-S"] + (["-P"] if sys.version_info >= (3, 11) else [])
        # Not -I: it implies -E, which would ignore PYTHONHASHSEED; the environment is
        # empty apart from that variable and LD_BIND_NOW (no PYTHON* variable, which is
        # what -E would have guaranteed), and the worker clears it before any fork.
        self._stderr = tempfile.TemporaryFile(prefix="absolutezero-worker-")
        self._process = subprocess.Popen(
            [sys.executable, *flags, "-c", BOOTSTRAP, _PACKAGE_ROOT, self._fork_loop, str(self._cpu), self.tier, self._key,
             self._restricted_root],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=self._stderr,
            # LD_BIND_NOW: symbols are resolved once here, not lazily in every child
            # (each lazy resolution writes the GOT, a page fault per child).
            env={"PYTHONHASHSEED": str(self._seed), "LD_BIND_NOW": "1"},
            cwd=self._workdir,
            close_fds=True,
            start_new_session=True,
        )
        self._buffer = bytearray()

    def wait_ready(self) -> None:
        """Block until the worker announced it is ready.

        Raises:
            SandboxError: the worker exited or stayed silent during start-up.
        """
        try:
            line = self._readline(time.monotonic() + _START_TIMEOUT)
        except _WorkerFailure as failure:
            raise SandboxError(f"sandbox worker failed to start: {failure}") from None
        words = line.decode("ascii", "replace").split()
        if len(words) != 3 or words[0] != "ready" or words[1] not in ("native", "python") or words[2] != self.tier:
            raise SandboxError(f"sandbox worker failed to start: {self._stderr_tail()}")
        self.fork_loop_name = words[1]

    def _stderr_tail(self) -> str:
        if self._stderr is None:
            return ""
        try:
            self._stderr.seek(0)
            text = self._stderr.read().decode("utf-8", "replace").strip()
        except OSError:
            return ""
        return text[-2000:] or "(no error output)"

    def stop(self) -> None:
        """Kill the worker (and with it any child it is running) and reap it."""
        process, self._process = self._process, None
        if process is not None:
            for stream in (process.stdin, process.stdout):
                try:
                    stream.close()
                except OSError:
                    pass
            try:
                os.killpg(process.pid, 9)
            except (ProcessLookupError, PermissionError):
                process.kill()
            process.wait()
        if self._stderr is not None:
            self._stderr.close()
            self._stderr = None

    def restart(self) -> None:
        self.stop()
        self.start()
        self.wait_ready()

    def _readline(self, deadline: float) -> bytes:
        process = self._process
        assert process is not None and process.stdout is not None
        fd = process.stdout.fileno()
        while True:
            end = self._buffer.find(b"\n")
            if end >= 0:
                line = bytes(self._buffer[:end])
                del self._buffer[: end + 1]
                return line
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise _WorkerFailure("sandbox worker stopped responding (killed and restarted)")
            ready, _, _ = select.select([fd], [], [], remaining)
            if not ready:
                continue
            data = os.read(fd, 1 << 20)
            if not data:
                code = process.poll()
                detail = f" (exit code {code})" if code is not None else ""
                raise _WorkerFailure(f"sandbox worker died{detail}; it was restarted")
            self._buffer += data

    def _send(self, message: dict) -> None:
        process = self._process
        assert process is not None and process.stdin is not None
        data = json.dumps(message).encode("utf-8", "surrogatepass") + b"\n"
        try:
            process.stdin.write(data)
            process.stdin.flush()
        except (BrokenPipeError, OSError):
            raise _WorkerFailure("sandbox worker died; it was restarted") from None

    def process(self, kind: str, items: list, limits: dict) -> list[list]:
        """Run one batch and return one ``[status, output, reason]`` per item.

        A worker failure costs only the item in progress (it gets status ``error`` with
        the reason) and the worker is restarted for the rest of the batch.
        """
        results: list[list] = []
        send_failures = 0
        while len(results) < len(items):
            pending = items[len(results) :]
            try:
                self._send({"kind": kind, "items": pending, **limits})
            except _WorkerFailure:
                send_failures += 1
                if send_failures > 3:
                    raise SandboxError(
                        f"sandbox workers keep dying: {self._stderr_tail()}"
                    ) from None
                self.restart()
                continue
            per_line = limits["timeout"] * (len(pending) + 1 if kind == "literal" else 1)
            try:
                for _ in pending:
                    line = self._readline(time.monotonic() + per_line + _GRACE)
                    results.append(_decode(line))
            except _WorkerFailure as failure:
                results.append([Status.ERROR.value, None, str(failure)])
                self.restart()
        return results


def _decode(line: bytes) -> list:
    try:
        result = json.loads(line)
    except ValueError:
        raise _WorkerFailure("sandbox worker sent a malformed reply; it was restarted") from None
    if (
        not isinstance(result, list)
        or len(result) != 3
        or result[0] not in _REPLY_STATUSES
        or not (result[1] is None or isinstance(result[1], str))
        or not isinstance(result[2], str)
        or (result[0] == Status.OK.value) != isinstance(result[1], str)
    ):
        raise _WorkerFailure("sandbox worker sent a malformed reply; it was restarted")
    return result
