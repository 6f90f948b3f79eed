#!/usr/bin/env bash
# saferl's main job from a fresh machine: install what is missing, build, then train the default
# constrained policy, PPO-Lag on SafetyPointGoal1 (cost limit 25), for one million steps (a few
# minutes on two cores). It prints where the run went and its final return and cost.
set -euo pipefail
cd "$(dirname "$0")/.."
./scripts/setup.sh
./build/bin/saferl train configs/ppo_lag/SafetyPointGoal1.yaml --set train_cfgs.total_steps=1000000 "$@"
