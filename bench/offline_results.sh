#!/usr/bin/env bash
# offline_results.sh: the offline results table of BENCHMARKS.md, end to end. Collects a dataset
# per env from trained policies, trains FISOR and the baselines on it, evaluates each run, and
# writes one CSV row per run.
#
#   bench/offline_results.sh [-b SAFERL] [-o OUT] [-t SECONDS] [-e EPISODES] [-d cpu|cuda]
#                            ENV=POLICY[,POLICY...] [ENV=...]
#
# POLICY is a run directory or checkpoint of `saferl train`. Each training run has a budget of
# SECONDS (-t, default 3600): it stops by SIGINT, which saves a checkpoint, unless it finishes
# its config's steps first. With -d cuda the GPU runs go one at a time, since CUDA time-slices
# between processes (two FISOR runs on one H100 each ran 3.3x slower than one alone); the
# BC runs use CPU threads beside them.
set -euo pipefail

SAFERL=build/bin/saferl OUT=offline_results BUDGET=3600 EPISODES=240 DEVICE=cpu
while getopts "b:o:t:e:d:" opt; do
  case $opt in
    b) SAFERL=$OPTARG ;;
    o) OUT=$OPTARG ;;
    t) BUDGET=$OPTARG ;;
    e) EPISODES=$OPTARG ;;
    d) DEVICE=$OPTARG ;;
    *) sed -n '2,13p' "$0" >&2; exit 2 ;;
  esac
done
shift $((OPTIND - 1))
[ $# -ge 1 ] || { sed -n '2,13p' "$0" >&2; exit 2; }
CONFIGS=$(cd "$(dirname "$0")/.." && pwd)/configs/offline
mkdir -p "$OUT"/data "$OUT"/runs "$OUT"/eval "$OUT"/logs

# name -> the config's steps: FISOR's reference budget, OSRL's for the baselines
declare -A STEPS=([fisor]=1000000 [bcq_lag]=100000 [cpq]=100000 [coptidice]=100000
  [bc_all]=100000 [bc_safe]=100000)

train() {  # env algo device
  local env=$1 algo=$2 dev=$3
  timeout -s INT "$BUDGET" "$SAFERL" offline train "$CONFIGS/$algo/$env.yaml" --quiet \
    --set dataset="$OUT/data/$env.hdf5" --set device="$dev" --set train.eval_every=0 \
    --set train.steps="${STEPS[$algo]}" --out "$OUT/runs/$env-$algo" \
    > "$OUT/logs/train_$env-$algo.log" 2>&1 || true
}

for spec in "$@"; do
  env=${spec%%=*}
  "$SAFERL" collect --policy "${spec#*=}" --env "$env" --episodes "$EPISODES" --noise 0.1 \
    --out "$OUT/data/$env.hdf5" --quiet
  "$SAFERL" dataset info "$OUT/data/$env.hdf5" --cost-limit 10 --json > "$OUT/data/$env.json"
  train "$env" bc_all cpu &
  train "$env" bc_safe cpu &
  if [ "$DEVICE" = cuda ]; then
    for algo in fisor bcq_lag cpq coptidice; do train "$env" $algo cuda; done
  else
    for algo in fisor bcq_lag cpq coptidice; do train "$env" $algo cpu & done
  fi
  wait
done

echo "env,algo,updates,return,cost,normalized_reward,normalized_reward_std,normalized_cost,normalized_cost_std,safe" \
  > "$OUT/results.csv"
for run in "$OUT"/runs/*/*/; do
  name=$(basename "$(dirname "$run")")
  "$SAFERL" offline eval "$run" --episodes 20 --cost-limit 10 --json --device "$DEVICE" \
    > "$OUT/eval/$name.json" 2> "$OUT/logs/eval_$name.log" || continue
  python3 - "$OUT/eval/$name.json" >> "$OUT/results.csv" <<'EOF'
import json, sys
d = json.load(open(sys.argv[1]))
r, c = d["normalized_reward"], d["normalized_cost"]
print(f'{d["env"]},{d["algo"]},{d["trained_steps"]},{d["return"]["mean"]:.4g},'
      f'{d["cost"]["mean"]:.4g},{r["mean"]:.4f},{r["std"]:.4f},{c["mean"]:.4f},{c["std"]:.4f},'
      f'{int(d["safe"])}')
EOF
done
column -t -s, "$OUT/results.csv"
