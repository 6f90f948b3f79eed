#!/usr/bin/env python3
"""`saferl train` / `saferl eval` with SAC-Lag end to end: a tiny SACLag run on SimplePointGoal
from configs/sac_lag/ with --set overrides must leave a complete run directory (progress.csv
rows whose step counts follow the budget, events, checkpoints, summary); `eval --json` on the
run directory and on an epoch checkpoint must report the SAC checkpoint's algo, env and steps,
be reproducible for a seed and differ across seeds; --seeds runs two seeds; --video must refuse
an env that cannot render and a PATH without ffmpeg, and on SafetyPointGoal1 write an MP4 with
one frame per step (checked with ffprobe when it is installed)."""
import csv
import glob
import json
import os
import shutil
import subprocess
import sys
import tempfile

BIN = os.path.join(os.environ.get("SRL_BIN_DIR", "bin"), "saferl")
SRC = os.environ.get("SRL_SOURCE_DIR", os.path.join(os.path.dirname(__file__), "..", ".."))
CONFIG = os.path.join(SRC, "configs", "sac_lag", "SafetyPointGoal1.yaml")
SETS = ["train_cfgs.total_steps=1000", "train_cfgs.eval_episodes=0",
        "algo_cfgs.steps_per_epoch=500", "algo_cfgs.start_learning_steps=200",
        "algo_cfgs.batch_size=32", "model_cfgs.actor.hidden_sizes=[16,16]",
        "model_cfgs.critic.hidden_sizes=[16,16]", "logger_cfgs.save_model_freq=1"]

passed = failed = 0


def check(cond, what):
    global passed, failed
    if cond:
        passed += 1
    else:
        failed += 1
        print("FAIL:", what, file=sys.stderr)


def run(*args, env=None):
    return subprocess.run([BIN, *args], capture_output=True, text=True, timeout=120, env=env)


def train(out, env_id, *extra):
    args = ["train", CONFIG, "--quiet", "--out", out, "--set", "env_id=" + env_id]
    for s in SETS:
        args += ["--set", s]
    return run(*args, *extra)


