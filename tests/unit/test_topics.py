from __future__ import annotations

from schemas.events import INPUT_MODELS
from stream_app.topics import INPUT_FOR_TYPE, INPUTS, TopicNames


def test_every_event_type_has_an_input_topic() -> None:
    types = {model.model_fields["type"].default for model in INPUT_MODELS}
    assert "erase" in types
    assert set(INPUT_FOR_TYPE) == types
    assert set(INPUT_FOR_TYPE.values()) <= set(INPUTS)


def test_the_prefix_applies_to_every_topic() -> None:
    names = TopicNames("prod.")
    assert names.input_for("identify") == "prod.identities"
    assert names.transitions == "prod.lead_stage_transitions"
    assert all(t.startswith("prod.") for t in names.inputs)


def test_internal_hops_are_named_after_the_app_id_as_deployed_workers_know_them() -> None:
    names = TopicNames("prod.")
    assert names.repartition("leadstream") == "prod.leadstream-repartition"
