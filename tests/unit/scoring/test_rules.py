"""The rules file: the shipped examples load; mistakes get messages with file and key path."""

from __future__ import annotations

from pathlib import Path

import pytest

from stream_app.errors import RulesError
from stream_app.rules_file import load_rules
from stream_app.scoring.rules import parse_rules
from tests.factories import DEFAULT_RULES, REPO

SHIPPED = sorted((REPO / "rules").glob("*.yaml"))


def test_both_shipped_rule_files_exist_and_load() -> None:
    assert {p.name for p in SHIPPED} >= {"default.yaml", "product_led.yaml"}
    for path in SHIPPED:
        rules = load_rules(path)
        assert rules.stamp.startswith(rules.spec.version + "+")


def test_the_stamp_changes_when_the_file_changes_without_a_version_bump() -> None:
    text = DEFAULT_RULES.read_text()
    assert parse_rules(text).stamp != parse_rules(text + "\n# edited\n").stamp


def broken(old: str, new: str) -> str:
    text = DEFAULT_RULES.read_text()
    assert old in text, old
    return text.replace(old, new, 1)


@pytest.mark.parametrize(
    ("old", "new", "expected"),
    [
        (
            'path: {glob: ["/pricing*", "/plans*"]}',
            'pathh: {glob: ["/pricing*", "/plans*"]}',
            "engagement.rules[1].when: Value error, 'pathh' is not a field of page_view",
        ),
        (
            "when: {type: email_open}",
            "when: {type: email_opened}",
            "unknown event type(s) ['email_opened']",
        ),
        (
            'when: {type: page_view, path: {glob: "/blog*"}}',
            'when: {type: page_view, path: {regex: "/blog*"}}',
            "unknown matcher key(s) ['regex']",
        ),
        (
            "when: {company_size: {min: 50, max: 5000}}",
            "when: {company_size: {min: fifty}}",
            "'min' must be a number",
        ),
        (
            "    below_total: 40\n",
            "    below_total: 70\n",
            "stages: Value error, recycle.below_total must be below mql.min_total",
        ),
        (
            "  - id: pricing_page\n",
            "  - id: contact_page\n",
            "rule id 'contact_page' is used twice",
        ),
        ("    - {grade: D}\n", "    - {grade: D, min_fit: 0}\n", "the last grade catches everyone"),
        (
            "  half_life_days: 30\n",
            "  half_life_days: -3\n",
            "engagement.half_life_days: Input should be greater than 0 (got -3)",
        ),
        (
            "    sql: 4\n",
            "    sql: 0\n",
            "stages.sla_hours: Value error, sla_hours.sql must be between 0 and a year",
        ),
        (
            "    won: customer\n",
            "    won: champion\n",
            "stages.sales_feedback.won: Input should be",
        ),
        (
            "horizon_days: 120\n",
            "horizon_days: 120\nhorizon_dayz: 3\n",
            "horizon_dayz: Extra inputs are not permitted",
        ),
    ],
)
def test_mistakes_name_the_file_and_the_key_path(old: str, new: str, expected: str) -> None:
    with pytest.raises(RulesError) as info:
        parse_rules(broken(old, new), source="rules/x.yaml")
    message = str(info.value)
    assert message.startswith("rules/x.yaml: ")
    assert expected.replace("Value error, ", "") in message, message


def test_yaml_syntax_errors_and_missing_files_are_rules_errors(tmp_path: Path) -> None:
    with pytest.raises(RulesError, match=r"x\.yaml: not valid YAML"):
        parse_rules("a: [1, 2", source="x.yaml")
    with pytest.raises(RulesError, match="expected a mapping at the top level"):
        parse_rules("- 1\n- 2\n", source="x.yaml")
    with pytest.raises(RulesError, match="cannot read the rules file"):
        load_rules(tmp_path / "missing.yaml")


def test_the_rule_index_matches_what_each_rule_s_condition_says() -> None:
    """``RuleIndex`` caches per-field verdicts: the rules it picks are the conditions' own.

    Values that are equal but differ to a matcher (1 and True, 0.0 and -0.0 under a
    glob) are not cached, so the second of each pair is judged on its own.
    """
    from stream_app.scoring.matching import RuleIndex, compile_condition, field_matchers

    conditions = [
        {"path": {"glob": ["/pricing*", "/-0*", "/1*"]}},
        {"path": {"glob": "/pricing*"}, "engaged_seconds": {"min": 120}},
        {"country": {"not_in": ["US", "NO"]}},
        {},
        {"path": {"glob": ["-0*", "1*", "True"]}},
        {"flag": [True]},
    ]
    index = RuleIndex([(n, field_matchers(c)) for n, c in enumerate(conditions)])
    predicates = [compile_condition(c) for c in conditions]
    values: list[dict[str, object]] = [
        {"path": "/pricing/team", "engaged_seconds": 300, "country": "DE"},
        {"path": "/pricing/team", "engaged_seconds": 30, "country": "US"},
        {"path": "/PRICING", "engaged_seconds": None, "country": None},
        {"path": None, "country": "no"},
        {"path": 1, "flag": 1},
        {"path": True, "flag": True},
        {"path": -0.0},
        {"path": 0.0},
        {},
    ]
    for fields in values * 2:  # the second round answers from the cache
        expected = tuple(n for n, pred in enumerate(predicates) if pred(fields.get))
        assert index.matching(fields.get) == expected, fields
    assert index.matching({"path": "/pricing", "engaged_seconds": 500, "country": "FR"}.get) == (
        0,
        1,
        2,
        3,
    )
