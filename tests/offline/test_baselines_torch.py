# test_baselines_torch.py: the offline baselines' updates in C against the same updates written in
# PyTorch after OSRL's code (osrl/algorithms/{bc,bcql,cpq,coptidice}.py, osrl/common/net.py). The C
# tool (tests/offline/tool_baselines_step.c) runs three updates of one algorithm with small
# networks and writes its checkpoint before and after them, the batches, and every random draw of
# each update (replayed from the algorithm's stream in its order); torch starts from the same
# tensors, redoes the updates with torch.optim.Adam, and every network's parameters, the
# multipliers' state and the last update's statistics are compared by norm-wise relative error.
# COptiDICE's initial-state term uses the batch's init_obs rows (the original COptiDICE's separate
# initial states) where OSRL reweights the batch rows flagged is_init; its noise scale is the std
# of every batch seen so far.
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

O, A, L = 3, 2, 4


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
            info["shape"]).copy()
    return out


def tool_path():
    bin_dir = os.environ.get("SRL_BIN_DIR", os.path.join(os.getcwd(), "bin"))
    return os.path.join(bin_dir, "tool_baselines_step")


def rel(a, b):
    a, b = np.asarray(a, np.float64).ravel(), np.asarray(b, np.float64).ravel()
    return float(np.linalg.norm(a - b) / max(np.linalg.norm(b), 1e-12))


# ---- networks as parameter dicts (checkpoint names) -------------------------------------------

class Net:
    """An srl_mlp: layers.<i>.weight (out × in) and layers.<i>.bias, act between, out_act last."""

    def __init__(self, t, prefix, act, out_act=None):
        self.prefix = prefix
        self.p = []
        i = 0
        while f"{prefix}.layers.{i}.weight" in t:
            w = torch.tensor(t[f"{prefix}.layers.{i}.weight"], requires_grad=True)
            b = torch.tensor(t[f"{prefix}.layers.{i}.bias"], requires_grad=True)
            self.p += [w, b]
            i += 1
        self.act, self.out_act = act, out_act

    def __call__(self, x):
        n = len(self.p) // 2
        for i in range(n):
            x = F.linear(x, self.p[2 * i], self.p[2 * i + 1])
            if i < n - 1:
                x = self.act(x)
        return self.out_act(x) if self.out_act else x

    def params(self):
        return self.p

    def copy(self):
        c = Net.__new__(Net)
        c.prefix, c.act, c.out_act = self.prefix, self.act, self.out_act
        c.p = [q.detach().clone() for q in self.p]
        return c

    def polyak(self, src, tau):
        with torch.no_grad():
            for d, s in zip(self.p, src.p):
                d.copy_(tau * s + (1 - tau) * d)

    def named(self):
        n = len(self.p) // 2
        for i in range(n):
            yield f"{self.prefix}.layers.{i}.weight", self.p[2 * i]
            yield f"{self.prefix}.layers.{i}.bias", self.p[2 * i + 1]


def adam(nets, lr):
    return torch.optim.Adam([p for n in nets for p in n.params()], lr=lr)


def step(opt, loss):
    opt.zero_grad()
    loss.backward()
    opt.step()


def critics(t, prefix, count):
    return [Net(t, f"{prefix}.{k}", F.relu) for k in range(count)]


def ens_min(nets, x):
    return torch.stack([n(x).squeeze(-1) for n in nets]).min(0).values


def batch(t, k):
    g = lambda f: torch.tensor(t[f"batch.{k}.{f}"])
    return (g("obs"), g("act"), g("reward").squeeze(-1), g("cost").squeeze(-1), g("next_obs"),
            g("done").squeeze(-1), g("init_obs"))


def noise(t, k, name, shape):
    return torch.tensor(t[f"noise.{k}.{name}"]).reshape(shape)


# ---- the VAE (osrl/common/net.py VAE, heads fused into one linear) ----------------------------

