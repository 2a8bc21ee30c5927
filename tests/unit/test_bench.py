"""The benchmark harness's pure parts: summary, ratios, percentiles, the report (no broker).

Speed is never asserted here: the figures come from `make bench` on one machine.
"""

from __future__ import annotations

import argparse

import pytest

from bench.common import Result, compare_transitions, latency_figures, percentile, unkeyed
from bench.harness import PHASES, defaults, parser
from bench.report import build_summary, ratio, render
from bench.topology import scoring_topics, watched
from stream_app.config import Settings
from stream_app.topics import TopicNames

SUMMARY_KEYS = {
    "worker_events_per_s_keyed",
    "worker_events_per_s_unkeyed",
    "faust_count_events_per_s",
    "faust_floor_events_per_s",
    "passthrough_events_per_s",
    "pure_core_events_per_s",
    "p99_ms",
    "bench_minutes",
    "worker_keyed_vs_faust_count",
    "worker_unkeyed_vs_faust_count",
    "worker_keyed_vs_faust_floor",
}


def full_figures() -> dict[str, object]:
    return {
        "pure_core": {"seconds": 4.0, "events_per_second": 5000, "leads": 100, "transitions": 7},
        "passthrough": {"seconds": 1.0, "events_per_second": 30000},
        "faust_count": {
            "seconds": 3.0,
            "events_per_second": 8000,
            "steady_events_per_second": 9000,
            "runs_events_per_second": [8000],
        },
        "faust_floor": {
            "seconds": 10.0,
            "events_per_second": 2000,
            "steady_events_per_second": 2100,
            "runs_events_per_second": [2000],
        },
        "worker": {
            "seconds": 50.0,
            "events_per_second": 400,
            "scored_s": 50.0,
            "steady_events_per_second": 420,
            "transitions_expected": 7,
            "transitions_received": 7,
            "transitions_distinct": 7,
            "transitions_missing": 0,
            "transitions_unexpected": 0,
        },
        "worker_unkeyed": {"seconds": 60.0, "events_per_second": 300, "scored_s": 60.0},
        "latency": [
            {
                "offered_per_second": 250,
                "achieved_offer": 250,
                "events": 10,
                "transitions": 2,
                "drain_after_last_send_s": 0.1,
                "drain_s": 1.0,
                "p99_ms": 50.0,
            },
            {
                "offered_per_second": 1000,
                "achieved_offer": 999,
                "events": 10,
                "transitions": 2,
                "drain_after_last_send_s": 2.0,
                "drain_s": 5.0,
                "p99_ms": 9000.0,
            },
        ],
        "burst": {
            "offered_per_second": 5000,
            "achieved_offer": 4900,
            "events": 100,
            "transitions": 3,
            "transitions_expected": 4,
            "transitions_missing": 1,
            "drain_after_last_send_s": 9.0,
            "drain_s": 20.0,
            "p99_ms": 15000.0,
            "burst": True,
        },
    }


def result(figures: dict[str, object]) -> Result:
    r = Result(
        mode="quick",
        command="python -m bench.harness --quick",
        started_at="2026-12-01T10:00Z",
        commit="abc1234",
        machine={"cpu": "cpu", "cores": 2, "memory_gib": 1.0, "os": "linux", "python": "3.11"},
        versions={"kafka": "4.4.0"},
        events=10,
        prospects=2,
        bad_messages=0,
        partitions=4,
        figures=figures,
    )
    r.summary = build_summary(figures, 4.25)
    return r


def test_the_summary_has_every_key_the_issue_names() -> None:
    s = build_summary(full_figures(), 4.25)
    assert set(s) >= SUMMARY_KEYS
    assert s["worker_events_per_s_keyed"] == 400
    assert s["worker_keyed_vs_faust_count"] == 0.05
    assert s["worker_unkeyed_vs_faust_count"] == pytest.approx(0.0375, abs=0.001)
    assert s["worker_keyed_vs_faust_floor"] == 0.2
    assert s["p99_ms"] == {"250": 50.0, "1000": 9000.0, "burst_5000": 15000.0}
    assert s["bench_minutes"] == 4.2 or s["bench_minutes"] == 4.3


def test_missing_phases_give_null_never_a_number() -> None:
    s = build_summary({"pure_core": {"events_per_second": 5000}}, None)
    assert s["pure_core_events_per_s"] == 5000
    for key in SUMMARY_KEYS - {"pure_core_events_per_s", "p99_ms"}:
        assert s[key] is None, key
    assert s["p99_ms"] == {}


