"""The sandboxed executor on Ray (``env_options.executor=ray``): same results as local.

The programs are the project's own (the code environment's seed triplets and programs
written here for each outcome: errors, timeouts, memory, output limit, policy
rejections, nondeterminism, deferral to full-tier workers), never benchmark data. One
local Ray session (``ray.init(num_cpus=2)``) serves the whole module because Ray takes
seconds to start. The missing-Ray and option checks run without Ray.
"""

from __future__ import annotations

import importlib.util
import os
import re
import sys
import time

import numpy as np
import pytest

from absolutezero_code import seeds
from absolutezero_code.env import CodeEnvironment
from absolutezero_code.executor import Executor, RayExecutor, RunResult, SandboxError, Status
from absolutezero_code.executor.ray_pool import RAY_MISSING

RAY_SKIP = "Ray is not installed: pip install -e '.[ray]'"
needs_ray = pytest.mark.skipif(importlib.util.find_spec("ray") is None, reason=RAY_SKIP)

WORDS = ", ".join(repr(f"w{k}") for k in range(30))

#: (program, input) jobs covering every status the sandbox can give.
PROGRAMS: list[tuple[str, str]] = [
    (seeds.IDENTITY_PROGRAM, seeds.IDENTITY_INPUT),
    *((seeds.IDENTITY_PROGRAM, text) for text in seeds.INDUCTION_INPUTS),
    *((f"def f(x):\n    return [x * {k}, str(x) * 2]", str(k)) for k in range(40)),
    ("def f(d):\n    return {k: v * 2 for k, v in d.items()}", "{'b': 1.5, 'a': -2}"),
    ("def f(s):\n    return sorted(set(s))", "'mississippi'"),
    ("from fractions import Fraction\ndef f(a, b):\n    return str(Fraction(a, b))", "3, 6"),  # full-tier
    ("def f(a):\n    return a[5]", "[1]"),  # IndexError
    ("def f(x):\n    return 1 / x", "0"),  # ZeroDivisionError
    ("def g():\n    return 1", ""),  # no f
    ("def f():\n    return 1\nif x\n", ""),  # syntax error
    ("def f(a, b):\n    return a", "1"),  # wrong arity
    ("def f():\n    raise ValueError('y' * 10000)", ""),  # long message, shortened
    ("def f():\n    while True:\n        pass", ""),  # timeout
    ("def f():\n    return len('x' * (2 ** 36))", ""),  # memory
    ("def f():\n    return 'x' * 2000000", ""),  # output limit
    ("import os\ndef f():\n    return os.getpid()", ""),  # rejected import
    ("def f():\n    return open('/etc/passwd').read()", ""),  # rejected builtin
    ("def f():\n    return ().__class__.__bases__", ""),  # rejected dunder
    ("def f():\n    return id([]) % 2", ""),
    (f"def f():\n    return ''.join(x[1:] + ',' for x in {{{WORDS}}})", ""),  # hash-seed order
    ("def f():\n    return str(object())", ""),  # address in the output
    ("def f():\n    return [hash(w) for w in ('a', 'bc', 'def')]", ""),
]

CHECKS: list[tuple] = [
    ("def add(a, b):\n    return a + b", "assert candidate(1, 2) == 3", "add"),
    ("def add(a, b):\n    return a - b", "assert candidate(1, 2) == 3", "add"),
    ("def add(a, b):\n    raise KeyError('k')", "candidate(1, 2)", "add"),
    ("import os", "assert True", None),
    ("s = input()\nprint(s[::-1])", "assert stdout == 'cba\\n'", None, "abc\n"),
]

LITERALS = ["{2, 1}", "'Hello World'", "[1, (2, 3)]", "frozenset()", "float('nan')", "x", "1e400"]


def _comparable(results: list[RunResult]) -> list[tuple]:
    """What must match exactly: everything, except what differs between any two runs,
    even on one executor: the reason of a nondeterministic result (it quotes the two
    runs' outputs) and addresses quoted in a reason (``blocked operation builtins.id(...)``)."""
    return [
        (r.status, r.output, "" if r.status is Status.NONDETERMINISTIC else re.sub(r"0x[0-9a-f]+|\d{9,}", "<address>", r.reason))
        for r in results
    ]


