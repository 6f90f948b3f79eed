#!/usr/bin/env python3
"""Offline datasets against h5py and numpy.

Every accepted layout is written here with h5py (bool enum / int8 / uint8 / float flags, (N,) and
(N,1) columns, float64 data, gzip with and without shuffle, chunks that split columns, contiguous
data, a user block, D4RL files without costs and/or next_observations) and read by saferl
(tests/offline/tool_dataset_copy, `saferl dataset info --json`); what saferl got is compared with
numpy (arrays bit for bit, episodes split on terminal-or-timeout, returns and costs, D4RL's
qlearning_dataset for derived next observations) and what it writes back must pass DSRL's
get_dataset assertions (keys, shapes, float32, bool flags, gzip). Each kind of bad file (missing
key, short key, non-finite value, overflowing float64, bad flag, wrong dims, wrong class or
shape, truncated, corrupt chunk, unknown filter, not HDF5) must be refused with a message naming
the key and row, without libhdf5's own error printout. `saferl dataset filter` is checked
against a Python transcription of DSRL's grid_filter (which bins are dropped, kept whole, cut to
max_npb), and `saferl collect` end to end on SimplePointGoal: random, a PPO-Lag run and a
SAC-Lag run, replayed on the env by tests/offline/tool_dataset_replay."""
import glob
import json
import os
import shutil
import subprocess
import sys
import tempfile
from collections import defaultdict

import h5py
import numpy as np

BIN_DIR = os.environ.get("SRL_BIN_DIR", "bin")
SRC = os.environ.get("SRL_SOURCE_DIR", os.path.join(os.path.dirname(__file__), "..", ".."))
SAFERL = os.path.join(BIN_DIR, "saferl")
COPY = os.path.join(BIN_DIR, "tool_dataset_copy")
REPLAY = os.path.join(BIN_DIR, "tool_dataset_replay")
KEYS = ["observations", "next_observations", "actions", "rewards", "costs", "terminals",
        "timeouts"]

passed = failed = 0


def check(cond, what):
    global passed, failed
    if cond:
        passed += 1
    else:
        failed += 1
        print("FAIL:", what, file=sys.stderr)


def run(args, env=None, timeout=120):
    e = dict(os.environ)
    if env:
        e.update(env)
    return subprocess.run(args, capture_output=True, text=True, timeout=timeout, env=e)


#---- data and expectations ---------------------------------------------------------------------

def make_data(n, od, ad, seed, ends, terms):
    """float64 arrays of a dataset with episodes ending at rows `ends` (terminal where terms)."""
    rng = np.random.default_rng(seed)
    d = {
        "observations": rng.normal(size=(n, od)),
        "next_observations": rng.normal(size=(n, od)),
        "actions": rng.uniform(-2, 2, size=(n, ad)),
        "rewards": rng.normal(size=n),
        "costs": (rng.uniform(size=n) < 0.3).astype(np.float64) * rng.integers(1, 3, size=n),
        "terminals": np.zeros(n, bool),
        "timeouts": np.zeros(n, bool),
    }
    for e, t in zip(ends, terms):
        (d["terminals"] if t else d["timeouts"])[e] = True
    return d


def seq_sum(x):
    """the sum saferl computes: float32 values added in order in double"""
    s = 0.0
    for v in np.asarray(x, np.float32):
        s += float(v)
    return s


def episodes(term, tout, rew, cost, keep_tail=False):
    """DSRL's split: episode i = rows (done[i-1], done[i]]"""
    done = np.where((np.asarray(term) == 1) | (np.asarray(tout) == 1))[0]
    starts, rets, costs = [0], [], []
    for e in done:
        rets.append(seq_sum(rew[starts[-1]:e + 1]))
        costs.append(seq_sum(cost[starts[-1]:e + 1]))
        starts.append(int(e) + 1)
    n = len(rew)
    if keep_tail and starts[-1] < n:
        rets.append(seq_sum(rew[starts[-1]:]))
        costs.append(seq_sum(cost[starts[-1]:]))
        starts.append(n)
    return starts, rets, costs


