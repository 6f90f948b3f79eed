"""The CARLA adapter (bridges/carla/carla_adapter.py) against a stand-in for the `carla` package.

CARLA cannot be installed here, so each adapter runs as a subprocess with PYTHONPATH pointing at
tests/bridges/fake_carla/, a small simulator with CARLA's client API (one two-lane road, a bicycle
model for the ego, sensors on tick). The test speaks the wire protocol from Python (REQ sockets,
bridges/carla/wire.py) and checks the adapter's answers against what it computes itself from the
stand-in's log (the ego's pose, speed and control at every tick, every spawn, destroy and settings
change) and from the road's known geometry: spaces and info, reset, observations (waypoints in the
ego frame, lateral offset and heading signs), the reward formula, steer smoothing, costs, collision
and goal termination, truncation, images and their frames, retries, malformed messages, sessions
(busy, close, idle expiry), CURVE allow-listing, and that SIGTERM/SIGINT leave the world
asynchronous with every actor destroyed. When the C remote env and tool_remote_rollout are built
(SRL_BIN_DIR), `srl_env_create("remote:tcp://...")` must step the adapter and see the same numbers
as this Python client. The script exits nonzero on any failure.
"""
import ctypes
import json
import math
import os
import select
import signal
import subprocess
import sys
import tempfile
import time
import traceback

import numpy as np
import zmq
import zmq.auth

HERE = os.path.dirname(os.path.abspath(__file__))
SOURCE = os.environ.get("SRL_SOURCE_DIR", os.path.dirname(os.path.dirname(HERE)))
ADAPTER = os.path.join(SOURCE, "bridges", "carla", "carla_adapter.py")
FAKE = os.path.join(SOURCE, "tests", "bridges", "fake_carla")
sys.path.insert(0, os.path.join(SOURCE, "bridges", "carla"))
import wire  # noqa: E402

FAILURES = []
LANE_Y = (1.75, 5.25)  # lane centres on the stand-in's first straight (y grows to the right)
DT = 1.0 / 15.0


def check(cond, what):
    if not cond:
        FAILURES.append(what)
        print("  FAIL:", what)
    return cond


def close(a, b, tol):
    return abs(a - b) <= tol


# ---- processes and clients -----------------------------------------------------------------------

def die_with_parent():
    """In the child: SIGTERM when the test process dies, so no adapter outlives a killed test."""
    ctypes.CDLL("libc.so.6", use_errno=True).prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG


def on_alarm(signum, frame):
    raise TimeoutError("test_carla_adapter took longer than its 120 s guard")


class Adapter:
    """One adapter subprocess over the stand-in, with its log and control files."""

    def __init__(self, tmp, name, args, env=None):
        self.dir = os.path.join(tmp, name)
        os.makedirs(self.dir)
        self.log_path = os.path.join(self.dir, "carla.jsonl")
        self.control = os.path.join(self.dir, "control.jsonl")
        self.stderr_path = os.path.join(self.dir, "stderr.txt")
        e = dict(os.environ, PYTHONPATH=FAKE, FAKE_CARLA_LOG=self.log_path,
                 FAKE_CARLA_CONTROL=self.control)
        e.update(env or {})
        self.stderr = open(self.stderr_path, "w")
        self.proc = subprocess.Popen([sys.executable, ADAPTER] + args, stdout=subprocess.PIPE,
                                     stderr=self.stderr, env=e, cwd=self.dir,
                                     preexec_fn=die_with_parent)
        self.endpoint = None
        self.log_pos = 0
        self.events = []

    def wait_ready(self, timeout=15.0):
        """The endpoint from the adapter's 'ready ENDPOINT ENV_ID' line."""
        r, _, _ = select.select([self.proc.stdout], [], [], timeout)
        line = self.proc.stdout.readline().decode() if r else ""
        if not line.startswith("ready "):
            raise RuntimeError(f"adapter did not start: {line!r}; stderr: {self.tail()}")
        self.endpoint, self.env_id = line.split()[1:3]
        return self.endpoint

    def tail(self):
        self.stderr.flush()
        with open(self.stderr_path) as f:
            return f.read()[-2000:]

    def read_log(self):
        """Every log event so far."""
        if os.path.exists(self.log_path):
            with open(self.log_path) as f:
                f.seek(self.log_pos)
                data = f.read()
            end = data.rfind("\n") + 1
            self.log_pos += len(data[:end].encode())
            self.events += [json.loads(x) for x in data[:end].splitlines() if x]
        return self.events

    def of(self, kind):
        return [e for e in self.read_log() if e["event"] == kind]

    def ticks(self):
        return self.of("tick")

    def last_ego(self):
        return self.ticks()[-1]["ego"]

    def hero_spawn(self):
        return [e for e in self.of("spawn") if e["role"] == "hero"][-1]

    def command(self, **cmd):
        """Leave one command for the stand-in's next tick (written atomically)."""
        tmp = self.control + ".tmp"
        with open(tmp, "w") as f:
            f.write(json.dumps(cmd) + "\n")
        os.replace(tmp, self.control)

    def signal(self, sig, timeout=10.0):
        self.proc.send_signal(sig)
        try:
            return self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            return None

    def stop(self):
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()
        self.proc.stdout.close()
        self.stderr.close()


