"""The embedded backend: llama.cpp in process, for machines without Ollama."""

from __future__ import annotations

import ctypes
import os
import threading
import time
from collections.abc import Callable, Generator, Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import replace
from pathlib import Path
from typing import Any, Literal, cast

import psutil

from .. import config
from ..errors import BackendUnavailable, ConfigurationError, ModelNotFound
from ..language import is_chinese
from ..reasoning.plan import (
    CLOSE,
    EMPTY_THINK,
    THINK_PREFIX,
    ReasoningSupport,
    answer_room,
    budget_note,
    extension_note,
    extension_word,
    room_note,
    shown_after,
    wrap_up,
)
from ..reasoning.think import CLOSE_TAG, OPEN_TAG
from ..tools import CALL_OPEN, ToolMarkup
from ..weights import files as model_files
from .base import (
    Cancellation,
    ChatRequest,
    Delta,
    Done,
    Event,
    ModelHandling,
    Options,
    Stats,
)
from .grammar import to_gbnf
from .token_probs import tapped_llama, with_tokens

_HINT = (
    "the embedded backend runs the small stand-in models that ship on PyPI "
    "(`pip install 'dskit[embedded]'`) or a GGUF file you register with "
    "`ds.register_gguf(name, path)`; DeepSeek-R1 tags need Ollama (`ollama pull <tag>`)"
)


def physical_cores() -> int:
    """Physical CPU cores available to this process (llama.cpp runs best with one thread each).

    DSKIT_THREADS overrides it, e.g. to share a small machine between two model processes.
    """
    given = config.threads()
    if given is not None:
        return given

    cores = psutil.cpu_count(logical=False) or os.cpu_count() or 1
    try:
        usable = len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        usable = cores
    return max(1, min(cores, usable))


class _Loaded:
    """A loaded model with its chat formatter and its own lock (llama.cpp is not re-entrant)."""

    def __init__(self, llm: Any, formatter: Any, load_time: float, size: int = 0,
                 memory: int = 0) -> None:
        self.llm = llm
        self.formatter = formatter
        self.load_time = load_time
        self.size = size  # bytes of the GGUF file
        #: Bytes of RAM the model holds: its weights and the KV cache of its context window, as
        #: llama.cpp allocates them (per model: the process's RSS is shared by all of them).
        self.memory = memory
        self.lock = threading.Lock()
        self.first_use = True
        self.closed = False


#: The context window models are loaded with unless `n_ctx=` or DSKIT_NUM_CTX says otherwise.
DEFAULT_CTX = 8192


