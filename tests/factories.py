"""Literal events for tests: ``ev("page_view", day=2, lead_id="L1", path="/pricing")``,
and ``run`` to replay them."""

from __future__ import annotations

import itertools
import json
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from schemas.events import InboundEvent, InputEvent, parse_event
from schemas.transitions import StageTransition
from stream_app.rules_file import Rules, load_rules
from stream_app.scoring.replay import Replay
from tools.traffic import generate

REPO = Path(__file__).resolve().parent.parent
DEFAULT_RULES = REPO / "rules" / "default.yaml"
T0 = datetime(2026, 10, 5, 9, 0, tzinfo=UTC)  # a Monday morning

_ids = itertools.count(1)


def at(day: float = 0, hours: float = 0) -> datetime:
    return T0 + timedelta(days=day, hours=hours)


def ev(kind: str, day: float = 0, hours: float = 0, **fields: Any) -> InboundEvent:
    data: dict[str, Any] = {
        "type": kind,
        "event_id": fields.pop("event_id", f"e{next(_ids)}"),
        "occurred_at": at(day, hours).isoformat(),
        **fields,
    }
    return parse_event(data)


def default_rules() -> Rules:
    return load_rules(DEFAULT_RULES)


def generated(prospects: int, seed: int, count: int) -> list[InboundEvent]:
    """The first ``count`` events of the seeded traffic generator, parsed as the worker would."""
    return [parse_event(json.dumps(e)) for e in itertools.islice(generate(prospects, seed), count)]


def run(rules: Rules, events: list[InputEvent]) -> tuple[Replay, list[StageTransition]]:
    """``events`` through a fresh ``Replay``, in order: the replay and every transition."""
    replay = Replay(rules)
    out: list[StageTransition] = []
    for event in events:
        out += replay.process(event).transitions
    return replay, out


#: An ideal-customer-profile buyer: fit 45 under rules/default.yaml
#: (senior_title 20 + target_department 10 + company_size_target 15).
VP_PROFILE = {
    "email": "jane@acme.com",
    "job_title": "VP Marketing",
    "department": "marketing",
    "company_size": 400,
    "country": "US",
    "account_id": "acme.com",
}
