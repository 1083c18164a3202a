"""Numbers a careful experimenter can trust: intervals, majority votes and paired differences.

Every function takes the graded outcomes of a comparison as one array per prompt (1.0 right,
0.0 wrong, one entry per sample), because the prompts, not the samples, are what a result has
to generalise over: four samples of five prompts are not twenty independent answers.

- `pass1_interval`: a 95% interval for pass@1 by a nested bootstrap (prompts resampled, then
  the samples within each resampled prompt), percentile method. When every graded answer
  agrees (all right or all wrong) the bootstrap has no spread to resample and would claim
  certainty; the Wilson score interval over the prompts is used instead (0 of 5 prompts gives
  [0, 0.43], not [0, 0]).
- `majority` and `cons_at_k`: DeepSeek's cons@k, the answer most of the k samples agree on.
- `pass_at_k` and `maj_at_k`: the curves over k = 1 … n from n samples per prompt (Chen et
  al.'s unbiased pass@k; the majority of k samples drawn without replacement), with
  `pass_at_k_interval` (nested bootstrap) and `mean_interval` (prompts resampled).
- `median_interval`: the distribution-free (sign-test) interval for a median, e.g. of the
  thinking tokens of right answers (`ds.compare.anatomy`).
- `paired`: two models (or two budgets) on the prompts both answered: the difference in
  pass@1, a paired nested-bootstrap interval for it, and an exact sign-flip test over the
  prompts (Monte Carlo above 16 prompts). It calls a difference distinguishable from noise only
  when the interval excludes 0 and the test agrees (p < 0.05): with three prompts the bootstrap
  alone would call 3 of 3 prompts won "certain".

Resampling is seeded, so the same rows always give the same intervals.
"""

from __future__ import annotations

import itertools
import math
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from statistics import NormalDist
from typing import Any

import numpy as np

from .prose import prose

LEVEL = 0.95
N_BOOT = 2000
#: Prompts up to which the sign-flip test enumerates every assignment (2**16 of them).
EXACT_UP_TO = 16


def pass1(groups: Sequence[np.ndarray]) -> float:
    """DeepSeek's pass@1: the mean over prompts of the mean correctness over samples."""
    if not groups:
        return math.nan
    return float(np.mean([g.mean() for g in groups]))


def wilson(successes: float, n: int, level: float = LEVEL) -> tuple[float, float]:
    """The Wilson score interval for `successes` out of `n` (fractions of a success allowed)."""
    if n <= 0:
        return math.nan, math.nan
    z = NormalDist().inv_cdf(0.5 + level / 2)
    p = successes / n
    centre = (p + z * z / (2 * n)) / (1 + z * z / n)
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / (1 + z * z / n)
    low = 0.0 if successes <= 0 else max(0.0, centre - half)  # exact at the ends, no 1e-17
    high = 1.0 if successes >= n else min(1.0, centre + half)
    return low, high


def _padded(groups: Sequence[np.ndarray]) -> tuple[np.ndarray, np.ndarray]:
    """The groups as one zero-padded matrix (prompts × samples) and each one's length."""
    counts = np.array([len(g) for g in groups])
    matrix = np.zeros((len(groups), int(counts.max())))
    for i, g in enumerate(groups):
        matrix[i, : len(g)] = g
    return matrix, counts


def _resampled_means(matrix: np.ndarray, counts: np.ndarray, prompts: np.ndarray,
                     rng: np.random.Generator) -> np.ndarray:
    """pass@1 of each bootstrap replicate: `prompts` (replicates × prompts) picks the prompts,
    then each picked prompt's samples are drawn again with replacement."""
    k = counts[prompts]  # samples of each picked prompt
    draw = np.floor(rng.random((*prompts.shape, matrix.shape[1])) * k[..., None]).astype(int)
    values = matrix[prompts[..., None], draw]
    used = np.arange(matrix.shape[1]) < k[..., None]
    return ((values * used).sum(-1) / k).mean(-1)


