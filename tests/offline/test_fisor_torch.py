# test_fisor_torch.py: FISOR updates in C against the same updates written in PyTorch from the
# reference (jaxrl5/agents/fisor/fisor.py: update = two actor steps on the batch halves, then
# update_v, update_q, update_vc, update_qc on the first critic_batch rows). The C tool
# (tests/offline/tool_fisor_step.c) writes the agent's tensors before and after the updates and
# the actor's time steps and noise; torch starts from the same tensors, follows the reference's
# formulas with optimizers that persist across updates, and every network's parameters after the
# updates (the EMA actor and the targets included) and the last update's statistics are compared
# by norm-wise relative error.
import json
import math
import os
import struct
import subprocess
import sys
import tempfile

try:
    import numpy as np
    import torch
    import torch.nn.functional as F
except ImportError as e:  # the suite runs under Debian's python3 with torch
    print(f"skip: {e}")
    sys.exit(0)

torch.set_num_threads(1)
torch.set_default_dtype(torch.float32)


# ---- safetensors by hand ----------------------------------------------------------------------

def st_write(path, tensors, metadata):
    header, blobs, off = {}, [], 0
    for name, arr in tensors.items():
        arr = np.ascontiguousarray(arr, dtype="<f4")
        header[name] = {"dtype": "F32", "shape": list(arr.shape),
                        "data_offsets": [off, off + arr.nbytes]}
        blobs.append(arr.tobytes())
        off += arr.nbytes
    header["__metadata__"] = {k: str(v) for k, v in metadata.items()}
    h = json.dumps(header).encode()
    h += b" " * (-len(h) % 8)
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(h)))
        f.write(h)
        for b in blobs:
            f.write(b)


def st_read(path):
    with open(path, "rb") as f:
        raw = f.read()
    (n,) = struct.unpack("<Q", raw[:8])
    header = json.loads(raw[8:8 + n])
    header.pop("__metadata__", None)
    dt = {"F32": "<f4", "I64": "<i8", "U8": "u1"}
    out = {}
    for name, info in header.items():
        b, e = info["data_offsets"]
        out[name] = np.frombuffer(raw[8 + n + b:8 + n + e], dtype=dt[info["dtype"]]).reshape(
            info["shape"])
    return out


def rel(a, b):
    a, b = np.asarray(a, dtype=np.float64), np.asarray(b, dtype=np.float64)
    return float(np.linalg.norm(a - b) / max(np.linalg.norm(b), 1e-30))


def tool_path():
    bin_dir = os.environ.get("SRL_BIN_DIR", os.path.join(os.getcwd(), "bin"))
    return os.path.join(bin_dir, "tool_fisor_step")


# ---- the networks, on tensors named as the C checkpoint ---------------------------------------

def params_of(tensors, prefix):
    p = prefix + "."
    return {k[len(p):]: torch.tensor(np.array(v), requires_grad=True)
            for k, v in tensors.items() if k.startswith(p) and v.dtype == np.float32}


def lin(p, i, x):
    return F.linear(x, p[f"layers.{i}.weight"], p[f"layers.{i}.bias"])


def critic(p, x):  # MLP(256, 256, relu, activate_final) → Dense(1), here 32-32
    return lin(p, 2, F.relu(lin(p, 1, F.relu(lin(p, 0, x))))).squeeze(-1)


def cond_net(p, t):  # FourierFeatures(learnable) → MLP((16, 16), mish, activate_final=False)
    f = 2 * math.pi * t[:, None] * p["fourier.weight"][None, :]
    feat = torch.cat([torch.cos(f), torch.sin(f)], dim=-1)
    return lin(p, 1, F.mish(lin(p, 0, feat)))


def resnet(p, x, blocks):  # MLPResNet: Dense, blocks × [LN → Dense(4h) → mish → Dense(h) + r]
    r = lin(p, 0, x)
    for j in range(blocks):
        h = F.layer_norm(r, (r.shape[-1],), p[f"ln.{j}.weight"], p[f"ln.{j}.bias"], eps=1e-5)
        r = r + lin(p, 2 + 2 * j, F.mish(lin(p, 1 + 2 * j, h)))
    return lin(p, 2 * blocks + 1, F.mish(r))


def eps_net(cond_p, eps_p, s, a, t, blocks):
    return resnet(eps_p, torch.cat([a, s, cond_net(cond_p, t)], dim=-1), blocks)


def vp_alpha_hats(T):
    t = np.arange(1, T + 1)
    alpha = np.exp(-0.1 / T - 0.5 * (10.0 - 0.1) * (2 * t - 1) / T ** 2)
    return np.cumprod(alpha)


# ---- one update, as the reference ---------------------------------------------------------------