class Client:
    """A REQ client that speaks the protocol; reopen() is the Lazy Pirate reconnect."""

    def __init__(self, ctx, endpoint, timeout_ms=5000, curve=None):
        self.ctx, self.endpoint, self.timeout_ms, self.curve = ctx, endpoint, timeout_ms, curve
        self.sock = None
        self.seq = 100
        self.session = 0
        self.reopen()

    def reopen(self):
        if self.sock is not None:
            self.sock.close(0)
        self.sock = self.ctx.socket(zmq.REQ)
        self.sock.setsockopt(zmq.LINGER, 0)
        self.sock.setsockopt(zmq.RCVTIMEO, self.timeout_ms)
        self.sock.setsockopt(zmq.SNDTIMEO, self.timeout_ms)
        if self.curve:
            server_public, public, secret = self.curve
            self.sock.curve_serverkey = server_public
            self.sock.curve_publickey = public
            self.sock.curve_secretkey = secret
        self.sock.connect(self.endpoint)

    def close(self):
        self.sock.close(0)

    def raw(self, parts):
        """Send parts as they are; the reply's (header, frames) unchecked beyond parsing."""
        self.sock.send_multipart(parts)
        return wire.parse(self.sock.recv_multipart())

    def request(self, type, frames=(), flags=0, seq=None, session=None):
        if seq is None:
            self.seq += 1
            seq = self.seq
        sess = self.session if session is None else session
        return self.raw(wire.build(type, seq, sess, frames, flags, t_ns=wire.now_ns()))

    def hello(self, name="test"):
        h, f = self.request(wire.HELLO, [name.encode()], session=0)
        if h.type == wire.HELLO:
            self.session = h.session
        return h, f

    def reset(self, seed, flags=0):
        return self.request(wire.RESET, [wire.encode_u64(seed)], flags)

    def step(self, action, flags=0, seq=None):
        return self.request(wire.STEP, [wire.pack_f32(action)], flags, seq=seq)


def result(h, f):
    """(obs, reward, cost, raw_cost, x_velocity, flags) of a RESULT; raises on anything else."""
    if h.type != wire.RESULT:
        msg = wire.decode_error(f) if h.type == wire.ERROR else h
        raise AssertionError(f"expected RESULT, got {msg}")
    obs = np.array(wire.unpack_f32(f[0]))
    r, c, rc, xv = wire.unpack_f32(f[1])
    return obs, r, c, rc, xv, h.flags


def is_error(h, f, code, text=None):
    if h.type != wire.ERROR:
        return False
    got, msg = wire.decode_error(f)
    return got == code and (text is None or text in msg)


def reward_formula(obs, history, target=25.0):
    """VLM-RL's hierarchical reward from an observation and the |lateral offset| history."""
    r_speed = 1.0 - abs(obs[2] - target) / target
    f_center = max(1.0 - abs(obs[3]) / 3.0, 0.0)
    f_angle = max(1.0 - abs(obs[4]) / (math.pi / 2.0), 0.0)
    f_std = max(1.0 - float(np.std(history[-30:])) / 0.4, 0.0)
    return r_speed * f_center * f_angle * f_std


def reset_on_straight(ad, cl, flags=0, seeds=range(1, 400)):
    """Reset with successive seeds until the ego starts on the stand-in's first straight with
    at least 90 m ahead; returns (seed, hero spawn event, RESULT)."""
    for seed in seeds:
        res = result(*cl.reset(seed, flags))
        sp = ad.hero_spawn()
        in_lane = min(abs(sp["y"] - y) for y in LANE_Y) < 1e-6
        if sp["x"] < 60.0 and abs(sp["yaw"]) < 1e-9 and in_lane:
            return seed, sp, res
    raise AssertionError("no seed put the ego on the first straight")


def expected_waypoints(sp, ego):
    """The 15 route points ahead in the ego frame, from the stand-in's geometry: on the first
    straight the route runs along y = spawn y, and the ego's progress is its x; points every 2 m
    from there; x forward, y left of the ego."""
    yaw = math.radians(ego["yaw"])
    fwd = (math.cos(yaw), math.sin(yaw))
    right = (-math.sin(yaw), math.cos(yaw))  # CARLA's right vector
    out = []
    for j in range(15):
        dx, dy = 2.0 * (j + 1), sp["y"] - ego["y"]
        out += [dx * fwd[0] + dy * fwd[1], -(dx * right[0] + dy * right[1])]
    return np.array(out)


# ---- checks on the main adapter ------------------------------------------------------------------

