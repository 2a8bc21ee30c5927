"""compare's figures from literal transitions: who each run qualifies, when, and how they did."""

from __future__ import annotations

import random
from typing import Any

from schemas.transitions import StageTransition
from stream_app.outcomes.compare import compare_transitions
from tests.factories import at


def tr(
    lead: str, to: str, day: float, *, seq: int, reason: str = "score_threshold", **kw: Any
) -> StageTransition:
    return StageTransition.model_validate(
        {
            "transition_id": f"{lead}-{seq}-{to}-{kw.get('tag', '')}",
            "lead_id": lead,
            "from_stage": kw.get("from_stage", "lead"),
            "to_stage": to,
            "passed": kw.get("passed", []),
            "reason": reason,
            "occurred_at": at(day).isoformat(),
            "scores": {"fit": 30, "engagement": 40, "total": 70, "grade": "B"},
            "contributions": [],
            "detail": kw.get("detail"),
            "rules_version": "v",
            "sequence": seq,
        }
    )


A = [
    tr("l1", "mql", 1, seq=1),
    tr("l1", "sql", 3, seq=2, from_stage="mql"),
    tr("l1", "customer", 40, seq=3, reason="sales_feedback", detail="won"),
    tr("l2", "mql", 2, seq=1),
    tr("l2", "recycled", 30, seq=2, reason="sales_feedback", detail="lost: budget"),
    tr("l3", "sql", 5, seq=1, passed=["mql"], reason="hand_raise"),
]
B = [
    tr("l1", "mql", 0.5, seq=1, tag="b"),
    tr("l1", "customer", 40, seq=2, reason="sales_feedback", detail="won", tag="b"),
    tr("l3", "sql", 5, seq=1, passed=["mql"], reason="hand_raise", tag="b"),
    tr("l4", "mql", 9, seq=1, tag="b"),
]


def test_who_each_run_qualifies_when_and_how_they_did() -> None:
    found = compare_transitions(A, B)
    assert (found["a"]["mql"], found["b"]["mql"]) == (3, 3)
    assert (found["a"]["sql"], found["b"]["sql"]) == (2, 1)
    mql = found["mql"]
    assert (mql["both"], mql["only_a"], mql["only_b"]) == (2, 1, 1)  # l1, l3; l2; l4
    assert (mql["earlier_under_b"], mql["later_under_b"], mql["same_time"]) == (1, 0, 1)
    assert mql["dropped_by_b"] == {"leads": 1, "positive": 0, "rate": 0.0, "with_feedback": 1}
    assert mql["added_by_b"] == {"leads": 1, "positive": 0, "rate": 0.0, "with_feedback": 0}
    assert mql["kept"]["positive"] == 1  # l1 won
    assert found["sql"]["only_a"] == 1  # l1 reached SQL under A only
    assert found["a"]["mql_positive"]["rate"] == 1 / 3


def test_figures_ignore_order_and_redelivered_transitions() -> None:
    shuffled = [*A, *A[:3]]  # a live topic: duplicates, any partition order
    random.Random(5).shuffle(shuffled)
    assert compare_transitions(shuffled, B) == compare_transitions(A, B)
