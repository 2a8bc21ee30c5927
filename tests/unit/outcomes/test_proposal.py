"""The proposed file is the current file's text with new numbers, checked by parsing it back."""

from __future__ import annotations

import pytest

from stream_app.errors import InputError
from stream_app.outcomes.proposal import Lines, rewrite, whole_points
from stream_app.scoring.rules import parse_rules
from tests.factories import DEFAULT_RULES


def _all_points(rules) -> dict[str, float]:  # type: ignore[no-untyped-def]
    spec = rules.spec
    out = {r.id: r.points for r in spec.engagement.rules}
    out.update({s.id: s.points for s in spec.signals})
    out.update({r.id: r.points for r in spec.fit.rules})
    return out


def test_new_points_and_scaled_caps_keep_every_comment_and_pass_rules_check() -> None:
    text = DEFAULT_RULES.read_text()
    rules = parse_rules(text, source=str(DEFAULT_RULES))
    points = _all_points(rules)
    points.update({"pricing_page": 31, "blog_view": -3, "senior_title": 0, "live_content": 4})
    new = rewrite(text, rules, points, "2026.12-b2b-3-learned", None)
    parsed = parse_rules(new, source="proposal")
    assert _all_points(parsed) == points
    by_id = {r.id: r for r in parsed.spec.engagement.rules}
    assert (
        by_id["pricing_page"].cap is not None and by_id["pricing_page"].cap.points == 62
    )  # 2 events
    assert by_id["blog_view"].cap is not None and by_id["blog_view"].cap.points == 15  # 5 events
    assert parsed.spec.version == "2026.12-b2b-3-learned"
    comments = [line for line in text.splitlines() if line.lstrip().startswith("#")]
    assert comments == [line for line in new.splitlines() if line.lstrip().startswith("#")]
    assert parsed.spec.stages == rules.spec.stages  # the lines stay


def test_lines_are_re_set_when_asked() -> None:
    text = DEFAULT_RULES.read_text()
    rules = parse_rules(text, source=str(DEFAULT_RULES))
    new = rewrite(text, rules, _all_points(rules), "v2", Lines(mql=75, sql=115, recycle=55))
    stages = parse_rules(new).spec.stages
    assert (stages.mql.min_total, stages.sql.min_total, stages.recycle.below_total) == (75, 115, 55)
    assert stages.mql.min_fit == rules.spec.stages.mql.min_fit


def test_a_file_whose_points_are_not_on_their_own_line_is_refused_by_name() -> None:
    text = DEFAULT_RULES.read_text().replace(
        "      when: {type: email_reply}\n      points: 10\n",
        "      when: {type: email_reply}\n      points:\n        10\n",
    )
    rules = parse_rules(text, source="odd.yaml")
    points = _all_points(rules) | {"email_reply": 12}
    with pytest.raises(InputError, match="email_reply"):
        rewrite(text, rules, points, "v2", None)


def test_whole_points_never_write_a_zero_engagement_rule_or_a_negative_signal() -> None:
    rules = parse_rules(DEFAULT_RULES.read_text())
    raw = {"blog_view": 0.3, "email_open": -0.4, "live_content": -7.0, "senior_title": 0.2}
    points, held = whole_points(raw, rules)
    assert points == {"blog_view": 1, "email_open": -1, "live_content": 1, "senior_title": 0}
    assert sorted(held) == ["blog_view", "email_open", "live_content"]
