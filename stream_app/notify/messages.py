"""What a sales team reads: one transition, or a digest of a burst, per chat message.

Pure functions from transitions to HTTP bodies:

- Slack incoming webhooks take Block Kit (``text`` is the notification's
  fallback); a digest is one message with a section per transition (Slack
  allows 50 blocks and about one message per second per webhook).
- Teams workflow webhooks take a message with an Adaptive Card attachment.
- A generic webhook takes the transition JSON, one POST each, with the
  CloudEvents HTTP binary-mode headers (``ce-id`` = ``transition_id``...).

Every message says who, from → to, the score and grade, why (the reason and
the top contributing rules) and the trigger, with a link to the CRM when
``link_template`` is set (``{lead_id}``, ``{account_id}`` are filled in).
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Literal

from schemas.transitions import StageTransition
from stream_app import cloudevents

Kind = Literal["slack", "teams", "webhook"]

STAGE_LABEL = {
    "anonymous": "Anonymous",
    "lead": "Lead",
    "mql": "MQL",
    "pql": "PQL",
    "sql": "SQL",
    "sales_accepted": "Sales accepted",
    "opportunity": "Opportunity",
    "customer": "Customer",
    "recycled": "Recycled",
    "disqualified": "Disqualified",
}
REASON_LABEL = {
    "score_threshold": "score crossed the line",
    "hand_raise": "hand raise",
    "pql_activation": "product milestones met",
    "decay": "went cold (decay)",
    "score_drop": "score dropped (negative points or a lower fit)",
    "disqualified": "disqualified",
    "requalified": "requalified",
    "sales_feedback": "sales feedback",
}
#: Slack allows 50 blocks per message: a header and a section per transition fit.
MAX_DIGEST = 40


@dataclass(frozen=True)
class Post:
    """One HTTP POST: its JSON body, extra headers, and the transitions it carries."""

    body: bytes
    headers: dict[str, str]
    transition_ids: tuple[str, ...]


def who(t: StageTransition) -> str:
    return t.lead_id + (f" ({t.account_id})" if t.account_id else "")


def move(t: StageTransition) -> str:
    return (
        f"{STAGE_LABEL.get(t.from_stage, t.from_stage)} → {STAGE_LABEL.get(t.to_stage, t.to_stage)}"
    )


def why(t: StageTransition, top: int = 3) -> str:
    reason = REASON_LABEL.get(t.reason, t.reason) + (f" ({t.detail})" if t.detail else "")
    rules = ", ".join(f"{c.rule} {c.points:+g}" for c in t.contributions[:top])
    return f"{reason}; {rules}" if rules else reason


def trigger(t: StageTransition) -> str:
    if t.triggering_event_id is None:
        return "decay sweep"
    return f"{t.triggering_event_type or 'event'} {t.triggering_event_id}"


def link(t: StageTransition, template: str | None) -> str | None:
    if not template:
        return None
    return template.replace("{lead_id}", t.lead_id).replace("{account_id}", t.account_id or "")


def summary(t: StageTransition) -> str:
    """One line: what a notification preview or a log shows."""
    s = t.scores
    return f"{who(t)}: {move(t)}, score {s.total:g} (grade {s.grade}), {why(t, top=2)}"


# --- Slack Block Kit -----------------------------------------------------------------


def _esc(text: str) -> str:
    """Slack mrkdwn control characters (ids come from tracking pipelines)."""
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def _slack_name(t: StageTransition, template: str | None) -> str:
    url = link(t, template)
    name = f"*{_esc(t.lead_id)}*"
    if url:
        name = f"*<{_esc(url)}|{_esc(t.lead_id)}>*"
    return name + (f" ({_esc(t.account_id)})" if t.account_id else "")


def slack_one(t: StageTransition, template: str | None = None) -> dict[str, Any]:
    s = t.scores
    return {
        "text": summary(t),
        "blocks": [
            {
                "type": "section",
                "text": {"type": "mrkdwn", "text": f"{_slack_name(t, template)} moved *{move(t)}*"},
            },
            {
                "type": "section",
                "fields": [
                    {
                        "type": "mrkdwn",
                        "text": f"*Score*\n{s.total:g} (fit {s.fit:g}, "
                        f"engagement {s.engagement:g})",
                    },
                    {"type": "mrkdwn", "text": f"*Grade*\n{_esc(s.grade)}"},
                    {"type": "mrkdwn", "text": f"*Why*\n{_esc(why(t))}"},
                    {"type": "mrkdwn", "text": f"*Trigger*\n{_esc(trigger(t))}"},
                ],
            },
            {
                "type": "context",
                "elements": [
                    {
                        "type": "mrkdwn",
                        "text": (
                            f"{t.occurred_at:%Y-%m-%d %H:%M} UTC · rules {_esc(t.rules_version)} · "
                            f"transition {_esc(t.transition_id)}"
                        ),
                    }
                ],
            },
        ],
    }


def slack_digest(ts: Sequence[StageTransition], template: str | None = None) -> dict[str, Any]:
    blocks: list[dict[str, Any]] = [
        {"type": "header", "text": {"type": "plain_text", "text": f"{len(ts)} stage changes"}}
    ]
    for t in ts:
        s = t.scores
        blocks.append(
            {
                "type": "section",
                "text": {
                    "type": "mrkdwn",
                    "text": (
                        f"{_slack_name(t, template)} *{move(t)}* · "
                        f"score {s.total:g} ({_esc(s.grade)}) · "
                        f"{_esc(why(t, top=2))} · trigger: {_esc(trigger(t))}"
                    ),
                },
            }
        )
    return {
        "text": f"{len(ts)} stage changes: " + "; ".join(summary(t) for t in ts[:3]),
        "blocks": blocks,
    }


# --- Microsoft Teams Adaptive Card -----------------------------------------------------


def _facts(t: StageTransition) -> list[dict[str, str]]:
    s = t.scores
    return [
        {"title": "Score", "value": f"{s.total:g} (fit {s.fit:g}, engagement {s.engagement:g})"},
        {"title": "Grade", "value": s.grade},
        {"title": "Why", "value": why(t)},
        {"title": "Trigger", "value": trigger(t)},
    ]


def teams_card(ts: Sequence[StageTransition], template: str | None = None) -> dict[str, Any]:
    body: list[dict[str, Any]] = []
    actions: list[dict[str, Any]] = []
    if len(ts) > 1:
        body.append(
            {
                "type": "TextBlock",
                "text": f"{len(ts)} stage changes",
                "size": "Large",
                "weight": "Bolder",
                "wrap": True,
            }
        )
    for t in ts:
        url = link(t, template)
        title = f"{who(t)} moved {move(t)}"
        item: list[dict[str, Any]] = [
            {
                "type": "TextBlock",
                "text": title,
                "weight": "Bolder",
                "size": "Medium",
                "wrap": True,
            },
            {"type": "FactSet", "facts": _facts(t)},
        ]
        if url and len(ts) > 1:
            item.append({"type": "TextBlock", "text": f"[Open in CRM]({url})", "wrap": True})
        elif url:
            actions.append({"type": "Action.OpenUrl", "title": "Open in CRM", "url": url})
        body.append({"type": "Container", "items": item, "separator": True})
    card: dict[str, Any] = {
        "$schema": "http://adaptivecards.io/schemas/adaptive-card.json",
        "type": "AdaptiveCard",
        "version": "1.4",
        "body": body,
    }
    if actions:
        card["actions"] = actions
    return {
        "type": "message",
        "attachments": [
            {
                "contentType": "application/vnd.microsoft.card.adaptive",
                "contentUrl": None,
                "content": card,
            }
        ],
    }


# --- what to post ----------------------------------------------------------------------


def _json(body: dict[str, Any]) -> bytes:
    return json.dumps(body, ensure_ascii=False, separators=(",", ":")).encode()


def http_ce_headers(t: StageTransition, source: str, now: datetime) -> dict[str, str]:
    """CloudEvents HTTP binary mode: the Kafka headers' ``ce_`` become ``ce-``."""
    return {
        name.replace("ce_", "ce-", 1): value.decode()
        for name, value in cloudevents.headers(t, source=source, now=now)
    }


def plan(
    kind: Kind,
    transitions: Sequence[StageTransition],
    *,
    template: str | None = None,
    digest_max: int = 20,
    source: str = "/leadstream/leadstream",
    now: datetime | None = None,
) -> Post:
    """The next POST for the first of ``transitions``: a chat message carrying up to
    ``digest_max`` of them (a digest when more than one), or one webhook call."""
    if not transitions:
        raise ValueError("nothing to post")
    if kind == "webhook":
        t = transitions[0]
        headers = http_ce_headers(t, source, now or datetime.now(UTC))
        return Post(t.model_dump_json().encode(), headers, (t.transition_id,))
    chunk = list(transitions[: max(1, min(digest_max, MAX_DIGEST))])
    if kind == "slack":
        body = slack_one(chunk[0], template) if len(chunk) == 1 else slack_digest(chunk, template)
    else:
        body = teams_card(chunk, template)
    return Post(
        _json(body), {"content-type": "application/json"}, tuple(t.transition_id for t in chunk)
    )
