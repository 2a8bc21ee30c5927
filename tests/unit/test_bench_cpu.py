"""CPU per event (bench/cpu.py): /proc parsing, the per-event arithmetic, the summary keys.

No broker and no timing: samples are literal, except one read of this test's own
process, which must have spent some CPU.
"""

from __future__ import annotations

import os

import pytest

from bench import cpu
from bench.cpu import Sample, parse_stat, per_event
from bench.report import build_summary, render
from tests.unit.test_bench import full_figures, result

HZ = cpu.CLOCK_TICKS


def stat_line(comm: str, utime: int, stime: int) -> str:
    """A /proc/<pid>/stat line: pid (comm) state, then fields 4..52 (utime 14, stime 15)."""
    fields = ["S", *[str(n) for n in range(4, 14)], str(utime), str(stime), "7", "8"]
    fields += ["0"] * 37
    return f"4242 ({comm}) " + " ".join(fields)


@pytest.mark.parametrize("comm", ["python", "java (1) x", "a) b (c"])
def test_utime_and_stime_are_read_after_the_last_parenthesis(comm: str) -> None:
    assert parse_stat(stat_line(comm, 3 * HZ, HZ // 2)) == pytest.approx(3.5)


def test_this_process_has_spent_some_cpu() -> None:
    spent = cpu.cpu_seconds(os.getpid())
    assert spent is not None and spent > 0
    assert cpu.cpu_seconds(2**22 + 7) is None  # no such pid


def sample(at: float, busy: int, total: int, **seconds: float) -> Sample:
    return Sample(at=at, seconds=dict(seconds), busy=busy, total=total, load=1.5)


def test_cpu_per_event_is_the_difference_in_microseconds_over_the_events() -> None:
    before = sample(10.0, 1_000, 10_000, worker=2.0, broker=100.0, redis=5.0)
    after = sample(
        20.0, 1_000 + 1_500, 10_000 + 2_000, worker=4.5, projector=0.5, broker=101.0, redis=5.25
    )
    out = per_event(before, after, events=10_000)
    assert out["cpu_us_per_event"] == {
        "worker": 250.0,  # 2.5 s over 10,000 events
        "projector": 50.0,  # started inside the window: counted from zero
        "broker": 100.0,
        "redis": 25.0,
    }
    assert out["cpu_seconds"]["worker"] == 2.5
    assert out["wall_seconds"] == 10.0
    cores = os.cpu_count() or 1
    assert out["machine"]["busy_cores"] == pytest.approx(0.75 * cores, abs=0.01)
    # ours: 2.5 + 0.5 + 1.0 + 0.25 = 4.25 CPU s in 10 s = 0.425 cores
    assert out["machine"]["others_busy_cores"] == pytest.approx(
        max(0, 0.75 * cores - 0.425), abs=0.01
    )


def test_a_counter_that_went_back_counts_zero_and_no_events_give_none() -> None:
    before = sample(0.0, 0, 100, projector=9.0)
    after = sample(1.0, 50, 200, projector=1.0)  # a restarted child: a new, smaller count
    out = per_event(before, after, events=0)
    assert out["cpu_seconds"]["projector"] == 0.0
    assert out["cpu_us_per_event"]["projector"] is None


def with_cpu() -> dict[str, object]:
    figures = full_figures()
    for phase, per in [
        ("worker", {"worker": 900.0, "projector": 120.0, "broker": 300.0, "redis": 40.0}),
        ("faust_count", {"worker": 300.0, "projector": 0.0, "broker": 90.0, "redis": 0.0}),
        ("faust_floor", {"worker": 700.0, "projector": 0.0, "broker": 250.0, "redis": 0.0}),
    ]:
        figures[phase] = {**figures[phase], "cpu_us_per_event": per}  # type: ignore[dict-item]
    return figures


def test_the_summary_carries_cpu_per_event_and_its_ratio() -> None:
    s = build_summary(with_cpu(), 1.0)
    assert s["worker_cpu_us_per_event"] == 900.0
    assert s["faust_count_cpu_us_per_event"] == 300.0
    assert s["faust_floor_cpu_us_per_event"] == 700.0
    assert s["projector_cpu_us_per_event"] == 120.0
    assert s["worker_cpu_vs_faust_count"] == 3.0


def test_missing_cpu_figures_give_null() -> None:
    s = build_summary(full_figures(), 1.0)
    for key in [
        "worker_cpu_us_per_event",
        "faust_count_cpu_us_per_event",
        "faust_floor_cpu_us_per_event",
        "projector_cpu_us_per_event",
        "worker_cpu_vs_faust_count",
    ]:
        assert s[key] is None, key


def test_the_report_has_a_cpu_table_and_a_ceiling_target() -> None:
    text = render(result(with_cpu()))
    assert "| worker | 900.0 | 120.0 | 300.0 | 40.0 |" in text
    assert "worker_cpu_vs_faust_count (target <= 2 (CPU per event)) | 3.0 (met: no)" in text


def test_profile_samples_go_to_the_innermost_part_that_names_them() -> None:
    from bench.profile_parts import parts

    text = "\n".join(
        [
            "run (asyncio/events.py:1);flush (stream_app/worker/agents.py:300);"
            "send (aiokafka/producer/producer.py:9) 7",
            "run (asyncio/events.py:1);score_partition (stream_app/worker/agents.py:2);"
            "apply_event (stream_app/scoring/engine.py:5) 5",
            "run (asyncio/events.py:1);_drain_messages (faust/transport/consumer.py:1) 3",
            "run (asyncio/events.py:1);select (selectors.py:468) 11",
            "main (x.py:1) 1",
        ]
    )
    counts = parts(text)
    assert counts["outbox (sends, acks, record encode + RocksDB batch + changelog)"] == 7
    assert counts["scoring (PartitionBatch + pure core)"] == 5
    assert counts["Faust's consume path (fetcher, conductor, stream, aiokafka consumer)"] == 3
    assert counts["idle (event loop waiting)"] == 11
    assert counts["other"] == 1


def test_the_restore_alone_is_read_from_the_workers_log() -> None:
    from bench.phases.state_at_scale import restore_seconds

    log = "\n".join(
        [
            "[2026-12-08 00:58:20,000] [1] [INFO] Leadstream starting",
            "[2026-12-08 00:58:23,664] [1] [INFO] [^---Recovery]: Highwater for active "
            "changelog partitions:",
            "[2026-12-08 00:58:52,669] [1] [INFO] [^---Recovery]: Restore complete! ",
            "[2026-12-08 00:59:52,669] [1] [INFO] [^---Recovery]: Restore complete! ",
        ]
    )
    assert restore_seconds(log) == 29.0
    assert restore_seconds("nothing") is None
