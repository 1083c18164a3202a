"""How confident a model was along one reply, from its tokens' log-probabilities.

The measures are DeepConf's (Fu, Wang, Tian, Zhao: "Deep Think with Confidence",
arXiv:2508.15260, 2025):

- token confidence   C_i = −(1/k) Σ_{j=1..k} log P_i(j), over the k most likely tokens at
  position i: high when the distribution is peaked (the alternatives are unlikely), and
  never below log k (k equally likely alternatives);
- average confidence C_avg = the mean of C_i over the reply;
- group confidence   C_G = the mean of C_i over a window of `window` consecutive tokens,
  slid one token at a time (a reply shorter than the window is one group);
- lowest group       the smallest C_G (the trace's weakest stretch);
- bottom 10 %        the mean of the lowest 10 % of the C_G;
- tail               the mean of C_i over the last `tail` tokens (where the answer forms).

The paper used k = 20 alternatives and windows and tails of 2,048 tokens on traces of
thousands of tokens; the values depend on k, so compare confidences only at the same k.
The stand-in models write a few hundred tokens: dskit's lessons use windows of 32–64.
"""

from __future__ import annotations

import math
from collections import deque
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from typing import Any, Protocol

from ..errors import ConfigurationError

#: DeepConf's window for group confidence and its tail, in tokens.
PAPER_WINDOW = 2048
#: The share of the lowest groups `bottom` averages (DeepConf's "bottom 10 %").
BOTTOM_SHARE = 0.10


class Scored(Protocol):
    """A token with its alternatives' log-probabilities (`dskit.backends.base.Token`)."""

    @property
    def logprob(self) -> float: ...
    @property
    def top(self) -> tuple[tuple[str, float], ...]: ...
    @property
    def phase(self) -> str: ...


@dataclass(frozen=True)
class Confidence:
    """One reply's confidence measures (see the module's docstring for each formula)."""

    tokens: int  # tokens measured
    k: int  # alternatives per token the token confidence averaged
    window: int  # tokens per group
    mean: float  # C_avg
    lowest: float  # the lowest group confidence
    lowest_at: int  # the index of the first token of the lowest group
    bottom: float  # the mean of the lowest 10 % of groups
    tail: float  # the mean over the last `tail_tokens`
    tail_tokens: int

    def as_row(self, prefix: str = "conf_") -> dict[str, Any]:
        """The measures as columns of a results row (`conf_mean`, `conf_lowest`, …)."""
        return {f"{prefix}{k}": v for k, v in asdict(self).items()}

    def sentence(self) -> str:
        """The measures in one line a learner reads."""
        return (f"confidence over {self.tokens} tokens (top-{self.k}): mean {self.mean:.2f}, "
                f"lowest {self.window}-token stretch {self.lowest:.2f} (from token "
                f"{self.lowest_at}), bottom 10 % {self.bottom:.2f}, last {self.tail_tokens} "
                f"tokens {self.tail:.2f}")


def token_confidence(token: Scored) -> float:
    """C_i: minus the mean log-probability of the token's most likely alternatives."""
    if not token.top:
        raise ConfigurationError("token confidence averages each token's most likely "
                                 "alternatives: ask for them with top_logprobs=5 (DeepConf used "
                                 "20; 0 returns none)")
    return -sum(lp for _, lp in token.top) / len(token.top)


def token_confidences(tokens: Sequence[Scored], phase: str | None = None) -> list[float]:
    """C_i for each token (only the `phase` ones, "thinking" or "answer", when given)."""
    return [token_confidence(t) for t in tokens if phase is None or t.phase == phase]


def groups(confidences: Sequence[float], window: int) -> list[float]:
    """The group confidences: means of `window` consecutive values, slid by one (one group,
    the mean of all, when there are fewer)."""
    _check_window(window)
    if not confidences:
        return []
    if len(confidences) <= window:
        return [sum(confidences) / len(confidences)]
    running = sum(confidences[:window])
    out = [running / window]
    for i in range(window, len(confidences)):
        running += confidences[i] - confidences[i - window]
        out.append(running / window)
    return out


def measure(tokens: Sequence[Scored], *, window: int = PAPER_WINDOW, tail: int = PAPER_WINDOW,
            phase: str | None = None) -> Confidence | None:
    """The reply's `Confidence` (None when it has no tokens)."""
    confs = token_confidences(tokens, phase)
    if not confs:
        return None
    _check_window(tail, "tail")
    grouped = groups(confs, window)
    lowest = min(grouped)
    ranked = sorted(grouped)
    bottom = ranked[:max(1, math.ceil(len(ranked) * BOTTOM_SHARE))]
    last = confs[-tail:]
    k = len(next(t for t in tokens if phase is None or t.phase == phase).top)
    return Confidence(tokens=len(confs), k=k, window=min(window, len(confs)),
                      mean=sum(confs) / len(confs), lowest=lowest,
                      lowest_at=grouped.index(lowest), bottom=sum(bottom) / len(bottom),
                      tail=sum(last) / len(last), tail_tokens=len(last))


class GroupWatch:
    """The group confidence of the last `window` tokens as a reply streams (DeepConf online):
    `feed` each token; `low(threshold)` once a whole window is below it."""

    def __init__(self, window: int) -> None:
        _check_window(window)
        self.window = window
        self._last: deque[float] = deque(maxlen=window)
        self._sum = 0.0
        self.lowest: float | None = None  # the lowest whole-window mean so far

    def feed(self, token: Scored) -> float | None:
        """Add a token; the current group confidence once a window is full."""
        c = token_confidence(token)
        if len(self._last) == self.window:
            self._sum -= self._last[0]
        self._last.append(c)
        self._sum += c
        if len(self._last) < self.window:
            return None
        current = self._sum / self.window
        self.lowest = current if self.lowest is None else min(self.lowest, current)
        return current

    def low(self, threshold: float) -> bool:
        """Whether a whole window's confidence fell below `threshold`."""
        return self.lowest is not None and self.lowest < threshold


def _check_window(value: object, name: str = "window") -> None:
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ConfigurationError(f"{name}={value!r}: give a whole number of tokens, 1 or more "
                                 f"(DeepConf used {PAPER_WINDOW})")