def qlearning(d):
    """D4RL's qlearning_dataset (terminate_on_end=False) plus saferl's episode cut: the kept row
    before a dropped timeout (or a dropped last row that ended an episode) gets timeout = 1"""
    n = len(d["rewards"])
    obs = d["observations"]
    out = defaultdict(list)
    src = []
    for i in range(n - 1):
        if d["timeouts"][i]:
            continue
        out["observations"].append(obs[i])
        out["next_observations"].append(obs[i + 1])
        out["actions"].append(d["actions"][i])
        out["rewards"].append(d["rewards"][i])
        out["costs"].append(d["costs"][i] if "costs" in d else 0.0)
        out["terminals"].append(bool(d["terminals"][i]))
        src.append(i)
    tout = np.zeros(len(src), bool)
    pos = {i: j for j, i in enumerate(src)}
    for i in range(n):
        dropped = d["timeouts"][i] or i == n - 1
        ends = d["timeouts"][i] or d["terminals"][i]
        if dropped and ends and (i - 1) in pos and not d["terminals"][i - 1]:
            tout[pos[i - 1]] = True
    r = {k: np.array(v) for k, v in out.items()}
    r["timeouts"] = tout
    return r


def write_h5(path, d, flags="bool", col_shape="flat", dtype=np.float32, comp="gzip",
             shuffle=False, chunks=True, drop=(), userblock=0):
    kw = {"userblock_size": userblock} if userblock else {}
    with h5py.File(path, "w", **kw) as f:
        for k in KEYS:
            if k in drop:
                continue
            x = np.asarray(d[k])
            if k in ("terminals", "timeouts"):
                x = {"bool": x.astype(bool), "int8": x.astype(np.int8),
                     "uint8": x.astype(np.uint8), "float": x.astype(np.float32),
                     "float64": x.astype(np.float64)}[flags]
            else:
                x = x.astype(dtype)
            if col_shape == "col" and x.ndim == 1:
                x = x[:, None]
            opts = {}
            if comp:
                opts = {"compression": comp, "shuffle": shuffle}
                if chunks is not True:
                    opts["chunks"] = chunks(x.shape) if callable(chunks) else chunks
            elif chunks is not True:
                opts["chunks"] = chunks(x.shape) if callable(chunks) else chunks
            f.create_dataset(k, data=x, **opts)


def read_all(path):
    with h5py.File(path, "r") as f:
        return {k: f[k][:] for k in f.keys()}


def dsrl_get_dataset(path, obs_shape, act_shape):
    """DSRL's OfflineEnv.get_dataset checks (dsrl/offline_env.py), plus the writer's own
    promises: float32 data, h5py bool flags, gzip"""
    data = read_all(path)
    for key in KEYS:
        assert key in data, "Dataset is missing key %s" % key
    n = data["observations"].shape[0]
    assert data["observations"].shape[1:] == obs_shape
    assert data["actions"].shape[1:] == act_shape
    for k in ("rewards", "costs", "terminals", "timeouts"):
        assert data[k].shape == (n,), (k, data[k].shape)
    with h5py.File(path, "r") as f:
        for k in KEYS[:5]:
            assert f[k].dtype == np.float32, (k, f[k].dtype)
            assert f[k].compression == "gzip", k
        for k in KEYS[5:]:
            assert f[k].dtype == np.bool_, (k, f[k].dtype)
    return data


#---- readers: every accepted variant --------------------------------------------------------------

def batch(jobs, env=None):
    """read (and write) many files in one tool_dataset_copy process; jobs are (IN, OUT or None,
    [options]); returns (JSON answer, the job's own stderr) per job"""
    lines = "".join("%s\t%s\t%s\n" % (i, o or "-", " ".join(opts)) for i, o, opts in jobs)
    e = dict(os.environ)
    e.update(env or {})
    r = subprocess.run([COPY, "--batch"], input=lines, capture_output=True, text=True,
                       timeout=300, env=e)
    answers = [json.loads(line) for line in r.stdout.splitlines()]
    errs = {}
    for part in r.stderr.split("@@ ")[1:]:
        idx, _, rest = part.partition("\n")
        errs[int(idx)] = rest
    check(r.returncode == 0 and len(answers) == len(jobs), "batch answered every job: " +
          r.stderr[-500:])
    return [(answers[i] if i < len(answers) else {"ok": False, "error": "no answer"},
             errs.get(i, "")) for i in range(len(jobs))]


