"""Records → protocol-typed items: one small builder per item type.

A builder names the item fields it fills, their default record keys, and which of them hold responses (so a
suite's ``steps: true`` is only accepted there). Adding an item type is one more ``Builder`` in ``BUILDERS`` (keyed
by the item type's name); the loader does not change.
"""

from __future__ import annotations

import difflib
import hashlib
import json
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from rmbench.data.convert import RecordProblem, lookup, optional, required, to_id, to_responses
from rmbench.data.pairs import PAIR_FIELDS, LabelPairs, RatedPairs, preference_parts
from rmbench.errors import SuiteError
from rmbench.items import ContrastItem, Conversation, PreferenceItem, ProbeItem, Response, SampleSet, StepItem
from rmbench.registry import Registry, import_target

_ABSENT = lookup({}, "id")


def did_you_mean(value: str, options: Any) -> str:
    """`` (did you mean 'x'?)`` for the closest known name, or nothing."""
    close = difflib.get_close_matches(value, list(options), n=1)
    return f" (did you mean '{close[0]}'?)" if close else ""


#: Fields every item type has. ``id`` defaults to the record's ``id``; subset and cluster are opt-in mappings.
COMMON_DEFAULTS: dict[str, str | None] = {"id": "id", "subset": None, "cluster": None}


@dataclass(frozen=True)
class FieldPath:
    """A resolved field mapping: the record key path (None = not mapped) and whether a list of strings is one
    step-split solution."""

    path: str | None
    steps: bool = False


@dataclass(frozen=True)
class BuildContext:
    """What a builder needs beyond the record: per-source settings and the suite's metadata mapping."""

    fields: Mapping[str, FieldPath]
    meta_fields: Mapping[str, str]
    default_subset: str | None
    id_prefix: str = ""
    allow_empty: bool = False
    #: Item fields the suite declares in ``fields`` (an undeclared default may be absent: ids are then generated
    #: from the record position, and a preference record without a prompt has an implicit one).
    declared: frozenset[str] = frozenset()
    pairs: LabelPairs | RatedPairs | None = None
    #: The suite's protocol and the chosen / rejected responses it needs per item (``response_counts``).
    protocol: str = ""
    response_counts: tuple[int | None, int | None] | None = None

    def item_id(self, record: Mapping[str, Any], position: int) -> str:
        path = self.fields["id"].path
        if path is None or ("id" not in self.declared and lookup(record, path) is _ABSENT):
            return self.id_prefix + str(position)
        return self.id_prefix + to_id(required(record, path), path)

    def subset(self, record: Mapping[str, Any]) -> str:
        path = self.fields["subset"].path
        if path is not None:
            value = optional(record, path)
            if value is not None:
                if not isinstance(value, str) or not value:
                    raise RecordProblem(f"expected a non-empty subset name, got {value!r}", path)
                return value
            if self.default_subset is None:
                required(record, path)  # raises: missing or null, and no source subset to fall back on
        return self.default_subset or "default"

    def meta(self, record: Mapping[str, Any], prompt: Conversation) -> dict[str, Any]:
        cluster_path = self.fields["cluster"].path
        if cluster_path is not None:
            cluster = f"cluster:{to_id(required(record, cluster_path), cluster_path)}"
        else:
            # Items that share a prompt are one resampling unit (bootstrap CIs), across sources too.
            digest = hashlib.sha256(json.dumps(prompt, ensure_ascii=False).encode("utf-8")).hexdigest()[:16]
            cluster = f"prompt:{digest}"
        meta = {"cluster": cluster}
        for key, path in self.meta_fields.items():
            value = optional(record, path)
            if value is not None:
                meta[key] = value
        return meta

    def responses(self, record: Mapping[str, Any], name: str) -> tuple[Response, ...]:
        spec = self.fields[name]
        assert spec.path is not None
        return to_responses(required(record, spec.path), spec.path, steps=spec.steps, allow_empty=self.allow_empty)


@dataclass(frozen=True)
class Builder:
    """``build`` returns one item, or a list of items (a record that stands for several, or none)."""

    item_type: type
    defaults: dict[str, str | None]
    response_fields: frozenset[str]
    build: Callable[[Mapping[str, Any], BuildContext, int], Any]
    required_fields: frozenset[str] = field(default_factory=frozenset)
    #: Whether a suite's ``pairs:`` declaration (label-selected or rated pairs) applies to this item type.
    accepts_pairs: bool = False


def _build_preference(record: Mapping[str, Any], ctx: BuildContext, position: int) -> list[PreferenceItem]:
    """The record's items: one, or (rated completions) one per selected pair, possibly none."""
    prompt_path, chosen, rejected = ctx.fields["prompt"].path, ctx.fields["chosen"], ctx.fields["rejected"]
    assert prompt_path is not None and chosen.path is not None and rejected.path is not None
    prompt, pairs = preference_parts(
        record,
        prompt_path=prompt_path,
        prompt_declared="prompt" in ctx.declared,
        chosen=(chosen.path, chosen.steps),
        rejected=(rejected.path, rejected.steps),
        pairs=ctx.pairs,
        allow_empty=ctx.allow_empty,
    )
    if not pairs:
        return []
    item_id, subset, meta = ctx.item_id(record, position), ctx.subset(record), ctx.meta(record, prompt)
    return [
        PreferenceItem(id=item_id + suffix, prompt=prompt, chosen=c, rejected=r, subset=subset, meta=dict(meta))
        for suffix, c, r in pairs
    ]


