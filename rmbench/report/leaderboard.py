"""Leaderboards: run directories → ``<name>.md``, ``<name>.csv`` and a self-contained ``<name>.html``.

A YAML config names the runs (directories or globs, relative to the config file), the columns (suite, metric,
scope) and whether to add an overall score (the unweighted mean of the columns). Output is deterministic — no
timestamps, sorted rows, fixed number formats — so a test can rebuild a committed leaderboard and compare bytes.
Each model's report.md is copied beside the leaderboard, so the links keep working where the run directories
themselves are not committed. Runs of one suite must agree on suite version, content hash and tie policy: a
leaderboard that mixes them would rank numbers that do not mean the same thing.
"""

from __future__ import annotations

import csv
import html
import io
import re
import shutil
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from rmbench.atomic import write_text
from rmbench.compare import LoadedRun, load_run
from rmbench.correlate import expand_runs, run_label
from rmbench.errors import RmbenchError
from rmbench.rundir import REPORT


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


@dataclass(frozen=True)
class Cell:
    value: float
    ci_low: float | None
    ci_high: float | None
    n: int
    report: str | None  # path of the copied report.md, relative to the leaderboard files

    @property
    def half_width(self) -> float | None:
        return None if self.ci_low is None or self.ci_high is None else (self.ci_high - self.ci_low) / 2


@dataclass(frozen=True)
class Row:
    rank: int
    label: str
    cells: tuple[Cell | None, ...]
    overall: float | None


@dataclass(frozen=True)
class Leaderboard:
    config: LeaderboardConfig
    rows: list[Row]
    suites: dict[str, dict[str, Any]]  # suite name -> version, content_hash, protocol, tie policy, items, CI method
    plots: dict[str, str] = field(default_factory=dict)  # suite -> its curves PNG, relative to the leaderboard files


def slug(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9._-]+", "-", text).strip("-") or "run"


def build(config: LeaderboardConfig, base: Path, out_dir: Path) -> Leaderboard:
    """Collect the runs, fill the table, copy each run's report.md under ``out_dir/<name>/reports``."""
    wanted = {c.suite for c in config.columns}
    by_model: dict[str, list[LoadedRun]] = {}
    for run in (load_run(p) for p in expand_runs(config.runs, base)):
        if run.suite["name"] in wanted:
            by_model.setdefault(run_label(run, config.label_by), []).append(run)
    if not by_model:
        raise RmbenchError(f"leaderboard '{config.name}': no run of suite(s) {', '.join(sorted(wanted))}")
    picked = {
        label: [_pick(config, column, label, runs) for column in config.columns] for label, runs in by_model.items()
    }
    suites = _suite_info(config, picked)

    reports_dir = out_dir / config.name / "reports"
    if reports_dir.exists():
        shutil.rmtree(reports_dir)  # reports of models no longer listed must not linger
    unranked = []
    for label, runs in picked.items():
        cells = tuple(_cell(run, c, label, reports_dir, out_dir) for run, c in zip(runs, config.columns))
        complete = [c.value for c in cells if c is not None]
        overall = sum(complete) / len(complete) if config.overall and len(complete) == len(cells) else None
        unranked.append((label, cells, overall))

    def rank_key(row: tuple[str, tuple[Cell | None, ...], float | None]) -> tuple[bool, float, float, str]:
        """Overall (missing last), then the first column, then the name: a stable, total order."""
        label, cells, overall = row
        first = cells[0].value if cells[0] is not None else float("-inf")
        return overall is None, -(overall or 0.0), -first, label

    unranked.sort(key=rank_key)
    rows = [Row(rank, label, cells, overall) for rank, (label, cells, overall) in enumerate(unranked, start=1)]
    plots = _curve_plots(config, picked, out_dir)
    return Leaderboard(config, rows, suites, plots)


def _curve_plots(config: LeaderboardConfig, picked: dict[str, list[LoadedRun | None]], out_dir: Path) -> dict[str, str]:
    """For each overoptimization suite on the board: every model's best-of-n curves on one PNG
    (``<name>/<suite>-overoptimization.png``), so the table's single numbers come with the shape behind them."""
    from rmbench.report.curves import curve_png, merge_curves

    plots: dict[str, str] = {}
    for suite in dict.fromkeys(c.suite for c in config.columns):
        curves = {
            label: run.results["extra"]["curves"]
            for label, runs in picked.items()
            for run, column in zip(runs, config.columns)
            if run is not None and column.suite == suite and run.results.get("extra", {}).get("curves")
        }
        if not curves:
            continue
        try:
            merged = merge_curves(curves)
        except ValueError as exc:
            raise RmbenchError(f"leaderboard '{config.name}', suite '{suite}': {exc}") from exc
        target = out_dir / config.name / f"{slug(suite)}-overoptimization.png"
        curve_png(merged, target, title=f"{config.title}: {suite}",
                  subtitle="best-of-n from each model's pick; bands: 95% bootstrap CI over prompts")
        plots[suite] = target.relative_to(out_dir).as_posix()
    return plots


