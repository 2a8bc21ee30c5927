"""The command line as a user meets it: help that teaches, bad input reported, not fatal."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from schemas.transitions import SlaBreach, StageTransition
from stream_app.commands.cli import main
from tests.factories import DEFAULT_RULES, REPO, VP_PROFILE, at
from tools.traffic import generate


def line(**event: object) -> str:
    return json.dumps(event, default=str)


def test_simulate_writes_transitions_and_reports_bad_lines(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    events = tmp_path / "events.jsonl"
    events.write_text(
        "\n".join(
            [
                line(
                    type="profile_update",
                    event_id="p",
                    occurred_at=at(0),
                    lead_id="L1",
                    **VP_PROFILE,
                ),
                "this is not json",
                line(
                    type="page_view",
                    event_id="v",
                    occurred_at=at(0, 1),
                    lead_id="L1",
                    path="/pricing",
                ),
                "",
                line(type="page_view", event_id="w", occurred_at=at(0, 2), path="/x"),
            ]
        )
        + "\n"
    )
    out = tmp_path / "transitions.jsonl"
    code = main(
        ["simulate", "--quiet", "--rules", str(DEFAULT_RULES), str(events), "--out", str(out)]
    )
    err = capsys.readouterr().err
    assert code == 0
    transitions = [StageTransition.model_validate_json(x) for x in out.read_text().splitlines()]
    assert [(t.lead_id, t.to_stage) for t in transitions] == [("L1", "mql")]
    assert "line 2: not_json" in err
    assert "line 5: invalid: (event): Value error, an event needs a lead_id" in err
    assert "2 events (2 bad lines" in err
    assert "MQL->SQL conversion: 0.0%" in err


def test_simulate_bounds_a_lines_event_time_by_its_own_received_time_else_not_at_all(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """A line's received_at (native) or receivedAt (Segment) is its arrival; without one
    a file is history, unbounded; --max-clock-skew is the worker's allowance."""
    far = at(0).replace(year=2099)
    events = tmp_path / "events.jsonl"
    rows = [
        line(
            type="page_view",
            event_id="a",
            occurred_at=far,
            received_at=at(0),
            lead_id="A",
            path="/pricing",
        ),
        line(
            type="page",
            messageId="b",
            userId="B",
            originalTimestamp=far,
            sentAt=at(0, -1),
            receivedAt=at(0),
            properties={"path": "/pricing"},
        ),
        line(
            type="page_view",
            event_id="c",
            occurred_at=at(0, 1),
            received_at=at(0),
            lead_id="C",
            path="/pricing",
        ),
        line(type="page_view", event_id="d", occurred_at=far, lead_id="D", path="/pricing"),
    ]
    events.write_text("\n".join(rows) + "\n")
    argv = ["simulate", "--quiet", "--rules", str(DEFAULT_RULES), str(events)]
    assert main(argv) == 0
    err = capsys.readouterr().err
    assert "line 1: future_event: event time 2099-10-05T09:00:00+00:00 is 26663 days after" in err
    assert "line 2: future_event: event time 2099-10-05" in err
    assert "line 3: future_event: event time 2026-10-05T10:00:00+00:00 is 3600 s after" in err
    assert "line 4" not in err  # no received time: no bound
    assert "1 events (3 bad lines" in err
    assert main([*argv, "--max-clock-skew", "3600"]) == 0
    assert "2 events (2 bad lines" in capsys.readouterr().err


def test_simulate_output_is_identical_across_runs(tmp_path: Path) -> None:
    events = tmp_path / "events.jsonl"
    events.write_text("".join(json.dumps(e) + "\n" for e in generate(150, seed=3)))
    outputs = []
    for run in range(2):
        out = tmp_path / f"t{run}.jsonl"
        argv = [
            "simulate",
            "--quiet",
            "--rules",
            str(DEFAULT_RULES),
            str(events),
            "--out",
            str(out),
            "--sweep-at",
            "2027-06-01T00:00:00Z",
        ]
        assert main(argv) == 0
        outputs.append(out.read_bytes())
    assert outputs[0] == outputs[1]
    reasons = {StageTransition.model_validate_json(x).reason for x in outputs[0].splitlines()}
    assert {"score_threshold", "decay", "disqualified"} <= reasons