class VAE:
    def __init__(self, t):
        self.enc = Net(t, "vae.encoder", F.relu)
        self.dec = Net(t, "vae.decoder", F.relu, torch.tanh)

    def encode(self, s, a):
        out = self.enc(torch.cat([s, a], 1))
        mean, log_std = out[:, :L], out[:, L:].clamp(-4, 15)
        return mean, torch.exp(log_std)

    def decode(self, s, z):
        return self.dec(torch.cat([s, z], 1))

    def loss(self, s, a, eps, beta):
        mean, std = self.encode(s, a)
        u = self.decode(s, mean + std * eps)
        recon = F.mse_loss(u, a)
        kl = -0.5 * (1 + torch.log(std.pow(2)) - mean.pow(2) - std.pow(2)).mean()
        return recon + beta * kl


# ---- the algorithms --------------------------------------------------------------------------

def run_bc(t0, tf, c):
    actor = Net(t0, "actor", F.relu, torch.tanh)
    opt = adam([actor], 1e-3)
    for k in range(c["updates"]):
        obs, act, *_ = batch(tf, k)
        loss = F.mse_loss(actor(obs), act)
        step(opt, loss)
    return [actor], {"loss_actor": loss.item()}, {}


class PID:  # osrl/common/net.py LagrangianPIDController
    def __init__(self, kp, ki, kd, thres):
        self.kp, self.ki, self.kd, self.thres = kp, ki, kd, thres
        self.error_old, self.error_integral = 0, 0

    def control(self, qc):
        error_new = torch.mean(qc - self.thres)
        error_diff = F.relu(error_new - self.error_old)
        self.error_integral = torch.mean(F.relu(self.error_integral + error_new))
        self.error_old = error_new
        m = F.relu(self.kp * F.relu(error_new) + self.ki * self.error_integral +
                   self.kd * error_diff)
        return torch.mean(m)


def run_bcq(t0, tf, c):
    B, N, g, thr = c["batch"], c["samples"], c["gamma"], c["qc_thres"]
    nq = 2
    phi, lmbda, beta, tau = 0.05, 0.75, 0.5, 0.1
    actor = Net(t0, "actor", torch.tanh, torch.tanh)
    actor_old = Net(t0, "target_actor", torch.tanh, torch.tanh)
    qr, qrt = critics(t0, "critic_r", 2 * nq), critics(t0, "target_critic_r", 2 * nq)
    qc, qct = critics(t0, "critic_c", 2 * nq), critics(t0, "target_critic_c", 2 * nq)
    vae = VAE(t0)
    o_vae, o_actor = adam([vae.enc, vae.dec], 1e-3), adam([actor], 1e-3)
    o_qr, o_qc = adam(qr, 1e-3), adam(qc, 1e-3)
    pid = PID(0.1, 0.003, 0.001, thr)

    def xi(net, s, a):
        return (phi * net(torch.cat([s, a], 1)) + a).clamp(-1, 1)

    def heads(nets, s, a):
        x = torch.cat([s, a], 1)
        return ens_min(nets[:nq], x), ens_min(nets[nq:], x)

    def target(nets, s_next, z):
        with torch.no_grad():
            a_next = xi(actor_old, s_next, vae.decode(s_next, z))
            q1, q2 = heads(nets, s_next, a_next)
            q = lmbda * torch.min(q1, q2) + (1 - lmbda) * torch.max(q1, q2)
            return q.reshape(B, -1).max(1)[0]

    for k in range(c["updates"]):
        obs, act, r, cost, nobs, done, _ = batch(tf, k)
        lv = vae.loss(obs, act, noise(tf, k, "vae_eps", (B, L)), beta)
        step(o_vae, lv)
        s_next = torch.repeat_interleave(nobs, N, 0)
        y = r + g * (1 - done) * target(qrt, s_next, noise(tf, k, "z_reward", (B * N, L)))
        x = torch.cat([obs, act], 1)
        lq = sum(((n(x).squeeze(-1) - y) ** 2).mean() for n in qr)
        step(o_qr, lq)
        y = cost + g * target(qct, s_next, noise(tf, k, "z_cost", (B * N, L)))
        lqc = sum(((n(x).squeeze(-1) - y) ** 2).mean() for n in qc)
        step(o_qc, lqc)
        with torch.no_grad():
            av = vae.decode(obs, noise(tf, k, "z_actor", (B, L)))
        a = xi(actor, obs, av)
        q1, q2 = heads(qr, obs, a)
        c1, c2 = heads(qc, obs, a)
        q_pi, qc_pi = torch.min(q1, q2), torch.min(c1, c2)
        with torch.no_grad():
            mult = pid.control(qc_pi).detach()
        pen = ((qc_pi - thr) * mult).mean()
        la = -q_pi.mean() + pen
        step(o_actor, la)  # the critics' gradients are cleared by their own zero_grad
        for d, s in zip(qrt + qct + [actor_old], qr + qc + [actor]):
            d.polyak(s, tau)
    stats = {"loss_vae": lv.item(), "loss_critic": lq.item(), "loss_cost_critic": lqc.item(),
             "loss_actor": la.item(), "qc_penalty": pen.item(), "lambda": mult.item(),
             "q": q_pi.mean().item(), "qc": qc_pi.mean().item()}
    extra = {"lagrange.pid": [float(pid.error_old), float(pid.error_integral), mult.item()]}
    return [actor, actor_old, vae.enc, vae.dec] + qr + qrt + qc + qct, stats, extra


