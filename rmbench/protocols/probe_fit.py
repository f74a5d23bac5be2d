"""Probe fitting for the probing protocol (METRICS.md §7): which items are usable, the dimensions (tasks) they
form, and the per-dimension logistic-regression probe with its description. ``probing`` turns fitted probes into
metrics and inference-time agreement; this module never computes a metric.
"""

from __future__ import annotations

import math
import warnings
from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from rmbench.errors import DataError, ScoreError, SuiteError
from rmbench.items import ProbeItem
from rmbench.protocols.base import MetricOptions
from rmbench.requests import Score, ScoreRequest

SETTINGS = {2: "easy", 3: "hard"}
"""MRMBench's name for a dimension by its number of classes."""


class ProbeParams(BaseModel):
    """``metrics.params`` of a probing suite."""

    model_config = ConfigDict(extra="forbid")

    C: float = Field(1.0, gt=0, description="Inverse L2 regularisation strength of every probe (fixed, not tuned).")
    max_iter: int = Field(2000, ge=10, description="lbfgs iterations; a probe that did not converge is flagged.")
    pair_dimensions: list[str] | None = Field(
        None,
        description="Dimensions whose label order is a preference order (higher label = better response): their "
        "same-prompt test pairs measure pairwise correctness. Default: every dimension.",
    )


@dataclass
class Probe:
    """A fitted probe: standardise, then logistic regression; a single-class train split gives a constant."""

    classes: np.ndarray
    model: Any = None
    converged: bool = True

    @classmethod
    def fit(cls, features: np.ndarray, labels: np.ndarray, params: ProbeParams, seed: int) -> Probe:
        classes = np.unique(labels)
        if len(classes) < 2:
            return cls(classes)
        from sklearn.exceptions import ConvergenceWarning
        from sklearn.linear_model import LogisticRegression
        from sklearn.pipeline import make_pipeline
        from sklearn.preprocessing import StandardScaler

        model = make_pipeline(
            StandardScaler(), LogisticRegression(C=params.C, max_iter=params.max_iter, random_state=seed)
        )
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always", ConvergenceWarning)
            model.fit(features, labels)
        converged = not any(issubclass(w.category, ConvergenceWarning) for w in caught)
        return cls(classes, model, converged)

    def predict(self, features: np.ndarray) -> np.ndarray:
        if self.model is None:
            return np.full(len(features), self.classes[0])
        return np.asarray(self.model.predict(features))

    def graded(self, features: np.ndarray) -> np.ndarray:
        """Expected label rescaled to [0, 1] (0.5 everywhere for a single-class probe)."""
        if self.model is None:
            return np.full(len(features), 0.5)
        expected = self.model.predict_proba(features) @ self.model.classes_.astype(float)
        low, high = float(self.classes[0]), float(self.classes[-1])
        return (expected - low) / (high - low)


@dataclass
class ProbeTask:
    """One probed dimension: its items (indices into the valid items) by split."""

    name: str
    group: str
    dimension: str
    train: list[int] = field(default_factory=list)
    test: list[int] = field(default_factory=list)


@dataclass(frozen=True)
class ProbeRow:
    """An item with a finite score and hidden state."""

    item: ProbeItem
    reward: float
    hidden: np.ndarray
    key: str

    @property
    def cluster(self) -> str:
        # Resample by prompt like the preference protocols do (METRICS.md §9); the builder puts it in meta.
        return str(self.item.meta.get("cluster", self.item.cluster))


def probe_params(options: MetricOptions) -> ProbeParams:
    try:
        return ProbeParams.model_validate(options.params)
    except ValidationError as error:
        problems = "; ".join(f"metrics.params.{'.'.join(map(str, e['loc']))}: {e['msg']}" for e in error.errors())
        raise SuiteError(f"protocol 'probing': {problems}") from None