def check_variant(name, j, err, expect, out, od, ad, keep_tail=False, want_warn=(),
                  threaded=None):
    check(j["ok"], "%s: read: %s" % (name, j.get("error")))
    if not j["ok"]:
        return
    for w in want_warn:
        check(w in err, "%s: warning '%s' in %r" % (name, w, err))
    check("HDF5-DIAG" not in err, name + ": no libhdf5 printout")
    if threaded is not None:
        check((j["threaded_chunks"] > 0) == threaded,
              "%s: %d chunks on the threaded path" % (name, j["threaded_chunks"]))
    n = len(expect["rewards"])
    check(j["n"] == n and j["obs_dim"] == od and j["act_dim"] == ad,
          "%s: n %d dims %d %d" % (name, j["n"], j["obs_dim"], j["act_dim"]))
    starts, rets, costs = episodes(expect["terminals"], expect["timeouts"],
                                   expect["rewards"].astype(np.float32),
                                   expect["costs"].astype(np.float32), keep_tail)
    check(j["ep_start"] == starts, "%s: episode starts %s vs %s" % (name, j["ep_start"][:8],
                                                                 starts[:8]))
    check(j["ep_return"] == rets and j["ep_cost"] == costs, name + ": episode sums")
    try:
        got = dsrl_get_dataset(out, (od,), (ad,))
    except AssertionError as e:
        check(False, "%s: DSRL's get_dataset on the written file: %s" % (name, e))
        return
    for k in KEYS:
        want = np.asarray(expect[k])
        want = want.astype(bool) if k in ("terminals", "timeouts") else want.astype(np.float32)
        check(got[k].shape == want.shape and np.array_equal(got[k], want),
              "%s: %s differs" % (name, k))


def test_variants(tmp):
    n, od, ad = 3000, 5, 3
    ends = list(range(99, 2900, 100)) + [2950]
    terms = [i % 4 == 1 for i in range(len(ends))]
    d = make_data(n, od, ad, 1, ends, terms)
    cases = [
        ("bool", dict(flags="bool")),
        ("int8", dict(flags="int8")),
        ("uint8", dict(flags="uint8")),
        ("float_flags", dict(flags="float")),
        ("float64_flags", dict(flags="float64", col_shape="col")),
        ("columns", dict(col_shape="col")),
        ("float64", dict(dtype=np.float64)),
        ("float64_shuffle", dict(dtype=np.float64, shuffle=True)),
        ("shuffle", dict(shuffle=True)),
        ("split_chunks", dict(chunks=lambda s: (97,) + ((2,) if len(s) == 2 else ()))),
        ("contiguous", dict(comp=None)),
        ("chunked_raw", dict(comp=None, chunks=lambda s: (500,) + s[1:])),
        ("userblock", dict(userblock=1024, shuffle=True)),
    ]
    no_cost = dict(d, costs=np.zeros(n))
    q = qlearning(d)
    q2 = qlearning({k: v for k, v in d.items() if k != "costs"})
    # (name, writer options, expected arrays, keep_tail, warnings)
    variants = [(name, kw, d, False, ()) for name, kw in cases] + [
        ("keep_tail", {}, d, True, ()),
        # D4RL: no costs (zeros + warning), no next_observations (derived), neither
        ("d4rl_no_costs", dict(drop=("costs",)), no_cost, False, ("no 'costs'",)),
        ("d4rl_no_next", dict(drop=("next_observations",)), q, False,
         ("no 'next_observations'",)),
        ("d4rl_plain", dict(drop=("costs", "next_observations")), q2, False,
         ("no 'costs'", "no 'next_observations'")),
    ]
    jobs, meta = [], []
    for name, kw, expect, tail, warn in variants:
        path = os.path.join(tmp, name + ".hdf5")
        write_h5(path, d, **kw)
        for threads in ("4", "0"):
            out = os.path.join(tmp, "%s.out%s.hdf5" % (name, threads))
            jobs.append((path, out, ["--allow-no-costs", "--threads", threads] +
                         (["--keep-tail"] if tail else [])))
            gz = kw.get("comp", "gzip") == "gzip"
            meta.append(("%s (threads %s)" % (name, threads), expect, out, tail, warn,
                         gz and threads != "0"))
    for (name, expect, out, tail, warn, thr), (j, err) in zip(meta, batch(jobs)):
        check_variant(name, j, err, expect, out, od, ad, tail, warn, thr)
    check(len(q["rewards"]) == n - 1 - int(d["timeouts"][:-1].sum()), "qlearning drops rows")

    # `saferl dataset info --json` against numpy
    path = os.path.join(tmp, "bool.hdf5")
    for k in (0.0, 2.5, 10.0):
        r = run([SAFERL, "dataset", "info", path, "--json", "--cost-limit", str(k)])
        check(r.returncode == 0, "info: " + r.stderr)
        if r.returncode:
            continue
        j = json.loads(r.stdout)
        starts, rets, costs = episodes(d["terminals"], d["timeouts"],
                                       d["rewards"].astype(np.float32),
                                       d["costs"].astype(np.float32))
        rets, costs = np.array(rets), np.array(costs)
        lens = np.diff(starts)
        check(j["transitions"] == n and j["episodes"] == len(rets), "info counts")
        check(j["obs_dim"] == od and j["act_dim"] == ad and j["has_costs"], "info dims")
        check(j["terminals"] == int(d["terminals"].sum()) and
              j["timeouts"] == int(d["timeouts"].sum()), "info flags")
        check(j["tail_rows"] == n - starts[-1], "info tail rows")
        check(j["return"]["min"] == rets.min() and j["return"]["max"] == rets.max(), "info R range")
        check(abs(j["return"]["mean"] - rets.mean()) < 1e-12 and
              abs(j["return"]["std"] - rets.std()) < 1e-12, "info R mean, std")
        check(j["cost"]["min"] == costs.min() and j["cost"]["max"] == costs.max() and
              abs(j["cost"]["mean"] - costs.mean()) < 1e-12, "info C")
        check(j["length"]["min"] == lens.min() and j["length"]["max"] == lens.max(), "info len")
        check(j["safe_episodes"] == int((costs <= k).sum()) and
              abs(j["safe_share"] - (costs <= k).mean()) < 1e-15, "info safe share at %g" % k)
        check(j["step_reward"]["min"] == float(d["rewards"].astype(np.float32).min()), "step r")
        check(j["task"] is None, "no DSRL task for this file name")

    # a DSRL file name gives the task's normalised ranges
    named = os.path.join(tmp, "SafetyCarRun-v0-40-651.hdf5")
    shutil.copy(path, named)
    r = run([SAFERL, "dataset", "info", named, "--json"])
    j = json.loads(r.stdout) if r.returncode == 0 else {}
    t = j.get("task") or {}
    rmin, rmax = 204.28726196289062, 574.6533203125
    check(t.get("name") == "CarRun", "task from the file name: %s" % t)
    if t:
        check(abs(t["normalized_return"]["max"] - (j["return"]["max"] - rmin) / (rmax - rmin))
              < 1e-12, "normalized return")
        check(abs(t["normalized_cost"]["max"] - j["cost"]["max"] / 10) < 1e-12, "normalized cost")
    r = run([SAFERL, "dataset", "info", path])
    check(r.returncode == 0 and "episodes" in r.stdout and "safe" in r.stdout, "text info")


