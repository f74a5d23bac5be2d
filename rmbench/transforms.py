"""Named record transforms: reshape a benchmark's native records into the flat shape suites map to items.

Each transform is a plain generator function over an iterable of records (dicts), registered by name in
``TRANSFORMS`` and named by a suite source's ``transform:`` key. Transforms kept in other modules (``transforms_bon``)
are lazy entries here: they import ``get_field`` from this module, never the other way round. They reshape only
(split transcripts, group solutions, rename keys, keep one part of a split); conversions and checks of values happen
in ``rmbench.data``. A record that cannot be reshaped raises ``RecordProblem`` with the index of the input record, so
the loader can name the file line. A local source that names several files (a glob) is transformed file by file.
"""

from __future__ import annotations

import hashlib
import os
import re
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path
from typing import Any

from rmbench.data.convert import RecordProblem
from rmbench.errors import SuiteError
from rmbench.registry import Registry

Record = dict[str, Any]
Transform = Callable[[Iterable[Record]], Iterator[Record]]

#: Tag of transforms that yield exactly one record per input record, in order: error messages keep the input's line.
ONE_TO_ONE_TAG = "one_to_one"
#: Tag of transforms that join the files of a glob source (e.g. one file per best-of-n sample index): the loader
#: hands them every file's records at once instead of file by file.
WHOLE_SOURCE_TAG = "whole_source"

TRANSFORMS: Registry[Transform] = Registry("transform", SuiteError)
TRANSFORMS.lazy(
    "alpacaeval_bon",
    "rmbench.transforms_bon:alpacaeval_bon",
    "AlpacaEval annotations, one file per sample index -> one best-of-n pool per prompt.",
    tags={WHOLE_SOURCE_TAG},
)
TRANSFORMS.lazy(
    "prmbench",
    "rmbench.transforms_steps:prmbench",
    "PRMBench records -> step items keyed <classification>:<idx>, clustered by idx.",
)
TRANSFORMS.lazy(
    "processbench",
    "rmbench.transforms_steps:processbench",
    "ProcessBench records (0-based earliest error label) -> step items, first error only.",
    tags={ONE_TO_ONE_TAG},
)
TRANSFORMS.lazy(
    "math_robustness_steps",
    "rmbench.transforms_steps:math_robustness_steps",
    "Generated math_robustness problems -> one step item per solution, exact first error step.",
)


def get_transform(name: str, base_dir: Path | None = None) -> Transform:
    """Transform ``name``; ``SuiteError`` with a 'did you mean' for unknown names. A user transform
    ``file.py:function`` is imported from the file (see ``user_transform``)."""
    if is_user_transform(name):
        return user_transform(name, base_dir)[0]
    return TRANSFORMS.get(name)


# --- user transforms ----------------------------------------------------------------------------------------------

_USER = re.compile(r"^(?P<file>[^:]+\.py):(?P<function>[A-Za-z_][A-Za-z0-9_]*)$")
_LOADED: dict[tuple[Path, str], tuple[Transform, str]] = {}


def is_user_transform(name: str) -> bool:
    """Whether ``name`` names a function in a Python file (``file.py:function``) rather than a registered transform."""
    return _USER.match(name) is not None


def user_transform_dirs(base_dir: Path | None) -> list[Path]:
    """Where ``file.py`` is looked for: the suite file's directory, then each ``RMBENCH_PLUGINS`` directory."""
    from rmbench.settings import env_settings

    plugins = [Path(p).expanduser() for p in (env_settings().plugins or "").split(os.pathsep) if p]
    return [*([base_dir] if base_dir is not None else []), *plugins]


def user_transform(name: str, base_dir: Path | None) -> tuple[Transform, str]:
    """The function ``file.py:function`` and the sha256 of the file. This imports and runs the file: only a file the
    user named in a suite is ever imported (relative to the suite file, or in an ``RMBENCH_PLUGINS`` directory)."""
    match = _USER.match(name)
    if match is None:
        raise SuiteError(f"transform {name!r}: expected 'file.py:function'")
    file, function = Path(match["file"]).expanduser(), match["function"]
    dirs = user_transform_dirs(base_dir)
    candidates = [file] if file.is_absolute() else [d / file for d in dirs]
    path = next((c.resolve() for c in candidates if c.is_file()), None)
    if path is None:
        looked = ", ".join(str(c) for c in candidates) or "nowhere (no suite directory, RMBENCH_PLUGINS unset)"
        raise SuiteError(
            f"transform {name!r}: file {file} not found (looked at {looked}); the path is relative to the suite file "
            "or to a directory in RMBENCH_PLUGINS"
        )
    key = (path, function)
    if key not in _LOADED:
        import importlib.util

        data = path.read_bytes()
        digest = hashlib.sha256(data).hexdigest()
        spec = importlib.util.spec_from_file_location(f"rmbench_user_transform_{digest[:16]}", path)
        assert spec is not None and spec.loader is not None
        module = importlib.util.module_from_spec(spec)
        try:
            spec.loader.exec_module(module)
        except Exception as error:  # the user's code: any failure is theirs to fix, named with the file
            raise SuiteError(f"transform {name!r}: importing {path} failed: {type(error).__name__}: {error}") from None
        value = getattr(module, function, None)
        if not callable(value):
            defined = sorted(n for n, v in vars(module).items() if callable(v) and not n.startswith("_"))
            raise SuiteError(
                f"transform {name!r}: {path} defines no function {function!r} (functions: {', '.join(defined) or 'none'})"
            )
        _LOADED[key] = (value, digest)
    return _LOADED[key]


