"""The suite YAML schema: the pydantic models a declaration validates into, with field-level checks and messages
that name the known choices. Reading files, locating errors by line and the registry of suites are ``rmbench.suite``.
"""

from __future__ import annotations

import glob
import hashlib
import json
from typing import Any, get_args, get_origin

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    PrivateAttr,
    ValidationError,
    field_validator,
    model_serializer,
    model_validator,
)

from rmbench.catalog import PROTOCOLS
from rmbench.data.builders import KNOWN_FIELDS, RESPONSE_FIELDS, did_you_mean
from rmbench.data.pairs import PairsSpec
from rmbench.errors import SuiteError
from rmbench.metrics.options import MetricOptions

Scalar = str | int | float | bool


def _unknown(kind: str, value: str, options: Any) -> str:
    return f"unknown {kind} {value!r}; expected one of {', '.join(sorted(options))}{did_you_mean(value, options)}"


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class FieldSpec(_Strict):
    """Where an item field comes from. Written as a plain record key path, or as ``{path, steps}``."""

    path: str = Field(description="Record key, dotted for nested values (``a.b``, list positions ``a.0``).")
    steps: bool = Field(False, description="A list of strings here is ONE step-split solution, not several responses.")

    @model_validator(mode="before")
    @classmethod
    def _from_string(cls, value: Any) -> Any:
        return {"path": value} if isinstance(value, str) else value

    @model_serializer
    def _compact(self) -> Any:
        return {"path": self.path, "steps": True} if self.steps else self.path


class HubRef(_Strict):
    """A Hugging Face hub dataset, loaded with ``datasets.load_dataset`` at a pinned revision."""

    id: str = Field(description="Hub dataset id, e.g. ``allenai/reward-bench``.")
    revision: str = Field(description="Commit sha of the dataset repository (a branch name only with a TODO to pin).")
    split: str = Field(description="Split to load, e.g. ``test``.")
    config: str | None = Field(None, description="Dataset configuration name (``name=`` of ``load_dataset``).")
    data_dir: str | None = Field(None, description="Sub-directory of the repository to load (``data_dir=``).")
    data_files: Any = Field(None, description="Files to load (``data_files=``): a path, a list, or split → paths.")
    where: dict[str, Scalar | list[Scalar]] | None = Field(
        None,
        description="Keep hub records whose key equals the value (or is in the list), e.g. one domain of a file "
        "that ships all domains. Applies to hub records only: local copies are per-domain already.",
    )

    @field_validator("data_files")
    @classmethod
    def _data_files(cls, value: Any) -> Any:
        def paths(v: Any) -> bool:
            return isinstance(v, str) or (isinstance(v, list) and all(isinstance(p, str) for p in v))

        if value is None or paths(value) or (isinstance(value, dict) and all(paths(v) for v in value.values())):
            return value
        raise ValueError(f"expected a path, a list of paths or a mapping split -> paths, got {value!r}")


class GeneratorRef(_Strict):
    """A procedural generator from ``rmbench.generators`` with its parameters."""

    name: str = Field(description="Registered generator name.")
    params: dict[str, Any] = Field(default_factory=dict, description="Generator parameters (validated by it).")

    @model_validator(mode="after")
    def _validate_params(self) -> GeneratorRef:
        from rmbench.generators import GENERATORS, get_generator

        if self.name not in GENERATORS:
            raise ValueError(_unknown("generator", self.name, GENERATORS))
        try:
            model = get_generator(self.name).Params
            params = model.model_validate(self.params)
        except ValidationError as error:
            raise ValueError("; ".join(describe_error(e, model, prefix="params") for e in error.errors())) from None
        # Store the full parameter set so a default written out explicitly does not change the content hash.
        self.params = params.model_dump(mode="json")
        return self


