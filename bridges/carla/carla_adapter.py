#!/usr/bin/env python3
"""CARLA adapter: drives one CARLA world for a saferl client over the saferl wire protocol.

It runs beside a CARLA server (0.9.13 or newer), binds a ZeroMQ ROUTER socket and answers HELLO,
RESET, STEP, HEARTBEAT, STATS and CLOSE, so saferl's `remote:tcp://host:port` env trains and
evaluates against CARLA like against any local env. The world runs in synchronous mode with a fixed
delta (1/fps) while a session is open, the traffic manager too; every STEP applies one
VehicleControl and ticks the world once. Observation, reward, cost and termination follow the
driving vocabulary of the protocol (docs/protocol.md), which the built-in SafetyDriving tasks share:
37 floats (last steer and throttle, speed, lateral offset, heading error, 15 route waypoints in the
ego frame, gap and relative speed of the vehicle ahead), VLM-RL's hierarchical reward with a fixed
desired speed, cost 1 on collision or off the drivable road, a collision ends the episode with -10.

The world is restored to asynchronous mode and every actor the adapter spawned is destroyed when a
session ends, on errors and on SIGINT/SIGTERM, so a stopped adapter never leaves the server waiting
for ticks. Usage: `python3 carla_adapter.py --port 2000 --bind tcp://*:5555 --town Town02`.
"""
import argparse
import collections
import json
import math
import os
import queue
import random
import signal
import sys
import time
import traceback

import numpy as np
import zmq
import zmq.auth
import zmq.utils.z85
from zmq.auth.thread import ThreadAuthenticator

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import wire  # noqa: E402  (the codec lives beside this file)

# ---- the driving vocabulary (docs/protocol.md) -------------------------------------------------

OBS_DIM = 37
ACT_DIM = 2
N_WAYPOINTS = 15          # route waypoints in the observation
WAYPOINT_SPACING = 2.0    # metres between route waypoints
AHEAD_CAP = 50.0          # gap to the vehicle ahead is capped here (m)
STD_WINDOW = 30           # steps of lateral offset behind f_std
MAX_CENTER = 3.0          # f_center reaches 0 at this distance from the lane centre (m)
STD_SCALE = 0.4           # f_std reaches 0 at this standard deviation (m)
COLLISION_REWARD = -10.0  # reward of the step that collides (terminal)
STEER_KEEP = 0.75         # applied steer = 0.75 previous + 0.25 new
GOAL_TOLERANCE = 1.0      # the route's end is reached within this many metres of progress
ENV_ID_PREFIX = "carla"

INF = float("inf")
OBS_LOW = [-1.0, -1.0, 0.0, -INF, -math.pi] + [-INF] * (2 * N_WAYPOINTS) + [0.0, -INF]
OBS_HIGH = [1.0, 1.0, INF, INF, math.pi] + [INF] * (2 * N_WAYPOINTS) + [AHEAD_CAP, INF]
ACT_LOW = [-1.0, -1.0]
ACT_HIGH = [1.0, 1.0]
assert len(OBS_LOW) == OBS_DIM and len(OBS_HIGH) == OBS_DIM


def log(msg):
    """A log line on stderr (main silences it with --quiet)."""
    print(f"carla_adapter: {msg}", file=sys.stderr, flush=True)


class AdapterError(Exception):
    """A request that cannot be served; code is the saferl status of the ERROR reply."""

    def __init__(self, code, message):
        super().__init__(message)
        self.code = code
        self.message = message


def wrap_angle(a):
    """a folded into [-pi, pi)."""
    return (a + math.pi) % (2.0 * math.pi) - math.pi


def percentile(values, q):
    return float(np.percentile(np.asarray(values, dtype=np.float64), q)) if values else 0.0


# ---- route geometry ----------------------------------------------------------------------------