def _batches(n_boot: int, cells: int) -> list[int]:
    """Replicates per batch, so one batch holds at most about two million values."""
    size = max(1, 2_000_000 // max(cells, 1))
    return [min(size, n_boot - i) for i in range(0, n_boot, size)]


def bootstrap_pass1(groups: Sequence[np.ndarray], n_boot: int = N_BOOT,
                    seed: int = 0) -> np.ndarray:
    """pass@1 of `n_boot` nested bootstrap replicates (prompts, then samples within them)."""
    matrix, counts = _padded(groups)
    rng = np.random.default_rng(seed)
    out = [_resampled_means(matrix, counts, rng.integers(0, len(groups), (b, len(groups))), rng)
           for b in _batches(n_boot, matrix.size)]
    return np.concatenate(out)


def pass1_interval(groups: Sequence[np.ndarray], level: float = LEVEL, n_boot: int = N_BOOT,
                   seed: int = 0) -> tuple[float, float]:
    """A `level` interval for pass@1 (see the module's docstring for the method)."""
    if not groups:
        return math.nan, math.nan
    values = np.concatenate(groups)
    if values.min() == values.max():  # no spread: the bootstrap would say [p, p]
        return wilson(float(sum(g.mean() for g in groups)), len(groups), level)
    reps = bootstrap_pass1(groups, n_boot, seed)
    tail = (1 - level) / 2
    return float(np.quantile(reps, tail)), float(np.quantile(reps, 1 - tail))


def majority(answers: Sequence[str | None]) -> str | None:
    """The answer most samples give (ties: the one given first); None when none gave one."""
    given = [a for a in answers if a is not None]
    if not given:
        return None
    counts = Counter(given)
    top = max(counts.values())
    return next(a for a in given if counts[a] == top)


def sign_flip_p(differences: np.ndarray, n_random: int = 20_000, seed: int = 0) -> float:
    """Two-sided p-value of the paired sign-flip test on per-prompt differences."""
    n = len(differences)
    if n == 0:
        return math.nan
    observed = abs(differences.sum())
    if n <= EXACT_UP_TO:
        signs = ((np.arange(2**n)[:, None] >> np.arange(n)) & 1) * 2 - 1
        return float(np.mean(np.abs(signs @ differences) >= observed - 1e-12))
    rng = np.random.default_rng(seed)
    signs = rng.choice([-1.0, 1.0], size=(n_random, n))
    hits = int(np.sum(np.abs(signs @ differences) >= observed - 1e-12))
    return (1 + hits) / (1 + n_random)


@dataclass(frozen=True)
class Paired:
    """Two rows of a comparison on the prompts both answered: is the difference real?"""

    a: str
    b: str
    prompts: int
    pass1_a: float
    pass1_b: float
    difference: float  # pass@1 of a minus pass@1 of b
    low: float
    high: float
    p_value: float
    level: float = LEVEL
    #: What is compared: pass@1, or a vote's accuracy (`evals/voting.py`).
    metric: str = "pass@1"

    @property
    def distinguishable(self) -> bool:
        """Whether the difference is distinguishable from noise at this sample size."""
        excludes_zero = self.low > 0 or self.high < 0
        return bool(excludes_zero and self.p_value < 1 - self.level)

    def sentence(self) -> str:
        """The result in one plain sentence, made from the numbers."""
        if self.prompts == 0:
            return f"{self.a} and {self.b} share no graded prompt: nothing to compare."
        head = (f"{self.a} vs {self.b} on {self.prompts} shared prompts: {self.metric} "
                f"{self.pass1_a:.2f} vs {self.pass1_b:.2f}, a difference of "
                f"{self.difference:+.2f} ({self.level:.0%} interval {self.low:+.2f} to "
                f"{self.high:+.2f}; sign-flip test p = {self.p_value:.2f})")
        if self.distinguishable:
            return f"{head}: distinguishable from noise at this sample size."
        return (f"{head}: not distinguishable from noise at this sample size (more prompts, "
                "not more samples of the same ones, narrow it most).")

    def __str__(self) -> str:
        return prose(self.sentence())


def paired(a: str, b: str, groups_a: Sequence[np.ndarray], groups_b: Sequence[np.ndarray],
           level: float = LEVEL, n_boot: int = N_BOOT, seed: int = 0) -> Paired:
    """Compare outcomes of `a` and `b` prompt by prompt (the i-th groups are the same prompt)."""
    n = len(groups_a)
    if n == 0:
        return Paired(a, b, 0, math.nan, math.nan, math.nan, math.nan, math.nan, math.nan,
                      level)
    pa, pb = pass1(groups_a), pass1(groups_b)
    diffs = np.array([ga.mean() - gb.mean() for ga, gb in zip(groups_a, groups_b,
                                                                strict=True)])
    ma, ca = _padded(groups_a)
    mb, cb = _padded(groups_b)
    rng = np.random.default_rng(seed)
    reps = []
    for size in _batches(n_boot, ma.size + mb.size):
        picked = rng.integers(0, n, (size, n))  # the same prompts for both: a paired design
        reps.append(_resampled_means(ma, ca, picked, rng) - _resampled_means(mb, cb, picked,
                                                                             rng))
    values = np.concatenate(reps)
    tail = (1 - level) / 2
    return Paired(a, b, n, pa, pb, pa - pb, float(np.quantile(values, tail)),
                  float(np.quantile(values, 1 - tail)), sign_flip_p(diffs, seed=seed), level)


def pass_at_k(n: int, c: int, k: int) -> float:
    """The unbiased estimator of pass@k from `n` samples of which `c` are right (Chen et al.,
    2021, "Evaluating Large Language Models Trained on Code"): 1 − C(n−c, k) / C(n, k), the
    chance that k samples drawn without replacement hold a right one; computed as a product,
    as the paper does, so large n never makes huge binomials."""
    if not 1 <= k <= n:
        raise ValueError(f"k must be between 1 and the {n} samples, not {k}")
    if n - c < k:
        return 1.0
    return 1.0 - float(np.prod(1.0 - k / np.arange(n - c + 1, n + 1)))


def _pass_at_k_many(n: np.ndarray, c: np.ndarray, k: int) -> np.ndarray:
    """`pass_at_k` for arrays of (n, c) pairs (all n ≥ k)."""
    i = np.arange(k)  # C(n−c, k)/C(n, k) = Π_{i<k} (n−c−i)/(n−i)
    ratio = np.clip((n[..., None] - c[..., None] - i), 0, None) / (n[..., None] - i)
    return 1.0 - ratio.prod(-1)


def pass_at_k_interval(groups: Sequence[np.ndarray], k: int, level: float = LEVEL,
                       n_boot: int = N_BOOT, seed: int = 0) -> tuple[float, float]:
    """A `level` interval for mean pass@k over the prompts' outcome arrays `groups` (each of at
    least k samples): the nested bootstrap of `pass1_interval` (prompts, then each prompt's
    samples, whose right count is then binomial); Wilson's interval when every answer agrees.
    For k = 1 it is `pass1_interval` itself, the interval the summary gives pass@1."""
    if not groups:
        return math.nan, math.nan
    if k == 1:
        return pass1_interval(groups, level, n_boot, seed)
    n = np.array([len(g) for g in groups])
    c = np.array([int(g.sum()) for g in groups])
    if not c.any() or (c == n).all():
        return wilson(float((c == n).sum()), len(n), level)
    rng = np.random.default_rng(seed)
    picked = rng.integers(0, len(n), (n_boot, len(n)))
    right = rng.binomial(n[picked], c[picked] / n[picked])
    reps = _pass_at_k_many(n[picked], right, k).mean(-1)
    tail = (1 - level) / 2
    return float(np.quantile(reps, tail)), float(np.quantile(reps, 1 - tail))


#: Subsets of k samples enumerated exactly up to this many, drawn at random beyond.
SUBSETS = 2000


def maj_at_k(finals: Sequence[str | None], right: Sequence[bool], k: int,
             seed: int = 0) -> float:
    """maj@k for one prompt from its n samples: the chance that the majority answer of k
    samples drawn without replacement is right (`finals`: each sample's final answer, None for
    none; `right`: its verdict). Ties go to the answer given first, as `majority` and cons@k
    do, so maj@n is cons@k. Exact over every k-subset up to `SUBSETS` of them, else the mean
    of `SUBSETS` random ones (seeded)."""
    n = len(finals)
    if not 1 <= k <= n:
        raise ValueError(f"k must be between 1 and the {n} samples, not {k}")
    verdict = {f: bool(r) for f, r in zip(finals, right, strict=True) if f is not None}
    if math.comb(n, k) <= SUBSETS:
        subsets: Any = itertools.combinations(range(n), k)
    else:
        rng = np.random.default_rng(seed)
        subsets = (np.sort(rng.choice(n, k, replace=False)) for _ in range(SUBSETS))
    wins = [verdict.get(majority([finals[i] for i in s]), False)  # type: ignore[arg-type]
            for s in subsets]
    return float(np.mean(wins))


def mean_interval(values: np.ndarray, level: float = LEVEL, n_boot: int = N_BOOT,
                  seed: int = 0) -> tuple[float, float]:
    """A `level` percentile-bootstrap interval for the mean of per-prompt `values` in [0, 1]
    (prompts resampled); Wilson's interval when they are all 0 or all 1."""
    if len(values) == 0:
        return math.nan, math.nan
    if np.isin(values, (0.0, 1.0)).all() and values.min() == values.max():
        return wilson(float(values.sum()), len(values), level)
    rng = np.random.default_rng(seed)
    reps = values[rng.integers(0, len(values), (n_boot, len(values)))].mean(-1)
    tail = (1 - level) / 2
    return float(np.quantile(reps, tail)), float(np.quantile(reps, 1 - tail))


#: Values up to which `median_interval` sums binomial terms exactly (a normal approximation of
#: the ranks beyond).
EXACT_RANKS_UP_TO = 1000


def median_interval(values: Sequence[float], level: float = LEVEL) -> tuple[float, float]:
    """A distribution-free `level` interval for the median: the order statistics x(r) and
    x(n+1−r) with the largest r whose coverage, 1 − 2·P(B ≤ r−1) for B ~ Binomial(n, ½), is at
    least `level` (the sign-test interval; it needs no shape of the distribution and covers at
    least `level` for any continuous one). NaN when no such pair exists: fewer than 6 values
    cannot give a 95% interval this way."""
    data = np.sort(np.asarray([v for v in values if v == v], dtype=float))  # NaN left out
    n = len(data)
    if n == 0:
        return math.nan, math.nan
    tail = (1 - level) / 2
    if n <= EXACT_RANKS_UP_TO:
        cdf, r = 0.0, 0
        while True:  # the rank r below which at most `tail` of the mass lies
            cdf += math.comb(n, r) / 2**n
            if cdf > tail:
                break
            r += 1
    else:
        z = NormalDist().inv_cdf(tail)
        r = max(0, math.floor(n / 2 + z * math.sqrt(n) / 2 - 0.5))
    if r < 1:
        return math.nan, math.nan
    return float(data[r - 1]), float(data[n - r])
