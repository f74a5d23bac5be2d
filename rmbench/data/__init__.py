"""Suite → protocol-typed items, with provenance: the one data path of rmbench.

``load_items`` reads each source (local copy under the data dir, else the hub at the pinned revision, or a
generator), applies its named transform, maps fields to items with the builder of the protocol's item type, and
checks what must hold for every item (types, non-empty prompt and responses, unique ids). Every problem is a
``DataError`` naming the file, the record and the field.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from rmbench.catalog import PROTOCOLS
from rmbench.data.builders import BUILDERS, BuildContext, Builder, FieldPath, resolve_fields
from rmbench.data.convert import RecordProblem, optional
from rmbench.data.pairs import identical
from rmbench.data.sources import DATA_DIR_ENV, RawRecords, data_dir_from, read_generated_chunks, read_source
from rmbench.errors import DataError, SuiteError
from rmbench.items import PreferenceItem, response_count_problem

if TYPE_CHECKING:
    from rmbench.suite import Source, Suite

__all__ = ["DATA_DIR_ENV", "LoadedData", "builder_for", "iter_item_chunks", "load_items"]


@dataclass(frozen=True)
class LoadedData:
    """Items of a suite in source order, and per-source provenance (JSON-ready, for results.json)."""

    items: list[Any]
    provenance: list[dict[str, Any]] = field(default_factory=list)


def builder_for(item_type: type, origin: str = "suite") -> Builder:
    if item_type.__name__ not in BUILDERS:
        raise SuiteError(f"{origin}: protocol item type {item_type.__name__} has no data builder yet")
    return BUILDERS.get(item_type.__name__)


def _record_label(record: Mapping[str, Any], locator: str, id_path: str | None) -> str:
    value = optional(record, id_path) if id_path else None
    return f"{locator} (id {value!r})" if isinstance(value, (str, int)) and not isinstance(value, bool) else locator


def _transformed(source: Source, raw: RawRecords, base_dir: Path | None = None) -> tuple[list[dict[str, Any]], list[str]]:
    if source.transform is None:
        return raw.records, raw.locators
    from rmbench.transforms import ONE_TO_ONE, get_transform, is_user_transform

    try:
        records = list(get_transform(source.transform, base_dir)(raw.records))
    except RecordProblem as problem:
        where = raw.locators[problem.index] if problem.index is not None else None
        raise DataError(
            f"{problem.message} (transform '{source.transform}')", source=raw.display, record=where, field=problem.field
        ) from None
    except Exception as error:
        if not is_user_transform(source.transform):
            raise
        raise DataError(
            f"user transform '{source.transform}' failed: {type(error).__name__}: {error}", source=raw.display
        ) from None
    bad = next((n for n, r in enumerate(records) if not isinstance(r, dict)), None)
    if bad is not None:
        raise DataError(
            f"transform '{source.transform}' yielded a {type(records[bad]).__name__} as record #{bad}, not a dict",
            source=raw.display,
        )
    if source.transform in ONE_TO_ONE and len(records) == len(raw.records):
        return records, raw.locators
    return records, [f"#{i} after transform '{source.transform}'" for i in range(len(records))]


def _joined_if_whole_source(source: Source, raws: list[RawRecords]) -> list[RawRecords]:
    """One chunk holding every file's records when the source's transform joins files (``WHOLE_SOURCE``), with
    locators naming the file and per-file sha256 kept in the provenance; otherwise the chunks as read."""
    from rmbench.transforms import WHOLE_SOURCE

    if source.transform not in WHOLE_SOURCE or len(raws) < 2:
        return raws
    records = [record for raw in raws for record in raw.records]
    locators = [f"{raw.display} {locator}" for raw in raws for locator in raw.locators]
    first = raws[0].provenance
    provenance = {
        "kind": first["kind"],
        "path": source.local,
        **({"stands_in_for": first["stands_in_for"]} if "stands_in_for" in first else {}),
        "files": [{k: raw.provenance[k] for k in ("path", "sha256") if k in raw.provenance} for raw in raws],
    }
    return [RawRecords(records, locators, str(source.local), provenance)]


def _source_provenance(
    source: Source, chunks: list[dict[str, Any]], base_dir: Path | None = None
) -> dict[str, Any]:
    common: dict[str, Any] = {"subset": source.subset, "transform": source.transform}
    from rmbench.transforms import is_user_transform, user_transform

    if source.transform is not None and is_user_transform(source.transform):
        common["transform_sha256"] = user_transform(source.transform, base_dir)[1]  # the code, as data provenance
    if len(chunks) == 1:
        return {**chunks[0], **common}
    first = chunks[0]
    return {
        "kind": first["kind"],
        "path": source.local,
        **({"stands_in_for": first["stands_in_for"]} if "stands_in_for" in first else {}),
        "records": sum(c["records"] for c in chunks),
        "items": sum(c["items"] for c in chunks),
        **common,
        "files": [{k: c[k] for k in ("path", "sha256", "records", "items")} for c in chunks],
    }


def load_items(suite: Suite, data_dir: Path | str | None = None, limit: int | None = None) -> LoadedData:
    """Load a suite's items. ``data_dir`` defaults to ``$RMBENCH_DATA_DIR``; ``limit`` keeps the first N items
    in source order (records after the N-th are not read or checked, and later sources are not loaded)."""
    provenance: list[dict[str, Any]] = []
    chunks = iter_item_chunks(suite, data_dir, limit, provenance=provenance)
    items = [item for chunk in chunks for item in chunk]
    return LoadedData(items=items, provenance=provenance)


def iter_item_chunks(
    suite: Suite,
    data_dir: Path | str | None = None,
    limit: int | None = None,
    chunk_items: int | None = None,
    provenance: list[dict[str, Any]] | None = None,
) -> Iterator[list[Any]]:
    """``load_items`` as a stream: the items in source order, in lists of at most ``chunk_items`` (None: one list
    per file or source). A generator source without a transform is generated lazily in chunks (unless a limit is
    given), so its records and items are never all in memory; a file is read whole, then handed out in chunks.
    Item ids are checked unique across all chunks. Each source's provenance entry is appended to ``provenance``
    once the source is exhausted, identical to what ``load_items`` records."""
    if limit is not None and limit < 1:
        raise ValueError("limit must be a positive number of items")
    if chunk_items is not None and chunk_items < 1:
        raise ValueError("chunk_items must be a positive number of items")
    protocol = PROTOCOLS.get(suite.protocol)
    builder = builder_for(protocol.item_type, suite.origin)
    fields, problems = resolve_fields(builder, suite.fields, suite.pairs)
    if problems:
        raise SuiteError("\n".join(f"{suite.origin}: {p}" for p in problems))
    directory = data_dir_from(data_dir)
    provenance = provenance if provenance is not None else []

    count = 0
    where_is: dict[str, str] = {}
    only = suite.only_subsets
    seen_subsets: set[str] = set()
    for number, source in enumerate(suite.sources):
        if limit is not None and count >= limit:
            provenance.append({"kind": "skipped", "source": source.describe(), "reason": f"--limit {limit} reached"})
            continue
        if only is not None and source.subset is not None and suite.fields.get("subset") is None and source.subset not in only:
            provenance.append(
                {"kind": "skipped", "source": source.describe(), "subset": source.subset, "reason": "not in --subset"}
            )
            continue
        context = BuildContext(
            fields=fields,
            meta_fields=suite.meta_fields,
            default_subset=source.subset,
            id_prefix=source.id_prefix,
            allow_empty=source.allow_empty_responses,
            declared=frozenset(suite.fields),
            pairs=suite.pairs,
            protocol=suite.protocol,
            response_counts=protocol.response_counts,
        )
        tally = _Tally()
        chunks: list[tuple[dict[str, Any], int, int, str]] = []  # (raw provenance, records, items, display)
        position = 0
        # With a limit the source is read whole, as load_items does, so provenance (records read, digest) agrees.
        raws = _raw_chunks(
            source, directory, chunk_items if limit is None else None, suite.base_dir,
            origin=suite.origin, field=f"sources[{number}].local",
        )
        for raw in _with_subset_hint(raws, suite, source):
            if limit is not None and count >= limit:
                break
            records, locators = _transformed(source, raw, suite.base_dir)
            room = None if limit is None else limit - count
            # Positions (default ids) count from each file's start; a streamed generator's chunks continue them.
            streamed = bool(chunks) and chunks[-1][0] is raw.provenance
            first = position if streamed else 0
            items = _build(builder, context, records, locators, raw.display, where_is, room, first, tally, only)
            seen_subsets.update(item.subset for item in items)
            position = first + len(records)
            count += len(items)
            chunks.append((raw.provenance, len(records), len(items), raw.display))
            del records, locators
            step = chunk_items or max(len(items), 1)
            for start in range(0, len(items), step):
                yield items[start : start + step]
        entries = []
        for raw_provenance, n_records, n_items, display in _merge_streamed(chunks):
            if n_items == 0 and limit is None:
                raise DataError("no items: the file is empty or every record was filtered out", source=display)
            entries.append({**raw_provenance, "records": n_records, "items": n_items})
        provenance.append({**_source_provenance(source, entries, suite.base_dir), **tally.report()})
    if only is not None and limit is None:
        missing = [name for name in only if name not in seen_subsets]
        if missing:
            raise SuiteError(
                f"--subset {','.join(missing)}: no item of suite '{suite.name}' has this subset "
                f"(subsets loaded: {', '.join(sorted(seen_subsets)) or 'none'})"
            )


def _with_subset_hint(raws: Iterator[RawRecords], suite: Suite, source: Source) -> Iterator[RawRecords]:
    """``raws``; a source that cannot be read, in a suite of several subsets, says how to run the others."""
    try:
        yield from raws
    except DataError as error:
        others = sorted({s.subset for s in suite.sources if s.subset and s.subset != source.subset})
        if source.subset is None or not others or suite.fields.get("subset") is not None:
            raise
        raise DataError(
            f"{error} To run the other subsets without this one: --subset {','.join(others)}"
        ) from None


def _raw_chunks(
    source: Source, directory: Path | None, chunk_items: int | None, suite_dir: Path | None = None, *,
    origin: str | None = None, field: str = "local",
) -> Iterator[RawRecords]:
    """A source's records as read: a generator without a transform in lazily generated chunks when chunking,
    otherwise the files (joined when the transform needs the whole source)."""
    if chunk_items is not None and source.generator is not None and source.transform is None:
        yield from read_generated_chunks(source, directory, chunk_items)
    else:
        raws = read_source(source, directory, suite_dir, origin=origin, field=field)
        yield from _joined_if_whole_source(source, raws)


def _check_response_counts(item: Any, context: BuildContext, display: str, label: str) -> None:
    """An item without the chosen / rejected responses its protocol needs, named by file, record and field."""
    if context.response_counts is None or not isinstance(item, PreferenceItem):
        return
    problem = response_count_problem(item, context.protocol, *context.response_counts)
    if problem is not None:
        field_name, why = problem
        mapped = context.fields.get(field_name)
        raise DataError(why, source=display, record=label, field=(mapped.path if mapped else None) or field_name)


def _merge_streamed(
    chunks: list[tuple[dict[str, Any], int, int, str]],
) -> list[tuple[dict[str, Any], int, int, str]]:
    """One entry per raw source: consecutive chunks of one streamed generator share a provenance dict (by
    identity), so their record and item counts add up to what reading it whole records."""
    merged: list[tuple[dict[str, Any], int, int, str]] = []
    for provenance, n_records, n_items, display in chunks:
        if merged and merged[-1][0] is provenance:
            last = merged[-1]
            merged[-1] = (provenance, last[1] + n_records, last[2] + n_items, display)
        else:
            merged.append((provenance, n_records, n_items, display))
    return merged


def _build(
    builder: Builder,
    context: BuildContext,
    records: list[dict[str, Any]],
    locators: list[str],
    display: str,
    where_is: dict[str, str],
    room: int | None,
    first_position: int = 0,
    tally: _Tally | None = None,
    only: list[str] | None = None,
) -> list[Any]:
    """Items of ``records`` (at most ``room``), each id checked against every id seen so far (``where_is``)."""
    id_path: FieldPath = context.fields["id"]
    tally = tally if tally is not None else _Tally()
    items: list[Any] = []
    for position, (record, locator) in enumerate(zip(records, locators), start=first_position):
        if room is not None and len(items) >= room:
            break
        label = _record_label(record, locator, id_path.path)
        try:
            built = builder.build(record, context, position)
        except RecordProblem as problem:
            raise DataError(problem.message, source=display, record=label, field=problem.field) from None
        built = built if isinstance(built, list) else [built]
        if not built:
            tally.without_items += 1
        here = f"{display} {locator}"
        if only is not None:
            built = [item for item in built if item.subset in only]
        for item in built[: None if room is None else room - len(items)]:
            if item.id in where_is:
                generated = id_path.path is None or "id" not in context.declared
                raise DataError(
                    f"duplicate item id '{item.id}', also at {where_is[item.id]}"
                    + (
                        "; ids generated from record positions restart in each file: give each source an "
                        "id_prefix or map fields.id"
                        if generated
                        else ""
                    ),
                    source=display,
                    record=label,
                    field=id_path.path or "id",
                )
            where_is[item.id] = here
            _check_response_counts(item, context, display, label)
            if isinstance(item, PreferenceItem) and identical(item.chosen, item.rejected):
                tally.identical += 1
                if len(tally.identical_examples) < 3:
                    tally.identical_examples.append(here)
            items.append(item)
    return items


@dataclass
class _Tally:
    """Per-source counts reported in provenance (only when non-zero, so ordinary sources are unchanged)."""

    identical: int = 0
    identical_examples: list[str] = field(default_factory=list)
    without_items: int = 0

    def report(self) -> dict[str, Any]:
        out: dict[str, Any] = {}
        if self.identical:
            out["identical_pairs"] = self.identical
            out["identical_pair_examples"] = list(self.identical_examples)
        if self.without_items:
            out["records_without_pairs"] = self.without_items
        return out
