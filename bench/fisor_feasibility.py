#!/usr/bin/env python3
"""How FISOR's feasibility critics see a dataset, from a checkpoint (numpy and h5py only).

For three groups of dataset states (inside a hazard: cost > 0; feasible: cost 0 and Vh <= 0;
infeasible without cost: cost 0 and Vh > 0) it draws K uniform actions per state and reports the
target Qh (ensemble max, the value FISOR's candidate choice reads): its mean, the mean over
states of its minimum over actions, the median spread (max - min over actions), and the share
of states where some action has Qh <= 0. A spread that is noise next to a mean far above 0 says
no action leads out: the candidate choice then follows the critics' approximation error.
Beside the critics' share of rows with Vh > 0 it prints the share the same HJ backup gives when
it follows the dataset's own episodes (the behaviour's value): Vh approximates the least Qh over
the data's actions, so a Vh share still above the behaviour's says the critics have not settled.
Usage: fisor_feasibility.py CHECKPOINT DATASET [--states 400] [--actions 64] [--seed 0]
"""
import argparse
import json
import struct

import h5py
import numpy as np


class Checkpoint:
    """The F32 tensors of a safetensors file, read on demand."""

    def __init__(self, path):
        self.file = open(path, "rb")
        (n,) = struct.unpack("<Q", self.file.read(8))
        self.header = json.loads(self.file.read(n))
        self.base = 8 + n

    def tensor(self, name):
        meta = self.header[name]
        begin, end = meta["data_offsets"]
        self.file.seek(self.base + begin)
        return np.frombuffer(self.file.read(end - begin), np.float32).reshape(meta["shape"])

    def mlp(self, prefix, x):
        """saferl's critic MLP: ReLU between Dense layers, one output."""
        n = sum(1 for k in self.header if k.startswith(prefix + ".layers.") and k.endswith(".bias"))
        for i in range(n):
            x = x @ self.tensor(f"{prefix}.layers.{i}.weight").T + self.tensor(f"{prefix}.layers.{i}.bias")
            if i < n - 1:
                x = np.maximum(x, 0)
        return x[:, 0]


def behaviour_infeasible_share(cost, done, gamma=0.99):
    """Share of rows whose HJ value along their own episode is > 0 (h = +25 on cost, -1 else)."""
    h = np.where(cost > 0, 25.0, -1.0)
    v = np.empty_like(h)
    for t in range(len(h) - 1, -1, -1):
        last = done[t] or t == len(h) - 1
        v[t] = h[t] if last else (1 - gamma) * h[t] + gamma * max(h[t], v[t + 1])
    return (v > 0).mean()


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("checkpoint")
    ap.add_argument("dataset")
    ap.add_argument("--states", type=int, default=400)
    ap.add_argument("--actions", type=int, default=64)
    ap.add_argument("--seed", type=int, default=0)
    a = ap.parse_args()
    ck = Checkpoint(a.checkpoint)
    with h5py.File(a.dataset, "r") as d:
        obs = d["observations"][:].astype(np.float32)
        cost = d["costs"][:].reshape(-1)
        act_dim = d["actions"].shape[1]
        done = (d["terminals"][:].reshape(-1) != 0) | (d["timeouts"][:].reshape(-1) != 0)
    rng = np.random.default_rng(a.seed)
    vh = ck.mlp("value_c", obs)
    groups = {
        "in a hazard (cost > 0)": np.flatnonzero(cost > 0),
        "feasible (Vh <= 0)": np.flatnonzero((cost == 0) & (vh <= 0)),
        "infeasible, cost 0 (Vh > 0)": np.flatnonzero((cost == 0) & (vh > 0)),
    }
    K = a.actions
    print(f"{'states':30s} {'rows':>5s} {'Qh mean':>8s} {'min over a':>10s} {'spread':>7s} {'some Qh<=0':>10s}")
    for name, idx in groups.items():
        if len(idx) == 0:
            print(f"{name:30s} {0:5d}")
            continue
        idx = rng.choice(idx, size=min(a.states, len(idx)), replace=False)
        s = np.repeat(obs[idx], K, axis=0)
        act = rng.uniform(-1, 1, size=(len(s), act_dim)).astype(np.float32)
        sa = np.concatenate([s, act], axis=1)
        q = np.maximum(ck.mlp("target_critic_c.0", sa), ck.mlp("target_critic_c.1", sa)).reshape(len(idx), K)
        spread = np.median(q.max(1) - q.min(1))
        print(f"{name:30s} {len(idx):5d} {q.mean():8.2f} {q.min(1).mean():10.2f} {spread:7.2f} "
              f"{(q.min(1) <= 0).mean():10.2f}")
    print(f"dataset rows with Vh > 0: {(vh > 0).mean():.3f}; along the data's own episodes: "
          f"{behaviour_infeasible_share(cost, done):.3f}; rows with cost > 0: {(cost > 0).mean():.3f}")


if __name__ == "__main__":
    main()