def _pick(config: LeaderboardConfig, column: Column, label: str, runs: list[LoadedRun]) -> LoadedRun | None:
    """The one run of this model that a column reads; two candidates is an error, never a silent choice."""
    matches = [
        r
        for r in runs
        if r.suite["name"] == column.suite
        and (column.tie_policy is None or r.results["metric_options"].get("tie_policy") == column.tie_policy)
    ]
    if len(matches) > 1:
        paths = ", ".join(str(r.path) for r in matches)
        raise RmbenchError(
            f"leaderboard '{config.name}': column {column.key} matches {len(matches)} runs labelled '{label}' "
            f"({paths}); give the column a tie_policy or keep one run per model and suite"
        )
    return matches[0] if matches else None


def _cell(run: LoadedRun | None, column: Column, label: str, reports_dir: Path, out_dir: Path) -> Cell | None:
    if run is None:
        return None
    metric = run.metric(column.metric, column.scope)
    if metric is None or metric["value"] is None:
        return None
    report = None
    source = (run.path if run.path.is_dir() else run.path.parent) / REPORT
    if source.exists():
        policy = run.results["metric_options"].get("tie_policy")
        target = reports_dir / slug(label) / f"{slug(column.suite)}-{policy}.md"
        if not target.exists():
            write_text(target, source.read_text(encoding="utf-8"))
        report = target.relative_to(out_dir).as_posix()
    return Cell(float(metric["value"]), metric.get("ci_low"), metric.get("ci_high"), int(metric["n"]), report)


def _suite_info(config: LeaderboardConfig, picked: dict[str, list[LoadedRun | None]]) -> dict[str, dict[str, Any]]:
    """Per suite: what its numbers mean. Runs of one suite must agree on version, content hash and, per column,
    tie policy; otherwise the table would rank numbers that do not mean the same thing."""
    info: dict[str, dict[str, Any]] = {}
    for i, column in enumerate(config.columns):
        runs = sorted((run for row in picked.values() if (run := row[i]) is not None), key=lambda r: str(r.path))
        policies = {r.results["metric_options"].get("tie_policy") for r in runs}
        if len(policies) > 1:
            raise RmbenchError(
                f"leaderboard '{config.name}': column {column.key} mixes tie policies {sorted(map(str, policies))}; "
                "rebuild the runs with one policy or give the column a tie_policy"
            )
        for run in runs:
            options = run.results["metric_options"]
            methods = {m.get("method", "") for m in run.results["metrics"] if m.get("ci_low") is not None}
            facts = info.setdefault(
                run.suite["name"],
                {
                    "version": str(run.suite["version"]),
                    "content_hash": run.suite.get("content_hash"),
                    "protocol": run.suite.get("protocol"),
                    "confidence": options.get("confidence", 0.95),
                    "resamples": options.get("bootstrap_resamples"),
                    "tie_policies": set(),
                    "ci_methods": set(),
                    "items": set(),
                    "first": run.path,
                },
            )
            for key in ("version", "content_hash"):
                value = str(run.suite["version"]) if key == "version" else run.suite.get(key)
                if facts[key] != value:
                    raise RmbenchError(
                        f"leaderboard '{config.name}': runs of suite '{run.suite['name']}' disagree on {key}: "
                        f"{facts['first']} has {facts[key]!r}, {run.path} has {value!r}; rebuild them with one suite"
                    )
            facts["tie_policies"].add(str(options.get("tie_policy")))
            facts["ci_methods"] |= methods
            facts["items"].add(run.results.get("counts", {}).get("items_evaluated"))
    return info


# --- rendering ------------------------------------------------------------------------------------------------------


def _num(value: float | None, digits: int) -> str:
    return "" if value is None else f"{value:.{digits}f}"


def _suite_lines(board: Leaderboard) -> list[str]:
    lines = []
    for name, s in sorted(board.suites.items()):
        counts = sorted(n for n in s["items"] if n is not None)
        items = "?" if not counts else str(counts[0]) if counts[0] == counts[-1] else f"{counts[0]}–{counts[-1]}"
        policies = " / ".join(sorted(s["tie_policies"]))
        lines.append(
            f"{name} v{s['version']} (protocol {s['protocol']}, suite hash {str(s['content_hash'])[:12]}): {items} items "
            f"evaluated per model, tie policy **{policies}**, {s['confidence']:.0%} CIs by "
            f"{', '.join(sorted(s['ci_methods'])) or 'n/a'} ({s['resamples']} resamples)"
        )
    return lines


