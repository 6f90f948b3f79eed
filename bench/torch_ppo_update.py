#!/usr/bin/env python3
"""PyTorch baseline for `saferl bench update`: OmniSafe's PPO-Lag minibatch update.

Per minibatch, as OmniSafe's PolicyGradient._update: the reward critic, the cost critic, then the
actor, each with its own Adam (lr 3e-4), gradient-norm clipping at 40, critic loss MSE plus
0.001 * sum of squared parameters, actor loss the clipped surrogate (clip 0.2) on a Gaussian with
state-independent log-std. Prints one JSON line: {"us_per_minibatch": ..., "gflops": ...}.
Usage: torch_ppo_update.py [--batch 64] [--hidden 64,64] [--obs 60] [--act 2] [--iters N]
       [--threads 1] [--device cpu|cuda]
"""
import argparse
import json
import time

import torch
from torch import nn


def mlp(sizes):
    layers = []
    for i in range(len(sizes) - 1):
        layers.append(nn.Linear(sizes[i], sizes[i + 1]))
        if i < len(sizes) - 2:
            layers.append(nn.Tanh())
    return nn.Sequential(*layers)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--batch", type=int, default=64)
    ap.add_argument("--hidden", default="64,64")
    ap.add_argument("--obs", type=int, default=60)
    ap.add_argument("--act", type=int, default=2)
    ap.add_argument("--iters", type=int, default=2000)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--device", default="cpu")
    a = ap.parse_args()
    torch.set_num_threads(a.threads)
    torch.manual_seed(0)
    dev = torch.device(a.device)
    hidden = [int(h) for h in a.hidden.split(",")]
    actor = mlp([a.obs] + hidden + [a.act]).to(dev)
    log_std = nn.Parameter(torch.zeros(a.act, device=dev))
    critic_r = mlp([a.obs] + hidden + [1]).to(dev)
    critic_c = mlp([a.obs] + hidden + [1]).to(dev)
    opt_a = torch.optim.Adam(list(actor.parameters()) + [log_std], lr=3e-4)
    opt_r = torch.optim.Adam(critic_r.parameters(), lr=3e-4)
    opt_c = torch.optim.Adam(critic_c.parameters(), lr=3e-4)

    b = a.batch
    obs = torch.randn(b, a.obs, device=dev)
    act = torch.randn(b, a.act, device=dev)
    logp_old = torch.randn(b, device=dev) - 3.0
    adv = torch.randn(b, device=dev)
    target_r = torch.randn(b, device=dev)
    target_c = torch.randn(b, device=dev)

    def critic_step(critic, opt, target):
        opt.zero_grad()
        loss = nn.functional.mse_loss(critic(obs).squeeze(-1), target)
        for p in critic.parameters():
            loss = loss + p.pow(2).sum() * 0.001
        loss.backward()
        nn.utils.clip_grad_norm_(critic.parameters(), 40.0)
        opt.step()

    def actor_step():
        opt_a.zero_grad()
        dist = torch.distributions.Normal(actor(obs), torch.exp(log_std))
        logp = dist.log_prob(act).sum(-1)
        ratio = torch.exp(logp - logp_old)
        surr = torch.min(ratio * adv, torch.clamp(ratio, 0.8, 1.2) * adv)
        loss = -surr.mean() - 0.0 * dist.entropy().mean()
        loss.backward()
        nn.utils.clip_grad_norm_(list(actor.parameters()) + [log_std], 40.0)
        opt_a.step()

    def minibatch():
        critic_step(critic_r, opt_r, target_r)
        critic_step(critic_c, opt_c, target_c)
        actor_step()

    for _ in range(max(10, a.iters // 10)):
        minibatch()
    if dev.type == "cuda":
        torch.cuda.synchronize()
    t0 = time.perf_counter()
    for _ in range(a.iters):
        minibatch()
    if dev.type == "cuda":
        torch.cuda.synchronize()
    us = (time.perf_counter() - t0) / a.iters * 1e6

    # matrix-product flops: forward 2·B·Σ in·out per net, backward twice that
    def macs(out_dim):
        sizes = [a.obs] + hidden + [out_dim]
        return sum(sizes[i] * sizes[i + 1] for i in range(len(sizes) - 1))
    flops = 3 * 2 * b * (macs(a.act) + 2 * macs(1))
    print(json.dumps({"us_per_minibatch": round(us, 2), "gflops": round(flops / us / 1e3, 3),
                      "batch": b, "hidden": hidden, "threads": a.threads, "device": a.device,
                      "torch": torch.__version__}))


if __name__ == "__main__":
    main()
