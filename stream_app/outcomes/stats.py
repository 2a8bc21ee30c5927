"""The statistics of ``evaluate`` and ``learn``, pure and in plain Python (no numpy).

- ``roc_auc``: the probability that a random positive scores above a random
  negative (ties count half), the Mann-Whitney statistic.
- ``average_precision``: the PR AUC as scikit-learn computes it (precision at
  each positive's threshold, weighted by the recall it adds).
- ``delong``: the AUCs of several scores on the same leads with their
  covariance (DeLong, DeLong and Clarke-Pearson 1988), so a difference of two
  AUCs gets an honest interval: the leads are the same, the errors correlated.
- ``wilson``: an interval for a rate (better than the normal one near 0 or 1).
- ``score_bins``: decile edges that never split a score between two bins.
- ``logistic_1d``: a two-parameter logistic fit by Newton's method: how a score
  maps to a probability (the calibration table's "expected").
"""

from __future__ import annotations

import bisect
import math
from collections.abc import Sequence
from dataclasses import dataclass

Z95 = 1.959963984540054


def roc_auc(scores: Sequence[float], labels: Sequence[bool]) -> float | None:
    """ROC AUC, or None without both classes."""
    found = delong([scores], labels)
    return None if found is None else found.aucs[0]


def average_precision(scores: Sequence[float], labels: Sequence[bool]) -> float | None:
    """PR AUC as average precision (ties share one threshold), or None without positives."""
    positives = sum(labels)
    if not positives:
        return None
    pairs = sorted(zip(scores, labels, strict=True), key=lambda p: -p[0])
    ap = 0.0
    seen = hits = 0
    i = 0
    while i < len(pairs):
        j = i
        while j < len(pairs) and pairs[j][0] == pairs[i][0]:
            j += 1
        block = [label for _, label in pairs[i:j]]
        seen += len(block)
        new_hits = sum(block)
        hits += new_hits
        if new_hits:
            ap += (hits / seen) * (new_hits / positives)
        i = j
    return ap


@dataclass(frozen=True)
class DeLong:
    aucs: tuple[float, ...]
    covariance: tuple[tuple[float, ...], ...]

    def interval(self, k: int = 0) -> tuple[float, float]:
        """95 % interval of the k-th AUC, clipped to [0, 1]."""
        half = Z95 * math.sqrt(max(self.covariance[k][k], 0.0))
        return max(0.0, self.aucs[k] - half), min(1.0, self.aucs[k] + half)

    def difference(self, a: int = 1, b: int = 0) -> tuple[float, float, float]:
        """AUC[a] - AUC[b] with its 95 % interval (the same leads: paired)."""
        diff = self.aucs[a] - self.aucs[b]
        c = self.covariance
        var = c[a][a] + c[b][b] - 2 * c[a][b]
        half = Z95 * math.sqrt(max(var, 0.0))
        return diff, diff - half, diff + half


def _placements(pos: list[float], neg: list[float]) -> tuple[list[float], list[float]]:
    neg_sorted, pos_sorted = sorted(neg), sorted(pos)
    v10 = []
    for x in pos:
        below = bisect.bisect_left(neg_sorted, x)
        ties = bisect.bisect_right(neg_sorted, x) - below
        v10.append((below + 0.5 * ties) / len(neg))
    v01 = []
    for y in neg:
        above = len(pos) - bisect.bisect_right(pos_sorted, y)
        ties = bisect.bisect_right(pos_sorted, y) - bisect.bisect_left(pos_sorted, y)
        v01.append((above + 0.5 * ties) / len(pos))
    return v10, v01


def _cov(a: list[float], b: list[float]) -> float:
    n = len(a)
    if n < 2:
        return 0.0
    ma, mb = sum(a) / n, sum(b) / n
    return sum((x - ma) * (y - mb) for x, y in zip(a, b, strict=True)) / (n - 1)


