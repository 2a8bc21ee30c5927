"""The two faust-streaming fixes in stream_app/worker/faust_fixes.py, one piece at a time.

The consumer and the recovery service are stand-ins that record what is
called; that the fixes keep a restarted worker committing and losing nothing
is shown by tests/faults (kill -9, rebalance) and the benchmark's probes.
"""

from __future__ import annotations

import asyncio
import hashlib
import inspect
from types import SimpleNamespace
from typing import Any

from aiokafka import TopicPartition
from faust.tables.recovery import Recovery
from faust.transport.consumer import Consumer

from stream_app.worker import faust_fixes

# sha256 (first 16 hex digits) of faust-streaming 0.15.3's source of each method we
# replace. A change means the upgrade has to be read against the fixed copies.
PATCHED_SOURCES = {
    "Recovery.on_recovery_completed": "6ef567acf072e46d",
    "Consumer.perform_seek": "0e8c130ff4b0afd8",
}


def test_the_replaced_methods_are_still_the_ones_the_fixes_were_copied_from() -> None:
    faust_fixes.apply()
    faust_fixes.apply()  # idempotent: the originals stay one __wrapped__ away
    originals = {
        "Recovery.on_recovery_completed": Recovery.on_recovery_completed.__wrapped__,  # type: ignore[attr-defined]
        "Consumer.perform_seek": Consumer.perform_seek.__wrapped__,  # type: ignore[attr-defined]
    }
    for name, method in originals.items():
        digest = hashlib.sha256(inspect.getsource(method).encode()).hexdigest()[:16]
        assert digest == PATCHED_SOURCES[name], f"{name} changed upstream: review faust_fixes"


def _is_changelog(tp: TopicPartition) -> bool:
    return tp.topic.endswith("-changelog")


def _recovery(calls: list[Any], generation: int, assignment: set[TopicPartition]) -> Any:
    paused = {tp for tp in assignment if not _is_changelog(tp)}

    async def perform_seek() -> None:
        calls.append(("perform_seek", sorted(paused)))

    async def wait(coro: Any, **_: float) -> None:  # Recovery._wait(coro, timeout=...)
        await coro

    async def send() -> None:
        return None

    async def maybe_start() -> None:
        calls.append("fetcher started")

    def resume_partitions(tps: set[TopicPartition]) -> None:
        paused.difference_update(tps)
        calls.append(("resume_partitions", sorted(tps)))

    consumer = SimpleNamespace(
        assignment=lambda: assignment,
        perform_seek=perform_seek,
        resume_partitions=resume_partitions,
        resume_flow=lambda: calls.append("resume_flow"),
    )
    app = SimpleNamespace(
        consumer=consumer,
        consumer_generation_id=generation,
        on_rebalance_complete=SimpleNamespace(send=send),
        conf=SimpleNamespace(broker_request_timeout=30.0),
        flow_control=SimpleNamespace(resume=lambda: None),
        _fetcher=SimpleNamespace(maybe_start=maybe_start),
        assignor=SimpleNamespace(assigned_standbys=set),
        on_rebalance_end=lambda: calls.append("rebalance end"),
    )
    log = SimpleNamespace(info=lambda *a: None, dev=lambda *a: None, warning=calls.append)
    tables = SimpleNamespace(
        values=lambda: [], on_actives_ready=lambda: None, on_standbys_ready=lambda: None
    )
    return SimpleNamespace(
        app=app,
        log=log,
        tables=tables,
        _set_recovery_ended=lambda: None,
        _wait=wait,
        _is_changelog_tp=_is_changelog,
        completed=SimpleNamespace(set=lambda: None),
    )


def test_stream_partitions_are_sought_while_paused_and_resumed_only_after() -> None:
    stream, changelog = TopicPartition("page_views", 0), TopicPartition("x-changelog", 0)
    calls: list[Any] = []
    recovery = _recovery(calls, generation=3, assignment={stream, changelog})
    asyncio.run(faust_fixes._on_recovery_completed(recovery, 3))
    assert calls[:3] == [
        ("perform_seek", [stream]),  # still paused: nothing is fetched from the old position
        ("resume_partitions", [stream]),
        "resume_flow",
    ]
    assert calls[-1] == "rebalance end"


def test_a_stale_generation_resumes_nothing() -> None:
    calls: list[Any] = []
    recovery = _recovery(calls, generation=4, assignment={TopicPartition("page_views", 0)})
    asyncio.run(faust_fixes._on_recovery_completed(recovery, 3))
    assert len(calls) == 1 and "rebalancing again" in calls[0]


def _consumer(reset: str, read: dict[Any, int | None], committed: dict[Any, int | None]) -> Any:
    calls: list[Any] = []

    async def seek_to_committed() -> dict[Any, int | None]:
        return committed

    async def seek(tp: Any, offset: int) -> None:
        calls.append(("seek", tp, offset))

    return SimpleNamespace(
        calls=calls,
        _read_offset=dict(read),
        _committed_offset={},
        seek_to_committed=seek_to_committed,
        _seek=seek,
        _is_changelog_tp=_is_changelog,
        app=SimpleNamespace(conf=SimpleNamespace(consumer_auto_offset_reset=reset)),
    )


def test_partitions_never_committed_are_sought_past_what_streams_got_or_to_the_beginning() -> None:
    read_some = TopicPartition("page_views", 0)  # streams got offsets up to 5, none committed
    read_none = TopicPartition("page_views", 1)  # its records were fetched and dropped
    committed = TopicPartition("page_views", 2)
    changelog = TopicPartition("x-changelog", 0)
    consumer = _consumer(
        "earliest",
        read={read_some: 5, committed: 40},
        committed={read_some: None, read_none: None, committed: 12, changelog: None},
    )
    asyncio.run(faust_fixes._perform_seek(consumer))
    assert consumer.calls == [("seek", read_some, 6), ("seek", read_none, 0)]
    # Faust's own bookkeeping is unchanged: read offsets follow the committed ones
    assert consumer._read_offset[committed] == 12
    assert consumer._read_offset[read_some] is None
    assert consumer._committed_offset == {(committed.topic, committed.partition): 12}


def test_with_auto_offset_reset_latest_nothing_extra_is_sought() -> None:
    tp = TopicPartition("page_views", 0)
    consumer = _consumer("latest", read={tp: 5}, committed={tp: None})
    asyncio.run(faust_fixes._perform_seek(consumer))
    assert consumer.calls == []
