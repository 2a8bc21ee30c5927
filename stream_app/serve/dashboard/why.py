"""Why a lead is where it is, in words a sales rep reads at a glance."""

from __future__ import annotations

from typing import Any

from stream_app.serve.dashboard.html import Html, esc, join

REASON_LABEL = {
    "score_threshold": "score crossed the line",
    "hand_raise": "hand-raise",
    "pql_activation": "product activation",
    "decay": "went cold (decay)",
    "disqualified": "disqualified",
    "requalified": "requalified",
    "sales_feedback": "sales feedback",
}


def top_reasons(contributions: list[dict[str, Any]], n: int = 3) -> Html:
    """The rules that gave the most points, strongest first: ``pricing_page +40``."""
    ranked = sorted(contributions, key=lambda c: -abs(c["points"]))[:n]
    return join(
        f'<span class="why">{esc(c["rule"])} <b>{c["points"]:+g}</b></span>' for c in ranked
    )


def hand_raise(transition: dict[str, Any] | None) -> Html:
    """A badge when the lead's last transition was a hand-raise (a different conversation)."""
    if transition is None or transition["reason"] != "hand_raise":
        return Html("")
    form = (transition.get("detail") or "hand-raise").split(";")[0].replace("_", " ")
    return Html(f'<span class="hand">Hand-raise: {esc(form)}</span> ')


def reason(transition: dict[str, Any]) -> Html:
    if transition["reason"] == "hand_raise":
        return hand_raise(transition)
    label = REASON_LABEL.get(transition["reason"], transition["reason"])
    detail = f" ({transition['detail']})" if transition.get("detail") else ""
    return esc(label + detail)


def trigger(transition: dict[str, Any]) -> Html:
    if not transition.get("triggering_event_id"):
        return Html("no event (decay or timer)")
    kind = transition.get("triggering_event_type") or "event"
    return Html(f"{esc(kind)} <code>{esc(transition['triggering_event_id'])}</code>")
