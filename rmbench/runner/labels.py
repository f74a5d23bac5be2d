"""Names of the models of a run: the run directory's default slug and distinct labels for several models."""

from __future__ import annotations

import re
from pathlib import Path

from rmbench.modelspec import ModelSpec


def model_slug(spec: ModelSpec) -> str:
    """A file-name-safe name for the model: the last path component (of the resolved path for ``.``, ``..``),
    never ``.`` or ``..`` or empty."""
    name = spec.model.rstrip("/").split("/")[-1] if spec.model else spec.engine
    if name in ("", ".", "..", "~"):
        name = Path(spec.model).expanduser().resolve().name
    slug = re.sub(r"[^A-Za-z0-9._-]+", "-", name).strip("-.") or spec.engine
    return slug if spec.engine in ("hf", "vllm") else f"{spec.engine}-{slug}" if spec.model else slug


def labelled(specs: list[ModelSpec]) -> list[tuple[str, ModelSpec]]:
    """Distinct labels for the models of one run (slug, then slug-2, slug-3 for repeats)."""
    labels: list[tuple[str, ModelSpec]] = []
    seen: dict[str, int] = {}
    for spec in specs:
        slug = model_slug(spec)
        seen[slug] = seen.get(slug, 0) + 1
        labels.append((slug if seen[slug] == 1 else f"{slug}-{seen[slug]}", spec))
    return labels


def role(index: int, n_proxies: int) -> str:
    return "proxy" if index < n_proxies else "gold"