#---- refused files --------------------------------------------------------------------------------

PENDING = []


def refused(tmp, name, d, want, via="copy", opts=(), mutate=None, env=None, **kw):
    """write a bad file; via "info" it goes through `saferl dataset info` at once, else it waits
    for flush_refused, which reads all such files in one tool_dataset_copy process"""
    path = os.path.join(tmp, name + ".hdf5")
    write_h5(path, d, **kw)
    if mutate:
        mutate(path)
    if via == "copy":
        opts = list(opts) + (["--threads", env["SRL_DATASET_THREADS"]] if env else [])
        PENDING.append((name, path, opts, want))
        return
    r = run([SAFERL, "dataset", "info", path, "--json"] + list(opts), env=env)
    check(r.returncode == 1, "%s: refused (exit %d): %s" % (name, r.returncode, r.stdout[:200]))
    check(r.stdout == "", name + ": nothing printed on stdout")
    for w in want:
        check(w in r.stderr, "%s: message has %r: %s" % (name, w, r.stderr.strip()))
    check("HDF5-DIAG" not in r.stderr and "#000" not in r.stderr,
          name + ": libhdf5's error stack is not printed")


def flush_refused():
    res = batch([(path, None, opts) for _, path, opts, _ in PENDING])
    for (name, _, _, want), (j, err) in zip(PENDING, res):
        check(not j["ok"] and j.get("status") in ("SRL_EFORMAT", "SRL_ENOTFOUND"),
              "%s: refused: %s" % (name, j))
        for w in want:
            check(w in j.get("error", ""), "%s: message has %r: %s" % (name, w, j.get("error")))
        check("HDF5-DIAG" not in err and "#000" not in err,
              name + ": libhdf5's error stack is not printed")
        check(not j.get("left_behind"), name + ": nothing left behind")
    PENDING.clear()


def replace(key, value):
    def fn(path):
        with h5py.File(path, "a") as f:
            del f[key]
            if value is not None:
                if isinstance(value, str) and value == "group":
                    f.create_group(key)
                else:
                    f.create_dataset(key, data=value)
    return fn


def truncate(frac):
    def fn(path):
        size = os.path.getsize(path)
        with open(path, "r+b") as f:
            f.truncate(int(size * frac))
    return fn


