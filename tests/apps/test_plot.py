#!/usr/bin/env python3
"""`saferl plot` end to end: fake run directories (2 algos x 3 seeds, one seed shorter) are drawn
into a PNG that is decoded here (zlib + struct) and checked for its size, the group colours and
the dashed limit line; the data inline in the gnuplot script is checked against a NumPy mean /
min / max over seeds; and every failure (gnuplot missing, gnuplot failing, no progress.csv, a
malformed CSV) must end with a clear message, exit status 1 and no image left behind."""
import os
import shutil
import struct
import subprocess
import sys
import tempfile
import zlib

import numpy as np

BIN = os.path.join(os.environ.get("SRL_BIN_DIR", "bin"), "saferl")
COLUMNS = ("epoch,total_steps,ep_ret,ep_cost,ep_len,lagrange,loss_pi,loss_vr,loss_vc,kl,"
           "entropy,fps,wall_s")
ALGOS = {"ppo_lag": (20.0, 30.0), "cppo_pid": (12.0, 18.0)}  # final return, final cost
STEPS_PER_EPOCH = 20000
CONFIG = """# ppo_lag: every option, defaults included
seed: {seed}
algo: {algo}
env_id: SafetyPointGoal1

algo_cfgs:
  # steps collected per epoch
  steps_per_epoch: 20000

lagrange_cfgs:
  # the episode cost the policy must stay under
  cost_limit: 25.0
  lambda_lr: 0.035
"""

passed = failed = 0


def check(cond, what):
    global passed, failed
    if cond:
        passed += 1
    else:
        failed += 1
        print(f"FAIL: {what}")


def curves(algo, seed, epochs):
    """ep_ret and ep_cost of a fake run: smooth trends plus seeded noise"""
    rng = np.random.default_rng(100 * seed + len(algo))
    final_ret, final_cost = ALGOS[algo]
    e = np.arange(100)
    ret = final_ret * (1 - np.exp(-e / 10)) + rng.normal(0, 1.0, 100)
    cost = final_cost + 40 * np.exp(-e / 6) + rng.normal(0, 2.0, 100)
    return ret[:epochs], cost[:epochs]


def write_run(root, algo, seed, epochs, config=True):
    d = os.path.join(root, f"{algo}-SafetyPointGoal1-s{seed}-20250101-12000{seed}")
    os.makedirs(d)
    ret, cost = curves(algo, seed, epochs)
    with open(os.path.join(d, "progress.csv"), "w") as f:
        f.write(COLUMNS + "\n")
        for i in range(epochs):
            f.write(f"{i},{(i + 1) * STEPS_PER_EPOCH},{ret[i]:.6f},{cost[i]:.6f},1000,0.1,"
                    f"-0.01,1.0,2.0,0.01,1.4,5000,{3.0 * (i + 1):.2f}\n")
    if config:
        with open(os.path.join(d, "config.yaml"), "w") as f:
            f.write(CONFIG.format(seed=seed, algo=algo))
    return d


def run(args, env=None):
    return subprocess.run([BIN, "plot", *args], capture_output=True, text=True, env=env,
                          timeout=120)