def test_hello(ad, cl):
    h, f = cl.hello("pytest")
    check(h.type == wire.HELLO and h.n_frames == 3, f"HELLO reply {h}")
    info = wire.decode_info(f[0])
    check(info["obs_dim"] == 37 and info["act_dim"] == 2, f"dims {info}")
    check(info["max_episode_steps"] == 60, f"max_episode_steps {info['max_episode_steps']}")
    check((info["image_h"], info["image_w"], info["image_c"]) == (48, 64, 3), f"image {info}")
    check(close(info["dt"], DT, 1e-7), f"dt {info['dt']}")
    check(info["env_id"] == "carla/Town02", f"env_id {info['env_id']}")
    check(h.session != 0, "session id is nonzero")
    lo_hi = np.array(wire.unpack_f32(f[1]))
    check(len(lo_hi) == 74 and np.all(lo_hi[:37] <= lo_hi[37:]), "obs bounds")
    check(list(lo_hi[[0, 1, 37, 38]]) == [-1, -1, 1, 1] and lo_hi[37 + 35] == 50.0,
          f"obs bounds values {lo_hi[[0, 1, 37, 38, 72]]}")
    check(list(wire.unpack_f32(f[2])) == [-1, -1, 1, 1], "action bounds")
    # the world went synchronous with the fixed delta, the traffic manager too
    st = ad.of("apply_settings")[-1]
    check(st["synchronous_mode"] and close(st["fixed_delta_seconds"], DT, 1e-12), f"settings {st}")
    check(ad.of("tm_sync")[-1]["value"] is True, "traffic manager synchronous")
    # a retried HELLO (same seq and name, reply lost) gets the same session; another is refused
    h2, _ = cl.request(wire.HELLO, [b"pytest"], seq=cl.seq, session=0)
    check(h2.type == wire.HELLO and h2.session == h.session, "retried HELLO returns the session")
    other = Client(cl.ctx, ad.endpoint)
    h3, f3 = other.hello("intruder")
    check(is_error(h3, f3, wire.ESTATE, "busy"), "second HELLO refused while a session is open")
    other.close()


def test_reset(ad, cl):
    n_ticks = len(ad.ticks())
    seed, sp, (obs, r, c, rc, xv, flags) = reset_on_straight(ad, cl)
    check(len(obs) == 37, f"obs size {len(obs)}")
    check(list(obs[:3]) == [0.0, 0.0, 0.0], f"steer, throttle, speed after reset {obs[:3]}")
    check(abs(obs[3]) < 1e-4 and abs(obs[4]) < 1e-6, f"offset/heading at lane centre {obs[3:5]}")
    check(obs[35] == 50.0 and obs[36] == 0.0, f"no vehicle ahead {obs[35:]}")
    check((r, c, rc, xv, flags) == (0.0, 0.0, 0.0, 0.0, 0), "reset scalars and flags")
    wp = obs[5:35].reshape(15, 2)
    check(np.allclose(wp[:, 0], 2.0 * np.arange(1, 16), atol=1e-3), f"waypoint x {wp[:, 0]}")
    check(np.allclose(wp[:, 1], 0.0, atol=1e-3), f"waypoint y {wp[:, 1]}")
    check(close(sp["z"], 0.5, 1e-9), f"ego lifted 0.5 m above the spawn point (z {sp['z']})")
    check(len(ad.ticks()) > n_ticks, "reset ticked the world (settle)")
    sensors = [e["type_id"] for e in ad.of("spawn") if e["parent"] == sp["id"]]
    check(sorted(sensors) == ["sensor.camera.rgb", "sensor.other.collision",
                              "sensor.other.lane_invasion"], f"sensors {sensors}")
    return seed, sp


def test_drive(ad, cl, sp):
    """Full throttle: speed, x_velocity, waypoints and reward against independent numbers."""
    history, speeds = [], []
    for i in range(20):
        obs, r, c, rc, xv, flags = result(*cl.step([0.0, 1.0]))
        ego = ad.last_ego()
        history.append(abs(obs[3]))
        speeds.append(obs[2])
        check(obs[0] == 0.0 and obs[1] == 1.0, f"step {i}: applied steer/throttle {obs[:2]}")
        check(close(obs[2], ego["speed"] * 3.6, 1e-3), f"step {i}: speed {obs[2]} vs "
                                                       f"{ego['speed'] * 3.6}")
        check(close(xv, obs[2] / 3.6, 1e-4), f"step {i}: x_velocity {xv} vs speed {obs[2]}")
        check(ego["throttle"] == 1.0 and ego["brake"] == 0.0, f"step {i}: control {ego}")
        check(np.allclose(obs[5:35], expected_waypoints(sp, ego), atol=2e-3),
              f"step {i}: waypoints {obs[5:9]} vs {expected_waypoints(sp, ego)[:4]}")
        check(close(r, reward_formula(obs, history), 1e-4), f"step {i}: reward {r} vs "
                                                            f"{reward_formula(obs, history)}")
        check(c == 0.0 and rc == 0.0 and flags == 0, f"step {i}: cost {c} flags {flags}")
    check(all(b > a for a, b in zip(speeds, speeds[1:])), f"speed rises {speeds}")
    # steer right three times: smoothing 0.75 previous + 0.25 new; CARLA's positive steer turns
    # right, so the car points right of the route (heading error < 0) and drifts right
    want = 0.0
    for i in range(3):
        obs, *_ = result(*cl.step([1.0, 0.5]))
        want = 0.75 * want + 0.25
        ego = ad.last_ego()
        check(close(obs[0], want, 1e-6) and close(ego["steer"], want, 1e-6),
              f"smoothed steer {obs[0]} / sent {ego['steer']} vs {want}")
        check(obs[1] == 0.5, f"throttle {obs[1]}")
        check(np.allclose(obs[5:35], expected_waypoints(sp, ego), atol=2e-3),
              f"waypoints while turning {obs[5:9]} vs {expected_waypoints(sp, ego)[:4]}")
    check(obs[4] < 0.0 and close(obs[4], -math.radians(ego["yaw"]), 1e-5),
          f"heading error {obs[4]} vs -yaw {-math.radians(ego['yaw'])}")
    check(close(obs[3], sp["y"] - ego["y"], 1e-4), f"lateral offset {obs[3]} vs "
                                                   f"{sp['y'] - ego['y']}")
    # brake: negative throttle
    obs, *_ = result(*cl.step([0.0, -1.0]))
    ego = ad.last_ego()
    check(obs[1] == -1.0 and ego["brake"] == 1.0 and ego["throttle"] == 0.0, f"brake {ego}")


