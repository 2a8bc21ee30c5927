"""The scoring core imports no broker, store, HTTP or clock (docs/design.md, layer 2).

ruff's banned-api rule (stream_app/scoring/ruff.toml) says the same at lint
time; this test holds even where lint is not run.
"""

from __future__ import annotations

import ast
from pathlib import Path

import stream_app.scoring

BANNED_MODULES = {
    "faust",
    "mode",
    "aiokafka",
    "redis",
    "rocksdict",
    "aiohttp",
    "asyncio",
    "random",
    "socket",
    "requests",
}
BANNED_CALLS = {
    ("time", "time"),
    ("time", "monotonic"),
    ("datetime", "now"),
    ("datetime", "utcnow"),
    ("date", "today"),
}
CORE = Path(stream_app.scoring.__file__).parent


def test_the_scoring_core_imports_nothing_impure() -> None:
    offenders = []
    for path in sorted(CORE.glob("*.py")):
        tree = ast.parse(path.read_text(), filename=str(path))
        for node in ast.walk(tree):
            names: list[str] = []
            if isinstance(node, ast.Import):
                names = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom) and node.module:
                names = [node.module]
            offenders += [
                f"{path.name}: import {n}" for n in names if n.split(".")[0] in BANNED_MODULES
            ]
            if (
                isinstance(node, ast.Attribute)
                and isinstance(node.value, ast.Name)
                and (node.value.id, node.attr) in BANNED_CALLS
            ):
                offenders.append(f"{path.name}:{node.lineno}: {node.value.id}.{node.attr}")
    assert offenders == []


def test_the_lint_rule_covers_the_same_modules() -> None:
    config = (CORE / "ruff.toml").read_text()
    for module in ("faust", "aiokafka", "redis", "rocksdict"):
        assert f'"{module}".msg' in config