class Reference:
    """FISOR's state in torch: the networks from the C agent's start, optimizers that persist."""

    def __init__(self, init, decay_steps, weight_decay, blocks=2):
        self.nets = {k: params_of(init, k) for k in [
            "actor.cond", "actor.eps", "actor_ema.cond", "actor_ema.eps", "critic_r.0",
            "critic_r.1", "target_critic_r.0", "target_critic_r.1", "value_r", "critic_c.0",
            "critic_c.1", "target_critic_c.0", "target_critic_c.1", "value_c"]}
        self.decay_steps, self.blocks, self.actor_steps = decay_steps, blocks, 0
        n = self.nets
        # AdamW with FISOR's mask: biases undecayed; Adam for the ensembles and the values
        actor = list(n["actor.cond"].items()) + [("e." + k, v) for k, v in n["actor.eps"].items()]
        self.opt_actor = torch.optim.AdamW(
            [{"params": [v for k, v in actor if not k.endswith("bias")],
              "weight_decay": weight_decay},
             {"params": [v for k, v in actor if k.endswith("bias")], "weight_decay": 0.0}],
            lr=3e-4, betas=(0.9, 0.999), eps=1e-8)

        def adam(*names):
            return torch.optim.Adam([p for m in names for p in n[m].values()], lr=3e-4,
                                    betas=(0.9, 0.999), eps=1e-8)
        self.opt = {"value_r": adam("value_r"), "value_c": adam("value_c"),
                    "critic_r": adam("critic_r.0", "critic_r.1"),
                    "critic_c": adam("critic_c.0", "critic_c.1")}

    def update(self, batch, noise, critic_batch):
        g, tau, T, n = 0.99, 0.005, 5, self.nets
        s, a = torch.tensor(batch["obs"]), torch.tensor(batch["act"])
        r, c = torch.tensor(batch["reward"]), torch.tensor(batch["cost"])
        d, s2 = torch.tensor(batch["done"]), torch.tensor(batch["next_obs"])
        sa = torch.cat([s, a], dim=-1)
        stats = {}

        # actor weights from the targets and values before any step ("feasibility")
        with torch.no_grad():
            q = torch.minimum(critic(n["target_critic_r.0"], sa),
                              critic(n["target_critic_r.1"], sa))
            v = critic(n["value_r"], s)
            qc = torch.maximum(critic(n["target_critic_c.0"], sa),
                               critic(n["target_critic_c.1"], sa))
            vc = critic(n["value_c"], s)
            unsafe = (vc > 0).float()
            safe = (vc <= 0).float() * (qc <= 0).float()
            w = unsafe * torch.clamp(torch.exp((vc - qc) * 5), 0, 150) + \
                safe * torch.clamp(torch.exp((q - v) * 3), 0, 100)
        stats["weight"] = w.mean().item()

        # two actor steps on the halves at the cosine-decayed lr, each followed by the EMA
        ahat = torch.tensor(vp_alpha_hats(T), dtype=torch.float32)
        half = s.shape[0] // 2
        losses = []
        for k in range(2):
            rows = slice(k * half, (k + 1) * half)
            t, eps = noise[k]
            a1, a2 = torch.sqrt(ahat[t])[:, None], torch.sqrt(1 - ahat[t])[:, None]
            xt = a1 * a[rows] + a2 * eps
            step = min(self.actor_steps, self.decay_steps)
            lr = 3e-4 * 0.5 * (1 + math.cos(math.pi * step / self.decay_steps))
            for grp in self.opt_actor.param_groups:
                grp["lr"] = lr
            self.opt_actor.zero_grad()
            pred = eps_net(n["actor.cond"], n["actor.eps"], s[rows], xt, t.float(), self.blocks)
            loss = (((pred - eps) ** 2).sum(-1) * w[rows]).mean()
            loss.backward()
            self.opt_actor.step()
            self.actor_steps += 1
            losses.append(loss.item())
            with torch.no_grad():
                for part in ("cond", "eps"):
                    for name, p in n[f"actor_ema.{part}"].items():
                        p.mul_(1 - 0.001).add_(0.001 * n[f"actor.{part}"][name])
            stats["lr_actor"] = lr
        stats["loss_actor"] = sum(losses) / 2

        # the critics on the first rows: update_v, update_q, update_vc, update_qc
        m = critic_batch
        s, sa, r, c, d, s2 = s[:m], sa[:m], r[:m], c[:m], d[:m], s2[:m]
        mask = 1 - d

        def value_step(name, target, reversed_):
            diff = target - critic(n[name], s)
            up = diff < 0 if reversed_ else diff > 0
            loss = (torch.where(up, torch.tensor(0.9), torch.tensor(0.1)) * diff ** 2).mean()
            self.opt[name].zero_grad()
            loss.backward()
            self.opt[name].step()
            return loss.item()

        def critic_step(prefix, y):
            qs = torch.stack([critic(n[f"{prefix}.{i}"], sa) for i in range(2)])
            loss = ((qs - y) ** 2).mean()
            self.opt[prefix].zero_grad()
            loss.backward()
            self.opt[prefix].step()
            with torch.no_grad():
                for i in range(2):
                    for name, p in n[f"target_{prefix}.{i}"].items():
                        p.mul_(1 - tau).add_(tau * n[f"{prefix}.{i}"][name])
            return loss.item()

        with torch.no_grad():
            q = torch.minimum(critic(n["target_critic_r.0"], sa),
                              critic(n["target_critic_r.1"], sa))
        stats["loss_v"] = value_step("value_r", q, False)
        with torch.no_grad():
            y = r + g * mask * critic(n["value_r"], s2)
        stats["loss_q"] = critic_step("critic_r", y)
        with torch.no_grad():
            qc = torch.maximum(critic(n["target_critic_c.0"], sa),
                               critic(n["target_critic_c.1"], sa))
        stats["loss_vh"] = value_step("value_c", qc, True)
        with torch.no_grad():
            h = torch.where(c > 0, torch.tensor(25.0), torch.tensor(-1.0))
            vn = critic(n["value_c"], s2)
            y = ((1 - g) * h + g * torch.maximum(h, vn)) * mask + h * (1 - mask)
        stats["loss_qh"] = critic_step("critic_c", y)
        return stats


