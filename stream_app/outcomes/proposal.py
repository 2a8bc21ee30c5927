"""The proposed rules file: the current file's text with new points, and a header saying why.

Same rules, conditions, windows, disqualifiers and comments: only numbers
change, edited in place in the text (so the marketers' comments stay), then
the result is parsed back and every number checked. A cap keeps its number of
events: ``cap: {points: 40}`` on a rule of 20 points is two events a week, so
at 31 points it becomes 62. Points are whole numbers on the file's scale; an
engagement rule or a signal cannot have 0 points (``rules check`` refuses
it), so one the model gives less than a point keeps one point of its sign
(a signal: +1), and the header names it.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from stream_app.errors import InputError
from stream_app.scoring.rules import Rules, parse_rules

_ID = re.compile(r"^(\s*)- id:\s*([a-z0-9_]+)\s*(#.*)?$")
_POINTS = re.compile(r"^(\s*)points:\s*(-?[0-9][0-9.]*)(\s*(?:#.*)?)$")
_FLOW_CAP = re.compile(r"^(\s*cap:\s*\{\s*points:\s*)([0-9][0-9.]*)(.*)$")
_BLOCK_CAP = re.compile(r"^(\s*)cap:\s*(#.*)?$")
_VERSION = re.compile(r"^version:\s*.*$")


@dataclass(frozen=True)
class Lines:
    mql: float
    sql: float
    recycle: float


def whole_points(raw: dict[str, float], rules: Rules) -> tuple[dict[str, float], list[str]]:
    """Rounded points every rule can have, and the rules held at one point."""
    kinds = {r.id: "engagement" for r in rules.spec.engagement.rules}
    kinds.update({s.id: "signal" for s in rules.spec.signals})
    out: dict[str, float] = {}
    floored: list[str] = []
    for rule_id, value in raw.items():
        points = float(round(value))
        if kinds.get(rule_id) == "signal" and points < 1:
            points = 1.0
            floored.append(rule_id)
        elif kinds.get(rule_id) == "engagement" and points == 0:
            points = 1.0 if value >= 0 else -1.0
            floored.append(rule_id)
        out[rule_id] = points
    return out, floored


def _num(value: float) -> str:
    return f"{value:g}"


def rewrite(
    text: str, rules: Rules, points: dict[str, float], version: str, lines: Lines | None
) -> str:
    """``text`` (the file ``rules`` was read from) with ``points``, scaled caps, ``version``
    and, if given, new MQL/SQL/recycle totals; raises InputError if that cannot be done."""
    caps = {
        r.id: r.cap.points / abs(r.points) * abs(points[r.id])
        for r in rules.spec.engagement.rules
        if r.cap is not None
    }
    out: list[str] = []
    rule: str | None = None
    indent = 0
    in_cap = False
    for line in text.splitlines(keepends=True):
        bare = line.rstrip("\n")
        found = _ID.match(bare)
        stripped = bare.strip()
        depth = len(bare) - len(bare.lstrip())
        if found:
            rule, indent, in_cap = found.group(2), len(found.group(1)), False
        elif rule is not None and stripped and not stripped.startswith("#") and depth <= indent:
            rule = None
        if rule is not None and rule in points and not found:
            if (m := _POINTS.match(bare)) and len(m.group(1)) == indent + 2:
                bare = f"{m.group(1)}points: {_num(points[rule])}{m.group(3)}"
                in_cap = False
            elif (m := _FLOW_CAP.match(bare)) and rule in caps:
                bare = f"{m.group(1)}{_num(caps[rule])}{m.group(3)}"
            elif _BLOCK_CAP.match(bare):
                in_cap = True
            elif in_cap and (m := _POINTS.match(bare)) and rule in caps:
                bare = f"{m.group(1)}points: {_num(caps[rule])}{m.group(3)}"
        if _VERSION.match(bare):
            bare = f'version: "{version}"'
        if lines is not None:
            bare = _line(bare, "mql", "min_total", lines.mql)
            bare = _line(bare, "sql", "min_total", lines.sql)
            bare = _line(bare, "recycle", "below_total", lines.recycle)
        out.append(bare + ("\n" if line.endswith("\n") else ""))
    new = "".join(out)
    check(new, rules, points, caps, lines)
    return new


def _line(bare: str, key: str, field: str, value: float) -> str:
    if key == "recycle" and re.match(rf"^\s+{field}:", bare):  # block style, once in a file
        return re.sub(rf"({field}:\s*)-?[0-9][0-9.]*", lambda m: m.group(1) + _num(value), bare)
    if not re.match(rf"^\s+{key}:\s*\{{", bare):
        return bare
    return re.sub(rf"({field}:\s*)-?[0-9][0-9.]*", lambda m: m.group(1) + _num(value), bare)


def check(
    text: str, rules: Rules, points: dict[str, float], caps: dict[str, float], lines: Lines | None
) -> None:
    """Parse ``text`` back and compare every number that was to change."""
    try:
        new = parse_rules(text, source="the proposal")
    except Exception as exc:
        raise InputError(f"the proposed file does not pass rules check: {exc}") from None
    got = {r.id: r.points for r in new.spec.engagement.rules}
    got.update({s.id: s.points for s in new.spec.signals})
    got.update({r.id: r.points for r in new.spec.fit.rules})
    wrong = [r for r, p in points.items() if got.get(r) != p]
    wrong += [
        f"{r.id} (cap)"
        for r in new.spec.engagement.rules
        if r.cap is not None and abs(r.cap.points - caps[r.id]) > 1e-9
    ]
    stages = new.spec.stages
    if lines is not None and (
        stages.mql.min_total,
        stages.sql.min_total,
        stages.recycle.below_total,
    ) != (lines.mql, lines.sql, lines.recycle):
        wrong.append("stages (write the lines as {min_total: ...} on one line each)")
    if wrong:
        raise InputError(
            f"{rules.source}: could not rewrite these numbers in place: {', '.join(wrong)} "
            "(points must be on a line of their own, `points: N`, in each `- id:` block)"
        )


def header(lines: list[str]) -> str:
    return "".join(f"# {line}".rstrip() + "\n" for line in lines) + "#\n"