class Route:
    """Waypoints 2 m apart along the lanes from the ego's start; projection of points onto it.

    Coordinates are CARLA's (x forward, y right, z up, yaw clockwise seen from above), so the left
    of a heading psi is (sin psi, -cos psi); offsets and heading errors are positive to the left.
    """

    def __init__(self, points, lane_widths, goal):
        self.p = np.asarray(points, dtype=np.float64)          # (n, 2)
        self.width = np.asarray(lane_widths, dtype=np.float64)  # (n,)
        seg = np.diff(self.p, axis=0)
        self.seg_len = np.maximum(np.hypot(seg[:, 0], seg[:, 1]), 1e-9)  # (n-1,)
        self.s = np.concatenate([[0.0], np.cumsum(self.seg_len)])      # arc length at each point
        self.length = float(self.s[-1])
        self.goal = min(goal, self.length)  # arc length of the route's end (the goal)

    @classmethod
    def from_map(cls, carla, world_map, location, length, rng):
        """Follow wp.next(2 m) from the driving lane under location for `length` metres plus the
        observation's 30 m of waypoints beyond the goal, choosing among branches at junctions
        with rng; shorter when the road ends (the goal then is the road's end)."""
        wp = world_map.get_waypoint(location, project_to_road=True,
                                    lane_type=carla.LaneType.Driving)
        if wp is None:
            raise AdapterError(wire.EIO, "ego spawn point is not on a driving lane")
        points, widths = [], []
        extra = (N_WAYPOINTS + 1) * WAYPOINT_SPACING
        for _ in range(int(math.ceil((length + extra) / WAYPOINT_SPACING)) + 1):
            loc = wp.transform.location
            points.append((loc.x, loc.y))
            widths.append(wp.lane_width)
            nxt = wp.next(WAYPOINT_SPACING)
            if not nxt:
                break
            wp = nxt[0] if len(nxt) == 1 else rng.choice(nxt)
        if len(points) < 2:
            raise AdapterError(wire.EIO, "route from the ego's spawn point is shorter than 2 m")
        return cls(points, widths, length)

    def project(self, x, y, lo=0, hi=None):
        """(segment index, signed lateral offset, distance along the route) of point (x, y) on the
        nearest segment among segments [lo, hi)."""
        n_seg = len(self.seg_len)
        hi = n_seg if hi is None else min(hi, n_seg)
        lo = max(0, min(lo, hi - 1))
        p0 = self.p[lo:hi]
        d = self.p[lo + 1:hi + 1] - p0
        rel = np.array([x, y]) - p0
        t = np.clip((rel * d).sum(axis=1) / (self.seg_len[lo:hi] ** 2), 0.0, 1.0)
        closest = p0 + t[:, None] * d
        dist = np.hypot(x - closest[:, 0], y - closest[:, 1])
        k = int(np.argmin(dist))
        i = lo + k
        # left of the segment direction (dx, dy) is (dy, -dx) in CARLA's left-handed frame
        side = rel[k, 0] * d[k, 1] - rel[k, 1] * d[k, 0]
        lateral = float(dist[k]) if side >= 0.0 else -float(dist[k])
        return i, lateral, float(self.s[i] + t[k] * self.seg_len[i])

    def at(self, s):
        """Points (k, 2) at arc lengths s (k,), clamped to the route's ends."""
        s = np.clip(s, 0.0, self.length)
        i = np.clip(np.searchsorted(self.s, s, side="right") - 1, 0, len(self.seg_len) - 1)
        t = (s - self.s[i]) / self.seg_len[i]
        return self.p[i] + t[:, None] * (self.p[i + 1] - self.p[i])

    def heading(self, i):
        """Heading (rad, CARLA yaw convention) of segment i."""
        d = self.p[i + 1] - self.p[i]
        return math.atan2(d[1], d[0])


# ---- the CARLA side ----------------------------------------------------------------------------

class CarlaWorld:
    """The connection to the server: the world, its original settings and the traffic manager.

    Synchronous mode is entered when a session opens and left when it ends (restore)."""

    def __init__(self, carla, args):
        self.carla = carla
        self.args = args
        self.client = carla.Client(args.host, args.port)
        self.client.set_timeout(args.timeout)
        self.world = self.client.get_world()
        if args.town and not self.world.get_map().name.split("/")[-1] == args.town:
            log(f"loading {args.town}")
            self.world = self.client.load_world(args.town)
        self.map = self.world.get_map()
        self.original = self.world.get_settings()
        self.blueprints = self.world.get_blueprint_library()
        self.tm = self.client.get_trafficmanager(args.tm_port)
        self.dt = 1.0 / args.fps
        self.synchronous = False
        self.map_name = self.map.name.split("/")[-1]

    def enter_sync(self):
        """Synchronous mode with fixed delta 1/fps (substeps raised when 1/fps exceeds what the
        default 10 substeps of 0.01 s cover); the traffic manager follows the ticks too."""
        s = self.world.get_settings()
        s.synchronous_mode = True
        s.fixed_delta_seconds = self.dt
        if self.dt > s.max_substep_delta_time * s.max_substeps:
            s.max_substeps = min(16, int(math.ceil(self.dt / s.max_substep_delta_time)))
        self.world.apply_settings(s)
        self.synchronous = True
        self.tm.set_synchronous_mode(True)
        self.tm.set_hybrid_physics_mode(True)
        self.tm.set_hybrid_physics_radius(50.0)

    def restore(self):
        """The original settings, in asynchronous mode, and an asynchronous traffic manager."""
        if not self.synchronous:
            return
        self.synchronous = False
        try:
            self.tm.set_synchronous_mode(False)
        finally:
            s = self.original
            s.synchronous_mode = False
            self.world.apply_settings(s)


