"""RewardMATH's published per-model score files (``results/RewardMATH/<model>_reward.json``) → accuracy and MRR.

Two formats, detected per file:

- direct: ``{"problem", "solution_reference": [10], "score": [10]}``; index 0 is the correct solution; a score is
  a float (classifier RM), an int rating (LLM judge, many ties: the tie policy matters) or a list of per-step
  floats (PRM: aggregated with the chosen aggregation). Metrics ``accuracy`` and ``mrr`` (METRICS.md §2).
- both formats also get ``best_of_4_accuracy``, the RewardBench 2 format (one correct vs three incorrect): the
  §2 accuracy against 3 of the 9 incorrect solutions, averaged exactly over all 84 draws (no sampling noise). For
  a pairwise-judge file a draw is won when the verdicts on its three comparisons are all correct.
- pairwise judge: ``"score"`` and ``"chosen_position"`` are lists of "A"/"B"; a comparison is correct iff they
  agree. Metrics ``accuracy`` (correct on all comparisons: the one-vs-many accuracy) and ``pairwise_accuracy``
  (share of correct comparisons). MRR is not defined: a verdict says which of two won, not a score that ranks all
  ten solutions. (Upstream's evaluate script prints a pseudo-MRR 1/(1 + #lost comparisons); we do not.)

Decisions, recorded in the result: a duplicated problem (same ``problem`` text; the chatgpt/gpt4/gpt4o files
repeat 2) keeps its first record only, with a warning that says whether the copies' scores agree — keeping both
would weigh those problems twice and break unique item ids. A null verdict (the judge gave none) is a missing
score: by default the problem is excluded and counted (``missing_verdict="exclude"``, METRICS.md: never scored
silently); ``missing_verdict="incorrect"`` reproduces upstream, which counts it as a wrong verdict.
"""

from __future__ import annotations

import gzip
import json
import math
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Literal

import numpy as np
import pandas as pd

from rmbench.errors import DataError, ScoreError
from rmbench.metrics.stats import (
    one_vs_many_accuracy,
    padded,
    reciprocal_rank,
    sectioned_means,
    subsampled_accuracy,
    win_tie_counts,
)
from rmbench.metrics.tie_effect import TIES, other_column, other_policy, with_tie_effect, without_tie_columns
from rmbench.protocols.aggregate import aggregate_steps
from rmbench.protocols.base import MetricOptions, ProtocolResult, TiePolicy

Format = Literal["direct", "pairwise"]
MissingVerdict = Literal["exclude", "incorrect"]
CORRECT_REFERENCE = "human_to_GPT-4"
VERDICTS = ("A", "B")
BEST_OF_4_DRAWN = 3
"""Incorrect solutions drawn against the correct one by ``best_of_4_accuracy`` (RewardBench 2: 1 chosen vs 3)."""


@dataclass
class ScoreFileInfo:
    """What was read: format, score type, counts and every decision that changed which records count."""

    path: str
    format: Format
    score_type: str  # "float", "int", "steps" (direct) or "verdict" (pairwise)
    n_records: int
    n_problems: int
    candidates: list[int]  # distinct numbers of scored solutions (direct) or comparisons (pairwise) per problem
    duplicates: list[dict[str, Any]] = field(default_factory=list)
    missing_verdicts: int = 0
    warnings: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass
class RewardMathEvaluation:
    result: ProtocolResult
    info: ScoreFileInfo


