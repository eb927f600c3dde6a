"""Math answers checked with ``math-verify`` in a separate, hardened process.

Why a separate process: ``math-verify`` turns answer text into ``sympy`` objects, and
for plain expressions it uses ``sympy.parse_expr``, which *evaluates* the text. Model
answers are untrusted, so they are never parsed in the evaluating (trainer) process.
The helper process is this file run as a script (stdlib imports only, then
``math_verify``); once the library is loaded and warmed up it clears its environment,
moves to an empty folder, caps its memory and file size, and installs an audit hook
that refuses process creation, network access, file writes and file reads outside the
Python installation. It answers only ``[correct, reason]`` with fixed reason texts (an
answer cannot make it echo anything back). A check that hangs or kills the process
costs that answer a ``False`` and the process is restarted.

``math-verify`` is an optional dependency (``pip install 'absolutezero[eval]'``);
without it :class:`MathChecker` raises :class:`MathVerifyUnavailable` with the
install hint.
"""

from __future__ import annotations

import json
import os
import select
import subprocess
import sys
import tempfile
import time

__all__ = ["MathChecker", "MathVerifyUnavailable", "available"]

#: Seconds one answer may take (math-verify's own parse/verify timeouts are 5 s each).
ITEM_TIMEOUT = 30.0
_START_TIMEOUT = 120.0
_MEMORY_BYTES = 4 << 30


class MathVerifyUnavailable(ValueError):
    """``math-verify`` is not installed (or its helper process cannot start); a
    ValueError so that the evaluation CLI reports it as a usage error, not a traceback."""


def available() -> str | None:
    """None when ``math_verify`` can be found, else the reason (for skips and errors)."""
    import importlib.util

    if importlib.util.find_spec("math_verify") is None:
        return "math-verify is not installed: pip install 'absolutezero[eval]' (or pip install math-verify)"
    return None


class MathChecker:
    """Checks ``(gold, answer)`` pairs in the helper process (started on first use)."""

    def __init__(self, item_timeout: float = ITEM_TIMEOUT) -> None:
        self.item_timeout = float(item_timeout)
        self._process: subprocess.Popen | None = None
        self._folder: tempfile.TemporaryDirectory | None = None
        self._buffer = b""

    def _start(self) -> None:
        reason = available()
        if reason is not None:
            raise MathVerifyUnavailable(reason)
        # The helper runs in an empty folder of ours, removed on close (it cannot remove
        # anything itself once hardened).
        self._folder = tempfile.TemporaryDirectory(prefix="absolutezero-mathcheck-")
        self._process = subprocess.Popen(
            [sys.executable, "-I", os.path.abspath(__file__), "--serve"], cwd=self._folder.name,
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, env={}, close_fds=True,
        )
        self._buffer = b""
        line = self._readline(time.monotonic() + _START_TIMEOUT)
        if line != b"ready":
            self.close()
            raise MathVerifyUnavailable(f"the math-verify helper process did not start ({line[:200]!r})")

    def _readline(self, deadline: float) -> bytes | None:
        process = self._process
        assert process is not None and process.stdout is not None
        fd = process.stdout.fileno()
        while b"\n" not in self._buffer:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                return None
            ready, _, _ = select.select([fd], [], [], remaining)
            if ready:
                data = os.read(fd, 1 << 16)
                if not data:
                    return None
                self._buffer += data
        line, _, self._buffer = self._buffer.partition(b"\n")
        return line

    def check_many(self, pairs: list[tuple[str, str]]) -> list[tuple[bool, str]]:
        """``(correct, reason)`` per ``(gold, answer)`` pair, in order.

        Raises:
            MathVerifyUnavailable: math-verify is not installed or will not start.
        """
        out = []
        for gold, answer in pairs:
            if self._process is None or self._process.poll() is not None:
                self._start()
            assert self._process is not None and self._process.stdin is not None
            try:
                self._process.stdin.write(json.dumps([gold, answer]).encode() + b"\n")
                self._process.stdin.flush()
                line = self._readline(time.monotonic() + self.item_timeout)
            except (BrokenPipeError, OSError):
                line = None
            result = _decode(line)
            if result is None:
                self.close()  # hung or died: this answer fails, the next starts afresh
                result = (False, "the math check timed out or crashed")
            out.append(result)
        return out

    def close(self) -> None:
        """Stop the helper process. Safe to call twice."""
        process, self._process = self._process, None
        if process is not None:
            process.kill()
            process.wait()
            for stream in (process.stdin, process.stdout):
                if stream is not None:
                    stream.close()
        folder, self._folder = self._folder, None
        if folder is not None:
            folder.cleanup()


