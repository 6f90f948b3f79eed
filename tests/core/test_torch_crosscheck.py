# test_torch_crosscheck.py: the C MLP against PyTorch. Each case builds a network in torch
# (plain tanh as OmniSafe's actor, layernorm + mish, FISOR's residual blocks), writes its weights,
# an input batch and targets to a safetensors file (by hand: struct + json), runs
# tests/core/tool_mlp_step.c on it (forward, MSE backward, gradient clipping, one Adam/AdamW step),
# and compares the forward output, loss, input gradient, every parameter gradient, the gradient
# norm and the updated weights (and the update itself) by norm-wise relative error.
import json
import os
import struct
import subprocess
import sys
import tempfile

try:
    import numpy as np
    import torch
    import torch.nn.functional as F
except ImportError as e:  # the suite runs under Debian's python3 with torch; say so elsewhere
    print(f"skip: {e}")
    sys.exit(0)

torch.manual_seed(0)
torch.set_num_threads(1)


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
    out = {}
    for name, info in header.items():
        assert info["dtype"] == "F32", (name, info["dtype"])
        b, e = info["data_offsets"]
        out[name] = np.frombuffer(raw[8 + n + b:8 + n + e], dtype="<f4").reshape(info["shape"])
    return out


# ---- the networks in torch, with the C library's tensor names ---------------------------------

ACTS = {"tanh": torch.tanh, "relu": F.relu, "mish": F.mish, "identity": lambda x: x,
        "gelu": F.gelu, "sigmoid": torch.sigmoid}


class Net(torch.nn.Module):
    def __init__(self, sizes, hidden_act, out_act, layernorm=False, res_blocks=0, res_hidden=0):
        super().__init__()
        self.hidden, self.out_act = ACTS[hidden_act], ACTS[out_act]
        self.res_blocks = res_blocks
        self.lins, self.lns = torch.nn.ModuleList(), torch.nn.ModuleList()
        if res_blocks == 0:
            for i in range(len(sizes) - 1):
                self.lins.append(torch.nn.Linear(sizes[i], sizes[i + 1]))
                if layernorm and i + 2 < len(sizes):
                    self.lns.append(torch.nn.LayerNorm(sizes[i + 1]))
        else:
            h = sizes[1]
            f = res_hidden or 4 * h
            self.lins.append(torch.nn.Linear(sizes[0], h))
            for _ in range(res_blocks):
                if layernorm:
                    self.lns.append(torch.nn.LayerNorm(h))
                self.lins.append(torch.nn.Linear(h, f))
                self.lins.append(torch.nn.Linear(f, h))
            self.lins.append(torch.nn.Linear(h, sizes[2]))
        # layernorm parameters away from (1, 0) so their gradients and updates are exercised
        with torch.no_grad():
            for ln in self.lns:
                ln.weight.uniform_(0.5, 1.5)
                ln.bias.uniform_(-0.2, 0.2)

    def named(self):
        out = {}
        for i, l in enumerate(self.lins):
            out[f"layers.{i}.weight"], out[f"layers.{i}.bias"] = l.weight, l.bias
        for i, n in enumerate(self.lns):
            out[f"ln.{i}.weight"], out[f"ln.{i}.bias"] = n.weight, n.bias
        return out

    def forward(self, x):
        if self.res_blocks == 0:
            for i, l in enumerate(self.lins):
                x = l(x)
                if i + 1 < len(self.lins):
                    if len(self.lns):
                        x = self.lns[i](x)
                    x = self.hidden(x)
            return self.out_act(x)
        r = self.lins[0](x)
        for j in range(self.res_blocks):
            p = self.lns[j](r) if len(self.lns) else r
            r = r + self.lins[2 + 2 * j](self.hidden(self.lins[1 + 2 * j](p)))
        return self.out_act(self.lins[-1](self.hidden(r)))


def rel(a, b):
    a, b = np.asarray(a, dtype=np.float64), np.asarray(b, dtype=np.float64)
    return float(np.linalg.norm(a - b) / max(np.linalg.norm(b), 1e-30))


def tool_path():
    bin_dir = os.environ.get("SRL_BIN_DIR", os.path.join(os.getcwd(), "bin"))
    return os.path.join(bin_dir, "tool_mlp_step")


# ---- one case ---------------------------------------------------------------------------------

failures = 0


def check(label, what, err, tol):
    global failures
    ok = err <= tol
    if not ok:
        failures += 1
    print(f"  {'ok  ' if ok else 'FAIL'} {label}: {what} relative error {err:.2e} (≤ {tol:g})")


