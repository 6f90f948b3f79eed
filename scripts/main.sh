#!/usr/bin/env bash
# saferl's main job from a fresh machine: install what is missing, build, then run the core
# benchmark (OmniSafe's PPO-Lag minibatch update, one thread).
set -euo pipefail
cd "$(dirname "$0")/.."
./scripts/setup.sh
./build/bin/saferl bench update
