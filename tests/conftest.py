from __future__ import annotations

import pytest

from stream_app.scoring.rules import Rules
from tests.factories import default_rules


@pytest.fixture(scope="session")
def rules() -> Rules:
    return default_rules()
