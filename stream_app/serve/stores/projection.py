"""The Redis projection: current lead state for fast lookups, written from score updates.

Idempotent and order-safe: a score update carries the lead's ``version``; a
Lua script applies it only if it is newer than what Redis holds, and updates
every index in the same atomic step. Replaying updates, or receiving them out
of order, leaves the same result. Transitions are kept per lead in a sorted
set by sequence number, so a re-sent transition is stored once.

Keys (``<p>`` is ``LEADSTREAM_REDIS_KEY_PREFIX``, default ``ls:``)::

    <p>lead:<id>                 hash: version, stage, total, account, source, campaign
                                 ("(none)" if unset), json (the update)
    <p>lead:<id>:transitions     zset: sequence -> transition JSON (last 20)
    <p>stage:<stage>             set of lead ids          <p>leads   set of all lead ids
    <p>hot, <p>hot:<stage>       zset: lead id -> total   (disqualified leads are not "hot")
    <p>account:<account>         zset: lead id -> total   <p>accounts  set of account ids
    <p>reached:mql|sql           set of lead ids that ever reached the stage
    <p>velocity:to_mql           zset: lead id -> days from first touch to MQL
    <p>velocity:mql_to_sql       zset: lead id -> days from MQL to SQL
    <p>source:<s>:leads|mql|sql  sets per first-touch source   <p>sources  set of sources
    <p>campaign:<c>:leads|mql|sql  the same per campaign       <p>campaigns

A lead is in the sets of its current source and campaign only. Both can
change: an earlier first touch that arrives late (or an anonymous visitor's,
merged) brings its own. The script then moves the lead's memberships from the
value its hash held to the new one (SMOVE: what it reached goes along) and
drops a value nobody is left under from ``<p>sources`` / ``<p>campaigns``. The
script before this kept the lead under its old value too ("(none)" counted
every lead first seen without a source); ``repair_attribution`` cleans such a
projection in place (``python -m stream_app projector --repair-attribution``).
    <p>sla:open|breached         sets of leads waiting for sales within / past the SLA
    <p>sla_due:open|breached     the same as zsets: lead id -> pick-up deadline (the dashboard
                                 lists the earliest first without reading every lead)
    <p>mql_at                    zset: lead id -> first MQL time (the newest MQLs' review)
    <p>accounts:dirty            set of accounts whose leads changed since their score was kept
    <p>account_scores            zset: account -> minus its score (ties in id order), kept by
                                 the readers (``top_accounts``) for the top-N in
                                 <p>account_scores:top_n; a dirty account is scored again
    <p>sql_at                    zset: lead id -> first SQL time (the dashboard's SQLs per week)
    <p>cell:<grade><band>        set of lead ids in a cell of the fit x engagement grid
                                 (``grid.cell``; the hash's ``cell`` says which)
    <p>lead:<id>:scores          zset: version -> {"v","t","total","fit","engagement","stage"}
                                 (the lead's last SCORES_KEPT updates: its score chart)
    <p>feed                      stream: {lead, seq} per transition stored (last FEED_KEPT):
                                 what the dashboard's live view follows
    <p>lead:<id> handoff_band    the score band (``outcomes.drift.band``) of the lead's last
                                 transition to MQL, PQL or SQL: where its sales outcome counts
    <p>outcomes:<outcome>:<band> zset: lead id -> event time of that sales outcome, the last
                                 ``drift.WINDOW_DAYS`` of feedback (``/outcomes``, drift)
    <p>outcomes:newest           event time of the newest sales outcome counted
    <p>breaches                  zset: SLA breach (its JSON) -> its deadline, the last
                                 BREACHES_KEPT published (the Sales SLA page's recent breaches,
                                 also of leads picked up since)
    <p>rules_seen                hash: rules stamp -> when the projection first stored an
                                 update scored with it (wall clock, seconds): a rules switch
                                 re-scores every lead at once, so this is when it took
                                 effect (the dashboard's rules page; no lead data)

An erased lead (a tombstone on ``lead_score_updates``) leaves every one of
them in one atomic step (``erase``): its hash, transitions and score history,
its grid cell, its entries in the feed, the breaches and the drift's
outcomes, and its id
from every set and zset above, including the source and campaign sets of
earlier first-touch values; a source, campaign or account left with no lead
leaves its index set too. Nothing here is keyed by an anonymous id.
"""

