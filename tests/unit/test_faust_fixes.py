"""The recovery patch stops the consumer's flow before Faust's own method runs.

Only the order is checked here (the original is replaced by a recorder); that
the fix keeps commits going after a kill -9 is shown by tests/faults.
"""

from __future__ import annotations

import asyncio
from types import SimpleNamespace
from typing import Any

import pytest
from faust.tables.recovery import Recovery

from stream_app import faust_fixes


def test_flow_is_stopped_before_the_original_runs_and_the_patch_applies_once(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    calls: list[Any] = []

    async def original(self: Any, generation_id: int = 0) -> None:
        calls.append(("original", generation_id, self.app.consumer.flow_active))

    monkeypatch.setattr(Recovery, "on_recovery_completed", original)
    faust_fixes.stop_flow_before_recovery_seek()
    patched = Recovery.on_recovery_completed
    faust_fixes.stop_flow_before_recovery_seek()  # a second call wraps nothing more
    assert Recovery.on_recovery_completed is patched

    consumer = SimpleNamespace(flow_active=True)

    def stop_flow() -> None:
        calls.append("stop_flow")
        consumer.flow_active = False

    consumer.stop_flow = stop_flow  # type: ignore[attr-defined]
    recovery: Any = SimpleNamespace(app=SimpleNamespace(consumer=consumer))
    asyncio.run(Recovery.on_recovery_completed(recovery, 7))
    assert calls == ["stop_flow", ("original", 7, False)]
