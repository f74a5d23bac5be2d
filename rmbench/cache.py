"""Content-addressed score cache in SQLite (WAL mode).

Key = (model fingerprint, request key). A score is written as soon as its batch is done, in its own transaction, so a
run killed at any point resumes from the last finished batch, and concurrent runs sharing one cache never corrupt it.
Rows are immutable: INSERT OR IGNORE keeps the first score written, so two processes racing on the same request
cannot leave duplicates.
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from rmbench.requests import Score

_SCHEMA = """
CREATE TABLE IF NOT EXISTS scores (
    model      TEXT NOT NULL,
    request    TEXT NOT NULL,
    value      REAL,
    steps      TEXT,
    n_tokens   INTEGER NOT NULL,
    truncated  INTEGER NOT NULL,
    hidden     BLOB,
    PRIMARY KEY (model, request)
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS engine_facts (
    model      TEXT NOT NULL,
    name       TEXT NOT NULL,
    value      TEXT NOT NULL,
    PRIMARY KEY (model, name)
) WITHOUT ROWID;
"""

_LOOKUP_CHUNK = 500  # SQLite's bound-parameter limit is 999 on old builds


class ScoreCache:
    """Maps (model fingerprint, request key) to a stored ``Score``."""

    def __init__(self, path: Path, timeout_s: float = 60.0):
        path.parent.mkdir(parents=True, exist_ok=True)
        self.path = path
        self._db = sqlite3.connect(path, timeout=timeout_s, isolation_level=None, check_same_thread=False)
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute(f"PRAGMA busy_timeout={int(timeout_s * 1000)}")
        self._db.execute("PRAGMA synchronous=NORMAL")
        self._db.executescript(_SCHEMA)

    def get_many(self, model: str, keys: Sequence[str], *, need_hidden: bool = False) -> dict[str, Score]:
        """Cached scores for ``keys`` (missing keys are absent). With ``need_hidden``, rows without a hidden state
        count as missing, so they get scored again with one."""
        found: dict[str, Score] = {}
        for start in range(0, len(keys), _LOOKUP_CHUNK):
            chunk = list(keys[start : start + _LOOKUP_CHUNK])
            marks = ",".join("?" * len(chunk))
            rows = self._db.execute(
                f"SELECT request, value, steps, n_tokens, truncated, hidden FROM scores "
                f"WHERE model = ? AND request IN ({marks})",
                [model, *chunk],
            )
            for request, value, steps, n_tokens, truncated, hidden in rows:
                if need_hidden and hidden is None:
                    continue
                found[request] = Score(
                    value=float("nan") if value is None else value,
                    steps=tuple(json.loads(steps)) if steps else (),
                    n_tokens=n_tokens,
                    truncated=bool(truncated),
                    hidden=None if hidden is None else np.frombuffer(hidden, dtype=np.float32),
                )
        return found

    def put_many(self, model: str, scored: Iterable[tuple[str, Score]]) -> None:
        """Store scores in one transaction. NaN is stored as NULL (SQLite has no NaN) and read back as NaN."""
        rows = [
            (
                model,
                key,
                score.value if score.value == score.value else None,
                json.dumps(list(score.steps)) if score.steps else None,
                score.n_tokens,
                int(score.truncated),
                None if score.hidden is None else np.asarray(score.hidden, dtype=np.float32).tobytes(),
            )
            for key, score in scored
        ]
        if not rows:
            return
        with self._db:  # one transaction: a batch is cached whole or not at all
            self._db.execute("BEGIN IMMEDIATE")
            self._db.executemany(
                "INSERT INTO scores VALUES (?, ?, ?, ?, ?, ?, ?) "
                "ON CONFLICT(model, request) DO UPDATE SET hidden = excluded.hidden "
                "WHERE scores.hidden IS NULL AND excluded.hidden IS NOT NULL",
                rows,
            )

    def get_fact(self, model: str, name: str) -> Any:
        """A fact recorded about the engine of fingerprint ``model`` (``info``, ``default_batch_tokens``, ``parity``),
        or None: what results.json takes from a live engine, so a fully cached re-run needs no model."""
        row = self._db.execute("SELECT value FROM engine_facts WHERE model = ? AND name = ?", (model, name)).fetchone()
        return None if row is None else json.loads(row[0])

    def put_fact(self, model: str, name: str, value: Any) -> None:
        """Record a fact (JSON) once: the first value written is kept, so every later run reports the same one."""
        self._db.execute(
            "INSERT OR IGNORE INTO engine_facts VALUES (?, ?, ?)", (model, name, json.dumps(value))
        )

    def count(self, model: str | None = None) -> int:
        if model is None:
            return self._db.execute("SELECT COUNT(*) FROM scores").fetchone()[0]
        return self._db.execute("SELECT COUNT(*) FROM scores WHERE model = ?", (model,)).fetchone()[0]

    def close(self) -> None:
        self._db.close()

    def __enter__(self) -> ScoreCache:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