def get_field(record: Record, key: str, index: int, kind: type | tuple[type, ...] = str) -> Any:
    """``record[key]``, present, not null and of type ``kind``; else ``RecordProblem`` naming record ``index``."""
    if key not in record or record[key] is None:
        raise RecordProblem("missing" if key not in record else "is null", key, index)
    value = record[key]
    if not isinstance(value, kind):
        names = " or ".join(k.__name__ for k in (kind if isinstance(kind, tuple) else (kind,)))
        raise RecordProblem(f"expected {names}, got {type(value).__name__}", key, index)
    return value


# --- Anthropic HH-RLHF --------------------------------------------------------------------------------------------

_MARKER = re.compile(r"\n\n(Human|Assistant):")
_ROLES = {"Human": "user", "Assistant": "assistant"}


def _turns(transcript: str, key: str, index: int) -> list[tuple[str, str, int]]:
    """(role, content, offset just past the marker) per turn of a ``\\n\\nHuman: …\\n\\nAssistant: …`` transcript."""
    marks = list(_MARKER.finditer(transcript))
    if not marks or marks[0].start() != 0:
        raise RecordProblem("transcript does not start with '\\n\\nHuman:'", key, index)
    ends = [m.start() for m in marks[1:]] + [len(transcript)]
    return [(m.group(1), transcript[m.end() : end], m.end()) for m, end in zip(marks, ends)]


def _strip_separator(text: str) -> str:
    # "Assistant: text" – the one space after the colon is transcript format, not content.
    return text[1:] if text.startswith(" ") else text


@TRANSFORMS.register("hh_rlhf", tags={ONE_TO_ONE_TAG})
def hh_rlhf(records: Iterable[Record]) -> Iterator[Record]:
    """Transcript pairs → prompt conversation + final responses; ``id`` = 1-based line number.

    Normally chosen and rejected share every turn but the last Assistant one, and the split is at the last
    ``\\n\\nAssistant:``. In a few upstream pairs (5 of 2,312 in harmless-base test) the transcripts diverge
    earlier; the prompt is then the longest shared prefix that ends with a Human turn, and each response is the
    rest of its transcript. ``conversation_split`` records which rule applied.
    """
    for index, record in enumerate(records):
        chosen, rejected = get_field(record, "chosen", index), get_field(record, "rejected", index)
        c_turns, r_turns = _turns(chosen, "chosen", index), _turns(rejected, "rejected", index)
        shared = 0
        while shared < min(len(c_turns), len(r_turns)) - 1 and c_turns[shared][:2] == r_turns[shared][:2]:
            shared += 1
        last_turn_split = shared == len(c_turns) - 1 == len(r_turns) - 1
        while shared > 0 and not (
            c_turns[shared - 1][0] == "Human" and c_turns[shared][0] == "Assistant" == r_turns[shared][0]
        ):
            shared -= 1
        if shared == 0:
            raise RecordProblem("chosen and rejected share no conversation ending with a Human turn", "chosen", index)
        yield {
            "id": index + 1,
            "prompt": [{"role": _ROLES[role], "content": _strip_separator(text)} for role, text, _ in c_turns[:shared]],
            "chosen": _strip_separator(chosen[c_turns[shared][2] :]),
            "rejected": _strip_separator(rejected[r_turns[shared][2] :]),
            "conversation_split": "last_assistant_turn" if last_turn_split else "common_prefix",
        }


# --- RewardMATH ---------------------------------------------------------------------------------------------------


@TRANSFORMS.register("rewardmath_direct")
def rewardmath_direct(records: Iterable[Record]) -> Iterator[Record]:
    """Flat per-solution records grouped by ``problem_id`` → one record per problem with the one ``chosen``
    (correct) solution and the ``rejected`` ones (9 upstream), each a list of steps. Group order = first seen."""
    groups: dict[Any, list[tuple[int, Record]]] = {}
    for index, record in enumerate(records):
        key = get_field(record, "problem_id", index, (int, str))
        groups.setdefault(key, []).append((index, record))
    for problem_id, members in groups.items():
        first_index, first = members[0]
        chosen = [(i, r) for i, r in members if get_field(r, "solution_type", i) == "chosen"]
        if len(chosen) != 1:
            raise RecordProblem(
                f"problem_id {problem_id} has {len(chosen)} solutions with solution_type 'chosen', expected 1",
                "solution_type",
                first_index,
            )
        problem = get_field(first, "problem", first_index)
        for i, r in members:
            if get_field(r, "problem", i) != problem:
                raise RecordProblem(f"problem text differs within problem_id {problem_id}", "problem", i)
        rejected = [(i, r) for i, r in members if r["solution_type"] != "chosen"]
        yield {
            "id": str(problem_id),
            "prompt": problem,
            "chosen": [get_field(chosen[0][1], "eval_solution", chosen[0][0], list)],
            "rejected": [get_field(r, "eval_solution", i, list) for i, r in rejected],
            "answer": first.get("answer"),
            "subject": first.get("subject"),
            "level": first.get("level"),
            "rejected_sources": [r.get("solution_reference") for _, r in rejected],
        }


