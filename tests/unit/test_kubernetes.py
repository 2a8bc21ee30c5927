"""deploy/kubernetes/leadstream.yaml: valid Kubernetes, and in line with the settings.

There is no cluster here, so every document is validated offline against the
Kubernetes OpenAPI schemas that the kubernetes-validate package ships, in
strict mode (an unknown field is an error, as ``kubectl apply`` would say).
"""

from __future__ import annotations

import copy
from typing import Any

import kubernetes_validate
import pytest
import yaml

from stream_app.config import Settings
from tests.factories import REPO

VERSION = "1.33"
DOCS: list[dict[str, Any]] = list(
    yaml.safe_load_all((REPO / "deploy" / "kubernetes" / "leadstream.yaml").read_text())
)
BY_NAME = {(d["kind"], d["metadata"]["name"]): d for d in DOCS}


@pytest.mark.parametrize("doc", DOCS, ids=lambda d: f"{d['kind']}/{d['metadata']['name']}")
def test_every_document_is_valid_kubernetes(doc: dict[str, Any]) -> None:
    kubernetes_validate.validate(doc, VERSION, strict=True)


def test_the_check_would_catch_a_broken_manifest() -> None:
    broken = copy.deepcopy(BY_NAME["StatefulSet", "leadstream-worker"])
    broken["spec"]["template"]["spec"]["containers"][0]["livenessProbe"]["httpGett"] = {}
    with pytest.raises(kubernetes_validate.ValidationError):
        kubernetes_validate.validate(broken, VERSION, strict=True)


def container(kind: str, name: str) -> dict[str, Any]:
    spec = BY_NAME[kind, name]["spec"]["template"]["spec"]
    return dict(spec["containers"][0])


def test_the_worker_is_a_stateful_set_with_a_volume_static_membership_and_probes() -> None:
    worker = BY_NAME["StatefulSet", "leadstream-worker"]
    assert worker["spec"]["volumeClaimTemplates"][0]["metadata"]["name"] == "data"
    main = container("StatefulSet", "leadstream-worker")
    env = {e["name"]: e for e in main["env"]}
    assert env["LEADSTREAM_INSTANCE_ID"]["valueFrom"]["fieldRef"]["fieldPath"] == "metadata.name"
    assert env["LEADSTREAM_DATA_DIR"]["value"].startswith(main["volumeMounts"][0]["mountPath"])
    assert int(env["LEADSTREAM_WORKER_PORT"]["value"]) == Settings().worker_port
    assert main["ports"][0]["containerPort"] == Settings().worker_port
    assert main["readinessProbe"]["httpGet"]["path"] == "/ready"
    assert main["livenessProbe"]["httpGet"]["path"] == "/health"
    assert main["args"] == ["worker"]  # the image's entrypoint is `python -m stream_app`


def test_every_leadstream_variable_is_a_setting_and_secrets_come_from_a_secret() -> None:
    fields = {f"LEADSTREAM_{name.upper()}" for name in Settings.model_fields}
    config = BY_NAME["ConfigMap", "leadstream-settings"]["data"]
    named = set(config)
    for kind, name in (
        ("StatefulSet", "leadstream-worker"),
        ("Deployment", "leadstream-api"),
        ("Deployment", "leadstream-collect"),
    ):
        for entry in container(kind, name)["env"]:
            named.add(entry["name"])
            if any(word in entry["name"] for word in ("PASSWORD", "TOKEN", "KEYS")):
                assert "secretKeyRef" in entry["valueFrom"], entry["name"]
    assert named <= fields, named - fields
    assert (REPO / config["LEADSTREAM_RULES_PATH"].removeprefix("/app/")).exists()