class EmbeddedBackend:
    """llama-cpp-python in process; each model is loaded once and reused."""

    name = "embedded"

    def __init__(self, model: str | None = None, *, n_threads: int | None = None,
                 n_ctx: int | None = None, verbose: bool = False,
                 models: dict[str, str] | None = None, max_loaded: int | None = None) -> None:
        try:
            import llama_cpp  # noqa: F401  (fail early with a useful message)
        except ImportError as exc:
            raise BackendUnavailable(
                "the embedded backend needs llama-cpp-python: `pip install 'dskit[embedded]'`"
            ) from exc
        for name, path in (models or {}).items():
            model_files.register_gguf(name, path)
        self._model = model or config.model()
        self.n_threads = n_threads or physical_cores()
        # The KV cache of the whole window is resident once a model has run (8192 tokens cost
        # qwen2.5-coder:0.5b 96 MiB, 2048 tokens 24 MiB): DSKIT_NUM_CTX trims it where memory
        # is tight (Binder).
        self.n_ctx = n_ctx or config.num_ctx() or DEFAULT_CTX
        self.verbose = verbose
        # Least recently used first: a model moves to the end each time it is used.
        self._loaded: dict[str, _Loaded] = {}
        self._lock = threading.Lock()
        self.loads = 0  # how many times a model was loaded from disk
        #: At most this many models stay in memory (like OLLAMA_MAX_LOADED_MODELS); loading one
        #: more first unloads the least recently used.
        self.max_loaded = _max_loaded(max_loaded)

    @property
    def default_model(self) -> str:
        """The given model, else DSKIT_MODEL, else qwen2.5-coder:0.5b."""
        return self._model or model_files.DEFAULT_MODEL

    def list_models(self) -> list[str]:
        """Installed stand-ins and registered GGUF files."""
        return model_files.available()

    def loaded(self) -> list[str]:
        """Models currently in memory."""
        return list(self._loaded)

    def model_details(self, model: str) -> dict[str, Any]:
        """GGUF metadata in Ollama's /api/show shape (loads the model: a chat is about to)."""
        meta = self.load(model).llm.metadata
        return {
            "model_info": {k: v for k, v in meta.items() if k.startswith("general.")},
            "details": {"family": meta.get("general.architecture", "")},
            "capabilities": capabilities(meta.get("tokenizer.chat_template", "")),
        }

    def describe(self) -> dict[str, Any]:
        """Facts for doctor()."""
        import llama_cpp

        return {
            "backend": self.name,
            "llama_cpp_python": llama_cpp.__version__,
            "threads": self.n_threads,
            "models": self.list_models(),
            "loaded": self.loaded(),
            "cache_dir": str(model_files.cache_dir()),
        }

    def reasoning_support(self) -> ReasoningSupport:
        """llama.cpp in process: the start of a reply can be forced, reasoning run in phases,
        and a format's grammar applied to the answer phase only."""
        return ReasoningSupport(force_prefix=True, two_phase=True, format_after_reasoning=True)

    def load(self, model: str, progress: Callable[[int, int], None] | None = None) -> _Loaded:
        """Load `model` once (assembling its file first if needed) and return it."""
        with self._lock:
            entry = self._loaded.get(model)
            if entry is not None:
                self._loaded[model] = self._loaded.pop(model)  # now the most recently used
                self._evict(self.max_loaded, spare=model)  # if a busy model held us over
                return entry
            path = self._path(model, progress)
            self._evict(self.max_loaded - 1)
            from llama_cpp.llama_chat_format import Jinja2ChatFormatter  # heavy, optional

            Llama = tapped_llama()

            t0 = time.perf_counter()
            llm = Llama(
                model_path=str(path),
                n_ctx=self.n_ctx,
                n_threads=self.n_threads,
                n_threads_batch=self.n_threads,
                verbose=self.verbose,
            )
            train_ctx = int(llm.metadata.get(f"{llm.metadata.get('general.architecture')}"
                                             ".context_length", 0) or 0)
            if train_ctx and train_ctx < self.n_ctx:
                # A window beyond what the model was trained on only produces garbage.
                llm = Llama(model_path=str(path), n_ctx=train_ctx, n_threads=self.n_threads,
                            n_threads_batch=self.n_threads, verbose=self.verbose)
            template = llm.metadata.get("tokenizer.chat_template")
            if not template:
                raise ConfigurationError(
                    f"{path} has no chat template in its metadata: use an instruct/chat GGUF"
                )
            eos = llm._model.token_get_text(llm.token_eos())
            bos_id = llm.token_bos()
            bos = llm._model.token_get_text(bos_id) if bos_id != -1 else ""
            formatter = Jinja2ChatFormatter(template, eos_token=eos, bos_token=bos,
                                            stop_token_ids=[llm.token_eos()])
            entry = _Loaded(llm, formatter, time.perf_counter() - t0, path.stat().st_size,
                            _memory(llm))
            self._loaded[model] = entry
            self.loads += 1
            return entry

    def _path(self, model: str, progress: Callable[[int, int], None] | None) -> Path:
        try:
            return model_files.model_path(model, progress)
        except KeyError:
            raise ModelNotFound(model, self.name, self.list_models(), hint=_HINT) from None

    def _drop(self, name: str, entry: _Loaded) -> None:
        """Free a model (caller holds self._lock and entry.lock)."""
        del self._loaded[name]
        entry.closed = True
        entry.llm.close()

    def _close(self, name: str) -> None:
        """Drop `name` from memory (caller holds self._lock); waits for a reply in progress."""
        entry = self._loaded.get(name)
        if entry is not None:
            with entry.lock:
                self._drop(name, entry)

    def _evict(self, keep: int, spare: str | None = None) -> None:
        """Unload least recently used models until at most `keep` remain (caller holds _lock).

        A model busy with a reply is skipped rather than waited for (the reply may be a paused
        generator in this very thread); the limit is then exceeded until it finishes.
        """
        for name in list(self._loaded):
            if len(self._loaded) <= keep:
                return
            if name == spare:
                continue
            entry = self._loaded[name]
            if entry.lock.acquire(blocking=False):
                try:
                    self._drop(name, entry)
                finally:
                    entry.lock.release()

    def unload(self, model: str | None = None) -> None:
        """Free one model (or all of them)."""
        with self._lock:
            for name in [model] if model else list(self._loaded):
                self._close(name)

    def model_handling(self) -> ModelHandling:
        """Stand-ins assembled from installed packages and run here, `max_loaded` at once."""
        return ModelHandling(in_process=True, pull_resumes=False,
                             store_setting="DSKIT_CACHE_DIR", max_loaded=self.max_loaded,
                             threads_per_model=self.n_threads)

    def download_need(self, tag: str) -> tuple[str | None, float]:
        """The model cache and the stand-in's size while its file is not assembled yet."""
        model = model_files.STANDINS.get(tag)
        if model is None or len(model.parts) == 1:
            return None, 0.0  # a single-part model is used where its package installed it
        if (model_files.cache_dir() / model.filename).is_file():
            return None, 0.0
        return str(model_files.cache_dir()), float(model.size)

    def pull(self, tag: str, progress: Callable[[int, int], None] | None = None) -> Path:
        """Make `tag` ready on disk: assemble and verify its GGUF from the installed packages.

        `progress(done, total)` is called with bytes while it works (not at all when the file
        was verified before). Raises ModelNotFound for a tag the backend cannot serve.
        """
        return self._path(tag, progress)

    def preload(self, model: str) -> float:
        """Load `model` into memory now; the seconds that took (0.0 if it was loaded)."""
        before = self.loads
        entry = self.load(model)
        if self.loads == before:
            return 0.0
        entry.first_use = False  # like Ollama: the next reply does not report this load again
        return entry.load_time

    def ps(self) -> list[dict[str, Any]]:
        """Models in memory in Ollama's /api/ps shape, most recently used first."""
        with self._lock:
            items = list(self._loaded.items())
        # size: memory in use, as Ollama reports it (its /api/ps size is not the file size)
        return [{"name": name, "model": name, "size": entry.memory or entry.size, "size_vram": 0,
                 "expires_at": None, "context_length": entry.llm.n_ctx()}
                for name, entry in reversed(items)]

    @contextmanager
    def _use(self, model: str) -> Iterator[_Loaded]:
        """The loaded `model` with its lock held (reloaded if evicted in the meantime)."""
        while True:
            entry = self.load(model)
            with entry.lock:
                if not entry.closed:
                    yield entry
                    return

    def stream(self, request: ChatRequest) -> Iterator[Event]:
        """Generate with llama.cpp, token by token."""
        with self._use(request.model) as entry:
            if request.logprobs is None:
                yield from _reply(entry, request)
            else:
                yield from with_tokens(entry.llm, request.logprobs, _reply(entry, request))

    def trace(self, request: ChatRequest) -> _Trace:
        """Early exits: the reply generated once, its reasoning's ids kept, and each
        checkpoint's answer generated from them (see `_Trace`)."""
        if request.format is not None or request.tools or request.logprobs is not None:
            raise ConfigurationError("exit_at reads a plain reply: it cannot be combined with "
                                     "format=, tools= or logprobs=")
        return _Trace(self, request)

    def complete(self, model: str, prompt: str, options: Options,
                 cancel: Cancellation | None = None, logprobs: int | None = None
                 ) -> Iterator[Event]:
        """A raw completion: `prompt` exactly as given, no chat template (Ollama's `raw`)."""
        with self._use(model) as entry:
            run = _Run(entry, ChatRequest(model=model, messages=[], options=options,
                                          cancel=cancel or Cancellation(), logprobs=logprobs))

            def events() -> Iterator[Event]:
                for text in run.generate(prompt, None):
                    yield Delta("raw", text)
                yield run.done(prefixed=False)

            yield from events() if logprobs is None else \
                with_tokens(entry.llm, logprobs, events())


