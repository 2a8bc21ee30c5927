"""CloudEvents binary-mode headers: the same record always gets the same id."""

from __future__ import annotations

import hashlib
from datetime import UTC, datetime

from schemas.erasures import ErasureEvent
from schemas.events import parse_input
from schemas.transitions import ScoreUpdate, SlaBreach, StageTransition
from stream_app.cloudevents import headers, tombstone_headers
from stream_app.codec import decode, encode_output
from stream_app.scoring.rules import Rules
from stream_app.worker.pipeline import InMemoryPipeline, Outputs
from tests.factories import at, ev

NOW = datetime(2026, 12, 1, 12, 0, tzinfo=UTC)
SCORES = {"fit": 30.0, "engagement": 40.0, "total": 70.0, "grade": "A"}


def test_a_transition_is_a_cloudevent_by_its_headers() -> None:
    transition = StageTransition(
        transition_id="t-1",
        lead_id="L1",
        from_stage="lead",
        to_stage="mql",
        reason="score_threshold",
        occurred_at=datetime(2026, 11, 2, 10, tzinfo=UTC),
        scores=SCORES,
        contributions=[],
        rules_version="r1",
        sequence=1,
    )
    assert dict(headers(transition, source="/leadstream/ls", now=NOW)) == {
        "ce_specversion": b"1.0",
        "ce_id": b"t-1",
        "ce_source": b"/leadstream/ls",
        "ce_type": b"dev.leadstream.stage_transition.v1",
        "ce_subject": b"L1",
        "ce_time": b"2026-11-02T10:00:00Z",
        "ce_dataschema": b"https://leadstream.dev/schemas/stage_transition.json",
        "content-type": b"application/json",
    }


def test_a_score_update_is_identified_by_the_digest_of_its_bytes() -> None:
    update = ScoreUpdate(
        lead_id="L1", version=7, stage="mql", scores=SCORES, contributions=[], rules_version="r1"
    )
    got = dict(headers(update, source="/leadstream/ls", now=NOW))
    assert (got["ce_type"], got["ce_time"]) == (
        b"dev.leadstream.score_update.v1",
        b"2026-12-01T12:00:00Z",
    )
    value = encode_output(update)
    assert got["ce_id"] == hashlib.sha256(value).hexdigest()[:32].encode()
    assert dict(headers(update, source="s", now=NOW, value=value))["ce_id"] == got["ce_id"]
    # the same version, another event (a late or repeated one): another record, another id
    late = update.model_copy(update={"event_id": "late-1"})
    assert dict(headers(late, source="s", now=NOW))["ce_id"] != got["ce_id"]


def ce_id(update: ScoreUpdate) -> bytes:
    return dict(headers(update, source="s", now=NOW, value=encode_output(update)))["ce_id"]


def test_score_update_ids_never_repeat_across_an_erasure_or_a_late_event(rules: Rules) -> None:
    """Issue 25: ``<lead>:<version>`` was seen on two different updates."""
    pipeline = InMemoryPipeline(rules, partitions=1)
    outputs: list[Outputs] = []
    pipeline.on_outputs = lambda p, out: outputs.append(out)
    history = [
        ev("page_view", hours=0, lead_id="L1", path="/pricing", event_id="a"),
        ev("page_view", day=200, lead_id="L1", path="/product", event_id="b"),
        ev("page_view", day=1, lead_id="L1", path="/blog/x", event_id="late"),  # over the horizon
        ev("page_view", day=200, lead_id="L1", path="/product", event_id="b"),  # redelivered
        parse_input(
            {
                "type": "erase",
                "event_id": "x",
                "occurred_at": at(day=201).isoformat(),
                "lead_id": "L1",
            }
        ),
        ev("page_view", day=202, lead_id="L1", path="/docs", event_id="c"),  # new life: version 1
    ]
    for event in history:
        pipeline.feed(event.model_dump_json().encode(), key=b"L1")
        pipeline.run()
    updates = [update for out in outputs for update in out.updates.values()]
    assert [(u.version, u.event_id) for u in updates] == [
        (1, "a"),
        (2, "b"),
        (2, "late"),
        (2, "b"),
        (1, "c"),
    ]
    ids = [ce_id(u) for u in updates]
    assert ids[3] == ids[1]  # the same record again: the same id, a consumer drops it
    assert len({ids[0], ids[1], ids[2], ids[4]}) == 4  # every other record: its own id
    (tombstone,) = [t for out in outputs for t in out.tombstones()]
    lead, erasure = tombstone
    assert (lead, erasure.erasure_id) == ("L1", "x")


def test_a_tombstone_is_a_cloudevent_without_data() -> None:
    erasure = ErasureEvent(
        erasure_id="x-1",
        lead_id="L1",
        found=True,
        requested_at=datetime(2026, 11, 3, 8, tzinfo=UTC),
    )
    got = dict(tombstone_headers("L1", erasure, source="/leadstream/ls"))
    assert got == {
        "ce_specversion": b"1.0",
        "ce_id": hashlib.sha256(b"score_update_deleted|L1|x-1").hexdigest()[:32].encode(),
        "ce_source": b"/leadstream/ls",
        "ce_type": b"dev.leadstream.score_update_deleted.v1",
        "ce_subject": b"L1",
        "ce_time": b"2026-11-03T08:00:00Z",
    }
    again = dict(
        tombstone_headers("L1", erasure.model_copy(update={"erasure_id": "x-2"}), source="s")
    )
    assert again["ce_id"] != got["ce_id"]  # a second erasure of the same lead: another id


def test_a_dead_letter_is_identified_by_where_it_came_from() -> None:
    letter = decode(b"nope", topic="rudder-events", partition=2, offset=9, key=b"k")
    got = dict(headers(letter, source="/leadstream/ls", now=NOW))  # type: ignore[arg-type]
    assert (got["ce_id"], got["ce_subject"], got["ce_type"]) == (
        b"rudder-events:2:9",
        b"k",
        b"dev.leadstream.dead_letter.v1",
    )
    offline = decode(b"nope", line=3)
    assert len(dict(headers(offline, source="s", now=NOW))["ce_id"]) == 32  # type: ignore[arg-type]


def test_an_sla_breach_is_identified_by_its_breach_id_at_its_deadline() -> None:
    breach = SlaBreach(
        breach_id="b-1",
        lead_id="L1",
        stage="sql",
        entered_at=datetime(2026, 11, 2, 9, tzinfo=UTC),
        allowed_hours=4,
        occurred_at=datetime(2026, 11, 2, 13, tzinfo=UTC),
        transition_sequence=1,
        scores=SCORES,
        rules_version="r1",
    )
    got = dict(headers(breach, source="/leadstream/ls", now=NOW))
    assert (got["ce_id"], got["ce_subject"], got["ce_type"], got["ce_time"]) == (
        b"b-1",
        b"L1",
        b"dev.leadstream.sla_breach.v1",
        b"2026-11-02T13:00:00Z",
    )