# ---- the comparison -----------------------------------------------------------------------------

failures = 0


def check(what, err, tol):
    global failures
    ok = err <= tol
    if not ok:
        failures += 1
    print(f"  {'ok  ' if ok else 'FAIL'} {what}: relative error {err:.2e} (≤ {tol:g})")


def case(label, seed, B=64, O=5, A=2, critic_batch=32, decay_steps=6, weight_decay=0.0,
         updates=2):
    rng = np.random.default_rng(seed)
    batch = {"obs": rng.standard_normal((B, O)), "act": rng.uniform(-0.99, 0.99, (B, A)),
             "reward": rng.standard_normal(B), "cost": (rng.uniform(size=B) < 0.3) * 1.0,
             "done": (rng.uniform(size=B) < 0.2) * 1.0, "next_obs": rng.standard_normal((B, O))}
    batch = {k: v.astype(np.float32) for k, v in batch.items()}
    meta = {"seed": seed, "updates": updates, "critic_batch": critic_batch,
            "decay_steps": decay_steps,
            "weight_decay_micro": int(round(weight_decay * 1e6))}
    with tempfile.TemporaryDirectory() as d:
        pin, pout = os.path.join(d, "in.safetensors"), os.path.join(d, "out")
        st_write(pin, batch, meta)
        res = subprocess.run([tool_path(), pin, pout], capture_output=True, text=True)
        if res.returncode != 0:
            global failures
            failures += 1
            print(f"FAIL {label}: tool exited {res.returncode}: {res.stderr.strip()}")
            return
        init, final = st_read(pout + ".init.safetensors"), st_read(pout + ".final.safetensors")
    ref = Reference(init, decay_steps, weight_decay)
    for u in range(updates):
        noise = [(torch.tensor(final[f"noise.t.{k}"]).long(), torch.tensor(final[f"noise.eps.{k}"]))
                 for k in (2 * u, 2 * u + 1)]
        stats = ref.update(batch, noise, critic_batch)
    nets = ref.nets
    print(f"{label}:")
    for k, want in stats.items():
        check(f"stat {k} ({final['stat.' + k][0]:.6g} vs {want:.6g})",
              rel(final["stat." + k], [want]), 2e-5)
    # the change p' − p is the sharper measure; p' is float32, so the change carries ulp(p) of
    # rounding by itself: about 1e-8/3e-4 for the trained nets' ±lr Adam steps, and a hundred
    # times more for the averaged copies, which move by τ = 0.005 or 0.001 of a step
    worst_p, worst = 0.0, {False: (0.0, ""), True: (0.0, "")}
    for prefix, ps in nets.items():
        averaged = prefix.startswith("target_") or prefix.startswith("actor_ema")
        for name, p in ps.items():
            key = f"{prefix}.{name}"
            got, want, start = final[key], p.detach().numpy(), init[key]
            worst_p = max(worst_p, rel(got, want))
            if np.linalg.norm(want - start) > 0:
                e = rel(got - start, want - start)
                if e > worst[averaged][0]:
                    worst[averaged] = (e, key)
    n_tensors = sum(len(ps) for ps in nets.values())
    check(f"post-update parameters ({n_tensors} tensors), worst", worst_p, 1e-5)
    check(f"the step p' − p of the trained nets, worst ({worst[False][1]})", worst[False][0], 1e-4)
    check(f"the change of the targets and the EMA actor, worst ({worst[True][1]})",
          worst[True][0], 2e-2)

if __name__ == "__main__":
    if not os.path.exists(tool_path()):
        print(f"FAIL: {tool_path()} not found (set SRL_BIN_DIR)")
        sys.exit(1)
    case("two FISOR updates, reference defaults (small networks)", 1)
    case("three FISOR updates, kernel weight decay 0.01, longer decay", 2, decay_steps=10,
         weight_decay=0.01, updates=3)
    print(f"{'all passed' if failures == 0 else f'{failures} failed'}")
    sys.exit(1 if failures else 0)
