"""The partition watch names a partition with a backlog that reaches no agent."""

from __future__ import annotations

from stream_app.worker.watch import Snapshot, Stalls


def test_a_partition_behind_and_idle_at_two_checks_is_stalled() -> None:
    stalls = Stalls()
    assert stalls.check({"p0": Snapshot(committed=56, end=342, handed=10)}) == []
    assert stalls.check({"p0": Snapshot(committed=56, end=342, handed=10)}) == []  # suspect
    assert stalls.check({"p0": Snapshot(committed=56, end=342, handed=10)}) == ["p0"]
    assert stalls.check({"p0": Snapshot(committed=56, end=342, handed=10)}) == ["p0"]  # still


def test_progress_or_no_backlog_is_not_a_stall() -> None:
    stalls = Stalls()
    for handed in range(5):  # records keep reaching the agent
        assert stalls.check({"p0": Snapshot(56, 342, handed)}) == []
    for _ in range(5):  # read to its end: nothing waits
        assert stalls.check({"p1": Snapshot(342, 342, 0)}) == []
    for committed in (60, 70, 80, 90):  # commits advance (acked from an earlier fetch)
        assert stalls.check({"p2": Snapshot(committed, 342, 1)}) == []
    for _ in range(3):  # never committed and nothing in it
        assert stalls.check({"p3": Snapshot(None, 0, 0)}) == []


def test_a_rebalance_starts_over() -> None:
    stalls = Stalls()
    stalls.check({"p0": Snapshot(56, 342, 10)})
    stalls.check({"p0": Snapshot(56, 342, 10)})
    stalls.forget()
    assert stalls.check({"p0": Snapshot(56, 342, 10)}) == []
    assert stalls.check({"p0": Snapshot(56, 342, 10)}) == []
    assert stalls.check({"p0": Snapshot(56, 342, 10)}) == ["p0"]