def test_image(ad, cl):
    obs, *_ = result(*cl.step([0.0, 0.0]))
    h, f = cl.step([0.0, 0.0], flags=wire.WANT_IMAGE)
    frame = ad.ticks()[-1]["frame"]
    check(h.type == wire.RESULT and h.n_frames == 3 and len(f[2]) == 48 * 64 * 3,
          f"image reply {h}")
    img = np.frombuffer(f[2], dtype=np.uint8).reshape(48, 64, 3)
    rows, cols = np.meshgrid(np.arange(48), np.arange(64), indexing="ij")
    check(np.array_equal(img[:, :, 0], cols % 256), "R channel holds the column (BGRA -> RGB)")
    check(np.array_equal(img[:, :, 1], rows % 256), "G channel holds the row (row 0 at the top)")
    check(np.all(img[:, :, 2] == frame % 256), f"B channel is the tick's frame {frame % 256}, "
                                               f"got {img[0, 0, 2]}")
    h, f = cl.step([0.0, 0.0], flags=wire.WANT_IMAGE)
    img2 = np.frombuffer(f[2], dtype=np.uint8).reshape(48, 64, 3)
    check(img2[0, 0, 2] == (frame + 1) % 256, "the next step's image is of the next frame")
    h, f = cl.step([0.0, 0.0])
    check(h.n_frames == 2, "no image without WANT_IMAGE")


def test_retry(ad, cl):
    h1, f1 = cl.step([0.0, 0.5])
    n = len(ad.ticks())
    h2, f2 = cl.step([0.0, 0.5], seq=cl.seq)
    check(len(ad.ticks()) == n, "a retried seq does not tick")
    check(wire.encode_header(h1) == wire.encode_header(h2) and f1 == f2,
          "a retried seq gets the stored reply")
    # Lazy Pirate: a new socket continues the session and may resend the same seq
    cl.reopen()
    h3, f3 = cl.step([0.0, 0.5], seq=cl.seq)
    check(len(ad.ticks()) == n and f3 == f1, "retry on a new socket answered from the cache")
    h4, f4 = cl.step([0.0, 0.5])
    check(h4.type == wire.RESULT and len(ad.ticks()) == n + 1, "the next seq steps")


def test_malformed(ad, cl):
    good = wire.build(wire.HEARTBEAT, 7, cl.session)

    def hdr(**kw):
        fields = dict(type=wire.STEP, seq=4242, session=cl.session, sizes=[8])
        fields.update(kw)
        return wire.encode_header(wire.Header(**fields))

    step = wire.pack_f32([0.0, 0.0])
    cases = {
        "short header": [hdr()[:55], step],
        "long header": [hdr() + b"\0", step],
        "empty message": [b""],
        "bad magic": [hdr(magic=0x12345678), step],
        "version 2": [hdr(version=2), step],
        "unknown type": [hdr(type=99), step],
        "n_frames 5": [hdr(n_frames=5), step],
        "missing frame": [hdr(sizes=[8, 8]), step],
        "extra frame": [hdr(), step, step],
        "size mismatch": [hdr(sizes=[12]), step],
        "unused size": [hdr(n_frames=1, sizes=[8, 0, 0, 4]), step],
        "reserved": [hdr(reserved=1), step],
        "short action": [hdr(sizes=[12]), wire.pack_f32([0.0, 0.0, 0.0])],
        "short seed": [hdr(type=wire.RESET, sizes=[4]), b"\0" * 4],
        "long name": [hdr(type=wire.HELLO, session=0, sizes=[100]), b"x" * 100],
        "reply type": [hdr(type=wire.RESULT, sizes=[]),],
        "heartbeat frame": [hdr(type=wire.HEARTBEAT, sizes=[8]), step],
    }
    seq = 5000
    for name, parts in cases.items():
        seq += 1
        if len(parts[0]) == 56 and name not in ("bad magic", "version 2"):
            # distinct seqs, so the session's reply cache does not answer these
            raw = bytearray(parts[0])
            raw[8:12] = seq.to_bytes(4, "little")
            parts = [bytes(raw)] + parts[1:]
        h, f = cl.raw(parts)
        got = wire.decode_error(f) if h.type == wire.ERROR else ""
        check(is_error(h, f, wire.EFORMAT), f"{name}: ERROR EFORMAT, got {h} {got}")
        hb, _ = cl.raw(good)
        check(hb.type == wire.HEARTBEAT and hb.seq == 7, f"{name}: still serving")
    # an ERROR to a header that has 56 bytes echoes its seq and session
    h, f = cl.raw([hdr(magic=1, seq=77), step])
    check(h.seq == 77 and h.session == cl.session, f"error echoes seq/session {h}")
    h, f = cl.request(wire.ACT, [wire.pack_f32([0.0] * 37)])
    check(is_error(h, f, wire.EUNSUPPORTED), "ACT is refused by an env server")
    h, f = cl.step([float("nan"), 0.0])
    check(is_error(h, f, wire.ENONFINITE), "non-finite action refused")
    h, f = cl.request(wire.STEP, [step], session=cl.session ^ 0xFFFF)
    check(is_error(h, f, wire.ENOTFOUND, "unknown session"), "unknown session")
    h, f = cl.request(wire.HEARTBEAT)
    check(h.type == wire.HEARTBEAT and h.seq == cl.seq and h.session == cl.session, "HEARTBEAT")
    h, f = cl.request(wire.STATS)
    st = json.loads(f[0])
    check(h.type == wire.STATS and st["errors"] >= len(cases) + 3 and st["steps"] > 20,
          f"STATS {st}")
    obs, *_ = result(*cl.step([0.0, 0.0]))
    check(len(obs) == 37, "steps after malformed messages")


