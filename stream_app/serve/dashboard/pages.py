"""The dashboard's pages other than one lead's (``lead_page``): each a function of what it read."""

from __future__ import annotations

from typing import Any

from stream_app.scoring.rules import Rules
from stream_app.serve.dashboard.html import (
    Html,
    account_link,
    esc,
    join,
    lead_link,
    link,
    num,
    pct,
    stage_badge,
    table,
    url,
    when,
)
from stream_app.serve.dashboard.svg import bars, paired_bars
from stream_app.serve.dashboard.why import hand_raise, reason, top_reasons, trigger
from stream_app.serve.stores.grid import BAND_LABELS, BANDS

FUNNEL_STAGES = ("lead", "mql", "pql", "sql", "sales_accepted", "opportunity", "customer")


def _hours(sla_hours: dict[str, float]) -> str:
    return ", ".join(f"{k.upper()} {v:g} h" for k, v in sla_hours.items()) or "none set"


def lead_rows(leads: list[dict[str, Any]], last: dict[str, dict[str, Any]]) -> Html:
    """The leads table every list shares: who, how hot, and why."""
    return table(
        ["Lead", "Stage", "Score", "Fit", "Engagement", "Why", "Account", "Last activity"],
        (
            [
                lead_link(r["lead_id"]),
                stage_badge(r["stage"]),
                Html(f'<b class="score">{num(r["scores"]["total"])}</b>'),
                f"{num(r['scores']['fit'])} ({r['scores']['grade']})",
                num(r["scores"]["engagement"]),
                Html(hand_raise(last.get(r["lead_id"])) + top_reasons(r["contributions"])),
                account_link(r.get("account_id")),
                when(r.get("last_activity_at")),
            ]
            for r in leads
        ),
        "Leads, hottest first",
        "leads",
    )


def feed_row(entry_id: str, t: dict[str, Any]) -> Html:
    """One transition of the live view (also sent as it happens: ``live.py``)."""
    return Html(
        f'<li data-id="{esc(entry_id)}" data-lead="{esc(t["lead_id"])}">'
        f"<time>{esc(when(t['occurred_at']))}</time> {lead_link(t['lead_id'])} "
        f"{stage_badge(t['from_stage'])} → {stage_badge(t['to_stage'])} "
        f'<span class="reason">{reason(t)}</span> '
        f'<span class="score">score {num(t["scores"]["total"])}</span> '
        f"{top_reasons(t['contributions'], 2)}</li>"
    )


def feed(entries: list[tuple[str, dict[str, Any]]]) -> Html:
    rows = join(feed_row(i, t) for i, t in entries)
    return Html(
        '<section aria-labelledby="live-h"><h2 id="live-h">Transitions as they happen</h2>'
        f'<ol id="feed" class="feed" reversed>{rows}</ol></section>'
    )


def overview(
    count: int,
    waiting: list[dict[str, Any]],
    hottest: list[dict[str, Any]],
    last: dict[str, dict[str, Any]],
    entries: list[tuple[str, dict[str, Any]]],
    sla_hours: dict[str, float],
) -> Html:
    """Call first: leads waiting for sales (past the SLA first, then the earliest deadline),
    then the hottest leads."""
    call = table(
        ["Lead", "Stage", "Why", "Score", "Account", "Pick up by", ""],
        (
            [
                lead_link(r["lead_id"]),
                stage_badge(r["stage"]),
                Html(hand_raise(last.get(r["lead_id"])) + top_reasons(r["contributions"])),
                num(r["scores"]["total"]),
                account_link(r.get("account_id")),
                when(r.get("sla_due_at")),
                Html('<span class="late">past SLA</span>')
                if r.get("sla") == "breached"
                else Html('<span class="ok">within SLA</span>'),
            ]
            for r in waiting
        ),
        f"Waiting for sales: {count:,} (SLA {_hours(sla_hours)})",
        "call",
    )
    return Html(
        '<div class="cols main-side"><div>'
        f'<section aria-labelledby="call-h"><h2 id="call-h">Call these first</h2>{call}</section>'
        f'<section aria-labelledby="hot-h"><h2 id="hot-h">Hottest leads</h2>'
        f"{lead_rows(hottest, last)}<p>{link(url('/leads'), 'All leads, with filters')}</p>"
        f"</section></div><div>{feed(entries)}</div></div>"
    )