def _reply(entry: _Loaded, request: ChatRequest, record: _Record | None = None
           ) -> Iterator[Event]:
    """One reply on a loaded model (its lock held); `record` keeps its reasoning's ids."""
    run = _Run(entry, request)
    tools = request.tools or None
    # A format is a grammar on the answer only: reasoning before it runs free.
    grammar, relaxed = _grammar(request.format, entry.llm) if request.format is not None \
        else (None, False)
    plan = request.plan
    markup = ToolMarkup() if tools else None

    def answer(texts: Iterator[str], kind: Literal["answer", "raw"]) -> Iterator[Event]:
        for text in texts:
            shown = markup.feed(text) if markup is not None else text
            if shown:
                yield Delta(kind, shown)

    def done(prefixed: bool, kind: Literal["answer", "raw"]) -> Iterator[Event]:
        final = run.done(prefixed=prefixed)
        if markup is not None:
            tail, final.tool_calls = markup.finish()
            if tail:
                yield Delta(kind, tail)  # held back, and no call after all
        if grammar is not None:
            note = RELAXED_NOTE if relaxed else GRAMMAR_NOTE
            # Said only of a reply that reasoned: "ran free" about reasoning nobody asked for
            # misleads (issue 27).
            final.notes.append(note + (REASONED_FREE if plan.think else ""))
        yield final

    if record is not None and not plan.two_phase:
        # One pass with a cut that is never reached: the plain reply, its ids kept.
        endless = replace(request, plan=replace(plan, budget=NEVER))
        yield from _budgeted(run, endless, tools, answer, done, record)
        return
    if plan.budget and not plan.two_phase and grammar is None and not plan.think_min:
        yield from _budgeted(run, request, tools, answer, done)
        return
    if plan.think_min:
        # A thinking minimum needs the reasoning's close in hand: it runs in phases too.
        yield from _extending(run, request, tools, grammar, answer, done)
        return
    # Free reasoning leaves the answer room in `max_tokens` (a cut as a budget makes it).
    room = answer_room(request.options.max_tokens) \
        if plan.think and plan.budget is None and record is None else 0
    if plan.two_phase or plan.budget is not None:
        yield from _phased(run, request, tools, grammar, answer, done, record, room=room)
        return
    if room and plan.starts_inside and grammar is None:
        soft = replace(plan, budget=request.options.max_tokens - room)
        yield from _budgeted(run, replace(request, plan=soft), tools, answer, done, soft=True)
        return
    fmt = entry.formatter(messages=request.messages, tools=tools)
    prompt = fmt.prompt + plan.prefix
    if grammar is not None and plan.starts_inside:
        # A reasoning model: its reasoning first, unconstrained, then the answer.
        reasoning = []
        for text in run.generate(prompt, fmt, extra_stop=[CLOSE_TAG]):
            reasoning.append(text)
            yield Delta("raw", text)
        if run.finish in ("length", "stopped"):
            yield from done(bool(plan.prefix), "raw")
            return
        yield Delta("raw", f"\n{CLOSE_TAG}\n\n")
        prompt += "".join(reasoning).rstrip() + f"\n{CLOSE_TAG}\n\n"
    yield from answer(run.generate(prompt, fmt, grammar=grammar), "raw")
    yield from done(bool(plan.prefix), "raw")


Kind = Literal["answer", "raw"]


def _phased(run: _Run, request: ChatRequest, tools: list[dict[str, Any]] | None,
            grammar: Any, answer: Callable[[Iterator[str], Kind], Iterator[Event]],
            finish: Callable[[bool, Kind], Iterator[Event]],
            record: _Record | None = None, room: int = 0) -> Iterator[Event]:
    """Reason until `</think>` or the thinking budget, close the block, then answer.

    Two phases, like budget forcing: a model that does not reason by itself is asked to reason
    first (`two_phase`); an R1 model starts from the forced "<think>\n". When the budget cuts
    the reasoning (a stopping criterion, as in `_budgeted`), a wrap-up line closes it and the
    answer continues from the reasoning's own ids (`_answer_after_cut`); a reasoning the model
    closed itself is closed as text. `answer` and `finish` carry out the answer's tool markup
    and format (see `_reply`); `record` keeps the reasoning's ids for early exits. Without a
    budget, reasoning is cut the same way `room` tokens before `max_tokens`, so the answer
    always has room.
    """
    plan, messages = request.plan, request.messages
    fmt = run.entry.formatter(messages=_ask_to_reason(messages) if plan.two_phase else messages,
                              tools=tools)
    # Small models echo a bare `</think>` and stop; a short cue makes them answer (not before a
    # tool call, whose markup must start the answer).
    cue = _answer_cue(messages) if plan.two_phase and not tools else ""
    budget = plan.budget
    cap = budget if budget is not None else (run.budget - room if room else None)
    prompt = fmt.prompt
    if budget == 0:
        prompt += EMPTY_THINK  # R1's empty think block: answer without reasoning
        run.thinking = 0
    else:
        prompt += THINK_PREFIX
        ids = run._tokens(prompt, fmt)
        # The criterion only where something is cut or kept: a plain reply runs without it.
        cut = BudgetStop(run.llm, len(ids), NEVER if cap is None else cap) \
            if cap is not None or record is not None else None
        reasoning: list[str] = []
        try:
            for text in run.generate(ids, fmt, extra_stop=[CLOSE_TAG], stopping=cut):
                reasoning.append(text)
                yield Delta("thinking", text)
        finally:  # also when the reader leaves early (the loop guard): exits still read it
            if record is not None and cut is not None:
                record.keep(run.llm, len(ids), cut, cue=cue, kind="answer", prefixed=True)
        if run.finish == "stopped":
            run.thinking = run.generated
            yield from finish(True, "answer")
            return
        if cut is not None and cut.hit:
            yield Delta("thinking", f"\n\n{wrap_up(messages)}")
            yield from _answer_after_cut(run, run.llm.input_ids[:run.llm.n_tokens].tolist(),
                                         cut.budget, messages, cue, fmt, grammar, answer,
                                         finish, "answer", True, soft=budget is None)
            return
        prompt += "".join(reasoning).rstrip() + CLOSE
        run.thinking = run.generated
        if run.finish == "length" or run.room(prompt + cue) <= 0:
            run.finish = "length"  # the token limit or the context ran out while reasoning
            yield from finish(True, "answer")
            return
    before = run.generated
    yield from answer(run.generate(prompt + cue, fmt, extra_stop=[OPEN_TAG, CLOSE_TAG],
                                   grammar=grammar), "answer")
    run.answer = run.generated - before
    for ev in finish(True, "answer"):
        if isinstance(ev, Done) and budget == 0:
            ev.budget_hit = True
            ev.notes.append(budget_note(0))
        yield ev


