"""The dashboard at 100,000 leads: server-side render time of each page, and page weights.

    python -m bench.dashboard                 # 100,000 leads (about 2 min here)
    python -m bench.dashboard --leads 10000

Not a timed test: a measure. It fills a Redis prefix of its own through the
projection's own write path (``RedisProjection.apply_updates`` /
``add_transitions``, the projector's calls) with synthetic score updates:
leads in every stage, 5 per account, 8 sources, 12 campaigns, SQLs waiting
within and past the SLA, one lead with a full score history (its page is the
heaviest). It serves the real API application (``create_api`` with the
dashboard) on loopback in this process and times each page, ``--rounds``
times, from request to the last byte (server and client on one machine: the
figure is the server's render time plus a loopback round trip). Page weight:
the HTML's bytes, raw and gzipped, plus the stylesheet and script every page
loads. Writes bench/results/<stamp>-dashboard.{md,json}; deletes its keys after.
"""

from __future__ import annotations

import argparse
import asyncio
import gzip
import json
import random
import statistics
import time
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import aiohttp
import redis.asyncio as aioredis
from aiohttp import web

from schemas.transitions import Contribution, Scores, ScoreUpdate, StageTransition
from stream_app.config import REPO_ROOT, Settings
from stream_app.rules_file import load_rules
from stream_app.scoring.rules import Rules
from stream_app.serve.api.app import create_api
from stream_app.serve.stores.projection import SCORES_KEPT, RedisProjection

RESULTS = REPO_ROOT / "bench" / "results"
T0 = datetime(2026, 9, 1, tzinfo=UTC)
WEIGHTS = {"lead": 60, "mql": 15, "sql": 8, "pql": 2, "recycled": 8, "disqualified": 5,
           "sales_accepted": 1, "opportunity": 0.6, "customer": 0.4}  # fmt: skip


def _update(rng: random.Random, rules: Rules, i: int, version: int = 1) -> ScoreUpdate:
    stage = rng.choices(list(WEIGHTS), weights=list(WEIGHTS.values()))[0]
    fit = rng.choice([0, 10, 20, 35, 45, 60, 70])
    engagement = round(rng.uniform(0, 160 if stage in ("mql", "sql") else 70), 2)
    grades = rules.spec.fit.grades
    grade = next(g.grade for g in grades if g.min_fit is None or fit >= g.min_fit)
    names = [r.id for r in rules.spec.engagement.rules]
    contributions = [
        Contribution(rule=n, kind="engagement", points=round(engagement / 4, 2))
        for n in rng.sample(names, 4)
    ] + [Contribution(rule="senior_title", kind="fit", points=fit)]
    first = T0 + timedelta(hours=rng.uniform(0, 24 * 90))
    qualified = stage in ("mql", "sql", "sales_accepted", "opportunity", "customer")
    mql_at = first + timedelta(days=rng.uniform(1, 20)) if qualified else None
    sql_at = mql_at + timedelta(days=rng.uniform(0, 10)) if mql_at and stage != "mql" else None
    sla = rng.choice(["open", "breached"]) if stage == "sql" else None
    return ScoreUpdate(
        lead_id=f"bench-{i}",
        account_id=f"account-{i // 5}.com",
        version=version,
        stage=stage,
        scores=Scores(fit=fit, engagement=engagement, total=fit + engagement, grade=grade),
        contributions=contributions,
        last_activity_at=first + timedelta(days=30),
        first_touch_at=first,
        mql_at=mql_at,
        sql_at=sql_at,
        source=f"source-{i % 8}",
        campaign=f"campaign-{i % 12}",
        rules_version=rules.stamp,
        sla=sla,
        sla_due_at=(sql_at + timedelta(hours=4)) if sla and sql_at else None,
        event_id=f"e-{i}-{version}",
    )


def _transition(update: ScoreUpdate, sequence: int) -> StageTransition:
    return StageTransition(
        transition_id=f"t-{update.lead_id}-{sequence}",
        lead_id=update.lead_id,
        account_id=update.account_id,
        from_stage="lead",
        to_stage=update.stage,
        reason="score_threshold",
        occurred_at=update.last_activity_at or T0,
        scores=update.scores,
        contributions=update.contributions,
        triggering_event_id=update.event_id,
        triggering_event_type="page_view",
        rules_version=update.rules_version,
        sequence=sequence,
    )


async def fill(projection: RedisProjection, rules: Rules, leads: int) -> float:
    rng = random.Random(27)
    started = time.perf_counter()
    for start in range(0, leads, 2_000):
        updates = [_update(rng, rules, i) for i in range(start, min(start + 2_000, leads))]
        await projection.apply_updates(updates)
        moved = [u for u in updates if u.stage != "lead"]
        await projection.add_transitions([_transition(u, 1) for u in moved])
    # the lead whose page is measured: a full chart and many transitions
    for version in range(2, SCORES_KEPT + 2):
        await projection.apply_update(_update(random.Random(version), rules, 0, version))
    return time.perf_counter() - started


