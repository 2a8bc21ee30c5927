"""``evaluate --html``: the report as one self-contained page (inline SVG, inline CSS, no script).

Opened from a file or mailed around, it fetches nothing. Charts: the ROC curve
of the total score at the hand-off, the outcome rate by score decile with the
calibration fit's expectation, and each rule's lift with its interval.
Every text that comes from a file or the data is escaped.
"""

from __future__ import annotations

from html import escape
from typing import Any

W, H, PAD = 420, 260, 36
CSS = """
body{font:14px/1.45 system-ui,sans-serif;margin:2rem auto;max-width:980px;color:#1b1f24}
h1{font-size:1.4rem}h2{font-size:1.1rem;margin-top:2rem}table{border-collapse:collapse}
td,th{padding:.2rem .6rem;border-bottom:1px solid #ddd;text-align:right}
td:first-child,th:first-child{text-align:left}.flag{color:#8a3b00}.muted{color:#555}
svg{background:#fafafa;border:1px solid #ddd;margin:.3rem 1rem .3rem 0}
.charts{display:flex;flex-wrap:wrap}
"""


def _pct(x: float | None) -> str:
    return "n/a" if x is None else f"{100 * x:.1f}%"


def _svg(body: str, title: str, width: int = W, height: int = H) -> str:
    return (
        f'<svg width="{width}" height="{height}" viewBox="0 0 {width} {height}" role="img" '
        f'aria-label="{escape(title)}"><title>{escape(title)}</title>{body}</svg>'
    )


def _axes(width: int = W, height: int = H) -> str:
    return (
        f'<line x1="{PAD}" y1="{height - PAD}" x2="{width - 10}" y2="{height - PAD}" '
        'stroke="#888"/>'
        f'<line x1="{PAD}" y1="10" x2="{PAD}" y2="{height - PAD}" stroke="#888"/>'
    )


def roc_chart(report: dict[str, Any]) -> str:
    block = report["auc"]["at_handoff"]
    if block is None or not block["total"].get("curve"):
        return ""
    sx, sy = W - PAD - 10, H - PAD - 10

    def xy(fpr: float, tpr: float) -> str:
        return f"{PAD + fpr * sx:.1f},{H - PAD - tpr * sy:.1f}"

    points = " ".join(xy(f, t) for f, t in block["total"]["curve"])
    body = (
        _axes() + f'<line x1="{PAD}" y1="{H - PAD}" x2="{PAD + sx}" y2="{H - PAD - sy}" '
        'stroke="#bbb" stroke-dasharray="4 4"/>'
        + f'<polyline fill="none" stroke="#1f6feb" stroke-width="2" points="{points}"/>'
        + f'<text x="{W / 2}" y="{H - 8}" text-anchor="middle">false positive rate</text>'
        + f'<text x="12" y="{H / 2}" transform="rotate(-90 12 {H / 2})" text-anchor="middle">'
        "true positive rate</text>"
        + f'<text x="{PAD + 10}" y="24">AUC {block["total"]["roc"]:.3f}</text>'
    )
    return _svg(body, "ROC curve of the total score at the hand-off")


def decile_chart(report: dict[str, Any]) -> str:
    rows = report["conversion"]["by_decile"]
    cal = report["calibration"]
    if not rows:
        return ""
    expected = {r["bin"]: r["expected"] for r in cal["bins"]} if cal else {}
    top = max([r["rate"] or 0 for r in rows] + list(expected.values()) + [0.05])
    sx = (W - PAD - 10) / len(rows)
    sy = (H - PAD - 20) / top
    body = _axes()
    dots = []
    for k, row in enumerate(rows):
        height = (row["rate"] or 0) * sy
        x = PAD + k * sx + 3
        body += (
            f'<rect x="{x:.1f}" y="{H - PAD - height:.1f}" width="{sx - 6:.1f}" '
            f'height="{height:.1f}" fill="#2da44e"><title>decile {row["decile"]}: '
            f"{_pct(row['rate'])} of {row['leads']}</title></rect>"
            f'<text x="{x + (sx - 6) / 2:.1f}" y="{H - PAD + 14}" text-anchor="middle">'
            f"{row['decile']}</text>"
        )
        if row["decile"] in expected:
            dots.append(f"{x + (sx - 6) / 2:.1f},{H - PAD - expected[row['decile']] * sy:.1f}")
    if dots:
        body += (
            f'<polyline fill="none" stroke="#cf222e" stroke-width="2" points="{" ".join(dots)}"/>'
        )
    body += (
        f'<text x="{W / 2}" y="{H - 4}" text-anchor="middle">score decile (bars: observed, '
        "line: calibration fit)</text>"
        f'<text x="{PAD + 4}" y="22">up to {_pct(top)}</text>'
    )
    return _svg(body, "Outcome rate by score decile")