def _overall_note(board: Leaderboard) -> str:
    n = len(board.config.columns)
    return (
        f"Overall = unweighted mean of the {n} columns, shown only for models with all of them; it has no CI because "
        "its columns share items, so their errors are correlated."
    )


def render_markdown(board: Leaderboard) -> str:
    config, digits = board.config, board.config.digits
    head = ["rank", "model"] + [f"{c.suite} · {c.heading}" for c in config.columns]
    head += ["overall"] if config.overall else []
    head += ["reports"]
    lines = [f"# {config.title}", ""]
    if config.description:
        lines += [config.description.strip(), ""]
    lines += [
        "| " + " | ".join(head) + " |",
        "|" + "|".join(["---:", "---"] + ["---:"] * (len(head) - 3) + ["---"]) + "|",
    ]
    for row in board.rows:
        values = [
            "—" if cell is None else f"{_num(cell.value, digits)} ± {_num(cell.half_width, digits) or '?'}"
            for cell in row.cells
        ]
        if config.overall:
            values.append("—" if row.overall is None else f"**{_num(row.overall, digits)}**")
        links = _report_links(row, board)
        lines.append("| " + " | ".join([str(row.rank), row.label, *values, ", ".join(links)]) + " |")
    lines += ["", "Values are point estimates ± the half-width of their confidence interval."]
    if config.overall:
        lines.append(_overall_note(board))
    lines += [""] + [f"- {line}" for line in _suite_lines(board)]
    lines += [f"- {note}" for note in config.notes]
    for suite, path in board.plots.items():
        lines += ["", f"Best-of-n curves, {suite}: gold and proxy score of each model's pick against sqrt(KL).", "",
                  f"![{suite} overoptimization curves]({path})"]
    lines.append("")
    lines.append("Generated by `rmbench leaderboard build`; do not edit by hand.")
    return "\n".join(lines) + "\n"


def _report_links(row: Row, board: Leaderboard) -> list[str]:
    return [f"[{text}]({path})" for text, path in _link_targets(row, board)]


def render_csv(board: Leaderboard) -> str:
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    header = ["rank", "model"]
    for column in board.config.columns:
        header += [column.key, f"{column.key}:ci_low", f"{column.key}:ci_high", f"{column.key}:n"]
    header += ["overall"] if board.config.overall else []
    writer.writerow(header)
    for row in board.rows:
        line: list[Any] = [row.rank, row.label]
        for cell in row.cells:
            line += ["", "", "", ""] if cell is None else [
                _repr(cell.value), _repr(cell.ci_low), _repr(cell.ci_high), cell.n
            ]
        if board.config.overall:
            line.append(_repr(row.overall))
        writer.writerow(line)
    return buffer.getvalue()


def _repr(value: float | None) -> str:
    return "" if value is None else f"{value:.6f}"


def write(board: Leaderboard, out_dir: Path) -> list[Path]:
    name = board.config.name
    outputs = {
        out_dir / f"{name}.md": render_markdown(board),
        out_dir / f"{name}.csv": render_csv(board),
        out_dir / f"{name}.html": render_html(board),
    }
    for path, text in outputs.items():
        write_text(path, text)
    return list(outputs)


def build_from_config(
    config_path: Path, out_dir: Path | None = None, runs_base: Path | None = None
) -> tuple[Leaderboard, list[Path]]:
    """Load a config, build the leaderboard and write its files (default: beside the config).

    ``runs_base`` overrides the config's ``runs_base``, so a test can rebuild from run directories elsewhere.
    """
    config = load_config(config_path)
    target = out_dir or config_path.parent
    board = build(config, runs_base or config_path.parent / config.runs_base, target)
    return board, write(board, target)


# --- self-contained HTML: inline CSS and JS, no external assets -----------------------------------------------------

