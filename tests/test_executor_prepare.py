"""Preparing jobs once and sealing them for the other determinism runs
(executor/prepare.py and the SipHash in _forkjobs.c)."""

from __future__ import annotations

import pytest

from absolutezero_code.executor import Executor, Status, prepare

needs_seal = pytest.mark.skipif(not prepare.sealing_available(), reason="the _forkjobs extension is not built")

KEY = bytes(range(16))


@needs_seal
def test_siphash_matches_the_reference_vectors():
    from absolutezero_code.executor._forkjobs import siphash

    # SipHash-2-4 paper, appendix A, and the reference implementation's first vector.
    assert siphash(KEY, bytes(range(15)))[::-1].hex() == "a129ca6149be45e5"
    assert siphash(KEY, b"").hex() == "310e0edd47db6f72"
    with pytest.raises(ValueError, match="16 bytes"):
        siphash(b"short", b"data")


def _sealed() -> str:
    code, needs_full = prepare.compile_program("def f(a, b):\n    return a * b")
    return prepare.seal(KEY, code, prepare.parse_input("6, 7"), needs_full)


@needs_seal
def test_a_sealed_job_unseals_to_the_same_job():
    code, args, needs_full = prepare.unseal(KEY, _sealed())
    namespace: dict = {}
    exec(code, namespace)  # noqa: S102 - our own constant test program
    assert namespace["f"](*args) == 42 and args == (6, 7) and needs_full is False


@needs_seal
@pytest.mark.parametrize(
    "forge",
    [
        lambda token: token[:20] + ("0" if token[20] != "0" else "1") + token[21:],  # one data digit
        lambda token: ("0" if token[0] != "0" else "1") + token[1:],  # one tag digit
        lambda token: token[:16],  # tag only
        lambda token: "zz" + token[2:],  # not hex
        lambda token: "",
        lambda token: None,
    ],
)
def test_a_tampered_or_foreign_token_is_refused(forge):
    assert prepare.unseal(KEY, forge(_sealed())) is None
    assert prepare.unseal(bytes(16), _sealed()) is None  # another executor's key


_JOBS = [
    ("def f(a):\n    return a[::-1]", "'abc'"),
    ("def f(a):\n    return open('x')", "1"),  # rejected by the policy
    ("def f(a):\n    return a", "g(1)"),  # input not a literal
    ("from typing import List\ndef f(a: List[int]):\n    return sum(a)", "[1, 2]"),  # full tier
    ("def f(s):\n    try:\n        return s.encode('euc_kr')\n    except LookupError:\n        return 0", "'a'"),
    ("def f():\n    while True:\n        pass", ""),
    ("def f():\n    return {1, 2} | {3}", ""),
    ("def f():\n    return id(0)", ""),  # blocked at run time
]


@needs_seal
def test_preparing_once_gives_the_same_results_as_preparing_in_every_run():
    with Executor(workers=1, timeout=0.5) as once, Executor(workers=1, timeout=0.5, prepare_once=False) as each:
        assert once._key is not None and each._key is None
        for runs in (2, 3):
            a = once.run_many(_JOBS, determinism_runs=runs)
            b = each.run_many(_JOBS, determinism_runs=runs)
            assert [(r.status, r.output) for r in a] == [(r.status, r.output) for r in b]
            assert a[:7] == b[:7]  # reasons too (the last one quotes an address)
        statuses = [result.status for result in once.run_many(_JOBS)]
    assert statuses == [Status.OK, Status.REJECTED, Status.ERROR, Status.OK, Status.OK,
                        Status.TIMEOUT, Status.OK, Status.REJECTED]


@needs_seal
def test_workers_refuse_tokens_sealed_under_another_key():
    with Executor(workers=1) as executor, Executor(workers=1) as other:
        (prepared,) = other._dispatch("prepare", [[["def f():\n    return 1", ""]]], other._limits(None))
        assert prepared[0][0] == "ok"
        with executor._lock:
            (ran,) = executor._dispatch("run_tokens", [[prepared[0][1]]], executor._limits(None))
    assert ran == [["error", None, "sandbox error: a prepared job failed its integrity check"]]