class Episode:
    """One driving episode: the ego with camera, collision and lane-invasion sensors, traffic on
    autopilot, the route; reset, step, observation, reward and cost."""

    def __init__(self, cw, args):
        self.cw = cw
        self.carla = cw.carla
        self.args = args
        self.ego = None
        self.sensors = []
        self.traffic = []
        self.camera_q = None
        self.collision_q = None
        self.lane_q = None
        self.image = None
        self.route = None
        self.active = False   # reset done and the episode not over
        self.done_reason = "no reset yet"
        self.frame = 0
        self.steps = 0
        self.steer = 0.0
        self.throttle = 0.0
        self.seg = 0
        self.history = collections.deque(maxlen=STD_WINDOW)
        self.counts = collections.Counter()

    # actors ------------------------------------------------------------------------------------

    def destroy(self):
        """Stop the sensors, destroy every actor this episode spawned (sensors first)."""
        for s in self.sensors:
            try:
                if s.is_listening:
                    s.stop()
            except RuntimeError as e:
                log(f"stopping sensor {s.id}: {e}")
        for a in self.sensors + ([self.ego] if self.ego is not None else []) + self.traffic:
            try:
                a.destroy()
            except RuntimeError as e:
                log(f"destroying actor {a.id}: {e}")
        self.sensors, self.traffic, self.ego = [], [], None
        self.active = False
        self.done_reason = "no reset yet"

    def _spawn_ego(self, rng):
        """The hero vehicle at the first free spawn point of a seeded order, lifted by spawn_z
        (points at road height make spawning fail on CARLA 0.9.13, gym-carla#19)."""
        args = self.args
        bp = self.cw.blueprints.find(args.vehicle)
        bp.set_attribute("role_name", "hero")
        points = list(self.cw.map.get_spawn_points())
        if not points:
            raise AdapterError(wire.EIO, f"map {self.cw.map_name} has no spawn points")
        rng.shuffle(points)
        tries = min(args.spawn_retries, len(points))
        for tf in points[:tries]:
            ego = self.cw.world.try_spawn_actor(bp, self._lift(tf))
            if ego is not None:
                return ego, points
        raise AdapterError(wire.EIO, f"ego spawn failed at {tries} spawn points "
                                     f"(all occupied?)")

    def _lift(self, tf):
        loc = tf.location
        return self.carla.Transform(
            self.carla.Location(x=loc.x, y=loc.y, z=loc.z + self.args.spawn_z), tf.rotation)

    def _attach(self, bp_id, transform, attributes):
        """Spawn a sensor on the ego and send its data into a new queue."""
        bp = self.cw.blueprints.find(bp_id)
        for k, v in attributes.items():
            bp.set_attribute(k, str(v))
        sensor = self.cw.world.spawn_actor(bp, transform, attach_to=self.ego)
        self.sensors.append(sensor)
        q = queue.Queue()
        sensor.listen(q.put)
        return q

    def _spawn_traffic(self, rng, points):
        """args.traffic four-wheeled vehicles on autopilot at free spawn points."""
        bps = [bp for bp in self.cw.blueprints.filter("vehicle.*")
               if not bp.has_attribute("number_of_wheels")
               or bp.get_attribute("number_of_wheels").as_int() == 4]
        for tf in points:
            if len(self.traffic) >= self.args.traffic:
                break
            bp = rng.choice(bps)
            bp.set_attribute("role_name", "autopilot")
            v = self.cw.world.try_spawn_actor(bp, self._lift(tf))
            if v is not None:
                v.set_autopilot(True, self.args.tm_port)
                self.traffic.append(v)
        if len(self.traffic) < self.args.traffic:
            log(f"spawned {len(self.traffic)} of {self.args.traffic} traffic vehicles")

    # ticking -----------------------------------------------------------------------------------

    def _tick(self):
        """One world tick; the camera image of exactly that frame; the collision and lane-invasion
        events up to it. Returns (collided, lane invasions)."""
        frame = self.cw.world.tick()
        self.frame = frame
        if self.camera_q is not None:
            deadline = time.monotonic() + self.args.sensor_timeout
            while True:
                try:
                    img = self.camera_q.get(timeout=max(deadline - time.monotonic(), 0.0))
                except queue.Empty:
                    self.image = None
                    raise AdapterError(wire.ETIMEOUT, f"camera image of frame {frame} did not "
                                       f"arrive in {self.args.sensor_timeout:g} s") from None
                if img.frame < frame:
                    continue  # a late image of an earlier frame
                if img.frame != frame:
                    raise AdapterError(wire.EIO, f"camera delivered frame {img.frame} while the "
                                                 f"world is at frame {frame}")
                self.image = img
                break
        collided = False
        while True:
            try:
                ev = self.collision_q.get_nowait()
            except queue.Empty:
                break
            if ev.frame <= frame:
                collided = True
                self.counts["collisions"] += 1
        invasions = 0
        while True:
            try:
                ev = self.lane_q.get_nowait()
            except queue.Empty:
                break
            if ev.frame <= frame:
                invasions += 1
        self.counts["lane_invasions"] += invasions
        return collided, invasions

    # episode -----------------------------------------------------------------------------------

    def reset(self, seed):
        """New episode from seed: ego, sensors, traffic, route; settle ticks. Returns obs."""
        carla, args = self.carla, self.args
        self.destroy()
        rng = random.Random((args.seed << 64) ^ seed)
        self.cw.tm.set_random_device_seed(int((args.seed + seed) % (2 ** 31)))
        self.ego, points = self._spawn_ego(rng)
        if args.image is not None:
            w, h = args.image
            cam_tf = carla.Transform(carla.Location(x=args.camera_ahead, z=args.camera_height),
                                     carla.Rotation(pitch=-90.0))
            self.camera_q = self._attach("sensor.camera.rgb", cam_tf, {
                "image_size_x": w, "image_size_y": h, "fov": args.camera_fov})
        else:
            self.camera_q = None
        self.collision_q = self._attach("sensor.other.collision", carla.Transform(), {})
        self.lane_q = self._attach("sensor.other.lane_invasion", carla.Transform(), {})
        self._spawn_traffic(rng, points[1:])
        self.route = Route.from_map(carla, self.cw.map, self.ego.get_transform().location,
                                    args.route_length, rng)
        # settle: the ego drops onto the road; events of these ticks are not the policy's
        for _ in range(max(args.settle_ticks, 1)):
            self._tick()
        self.steps = 0
        self.steer = 0.0
        self.throttle = 0.0
        self.history.clear()
        self.seg = 0
        self.active = True
        self.done_reason = ""
        self.counts["resets"] += 1
        obs, _ = self._observe(full_search=True)
        return obs

    def step(self, action):
        """Apply [steer, throttle] (smoothed steer; throttle < 0 brakes), tick once.
        Returns (obs, reward, cost, flags, speed m/s)."""
        if not self.active:
            raise AdapterError(wire.ESTATE, f"step refused: {self.done_reason}; send RESET")
        a = [min(max(float(v), -1.0), 1.0) for v in action]
        self.steer = STEER_KEEP * self.steer + (1.0 - STEER_KEEP) * a[0]
        self.throttle = a[1]
        self.ego.apply_control(self.carla.VehicleControl(
            throttle=max(self.throttle, 0.0), steer=self.steer, brake=max(-self.throttle, 0.0)))
        try:
            collided, _ = self._tick()
        except Exception:
            self.active = False
            self.done_reason = "the last step failed"
            raise
        self.steps += 1
        self.counts["steps"] += 1
        obs, m = self._observe(full_search=False)
        d_center = abs(m["lateral"])
        self.history.append(d_center)
        offroad = self.cw.map.get_waypoint(self.ego.get_location(), project_to_road=False,
                                           lane_type=self.carla.LaneType.Driving) is None
        flags = 0
        if collided:
            reward = COLLISION_REWARD
            flags |= wire.TERMINATED
            self.done_reason = "the episode ended in a collision"
        else:
            v_des = self.args.target_speed
            r_speed = 1.0 - abs(m["speed_kmh"] - v_des) / self.args.target_speed
            f_center = max(1.0 - d_center / MAX_CENTER, 0.0)
            f_angle = max(1.0 - abs(m["heading_error"]) / (math.pi / 2.0), 0.0)
            f_std = max(1.0 - float(np.std(self.history)) / STD_SCALE, 0.0)
            reward = r_speed * f_center * f_angle * f_std
            if m["progress"] >= self.route.goal - GOAL_TOLERANCE:
                flags |= wire.TERMINATED | wire.GOAL_MET
                self.done_reason = "the route's end was reached"
                self.counts["goals"] += 1
        cost = 1.0 if (collided or offroad) else 0.0
        self.counts["offroad_steps"] += int(offroad)
        if not flags & wire.TERMINATED and self.steps >= self.args.max_steps:
            flags |= wire.TRUNCATED
            self.done_reason = f"the time limit of {self.args.max_steps} steps was reached"
        if flags & (wire.TERMINATED | wire.TRUNCATED):
            self.active = False
        return obs, reward, cost, flags, m["speed"]

    def _observe(self, full_search):
        """The 37-float observation and the measurements behind the reward."""
        tf = self.ego.get_transform()
        x, y = tf.location.x, tf.location.y
        yaw = math.radians(tf.rotation.yaw)
        vel = self.ego.get_velocity()
        speed = math.sqrt(vel.x * vel.x + vel.y * vel.y + vel.z * vel.z)
        route = self.route
        if full_search:
            seg, lateral, progress = route.project(x, y)
        else:
            seg, lateral, progress = route.project(x, y, self.seg - 2, self.seg + 40)
        self.seg = seg
        heading_error = wrap_angle(route.heading(seg) - yaw)
        # route points every 2 m ahead of the ego's progress, in the ego frame (x forward, y left)
        ahead = progress + WAYPOINT_SPACING * np.arange(1, N_WAYPOINTS + 1)
        rel = route.at(ahead) - np.array([x, y])
        c, s = math.cos(yaw), math.sin(yaw)
        wx = rel[:, 0] * c + rel[:, 1] * s
        wy = rel[:, 0] * s - rel[:, 1] * c
        gap, rel_speed = self._vehicle_ahead(seg, progress, lateral, speed)
        obs = [self.steer, self.throttle, speed * 3.6, lateral, heading_error]
        obs += np.stack([wx, wy], axis=1).reshape(-1).tolist()
        obs += [gap, rel_speed]
        return obs, {"speed": speed, "speed_kmh": speed * 3.6, "lateral": lateral,
                     "heading_error": heading_error, "progress": progress}

    def _vehicle_ahead(self, seg, progress, lateral, ego_speed):
        """(gap in m along the route, its speed minus ego speed in m/s) of the nearest vehicle
        ahead in the ego's lane, up to 50 m; (50, 0) when none. The ego's lane is the route lane
        shifted by whole lane widths to where the ego's centre is; a vehicle is in it when its
        centre lies within half a lane width of that lane's centre."""
        route = self.route
        width = float(route.width[seg])
        shift = width * round(lateral / width)
        ego_id = self.ego.id
        best, best_speed = None, 0.0
        hi = seg + int(AHEAD_CAP / WAYPOINT_SPACING) + 2
        ego_loc = self.ego.get_location()
        for v in self.cw.world.get_actors().filter("vehicle.*"):
            if v.id == ego_id:
                continue
            loc = v.get_location()
            if math.hypot(loc.x - ego_loc.x, loc.y - ego_loc.y) > AHEAD_CAP + 10.0:
                continue
            i, lat, s = route.project(loc.x, loc.y, seg, hi)
            gap = s - progress
            if abs(lat - shift) > 0.5 * route.width[i] or gap <= 0.0 or gap > AHEAD_CAP:
                continue
            if best is None or gap < best:
                vv = v.get_velocity()
                best, best_speed = gap, math.sqrt(vv.x * vv.x + vv.y * vv.y + vv.z * vv.z)
        if best is None:
            return AHEAD_CAP, 0.0
        return best, best_speed - ego_speed

    def image_rgb(self):
        """The last camera image as H x W x 3 RGB bytes (CARLA delivers BGRA)."""
        if self.image is None:
            return None
        img = self.image
        bgra = np.frombuffer(img.raw_data, dtype=np.uint8).reshape(img.height, img.width, 4)
        return np.ascontiguousarray(bgra[:, :, 2::-1]).tobytes()


