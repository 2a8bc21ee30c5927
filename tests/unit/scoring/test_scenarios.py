"""docs/domain.md's scenarios, literally, against the shipped rules/default.yaml."""

from __future__ import annotations

from datetime import timedelta

from schemas.transitions import StageTransition
from stream_app.scoring.engine import advance, apply_event, merge_anonymous, next_change_at, ts
from stream_app.scoring.replay import Replay
from stream_app.scoring.rules import Rules, parse_rules
from stream_app.scoring.state import DAY
from stream_app.scoring.view import engagement_of
from tests.factories import DEFAULT_RULES, VP_PROFILE, at, ev, run


def moves(transitions: list[StageTransition]) -> list[tuple[str, str, str]]:
    return [(t.from_stage, t.to_stage, t.reason) for t in transitions]


def test_pricing_page_visitor_with_the_right_title_becomes_mql(rules: Rules) -> None:
    pricing = ev("page_view", day=0, hours=2, lead_id="L1", path="/pricing")
    replay, out = run(rules, [ev("profile_update", day=0, lead_id="L1", **VP_PROFILE), pricing])

    assert moves(out) == [("lead", "mql", "score_threshold")]
    mql = out[0]
    assert mql.triggering_event_id == pricing.event_id
    assert (mql.scores.fit, mql.scores.engagement, mql.scores.total) == (45.0, 20.0, 65.0)
    assert mql.scores.grade == "A"
    assert {(c.rule, c.points) for c in mql.contributions} == {
        ("senior_title", 20.0),
        ("target_department", 10.0),
        ("company_size_target", 15.0),
        ("pricing_page", 20.0),
    }
    assert mql.account_id == "acme.com"
    assert mql.rules_version == rules.stamp
    assert replay.states["L1"].stage == "mql"


def test_the_same_visit_without_the_fit_stays_a_lead(rules: Rules) -> None:
    profile = {**VP_PROFILE, "job_title": "Intern", "department": "engineering"}
    _, out = run(
        rules,
        [
            ev("profile_update", lead_id="L1", **profile),
            ev("page_view", hours=2, lead_id="L1", path="/pricing"),
        ],
    )
    assert out == []  # fit 15 + engagement 20 = 35 < 60


def test_fit_alone_never_makes_an_mql(rules: Rules) -> None:
    rich = {**VP_PROFILE, "seniority": "vp", "industry": "software", "budget": True}
    replay, out = run(rules, [ev("profile_update", lead_id="L1", **rich)])
    assert out == []  # fit 70 >= 60, but engagement 0 < mql.min_engagement
    assert replay.states["L1"].stage == "lead"


def test_demo_request_by_an_mql_fit_lead_is_sql_at_once(rules: Rules) -> None:
    demo = ev("form_submission", hours=1, lead_id="L1", form_kind="demo_request")
    _, out = run(rules, [ev("profile_update", lead_id="L1", **VP_PROFILE), demo])
    assert moves(out) == [("lead", "sql", "hand_raise")]
    assert out[0].triggering_event_id == demo.event_id
    assert out[0].scores.total == 75.0  # below the SQL line: the hand-raise did it


def test_demo_request_by_a_poor_fit_lead_is_not_sql(rules: Rules) -> None:
    poor = {"email": "bob@gmail.com", "company_size": 3, "country": "US"}
    replay, out = run(
        rules,
        [
            ev("profile_update", lead_id="L1", **poor),
            ev("form_submission", hours=1, lead_id="L1", form_kind="demo_request"),
        ],
    )
    assert out == []
    assert replay.states["L1"].stage == "lead"


