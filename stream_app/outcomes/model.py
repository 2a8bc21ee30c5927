"""``learn``'s model: a regularised logistic regression over what each rule gave at the hand-off.

One row per judged lead (``evaluation.judge``), at the moment it reached
sales under the current file: for each engagement rule and signal, its
decayed, capped share of the score divided by its points (an effective count
of events), and for each fit rule 1 if it matched. The coefficients are
log-odds per event (or per fit match); times ``scale`` points per log-odd
they are the proposed points, and the proposal's score of a lead at that
moment is exactly the sum the worker would compute with the new file, as
long as the half-life and the caps in events stay (``proposal`` scales each
cap with its rule's points).

The split is by time: the oldest leads train, the newest ``test_share`` are
held out, and every claim is measured there (``Heldout``), on the points as
written (rounded, and kept non-zero where the file requires it). The
regularisation strength is chosen by time-ordered cross-validation on the
training leads only. Coefficient intervals are Wald intervals from the
penalised fit's Hessian: approximate, and narrower than the truth when
rules fire together.

A rule the training leads give no information about keeps its points and is
named: one that had points for fewer than ``min_fired`` of them, or for all
but that many (a constant says nothing a logistic model can use).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

from stream_app.errors import InputError
from stream_app.outcomes.evaluation import Judged
from stream_app.outcomes.stats import Z95, DeLong, delong
from stream_app.scoring.rules import Rules

INSTALL_HINT = (
    "learn needs scikit-learn and numpy: pip install 'leadstream[learn]' "
    "(in a checkout: pip install -e '.[learn]'); evaluate and compare need neither"
)


@dataclass(frozen=True)
class Feature:
    rule_id: str
    kind: str  # engagement, signal or fit
    points: float  # in the current file


@dataclass
class Fitted:
    features: list[Feature]  # the rules in the model
    kept: dict[str, tuple[str, int]]  # rule id -> why it keeps its points, training leads it had
    coef: dict[str, float]  # log-odds per unit
    interval: dict[str, tuple[float, float]]
    C: float
    scale: float  # points per log-odd
    train: list[Judged]
    test: list[Judged]
    points: dict[str, float] = field(default_factory=dict)  # every rule's proposed points


@dataclass(frozen=True)
class Heldout:
    leads: int
    positive: int
    auc_current: float
    auc_current_ci: tuple[float, float]
    auc_proposed: float
    auc_proposed_ci: tuple[float, float]
    difference: tuple[float, float, float]  # proposed - current, 95 % interval

    @property
    def signal(self) -> bool:
        """Whether the proposal ranks the held-out leads better than chance (its interval)."""
        return self.auc_proposed_ci[0] > 0.5

    @property
    def better(self) -> bool:
        """Whether it ranks them better than the current file (the paired interval)."""
        return self.signal and self.difference[1] > 0


def features_of(rules: Rules) -> list[Feature]:
    spec = rules.spec
    out = [Feature(r.id, "engagement", r.points) for r in spec.engagement.rules]
    out += [Feature(s.id, "signal", s.points) for s in spec.signals]
    out += [Feature(r.id, "fit", r.points) for r in spec.fit.rules]
    return out


def unit(judged: Judged, feature: Feature) -> float:
    """The feature's value for a lead: events counted (decayed, capped), or 1 for a fit match."""
    h = judged.handoff
    if feature.kind == "fit":
        return 1.0 if feature.rule_id in h.fit_parts else 0.0
    share = h.parts.get(feature.rule_id, 0.0)
    return share / feature.points if feature.points else 0.0


def split(
    judged: list[Judged], test_share: float, min_positive: int
) -> tuple[list[Judged], list[Judged]]:
    """Oldest leads to train on, newest to test on (``judged`` is in hand-off order)."""
    cut = round(len(judged) * (1 - test_share))
    train, test = judged[:cut], judged[cut:]
    for name, part in (("training", train), ("held-out", test)):
        positives = sum(j.positive for j in part)
        if positives < min_positive or len(part) - positives < min_positive:
            raise InputError(
                f"the {name} period has {positives} positive and {len(part) - positives} "
                f"negative leads; learn needs {min_positive} of each in both periods "
                "(more history, or another --test-share)"
            )
    return train, test


def _imports() -> tuple[Any, Any, Any]:
    try:
        import numpy as np  # noqa: PLC0415
        from sklearn.linear_model import LogisticRegressionCV  # noqa: PLC0415
        from sklearn.model_selection import TimeSeriesSplit  # noqa: PLC0415
    except ImportError:
        raise InputError(INSTALL_HINT) from None
    return np, LogisticRegressionCV, TimeSeriesSplit


