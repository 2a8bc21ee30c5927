"""``python -m tools``: the developer commands, apart from the product's CLI."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from tests.factories import REPO
from tools.cli import main
from tools.traffic import generate


def test_generate_is_deterministic_per_seed() -> None:
    first = [json.dumps(e) for e in generate(50, seed=11)]
    assert first == [json.dumps(e) for e in generate(50, seed=11)]
    assert first != [json.dumps(e) for e in generate(50, seed=12)]
    times = [e["occurred_at"] for e in generate(50, seed=11)]
    assert times == sorted(times)


@pytest.mark.parametrize("command", [[], ["stack"], ["demo"], ["generate"]])
def test_help_shows_examples(command: list[str]) -> None:
    result = subprocess.run(
        [sys.executable, "-m", "tools", *command, "--help"],
        capture_output=True,
        text=True,
        cwd=REPO,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    assert "usage: python -m tools" in result.stdout
    if command != ["generate"]:
        assert "examples:" in result.stdout


def test_generate_writes_json_lines(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["generate", "--leads", "5", "--seed", "3", "--limit", "7"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert len(lines) == 7 and all(json.loads(line)["event_id"] for line in lines)


def test_a_bad_stack_setting_is_one_line_naming_the_variable(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("LEADSTREAM_STACK_BROKERS", "9")
    assert main(["stack", "status"]) == 2
    err = capsys.readouterr().err
    assert "error: setting LEADSTREAM_STACK_BROKERS" in err and "Traceback" not in err
