"""Reading one suite source into plain records: a local file, the hub, or a generator, with its provenance.

Local files are read with the standard library (json, gzip) and pyarrow (parquet), not ``datasets``: its Arrow
schema inference unifies records (a missing key becomes null, mixed types fail with an opaque ArrowInvalid) and
so erases exactly what the per-record error messages must name, it cannot say which line of a JSONL file is bad,
and it writes a cache copy of every file. Hub datasets go through ``datasets.load_dataset`` at a pinned revision.
"""

from __future__ import annotations

import glob
import gzip
import hashlib
import io
import itertools
import json
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from rmbench.errors import DataError

if TYPE_CHECKING:
    from rmbench.suite import HubRef, Source

DATA_DIR_ENV = "RMBENCH_DATA_DIR"
NEWLINE = b"\n"
FORMATS = (".jsonl.gz", ".json.gz", ".jsonl", ".json", ".parquet")


@dataclass
class RawRecords:
    """Records of one source, where each came from (for messages), and provenance for results.json."""

    records: list[dict[str, Any]]
    locators: list[str]
    display: str
    provenance: dict[str, Any]


def data_dir_from(data_dir: Path | str | None) -> Path | None:
    """``data_dir``, else ``$RMBENCH_DATA_DIR`` (read through ``rmbench.runner.config``, like every RMBENCH_* variable)."""
    from rmbench.settings import env_settings

    value = data_dir if data_dir is not None else env_settings().data_dir
    return Path(value).expanduser() if value else None


# --- local files --------------------------------------------------------------------------------------------------


def _format_of(path: Path) -> str:
    name = path.name.lower()
    for suffix in FORMATS:
        if name.endswith(suffix):
            return suffix
    raise DataError(f"unsupported file type; expected one of {', '.join(FORMATS)}", source=str(path))


def _decode(data: bytes, display: str, record: str | None = None) -> str:
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as error:
        where = record or f"line {data.count(NEWLINE, 0, error.start) + 1}"
        raise DataError(
            f"not valid UTF-8 (byte 0x{data[error.start]:02x} at offset {error.start}); re-encode the file as UTF-8",
            source=display,
            record=where,
        ) from None


def _object(value: Any, display: str, record: str) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise DataError(f"expected a JSON object, got {type(value).__name__}", source=display, record=record)
    field = _lone_surrogate(value)
    if field is not None:
        raise DataError(
            "text holds a lone UTF-16 surrogate (a JSON escape such as \\ud800 without its pair), which is not a "
            "character; fix or remove it",
            source=display, record=record, field=field,
        )
    return value


def _lone_surrogate(value: Any, path: str = "") -> str | None:
    """Where a string (key or value) that UTF-8 cannot encode is, as a dotted field path; None when all are text."""
    if isinstance(value, str):
        try:
            value.encode("utf-8")
        except UnicodeEncodeError:
            return path or "(value)"
        return None
    children: Any = value.items() if isinstance(value, dict) else enumerate(value) if isinstance(value, list) else ()
    for key, child in children:
        where = f"{path}[{key}]" if isinstance(key, int) else f"{path}.{key}" if path else str(key)
        if isinstance(key, str) and _lone_surrogate(key) is not None:
            return where
        found = _lone_surrogate(child, where)
        if found is not None:
            return found
    return None


def _json_lines(data: bytes, display: str) -> tuple[list[dict[str, Any]], list[str]]:
    records, locators = [], []
    for number, raw in enumerate(data.split(NEWLINE), start=1):
        if not raw.strip():
            continue
        where = f"line {number}"
        text = _decode(raw, display, where)
        try:
            value = json.loads(text)
        except json.JSONDecodeError as error:
            raise DataError(
                f"invalid JSON: {error.msg} at column {error.colno}", source=display, record=where
            ) from None
        records.append(_object(value, display, where))
        locators.append(where)
    return records, locators


def _json_array(data: bytes, display: str) -> tuple[list[dict[str, Any]], list[str]]:
    text = _decode(data, display)
    try:
        value = json.loads(text)
    except json.JSONDecodeError as error:
        if error.msg == "Extra data":  # a .json file holding JSON Lines, as some uploads do
            return _json_lines(data, display)
        raise DataError(
            f"invalid JSON at line {error.lineno}, column {error.colno}: {error.msg}", source=display
        ) from None
    if not isinstance(value, list):
        raise DataError(
            f"expected a JSON array of records at the top level, got {type(value).__name__}", source=display
        )
    return [_object(v, display, f"#{i}") for i, v in enumerate(value)], [f"#{i}" for i in range(len(value))]


