"""Run directories that never collide: the default name, and the check that a directory holding a different run is
not replaced without ``--force`` (the same run again replaces its own directory: runs are idempotent).

The default is ``runs/<suite>/<model slug>[@<revision>][-<options hash>]``: a revision and any option that changes
what is computed (non-default model-spec keys, ``--limit``, ``--subset``, metric overrides, ensemble and gold models)
make a different name, so a release and a candidate revision of one model, or a smoke run and a full run, never share
a directory. What identifies a run is also compared with the ``results.json`` already in the directory.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any

from rmbench.errors import RmbenchError
from rmbench.modelspec import ModelSpec
from rmbench.runner.labels import model_slug

RESULTS = "results.json"
#: Spec keys already visible in the name (slug, revision), so they are not hashed.
_NAMED = frozenset({"model", "engine", "revision"})


class RunDirectoryError(RmbenchError):
    """The run directory holds something else: refused before any model loads."""


def _spec_options(spec: ModelSpec) -> dict[str, Any]:
    return {k: v for k, v in spec.model_dump(mode="json", exclude_defaults=True).items() if k not in _NAMED}


def default_out(
    suite_name: str,
    spec: ModelSpec,
    *,
    limit: int | None = None,
    subsets: list[str] | None = None,
    metric_overrides: dict[str, Any] | None = None,
    others: list[ModelSpec] | None = None,
) -> Path:
    """``runs/<suite>/<name>``; the name never is ``.`` or ``..`` (``model_slug`` takes the resolved directory name)."""
    name = model_slug(spec)
    if spec.revision:
        name += "@" + "".join(c if c.isalnum() or c in "._-" else "-" for c in spec.revision[:12])
    options = {
        "spec": _spec_options(spec),
        "limit": limit,
        "subsets": sorted(subsets) if subsets else None,
        "metrics": metric_overrides or None,
        "others": [other.model_dump(mode="json", exclude_defaults=True) for other in others or []] or None,
    }
    options = {k: v for k, v in options.items() if v}
    if options:
        canonical = json.dumps(options, sort_keys=True, separators=(",", ":"), default=str)
        name += "-" + hashlib.sha256(canonical.encode("utf-8")).hexdigest()[:8]
    return Path("runs") / suite_name / name


def run_identity(results: dict[str, Any]) -> dict[str, Any]:
    """What makes two results.json the same run: suite and its content, model specs, metric options, limit and
    subsets (not timings, not the data directory)."""
    suite = results.get("suite") or {}
    model = results.get("model") or {}
    return json.loads(
        json.dumps(
            {
                "suite": [suite.get("name"), suite.get("content_hash")],
                "spec": model.get("spec"),
                "models": [m.get("spec") for m in results.get("models") or []],
                "metric_options": results.get("metric_options"),
                "limit": results.get("limit"),
                "subsets": (results.get("extra") or {}).get("subsets_run"),
            },
            sort_keys=True,
            default=str,
        )
    )


def check_out(out: Path, planned: dict[str, Any], *, force: bool) -> None:
    """Refuse (exit 2) to replace a directory holding a different run, or a non-empty directory that is no run
    directory, unless ``force``; ``planned`` is this run's identity (``run_identity`` of what it will write)."""
    if force or not out.exists():
        return
    if not out.is_dir():
        raise RunDirectoryError(f"--out {out}: exists and is not a directory; choose another --out")
    results = out / RESULTS
    if not results.is_file():
        if any(out.iterdir()):
            raise RunDirectoryError(
                f"--out {out}: a non-empty directory that is not a run directory (no {RESULTS}); "
                "choose another --out, or pass --force to write the run files into it"
            )
        return
    try:
        existing = run_identity(json.loads(results.read_text(encoding="utf-8")))
    except (OSError, ValueError, AttributeError) as error:
        raise RunDirectoryError(
            f"{results}: cannot be read ({error}); pass --force to replace that run, or choose another --out"
        ) from None
    differing = [key for key in planned if existing.get(key) != planned[key]]
    if differing:
        raise RunDirectoryError(
            f"run directory {out} holds a different run (differs in: {', '.join(differing)}); "
            "pass --force to replace it, or choose another --out"
        )
