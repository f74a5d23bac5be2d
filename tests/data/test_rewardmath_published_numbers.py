"""`rmbench evaluate-scores` on RewardMATH's published score files prints the accuracies the literature prints.

Source of the printed numbers: Du et al. 2025, "Confidence as a Reward: Transforming LLMs into Reward Models",
arXiv:2510.13501v1, Table 1 (https://arxiv.org/html/2510.13501v1), whose caption says its classifier-based ORM and
PRM rows are "reported in the Kim et al. (2024)", i.e. RewardMATH's own paper (arXiv:2410.01729). That paper's table
itself could not be read from here, so these are its numbers as reprinted: RewardMATH accuracy in percent, two
decimals; PRMs under the product ("prod") and geometric-mean ("geo mean") step aggregations. No MRR, LLM-judge or
pairwise number is reprinted there, so none is checked here.

Each model's row maps to its score file in RewardMATH_official's results/RewardMATH/ (commit cde06ab; the model
names come from that repository's scripts/*.sh): Llemma-7b-prm-prm800k = ScalableMath/llemma-7b-prm-prm800k-
level-1to3-hf = Easy_to_hard. The other rows of that table (ArmoRM, Skywork, internlm2-7b, Math-Shepherd,
ReasonEval-34B, Qwen2.5 rows) have no score file in the shared data.
"""

from __future__ import annotations

import json

import pytest

from tests._shared import shared_path
from tests.helpers import cli

#: (score file stem, --aggregate or None for the default, the printed RewardMATH accuracy in %).
PRINTED = [
    ("grm_gemma", None, "4.97"),
    ("oasst-rm", None, "7.04"),
    ("beaver", None, "7.25"),
    ("Eurus-RM", None, "16.98"),
    ("grm_llama3", None, "24.43"),
    ("internlm2_20b", None, "33.95"),
    ("Easy_to_hard", "prod", "14.08"),
    ("ReasonEval_7B", "prod", "18.22"),
    ("Easy_to_hard", "geometric_mean", "16.36"),
    ("ReasonEval_7B", "geometric_mean", "20.29"),
]


@pytest.mark.shared_data
@pytest.mark.parametrize(("stem", "aggregate", "printed"), PRINTED, ids=lambda v: str(v))
def test_evaluate_scores_reproduces_the_printed_accuracy(
    stem: str, aggregate: str | None, printed: str, capsys: pytest.CaptureFixture[str]
) -> None:
    path = shared_path(f"rewardmath/model_scores/{stem}_reward.json.gz")
    capsys.readouterr()
    args = ["evaluate-scores", str(path), "--json"] + (["--aggregate", aggregate] if aggregate else [])
    assert cli(args) == 0
    summary = json.loads(capsys.readouterr().out)
    # The default import: the suite's tie rule (strict, as RewardMATH's eval.py) over all 483 problems.
    assert (summary["tie_policy"], summary["n"], summary["excluded"]) == ("strict", 483, {})
    assert f"{100 * summary['accuracy']:.2f}" == printed
