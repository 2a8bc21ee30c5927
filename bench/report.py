"""The result's summary (the figures issue 15's targets are stated in) and its markdown."""

from __future__ import annotations

import json
from typing import Any

from bench.common import Result


def ratio(numerator: float | None, denominator: float | None) -> float | None:
    """``numerator / denominator`` to three decimals; None when either is missing or 0."""
    if numerator is None or not denominator:
        return None
    return round(numerator / denominator, 3)


def rate(figures: dict[str, Any], phase: str) -> float | None:
    value = figures.get(phase)
    return value.get("events_per_second") if isinstance(value, dict) else None


def p99s(figures: dict[str, Any]) -> dict[str, float | None]:
    """Offered rate (as a string) -> p99 ms, and ``burst_<rate>`` for the burst."""
    out: dict[str, float | None] = {
        str(x["offered_per_second"]): x.get("p99_ms") for x in figures.get("latency") or []
    }
    burst = figures.get("burst")
    if isinstance(burst, dict):
        out[f"burst_{burst['offered_per_second']}"] = burst.get("p99_ms")
    return out


def build_summary(figures: dict[str, Any], minutes: float | None) -> dict[str, Any]:
    """The top-level summary; a phase that did not run gives null, never a guess."""
    keyed, unkeyed = rate(figures, "worker"), rate(figures, "worker_unkeyed")
    count, floor = rate(figures, "faust_count"), rate(figures, "faust_floor")
    passthrough, core = rate(figures, "passthrough"), rate(figures, "pure_core")
    burst: dict[str, Any] = figures.get("burst") or {}
    soak: dict[str, Any] = figures.get("soak") or {}
    board: dict[str, Any] = figures.get("dashboard") or {}
    return {
        "worker_events_per_s_keyed": keyed,
        "worker_events_per_s_unkeyed": unkeyed,
        "faust_count_events_per_s": count,
        "faust_floor_events_per_s": floor,
        "passthrough_events_per_s": passthrough,
        "pure_core_events_per_s": core,
        "design_ceiling_events_per_s": rate(figures, "batched"),
        "p99_ms": p99s(figures),
        "burst_drain_s": burst.get("drain_s"),
        "burst_transitions_expected": burst.get("transitions_expected"),
        "burst_transitions_received": burst.get("transitions_received", burst.get("transitions")),
        "worker_keyed_vs_faust_count": ratio(keyed, count),
        "worker_unkeyed_vs_faust_count": ratio(unkeyed, count),
        "worker_keyed_vs_faust_floor": ratio(keyed, floor),
        "worker_keyed_vs_passthrough": ratio(keyed, passthrough),
        "worker_keyed_vs_pure_core": ratio(keyed, core),
        "soak_events_per_s": soak.get("offered_per_second"),
        "soak_worker_rss_start_mib": soak.get("worker_rss_start_mib"),
        "soak_worker_rss_end_mib": soak.get("worker_rss_end_mib"),
        "soak_worker_rss_slope_mib_per_hour": soak.get("worker_rss_slope_mib_per_hour"),
        "soak_lag_p99": soak.get("lag_p99"),
        "soak_lag_max": soak.get("lag_max"),
        "soak_p99_ms_by_window": [w.get("p99_ms") for w in soak.get("windows") or []] or None,
        "dashboard_leads": board.get("leads"),
        "dashboard_page_median_ms_max": board.get("page_median_ms_max"),
        "dashboard_page_max_ms": board.get("page_max_ms"),
        "dashboard_html_gzip_bytes_max": board.get("html_gzip_bytes_max"),
        "bench_minutes": None if minutes is None else round(minutes, 1),
    }


TARGETS = {  # summary key -> (target, how it reads)
    "worker_keyed_vs_faust_count": (0.5, ">= 0.5"),
    "worker_unkeyed_vs_faust_count": (0.3, ">= 0.3"),
    "worker_keyed_vs_faust_floor": (1.0, ">= 1.0"),
}


def num(value: Any, unit: str = "") -> str:
    if value is None:
        return "n/a"
    if isinstance(value, float) and not value.is_integer():
        return f"{value:,.3g}{unit}" if abs(value) < 10 else f"{value:,.1f}{unit}"
    return f"{value:,}{unit}"