def _extending(run: _Run, request: ChatRequest, tools: list[dict[str, Any]] | None,
            grammar: Any, answer: Callable[[Iterator[str], Kind], Iterator[Event]],
            finish: Callable[[bool, Kind], Iterator[Event]]) -> Iterator[Event]:
    """`_phased` with a thinking minimum: reasoning that closes before the plan's `think_min`
    is extended (s1): the extension word follows it and the reasoning goes on from the cached
    prefix (the text so far, tokenized again), at most `max_extensions` times; a budget beside
    it still cuts, with a wrap-up line, and the answer follows the closed reasoning.
    `answer` and `finish` carry out the answer's tool markup and format (see `_reply`).
    """
    plan, messages = request.plan, request.messages
    fmt = run.entry.formatter(messages=_ask_to_reason(messages) if plan.two_phase else messages,
                              tools=tools)
    extensions = 0

    def finished() -> Iterator[Event]:
        for ev in finish(True, "answer"):
            if isinstance(ev, Done):
                _extended(ev, extensions, plan.think_min)
                if hit and budget is not None:
                    ev.budget_hit = True
                    ev.notes.append(budget_note(budget))
            yield ev

    # Small models echo a bare `</think>` and stop; a short cue makes them answer (not before a
    # tool call, whose markup must start the answer).
    cue = _answer_cue(messages) if plan.two_phase and not tools else ""
    budget = plan.budget
    prompt = fmt.prompt
    hit = budget == 0
    if budget == 0:
        prompt += EMPTY_THINK  # R1's empty think block: answer without reasoning
        run.thinking = 0
    else:
        prompt += THINK_PREFIX
        thought, words = "", 0  # the reasoning so far; the extension words' tokens in it
        while True:
            left = None if budget is None else budget - (run.generated + words)
            limit = run.remaining() if left is None else min(left, run.remaining())
            reasoning: list[str] = []
            for text in run.generate(prompt + thought, fmt, extra_stop=[CLOSE_TAG],
                                     limit=limit):
                reasoning.append(text)
                yield Delta("thinking", text)
            shown = "".join(reasoning)
            thought = (thought + shown).rstrip()
            if run.finish != "stop" or not plan.extends(run.generated + words, extensions):
                break
            word = extension_word(plan, messages)
            size = run.count(word)
            if run.room(prompt + thought + word) <= 1 or run.remaining() <= 1 or \
                    (budget is not None and run.generated + words + size >= budget):
                break  # no room left to go on: closed as it is
            yield Delta("thinking", shown_after(shown, word))
            thought += word
            words += size
            extensions += 1
        if run.finish == "stopped":
            run.thinking = run.generated + words
            yield from finished()
            return
        hit = left is not None and run.finish == "length" and left < run.remaining(before=True)
        tail = CLOSE
        if hit:
            line = wrap_up(messages)
            yield Delta("thinking", f"\n\n{line}")
            tail = f"\n\n{line}{CLOSE}"
        prompt += thought + tail
        # Reasoning tokens: the generated ones and the extension words, plus the closing line
        # when it was cut.
        run.thinking = run.generated + words + (run.count(tail) if hit else 0)
        if (run.finish == "length" and not hit) or run.room(prompt + cue) <= 0:
            run.finish = "length"  # the token limit or the context ran out while reasoning
            yield from finished()
            return
    before = run.generated
    yield from answer(run.generate(prompt + cue, fmt, extra_stop=[OPEN_TAG, CLOSE_TAG],
                                   grammar=grammar), "answer")
    run.answer = run.generated - before
    yield from finished()


def _extended(done: Done, extensions: int, think_min: int | None) -> None:
    """Say on the final event how many times the reasoning was extended (`think_min`)."""
    if extensions and think_min:
        done.extensions = extensions
        done.notes.append(extension_note(extensions, think_min))


