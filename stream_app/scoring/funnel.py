"""Funnel metrics from lead states: counts per stage, conversion, velocity, attribution.

An MQL->SQL rate below ~20% is the usual sign that the MQL definition needs
review (docs/domain.md): ``mql_review`` judges the newest MQLs against the rules'
``funnel_review`` (the Redis projection's ``/funnel`` uses it too), and
``simulate`` prints it so a rules change can be judged against past events
before it goes live.
"""

from __future__ import annotations

import statistics
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass, field

from schemas.transitions import STAGES
from stream_app.scoring.rules import Rules
from stream_app.scoring.sla import sla_status
from stream_app.scoring.spec import FunnelReview
from stream_app.scoring.state import DAY, LeadState


@dataclass(frozen=True)
class SourceFunnel:
    leads: int = 0
    reached_mql: int = 0
    reached_sql: int = 0


@dataclass(frozen=True)
class MqlReview:
    """MQL->SQL conversion of the newest MQLs, against the rules' ``funnel_review``."""

    mqls: int  # how many of the newest MQLs were judged
    mql_to_sql_rate: float
    min_mql_to_sql: float

    @property
    def needs_review(self) -> bool:
        return self.mql_to_sql_rate < self.min_mql_to_sql

    def line(self) -> str:
        rate, line = f"{100 * self.mql_to_sql_rate:.1f}%", f"{100 * self.min_mql_to_sql:g}%"
        head = f"MQL->SQL conversion of the last {self.mqls} MQLs: {rate}"
        if self.needs_review:
            return f"{head}, below {line}: the MQL definition needs review"
        return f"{head} (review below {line})"


def mql_review(newest_first: Iterable[bool], review: FunnelReview) -> MqlReview | None:
    """Judge the newest MQLs (each: did it reach SQL?), or None with too few to judge."""
    judged = list(newest_first)[: review.last_mqls]
    if len(judged) < review.min_mqls:
        return None
    return MqlReview(len(judged), sum(judged) / len(judged), review.min_mql_to_sql)


@dataclass(frozen=True)
class Funnel:
    leads: int
    stages: dict[str, int]
    reached_mql: int
    reached_sql: int
    mql_to_sql_rate: float | None
    median_days_to_mql: float | None
    median_days_mql_to_sql: float | None
    by_source: dict[str, SourceFunnel] = field(default_factory=dict)
    sla_open: int = 0  # leads waiting for sales within the SLA's pick-up time
    sla_breached: int = 0  # leads still waiting past it (a breach was published)
    review: MqlReview | None = None  # with rules and enough MQLs

    def lines(self) -> list[str]:
        def pct(x: float | None) -> str:
            return "n/a" if x is None else f"{100 * x:.1f}%"

        def days(x: float | None) -> str:
            return "n/a" if x is None else f"{x:.1f} days"

        out = [f"leads: {self.leads}"]
        out += [f"  {stage:15} {n}" for stage, n in self.stages.items() if n]
        out.append(f"reached MQL or beyond: {self.reached_mql}; reached SQL: {self.reached_sql}")
        out.append(f"MQL->SQL conversion: {pct(self.mql_to_sql_rate)}")
        out.append(f"median time first touch->MQL: {days(self.median_days_to_mql)}")
        out.append(f"median time MQL->SQL: {days(self.median_days_mql_to_sql)}")
        if self.review is not None:
            out.append(self.review.line())
        if self.sla_open or self.sla_breached:
            out.append(
                f"waiting for sales: {self.sla_open} within the SLA, {self.sla_breached} past it"
            )
        for source, f in sorted(self.by_source.items(), key=lambda kv: -kv[1].leads)[:10]:
            out.append(
                f"  source {source}: {f.leads} leads, {f.reached_mql} MQL, {f.reached_sql} SQL"
            )
        return out


def funnel(states: Iterable[LeadState], rules: Rules | None = None) -> Funnel:
    """The funnel of ``states``; with ``rules``, also who waits for sales (the SLA)."""
    stages: Counter[str] = Counter({s: 0 for s in STAGES if s != "anonymous"})
    to_mql: list[float] = []
    mql_to_sql: list[float] = []
    sources: dict[str, list[int]] = {}
    leads = reached_mql = reached_sql = 0
    sla: Counter[str] = Counter()
    mqls: list[tuple[float, str, bool]] = []  # (mql_at, lead, reached SQL)
    for s in states:
        if s.lead_id is None:
            continue
        leads += 1
        if rules is not None:
            status, _ = sla_status(s, rules)
            if status is not None:
                sla[status] += 1
        stages[s.stage] += 1
        counts = sources.setdefault(s.source or "(none)", [0, 0, 0])
        counts[0] += 1
        if s.mql_at is not None:
            mqls.append((s.mql_at, s.key, s.sql_at is not None))
            reached_mql += 1
            counts[1] += 1
            if s.first_touch_at is not None:
                to_mql.append((s.mql_at - s.first_touch_at) / DAY)
        if s.sql_at is not None:
            reached_sql += 1
            counts[2] += 1
            if s.mql_at is not None:
                mql_to_sql.append((s.sql_at - s.mql_at) / DAY)
    return Funnel(
        leads=leads,
        stages=dict(stages),
        reached_mql=reached_mql,
        reached_sql=reached_sql,
        mql_to_sql_rate=reached_sql / reached_mql if reached_mql else None,
        median_days_to_mql=statistics.median(to_mql) if to_mql else None,
        median_days_mql_to_sql=statistics.median(mql_to_sql) if mql_to_sql else None,
        by_source={k: SourceFunnel(*v) for k, v in sources.items()},
        sla_open=sla["open"],
        sla_breached=sla["breached"],
        review=None
        if rules is None
        else mql_review((sql for *_, sql in sorted(mqls, reverse=True)), rules.spec.funnel_review),
    )
