#!/usr/bin/env python3
"""test_offline_cli.py: `saferl offline train` and `saferl offline eval` end to end: a dataset
collected with `saferl collect --policy random` on SimplePointGoal, a short BC-All run, the run
directory's files, Ctrl-C with a checkpoint and --resume, a finished run trained further, config errors with their place, the
evaluation's JSON checked against DSRL's formulas recomputed here from the per-episode numbers,
and a dataset collected through `saferl serve env` (remote:ipc://) equal to the local one."""
import json
import math
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time

BIN = os.path.join(os.environ.get("SRL_BIN_DIR", "bin"), "saferl")
failures = 0


def check(cond, what):
    global failures
    if not cond:
        failures += 1
        print(f"  FAIL: {what}", flush=True)


def run(args, **kw):
    return subprocess.run([BIN] + args, capture_output=True, text=True, timeout=120, **kw)


def main():
    tmp = tempfile.mkdtemp(prefix="srl_offline_cli_")
    try:
        data = os.path.join(tmp, "pg.hdf5")
        r = run(["collect", "--policy", "random", "--env", "SimplePointGoal", "--episodes", "24",
                 "--seed", "3", "--out", data, "--quiet"])
        check(r.returncode == 0, f"collect: {r.stderr}")
        if r.returncode:
            return

        cfg = os.path.join(tmp, "bc.yaml")
        with open(cfg, "w") as f:
            f.write("algo: BCAll\nenv_id: SimplePointGoal\ndataset: %s\n"
                    "train:\n  steps: 300\n  batch_size: 64\n  eval_every: 100\n"
                    "  eval_episodes: 2\n  save_every: 100\n  log_every: 50\n"
                    "task:\n  cost_limit: 5\n  reward_scale: 0.1\n"
                    "eval:\n  episodes: 4\nbc:\n  actor_hidden: [32, 32]\n" % data)

        # a typo names the file, line and column, and suggests the key
        bad = os.path.join(tmp, "bad.yaml")
        with open(bad, "w") as f:
            f.write("algo: BCAll\nbc:\n  actor_hiden: [8]\n")
        r = run(["offline", "train", bad])
        check(r.returncode == 1, "a bad key fails with status 1")
        check("bad.yaml:3:3" in r.stderr and "bc.actor_hidden" in r.stderr,
              f"bad key message: {r.stderr!r}")

        # a full run
        out = os.path.join(tmp, "runs")
        r = run(["offline", "train", cfg, "--out", out, "--seed", "2", "--quiet"])
        check(r.returncode == 0, f"train: {r.stderr}")
        runs = sorted(os.listdir(out)) if os.path.isdir(out) else []
        check(len(runs) == 1 and runs[0].startswith("BCAll-SimplePointGoal-s2-"), f"runs {runs}")
        if not runs:
            return
        rd = os.path.join(out, runs[0])
        for name in ("config.yaml", "progress.csv", "events.jsonl", "summary.json",
                     "final.safetensors", "checkpoints/step-100.safetensors",
                     "checkpoints/step-200.safetensors"):
            check(os.path.exists(os.path.join(rd, name)), f"{name} exists")
        with open(os.path.join(rd, "progress.csv")) as f:
            rows = [line.strip().split(",") for line in f if line.strip()]
        head = rows[0]
        check(head[:3] == ["step", "ep_ret", "ep_cost"] and "loss_actor" in head, f"header {head}")
        check([int(r[0]) for r in rows[1:]] == [50, 100, 150, 200, 250, 300], "row steps")
        check(rows[2][1] != "nan" and rows[1][1] == "nan", "evaluation columns at step 100 only")
        with open(os.path.join(rd, "summary.json")) as f:
            summary = json.load(f)
        check(summary["status"] == "finished" and summary["steps"] == 300, "summary status")
        check(summary["eval"]["episodes"] == 4, "final evaluation of eval.episodes")
        events = [json.loads(line) for line in open(os.path.join(rd, "events.jsonl"))]
        kinds = [e["event"] for e in events]
        check(kinds[0] == "start" and kinds[-1] == "finish", f"events {kinds}")
        check(kinds.count("eval") == 4 and kinds.count("checkpoint") == 2, f"events {kinds}")

        # evaluation: per-episode numbers and DSRL's formulas
        for k in (5.0, 0.0):
            r = run(["offline", "eval", rd, "--episodes", "6", "--cost-limit", str(k), "--json",
                     "--seed", "9"])
            check(r.returncode == 0, f"eval: {r.stderr}")
            if r.returncode:
                continue
            j = json.loads(r.stdout)
            eps = j["per_episode"]
            check(len(eps) == 6 and j["episodes"] == 6, "six episodes")
            check(j["task"] is None and j["normalized_reward"]["mean"] is None,
                  "no reference task for SimplePointGoal")
            e = 1.0 if k == 0 else 0.0
            for ep in eps:
                nc = (ep["cost"] + e) / (k + e)
                check(abs(ep["normalized_cost"] - nc) < 1e-8 * max(1.0, nc),
                      "normalized cost (C + e)/(k + e)")
            mc = sum(ep["normalized_cost"] for ep in eps) / 6
            # the JSON carries 9 significant digits
            check(abs(j["normalized_cost"]["mean"] - mc) < 1e-8 * max(1.0, abs(mc)),
                  f"mean normalized cost {j['normalized_cost']['mean']} vs {mc}")
            mr = sum(ep["return"] for ep in eps) / 6
            sr = math.sqrt(sum((ep["return"] - mr) ** 2 for ep in eps) / 6)
            check(abs(j["return"]["mean"] - mr) < 1e-6 and abs(j["return"]["std"] - sr) < 1e-6,
                  "return mean and population std")
            check(j["safe"] == (mc <= 1), "safe when the mean normalized cost is at most 1")
            costs = sorted(ep["cost"] for ep in eps)
            check(j["within_limit"] == sum(c <= k for c in costs), "episodes within the limit")
            check(abs(j["cost_median"] - (costs[2] + costs[3]) / 2) < 1e-9, "median episode cost")
        # a reference task gives the normalized reward
        r = run(["offline", "eval", os.path.join(rd, "checkpoints/step-100.safetensors"),
                 "--episodes", "2", "--json", "--task", "PointGoal1"])
        check(r.returncode == 0, f"eval --task: {r.stderr}")
        if r.returncode == 0:
            j = json.loads(r.stdout)
            lo, hi = 0.01196012764197707, 30.071114857340543
            for ep in j["per_episode"]:
                check(abs(ep["normalized_reward"] - (ep["return"] - lo) / (hi - lo)) < 1e-6,
                      "normalized reward with PointGoal1's reference returns")
            check(j["trained_steps"] == 100, "the checkpoint's step")
        r = run(["offline", "eval", rd, "--episodes", "2"])
        check(r.returncode == 0 and "normalized cost" in r.stdout and "median cost" in r.stdout
              and ("safe:" in r.stdout or "unsafe:" in r.stdout), f"text output {r.stdout!r}")

        # Ctrl-C saves a checkpoint; --resume finishes the run
        out2 = os.path.join(tmp, "runs2")
        p = subprocess.Popen([BIN, "offline", "train", cfg, "--out", out2, "--quiet",
                              "--set", "train.steps=200000", "--set", "train.save_every=100000",
                              "--set", "train.eval_every=0"],
                             stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        # wait for the first progress row, then interrupt
        deadline = time.time() + 60
        rd2 = None
        while time.time() < deadline:
            if os.path.isdir(out2) and os.listdir(out2):
                rd2 = os.path.join(out2, os.listdir(out2)[0])
                prog = os.path.join(rd2, "progress.csv")
                if os.path.exists(prog) and os.path.getsize(prog) > 0:
                    break
            time.sleep(0.05)
        p.send_signal(signal.SIGINT)
        _, err = p.communicate(timeout=60)
        check(p.returncode == 130, f"interrupted run exits 130 (got {p.returncode}): {err}")
        check("--resume" in err, "the message says how to continue")
        ck = [c for c in os.listdir(os.path.join(rd2, "checkpoints"))] if rd2 else []
        check(len(ck) == 1 and ck[0].startswith("step-"), f"one checkpoint {ck}")
        with open(os.path.join(rd2, "summary.json")) as f:
            check(json.load(f)["status"] == "interrupted", "summary says interrupted")
        r = run(["offline", "train", "--resume", rd2, "--seed", "3"])
        check(r.returncode == 2, "--resume takes no --seed")
        r = run(["offline", "train", "--resume", rd2, "--set", "dataset=other.hdf5"])
        check(r.returncode == 1 and "dataset" in r.stderr, f"--resume keeps the dataset: {r.stderr}")
        # shorten the rest of the run: --set changes its schedule
        if ck:
            stopped = int(ck[0][5:-12])
            r = run(["offline", "train", "--resume", rd2, "--quiet",
                     "--set", f"train.steps={stopped + 60}"])
            check(r.returncode == 0, f"resume: {r.stderr}")
            check(os.path.exists(os.path.join(rd2, "final.safetensors")), "resumed run finished")
            kinds = [json.loads(line)["event"] for line in open(os.path.join(rd2, "events.jsonl"))]
            check("interrupted" in kinds and "resume" in kinds and kinds[-1] == "finish",
                  f"events {kinds}")
            # a finished run trains further when train.steps rises
            r = run(["offline", "train", "--resume", rd2, "--quiet"])
            check(r.returncode == 1 and "train.steps" in r.stderr, f"finished: {r.stderr}")
            r = run(["offline", "train", "--resume", rd2, "--quiet",
                     "--set", f"train.steps={stopped + 90}"])
            check(r.returncode == 0, f"extend: {r.stderr}")
            with open(os.path.join(rd2, "summary.json")) as f:
                j = json.load(f)
            check(j["status"] == "finished" and j["steps"] == stopped + 90, f"extended {j}")

        eval_repeats_training(tmp)
        remote_collect(tmp, data)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def eval_repeats_training(tmp):
    """`offline eval` of a finished FISOR run repeats its final evaluation exactly: same
    episodes, same sampling, and the run's CPU thread count (OpenBLAS sums in another order
    with more threads, and the candidate choice amplifies the difference on PointGoal1)."""
    data = os.path.join(tmp, "pg1.hdf5")
    r = run(["collect", "--policy", "random", "--env", "SafetyPointGoal1", "--episodes", "4",
             "--seed", "3", "--out", data, "--quiet"])
    check(r.returncode == 0, f"collect SafetyPointGoal1: {r.stderr}")
    cfg = os.path.join(tmp, "fisor.yaml")
    with open(cfg, "w") as f:
        f.write("algo: FISOR\nenv_id: SafetyPointGoal1\ndataset: %s\nthreads: 1\n"
                "train:\n  steps: 30\n  batch_size: 64\n  eval_every: 0\n"
                "task:\n  episode_len: 300\neval:\n  episodes: 2\n"
                "fisor:\n  critic_batch: 32\n  actor_hidden: 32\n  actor_res_hidden: 32\n" % data)
    out = os.path.join(tmp, "runs_fisor")
    r = run(["offline", "train", cfg, "--out", out, "--quiet"])
    check(r.returncode == 0, f"fisor train: {r.stderr}")
    if r.returncode:
        return
    rd = os.path.join(out, os.listdir(out)[0])
    with open(os.path.join(rd, "summary.json")) as f:
        summary = json.load(f)
    r = run(["offline", "eval", rd, "--episodes", "2", "--json"])
    check(r.returncode == 0, f"fisor eval: {r.stderr}")
    if r.returncode == 0:
        j = json.loads(r.stdout)
        check(abs(j["return"]["mean"] - summary["ep_ret"]) < 1e-5 and
              abs(j["cost"]["mean"] - summary["ep_cost"]) < 1e-9,
              f"eval {j['return']['mean']} / {j['cost']['mean']} repeats training's "
              f"{summary['ep_ret']} / {summary['ep_cost']}")
    # an episode's layout and the sampling while it plays come from (seed, episode) alone: the
    # same episodes whatever --envs, and a shorter evaluation is a prefix of a longer one
    runs = {}
    for eps, envs in ((3, 1), (3, 3), (2, 2)):
        r = run(["offline", "eval", rd, "--episodes", str(eps), "--envs", str(envs), "--json"])
        check(r.returncode == 0, f"fisor eval --envs {envs}: {r.stderr}")
        if r.returncode == 0:
            runs[eps, envs] = [(e["return"], e["cost"], e["length"])
                               for e in json.loads(r.stdout)["per_episode"]]
    if len(runs) == 3:
        check(runs[3, 1] == runs[3, 3], f"--envs 1 and 3 play the same episodes: {runs}")
        check(runs[2, 2] == runs[3, 1][:2], f"2 episodes are the first 2 of 3: {runs}")
        check(len(set(runs[3, 1])) == 3, f"the episodes differ from each other: {runs[3, 1]}")
    # an eval-time key of FISOR's own section: the actor's first draw instead of 16 candidates
    r = run(["offline", "eval", rd, "--episodes", "2", "--json", "--set", "fisor.candidates=1"])
    check(r.returncode == 0, f"fisor eval --set: {r.stderr}")
    if r.returncode == 0:
        j1 = json.loads(r.stdout)
        check(j1["sets"] == ["fisor.candidates=1"], f"sets recorded: {j1['sets']}")
        check(j1["return"]["mean"] != summary["ep_ret"], "one candidate acts otherwise")
    r = run(["offline", "eval", rd, "--episodes", "2", "--set", "train.steps=5"])
    check(r.returncode == 1 and "only fisor.* keys" in r.stderr, f"other keys refused: {r.stderr}")
    r = run(["offline", "eval", rd, "--episodes", "2", "--set", "fisor.actor_hidden=64"])
    check(r.returncode == 1 and "actor" in r.stderr, f"a shape change fails the load: {r.stderr}")


def info(path):
    r = run(["dataset", "info", path, "--cost-limit", "5", "--json"])
    check(r.returncode == 0, f"dataset info: {r.stderr}")
    j = json.loads(r.stdout) if r.returncode == 0 else {}
    j.pop("file", None)
    j.pop("load_s", None)
    return j


def same_arrays(a, b):
    try:
        import h5py
        import numpy as np
    except ImportError:
        print("  (h5py missing: the remote dataset is compared by its summary only)")
        return
    with h5py.File(a, "r") as fa, h5py.File(b, "r") as fb:
        check(sorted(fa.keys()) == sorted(fb.keys()), "same keys")
        for k in fa.keys():
            check(np.array_equal(fa[k][()], fb[k][()]), f"remote and local '{k}' are equal")


def remote_collect(tmp, local):
    """The same collection through an env server: the episodes are the local ones, value for
    value; the offline config check takes the remote id."""
    endpoint = "ipc://" + os.path.join(tmp, "env.sock")
    server = subprocess.Popen([BIN, "serve", "env", "SimplePointGoal", "--bind", endpoint],
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        time.sleep(0.3)
        data = os.path.join(tmp, "remote.hdf5")
        r = run(["collect", "--policy", "random", "--env", "remote:" + endpoint, "--episodes", "24",
                 "--seed", "3", "--out", data, "--quiet"])
        check(r.returncode == 0, f"remote collect: {r.stderr}")
        if r.returncode == 0:
            a, b = info(local), info(data)
            check(a == b and a.get("transitions", 0) > 0, f"remote dataset differs: {a} vs {b}")
            same_arrays(local, data)
        cfg = os.path.join(tmp, "remote_bc.yaml")
        with open(cfg, "w") as f:
            f.write("algo: BCAll\nenv_id: remote:%s\ndataset: %s\ntrain:\n  steps: 20\n"
                    "  batch_size: 32\n  eval_every: 0\n  eval_episodes: 1\n  log_every: 10\n"
                    "eval:\n  episodes: 1\nbc:\n  actor_hidden: [8]\n" % (endpoint, data))
        r = run(["offline", "train", cfg, "--out", os.path.join(tmp, "remote_runs"), "--quiet"])
        check(r.returncode == 0, f"offline train on a remote env: {r.stderr}")
    finally:
        server.send_signal(signal.SIGINT)
        try:
            server.wait(timeout=10)
        except subprocess.TimeoutExpired:
            server.kill()


if __name__ == "__main__":
    main()
    print("offline CLI:", "ok" if not failures else f"{failures} failed")
    sys.exit(1 if failures else 0)