def _answer_after_cut(run: _Run, ids: list[int], budget: int, messages: list[dict[str, Any]],
                      cue: str, fmt: Any, grammar: Any,
                      answer: Callable[[Iterator[str], Kind], Iterator[Event]],
                      finish: Callable[[bool, Kind], Iterator[Event]], kind: Kind,
                      prefixed: bool, soft: bool = False) -> Iterator[Event]:
    """The answer after reasoning cut at `budget`: the reasoning's own `ids` (the prompt's
    and `budget` of the reply's, not the text tokenized again, so llama.cpp evaluates only the
    closing text), the wrap-up line, `</think>` and the answer cue. A thinking budget and an
    early exit both end here, so a checkpoint's answer is the budget's answer; `soft`: the cut
    only left the answer room in `max_tokens` (no budget was asked for)."""
    tail = f"\n\n{wrap_up(messages)}{CLOSE}"
    llm = run.llm
    tokens = [*ids, *llm.tokenize((tail + cue).encode("utf-8"), add_bos=False, special=True)]
    run.thinking = budget + run.count(tail)  # the closing line counts as reasoning
    if run.remaining() <= 0 or llm.n_ctx() - len(tokens) <= 0:
        run.finish = "length"  # the token limit or the context ran out at the cut
        yield from finish(prefixed, kind)
        return
    if llm.n_tokens > len(ids) and llm.input_ids[:len(ids)].tolist() == ids:
        # An exit's cache holds the trace past the cut: drop it, so the closing text is
        # evaluated from the cut in one batch as after a budget's cut (llama.cpp's sums differ
        # across batch splits, which can tip a greedy near-tie).
        llm.n_tokens = len(ids)
    before = run.generated
    yield from answer(run.generate(tokens, fmt, extra_stop=[OPEN_TAG, CLOSE_TAG],
                                   grammar=grammar), kind)
    run.answer = run.generated - before
    for ev in finish(prefixed, kind):
        if isinstance(ev, Done):
            if soft:
                ev.notes.append(room_note(budget, run.budget))
            else:
                ev.budget_hit = True
                ev.notes.append(budget_note(budget))
        yield ev


def _budgeted(run: _Run, request: ChatRequest, tools: list[dict[str, Any]] | None,
              answer: Callable[[Iterator[str], Kind], Iterator[Event]],
              finish: Callable[[bool, Kind], Iterator[Event]],
              record: _Record | None = None, soft: bool = False) -> Iterator[Event]:
    """A model that reasons by itself, with a budget: one pass, cut only when it is reached
    (`soft`: a budget that only leaves the answer room in `max_tokens`).

    The reply is generated exactly as without a budget (the same call, the same tokens), with a
    stopping criterion counting the reasoning's tokens; a budget that is never reached costs
    nothing and changes nothing. At the budget the criterion stops generation, and the answer
    continues from the model's own ids (`_answer_after_cut`). `record` keeps those ids for
    early exits (with a budget that is never reached: the plain reply).
    """
    plan, messages = request.plan, request.messages
    assert plan.budget  # the caller routes budget 0 and no budget elsewhere
    fmt = run.entry.formatter(messages=messages, tools=tools)
    prompt = run._tokens(fmt.prompt + plan.prefix, fmt)
    cut = BudgetStop(run.llm, len(prompt), plan.budget)
    try:
        yield from answer(run.generate(prompt, fmt, stopping=cut), "raw")
    finally:  # also when the reader leaves early (the loop guard): exits still read it
        if record is not None:
            record.keep(run.llm, len(prompt), cut, cue="", kind="raw",
                        prefixed=bool(plan.prefix))
    if not cut.hit:
        run.thinking = cut.closed_at if cut.closed_at is not None else run.generated
        run.answer = run.generated - run.thinking
        yield from finish(bool(plan.prefix), "raw")
        return
    tail = f"\n\n{wrap_up(messages)}{CLOSE}"
    yield from answer(iter([tail]), "raw")
    yield from _answer_after_cut(run, run.llm.input_ids[:run.llm.n_tokens].tolist(), cut.budget,
                                 messages, "", fmt, None, answer, finish, "raw",
                                 bool(plan.prefix), soft=soft)


#: A budget no reply reaches: the stopping criterion only watches (early exits keep the ids).
NEVER = 2**31


class _Record:
    """What a trace keeps of its reasoning to close it at a checkpoint later."""

    def __init__(self) -> None:
        self.ids: list[int] = []  # the prompt's ids, then the reply's as llama.cpp evaluated them
        self.start = 0  # where the reply's ids begin
        self.closed_at: int | None = None  # reasoning tokens when the model closed it itself
        self.cue, self.kind, self.prefixed = "", cast(Kind, "answer"), False
        self.cache: bytes | None = None  # llama.cpp's cache of `ids`, as it was decoded

    def keep(self, llm: Any, start: int, cut: BudgetStop, *, cue: str, kind: Kind,
             prefixed: bool) -> None:
        """The ids evaluated so far (before the answer phase overwrites the cache)."""
        self.ids = llm.input_ids[:llm.n_tokens].tolist()
        self.start, self.closed_at = start, cut.closed_at
        self.cue, self.kind, self.prefixed = cue, kind, prefixed
        if kind == "answer":
            # The answer phase re-reads the reasoning as text, whose tokens may differ from
            # the sampled ones and overwrite the cache from there: kept to put it back.
            self.cache = _cache_of(llm)

    def restore(self, llm: Any, upto: int) -> None:
        """Make llama.cpp's cache hold the first `upto` ids as they were decoded.

        Evaluated again in a batch instead, they would carry llama.cpp's batch-split rounding
        (its sums differ by batch size), which can tip a greedy near-tie: the checkpoint's
        answer would then differ from the budget's.
        """
        cached = llm.longest_token_prefix(llm.input_ids[:llm.n_tokens].tolist(), self.ids)
        if cached >= upto or self.cache is None:
            return
        if _restore_cache(llm, self.cache):
            llm.input_ids[:len(self.ids)] = self.ids
            llm.n_tokens = len(self.ids)
            llm._requires_eval = True  # the logits are not the restored state's

    def cuts(self, checkpoint: int) -> bool:
        """Whether `think_budget=checkpoint` would have cut this reasoning (as `BudgetStop`
        decides it: the budget reached before the model closed its reasoning)."""
        reached = checkpoint <= len(self.ids) - self.start
        return reached and (self.closed_at is None or checkpoint < self.closed_at)


def _cache_of(llm: Any) -> bytes | None:
    """The context's cache of its one sequence (llama.cpp's per-sequence state: the cells and
    their positions, no logits); None where llama.cpp cannot give it."""
    import llama_cpp

    ctx = llm._ctx.ctx
    size = llama_cpp.llama_state_seq_get_size(ctx, 0)
    if not size:
        return None
    buffer = (ctypes.c_uint8 * size)()
    written = llama_cpp.llama_state_seq_get_data(ctx, buffer, size, 0)
    return bytes(buffer[:written]) if written else None