def fit(
    rules: Rules, judged: list[Judged], *, test_share: float = 0.3, min_fired: int = 20
) -> Fitted:
    """Fit on the older leads; the newer ones are left for ``heldout``."""
    np, LogisticRegressionCV, TimeSeriesSplit = _imports()
    train, test = split(judged, test_share, min_positive=max(10, min_fired // 2))
    kept: dict[str, tuple[str, int]] = {}
    used: list[Feature] = []
    for feature in features_of(rules):
        fired = sum(1 for j in train if unit(j, feature) > 0)
        if fired < min_fired:
            kept[feature.rule_id] = (f"had points for fewer than {min_fired} training leads", fired)
        elif len(train) - fired < min_fired:
            why = f"had points for all but fewer than {min_fired} training leads"
            kept[feature.rule_id] = (why, fired)
        else:
            used.append(feature)
    if not used:
        raise InputError("no rule varies enough among the training leads to learn from")
    x = np.array([[unit(j, f) for f in used] for j in train], dtype=float)
    y = np.array([j.positive for j in train], dtype=int)
    mean, sd = x.mean(axis=0), x.std(axis=0)
    sd[sd == 0] = 1.0
    z = (x - mean) / sd
    model = LogisticRegressionCV(
        Cs=np.logspace(-3, 2, 16),
        cv=TimeSeriesSplit(n_splits=4),
        scoring="neg_log_loss",
        l1_ratios=(0.0,),
        solver="lbfgs",
        max_iter=2000,
        use_legacy_attributes=False,
    ).fit(z, y)
    c = float(np.ravel(model.C_)[0])
    beta = model.coef_[0]
    intercept = float(model.intercept_[0])
    # Wald intervals from the penalised Hessian (sklearn minimises C * loss + w'w / 2).
    design = np.hstack([np.ones((len(z), 1)), z])
    p = 1 / (1 + np.exp(-(intercept + z @ beta)))
    hessian = design.T @ (design * (p * (1 - p))[:, None])
    hessian[1:, 1:] += np.eye(len(used)) / c
    se = np.sqrt(np.clip(np.diag(np.linalg.pinv(hessian))[1:], 0, None))
    coef = {f.rule_id: float(b / s) for f, b, s in zip(used, beta, sd, strict=True)}
    interval = {
        f.rule_id: (float((b - Z95 * e) / s), float((b + Z95 * e) / s))
        for f, b, e, s in zip(used, beta, se, sd, strict=True)
    }
    fitted = Fitted(used, kept, coef, interval, c, 1.0, train, test)
    fitted.scale = _scale(fitted, rules)
    return fitted


def _scale(fitted: Fitted, rules: Rules) -> float:
    """Points per log-odd: the training leads' mean total at the hand-off stays what it was,
    so the file's lines keep their meaning on average."""
    train = fitted.train
    by_id = {f.rule_id: f for f in features_of(rules)}
    current = sum(j.handoff.total for j in train) / len(train)
    kept_part = sum(unit(j, by_id[r]) * by_id[r].points for j in train for r in fitted.kept) / len(
        train
    )
    logits = sum(fitted.coef[f.rule_id] * unit(j, f) for j in train for f in fitted.features) / len(
        train
    )
    if logits > 0 and current > kept_part:
        return (current - kept_part) / logits
    spread = math.sqrt(sum(v * v for v in fitted.coef.values()) / len(fitted.coef)) or 1.0
    return 10.0 / spread  # a fallback: the typical coefficient is worth 10 points


def score(judged: Judged, points: dict[str, float], rules: Rules) -> float:
    """A lead's total at its hand-off moment under ``points`` (every rule's points)."""
    return sum(unit(judged, f) * points[f.rule_id] for f in features_of(rules))


def heldout(fitted: Fitted, rules: Rules) -> Heldout:
    """AUC of the current file and of the proposal's points on the held-out leads."""
    test = fitted.test
    labels = [j.positive for j in test]
    current = [j.handoff.total for j in test]
    proposed = [score(j, fitted.points, rules) for j in test]
    found: DeLong | None = delong([current, proposed], labels)
    assert found is not None, "split() keeps both classes in the held-out period"
    return Heldout(
        leads=len(test),
        positive=sum(labels),
        auc_current=found.aucs[0],
        auc_current_ci=found.interval(0),
        auc_proposed=found.aucs[1],
        auc_proposed_ci=found.interval(1),
        difference=found.difference(1, 0),
    )


def precision_line(
    fitted: Fitted, rules: Rules, target: float, min_leads: int = 20
) -> float | None:
    """The lowest total at which the training leads above it are ``target`` positive, or None."""
    scored = sorted(
        ((score(j, fitted.points, rules), j.positive) for j in fitted.train), reverse=True
    )
    best = None
    hits = 0
    for n, (total, positive) in enumerate(scored, start=1):
        hits += positive
        if n >= min_leads and hits / n >= target:
            best = total
    return best