def funnel(data: dict[str, Any], weekly: list[tuple[str, int, int]]) -> Html:
    """The funnel: what /funnel serves (the same numbers), with charts."""
    stages = data["stages"]
    counts = [(s.replace("_", " "), stages.get(s, 0)) for s in FUNNEL_STAGES]
    review = data.get("mql_review")
    flag = ""
    if review is not None:
        cls = "warn" if review["needs_review"] else "note"
        flag = f'<p class="{cls}" data-metric="mql_review">{esc(review["message"])}</p>'
    figures = [
        ("Leads", "leads", num(data["leads"])),
        ("Reached MQL", "reached_mql", num(data["reached_mql"])),
        ("Reached SQL", "reached_sql", num(data["reached_sql"])),
        ("MQL → SQL", "mql_to_sql_rate", pct(data["mql_to_sql_rate"])),
        ("Days to MQL (median)", "median_days_to_mql", num(data["median_days_to_mql"])),
        ("Days MQL → SQL (median)", "median_days_mql_to_sql", num(data["median_days_mql_to_sql"])),
        ("Waiting within SLA", "sla.open", num(data["sla"]["open"])),
        ("Waiting past SLA", "sla.breached", num(data["sla"]["breached"])),
    ]
    tiles = join(
        f'<div class="tile"><dt>{esc(name)}</dt><dd data-metric="{key}">{value}</dd></div>'
        for name, key, value in figures
    )
    by = ""
    for title, key in (("By source", "by_source"), ("By campaign", "by_campaign")):
        rows = sorted(data[key].items(), key=lambda kv: -kv[1]["leads"])
        by += table(
            [title.removeprefix("By ").capitalize(), "Leads", "MQL", "SQL", "MQL → SQL"],
            (
                [
                    name,
                    num(v["leads"]),
                    num(v["reached_mql"]),
                    num(v["reached_sql"]),
                    pct(v["reached_sql"] / v["reached_mql"] if v["reached_mql"] else None),
                ]
                for name, v in rows
            ),
            f"{title}: first touch",
            key,
        )
    stage_table = table(
        ["Stage", "Leads now"],
        (
            [esc(s), Html(f'<span data-metric="stages.{s}">{stages.get(s, 0)}</span>')]
            for s in stages
        ),
        "Leads per stage now",
        "stages",
    )
    return Html(
        f'<dl class="tiles">{tiles}</dl>{flag}'
        '<div class="cols"><section aria-labelledby="st-h"><h2 id="st-h">Leads per stage now</h2>'
        f"{bars('Leads per stage now', counts)}{stage_table}</section>"
        '<section aria-labelledby="wk-h"><h2 id="wk-h">New MQLs and SQLs per week</h2>'
        f"{paired_bars('First MQLs and first SQLs per week', weekly, ('MQL', 'SQL'))}"
        + table(["Week of", "MQLs", "SQLs"], weekly, "New MQLs and SQLs per week", "weekly")
        + f"</section></div><div class='cols'>{by}</div>"
    )


def side_by_side(champion: dict[str, Any], challenger: dict[str, Any], name: str) -> Html:
    """The champion's and a challenger's funnels in one table (what /funnels serves)."""

    def figures(data: dict[str, Any]) -> list[str]:
        return [
            num(data["leads"]),
            num(data["reached_mql"]),
            num(data["reached_sql"]),
            pct(data["mql_to_sql_rate"]),
            num(data["median_days_to_mql"]),
            num(data["median_days_mql_to_sql"]),
        ]

    names = ["Leads", "Reached MQL", "Reached SQL", "MQL → SQL", "Days to MQL", "Days MQL → SQL"]
    rows = (
        [label, ours, theirs]
        for label, ours, theirs in zip(names, figures(champion), figures(challenger), strict=True)
    )
    return Html(
        '<section aria-labelledby="ch-h"><h2 id="ch-h">Champion and challenger</h2>'
        f'<p class="note">A challenger ({esc(name)}) scores the same inputs with another '
        "rules file; nobody is notified from it (docs/outcomes.md).</p>"
        + table(
            ["", "Champion", f"Challenger {esc(name)}"],
            rows,
            "Champion and challenger",
            "challenger",
        )
        + "</section>"
    )