def gauss_out(actor, s):
    out = actor(s)
    mu, log_std = out[:, :A], out[:, A:].clamp(-20, 2)
    return mu, torch.exp(log_std)


def run_cpq(t0, tf, c):
    B, N, g = c["batch"], c["samples"], c["gamma"]
    q_thres = c["qc_thres"]
    qc_thres = 1.5 * q_thres
    beta, tau, alpha_lr = 0.5, 0.1, 1e-2
    actor = Net(t0, "actor", F.relu)
    qr, qrt = critics(t0, "critic_r", 2), critics(t0, "target_critic_r", 2)
    qc, qct = critics(t0, "critic_c", 2), critics(t0, "target_critic_c", 2)
    vae = VAE(t0)
    log_alpha = torch.tensor(float(t0["lagrange.log_alpha"][0]))
    o_vae, o_actor = adam([vae.enc, vae.dec], 1e-3), adam([actor], 1e-3)
    o_qr, o_qc = adam(qr, 1e-3), adam(qc, 1e-3)

    def sample(s, eps):
        mu, std = gauss_out(actor, s)
        return torch.tanh(mu + std * eps)

    for k in range(c["updates"]):
        obs, act, r, cost, nobs, done, _ = batch(tf, k)
        lv = vae.loss(obs, act, noise(tf, k, "vae_eps", (B, L)), beta)
        step(o_vae, lv)
        x = torch.cat([obs, act], 1)
        with torch.no_grad():
            a_next = sample(nobs, noise(tf, k, "eps_next_reward", (B, A)))
            xn = torch.cat([nobs, a_next], 1)
            q_t, qc_t = ens_min(qrt, xn), ens_min(qct, xn)
            y = r + g * (1 - done) * (qc_t <= q_thres) * q_t
        lq = sum(((n(x).squeeze(-1) - y) ** 2).mean() for n in qr)
        step(o_qr, lq)
        with torch.no_grad():
            a_next = sample(nobs, noise(tf, k, "eps_next_cost", (B, A)))
            y = cost + g * ens_min(qct, torch.cat([nobs, a_next], 1))
            mu, std = gauss_out(actor, obs)
            u = mu[None] + std[None] * noise(tf, k, "eps_ood", (N, B, A))  # pi_dist.sample([N])
            u = u.reshape(N * B, A)
            s_t = torch.tile(obs[None], (N, 1, 1)).reshape(N * B, O)
            qc_s = ens_min(qct, torch.cat([s_t, u], 1)).reshape(N, B)
            mean, sd = vae.encode(s_t, u)
            kl = -0.5 * (1 + torch.log(sd.pow(2)) - mean.pow(2) - sd.pow(2))
            kl = kl.reshape(N, B, L).mean(2)
            quant = torch.quantile(kl, 0.75)
            qc_ood = ((kl >= quant) * qc_s).mean(0)
        lqc = sum(((n(x).squeeze(-1) - y) ** 2).mean() for n in qc) - log_alpha.exp() * (
            qc_ood.mean() - qc_thres)
        step(o_qc, lqc)
        log_alpha += alpha_lr * log_alpha.exp() * (qc_thres - qc_ood.mean())
        log_alpha = log_alpha.clamp(-5.0, 5.0)
        a = sample(obs, noise(tf, k, "eps_actor", (B, A)))
        xa = torch.cat([obs, a], 1)
        q_pi, qc_pi = ens_min(qr, xa), ens_min(qc, xa)
        la = -((qc_pi <= q_thres) * q_pi).mean()
        step(o_actor, la)
        for d, s in zip(qrt + qct, qr + qc):
            d.polyak(s, tau)
    stats = {"loss_vae": lv.item(), "loss_critic": lq.item(), "loss_cost_critic": lqc.item(),
             "loss_actor": la.item(), "alpha": log_alpha.exp().item(),
             "qc_ood": qc_ood.mean().item(), "q": q_pi.mean().item(), "qc": qc_pi.mean().item()}
    return [actor, vae.enc, vae.dec] + qr + qrt + qc + qct, stats, {
        "lagrange.log_alpha": [log_alpha.item()]}


