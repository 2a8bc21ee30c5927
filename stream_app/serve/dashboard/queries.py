"""What the dashboard reads from the Redis projection, beyond what the JSON API reads.

Every read is a few pipelined round trips whatever the number of leads, except
where noted: the pages must render in well under 500 ms with 100,000 leads
(bench/dashboard.py measures it). The projection's keys are documented in
``stream_app/serve/stores/projection.py``.
"""

from __future__ import annotations

import itertools
import json
import math
from datetime import UTC, datetime, timedelta
from typing import Any

from stream_app.serve.stores.grid import BANDS
from stream_app.serve.stores.projection import RedisProjection

WEEKS = 12
#: How many of the hottest leads a filtered list looks through, at most.
FILTER_SCAN = 5_000
SCORE_BINS = (0, 20, 40, 60, 80, 100, 120, 150)


def _s(raw: bytes | None) -> str | None:
    return raw.decode() if raw is not None else None


class Reads:
    """The dashboard's reads over one projection (its client and key prefix)."""

    def __init__(self, projection: RedisProjection) -> None:
        self.projection = projection
        self.r: Any = projection.redis
        self.p = projection.p

    async def weekly(self) -> list[tuple[str, int, int]]:
        """First MQLs and first SQLs per week (Monday, UTC), the last ``WEEKS`` weeks of data."""
        newest = 0.0
        for key in ("mql_at", "sql_at"):
            top = await self.r.zrevrange(f"{self.p}{key}", 0, 0, withscores=True)
            if top:
                newest = max(newest, top[0][1])
        if not newest:
            return []
        day = datetime.fromtimestamp(newest, UTC).date()
        monday = datetime(day.year, day.month, day.day, tzinfo=UTC) - timedelta(days=day.weekday())
        starts = [monday - timedelta(weeks=n) for n in range(WEEKS - 1, -1, -1)]
        async with self.r.pipeline(transaction=False) as pipe:
            for start in starts:
                lo, hi = start.timestamp(), (start + timedelta(weeks=1)).timestamp()
                pipe.zcount(f"{self.p}mql_at", lo, f"({hi}")
                pipe.zcount(f"{self.p}sql_at", lo, f"({hi}")
            counts = await pipe.execute()
        return [
            (start.strftime("%d %b"), counts[2 * i], counts[2 * i + 1])
            for i, start in enumerate(starts)
        ]

    async def grid(self, grades: list[str]) -> dict[str, int]:
        """Leads per cell of the fit x engagement grid (every lead is in exactly one)."""
        cells = [f"{g}{b}" for g in grades for b in BANDS]
        async with self.r.pipeline(transaction=False) as pipe:
            for name in cells:
                pipe.scard(f"{self.p}cell:{name}")
            counts = await pipe.execute()
        return dict(zip(cells, counts, strict=True))

    async def score_distribution(self) -> list[tuple[str, int]]:
        """Leads (not disqualified) per total-score band."""
        edges = [-math.inf, *SCORE_BINS, math.inf]
        async with self.r.pipeline(transaction=False) as pipe:
            for lo, hi in itertools.pairwise(edges):
                pipe.zcount(f"{self.p}hot", lo, f"({hi}")
            counts = await pipe.execute()
        names = (
            ["< 0"]
            + [f"{lo}-{hi}" for lo, hi in itertools.pairwise(SCORE_BINS)]
            + [f"{SCORE_BINS[-1]}+"]
        )
        return list(zip(names, counts, strict=True))

    async def leads(self, ids: list[str]) -> list[dict[str, Any]]:
        """Each lead's newest update (a lead erased meanwhile is left out)."""
        if not ids:
            return []
        async with self.r.pipeline(transaction=False) as pipe:
            for lead_id in ids:
                pipe.hget(f"{self.p}lead:{lead_id}", "json")
            raws = await pipe.execute()
        return [json.loads(raw) for raw in raws if raw is not None]

    async def last_transitions(self, ids: list[str]) -> dict[str, dict[str, Any]]:
        """Each lead's newest transition (what says "hand-raise"), by lead id."""
        if not ids:
            return {}
        async with self.r.pipeline(transaction=False) as pipe:
            for lead_id in ids:
                pipe.zrevrange(f"{self.p}lead:{lead_id}:transitions", 0, 0)
            found = await pipe.execute()
        return {i: json.loads(raw[0]) for i, raw in zip(ids, found, strict=True) if raw}

    async def hottest(
        self,
        *,
        stage: str | None = None,
        grade: str | None = None,
        cell: str | None = None,
        account: str | None = None,
        source: str | None = None,
        limit: int = 50,
    ) -> list[dict[str, Any]]:
        """The hottest leads that pass every filter given, hottest first.

        An account's leads come from its own sorted set; otherwise the hottest
        leads (of the stage) are read in chunks and filtered on their hash,
        looking through at most ``FILTER_SCAN`` of them.
        """
        if account:
            key = f"{self.p}account:{account}"
        else:
            key = f"{self.p}hot" + (f":{stage}" if stage else "")
        found: list[str] = []
        chunk = limit if not (grade or cell or source or (account and stage)) else 500
        for start in range(0, FILTER_SCAN, chunk):
            ids = [i.decode() for i in await self.r.zrevrange(key, start, start + chunk - 1)]
            if not ids:
                break
            async with self.r.pipeline(transaction=False) as pipe:
                for lead_id in ids:
                    pipe.hmget(f"{self.p}lead:{lead_id}", "stage", "cell", "source")
                rows = await pipe.execute()
            for lead_id, (s, c, src) in zip(ids, rows, strict=True):
                if s is None:
                    continue
                if (
                    (stage and _s(s) != stage)
                    or (cell and _s(c) != cell)
                    or (grade and not (_s(c) or "").startswith(grade))
                    or (source and _s(src) != source)
                ):
                    continue
                found.append(lead_id)
            if len(found) >= limit:
                break
        return await self.leads(found[:limit])

    async def cell_leads(self, cell: str, limit: int) -> list[dict[str, Any]]:
        """A grid cell's hottest leads: Redis sorts the cell's set by each lead hash's total."""
        ids = await self.r.sort(
            f"{self.p}cell:{cell}", by=f"{self.p}lead:*->total", desc=True, start=0, num=limit
        )
        return await self.leads([i.decode() for i in ids])

    async def history(self, lead_id: str) -> list[dict[str, Any]]:
        """The lead's last score points (``SCORES_KEPT``), oldest first."""
        raw = await self.r.zrange(f"{self.p}lead:{lead_id}:scores", 0, -1)
        return [json.loads(r) for r in raw]

    async def waiting(
        self, which: str, limit: int, *, newest: bool = False
    ) -> tuple[int, list[dict[str, Any]]]:
        """How many leads wait for sales within (``open``) or past (``breached``) the SLA,
        and ``limit`` of them: the earliest deadline first (``newest``: the latest)."""
        key = f"{self.p}sla_due:{which}"
        read = self.r.zrevrange if newest else self.r.zrange
        ids = [i.decode() for i in await read(key, 0, limit - 1)]
        return await self.r.zcard(key), await self.leads(ids)

    async def feed(
        self, count: int = 30, after: str | None = None
    ) -> list[tuple[str, dict[str, Any]]]:
        """The newest transitions stored (stream id, transition), newest first;
        with ``after``, only those after that stream id, oldest first."""
        key = f"{self.p}feed"
        if after is None:
            entries = await self.r.xrevrange(key, count=count)
        else:
            entries = await self.r.xrange(key, min=f"({after}", count=count)
        return await self._transitions(entries)

    async def _transitions(self, entries: list[Any]) -> list[tuple[str, dict[str, Any]]]:
        if not entries:
            return []
        async with self.r.pipeline(transaction=False) as pipe:
            for _, fields in entries:
                seq = int(fields[b"seq"])
                pipe.zrangebyscore(f"{self.p}lead:{fields[b'lead'].decode()}:transitions", seq, seq)
            found = await pipe.execute()
        return [
            (entry_id.decode(), json.loads(raw[0]))
            for (entry_id, _), raw in zip(entries, found, strict=True)
            if raw  # an erased lead's, or one beyond the lead's last TRANSITIONS_KEPT
        ]

    async def wait_feed(
        self, after: str, block_ms: int
    ) -> tuple[str, list[tuple[str, dict[str, Any]]]]:
        """Transitions stored after stream id ``after``, waiting up to ``block_ms`` for one;
        with the newest stream id read (an erased lead's entry is read but not returned)."""
        reply = await self.r.xread({f"{self.p}feed": after}, count=50, block=block_ms)
        if not reply:
            return after, []
        entries = reply[0][1]
        return entries[-1][0].decode(), await self._transitions(entries)

    async def feed_head(self) -> str:
        """The newest stream id of the feed (``0-0`` when empty): where a live view starts."""
        newest = await self.r.xrevrange(f"{self.p}feed", count=1)
        return newest[0][0].decode() if newest else "0-0"
