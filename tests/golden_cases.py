"""The golden runs: shipped suites scored offline, whose numbers must stay byte-identical through refactors.

Each case is one ``rmbench run`` (or ``evaluate-scores``) command; ``tests/golden/<case>.json`` holds what it
produced when the case was added. ``python -m tests.golden_cases`` rewrites those files (do that only for a change
that is meant to move a number, and say so in the commit).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

GOLDEN_DIR = Path(__file__).parent / "golden"


@dataclass(frozen=True)
class GoldenCase:
    name: str
    args: tuple[str, ...]
    shared: str | None = None  # a path under ../shared/data the case needs (skipped when absent)
    tiny_model: bool = False  # --model <tiny Llama classifier built by the test session>


def _run(suite: str, engine: str, *extra: str, shared: str | None = None) -> GoldenCase:
    data = ("--data-dir", "{shared}") if shared else ()
    return GoldenCase(f"{suite}--{engine}", ("run", "--suite", suite, "--engine", engine, *data, *extra), shared)


CASES: list[GoldenCase] = [
    _run("math-robustness", "length"),
    _run("math-robustness", "random"),
    _run("math-robustness", "minilm"),
    _run("bon-generated", "length"),
    _run("contrast-generated", "length"),
    _run("contrast-generated", "random"),
    _run("probing-generated", "minilm"),
    _run("rm-bench-chat", "length", shared="rm_bench"),
    _run("rm-bench-code", "random", shared="rm_bench"),
    _run("rm-bench-safety", "length", shared="rm_bench"),
    _run("hh-rlhf-harmless", "length", shared="hh_rlhf"),
    _run("rewardbench2-ties", "length", shared="rewardbench2_ties_sample"),
    _run("rmb-pairwise", "length", shared="rmb"),
    _run("rmb-bon", "length", shared="rmb"),
    _run("alpacaeval-bon", "length", shared="alpacaeval_bon16"),
    _run("contrast-paraphrase", "random", shared="contrast_instructions"),
    GoldenCase(
        "hh-rlhf-harmless--hf-tiny",
        ("run", "--suite", "hh-rlhf-harmless", "--engine", "hf", "--data-dir", "{shared}", "--limit", "40"),
        shared="hh_rlhf",
        tiny_model=True,
    ),
    GoldenCase(
        "rewardmath--gpt4-reward",
        ("evaluate-scores", "{shared}/rewardmath/model_scores/gpt4_reward.json.gz", "--format", "rewardmath"),
        shared="rewardmath",
    ),
]

#: Keys that describe the machine or the package build, not the numbers.
VOLATILE = ("environment", "rmbench_version")


def comparable(results: dict[str, Any], shared: Path) -> dict[str, Any]:
    """What must not move: every number and count, the data provenance, and the options that produced them
    (the shared data's absolute path, which differs between machines, reads ``{shared}``)."""
    text = json.dumps(results, ensure_ascii=False).replace(json.dumps(str(shared))[1:-1], "{shared}")
    results = json.loads(text)
    return {
        "suite": {k: results["suite"][k] for k in ("name", "version", "protocol")},
        "data": results.get("data"),
        "metric_options": results.get("metric_options"),
        "limit": results.get("limit"),
        "metrics": sorted(
            (m["scope"], m["name"], repr(m["value"]), repr(m["ci_low"]), repr(m["ci_high"]), m["n"])
            # tie-aware metrics also pin their tie effect (METRICS.md §0)
            + ((m["ties"], repr(m["other_policy_value"])) if "ties" in m else ())
            for m in results["metrics"]
        ),
        "counts": results.get("counts"),
        "excluded": results.get("excluded"),
        "extra": results.get("extra"),
    }


def run_case(case: GoldenCase, workdir: Path, shared: Path, tiny_model: Path | None) -> dict[str, Any]:
    """Run one case in ``workdir`` (its own cache) and return its results.json."""
    out = workdir / case.name
    args = [a.replace("{shared}", str(shared)) for a in case.args]
    if args[0] == "run":
        args += ["--out", str(out), "--cache", str(workdir / "cache.sqlite"), "--no-progress"]
        if case.tiny_model:
            assert tiny_model is not None
            args += ["--model", str(tiny_model)]
    else:
        args += ["--out", str(out)]
    env = {**os.environ, "HF_HUB_OFFLINE": "1"}
    done = subprocess.run([sys.executable, "-m", "rmbench", *args], capture_output=True, text=True, env=env)
    assert done.returncode == 0, f"{case.name}: exit {done.returncode}\n{done.stdout[-2000:]}\n{done.stderr[-3000:]}"
    return json.loads((out / "results.json").read_text())


def golden_path(case: GoldenCase) -> Path:
    return GOLDEN_DIR / f"{case.name}.json"


def main() -> None:
    import tempfile

    from rmbench.devtools.tiny_models import build_tiny_llama_classifier

    shared = Path(os.environ.get("RMBENCH_SHARED_DATA") or Path(__file__).resolve().parents[2] / "shared" / "data")
    GOLDEN_DIR.mkdir(exist_ok=True)
    with tempfile.TemporaryDirectory() as tmp:
        tiny = build_tiny_llama_classifier(Path(tmp) / "tiny-rm", seed=0)
        for case in CASES:
            if case.shared and not (shared / case.shared).exists():
                print(f"skip {case.name}: {shared / case.shared} absent")
                continue
            results = run_case(case, Path(tmp), shared, tiny)
            text = json.dumps(comparable(results, shared), indent=1, sort_keys=True, ensure_ascii=False) + "\n"
            golden_path(case).write_text(text, encoding="utf-8")
            print(f"wrote {golden_path(case)}")


if __name__ == "__main__":
    main()