def test_a_gmail_student_never_qualifies(rules: Rules) -> None:
    student = {"email": "sam@gmail.com", "job_title": "Student", "country": "US"}
    busy = [
        ev("page_view", day=d, hours=h, lead_id="S", path=p, session_id=f"s{d}")
        for d in range(5)
        for h, p in enumerate(["/pricing", "/product", "/contact", "/plans"])
    ]
    busy.append(ev("form_submission", day=5, lead_id="S", form_kind="demo_request"))
    replay, out = run(rules, [ev("identify", lead_id="S", anonymous_id="a", traits=student), *busy])
    assert moves(out) == [("lead", "disqualified", "disqualified")]
    assert out[0].detail == "student_title"
    assert replay.states["S"].stage == "disqualified"


def test_edu_addresses_and_competitors_are_excluded(rules: Rules) -> None:
    for email, rule in (("kim@state.edu", "student"), ("spy@rivalsoft.com", "competitor")):
        _, out = run(rules, [ev("profile_update", lead_id="X", email=email, country="US")])
        assert [(t.to_stage, t.detail) for t in out] == [("disqualified", rule)]


def test_a_corrected_profile_requalifies_and_may_be_mql_at_once(rules: Rules) -> None:
    _, out = run(
        rules,
        [
            ev("profile_update", lead_id="L1", **{**VP_PROFILE, "country": "BR"}),
            ev("page_view", hours=1, lead_id="L1", path="/pricing"),
            ev("profile_update", hours=2, lead_id="L1", country="CA"),
        ],
    )
    # One transition straight to where the lead belongs, no transient "lead".
    assert moves(out) == [
        ("lead", "disqualified", "disqualified"),
        ("disqualified", "mql", "score_threshold"),
    ]


def test_a_corrected_profile_without_the_score_is_a_lead_again(rules: Rules) -> None:
    _, out = run(
        rules,
        [
            ev("profile_update", lead_id="L1", **{**VP_PROFILE, "country": "BR"}),
            ev("profile_update", hours=2, lead_id="L1", country="CA"),
        ],
    )
    assert moves(out) == [
        ("lead", "disqualified", "disqualified"),
        ("disqualified", "lead", "requalified"),
    ]