def _restore_cache(llm: Any, data: bytes) -> bool:
    """Put a cache from `_cache_of` back; False (the cache then empty) where it fails."""
    import llama_cpp

    llm._ctx.kv_cache_seq_rm(-1, 0, -1)
    buffer = (ctypes.c_uint8 * len(data)).from_buffer_copy(data)
    if llama_cpp.llama_state_seq_set_data(llm._ctx.ctx, buffer, len(data), 0):
        return True
    llm.n_tokens = 0  # nothing restored: the next prompt is evaluated whole
    return False


class _Trace:
    """One reply of the embedded backend kept for early exits (`base.Trace`).

    The model's lock is held from `stream()` to `close()`, so nothing else runs on it between
    the reply and its exits: llama.cpp's cache still holds the reasoning and each exit
    evaluates only its closing text before the answer (read the exits from the last
    checkpoint down, so each one's prefix is a prefix of the one before).
    """

    def __init__(self, backend: EmbeddedBackend, request: ChatRequest) -> None:
        self.backend, self.request = backend, request
        self.record = _Record()
        self._held = ExitStack()
        self._entry: _Loaded | None = None

    def stream(self) -> Iterator[Event]:
        """The whole reply, its reasoning's ids recorded."""
        self._entry = self._held.enter_context(self.backend._use(self.request.model))
        yield from _reply(self._entry, self.request, self.record)

    def exit(self, checkpoint: int, cancel: Cancellation) -> Iterator[Event] | None:
        """The reply closed at `checkpoint` (None: the reasoning ended before it)."""
        if self._entry is None:
            raise RuntimeError("read the trace's stream() before its exits")
        request = replace(self.request, cancel=cancel,
                          plan=replace(self.request.plan, exits=()))
        if checkpoint == 0:  # the empty think block: exactly `think_budget=0`
            return _reply(self._entry, replace(request, plan=replace(request.plan, budget=0)))
        if not self.record.cuts(checkpoint):
            return None
        return self._closed(self._entry, request, checkpoint)

    def _closed(self, entry: _Loaded, request: ChatRequest, checkpoint: int
                ) -> Iterator[Event]:
        rec = self.record
        run = _Run(entry, request)
        run.budget -= checkpoint  # what a budget run would have left after its reasoning
        llm = run.llm
        kept = llm.detokenize(rec.ids[rec.start:rec.start + checkpoint],
                              prev_tokens=rec.ids[:rec.start]).decode("utf-8", errors="ignore")
        line = f"\n\n{wrap_up(request.messages)}"
        if rec.kind == "raw":
            yield Delta("raw", kept + line + CLOSE)
        else:
            yield Delta("thinking", kept + line)
        fmt = entry.formatter(messages=_ask_to_reason(request.messages) if request.plan.two_phase
                              else request.messages)

        def answer(texts: Iterator[str], kind: Kind) -> Iterator[Event]:
            return (Delta(kind, text) for text in texts)

        def finish(prefixed: bool, kind: Kind) -> Iterator[Event]:
            yield run.done(prefixed=prefixed)

        rec.restore(llm, rec.start + checkpoint)
        yield from _answer_after_cut(run, rec.ids[:rec.start + checkpoint], checkpoint,
                                     request.messages, rec.cue, fmt, None, answer, finish,
                                     rec.kind, rec.prefixed)

    def close(self) -> None:
        """Release the model."""
        self._held.close()


class BudgetStop:
    """A llama.cpp stopping criterion: stop when `budget` tokens of reasoning are unclosed.

    The in-process counterpart of `base.BudgetCut`, which cuts a server's streamed reasoning:
    here the count is of the ids llama.cpp samples, so the reply itself is never re-tokenized.

    llama-cpp-python calls it after each sampled token with the ids evaluated so far (the
    prompt's `start` ids, then the reply's), so it sees every token, not the held-back text.
    """

    #: Ids looked at for `</think>`: enough for the tag in any tokenization.
    WINDOW = 8

    def __init__(self, llm: Any, start: int, budget: int) -> None:
        self.llm, self.start, self.budget = llm, start, budget
        #: Reasoning tokens, `</think>` included, when the model closed the block itself.
        self.closed_at: int | None = None
        self.hit = False

    def __call__(self, input_ids: Any, logits: Any) -> bool:
        """True to stop: the budget is spent and the reasoning still open."""
        if self.hit or self.closed_at is not None:
            return self.hit
        n = len(input_ids) - self.start
        if n > 0:
            window = input_ids[max(self.start, len(input_ids) - self.WINDOW):].tolist()
            if CLOSE_TAG.encode() in self.llm.detokenize(window, special=True):
                self.closed_at = n
                return False
        self.hit = n >= self.budget
        return self.hit


GRAMMAR_NOTE = ("format: the answer was constrained by a llama.cpp grammar built from the "
                "schema.")
#: Added to the format's note when the reply reasoned before its answer.
REASONED_FREE = " The reasoning before it ran free."
RELAXED_NOTE = ("format: the schema's long enums and length or item bounds were left out of the "
                "grammar (llama.cpp cannot hold them); the answer was checked against the whole "
                "schema afterwards.")


def _grammar(fmt: str | dict[str, Any], llm: Any) -> tuple[Any, bool]:
    """A llama.cpp grammar for "json" or a JSON schema (bounded, see `grammar.py`), and
    whether it had to be relaxed."""
    from llama_cpp import LlamaGrammar

    text, relaxed = to_gbnf(fmt, accepts=lambda gbnf: _accepts(llm, gbnf))
    return LlamaGrammar.from_string(text, verbose=False), relaxed


