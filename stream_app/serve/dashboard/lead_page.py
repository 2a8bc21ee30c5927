"""One lead's page: where it stands and why, how it got there, where its score is heading."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from stream_app.scoring.rules import Rules
from stream_app.serve.dashboard.html import (
    Html,
    account_link,
    esc,
    lead_link,
    num,
    stage_badge,
    table,
    when,
)
from stream_app.serve.dashboard.pages import transitions_table
from stream_app.serve.dashboard.svg import Line, Mark, timeline
from stream_app.serve.dashboard.why import hand_raise

QUALIFIED = {"mql", "sql", "pql"}
DAY = 86_400.0


def _ts(value: str | None) -> float | None:
    return datetime.fromisoformat(value.replace("Z", "+00:00")).timestamp() if value else None


def projected_decay(
    lead: dict[str, Any], rules: Rules
) -> tuple[list[tuple[float, float]], float | None]:
    """The score from the last activity on if nothing else happens, and when decay alone
    changes the lead's stage (None: it never does).

    Engagement halves every ``half_life_days``; fit does not decay. The time is the
    core's own (the score update's ``next_change_at``: the recycle line crossed and
    the grace period over, exactly when the worker's timer acts), not an estimate;
    the curve up to it is drawn dashed.
    """
    start = _ts(lead.get("last_activity_at"))
    if start is None:
        return [], None
    s = lead["scores"]
    half_life = rules.spec.engagement.half_life_days * DAY
    change = _ts(lead.get("next_change_at"))
    end = change if change is not None and change > start else start + 60 * DAY
    steps = 24
    curve = [
        (t, s["fit"] + s["engagement"] * 0.5 ** ((t - start) / half_life))
        for t in (start + (end - start) * i / steps for i in range(steps + 1))
    ]
    return curve, change


def contributions(transition: dict[str, Any] | None) -> Html:
    if transition is None:
        return Html("<p>No transition yet: the lead has not changed stage.</p>")
    parts = []
    for title, kinds in (("Fit", {"fit"}), ("Engagement", {"engagement", "signal"})):
        rows = [c for c in transition["contributions"] if c["kind"] in kinds]
        total = transition["scores"]["fit" if title == "Fit" else "engagement"]
        parts.append(
            table(
                ["Rule", "Kind", "Points"],
                (
                    [
                        Html(f"<code>{esc(c['rule'])}</code>"),
                        c["kind"],
                        Html(f'<span data-rule="{esc(c["rule"])}">{c["points"]:+g}</span>'),
                    ]
                    for c in sorted(rows, key=lambda c: -c["points"])
                ),
                f"{title}: {num(total)} points",
                "contrib",
            )
        )
    return Html(
        f"<p>As its last transition ({esc(when(transition['occurred_at']))}, "
        f"{esc(transition['from_stage'])} → {esc(transition['to_stage'])}) explains it:</p>"
        f'<div class="cols">{"".join(parts)}</div>'
    )


def lead(
    data: dict[str, Any],
    history: list[dict[str, Any]],
    account: dict[str, Any] | None,
    rules: Rules,
) -> Html:
    transitions = data["recent_transitions"]
    last = transitions[0] if transitions else None
    s = data["scores"]
    st = rules.spec.stages
    points = [(p["t"], p["total"]) for p in history if p.get("t") is not None]
    marks = [
        Mark(
            _ts(t["occurred_at"]) or 0.0,
            t["scores"]["total"],
            f"{when(t['occurred_at'])}: {t['from_stage']} → {t['to_stage']} ({t['reason']})",
        )
        for t in transitions
    ]
    curve, crossing = projected_decay(data, rules)
    chart = timeline(
        f"Score of {data['lead_id']} over time, with the MQL and SQL lines",
        points,
        [
            Line(st.mql.min_total, "MQL"),
            Line(st.sql.min_total, "SQL"),
            Line(st.recycle.below_total, "recycle"),
        ],
        marks,
        curve,
    )
    outlook = (
        "No stage change ahead from decay alone: the lead is not qualified, or its fit "
        "alone keeps it above the recycle line."
        if crossing is None
        else f"If nothing else happens, decay recycles the lead on {when(crossing)} (its "
        f"total below {st.recycle.below_total:g} or its engagement below "
        f"{st.recycle.below_engagement:g}, then {st.recycle.grace_days:g} days' grace)."
        if data["stage"] in QUALIFIED
        else f"If nothing else happens, the lead's negative points fade and it moves up on "
        f"{when(crossing)}."
    )
    others = ""
    if account is not None:
        others = table(
            ["Lead", "Stage", "Score"],
            (
                [lead_link(r["lead_id"]), stage_badge(r["stage"]), num(r["total"])]
                for r in account["leads"]
                if r["lead_id"] != data["lead_id"]
            ),
            f"The account's other leads (account score {num(account['score'])})",
            "others",
        )
    return Html(
        f'<p class="headline">{stage_badge(data["stage"])} {hand_raise(last)}'
        f'score <b data-metric="total">{num(s["total"])}</b> = '
        f'fit <b data-metric="fit">{num(s["fit"])}</b> (grade {esc(s["grade"])}) + '
        f'engagement <b data-metric="engagement">{num(s["engagement"])}</b> · '
        f"account {account_link(data.get('account_id'))} · last activity "
        f"{esc(when(data.get('last_activity_at')))} · source {esc(data.get('source') or '—')}</p>"
        '<section aria-labelledby="why-h"><h2 id="why-h">Why: every rule\'s points</h2>'
        f"{contributions(last)}</section>"
        '<section aria-labelledby="chart-h"><h2 id="chart-h">Score over time</h2>'
        f'{chart}<p class="note">Dots: transitions. Dashed: the projected decay. {esc(outlook)}</p>'
        "</section>"
        '<section aria-labelledby="tl-h"><h2 id="tl-h">Transitions</h2>'
        f"{transitions_table(transitions)}</section>"
        '<section aria-labelledby="acc-h"><h2 id="acc-h">Account</h2>'
        f"{others or '<p>No account.</p>'}"
        "</section>"
    )
