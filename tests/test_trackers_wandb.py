"""Weights & Biases tracker against the real library, offline (no account, no network).

``wandb.Api`` needs the server, so what the offline run wrote is read back from its
transaction log ``run-<id>.wandb`` (what ``wandb sync`` uploads): the LevelDB log format
(32 KiB blocks of records, each with a CRC-32, a length and a type; W&B puts a 7-byte
``:W&B`` header first) holding ``wandb.proto.wandb_internal_pb2.Record`` messages.
"""

from __future__ import annotations

import json
import struct
import time
import zlib
from pathlib import Path

import pytest

pytest.importorskip("wandb", reason="needs the wandb extra: pip install -e '.[wandb]'")

from wandb.proto import wandb_internal_pb2  # noqa: E402
from test_trackers import STEPS, cut_metrics, drive_run  # noqa: E402

from absolutezero_trackers.base import remembered_id  # noqa: E402
from absolutezero_trackers.wandb import WandbTracker  # noqa: E402

BLOCK = 32 * 1024
FULL, FIRST, MIDDLE, LAST = 1, 2, 3, 4


def records(path: Path) -> list[wandb_internal_pb2.Record]:
    """Every record of a W&B transaction log, checksums verified."""
    data = path.read_bytes()
    assert data[:4] == b":W&B", data[:7]
    offset, parts, out = 7, b"", []
    while offset + 7 <= len(data):
        if BLOCK - offset % BLOCK < 7:  # a block's tail too short for a header is padding
            offset += BLOCK - offset % BLOCK
            continue
        checksum, length, kind = struct.unpack("<IHB", data[offset : offset + 7])
        chunk = data[offset + 7 : offset + 7 + length]
        offset += 7 + length
        if kind == 0 and length == 0:
            continue
        assert zlib.crc32(chunk, zlib.crc32(bytes([kind]))) == checksum
        parts += chunk
        if kind in (FULL, LAST):
            out.append(wandb_internal_pb2.Record.FromString(parts))
            parts = b""
    return out


def read_run(folder: Path, timeout: float = 30.0) -> dict:
    """The run record, history rows (step -> key -> value), summary and exit code.

    ``run.finish()`` can return before W&B's service process has flushed the log to disk
    (seen: only the 7-byte header just after it returns, everything a moment later), so
    this waits until the exit record, the last one written, is there.
    """
    deadline = time.monotonic() + timeout
    while True:
        try:
            found = _parse_run(folder)
        except AssertionError:  # a record still being written
            found = {"exit": None}
        if found["exit"] is not None or time.monotonic() > deadline:
            return found
        time.sleep(0.1)


def _parse_run(folder: Path) -> dict:
    [log] = folder.glob("run-*.wandb")
    found: dict = {"history": {}, "summary": {}, "exit": None}
    for record in records(log):
        kind = record.WhichOneof("record_type")
        if kind == "run":
            found["run"] = record.run
        elif kind == "history":
            row = {item.key or "/".join(item.nested_key): json.loads(item.value_json) for item in record.history.item}
            found["history"].setdefault(record.history.step.num, {}).update(row)
        elif kind == "summary":
            found["summary"].update({item.key or "/".join(item.nested_key): json.loads(item.value_json)
                                     for item in record.summary.update})
        elif kind == "exit":
            found["exit"] = record.exit.exit_code
    return found


@pytest.fixture(autouse=True)
def wandb_home(tmp_path, monkeypatch):
    """Keep W&B's settings and caches out of the home folder; default (offline) mode."""
    monkeypatch.delenv("WANDB_MODE", raising=False)
    for variable in ("WANDB_CONFIG_DIR", "WANDB_CACHE_DIR", "WANDB_DATA_DIR", "WANDB_ARTIFACT_DIR"):
        monkeypatch.setenv(variable, str(tmp_path / "wandb-home"))


def offline_runs(run_dir: Path) -> list[Path]:
    return sorted((run_dir / "wandb").glob("offline-run-*"))


def test_config_metrics_plots_and_status_are_written_offline(tmp_path):
    run_dir = tmp_path / "try1"
    drive_run(WandbTracker(), run_dir, status="stopped")
    [folder] = offline_runs(run_dir)
    run_id = remembered_id(run_dir, "wandb")
    assert folder.name.endswith(f"-{run_id}")
    found = read_run(folder)
    assert (found["run"].run_id, found["run"].display_name, found["run"].project) == (run_id, "try1", "absolutezero")
    config = {item.key: json.loads(item.value_json) for item in found["run"].config.update}
    assert config["selfplay"]["propose_batch"] == 4 and config["trackers"] == ["tensorboard"]
    history = found["history"]
    assert sorted(history) == [1, 2, 3]
    assert [history[s]["oversight/deception"] for s in (1, 2, 3)] == [0.0, 2.0, 1.0]
    assert history[2]["overall/solve_rate"] == 0.5 and "step" not in history[2]
    image = {k.split("/", 2)[2]: v for k, v in history[3].items() if k.startswith("plots/solve_rate/")}
    assert image["_type"] == "image-file" and (image["width"], image["height"]) == (40, 20)
    assert (folder / "files" / image["path"]).read_bytes().startswith(b"\x89PNG")
    assert found["summary"]["absolutezero/status"] == "stopped"
    assert found["exit"] == 3  # as the process exits when oversight stops a run


def test_a_resumed_run_continues_the_same_wandb_run(tmp_path):
    run_dir = tmp_path / "try1"
    started = time.time()
    drive_run(WandbTracker(), run_dir, status="interrupted")
    run_id = remembered_id(run_dir, "wandb")
    cut_metrics(run_dir, 2)
    # offline folders are named by start second and id: a resume within the same second
    # would share the first attempt's folder (a real resume is a new process, much later)
    time.sleep(max(0.0, 1.1 - (time.time() - started)))
    drive_run(WandbTracker(project="other"), run_dir, steps={3: STEPS[3], 4: {**STEPS[3], "step": 4}})
    first, second = (read_run(folder) for folder in offline_runs(run_dir))
    assert first["exit"] == 130 and second["exit"] == 0
    assert first["run"].run_id == second["run"].run_id == run_id  # `wandb sync` merges them
    assert sorted(second["history"]) == [3, 4] and second["run"].project == "other"
