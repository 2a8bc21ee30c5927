"""Repartition messages wait for their partition's inputs to be read up to their time."""

from __future__ import annotations

from stream_app.worker.ordering import ALL_READ, NOTHING_READ, TimeOrder, frontier


def test_the_frontier_is_the_least_read_input_not_at_its_end() -> None:
    assert frontier([(10.0, False), (4.0, False)]) == 4.0
    assert frontier([(10.0, False), (4.0, True)]) == 10.0  # one read to its end
    assert frontier([(None, True), (2.0, True)]) == ALL_READ
    assert frontier([(None, False), (9.0, False)]) == NOTHING_READ  # one not read at all
    assert frontier([]) == ALL_READ


def test_a_claim_waits_for_the_visitors_earlier_page_views() -> None:
    # A worker restarting reads the input topic behind: the lead's claim (stamped with
    # the identify's time, 50) is on the repartition topic before the visitor's page
    # views of times 10..60 have been read.
    order: TimeOrder[str] = TimeOrder()
    assert order.arrange(0, [(10.0, "view@10")], [(50.0, "claim@50")], read_to=10.0) == ["view@10"]
    assert order.waiting(0) == 1
    got = order.arrange(0, [(30.0, "view@30"), (60.0, "view@60")], [], read_to=60.0)
    assert got == ["view@30", "claim@50", "view@60"]
    assert order.waiting() == 0


def test_internal_messages_keep_their_order_even_when_a_later_one_is_older() -> None:
    order: TimeOrder[str] = TimeOrder()
    assert order.arrange(1, [], [(50.0, "a@50"), (20.0, "b@20")], read_to=30.0) == []
    assert order.arrange(1, [], [], read_to=ALL_READ) == ["a@50", "b@20"]


def test_an_input_of_the_same_time_goes_first() -> None:
    order: TimeOrder[str] = TimeOrder()
    got = order.arrange(0, [(5.0, "view@5"), (6.0, "view@6")], [(5.0, "claim@5")], read_to=6.0)
    assert got == ["view@5", "claim@5", "view@6"]
    # read exactly to the held message's time: another input of that time may follow
    assert order.arrange(0, [], [(6.0, "claim@6")], read_to=6.0) == []
    assert order.arrange(0, [], [], read_to=ALL_READ) == ["claim@6"]


def test_partitions_are_independent_and_a_rebalance_forgets_what_is_held() -> None:
    order: TimeOrder[str] = TimeOrder()
    order.arrange(0, [], [(5.0, "p0")], read_to=NOTHING_READ)
    order.arrange(2, [], [(5.0, "p2")], read_to=1.0)
    assert sorted(order.partitions()) == [0, 2]
    assert sorted(order.held()) == [(0, "p0"), (2, "p2")]
    assert order.arrange(2, [], [], read_to=ALL_READ) == ["p2"]
    assert order.clear() == ["p0"]
    assert order.waiting() == 0
