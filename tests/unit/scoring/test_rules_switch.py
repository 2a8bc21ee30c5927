"""Issue 26, item 4: a rules change re-evaluates every lead at the switch.

A quarter's review lowers the MQL line from 60 to 50. A lead already above
the new line is an MQL from the switch on (event time = the switch, the new
version's stamp), not from its next event, which may never come. What cannot
be retroactive: a rule the old file did not have counted nothing before the
switch (a challenger or ``simulate`` replaying the past with the new file is
how to apply it to the past).
"""

from __future__ import annotations

import io
import json
from pathlib import Path

from schemas.events import parse_event
from schemas.transitions import SlaBreach, StageTransition
from stream_app.commands.cli import main
from stream_app.commands.replay import run_simulation
from stream_app.scoring.engine import ts
from stream_app.scoring.replay import Replay
from stream_app.scoring.rules import Rules, parse_rules
from stream_app.worker.pipeline import InMemoryPipeline
from tests.factories import DEFAULT_RULES, at, ev

WEBINAR_ATTENDED = """    - id: webinar_attended
      description: Live content counts more than a registration
      when: {type: webinar, action: attended}
      points: 15
"""
#: fit 35 (senior_title 20 + company_size_target 15), grade B
PROFILE = {"job_title": "VP Marketing", "company_size": 400, "country": "US"}


def _rules(mql_total: int, *, webinar_rule: bool) -> Rules:
    text = DEFAULT_RULES.read_text()
    line = "mql: {min_total: 60, min_fit: 20, min_engagement: 15}"
    assert line in text and WEBINAR_ATTENDED in text
    text = text.replace(line, line.replace("60", str(mql_total)))
    if not webinar_rule:
        text = text.replace(WEBINAR_ATTENDED, "")
    return parse_rules(text, source=f"mql{mql_total}.yaml")


OLD = _rules(60, webinar_rule=False)
NEW = _rules(50, webinar_rule=True)
SWITCH = ts(at(1))  # the reload, a day after the events below


def _events() -> list[dict[str, object]]:
    def line(kind: str, event_id: str, hours: float, lead: str, **fields: object) -> dict:
        return {
            "type": kind,
            "event_id": event_id,
            "occurred_at": at(0, hours).isoformat(),
            "lead_id": lead,
            **fields,
        }

    return [
        # W1 waits at 55 (fit 35 + pricing 20) below the old line (60), over the new (50)
        line("profile_update", "w1-p", 0, "W1", **PROFILE),
        line("page_view", "w1-v", 1, "W1", path="/pricing"),
        # L3 attended a webinar while the file had no webinar_attended rule: only the
        # live_content signal (10) counted, so 45 is below even the new line
        line("profile_update", "l3-p", 0, "L3", **PROFILE),
        line("webinar", "l3-w", 2, "L3", action="attended"),
        # line 5, after the switch: someone else reads the blog
        line("page_view", "x1-v", 3, "X1", path="/blog/hello"),
    ]


def _simulate(tmp_path: Path, switch_at: float | None) -> list[StageTransition]:
    source = tmp_path / "events.jsonl"
    source.write_text("".join(json.dumps(e) + "\n" for e in _events()))
    out = io.StringIO()
    run_simulation(OLD, str(source), out, quiet=True, switches=[(5, NEW, switch_at)])
    return [StageTransition.model_validate_json(x) for x in out.getvalue().splitlines()]


def test_a_lead_over_the_lowered_line_is_promoted_at_the_switch(tmp_path: Path) -> None:
    # Before the change W1 stayed a lead until it next did something.
    [mql] = _simulate(tmp_path, SWITCH)
    assert (mql.lead_id, mql.from_stage, mql.to_stage) == ("W1", "lead", "mql")
    assert mql.reason == "score_threshold"
    assert mql.occurred_at == at(1)
    assert mql.rules_version == NEW.stamp
    assert (mql.triggering_event_id, mql.triggering_event_type) == (None, "rules_switch")
    assert 50 <= mql.scores.total < 55  # 35 + 20 decayed over a day
    again = _simulate(tmp_path, SWITCH)
    assert [t.transition_id for t in again] == [mql.transition_id]  # deterministic


def test_without_a_time_the_switch_is_at_the_newest_event_read_before_it(
    tmp_path: Path,
) -> None:
    [mql] = _simulate(tmp_path, None)
    assert mql.lead_id == "W1" and mql.occurred_at == at(0, 2)  # L3's webinar


def test_a_rule_the_old_file_lacked_counted_nothing_before_the_switch() -> None:
    replay = Replay(OLD)
    for event in _events():
        replay.process(parse_event(event))
    assert replay.switch_rules(NEW, SWITCH) and replay.states["L3"].stage == "lead"
    state = replay.states["L3"]
    assert "webinar_attended" not in state.buckets  # not recounted from the past
    # the next attendance counts under the new file, and then the lead is an MQL
    step = replay.process(ev("webinar", day=2, lead_id="L3", action="attended", event_id="l3-w2"))
    [mql] = step.transitions
    assert mql.to_stage == "mql" and mql.triggering_event_id == "l3-w2"
    assert any(c.rule == "webinar_attended" for c in mql.contributions)


def test_the_switch_is_the_same_through_the_partitioned_pipeline() -> None:
    replay = Replay(OLD)
    pipeline = InMemoryPipeline(OLD, partitions=3)
    for event in _events():
        replay.process(parse_event(event))
        pipeline.feed(json.dumps(event).encode(), key=str(event["lead_id"]).encode())
    pipeline.run()
    expected = replay.switch_rules(NEW, SWITCH)
    pipeline.switch(NEW, SWITCH)
    assert [t for t in expected if isinstance(t, StageTransition)] == pipeline.transitions
    assert [b for b in expected if isinstance(b, SlaBreach)] == pipeline.breaches
    [update] = [u for u in pipeline.updates if u.lead_id == "W1"][-1:]
    assert update.stage == "mql"


def test_simulate_takes_the_switch_time_after_the_path(tmp_path: Path) -> None:
    source = tmp_path / "events.jsonl"
    source.write_text("".join(json.dumps(e) + "\n" for e in _events()))
    new_rules = tmp_path / "new.yaml"
    new_rules.write_text(DEFAULT_RULES.read_text().replace("min_total: 60,", "min_total: 50,"))
    out = tmp_path / "t.jsonl"
    argv = ["simulate", "--quiet", "--rules", str(DEFAULT_RULES), str(source), "--out", str(out)]
    assert main([*argv, "--switch-rules", f"5:{new_rules}@2026-10-06T09:00:00Z"]) == 0
    found = [StageTransition.model_validate_json(x) for x in out.read_text().splitlines()]
    [mql] = [t for t in found if t.lead_id == "W1"]  # L3 is an MQL by its webinar here
    assert (mql.to_stage, mql.occurred_at, mql.triggering_event_type) == (
        "mql",
        at(1),
        "rules_switch",
    )
