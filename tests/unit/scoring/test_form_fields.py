"""Issue 26, item 3: BANT answers stated on a form count as the same answers from the CRM.

Written from what a marketing-ops person expects of rules/default.yaml: its
``form_fields`` block maps the form fields budget, authority, need and timeline
to the profile traits the ``bant_*`` fit rules test (5 points each).
"""

from __future__ import annotations

import pytest

from stream_app.errors import RulesError
from stream_app.scoring.rules import Rules, parse_rules
from tests.factories import DEFAULT_RULES, ev, run

#: fit 35, grade B: senior_title 20 + company_size_target 15 (no department)
PROFILE = {"job_title": "VP Marketing", "company_size": 400, "country": "US"}
BANT_ANSWERS = {"budget": "yes", "authority": "Yes", "need": "true", "timeline": "this_quarter"}


def test_bant_answers_on_a_form_raise_fit_as_the_same_crm_answers_do(rules: Rules) -> None:
    # The form adds the four BANT rules (20 points): fit 55, grade A, and with the
    # pricing page (20) and the form's own 5 the lead crosses the MQL line (60)
    # at the pricing view. Before the change the form left fit at 35 (grade B).
    replay, out = run(
        rules,
        [
            ev("profile_update", lead_id="F1", **PROFILE),
            ev(
                "form_submission",
                hours=1,
                lead_id="F1",
                form_kind="gated_content",
                fields=BANT_ANSWERS,
            ),
            ev("page_view", hours=2, lead_id="F1", path="/pricing"),
        ],
    )
    crm, crm_out = run(
        rules,
        [
            ev("profile_update", lead_id="C1", **PROFILE),
            ev(
                "profile_update",
                hours=1,
                lead_id="C1",
                budget=True,
                authority=True,
                need=True,
                timeline="this_quarter",
            ),
            ev("page_view", hours=2, lead_id="C1", path="/pricing"),
        ],
    )
    form_state, crm_state = replay.states["F1"], crm.states["C1"]
    for trait in ("budget", "authority", "need", "timeline"):
        assert form_state.profile[trait] == crm_state.profile[trait]
    [mql] = out
    assert (mql.to_stage, mql.scores.fit, mql.scores.grade) == ("mql", 55.0, "A")
    assert {c.rule for c in mql.contributions} >= {
        "bant_budget",
        "bant_authority",
        "bant_need",
        "bant_timeline",
    }
    assert (crm_out[0].scores.fit, crm_out[0].scores.grade) == (55.0, "A")


def test_an_answer_the_mapping_does_not_list_and_an_unmapped_field_set_nothing(
    rules: Rules,
) -> None:
    replay, _ = run(
        rules,
        [
            ev("profile_update", lead_id="F2", **PROFILE),
            ev(
                "form_submission",
                hours=1,
                lead_id="F2",
                form_kind="demo_request",
                fields={
                    "budget": "maybe",
                    "timeline": "someday",
                    "job_title": "Student",
                    "country": "KP",
                },
            ),
        ],
    )
    state = replay.states["F2"]
    assert "budget" not in state.profile and "timeline" not in state.profile
    assert (state.profile["job_title"], state.profile["country"]) == ("VP Marketing", "US")


def test_the_latest_answer_wins_whether_from_a_form_or_the_crm(rules: Rules) -> None:
    replay, _ = run(
        rules,
        [
            ev("profile_update", lead_id="F3", budget=False),
            ev(
                "form_submission",
                hours=1,
                lead_id="F3",
                form_kind="contact_sales",
                fields={"budget": "yes"},
            ),
        ],
    )
    assert replay.states["F3"].profile["budget"] is True
    replay, _ = run(
        rules,
        [
            ev(
                "form_submission", lead_id="F4", form_kind="contact_sales", fields={"budget": "yes"}
            ),
            ev("profile_update", hours=1, lead_id="F4", budget=False),
        ],
    )
    assert replay.states["F4"].profile["budget"] is False


def test_an_anonymous_visitors_form_answers_join_the_lead(rules: Rules) -> None:
    replay, _ = run(
        rules,
        [
            ev(
                "form_submission",
                anonymous_id="a9",
                form_kind="gated_content",
                fields={"need": "yes"},
            ),
            ev("identify", hours=1, lead_id="F5", anonymous_id="a9"),
        ],
    )
    assert replay.states["F5"].profile["need"] is True


def _with_mapping(block: str) -> str:
    text = DEFAULT_RULES.read_text()
    start = text.index("form_fields:\n")
    end = text.index("\n\n", start)
    return text[:start] + block + text[end:]


@pytest.mark.parametrize(
    ("block", "expected"),
    [
        (
            "form_fields:\n  - {field: size, trait: company_size, values: {big: 5000}}",
            "form_fields[0].trait: a form may set only the BANT traits",
        ),
        (
            "form_fields:\n  - {field: budget, trait: budget, values: {yes: sure}}",
            "'sure' is not a value of budget (true or false)",
        ),
        (
            "form_fields:\n  - {field: when, trait: timeline, values: {soon: true}}",
            "True is not a value of timeline (a label)",
        ),
        (
            "form_fields:\n  - {field: b, trait: budget, values: {Yes: true, 'yes ': true}}",
            "answers must be non-empty and differ",
        ),
        (
            "form_fields:\n  - {field: b, trait: budget, values: {'yes': true}}\n"
            "  - {field: b, trait: need, values: {'yes': true}}",
            "each form field name may be mapped once",
        ),
    ],
)
def test_rules_check_refuses_a_mapping_that_would_not_mean_what_it_says(
    block: str, expected: str
) -> None:
    with pytest.raises(RulesError) as info:
        parse_rules(_with_mapping(block), source="x.yaml")
    assert expected in str(info.value)
    assert str(info.value).startswith("x.yaml: form_fields")