def read_png(path):
    """(width, height, pixels as an (h, w, channels) uint8 array) of an 8-bit PNG"""
    with open(path, "rb") as f:
        data = f.read()
    assert data[:8] == b"\x89PNG\r\n\x1a\n", "not a PNG signature"
    pos, chunks = 8, []
    while pos < len(data):
        n, kind = struct.unpack(">I4s", data[pos:pos + 8])
        body = data[pos + 8:pos + 8 + n]
        crc = struct.unpack(">I", data[pos + 8 + n:pos + 12 + n])[0]
        assert zlib.crc32(kind + body) & 0xffffffff == crc, f"bad CRC in {kind}"
        chunks.append((kind, body))
        pos += 12 + n
    assert chunks[0][0] == b"IHDR" and chunks[-1][0] == b"IEND"
    w, h, depth, ctype, _, _, interlace = struct.unpack(">IIBBBBB", chunks[0][1])
    assert depth == 8 and interlace == 0, f"depth {depth}, interlace {interlace}"
    channels = {0: 1, 2: 3, 3: 1, 4: 2, 6: 4}[ctype]
    raw = zlib.decompress(b"".join(b for k, b in chunks if k == b"IDAT"))
    stride = w * channels
    img = np.zeros((h, stride), np.uint8)
    prev = bytearray(stride)
    for y in range(h):  # undo the five PNG filters, row by row
        ft = raw[y * (stride + 1)]
        line = raw[y * (stride + 1) + 1:(y + 1) * (stride + 1)]
        if ft == 0:
            out = bytearray(line)
        elif ft == 2:
            out = bytearray(((np.frombuffer(line, np.uint8).astype(np.uint16) +
                              np.frombuffer(bytes(prev), np.uint8)) & 0xff).astype(np.uint8))
        else:
            out = bytearray(stride)
            for x in range(stride):
                a = out[x - channels] if x >= channels else 0
                b = prev[x]
                if ft == 1:
                    p = a
                elif ft == 3:
                    p = (a + b) >> 1
                else:
                    c = prev[x - channels] if x >= channels else 0
                    pa, pb, pc = abs(b - c), abs(a - c), abs(a + b - 2 * c)
                    p = a if pa <= pb and pa <= pc else (b if pb <= pc else c)
                out[x] = (line[x] + p) & 0xff
        img[y] = np.frombuffer(bytes(out), np.uint8)
        prev = out
    img = img.reshape(h, w, channels)
    if ctype == 3:
        plte = np.frombuffer(next(b for k, b in chunks if k == b"PLTE"), np.uint8).reshape(-1, 3)
        img = plte[img[:, :, 0]]
    return w, h, img[:, :, :3] if channels >= 3 else np.repeat(img[:, :, :1], 3, axis=2)


def near(img, rgb, tol=40):
    """how many pixels lie within tol of a colour"""
    d = np.abs(img.astype(np.int32) - np.array(rgb, np.int32)).sum(axis=2)
    return int((d <= tol).sum())


def data_block(script, name):
    """rows of the inline data block $name of a gnuplot script"""
    lines = script.splitlines()
    i = lines.index(f"${name} << EOD")
    rows = []
    for ln in lines[i + 1:]:
        if ln == "EOD":
            break
        rows.append([float(v) for v in ln.split()])
    return np.array(rows)