class Source(_Strict):
    """Where records come from: a local file (with a hub fallback), the hub alone, or a generator."""

    subset: str | None = Field(
        None, description="Subset of this source's items (a ``fields.subset`` mapping overrides per record)."
    )
    local: str | None = Field(
        None,
        description="File under the data dir (``--data-dir`` / ``RMBENCH_DATA_DIR``) or absolute; "
        "json, jsonl, json.gz, jsonl.gz or parquet; a glob pattern reads several files in sorted order.",
    )
    sha256: str | None = Field(
        None, pattern=r"^[0-9a-f]{64}$", description="Expected sha256 of the local file; a different file is an error."
    )
    hub: HubRef | None = Field(None, description="The hub dataset this source is (used when no local copy is found).")
    generator: GeneratorRef | None = Field(None, description="Generate the records instead of reading them.")
    transform: str | None = Field(
        None,
        description="Named record transform from ``rmbench.transforms``, or a user function ``file.py:function`` "
        "(relative to the suite file, or in an ``RMBENCH_PLUGINS`` directory).",
    )
    id_prefix: str = Field("", description="Prepended to item ids, for sources whose ids overlap (e.g. ``chat:``).")
    allow_empty_responses: bool = Field(
        False, description="Accept empty responses (say why in a comment: e.g. upstream answers that are blank)."
    )

    @field_validator("transform")
    @classmethod
    def _known_transform(cls, value: str | None) -> str | None:
        from rmbench.transforms import TRANSFORMS, is_user_transform

        if value is not None and value not in TRANSFORMS and not is_user_transform(value):
            raise ValueError(_unknown("transform", value, TRANSFORMS))
        return value

    @model_validator(mode="after")
    def _one_kind(self) -> Source:
        if self.generator is not None and (self.local or self.hub):
            raise ValueError("a source is either a generator or data (local and/or hub), not both")
        if self.generator is None and not (self.local or self.hub):
            raise ValueError("a source needs 'local', 'hub' or 'generator'")
        if self.sha256 is not None and (self.local is None or glob.has_magic(self.local)):
            raise ValueError("'sha256' pins one local file: it needs 'local' naming a single file, not a pattern")
        return self

    def describe(self) -> str:
        """One line for listings: ``local a.json | hub org/ds@abc1234`` or ``generator name(k=v)``."""
        if self.generator is not None:
            args = ", ".join(f"{k}={v}" for k, v in self.generator.params.items() if not isinstance(v, (list, dict)))
            return f"generator {self.generator.name}({args})"
        parts = [f"local {self.local}"] if self.local else []
        if self.hub is not None:
            parts.append(f"hub {self.hub.id}@{self.hub.revision[:12]}")
        return " | ".join(parts)


