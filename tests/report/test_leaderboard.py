"""`rmbench leaderboard build`: md/csv/html from real runs, determinism, the committed boards, headless rendering."""

from __future__ import annotations

import csv
import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from rmbench.atomic import write_json
from rmbench.errors import RmbenchError
from rmbench.modelspec import ModelSpec
from rmbench.report.leaderboard import build_from_config
from rmbench.runner.run import RunConfig, run_suite
from tests._shared import SHARED_DATA, shared_path
from tests.helpers import cli

REPO = Path(__file__).resolve().parents[2]
LEADERBOARDS = REPO / "leaderboards"


@pytest.fixture(scope="module")
def board_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Runs of three baselines on math-robustness and a config that shows accuracy and MRR."""
    root = tmp_path_factory.mktemp("leaderboard")
    for name, engine, seed in (("length", "length", 0), ("random", "random", 0), ("random-7", "random", 7)):
        spec = ModelSpec(model="", engine=engine, seed=seed)
        run_suite(RunConfig(suite="math-robustness", model=spec, out=root / "runs" / name, cache=root / "c.sqlite",
                            show_progress=False))
    (root / "board.yaml").write_text(
        "name: demo\n"
        "title: Demo board\n"
        "description: Baselines on math-robustness.\n"
        "runs: [runs/*]\n"
        "columns:\n"
        "  - {suite: math-robustness, metric: accuracy}\n"
        "  - {suite: math-robustness, metric: mrr, title: MRR}\n"
    )
    return root


def test_build_writes_md_csv_html_with_cis_and_links(board_dir: Path) -> None:
    assert cli(["leaderboard", "build", str(board_dir / "board.yaml")]) == 0
    md = (board_dir / "demo.md").read_text()
    assert md.startswith("# Demo board")
    assert re.search(r"\| 1 \| \S+ \| 0\.\d{3} ± 0\.\d{3} \| 0\.\d{3} ± 0\.\d{3} \| \*\*0\.\d{3}\*\* \|", md)
    assert "tie policy **expected**" in md

    rows = list(csv.DictReader((board_dir / "demo.csv").open()))
    assert [r["rank"] for r in rows] == ["1", "2", "3"]
    assert {r["model"] for r in rows} == {"length", "random", "random-7"}
    overall = [float(r["overall"]) for r in rows]
    assert overall == sorted(overall, reverse=True)
    for r in rows:
        accuracy, mrr = float(r["math-robustness/accuracy"]), float(r["math-robustness/mrr"])
        assert float(r["overall"]) == pytest.approx((accuracy + mrr) / 2, abs=1e-6)
        assert float(r["math-robustness/accuracy:ci_low"]) <= accuracy <= float(r["math-robustness/accuracy:ci_high"])
        results = json.loads((board_dir / "runs" / r["model"] / "results.json").read_text())
        reported = next(m for m in results["metrics"] if m["name"] == "accuracy" and m["scope"] == "overall")
        assert accuracy == pytest.approx(reported["value"], abs=1e-6)

    html = (board_dir / "demo.html").read_text()
    assert "<script>" in html and "<style>" in html
    assert not re.search(r"""(src|href)=["']https?://""", html), "the HTML must not load external assets"
    for link in re.findall(r'href="([^"]+)"', html):
        assert (board_dir / link).is_file(), link  # each model's report.md is copied beside the board
    assert html.count("<tr>") == 3


def test_build_is_deterministic(board_dir: Path, tmp_path: Path) -> None:
    first, _ = build_from_config(board_dir / "board.yaml", tmp_path / "a")
    second, _ = build_from_config(board_dir / "board.yaml", tmp_path / "b")
    for suffix in (".md", ".csv", ".html"):
        assert (tmp_path / "a" / f"demo{suffix}").read_bytes() == (tmp_path / "b" / f"demo{suffix}").read_bytes()
    assert [r.label for r in first.rows] == [r.label for r in second.rows]


