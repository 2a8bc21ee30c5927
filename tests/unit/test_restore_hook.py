"""The bulk restore's hook into faust-streaming's recovery (stream_app/worker/restore.py).

The restore itself runs on the real Kafka (tests/integration/test_bulk_restore.py);
here: the Faust code it relies on is still the code it was read against, the hook runs
the bulk restore before Faust's seek with the offsets it wrote, and an app that did not
enable it gets Faust's seek alone.
"""

from __future__ import annotations

import asyncio
import hashlib
import inspect
from collections import Counter
from types import SimpleNamespace
from typing import Any

import pytest
from faust.stores.rocksdb import Store
from faust.tables.recovery import Recovery
from faust.types import TP

from stream_app.config import Settings
from stream_app.worker import restore

# sha256 (first 16 hex digits) of faust-streaming 0.15.3's source of what the hook relies
# on: the method it wraps, and how the store keeps and reads the persisted offset.
RELIED_ON = {
    "Recovery._seek_offsets": "19598ca63d94d250",
    "Store.set_persisted_offset": "b4c811926678346e",
    "Store.persisted_offset": "6f2e502fb86043a1",
    "Store._db_for_partition": "cb7e67d5f9efc4bc",
}


def test_the_faust_code_the_hook_relies_on_is_unchanged() -> None:
    restore._install()
    restore._install()  # idempotent: the original stays one __wrapped__ away
    methods = {
        "Recovery._seek_offsets": Recovery._seek_offsets.__wrapped__,  # type: ignore[attr-defined]
        "Store.set_persisted_offset": Store.set_persisted_offset,
        "Store.persisted_offset": Store.persisted_offset,
        "Store._db_for_partition": Store._db_for_partition,
    }
    for name, method in methods.items():
        digest = hashlib.sha256(inspect.getsource(method).encode()).hexdigest()[:16]
        assert digest == RELIED_ON[name], f"{name} changed upstream: review restore.py"
    assert Store.offset_key == b"__faust\0offset__"


async def test_the_bulk_restore_runs_before_fausts_seek_and_moves_its_offsets(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    calls: list[Any] = []
    tp = TP("app-lead-records-changelog", 2)
    offsets: Counter[TP] = Counter({tp: 41})

    async def bulk(recovery: Any, tps: set[TP], offs: Any, title: str) -> None:
        calls.append(("bulk", title, dict(offs)))
        offs[tp] = 99  # what restore_partitions' on_written does after each batch

    class Consumer:
        async def seek_wait(self, new: dict[TP, int]) -> None:
            calls.append(("seek", new))

    monkeypatch.setattr(restore, "bulk_before_seek", bulk)
    restore._install()
    recovery = SimpleNamespace()
    await Recovery._seek_offsets(recovery, Consumer(), {tp}, offsets, "active")  # type: ignore[arg-type]
    assert calls == [("bulk", "active", {tp: 41}), ("seek", {tp: 99})]


class App:  # weakly referenced, as a faust.App is
    pass


async def test_an_app_that_did_not_enable_it_gets_fausts_seek_alone() -> None:
    app = App()
    restore.enable(app, Settings(bulk_restore=False))
    recovery = SimpleNamespace(app=app, tp_to_table={})
    offsets: Counter[TP] = Counter({TP("t", 0): 5})
    await restore.bulk_before_seek(recovery, {TP("t", 0)}, offsets, "active")
    assert offsets[TP("t", 0)] == 5
    assert app not in restore._ENABLED


def test_a_memory_store_is_left_to_faust() -> None:
    tp = TP("t", 0)
    table = SimpleNamespace(data=object())  # not a RocksDB store
    recovery = SimpleNamespace(tp_to_table={tp: table})
    assert restore._partitions_of(recovery, {tp}, Counter({tp: 3})) == []


async def test_a_restore_cut_at_its_slice_starts_fausts_recovery_round_again(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    app = App()
    restore.enable(app, Settings())
    tp = TP("app-lead-records-changelog", 0)
    part = restore.Partition(restore.TopicPartition(tp.topic, 0), db=None, start=8, end=8)  # type: ignore[arg-type]

    async def ends(options: Any, tps: Any) -> dict[Any, int]:
        return {tps[0]: 1_000}

    async def cut(parts: Any, *args: Any, **kwargs: Any) -> restore.Restored:
        kwargs["on_written"](parts[0].tp, 500)
        return restore.Restored(records=492, complete=False)

    monkeypatch.setattr(restore, "_partitions_of", lambda *args: [part])
    monkeypatch.setattr(restore, "end_offsets", ends)
    monkeypatch.setattr(restore, "restore_partitions", cut)
    signal = asyncio.Event()
    recovery = SimpleNamespace(
        app=app,
        signal_recovery_start=signal,
        conf=None,
    )
    recovery.app.conf = SimpleNamespace(broker_request_timeout=90.0)  # type: ignore[attr-defined]
    offsets: Counter[TP] = Counter({tp: 7})
    await restore.bulk_before_seek(recovery, {tp}, offsets, "active")
    assert part.end == 1_000
    assert offsets[tp] == 500
    assert signal.is_set()  # Faust's _wait raises RebalanceAgain: a new round reads on