def delong(scores: Sequence[Sequence[float]], labels: Sequence[bool]) -> DeLong | None:
    """AUCs of each score in ``scores`` (each as long as ``labels``) and their covariance."""
    if not any(labels) or all(labels):
        return None
    comps = []
    for column in scores:
        pos = [s for s, y in zip(column, labels, strict=True) if y]
        neg = [s for s, y in zip(column, labels, strict=True) if not y]
        comps.append(_placements(pos, neg))
    m = len(comps[0][0])
    n = len(comps[0][1])
    aucs = tuple(sum(v10) / m for v10, _ in comps)
    cov = tuple(
        tuple(_cov(ca[0], cb[0]) / m + _cov(ca[1], cb[1]) / n for cb in comps) for ca in comps
    )
    return DeLong(aucs, cov)


def wilson(k: int, n: int, z: float = Z95) -> tuple[float, float]:
    """Wilson's 95 % interval of the rate k / n ((0, 1) with n = 0)."""
    if n == 0:
        return 0.0, 1.0
    p = k / n
    denominator = 1 + z * z / n
    centre = (p + z * z / (2 * n)) / denominator
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / denominator
    return max(0.0, centre - half), min(1.0, centre + half)


def score_bins(scores: Sequence[float], bins: int = 10) -> list[float]:
    """Lower edges of up to ``bins`` equal-count bins; equal scores share a bin."""
    ordered = sorted(scores)
    if not ordered:
        return []
    edges: list[float] = []
    for k in range(bins):
        edge = ordered[(k * len(ordered)) // bins]
        if not edges or edge > edges[-1]:
            edges.append(edge)
    return edges


def bin_of(score: float, edges: Sequence[float]) -> int:
    """Index of the bin (``score_bins``' edges) a score falls in."""
    return max(0, bisect.bisect_right(edges, score) - 1)


def logistic_1d(x: Sequence[float], y: Sequence[bool], steps: int = 50) -> tuple[float, float]:
    """(a, b) of P(y) = 1 / (1 + exp(-(a + b x))) by Newton's method (x is standardised
    inside, so scores in the hundreds converge as well as probabilities)."""
    n = len(x)
    mean = sum(x) / n
    sd = math.sqrt(sum((v - mean) ** 2 for v in x) / n) or 1.0
    z = [(v - mean) / sd for v in x]
    rate = min(max(sum(y) / n, 1e-6), 1 - 1e-6)
    a, b = math.log(rate / (1 - rate)), 0.0
    for _ in range(steps):
        ga = gb = haa = hab = hbb = 0.0
        for zi, yi in zip(z, y, strict=True):
            p = 1 / (1 + math.exp(-max(-30.0, min(30.0, a + b * zi))))
            w = p * (1 - p)
            ga += yi - p
            gb += (yi - p) * zi
            haa += w
            hab += w * zi
            hbb += w * zi * zi
        det = haa * hbb - hab * hab
        if det <= 1e-12:
            break
        da = (hbb * ga - hab * gb) / det
        db = (haa * gb - hab * ga) / det
        a, b = a + da, b + db
        if abs(da) + abs(db) < 1e-10:
            break
    return a - b * mean / sd, b / sd


def sigmoid(v: float) -> float:
    return 1 / (1 + math.exp(-max(-30.0, min(30.0, v))))


def roc_points(
    scores: Sequence[float], labels: Sequence[bool], most: int = 60
) -> list[tuple[float, float]]:
    """(false positive rate, true positive rate) from the highest threshold down, at most
    about ``most`` points (for a chart), starting at (0, 0) and ending at (1, 1)."""
    positives = sum(labels)
    negatives = len(labels) - positives
    if not positives or not negatives:
        return []
    pairs = sorted(zip(scores, labels, strict=True), key=lambda p: -p[0])
    points = [(0.0, 0.0)]
    tp = fp = 0
    i = 0
    while i < len(pairs):
        j = i
        while j < len(pairs) and pairs[j][0] == pairs[i][0]:
            tp += pairs[j][1]
            fp += not pairs[j][1]
            j += 1
        points.append((fp / negatives, tp / positives))
        i = j
    step = max(1, len(points) // most)
    return [*points[::step], (1.0, 1.0)] if points[-1] != (1.0, 1.0) or step > 1 else points
