"""Record transforms that assemble best-of-n sample pools (``SampleSet`` records) from per-sample files.

Best-of-n data is usually published one file per sample index (file ``i`` holds sample ``i`` for every prompt);
a pool is the join of all files on the prompt id. These transforms are registered ``whole_source`` (as lazy entries
of ``rmbench.transforms.TRANSFORMS``): the loader hands them the records of every file a source names at once,
instead of file by file.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Iterator

from rmbench.data.convert import RecordProblem
from rmbench.transforms import Record, get_field

_SAMPLE_INDEX = re.compile(r"\.(\d+)$")


def _sample_index(record: Record, index: int) -> int:
    generator = get_field(record, "generator_2", index)
    match = _SAMPLE_INDEX.search(generator)
    if match is None:
        raise RecordProblem(f"expected '<model>.<sample index>', got {generator!r}", "generator_2", index)
    return int(match.group(1))


def _gold(record: Record, index: int) -> float:
    preference = get_field(record, "preference", index, (int, float))
    if isinstance(preference, bool) or not 1.0 <= preference <= 2.0:
        raise RecordProblem(f"expected a preference in [1, 2], got {preference!r}", "preference", index)
    return float(preference) - 1.0


def alpacaeval_bon(records: Iterable[Record]) -> Iterator[Record]:
    """AlpacaEval annotation records (one file per sample index) → one pool per prompt.

    Input: AlpacaEval 2 ``annotations.json`` rows judging ``output_2`` (sample ``i`` of the policy, ``generator_2``
    = ``<model>.<i>``) against a reference ``output_1``. Output per prompt ``id``: the ``instruction`` as the
    prompt, the samples as ``responses`` in sample-index order, ``gold`` = ``preference − 1`` (the judge's
    probability that the sample beats the reference), ``sample_index`` and the AlpacaEval ``dataset``. Every
    prompt must have the same sample indices, each once, and one instruction text; pools are in first-seen order.
    """
    pools: dict[str, dict[int, tuple[int, Record]]] = {}
    for index, record in enumerate(records):
        prompt_id = str(get_field(record, "id", index, (int, str)))
        sample = _sample_index(record, index)
        pool = pools.setdefault(prompt_id, {})
        if sample in pool:
            raise RecordProblem(f"prompt id {prompt_id} has sample {sample} twice", "generator_2", index)
        pool[sample] = (index, record)
    expected: list[int] | None = None
    for prompt_id, pool in pools.items():
        samples = sorted(pool)
        first_index, first = pool[samples[0]]
        if expected is None:
            expected = samples
        elif samples != expected:
            raise RecordProblem(
                f"prompt id {prompt_id} has samples {_ranges(samples)}, the first prompt has {_ranges(expected)}: "
                "every pool must hold the same samples",
                "generator_2",
                first_index,
            )
        instruction = get_field(first, "instruction", first_index)
        for index, record in pool.values():
            if get_field(record, "instruction", index) != instruction:
                raise RecordProblem(f"instruction differs within prompt id {prompt_id}", "instruction", index)
        yield {
            "id": prompt_id,
            "prompt": instruction,
            "responses": [get_field(pool[s][1], "output_2", pool[s][0]) for s in samples],
            "gold": [_gold(pool[s][1], pool[s][0]) for s in samples],
            "sample_index": samples,
            "dataset": first.get("dataset"),
        }


def _ranges(values: list[int]) -> str:
    """``[0, 1, 2, 5]`` → ``'0-2, 5'`` (short messages for pools of hundreds)."""
    parts, start = [], None
    for position, value in enumerate(values):
        if start is None:
            start = value
        if position + 1 == len(values) or values[position + 1] != value + 1:
            parts.append(f"{start}" if start == value else f"{start}-{value}")
            start = None
    return ", ".join(parts)
