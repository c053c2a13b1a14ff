"""Deflated Sharpe Ratio and PBO (CSCV) against values worked out independently of our code.

- DSR: the numerical example of Bailey and Lopez de Prado (2014), and the paper's formula
  evaluated with scipy on a fixed small returns matrix.
- PBO: a 4-row, 2-set case worked out by hand, and the paper's algorithm written out plainly
  (itertools + scipy.stats.rankdata) on a fixed random matrix.
"""

from __future__ import annotations

import itertools
import math

import numpy as np
import pytest
from scipy import stats as sps

from hybrid_core.research.overfitting import (
    deflated_sharpe,
    deflated_sharpe_ratio,
    expected_max_sharpe,
    partitions_problem,
    probability_of_backtest_overfitting,
)


def test_dsr_reproduces_the_papers_numerical_example() -> None:
    # Bailey & Lopez de Prado 2014, section "A numerical example": an annualised SR of 2.5 over
    # 5 years of daily returns (T = 1250, 250 a year), N = 100 trials whose annualised Sharpe ratios
    # have a variance of 0.5, returns with skewness -3 and kurtosis 10: SR0 = 0.1132, DSR = 0.9004.
    sr, variance = 2.5 / math.sqrt(250), 0.5 / 250
    assert expected_max_sharpe(variance, 100) == pytest.approx(0.1132, abs=5e-5)
    assert deflated_sharpe_ratio(sr, variance, 100, 1250, -3.0, 10.0) == pytest.approx(0.9004, abs=5e-5)


def test_dsr_from_returns_matches_the_formula_with_scipy() -> None:
    rng = np.random.default_rng(2014)
    returns = rng.normal(0.0004, 0.01, size=(300, 6))
    returns[:, 2] += rng.standard_t(3, size=300) * 0.004 + 0.0015  # a fat-tailed, better set
    best = 2
    srs = returns.mean(axis=0) / returns.std(axis=0, ddof=1)
    n, t = 6, 300
    gamma = 0.5772156649015329
    sr0 = np.sqrt(srs.var(ddof=1)) * ((1 - gamma) * sps.norm.ppf(1 - 1 / n)
                                      + gamma * sps.norm.ppf(1 - 1 / (n * np.e)))
    skew = sps.skew(returns[:, best])
    kurt = sps.kurtosis(returns[:, best], fisher=False)
    expected = sps.norm.cdf((srs[best] - sr0) * np.sqrt(t - 1)
                            / np.sqrt(1 - skew * srs[best] + (kurt - 1) / 4 * srs[best] ** 2))

    ours = deflated_sharpe(returns, best)
    assert ours.dsr == pytest.approx(expected, rel=1e-9)
    assert ours.expected_max_sharpe == pytest.approx(sr0, rel=1e-9)
    assert (ours.skewness, ours.kurtosis) == (pytest.approx(skew, rel=1e-9), pytest.approx(kurt, rel=1e-9))
    assert (ours.trials, ours.observations) == (6, 300)
    assert 0.0 < ours.dsr < 1.0


def test_dsr_needs_two_trials() -> None:
    assert math.isnan(deflated_sharpe(np.random.default_rng(1).normal(size=(50, 1)), 0).dsr)


