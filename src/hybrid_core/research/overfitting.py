"""How likely the best set of a sweep is an artefact of the search.

Two statistics, both computed from the matrix of daily returns of every set tried
(rows: the sweep's dates, columns: the sets):

- **Deflated Sharpe Ratio** (Bailey and Lopez de Prado, "The Deflated Sharpe Ratio:
  Correcting for Selection Bias, Backtest Overfitting and Non-Normality", JPM 2014): the
  probability that the selected set's true Sharpe ratio is above the Sharpe ratio the best of
  N unskilled trials would show by luck, given the sample length and the selected returns'
  skewness and kurtosis::

      SR0 = sqrt(V[SR_n]) * ((1 - g) * Z^-1(1 - 1/N) + g * Z^-1(1 - 1/(N e)))
      DSR = Z((SR - SR0) * sqrt(T - 1) / sqrt(1 - skew * SR + (kurt - 1) / 4 * SR^2))

  with per-period (not annualised) Sharpe ratios, ``V[SR_n]`` their variance across the N
  sets (ddof=1), ``g`` the Euler-Mascheroni constant, ``skew`` the sample skewness and
  ``kurt`` the (non-excess) sample kurtosis of the selected set's returns, T its number of
  returns. Above 0.95 the selected set's Sharpe ratio is significant at 5%.

- **Probability of Backtest Overfitting** by combinatorially symmetric cross-validation
  (Bailey, Borwein, Lopez de Prado and Zhu, "The Probability of Backtest Overfitting", J.
  Computational Finance 2017): the rows are cut into S blocks of equal length (the oldest
  ``T mod S`` rows are left out); for each of the C(S, S/2) ways of choosing half the blocks as
  the in-sample part (the rest is out-of-sample), the set with the best in-sample Sharpe ratio
  is found and its out-of-sample rank among all sets taken, ``w = rank / (N + 1)`` (average
  ranks for ties), ``logit = ln(w / (1 - w))``. PBO is the share of combinations with
  ``logit <= 0``: the in-sample winner did not beat the out-of-sample median.

A set whose returns do not vary on a sample (no trades) has a Sharpe ratio of 0 there.
"""

from __future__ import annotations

import itertools
import math
from statistics import NormalDist

import attrs
import numpy as np

EULER_GAMMA = 0.5772156649015329
_NORMAL = NormalDist()
_COMBINATIONS_PER_CHUNK = 2048


def sharpe_ratios(returns: np.ndarray) -> np.ndarray:
    """Per-period Sharpe ratio (mean / std, ddof=1) of each column; 0 where the std is 0."""
    r = np.asarray(returns, dtype="float64")
    std = r.std(axis=0, ddof=1)
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(std > 0, r.mean(axis=0) / std, 0.0)


def expected_max_sharpe(sharpe_variance: float, trials: int) -> float:
    """Expected maximum of ``trials`` unskilled Sharpe ratios of variance ``sharpe_variance`` (SR0)."""
    if trials < 2:
        return math.nan
    return math.sqrt(sharpe_variance) * ((1.0 - EULER_GAMMA) * _NORMAL.inv_cdf(1.0 - 1.0 / trials)
                                         + EULER_GAMMA * _NORMAL.inv_cdf(1.0 - 1.0 / (trials * math.e)))


def deflated_sharpe_ratio(sharpe: float, sharpe_variance: float, trials: int, observations: int,
                          skewness: float, kurtosis: float) -> float:
    """The DSR of a per-period Sharpe ratio ``sharpe`` selected among ``trials`` (see the module docstring)."""
    sr0 = expected_max_sharpe(sharpe_variance, trials)
    spread = 1.0 - skewness * sharpe + (kurtosis - 1.0) / 4.0 * sharpe * sharpe
    if not math.isfinite(sr0) or observations < 2 or not spread > 0:
        return math.nan
    return _NORMAL.cdf((sharpe - sr0) * math.sqrt(observations - 1) / math.sqrt(spread))


@attrs.frozen
class DeflatedSharpe:
    """The Deflated Sharpe Ratio of a sweep's selected set and what it was computed from."""

    dsr: float
    """Probability that the selected set's true Sharpe ratio beats the best of ``trials`` lucky ones."""
    sharpe: float
    """The selected set's per-period Sharpe ratio."""
    expected_max_sharpe: float
    """SR0: the per-period Sharpe ratio the best of ``trials`` unskilled sets would show."""
    sharpe_variance: float
    trials: int
    observations: int
    skewness: float
    kurtosis: float


