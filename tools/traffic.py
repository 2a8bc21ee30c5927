"""Seeded, realistic prospect traffic: for the demo, the benchmarks and the tests.

Each simulated prospect has a persona (ideal-fit buyer, weak fit, student,
competitor, outside the served countries), an activity level drawn from a
skewed distribution (a few very active, most rare), and a journey: anonymous
browsing, an identify on a form, e-mail campaigns, downloads, webinars,
sometimes a demo request or a product trial, sometimes silence for months.

The same seed gives the same events, byte for byte::

    python -m tools generate --leads 1000 --seed 7 > events.jsonl
    python -m tools generate --leads 3000 --seed 7 --outcomes truth > with-outcomes.jsonl

Events come out in event-time order across prospects (per prospect they are
always in order), with ``occurred_at`` starting at ``--start``.
"""

from __future__ import annotations

import heapq
import json
import random
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import IO, Any

START = datetime(2026, 9, 1, tzinfo=UTC)
#: The traffic from ``START`` runs for a year or two, past today: produced to Kafka now,
#: most of it is dated after its Kafka timestamp, which a worker refuses beyond
#: ``LEADSTREAM_MAX_CLOCK_SKEW_SECONDS``. Workers that replay it as history (the live
#: tests, the fault harness, the benchmark) allow this much instead.
REPLAY_CLOCK_SKEW_SECONDS = 10 * 365 * 86400

PERSONAS = [
    # name, weight, profile
    (
        "ideal",
        30,
        {
            "job_title": "VP Marketing",
            "seniority": "vp",
            "department": "marketing",
            "industry": "software",
            "company_size": 400,
            "country": "US",
        },
    ),
    (
        "manager",
        25,
        {
            "job_title": "Marketing Manager",
            "seniority": "manager",
            "department": "marketing",
            "industry": "saas",
            "company_size": 120,
            "country": "GB",
        },
    ),
    (
        "director",
        10,
        {
            "job_title": "Director of Sales",
            "seniority": "director",
            "department": "sales",
            "industry": "fintech",
            "company_size": 2000,
            "country": "DE",
        },
    ),
    (
        "small",
        15,
        {
            "job_title": "Founder",
            "seniority": "owner",
            "industry": "retail",
            "company_size": 8,
            "country": "US",
            "personal": True,
        },
    ),
    ("student", 8, {"job_title": "Student", "company_size": 0, "country": "US", "edu": True}),
    (
        "competitor",
        2,
        {"job_title": "Product Manager", "company_size": 300, "country": "US", "competitor": True},
    ),
    (
        "abroad",
        10,
        {
            "job_title": "Head of Growth",
            "seniority": "director",
            "department": "growth",
            "industry": "software",
            "company_size": 150,
            "country": "BR",
        },
    ),
]
PAGES = [
    ("/blog/lead-scoring-101", 30),
    ("/blog/mql-vs-sql", 20),
    ("/", 15),
    ("/product", 12),
    ("/features/decay", 8),
    ("/pricing", 8),
    ("/customers/acme", 4),
    ("/integrations", 4),
    ("/careers", 2),
    ("/contact", 1),
]
ASSETS = [
    ("ebook-scoring", "ebook", "top"),
    ("report-benchmarks", "report", "top"),
    ("whitepaper-decay", "whitepaper", "middle"),
    ("webinar-recording", "video", "middle"),
    ("buyers-guide", "guide", "bottom"),
    ("roi-calculator", "calculator", "bottom"),
    ("product-tour", "product_tour", "bottom"),
    ("datasheet", "datasheet", "bottom"),
]
CAMPAIGNS = ["nurture-q4", "webinar-invite", "product-update", "newsletter-nov"]
SOURCES = [("google", "cpc"), ("linkedin", "social"), ("newsletter", "email"), ("direct", None)]
HAND_RAISES = ["demo_request", "trial_signup", "contact_sales", "quote_request", "consultation"]
FEATURES = ["scoring", "decay", "alerts", "api", "accounts", "reports"]