def main():
    have_gnuplot = shutil.which("gnuplot") is not None
    with tempfile.TemporaryDirectory(prefix="srl_plot_") as tmp:
        runs = os.path.join(tmp, "runs")
        dirs, epochs = [], {}
        for algo in ALGOS:
            for seed in range(3):
                n = 30 if seed == 2 else 40  # one seed stopped early
                dirs.append(write_run(runs, algo, seed, n))
                epochs[(algo, seed)] = n
        out = os.path.join(tmp, "curves.png")
        gp = os.path.join(tmp, "curves.gp")

        # the plot itself
        if have_gnuplot:
            r = run([*dirs, "--out", out, "--size", "900x420", "--script", gp])
            check(r.returncode == 0, f"plot exits 0 (got {r.returncode}: {r.stderr})")
            check(os.path.exists(out), "the PNG exists")
            if os.path.exists(out):
                w, h, img = read_png(out)
                check((w, h) == (900, 420), f"PNG is 900x420 (got {w}x{h})")
                colours = len(np.unique(img.reshape(-1, 3), axis=0))
                check(colours > 20, f"the image is not blank ({colours} colours)")
                white = near(img, (255, 255, 255), 10)
                check(white < 0.97 * w * h, f"the image is not all white ({white} white pixels)")
                # both groups' mean lines (their colours, in both panels) and the black dashes
                blue, red = near(img, (0x1f, 0x77, 0xb4)), near(img, (0xd6, 0x27, 0x28))
                check(blue > 300 and red > 300, f"both groups are drawn (blue {blue}, red {red})")
                left, right = img[:, : w // 2], img[:, w // 2:]
                red_l, red_r = near(left, (0xd6, 0x27, 0x28)), near(right, (0xd6, 0x27, 0x28))
                check(red_l > 100 and red_r > 100, "a group is drawn in both panels")
                # the dashed limit line: a row of the cost panel far blacker than any row of
                # text (axis labels, ticks) in either panel
                dark = img.astype(np.int32).sum(axis=2) < 100
                row_l, row_r = dark[:, : w // 2].sum(axis=1), dark[:, w // 2:].sum(axis=1)
                check(row_r.max() > 2 * row_l.max() and row_r.max() > 0.25 * (w // 2),
                      f"the cost panel has the dashed limit line (darkest row {row_r.max()} "
                      f"pixels, return panel {row_l.max()})")
                leftovers = [f for f in os.listdir(tmp) if ".tmp." in f]
                check(not leftovers, f"no temporary file is left ({leftovers})")
        else:
            print("skip: gnuplot is not installed; only the script and the errors are checked")
            r = run([*dirs, "--script", gp])
            check(r.returncode == 0, f"--script alone exits 0 ({r.stderr})")

        # the script: labels, the limit from config.yaml, and the numbers against NumPy
        script = open(gp).read() if os.path.exists(gp) else ""
        for algo in ALGOS:
            check(f"'{algo}-SafetyPointGoal1 (3 seeds)'" in script,
                  f"{algo} is one group of 3 seeds")
        check("'cost limit 25'" in script, "the cost limit comes from config.yaml")
        check("'SafetyPointGoal1'" in script, "the env is the default title")
        groups = [a for a in ALGOS]  # directories were given in this order
        for gi, algo in enumerate(groups):
            n = min(epochs[(algo, s)] for s in range(3))
            rets = np.array([np.round(curves(algo, s, 40)[0][:n], 6) for s in range(3)])
            costs = np.array([np.round(curves(algo, s, 40)[1][:n], 6) for s in range(3)])
            for name, y in ((f"ret{gi}", rets), (f"cost{gi}", costs)):
                b = data_block(script, name) if f"${name} << EOD" in script else np.zeros((0, 4))
                check(b.shape == (n, 4), f"${name} has the {n} epochs all seeds reached "
                                         f"(got {b.shape})")
                if b.shape == (n, 4):
                    steps_k = (np.arange(n) + 1) * STEPS_PER_EPOCH / 1e3  # x in thousands
                    check(np.allclose(b[:, 0], steps_k), f"${name} x is steps in thousands")
                    check(np.allclose(b[:, 1], y.mean(0), atol=1e-6), f"${name} mean over seeds")
                    check(np.allclose(b[:, 2], y.min(0), atol=1e-6), f"${name} band low = min")
                    check(np.allclose(b[:, 3], y.max(0), atol=1e-6), f"${name} band high = max")

        # options: --cost-limit overrides the configs, --band std, --x epoch
        r = run([*dirs, "--script", gp, "--cost-limit", "10", "--band", "std", "--x", "epoch"])
        script = open(gp).read()
        check(r.returncode == 0 and "'cost limit 10'" in script and "'cost limit 25'" not in script,
              "--cost-limit replaces the configs' limit")
        b = data_block(script, "ret1")
        rets = np.array([np.round(curves("cppo_pid", s, 40)[0][:30], 6) for s in range(3)])
        sd = rets.std(0, ddof=1)
        check(np.allclose(b[:, 0], np.arange(30)), "--x epoch puts epochs on x")
        check(np.allclose(b[:, 2], rets.mean(0) - sd, atol=1e-6) and
              np.allclose(b[:, 3], rets.mean(0) + sd, atol=1e-6), "--band std is mean ± 1 std")

        # gnuplot missing: a clear message, status 1, no image
        empty = os.path.join(tmp, "empty_path")
        os.makedirs(empty)
        out2 = os.path.join(tmp, "missing.png")
        env = dict(os.environ, PATH=empty)
        r = run([*dirs, "--out", out2], env=env)
        check(r.returncode == 1, f"no gnuplot: status 1 (got {r.returncode})")
        check("gnuplot" in r.stderr and "not found" in r.stderr and "gnuplot-nox" in r.stderr,
              f"no gnuplot: the message says so ({r.stderr.strip()})")
        check(not os.path.exists(out2), "no gnuplot: no image")

        # gnuplot failing: its status is reported, nothing is left behind
        fake = os.path.join(tmp, "fake_bin")
        os.makedirs(fake)
        with open(os.path.join(fake, "gnuplot"), "w") as f:
            f.write("#!/bin/sh\necho 'fake gnuplot: line 1: boom' >&2\nexit 3\n")
        os.chmod(os.path.join(fake, "gnuplot"), 0o755)
        r = run([*dirs, "--out", out2], env=dict(os.environ, PATH=fake + ":/usr/bin:/bin"))
        check(r.returncode == 1 and "exit status 3" in r.stderr,
              f"gnuplot failing: status 1 and its exit status ({r.stderr.strip()})")
        check(not os.path.exists(out2) and not [f for f in os.listdir(tmp) if ".tmp." in f],
              "gnuplot failing: no image and no temporary file")

        # a directory without progress.csv
        bare = os.path.join(tmp, "bare-run-s0")
        os.makedirs(bare)
        r = run([dirs[0], bare, "--out", out2])
        check(r.returncode == 1 and bare in r.stderr and "progress.csv" in r.stderr,
              f"no progress.csv: named ({r.stderr.strip()})")

        # a malformed progress.csv: file and line named
        broken = write_run(os.path.join(tmp, "broken"), "ppo_lag", 7, 5)
        csv = os.path.join(broken, "progress.csv")
        lines = open(csv).read().splitlines(True)
        lines[3] = lines[3].replace(",", ",oops,", 1)
        open(csv, "w").writelines(lines)
        r = run([broken, "--out", out2])
        check(r.returncode == 1 and f"{csv}:4:" in r.stderr,
              f"malformed CSV: file and line named ({r.stderr.strip()})")
        lines[3] = "3,80000,not_a_number,1,1000,0.1,-0.01,1.0,2.0,0.01,1.4,5000,12\n"
        open(csv, "w").writelines(lines)
        r = run([broken, "--out", out2])
        check(r.returncode == 1 and f"{csv}:4: column 'ep_ret'" in r.stderr,
              f"a field that is not a number: column named ({r.stderr.strip()})")

        # directories without the -s<seed>-<time> suffix: grouped by config.yaml's algo and env;
        # a flow-style lagrange_cfgs gives the limit
        named = []
        for i, seed in enumerate((0, 1)):
            d = os.path.join(tmp, "mine", f"try{'AB'[i]}")
            os.makedirs(d)
            shutil.copy(os.path.join(dirs[seed], "progress.csv"), d)
            with open(os.path.join(d, "config.yaml"), "w") as f:
                f.write("algo: \"ppo_lag\"  # the algorithm\n"
                        "train_cfgs:\n  env_id: SafetyCarGoal1\n"
                        "lagrange_cfgs: {cost_limit: 15.5, lambda_lr: 0.035}\n")
            named.append(d)
        r = run([*named, "--script", gp])
        script = open(gp).read()
        check(r.returncode == 0 and "'ppo_lag-SafetyCarGoal1 (2 seeds)'" in script,
              f"grouped by config.yaml's algo and env ({r.stderr.strip()})")
        check("'cost limit 15.5'" in script, "a flow-style lagrange_cfgs gives the limit")

        # usage errors: status 2
        check(run([*dirs]).returncode == 2, "no --out: usage error")
        check(run(["--out", out2]).returncode == 2, "no run directory: usage error")
        check(run([*dirs, "--out", out2, "--size", "12"]).returncode == 2, "bad --size")

    print(f"{passed} passed, {failed} failed")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