def test_mixed_tie_policies_or_versions_are_refused(board_dir: Path, tmp_path: Path) -> None:
    root = tmp_path / "mixed"
    shutil.copytree(board_dir / "runs", root / "runs")
    shutil.copy(board_dir / "board.yaml", root / "board.yaml")
    document = json.loads((root / "runs" / "random" / "results.json").read_text())
    document["metric_options"]["tie_policy"] = "strict"
    write_json(root / "runs" / "random" / "results.json", document)
    with pytest.raises(RmbenchError, match="mixes tie policies"):
        build_from_config(root / "board.yaml")
    document["metric_options"]["tie_policy"] = "expected"
    document["suite"]["version"] = "999"
    write_json(root / "runs" / "random" / "results.json", document)
    with pytest.raises(RmbenchError, match="disagree on suite.version"):
        build_from_config(root / "board.yaml")


def test_bad_config_exits_2(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    config = tmp_path / "bad.yaml"
    config.write_text("name: Bad Name\ntitle: x\nruns: [r]\ncolumns: []\ncolour: red\n")
    assert cli(["leaderboard", "build", str(config)]) == 2
    err = capsys.readouterr().err
    assert "bad.yaml" in err and "colour" in err


# --- the committed leaderboards are what the build script produces ---------------------------------------------------

GENERATED = {
    "rewardmath": ["rewardmath.md", "rewardmath.csv", "rewardmath.html", "rewardmath-accuracy-vs-mrr.md",
                   "rewardmath-accuracy-vs-mrr.json", "rewardmath-accuracy-vs-best-of-4.md",
                   "rewardmath-accuracy-vs-best-of-4.json", "rewardmath-mrr-vs-best-of-4.md",
                   "rewardmath-mrr-vs-best-of-4.json", "rewardmath/reports"],
    "baselines": ["baselines.md", "baselines.csv", "baselines.html", "baselines/reports", "baselines-bon.md",
                  "baselines-bon.csv", "baselines-bon.html", "baselines-bon/reports",
                  "baselines-benchmark-vs-bon-gold.md", "baselines-benchmark-vs-bon-gold.json"],
    "prmbench": ["prmbench.md", "prmbench.csv", "prmbench.html", "prmbench/reports"],
}


def _files(path: Path) -> dict[str, bytes]:
    if path.is_file():
        return {path.name: path.read_bytes()}
    return {p.relative_to(path).as_posix(): p.read_bytes() for p in sorted(path.rglob("*")) if p.is_file()}


def _rebuild(target: str, tmp_path: Path) -> Path:
    out = tmp_path / "out"
    out.mkdir()
    env = os.environ | {"RUNS": str(tmp_path / "runs"), "OUT": str(out), "SHARED_DATA": str(SHARED_DATA),
                        "PYTHON": sys.executable}
    subprocess.run(["bash", str(LEADERBOARDS / "build.sh"), target], check=True, env=env, cwd=REPO,
                   capture_output=True)
    return out


def _assert_up_to_date(target: str, out: Path) -> None:
    for name in GENERATED[target]:
        fresh, committed = _files(out / name), _files(LEADERBOARDS / name)
        assert fresh, f"{name} was not generated"
        assert fresh == committed, f"leaderboards/{name} is stale: run leaderboards/build.sh {target}"


def test_rewardmath_leaderboard_is_up_to_date(tmp_path: Path) -> None:
    shared_path("rewardmath/model_scores")
    out = _rebuild("rewardmath", tmp_path)
    _assert_up_to_date("rewardmath", out)
    assert (out / "rewardmath-accuracy-vs-mrr.png").read_bytes()[:4] == b"\x89PNG"
    assert (LEADERBOARDS / "rewardmath-accuracy-vs-mrr.png").is_file()


@pytest.mark.slow
def test_baselines_leaderboard_is_up_to_date(tmp_path: Path) -> None:
    shared_path("rm_bench")
    shared_path("hh_rlhf")
    _assert_up_to_date("baselines", _rebuild("baselines", tmp_path))


@pytest.mark.slow
def test_prmbench_leaderboard_is_up_to_date(tmp_path: Path) -> None:
    shared_path("prmbench")
    _assert_up_to_date("prmbench", _rebuild("prmbench", tmp_path))


# --- the HTML renders in a headless browser (when chromium is installed) --------------------------------------------


def _chromium() -> str:
    for name in ("chromium", "chromium-browser", "google-chrome"):
        found = shutil.which(name)
        if found:
            return found
    pytest.skip("no headless chromium installed (apt-get install chromium)")


def _headless(args: list[str], tmp_path: Path) -> subprocess.CompletedProcess:
    flags = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
             "--disable-component-update", "--disable-sync", "--no-first-run",
             f"--user-data-dir={tmp_path / 'profile'}"]
    return subprocess.run([_chromium(), *flags, *args], capture_output=True, text=True, timeout=120)