def test_a_broken_rules_file_is_one_clear_line_and_exit_2(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text(DEFAULT_RULES.read_text().replace("half_life_days: 30", "half_life_days: x"))
    assert main(["rules", "check", str(bad)]) == 2
    err = capsys.readouterr().err
    assert err.startswith(f"error: {bad}: engagement.half_life_days: Input should be a valid")
    assert "Traceback" not in err


def test_a_missing_events_file_is_exit_2(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    argv = ["simulate", "--quiet", "--rules", str(DEFAULT_RULES), str(tmp_path / "nope.jsonl")]
    assert main(argv) == 2
    assert "cannot read" in capsys.readouterr().err


@pytest.mark.parametrize(
    "command",
    [[], ["simulate"], ["rules"], ["collect"], ["notify"], ["erase"]],
)
def test_help_shows_examples(command: list[str]) -> None:
    result = subprocess.run(
        [sys.executable, "-m", "stream_app", *command, "--help"],
        capture_output=True,
        text=True,
        cwd=REPO,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    assert "usage: python -m stream_app" in result.stdout
    if command != ["rules"]:
        assert "examples:" in result.stdout
    if command in (["collect"], ["notify"]):  # every setting it reads is taught
        from stream_app.config import Settings

        prefix = command[0]
        for name in Settings.model_fields:
            if name.startswith(prefix + "_"):
                assert f"LEADSTREAM_{name.upper()}" in result.stdout, name
    if command == ["erase"]:  # what goes, what stays, that it is asynchronous, how to confirm
        for words in ("what is removed:", "what stays:", "asynchronous", "confirm:", "--wait"):
            assert words in result.stdout, words


def test_health_exits_0_when_one_of_the_urls_answers_200(
    capsys: pytest.CaptureFixture[str],
) -> None:
    import http.server
    import threading

    class Health(http.server.BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            self.send_response(200 if self.path == "/health" else 503)
            self.end_headers()

        def log_message(self, *args: object) -> None:
            pass

    server = http.server.HTTPServer(("127.0.0.1", 0), Health)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        up = f"http://127.0.0.1:{server.server_address[1]}"
        down = "http://127.0.0.1:1"
        assert main(["health", down, up]) == 0
        assert main(["health", "--ready", up]) == 1  # 503: not ready
        assert main(["health", down]) == 1
    finally:
        server.shutdown()
        server.server_close()
    err = capsys.readouterr().err
    assert "127.0.0.1:1/health" in err and "503" in err


def test_simulate_switch_rules_takes_line_colon_path(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    events = tmp_path / "events.jsonl"
    events.write_text("".join(json.dumps(e) + "\n" for e in generate(20, 3)))
    with pytest.raises(SystemExit):
        main(
            [
                "simulate",
                "--rules",
                str(DEFAULT_RULES),
                "--switch-rules",
                "five:x.yaml",
                str(events),
            ]
        )
    assert "expected LINE:PATH" in capsys.readouterr().err
    code = main(
        [
            "simulate",
            "--quiet",
            "--rules",
            str(DEFAULT_RULES),
            "--switch-rules",
            f"10:{REPO / 'rules' / 'product_led.yaml'}",
            str(events),
            "--out",
            str(tmp_path / "t.jsonl"),
        ]
    )
    assert code == 0
    err = capsys.readouterr().err
    assert "from line 10: rules 2026" in err


def test_simulate_writes_the_sla_breaches_the_sweep_finds(tmp_path: Path) -> None:
    events = tmp_path / "events.jsonl"
    events.write_text(
        line(type="profile_update", event_id="p", occurred_at=at(0), lead_id="L1", **VP_PROFILE)
        + "\n"
        + line(
            type="form_submission",
            event_id="f",
            occurred_at=at(0, 1),
            lead_id="L1",
            form_kind="demo_request",
        )
        + "\n"
    )
    out, breaches = tmp_path / "t.jsonl", tmp_path / "sla.jsonl"
    argv = [
        "simulate",
        "--quiet",
        "--rules",
        str(DEFAULT_RULES),
        str(events),
        "--out",
        str(out),
        "--breaches",
        str(breaches),
        "--sweep-at",
        "2030-01-01T00:00:00Z",
    ]
    assert main(argv) == 0
    (breach,) = [SlaBreach.model_validate_json(x) for x in breaches.read_text().splitlines()]
    assert (breach.lead_id, breach.stage, breach.allowed_hours) == ("L1", "sql", 4.0)


def test_an_erase_request_names_one_person_and_never_carries_the_address() -> None:
    from datetime import UTC, datetime

    from pydantic import ValidationError

    from stream_app.commands.erase import request_for
    from stream_app.ingest.segment import email_subject

    now = datetime(2026, 11, 2, 10, tzinfo=UTC)

    def request(who: str, anonymous: bool = False) -> dict[str, object]:
        return request_for(who, anonymous=anonymous, reason="r", requested_by=None, now=now)

    by_mail = request(" Jane.Doe@Example.com")
    assert by_mail["anonymous_id"] == email_subject("jane.doe@example.com")
    assert "lead_id" not in by_mail and "jane" not in json.dumps(by_mail).lower()
    assert request("lead-42")["lead_id"] == "lead-42"
    assert request("cookie-7", anonymous=True)["anonymous_id"] == "cookie-7"
    assert request("lead-42")["event_id"] != request("lead-42")["event_id"]
    assert request("lead-42")["reason"] == "r" and "requested_by" not in request("lead-42")
    for bad in ("bad@", "", "x" * 201):
        with pytest.raises(ValidationError):
            request(bad)


def test_simulate_counts_erasures_in_its_summary(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Issue 26, item 1: the help says the summary counts erasures; it printed none."""
    events = tmp_path / "events.jsonl"
    events.write_text(
        line(type="page_view", event_id="v", occurred_at=at(0), lead_id="L1", path="/pricing")
        + "\n"
        + line(type="erase", event_id="x", occurred_at=at(0, 1), email="jane@acme.com")
        + "\n"
    )
    assert main(["simulate", "--quiet", "--rules", str(DEFAULT_RULES), str(events)]) == 0
    err = capsys.readouterr().err
    assert "0 transitions, 0 SLA breaches, 1 erasures in" in err
    assert "jane@acme.com" not in err
