"""Record transforms for step-level PRM evaluation (``StepItem`` records, METRICS.md §10): PRMBench, ProcessBench
and a step-level view of the generated ``math_robustness`` problems. Reshaping only; values are checked by the
``StepItem`` builder."""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from typing import Any

from rmbench.data.convert import RecordProblem
from rmbench.transforms import Record, get_field


def prmbench(records: Iterable[Record]) -> Iterator[Record]:
    """PRMBench (mr_eval ``prmtest_classified``): the perturbed question and process are evaluated; the id is
    ``<classification>:<idx>`` because ``idx`` repeats across category files; the cluster is ``idx`` (the source
    solution, perturbed up to 8 ways). A repeated ``(classification, idx)`` keeps its first record, as upstream's
    loader does (5 repeats in ``multi_solutions``)."""
    seen: set[tuple[str, str]] = set()
    for index, record in enumerate(records):
        category = get_field(record, "classification", index)
        idx = get_field(record, "idx", index)
        if (category, idx) in seen:
            continue
        seen.add((category, idx))
        yield {
            "id": f"{category}:{idx}",
            "prompt": get_field(record, "modified_question", index),
            "steps": get_field(record, "modified_process", index, list),
            "error_steps": get_field(record, "error_steps", index, list),
            "subset": category,
            "source_id": idx,
        }


def processbench(records: Iterable[Record]) -> Iterator[Record]:
    """ProcessBench (Qwen/ProcessBench): ``label`` is the 0-based earliest erroneous paragraph, -1 for a correct
    solution; it becomes ``error_steps`` = [label + 1] with only the first error known."""
    for index, record in enumerate(records):
        label = get_field(record, "label", index, int)
        if label < -1:
            raise RecordProblem(f"expected -1 or a 0-based step index, got {label}", "label", index)
        yield {
            "id": get_field(record, "id", index, (str, int)),
            "prompt": get_field(record, "problem", index),
            "steps": get_field(record, "steps", index, list),
            "error_steps": [] if label == -1 else [label + 1],
            "first_error_only": True,
            "generator": record.get("generator"),
        }


def math_robustness_steps(records: Iterable[Record]) -> Iterator[Record]:
    """Each generated problem (one correct, four wrong solutions) → five step items; the wrong ones carry their
    exactly known 0-based ``rejected_first_error_step`` as a 1-based error step, later steps unlabelled."""
    for index, record in enumerate(records):
        problem_id = get_field(record, "id", index)
        prompt = get_field(record, "prompt", index)
        subset = get_field(record, "subset", index)
        (correct,) = get_field(record, "chosen", index, list)
        base: dict[str, Any] = {"prompt": prompt, "subset": subset, "source_id": problem_id, "first_error_only": True}
        yield {**base, "id": f"{problem_id}:correct", "steps": correct, "error_steps": [], "error_type": "none"}
        wrong = get_field(record, "rejected", index, list)
        firsts = get_field(record, "rejected_first_error_step", index, list)
        types = get_field(record, "rejected_error_types", index, list)
        if not len(wrong) == len(firsts) == len(types):
            raise RecordProblem(
                "rejected, rejected_first_error_step and rejected_error_types differ in length",
                "rejected_first_error_step",
                index,
            )
        for steps, first, error_type in zip(wrong, firsts, types):
            if not isinstance(first, int):
                raise RecordProblem(f"expected a 0-based step index, got {first!r}", "rejected_first_error_step", index)
            yield {
                **base,
                "id": f"{problem_id}:{error_type}",
                "steps": steps,
                "error_steps": [first + 1],
                "error_type": error_type,
            }