def _lazy(target: str) -> Callable[[Mapping[str, Any], BuildContext, int], Any]:
    """A build function living in its own module (``module:function``), imported on first use."""

    def build(record: Mapping[str, Any], ctx: BuildContext, position: int) -> Any:
        return import_target(target)(record, ctx, position)

    return build


#: item type name -> its builder. Builders are small and eager (a suite's field names are checked against them
#: before any protocol is imported); their build functions are imported on first use.
BUILDERS: Registry[Builder] = Registry("item builder", SuiteError)
BUILDERS.add(
    "ContrastItem",
    Builder(
        item_type=ContrastItem,
        defaults={**COMMON_DEFAULTS, "q1": "q1", "q2": "q2", "r1": "r1", "r2": "r2"},
        response_fields=frozenset({"r1", "r2"}),
        required_fields=frozenset({"q1", "q2", "r1", "r2"}),
        build=_lazy("rmbench.data.build_contrast:build_contrast"),
    ),
    "Two instructions, two responses (contrast protocol).",
)
BUILDERS.add(
    "ProbeItem",
    Builder(
        item_type=ProbeItem,
        defaults={**COMMON_DEFAULTS, "prompt": "input", "response": "output", "label": "label", "dimension": None, "split": None},
        response_fields=frozenset({"response"}),
        required_fields=frozenset({"prompt", "response", "label"}),
        build=_lazy("rmbench.data.build_probe:build_probe"),
    ),
    "One response with a label (probing protocol).",
)
BUILDERS.add(
    "SampleSet",
    Builder(
        item_type=SampleSet,
        defaults={**COMMON_DEFAULTS, "prompt": "prompt", "responses": "responses", "gold": None},
        response_fields=frozenset({"responses"}),
        required_fields=frozenset({"prompt", "responses"}),
        build=_lazy("rmbench.data.build_samples:build_sample_set"),
    ),
    "A prompt with n sampled responses and optional gold scores.",
)
BUILDERS.add(
    "StepItem",
    Builder(
        item_type=StepItem,
        defaults={
            **COMMON_DEFAULTS,
            "prompt": "prompt",
            "steps": "steps",
            "error_steps": "error_steps",
            "first_error_only": None,
        },
        response_fields=frozenset({"steps"}),
        required_fields=frozenset({"prompt", "steps", "error_steps"}),
        build=_lazy("rmbench.data.build_steps:build_step_item"),
    ),
    "One step-split solution with its erroneous steps labelled (step-level PRM protocol).",
)
BUILDERS.add(
    "PreferenceItem",
    Builder(
        item_type=PreferenceItem,
        defaults={**COMMON_DEFAULTS, "prompt": "prompt", "chosen": "chosen", "rejected": "rejected"},
        response_fields=frozenset({"chosen", "rejected"}),
        required_fields=frozenset({"prompt", "chosen", "rejected"}),
        build=_build_preference,
        accepts_pairs=True,
    ),
    "A prompt with chosen and rejected responses.",
)

#: Every item field some builder accepts: what a suite's ``fields`` may name before its protocol is imported.
KNOWN_FIELDS: frozenset[str] = frozenset(name for b in map(BUILDERS.get, BUILDERS) for name in b.defaults)
RESPONSE_FIELDS: frozenset[str] = frozenset(name for b in map(BUILDERS.get, BUILDERS) for name in b.response_fields)


def resolve_fields(
    builder: Builder, declared: Mapping[str, Any], pairs: Any = None
) -> tuple[dict[str, FieldPath], list[str]]:
    """The builder's defaults overlaid with a suite's ``fields``; returns (mapping, problems as 'key: message',
    each prefixed by ``fields.`` or ``pairs:``)."""
    problems: list[str] = []
    if pairs is not None:
        if not builder.accepts_pairs:
            problems.append(f"pairs: applies to preference items only, not {builder.item_type.__name__}")
        for name in sorted(PAIR_FIELDS & set(declared)):
            problems.append(f"fields.{name}: filled by 'pairs: {{kind: {pairs.kind}}}'; remove this mapping")
    resolved = {name: FieldPath(path) for name, path in builder.defaults.items()}
    for name, spec in declared.items():
        if name not in builder.defaults:
            problems.append(
                f"fields.{name}: not a field of {builder.item_type.__name__} (fields: {', '.join(builder.defaults)})"
                + did_you_mean(name, builder.defaults)
            )
            continue
        if spec is None:
            if name in builder.required_fields:
                problems.append(f"fields.{name}: {builder.item_type.__name__} needs this field; it cannot be null")
            resolved[name] = FieldPath(None)
            continue
        if spec.steps and name not in builder.response_fields:
            problems.append(
                f"fields.{name}: 'steps' applies only to response fields ({', '.join(sorted(builder.response_fields))})"
            )
        resolved[name] = FieldPath(spec.path, spec.steps)
    return resolved, problems
