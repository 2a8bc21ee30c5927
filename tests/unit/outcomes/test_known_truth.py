"""The honest tests: generated traffic whose truth is known (tools/outcomes.py).

Some behaviours and fit attributes drive the hidden propensity to buy
(``PREDICTIVE`` rules score them), others do not (``NOISE``); the seed decides
everything. So: evaluate's lift must order the rules as the truth does, learn
must give the predictive rules more points than the noise ones and beat
rules/default.yaml on the held-out (newer) leads, and on outcomes drawn at
random learn must find nothing and write nothing.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest

from stream_app.commands.cli import main
from stream_app.commands.learn import propose
from stream_app.commands.sources import file_source
from stream_app.outcomes.evaluation import MIN_RULE_LEADS, Label, evaluate
from stream_app.outcomes.observe import Observation, observe
from stream_app.outcomes.proposal import rewrite
from stream_app.scoring.rules import parse_rules
from tests.factories import DEFAULT_RULES, default_rules
from tools.outcomes import NOISE, PREDICTIVE, first_pass, with_outcomes
from tools.traffic import write

LEADS, SEED = 5000, 7


@pytest.fixture(scope="module")
def traffic(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Path]]:
    """The same traffic twice: sales feedback from the truth, and drawn at random."""
    folder = tmp_path_factory.mktemp("outcomes")
    prospects = first_pass(LEADS, SEED)
    files = {}
    for mode in ("truth", "random"):
        files[mode] = folder / f"{mode}.jsonl"
        with open(files[mode], "w") as out:
            write(with_outcomes(LEADS, SEED, mode=mode, prospects=prospects), out)  # type: ignore[arg-type]
    yield files


@pytest.fixture(scope="module")
def observed(traffic: dict[str, Path]) -> Observation:
    source = file_source(str(traffic["truth"]), None, quiet=True)
    return observe(source.events("replay"), default_rules())


def test_evaluates_lift_orders_the_rules_as_the_truth_does(observed: Observation) -> None:
    report = evaluate(observed, Label())
    rules = report["rules"]
    judged = {r: row for r, row in rules.items() if row["fired_leads"] >= MIN_RULE_LEADS}
    predictive = {r: judged[r]["lift"] for r in PREDICTIVE if r in judged}
    noise = {r: judged[r]["lift"] for r in NOISE if r in judged}
    assert len(predictive) >= 3 and len(noise) >= 3, (predictive, noise)
    assert min(predictive.values()) > max(noise.values()), (predictive, noise)
    evidence_for = {r for r, row in judged.items() if row["evidence"] == "for"}
    assert evidence_for & set(PREDICTIVE) >= {"pricing_page", "case_study_page"}, evidence_for
    assert not evidence_for & set(NOISE), evidence_for
    total = report["auc"]["at_handoff"]["total"]
    assert total["roc_ci"][0] > 0.5  # the default file predicts something already


def test_learn_gives_the_predictive_rules_more_points_and_beats_the_default_held_out(
    observed: Observation,
) -> None:
    found = propose(observed, Label())
    learned = {f.rule_id for f in found.fitted.features}
    points = found.fitted.points
    predictive = {r: points[r] for r in PREDICTIVE if r in learned}
    noise = {r: points[r] for r in NOISE if r in learned}
    assert len(predictive) >= 3 and len(noise) >= 3, (predictive, noise)
    assert min(predictive.values()) > max(noise.values()), (predictive, noise)
    held = found.held
    assert held.better, held  # the paired interval of the difference lies above 0
    assert held.auc_proposed > held.auc_current
    text = DEFAULT_RULES.read_text()
    parsed = parse_rules(rewrite(text, default_rules(), points, "learned", None))
    assert parsed.by_id["pricing_page"].points == points["pricing_page"]


def test_learn_writes_a_file_that_passes_rules_check(
    traffic: dict[str, Path], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "proposed.yaml"
    argv = ["learn", "--rules", str(DEFAULT_RULES), str(traffic["truth"]), "--out", str(out)]
    assert main([*argv, "--quiet"]) == 0
    printed = capsys.readouterr().out
    assert "held-out ROC AUC" in printed and "difference" in printed
    assert main(["rules", "check", str(out)]) == 0
    checked = json.loads(capsys.readouterr().out)
    assert checked["version"].startswith("2026.12-b2b-3-learned")
    head = out.read_text().split("\nversion:")[0]
    assert "held-out ROC AUC" in head and "coefficient" in head  # the provenance header


def test_on_random_outcomes_learn_finds_nothing_and_writes_nothing(
    traffic: dict[str, Path], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "proposed.yaml"
    argv = ["learn", "--rules", str(DEFAULT_RULES), str(traffic["random"]), "--out", str(out)]
    assert main([*argv, "--quiet"]) == 1
    printed = capsys.readouterr().out
    assert "No file written" in printed
    assert "nothing to learn" in printed or "no significant gain" in printed
    assert not out.exists()