def leads(
    rows: list[dict[str, Any]],
    last: dict[str, dict[str, Any]],
    grid: dict[str, int],
    grades: list[str],
    distribution: list[tuple[str, int]],
    filters: dict[str, str | None],
    choices: dict[str, list[str]],
) -> Html:
    def select(name: str, label: str, options: list[str]) -> str:
        opts = "".join(
            f'<option value="{esc(o)}"{" selected" if filters.get(name) == o else ""}>'
            f"{esc(o or 'any')}</option>"
            for o in ["", *options]
        )
        return f'<label>{label} <select name="{name}">{opts}</select></label>'

    form = (
        f'<form class="filters" method="get" action="{url("/leads")}">'
        + select("stage", "Stage", choices["stage"])
        + select("grade", "Grade", choices["grade"])
        + select("source", "Source", choices["source"])
        + '<label>Account <input name="account" '
        + f'value="{esc(filters.get("account") or "")}"></label>'
        + (
            f'<input type="hidden" name="cell" value="{esc(filters["cell"])}">'
            if filters.get("cell")
            else ""
        )
        + '<button type="submit">Show</button></form>'
    )
    head = "".join(
        f'<th scope="col">{esc(b)} <small>({esc(BAND_LABELS[b])})</small></th>' for b in BANDS
    )
    body = ""
    for g in grades:
        cells = "".join(
            f'<td><a class="cell" data-cell="{g}{b}" href="{esc(url("/leads", cell=f"{g}{b}"))}" '
            f'aria-label="{g}{b}: {grid[g + b]} leads">{grid[g + b]}</a></td>'
            for b in BANDS
        )
        body += f'<tr><th scope="row">{esc(g)}</th>{cells}</tr>'
    total = sum(grid.values())
    grid_html = (
        '<table class="grid"><caption>Fit grade (rows) by engagement band (columns); '
        f'<span data-metric="grid.total">{total}</span> leads</caption>'
        f'<thead><tr><th scope="col">Grade</th>{head}</tr></thead><tbody>{body}</tbody></table>'
    )
    active = ", ".join(f"{k} {v}" for k, v in filters.items() if v) or "none"
    return Html(
        '<div class="cols"><section aria-labelledby="grid-h">'
        '<h2 id="grid-h">Fit &times; engagement</h2>'
        f"{grid_html}</section>"
        '<section aria-labelledby="dist-h"><h2 id="dist-h">Score distribution</h2>'
        + bars("Leads per total score band (disqualified left out)", distribution)
        + '</section></div><section aria-labelledby="list-h"><h2 id="list-h">'
        f"Hottest leads (filters: {esc(active)})</h2>"
        f"{form}{lead_rows(rows, last)}</section>"
    )


def accounts(rows: list[dict[str, Any]], top_n: int) -> Html:
    return table(
        ["Account", f"Score (sum of its top {top_n} leads)"],
        ([account_link(r["account_id"]), num(r["score"])] for r in rows),
        "Accounts, highest score first",
        "accounts",
    )


def account(
    view: dict[str, Any], details: list[dict[str, Any]], last: dict[str, dict[str, Any]]
) -> Html:
    return Html(
        f'<p class="tiles-line">Account score <b>{num(view["score"])}</b> '
        f"(the sum of its top {view['top_n']} leads; disqualified leads never count)</p>"
        + lead_rows(details, last)
    )


def sla(
    open_: tuple[int, list[dict[str, Any]]],
    breached: tuple[int, list[dict[str, Any]]],
    recent: list[dict[str, Any]],
    sla_hours: dict[str, float],
) -> Html:
    """Leads past and within the SLA (the earliest deadline first: the first ``LIST_LIMIT``
    of each), and the recent breaches published (the latest deadline first), also of
    leads sales picked up since."""

    def rows(leads: list[dict[str, Any]]) -> Any:
        return (
            [
                lead_link(r["lead_id"]),
                stage_badge(r["stage"]),
                when(r.get("sla_due_at")),
                num(r["scores"]["total"]),
                account_link(r.get("account_id")),
            ]
            for r in leads
        )

    headers = ["Lead", "Stage", "Deadline", "Score", "Account"]
    (late, late_rows), (on_time, on_time_rows) = breached, open_
    return Html(
        f"<p>Sales must give feedback within: {esc(_hours(sla_hours))}.</p>"
        + table(
            headers,
            rows(late_rows),
            f"Past the SLA: {late:,}, the oldest deadline first",
            "breached",
        )
        + table(
            headers,
            rows(on_time_rows),
            f"Within the SLA: {on_time:,}, the earliest deadline first",
            "open",
        )
        + table(
            ["Lead", "Waited in", "Deadline missed", "Score then", "Account"],
            (
                [
                    lead_link(b["lead_id"]),
                    stage_badge(b["stage"]),
                    when(b["occurred_at"]),
                    num(b["scores"]["total"]),
                    account_link(b.get("account_id")),
                ]
                for b in recent
            ),
            "Recent breaches, the latest deadline first (also of leads picked up since)",
            "recent",
        )
    )