def read_file(path: Path) -> tuple[list[dict[str, Any]], list[str], str]:
    """(records, locators, sha256 of the file as stored). Locators are ``line N`` (JSONL) or ``#i`` (array index)."""
    display, kind = str(path), _format_of(path)
    raw = path.read_bytes()
    sha256 = hashlib.sha256(raw).hexdigest()
    data = raw
    if kind.endswith(".gz"):
        try:
            data = gzip.decompress(raw)
        except (OSError, EOFError) as error:
            raise DataError(f"not a readable gzip file: {error}", source=display) from None
    if kind == ".parquet":
        import pyarrow.parquet as pq

        try:
            records = pq.read_table(io.BytesIO(data)).to_pylist()
        except Exception as error:  # pyarrow raises several unrelated types for a damaged file
            raise DataError(f"not a readable parquet file: {error}", source=display) from None
        return records, [f"row {i}" for i in range(len(records))], sha256
    if kind.startswith(".jsonl"):
        return (*_json_lines(data, display), sha256)
    return (*_json_array(data, display), sha256)


def resolve_local(pattern: str, data_dir: Path | None) -> list[Path] | None:
    """The files a source's ``local`` names (sorted when a glob), or None when there are none."""
    path = Path(pattern).expanduser()
    if not path.is_absolute():
        if data_dir is None:
            return None
        path = data_dir / path
    if glob.has_magic(str(path)):
        found = sorted(Path(p) for p in glob.glob(str(path), recursive=True) if Path(p).is_file())
        return found or None
    return [path] if path.is_file() else None


def read_local(source: Source, path: Path, data_dir: Path | None) -> RawRecords:
    records, locators, sha256 = read_file(path)
    if source.sha256 is not None and sha256 != source.sha256:
        raise DataError(
            f"sha256 {sha256} differs from the suite's pinned {source.sha256}: this is not the file the suite was "
            "written for (get the pinned copy, or change 'sha256' in the suite and bump its version)",
            source=str(path),
        )
    # Relative to the data dir, so results from two machines with the same files record the same provenance.
    shown = path.relative_to(data_dir) if data_dir is not None and path.is_relative_to(data_dir) else path
    provenance: dict[str, Any] = {"kind": "local", "path": shown.as_posix(), "sha256": sha256}
    if source.hub is not None:
        provenance["stands_in_for"] = {"hub": source.hub.id, "revision": source.hub.revision, "split": source.hub.split}
    return RawRecords(records, locators, str(path), provenance)


# --- hub and generators -------------------------------------------------------------------------------------------


def _offline_hint(source: Source, data_dir: Path | None) -> str:
    if not source.local:
        return (
            "This source has no local copy declared; to run offline, add 'local: PATH' to the suite and pass "
            f"--data-dir DIR (or set {DATA_DIR_ENV}) where DIR/PATH holds the copy."
        )
    where = (
        str(data_dir / source.local) if data_dir is not None and not Path(source.local).is_absolute() else source.local
    )
    looked = (
        f"no local copy at {where}" if data_dir is not None or Path(source.local).is_absolute() else "no data dir given"
    )
    return (
        f"To run offline, put the local copy at <data dir>/{source.local} and pass --data-dir DIR or set "
        f"{DATA_DIR_ENV}, or put it beside the suite file ({looked})."
    )


def _where(records: list[dict[str, Any]], where: dict[str, Any] | None) -> list[dict[str, Any]]:
    if not where:
        return records
    wanted = {key: value if isinstance(value, list) else [value] for key, value in where.items()}
    return [r for r in records if all(r.get(key) in values for key, values in wanted.items())]