# --- RMB ----------------------------------------------------------------------------------------------------------


def _rmb_answer(value: Any, key: str, index: int) -> Any:
    if not isinstance(value, dict) or "answer" not in value:
        raise RecordProblem("expected an object with an 'answer'", key, index)
    return value["answer"]


def _rmb_category(record: Record, index: int) -> dict[str, str]:
    parts = get_field(record, "category_path", index).split("/")
    if len(parts) < 3:
        raise RecordProblem("expected '<set>/<goal>/<scenario>'", "category_path", index)
    scenario = "/".join(parts[2:])
    # goal_scenario names one upstream scenario file (e.g. "Helpfulness/Chat/Discussion"): the per-scenario subset
    return {"goal": parts[1], "scenario": scenario, "goal_scenario": f"{parts[1]}/{scenario}"}


@TRANSFORMS.register("rmb_pairwise", tags={ONE_TO_ONE_TAG})
def rmb_pairwise(records: Iterable[Record]) -> Iterator[Record]:
    """RMB pairwise: ``conversation_input`` turns, ``chosen`` / ``reject`` answers; goal and scenario from the
    category path (``Pairwise_set/Harmlessness/S1`` → goal ``Harmlessness``, scenario ``S1``)."""
    for index, record in enumerate(records):
        yield {
            "id": get_field(record, "pair_uid", index, (str, int)),
            "prompt": get_field(record, "conversation_input", index, list),
            "chosen": _rmb_answer(record.get("chosen"), "chosen", index),
            "rejected": _rmb_answer(record.get("reject"), "reject", index),
            **_rmb_category(record, index),
        }


@TRANSFORMS.register("rmb_bon", tags={ONE_TO_ONE_TAG})
def rmb_bon(records: Iterable[Record]) -> Iterator[Record]:
    """RMB best-of-n: ``bon_best`` is the chosen answer, every entry of ``loser_list`` a rejected one."""
    for index, record in enumerate(records):
        losers = get_field(record, "loser_list", index, list)
        yield {
            "id": get_field(record, "bon_uid", index, (str, int)),
            "prompt": get_field(record, "conversation_input", index, list),
            "chosen": [_rmb_answer(record.get("bon_best"), "bon_best", index)],
            "rejected": [_rmb_answer(loser, f"loser_list.{n}", index) for n, loser in enumerate(losers)],
            **_rmb_category(record, index),
        }


# --- RewardBench 2 ------------------------------------------------------------------------------------------------

RB2_TIES = "Ties"


@TRANSFORMS.register("rewardbench2")
def rewardbench2(records: Iterable[Record]) -> Iterator[Record]:
    """RewardBench 2 without its Ties subset (scored best-of-n; Ties has its own protocol and suite).

    A row with more than one correct completion is scored as upstream scores it (allenai/reward-bench
    ``reroll_and_score_dataset``: credit only when the *first* completion has the top score, 1/#max on ties): the
    first correct completion is the chosen one and the other correct ones compete with it as rejected ones;
    ``extra_correct`` says how many were moved, so such rows can be counted (item meta)."""
    for index, record in enumerate(records):
        if get_field(record, "subset", index) == RB2_TIES:
            continue
        chosen = record.get("chosen")
        if isinstance(chosen, list) and len(chosen) > 1:
            rejected = get_field(record, "rejected", index, list)
            yield {
                **record,
                "chosen": chosen[:1],
                "rejected": [*chosen[1:], *rejected],
                "extra_correct": len(chosen) - 1,
            }
        else:
            yield record


@TRANSFORMS.register("rewardbench2_ties")
def rewardbench2_ties(records: Iterable[Record]) -> Iterator[Record]:
    """Only RewardBench 2's Ties subset (``tied:N`` / ``ref:N`` prompts)."""
    for index, record in enumerate(records):
        if get_field(record, "subset", index) == RB2_TIES:
            yield record


#: Names (tags) the loader checks; complete once this module is imported, since every entry is registered above.
ONE_TO_ONE: frozenset[str] = TRANSFORMS.tagged(ONE_TO_ONE_TAG)
WHOLE_SOURCE: frozenset[str] = TRANSFORMS.tagged(WHOLE_SOURCE_TAG)