class Suite(_Strict):
    """A declarative benchmark: sources → items (via field mapping) → protocol → metrics."""

    model_config = ConfigDict(extra="forbid", coerce_numbers_to_str=True)

    name: str = Field(pattern=r"^[a-z0-9][a-z0-9._-]*$", description="Registry name; equals the file name in suites/.")
    version: str = Field(description="Bump when items or metric definitions change; results record it.")
    description: str = Field("", description="What the suite measures and where the data comes from.")
    citation: str | None = Field(None, description="Reference for the benchmark (paper, BibTeX).")
    protocol: str = Field(description="Scoring protocol, a key of ``rmbench.protocols.PROTOCOLS``.")
    sources: list[Source] = Field(min_length=1, description="Records of all sources are concatenated in order.")
    fields: dict[str, FieldSpec | None] = Field(
        default_factory=dict,
        description="Item field → record key path; overrides the item type's defaults "
        "(``id: id``, ``prompt: prompt``, ``chosen: chosen``, ...); null unmaps (``id: null`` numbers records).",
    )
    pairs: PairsSpec | None = Field(
        None,
        description="Preference pairs from a label (``kind: label``) or from rated completions (``kind: rated``); "
        "fills chosen and rejected (see suites/README.md).",
    )
    meta_fields: dict[str, str] = Field(
        default_factory=dict, description="Item meta key → record key path, copied when present (e.g. error types)."
    )
    metrics: MetricOptions = Field(
        default_factory=lambda: MetricOptions.model_validate({}), description="Tie policy, aggregation, sections..."
    )
    perturbations: list[str] = Field(
        default_factory=list,
        description="Meaning-preserving rewrites scored beside the items by default, each 'name' or 'name:side' "
        "(``rmbench perturbations`` lists them); ``--perturb`` replaces the list.",
    )

    _origin: str = PrivateAttr("<memory>")
    _only: frozenset[str] | None = PrivateAttr(None)
    _base_dir: Any = PrivateAttr(None)  # the suite file's directory: user transforms are relative to it

    @field_validator("protocol")
    @classmethod
    def _known_protocol(cls, value: str) -> str:
        if value not in PROTOCOLS:
            raise ValueError(_unknown("protocol", value, PROTOCOLS))
        return value

    @field_validator("perturbations")
    @classmethod
    def _known_perturbations(cls, value: list[str]) -> list[str]:
        from rmbench.errors import SuiteError
        from rmbench.perturbations import parse_specs

        try:
            parse_specs(value)
        except SuiteError as error:
            raise ValueError(str(error)) from None
        return value

    @field_validator("fields")
    @classmethod
    def _known_fields(cls, value: dict[str, FieldSpec | None]) -> dict[str, FieldSpec | None]:
        for name, spec in value.items():
            if name not in KNOWN_FIELDS:
                raise ValueError(_unknown("item field", name, KNOWN_FIELDS))
            if spec is not None and spec.steps and name not in RESPONSE_FIELDS:
                raise ValueError(
                    f"{name}: 'steps' applies only to response fields ({', '.join(sorted(RESPONSE_FIELDS))})"
                )
        return value

    @model_validator(mode="after")
    def _sections_name_known_subsets(self) -> Suite:
        # Only checkable when every source fixes its subset; a record-level subset mapping is checked at load time.
        if self.fields.get("subset") is not None or not self.metrics.sections:
            return self
        if any(source.subset is None for source in self.sources):
            return self
        known = {source.subset for source in self.sources if source.subset is not None}
        for section, spec in self.metrics.sections.items():
            for subset in spec.subsets:
                if subset not in known:
                    raise ValueError(
                        f"metrics.sections.{section}: subset {subset!r} is not the subset of any source "
                        f"({', '.join(sorted(known))}){did_you_mean(subset, known)}"
                    )
        covered = {subset for spec in self.metrics.sections.values() for subset in spec.subsets}
        left_out = sorted(known - covered)
        if left_out:
            # Overall is the mean of the sections: a subset in none of them would silently not count.
            raise ValueError(
                f"metrics.sections: subset(s) {', '.join(left_out)} are in no section, so overall would leave them "
                "out; add them to a section (or a section of their own), or drop their sources"
            )
        return self

    def mapping_problems(self) -> list[str]:
        """Problems of ``fields`` / ``pairs`` for this protocol's item type (``fields.x: message``): the check
        ``run`` makes before reading any data, made by ``load_suite`` too, so ``suites validate`` agrees with it."""
        from rmbench.data.builders import BUILDERS, resolve_fields

        item_type = PROTOCOLS.get(self.protocol).item_type
        if item_type.__name__ not in BUILDERS:
            return []
        return resolve_fields(BUILDERS.get(item_type.__name__), self.fields, self.pairs)[1]

    def only(self, subsets: list[str] | None) -> Suite:
        """This suite restricted to ``subsets`` (``--subset``): sources whose fixed subset is not selected are not
        read, items of other subsets are dropped, and sections keep only selected subsets (sections left empty are
        dropped), so overall is recomputed over what runs. The content hash is the file's; ``only_subsets`` says
        what ran. Unknown names fail here when every source fixes its subset, else once the items are loaded."""
        if not subsets:
            return self
        wanted = list(dict.fromkeys(subsets))
        fixed = {source.subset for source in self.sources}
        if None not in fixed and self.fields.get("subset") is None:
            unknown = [name for name in wanted if name not in fixed]
            if unknown:
                known = sorted(s for s in fixed if s is not None)
                raise SuiteError(
                    f"--subset {','.join(unknown)}: not a subset of suite '{self.name}' (subsets: {', '.join(known)})"
                    + did_you_mean(unknown[0], known)
                )
        copy = self.model_copy(deep=True)
        copy._origin, copy._only, copy._base_dir = self._origin, frozenset(wanted), self._base_dir
        return copy

    @property
    def base_dir(self) -> Any:
        """The directory of the suite file (None for a suite parsed from text)."""
        return self._base_dir

    @property
    def only_subsets(self) -> list[str] | None:
        """The subsets ``only`` restricted this suite to (sorted), or None for the whole suite."""
        return sorted(self._only) if self._only is not None else None

    def sections_for(self, sections: dict[str, Any] | None) -> dict[str, Any] | None:
        """``sections`` (as dumped MetricOptions) restricted to the selected subsets; None when none is left."""
        if self._only is None or not sections:
            return sections
        kept: dict[str, Any] = {}
        for name, spec in sections.items():
            subsets = [s for s in spec["subsets"] if s in self._only]
            if subsets:
                weights = spec.get("weights")
                kept[name] = {
                    "subsets": subsets,
                    "weights": {k: v for k, v in weights.items() if k in subsets} if weights else weights,
                }
        return kept or None

    @property
    def origin(self) -> str:
        """The file this suite was loaded from (as shown in messages)."""
        return self._origin

    def declaration(self) -> dict[str, Any]:
        """The validated declaration as plain data (for ``rmbench suites show``)."""
        return self.model_dump(mode="json", exclude_none=True, exclude_defaults=True)

    @property
    def content_hash(self) -> str:
        """sha256 of the canonical validated content. Comments, key order, quoting and the documentation-only
        ``description`` / ``citation`` and the ``perturbations`` do not change it; anything that changes items or metrics
        does."""
        # Perturbations add results beside the suite's own and change none of its numbers: not part of the hash.
        # A key added to the schema later is left out while unset, so existing suites keep their hash.
        unset_new = {"pairs"} if self.pairs is None else set()
        content = self.model_dump(mode="json", exclude={"description", "citation", "perturbations", *unset_new})
        canonical = json.dumps(content, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
        return hashlib.sha256(canonical.encode("utf-8")).hexdigest()


# --- messages ----------------------------------------------------------------------------------------------------


def _format_loc(loc: tuple[Any, ...]) -> str:
    text = ""
    for part in loc:
        text += f"[{part}]" if isinstance(part, int) else (f".{part}" if text else str(part))
    return text


def _model_in(annotation: Any) -> Any:
    """The pydantic model or container type inside ``X | None`` (and similar unions)."""
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return annotation
    if get_origin(annotation) in (dict, list):
        return annotation
    for arg in get_args(annotation):
        found = _model_in(arg)
        if found is not None:
            return found
    return None


def _allowed_keys(model: type[BaseModel], loc: tuple[Any, ...]) -> list[str]:
    """The keys ``model`` accepts at ``loc`` (a path to a mapping), for 'unknown key' messages."""
    current: Any = model
    for part in loc:
        if isinstance(current, type) and issubclass(current, BaseModel):
            field = current.model_fields.get(str(part))
            current = _model_in(field.annotation) if field is not None else None
        elif get_origin(current) in (dict, list):
            current = _model_in(get_args(current)[-1])  # a dict key or list position: step into the values
        else:
            return []
    return list(current.model_fields) if isinstance(current, type) and issubclass(current, BaseModel) else []


def describe_error(error: Any, model: type[BaseModel] | None = None, prefix: str = "") -> str:
    """One pydantic error as ``key.path: problem`` in suite terms (unknown keys list the allowed ones)."""
    loc = tuple(error["loc"])
    where = _format_loc(((prefix,) if prefix else ()) + loc) or "(top level)"
    kind, given = error["type"], error.get("input")
    if kind == "extra_forbidden":
        allowed = _allowed_keys(model or Suite, loc[:-1])
        hint = did_you_mean(str(loc[-1]), allowed)
        return (
            f"{where}: unknown key; expected one of {', '.join(allowed)}{hint}" if allowed else f"{where}: unknown key"
        )
    if kind == "missing":
        return f"{where}: required key is missing"
    if kind == "literal_error":
        return f"{where}: expected {error['ctx']['expected']}, got {given!r}"
    if kind == "value_error":
        return f"{where}: {error['msg'].removeprefix('Value error, ')}"
    return f"{where}: {error['msg'][0].lower()}{error['msg'][1:]}, got {given!r}"