def case(label, sizes, hidden_act, out_act, rows, optim="adam", lr=3e-4, weight_decay=0.0,
         max_grad_norm=40.0, layernorm=False, res_blocks=0, res_hidden=0, target_scale=1.0):
    net = Net(sizes, hidden_act, out_act, layernorm, res_blocks, res_hidden)
    x = torch.randn(rows, sizes[0])
    y = target_scale * torch.randn(rows, sizes[-1])
    named = net.named()
    before = {k: v.detach().clone() for k, v in named.items()}
    meta = {"sizes": ",".join(map(str, sizes)), "hidden_act": hidden_act, "out_act": out_act,
            "layernorm": int(layernorm), "res_blocks": res_blocks, "res_hidden": res_hidden,
            "optim": optim, "lr": repr(lr), "beta1": 0.9, "beta2": 0.999, "eps": 1e-8,
            "weight_decay": repr(weight_decay), "max_grad_norm": repr(max_grad_norm)}

    # torch: forward, MSE, backward, clip, one step
    xg = x.clone().requires_grad_(True)
    out = net(xg)
    loss = F.mse_loss(out, y)
    loss.backward()
    clip = max_grad_norm if max_grad_norm > 0 else float("inf")
    norm = torch.nn.utils.clip_grad_norm_(net.parameters(), clip)
    grads = {k: v.grad.detach().clone() for k, v in named.items()}
    cls = torch.optim.AdamW if optim == "adamw" else torch.optim.Adam
    opt = cls(net.parameters(), lr=lr, betas=(0.9, 0.999), eps=1e-8, weight_decay=weight_decay)
    opt.step()

    with tempfile.TemporaryDirectory() as d:
        pin, pout = os.path.join(d, "in.safetensors"), os.path.join(d, "out.safetensors")
        tensors = {k: v.numpy() for k, v in before.items()}
        tensors["x"], tensors["y"] = x.numpy(), y.numpy()
        st_write(pin, tensors, meta)
        r = subprocess.run([tool_path(), pin, pout], capture_output=True, text=True)
        if r.returncode != 0:
            global failures
            failures += 1
            print(f"  FAIL {label}: tool exited {r.returncode}: {r.stderr.strip()}")
            return
        got = st_read(pout)

    print(f"{label}:")
    check(label, "forward output", rel(got["out"], out.detach().numpy()), 1e-5)
    check(label, "loss", rel(got["loss"], [loss.item()]), 1e-5)
    check(label, "gradient norm", rel(got["grad_norm"], [norm.item()]), 1e-5)
    check(label, "input gradient", rel(got["din"], xg.grad.numpy()), 1e-5)
    worst_g = max(rel(got["grad." + k], grads[k].numpy()) for k in named)
    worst_p = max(rel(got["param." + k], named[k].detach().numpy()) for k in named)
    # the update itself, p' − p, is the sharper measure of the optimizer step; p' is float32, so
    # the difference carries ulp(p)/|p' − p| ≈ 1e-8/3e-4 of rounding per element by itself
    worst_u = max(rel(got["param." + k] - before[k].numpy(),
                      (named[k].detach() - before[k]).numpy()) for k in named)
    for k in named:
        e = rel(got["grad." + k], grads[k].numpy())
        if e > 1e-5:
            check(label, f"gradient {k}", e, 1e-5)
    check(label, f"every gradient ({len(named)} tensors), worst", worst_g, 1e-5)
    check(label, "post-step weights, worst", worst_p, 1e-5)
    check(label, "the step p' − p, worst", worst_u, 1e-3)
    if max_grad_norm > 0:
        print(f"  (gradient norm {norm.item():.4g}, clip at {max_grad_norm:g}:"
              f" {'clipped' if norm.item() > max_grad_norm else 'not clipped'})")


if __name__ == "__main__":
    if not os.path.exists(tool_path()):
        print(f"FAIL: {tool_path()} not found (set SRL_BIN_DIR)")
        sys.exit(1)
    # OmniSafe's actor mean and critic: 60-64-64-2 / 60-64-64-1 tanh, Adam 3e-4, clip 40
    case("actor 60-64-64-2 tanh, adam", [60, 64, 64, 2], "tanh", "identity", 64)
    case("critic 60-64-64-1 tanh, adam, clipped", [60, 64, 64, 1], "tanh", "identity", 64,
         max_grad_norm=0.5, target_scale=5.0)
    # layernorm + mish, AdamW with weight decay
    case("layernorm+mish 17-32-32-3, adamw", [17, 32, 32, 3], "mish", "identity", 32,
         optim="adamw", lr=1e-3, weight_decay=1e-2, layernorm=True)
    # FISOR's MLPResNet shape, smaller: Dense(48), 2 blocks [LN → Dense(192) → mish → Dense(48)]
    case("residual 20-48x2-6 mish+layernorm, adamw", [20, 48, 6], "mish", "tanh", 16,
         optim="adamw", lr=3e-4, weight_decay=0.0, layernorm=True, res_blocks=2, max_grad_norm=0)
    case("relu 9-16-16-16-4, adam with L2", [9, 16, 16, 16, 4], "relu", "sigmoid", 8,
         lr=1e-2, weight_decay=1e-3)
    print(f"{'all passed' if failures == 0 else f'{failures} failed'}")
    sys.exit(1 if failures else 0)
