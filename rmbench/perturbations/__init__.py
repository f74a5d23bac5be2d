"""Meaning-preserving rewrites of preference items (robustness probes): ``PERTURBATIONS`` and how to apply them.

``rmbench run --perturb NAME[:side][,...]`` or a suite's ``perturbations:`` list scores each rewrite beside the
original items; ``rmbench.runner.perturb`` pairs the two runs item by item.
"""

from rmbench.perturbations import rewrites  # noqa: F401  (fills the registry)
from rmbench.perturbations.base import (
    PERTURBATIONS,
    SIDES,
    Perturbation,
    PerturbationSpec,
    Side,
    parse_specs,
    perturb_items,
)
from rmbench.perturbations.rewrites import final_answer

__all__ = [
    "PERTURBATIONS",
    "SIDES",
    "Perturbation",
    "PerturbationSpec",
    "Side",
    "final_answer",
    "parse_specs",
    "perturb_items",
]
