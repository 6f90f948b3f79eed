# test_lagrange_torch.py: λ of the Adam rule against OmniSafe's own recipe run in PyTorch
# (a scalar nn.Parameter, loss −λ·(Jc − d), torch.optim.Adam, clamp_(0, None)), bit for bit in
# float32 over long random Jc traces, and the PID rule against a transliteration of OmniSafe's
# PIDLagrangian.pid_update (Python floats, a deque with maxlen). Drives
# tests/algos/tool_lagrange_seq.c.
import collections
import os
import random
import subprocess
import sys

try:
    import numpy as np
    import torch
except ImportError as e:  # the suite runs under Debian's python3 with torch
    print(f"skip: {e}")
    sys.exit(0)

TOOL = os.path.join(os.environ.get("SRL_BIN_DIR", "bin"), "tool_lagrange_seq")
failures = 0


def run_tool(kind, limit, trace, lr=None):
    args = [TOOL, kind, repr(limit)] + ([repr(lr)] if lr is not None else [])
    out = subprocess.run(args, input="\n".join(repr(x) for x in trace), capture_output=True,
                         text=True, check=True).stdout.split("\n")
    return [[np.float32(v) for v in line.split()] for line in out[:len(trace)]]


def check(name, ok, detail=""):
    global failures
    print(("ok   " if ok else "FAIL ") + name + (f": {detail}" if detail else ""))
    failures += not ok


def trace_for(rng, limit, n):
    # random costs around and far from the limit, exact hits, long zero stretches
    out = []
    while len(out) < n:
        kind = rng.randrange(4)
        k = rng.randrange(1, 12)
        if kind == 0:
            out += [rng.uniform(0, 3 * limit + 10) for _ in range(k)]
        elif kind == 1:
            out += [0.0] * k
        elif kind == 2:
            out += [float(limit)] * k
        else:
            out += [limit + rng.uniform(-2, 2) for _ in range(k)]
    return [max(0.0, x) for x in out[:n]]


# ---- Adam on λ against torch ------------------------------------------------------------------

def torch_adam(limit, trace, lr):
    lam = torch.nn.Parameter(torch.as_tensor(max(0.001, 0.0)), requires_grad=True)
    opt = torch.optim.Adam([lam], lr=lr)
    rows = []
    for jc in trace:
        opt.zero_grad()
        loss = -lam * (jc - limit)
        loss.backward()
        opt.step()
        lam.data.clamp_(0.0, None)
        st = opt.state[lam]
        rows.append([np.float32(lam.item()), np.float32(st["exp_avg"].item()),
                     np.float32(st["exp_avg_sq"].item())])
    return rows


rng = random.Random(0)
for limit, lr in [(25.0, None), (0.0, None), (10.0, 0.01), (25.0, 1e-5)]:
    tr = trace_for(rng, max(limit, 1.0), 1000)
    ours = run_tool("adam", limit, tr, lr)
    ref = torch_adam(limit, tr, lr if lr is not None else 0.035)
    bad = [i for i in range(len(tr)) if ours[i] != ref[i]]
    check(f"adam cost_limit {limit} lr {lr or 0.035}: 1000 updates bit-identical to torch "
          f"{torch.__version__}", not bad,
          f"{len(bad)} differ, first at {bad[0]}: {ours[bad[0]]} vs {ref[bad[0]]}" if bad else "")


# ---- PID against OmniSafe's pid_update --------------------------------------------------------

def omnisafe_pid(limit, trace, kp=0.1, ki=0.01, kd=0.01, d_delay=10, a_p=0.95, a_d=0.95,
                 sum_norm=True, diff_norm=False, penalty_max=100, init=0.001):
    pid_i, delta_p, cost_d = init, 0.0, 0.0
    cost_ds = collections.deque(maxlen=d_delay)
    cost_ds.append(0.0)
    rows = []
    for ep_cost_avg in trace:
        delta = float(ep_cost_avg - limit)
        pid_i = max(0.0, pid_i + delta * ki)
        if diff_norm:
            pid_i = max(0.0, min(1.0, pid_i))
        delta_p = delta_p * a_p + (1 - a_p) * delta
        cost_d = cost_d * a_d + (1 - a_d) * float(ep_cost_avg)
        pid_d = max(0.0, cost_d - cost_ds[0])
        pid_o = kp * delta_p + pid_i + kd * pid_d
        penalty = max(0.0, pid_o)
        if diff_norm:
            penalty = min(1.0, penalty)
        if not (diff_norm or sum_norm):
            penalty = min(penalty, penalty_max)
        cost_ds.append(cost_d)
        rows.append([penalty, pid_i, delta_p, cost_d])
    return rows


for limit in [25.0, 0.0]:
    tr = trace_for(rng, max(limit, 1.0), 500)
    ours = run_tool("pid", limit, tr)
    ref = omnisafe_pid(limit, tr)
    # our state is float32 between updates: agreement to float precision, |a − b| ≤ 1e-5·(1 + |b|)
    # (the EMA P crosses 0, so a purely relative measure would be meaningless there)
    err = max(abs(float(o) - r) / (1 + abs(r)) for a, b in zip(ours, ref) for o, r in zip(a, b))
    check(f"pid cost_limit {limit}: 500 updates match OmniSafe's pid_update", err < 1e-5,
          f"max error {err:.3g}")

print(f"{4 + 2 - failures} passed, {failures} failed")
sys.exit(1 if failures else 0)