# ---- the protocol side -------------------------------------------------------------------------

class Session:
    def __init__(self, sid, name, episode):
        self.id = sid
        self.name = name
        self.episode = episode
        self.last_seq = None
        self.last_reply = None
        self.hello_seq = None
        self.requests = 0
        self.last_seen = time.monotonic()


class Adapter:
    """The ROUTER server: sessions, last-reply cache, request checks and dispatch.

    One CARLA world backs one session at a time; a HELLO while another session is open is refused
    until that session closes or idles out."""

    def __init__(self, cw, args):
        self.cw = cw
        self.args = args
        self.session = None
        self.closed = collections.OrderedDict()  # session id -> (seq, reply) of recent CLOSEs
        self.sysrand = random.SystemRandom()
        self.stats = collections.Counter()
        self.step_ns = collections.deque(maxlen=4096)
        self.stop = False
        self.env_id = f"{ENV_ID_PREFIX}/{cw.map_name}"

    # sessions ----------------------------------------------------------------------------------

    def open_session(self, name):
        try:
            self.cw.enter_sync()
        except Exception:
            try:
                self.cw.restore()  # whatever part of the switch happened is undone
            except Exception as e:
                log(f"restoring asynchronous mode: {type(e).__name__}: {e}")
            raise
        sid = 0
        while sid == 0 or sid in self.closed:
            sid = self.sysrand.getrandbits(64)
        self.session = Session(sid, name, Episode(self.cw, self.args))
        self.stats["sessions"] += 1
        log(f"session {sid:#x} opened by '{name}'")
        return self.session

    def close_session(self, why):
        """Destroy the session's actors and give the world back in asynchronous mode."""
        s, self.session = self.session, None
        if s is None:
            return
        log(f"session {s.id:#x} closed ({why})")
        try:
            s.episode.destroy()
        finally:
            self.stats.update(s.episode.counts)
            self.cw.restore()

    def expire_idle(self):
        s = self.session
        if s is not None and time.monotonic() - s.last_seen > self.args.idle_timeout:
            try:
                self.close_session(f"idle for more than {self.args.idle_timeout:g} s")
            except Exception as e:  # CARLA gone: the session is dropped all the same
                log(f"closing idle session {s.id:#x}: {type(e).__name__}: {e}")

    # replies -----------------------------------------------------------------------------------

    def error(self, h, code, message):
        self.stats["errors"] += 1
        log(f"ERROR {code}: {message}")
        seq = h.seq if h is not None else 0
        session = h.session if h is not None else 0
        return wire.build(wire.ERROR, seq, session, wire.encode_error(code, message),
                          t_ns=wire.now_ns())

    def hello_reply(self, h, s):
        ep_w, ep_h = self.args.image if self.args.image is not None else (0, 0)
        image_c = 3 if self.args.image is not None else 0
        info = wire.encode_info(OBS_DIM, ACT_DIM, self.args.max_steps, ep_h, ep_w, image_c,
                                self.cw.dt, self.env_id)
        return wire.build(wire.HELLO, h.seq, s.id, [
            info, wire.pack_f32(OBS_LOW + OBS_HIGH), wire.pack_f32(ACT_LOW + ACT_HIGH)],
            t_ns=wire.now_ns())

    def result(self, h, s, obs, scalars, flags):
        frames = [wire.pack_f32(obs), wire.pack_f32(scalars)]
        if h.flags & wire.WANT_IMAGE:
            img = s.episode.image_rgb()
            if img is not None:
                frames.append(img)
        return wire.build(wire.RESULT, h.seq, s.id, frames, flags=flags, t_ns=wire.now_ns())

    # dispatch ----------------------------------------------------------------------------------

    def handle(self, parts):
        """The reply parts to one request's parts (header first). Never raises."""
        h = None
        try:
            try:
                h, frames = wire.parse(parts)
            except wire.WireError as e:
                # echo seq and session when the header frame has the right size at least
                h = wire.peek_header(parts[0]) if parts else None
                return self.error(h, e.code, e.message)
            return self.dispatch(h, frames)
        except AdapterError as e:
            return self.error(h, e.code, e.message)
        except Exception as e:  # a CARLA failure (RuntimeError) or a bug: answer, keep serving
            traceback.print_exc(file=sys.stderr)
            return self.error(h, wire.EIO, f"{type(e).__name__}: {e}")

    def dispatch(self, h, frames):
        t = h.type
        if t in (wire.RESULT, wire.ERROR, wire.ACTION):
            raise AdapterError(wire.EFORMAT, f"{wire.TYPE_NAMES[t]} is a reply, not a request")
        if t == wire.ACT:
            raise AdapterError(wire.EUNSUPPORTED, "ACT is for policy servers; this is an env "
                                                  "server")
        if t == wire.HELLO:
            return self.on_hello(h, frames)
        s = self.session
        if h.session == 0 or s is None or h.session != s.id:
            if h.session in self.closed and t == wire.CLOSE:
                seq, reply = self.closed[h.session]
                if seq == h.seq:
                    return reply
            raise AdapterError(wire.ENOTFOUND, f"unknown session {h.session:#x}")
        s.last_seen = time.monotonic()
        if t == wire.HEARTBEAT:
            expect_frames(h, 0)
            self.stats["heartbeats"] += 1
            return wire.build(wire.HEARTBEAT, h.seq, s.id, t_ns=wire.now_ns())
        if t == wire.STATS:
            expect_frames(h, 0)
            return wire.build(wire.STATS, h.seq, s.id, [self.stats_json().encode()],
                              t_ns=wire.now_ns())
        if s.last_seq == h.seq and s.last_reply is not None:
            self.stats["retries_served"] += 1
            return s.last_reply
        s.requests += 1
        try:
            reply = self.on_request(h, frames, s)
        except AdapterError as e:
            reply = self.error(h, e.code, e.message)
        except Exception as e:
            traceback.print_exc(file=sys.stderr)
            reply = self.error(h, wire.EIO, f"{type(e).__name__}: {e}")
        if self.session is s:
            s.last_seq, s.last_reply = h.seq, reply
        return reply

    def on_hello(self, h, frames):
        if h.n_frames > 1 or (frames and len(frames[0]) > wire.MAX_NAME):
            raise AdapterError(wire.EFORMAT, "HELLO carries at most one frame: a client name of "
                                             f"up to {wire.MAX_NAME} bytes")
        name = frames[0].decode("utf-8", "replace") if frames else ""
        s = self.session
        if s is not None:
            # a retried HELLO whose reply was lost gets the same session back
            if s.hello_seq == h.seq and s.name == name and s.requests == 0:
                self.stats["retries_served"] += 1
                return s.last_reply
            raise AdapterError(wire.ESTATE, f"busy: this adapter drives one CARLA world and "
                                            f"session {s.id:#x} holds it (CLOSE it or wait "
                                            f"{self.args.idle_timeout:g} s of idleness)")
        s = self.open_session(name)
        reply = self.hello_reply(h, s)
        s.hello_seq, s.last_seq, s.last_reply = h.seq, h.seq, reply
        return reply

    def on_request(self, h, frames, s):
        t = h.type
        ep = s.episode
        if t == wire.RESET:
            expect_frames(h, 1, 8, "a u64 seed")
            obs = ep.reset(wire.decode_u64(frames[0]))
            return self.result(h, s, obs, [0.0, 0.0, 0.0, 0.0], 0)
        if t == wire.STEP:
            expect_frames(h, 1, ACT_DIM * 4, f"f32 action[{ACT_DIM}]")
            action = wire.unpack_f32(frames[0])
            if not all(math.isfinite(a) for a in action):
                raise AdapterError(wire.ENONFINITE, f"action {list(action)} has non-finite values")
            t0 = time.monotonic_ns()
            obs, reward, cost, flags, speed = ep.step(action)
            self.step_ns.append(time.monotonic_ns() - t0)
            return self.result(h, s, obs, [reward, cost, cost, speed], flags)
        if t == wire.CLOSE:
            expect_frames(h, 0)
            reply = wire.build(wire.CLOSE, h.seq, s.id, t_ns=wire.now_ns())
            self.closed[s.id] = (h.seq, reply)
            while len(self.closed) > 16:
                self.closed.popitem(last=False)
            try:
                self.close_session("CLOSE")
            except Exception as e:  # the session is gone all the same; CARLA's trouble is logged
                log(f"closing session {s.id:#x}: {type(e).__name__}: {e}")
            return reply
        raise AdapterError(wire.EFORMAT, f"unexpected message type {t}")

    def stats_json(self):
        c = collections.Counter(self.stats)
        if self.session is not None:
            c.update(self.session.episode.counts)
        ms = [v / 1e6 for v in self.step_ns]
        out = {k: c[k] for k in ("sessions", "resets", "steps", "collisions", "lane_invasions",
                                 "offroad_steps", "goals", "errors", "retries_served",
                                 "heartbeats")}
        out.update({"step_ms_p50": percentile(ms, 50), "step_ms_p99": percentile(ms, 99),
                    "step_ms_max": max(ms) if ms else 0.0, "frame": self.cw_frame(),
                    "env_id": self.env_id})
        return json.dumps(out)

    def cw_frame(self):
        return self.session.episode.frame if self.session is not None else 0

    # serving -----------------------------------------------------------------------------------

    def serve(self, sock):
        """Answer requests until stop is set (signals set it)."""
        poller = zmq.Poller()
        poller.register(sock, zmq.POLLIN)
        while not self.stop:
            self.expire_idle()
            if poller.poll(100):
                self.expire_idle()  # before a message that may be the expired session's
                parts = sock.recv_multipart()
                # ROUTER envelope: identity, then the empty delimiter a REQ socket adds
                n_env = 2 if len(parts) > 1 and len(parts[1]) == 0 else 1
                reply = self.handle(parts[n_env:])
                sock.send_multipart(parts[:n_env] + reply)


