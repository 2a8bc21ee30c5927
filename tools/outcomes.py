"""A ground truth for the generated traffic: who buys, and the sales feedback that says so.

Each prospect of ``tools.traffic`` gets a hidden propensity to buy, driven by
some of what it did and who it is (``TRUTH``) and not by the rest: blog posts,
e-mail opens, social likes and early content are noise. The propensity is read
at the moment the lead reached sales: its first MQL when the generated traffic
is replayed with ``rules/default.yaml`` (the champion every test starts from),
counting what it did in the ``WINDOW_DAYS`` before. Sales feedback is then
drawn from it, weeks after that moment (accepted, then an opportunity, then won
or lost; or rejected), and merged into the traffic in event-time order::

    python -m tools generate --leads 3000 --seed 7 --outcomes truth > events.jsonl
    python -m tools generate --leads 3000 --seed 7 --outcomes random > noise.jsonl

With ``random`` the same leads get the same kind of feedback at the same base
rate, drawn without looking at anything they did: there is nothing to learn.
The seed decides everything, so a test knows the right answer: the rules that
score ``PREDICTIVE`` behaviours should earn more points than the ``NOISE`` ones.

The traffic itself is unchanged (``generate`` without ``--outcomes`` gives the
same bytes as before): the feedback is a second stage, computed from a first
pass over the same seeded traffic and merged in on a second.
"""

from __future__ import annotations

import heapq
import math
import random
import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Literal

from stream_app.codec import decode
from stream_app.config import REPO_ROOT
from tools.traffic import START, generate

Mode = Literal["truth", "random"]
CHAMPION = REPO_ROOT / "rules" / "default.yaml"
#: What the propensity counts: the behaviours of the last this many days before sales.
WINDOW_DAYS = 60
#: The hidden weights (log-odds): behaviour -> (weight, most occurrences counted).
TRUTH: dict[str, tuple[float, int]] = {
    "pricing_view": (1.2, 2),
    "case_study_view": (2.8, 2),
    "demo_download": (0.8, 2),
    "hand_raise": (1.2, 1),
    "webinar_attended": (0.8, 1),
    "product_activity": (0.6, 2),
    "senior": (1.4, 1),
}
BASE_LOGIT = -3.6
#: Leads reaching sales who get no feedback at all (sales never said).
SILENT = 0.08
#: Under ``random``: this share wins, whatever the lead did.
RANDOM_WIN_RATE = 0.25
#: The rules of rules/default.yaml whose events the truth counts, and some it ignores.
PREDICTIVE = (
    "pricing_page",
    "case_study_page",
    "demo_download",
    "form_hand_raise",
    "webinar_attended",
    "product_activity",
    "senior_seniority",
    "senior_title",
)
NOISE = (
    "blog_view",
    "email_open",
    "email_click",
    "social_engagement",
    "content_download",
    "webinar_registered",
    "product_page",
)

_INDEX = re.compile(r"(?:anon|lead)-(\d+)$")
DAY = 86400.0


def behaviour(event: dict[str, Any]) -> str | None:
    """The ``TRUTH`` behaviour an event is, if any (fit comes from the identify's traits)."""
    kind = event["type"]
    path = str(event.get("path", ""))
    if kind == "page_view" and path.startswith("/pricing"):
        return "pricing_view"
    if kind == "page_view" and path.startswith("/customers"):
        return "case_study_view"
    if kind == "content_download" and event.get("asset_type") in (
        "demo",
        "datasheet",
        "product_tour",
    ):
        return "demo_download"
    if kind == "form_submission" and event.get("form_kind") in (
        "demo_request",
        "trial_signup",
        "contact_sales",
        "quote_request",
        "consultation",
    ):
        return "hand_raise"
    if kind == "webinar" and event.get("action") == "attended":
        return "webinar_attended"
    if kind == "product_usage" and event.get("action") in ("activated", "invited_teammate"):
        return "product_activity"
    return None


def propensity(counts: dict[str, int]) -> float:
    """The hidden probability that a lead with these behaviour counts buys."""
    logit = BASE_LOGIT
    for name, (weight, most) in TRUTH.items():
        logit += weight * min(counts.get(name, 0), most)
    return 1.0 / (1.0 + math.exp(-logit))


@dataclass
class Prospect:
    """What the first pass keeps of one prospect: its truth-relevant acts and when it
    reached sales under the champion rules."""

    acts: list[tuple[float, str]] = field(default_factory=list)
    fit: dict[str, int] = field(default_factory=dict)
    reached_sales: float | None = None
    lead_id: str | None = None

    def counts(self) -> dict[str, int]:
        assert self.reached_sales is not None
        since = self.reached_sales - WINDOW_DAYS * DAY
        out = dict(self.fit)
        for t, name in self.acts:
            if since <= t <= self.reached_sales:
                out[name] = out.get(name, 0) + 1
        return out


def _fit_of(traits: dict[str, Any]) -> dict[str, int]:
    return {"senior": int(traits.get("seniority") in ("vp", "director", "c_level"))}