def test_a_lead_idle_for_months_is_recycled_at_the_exact_crossing(rules: Rules) -> None:
    replay, out = run(
        rules,
        [
            ev("profile_update", lead_id="L1", **VP_PROFILE),
            ev("page_view", hours=2, lead_id="L1", path="/pricing"),
        ],
    )
    assert moves(out) == [("lead", "mql", "score_threshold")]
    # Engagement 20 halves every 30 days from the end of the pricing day; the
    # recycle line is engagement < 5 (fit 45 alone stays above total 40), so
    # the crossing is exactly two half-lives after the end of that day.
    end_of_day = (ts(at(0)) // DAY + 1) * DAY
    crossing = end_of_day + 60 * DAY

    state = replay.states["L1"]
    assert next_change_at(state, rules) == crossing
    # The timer's due time is the earlier MQL SLA deadline, 48 h after the MQL.
    assert state.due_at == ts(out[0].occurred_at) + 48 * 3600
    assert advance(state, rules, crossing - 1).transitions == ()
    early = advance(state, rules, crossing + 3600).transitions
    late = advance(state, rules, crossing + 120 * DAY).transitions
    assert moves(list(early)) == [("mql", "recycled", "decay")]
    assert early == late  # whenever the sweep runs, the same transition, same id
    assert ts(early[0].occurred_at) == crossing
    assert early[0].triggering_event_id is None
    assert early[0].scores.engagement == 5.0

    # An event after the crossing applies the due demotion first, identically.
    blog = ev("page_view", day=90, lead_id="L1", path="/blog/x")
    outcome = apply_event(state, blog, rules)
    assert outcome.transitions[0] == early[0]
    assert outcome.state.stage == "recycled"


def test_a_lead_hovering_at_the_mql_line_does_not_flap(rules: Rules) -> None:
    events = [
        ev("profile_update", lead_id="L1", **VP_PROFILE),
        ev("page_view", hours=1, lead_id="L1", path="/pricing"),
    ]
    # A product page every 15 days: the total dips below 60 and climbs back.
    events += [
        ev("page_view", day=15 * k, hours=1, lead_id="L1", path="/product") for k in range(1, 7)
    ]
    replay = Replay(rules)
    out: list[StageTransition] = []
    totals_before_visit = []
    for event in events:
        now = ts(event.occurred_at)
        if "L1" in replay.states:
            state = replay.states["L1"]
            fit = sum(state.fit_points.values())
            totals_before_visit.append(fit + engagement_of(state, rules, now)[0])
        out += replay.process(event).transitions
        out += replay.sweep(now + 14 * DAY)  # a sweep between visits
    assert min(totals_before_visit[2:]) < 60  # it really dips below the MQL line
    assert moves(out) == [("lead", "mql", "score_threshold")]
    assert replay.states["L1"].stage == "mql"


def test_anonymous_history_merges_into_the_lead_exactly_once(rules: Rules) -> None:
    browsing = [
        ("page_view", 0, {"path": "/pricing", "session_id": "s1"}),
        ("page_view", 1, {"path": "/product", "session_id": "s2"}),
        ("content_download", 2, {"asset_id": "ebook", "funnel_stage": "top"}),
    ]
    anon = [ev(k, hours=h, anonymous_id="cookie", **f) for k, h, f in browsing]
    identify = ev("identify", hours=3, lead_id="L1", anonymous_id="cookie", traits=VP_PROFILE)
    replay, out = run(rules, [*anon, identify, identify])  # delivered twice
    after = ev("page_view", hours=4, anonymous_id="cookie", path="/blog/a")
    step = replay.process(after)

    assert moves(out) == [("lead", "mql", "score_threshold")]
    assert out[0].triggering_event_id == identify.event_id
    assert step.key == "L1"  # the anonymous id now routes to the lead
    assert replay.states["anon:cookie"].merged_into == "L1"
    # The same events, as if known from the start, give the same engagement.
    known = [ev(k, hours=h, lead_id="L1", **f) for k, h, f in browsing]
    direct, _ = run(rules, [*known, ev("profile_update", hours=3, lead_id="L1", **VP_PROFILE)])
    direct.process(ev("page_view", hours=4, lead_id="L1", path="/blog/a"))
    now = ts(at(0, 5))
    assert engagement_of(replay.states["L1"], rules, now) == engagement_of(
        direct.states["L1"], rules, now
    )


def test_identify_before_anonymous_events_routes_them_to_the_lead(rules: Rules) -> None:
    replay, _ = run(
        rules,
        [
            ev("identify", lead_id="L1", anonymous_id="c", traits=VP_PROFILE),
            ev("page_view", hours=1, anonymous_id="c", path="/pricing"),
        ],
    )
    assert replay.states["L1"].stage == "mql"
    assert "anon:c" not in replay.states


def test_sales_rejection_recycles_and_old_engagement_stops_counting(rules: Rules) -> None:
    replay, out = run(
        rules,
        [
            ev("profile_update", lead_id="L1", **VP_PROFILE),
            ev("page_view", hours=1, lead_id="L1", path="/pricing"),
            ev("sales_feedback", hours=2, lead_id="L1", outcome="rejected", reason="no budget"),
            ev("page_view", hours=3, lead_id="L1", path="/blog/a"),
        ],
    )
    assert moves(out) == [
        ("lead", "mql", "score_threshold"),
        ("mql", "recycled", "sales_feedback"),
    ]
    assert out[1].detail == "rejected: no budget"
    # Before the rejection 45 + 20 + 2 would be 67, an MQL again.
    assert replay.states["L1"].stage == "recycled"


def test_sales_outcomes_move_the_stage_and_scoring_leaves_it(rules: Rules) -> None:
    _, out = run(
        rules,
        [
            ev("profile_update", lead_id="L1", **VP_PROFILE),
            ev("form_submission", hours=1, lead_id="L1", form_kind="demo_request"),
            ev("sales_feedback", hours=2, lead_id="L1", outcome="accepted"),
            ev("sales_feedback", hours=3, lead_id="L1", outcome="opportunity"),
            ev("page_view", hours=4, lead_id="L1", path="/pricing"),
            ev("sales_feedback", day=20, lead_id="L1", outcome="won"),
        ],
    )
    assert [(t.from_stage, t.to_stage) for t in out] == [
        ("lead", "sql"),
        ("sql", "sales_accepted"),
        ("sales_accepted", "opportunity"),
        ("opportunity", "customer"),
    ]


def test_product_milestones_make_a_pql(rules: Rules) -> None:
    profile = {"email": "dev@startup.io", "job_title": "Engineer", "company_size": 400}
    usage = [
        ("signup", None),
        ("activated", None),
        ("feature_used", "alerts"),
        ("feature_used", "api"),
        ("feature_used", "api"),
        ("feature_used", "reports"),
    ]
    events = [ev("profile_update", lead_id="P", **profile)]
    events += [
        ev("product_usage", hours=i + 1, lead_id="P", action=a, feature=f)
        for i, (a, f) in enumerate(usage)
    ]
    _, out = run(rules, events)
    assert moves(out) == [("lead", "pql", "pql_activation")]
    assert out[0].triggering_event_id == events[-1].event_id


def test_several_downloads_signal_counts_once_per_window(rules: Rules) -> None:
    downloads = [
        ev("content_download", hours=i, lead_id="L1", asset_id=a, funnel_stage="top")
        for i, a in enumerate(["a", "b", "c", "d", "a"])
    ]
    replay, _ = run(rules, downloads)
    _, parts = engagement_of(replay.states["L1"], rules, ts(at(0, 5)))
    assert parts["several_downloads"] == 15.0
    assert parts["content_download"] == 24.0  # five downloads, capped at 24 a week


def test_funnel_progression_signal_needs_the_order(rules: Rules) -> None:
    def downloads(stages: list[str]) -> float:
        events = [
            ev("content_download", day=i, lead_id="L1", asset_id=f"x{i}", funnel_stage=s)
            for i, s in enumerate(stages)
        ]
        replay, _ = run(rules, events)
        _, parts = engagement_of(replay.states["L1"], rules, ts(at(len(stages))), decay=False)
        return parts.get("funnel_progression", 0.0)

    assert downloads(["top", "middle", "bottom"]) == 15.0
    assert downloads(["bottom", "middle", "top"]) == 0.0


def test_duplicates_and_too_late_events_do_not_count(rules: Rules) -> None:
    first = ev("page_view", day=200, lead_id="L1", path="/pricing")
    replay = Replay(rules)
    assert replay.process(first).status == "counted"
    assert replay.process(first).status == "duplicate"
    old = ev("page_view", day=200 - rules.spec.horizon_days - 1, lead_id="L1", path="/pricing")
    assert replay.process(old).status == "late"
    assert replay.states["L1"].version == 1


def test_out_of_order_events_are_scored_by_event_time(rules: Rules) -> None:
    a = ev("page_view", day=0, lead_id="L1", path="/pricing")
    b = ev("page_view", day=30, lead_id="L1", path="/product")
    now = ts(at(40))
    in_order, _ = run(rules, [a, b])
    reversed_, _ = run(rules, [b, a])
    assert engagement_of(in_order.states["L1"], rules, now) == engagement_of(
        reversed_.states["L1"], rules, now
    )


def test_blog_views_are_capped_at_ten_points_a_week(rules: Rules) -> None:
    views = [ev("page_view", hours=i, lead_id="L1", path=f"/blog/{i}") for i in range(12)]
    replay, _ = run(rules, views)
    _, parts = engagement_of(replay.states["L1"], rules, ts(at(0, 12)))
    assert parts["blog_view"] == 10.0


def test_old_history_folds_but_keeps_counting_decayed(rules: Rules) -> None:
    first = ev("page_view", day=0, lead_id="L1", path="/pricing")
    later = ev("page_view", day=400, lead_id="L1", path="/blog/a")
    replay, _ = run(rules, [first, later])
    state = replay.states["L1"]
    assert "pricing_page" not in state.buckets  # folded out of the day buckets
    assert "pricing_page" in state.archived
    _, parts = engagement_of(state, rules, ts(at(400)))
    expected = 20 * 2 ** (-(ts(at(400)) - (ts(at(0)) // DAY + 1) * DAY) / (30 * DAY))
    assert abs(parts["pricing_page"] - expected) < 1e-9
    assert set(state.seen) == {later.event_id}  # ids past the horizon are forgotten too


def test_the_fold_leaves_history_inside_the_horizon_alone(rules: Rules) -> None:
    old = ev("page_view", day=0, lead_id="L1", path="/pricing")
    recent = ev("page_view", day=390, lead_id="L1", path="/blog/a")
    newest = ev("page_view", day=400, lead_id="L1", path="/blog/b")
    replay, _ = run(rules, [old, recent, newest])
    state = replay.states["L1"]
    assert "pricing_page" in state.archived and "pricing_page" not in state.buckets
    assert sum(state.buckets["blog_view"].values()) == 2  # day 390 is within 120 days of 400
    assert "blog_view" not in state.archived
    assert set(state.seen) == {recent.event_id, newest.event_id}


def test_state_survives_a_json_round_trip(rules: Rules) -> None:
    replay, _ = run(
        rules,
        [
            ev("page_view", anonymous_id="c", path="/pricing", session_id="s"),
            ev("identify", hours=1, lead_id="L1", anonymous_id="c", traits=VP_PROFILE),
            ev("content_download", hours=2, lead_id="L1", asset_id="a", funnel_stage="top"),
        ],
    )
    state = replay.states["L1"]
    assert type(state).from_json(state.to_json()) == state


def test_transition_ids_are_deterministic_and_distinct(rules: Rules) -> None:
    events = [
        ev("profile_update", lead_id="L1", **VP_PROFILE),
        ev("page_view", hours=1, lead_id="L1", path="/pricing"),
        ev("form_submission", hours=2, lead_id="L1", form_kind="demo_request"),
    ]
    _, first = run(rules, events)
    _, second = run(rules, events)
    assert [t.transition_id for t in first] == [t.transition_id for t in second]
    assert len({t.transition_id for t in first}) == len(first) == 2
    assert [t.sequence for t in first] == [1, 2]


def test_a_rules_change_rescores_the_kept_history(rules: Rules) -> None:
    # Buckets hold counts, so new points apply to the history a lead still has.
    replay, _ = run(rules, [ev("page_view", lead_id="L1", path="/pricing")])
    state = replay.states["L1"]
    now = ts(at(0)) + timedelta(hours=1).total_seconds()
    text = DEFAULT_RULES.read_text().replace("      points: 20\n", "      points: 30\n", 1)
    richer = parse_rules(text)
    assert richer.stamp != rules.stamp
    assert engagement_of(state, rules, now)[1]["pricing_page"] == 20.0
    assert engagement_of(state, richer, now)[1]["pricing_page"] == 30.0


def test_merging_the_same_anonymous_history_twice_counts_it_once(rules: Rules) -> None:
    anon, _ = run(rules, [ev("page_view", anonymous_id="c", path="/pricing")])
    lead, _ = run(rules, [ev("profile_update", hours=1, lead_id="L1", **VP_PROFILE)])
    once, tombstone = merge_anonymous(lead.states["L1"], anon.states["anon:c"], rules)
    twice, _ = merge_anonymous(once, anon.states["anon:c"], rules)
    assert twice == once
    assert merge_anonymous(once, tombstone, rules)[0] == once
    now = ts(at(0, 2))
    assert engagement_of(once, rules, now)[1]["pricing_page"] == 20.0