@pytest.fixture(scope="module")
def ray_session():
    if importlib.util.find_spec("ray") is None:
        pytest.skip(RAY_SKIP)
    import ray

    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False)
    yield ray
    ray.shutdown()


@pytest.fixture(scope="module")
def local():
    with Executor(workers=1, timeout=1.0) as executor:
        yield executor


@pytest.fixture(scope="module")
def remote(ray_session):
    # small chunks so one batch crosses many actor calls (order must still hold)
    with RayExecutor(workers=1, timeout=1.0, chunk_size=7) as executor:
        yield executor


# -- without Ray ---------------------------------------------------------------------


def test_missing_ray_is_a_clear_error(monkeypatch):
    monkeypatch.setitem(sys.modules, "ray", None)  # "import ray" now fails
    with pytest.raises(ImportError) as raised:
        RayExecutor(workers=1)
    assert str(raised.value) == RAY_MISSING == "env_options.executor=ray needs Ray: pip install -e '.[ray]'"
    with pytest.raises(ImportError, match=r"pip install -e '\.\[ray\]'"):
        CodeEnvironment(executor="ray")  # at construction, not at first use


@pytest.mark.parametrize(
    "options, error, match",
    [
        ({"executor": "rya"}, ValueError, r"unknown executor 'rya'; did you mean 'ray'\? \(available: builtin, ray"),
        ({"executor": "sandbx"}, ValueError, r"available: builtin, ray"),
        ({"ray_address": "auto"}, ValueError, "ray_address only applies with executor='ray'"),
        ({"executor": "ray", "workers": 0}, ValueError, "workers must be a positive integer"),
    ],
)
def test_bad_environment_options(options, error, match):
    with pytest.raises(error, match=match):
        CodeEnvironment(**options)


@pytest.mark.parametrize(
    "options, error, match",
    [
        ({"workers": 0}, ValueError, "workers must be a positive integer"),
        ({"timeout": 0}, ValueError, "timeout must be a positive number"),
        ({"memory_mb": 1}, ValueError, "memory_mb must be an integer >= 64"),
        ({"address": ""}, ValueError, "ray_address must be a non-empty string"),
        ({"chunk_size": 0}, ValueError, "chunk_size must be a positive integer"),
        ({"fork_loop": "rust"}, ValueError, "fork_loop must be one of"),
        ({"forkloop": "auto"}, TypeError, "unknown executor option"),
    ],
)
@needs_ray
def test_bad_executor_options_fail_before_ray_starts(options, error, match):
    with pytest.raises(error, match=match):
        RayExecutor(**options)


@needs_ray
def test_bad_ray_address_in_the_environment():
    with pytest.raises(ValueError, match="ray_address must be a non-empty string"):
        CodeEnvironment(executor="ray", ray_address="  ")


# -- on a local Ray session ------------------------------------------------------------


def _kill(ray, actor) -> None:
    """Kill a node pool as a lost node would, after stopping its workers (a hard kill
    alone would leave its sandbox directory behind on this machine)."""
    ray.get(actor.close.remote())
    ray.kill(actor)



def test_one_actor_on_each_node(ray_session, remote):
    alive = [node["NodeID"] for node in ray_session.nodes() if node["Alive"]]
    assert [node["node_id"] for node in remote.nodes] == alive
    assert remote.nodes[0]["pid"] != os.getpid()  # the pool lives in the actor, not here
    assert remote.workers == 1 and len(remote.worker_pids()) == 2


def test_run_many_results_are_identical_to_the_local_executor(local, remote):
    want, got = local.run_many(PROGRAMS), remote.run_many(PROGRAMS)
    assert all(type(r) is RunResult and type(r.status) is Status for r in got)
    assert _comparable(got) == _comparable(want)
    statuses = {r.status for r in got}
    assert statuses == set(Status), statuses  # every outcome is covered
    for runs in (1, 3):
        few = PROGRAMS[:12]
        assert remote.run_many(few, determinism_runs=runs) == local.run_many(few, determinism_runs=runs)


