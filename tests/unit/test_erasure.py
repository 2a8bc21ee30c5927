"""Erasing a person: in memory over partitions (the live driver) and in the offline replay."""

from __future__ import annotations

import json
from typing import Any

import pytest

from schemas.erasures import ErasureEvent
from schemas.events import parse_input
from stream_app.codec import decode
from stream_app.ingest.segment import email_subject
from stream_app.messages import EraseVisitor
from stream_app.scoring.replay import Replay
from stream_app.scoring.rules import Rules
from stream_app.worker.pipeline import InMemoryPipeline, Outputs, partition_of
from tests.factories import VP_PROFILE, at, ev
from tools.traffic import generate


def erase(hours: float = 0, event_id: str = "x-1", **who: str) -> Any:
    return parse_input(
        {"type": "erase", "event_id": event_id, "occurred_at": at(hours=hours).isoformat(), **who}
    )


class Live:
    """An in-memory pipeline fed one message at a time, recording each batch's outputs."""

    def __init__(self, rules: Rules, partitions: int = 4) -> None:
        self.pipeline = InMemoryPipeline(rules, partitions=partitions)
        self.outputs: list[Outputs] = []
        self.pipeline.on_outputs = lambda p, out: self.outputs.append(out)

    def feed(self, event: Any, key: str | None = None) -> None:
        subject = key or event.lead_id or event.anonymous_id or "k"
        self.pipeline.feed(event.model_dump_json().encode(), key=subject.encode())
        self.pipeline.run()

    @property
    def erasures(self) -> list[ErasureEvent]:
        return [e for out in self.outputs for e in out.erasures]

    @property
    def erased(self) -> list[str]:
        return [lead for out in self.outputs for lead in out.erased]


def _apart(partitions: int = 4) -> tuple[str, str, str]:
    """A lead and two visitor ids on three other partitions than the lead's."""
    lead = "L1"
    others = [f"c{n}" for n in range(200)]
    mine = partition_of(lead, partitions)
    picked = [c for c in others if partition_of(c, partitions) != mine][:2]
    return lead, picked[0], picked[1]


@pytest.mark.parametrize("same", [True, False], ids=["same-partition", "other-partition"])
def test_erasing_a_lead_erases_its_merged_visitors_and_nobody_else(
    rules: Rules, same: bool
) -> None:
    lead, anon, taken = _apart()
    if same:
        anon = next(c for c in (f"c{n}" for n in range(200)) if partition_of(c, 4) == 0)
        lead = next(x for x in (f"L{n}" for n in range(200)) if partition_of(x, 4) == 0)
    live = Live(rules)
    for event in [
        ev("page_view", anonymous_id=anon, path="/pricing"),
        ev("identify", hours=1, lead_id=lead, anonymous_id=anon, traits=VP_PROFILE),
        ev("page_view", hours=2, anonymous_id=taken, path="/blog/a"),
        ev("identify", hours=3, lead_id="OTHER", anonymous_id=taken),
        # the lead asks for a visitor another lead has: linked, refused, not this person
        ev("page_view", hours=4, lead_id=lead, anonymous_id=taken, path="/blog/b"),
    ]:
        live.feed(event)
    before = live.pipeline.record(lead)
    assert before is not None and before.state.merged_anonymous == [anon]
    assert taken in before.linked
    sent: list[str] = []
    live.pipeline.on_outputs = lambda p, out: (
        live.outputs.append(out),
        sent.extend(m.to for _, m, _ in out.forwards if isinstance(m, EraseVisitor)),
    )
    live.feed(erase(hours=5, lead_id=lead))
    records = set(live.pipeline.records)
    assert lead not in records and f"anon:{anon}" not in records
    assert {"OTHER", f"anon:{taken}"} <= records  # someone else's: kept
    assert live.pipeline.record(f"anon:{taken}").state.merged_into == "OTHER"  # type: ignore[union-attr]
    assert live.erased == [lead]  # a tombstone on the score updates
    (erasure,) = live.erasures
    assert (erasure.erasure_id, erasure.lead_id, erasure.found) == ("x-1", lead, True)
    assert erasure.anonymous_ids == [anon]
    # an erase crosses to the visitors' partitions only when they live elsewhere
    # and to the pseudonym of the address the identify's traits told
    mail = email_subject(str(VP_PROFILE["email"]))
    assert f"anon:{mail}" not in records
    away = [a for a in (anon, taken, mail) if partition_of(a, 4) != partition_of(lead, 4)]
    assert sorted(sent) == sorted(f"anon:{a}" for a in away)