def test_collision_injected(ad, cl):
    reset_on_straight(ad, cl)
    result(*cl.step([0.0, 1.0]))
    ad.command(cmd="collision")
    obs, r, c, rc, xv, flags = result(*cl.step([0.0, 1.0]))
    check(flags & wire.TERMINATED and not flags & wire.TRUNCATED, f"collision flags {flags}")
    check(r == -10.0 and c == 1.0 and rc == 1.0, f"collision reward {r} cost {c} raw {rc}")
    h, f = cl.step([0.0, 1.0])
    check(is_error(h, f, wire.ESTATE, "collision"), "step after a collision refused")
    reset_on_straight(ad, cl, seeds=range(500, 900))
    ad.command(cmd="lane_invasion")
    obs, r, c, rc, xv, flags = result(*cl.step([0.0, 0.0]))
    check(flags == 0 and c == 0.0, "a lane invasion alone neither ends the episode nor costs")
    h, f = cl.request(wire.STATS)
    check(json.loads(f[0])["lane_invasions"] >= 1, "lane invasion counted")


def test_vehicle_ahead(ad, cl):
    """A vehicle 10 m ahead at 3 m/s: gap and relative speed, then a rear-end collision."""
    _, sp, _ = reset_on_straight(ad, cl)
    # towards the other lane: a car in that lane is not ahead, one 1 m off the centre is
    toward = 3.5 if sp["y"] < 3.5 else -3.5
    ad.command(cmd="vehicle_ahead", distance=6.0, speed=2.0, offset=toward)
    obs, *_ = result(*cl.step([0.0, 0.0]))
    check(obs[35] == 50.0 and obs[36] == 0.0, f"a car in the next lane is not ahead: {obs[35:]}")
    ad.command(cmd="vehicle_ahead", distance=10.0, speed=3.0, offset=toward / 3.5)
    obs, *_ = result(*cl.step([0.0, 0.0]))
    other = [e for e in ad.of("spawn") if e["role"] == "injected"][-1]
    ego = ad.last_ego()
    check(close(obs[35], other["x"] - ego["x"], 1e-3) and close(obs[35], 10.0, 1e-3),
          f"gap {obs[35]} vs {other['x'] - ego['x']}")
    check(close(obs[36], 3.0, 1e-4), f"relative speed {obs[36]}")
    gaps = []
    for i in range(60):
        obs, r, c, rc, xv, flags = result(*cl.step([0.0, 1.0]))
        if flags:
            break
        gaps.append(obs[35])
        check(close(obs[36], 3.0 - obs[2] / 3.6, 1e-3), f"relative speed {obs[36]} vs "
                                                        f"{3.0 - obs[2] / 3.6}")
    check(flags == wire.TERMINATED and r == -10.0 and c == 1.0, f"rear-end: flags {flags} "
                                                                 f"r {r} c {c}")
    check(len(gaps) > 5 and gaps[-1] < gaps[0] and gaps[-1] < 6.0, f"gap closes {gaps[-3:]}")
    # a parked car 40 m ahead in the other lane counts once the ego's centre is in that lane
    _, sp, _ = reset_on_straight(ad, cl)
    toward = 3.5 if sp["y"] < 3.5 else -3.5
    ad.command(cmd="vehicle_ahead", distance=40.0, speed=0.0, offset=toward)
    result(*cl.step([0.0, 0.0]))
    parked = [e for e in ad.of("spawn") if e["role"] == "injected"][-1]
    seen = []
    for i in range(40):
        obs, r, c, rc, xv, flags = result(*cl.step([0.3 if toward > 0 else -0.3, 1.0]))
        ego = ad.last_ego()
        if abs(obs[3]) > 1.85:
            seen.append(obs[35])
            gap_ok = close(obs[35], parked["x"] - ego["x"], 1e-3)
            check(gap_ok and close(obs[36], -obs[2] / 3.6, 1e-3),
                  f"step {i}: car ahead in the new lane {obs[35:]} at {parked['x'] - ego['x']}")
        elif abs(obs[3]) < 1.65:
            check(obs[35] == 50.0, f"step {i}: car in the other lane counted {obs[35]}")
        if abs(obs[3]) > 2.5 or flags:
            break
    check(len(seen) > 0, "the ego reached the other lane")