def expect_frames(h, n, size=None, what=""):
    """Refuse (EFORMAT) a request without exactly n payload frames, the first of size bytes."""
    if h.n_frames != n or (size is not None and h.sizes[0] != size):
        want = f"{n} frame(s)" + (f" of {size} bytes ({what})" if size is not None else "")
        got = ", ".join(str(x) for x in h.sizes[:h.n_frames]) or "none"
        raise AdapterError(wire.EFORMAT, f"{wire.TYPE_NAMES[h.type]} needs {want}; got "
                                         f"{h.n_frames} frame(s) of sizes [{got}]")


# ---- command line ------------------------------------------------------------------------------

def parse_image(text):
    """--image: (width, height) from WxH, or None for no camera."""
    if text.lower() in ("none", "0", "off"):
        return None
    try:
        w, h = (int(v) for v in text.lower().split("x"))
    except ValueError:
        raise argparse.ArgumentTypeError(f"image size '{text}' is not WxH (e.g. 224x224) or none")
    if not (8 <= w <= 4096 and 8 <= h <= 4096):
        raise argparse.ArgumentTypeError(f"image size {w}x{h} outside 8..4096")
    return w, h


def parse_args(argv):
    p = argparse.ArgumentParser(
        prog="carla_adapter.py",
        description="Serve a CARLA world over the saferl wire protocol (a ROUTER socket).")
    p.add_argument("--host", default="localhost", help="CARLA server host")
    p.add_argument("--port", type=int, default=2000, help="CARLA server RPC port")
    p.add_argument("--timeout", type=float, default=10.0, help="CARLA client timeout (s)")
    p.add_argument("--bind", default="tcp://*:5555", help="ZeroMQ endpoint to bind")
    p.add_argument("--town", default=None, help="map to load (e.g. Town02); default: current")
    p.add_argument("--fps", type=float, default=15.0, help="steps per simulated second "
                                                           "(fixed delta 1/fps)")
    p.add_argument("--tm-port", type=int, default=None, help="traffic manager port "
                                                             "(default: port + 6000)")
    p.add_argument("--traffic", type=int, default=0, help="vehicles on autopilot")
    p.add_argument("--image", type=parse_image, default=(224, 224),
                   help="bird's-eye camera WxH, or none")
    p.add_argument("--max-steps", type=int, default=1000, help="steps before truncation")
    p.add_argument("--target-speed", type=float, default=25.0, help="desired speed (km/h)")
    p.add_argument("--seed", type=int, default=0, help="mixed into every reset's seed")
    p.add_argument("--route-length", type=float, default=500.0, help="route length (m)")
    p.add_argument("--vehicle", default="vehicle.tesla.model3", help="ego blueprint")
    p.add_argument("--spawn-retries", type=int, default=20, help="spawn points tried for the ego")
    p.add_argument("--spawn-z", type=float, default=0.5, help="lift above a spawn point (m)")
    p.add_argument("--settle-ticks", type=int, default=5, help="ticks after spawning, per reset")
    p.add_argument("--camera-height", type=float, default=12.0, help="camera height (m)")
    p.add_argument("--camera-ahead", type=float, default=6.0, help="camera ahead of the ego (m)")
    p.add_argument("--camera-fov", type=float, default=90.0, help="camera field of view (deg)")
    p.add_argument("--sensor-timeout", type=float, default=2.0, help="wait for an image (s)")
    p.add_argument("--idle-timeout", type=float, default=60.0, help="free a silent session (s)")
    p.add_argument("--curve-secret", default=None, help="server secret certificate (CURVE)")
    p.add_argument("--allow", default=None, help="allowed client public keys (Z85, one a line)")
    p.add_argument("--quiet", action="store_true", help="no log lines on stderr")
    a = p.parse_args(argv)
    if a.tm_port is None:
        a.tm_port = a.port + 6000
    if a.fps <= 0 or a.fps > 1000:
        p.error(f"--fps {a.fps:g} outside (0, 1000]")
    if a.max_steps < 1 or a.target_speed <= 0 or a.traffic < 0 or a.route_length < 4:
        p.error("--max-steps >= 1, --target-speed > 0, --traffic >= 0, --route-length >= 4")
    if a.spawn_retries < 1:
        p.error("--spawn-retries must be at least 1")
    if (a.curve_secret is None) != (a.allow is None):
        p.error("--curve-secret and --allow go together")
    return a


