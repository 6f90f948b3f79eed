#!/usr/bin/env bash
# The core benchmark beside its baseline, measured in the same run: saferl's PPO-Lag minibatch
# update against PyTorch doing the same work (bench/torch_ppo_update.py), one thread each.
# Usage: bench/update.sh [build dir] [device: cpu|cuda]
set -euo pipefail
cd "$(dirname "$0")/.."
build=${1:-build}
device=${2:-cpu}
python=/usr/bin/python3
[ -x "$python" ] || python=python3

run() {  # label, saferl args, torch args
  local ours theirs
  ours=$("$build/bin/saferl" bench update --device "$device" --json $2)
  theirs=$("$python" bench/torch_ppo_update.py --device "$device" $3)
  "$python" - "$1" "$ours" "$theirs" <<'PY'
import json, sys
label, ours, theirs = sys.argv[1], json.loads(sys.argv[2]), json.loads(sys.argv[3])
o, t = ours["us_per_minibatch"], theirs["us_per_minibatch"]
print(f"{label:34s} saferl {o:10.1f} us ({ours['gflops']:8.1f} GFLOP/s, sgemm alone "
      f"{ours['sgemm_gflops']:8.1f})  torch {theirs['torch']} {t:10.1f} us  speed-up {t / o:5.1f}x")
PY
}

if [ "$device" = cpu ]; then
  run "64-64, batch 64 (OmniSafe default)" "--batch 64" "--batch 64 --iters 2000"
  run "256-256, batch 2048" "--batch 2048 --hidden 256,256" "--batch 2048 --hidden 256,256 --iters 20"
else
  run "64-64, batch 4096" "--batch 4096" "--batch 4096 --iters 300"
  run "256-256, batch 4096" "--batch 4096 --hidden 256,256" "--batch 4096 --hidden 256,256 --iters 200"
fi
