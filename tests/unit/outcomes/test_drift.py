"""Drift's bands and the challenger's derived names (pure)."""

from __future__ import annotations

from pathlib import Path

from stream_app.commands.challenger import challenger_env
from stream_app.config import Settings
from stream_app.outcomes.drift import band, band_label, outcome_of, win_rate


def test_bands_are_fixed_and_labelled() -> None:
    assert [band(t) for t in (-5, 0, 19.99, 20, 65, 199.9, 200, 1000)] == [0, 0, 0, 1, 3, 9, 10, 10]
    assert [band_label(i) for i in (0, 3, 10)] == ["under 20", "60-80", "200 and over"]


def test_outcome_of_a_feedback_transitions_detail() -> None:
    assert outcome_of("lost: budget") == "lost"
    assert outcome_of("won") == "won"
    assert outcome_of("demo_request") is None and outcome_of(None) is None
    assert win_rate({"won": 1, "lost": 3, "accepted": 9}) == 0.25
    assert win_rate({"accepted": 2}) is None


def test_a_challenger_gets_names_of_its_own_and_the_champions_inputs() -> None:
    champion = Settings(
        app_id="leadstream",
        topic_prefix="prod.",
        redis_key_prefix="ls:",
        worker_port=8081,
        data_dir=Path("/var/lib/leadstream"),
        challenger="q3",
    )
    env = challenger_env(champion, Path("/rules/q3.yaml"))
    assert env["LEADSTREAM_APP_ID"] == "leadstream-q3"
    assert env["LEADSTREAM_TOPIC_PREFIX"] == "prod.q3."
    assert env["LEADSTREAM_REDIS_KEY_PREFIX"] == "ls:q3:" == champion.challenger_key_prefix
    assert env["LEADSTREAM_INPUT_TOPICS"].split(",")[0] == "prod.page_views"
    assert len(env["LEADSTREAM_INPUT_TOPICS"].split(",")) == 9
    assert env["LEADSTREAM_DATA_DIR"] == "/var/lib/leadstream-q3"
    assert env["LEADSTREAM_WORKER_PORT"] == "8082"
    assert env["LEADSTREAM_RULES_PATH"] == "/rules/q3.yaml"
    configured = champion.model_copy(update={"input_topics": ("rudder-events",)})
    assert challenger_env(configured, Path("r.yaml"), 9000)["LEADSTREAM_INPUT_TOPICS"] == (
        "rudder-events"
    )