def _accepts(llm: Any, gbnf: str) -> bool:
    """Whether llama.cpp parses `gbnf` for this model's vocabulary.

    llama-cpp-python adds the grammar sampler without checking it: a grammar llama.cpp's parser
    refuses becomes a null sampler and the process dies at the first token. Tried here first.
    """
    import llama_cpp

    # The parser prints its refusal and the whole grammar on the C stderr: kept off screen,
    # the refusal is reported as a relaxed grammar's note or a typed error instead.
    with _c_stderr_silenced():
        sampler = llama_cpp.llama_sampler_init_grammar(llm._model.vocab, gbnf.encode("utf-8"),
                                                       b"root")
    if not sampler:
        return False
    llama_cpp.llama_sampler_free(sampler)
    return True


@contextmanager
def _c_stderr_silenced() -> Iterator[None]:
    """File descriptor 2 pointed at /dev/null while native code runs (Python's own sys.stderr
    is untouched)."""
    with _STDERR_LOCK:
        saved = os.dup(2)
        try:
            with open(os.devnull, "wb") as null:
                os.dup2(null.fileno(), 2)
            yield
        finally:
            os.dup2(saved, 2)
            os.close(saved)


_STDERR_LOCK = threading.Lock()


def capabilities(template: str) -> list[str]:
    """What a model served here can do, from its chat template (as Ollama infers it).

    `tools` only for templates that write Hermes-style `<tool_call>` markup, which this backend
    reads back into calls; any other tool format would reach the user as text.
    """
    return ["completion"] + (["tools"] if "tools" in template and CALL_OPEN in template else [])


#: Memory a loaded model takes beyond its file (context cache, buffers), as a factor.
_MEMORY_FACTOR = 1.5


def _max_loaded(given: int | None) -> int:
    """The resident-model limit: the argument, else DSKIT_MAX_LOADED, else from free RAM."""
    if given is None:
        given = config.max_loaded()
    if given is not None:
        if given < 1:
            raise ConfigurationError(f"max_loaded must be at least 1, not {given}")
        return given
    return default_max_loaded()


def default_max_loaded() -> int:
    """How many of the available models fit together in half the available RAM (at least 1)."""
    budget = psutil.virtual_memory().available / 2
    sizes = sorted(_file_size(name) for name in model_files.available())
    fit, used = 0, 0.0
    for size in sizes:
        used += size * _MEMORY_FACTOR
        if used > budget:
            break
        fit += 1
    return max(1, fit)


def _memory(llm: Any) -> int:
    """Weights plus the fp16 KV cache of the loaded context, from the model's own metadata."""
    from llama_cpp import llama_model_size  # the module is loaded with the model already

    meta = llm.metadata
    arch = meta.get("general.architecture", "")

    def number(key: str, default: int = 0) -> int:
        try:
            return int(meta.get(f"{arch}.{key}", default))
        except ValueError:
            return default

    heads = number("attention.head_count", 1) or 1
    head_dim = number("attention.key_length") or number("embedding_length") // heads
    kv = llm.n_ctx() * number("block_count") * number("attention.head_count_kv", heads) \
        * head_dim * 2 * 2  # K and V, 2 bytes each
    return int(llama_model_size(llm._model.model)) + kv


def _file_size(name: str) -> int:
    model = model_files.STANDINS.get(name)
    if model is not None:
        return model.size
    try:
        return model_files.model_path(name).stat().st_size  # a registered file: no assembly needed
    except (KeyError, OSError):
        return 0



#: Prompt tokens evaluated between two checks for cancellation (see `_Run._prefill`).
PREFILL_BATCH = 128

#: Asking a model that does not reason by itself to reason first, in the language of the
#: question (an English instruction made the stand-in answer Chinese questions in English).
REASONING_INSTRUCTION = {
    "en": ("Before you answer, think the problem through step by step between <think> and "
           "</think>. After </think>, write only the final answer."),
    "zh": ("回答之前，先在 <think> 和 </think> 之间用中文一步一步地思考这个问题。"
           "</think> 之后只用中文写出最终答案。"),
}
ANSWER_CUE = {"en": "Answer: ", "zh": "最终答案："}


def _language(messages: list[dict[str, str]]) -> str:
    """"zh" when the last user turn is Chinese, else "en"."""
    last = next((m["content"] for m in reversed(messages) if m["role"] == "user"), "")
    return "zh" if is_chinese(last) else "en"


def _ask_to_reason(messages: list[dict[str, str]]) -> list[dict[str, str]]:
    """Messages with the reasoning instruction added to the system prompt."""
    instruction = REASONING_INSTRUCTION[_language(messages)]
    if messages and messages[0]["role"] == "system":
        first = {"role": "system", "content": f"{messages[0]['content']}\n\n{instruction}"}
        return [first, *messages[1:]]
    return [{"role": "system", "content": instruction}, *messages]


def _answer_cue(messages: list[dict[str, str]]) -> str:
    """The words that open the answer phase, in the language of the last user turn."""
    return ANSWER_CUE[_language(messages)]


def _checked_start(completion: Iterator[Any]) -> Generator[Any, None, None]:
    """The completion's parts; settings llama-cpp-python refuses at the start (an option it
    does not take, or a value out of its range, from `options=`) become a typed error."""
    try:
        first = next(completion)
    except StopIteration:
        return
    except (TypeError, ValueError) as exc:
        raise ConfigurationError(f"llama.cpp refused this request's settings ({exc}): check the "
                                 "options given (`options=`)") from None
    try:
        yield first
        yield from completion
    finally:
        close = getattr(completion, "close", None)
        if close is not None:
            close()  # llama-cpp-python's generator: leaving it ends the generation