def _decode(line: bytes | None) -> tuple[bool, str] | None:
    try:
        value = json.loads(line) if line else None
    except ValueError:
        return None
    if isinstance(value, list) and len(value) == 2 and isinstance(value[0], bool) and isinstance(value[1], str):
        return value[0], value[1]
    return None


# ---------------------------------------------------------------------- helper process
_DENIED_PREFIXES = ("subprocess.", "os.system", "os.exec", "os.spawn", "os.posix_spawn", "os.fork", "os.forkpty",
                    "socket.", "ctypes.", "os.remove", "os.unlink", "os.rename", "os.rmdir", "os.mkdir",
                    "os.chmod", "os.chown", "os.kill", "os.putenv", "shutil.", "webbrowser.", "urllib.")


def _harden() -> None:
    import resource

    os.environ.clear()  # the working folder is the empty one MathChecker made for it
    for limit, value in ((resource.RLIMIT_AS, _MEMORY_BYTES), (resource.RLIMIT_FSIZE, 0), (resource.RLIMIT_CORE, 0)):
        try:
            resource.setrlimit(limit, (value, value))
        except (ValueError, OSError):
            pass
    roots = tuple({os.path.realpath(p) + os.sep for p in (sys.prefix, sys.base_prefix, sys.exec_prefix)})

    def hook(event: str, args: tuple) -> None:
        if event.startswith(_DENIED_PREFIXES):
            raise PermissionError(f"{event} is not allowed in the math checker")
        if event == "open" and args:
            path, mode = args[0], args[1] if len(args) > 1 else "r"
            writing = isinstance(mode, str) and any(c in mode for c in "wax+")
            if isinstance(args[-1], int) and args[-1] & (os.O_WRONLY | os.O_RDWR | os.O_CREAT):
                writing = True
            if isinstance(path, int):
                return
            real = os.path.realpath(os.fsdecode(path))
            if writing or not real.startswith(roots):
                raise PermissionError("file access is not allowed in the math checker")

    sys.addaudithook(hook)


def _normalise(answer: str) -> str:
    """``1,000`` -> ``1000`` (a thousands separator, not a set of two numbers)."""
    import re

    text = answer.strip().rstrip(".")
    return text.replace(",", "") if re.fullmatch(r"-?\d{1,3}(,\d{3})+(\.\d+)?", text) else text


def _serve() -> None:
    try:
        from math_verify import parse, verify
    except Exception as error:  # noqa: BLE001 - report, never a traceback
        sys.stdout.write(f"unavailable {type(error).__name__}\n")
        sys.stdout.flush()
        return
    verify(parse("$\\frac{1}{2}$"), parse("\\boxed{0.5}"))  # load sympy's lazy parts first
    verify(parse("$(1, 2)$"), parse("\\boxed{x = 2}"))
    _harden()
    out = sys.stdout
    out.write("ready\n")
    out.flush()
    for line in sys.stdin:
        try:
            gold, answer = json.loads(line)
            expected = parse(f"${gold}$") or parse(f"\\boxed{{{gold}}}")
            if not expected:
                result = [False, "the gold answer does not parse"]
            else:
                predicted = parse(f"\\boxed{{{_normalise(answer)}}}")
                if not predicted:
                    result = [False, "the answer does not parse as math"]
                else:
                    same = bool(verify(expected, predicted))
                    result = [same, "" if same else "not equivalent to the gold answer"]
        except Exception as error:  # noqa: BLE001 - a fixed text: no answer content flows back
            result = [False, f"math check failed ({type(error).__name__})"]
        out.write(json.dumps(result) + "\n")
        out.flush()


if __name__ == "__main__" and sys.argv[1:] == ["--serve"]:
    _serve()