def load_allow_list(path):
    """Z85 public keys (40 characters), one a line; '#' at the start of a line or after a blank
    starts a comment ('#' is also a Z85 digit, so a key may contain it). Lines of a pasted public
    certificate (metadata, curve, public-key = "...") are understood too."""
    keys = set()
    with open(path, "rb") as f:
        for n, raw in enumerate(f, 1):
            cut = next((i for i, ch in enumerate(raw) if ch == ord("#")
                        and (i == 0 or raw[i - 1] in b" \t")), len(raw))
            line = raw[:cut].strip()
            if not line or line in (b"metadata", b"curve"):
                continue
            if line.startswith(b"secret-key"):
                raise ValueError(f"{path}:{n}: an allow-list holds public keys, not secret ones")
            if line.startswith(b"public-key"):
                line = line.split(b"=", 1)[-1].strip().strip(b"\"'")
            if len(line) != 40:
                raise ValueError(f"{path}:{n}: expected a 40-character Z85 public key")
            try:
                zmq.utils.z85.decode(line)
            except (ValueError, KeyError, IndexError):
                raise ValueError(f"{path}:{n}: '{line.decode(errors='replace')}' is not Z85")
            keys.add(line)
    return keys


class AllowList:
    """ZAP credentials provider: admits the listed client keys only."""

    def __init__(self, keys):
        self.keys = keys

    def callback(self, domain, key):
        ok = key in self.keys
        if not ok:
            log(f"CURVE: refused client key {key.decode(errors='replace')}")
        return ok