def rules(
    rules: Rules,
    loaded_at: str,
    modified_at: str,
    seen: list[tuple[str, float]],
    newest: dict[str, str],
) -> Html:
    """The rules in force; ``seen``: each stamp the projection stored score updates under
    and when it first did (newest first); ``newest``: stamp -> its newest recent transition."""
    spec = rules.spec
    st = spec.stages
    lines = table(
        ["Line", "Total", "Fit", "Engagement"],
        [
            ["MQL", st.mql.min_total, st.mql.min_fit, st.mql.min_engagement],
            ["SQL", st.sql.min_total, st.sql.min_fit, st.sql.min_engagement],
            ["Recycled below", st.recycle.below_total, "—", st.recycle.below_engagement],
        ],
        f"The lines (hand-raise: {', '.join(st.hand_raise.forms)} "
        f"with fit at least {st.hand_raise.min_fit:g}"
        f" goes to SQL at once; recycling waits {st.recycle.grace_days:g} days)",
        "lines",
    )

    def cap(rule: Any) -> str:
        return f"{rule.cap.points:g} per {rule.cap.per_days} days" if rule.cap else "—"

    engagement = table(
        ["Rule", "Points", "Cap", "What"],
        (
            [Html(f"<code>{esc(r.id)}</code>"), f"{r.points:+g}", cap(r), r.description]
            for r in spec.engagement.rules
        ),
        f"Engagement rules (points halve every {spec.engagement.half_life_days:g} days)",
        "rules",
    )
    signals = table(
        ["Signal", "Points", "Within", "What"],
        (
            [
                Html(f"<code>{esc(s.id)}</code>"),
                f"{s.points:+g}",
                f"{s.within_days} days",
                s.description,
            ]
            for s in spec.signals
        ),
        "SQL-checklist signals",
        "rules",
    )
    fit = table(
        ["Rule", "Points", "What"],
        (
            [Html(f"<code>{esc(r.id)}</code>"), f"{r.points:+g}", r.description]
            for r in spec.fit.rules
        ),
        "Fit rules; grades: "
        + ", ".join(
            f"{g.grade} ≥ {g.min_fit:g}" if g.min_fit is not None else g.grade
            for g in spec.fit.grades
        ),
        "rules",
    )
    dq = table(
        ["Exclusion", "What"],
        ([Html(f"<code>{esc(d.id)}</code>"), d.description] for d in spec.disqualify),
        "Hard exclusions: never reach sales",
        "rules",
    )
    history = table(
        ["Rules stamp", "First score update under it", "Newest recent transition under it"],
        (
            [Html(f"<code>{esc(stamp)}</code>"), when(at), when(newest.get(stamp))]
            for stamp, at in seen
        ),
        "The rules the worker scored with: a reload re-scores every lead at once, so a "
        "stamp's first update is when it took effect",
        "stamps",
    )
    since = dict(seen).get(rules.stamp)
    in_force = (
        when(since)
        if since is not None
        else "not yet: no score update under this stamp (is the worker's file the same? "
        "it reads a changed file on SIGHUP)"
    )
    return Html(
        f'<dl class="tiles"><div class="tile"><dt>Version</dt><dd>{esc(spec.version)}</dd></div>'
        f'<div class="tile"><dt>Stamp</dt><dd><code>{esc(rules.stamp)}</code></dd></div>'
        f'<div class="tile"><dt>File</dt><dd><code>{esc(rules.source)}</code></dd></div>'
        f'<div class="tile"><dt>File changed</dt><dd>{esc(modified_at)}</dd></div>'
        f'<div class="tile"><dt>Read by this page</dt><dd>{esc(loaded_at)}</dd></div>'
        f'<div class="tile"><dt>Scoring live since</dt><dd data-metric="rules-since">'
        f"{esc(in_force)}</dd></div></dl>"
        f"<p>{esc(spec.name)}: {esc(spec.description)}</p>"
        "<p>The worker applies a changed file on SIGHUP and re-scores every lead with it; "
        "the table below says when each stamp first scored a lead.</p>"
        f"{history}{lines}{engagement}{signals}{fit}{dq}"
    )


def transitions_table(items: list[dict[str, Any]]) -> Html:
    return table(
        ["When", "From", "To", "Why", "Trigger", "Score", "Rules"],
        (
            [
                when(t["occurred_at"]),
                stage_badge(t["from_stage"]),
                stage_badge(t["to_stage"]),
                reason(t),
                trigger(t),
                f"{num(t['scores']['total'])} (fit {num(t['scores']['fit'])}, "
                f"engagement {num(t['scores']['engagement'])})",
                t["rules_version"],
            ]
            for t in items
        ),
        "Transitions, newest first",
        "timeline",
    )