def test_check_many_and_canonicalize_many_are_identical(local, remote):
    assert remote.check_many(CHECKS) == local.check_many(CHECKS)
    assert remote.check_many(CHECKS, timeout=0.5) == local.check_many(CHECKS, timeout=0.5)
    assert remote.canonicalize_many(LITERALS) == local.canonicalize_many(LITERALS)
    assert remote.run_many([]) == remote.check_many([]) == remote.canonicalize_many([]) == []


@pytest.mark.parametrize(
    "call",
    [
        lambda ex: ex.run_many("def f(): pass"),
        lambda ex: ex.run_many([("def f(): pass",)]),
        lambda ex: ex.run_many([(b"def f(): pass", "")]),
        lambda ex: ex.run_many([("def f(): pass", "")], determinism_runs=0),
        lambda ex: ex.run_many([("def f(): pass", "")], timeout=-1),
        lambda ex: ex.check_many([("def f(): pass", "assert True", "not an identifier")]),
        lambda ex: ex.canonicalize_many("1"),
        lambda ex: ex.canonicalize_many([1]),
    ],
)
def test_malformed_jobs_raise_the_local_errors(local, remote, call):
    with pytest.raises((TypeError, ValueError)) as expected:
        call(local)
    with pytest.raises(type(expected.value), match="^" + re.escape(str(expected.value)) + "$"):
        call(remote)


def test_environment_on_ray_validates_and_verifies_like_the_local_one(ray_session):
    def proposal(program: str, text: str) -> str:
        return f"<answer>\n```python\n{program}\n```\n```input\n{text}\n```\n</answer>"

    words = "\n".join(f"```input\n'{w}'\n```" for w in "abcdefgh")
    responses = [
        seeds.seed_response("deduction", 10),
        proposal("def f(x):\n    return x * 3", "5"),
        proposal("def f(x):\n    return x[0]", "[]"),
        proposal("import os\ndef f(x):\n    return x", "1"),
        proposal("def f(x):\n    return str(object())", "1"),
        proposal("def f(s):\n    return sorted(s)[::-1]", "'abduction'"),
        f"<answer>\n{words}\n```message\nsame\n```\n</answer>",
        "junk",
    ]
    types = ["deduction", "deduction", "abduction", "deduction", "deduction", "abduction", "induction", "abduction"]
    outcomes = []
    for name in ("builtin", "ray"):
        with CodeEnvironment(workers=1, executor=name) as env:
            assert isinstance(env.executor, RayExecutor if name == "ray" else Executor)
            seeded = {t: env.seed_tasks(t) for t in env.task_types}
            rng = np.random.default_rng(0)
            prompts = [env.proposer_prompt(t, seeded["deduction"], rng) for t in types]
            validations = env.validate(prompts, responses)
            tasks = [v.task for v in validations if v.task is not None] + [seeded["induction"][0]]
            answers = ["<answer>15</answer>", "<answer>'Hello World'</answer>", "nothing",
                       "<answer>```python\ndef f(x):\n    return x\n```</answer>"]
            answers = (answers * len(tasks))[: len(tasks)]
            verdicts = env.verify(tasks, [env.solver_prompt(t) for t in tasks], answers)
            built = env.build_tasks("deduction", [("def f(x):\n    return x", "1", "{2, 1}"), ("def f(x):\n    return x", "1", "nan")])
            outcomes.append((seeded, [(v.task, v.format_ok, "" if "differ" in v.reason else v.reason) for v in validations], verdicts, built))
    assert outcomes[0] == outcomes[1]
    assert sum(v[0] is not None for v in outcomes[1][1]) >= 3  # some proposals were accepted


