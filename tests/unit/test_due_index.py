"""The worker's in-memory decay index: due leads come out once, in due order, and
superseded entries do not pile up."""

from __future__ import annotations

from stream_app.worker.records import DueIndex


def test_pop_due_returns_each_due_key_once_in_due_order() -> None:
    due = DueIndex()
    due.set("b", 20.0)
    due.set("a", 10.0)
    due.set("c", 99.0)
    due.set("b", 15.0)  # moved earlier: the old entry is stale
    assert due.pop_due(now=50.0, limit=10) == ["a", "b"]
    assert due.pop_due(now=50.0, limit=10) == []
    assert len(due) == 1


def test_a_cleared_key_is_not_returned() -> None:
    due = DueIndex()
    due.set("a", 10.0)
    due.set("a", None)
    assert due.pop_due(now=50.0, limit=10) == []
    assert len(due) == 0


def test_busy_keys_do_not_grow_the_heap_without_bound() -> None:
    due = DueIndex()
    for n in range(100_000):  # ten leads, each re-scheduled 10,000 times
        due.set(f"lead-{n % 10}", 1_000.0 + n)
    assert len(due) == 10
    assert len(due._heap) <= 2 * 10 + 1024 + 1
    assert due.pop_due(now=1e9, limit=100) == [f"lead-{n}" for n in range(10)]


def test_limit_leaves_the_rest_for_the_next_sweep() -> None:
    due = DueIndex()
    for n in range(5):
        due.set(f"k{n}", float(n))
    assert due.pop_due(now=10.0, limit=3) == ["k0", "k1", "k2"]
    assert due.pop_due(now=10.0, limit=3) == ["k3", "k4"]