def summary_lines(s: dict[str, Any]) -> list[str]:
    rows = [
        ("worker, subject-keyed input, events/s", num(s.get("worker_events_per_s_keyed"))),
        ("worker, unkeyed input, events/s", num(s.get("worker_events_per_s_unkeyed"))),
        ("Faust count-only agent, events/s", num(s.get("faust_count_events_per_s"))),
        (
            "Faust minimal shape (consume + table write + send), events/s",
            num(s.get("faust_floor_events_per_s")),
        ),
        ("aiokafka passthrough, events/s", num(s.get("passthrough_events_per_s"))),
        ("pure core (Replay), events/s", num(s.get("pure_core_events_per_s"))),
        ("design ceiling (bench/batched.py), events/s", num(s.get("design_ceiling_events_per_s"))),
    ]
    for key, (target, text) in TARGETS.items():
        value = s.get(key)
        met = "n/a" if value is None else ("yes" if value >= target else "no")
        rows.append((f"{key} (target {text})", f"{num(value)} (met: {met})"))
    for offered, p99 in (s.get("p99_ms") or {}).items():
        load = offered.replace("burst_", "a burst of ")
        rows.append((f"p99 event -> transition at {load} events/s offered, ms", num(p99)))
    rows += [
        ("burst drain, s", num(s.get("burst_drain_s"))),
        (
            "burst transitions: pure core expects / received",
            f"{num(s.get('burst_transitions_expected'))} / "
            f"{num(s.get('burst_transitions_received'))}",
        ),
        (
            f"dashboard at {num(s.get('dashboard_leads'))} leads: slowest page's median / max ms",
            f"{num(s.get('dashboard_page_median_ms_max'))} / {num(s.get('dashboard_page_max_ms'))}",
        ),
        ("bench minutes (whole run)", num(s.get("bench_minutes"))),
    ]
    return ["| summary | value |", "|---|---|", *[f"| {a} | {b} |" for a, b in rows]]


def _rate_row(name: str, x: dict[str, Any] | None, note: str = "") -> str | None:
    if not isinstance(x, dict) or "events_per_second" not in x:
        return None
    steady = x.get("steady_events_per_second")
    extra = (
        f"steady (first to last commit) {num(steady)}/s; "
        if "steady_events_per_second" in x
        else ""
    )
    return (
        f"| {name} | {num(x['events_per_second'])} | {x.get('seconds', 'n/a')} s; {extra}{note} |"
    )


def _transitions(x: dict[str, Any]) -> str:
    if "transitions_expected" not in x:
        return ""
    return (
        f"transitions: {x['transitions_expected']:,} expected (pure core), "
        f"{x['transitions_distinct']:,} distinct received ({x['transitions_received']:,} in "
        f"all), {x['transitions_missing']:,} missing, {x['transitions_unexpected']:,} "
        "unexpected"
    )


def render(result: Result) -> str:
    f = result.figures
    worker, unkeyed = f.get("worker") or {}, f.get("worker_unkeyed") or {}
    b = f.get("batched") or {}
    rows = [
        _rate_row(
            "pure core (Replay, one process)",
            f.get("pure_core"),
            f"{num((f.get('pure_core') or {}).get('transitions'))} transitions",
        ),
        _rate_row("passthrough ceiling (aiokafka)", f.get("passthrough")),
        _rate_row(
            "design ceiling: the worker's stages on aiokafka batches, no Faust",
            b,
            f"{num(b.get('events'))} events; {num(b.get('transitions'))} transitions",
        ),
        _rate_row(
            "Faust agent, count only",
            f.get("faust_count"),
            f"runs: {(f.get('faust_count') or {}).get('runs_events_per_second')}",
        ),
        _rate_row(
            "Faust agent, minimal shape (table write + send)",
            f.get("faust_floor"),
            f"runs: {(f.get('faust_floor') or {}).get('runs_events_per_second')}",
        ),
        _rate_row(
            "full worker, subject-keyed input",
            worker,
            f"scoring done after {worker.get('scored_s')} s; projection backlog at most "
            f"{num(worker.get('projection_backlog_max'))}; {_transitions(worker)}",
        ),
        _rate_row(
            "full worker, unkeyed input",
            unkeyed,
            f"scoring done after {unkeyed.get('scored_s')} s; {_transitions(unkeyed)}",
        ),
    ]
    two = f.get("scale_out")
    if isinstance(two, dict):
        rows.append(
            _rate_row(
                f"two workers ({two['events']:,} events)",
                two,
                f"{num(two.get('vs_one_worker'))}x one worker",
            )
        )
    if b.get("error"):
        rows.append(f"| design ceiling | n/a | {b['error']} |")
    lines = [
        f"# Benchmark ({result.mode}), {result.started_at}",
        "",
        f"`{result.command}` at commit {result.commit}",
        "",
        *summary_lines(result.summary),
        "",
        f"Machine: {result.machine['cpu']}, {result.machine['cores']} cores, "
        f"{result.machine['memory_gib']} GiB, {result.machine['os']}, Python "
        f"{result.machine['python']}. Versions: "
        + ", ".join(f"{k} {v}" for k, v in result.versions.items()),
        "",
        f"{result.events:,} messages ({result.bad_messages} bad) from {result.prospects:,} "
        f"prospects, {result.partitions} partitions per topic.",
        "",
        "| throughput | events/s | note |",
        "|---|---|---|",
        *[r for r in rows if r is not None],
    ]
    lat = [*(f.get("latency") or []), *([f["burst"]] if isinstance(f.get("burst"), dict) else [])]
    if lat:
        lines += [
            "",
            "| offered events/s | events | transitions | p50 ms | p95 ms | p99 ms | max ms "
            "| drain after last send s | drain from first send s |",
            "|---|---|---|---|---|---|---|---|---|",
            *[
                f"| {'burst ' if x.get('burst') else ''}{x['offered_per_second']:,} (sent "
                f"{x['achieved_offer']:,}/s) | {x['events']:,} | {x['transitions']:,}"
                f"{_of_expected(x)}"
                f" | {num(x.get('p50_ms'))} | {num(x.get('p95_ms'))} | {num(x.get('p99_ms'))} "
                f"| {num(x.get('max_ms'))} | {x['drain_after_last_send_s']} | {x['drain_s']} |"
                for x in lat
            ],
        ]
    lines += _soak_lines(f.get("soak"))
    lines += _state_lines(f)
    lines += _dashboard_lines(f.get("dashboard"))
    if result.notes:
        lines += ["", *[f"- {n}" for n in result.notes]]
    return "\n".join(lines) + "\n"