def test_close_kills_the_actors_and_keeps_a_session_it_did_not_start(ray_session):
    executor = RayExecutor(workers=1)
    (actor,) = executor._actors
    pids = executor.worker_pids()
    executor.close()
    executor.close()  # idempotent
    assert ray_session.is_initialized()  # the caller's session is left running
    deadline = time.monotonic() + 30
    with pytest.raises(ray_session.exceptions.RayActorError):  # ray.kill acts asynchronously
        while time.monotonic() < deadline:
            ray_session.get(actor.info.remote(), timeout=30)
            time.sleep(0.1)
    deadline = time.monotonic() + 10
    while any(os.path.exists(f"/proc/{pid}") for pid in pids) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert not any(os.path.exists(f"/proc/{pid}") for pid in pids)  # sandbox workers stopped
    with pytest.raises(RuntimeError, match="closed"):
        executor.run_many([(seeds.IDENTITY_PROGRAM, seeds.IDENTITY_INPUT)])


def test_a_dead_node_pool_is_a_sandbox_error(ray_session):
    with RayExecutor(workers=1) as executor:
        _kill(ray_session, executor._actors[0])
        with pytest.raises(SandboxError, match="every Ray sandbox actor has died"):
            executor.run_many([(seeds.IDENTITY_PROGRAM, seeds.IDENTITY_INPUT)])


class _InitCalled(Exception):
    """Raised by the stand-in ``ray.init`` to report the address it was given."""


@pytest.mark.parametrize(
    "address, environment, expected",
    [("ray://head:10001", "auto", "ray://head:10001"), (None, "10.0.0.1:6379", "10.0.0.1:6379"), (None, None, "local")],
)
@needs_ray
def test_which_cluster_is_joined(monkeypatch, address, environment, expected):
    import ray

    def init(address=None, **_):
        raise _InitCalled(address)

    monkeypatch.setattr(ray, "is_initialized", lambda: False)
    monkeypatch.setattr(ray, "init", init)
    if environment is None:
        monkeypatch.delenv("RAY_ADDRESS", raising=False)
    else:
        monkeypatch.setenv("RAY_ADDRESS", environment)
    with pytest.raises(_InitCalled) as called:
        RayExecutor(workers=1, address=address)
    assert called.value.args == (expected,)


@needs_ray
def test_a_cluster_it_started_is_shut_down_on_close(tmp_path):
    """In a fresh interpreter (this module's session would otherwise be reused)."""
    import subprocess

    script = (
        "import ray\n"
        "from absolutezero_code.executor import RayExecutor\n"
        "executor = RayExecutor(workers=1)\n"
        "print(executor.run_many([('def f(a):\\n    return a', '1')])[0].output, ray.is_initialized())\n"
        "executor.close()\n"
        "print(ray.is_initialized())\n"
    )
    environment = {key: value for key, value in os.environ.items() if key != "RAY_ADDRESS"}
    done = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, timeout=180, env=environment, cwd=tmp_path
    )
    assert done.returncode == 0, done.stderr[-2000:]
    assert done.stdout.split() == ["1", "True", "False"]


def test_chunks_spread_over_several_pools_and_move_off_a_dead_one(ray_session, local):
    """A second pool on this node stands in for a second node (a one-machine test cannot
    start more nodes cheaply): chunks finish out of order, results come back in order,
    and the chunks of a pool that dies are run by the others."""
    from absolutezero_code.executor.ray_pool import NodeSandbox

    jobs = PROGRAMS[:30] + PROGRAMS[-12:]
    want = _comparable(local.run_many(jobs))
    with RayExecutor(workers=1, chunk_size=3) as executor:
        options = {"workers": 1, "timeout": 1.0, "memory_mb": 512, "output_limit": 1_000_000}
        extra = ray_session.remote(num_cpus=0)(NodeSandbox).remote(options)
        ray_session.get(extra.info.remote())
        executor._actors.append(extra)
        assert _comparable(executor.run_many(jobs)) == want
        _kill(ray_session, executor._actors[0])
        assert _comparable(executor.run_many(jobs)) == want
        assert executor._actors == [extra]
