"""The run directory: the unit of output that reports, leaderboards and the gate read.

    results.json    the numbers and everything needed to trust them (deterministic: same inputs, same bytes)
    scores.parquet  one row per unique request: raw scores, so metrics can be recomputed without a model
    items.parquet   one row per evaluated item with its per-item outcomes (paired comparisons use it)
    report.md       human-readable tables
    run.json        this execution: run id, UTC times, timings, cache hits (varies run to run, so kept apart)

It is published whole (``rmbench.atomic.publish_directory``): built aside, then swapped in, so a reader sees the
earlier run or this one, never this run's items beside the earlier run's results.json.
"""

from __future__ import annotations

import json
import shutil
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

import pandas as pd

from rmbench.atomic import json_document, publish_directory
from rmbench.protocols.base import ProtocolResult
from rmbench.requests import Score, ScoreRequest, unique_requests
from rmbench.results.io import RESULTS as RESULTS  # re-exported: results.json is read through rmbench.results.io
from rmbench.results.io import as_results, dumps_results
from rmbench.results.io import read_results as read_results
from rmbench.results.markdown import markdown_report
from rmbench.results.schema import RunResults

SCORES = "scores.parquet"
ITEMS = "items.parquet"
REPORT = "report.md"
EXECUTION = "run.json"
#: Plots drawn into a run directory after it is published (``rmbench.report.perturbations``, ``.curves``).
PLOTS = ("perturbations.png", "overoptimization.png")
#: Everything a run directory of rmbench's holds; a directory with anything else is not swapped away whole.
RUN_DIRECTORY_FILES = frozenset({SCORES, ITEMS, REPORT, EXECUTION, RESULTS, *PLOTS})


def is_run_file(name: str) -> bool:
    """A run directory's own file, or a hidden temporary file an interrupted rmbench write left in one."""
    return name in RUN_DIRECTORY_FILES or (name.startswith(".") and name.endswith(".tmp"))


def write_run_directory(
    out: Path,
    results: RunResults | Mapping[str, Any],
    result: ProtocolResult,
    requests: Sequence[ScoreRequest] | Path,
    scores: Mapping[str, Score],
    execution: dict[str, Any],
) -> None:
    """Write every file of the run directory; results.json lands last, so its presence means the directory is
    complete. ``requests`` may instead be a scores.parquet already written while scoring (a streamed run, see
    ``rmbench.runner.loop``): it is moved into place with the other files.

    ``results`` is the typed contract (``rmbench.results.io.build_results``) or, from writers not yet switched to
    it, the document without its schema version, rmbench version and environment; either way results.json is
    written only through ``RunResults``, so a document that breaks the contract fails here, before any file."""
    document = as_results(results)
    if isinstance(requests, Path):
        written = requests  # moved, not renamed: it may come from another file system (beside the cache)
        write_scores: Callable[[Path], object] = lambda p: shutil.move(written, p)  # noqa: E731
    else:
        write_scores = lambda p: write_scores_parquet(p, requests, scores)  # noqa: E731
    _write_together(
        out,
        {
            SCORES: write_scores,
            ITEMS: lambda p: result.per_item.to_parquet(p, index=False),
            REPORT: lambda p: p.write_text(markdown_report(document), encoding="utf-8"),
            EXECUTION: lambda p: p.write_text(json_document(execution), encoding="utf-8"),
            RESULTS: lambda p: p.write_text(dumps_results(document), encoding="utf-8"),
        },
    )


def write_imported_run(out: Path, results: RunResults | Mapping[str, Any], result: ProtocolResult) -> None:
    """A run directory for scores computed elsewhere (published score files): no scores.parquet, no run.json."""
    document = as_results(results)
    _write_together(
        out,
        {
            ITEMS: lambda p: result.per_item.to_parquet(p, index=False),
            REPORT: lambda p: p.write_text(markdown_report(document), encoding="utf-8"),
            RESULTS: lambda p: p.write_text(dumps_results(document), encoding="utf-8"),
        },
    )


def _write_together(out: Path, writers: dict[str, Callable[[Path], object]]) -> None:
    """Write every file (name → function writing it to a path) into a directory built aside, then publish it in
    place of ``out`` whole: a run that fails or is killed while writing leaves the earlier run whole, never mixed."""

    def build(staging: Path) -> None:
        for name, write in writers.items():
            write(staging / name)

    publish_directory(out, build, own=is_run_file, last=RESULTS)


#: Rows of scores.parquet built at a time: a 100k-pair suite's prompt JSON never sits in memory all at once.
SCORES_CHUNK_ROWS = 16_384


def write_scores_parquet(
    path: Path, requests: Sequence[ScoreRequest], scores: Mapping[str, Score], chunk_rows: int | None = None
) -> None:
    """scores.parquet, one row group per ``chunk_rows`` unique requests; reads back as ``scores_frame`` would."""
    with ScoresParquetWriter(path, chunk_rows) as writer:
        writer.write(unique_requests(list(requests)), scores)


class ScoresParquetWriter:
    """scores.parquet written in pieces: ``write`` appends rows (as ``scores_frame`` builds them) in row groups of
    ``rows_per_group``, so no more than one group's prompt JSON is in memory at once."""

    def __init__(self, path: Path, rows_per_group: int | None = None):
        import pyarrow as pa
        import pyarrow.parquet as pq

        self._pa = pa
        self.rows_per_group = rows_per_group or SCORES_CHUNK_ROWS
        self.schema = pa.schema(
            [
                ("request", pa.string()),
                ("prompt", pa.string()),
                ("response", pa.string()),
                ("score", pa.float64()),
                ("step_scores", pa.list_(pa.float64())),
                ("n_tokens", pa.int64()),
                ("truncated", pa.bool_()),
            ]
        )
        self._writer = pq.ParquetWriter(path, self.schema)

    def write(self, requests: Sequence[ScoreRequest], scores: Mapping[str, Score]) -> None:
        """Append the rows of ``requests`` (unique; the caller de-duplicates)."""
        for start in range(0, len(requests), self.rows_per_group):
            frame = scores_frame(requests[start : start + self.rows_per_group], scores)
            self._writer.write_table(self._pa.Table.from_pandas(frame, schema=self.schema, preserve_index=False))

    def __enter__(self) -> ScoresParquetWriter:
        return self

    def __exit__(self, *exc: object) -> None:
        self._writer.close()


def scores_frame(requests: Sequence[ScoreRequest], scores: Mapping[str, Score]) -> pd.DataFrame:
    rows = []
    for request in unique_requests(list(requests)):
        score = scores[request.key]
        rows.append(
            {
                "request": request.key,
                "prompt": json.dumps(list(map(list, request.prompt)), ensure_ascii=False),
                "response": request.response,
                "score": score.value,
                "step_scores": list(score.steps) if score.steps else None,
                "n_tokens": score.n_tokens,
                "truncated": score.truncated,
            }
        )
    return pd.DataFrame(rows)