def run_coptidice(t0, tf, c):
    B, g, thr = c["batch"], c["gamma"], c["qc_thres"]
    alpha, eps_ub, ns = 0.5, 0.01, 0.1
    f_fn = lambda x: torch.where(x < 1, x * (torch.log(x + 1e-10) - 1) + 1, 0.5 * (x - 1) ** 2)
    fpi = lambda x: torch.where(x < 0, torch.exp(x.clamp(max=0.0)), x + 1)
    actor = Net(t0, "actor", F.relu)
    nu, chi = critics(t0, "nu", 2), critics(t0, "chi", 2)
    lam = torch.tensor([float(t0["lagrange.state"][0])], requires_grad=True)
    tau = torch.tensor([float(t0["lagrange.state"][3])], requires_grad=True)
    o_actor, o_nu, o_chi = adam([actor], 1e-3), adam(nu, 1e-3), adam(chi, 1e-3)
    o_lam, o_tau = torch.optim.Adam([lam], lr=1e-3), torch.optim.Adam([tau], lr=1e-3)
    seen_obs, seen_act = [], []
    for k in range(c["updates"]):
        obs, act, r, cost, nobs, done, init = batch(tf, k)
        seen_obs.append(obs.numpy()), seen_act.append(act.numpy())
        obs_std = torch.tensor(np.concatenate(seen_obs).astype(np.float64).std(0), dtype=torch.float32)
        act_std = torch.tensor(np.concatenate(seen_act).astype(np.float64).std(0), dtype=torch.float32)
        _lmbda = F.softplus(lam)

        def optimal_w():
            nu_s, nu_n = ens_min(nu, obs), ens_min(nu, nobs)
            e = r - _lmbda.detach() * cost + g * (1.0 - done) * nu_n - nu_s
            return e, F.relu(fpi(e / alpha))

        e, w = optimal_w()
        nu_init = ens_min(nu, init)
        w_ng = w.detach()
        df = f_fn(w_ng).mean()
        _tau = F.softplus(tau)
        chi_s, chi_n, chi_i = ens_min(chi, obs), ens_min(chi, nobs), ens_min(chi, init)
        ell = (1 - g) * chi_i + w_ng * (cost + g * (1 - done) * chi_n - chi_s)
        logits = ell / _tau.detach()
        weights = torch.softmax(logits, dim=0) * B
        log_weights = torch.log_softmax(logits, dim=0) + np.log(B)
        d_kl = (weights * log_weights - weights + 1).mean()
        wc = (weights * w_ng * cost).mean()
        chi_loss = (weights * ell).mean()
        step(o_chi, chi_loss)
        tau_loss = _tau * (eps_ub - d_kl.detach())
        step(o_tau, tau_loss)
        nu_loss = (1 - g) * nu_init.mean() + (w * e - alpha * f_fn(w)).mean()
        td = e.pow(2).mean()
        step(o_nu, nu_loss)
        lam_loss = _lmbda * (thr - wc.detach())
        step(o_lam, lam_loss)
        x_s = obs + noise(tf, k, "noise_obs", (B, O)) * obs_std * ns
        x_a = act + noise(tf, k, "noise_act", (B, A)) * act_std * ns
        mu, std = gauss_out(actor, x_s)
        with torch.no_grad():
            _, w2 = optimal_w()
        la = -(w2 * torch.distributions.Normal(mu, std).log_prob(x_a).sum(-1)).mean()
        step(o_actor, la)
    stats = {"loss_nu": nu_loss.item(), "loss_chi": chi_loss.item(), "loss_lambda": lam_loss.item(),
             "loss_tau": tau_loss.item(), "loss_actor": la.item(), "lambda": _lmbda.item(),
             "tau": _tau.item(), "d_kl": d_kl.item(), "df": df.item(), "td_error": td.item(),
             "weighted_c": wc.item()}
    return [actor] + nu + chi, stats, {"lagrange.state.p": [lam.item(), tau.item()]}