async def measure(url: str, rounds: int) -> dict[str, dict[str, Any]]:
    pages = {
        "call first": "/ui/",
        "funnel": "/ui/funnel",
        "leads": "/ui/leads",
        "leads, filtered (grade A, source-3)": "/ui/leads?grade=A&source=source-3",
        "leads, one grid cell": "/ui/leads?cell=B2",
        "one lead": "/ui/lead?id=bench-0",
        "accounts": "/ui/accounts",
        "one account": "/ui/account?id=account-0.com",
        "sales SLA": "/ui/sla",
        "rules": "/ui/rules",
    }
    out: dict[str, dict[str, Any]] = {}
    async with aiohttp.ClientSession() as http:
        assets = 0
        for name in ("dashboard.css", "live.js"):
            async with http.get(f"{url}/ui/static/{name}") as response:
                assets += len(await response.read())
        for name, path in pages.items():
            times = []
            body = b""
            for _ in range(rounds):
                started = time.perf_counter()
                async with http.get(f"{url}{path}") as response:
                    body = await response.read()
                    assert response.status == 200, (path, response.status)
                times.append((time.perf_counter() - started) * 1000)
            out[name] = {
                "path": path,
                "median_ms": round(statistics.median(times), 1),
                "max_ms": round(max(times), 1),
                "html_bytes": len(body),
                "html_gzip_bytes": len(gzip.compress(body)),
                "with_assets_bytes": len(body) + assets,
            }
    return out


async def run(leads: int, rounds: int) -> dict[str, Any]:
    settings = Settings()
    rules = load_rules(settings.rules_path)
    prefix = f"ls:bench:{uuid.uuid4().hex[:8]}:"
    client = aioredis.Redis.from_url(settings.redis_url, socket_timeout=30)
    projection = RedisProjection(client, prefix)
    try:
        fill_s = await fill(projection, rules, leads)
        app = create_api(
            settings.model_copy(update={"api_token": None}),
            RedisProjection(aioredis.Redis.from_url(settings.redis_url), prefix),
            rules.spec.accounts.top_n,
            rules.spec.funnel_review,
            rules,
        )
        runner = web.AppRunner(app, access_log=None)
        await runner.setup()
        site = web.TCPSite(runner, "127.0.0.1", 0)
        await site.start()
        port = runner.addresses[0][1]
        try:
            pages = await measure(f"http://127.0.0.1:{port}", rounds)
        finally:
            await runner.cleanup()
    finally:
        keys = [k async for k in client.scan_iter(match=f"{prefix}*", count=10_000)]
        for start in range(0, len(keys), 10_000):
            await client.delete(*keys[start : start + 10_000])
        await client.aclose()
    return {"leads": leads, "rounds": rounds, "fill_seconds": round(fill_s, 1), "pages": pages}


def report(result: dict[str, Any], commit: str) -> str:
    lines = [
        f"# Dashboard render times at {result['leads']:,} leads ({commit})",
        "",
        f"`python -m bench.dashboard --leads {result['leads']}`: {result['rounds']} requests "
        "per page, request to last byte over loopback (server-side render plus a loopback "
        f"round trip); the projection filled in {result['fill_seconds']} s through the "
        "projector's write path. Weights: the HTML, raw and gzipped, and with the stylesheet "
        "and script every page loads (nothing else is fetched).",
        "",
        "| page | median ms | max ms | HTML bytes | gzipped | with assets |",
        "|---|---:|---:|---:|---:|---:|",
    ]
    for name, p in result["pages"].items():
        lines.append(
            f"| {name} (`{p['path']}`) | {p['median_ms']} | {p['max_ms']} | "
            f"{p['html_bytes']:,} | {p['html_gzip_bytes']:,} | {p['with_assets_bytes']:,} |"
        )
    return "\n".join(lines) + "\n"


def main() -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.dashboard", description=__doc__)
    parser.add_argument("--leads", type=int, default=100_000)
    parser.add_argument("--rounds", type=int, default=5)
    args = parser.parse_args()
    import subprocess  # noqa: PLC0415

    commit = subprocess.run(
        ["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True, check=False
    ).stdout.strip()
    result = asyncio.run(run(args.leads, args.rounds))
    stamp = datetime.now(UTC).strftime("%Y-%m-%dT%H%MZ")
    RESULTS.mkdir(exist_ok=True)
    text = report(result, commit)
    Path(RESULTS / f"{stamp}-dashboard.md").write_text(text)
    Path(RESULTS / f"{stamp}-dashboard.json").write_text(
        json.dumps({"commit": commit, **result}, indent=2) + "\n"
    )
    print(text)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