def test_erasing_by_e_mail_finds_the_lead_its_pseudonym_joined(rules: Rules) -> None:
    address = "Jane.Doe@Example.com"
    pseudonym = email_subject(address)
    live = Live(rules)
    for event in [
        ev("email_open", anonymous_id=pseudonym),  # an e-mail provider's event
        ev("profile_update", hours=1, lead_id="L7", **VP_PROFILE),
        ev("identify", hours=2, lead_id="L7", anonymous_id=pseudonym),
    ]:
        live.feed(event)
    assert live.pipeline.record(f"anon:{pseudonym}") is not None
    raw = json.dumps(
        {
            "type": "erase",
            "event_id": "x-mail",
            "occurred_at": at(hours=3).isoformat(),
            "email": address,
            "reason": "ticket 42",
        }
    ).encode()
    request = decode(raw, topic="lead_profiles")
    assert request.anonymous_id == pseudonym and request.email is None  # type: ignore[union-attr]
    assert address.lower() not in request.model_dump_json().lower()  # type: ignore[union-attr]
    live.pipeline.feed(raw, key=pseudonym.encode(), topic="lead_profiles")
    live.pipeline.run()
    assert live.pipeline.records == {}
    (erasure,) = live.erasures
    assert (erasure.lead_id, erasure.anonymous_id, erasure.anonymous_ids) == (
        "L7",
        pseudonym,
        [pseudonym],
    )
    assert erasure.reason == "ticket 42" and live.erased == ["L7"]


def test_a_visitor_linked_before_it_had_any_history_goes_too(rules: Rules) -> None:
    """An identify for a visitor id with no events yet: its record is only the link."""
    lead, anon, _ = _apart()
    live = Live(rules)
    live.feed(ev("identify", lead_id=lead, anonymous_id=anon, traits=VP_PROFILE))
    link = live.pipeline.record(f"anon:{anon}")
    assert link is not None and link.state.merged_into == lead
    assert live.pipeline.record(lead).state.merged_anonymous == []  # type: ignore[union-attr]
    live.feed(erase(hours=1, lead_id=lead))
    assert live.pipeline.records == {}
    replay = Replay(rules)
    replay.process(ev("identify", lead_id=lead, anonymous_id=anon, traits=VP_PROFILE))
    replay.process(erase(hours=1, lead_id=lead))
    assert replay.states == {} and replay.links == {}
    live.feed(ev("page_view", hours=2, anonymous_id=anon, path="/pricing"))
    replay.process(ev("page_view", hours=2, anonymous_id=anon, path="/pricing"))
    # the visitor is on its own again: scored under its own key, not the erased lead's
    assert set(live.pipeline.records) == set(replay.states) == {f"anon:{anon}"}


def test_erasing_what_does_not_exist_changes_nothing_but_answers(rules: Rules) -> None:
    live = Live(rules)
    live.feed(ev("page_view", lead_id="L1", path="/pricing"))
    kept = dict(live.pipeline.records)
    live.feed(erase(lead_id="NOBODY", event_id="x-a"))
    live.feed(erase(anonymous_id="nobody", event_id="x-b"))
    assert live.pipeline.records == kept
    assert [(e.erasure_id, e.found) for e in live.erasures] == [("x-a", False), ("x-b", False)]
    # redelivered after a real erasure: the same id again, found nothing this time
    live.feed(erase(lead_id="L1", event_id="x-c"))
    live.feed(erase(lead_id="L1", event_id="x-c"))
    assert [(e.erasure_id, e.found) for e in live.erasures[2:]] == [("x-c", True), ("x-c", False)]
    assert live.pipeline.records == {}


def test_an_unmerged_visitor_is_erased_alone(rules: Rules) -> None:
    live = Live(rules)
    live.feed(ev("page_view", anonymous_id="c1", path="/pricing"))
    live.feed(ev("page_view", lead_id="L1", path="/pricing"))
    live.feed(erase(anonymous_id="c1"))
    assert set(live.pipeline.records) == {"L1"}
    (erasure,) = live.erasures
    assert (erasure.lead_id, erasure.anonymous_id, erasure.found) == (None, "c1", True)
    assert live.erased == []  # no lead: nothing projected


def test_a_later_event_for_the_same_ids_starts_from_nothing(rules: Rules) -> None:
    lead, anon, _ = _apart()
    history = [
        ev("page_view", anonymous_id=anon, path="/pricing"),
        ev("identify", hours=1, lead_id=lead, anonymous_id=anon, traits=VP_PROFILE),
        ev("form_submission", hours=2, lead_id=lead, form_kind="demo_request"),
    ]
    again = ev("page_view", day=3, anonymous_id=anon, lead_id=lead, path="/pricing")
    live = Live(rules)
    for event in history:
        live.feed(event)
    assert live.pipeline.record(lead).state.version > 1  # type: ignore[union-attr]
    live.feed(erase(hours=3, lead_id=lead))
    live.feed(again)
    fresh = Live(rules)
    fresh.feed(again)
    record, expected = live.pipeline.record(lead), fresh.pipeline.record(lead)
    assert record is not None and expected is not None
    assert record.state == expected.state and record.state.version == 1
    assert live.pipeline.updates[-1] == fresh.pipeline.updates[-1]
    assert live.pipeline.updates[-1].version == 1
    assert live.pipeline.record(f"anon:{anon}").state.merged_into == lead  # type: ignore[union-attr]
    assert live.pipeline.record(lead).state.merged_anonymous == []  # type: ignore[union-attr]