def read_hub(source: Source, data_dir: Path | None) -> RawRecords:
    hub: HubRef = source.hub  # type: ignore[assignment]
    display = f"hub dataset {hub.id}@{hub.revision} (split {hub.split})"
    try:
        import datasets

        dataset = datasets.load_dataset(
            hub.id,
            name=hub.config,
            revision=hub.revision,
            split=hub.split,
            data_dir=hub.data_dir,
            data_files=hub.data_files,
        )
    except Exception as error:  # offline, unknown id/revision/split: all end the same way for the user
        reason = f"{type(error).__name__}: {error}".strip()
        raise DataError(
            f"cannot load {display} from the Hugging Face hub ({reason}). The hub may be unreachable. "
            + _offline_hint(source, data_dir)
        ) from None
    records = _where(dataset.to_list(), hub.where)
    provenance = {
        "kind": "hub",
        "hub": hub.id,
        "revision": hub.revision,
        "split": hub.split,
        "config": hub.config,
        "data_dir": hub.data_dir,
        "data_files": hub.data_files,
        "where": hub.where,
        "fingerprint": getattr(dataset, "_fingerprint", None),
    }
    return RawRecords(records, [f"row {i}" for i in range(len(records))], display, provenance)


def read_generated(source: Source, data_dir: Path | None = None) -> RawRecords:
    from rmbench.generators import generate

    generator = source.generator
    assert generator is not None
    records = generate(generator.name, generator.params, data_dir=data_dir)
    digest = _records_digest(records)
    provenance = {
        "kind": "generator",
        "generator": generator.name,
        "params": generator.params,
        "sha256": digest,
    }
    display = f"generator {generator.name}"
    return RawRecords(records, [f"#{i}" for i in range(len(records))], display, provenance)


def read_generated_chunks(source: Source, data_dir: Path | None, chunk_records: int) -> Iterator[RawRecords]:
    """``read_generated`` in pieces of at most ``chunk_records`` records, generated lazily, so a large generated
    suite streams. The chunks share one provenance dict, whose ``sha256`` (the same digest as ``read_generated``'s)
    is filled in once the last chunk has been consumed."""
    from rmbench.generators import iter_generate

    generator = source.generator
    assert generator is not None
    provenance: dict[str, Any] = {"kind": "generator", "generator": generator.name, "params": generator.params}
    display = f"generator {generator.name}"
    digest = _RecordsDigest()
    records = iter_generate(generator.name, generator.params, data_dir=data_dir)
    start = 0
    while chunk := list(itertools.islice(records, chunk_records)):
        digest.update(chunk)
        yield RawRecords(chunk, [f"#{i}" for i in range(start, start + len(chunk))], display, provenance)
        start += len(chunk)
    provenance["sha256"] = digest.hexdigest()


class _RecordsDigest:
    """sha256 of ``json.dumps(records, sort_keys=True)``, fed record by record, so a 100k-record generated suite is
    never held in memory as one string (nor, streamed, as one list)."""

    def __init__(self) -> None:
        self._hash = hashlib.sha256(b"[")
        self._count = 0

    def update(self, records: Iterable[dict[str, Any]]) -> None:
        for record in records:
            text = json.dumps(record, sort_keys=True, ensure_ascii=False)
            self._hash.update(((", " if self._count else "") + text).encode("utf-8"))
            self._count += 1

    def hexdigest(self) -> str:
        final = self._hash.copy()
        final.update(b"]")
        return final.hexdigest()


def _records_digest(records: list[dict[str, Any]]) -> str:
    digest = _RecordsDigest()
    digest.update(records)
    return digest.hexdigest()


def read_source(
    source: Source, data_dir: Path | None, suite_dir: Path | None = None, *, origin: str | None = None,
    field: str = "local",
) -> list[RawRecords]:
    """Local copy when present (one chunk per file of a glob), else the hub; a generator source generates. A
    relative ``local`` is looked up under the data dir, then beside the suite file (``suite_dir``): a suite written
    for one's own file can sit next to it and run without --data-dir. A missing copy is named as ``field`` of the
    suite file ``origin`` (``sources[0].local``)."""
    if source.generator is not None:
        return [read_generated(source, data_dir)]
    files = resolve_local(source.local, data_dir) if source.local else None
    if files:
        return [read_local(source, path, data_dir) for path in files]
    beside = resolve_local(source.local, suite_dir) if source.local and suite_dir is not None else None
    if beside:
        return [read_local(source, path, suite_dir) for path in beside]
    if source.hub is not None:
        return [read_hub(source, data_dir)]
    raise DataError(
        f"local data file not found and the source declares no hub dataset. {_offline_hint(source, data_dir)}",
        source=origin, field=field if source.local else None,
    )
