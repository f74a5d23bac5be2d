"""A leaderboard's declaration (``leaderboards/*.yaml``): which runs, which columns, how to show them."""

from __future__ import annotations

from pathlib import Path
from typing import Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from rmbench.errors import RmbenchError


class Column(BaseModel):
    """One leaderboard column: a metric of one suite in one scope."""

    model_config = ConfigDict(extra="forbid")

    suite: str = Field(description="Suite name as recorded in results.json.")
    metric: str = Field(description="Metric name, e.g. accuracy or mrr.")
    scope: str = Field("overall", description="overall, section:<name> or subset:<name>.")
    tie_policy: Literal["expected", "strict"] | None = Field(
        None, description="Read only runs made with this tie policy (to show both policies side by side)."
    )
    title: str | None = Field(None, description="Column heading; default the metric name.")

    @property
    def key(self) -> str:
        text = f"{self.suite}/{self.metric}"
        text = text if self.scope == "overall" else f"{text}@{self.scope}"
        return text if self.tie_policy is None else f"{text}[{self.tie_policy}]"

    @property
    def heading(self) -> str:
        if self.title:
            return self.title
        qualifiers = [q for q in (None if self.scope == "overall" else self.scope, self.tie_policy) if q]
        return f"{self.metric} ({', '.join(qualifiers)})" if qualifiers else self.metric


class LeaderboardConfig(BaseModel):
    """A leaderboard declaration (``leaderboards/*.yaml``)."""

    model_config = ConfigDict(extra="forbid")

    name: str = Field(pattern=r"^[a-z0-9][a-z0-9._-]*$", description="Output file stem: <name>.md/.csv/.html.")
    title: str
    description: str = ""
    runs: list[str] = Field(min_length=1, description="Run directories or globs, relative to runs_base.")
    runs_base: str = Field(".", description="Directory the run patterns are relative to (relative to this file).")
    label_by: Literal["dir", "model"] = Field("dir", description="How runs of one model are matched across suites.")
    columns: list[Column] = Field(min_length=1)
    overall: bool = Field(True, description="Add an overall column: the unweighted mean of the columns.")
    digits: int = Field(3, ge=1, le=6)
    notes: list[str] = Field(default_factory=list, description="Extra lines printed under the table.")


def load_config(path: Path) -> LeaderboardConfig:
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except (OSError, yaml.YAMLError) as exc:
        raise RmbenchError(f"leaderboard config {path}: cannot read YAML: {exc}") from exc
    try:
        return LeaderboardConfig.model_validate(data)
    except ValidationError as exc:
        problems = "; ".join(f"{'.'.join(map(str, e['loc']))}: {e['msg']}" for e in exc.errors())
        raise RmbenchError(f"leaderboard config {path}: {problems}") from exc
