"""Log-probabilities of the tokens llama.cpp samples, read from its logits (embedded backend).

llama-cpp-python returns log-probabilities only for a model loaded with `logits_all=True`,
which keeps a row of logits for every position of the context (8192 × 151,936 floats, about
5 GB, for the stand-in) and sorts the whole vocabulary in Python per token. Here the logits
of the one position being sampled are read once, right after llama.cpp sampled from them:
a log-softmax and a partial sort in numpy, about a millisecond per token.
"""

from __future__ import annotations

import codecs
import functools
from collections.abc import Iterator
from dataclasses import replace
from typing import Any

import numpy as np

from .base import Delta, Event, Token


class LogprobTap:
    """Collects each sampled token's log-probability and its `top` alternatives.

    `record` is called by the model right after it sampled `token` from the logits at row
    `ridx`; `take(text)` hands over the recorded tokens that spell `text`; `drop()` forgets
    tokens whose text never reached the reply (a stop string, the end-of-text token).
    """

    def __init__(self, llm: Any, top: int) -> None:
        import llama_cpp  # heavy optional dependency, loaded already by the model itself

        self._c = llama_cpp
        self.llm, self.top = llm, top
        self._vocab = llama_cpp.llama_model_get_vocab(llm.model)
        self.n_vocab = int(llm.n_vocab())
        self._pending: list[Token] = []
        # A character split over tokens comes out whole with its last token.
        self._decoder = codecs.getincrementaldecoder("utf-8")(errors="replace")
        self._carry = 0  # characters of the next text spelled by a token already taken
        self.recorded = 0

    def record(self, token: int, ridx: int) -> None:
        """Note `token`, sampled from the logits at row `ridx` of the last batch."""
        llm = self.llm
        if self._c.llama_vocab_is_eog(self._vocab, token):
            return  # the end of the reply, not a token of its text
        pointer = self._c.llama_get_logits_ith(llm.ctx, ridx)
        logits = np.ctypeslib.as_array(pointer, shape=(self.n_vocab,))
        top_ids, logprob_of = _log_softmax_top(logits, self.top)
        data = _piece(llm, token)
        text = self._decoder.decode(data)
        alternatives = tuple((_piece(llm, i).decode("utf-8", errors="replace"), lp)
                             for i, lp in zip(top_ids, logprob_of(top_ids), strict=True))
        self._pending.append(Token(text, float(logprob_of(np.array([token]))[0]),
                                   alternatives, data))
        self.recorded += 1

    def take(self, text: str) -> tuple[Token, ...]:
        """The recorded tokens that spell `text`, in order.

        llama-cpp-python holds back text that may begin a stop string ("<" of "<think>"), so
        tokens run ahead of the text: those wait for the text that shows them. A token whose
        text runs past the end of `text` goes with it, and its rest is counted off the next
        text; text no token spells (a line the backend adds itself) takes none.
        """
        pos = min(self._carry, len(text))
        self._carry -= pos
        n = 0
        while n < len(self._pending) and pos < len(text):
            piece = self._pending[n].text
            if text.startswith(piece, pos):
                pos += len(piece)
            elif piece.startswith(text[pos:]):
                self._carry, pos = len(piece) - (len(text) - pos), len(text)
            else:
                break
            n += 1
        out, self._pending = tuple(self._pending[:n]), self._pending[n:]
        return out

    def drop(self) -> None:
        """Forget the tokens not taken: their text was never shown."""
        self._pending = []
        self._carry = 0
        self._decoder.reset()


def _log_softmax_top(logits: np.ndarray, top: int) -> tuple[list[int], Any]:
    """The `top` most likely ids (most likely first) and a function giving the natural-log
    probability of ids, from raw logits."""
    peak = float(logits.max())
    # exp in float32 (each term is exact enough), summed in float64: 150k float32 terms
    # summed in float32 lose the small ones.
    log_z = peak + float(np.log(np.exp(logits - peak).sum(dtype=np.float64)))
    ids: list[int] = []
    if top > 0:
        part = np.argpartition(logits, -top)[-top:]
        ids = [int(i) for i in part[np.argsort(-logits[part], kind="stable")]]

    def logprob_of(which: Any) -> list[float]:
        return [float(logits[int(i)]) - log_z for i in which]

    return ids, logprob_of


def _piece(llm: Any, token: int) -> bytes:
    """The bytes of one token as the reply's text has them."""
    return bytes(llm.detokenize([token]))


@functools.cache
def tapped_llama() -> type:
    """llama-cpp-python's `Llama`, telling its `tap` (a `LogprobTap`, when one is set) each
    token it samples."""
    from llama_cpp import Llama  # heavy optional dependency

    class TappedLlama(Llama):
        """`Llama` whose `sample` also reports the token and the logits it came from."""

        tap: LogprobTap | None = None

        def sample(self, *args: Any, **kwargs: Any) -> int:
            token = super().sample(*args, **kwargs)
            tap = self.tap
            if tap is not None:
                idx = kwargs.get("idx")
                # The row `sample` read: llama-cpp-python passes the absolute position.
                tap.record(int(token), idx - self.n_tokens if idx is not None else -1)
            return int(token)

    return TappedLlama


def with_tokens(llm: Any, top: int, events: Iterator[Event]) -> Iterator[Event]:
    """`events` with each text's sampled tokens on its `Delta` (`Delta.tokens`)."""
    tap = LogprobTap(llm, top)
    llm.tap = tap
    try:
        for ev in events:
            if isinstance(ev, Delta) and ev.text:
                ev = replace(ev, tokens=tap.take(ev.text))
            yield ev
    finally:
        llm.tap = None
