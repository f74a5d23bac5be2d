"""The step-level suites load as PRMBench's and ProcessBench's code reads them: PRMBench keyed by
(classification, idx) with upstream's de-duplication, clustered by the source solution; the generated step view
with its exact first error steps."""

from __future__ import annotations

from collections import Counter

import pytest

from rmbench.data import load_items
from rmbench.errors import DataError
from rmbench.items import StepItem
from rmbench.suite import load_suite
from tests._shared import SHARED_DATA, shared_path
from tests.helpers import write_suite

PRMBENCH_COUNTS = {
    "circular": 758, "confidence": 757, "counterfactual": 757, "deception": 750, "domain_inconsistency": 757,
    "missing_condition": 756, "multi_solutions": 160, "redundency": 758, "step_contradiction": 758,
}  # fmt: skip


@pytest.mark.shared_data
def test_prmbench_loads_every_category_keyed_by_classification_and_idx() -> None:
    shared_path("prmbench")
    items = load_items(load_suite("prmbench"), data_dir=SHARED_DATA).items
    assert Counter(item.subset for item in items) == PRMBENCH_COUNTS  # 6,216 records, 5 upstream repeats dropped
    assert len({item.id for item in items}) == len(items) == 6211
    # one PRM800K question (eight perturbations and an alternative correct solution) is one bootstrap cluster
    first = [item for item in items if item.id.endswith(":prm_test_p1_0")]
    assert len(first) == 9 and len({item.cluster for item in first}) == 1
    assert all(not item.error_steps for item in items if item.subset == "multi_solutions")
    assert all(item.error_steps for item in items if item.subset != "multi_solutions")
    assert not any(item.first_error_only for item in items)


@pytest.mark.shared_data
def test_prmbench_quick_is_the_394_item_subset() -> None:
    shared_path("prmbench/subset400_target_data.jsonl.gz")
    items = load_items(load_suite("prmbench-quick"), data_dir=SHARED_DATA).items
    assert len(items) == 394 and Counter(item.subset for item in items)["multi_solutions"] == 10


def test_math_robustness_steps_carries_the_exact_first_error() -> None:
    items = load_items(load_suite("math-robustness-steps"), limit=5).items
    assert [item.id.split(":")[1] for item in items] == [
        "correct", "final_answer_slip", "propagated_error", "skipped_step", "hallucinated_step",
    ]  # fmt: skip
    correct, slip = items[0], items[1]
    assert isinstance(correct, StepItem) and correct.error_steps == () and correct.first_error_only
    # the slip is in the final computation: the last step before "The answer is ..."
    assert slip.error_steps == (len(slip.response.steps) - 1,)
    assert len({item.cluster for item in items}) == 1


def test_bad_error_steps_name_the_record_and_field(tmp_path) -> None:  # type: ignore[no-untyped-def]
    record = {"id": "x", "prompt": "q", "steps": ["a", "b"], "error_steps": [0]}
    suite = write_suite(tmp_path, [record], protocol="step_level", name="bad-steps")
    with pytest.raises(DataError, match=r"error_steps\.0.*step number >= 1"):
        load_items(load_suite(str(suite)))