def test_html_renders_and_sorts_in_headless_chromium(board_dir: Path, tmp_path: Path) -> None:
    browser = _chromium()
    assert browser
    build_from_config(board_dir / "board.yaml", tmp_path)
    page = (tmp_path / "demo.html").resolve().as_uri()
    shot = tmp_path / "shot.png"
    _headless([f"--screenshot={shot}", "--window-size=1400,900", page], tmp_path)
    assert shot.read_bytes()[:4] == b"\x89PNG" and shot.stat().st_size > 10_000

    # #sort=1-asc sorts by the model column, ascending, in the browser's own JavaScript.
    dom = _headless(["--dump-dom", f"{page}#sort=1-asc"], tmp_path).stdout
    labels = re.findall(r'<td class="text" data-v="([^"]+)">', dom)
    assert labels == sorted(labels) == ["length", "random", "random-7"]
    assert 'aria-sort="ascending"' in dom


# --- overoptimization suites get every model's best-of-n curves on one plot ----------------------------------------


def test_overoptimization_board_draws_all_models_curves(tmp_path: Path) -> None:
    for engine in ("length", "random"):
        run_suite(RunConfig(suite="bon-generated", model=ModelSpec(model="", engine=engine),
                            out=tmp_path / "runs" / engine, cache=tmp_path / "c.sqlite", show_progress=False))
    (tmp_path / "bon.yaml").write_text(
        "name: bon\ntitle: Best-of-n\nruns: [runs/*]\noverall: false\n"
        "columns:\n  - {suite: bon-generated, metric: gold_bon_4}\n  - {suite: bon-generated, metric: gold_gain}\n"
    )
    assert cli(["leaderboard", "build", str(tmp_path / "bon.yaml")]) == 0
    png = tmp_path / "bon" / "bon-generated-overoptimization.png"
    assert png.read_bytes()[:4] == b"\x89PNG"
    assert "](bon/bon-generated-overoptimization.png)" in (tmp_path / "bon.md").read_text()
    assert 'href="bon/bon-generated-overoptimization.png"' in (tmp_path / "bon.html").read_text()
    first = png.read_bytes()
    assert cli(["leaderboard", "build", str(tmp_path / "bon.yaml")]) == 0
    assert png.read_bytes() == first  # no timestamps: same runs, same bytes


def test_merged_curves_keep_each_models_scopes_and_refuse_other_pools() -> None:
    from rmbench.report.curves import merge_curves

    def curves(n: list[int], scopes: list[str]) -> dict:
        return {"n": n, "d": [float(i) for i in n], "kl": n, "gold_oracle": n,
                "scopes": {s: {"label": "proxy", "gold": n} for s in scopes}}

    merged = merge_curves({"b": curves([1, 2], ["overall"]), "a": curves([1, 2], ["overall", "ensemble:mean"])})
    assert list(merged["scopes"]) == ["a", "a ensemble mean", "b"]
    assert merged["scopes"]["b"]["label"] == "b" and merged["n"] == [1, 2]
    with pytest.raises(ValueError, match="another best-of-n pool"):
        merge_curves({"a": curves([1, 2], ["overall"]), "b": curves([1, 2, 3], ["overall"])})