class _Run:
    """One reply's generation calls on a loaded model, and what they measured together."""

    def __init__(self, entry: _Loaded, request: ChatRequest) -> None:
        self.entry, self.request = entry, request
        self.llm = entry.llm
        self.budget = request.options.max_tokens
        self.load_time = entry.load_time if entry.first_use else 0.0
        entry.first_use = False
        self.prompt_tokens: int | None = None
        self.generated = 0
        #: Tokens of reasoning (generated plus a budget's closing text) and of the answer, when
        #: the backend ran the phases itself and knows them exactly.
        self.thinking: int | None = None
        self.answer: int | None = None
        self._limit = 0  # the token limit of the last `generate` call
        self._last = 0  # tokens the last `generate` call produced
        self.finish: str | None = None
        self.t0 = time.perf_counter()
        self.t_first: float | None = None
        self.t_end: float | None = None

    def _tokens(self, prompt: str, fmt: Any) -> list[int]:
        # A raw prompt (fmt None) gets the BOS the model asks for, as Ollama's raw mode does.
        add_bos = True if fmt is None else not fmt.added_special
        return self.llm.tokenize(prompt.encode("utf-8"), add_bos=add_bos, special=True)

    def room(self, prompt: str) -> int:
        """Tokens left in the context window after `prompt`."""
        return self.llm.n_ctx() - len(self.llm.tokenize(prompt.encode("utf-8"), special=True))

    def count(self, text: str) -> int:
        """Tokens in `text` (without a BOS)."""
        return len(self.llm.tokenize(text.encode("utf-8"), add_bos=False, special=True))

    def remaining(self, before: bool = False) -> int:
        """Tokens of `max_tokens` left (`before`: as they were before the last `generate`)."""
        used = self.generated - (self._last if before else 0)
        return self.budget - used

    def generate(self, prompt: str | list[int], fmt: Any, extra_stop: list[str] | None = None,
                 grammar: Any = None, limit: int | None = None,
                 stopping: Callable[[Any, Any], bool] | None = None) -> Iterator[str]:
        """Stream text for `prompt` (text, or token ids as they are) within what is left of the
        token budget (and `limit`); `stopping` is a llama.cpp stopping criterion."""
        llm, opts = self.llm, self.request.options
        tokens = prompt if isinstance(prompt, list) else self._tokens(prompt, fmt)
        if self.prompt_tokens is None:
            self.prompt_tokens = len(tokens)
        room = llm.n_ctx() - len(tokens)
        if room <= 0:
            raise ConfigurationError(
                f"the prompt is {len(tokens)} tokens but {self.request.model} runs with a "
                f"{llm.n_ctx()}-token context here: shorten the prompt or the history"
            )
        cap = min(self.budget - self.generated, room)
        self._limit = max(1, cap if limit is None else min(cap, limit))
        kwargs: dict[str, Any] = {
            "max_tokens": self._limit,
            "stop": [*((fmt.stop or []) if fmt is not None else []), *opts.stop,
                     *(extra_stop or [])],
            "stream": True,
            "temperature": 0.8 if opts.temperature is None else opts.temperature,
            "top_p": 0.95 if opts.top_p is None else opts.top_p,
            **opts.extra,
        }
        if opts.seed is not None:
            kwargs["seed"] = opts.seed
        criteria = [*((fmt.stopping_criteria or []) if fmt is not None else []),
                    *([stopping] if stopping is not None else [])]
        if criteria:
            from llama_cpp import StoppingCriteriaList  # heavy optional dependency

            kwargs["stopping_criteria"] = StoppingCriteriaList(criteria)
        if grammar is not None:
            kwargs["grammar"] = grammar
        self.finish = None
        self._last = 0
        cancel = self.request.cancel
        if not self._prefill(tokens):
            self.finish = "stopped"
            return
        completion = _checked_start(llm.create_completion(tokens, **kwargs))
        try:
            for part in completion:
                if cancel.is_set():
                    self.finish = "stopped"
                    break
                choice = part["choices"][0]
                text = choice.get("text") or ""
                if text:
                    if self.t_first is None:
                        self.t_first = time.perf_counter()
                    yield text
                self.finish = choice.get("finish_reason") or self.finish
        finally:
            completion.close()
            tap = getattr(llm, "tap", None)
            if tap is not None:
                tap.drop()  # tokens of a stop string or held-back markup: never shown
        self.t_end = time.perf_counter()
        # At the limit exactly that many tokens were sampled; otherwise the ids llama.cpp
        # evaluated past the prompt (counting the text again can merge them: "</" "th" "ink"
        # ">" is 3 tokens as text).
        evaluated = max(0, llm.n_tokens - len(tokens))
        self._last = self._limit if self.finish == "length" else evaluated
        self.generated += self._last

    def _prefill(self, tokens: list[int]) -> bool:
        """Evaluate the prompt in batches, checking for cancellation between them; False when
        cancelled.

        llama-cpp-python evaluates a whole prompt in one call that nothing can interrupt: a
        long prompt kept the model busy for minutes after its client had left. Evaluated
        here batch by batch (reusing the cached prefix, as it would), the prompt is complete
        in the cache when `create_completion` starts, which then samples at once.
        """
        llm, cancel = self.llm, self.request.cancel
        cached = llm.longest_token_prefix(llm.input_ids[: llm.n_tokens].tolist(), tokens)
        if cached >= len(tokens) - 1:
            return not cancel.is_set()  # (almost) all cached: llama-cpp-python replays it
        llm.n_tokens = cached  # eval() drops the cache from here on, then appends
        for start in range(cached, len(tokens), PREFILL_BATCH):
            if cancel.is_set():
                return False
            llm.eval(tokens[start:start + PREFILL_BATCH])
        return not cancel.is_set()

    def done(self, prefixed: bool) -> Done:
        """The final event with the measured stats."""
        n, t_first, t_end = self.generated, self.t_first, self.t_end
        stats = Stats(
            prompt_tokens=self.prompt_tokens,
            eval_tokens=n,
            # decode speed as Ollama reports it: tokens after the first over the time they took
            eval_time=(t_end - t_first) * n / max(n - 1, 1) if t_first and t_end else None,
            prompt_time=(t_first - self.t0) if t_first else None,
            load_time=self.load_time,
            memory=self.entry.memory or None,
        )
        if self.thinking is not None:
            stats.thinking_tokens, stats.answer_tokens = self.thinking, self.answer or 0
        return Done(stats=stats, done_reason=self.finish or "stop", prefixed=prefixed)
