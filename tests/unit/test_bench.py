"""The benchmark harness's pure parts: summary, ratios, percentiles, the report (no broker).

Speed is never asserted here: the figures come from `make bench` on one machine.
"""

from __future__ import annotations

import argparse
from datetime import UTC, datetime

import pytest

from bench.common import Result, compare_transitions, latency_figures, percentile, unkeyed
from bench.harness import PHASES, defaults, parser
from bench.phases.soak import slope_per_hour, soak_events, windows
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
    "soak_worker_rss_start_mib",
    "soak_worker_rss_end_mib",
    "soak_worker_rss_slope_mib_per_hour",
    "soak_lag_p99",
    "soak_lag_max",
    "soak_p99_ms_by_window",
    "dashboard_leads",
    "dashboard_page_median_ms_max",
    "dashboard_page_max_ms",
    "dashboard_html_gzip_bytes_max",
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
        "soak": {
            "offered_per_second": 200.0,
            "of_worker_events_per_second": 400,
            "seconds": 600.0,
            "events": 120_000,
            "achieved_offer": 199,
            "transitions": 900,
            "drain_after_last_send_s": 1.5,
            "record_cache_size": 50_000,
            "samples": 61,
            "lag_p99": 800.0,
            "lag_max": 950,
            "worker_rss_start_mib": 210.0,
            "worker_rss_end_mib": 212.5,
            "worker_rss_max_mib": 215.0,
            "worker_rss_slope_mib_per_hour": 0.4,
            "windows": [
                {"from_s": 0, "transitions": 500, "p50_ms": 20.0, "p99_ms": 80.0},
                {"from_s": 300, "transitions": 400, "p50_ms": 21.0, "p99_ms": 85.0},
            ],
        },
        "dashboard": {
            "leads": 10_000,
            "rounds": 5,
            "fill_seconds": 3.0,
            "pages": {
                "funnel": {
                    "path": "/ui/funnel",
                    "median_ms": 40.0,
                    "max_ms": 55.0,
                    "html_bytes": 10_000,
                    "html_gzip_bytes": 2_300,
                    "with_assets_bytes": 16_000,
                }
            },
            "page_median_ms_max": 40.0,
            "page_max_ms": 55.0,
            "html_gzip_bytes_max": 2_300,
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
    assert s["soak_worker_rss_slope_mib_per_hour"] == 0.4
    assert s["soak_p99_ms_by_window"] == [80.0, 85.0]
    assert (s["dashboard_leads"], s["dashboard_page_median_ms_max"]) == (10_000, 40.0)
    assert (s["dashboard_page_max_ms"], s["dashboard_html_gzip_bytes_max"]) == (55.0, 2_300)


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
    assert "worker RSS 210.0 -> 212.5 MiB" in text
    assert "| 300 | 400 | 21.0 | 85.0 | n/a |" in text  # a soak window's row


def test_soak_slope_is_least_squares_in_mib_per_hour() -> None:
    flat = [(float(t), 200.0) for t in range(0, 600, 10)]
    assert slope_per_hour(flat) == 0.0
    growing = [(float(t), 200.0 + t / 60) for t in range(0, 600, 10)]  # 1 MiB a minute
    assert slope_per_hour(growing) == pytest.approx(60.0)
    assert slope_per_hour(growing[:2]) is None  # too few samples to say


def test_soak_windows_split_latencies_by_send_time() -> None:
    latencies = [(5.0, 0.010), (25.0, 0.020), (26.0, 0.040), (59.0, 1.0)]
    out = windows(latencies, 20.0, 60.0)
    assert [w["from_s"] for w in out] == [0, 20, 40]
    assert [w["transitions"] for w in out] == [1, 2, 1]
    assert out[1]["max_ms"] == 40.0
    assert out[2]["p99_ms"] == 1000.0


def test_soak_events_are_never_dated_after_now() -> None:
    now = datetime(2026, 12, 7, tzinfo=UTC)
    # 250 prospects give 3,312 events, 389 of them after ``now``: every one is asked for
    events = list(soak_events(10_000, 1, "t-", now, prospects=250))
    assert len(events) == 3312 - 389
    assert max(e["occurred_at"] for e in events) <= "2026-12-07T00:00:00Z"
    assert len(list(soak_events(100, 1, "t-", now, prospects=250))) == 100


def test_the_report_renders_a_run_with_missing_phases() -> None:
    text = render(result({"pure_core": {"seconds": 1.0, "events_per_second": 5000}}))
    assert "| worker, subject-keyed input, events/s | n/a |" in text
    assert "Dashboard over" not in text
    full = render(result(full_figures()))
    assert "| funnel (`/ui/funnel`) | 40.0 | 55.0 | 10,000 | 2,300 | 16,000 |" in full


def test_worker_topics_come_from_the_product_minus_the_public_outputs() -> None:
    settings = Settings(topic_prefix="t.", app_id="app")
    topics = scoring_topics(settings)
    names = TopicNames("t.")
    assert set(names.inputs) <= set(topics)
    outputs = {names.transitions, names.score_updates, names.sla_breaches, names.dead_letters}
    assert not outputs & set(topics)  # written by the worker, read by no group of it
    (group, _), (projection, projected) = watched(settings)
    assert group == "app" and projection != group
    assert set(projected) == {names.transitions, names.score_updates, names.sla_breaches}


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
