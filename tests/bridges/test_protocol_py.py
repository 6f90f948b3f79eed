"""A client of the saferl wire protocol written from docs/protocol.md alone, against
`saferl serve env SimplePointGoal`: it proves the page is complete enough to write a peer.

It speaks HELLO, RESET, STEP, HEARTBEAT, STATS and CLOSE with pyzmq and struct only, checks the
payloads against SimplePointGoal's documented dynamics (velocity v += dt*(accel*a - damping*v),
position p += dt*v, reward = previous goal distance - goal distance; dt 0.1, accel 2, damping 2),
resends a STEP with the same seq and gets the same bytes without a second step, sends malformed
messages and gets ERROR replies, and stops the server with SIGTERM.
"""
import json
import math
import os
import shutil
import signal
import struct
import subprocess
import sys
import tempfile
import time

import zmq

HEADER = struct.Struct("<IHHIIQQI4II")  # section 2
INFO = struct.Struct("<6ifI64sQ")  # section 5
MAGIC, VERSION = 0x57524C53, 1
HELLO, RESET, STEP, RESULT, CLOSE, ERROR, HEARTBEAT, ACT, ACTION, STATS = range(1, 11)
TERMINATED, TRUNCATED, DIVERGED, GOAL_MET, WANT_IMAGE = 1, 2, 4, 8, 256

failures = []


def check(cond, what):
    if not cond:
        failures.append(what)
        print("FAIL:", what)


def header(type_, seq, session, frames, flags=0, magic=MAGIC, version=VERSION):
    sizes = [len(f) for f in frames] + [0] * (4 - len(frames))
    return HEADER.pack(magic, version, type_, seq, flags, session, time.monotonic_ns(),
                       len(frames), *sizes, 0)


def parse(parts):
    """(fields dict, payload frames) with the receiver's checks of section 2."""
    check(len(parts[0]) == 56, "reply header has 56 bytes")
    f = HEADER.unpack(parts[0])
    h = dict(zip(["magic", "version", "type", "seq", "flags", "session", "t_ns", "n_frames"],
                 f[:8]))
    h["sizes"] = list(f[8:12])
    check(h["magic"] == MAGIC and h["version"] == VERSION, "reply magic and version")
    check(h["n_frames"] == len(parts) - 1, "reply n_frames matches the frames")
    for i, p in enumerate(parts[1:]):
        check(len(p) == h["sizes"][i], f"reply frame {i} size matches the header")
    return h, parts[1:]


class Client:
    """A REQ client: one request, one reply."""

    def __init__(self, ctx, endpoint):
        self.sock = ctx.socket(zmq.REQ)
        self.sock.setsockopt(zmq.LINGER, 0)
        self.sock.setsockopt(zmq.RCVTIMEO, 5000)
        self.sock.connect(endpoint)
        self.seq = 0
        self.session = 0

    def request(self, type_, frames=(), flags=0):
        self.seq += 1
        self.sock.send_multipart([header(type_, self.seq, self.session, frames, flags)] +
                                 list(frames))
        h, payload = parse(self.sock.recv_multipart())
        check(h["seq"] == self.seq, f"reply echoes seq {self.seq}")
        return h, payload


def error_of(h, payload):
    if h["type"] != ERROR:
        return None, ""
    return struct.unpack("<i", payload[0])[0], payload[1].decode()