def test_an_erase_behind_a_claim_waits_for_the_merge_then_erases_it_all(rules: Rules) -> None:
    """A lead waiting for a visitor's answer holds the erase like its other events."""
    lead, anon, _ = _apart()
    live = Live(rules)
    live.feed(ev("page_view", anonymous_id=anon, path="/pricing"))
    identify = ev("identify", hours=1, lead_id=lead, anonymous_id=anon, traits=VP_PROFILE)
    # both in one batch: the claim is still out when the erase arrives
    for message in (identify, erase(hours=2, lead_id=lead)):
        live.pipeline.feed(message.model_dump_json().encode(), key=lead.encode())
    live.pipeline.run()
    assert live.pipeline.records == {}
    assert [e.anonymous_ids for e in live.erasures] == [[anon]]
    # the identify's update was superseded by the erasure in the same batch: not sent
    assert [u for u in live.pipeline.updates if u.lead_id == lead] == []
    assert live.erased == [lead]


def _subject(event: dict[str, Any]) -> str:
    return str(event.get("lead_id") or event.get("anonymous_id"))


def traffic_with_erasures(
    seed: int, every: int = 37, by_anonymous: bool = True
) -> list[dict[str, Any]]:
    """Generated traffic with an erase of a subject already seen after every ``every``-th
    event: by lead id, by anonymous id (if ``by_anonymous``), sometimes of one never seen."""
    out: list[dict[str, Any]] = []
    for n, event in enumerate(generate(300, seed=seed)):
        out.append(event)
        if n % every == every - 1:
            earlier = out[-(n % 11) - 1]
            if earlier["type"] == "erase":
                continue
            who = (
                {"anonymous_id": earlier["anonymous_id"]}
                if by_anonymous and earlier.get("anonymous_id") and n % 2
                else {"lead_id": earlier.get("lead_id") or f"never-{n}"}
            )
            out.append(
                {
                    "type": "erase",
                    "event_id": f"erase-{n}",
                    "occurred_at": event["occurred_at"],
                    **who,
                }
            )
    return out


@pytest.mark.parametrize("batch", [1, 200], ids=["one-at-a-time", "batches"])
def test_with_erasures_in_the_traffic_the_driver_equals_the_replay(
    rules: Rules, batch: int
) -> None:
    # In batches the in-memory pipeline has no time order across partitions (the worker's
    # ordering.py): a visitor's erase could overtake the claim of an identify before it.
    events = traffic_with_erasures(seed=5, by_anonymous=batch == 1)
    erases = [e for e in events if e["type"] == "erase"]
    assert len(erases) > 20
    live = InMemoryPipeline(rules, partitions=4, batch=batch)
    erasures: list[ErasureEvent] = []
    live.on_outputs = lambda p, out: erasures.extend(out.erasures)
    for event in events:
        live.feed(json.dumps(event).encode(), key=_subject(event).encode())
        if batch == 1:
            live.run()  # until nothing is in flight: the input order is the order applied
    live.run()
    replay = Replay(rules)
    offline, answers = [], []
    for event in events:
        step = replay.process(parse_input(json.dumps(event)))
        offline += step.transitions
        if step.erasure is not None:
            answers.append(step.erasure)
    assert sum(a.found for a in answers) > 10 and sum(bool(a.anonymous_ids) for a in answers)
    if batch == 1:
        assert live.transitions == offline
        assert erasures == answers
    else:  # per subject the order holds; across subjects a batch interleaves
        key = lambda t: (t.lead_id, t.sequence)  # noqa: E731
        assert sorted(live.transitions, key=key) == sorted(offline, key=key)
        assert sorted(erasures, key=lambda e: e.erasure_id) == sorted(
            answers, key=lambda e: e.erasure_id
        )
    assert {s.key: s for s in live.leads()} == {s.key: s for s in replay.leads()}
    # what the live records hold of anonymous visitors, the replay holds too
    live_visitors = {k for k in live.records if k.startswith("anon:")}
    replay_visitors = {k for k in replay.states if k.startswith("anon:")}
    linked_without_history = {f"anon:{a}" for a in replay.links if f"anon:{a}" not in replay.states}
    assert live_visitors == replay_visitors | linked_without_history