def test_offroad(ad, cl):
    """Steer left: the offset grows to the left; cost 1 exactly when the ego leaves the road."""
    _, sp, _ = reset_on_straight(ad, cl)
    costs, history = [], []
    for i in range(40):
        obs, r, c, rc, xv, flags = result(*cl.step([-0.3, 1.0]))
        ego = ad.last_ego()
        off = not 0.0 <= ego["y"] <= 7.0
        costs.append(c)
        history.append(abs(obs[3]))
        check(close(r, reward_formula(obs, history), 1e-4), f"step {i}: reward {r} vs "
                                                            f"{reward_formula(obs, history)}")
        check(np.allclose(obs[5:35], expected_waypoints(sp, ego), atol=2e-3),
              f"step {i}: waypoints {obs[5:9]} vs {expected_waypoints(sp, ego)[:4]}")
        check(c == (1.0 if off else 0.0) and rc == c, f"step {i}: cost {c} at y {ego['y']}")
        check(close(obs[3], sp["y"] - ego["y"], 1e-3), f"step {i}: lateral {obs[3]} vs "
                                                       f"{sp['y'] - ego['y']}")
        if flags:
            break
    check(0.0 in costs and 1.0 in costs, f"left the road at some step {costs}")
    check(obs[3] > 0.0, "offset is positive to the left")


def test_truncation(ad, cl):
    reset_on_straight(ad, cl)
    for i in range(60):
        obs, r, c, rc, xv, flags = result(*cl.step([0.0, 0.0]))
        if i < 59 and not check(flags == 0, f"flags {flags} at step {i + 1}"):
            break
    check(flags == wire.TRUNCATED, f"step 60 is truncated (flags {flags})")
    h, f = cl.step([0.0, 0.0])
    check(is_error(h, f, wire.ESTATE, "time limit"), "step after truncation refused")


def test_close(ad, cl):
    spawned = {e["id"] for e in ad.of("spawn")}
    h, f = cl.request(wire.CLOSE)
    check(h.type == wire.CLOSE and h.seq == cl.seq, f"CLOSE ack {h}")
    h2, _ = cl.request(wire.CLOSE, seq=cl.seq)
    check(h2.type == wire.CLOSE, "a retried CLOSE is acked again")
    destroyed = {e["id"] for e in ad.of("destroy")}
    check(spawned <= destroyed, f"actors left after CLOSE: {spawned - destroyed}")
    check(ad.of("apply_settings")[-1]["synchronous_mode"] is False, "asynchronous after CLOSE")
    check(ad.of("tm_sync")[-1]["value"] is False, "traffic manager asynchronous after CLOSE")
    h, f = cl.step([0.0, 0.0])
    check(is_error(h, f, wire.ENOTFOUND, "unknown session"), "closed session is unknown")
    old = cl.session
    h, f = cl.hello("again")
    check(h.type == wire.HELLO and h.session != old, "HELLO after CLOSE opens a new session")


# ---- other adapters ------------------------------------------------------------------------------

def test_goal_sensors_idle_sigint(ctx, tmp):
    """Short route: goal; a lost image; a stale image; idle expiry; SIGINT cleanup."""
    ad = Adapter(tmp, "short", ["--bind", f"ipc://{tmp}/short.sock", "--image", "32x32",
                                "--settle-ticks", "2", "--route-length", "12",
                                "--sensor-timeout", "0.3", "--idle-timeout", "1.0", "--quiet"])
    try:
        cl = Client(ctx, ad.wait_ready())
        cl.hello()
        _, sp, _ = reset_on_straight(ad, cl)
        for i in range(60):
            obs, r, c, rc, xv, flags = result(*cl.step([0.0, 1.0]))
            if flags:
                break
        ego = ad.last_ego()
        check(flags == wire.TERMINATED | wire.GOAL_MET, f"goal flags {flags}")
        check(ego["x"] - sp["x"] >= 11.0 - 1e-6, f"goal after {ego['x'] - sp['x']} m of 12")
        check(r > -10.0 and c == 0.0, "goal step keeps the shaped reward")
        # the camera loses a frame: an error naming it, the episode is over, reset recovers
        reset_on_straight(ad, cl)
        ad.command(cmd="drop_image")
        h, f = cl.step([0.0, 0.0])
        check(is_error(h, f, wire.ETIMEOUT, "did not arrive"), "lost image reported")
        h, f = cl.step([0.0, 0.0])
        check(is_error(h, f, wire.ESTATE), "no stepping after a failed step")
        # CARLA's own failure: an ERROR carrying its message, then a reset works again
        reset_on_straight(ad, cl)
        ad.command(cmd="tick_error")
        h, f = cl.step([0.0, 0.0])
        check(is_error(h, f, wire.EIO, "time-out"), "a failing tick is reported")
        h, f = cl.step([0.0, 0.0])
        check(is_error(h, f, wire.ESTATE), "no stepping after a failed tick")
        reset_on_straight(ad, cl)
        ad.command(cmd="stale_image")
        h, f = cl.step([0.0, 0.0], flags=wire.WANT_IMAGE)
        frame = ad.ticks()[-1]["frame"]
        check(h.type == wire.RESULT and f[2][2] == frame % 256,
              "a stale image is skipped, the tick's own is sent")
        # idle expiry frees the world
        time.sleep(1.6)
        h, f = cl.step([0.0, 0.0])
        check(is_error(h, f, wire.ENOTFOUND, "unknown session"), "idle session expired")
        check(ad.of("apply_settings")[-1]["synchronous_mode"] is False, "async after expiry")
        cl.hello()
        reset_on_straight(ad, cl)
        cl.close()
        rc = ad.signal(signal.SIGINT)
        check(rc == 0, f"SIGINT exit status {rc}")
        spawned = {e["id"] for e in ad.of("spawn")}
        destroyed = {e["id"] for e in ad.of("destroy")}
        check(spawned <= destroyed, f"actors left after SIGINT: {spawned - destroyed}")
        check(ad.of("apply_settings")[-1]["synchronous_mode"] is False, "async after SIGINT")
    finally:
        ad.stop()