def _when(event: dict[str, Any]) -> float:
    return datetime.fromisoformat(event["occurred_at"].replace("Z", "+00:00")).timestamp()


def first_pass(
    leads: int, seed: int, *, start: datetime = START, id_prefix: str = "", rules: Path = CHAMPION
) -> dict[int, Prospect]:
    """Replay the seeded traffic with the champion rules: each prospect's acts, fit, and
    the event time of its first MQL (the moment it reached sales)."""
    from stream_app.rules_file import load_rules  # noqa: PLC0415
    from stream_app.scoring.replay import Replay  # noqa: PLC0415

    replay = Replay(load_rules(rules))
    prospects: dict[int, Prospect] = {}
    for event in generate(leads, seed, start=start, id_prefix=id_prefix):
        subject = event.get("lead_id") or event["anonymous_id"]
        match = _INDEX.search(subject)
        assert match is not None, subject
        prospect = prospects.setdefault(int(match.group(1)), Prospect())
        t = _when(event)
        name = behaviour(event)
        if name is not None:
            prospect.acts.append((t, name))
        if event["type"] == "identify":
            prospect.fit = _fit_of(event.get("traits") or {})
        decoded = decode(_dumps(event))
        step = replay.process(decoded, with_update=False)  # type: ignore[arg-type]
        for moved in step.transitions:
            reached = moved.to_stage in ("mql", "pql", "sql") or "mql" in moved.passed
            if reached and prospect.reached_sales is None:
                prospect.reached_sales = moved.occurred_at.timestamp()
                prospect.lead_id = moved.lead_id
    return prospects


def _dumps(event: dict[str, Any]) -> bytes:
    import json  # noqa: PLC0415

    return json.dumps(event, separators=(",", ":")).encode()


def _iso(t: float) -> str:
    return datetime.fromtimestamp(t, UTC).isoformat().replace("+00:00", "Z")


def feedback_for(index: int, prospect: Prospect, seed: int, mode: Mode) -> list[dict[str, Any]]:
    """The sales feedback of one prospect that reached sales (none if it did not)."""
    if prospect.reached_sales is None or prospect.lead_id is None:
        return []
    rng = random.Random(f"outcomes-{seed}-{index}")
    p = propensity(prospect.counts()) if mode == "truth" else RANDOM_WIN_RATE
    won = rng.random() < p
    if rng.random() < SILENT and not won:
        return []
    t0 = prospect.reached_sales
    steps: list[tuple[float, str, str | None]] = []
    accepted = t0 + rng.uniform(1, 5) * DAY
    if won:
        steps += [
            (accepted, "accepted", None),
            (t0 + rng.uniform(7, 25) * DAY, "opportunity", None),
            (t0 + rng.uniform(30, 80) * DAY, "won", None),
        ]
    else:
        roll = rng.random()
        reason = rng.choice(["budget", "timing", "no_need", "competitor"])
        if roll < 0.35:
            steps.append((accepted, "rejected", reason))
        elif roll < 0.75:
            steps += [
                (accepted, "accepted", None),
                (t0 + rng.uniform(20, 90) * DAY, "lost", reason),
            ]
        else:
            steps += [
                (accepted, "accepted", None),
                (t0 + rng.uniform(7, 25) * DAY, "opportunity", None),
                (t0 + rng.uniform(30, 100) * DAY, "lost", reason),
            ]
    return [
        {
            "type": "sales_feedback",
            "event_id": f"{prospect.lead_id}-sf{n}",
            "occurred_at": _iso(t),
            "lead_id": prospect.lead_id,
            "outcome": outcome,
            **({"reason": reason} if reason else {}),
        }
        for n, (t, outcome, reason) in enumerate(steps, start=1)
    ]


def with_outcomes(
    leads: int,
    seed: int,
    *,
    mode: Mode = "truth",
    start: datetime = START,
    id_prefix: str = "",
    prospects: dict[int, Prospect] | None = None,
) -> Iterator[dict[str, Any]]:
    """The seeded traffic with each lead's sales feedback merged in, in event-time order
    (``prospects``: a ``first_pass`` of the same arguments already made, e.g. for both modes)."""
    if prospects is None:
        prospects = first_pass(leads, seed, start=start, id_prefix=id_prefix)
    feedback = sorted(
        (_when(event), index, event)
        for index, prospect in prospects.items()
        for event in feedback_for(index, prospect, seed, mode)
    )
    traffic = ((_when(e), -1, e) for e in generate(leads, seed, start=start, id_prefix=id_prefix))
    merged = heapq.merge(traffic, iter(feedback), key=lambda item: (item[0], item[1]))
    for _, _, event in merged:
        yield event


def truth_table(leads: int, seed: int, **kwargs: Any) -> dict[str, float]:
    """Each lead that reached sales -> its hidden propensity (what the tests compare with)."""
    prospects = first_pass(leads, seed, **kwargs)
    return {
        p.lead_id: propensity(p.counts())
        for p in prospects.values()
        if p.lead_id is not None and p.reached_sales is not None
    }