def lift_chart(report: dict[str, Any]) -> str:
    rows = [(r, v) for r, v in report["rules"].items() if v["lift"] is not None]
    rows.sort(key=lambda kv: -(kv[1]["lift"] or 0))
    if not rows:
        return ""
    row_h, left = 18, 190
    width, height = 760, 30 + row_h * len(rows)
    top = max(2.0, *(v["lift_ci"][1] for _, v in rows))
    scale = (width - left - 20) / top
    body = (
        f'<line x1="{left + scale:.1f}" y1="10" x2="{left + scale:.1f}" y2="{height - 10}" '
        'stroke="#888" stroke-dasharray="3 3"/>'
        f'<text x="{left + scale + 4:.1f}" y="20">lift 1 (base rate)</text>'
    )
    for k, (rule_id, v) in enumerate(rows):
        y = 30 + k * row_h
        lo, hi = v["lift_ci"]
        colour = "#999" if v["evidence"] in ("none", "unclear") else "#1f6feb"
        body += (
            f'<text x="{left - 6}" y="{y + 12}" text-anchor="end">{escape(rule_id)}</text>'
            f'<line x1="{left + lo * scale:.1f}" y1="{y + 8}" x2="{left + hi * scale:.1f}" '
            f'y2="{y + 8}" stroke="{colour}" stroke-width="2"/>'
            f'<circle cx="{left + v["lift"] * scale:.1f}" cy="{y + 8}" r="4" fill="{colour}">'
            f"<title>{escape(rule_id)}: lift {v['lift']:.2f} [{lo:.2f}, {hi:.2f}], "
            f"{v['fired_leads']} leads</title></circle>"
        )
    return _svg(body, "Lift of each rule with its 95% interval", width, height)


def _rules_table(report: dict[str, Any]) -> str:
    head = (
        "<tr><th>rule</th><th>kind</th><th>points</th><th>leads</th><th>rate</th>"
        "<th>lift [95% CI]</th><th>MQLs decided</th><th>evidence</th></tr>"
    )
    rows = []
    for rule_id, v in sorted(report["rules"].items(), key=lambda kv: -(kv[1]["lift"] or -1)):
        lift = (
            "-"
            if v["lift"] is None
            else f"{v['lift']:.2f} [{v['lift_ci'][0]:.2f}, {v['lift_ci'][1]:.2f}]"
        )
        fired = "" if v["ever_fired"] else " (never fired)"
        rows.append(
            f"<tr><td>{escape(rule_id)}{fired}</td><td>{escape(v['kind'])}</td>"
            f"<td>{v['points']:g}</td><td>{v['fired_leads']}</td><td>{_pct(v['rate'])}</td>"
            f"<td>{lift}</td><td>{v['decided_mqls']}</td><td>{escape(v['evidence'])}</td></tr>"
        )
    return f"<table>{head}{''.join(rows)}</table>"


def _auc_table(report: dict[str, Any]) -> str:
    rows = []
    for when, block in (
        ("at the hand-off", report["auc"]["at_handoff"]),
        ("at the cut", report["auc"]["at_cut"]),
    ):
        if block is None or "total" not in block:
            continue
        label = when + (f" ({escape(str(block['cut'])[:10])})" if "cut" in block else "")
        cells = "".join(
            f"<td>{block[n]['roc']:.3f} [{block[n]['roc_ci'][0]:.3f}, {block[n]['roc_ci'][1]:.3f}]"
            f" / {block[n]['pr']:.3f}</td>"
            for n in ("total", "fit", "engagement")
        )
        counts = f"{block['leads']} leads, {block['positive']} positive"
        rows.append(f"<tr><td>{label}, {counts}</td>{cells}</tr>")
    head = "<tr><th></th><th>total</th><th>fit</th><th>engagement</th></tr>"
    return f"<table>{head}{''.join(rows)}</table><p class=muted>ROC AUC [95% CI] / PR AUC</p>"


def render(report: dict[str, Any]) -> str:
    data, leads, rules_file = report["data"], report["leads"], report["rules_file"]
    flags = "".join(f'<li class="flag">{escape(f["message"])}</li>' for f in report["review"])
    grades = "".join(
        f"<tr><td>{escape(str(r['grade']))}</td><td>{r['leads']}</td><td>{_pct(r['rate'])}</td></tr>"
        for r in report["conversion"]["by_grade"]
    )
    stages = "".join(
        f"<tr><td>{escape(r['stage'])}</td><td>{r['leads']}</td><td>{_pct(r['rate'])}</td></tr>"
        for r in report["conversion"]["by_stage"]
    )
    version = escape(rules_file["version"])
    return f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>Leadstream evaluation: {version}</title>
<style>{CSS}</style></head><body>
<h1>Is the scoring any good? {escape(rules_file["version"])}</h1>
<p>{escape(rules_file["source"])} replayed over {data["events"]:,} events from
{escape(str(data["first_event_at"])[:10])} to {escape(str(data["last_event_at"])[:10])}.
Outcome: <b>{escape(data["outcome"])}</b> within {data["within_days"]:g} days of reaching sales.
{leads["reached_sales"]:,} leads reached sales, {leads["judged"]:,} judged
({leads["censored"]:,} still in their window), {leads["positive"]:,} positive:
base rate {_pct(leads["base_rate"])}.</p>
<h2>Review</h2><ul>{flags or "<li>nothing flagged</li>"}</ul>
<h2>Does the score predict the outcome?</h2>{_auc_table(report)}
<div class="charts">{roc_chart(report)}{decile_chart(report)}</div>
<h2>Conversion</h2><div class="charts"><table><tr><th>stage reached</th><th>leads</th>
<th>rate</th></tr>{stages}</table>&nbsp;<table><tr><th>grade at hand-off</th><th>leads</th>
<th>rate</th></tr>{grades}</table></div>
<h2>Rules</h2><p class=muted>Lift: the outcome rate of the judged leads a rule had points for
at the hand-off, over the base rate. MQLs decided: the lead would not have crossed the line at
that moment without the rule's points.</p>{lift_chart(report)}{_rules_table(report)}
</body></html>
"""