def main():
    bin_dir = os.environ.get("SRL_BIN_DIR", os.path.join(os.getcwd(), "bin"))
    exe = os.path.join(bin_dir, "saferl")
    tmp = tempfile.mkdtemp(prefix="srl-proto-py-")
    endpoint = f"ipc://{tmp}/env"
    server = subprocess.Popen([exe, "serve", "env", "SimplePointGoal", "--bind", endpoint],
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    ctx = zmq.Context()
    try:
        line = server.stdout.readline()
        check(f"SimplePointGoal on {endpoint}" in line, f"server announces its endpoint: {line!r}")
        run(ctx, endpoint)
    finally:
        server.send_signal(signal.SIGTERM)
        try:
            _, err = server.communicate(timeout=10)
        except subprocess.TimeoutExpired:
            server.kill()
            _, err = server.communicate()
        check(server.returncode == 0, f"SIGTERM stops the server cleanly (exit {server.returncode})")
        check("stopped:" in err, "the server prints its counters when stopped")
        ctx.destroy(linger=0)
        shutil.rmtree(tmp, ignore_errors=True)
    print(f"{len(failures)} failed")
    return 1 if failures else 0


def run(ctx, endpoint):
    c = Client(ctx, endpoint)

    # HELLO: info, bounds, the session id
    h, p = c.request(HELLO, [b"protocol-page-client"])
    check(h["type"] == HELLO and h["session"] != 0, "HELLO reply with a session")
    check(len(p) == 3 and len(p[0]) == 104, "HELLO reply: info and two bound frames")
    obs_dim, act_dim, max_steps, ih, iw, ic, dt, _, env_id, _ = INFO.unpack(p[0])
    check((obs_dim, act_dim, max_steps) == (8, 2, 150), "SimplePointGoal's spaces and time limit")
    check(env_id.rstrip(b"\0") == b"SimplePointGoal", "env_id")
    check(ic == 0 and ih == 0 and iw == 0, "no images from an env that cannot draw")
    act_bounds = struct.unpack("<4f", p[2])
    check(act_bounds == (-1.0, -1.0, 1.0, 1.0), "action bounds [-1, 1]^2")
    c.session = h["session"]

    # STEP before RESET is refused
    h, p = c.request(STEP, [struct.pack("<2f", 0.0, 0.0)])
    check(error_of(h, p)[0] == -11, "STEP before RESET: ERROR -11")

    # RESET: the first observation, zero terms, no flags
    h, p = c.request(RESET, [struct.pack("<Q", 5)])
    check(h["type"] == RESULT and h["flags"] == 0, "RESET answers RESULT")
    obs = struct.unpack("<8f", p[0])
    check(struct.unpack("<4f", p[1]) == (0.0, 0.0, 0.0, 0.0), "RESET terms are zero")
    check(obs[2] == 0.0 and obs[3] == 0.0, "the point starts at rest")

    # STEP: the documented dynamics and reward
    dt, accel, damping = 0.1, 2.0, 2.0
    for k in range(6):
        a = (0.8 * math.cos(k), -0.6)
        h, p = c.request(STEP, [struct.pack("<2f", *a)])
        check(h["type"] == RESULT, f"STEP {k} answers RESULT")
        new = struct.unpack("<8f", p[0])
        reward, cost, raw_cost, x_vel = struct.unpack("<4f", p[1])
        v = [obs[2 + i] + dt * (accel * a[i] - damping * obs[2 + i]) for i in range(2)]
        pos = [obs[i] + dt * v[i] for i in range(2)]
        goal_rel = [obs[4 + i] + obs[i] - pos[i] for i in range(2)]
        check(all(abs(v[i] - new[2 + i]) < 1e-5 for i in range(2)), f"velocity after step {k}")
        check(all(abs(pos[i] - new[i]) < 1e-5 for i in range(2)), f"position after step {k}")
        check(all(abs(goal_rel[i] - new[4 + i]) < 1e-5 for i in range(2)), f"goal offset {k}")
        want_r = math.hypot(obs[4], obs[5]) - math.hypot(new[4], new[5])
        if not h["flags"] & GOAL_MET:
            check(abs(reward - want_r) < 1e-5, f"reward after step {k}: {reward} vs {want_r}")
        check(cost in (0.0, 1.0) and (cost == 1.0) == (raw_cost > 0), "cost is the indicator")
        obs = new
        if h["flags"] & (TERMINATED | TRUNCATED):
            break

    # a resent STEP (same seq, new socket) gets the same bytes and does not step again
    d = ctx.socket(zmq.DEALER)
    d.setsockopt(zmq.LINGER, 0)
    d.setsockopt(zmq.RCVTIMEO, 5000)
    d.connect(endpoint)
    c.seq += 1
    action = struct.pack("<2f", 0.3, 0.3)
    step = [header(STEP, c.seq, c.session, [action]), action]
    d.send_multipart([b""] + step)
    first = d.recv_multipart()
    d.send_multipart([b""] + step)
    again = d.recv_multipart()
    check(first == again, "a resent STEP is answered with the same bytes")
    obs_after = struct.unpack("<8f", first[2])
    h, p = c.request(STEP, [struct.pack("<2f", 0.0, 0.0)])
    new = struct.unpack("<8f", p[0])
    v = [obs_after[2 + i] * (1 - dt * damping) for i in range(2)]
    check(all(abs(obs_after[i] + dt * v[i] - new[i]) < 1e-5 for i in range(2)),
          "the step after the resend follows from one step, not two")
    # an older seq is refused as out of order
    d.send_multipart([b""] + step)
    code, text = error_of(*parse(d.recv_multipart()[1:]))
    check(code == -11 and "out of order" in text, f"old seq refused: {code} {text}")

    # malformed messages: ERROR -4, the server keeps serving
    def raw(parts):
        d.send_multipart([b""] + parts)
        return parse(d.recv_multipart()[1:])

    bad = [
        ([header(HEARTBEAT, 900, c.session, [], magic=0x12345678)], "bad magic"),
        ([header(HEARTBEAT, 901, c.session, [], version=2)], "version"),
        ([header(STEP, 902, c.session, [b"\0" * 4]), b"\0" * 4], "act_dim"),
        ([header(STEP, 903, c.session, [b"\0" * 8])], "announces 1 frames"),
        ([header(STEP, 904, c.session, [b"\0" * 8])[:40]], "header frame has 40 bytes"),
        ([header(42, 905, c.session, [])], "unknown message type"),
    ]
    for parts, words in bad:
        h, p = raw(parts)
        code, text = error_of(h, p)
        check(code == -4 and words in text, f"malformed ({words}): ERROR -4, got {code} {text!r}")
    c.seq = 1000  # past the seqs the malformed messages used

    # HEARTBEAT, STATS, CLOSE, then the session is unknown
    h, p = c.request(HEARTBEAT)
    check(h["type"] == HEARTBEAT and h["n_frames"] == 0, "HEARTBEAT answered")
    h, p = c.request(STATS)
    stats = json.loads(p[0].decode())
    check(stats["env"] == "SimplePointGoal" and stats["replayed"] == 1, f"STATS: {stats}")
    check(stats["malformed"] >= 4 and stats["sessions"] == 1, "STATS counts")
    h, p = c.request(CLOSE)
    check(h["type"] == CLOSE, "CLOSE acknowledged")
    h, p = c.request(STEP, [struct.pack("<2f", 0.0, 0.0)])
    code, text = error_of(h, p)
    check(code == -7 and "unknown session" in text, "after CLOSE the session is unknown")
    d.close(linger=0)
    c.sock.close(linger=0)


if __name__ == "__main__":
    sys.exit(main())