def main():
    tmp = tempfile.mkdtemp(prefix="test_cli_sac_")
    try:
        # a fresh run
        r = train(os.path.join(tmp, "runs"), "SimplePointGoal", "--seed", "3")
        check(r.returncode == 0, "train exits 0: " + r.stderr)
        dirs = glob.glob(os.path.join(tmp, "runs", "SACLag-SimplePointGoal-s3-*"))
        check(len(dirs) == 1, "one run directory named SACLag-SimplePointGoal-s3-<time>")
        if len(dirs) != 1:
            return
        d = dirs[0]
        check(d in r.stdout and "SACLag on SimplePointGoal, seed 3" in r.stdout, r.stdout)
        for f in ("config.yaml", "progress.csv", "events.jsonl", "final.safetensors",
                  "summary.json", "checkpoints/epoch-1.safetensors"):
            check(os.path.isfile(os.path.join(d, f)), "run holds " + f)
        with open(os.path.join(d, "progress.csv")) as f:
            rows = list(csv.DictReader(f))
        check([int(x["epoch"]) for x in rows] == [1, 2], "two epochs")
        check([int(x["total_steps"]) for x in rows] == [500, 1000], "500 steps per epoch")
        with open(os.path.join(d, "events.jsonl")) as f:
            events = [json.loads(line)["event"] for line in f]
        check(events[0] == "start" and events[-1] == "finish", "events start .. finish")
        with open(os.path.join(d, "summary.json")) as f:
            check(json.load(f)["status"] == "finished", "summary status")

        # eval: the run directory (final policy) and an epoch checkpoint
        r = run("eval", d, "--json", "--episodes", "3", "--seed", "1")
        check(r.returncode == 0, "eval exits 0: " + r.stderr)
        j = json.loads(r.stdout)
        check(j["algo"] == "SACLag" and j["env"] == "SimplePointGoal", "eval algo, env")
        check(j["trained_steps"] == 1000 and j["episodes"] == 3, "eval steps, episodes")
        check(j["checkpoint"].endswith("final.safetensors"), "run directory → final checkpoint")
        check(j["length"]["mean"] > 0 and j["cost"]["mean"] >= 0, "eval statistics")
        again = json.loads(run("eval", d, "--json", "--episodes", "3", "--seed", "1").stdout)
        check(again == j, "eval reproducible for a seed")
        other = json.loads(run("eval", d, "--json", "--episodes", "3", "--seed", "2").stdout)
        check(other["return"] != j["return"], "another seed gives other episodes")
        ck = os.path.join(d, "checkpoints", "epoch-1.safetensors")
        r = run("eval", ck, "--json", "--episodes", "2", "--deterministic")
        check(r.returncode == 0, "eval of a checkpoint: " + r.stderr)
        check(json.loads(r.stdout)["trained_steps"] == 500, "epoch-1 checkpoint has 500 steps")

        # --seeds: one process per seed
        r = train(os.path.join(tmp, "seeds"), "SimplePointGoal", "--seeds", "0,1")
        check(r.returncode == 0 and "2 of 2 seeds finished" in r.stdout, "--seeds: " + r.stderr)
        for s in (0, 1):
            check(len(glob.glob(os.path.join(tmp, "seeds", f"SACLag-SimplePointGoal-s{s}-*"))) == 1,
                  f"--seeds run for seed {s}")
        r = train(os.path.join(tmp, "bad"), "SimplePointGoal", "--seeds", "0,1",
                  "--set", "algo_cfgs.no_such_key=1")
        check(r.returncode == 1 and not os.path.exists(os.path.join(tmp, "bad")),
              "--seeds checks the SAC config once")

        # --video refusals
        r = run("eval", d, "--video", os.path.join(tmp, "x.mp4"), "--episodes", "1")
        check(r.returncode == 1 and "cannot render" in r.stderr, "SimplePointGoal cannot render")
        r = train(os.path.join(tmp, "mj"), "SafetyPointGoal1", "--set", "train_cfgs.total_steps=500")
        check(r.returncode == 0, "SafetyPointGoal1 run: " + r.stderr)
        mj = glob.glob(os.path.join(tmp, "mj", "SACLag-*"))
        r = run("eval", mj[0] if mj else "missing", "--video", os.path.join(tmp, "x.mp4"),
                env=dict(os.environ, PATH="/nonexistent"))
        check(r.returncode == 1 and "ffmpeg" in r.stderr and "PATH" in r.stderr,
              "clear error without ffmpeg: " + r.stderr)
        check(not os.path.exists(os.path.join(tmp, "x.mp4")), "no file without ffmpeg")

        # --video on a MuJoCo task: one frame per step of the 1000-step episode
        if shutil.which("ffmpeg"):
            video = os.path.join(tmp, "v.mp4")
            r = run("eval", mj[0] if mj else "missing", "--video", video, "--episodes", "1",
                    "--size", "32x24", "--json")
            check(r.returncode == 0, "eval --video: " + r.stderr)
            check(os.path.isfile(video) and os.path.getsize(video) > 0, "video written")
            if r.returncode == 0:
                j = json.loads(r.stdout)
                check(j["video"] == video and j["episodes"] == 1, "video in the JSON")
                if shutil.which("ffprobe"):
                    p = subprocess.run(["ffprobe", "-v", "error", "-count_frames",
                                        "-show_entries", "stream=nb_read_frames,width,height",
                                        "-of", "csv=p=0", video], capture_output=True, text=True)
                    w, h, n = (int(x) for x in p.stdout.strip().split(","))
                    check((w, h) == (32, 24), "video size")
                    check(n == int(j["length"]["mean"]), f"{n} frames, one per step")
        else:
            print("ffmpeg not on PATH: MP4 check skipped")
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
    print(f"{passed} passed, {failed} failed")
    sys.exit(1 if failed else 0)
