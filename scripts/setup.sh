#!/usr/bin/env bash
# Install the Debian packages saferl needs (only those missing) and build it into build/.
# Idempotent: a second run installs nothing and rebuilds only what changed.
# Environment: SRL_BUILD_DIR (default build), SRL_CMAKE_ARGS (extra cmake arguments).
set -euo pipefail
cd "$(dirname "$0")/.."

packages=(
  build-essential cmake ninja-build pkg-config clang libclang-rt-14-dev
  libgsl-dev libopenblas-dev libyaml-dev libhdf5-dev libzmq3-dev
  libmujoco-dev libmujoco-samples libosmesa6-dev libegl1 libegl-mesa0 zlib1g-dev libpng-dev
  python3 python3-numpy python3-h5py python3-zmq python3-torch gnuplot-nox
)

missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if ((${#missing[@]})); then
  echo "setup: installing ${missing[*]}"
  sudo=""; [ "$(id -u)" -eq 0 ] || sudo="sudo"
  export DEBIAN_FRONTEND=noninteractive
  $sudo apt-get update -qq
  $sudo apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi

# CUDA is optional: the toolkit's usual home is searched when nvcc is not on PATH
if ! command -v nvcc >/dev/null && [ -x /usr/local/cuda/bin/nvcc ]; then
  export PATH=/usr/local/cuda/bin:$PATH
fi

build=${SRL_BUILD_DIR:-build}
# shellcheck disable=SC2086
cmake -S . -B "$build" -G Ninja -DCMAKE_BUILD_TYPE=Release ${SRL_CMAKE_ARGS:-} >/dev/null
cmake --build "$build" --parallel "$(nproc)"