def test_traffic_spawn_sigterm(ctx, tmp):
    """Blocked spawn points are retried; traffic on autopilot; SIGTERM mid-episode cleans up."""
    ad = Adapter(tmp, "traffic", ["--bind", "tcp://127.0.0.1:*", "--traffic", "3",
                                  "--settle-ticks", "1", "--image", "none", "--quiet"],
                 env={"FAKE_CARLA_BLOCK_SPAWNS": "3"})
    try:
        cl = Client(ctx, ad.wait_ready())
        h, f = cl.hello()
        info = wire.decode_info(f[0])
        check(info["image_c"] == 0 and info["image_h"] == 0, f"no camera: {info}")
        obs, *_ = result(*cl.reset(11))
        h, f = cl.reset(12, flags=wire.WANT_IMAGE)
        check(h.type == wire.RESULT and h.n_frames == 2, "no image frame without a camera")
        fails = [e for e in ad.of("spawn_fail") if e["role"] == "hero"]
        check([e["reason"] for e in fails] == ["blocked"] * 3, f"hero spawn fails {fails}")
        autos = ad.of("autopilot")
        check(len(autos) == 6 and all(e["enabled"] and e["tm_port"] == 8000 for e in autos),
              f"traffic on autopilot with the TM port: {autos}")
        cars = [e for e in ad.of("spawn") if e["role"] == "autopilot"]
        check(len(cars) == 6 and all(close(e["z"], 0.5, 1e-9) for e in cars), "traffic lifted")
        for _ in range(5):
            result(*cl.step([0.0, 0.5]))
        cl.close()
        rc = ad.signal(signal.SIGTERM)
        check(rc == 0, f"SIGTERM exit status {rc}")
        spawned = {e["id"] for e in ad.of("spawn")}
        destroyed = {e["id"] for e in ad.of("destroy")}
        check(spawned and spawned <= destroyed, f"actors left after SIGTERM: "
                                                f"{spawned - destroyed}")
        check(ad.of("apply_settings")[-1]["synchronous_mode"] is False, "async after SIGTERM")
        check(ad.of("tm_sync")[-1]["value"] is False, "TM async after SIGTERM")
    finally:
        ad.stop()


def write_cert(path, public, secret=None):
    with open(path, "w") as f:
        f.write("#   ****  Generated by saferl keygen  ****\n#   ZeroMQ CURVE Certificate\n")
        f.write(f'metadata\ncurve\n    public-key = "{public.decode()}"\n')
        if secret is not None:
            f.write(f'    secret-key = "{secret.decode()}"\n')


def test_curve(ctx, tmp):
    """The server certificate comes from `saferl keygen` when the CLI is built (else it is written
    here in the same layout); clients use keys made by pyzmq."""
    good_pub, good_sec = zmq.curve_keypair()
    while b"#" not in good_pub:  # '#' is a Z85 digit too: the allow-list must not cut it
        good_pub, good_sec = zmq.curve_keypair()
    bad_pub, bad_sec = zmq.curve_keypair()
    cert = os.path.join(tmp, "server.key_secret")
    cli = os.path.join(os.environ.get("SRL_BIN_DIR", ""), "saferl")
    if os.path.exists(cli):
        out = subprocess.run([cli, "keygen", os.path.join(tmp, "server")], capture_output=True,
                             text=True, timeout=30)
        check(out.returncode == 0, f"saferl keygen: {out.stderr}")
        server_pub = zmq.auth.load_certificate(os.path.join(tmp, "server.key"))[0]
    else:
        server_pub, server_sec = zmq.curve_keypair()
        write_cert(cert, server_pub, server_sec)
    allow = os.path.join(tmp, "allow.txt")
    with open(allow, "w") as f:
        f.write(f"# clients\n{good_pub.decode()}  # the trainer\n\n")
    ad = Adapter(tmp, "curve", ["--bind", "tcp://127.0.0.1:*", "--curve-secret", cert,
                                "--allow", allow, "--image", "none", "--settle-ticks", "1",
                                "--quiet"])
    try:
        ep = ad.wait_ready()
        cl = Client(ctx, ep, curve=(server_pub, good_pub, good_sec))
        h, f = cl.hello()
        check(h.type == wire.HELLO, "allowed CURVE client served")
        check(result(*cl.reset(3))[0].shape == (37,), "allowed CURVE client steps")
        cl.close()
        for name, curve in (("unlisted key", (server_pub, bad_pub, bad_sec)), ("plain", None)):
            other = Client(ctx, ep, timeout_ms=800, curve=curve)
            try:
                other.hello()
                check(False, f"{name} client was answered")
            except zmq.Again:
                pass
            other.close()
    finally:
        check(ad.signal(signal.SIGTERM) == 0, "CURVE adapter exits on SIGTERM")
        ad.stop()


