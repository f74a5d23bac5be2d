"""The names a suite may give as ``protocol:``, each bound to its class by a "module:attr" string.

Suites are validated and items are built (which item type a protocol takes) below the protocols layer; they look
protocols up here, where nothing imports a protocol module until a name is first used.
"""

from __future__ import annotations

from typing import Any

from rmbench.errors import SuiteError
from rmbench.registry import Registry

__all__ = ["PROTOCOLS"]

#: protocol name -> protocol class, imported on first use. Suites name these in ``protocol:``.
PROTOCOLS: Registry[Any] = Registry("protocol", SuiteError)
PROTOCOLS.lazy(
    "pairwise", "rmbench.protocols.pairwise:PairwiseProtocol", "Chosen vs rejected: accuracy under a tie policy."
)
PROTOCOLS.lazy(
    "pairwise_judge",
    "rmbench.protocols.pairwise_judge:PairwiseJudgeProtocol",
    "A judge sees both responses (both orders): accuracy and position consistency.",
)
PROTOCOLS.lazy(
    "best_of_n", "rmbench.protocols.ranking:BestOfNProtocol", "One correct among n responses: accuracy and MRR."
)
PROTOCOLS.lazy("ties", "rmbench.protocols.ties:TiesProtocol", "RewardBench 2 Ties: several correct answers, margins.")
PROTOCOLS.lazy(
    "rmbench_grid", "rmbench.protocols.grid:StyleGridProtocol", "RM-Bench style grid: hard, normal, easy accuracy."
)
PROTOCOLS.lazy(
    "probing", "rmbench.protocols.probing:ProbingProtocol", "Linear probes on hidden states per labelled dimension."
)
PROTOCOLS.lazy(
    "contrast",
    "rmbench.protocols.contrast:ContrastProtocol",
    "Contrast instructions: response and instruction consistency.",
)
PROTOCOLS.lazy(
    "overoptimization",
    "rmbench.protocols.overoptimization:OveroptimizationProtocol",
    "Best-of-n gold vs proxy curves, Gao et al.'s fit, proxy ensembles.",
)
PROTOCOLS.lazy(
    "step_level",
    "rmbench.protocols.steps:StepLevelProtocol",
    "PRM step level: PRMBench PRMScore and ProcessBench earliest-error accuracy/F1 at a step threshold.",
)
