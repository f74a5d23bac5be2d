"""Scale with suite size: time and peak memory of one whole run (suite → requests → scoring → metrics → run
directory) on generated pairwise suites of two sizes, each in a fresh process, with the length baseline.

    python bench/streaming.py                      # 10k and 100k pairs
    python bench/streaming.py --sizes 2000 20000   # quicker

What to look for: seconds per 1k pairs about constant (time linear in suite size) and peak RSS about the same at
both sizes, well under 1 GB. The pairwise protocol streams (``rmbench.runner.loop``): items are generated, scored and
reduced to per-item outcomes 10,000 at a time, and scores.parquet is appended as it goes; what still grows with the
suite is the per-item outcome frame and one 128-bit digest per unique request (well under 1 KB per pair).
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

SUITE = """\
name: synthetic-{n}
version: "1"
description: generated pairs for the streaming benchmark
protocol: pairwise
sources:
  - generator:
      name: synthetic_pairs
      params: {{n_pairs: {n}, seed: 0, pairs_per_prompt: 2}}
fields:
  subset: subset
"""


def one_run(n_pairs: int, workdir: Path) -> dict[str, object]:
    """Score a fresh n-pair suite (cold cache) in this process; its timings and this process's peak RSS."""
    from rmbench.modelspec import ModelSpec
    from rmbench.runner.run import RunConfig, run_suite

    suite = workdir / f"synthetic-{n_pairs}.yaml"
    suite.write_text(SUITE.format(n=n_pairs))
    clock = time.perf_counter()
    outcome = run_suite(
        RunConfig(
            suite=str(suite),
            model=ModelSpec.build({"model": "", "engine": "length"}),
            out=workdir / "run",
            cache=workdir / "cache.sqlite",
            show_progress=False,
        )
    )
    wall = time.perf_counter() - clock
    peak_kib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss  # KiB on Linux
    return {
        "pairs": n_pairs,
        "requests": outcome.results["counts"]["requests"],
        "wall_s": round(wall, 2),
        "stages_s": {k: round(v, 2) for k, v in outcome.execution["timings_s"].items()},
        "peak_rss_mb": round(peak_kib / 1024, 1),
        "accuracy": outcome.result.metric("accuracy").value,
    }


def measure(n_pairs: int) -> dict[str, object]:
    """``one_run`` in a fresh interpreter, so each size's peak RSS is its own."""
    with tempfile.TemporaryDirectory(prefix="rmbench-streaming-") as tmp:
        done = subprocess.run(
            [sys.executable, __file__, "--child", str(n_pairs), "--workdir", tmp],
            check=True,
            capture_output=True,
            text=True,
        )
    return json.loads(done.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[10_000, 100_000])
    parser.add_argument("--child", type=int, help=argparse.SUPPRESS)
    parser.add_argument("--workdir", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        print(json.dumps(one_run(args.child, args.workdir)))
        return

    rows = [measure(n) for n in args.sizes]
    print(f"{'pairs':>8} {'requests':>9} {'wall s':>8} {'s / 1k pairs':>12} {'peak RSS MB':>12}  stages (s)")
    for row in rows:
        per_k = row["wall_s"] / row["pairs"] * 1000  # type: ignore[operator]
        stages = ", ".join(f"{k.split(':')[0]} {v}" for k, v in row["stages_s"].items())  # type: ignore[union-attr]
        print(f"{row['pairs']:>8} {row['requests']:>9} {row['wall_s']:>8} {per_k:>12.3f} {row['peak_rss_mb']:>12}  {stages}")
    if len(rows) > 1:
        small, large = rows[0], rows[-1]
        size = large["pairs"] / small["pairs"]  # type: ignore[operator]
        print(
            f"{size:.0f}x the pairs: {large['wall_s'] / small['wall_s']:.2f}x the time, "  # type: ignore[operator]
            f"{large['peak_rss_mb'] / small['peak_rss_mb']:.2f}x the peak RSS"  # type: ignore[operator]
        )


if __name__ == "__main__":
    main()
