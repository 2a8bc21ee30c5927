from __future__ import annotations

from stream_app.scoring.accounts import account_score
from stream_app.scoring.rules import Rules


def test_an_account_is_the_sum_of_its_top_three_leads(rules: Rules) -> None:
    assert rules.spec.accounts.top_n == 3
    assert account_score([10, 80, 5, 60, 40], rules) == 180
    assert account_score([], rules) == 0
    assert account_score([-20, 30], rules) == 30
