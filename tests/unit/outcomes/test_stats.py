"""The statistics of evaluate and learn against literal answers and scikit-learn's own."""

from __future__ import annotations

import random

import pytest
from sklearn.metrics import average_precision_score, roc_auc_score

from stream_app.outcomes.stats import (
    average_precision,
    bin_of,
    delong,
    logistic_1d,
    roc_auc,
    score_bins,
    sigmoid,
    wilson,
)


def test_roc_auc_of_literal_rankings() -> None:
    assert roc_auc([3, 2, 1, 0], [True, True, False, False]) == 1.0
    assert roc_auc([0, 1, 2, 3], [True, True, False, False]) == 0.0
    assert roc_auc([1, 1, 1, 1], [True, False, True, False]) == 0.5  # ties count half
    assert roc_auc([1, 2], [True, True]) is None  # one class: no AUC


@pytest.mark.parametrize("seed", range(5))
def test_roc_and_pr_auc_equal_scikit_learns(seed: int) -> None:
    rng = random.Random(seed)
    labels = [rng.random() < 0.3 for _ in range(400)]
    scores = [round(rng.gauss(1.0 if y else 0.0, 1.0), 1) for y in labels]  # ties included
    assert roc_auc(scores, labels) == pytest.approx(roc_auc_score(labels, scores))
    assert average_precision(scores, labels) == pytest.approx(
        average_precision_score(labels, scores)
    )


def test_delong_interval_covers_the_auc_and_narrows_with_more_leads() -> None:
    rng = random.Random(3)

    def sample(n: int) -> tuple[list[float], list[float], list[bool]]:
        labels = [rng.random() < 0.4 for _ in range(n)]
        strong = [rng.gauss(1.0 if y else 0.0, 1.0) for y in labels]
        weak = [s + rng.gauss(0, 2.0) for s in strong]
        return strong, weak, labels

    small, large = delong(sample(200)[:2], sample(200)[2]), None
    strong, weak, labels = sample(4000)
    large = delong([weak, strong], labels)
    assert small is not None and large is not None
    lo, hi = large.interval(1)
    assert lo < large.aucs[1] < hi
    assert hi - lo < small.interval(0)[1] - small.interval(0)[0]
    diff, dlo, dhi = large.difference(1, 0)  # the strong score beats its noisy copy
    assert diff > 0 and dlo > 0 and dhi > dlo


def test_delong_difference_of_a_score_with_itself_is_zero() -> None:
    labels = [True, False, True, False, False, True]
    scores = [0.9, 0.1, 0.4, 0.5, 0.2, 0.8]
    found = delong([scores, scores], labels)
    assert found is not None
    assert found.difference(1, 0) == pytest.approx((0.0, 0.0, 0.0))


def test_wilson_interval_literals() -> None:
    lo, hi = wilson(5, 10)
    assert (round(lo, 4), round(hi, 4)) == (0.2366, 0.7634)
    assert wilson(0, 0) == (0.0, 1.0)
    assert wilson(0, 50)[0] == pytest.approx(0.0) and wilson(50, 50)[1] == pytest.approx(1.0)


def test_score_bins_never_split_a_score() -> None:
    scores = [60.0] * 30 + [float(v) for v in range(61, 131)]
    edges = score_bins(scores)
    assert edges[0] == 60.0 and edges == sorted(set(edges))
    assert {bin_of(60.0, edges)} == {0}
    assert bin_of(130.0, edges) == len(edges) - 1


def test_logistic_1d_recovers_a_known_slope() -> None:
    rng = random.Random(1)
    x = [rng.uniform(0, 200) for _ in range(5000)]
    y = [rng.random() < sigmoid(-4 + 0.04 * v) for v in x]
    a, b = logistic_1d(x, y)
    assert a == pytest.approx(-4, abs=0.4)
    assert b == pytest.approx(0.04, abs=0.005)