def make_socket(ctx, args):
    """The bound ROUTER socket (with CURVE and the ZAP allow-list when configured) and the
    authenticator thread to stop at exit (or None)."""
    auth = None
    sock = ctx.socket(zmq.ROUTER)
    sock.setsockopt(zmq.LINGER, 0)
    if args.curve_secret:
        public, secret = zmq.auth.load_certificate(args.curve_secret)
        if not secret:
            raise ValueError(f"{args.curve_secret}: no secret-key (need the NAME.key_secret file)")
        keys = load_allow_list(args.allow)
        auth = ThreadAuthenticator(ctx)
        auth.start()
        auth.configure_curve_callback("*", credentials_provider=AllowList(keys))
        sock.curve_secretkey = secret
        sock.curve_publickey = public
        sock.curve_server = True
    sock.bind(args.bind)
    return sock, auth


def main(argv=None):
    global log
    args = parse_args(sys.argv[1:] if argv is None else argv)
    if args.quiet:
        log = lambda msg: None  # noqa: E731

    try:
        import carla
    except ImportError as e:
        print(f"carla_adapter: cannot import the carla package ({e}); install the wheel "
              "matching the server (pip install carla==0.9.x) or add its PythonAPI to PYTHONPATH",
              file=sys.stderr)
        return 2
    try:
        cw = CarlaWorld(carla, args)
    except RuntimeError as e:
        print(f"carla_adapter: cannot reach CARLA at {args.host}:{args.port}: {e}",
              file=sys.stderr)
        return 1

    adapter = Adapter(cw, args)

    def on_signal(signum, frame):
        adapter.stop = True
    signal.signal(signal.SIGINT, on_signal)
    signal.signal(signal.SIGTERM, on_signal)

    ctx = zmq.Context()
    sock, auth = None, None
    status = 0
    try:
        sock, auth = make_socket(ctx, args)
        endpoint = sock.getsockopt_string(zmq.LAST_ENDPOINT)
        print(f"ready {endpoint} {adapter.env_id}", flush=True)
        log(f"serving {adapter.env_id} on {endpoint} (CARLA {args.host}:{args.port}, "
            f"dt {cw.dt:.4f} s)")
        adapter.serve(sock)
        log("stopping on signal")
    except Exception as e:
        traceback.print_exc(file=sys.stderr)
        print(f"carla_adapter: {type(e).__name__}: {e}", file=sys.stderr)
        status = 1
    finally:
        # whatever happened: actors destroyed, the world asynchronous again, sockets closed
        try:
            adapter.close_session("adapter exit")
        except Exception as e:
            print(f"carla_adapter: cleanup: {e}", file=sys.stderr)
            status = 1
        try:
            cw.restore()
        except Exception as e:
            print(f"carla_adapter: restoring asynchronous mode: {e}", file=sys.stderr)
            status = 1
        if sock is not None:
            sock.close(0)
        if auth is not None:
            auth.stop()
        ctx.term()
    return status


if __name__ == "__main__":
    sys.exit(main())