def corrupt_chunk(key, index):
    def fn(path):
        with h5py.File(path, "r") as f:
            info = f[key].id.get_chunk_info(index)
        with open(path, "r+b") as f:
            f.seek(info.byte_offset + info.size // 2)
            f.write(bytes((37 * i + 11) & 255 for i in range(16)))
    return fn


def test_refused(tmp):
    n, od, ad = 400, 4, 2
    d = make_data(n, od, ad, 2, [99, 199, 299, 399], [0, 1, 0, 0])
    for k in KEYS:
        if k == "next_observations":
            continue  # derived (D4RL)
        refused(tmp, "missing_" + k, d, ["missing dataset '%s'" % k], drop=(k,))
    for k in KEYS:
        short = {kk: (v[:-1] if kk == k else v) for kk, v in d.items()}
        want = "'%s' has %d rows, 'observations' has %d" % (k, n - 1, n)
        if k == "observations":
            want = "has %d rows, 'observations' has %d" % (n, n - 1)
        refused(tmp, "short_" + k, short, [want])
    # non-finite values name the key and the first bad row
    for k, row, col, val in [("observations", 17, 3, np.nan), ("next_observations", 250, 0,
                             np.inf), ("actions", 399, 1, -np.inf), ("rewards", 5, None, np.nan),
                             ("costs", 123, None, np.inf)]:
        bad = {kk: v.copy() for kk, v in d.items()}
        if col is None:
            bad[k][row] = val
            bad[k][row + 7 if row + 7 < n else row] = val
            where = "'%s' row %d is" % (k, row)
        else:
            bad[k][row, col] = val
            where = "'%s' row %d column %d is" % (k, row, col)
        for comp in ("gzip", None):
            refused(tmp, "nonfinite_%s_%s" % (k, comp), bad, [where], comp=comp,
                    via="info" if k == "rewards" and comp else "copy")
    big = {kk: v.copy() for kk, v in d.items()}
    big["actions"][33, 0] = 1e300
    refused(tmp, "overflow", big, ["'actions' row 33 column 0 is inf"], dtype=np.float64)
    # flags that are not 0/1
    bad = {kk: v.copy() for kk, v in d.items()}
    bad["terminals"] = bad["terminals"].astype(np.int8)
    bad["terminals"][42] = 2
    refused(tmp, "flag_int", bad, ["'terminals' row 42 holds 2"], flags="int8")
    bad = {kk: v.copy() for kk, v in d.items()}
    bad["timeouts"] = bad["timeouts"].astype(np.float32)
    bad["timeouts"][7] = 0.5
    refused(tmp, "flag_float", bad, ["'timeouts' row 7 holds 0.5"], flags="float")
    # classes and shapes
    refused(tmp, "string_rewards", d, ["'rewards' holds string values"],
            mutate=replace("rewards", np.array([b"x"] * n)))
    refused(tmp, "group_costs", d, ["'costs' is not a dataset"], mutate=replace("costs", "group"))
    refused(tmp, "obs_rank1", d, ["'observations' has shape (400,), expected (N, dim)"],
            mutate=replace("observations", np.zeros(n, np.float32)))
    refused(tmp, "rewards_2col", d, ["'rewards' has shape (400, 2), expected (N,) or (N, 1)"],
            mutate=replace("rewards", np.zeros((n, 2), np.float32)))
    refused(tmp, "next_cols", d, ["'next_observations' has 3 columns, 'observations' 4"],
            mutate=replace("next_observations", np.zeros((n, 3), np.float32)))
    empty = {k: v[:0] for k, v in d.items()}
    refused(tmp, "empty", empty, ["'observations' holds no rows"], comp=None)
    # dims against the env
    refused(tmp, "env_dims", d, ["'observations' has 4 columns, the env's observations have 8"],
            via="info", opts=("--env", "SimplePointGoal"))
    refused(tmp, "act_dims", d, ["'actions' has 2 columns, the env's actions have 3"],
            opts=("--act-dim", "3"))
    # truncated anywhere, corrupt chunks on both read paths, a filter libhdf5 lacks
    for frac in (0.05, 0.3, 0.6, 0.95, 0.9999):
        for comp in ("gzip", None):
            refused(tmp, "truncated_%g_%s" % (frac, comp), d, ["truncated or corrupt"],
                    via="info" if frac == 0.6 else "copy", mutate=truncate(frac), comp=comp)
    for threads in ("0", "2"):
        for key in ("observations", "rewards"):
            refused(tmp, "corrupt_%s_%s" % (key, threads), d, ["'%s'" % key, "corrupt"],
                    via="info" if key == "rewards" else "copy", mutate=corrupt_chunk(key, 0),
                    env={"SRL_DATASET_THREADS": threads}, chunks=lambda s: (100,) + s[1:])
    refused(tmp, "lzf", d, ["'observations' is stored with filter 32000"], comp="lzf")
    flush_refused()
    path = os.path.join(tmp, "text.hdf5")
    with open(path, "w") as f:
        f.write("observations,actions\n")
    r = run([SAFERL, "dataset", "info", path])
    check(r.returncode == 1 and "not an HDF5 file" in r.stderr, "text file: " + r.stderr)
    r = run([SAFERL, "dataset", "info", os.path.join(tmp, "nope.hdf5")])
    check(r.returncode == 1 and "nope.hdf5" in r.stderr, "missing file: " + r.stderr)
    r = run([SAFERL, "dataset", "info"])
    check(r.returncode == 2, "usage error")


#---- density filter against DSRL's grid logic -----------------------------------------------------

def dsrl_grid(x, y, xbins, ybins, max_npb, min_npb):
    """DSRL's grid_filter (dsrl/offline_env.py) with the draw left out: bin → members in order,
    and what each bin keeps (its members, none, or a draw of max_npb)"""
    xmin, xmax, ymin, ymax = min(x), max(x), min(y), max(y)
    xstep, ystep = (xmax - xmin) / xbins, (ymax - ymin) / ybins
    bins = defaultdict(list)
    for i in range(len(x)):
        bins[((x[i] - xmin) // xstep, (y[i] - ymin) // ystep)].append(i)
    fate = {}
    for b, v in bins.items():
        fate[b] = "draw" if len(v) > max_npb else ("drop" if len(v) <= min_npb else "keep")
    return bins, fate


def test_filter(tmp):
    rng = np.random.default_rng(3)
    n_ep = 400
    lens = rng.integers(1, 5, size=n_ep)
    n = int(lens.sum())
    od, ad = 3, 2
    obs = rng.normal(size=(n, od))
    ep_id = np.repeat(np.arange(n_ep), lens)
    obs[:, 0] = ep_id  # the episode each row came from
    # costs and rewards on exact binary grids, so many returns sit on bin edges
    costs = rng.choice([0, 0, 0, 1, 2, 5], size=n).astype(np.float64)
    rewards = rng.integers(-4, 12, size=n) * 0.25
    ends = np.cumsum(lens) - 1
    d = {"observations": obs, "next_observations": obs + 1, "actions": rng.normal(size=(n, ad)),
         "rewards": rewards, "costs": costs, "terminals": np.zeros(n, bool),
         "timeouts": np.zeros(n, bool)}
    d["timeouts"][ends] = True
    src = os.path.join(tmp, "filter_in.hdf5")
    write_h5(src, d)
    starts = np.concatenate([[0], ends + 1])
    C = [seq_sum(costs[starts[e]:starts[e + 1]]) for e in range(n_ep)]
    R = [seq_sum(rewards[starts[e]:starts[e + 1]]) for e in range(n_ep)]
    edge = sum(1 for c in C if ((c - min(C)) / ((max(C) - min(C)) / 10)) % 1 == 0)
    check(edge > 20, "many episode costs on bin edges (%d)" % edge)

    configs = [(10, 50, 5, 2), (5, 7, 3, 1), (10, 10, 2, 0), (4, 4, 50, 3), (8, 3, 10, 4)]
    for cb, rb, mx, mn in configs:
        bins, fate = dsrl_grid(C, R, cb, rb, mx, mn)
        picks = []
        for seed in (0, 1):
            out = os.path.join(tmp, "filter_%d_%d_%d_%d_%d.hdf5" % (cb, rb, mx, mn, seed))
            args = [SAFERL, "dataset", "filter", src, "--out", out, "--cbins", str(cb),
                    "--rbins", str(rb), "--max-npb", str(mx), "--min-npb", str(mn),
                    "--seed", str(seed), "--json"]
            r = run(args)
            check(r.returncode == 0, "filter %s: %s" % ((cb, rb, mx, mn), r.stderr))
            if r.returncode:
                break
            try:
                got = dsrl_get_dataset(out, (od,), (ad,))
            except AssertionError as e:
                check(False, "filter output fails DSRL's checks: %s" % e)
                break
            gs, _, _ = episodes(got["terminals"], got["timeouts"], got["rewards"], got["costs"])
            ids = [int(got["observations"][s, 0]) for s in gs[:-1]]
            check(ids == sorted(set(ids)), "episodes keep file order, no repeats")
            # every kept episode's rows are the source's rows
            same = all(np.array_equal(got["observations"][gs[i]:gs[i + 1]],
                                      d["observations"][starts[e]:starts[e + 1]].astype(np.float32))
                       and np.array_equal(got["actions"][gs[i]:gs[i + 1]],
                                          d["actions"][starts[e]:starts[e + 1]].astype(np.float32))
                       for i, e in enumerate(ids))
            check(same, "kept episodes copied whole")
            kept = set(ids)
            ok = True
            total = 0
            for b, members in bins.items():
                k = [m for m in members if m in kept]
                want = {"keep": len(members), "drop": 0, "draw": mx}[fate[b]]
                ok &= len(k) == want
                total += want
            check(ok, "per-bin counts follow DSRL's grid for %s" % ((cb, rb, mx, mn),))
            check(len(ids) == total, "kept %d, DSRL's grid keeps %d" % (len(ids), total))
            j = json.loads(r.stdout)
            check(j["episodes_out"] == len(ids) and j["transitions_out"] == len(got["rewards"]),
                  "filter --json counts")
            picks.append(ids)
        if len(picks) == 2 and any(f == "draw" and len(bins[b]) > mx + 1
                                   for b, f in fate.items()):
            check(picks[0] != picks[1], "another seed draws other episodes")
    # same seed, same file
    a = os.path.join(tmp, "filter_a.hdf5")
    b = os.path.join(tmp, "filter_b.hdf5")
    for p in (a, b):
        run([SAFERL, "dataset", "filter", src, "--out", p, "--seed", "4"])
    da, db = read_all(a), read_all(b)
    check(all(np.array_equal(da[k], db[k]) for k in KEYS), "the draw is seeded")
    # the cost cap alone keeps exactly the episodes at or under it, whole and in order
    cap = os.path.join(tmp, "filter_cap.hdf5")
    r = run([SAFERL, "dataset", "filter", src, "--out", cap, "--max-cost", "3", "--no-density",
             "--json"])
    check(r.returncode == 0, "filter --max-cost: " + r.stderr)
    if r.returncode == 0:
        got = dsrl_get_dataset(cap, (od,), (ad,))
        gs, _, gc = episodes(got["terminals"], got["timeouts"], got["rewards"], got["costs"])
        ids = [int(got["observations"][s, 0]) for s in gs[:-1]]
        check(ids == [e for e in range(n_ep) if C[e] <= 3], "the cap keeps cost <= 3, in order")
        check(max(gc) <= 3, "no kept episode above the cap")
        j = json.loads(r.stdout)
        check(j["max_cost"] == 3 and j["density"] is False and j["episodes_out"] == len(ids),
              "filter --max-cost --json")
    r = run([SAFERL, "dataset", "filter", src, "--out", cap, "--max-cost", "-1"])
    check(r.returncode == 2, "a negative cap is a usage error")
    r = run([SAFERL, "dataset", "filter", src, "--out", cap, "--no-density"])
    check(r.returncode == 2 and "keeps everything" in r.stderr, "--no-density alone is refused")


#---- collect end to end ---------------------------------------------------------------------------

def replay(path, env, seed, k, p):
    r = run([REPLAY, path, env, str(seed), str(k), str(p)])
    check(r.returncode == 0, "replay: " + r.stderr)
    return json.loads(r.stdout) if r.returncode == 0 else None


def check_collected(path, env_id, seed, k, per_policy, obs, act):
    try:
        d = dsrl_get_dataset(path, (obs,), (act,))
    except AssertionError as e:
        check(False, "collected file fails DSRL's get_dataset: %s" % e)
        return None
    rep = replay(path, env_id, seed, k, len(per_policy))
    if not rep:
        return d
    e = sum(per_policy)
    check(rep["episodes"] == e and rep["matched"] == e, "every episode is a reset of the schedule")
    check(rep["exact"], "every row is what the env gives (%d mismatches)" % rep["mismatches"])
    check(rep["contiguous"], "policies in order, each env's episodes in order")
    check(rep["per_policy"] == per_policy, "split %s, want %s" % (rep["per_policy"], per_policy))
    starts, rets, costs = episodes(d["terminals"], d["timeouts"], d["rewards"], d["costs"])
    check(rets == rep["returns"] and costs == rep["costs"], "returns and costs = the env's")
    check(np.all(np.abs(d["actions"]) <= 1.0), "actions within SimplePointGoal's bounds")
    return d


def test_collect(tmp):
    env_id = "SimplePointGoal"
    out = os.path.join(tmp, "random.hdf5")
    args = [SAFERL, "collect", "--policy", "random", "--env", env_id, "--episodes", "13",
            "--seed", "5", "--envs", "4", "--out", out, "--quiet"]
    r = run(args)
    check(r.returncode == 0, "collect random: " + r.stderr)
    d = check_collected(out, env_id, 5, 4, [13], 8, 2)
    if d is not None:
        check(int(np.sum(d["terminals"] | d["timeouts"])) == 13, "13 episode ends")
        i = run([SAFERL, "dataset", "info", out, "--json"])
        j = json.loads(i.stdout)
        check(j["episodes"] == 13 and j["transitions"] == len(d["rewards"]), "info on collected")
        r2 = run(args[:-3] + ["--out", out + ".2", "--quiet"])
        d2 = read_all(out + ".2")
        check(all(np.array_equal(d[k], d2[k]) for k in KEYS), "collect is reproducible")
        r3 = run([a if a != "5" else "6" for a in args[:-3]] + ["--out", out + ".3", "--quiet"])
        d3 = read_all(out + ".3") if r3.returncode == 0 else d
        check(not np.array_equal(d["actions"][:10], d3["actions"][:10]), "another seed differs")

    # trained policies: a tiny PPO-Lag run and a tiny SAC-Lag run, then random
    runs = os.path.join(tmp, "runs")
    ppo = run([SAFERL, "train", os.path.join(SRC, "configs", "ppo_lag", "SimplePointGoal.yaml"),
               "--quiet", "--out", runs, "--set", "train_cfgs.total_steps=2000",
               "--set", "algo_cfgs.steps_per_epoch=1000", "--set", "logger_cfgs.save_model_freq=1"])
    check(ppo.returncode == 0, "ppo train: " + ppo.stderr)
    sac = run([SAFERL, "train", os.path.join(SRC, "configs", "sac_lag", "SafetyPointGoal1.yaml"),
               "--quiet", "--out", runs, "--set", "env_id=SimplePointGoal",
               "--set", "train_cfgs.total_steps=600", "--set", "train_cfgs.eval_episodes=0",
               "--set", "algo_cfgs.steps_per_epoch=300",
               "--set", "algo_cfgs.start_learning_steps=200", "--set", "algo_cfgs.batch_size=32",
               "--set", "model_cfgs.actor.hidden_sizes=[16,16]",
               "--set", "model_cfgs.critic.hidden_sizes=[16,16]"])
    check(sac.returncode == 0, "sac train: " + sac.stderr)
    dirs = sorted(glob.glob(os.path.join(runs, "PPOLag-*"))) + \
        sorted(glob.glob(os.path.join(runs, "SACLag-*")))
    check(len(dirs) == 2, "two run directories")
    if len(dirs) != 2:
        return
    out = os.path.join(tmp, "mixed.hdf5")
    r = run([SAFERL, "collect", "--policy", ",".join(dirs + ["random"]), "--env", env_id,
             "--episodes", "8", "--noise", "0.3", "--envs", "2", "--seed", "9", "--out", out])
    check(r.returncode == 0, "collect from runs: " + r.stderr)
    check("policy 0" in r.stderr and "policy 2 (random)" in r.stderr, "progress per policy")
    check_collected(out, env_id, 9, 2, [3, 3, 2], 8, 2)
    # deterministic actions differ from sampled ones for the same seed
    r = run([SAFERL, "collect", "--policy", dirs[0], "--env", env_id, "--episodes", "2",
             "--deterministic", "--seed", "9", "--out", out + ".det", "--quiet"])
    check(r.returncode == 0, "collect --deterministic: " + r.stderr)
    check_collected(out + ".det", env_id, 9, 16, [2], 8, 2)
    # a policy whose dims do not fit the env is refused; so is an unknown env
    r = run([SAFERL, "collect", "--policy", dirs[0], "--env", "SafetyPointGoal1", "--episodes",
             "1", "--out", os.path.join(tmp, "x.hdf5")])
    check(r.returncode == 1 and "SimplePointGoal" in r.stderr and "obs 8" in r.stderr,
          "dims mismatch refused: " + r.stderr)
    check(not os.path.exists(os.path.join(tmp, "x.hdf5")), "nothing written")
    r = run([SAFERL, "collect", "--policy", "random," + os.path.join(tmp, "no_run"), "--env",
             env_id, "--episodes", "4", "--out", os.path.join(tmp, "x.hdf5")])
    check(r.returncode == 1 and "no_run" in r.stderr and "collect: policy 0" not in r.stderr,
          "a missing run directory is found before any rollout: " + r.stderr)
    r = run([SAFERL, "collect", "--policy", "random", "--env", "NoSuchEnv", "--episodes", "1",
             "--out", os.path.join(tmp, "x.hdf5")])
    check(r.returncode == 2 and "NoSuchEnv" in r.stderr, "unknown env refused")


def main():
    tmp = tempfile.mkdtemp(prefix="test_dataset_h5py_")
    try:
        test_variants(tmp)
        test_refused(tmp)
        test_filter(tmp)
        test_collect(tmp)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    print("%d passed, %d failed" % (passed, failed))
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
