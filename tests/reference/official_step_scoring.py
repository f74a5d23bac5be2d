"""The benchmarks' own released scoring code, kept verbatim in the lines that compute numbers, so tests can compare
rmbench's step-level metrics with it on identical step scores. Not part of the package; test-only reference.

- PRMBench: github.com/ssmisya/PRMBench @ a1ae4eab803e14c4c6316bf89d1679b0486faa8c (Apache-2.0):
  ``mr_eval/tasks/prmtest_classified/task.py`` (``eval_on_hallucination_step``; the F1 part of
  ``evaluate_function``) and ``mr_visualize/eval_res_view/draw_tabs/form_latex_strs.ipynb``
  (``get_prmscore_from_current_res_dict``, ``get_avg_prmscore_from_current_res_dict``). Labels come from
  mr_eval's models: ``step_level_validity_labels = [score > validity_threshold]`` (default 0.5). The "correct"
  pseudo-category and the similarity metric are left out (they never enter the PRMScore table).
- ProcessBench: github.com/QwenLM/ProcessBench @ its stored HEAD, ``code/run_eval_prm_rlhflow.py`` (first step judged
  not correct → its index, else -1) and ``code/run_eval.py`` (error acc, correct acc, F1).
Only formatting and the inputs' plumbing differ from upstream.
"""

from __future__ import annotations

from typing import Any

import numpy as np


# --- PRMBench: mr_eval/tasks/prmtest_classified/task.py ---------------------------------------------------------
def eval_on_hallucination_step(hallucination_steps, labels, redundency_label=False):  # type: ignore[no-untyped-def]
    hallucination_steps = [i - 1 for i in hallucination_steps]
    if redundency_label:
        POSITIVE_LABEL = 0
        NEGATIVE_LABEL = 1
    else:
        POSITIVE_LABEL = 1
        NEGATIVE_LABEL = 0
    TP = 0
    FP = 0
    TN = 0
    FN = 0
    first_error_location = min(hallucination_steps) if len(hallucination_steps) > 0 else -1
    first_error_acc = None
    for idx in range(len(labels)):
        if idx == first_error_location:
            if labels[idx] == NEGATIVE_LABEL:
                first_error_acc = 1
            else:
                first_error_acc = 0
        if idx in hallucination_steps:
            if labels[idx] == POSITIVE_LABEL:
                FP += 1
            else:
                TN += 1
        else:
            if labels[idx] == POSITIVE_LABEL:
                TP += 1
            else:
                FN += 1
    return dict(first_error_acc=first_error_acc, f1_matrix=dict(TP=TP, FP=FP, TN=TN, FN=FN))


def _f1s(m):  # type: ignore[no-untyped-def]
    TP, FP, FN, TN = m["TP"], m["FP"], m["FN"], m["TN"]
    precision = TP / (TP + FP) if (TP + FP) != 0 else -1
    recall = TP / (TP + FN) if (TP + FN) != 0 else -1
    f1 = 2 * precision * recall / (precision + recall) if (precision + recall) != 0 else -1
    negative_precision = TN / (TN + FN) if (TN + FN) != 0 else -1
    negative_recall = TN / (TN + FP) if (TN + FP) != 0 else -1
    negative_f1 = (
        2 * negative_precision * negative_recall / (negative_precision + negative_recall)
        if (negative_precision + negative_recall) != 0
        else -1
    )
    return f1, negative_f1


def evaluate_function(results, meta_data):  # type: ignore[no-untyped-def]
    """The F1 part of mr_eval's ``evaluate_function``: pooled totals and per-classification matrices."""
    meta_data_dict = {meta["idx"]: meta for meta in meta_data}
    classification_types = set([meta["classification"] for meta in meta_data])
    per_type = {i: dict(TP=0, FP=0, TN=0, FN=0) for i in classification_types}
    total = dict(TP=0, FP=0, TN=0, FN=0)
    for prediction in results:
        reference_item = meta_data_dict[prediction["idx"]]
        labels = prediction["scores"]["step_level_validity_labels"]
        res_dict = eval_on_hallucination_step(reference_item["error_steps"], labels, redundency_label=False)
        for key in ("TP", "FP", "TN", "FN"):
            per_type[reference_item["classification"]][key] += res_dict["f1_matrix"][key]
            total[key] += res_dict["f1_matrix"][key]
    f1, negative_f1 = _f1s(total)
    res: dict[str, Any] = dict(
        total_hallucination_results=dict(f1=f1, negative_f1=negative_f1),
        hallucination_type_results=dict(f1={}, negative_f1={}),
    )
    for classification in classification_types:
        f1, negative_f1 = _f1s(per_type[classification])
        res["hallucination_type_results"]["f1"][classification] = f1
        res["hallucination_type_results"]["negative_f1"][classification] = negative_f1
    return res


# --- PRMBench: mr_visualize/eval_res_view/draw_tabs/form_latex_strs.ipynb ------------------------------------------
def get_prmscore_from_current_res_dict(res_dict, classification=None):  # type: ignore[no-untyped-def]
    if not classification:
        prm_score = (
            res_dict["total_hallucination_results"]["f1"] * 0.5
            + res_dict["total_hallucination_results"]["negative_f1"] * 0.5
        )
    else:
        if classification in ["multi_solutions"]:
            prm_score = res_dict["hallucination_type_results"]["f1"][classification]
        else:
            prm_score = (
                res_dict["hallucination_type_results"]["f1"][classification] * 0.5
                + res_dict["hallucination_type_results"]["negative_f1"][classification] * 0.5
            )
    prm_score = prm_score if prm_score > 0 else 0
    return prm_score


def get_avg_prmscore_from_current_res_dict(res_dict, classifications):  # type: ignore[no-untyped-def]
    res = [get_prmscore_from_current_res_dict(res_dict, classification) for classification in classifications]
    return sum(res) / len(res)


# --- ProcessBench: code/run_eval_prm_rlhflow.py and code/run_eval.py -----------------------------------------------
def processbench_prediction(step_is_correct):  # type: ignore[no-untyped-def]
    for sdx, judgment in enumerate(step_is_correct):
        if not judgment:
            return sdx
    return -1


def processbench_metrics(res_data):  # type: ignore[no-untyped-def]
    """``res_data``: dicts with ``label`` and ``match``; returns (error acc, correct acc, f1) in percent as upstream."""
    error_data = [e for e in res_data if e["label"] != -1]
    correct_data = [e for e in res_data if e["label"] == -1]
    acc1 = np.mean([e["match"] for e in error_data]) * 100
    acc2 = np.mean([e["match"] for e in correct_data]) * 100
    f1 = 2 * acc1 * acc2 / (acc1 + acc2)
    return acc1, acc2, f1