_CSS = """
body{font:14px/1.45 system-ui,-apple-system,"Segoe UI",Roboto,sans-serif;color:#111827;background:#f9fafb;margin:0}
main{max-width:1280px;margin:0 auto;padding:24px}
h1{font-size:22px;margin:0 0 6px}
p.desc{color:#374151;margin:0 0 16px;max-width:900px}
table{border-collapse:collapse;background:#fff;box-shadow:0 1px 3px rgba(0,0,0,.08);width:100%}
th,td{padding:6px 10px;border-bottom:1px solid #e5e7eb;text-align:right;white-space:nowrap}
th.text,td.text{text-align:left}
thead tr.groups th{background:#eef2ff;color:#3730a3;text-align:center;font-weight:600;border-left:2px solid #fff}
thead tr.cols th{background:#f3f4f6;cursor:pointer;user-select:none;position:relative}
thead tr.cols th:hover{background:#e5e7eb}
thead tr.cols th[aria-sort=ascending]::after{content:" \\25B2";font-size:10px}
thead tr.cols th[aria-sort=descending]::after{content:" \\25BC";font-size:10px}
tbody tr:nth-child(even){background:#fafafa}
tbody tr:hover{background:#eff6ff}
td.num .v{font-variant-numeric:tabular-nums;font-weight:500}
td.num .ci{color:#6b7280;font-size:12px;margin-left:4px;font-variant-numeric:tabular-nums}
td.best .v{font-weight:700;color:#1d4ed8}
td.overall .v{font-weight:700}
.whisker{position:relative;height:4px;background:#f3f4f6;margin-top:3px;border-radius:2px}
.whisker .range{position:absolute;top:0;height:4px;background:#93c5fd;border-radius:2px}
.whisker .dot{position:absolute;top:-2px;width:2px;height:8px;background:#1d4ed8}
td.missing{color:#9ca3af;text-align:center}
a{color:#2563eb;text-decoration:none}a:hover{text-decoration:underline}
.notes{color:#374151;font-size:13px;margin-top:14px}
.notes li{margin:3px 0}
.hint{color:#6b7280;font-size:12px;margin:6px 0 0}
"""

_JS = """
(function(){
  var table=document.getElementById('board');
  var heads=table.querySelectorAll('thead tr.cols th');
  function sortBy(col,desc){
    var th=heads[col],numeric=th.dataset.type==='num';
    heads.forEach(function(h){h.removeAttribute('aria-sort');});
    th.setAttribute('aria-sort',desc?'descending':'ascending');
    var body=table.tBodies[0],rows=Array.prototype.slice.call(body.rows);
    rows.sort(function(a,b){
      var x=a.cells[col].dataset.v,y=b.cells[col].dataset.v;
      if(x===''&&y==='')return 0;if(x==='')return 1;if(y==='')return -1;
      var c=numeric?parseFloat(x)-parseFloat(y):x.localeCompare(y);
      return desc?-c:c;
    });
    rows.forEach(function(r){body.appendChild(r);});
  }
  heads.forEach(function(th,col){
    th.addEventListener('click',function(){
      var current=th.getAttribute('aria-sort');
      sortBy(col,current?current==='ascending':th.dataset.default!=='asc');
    });
  });
  // Deep links: #sort=<column index>[-asc] opens the table sorted (also how the headless check tests sorting).
  var m=/sort=(\\d+)(-asc)?/.exec(location.hash);
  if(m&&heads[+m[1]])sortBy(+m[1],!m[2]);
})();
"""