def resolve_probe_items(items: Sequence[ProbeItem], scores: Mapping[str, Score]) -> tuple[list[ProbeRow], Counter[str]]:
    valid: list[ProbeRow] = []
    excluded: Counter[str] = Counter()
    width: int | None = None
    for item in items:
        if not isinstance(item, ProbeItem):
            raise DataError(f"protocol 'probing' needs ProbeItems, got {type(item).__name__}", record=item.id)
        key = ScoreRequest.of(item.prompt, item.response).key
        score = scores.get(key)
        if score is None:
            excluded["missing_score"] += 1
        elif not math.isfinite(score.value):
            excluded["invalid_score"] += 1
        elif score.hidden is None:
            excluded["missing_hidden"] += 1
        elif not np.isfinite(score.hidden).all():
            excluded["invalid_hidden"] += 1
        else:
            hidden = np.asarray(score.hidden, dtype=np.float64).ravel()
            if width is not None and hidden.shape[0] != width:
                raise ScoreError(
                    f"hidden states of different sizes ({width} and {hidden.shape[0]}, item {item.id}): "
                    "scores of different models were mixed"
                )
            width = hidden.shape[0]
            valid.append(ProbeRow(item, float(score.value), hidden, key))
    return valid, excluded


def probe_tasks(valid: list[ProbeRow], excluded: Counter[str]) -> tuple[list[ProbeTask], dict[str, str]]:
    """Dimensions in first-seen order; those lacking a train or a test item are skipped (and counted)."""
    groups = {v.item.subset for v in valid}
    tasks: dict[tuple[str, str], ProbeTask] = {}
    for index, entry in enumerate(valid):
        item = entry.item
        name = item.dimension if len(groups) == 1 else f"{item.subset}/{item.dimension}"
        task = tasks.setdefault((item.subset, item.dimension), ProbeTask(name, item.subset, item.dimension))
        (task.train if item.split == "train" else task.test).append(index)
    kept, skipped = [], {}
    for task in tasks.values():
        if not task.train:
            excluded["no_train_split"] += len(task.test)
            skipped[task.name] = "no train item with a valid score and hidden state"
        elif not task.test:
            excluded["no_test_split"] += len(task.train)
            skipped[task.name] = "no test item with a valid score and hidden state"
        else:
            kept.append(task)
    if not kept:
        hint = (
            "; the engine returned no hidden states (probing needs an engine that does: hf, minilm, length, random)"
            if not valid and excluded.get("missing_hidden")
            else ""
        )
        raise ScoreError(
            f"no dimension has both train and test items with valid scores and hidden states "
            f"({dict(sorted(excluded.items()))}){hint}"
        )
    return kept, skipped


def features_of(valid: list[ProbeRow], rows: list[int]) -> np.ndarray:
    return np.stack([valid[i].hidden for i in rows])


def labels_of(valid: list[ProbeRow], rows: list[int]) -> np.ndarray:
    return np.array([valid[i].item.label for i in rows])


def majority_class(labels: np.ndarray) -> int:
    values, counts = np.unique(labels, return_counts=True)
    return int(values[np.argmax(counts)])  # np.unique sorts, argmax takes the first: ties go to the smaller label


def describe_probe(task: ProbeTask, valid: list[ProbeRow], probe: Probe, majority: int) -> dict[str, Any]:
    train, test = labels_of(valid, task.train), labels_of(valid, task.test)
    return {
        "dimension": task.dimension,
        "subset": task.group,
        "classes": [int(c) for c in probe.classes],
        "setting": SETTINGS.get(len(probe.classes), f"{len(probe.classes)}-class"),
        "n_train": len(task.train),
        "n_test": len(task.test),
        "train_label_counts": {str(k): int(v) for k, v in sorted(Counter(train.tolist()).items())},
        "test_label_counts": {str(k): int(v) for k, v in sorted(Counter(test.tolist()).items())},
        "majority_class": majority,
        "converged": probe.converged,
        **({} if probe.model is not None else {"note": "one class in train: the probe predicts it for every item"}),
    }