def deflated_sharpe(returns: np.ndarray, selected: int) -> DeflatedSharpe:
    """DSR of column ``selected`` of a (dates x sets) returns matrix, every column counted as a trial."""
    r = np.asarray(returns, dtype="float64")
    ratios = sharpe_ratios(r)
    trials, observations = r.shape[1], r.shape[0]
    variance = float(ratios.var(ddof=1)) if trials > 1 else math.nan
    chosen = r[:, selected]
    centred = chosen - chosen.mean()
    m2 = float(np.mean(centred ** 2))
    skewness = float(np.mean(centred ** 3)) / m2 ** 1.5 if m2 > 0 else math.nan
    kurtosis = float(np.mean(centred ** 4)) / m2 ** 2 if m2 > 0 else math.nan
    sharpe = float(ratios[selected])
    return DeflatedSharpe(dsr=deflated_sharpe_ratio(sharpe, variance, trials, observations, skewness, kurtosis),
                          sharpe=sharpe, expected_max_sharpe=expected_max_sharpe(variance, trials),
                          sharpe_variance=variance, trials=trials, observations=observations,
                          skewness=skewness, kurtosis=kurtosis)


@attrs.frozen
class BacktestOverfitting:
    """The Probability of Backtest Overfitting of a sweep, by CSCV."""

    pbo: float
    partitions: int
    combinations: int
    rows_used: int
    """Rows of the returns matrix in the S blocks (the oldest ``T mod S`` are left out)."""
    logits: list[float] = attrs.field(eq=False, repr=False)
    """One logit of the in-sample winner's out-of-sample relative rank per combination."""


def partitions_problem(rows: int, sets: int, partitions: int) -> str | None:
    """Why CSCV cannot run with these sizes, or None when it can."""
    if partitions < 2 or partitions % 2:
        return f"pbo_partitions must be an even number >= 2, got {partitions}"
    if sets < 2:
        return f"PBO needs at least 2 sets with results, got {sets}"
    if rows // partitions * (partitions // 2) < 2:
        return (f"PBO with {partitions} partitions needs at least {max(partitions, 4)} dates, got {rows}; "
                f"use fewer pbo_partitions or a longer window")
    return None


def probability_of_backtest_overfitting(returns: np.ndarray, partitions: int = 16) -> BacktestOverfitting:
    """PBO of a (dates x sets) returns matrix by CSCV with ``partitions`` blocks (see the module docstring).

    Raises ValueError (with :func:`partitions_problem`'s sentence) when the sizes do not allow it.
    """
    r = np.asarray(returns, dtype="float64")
    rows, sets = r.shape
    problem = partitions_problem(rows, sets, partitions)
    if problem:
        raise ValueError(problem)
    block = rows // partitions
    used = r[rows - block * partitions:].reshape(partitions, block, sets)
    sums, squares = used.sum(axis=1), (used * used).sum(axis=1)  # (partitions, sets)
    half = partitions // 2
    count = half * block
    logits: list[np.ndarray] = []
    combos = itertools.combinations(range(partitions), half)
    while True:
        chunk = list(itertools.islice(combos, _COMBINATIONS_PER_CHUNK))
        if not chunk:
            break
        inside = np.zeros((len(chunk), partitions))
        inside[np.arange(len(chunk))[:, None], np.array(chunk)] = 1.0
        train = _block_sharpe(inside @ sums, inside @ squares, count)
        test = _block_sharpe((1.0 - inside) @ sums, (1.0 - inside) @ squares, count)
        best = np.argmax(np.where(np.isnan(train), -np.inf, train), axis=1)
        chosen = test[np.arange(len(chunk)), best][:, None]
        rank = (test < chosen).sum(axis=1) + ((test == chosen).sum(axis=1) + 1) / 2.0
        omega = rank / (sets + 1.0)
        logits.append(np.log(omega / (1.0 - omega)))
    logit = np.concatenate(logits)
    return BacktestOverfitting(pbo=float(np.mean(logit <= 0.0)), partitions=partitions, combinations=len(logit),
                               rows_used=block * partitions, logits=logit.tolist())


def _block_sharpe(sums: np.ndarray, squares: np.ndarray, count: int) -> np.ndarray:
    """Sharpe ratios (ddof=1) from sums and sums of squares over ``count`` rows; 0 without variation."""
    mean = sums / count
    variance = (squares - count * mean * mean) / (count - 1)
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(variance > 1e-300, mean / np.sqrt(np.maximum(variance, 0.0)), 0.0)