def read_score_file(path: str | Path) -> list[dict[str, Any]]:
    """The records of a score file, gzip-compressed or plain JSON (a JSON array of objects)."""
    path = Path(path)
    try:
        raw = path.read_bytes()
        text = gzip.decompress(raw) if raw[:2] == b"\x1f\x8b" else raw
        records = json.loads(text)
    except (OSError, EOFError, gzip.BadGzipFile, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise DataError(f"cannot read a JSON score file: {exc}", source=str(path)) from exc
    if not isinstance(records, list) or not records:
        raise DataError("expected a non-empty JSON array of records", source=str(path))
    for index, record in enumerate(records):
        if not isinstance(record, dict):
            raise DataError(f"expected an object, got {type(record).__name__}", source=str(path), record=index)
    return records


def evaluate_score_file(
    path: str | Path,
    options: MetricOptions | None = None,
    *,
    missing_verdict: MissingVerdict = "exclude",
) -> RewardMathEvaluation:
    """Accuracy (and MRR for direct files) with cluster-bootstrap CIs; one cluster per problem."""
    options = options or MetricOptions()
    source = str(path)
    records = read_score_file(path)
    file_format: Format = "pairwise" if "chosen_position" in records[0] else "direct"
    kept, duplicates, warnings = _deduplicate(records, source)
    if file_format == "direct":
        frame, info, excluded = _direct(records, kept, source, options)
    else:
        frame, info, excluded = _pairwise(records, kept, source, missing_verdict)
    if duplicates:
        excluded["duplicate_problem"] = len(duplicates)
    info.duplicates, info.warnings = duplicates, warnings + info.warnings
    if frame.empty:
        raise ScoreError(f"{source}: no problem has valid scores (excluded: {excluded})")

    columns = [c for c in without_tie_columns(frame).columns if c not in ("item_id", "subset", "cluster")]
    table = sectioned_means(
        frame, columns, None, resamples=options.bootstrap_resamples, confidence=options.confidence, seed=options.seed
    )
    extra = info.as_dict() | {
        "tie_policy": options.tie_policy if file_format == "direct" else "n/a (verdicts cannot tie)",
        "aggregate": options.aggregate if info.score_type == "steps" else "n/a (no step scores)",
        "missing_verdict": missing_verdict if file_format == "pairwise" else "n/a",
    }
    result = ProtocolResult(
        metrics=with_tie_effect([m for m in table.metric_values() if m.scope == "overall"], frame, None),
        per_item=without_tie_columns(frame),
        excluded=dict(sorted(excluded.items())),
        extra=extra,
    )
    return RewardMathEvaluation(result=result, info=info)


def _deduplicate(records: list[dict[str, Any]], source: str) -> tuple[list[int], list[dict[str, Any]], list[str]]:
    """Indices of the first record of each problem, the duplicates found and a warning for each."""
    first: dict[str, int] = {}
    kept, duplicates, warnings = [], [], []
    for index, record in enumerate(records):
        problem = _field(record, "problem", str, source, index)
        if problem not in first:
            first[problem] = index
            kept.append(index)
            continue
        original = first[problem]
        same = {k: records[original].get(k) for k in ("solution_reference", "score", "chosen_position")} == {
            k: record.get(k) for k in ("solution_reference", "score", "chosen_position")
        }
        duplicates.append({"kept_record": original, "dropped_record": index, "identical": same})
        agreement = "identical scores" if same else "DIFFERENT scores"
        warnings.append(
            f"{source}: record {index} repeats the problem of record {original} ({agreement}); kept record {original}"
        )
    return kept, duplicates, warnings


def _field(record: dict[str, Any], name: str, kind: type, source: str, index: int) -> Any:
    if name not in record:
        raise DataError("missing field", source=source, record=index, field=name)
    value = record[name]
    if not isinstance(value, kind):
        raise DataError(
            f"expected {kind.__name__}, got {type(value).__name__}", source=source, record=index, field=name
        )
    return value


def _lists(record: dict[str, Any], names: tuple[str, ...], source: str, index: int) -> list[list[Any]]:
    """The named list fields, checked to be lists of one common length ≥ 1."""
    lists = [_field(record, name, list, source, index) for name in names]
    lengths = {len(values) for values in lists}
    if len(lengths) != 1 or 0 in lengths:
        detail = ", ".join(f"{n}: {len(v)}" for n, v in zip(names, lists))
        raise DataError(
            f"list fields must have one common non-zero length ({detail})", source=source, record=index, field=names[-1]
        )
    return lists


# --- direct assessment ----------------------------------------------------------------------------------------------


def _direct(
    records: list[dict[str, Any]], kept: list[int], source: str, options: MetricOptions
) -> tuple[pd.DataFrame, ScoreFileInfo, dict[str, int]]:
    kinds: dict[str, tuple[int, int]] = {}  # score kind → (record, solution) where it was first seen
    warnings: list[str] = []
    # Every record is checked, dropped duplicates included; only the kept ones are scored.
    parsed = [_direct_record(record, index, source, options, kinds, warnings) for index, record in enumerate(records)]
    valid = [i for i in kept if all(math.isfinite(v) for v in parsed[i])]
    good = np.array([parsed[i][0] for i in valid])
    g, t = win_tie_counts(good, padded([np.asarray(parsed[i][1:]) for i in valid]))
    n_bad = np.array([len(parsed[i]) - 1 for i in valid])
    other = other_policy(options.tie_policy)
    frame = _frame(
        [str(i) for i in valid],
        **_policy_columns(g, t, n_bad, options.tie_policy),
        **{other_column(name): values for name, values in _policy_columns(g, t, n_bad, other).items()},
        **{TIES: t},
    )
    score_type = "steps" if "steps" in kinds else "float" if "float" in kinds else "int"
    candidates = sorted({len(parsed[i]) for i in kept})
    info = ScoreFileInfo(source, "direct", score_type, len(records), len(kept), candidates, warnings=warnings)
    invalid = len(kept) - len(valid)
    return frame, info, {"invalid_score": invalid} if invalid else {}


def _direct_record(
    record: dict[str, Any],
    index: int,
    source: str,
    options: MetricOptions,
    kinds: dict[str, tuple[int, int]],
    warnings: list[str],
) -> list[float]:
    """The solutions' scores (index 0 = the correct one), NaN where missing; notes the score kinds seen."""
    if "chosen_position" in record:
        raise DataError(
            "pairwise record in a direct-assessment file", source=source, record=index, field="chosen_position"
        )
    references, raw = _lists(record, ("solution_reference", "score"), source, index)
    if len(raw) < 2:
        raise DataError("need the correct solution and at least one other", source=source, record=index, field="score")
    if references[0] != CORRECT_REFERENCE:
        warnings.append(
            f"{source}: record {index}: solution_reference[0] is {references[0]!r}, not "
            f"{CORRECT_REFERENCE!r}; index 0 is still taken as the correct solution"
        )
    return [_direct_value(v, options, source, index, j, kinds) for j, v in enumerate(raw)]


def _direct_value(
    value: Any, options: MetricOptions, source: str, index: int, j: int, kinds: dict[str, tuple[int, int]]
) -> float:
    """One solution's score as a float; NaN for a missing one (null, NaN, empty step list)."""
    field_name = f"score[{j}]"
    if value is None:
        return math.nan
    if isinstance(value, list):
        _note_kind("steps", kinds, source, index, j)
        if any(isinstance(s, bool) or not isinstance(s, (int, float, type(None))) for s in value):
            raise DataError("step scores must be numbers", source=source, record=index, field=field_name)
        if not value or any(s is None for s in value):
            return math.nan
        return aggregate_steps([float(s) for s in value], options.aggregate)
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        kind = type(value).__name__
        raise DataError(
            f"expected a number or a list of step scores, got {kind}", source=source, record=index, field=field_name
        )
    _note_kind("int" if isinstance(value, int) else "float", kinds, source, index, j)
    return float(value)


def _note_kind(kind: str, kinds: dict[str, tuple[int, int]], source: str, index: int, j: int) -> None:
    """Record where a score kind is first seen; a step list among single scores (or the reverse) is an error that
    names this score and the first one of the other shape."""
    clash = next(((k, place) for k, place in kinds.items() if (k == "steps") != (kind == "steps")), None)
    if clash is not None:
        other, (record, solution) = clash
        shape = {True: "a step list", False: "a single score"}
        raise DataError(
            f"{shape[kind == 'steps']}, but record {record}, field 'score[{solution}]' is {shape[other == 'steps']}: "
            "a file holds step lists or single scores, not both",
            source=source, record=index, field=f"score[{j}]",
        )
    kinds.setdefault(kind, (index, j))


# --- pairwise judge -------------------------------------------------------------------------------------------------


def _pairwise(
    records: list[dict[str, Any]], kept: list[int], source: str, missing_verdict: MissingVerdict
) -> tuple[pd.DataFrame, ScoreFileInfo, dict[str, int]]:
    parsed = [_pairwise_record(record, index, source) for index, record in enumerate(records)]
    missing = sum(verdicts.count(None) for verdicts, _ in (parsed[i] for i in kept))
    scored = [i for i in kept if missing_verdict == "incorrect" or None not in parsed[i][0]]
    # A null verdict is never equal to a position, so under "incorrect" it counts as a wrong verdict.
    correct = [[v == p for v, p in zip(*parsed[i])] for i in scored]
    n_compared = np.array([len(c) for c in correct])
    # A draw of 3 comparisons is won iff all 3 verdicts are correct: a draw with no lost comparison, no ties.
    n_lost = n_compared - np.array([sum(c) for c in correct])
    frame = _frame(
        [str(i) for i in scored],
        accuracy=[float(all(c)) for c in correct],
        pairwise_accuracy=[sum(c) / len(c) for c in correct],
        **_best_of_4(n_lost, np.zeros_like(n_lost), n_compared, "strict"),
    )
    info = ScoreFileInfo(
        source,
        "pairwise",
        "verdict",
        len(records),
        len(kept),
        sorted({len(parsed[i][0]) for i in kept}),
        missing_verdicts=missing,
        notes=["mrr is not defined for pairwise-judge files: verdicts do not rank the solutions"],
    )
    if missing:
        action = "problems with one excluded" if missing_verdict == "exclude" else "counted as incorrect"
        info.warnings.append(f"{source}: {missing} null verdict(s) in {len(kept)} problems; {action}")
    skipped = len(kept) - len(scored)
    return frame, info, {"missing_verdict": skipped} if skipped else {}


def _pairwise_record(record: dict[str, Any], index: int, source: str) -> tuple[list[str | None], list[str]]:
    """(verdicts, chosen positions), checked: positions "A"/"B", verdicts "A"/"B" or null (no verdict)."""
    _, verdicts, positions = _lists(record, ("solution_reference", "score", "chosen_position"), source, index)
    for j, (verdict, position) in enumerate(zip(verdicts, positions)):
        if position not in VERDICTS:
            raise DataError(
                f"expected 'A' or 'B', got {position!r}", source=source, record=index, field=f"chosen_position[{j}]"
            )
        if verdict is not None and verdict not in VERDICTS:
            raise DataError(
                f"expected 'A', 'B' or null, got {verdict!r}", source=source, record=index, field=f"score[{j}]"
            )
    return verdicts, positions


def _policy_columns(g: np.ndarray, t: np.ndarray, n_bad: np.ndarray, policy: TiePolicy) -> dict[str, np.ndarray]:
    """accuracy, mrr and best_of_4_accuracy of direct-assessment problems under ``policy``."""
    return {
        "accuracy": one_vs_many_accuracy(g, t, policy),
        "mrr": reciprocal_rank(g, t, policy),
        **_best_of_4(g, t, n_bad, policy),
    }


def _best_of_4(g: np.ndarray, t: np.ndarray, n_bad: np.ndarray, policy: TiePolicy) -> dict[str, np.ndarray]:
    """The ``best_of_4_accuracy`` column, or none when a problem has fewer than 3 incorrect solutions to draw."""
    if len(n_bad) and n_bad.min() >= BEST_OF_4_DRAWN:
        return {"best_of_4_accuracy": subsampled_accuracy(g, t, n_bad, BEST_OF_4_DRAWN, policy)}
    return {}


def _frame(ids: list[str], **columns: list[float] | np.ndarray) -> pd.DataFrame:
    frame = pd.DataFrame({"item_id": ids, "subset": "rewardmath", "cluster": ids})
    for name, values in columns.items():
        frame[name] = np.asarray(values, dtype=float)
    return frame