from __future__ import annotations

import json
import statistics
import time
from datetime import UTC, datetime
from typing import Any

import redis.asyncio as aioredis

from schemas.transitions import STAGES, ScoreUpdate, SlaBreach, StageTransition
from stream_app.outcomes import drift
from stream_app.scoring.accounts import top_n_sum
from stream_app.scoring.funnel import MqlReview, mql_review
from stream_app.scoring.spec import FunnelReview
from stream_app.scoring.state import DAY
from stream_app.serve.stores import lua
from stream_app.serve.stores.grid import cell

TRANSITIONS_KEPT = 20
#: Score points kept per lead for its chart: one per projected update (the worker
#: sends a lead's newest update per batch, so a burst is one point).
SCORES_KEPT = 100
#: Transitions the live feed remembers (a dashboard that reconnects resumes from it).
FEED_KEPT = 500
#: SLA breaches kept for the dashboard's recent breaches (the latest deadlines).
BREACHES_KEPT = 500


def _days(later: Any, earlier: Any) -> str:
    if later is None or earlier is None:
        return ""
    return repr(round((later.timestamp() - earlier.timestamp()) / DAY, 4))


class RedisProjection:
    """Writes and reads the projection; every method is one or a few round trips."""

    def __init__(self, client: aioredis.Redis, prefix: str = "ls:") -> None:
        # redis-py types every reply as a union of all reply kinds; the commands
        # used here are known to return bytes / lists / floats, so: Any.
        self.redis: Any = client
        self.p = prefix
        self._apply = client.register_script(lua.APPLY_UPDATE)
        self._erase = client.register_script(lua.ERASE_LEAD)
        self._repair_member = client.register_script(lua.REPAIR_MEMBER)
        self._drop_empty_value = client.register_script(lua.DROP_EMPTY_VALUE)
        self._refresh_account_scores = client.register_script(lua.REFRESH_ACCOUNT_SCORES)
        self._record_outcome = client.register_script(lua.RECORD_OUTCOME)

    # --- writes (the worker) ---------------------------------------------------------

    async def apply_update(self, update: ScoreUpdate) -> bool:
        """Apply a score update; False if Redis already holds this version or a newer one."""
        applied = bool(await self._apply(args=self._args(update)))
        await self.redis.hsetnx(f"{self.p}rules_seen", update.rules_version, repr(time.time()))
        return applied

    async def apply_updates(self, updates: list[ScoreUpdate], now: float | None = None) -> None:
        """Apply many updates in one pipelined round trip (each one still version-checked),
        and note each rules stamp the first time one is stored (``<p>rules_seen``)."""
        if not updates:
            return
        seen_at = repr(time.time() if now is None else now)
        async with self.redis.pipeline(transaction=False) as pipe:
            for update in updates:
                await self._apply(args=self._args(update), client=pipe)
            for stamp in {u.rules_version for u in updates}:
                pipe.hsetnx(f"{self.p}rules_seen", stamp, seen_at)
            await pipe.execute()

    async def rules_seen(self) -> list[tuple[str, float]]:
        """Each rules stamp the projection stored updates under, with when it first did,
        the newest first."""
        raw = await self.redis.hgetall(f"{self.p}rules_seen")
        found = [(k.decode(), float(v)) for k, v in raw.items()]
        return sorted(found, key=lambda item: (-item[1], item[0]))

    async def erase(self, lead_ids: list[str]) -> None:
        """Delete every key and index entry of each lead (one atomic script per lead)."""
        if not lead_ids:
            return
        async with self.redis.pipeline(transaction=False) as pipe:
            for lead_id in lead_ids:
                await self._erase(args=[self.p, lead_id, *STAGES], client=pipe)
            await pipe.execute()

    @staticmethod
    def _days_args(update: ScoreUpdate) -> tuple[str, str]:
        to_mql = _days(update.mql_at, update.first_touch_at) if update.mql_at else ""
        if update.mql_at is not None and update.first_touch_at is None:
            to_mql = "0"
        mql_to_sql = _days(update.sql_at, update.mql_at) if update.sql_at is not None else ""
        return to_mql, mql_to_sql

    def _args(self, update: ScoreUpdate) -> list[str | int]:
        to_mql, mql_to_sql = self._days_args(update)
        return [
            self.p,
            update.lead_id,
            update.version,
            update.stage,
            repr(update.scores.total),
            update.account_id or "",
            update.model_dump_json(),
            to_mql,
            mql_to_sql,
            update.source or "(none)",
            update.campaign or "(none)",
            update.sla or "",
            repr(update.mql_at.timestamp()) if update.mql_at is not None else "",
            repr(update.sql_at.timestamp()) if update.sql_at is not None else "",
            cell(update.scores.grade, update.scores.engagement),
            json.dumps(
                {
                    "v": update.version,
                    "t": update.last_activity_at.timestamp() if update.last_activity_at else None,
                    "total": update.scores.total,
                    "fit": update.scores.fit,
                    "engagement": update.scores.engagement,
                    "stage": update.stage,
                },
                separators=(",", ":"),
            ),
            SCORES_KEPT,
            repr(update.sla_due_at.timestamp()) if update.sla_due_at is not None else "0",
        ]

    async def add_transition(self, transition: StageTransition) -> None:
        await self.add_transitions([transition])

    async def add_transitions(self, transitions: list[StageTransition]) -> None:
        """Keep each lead's last transitions (a re-sent one is stored once)."""
        if not transitions:
            return
        async with self.redis.pipeline(transaction=True) as pipe:
            for transition in transitions:
                key = f"{self.p}lead:{transition.lead_id}:transitions"
                pipe.zadd(key, {transition.model_dump_json(): transition.sequence})
                pipe.zremrangebyrank(key, 0, -TRANSITIONS_KEPT - 1)
                pipe.xadd(
                    f"{self.p}feed",
                    {"lead": transition.lead_id, "seq": transition.sequence},
                    maxlen=FEED_KEPT,
                    approximate=False,
                )
                await self._note_outcome(pipe, transition)
            await pipe.execute()

    async def _note_outcome(self, pipe: Any, transition: StageTransition) -> None:
        """Drift (``outcomes.drift``): a hand-off's band, or an outcome counted under it."""
        lead = transition.lead_id
        if transition.to_stage in ("mql", "pql", "sql"):
            band = drift.band(transition.scores.total)
            pipe.hset(f"{self.p}lead:{lead}", "handoff_band", band)
        outcome = drift.outcome_of(transition.detail)
        if transition.reason == "sales_feedback" and outcome is not None:
            window = drift.WINDOW_DAYS * DAY
            at = repr(transition.occurred_at.timestamp())
            await self._record_outcome(args=[self.p, lead, outcome, at, window], client=pipe)

    async def add_breaches(self, breaches: list[SlaBreach]) -> None:
        """Keep the latest SLA breaches by deadline (a re-sent one is stored once: its JSON
        is the same, its ``breach_id`` deterministic)."""
        if not breaches:
            return
        key = f"{self.p}breaches"
        async with self.redis.pipeline(transaction=True) as pipe:
            for breach in breaches:
                pipe.zadd(key, {breach.model_dump_json(): breach.occurred_at.timestamp()})
            pipe.zremrangebyrank(key, 0, -BREACHES_KEPT - 1)
            await pipe.execute()

    async def recent_breaches(self, limit: int) -> list[dict[str, Any]]:
        """The latest ``limit`` SLA breaches published, the latest deadline first."""
        found = await self.redis.zrevrange(f"{self.p}breaches", 0, limit - 1)
        return [json.loads(member) for member in found]

    async def repair_attribution(self, batch: int = 1000) -> dict[str, int]:
        """Remove the source and campaign memberships a lead's hash no longer holds.

        A projection written before the update script moved a lead whose
        attribution changed kept it under its old value as well (its first
        touch under "(none)" and its later source both counted it). Every
        membership is checked against the lead's hash, which holds its newest
        update; ``mql_at`` and ``sql_at`` are never reset, so that update says
        everything the sets need. Safe beside a running projector (each check
        is one script) and idempotent; returns the memberships removed per
        dimension (leads, mql and sql sets together).
        """
        removed = {"source": 0, "campaign": 0}
        for dim in removed:
            values = [v.decode() for v in await self.redis.smembers(f"{self.p}{dim}s")]
            for value in values:
                for part in ("leads", "mql", "sql"):
                    ids = [
                        i.decode()
                        async for i in self.redis.sscan_iter(
                            f"{self.p}{dim}:{value}:{part}", count=batch
                        )
                    ]
                    for start in range(0, len(ids), batch):
                        async with self.redis.pipeline(transaction=False) as pipe:
                            for lead_id in ids[start : start + batch]:
                                args = [self.p, dim, value, lead_id]
                                await self._repair_member(args=args, client=pipe)
                            removed[dim] += sum(await pipe.execute())
                await self._drop_empty_value(args=[self.p, dim, value])
        return removed

    # --- reads (the API) ---------------------------------------------------------------

    async def lead(self, lead_id: str) -> dict[str, Any] | None:
        raw = await self.redis.hget(f"{self.p}lead:{lead_id}", "json")
        if raw is None:
            return None
        transitions = await self.redis.zrevrange(f"{self.p}lead:{lead_id}:transitions", 0, -1)
        out: dict[str, Any] = json.loads(raw)
        out["recent_transitions"] = [json.loads(t) for t in transitions]
        return out

    async def top(self, stage: str | None, limit: int) -> list[dict[str, Any]]:
        key = f"{self.p}hot" + (f":{stage}" if stage else "")
        ids = await self.redis.zrevrange(key, 0, limit - 1, withscores=True)
        return await self._summaries([(i.decode(), s) for i, s in ids])

    async def _summaries(self, scored: list[tuple[str, float]]) -> list[dict[str, Any]]:
        """Each scored lead's stage and account (schemas.api.LeadSummary).

        A lead whose hash is gone between the two reads is left out: every
        written lead has a stage, so a summary always has one.
        """
        async with self.redis.pipeline(transaction=False) as pipe:
            for lead_id, _ in scored:
                pipe.hmget(f"{self.p}lead:{lead_id}", "stage", "account")
            rows = await pipe.execute()
        return [
            {
                "lead_id": lead_id,
                "total": total,
                "stage": stage.decode(),
                "account_id": account.decode() if account else None,
            }
            for (lead_id, total), (stage, account) in zip(scored, rows, strict=True)
            if stage is not None
        ]

    async def account(self, account_id: str, top_n: int) -> dict[str, Any] | None:
        key = f"{self.p}account:{account_id}"
        scored = await self.redis.zrevrange(key, 0, -1, withscores=True)
        if not scored:
            return None
        leads = await self._summaries([(i.decode(), s) for i, s in scored])
        # A disqualified lead never raises its account (the core scores it 0 anyway).
        score = top_n_sum((r["total"] for r in leads if r["stage"] != "disqualified"), top_n)
        return {"account_id": account_id, "score": score, "top_n": top_n, "leads": leads}

    async def top_accounts(self, top_n: int, limit: int, chunk: int = 1000) -> list[dict[str, Any]]:
        """The ``limit`` highest account scores (as ``account`` computes them), highest first.

        The scores are kept in Redis and only the accounts whose leads changed
        since are scored again, ``chunk`` per script call: one ``account`` call
        per account took 43 s with 20,000 accounts and 100,000 leads, pipelined
        reads of the same 12 s, one script pass over them all 2.1 s on a loaded
        machine (bench/dashboard.py); a read with nothing dirty is one ZRANGE.
        """
        for _ in range(10_000):  # bounded: a projector writing meanwhile dirties more
            if not await self._refresh_account_scores(args=[self.p, top_n, chunk]):
                break
        rows = await self.redis.zrange(f"{self.p}account_scores", 0, limit - 1, withscores=True)
        return [{"account_id": a.decode(), "score": 0.0 - s} for a, s in rows]

    async def _median(self, key: str) -> float | None:
        n = await self.redis.zcard(key)
        if not n:
            return None
        middle = await self.redis.zrange(key, (n - 1) // 2, n // 2, withscores=True)
        return statistics.fmean(score for _, score in middle)

    async def mql_review(self, review: FunnelReview) -> MqlReview | None:
        """The newest MQLs' conversion to SQL, judged as ``simulate`` judges it."""
        newest = await self.redis.zrevrange(f"{self.p}mql_at", 0, review.last_mqls - 1)
        async with self.redis.pipeline(transaction=False) as pipe:
            for lead_id in newest:
                pipe.sismember(f"{self.p}reached:sql", lead_id)
            reached = await pipe.execute() if newest else []
        return mql_review((bool(r) for r in reached), review)

    async def has_leads(self) -> bool:
        return bool(await self.redis.scard(f"{self.p}leads"))

    async def outcomes(self) -> dict[str, Any]:
        """Sales outcomes per hand-off band over the last ``drift.WINDOW_DAYS`` of feedback."""
        newest = await self.redis.get(f"{self.p}outcomes:newest")
        until = float(newest) if newest else None
        since = "-inf" if until is None else repr(until - drift.WINDOW_DAYS * DAY)
        async with self.redis.pipeline(transaction=False) as pipe:
            for index in range(drift.BANDS):
                for outcome in drift.OUTCOMES:
                    pipe.zcount(f"{self.p}outcomes:{outcome}:{index}", since, "+inf")
            counts = await pipe.execute()
        bands = []
        for index in range(drift.BANDS):
            row = dict(zip(drift.OUTCOMES, counts[index * 5 : index * 5 + 5], strict=True))
            if any(row.values()):
                bands.append(
                    {
                        "band": drift.band_label(index),
                        "min_total": index * drift.BAND_WIDTH if index else None,
                        **row,
                        "win_rate": drift.win_rate(row),
                    }
                )
        when = None if until is None else datetime.fromtimestamp(until, UTC)
        return {"window_days": drift.WINDOW_DAYS, "until": when, "bands": bands}

    async def funnel(self, review: FunnelReview | None = None) -> dict[str, Any]:
        async with self.redis.pipeline(transaction=False) as pipe:
            for stage in STAGES:
                pipe.scard(f"{self.p}stage:{stage}")
            pipe.scard(f"{self.p}reached:mql")
            pipe.scard(f"{self.p}reached:sql")
            pipe.scard(f"{self.p}leads")
            pipe.scard(f"{self.p}sla:open")
            pipe.scard(f"{self.p}sla:breached")
            counts = await pipe.execute()
        stages = dict(zip(STAGES, counts[: len(STAGES)], strict=True))
        reached_mql, reached_sql, leads, sla_open, sla_breached = counts[len(STAGES) :]
        by: dict[str, dict[str, dict[str, int]]] = {}
        for dim in ("source", "campaign"):
            values = sorted(v.decode() for v in await self.redis.smembers(f"{self.p}{dim}s"))
            by[dim] = {}
            for value in values:
                async with self.redis.pipeline(transaction=False) as pipe:
                    for part in ("leads", "mql", "sql"):
                        pipe.scard(f"{self.p}{dim}:{value}:{part}")
                    n_leads, n_mql, n_sql = await pipe.execute()
                by[dim][value] = {"leads": n_leads, "reached_mql": n_mql, "reached_sql": n_sql}
        judged = await self.mql_review(review) if review is not None else None
        return {
            "leads": leads,
            "stages": stages,
            "reached_mql": reached_mql,
            "reached_sql": reached_sql,
            "mql_to_sql_rate": reached_sql / reached_mql if reached_mql else None,
            "median_days_to_mql": await self._median(f"{self.p}velocity:to_mql"),
            "median_days_mql_to_sql": await self._median(f"{self.p}velocity:mql_to_sql"),
            "by_source": by["source"],
            "by_campaign": by["campaign"],
            "sla": {"open": sla_open, "breached": sla_breached},
            "mql_review": None
            if judged is None
            else {
                "last_mqls": judged.mqls,
                "mql_to_sql_rate": judged.mql_to_sql_rate,
                "min_mql_to_sql": judged.min_mql_to_sql,
                "needs_review": judged.needs_review,
                "message": judged.line(),
            },
        }