def test_pbo_of_a_case_worked_out_by_hand() -> None:
    # Returns in % of sets A and B over 4 dates, S = 4 partitions of one date each: each of the
    # C(4, 2) = 6 combinations trains on 2 dates and tests on the other 2. On 2 returns x, y the
    # Sharpe ratio is (x + y) / 2 / (|x - y| / sqrt 2):
    #   dates   A: 4,2,1,3            B: 3,1,5,2
    #   {0,1}   A 2.121  B 1.414      {2,3}  A 1.414  B 1.650
    #   {0,2}   A 1.179  B 2.828      {1,3}  A 3.536  B 2.121
    #   {0,3}   A 4.950  B 3.536      {1,2}  A 2.121  B 1.061
    # train {0,1}: A wins, tests {2,3} below B  -> overfit
    # train {0,2}: B wins, tests {1,3} below A  -> overfit
    # train {0,3}: A wins, tests {1,2} above B  -> not
    # train {1,2}: A wins, tests {0,3} above B  -> not
    # train {1,3}: A wins, tests {0,2} below B  -> overfit
    # train {2,3}: B wins, tests {0,1} below A  -> overfit
    # With N = 2 the winner's relative rank is 2/3 (logit ln 2) or 1/3 (logit -ln 2): PBO = 4/6.
    returns = np.array([[4.0, 3.0], [2.0, 1.0], [1.0, 5.0], [3.0, 2.0]]) / 100.0
    result = probability_of_backtest_overfitting(returns, partitions=4)
    assert result.combinations == 6 and result.rows_used == 4
    assert result.pbo == pytest.approx(4 / 6)
    ln2 = math.log(2.0)
    np.testing.assert_allclose(result.logits, [-ln2, -ln2, ln2, ln2, -ln2, -ln2])
    # a fifth, older date is left out (T mod S rows at the start): same answer
    older = np.vstack([[[50.0, -50.0]], returns])
    assert probability_of_backtest_overfitting(older, partitions=4).pbo == pytest.approx(4 / 6)


def _pbo_by_the_paper(returns: np.ndarray, partitions: int) -> float:
    """CSCV written out plainly from Bailey, Borwein, Lopez de Prado and Zhu (2017), section 2."""
    rows = returns.shape[0] // partitions * partitions
    blocks = np.array_split(returns[returns.shape[0] - rows:], partitions)
    overfit = 0
    combos = list(itertools.combinations(range(partitions), partitions // 2))
    for train_ids in combos:
        train = np.vstack([blocks[i] for i in train_ids])
        test = np.vstack([blocks[i] for i in range(partitions) if i not in train_ids])
        r_train = train.mean(axis=0) / train.std(axis=0, ddof=1)
        r_test = test.mean(axis=0) / test.std(axis=0, ddof=1)
        n_star = int(np.argmax(r_train))
        omega = sps.rankdata(r_test)[n_star] / (returns.shape[1] + 1)
        overfit += math.log(omega / (1 - omega)) <= 0
    return overfit / len(combos)


@pytest.mark.parametrize("partitions", [2, 6, 10])
def test_pbo_matches_the_papers_algorithm_written_out(partitions: int) -> None:
    rng = np.random.default_rng(17)
    returns = rng.normal(0.0002, 0.01, size=(403, 12))
    returns[:, 3] += 0.0006  # some sets are better than others
    returns[:200, 7] += 0.002  # and one was lucky early on
    ours = probability_of_backtest_overfitting(returns, partitions)
    assert ours.pbo == pytest.approx(_pbo_by_the_paper(returns, partitions), abs=1e-12)
    assert ours.combinations == math.comb(partitions, partitions // 2)


def test_pbo_separates_skill_from_noise() -> None:
    rng = np.random.default_rng(5)
    noise = rng.normal(0.0, 0.01, size=(1000, 40))
    assert 0.25 < probability_of_backtest_overfitting(noise, 10).pbo < 0.75
    skilled = noise.copy()
    skilled[:, 0] += 0.01  # one set with a real, persistent edge
    assert probability_of_backtest_overfitting(skilled, 10).pbo == 0.0


def test_pbo_refuses_sizes_it_cannot_handle() -> None:
    assert partitions_problem(100, 5, 7) == "pbo_partitions must be an even number >= 2, got 7"
    assert partitions_problem(100, 1, 8) == "PBO needs at least 2 sets with results, got 1"
    assert "needs at least 16 dates, got 10" in str(partitions_problem(10, 3, 16))
    assert partitions_problem(100, 5, 16) is None
    with pytest.raises(ValueError, match="at least 2 sets"):
        probability_of_backtest_overfitting(np.zeros((50, 1)), 4)