def test_a_phase_that_reported_an_error_gives_null() -> None:
    s = build_summary({"batched": {"error": "ImportError: no"}}, 1.0)
    assert s["design_ceiling_events_per_s"] is None


@pytest.mark.parametrize(
    ("num", "den", "expected"),
    [(400, 8000, 0.05), (1, 3, 0.333), (None, 8000, None), (400, None, None), (400, 0, None)],
)
def test_ratio(num: float | None, den: float | None, expected: float | None) -> None:
    assert ratio(num, den) == expected


def test_percentile_is_nearest_rank() -> None:
    values = [float(n) for n in range(1, 101)]
    assert percentile(values, 0.5) == 51.0
    assert percentile(values, 0.99) == 100.0
    assert percentile([3.0], 0.99) == 3.0
    assert percentile([5.0, 1.0, 3.0], 0.5) == 3.0  # unsorted input
    with pytest.raises(ValueError):
        percentile([], 0.5)


def test_latency_figures_in_milliseconds_and_none_for_no_transitions() -> None:
    figures = latency_figures([0.010, 0.020, 0.030, 1.0])
    assert figures["max_ms"] == 1000.0
    assert figures["p50_ms"] == 30.0
    assert latency_figures([]) == {}


def test_transitions_are_compared_by_id() -> None:
    out = compare_transitions({"a", "b", "c"}, ["a", "a", "b", "x"])
    assert out == {
        "transitions_expected": 3,
        "transitions_received": 4,
        "transitions_distinct": 3,
        "transitions_missing": 1,
        "transitions_unexpected": 1,
    }


def test_unkeyed_traffic_is_the_same_messages_without_keys() -> None:
    messages = [("page_views", b"lead-1", b"{}"), ("identities", b"anon-1", b"{}")]
    assert unkeyed(messages) == [("page_views", None, b"{}"), ("identities", None, b"{}")]


def test_the_report_starts_with_the_summary_table() -> None:
    text = render(result(full_figures()))
    assert text.index("| summary | value |") < text.index("| throughput |")
    assert "| worker_keyed_vs_faust_count (target >= 0.5) | 0.05 (met: no) |" in text
    assert "at a burst of 5000 events/s offered, ms | 15,000.0 |" in text
    assert "1 missing" not in text  # the keyed worker lost nothing
    assert "4 expected" in text  # the burst row says what the pure core expected


def test_the_report_renders_a_run_with_missing_phases() -> None:
    text = render(result({"pure_core": {"seconds": 1.0, "events_per_second": 5000}}))
    assert "| worker, subject-keyed input, events/s | n/a |" in text


def test_worker_topics_come_from_the_product_minus_the_public_outputs() -> None:
    settings = Settings(topic_prefix="t.", app_id="app")
    topics = scoring_topics(settings)
    names = TopicNames("t.")
    assert set(names.inputs) <= set(topics)
    outputs = {names.transitions, names.score_updates, names.sla_breaches, names.dead_letters}
    assert not outputs & set(topics)  # written by the worker, read by no group of it
    (group, _), (projection, projected) = watched(settings)
    assert group == "app" and projection != group
    assert set(projected) == {names.transitions, names.score_updates}


def test_quick_and_full_sizes_and_phase_selection() -> None:
    quick = defaults(parser().parse_args(["--quick"]))
    assert (quick.events, quick.unkeyed_events, quick.burst_rate) == (20_000, 20_000, 5_000)
    assert 1000 in quick.rates and quick.phases == list(PHASES)
    full = defaults(parser().parse_args([]))
    assert full.burst_rate == 10_000 and full.burst_seconds == 60 and 1000 in full.rates
    some = defaults(parser().parse_args(["--quick", "--phases", "worker,faust_count"]))
    assert some.phases == ["pure_core", "faust_count", "worker"]  # the run's order
    until = defaults(parser().parse_args(["--quick", "--until", "3"]))
    assert until.phases[-1] == "worker"
    with pytest.raises(SystemExit):
        parser().parse_args(["--phases", "nope"])


def test_help_names_every_phase() -> None:
    text = parser().format_help()
    assert all(name in text for name in PHASES)
    assert isinstance(parser(), argparse.ArgumentParser)