#: Every way an address becomes known for lead "jane" (issue 26, item 1), as raw input.
_JANE = {"job_title": "VP Marketing", "seniority": "vp", "company_size": 400}
TELLS_THE_ADDRESS = {
    "native profile_update": [
        {"type": "profile_update", "lead_id": "jane", "email": "Jane.Doe@acme.com", **_JANE}
    ],
    "identify traits": [
        {
            "type": "identify",
            "lead_id": "jane",
            "anonymous_id": "cookie-1",
            "traits": {"email": "jane.doe@acme.com", **_JANE},
        }
    ],
    "segment identify with an anonymousId": [
        {
            "type": "identify",
            "messageId": "s-1",
            "userId": "jane",
            "anonymousId": "cookie-1",
            "traits": {
                "email": "jane.doe@ACME.com",
                "title": "VP Marketing",
                "seniority": "VP",
                "company": {"name": "Acme", "employee_count": 400},
            },
        }
    ],
    "a form's email field": [
        {"type": "profile_update", "lead_id": "jane", **_JANE},
        {
            "type": "form_submission",
            "lead_id": "jane",
            "form_kind": "newsletter",
            "fields": {"Email": "jane.doe@acme.com"},
        },
    ],
    "a provider's event that names the user": [
        {"type": "profile_update", "lead_id": "jane", **_JANE},
        {
            "type": "track",
            "event": "Email Opened",
            "messageId": "s-2",
            "userId": "jane",
            "properties": {"email": "jane.doe@acme.com", "campaign_id": "nl-12"},
        },
    ],
    "a merged cookie's profile_update": [
        {"type": "identify", "lead_id": "jane", "anonymous_id": "cookie-1"},
        {"type": "profile_update", "anonymous_id": "cookie-1", "email": "jane.doe@acme.com"},
        {"type": "profile_update", "lead_id": "jane", **_JANE},
    ],
}


def _raw(n: int, message: dict[str, Any], hours: float) -> bytes:
    stamp = at(hours=hours).isoformat()
    if "messageId" in message:
        return json.dumps({**message, "timestamp": stamp}).encode()
    return json.dumps({"event_id": f"t-{n}", "occurred_at": stamp, **message}).encode()


@pytest.mark.parametrize("tells", list(TELLS_THE_ADDRESS), ids=list(TELLS_THE_ADDRESS))
def test_an_erase_by_address_finds_the_lead_however_the_address_came(
    rules: Rules, tells: str
) -> None:
    """Issue 26, item 1: an MQL whose address arrived the ordinary way, erased by address;
    its later pricing view starts from nothing and no SLA breach of its old life follows."""
    messages = [
        *TELLS_THE_ADDRESS[tells],
        {"type": "page_view", "lead_id": "jane", "path": "/pricing"},
        {"type": "page_view", "lead_id": "jane", "path": "/product/x"},
        {"type": "erase", "email": "jane.doe@acme.com", "reason": "ticket 7"},
        {"type": "page_view", "lead_id": "jane", "path": "/contact"},
    ]
    raws = [_raw(n, m, hours=n) for n, m in enumerate(messages)]
    inputs = [decode(raw, topic="lead_profiles") for raw in raws]
    replay = Replay(rules)
    steps = [replay.process(event) for event in inputs]  # type: ignore[arg-type]
    live = Live(rules)
    for raw, event in zip(raws, inputs, strict=True):
        live.pipeline.feed(raw, key=_subject(event.__dict__).encode(), topic="lead_profiles")
        live.pipeline.run()
    before = [t.to_stage for step in steps[:-2] for t in step.transitions]
    assert before == ["mql"]  # the old life reached MQL (an SLA of 48 hours)
    answers = [step.erasure for step in steps if step.erasure is not None]
    for erasure in (*answers, *live.erasures):
        assert (erasure.lead_id, erasure.found, erasure.reason) == ("jane", True, "ticket 7")
    assert len(answers) == len(live.erasures) == 1
    assert live.erased == ["jane"]
    # the later event starts a new life: one page view's points, version 1, no stage
    for state in (replay.states["jane"], live.pipeline.record("jane").state):  # type: ignore[union-attr]
        assert (state.version, state.stage, state.profile) == (1, "lead", {})
    assert steps[-1].transitions == ()
    assert live.pipeline.transitions == [t for s in steps for t in s.transitions]
    # no SLA breach of the erased MQL, whenever the sweep runs
    assert list(replay.sweep_all(at(day=30).timestamp())) == []
    live.pipeline.tick(at(day=30).timestamp())
    assert live.pipeline.breaches == []
    # nothing of the address is kept: only its pseudonym, linked afresh by nobody
    assert not any("acme" in key for key in (*replay.links, *live.pipeline.records))