def _soak_lines(soak: dict[str, Any] | None) -> list[str]:
    if not soak:
        return []
    rss = [
        f"{who} RSS {num(soak.get(f'{who}_rss_start_mib'))} -> "
        f"{num(soak.get(f'{who}_rss_end_mib'))} MiB (max {num(soak.get(f'{who}_rss_max_mib'))}, "
        f"slope after the first window {num(soak.get(f'{who}_rss_slope_mib_per_hour'))} MiB/h)"
        for who in ("worker", "projector")
        if f"{who}_rss_start_mib" in soak
    ]
    return [
        "",
        f"Soak: {soak['events']:,} events at {num(soak['offered_per_second'])}/s offered "
        f"(sent {num(soak['achieved_offer'])}/s; the keyed worker phase measured "
        f"{num(soak.get('of_worker_events_per_second'))} events/s) for {num(soak['seconds'])} s; "
        f"{soak['transitions']:,} transitions; consumer lag p99 {num(soak.get('lag_p99'))}, "
        f"max {num(soak.get('lag_max'))} over {soak['samples']} samples; "
        + "; ".join(rss)
        + f"; record cache {soak['record_cache_size']:,} records; drained "
        f"{soak['drain_after_last_send_s']} s after the last send.",
        "",
        "| soak window from, s | transitions | p50 ms | p99 ms | max ms |",
        "|---|---|---|---|---|",
        *[
            f"| {w['from_s']:,} | {w['transitions']:,} | {num(w.get('p50_ms'))} "
            f"| {num(w.get('p99_ms'))} | {num(w.get('max_ms'))} |"
            for w in soak.get("windows") or []
        ],
    ]


def _dashboard_lines(board: dict[str, Any] | None) -> list[str]:
    if not board:
        return []
    return [
        "",
        f"Dashboard over {board['leads']:,} leads in Redis (filled in {board['fill_seconds']} s "
        f"through the projector's write path), {board['rounds']} requests per page, request to "
        "last byte over loopback:",
        "",
        "| page | median ms | max ms | HTML bytes | gzipped | with assets |",
        "|---|---:|---:|---:|---:|---:|",
        *[
            f"| {name} (`{x['path']}`) | {x['median_ms']} | {x['max_ms']} | "
            f"{x['html_bytes']:,} | {x['html_gzip_bytes']:,} | {x['with_assets_bytes']:,} |"
            for name, x in board["pages"].items()
        ],
    ]


def _of_expected(x: dict[str, Any]) -> str:
    return f" of {x['transitions_expected']:,} expected" if "transitions_expected" in x else ""


def _state_lines(f: dict[str, Any]) -> list[str]:
    rows: list[tuple[str, Any]] = []
    if rec := f.get("recovery"):
        rows += [
            (
                "kill -9, restart on the same data: spawn -> processing again",
                f"{rec['restart_after_kill9_s']} s",
            ),
            (
                "empty data directory: spawn -> processing again (changelog replay)",
                f"{rec['empty_dir_restore_s']} s, {rec['changelog_records']:,} changelog records, "
                f"{rec['changelog_records_per_s']:,} records/s",
            ),
        ]
    if mem := f.get("memory"):
        rows += [
            ("worker RSS after the keyed throughput run", f"{mem['worker_rss_mib']} MiB"),
            ("RocksDB bytes per lead", num(mem["rocksdb_bytes_per_lead"])),
            ("Redis bytes per lead", num(mem["redis_bytes_per_lead"])),
            ("leads (pure core's count)", num((f.get("pure_core") or {}).get("leads"))),
        ]
    if state := f.get("state"):
        n = state["leads"]
        rows += [(f"state at {n:,} leads: {k}", v) for k, v in state.items() if k != "leads"]
    if not rows:
        return []
    return [
        "",
        "| recovery, memory and state | value |",
        "|---|---|",
        *[f"| {a} | {b} |" for a, b in rows],
    ]


def fallback(result: Result) -> str:
    """The figures as measured, when ``render`` fails on an unexpected shape."""
    return (
        f"# Benchmark ({result.mode}), {result.started_at}\n\n`{result.command}` at "
        f"commit {result.commit}\n\n```json\n"
        f"{json.dumps({'summary': result.summary, **result.figures}, indent=2, default=str)}"
        "\n```\n\n" + "\n".join(f"- {n}" for n in result.notes) + "\n"
    )
