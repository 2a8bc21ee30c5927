"""The dashboard at ``--dashboard-leads`` leads (10,000 quick, 100,000 full): each page's
server-side render time and weight, measured by ``bench.dashboard`` (its own Redis prefix,
filled through the projector's write path; the real API application on loopback).
Needs no preload and no worker."""

from __future__ import annotations

from bench import dashboard
from bench.context import Run


async def run(run: Run) -> None:
    result = await dashboard.run(run.args.dashboard_leads, run.args.dashboard_rounds)
    pages = result["pages"]
    run.figures["dashboard"] = {
        **result,
        "slowest_page": max(pages, key=lambda name: pages[name]["median_ms"]),
        "page_median_ms_max": max(p["median_ms"] for p in pages.values()),
        "page_max_ms": max(p["max_ms"] for p in pages.values()),
        "html_gzip_bytes_max": max(p["html_gzip_bytes"] for p in pages.values()),
    }