def render_html(board: Leaderboard) -> str:
    """One file with inline CSS and JS: click a column heading to sort by it."""
    config, digits = board.config, board.config.digits
    esc = html.escape
    bounds = [_bounds([row.cells[i] for row in board.rows]) for i in range(len(config.columns))]
    best = [
        max((cell.value for r in board.rows if (cell := r.cells[i]) is not None), default=None)
        for i in range(len(config.columns))
    ]

    groups = ['<th colspan="2"></th>']
    for suite, span in _runs_of(config.columns):
        groups.append(f'<th colspan="{span}">{esc(suite)} v{esc(board.suites.get(suite, {}).get("version", "?"))}</th>')
    tail = (['<th></th>'] if config.overall else []) + ['<th></th>']
    cols = ['<th data-type="num" data-default="asc" aria-sort="ascending">#</th>',
            '<th class="text" data-type="text" data-default="asc">model</th>']
    cols += [f'<th data-type="num" title="{esc(c.key)}">{esc(c.heading)}</th>' for c in config.columns]
    cols += ['<th data-type="num">overall</th>'] if config.overall else []
    cols += ['<th class="text" data-type="text">report</th>']

    body = []
    for row in board.rows:
        tds = [
            f'<td data-v="{row.rank}">{row.rank}</td>',
            f'<td class="text" data-v="{esc(row.label)}">{esc(row.label)}</td>',
        ]
        for i, cell in enumerate(row.cells):
            if cell is None:
                tds.append('<td class="missing" data-v="">—</td>')
                continue
            classes = "num best" if cell.value == best[i] else "num"
            half = f'<span class="ci">±{_num(cell.half_width, digits)}</span>' if cell.half_width is not None else ""
            tds.append(
                f'<td class="{classes}" data-v="{cell.value:.6f}"><span class="v">{_num(cell.value, digits)}</span>'
                f"{half}{_whisker(cell, bounds[i])}</td>"
            )
        if config.overall:
            value = "" if row.overall is None else f"{row.overall:.6f}"
            shown = "—" if row.overall is None else f'<span class="v">{_num(row.overall, digits)}</span>'
            tds.append(f'<td class="num overall" data-v="{value}">{shown}</td>')
        links = [
            f'<a href="{esc(path)}">{esc(suite)}</a>'
            for suite, path in _link_targets(row, board)
        ]
        tds.append(f'<td class="text" data-v="">{" · ".join(links)}</td>')
        body.append("<tr>" + "".join(tds) + "</tr>")

    notes = ["Values are point estimates; ± is the half-width of the confidence interval, drawn as the blue bar."]
    if config.overall:
        notes.append(_overall_note(board))
    notes += [_md_bold_to_html(esc(line)) for line in _suite_lines(board)]
    notes += [esc(note) for note in config.notes]
    notes += [
        f'Best-of-n curves, {esc(suite)}: <a href="{esc(path)}">{esc(Path(path).name)}</a>'
        for suite, path in board.plots.items()
    ]
    description = f'<p class="desc">{esc(config.description.strip())}</p>' if config.description else ""
    return "\n".join(
        [
            "<!DOCTYPE html>",
            '<html lang="en"><head><meta charset="utf-8">',
            '<meta name="viewport" content="width=device-width, initial-scale=1">',
            f"<title>{esc(config.title)}</title><style>{_CSS}</style></head>",
            f"<body><main><h1>{esc(config.title)}</h1>{description}",
            '<table id="board"><thead>',
            '<tr class="groups">' + "".join(groups + tail) + "</tr>",
            '<tr class="cols">' + "".join(cols) + "</tr>",
            "</thead><tbody>",
            *body,
            "</tbody></table>",
            '<p class="hint">Click a column heading to sort.</p>',
            '<ul class="notes">' + "".join(f"<li>{n}</li>" for n in notes) + "</ul>",
            "<p class=\"hint\">Generated by <code>rmbench leaderboard build</code>.</p>",
            f"</main><script>{_JS}</script></body></html>",
            "",
        ]
    )


def _runs_of(columns: list[Column]) -> list[tuple[str, int]]:
    """Adjacent columns of the same suite share one group heading."""
    groups: list[tuple[str, int]] = []
    for column in columns:
        if groups and groups[-1][0] == column.suite:
            groups[-1] = (column.suite, groups[-1][1] + 1)
        else:
            groups.append((column.suite, 1))
    return groups


def _link_targets(row: Row, board: Leaderboard) -> list[tuple[str, str]]:
    """(link text, path) for each distinct report of a row, named by what tells them apart: suite and/or policy."""
    targets: dict[str, str] = {}
    for cell, column in zip(row.cells, board.config.columns):
        if cell is None or not cell.report or cell.report in targets:
            continue
        policy = Path(cell.report).stem.rsplit("-", 1)[-1]  # reports are named <suite>-<tie policy>.md
        parts = [column.suite] if len(board.suites) > 1 else []
        parts += [policy] if len(board.suites.get(column.suite, {}).get("tie_policies", ())) > 1 else []
        targets[cell.report] = " ".join(parts) or "report"
    return [(text, path) for path, text in targets.items()]


def _bounds(cells: list[Cell | None]) -> tuple[float, float]:
    values = [v for c in cells if c is not None for v in (c.ci_low, c.ci_high, c.value) if v is not None]
    low, high = (min(values), max(values)) if values else (0.0, 1.0)
    return (low, high) if high > low else (low - 0.5, high + 0.5)


def _whisker(cell: Cell, bounds: tuple[float, float]) -> str:
    low, high = bounds
    if cell.ci_low is None or cell.ci_high is None:
        return ""
    left, right, dot = (100 * (v - low) / (high - low) for v in (cell.ci_low, cell.ci_high, cell.value))
    return (
        f'<div class="whisker"><span class="range" style="left:{left:.1f}%;width:{max(right - left, 0.5):.1f}%"></span>'
        f'<span class="dot" style="left:{dot:.1f}%"></span></div>'
    )


def _md_bold_to_html(text: str) -> str:
    return re.sub(r"\*\*(.+?)\*\*", r"<strong>\1</strong>", text)