@dataclass
class Prospect:
    index: int
    seed: int
    start: datetime
    id_prefix: str

    def events(self) -> Iterator[tuple[float, int, dict[str, Any]]]:
        """This prospect's events in time order, as (epoch, tiebreak, JSON dict)."""
        rng = random.Random(self.seed * 1_000_003 + self.index)
        name, _, persona = rng.choices(PERSONAS, weights=[p[1] for p in PERSONAS])[0]
        activity = min(400, int(rng.paretovariate(1.3) * 3))  # skewed: most rare, a few busy
        anon = f"{self.id_prefix}anon-{self.index}"
        lead = f"{self.id_prefix}lead-{self.index}"
        t = self.start + timedelta(seconds=rng.uniform(0, 45 * 86400))
        source, medium = rng.choice(SOURCES)
        utm = {"source": source, "medium": medium} if medium else None
        identified = False
        identify_after = rng.randint(1, 6) if rng.random() < 0.75 else None
        session = 0
        seq = 0
        goes_cold = rng.random() < 0.2

        def emit(kind: str, **fields: Any) -> tuple[float, int, dict[str, Any]]:
            nonlocal seq
            seq += 1
            event: dict[str, Any] = {
                "type": kind,
                "event_id": f"{self.id_prefix}{self.index}-{seq}",
                "occurred_at": t.isoformat().replace("+00:00", "Z"),
            }
            if identified:
                event["lead_id"] = lead
            else:
                event["anonymous_id"] = anon
            if seq == 1 and utm:
                event["utm"] = utm
                event["source"] = source
            event.update(fields)
            return (t.timestamp(), self.index, event)

        for step in range(activity):
            gap_hours = rng.expovariate(1 / 30)
            if goes_cold and step == activity // 2:
                gap_hours += 24 * rng.uniform(60, 120)  # silent for months
            t += timedelta(hours=gap_hours)
            if rng.random() < 0.3:
                session += 1
            if not identified and identify_after is not None and step >= identify_after:
                identified = True
                yield emit("form_submission", form_kind="gated_content", fields={"asset": "ebook"})
                yield emit("identify", anonymous_id=anon, traits=_traits(rng, persona, self))
                continue
            roll = rng.random()
            if roll < 0.55 or not identified:
                path = rng.choices([p for p, _ in PAGES], weights=[w for _, w in PAGES])[0]
                yield emit(
                    "page_view",
                    path=path,
                    session_id=f"s{self.index}-{session}",
                    country=persona["country"],
                )
            elif roll < 0.72:
                kind = rng.choices(
                    [
                        "email_open",
                        "email_click",
                        "email_reply",
                        "email_unsubscribe",
                        "email_bounce",
                    ],
                    weights=[60, 30, 5, 3, 2],
                )[0]
                yield emit(kind, campaign_id=rng.choice(CAMPAIGNS))
            elif roll < 0.84:
                asset, asset_type, stage = rng.choice(ASSETS)
                yield emit(
                    "content_download", asset_id=asset, asset_type=asset_type, funnel_stage=stage
                )
            elif roll < 0.90:
                yield emit(
                    "webinar",
                    action=rng.choice(["registered", "attended", "watched_replay"]),
                    webinar_id="w-scoring",
                    minutes=rng.choice([None, 35.0]),
                )
            elif roll < 0.93:
                yield emit("social_engagement", network="linkedin", action="like")
            elif roll < 0.97 and name in ("ideal", "manager", "director", "small"):
                action = rng.choice(["signup", "activated", "feature_used", "invited_teammate"])
                feature = rng.choice(FEATURES) if action == "feature_used" else None
                yield emit("product_usage", action=action, feature=feature)
            elif rng.random() < 0.5:
                yield emit("form_submission", form_kind=rng.choice(HAND_RAISES))
            else:
                yield emit(
                    "profile_update",
                    budget=rng.random() < 0.5,
                    timeline=rng.choice(["this_quarter", "next_year"]),
                )


def _traits(rng: random.Random, persona: dict[str, Any], p: Prospect) -> dict[str, Any]:
    domain = f"company{p.index % 5000}.com"
    if persona.get("personal"):
        domain = rng.choice(["gmail.com", "yahoo.com", "outlook.com"])
    elif persona.get("edu"):
        domain = "state.edu"
    elif persona.get("competitor"):
        domain = "rivalsoft.com"
    traits = {k: v for k, v in persona.items() if k not in ("personal", "edu", "competitor")}
    traits["email"] = f"person{p.index}@{domain}"
    traits["account_id"] = domain
    return traits


def generate(
    leads: int, seed: int, *, start: datetime = START, id_prefix: str = ""
) -> Iterator[dict[str, Any]]:
    """All prospects' events merged in event-time order (deterministic for a seed)."""
    streams = [Prospect(i, seed, start, id_prefix).events() for i in range(leads)]
    for _, _, event in heapq.merge(*streams, key=lambda item: (item[0], item[1])):
        yield event


def write(events: Iterator[dict[str, Any]], out: IO[str], limit: int | None = None) -> int:
    count = 0
    for event in events:
        if limit is not None and count >= limit:
            break
        out.write(json.dumps(event, separators=(",", ":")) + "\n")
        count += 1
    return count