def test_startup_errors(tmp):
    ad = Adapter(tmp, "down", ["--bind", "tcp://127.0.0.1:*"], env={"FAKE_CARLA_UNREACHABLE": "1"})
    try:
        rc = ad.proc.wait(15)
        check(rc == 1 and "cannot reach CARLA" in ad.tail(), f"unreachable server: {rc}")
    finally:
        ad.stop()
    ad = Adapter(tmp, "badargs", ["--image", "64by48"])
    try:
        rc = ad.proc.wait(15)
        check(rc == 2 and "WxH" in ad.tail(), f"bad --image refused: {rc}")
    finally:
        ad.stop()


# ---- the C remote env against the adapter ------------------------------------------------------

def test_c_remote_env(ctx, tmp):
    """srl_env_create("remote:tcp://...") steps the adapter (tool_remote_rollout prints JSON);
    the same seed and actions from this client give the same observations and returns."""
    tool = os.path.join(os.environ.get("SRL_BIN_DIR", ""), "tool_remote_rollout")
    if not os.path.exists(tool):
        print("  skipped: tool_remote_rollout not built (no bridges/remote_env.c)")
        return
    ad = Adapter(tmp, "remote", ["--bind", "tcp://127.0.0.1:*", "--image", "none",
                                 "--settle-ticks", "2", "--max-steps", "50",
                                 "--idle-timeout", "2", "--quiet"])
    try:
        ep = ad.wait_ready()
        out = subprocess.run([tool, "remote:" + ep, "7", "40"], capture_output=True,
                             timeout=60, text=True)
        if not check(out.returncode == 0, f"tool_remote_rollout failed: {out.stderr[-500:]}"):
            return
        got = json.loads(out.stdout)
        check(got["obs_dim"] == 37 and got["act_dim"] == 2 and got["max_episode_steps"] == 50,
              f"spaces over the C client {got}")
        # replay with this client: same seed, same actions -> same numbers
        cl = Client(ctx, ep)
        deadline = time.monotonic() + 5.0  # the C client's session closes or idles out
        while cl.hello("replay")[0].type != wire.HELLO and time.monotonic() < deadline:
            time.sleep(0.2)
        obs0 = result(*cl.reset(7))[0]
        check(np.allclose(obs0, got["obs0"], atol=0), "C client's reset obs equals Python's")
        ret, cost, n = 0.0, 0.0, 0
        for a in got["actions"]:
            obs, r, c, rc, xv, flags = result(*cl.step(a))
            ret += r
            cost += c
            n += 1
            if flags:
                break
        check(n == got["steps"], f"steps {n} vs {got['steps']}")
        check(close(ret, got["return"], 1e-4) and close(cost, got["cost"], 1e-6),
              f"return {ret} / {got['return']}, cost {cost} / {got['cost']}")
        check(np.allclose(obs, got["obs_last"], atol=0), "last observation equal")
        cl.request(wire.CLOSE)
        cl.close()
    finally:
        ad.stop()


def main():
    signal.signal(signal.SIGALRM, on_alarm)
    signal.alarm(120)  # a hung adapter must fail the test, not wedge it
    ctx = zmq.Context()
    failed_before = 0
    with tempfile.TemporaryDirectory(prefix="srl_carla_") as tmp:
        ad = Adapter(tmp, "main", ["--bind", f"ipc://{tmp}/main.sock", "--image", "64x48",
                                   "--max-steps", "60", "--settle-ticks", "2", "--seed", "3",
                                   "--quiet"])
        try:
            cl = Client(ctx, ad.wait_ready())
            steps = [
                ("hello", lambda: test_hello(ad, cl)),
                ("reset_and_drive", lambda: test_drive(ad, cl, test_reset(ad, cl)[1])),
                ("image", lambda: test_image(ad, cl)),
                ("retry", lambda: test_retry(ad, cl)),
                ("malformed", lambda: test_malformed(ad, cl)),
                ("collision_injected", lambda: test_collision_injected(ad, cl)),
                ("vehicle_ahead", lambda: test_vehicle_ahead(ad, cl)),
                ("offroad", lambda: test_offroad(ad, cl)),
                ("truncation", lambda: test_truncation(ad, cl)),
                ("close", lambda: test_close(ad, cl)),
                ("goal_sensors_idle_sigint", lambda: test_goal_sensors_idle_sigint(ctx, tmp)),
                ("traffic_spawn_sigterm", lambda: test_traffic_spawn_sigterm(ctx, tmp)),
                ("curve", lambda: test_curve(ctx, tmp)),
                ("startup_errors", lambda: test_startup_errors(tmp)),
                ("c_remote_env", lambda: test_c_remote_env(ctx, tmp)),
            ]
            for name, fn in steps:
                t0 = time.monotonic()
                try:
                    fn()
                except Exception:
                    FAILURES.append(name)
                    traceback.print_exc()
                ok = len(FAILURES) == failed_before
                failed_before = len(FAILURES)
                print("ok  " if ok else "FAIL", name, f"({time.monotonic() - t0:.2f} s)")
            cl.close()
        finally:
            if FAILURES:
                print("main adapter stderr:", ad.tail())
            ad.stop()
    ctx.term()
    print(f"{len(FAILURES)} failures")
    return 1 if FAILURES else 0


if __name__ == "__main__":
    sys.exit(main())
