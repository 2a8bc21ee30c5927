"""Settings: environment variables in, secrets never out."""

from __future__ import annotations

import json
import re

import pytest

from stream_app.commands.cli import main
from stream_app.config import REPO_ROOT, Settings


def test_secrets_are_masked_in_the_printed_settings(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("LEADSTREAM_REDIS_PASSWORD", "hunter2-redis")
    monkeypatch.setenv("LEADSTREAM_KAFKA_SASL_PASSWORD", "hunter2-kafka")
    monkeypatch.setenv("LEADSTREAM_API_TOKEN", "hunter2-api")
    monkeypatch.setenv("LEADSTREAM_TOPIC_PREFIX", "prod.")
    assert main(["settings"]) == 0
    out = capsys.readouterr().out
    assert "hunter2" not in out
    shown = json.loads(out)
    assert shown["topic_prefix"] == "prod."
    assert shown["redis_password"] == shown["api_token"] == "**********"
    assert "hunter2" not in repr(Settings())


def test_a_bad_setting_names_the_variable(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("LEADSTREAM_KAFKA_SECURITY_PROTOCOL", "CARRIER_PIGEON")
    with pytest.raises(ValueError, match="kafka_security_protocol"):
        Settings()


def test_the_cli_reports_a_bad_setting_without_a_traceback(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("LEADSTREAM_API_PORT", "eighty")
    assert main(["settings"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: setting LEADSTREAM_API_PORT: Input should be a valid integer")
    assert "Traceback" not in err


def test_replication_settings_reach_every_topic_we_create() -> None:
    from stream_app.worker.app import app_options, table_options

    settings = Settings(replication_factor=3)
    assert settings.min_insync == 2  # one broker may be down, writes still acknowledged
    assert app_options(settings)["topic_replication_factor"] == 3
    assert table_options(settings)["extra_topic_configs"]["min.insync.replicas"] == "2"
    assert Settings().min_insync == 1


def test_more_in_sync_replicas_than_replicas_is_refused() -> None:
    import pytest
    from pydantic import ValidationError

    with pytest.raises(ValidationError, match="no write could ever be acknowledged"):
        Settings(replication_factor=2, min_insync_replicas=3)


def test_input_topics_are_a_comma_separated_list_used_as_given(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from stream_app.topics import TopicNames

    monkeypatch.setenv("LEADSTREAM_TOPIC_PREFIX", "prod.")
    assert TopicNames.of(Settings()).inputs[0] == "prod.page_views"
    monkeypatch.setenv("LEADSTREAM_INPUT_TOPICS", "rudder-events, segment-events,")
    names = TopicNames.of(Settings())
    assert names.inputs == ("rudder-events", "segment-events")
    assert names.input_for("page_view") == "rudder-events"
    assert names.transitions == "prod.lead_stage_transitions"


def test_every_setting_names_its_variable_and_the_readme_documents_it() -> None:
    """A README table row may shorten siblings: `LEADSTREAM_API_HOST` / `_PORT`."""
    readme = (REPO_ROOT / "README.md").read_text()
    documented = set()
    for row in re.findall(r"^\| `(LEADSTREAM_[A-Z_]+)`((?: / `_[A-Z_]+`)*)", readme, re.M):
        first, rest = row
        documented.add(first)
        words = first.split("_")
        for suffix in re.findall(r"`(_[A-Z_]+)`", rest):
            documented.update("_".join(words[:n]) + suffix for n in range(1, len(words)))
    documented.update(re.findall(r"LEADSTREAM_[A-Z_]+", readme))
    for name, field in Settings.model_fields.items():
        variable = f"LEADSTREAM_{name.upper()}"
        assert (field.description or "").startswith(variable), name
        assert variable in documented, variable


def test_changelogs_and_dead_letters_keep_an_erased_persons_data_for_a_bounded_time() -> None:
    from stream_app.worker.app import table_options, topic_configs_of

    settings = Settings(
        changelog_compaction_lag_hours=6, dead_letter_retention_days=2, topic_prefix="p."
    )
    configs = table_options(settings)["extra_topic_configs"]
    six_hours = str(6 * 3600 * 1000)
    assert (configs["segment.ms"], configs["max.compaction.lag.ms"]) == (six_hours, six_hours)
    assert configs["delete.retention.ms"] == str(7 * 24 * 3600 * 1000)
    assert topic_configs_of(settings) == {
        "p.lead_dead_letters": {"retention.ms": str(2 * 24 * 3600 * 1000)}
    }
