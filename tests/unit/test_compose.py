"""docker-compose.yml: valid Compose, and in line with the local stack and the settings.

There is no Docker engine here, so the file is checked against the vendored
Compose Specification schema (infra/compose/) and against our own code.
"""

from __future__ import annotations

import copy
import json
from typing import Any

import jsonschema
import pytest
import yaml

from stream_app.config import Settings
from tests.factories import REPO
from tools.devstack import StackSettings, kafka_version

SCHEMA = json.loads((REPO / "infra" / "compose" / "compose-spec.schema.json").read_text())
COMPOSE: dict[str, Any] = yaml.safe_load((REPO / "docker-compose.yml").read_text())


def validate(document: dict[str, Any]) -> None:
    jsonschema.validate(document, SCHEMA, cls=jsonschema.Draft201909Validator)


def test_the_file_follows_the_compose_specification() -> None:
    validate(COMPOSE)


def test_the_check_would_catch_a_broken_file() -> None:
    broken = copy.deepcopy(COMPOSE)
    broken["servcies"] = {}
    with pytest.raises(jsonschema.ValidationError):
        validate(broken)
    broken = copy.deepcopy(COMPOSE)
    broken["services"]["worker"]["depends_on"]["kafka"]["condition"] = "whenever"
    with pytest.raises(jsonschema.ValidationError):
        validate(broken)


def host_ports(service: str) -> set[int]:
    return {int(p.split(":")[1]) for p in COMPOSE["services"][service].get("ports", [])}


def test_same_kafka_release_and_ports_as_the_local_stack() -> None:
    stack = StackSettings()
    assert COMPOSE["services"]["kafka"]["image"] == f"apache/kafka:{kafka_version()}"
    assert host_ports("kafka") == {stack.kafka_port}
    assert host_ports("redis") == {stack.redis_port}
    assert host_ports("api") == {Settings().api_port}
    for service in COMPOSE["services"].values():
        for port in service.get("ports", []):
            assert port.startswith("127.0.0.1:"), "publish on loopback only"


def test_every_leadstream_variable_is_a_setting() -> None:
    fields = {f"LEADSTREAM_{name.upper()}" for name in Settings.model_fields}
    named = {
        var
        for service in COMPOSE["services"].values()
        for var in service.get("environment", {})
        if var.startswith("LEADSTREAM_")
    }
    assert named, "the worker and api are configured through LEADSTREAM_* variables"
    assert named <= fields, named - fields


def test_the_rules_file_the_containers_use_is_shipped() -> None:
    for name in ("worker", "api"):
        path = COMPOSE["services"][name]["environment"]["LEADSTREAM_RULES_PATH"]
        assert path.startswith("/app/")
        assert (REPO / path.removeprefix("/app/")).exists()


def test_leadstream_services_have_healthchecks_through_the_image_entrypoint() -> None:
    dockerfile = (REPO / "Dockerfile").read_text()
    assert 'ENTRYPOINT ["python", "-m", "stream_app"]' in dockerfile  # docker run IMAGE worker
    assert 'CMD ["python", "-m", "stream_app", "health"]' in dockerfile
    ports = {"worker": Settings().worker_port, "api": Settings().api_port}
    for name, port in ports.items():
        service = COMPOSE["services"][name]
        assert service["command"] == [name]
        test = service["healthcheck"]["test"]
        assert test[:5] == ["CMD", "python", "-m", "stream_app", "health"]
        assert test[-1] == f"http://127.0.0.1:{port}"