RUNS = {"BCAll": run_bc, "BCQLag": run_bcq, "CPQ": run_cpq, "COptiDICE": run_coptidice}

failures = 0


def check(what, err, tol):
    global failures
    ok = err <= tol
    if not ok:
        failures += 1
    print(f"  {'ok  ' if ok else 'FAIL'} {what}: relative error {err:.2e} (≤ {tol:g})")


def main():
    if not os.path.exists(tool_path()):
        print(f"FAIL: {tool_path()} not found (set SRL_BIN_DIR)")
        return 1
    with tempfile.TemporaryDirectory() as tmp:
        for algo, run in RUNS.items():
            prefix = os.path.join(tmp, algo)
            res = subprocess.run([tool_path(), algo, prefix], capture_output=True, text=True)
            if res.returncode != 0:
                print(f"FAIL {algo}: tool exited {res.returncode}: {res.stderr}")
                return 1
            consts = json.loads(res.stdout)
            t0 = st_read(prefix + ".init.safetensors")
            tf = st_read(prefix + ".final.safetensors")
            print(algo)
            nets, stats, extra = run(t0, tf, consts)
            worst, moved = 0.0, 0.0
            for n in nets:
                for name, p in n.named():
                    worst = max(worst, rel(tf[name], p.detach().numpy()))
                    moved = max(moved, rel(tf[name], t0[name]))
            check("parameters after the updates", worst, 1e-4)
            if moved == 0.0:
                print("  FAIL: no parameter moved")
                failures_add()
            for k, v in stats.items():
                check(f"stat {k} ({v:.6g})", rel(tf["stat." + k], [v]), 1e-4 if abs(v) > 1e-3
                      else 1e-2)
            for k, v in extra.items():
                got = tf[k] if k in tf else tf["lagrange.state"][[0, 3]]
                check(k, rel(got, v), 1e-5)
    print("passed" if failures == 0 else f"{failures} failed")
    return 1 if failures else 0


def failures_add():
    global failures
    failures += 1


if __name__ == "__main__":
    sys.exit(main())
