"""The notifier's pure half: what is posted, what is remembered, what is committed."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest

from schemas.transitions import StageTransition
from stream_app.config import Settings
from stream_app.notify.journal import Journal
from stream_app.notify.messages import plan, slack_one
from stream_app.notify.service import Notifier

NOW = datetime(2026, 12, 1, 12, tzinfo=UTC)


def transition(n: int, to_stage: str = "sql", lead: str = "jane", **fields: Any) -> StageTransition:
    base: dict[str, Any] = {
        "transition_id": f"tr-{n}",
        "lead_id": lead,
        "account_id": "acme.com",
        "from_stage": "mql",
        "to_stage": to_stage,
        "reason": "hand_raise",
        "occurred_at": "2026-11-02T10:00:00Z",
        "scores": {"fit": 40, "engagement": 75, "total": 115, "grade": "A"},
        "contributions": [
            {"rule": "form_hand_raise", "kind": "engagement", "points": 30},
            {"rule": "vp_title", "kind": "fit", "points": 25},
        ],
        "triggering_event_id": "e-6",
        "triggering_event_type": "form_submission",
        "rules_version": "2026.11-b2b-1+abcd1234",
        "sequence": n,
    }
    return StageTransition.model_validate({**base, **fields})


def test_a_slack_message_says_who_what_score_grade_why_and_trigger_with_a_crm_link() -> None:
    body = slack_one(transition(1), "https://crm.example.com/leads/{lead_id}")
    assert body["text"] == (
        "jane (acme.com): MQL → SQL, score 115 (grade A), hand raise; form_hand_raise +30, "
        "vp_title +25"
    )
    head, facts, context = body["blocks"]
    assert head["text"]["text"] == (
        "*<https://crm.example.com/leads/jane|jane>* (acme.com) moved *MQL → SQL*"
    )
    assert [f["text"].split("\n")[0] for f in facts["fields"]] == [
        "*Score*",
        "*Grade*",
        "*Why*",
        "*Trigger*",
    ]
    assert facts["fields"][3]["text"] == "*Trigger*\nform_submission e-6"
    assert "transition tr-1" in context["elements"][0]["text"]


def test_slack_control_characters_in_ids_are_escaped() -> None:
    body = slack_one(transition(1, lead="<!channel>&co"))
    assert "&lt;!channel&gt;&amp;co" in body["blocks"][0]["text"]["text"]


def test_a_burst_is_one_slack_digest_of_at_most_digest_max() -> None:
    burst = [transition(n, lead=f"l{n}") for n in range(1, 8)]
    post = plan("slack", burst, digest_max=5)
    assert post.transition_ids == ("tr-1", "tr-2", "tr-3", "tr-4", "tr-5")
    body = json.loads(post.body)
    assert body["blocks"][0]["text"]["text"] == "5 stage changes"
    assert len(body["blocks"]) == 6
    assert body["text"].startswith("5 stage changes: l1 (acme.com): MQL → SQL")


def test_a_teams_message_is_an_adaptive_card() -> None:
    post = plan("teams", [transition(1)], template="https://crm.example.com/{account_id}")
    body = json.loads(post.body)
    attachment = body["attachments"][0]
    assert attachment["contentType"] == "application/vnd.microsoft.card.adaptive"
    card = attachment["content"]
    assert (card["type"], card["version"]) == ("AdaptiveCard", "1.4")
    container = card["body"][0]["items"]
    assert container[0]["text"] == "jane (acme.com) moved MQL → SQL"
    assert [f["title"] for f in container[1]["facts"]] == ["Score", "Grade", "Why", "Trigger"]
    assert card["actions"][0]["url"] == "https://crm.example.com/acme.com"
    digest = json.loads(plan("teams", [transition(1), transition(2)]).body)
    assert digest["attachments"][0]["content"]["body"][0]["text"] == "2 stage changes"


def test_a_generic_webhook_gets_the_transition_json_with_cloudevents_http_headers() -> None:
    t = transition(3)
    post = plan("webhook", [t, transition(4)], source="/leadstream/ls", now=NOW)
    assert post.transition_ids == ("tr-3",)
    assert StageTransition.model_validate_json(post.body) == t
    assert post.headers["ce-id"] == "tr-3"
    assert post.headers["ce-type"] == "dev.leadstream.stage_transition.v1"
    assert post.headers["content-type"] == "application/json"


def test_the_journal_survives_a_restart_and_ignores_a_torn_last_line(tmp_path: Path) -> None:
    path = tmp_path / "sent"
    journal = Journal(path)
    journal.add(["a", "b"])
    journal.close()
    with path.open("a") as f:
        f.write("c")  # torn: the kill came mid-write, before the fsync returned
    again = Journal(path)
    assert ("a" in again, "b" in again, "c" in again) == (True, True, False)
    again.close()


def test_the_journal_keeps_the_newest_ids_only(tmp_path: Path) -> None:
    journal = Journal(tmp_path / "sent", keep=3)
    for n in range(10):
        journal.add([f"id{n}"])
    journal.close()
    again = Journal(tmp_path / "sent", keep=3)
    assert [f"id{n}" in again for n in range(10)] == [False] * 7 + [True] * 3
    again.close()


def record(offset: int, t: StageTransition | None, partition: int = 0) -> SimpleNamespace:
    value = t.model_dump_json().encode() if t is not None else b"{not json"
    return SimpleNamespace(topic="tr", partition=partition, offset=offset, value=value)


def test_offsets_are_committed_only_up_to_what_was_posted(tmp_path: Path) -> None:
    settings = Settings(
        notify_url="http://127.0.0.1:1/hook", notify_dir=tmp_path, notify_digest_max=2
    )  # type: ignore[arg-type]
    notifier = Notifier(settings, kind="slack")
    notifier.journal.add(["tr-2"])  # posted before a restart
    notifier.take(
        [
            record(10, transition(1)),
            record(11, transition(2)),  # already posted: dropped
            record(12, transition(3, to_stage="recycled")),  # not a stage we announce
            record(13, None),  # undecodable: logged, skipped
            record(14, transition(4)),
            record(15, transition(1)),  # the worker published it twice
            record(16, transition(5)),
            record(5, transition(6), partition=1),
        ]
    )
    assert notifier.counts == {"posted": 0, "messages": 0, "duplicates": 2, "filtered": 1}
    post = notifier.next_post()
    assert post is not None and post.transition_ids == ("tr-1", "tr-4")
    assert {tp.partition: o for tp, o in notifier.done(post).items()} == {0: 16}
    post = notifier.next_post()
    assert post is not None and post.transition_ids == ("tr-5", "tr-6")
    assert {tp.partition: o for tp, o in notifier.done(post).items()} == {0: 17, 1: 6}
    assert notifier.next_post() is None
    notifier.journal.close()


def test_no_url_is_one_clear_error(tmp_path: Path) -> None:
    from stream_app.errors import LeadstreamError

    with pytest.raises(LeadstreamError, match="LEADSTREAM_NOTIFY_URL"):
        Notifier(Settings(notify_dir=tmp_path))


def test_an_unknown_stage_in_the_filter_names_the_stages(monkeypatch: pytest.MonkeyPatch) -> None:
    from pydantic import ValidationError

    monkeypatch.setenv("LEADSTREAM_NOTIFY_STAGES", "mql,sqll")
    with pytest.raises(ValidationError, match="unknown stage"):
        Settings()
    monkeypatch.setenv("LEADSTREAM_NOTIFY_STAGES", "all")
    assert "recycled" in Settings().notify_stages
