#!/usr/bin/env bash
# Rebuild the published leaderboards from the shared data (see leaderboards/README.md).
#
#   leaderboards/build.sh              # everything
#   leaderboards/build.sh rewardmath   # or: baselines, prmbench
#
# Environment:
#   RUNS         run directories (not committed)            default runs/leaderboards
#   OUT          generated md/csv/html/png (committed)     default leaderboards
#   SHARED_DATA  the benchmark data                         default $RMBENCH_SHARED_DATA or ../shared/data
#   CACHE        score cache (re-runs reuse scores)          default $RMBENCH_CACHE or .rmbench-cache/scores.sqlite
#   PYTHON       the interpreter with rmbench importable    default .venv/bin/python
#   JOBS         score files imported in parallel           default: the number of CPUs
set -euo pipefail
SELF="$(cd "$(dirname "$0")" && pwd)/$(basename "$0")"
cd "$(dirname "$SELF")/.."

PYTHON=${PYTHON:-.venv/bin/python}
RUNS=${RUNS:-runs/leaderboards}
OUT=${OUT:-leaderboards}
SHARED_DATA=${SHARED_DATA:-${RMBENCH_SHARED_DATA:-../shared/data}}
CACHE=${CACHE:-${RMBENCH_CACHE:-.rmbench-cache/scores.sqlite}}
JOBS=${JOBS:-$(nproc 2>/dev/null || echo 2)}
export HF_HUB_OFFLINE=1

rmbench() { "$PYTHON" -m rmbench "$@"; }

import_score_file() {  # FILE POLICY: one published score file -> one run directory named after the model
  local model log
  model=$(basename "$1" _reward.json.gz)
  # Quiet on success (every file warns about something expected); the whole output on failure.
  log=$(rmbench evaluate-scores "$1" --format rewardmath --tie-policy "$2" --out "$RUNS/rewardmath/$2/$model" \
    --json 2>&1) || { printf 'failed: evaluate-scores %s --tie-policy %s\n%s\n' "$1" "$2" "$log" >&2; return 1; }
}

rewardmath() {
  local policy
  for policy in expected strict; do
    rm -rf "$RUNS/rewardmath/$policy"
    # One process per file (that is the CLI contract); xargs fails when any of them does.
    printf '%s\n' "$SHARED_DATA"/rewardmath/model_scores/*_reward.json.gz \
      | xargs -P "$JOBS" -I{} bash "$SELF" _import {} "$policy"
  done
  rmbench leaderboard build leaderboards/rewardmath.yaml --out-dir "$OUT" --runs-base "$RUNS"
  # Accuracy vs MRR vs RewardBench-2-style best-of-4 accuracy across the score files (pairwise judges have no MRR
  # and are reported as left out of the MRR pairs).
  correlate_rewardmath accuracy mrr accuracy-vs-mrr
  correlate_rewardmath accuracy best_of_4_accuracy accuracy-vs-best-of-4
  correlate_rewardmath mrr best_of_4_accuracy mrr-vs-best-of-4
}

correlate_rewardmath() {  # X Y NAME: two rewardmath metrics across the expected-policy runs -> $OUT/rewardmath-NAME.*
  local out="$OUT/rewardmath-$3"
  rmbench correlate "$RUNS/rewardmath/expected/*" --x "rewardmath/$1" --y "rewardmath/$2" \
    --plot "$out.png" --markdown "$out.md" --json-file "$out.json"
}

baselines() {
  local engine suite
  rm -rf "$RUNS/baselines"
  for engine in length random minilm; do
    for suite in math-robustness rm-bench-chat rm-bench-code rm-bench-safety hh-rlhf-harmless; do
      rmbench run --suite "$suite" --engine "$engine" --data-dir "$SHARED_DATA" --cache "$CACHE" \
        --out "$RUNS/baselines/$suite/$engine" --no-progress --json > /dev/null
    done
  done
  rmbench leaderboard build leaderboards/baselines.yaml --out-dir "$OUT" --runs-base "$RUNS"
  # The same baselines as best-of-n proxies against a gold judge, and whether the benchmarks predict that gold.
  for engine in length random minilm; do
    rmbench run --suite alpacaeval-bon --engine "$engine" --data-dir "$SHARED_DATA" --cache "$CACHE" \
      --out "$RUNS/baselines/alpacaeval-bon/$engine" --no-progress --json > /dev/null
  done
  rmbench leaderboard build leaderboards/baselines-bon.yaml --out-dir "$OUT" --runs-base "$RUNS"
  rmbench correlate "$RUNS/baselines/rm-bench-chat/*" "$RUNS/baselines/alpacaeval-bon/*" \
    --x rm-bench-chat/score --y alpacaeval-bon/gold_bon_11 --plot "$OUT/baselines-benchmark-vs-bon-gold.png" \
    --markdown "$OUT/baselines-benchmark-vs-bon-gold.md" --json-file "$OUT/baselines-benchmark-vs-bon-gold.json"
}

prmbench() {
  local engine
  rm -rf "$RUNS/prmbench"
  for engine in random-prm arith-prm; do
    rmbench run --suite prmbench --engine "$engine" --data-dir "$SHARED_DATA" --cache "$CACHE" \
      --out "$RUNS/prmbench/$engine" --no-progress --json > /dev/null
  done
  rmbench leaderboard build leaderboards/prmbench.yaml --out-dir "$OUT" --runs-base "$RUNS"
}

case "${1:-all}" in
  _import) shift; import_score_file "$@" ;;
  rewardmath) rewardmath ;;
  baselines) baselines ;;
  prmbench) prmbench ;;
  all) rewardmath; baselines; prmbench ;;
  *) echo "usage: $0 [rewardmath|baselines|prmbench|all]" >&2; exit 2 ;;
esac
