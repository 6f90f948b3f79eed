"""A small stand-in for CARLA's `carla` Python package, for testing the CARLA adapter here.

CARLA itself (a large Unreal Engine server) cannot be installed on this machine. This module offers
exactly the part of the client API that bridges/carla/carla_adapter.py uses, with CARLA's names,
signatures and conventions (UE4's left-handed frame: x forward, y right, z up, yaw in degrees
clockwise seen from above; positive steer turns right; world.tick() returns the new frame id;
sensor data reaches listen() callbacks with the frame it belongs to; images are BGRA), over a tiny
simulator living in the adapter's process:

- one road: a reference line running 150 m along +x, a 90-degree right turn of radius 60 m, then
  150 m along +y; two driving lanes of 3.5 m to its right (lane_id -1 centred 1.75 m right of the
  line, lane_id -2 at 5.25 m); everything else is off the drivable road; spawn points every 20 m
  in both lanes at ground height z = 0 (a vehicle spawned below z = 0.1 hits the ground and
  try_spawn_actor returns None, the CARLA 0.9.13 behaviour behind gym-carla#19);
- the ego (no autopilot) moves by a kinematic bicycle model from its VehicleControl; autopilot
  vehicles follow their lane centre at a constant speed (5 m/s);
- on each tick: collision events when the ego's box overlaps another vehicle, lane-invasion events
  when the ego crosses a lane marking, and one camera image per listening camera whose pixels are
  B = frame % 256, G = row % 256, R = column % 256, A = 255, so a test can check the channel order,
  the row order and which frame an image belongs to.

Stricter than CARLA where that exposes adapter bugs: tick() in asynchronous mode, a fixed delta
that substepping cannot cover, a non-string blueprint attribute, an unknown attribute and
out-of-range VehicleControl values all raise.

Test hooks (environment variables): FAKE_CARLA_LOG, a file that receives one JSON object per line
for every settings change, traffic-manager call, spawn, failed spawn, destroy, listen/stop and
tick (with the ego's state and control); FAKE_CARLA_CONTROL, a file polled at each tick whose JSON
lines are commands for that tick: {"cmd": "collision"}, {"cmd": "lane_invasion"},
{"cmd": "tick_error"} (tick() raises the RuntimeError of a server that timed out),
{"cmd": "drop_image"} (the camera skips this frame), {"cmd": "stale_image"} (an image of the
previous frame arrives first), {"cmd": "vehicle_ahead", "distance": D, "speed": V} (a vehicle
D m ahead of the ego's lane position, "offset": O m right of that lane's centre, default 0, driving
along the road at V m/s, destroyed with the ego); FAKE_CARLA_BLOCK_SPAWNS=N makes the first N
spawn attempts of the hero vehicle fail as if the point were occupied; FAKE_CARLA_UNREACHABLE=1
makes get_world() time out like a client whose server is down.
"""
import fnmatch
import json
import math
import os

import numpy as np

# ---- geometry types ----------------------------------------------------------------------------


class Vector3D:
    def __init__(self, x=0.0, y=0.0, z=0.0):
        self.x, self.y, self.z = float(x), float(y), float(z)

    def __add__(self, o):
        return type(self)(self.x + o.x, self.y + o.y, self.z + o.z)

    def __sub__(self, o):
        return type(self)(self.x - o.x, self.y - o.y, self.z - o.z)

    def __mul__(self, k):
        return type(self)(self.x * k, self.y * k, self.z * k)

    def length(self):
        return math.sqrt(self.x * self.x + self.y * self.y + self.z * self.z)

    def __repr__(self):
        return f"{type(self).__name__}(x={self.x:.6f}, y={self.y:.6f}, z={self.z:.6f})"


class Location(Vector3D):
    def distance(self, o):
        return (self - o).length()


class Rotation:
    def __init__(self, pitch=0.0, yaw=0.0, roll=0.0):
        self.pitch, self.yaw, self.roll = float(pitch), float(yaw), float(roll)

    def get_forward_vector(self):
        p, y = math.radians(self.pitch), math.radians(self.yaw)
        return Vector3D(math.cos(p) * math.cos(y), math.cos(p) * math.sin(y), math.sin(p))

    def get_right_vector(self):
        y = math.radians(self.yaw)
        return Vector3D(-math.sin(y), math.cos(y), 0.0)

    def __repr__(self):
        return f"Rotation(pitch={self.pitch:.6f}, yaw={self.yaw:.6f}, roll={self.roll:.6f})"


class Transform:
    def __init__(self, location=None, rotation=None):
        self.location = location if location is not None else Location()
        self.rotation = rotation if rotation is not None else Rotation()

    def get_forward_vector(self):
        return self.rotation.get_forward_vector()

    def get_right_vector(self):
        return self.rotation.get_right_vector()

    def __repr__(self):
        return f"Transform({self.location}, {self.rotation})"


class VehicleControl:
    def __init__(self, throttle=0.0, steer=0.0, brake=0.0, hand_brake=False, reverse=False,
                 manual_gear_shift=False, gear=0):
        if not 0.0 <= throttle <= 1.0 or not -1.0 <= steer <= 1.0 or not 0.0 <= brake <= 1.0:
            raise ValueError(f"VehicleControl out of range: throttle={throttle} steer={steer} "
                             f"brake={brake}")
        self.throttle, self.steer, self.brake = float(throttle), float(steer), float(brake)
        self.hand_brake, self.reverse = bool(hand_brake), bool(reverse)
        self.manual_gear_shift, self.gear = bool(manual_gear_shift), int(gear)


class LaneType:
    NONE = 1
    Driving = 2
    Shoulder = 1024
    Sidewalk = 32
    Any = -2


class LaneMarkingType:
    Broken = "Broken"
    Solid = "Solid"


class LaneMarking:
    def __init__(self, type, width=0.15):
        self.type, self.width = type, width


class WorldSettings:
    def __init__(self):
        self.synchronous_mode = False
        self.no_rendering_mode = False
        self.fixed_delta_seconds = None
        self.substepping = True
        self.max_substep_delta_time = 0.01
        self.max_substeps = 10

    def copy(self):
        s = WorldSettings()
        s.__dict__.update(self.__dict__)
        return s


# ---- the simulator behind the API --------------------------------------------------------------

STRAIGHT, RADIUS = 150.0, 60.0
LANE_WIDTH = 3.5
N_LANES = 2
WHEELBASE, MAX_STEER = 2.9, math.radians(35.0)
MAX_ACCEL, MAX_BRAKE, DRAG = 6.0, 9.0, 0.05
BOX_LENGTH, BOX_WIDTH = 4.6, 2.0
AUTOPILOT_SPEED = 5.0


def _road_point(s):
    """(x, y, yaw_deg) of the reference line at arc length s (CARLA frame; the turn is a right
    turn, so yaw grows from 0 to 90 degrees)."""
    arc = RADIUS * math.pi / 2.0
    if s <= STRAIGHT:
        return s, 0.0, 0.0
    if s <= STRAIGHT + arc:
        a = (s - STRAIGHT) / RADIUS  # centre of the turn at (STRAIGHT, RADIUS)
        return STRAIGHT + RADIUS * math.sin(a), RADIUS - RADIUS * math.cos(a), math.degrees(a)
    return STRAIGHT + RADIUS, RADIUS + (s - STRAIGHT - arc), 90.0


ROAD_LENGTH = 2.0 * STRAIGHT + RADIUS * math.pi / 2.0
_S = np.arange(0.0, ROAD_LENGTH + 1e-9, 0.25)
_PTS = np.array([_road_point(s) for s in _S])  # (n, 3): x, y, yaw_deg


def _lane_centre_offset(lane_id):
    return (-lane_id - 0.5) * LANE_WIDTH


def _lane_point(s, lane_id):
    x, y, yaw = _road_point(s)
    off = _lane_centre_offset(lane_id)
    r = math.radians(yaw)
    return x - math.sin(r) * off, y + math.cos(r) * off, yaw


def _road_coords(x, y):
    """(s, offset to the right of the reference line) of the nearest reference point; s beyond
    the ends extends the end segments."""
    d = np.hypot(_PTS[:, 0] - x, _PTS[:, 1] - y)
    i = int(np.argmin(d))
    px, py, yaw = _PTS[i]
    r = math.radians(yaw)
    fx, fy = math.cos(r), math.sin(r)
    along = (x - px) * fx + (y - py) * fy
    right = -(x - px) * fy + (y - py) * fx
    return _S[i] + along, right


class _Sim:
    """World state shared by every Client of the process (the 'server')."""

    def __init__(self):
        self.map_name = "Carla/Maps/Town02"
        self.settings = WorldSettings()
        self.frame = 1000
        self.elapsed = 0.0
        self.actors = {}
        self.next_id = 100
        self.tm_sync = False
        self.block_hero = int(os.environ.get("FAKE_CARLA_BLOCK_SPAWNS", "0"))
        self.log_path = os.environ.get("FAKE_CARLA_LOG")
        self.control_path = os.environ.get("FAKE_CARLA_CONTROL")
        self.patterns = {}

    def log(self, event, **fields):
        if self.log_path:
            fields["event"] = event
            with open(self.log_path, "a") as f:
                f.write(json.dumps(fields) + "\n")

    def commands(self):
        """Commands the test left for this tick (the file is taken atomically)."""
        if not self.control_path or not os.path.exists(self.control_path):
            return []
        taken = self.control_path + ".taken"
        os.replace(self.control_path, taken)
        with open(taken) as f:
            cmds = [json.loads(line) for line in f if line.strip()]
        os.unlink(taken)
        return cmds

    def new_id(self):
        self.next_id += 1
        return self.next_id

    def vehicles(self):
        return [a for a in self.actors.values() if isinstance(a, Vehicle)]


_SIM = None


def _sim():
    global _SIM
    if _SIM is None:
        _SIM = _Sim()
    return _SIM


# ---- map ---------------------------------------------------------------------------------------


class Waypoint:
    def __init__(self, s, lane_id):
        self.s = float(s)
        self.lane_id = lane_id
        self.road_id = 1
        self.section_id = 0
        self.lane_width = LANE_WIDTH
        self.lane_type = LaneType.Driving
        self.is_junction = False
        self.id = hash((round(self.s, 3), lane_id)) & 0xFFFFFFFF
        x, y, yaw = _lane_point(self.s, lane_id)
        self.transform = Transform(Location(x, y, 0.0), Rotation(yaw=yaw))

    def next(self, distance):
        s = self.s + distance
        return [Waypoint(s, self.lane_id)] if s <= ROAD_LENGTH else []

    def previous(self, distance):
        s = self.s - distance
        return [Waypoint(s, self.lane_id)] if s >= 0.0 else []


class Map:
    def __init__(self, name):
        self.name = name

    def get_spawn_points(self):
        pts = []
        for s in np.arange(10.0, ROAD_LENGTH - 20.0, 20.0):
            for lane in range(-1, -N_LANES - 1, -1):
                x, y, yaw = _lane_point(s, lane)
                pts.append(Transform(Location(x, y, 0.0), Rotation(yaw=yaw)))
        return pts

    def get_waypoint(self, location, project_to_road=True, lane_type=LaneType.Driving):
        if lane_type not in (LaneType.Driving, LaneType.Any) and project_to_road is False:
            return None
        s, right = _road_coords(location.x, location.y)
        on_road = 0.0 <= s <= ROAD_LENGTH and 0.0 <= right <= N_LANES * LANE_WIDTH
        if not on_road and not project_to_road:
            return None
        lane = -1 - int(min(max(right, 0.0), N_LANES * LANE_WIDTH - 1e-6) // LANE_WIDTH)
        return Waypoint(min(max(s, 0.0), ROAD_LENGTH), lane)


# ---- blueprints --------------------------------------------------------------------------------


class ActorAttribute:
    def __init__(self, id, value):
        self.id, self.value = id, value

    def as_int(self):
        return int(self.value)

    def as_float(self):
        return float(self.value)

    def as_str(self):
        return str(self.value)

    def __str__(self):
        return str(self.value)


class ActorBlueprint:
    def __init__(self, id, attributes):
        self.id = id
        self.tags = id.split(".")
        self._attr = dict(attributes)

    def has_attribute(self, key):
        return key in self._attr

    def get_attribute(self, key):
        if key not in self._attr:
            raise IndexError(f"blueprint {self.id} has no attribute '{key}'")
        return ActorAttribute(key, self._attr[key])

    def set_attribute(self, key, value):
        if not isinstance(value, str):
            raise TypeError(f"set_attribute('{key}', ...) needs a str, got {type(value).__name__}")
        if key not in self._attr:
            raise IndexError(f"blueprint {self.id} has no attribute '{key}'")
        self._attr[key] = value

    def copy(self):
        return ActorBlueprint(self.id, self._attr)


_VEHICLES = [("vehicle.tesla.model3", 4), ("vehicle.audi.a2", 4), ("vehicle.lincoln.mkz_2017", 4),
             ("vehicle.yamaha.yzf", 2)]


def _blueprints():
    bps = [ActorBlueprint(v, {"role_name": "", "number_of_wheels": str(n), "color": "0,0,0"})
           for v, n in _VEHICLES]
    bps.append(ActorBlueprint("sensor.camera.rgb", {
        "role_name": "", "image_size_x": "800", "image_size_y": "600", "fov": "90",
        "sensor_tick": "0.0"}))
    bps.append(ActorBlueprint("sensor.other.collision", {"role_name": ""}))
    bps.append(ActorBlueprint("sensor.other.lane_invasion", {"role_name": ""}))
    return bps


class BlueprintLibrary:
    def __init__(self):
        self._bps = _blueprints()

    def find(self, id):
        for bp in self._bps:
            if bp.id == id:
                return bp.copy()
        raise IndexError(f"blueprint '{id}' not found")

    def filter(self, pattern):
        return [bp.copy() for bp in self._bps if fnmatch.fnmatch(bp.id, pattern)]

    def __iter__(self):
        return iter([bp.copy() for bp in self._bps])

    def __len__(self):
        return len(self._bps)


# ---- actors ------------------------------------------------------------------------------------


class Actor:
    def __init__(self, bp_id, attributes, transform, parent=None):
        sim = _sim()
        self.id = sim.new_id()
        self.type_id = bp_id
        self.attributes = dict(attributes)
        self.parent = parent
        self.is_alive = True
        self._tf = Transform(Location(transform.location.x, transform.location.y,
                                      transform.location.z),
                             Rotation(transform.rotation.pitch, transform.rotation.yaw,
                                      transform.rotation.roll))
        self._speed = 0.0

    def get_transform(self):
        if self.parent is None:
            return Transform(Location(self._tf.location.x, self._tf.location.y,
                                      self._tf.location.z),
                             Rotation(self._tf.rotation.pitch, self._tf.rotation.yaw,
                                      self._tf.rotation.roll))
        p = self.parent.get_transform()
        r = math.radians(p.rotation.yaw)
        rel = self._tf.location
        loc = Location(p.location.x + rel.x * math.cos(r) - rel.y * math.sin(r),
                       p.location.y + rel.x * math.sin(r) + rel.y * math.cos(r),
                       p.location.z + rel.z)
        return Transform(loc, Rotation(self._tf.rotation.pitch,
                                       p.rotation.yaw + self._tf.rotation.yaw,
                                       self._tf.rotation.roll))

    def get_location(self):
        return self.get_transform().location

    def get_velocity(self):
        if self.parent is not None:
            return self.parent.get_velocity()
        r = math.radians(self._tf.rotation.yaw)
        return Vector3D(self._speed * math.cos(r), self._speed * math.sin(r), 0.0)

    def set_transform(self, transform):
        self._tf = transform

    def destroy(self):
        sim = _sim()
        if not self.is_alive:
            return False
        self.is_alive = False
        sim.actors.pop(self.id, None)
        sim.log("destroy", id=self.id, type_id=self.type_id)
        if self.attributes.get("role_name") == "hero":
            for v in sim.vehicles():  # vehicles a test injected live as long as the ego
                if v.attributes.get("role_name") == "injected":
                    v.destroy()
        return True


class Vehicle(Actor):
    def __init__(self, *a, **k):
        super().__init__(*a, **k)
        self._control = VehicleControl()
        self.autopilot = False
        self.lane_speed = AUTOPILOT_SPEED

    def apply_control(self, control):
        self._control = control

    def get_control(self):
        return self._control

    def set_autopilot(self, enabled=True, tm_port=8000):
        self.autopilot = bool(enabled)
        _sim().log("autopilot", id=self.id, enabled=self.autopilot, tm_port=tm_port)

    def _move(self, dt):
        if self.autopilot:  # along the road, keeping the offset from the reference line
            s, right = _road_coords(self._tf.location.x, self._tf.location.y)
            s = min(s + self.lane_speed * dt, ROAD_LENGTH)
            self._speed = self.lane_speed if s < ROAD_LENGTH else 0.0
            x, y, yaw = _road_point(s)
            r = math.radians(yaw)
            self._tf = Transform(Location(x - math.sin(r) * right, y + math.cos(r) * right, 0.0),
                                 Rotation(yaw=yaw))
            return
        c = self._control
        accel = MAX_ACCEL * c.throttle - MAX_BRAKE * c.brake - DRAG * self._speed
        self._speed = max(self._speed + accel * dt, 0.0)
        yaw = math.radians(self._tf.rotation.yaw)
        yaw += self._speed * math.tan(c.steer * MAX_STEER) / WHEELBASE * dt
        loc = self._tf.location
        self._tf = Transform(Location(loc.x + self._speed * math.cos(yaw) * dt,
                                      loc.y + self._speed * math.sin(yaw) * dt, 0.0),
                             Rotation(yaw=math.degrees(yaw)))


class Sensor(Actor):
    def __init__(self, *a, **k):
        super().__init__(*a, **k)
        self._callback = None

    @property
    def is_listening(self):
        return self._callback is not None

    def listen(self, callback):
        self._callback = callback
        _sim().log("listen", id=self.id, type_id=self.type_id)

    def stop(self):
        self._callback = None
        _sim().log("stop", id=self.id, type_id=self.type_id)


class ActorList:
    def __init__(self, actors):
        self._actors = list(actors)

    def filter(self, pattern):
        return ActorList(a for a in self._actors if fnmatch.fnmatch(a.type_id, pattern))

    def find(self, actor_id):
        for a in self._actors:
            if a.id == actor_id:
                return a
        return None

    def __iter__(self):
        return iter(self._actors)

    def __len__(self):
        return len(self._actors)


# ---- sensor data -------------------------------------------------------------------------------


class SensorData:
    def __init__(self, frame, timestamp, transform):
        self.frame, self.timestamp, self.transform = frame, timestamp, transform


class Image(SensorData):
    def __init__(self, frame, timestamp, transform, width, height, fov, raw):
        super().__init__(frame, timestamp, transform)
        self.width, self.height, self.fov = width, height, fov
        self.raw_data = raw


class CollisionEvent(SensorData):
    def __init__(self, frame, timestamp, transform, actor, other_actor, impulse):
        super().__init__(frame, timestamp, transform)
        self.actor, self.other_actor, self.normal_impulse = actor, other_actor, impulse


class LaneInvasionEvent(SensorData):
    def __init__(self, frame, timestamp, transform, actor, markings):
        super().__init__(frame, timestamp, transform)
        self.actor, self.crossed_lane_markings = actor, markings


# ---- world, traffic manager, client ------------------------------------------------------------


class World:
    def __init__(self):
        self.id = 1

    def get_map(self):
        return Map(_sim().map_name)

    def get_settings(self):
        return _sim().settings.copy()

    def apply_settings(self, settings):
        sim = _sim()
        dt = settings.fixed_delta_seconds
        if (settings.synchronous_mode and dt is not None and settings.substepping
                and dt > settings.max_substep_delta_time * settings.max_substeps + 1e-12):
            raise RuntimeError(f"fixed_delta_seconds {dt} exceeds max_substep_delta_time x "
                               f"max_substeps")
        sim.settings = settings.copy()
        sim.log("apply_settings", synchronous_mode=settings.synchronous_mode,
                fixed_delta_seconds=dt, max_substeps=settings.max_substeps)
        return sim.frame

    def get_blueprint_library(self):
        return BlueprintLibrary()

    def get_actors(self, actor_ids=None):
        acts = list(_sim().actors.values())
        if actor_ids is not None:
            acts = [a for a in acts if a.id in actor_ids]
        return ActorList(acts)

    def get_actor(self, actor_id):
        return _sim().actors.get(actor_id)

    def try_spawn_actor(self, blueprint, transform, attach_to=None):
        sim = _sim()
        attrs = blueprint._attr
        loc = transform.location
        if blueprint.id.startswith("vehicle."):
            reason = None
            if attrs.get("role_name") == "hero" and sim.block_hero > 0:
                sim.block_hero -= 1
                reason = "blocked"
            elif loc.z < 0.1:
                reason = "ground"
            elif any(math.hypot(v._tf.location.x - loc.x, v._tf.location.y - loc.y) < 5.0
                     for v in sim.vehicles()):
                reason = "occupied"
            if reason:
                sim.log("spawn_fail", type_id=blueprint.id, role=attrs.get("role_name"),
                        x=loc.x, y=loc.y, z=loc.z, reason=reason)
                return None
            actor = Vehicle(blueprint.id, attrs, transform)
        elif blueprint.id.startswith("sensor."):
            if attach_to is None or not attach_to.is_alive:
                raise RuntimeError(f"{blueprint.id} must be attached to a live actor here")
            actor = Sensor(blueprint.id, attrs, transform, parent=attach_to)
        else:
            raise RuntimeError(f"cannot spawn {blueprint.id}")
        sim.actors[actor.id] = actor
        sim.log("spawn", id=actor.id, type_id=actor.type_id, role=attrs.get("role_name"),
                x=loc.x, y=loc.y, z=loc.z, yaw=transform.rotation.yaw,
                parent=attach_to.id if attach_to is not None else None)
        return actor

    def spawn_actor(self, blueprint, transform, attach_to=None):
        actor = self.try_spawn_actor(blueprint, transform, attach_to)
        if actor is None:
            raise RuntimeError(f"Spawn failed because of collision at spawn position "
                               f"({blueprint.id})")
        return actor

    def tick(self, seconds=10.0):
        """Advance one fixed step: move vehicles, then deliver sensor data of the new frame."""
        sim = _sim()
        st = sim.settings
        if not st.synchronous_mode or st.fixed_delta_seconds is None:
            raise RuntimeError("tick() needs synchronous mode with a fixed delta in this stand-in")
        dt = st.fixed_delta_seconds
        cmds = sim.commands()
        for c in cmds:
            sim.log("command", **c)
        if any(c["cmd"] == "tick_error" for c in cmds):
            raise RuntimeError(f"time-out of {int(seconds * 1000)}ms while waiting for the "
                               "simulator, make sure the simulator is ready and connected")
        sim.frame += 1
        sim.elapsed += dt
        frame = sim.frame
        hero = next((v for v in sim.vehicles() if v.attributes.get("role_name") == "hero"), None)
        right_before = _road_coords(hero._tf.location.x, hero._tf.location.y)[1] if hero else 0.0
        for v in sim.vehicles():
            v._move(dt)
        for c in cmds:
            if c["cmd"] == "vehicle_ahead" and hero is not None:
                s, right = _road_coords(hero._tf.location.x, hero._tf.location.y)
                lane = -1 - int(min(max(right, 0.0), N_LANES * LANE_WIDTH - 1e-6) // LANE_WIDTH)
                x, y, yaw = _lane_point(s + float(c["distance"]), lane)
                r = math.radians(yaw)
                shift = float(c.get("offset", 0.0))  # metres right of the lane centre
                x, y = x - math.sin(r) * shift, y + math.cos(r) * shift
                v = Vehicle("vehicle.audi.a2", {"role_name": "injected", "number_of_wheels": "4"},
                            Transform(Location(x, y, 0.0), Rotation(yaw=yaw)))
                v.autopilot, v.lane_speed, v._speed = True, float(c["speed"]), float(c["speed"])
                sim.actors[v.id] = v
                sim.log("spawn", id=v.id, type_id=v.type_id, role="injected", x=x, y=y, z=0.0,
                        yaw=yaw, parent=None)
        self._deliver(sim, frame, hero, right_before, cmds)
        if hero is not None:
            t = hero._tf
            c = hero._control
            sim.log("tick", frame=frame, ego={
                "x": t.location.x, "y": t.location.y, "yaw": t.rotation.yaw, "speed": hero._speed,
                "throttle": c.throttle, "steer": c.steer, "brake": c.brake})
        else:
            sim.log("tick", frame=frame, ego=None)
        return frame

    def _deliver(self, sim, frame, hero, right_before, cmds):
        """Sensor callbacks of this frame, in the order CARLA's streams would bring them."""
        names = {c["cmd"] for c in cmds}
        collided_with = []
        if hero is not None:
            h = hero._tf
            r = math.radians(h.rotation.yaw)
            for v in sim.vehicles():
                if v is hero:
                    continue
                dx, dy = v._tf.location.x - h.location.x, v._tf.location.y - h.location.y
                along = dx * math.cos(r) + dy * math.sin(r)
                across = -dx * math.sin(r) + dy * math.cos(r)
                if abs(along) < BOX_LENGTH and abs(across) < BOX_WIDTH:
                    collided_with.append(v)
        crossed = []
        if hero is not None:
            right_after = _road_coords(hero._tf.location.x, hero._tf.location.y)[1]
            for k in range(N_LANES + 1):
                edge = k * LANE_WIDTH
                if (right_before - edge) * (right_after - edge) < 0.0:
                    solid = k in (0, N_LANES)
                    crossed.append(LaneMarking(LaneMarkingType.Solid if solid
                                               else LaneMarkingType.Broken))
        for s in list(sim.actors.values()):
            if not isinstance(s, Sensor) or s._callback is None:
                continue
            tf = s.get_transform()
            if s.type_id == "sensor.camera.rgb":
                if "drop_image" in names:
                    continue
                if "stale_image" in names:
                    s._callback(self._image(sim, s, frame - 1, tf))
                s._callback(self._image(sim, s, frame, tf))
            elif s.type_id == "sensor.other.collision" and s.parent is hero:
                for v in collided_with:
                    s._callback(CollisionEvent(frame, sim.elapsed, tf, hero, v,
                                               Vector3D(100.0, 0.0, 0.0)))
                if "collision" in names:
                    prop = Actor("static.prop.streetbarrier", {}, tf)
                    s._callback(CollisionEvent(frame, sim.elapsed, tf, hero, prop,
                                               Vector3D(50.0, 0.0, 0.0)))
            elif s.type_id == "sensor.other.lane_invasion" and s.parent is hero:
                marks = list(crossed)
                if "lane_invasion" in names:
                    marks.append(LaneMarking(LaneMarkingType.Broken))
                if marks:
                    s._callback(LaneInvasionEvent(frame, sim.elapsed, tf, hero, marks))

    def _image(self, sim, cam, frame, tf):
        w = int(cam.attributes["image_size_x"])
        h = int(cam.attributes["image_size_y"])
        key = (w, h)
        if key not in sim.patterns:
            p = np.empty((h, w, 4), dtype=np.uint8)
            p[:, :, 1] = (np.arange(h) % 256)[:, None]
            p[:, :, 2] = (np.arange(w) % 256)[None, :]
            p[:, :, 3] = 255
            sim.patterns[key] = p
        p = sim.patterns[key]
        p[:, :, 0] = frame % 256
        return Image(frame, sim.elapsed, tf, w, h, float(cam.attributes["fov"]), p.tobytes())


class TrafficManager:
    def __init__(self, port):
        self.port = port

    def get_port(self):
        return self.port

    def set_synchronous_mode(self, mode):
        _sim().tm_sync = bool(mode)
        _sim().log("tm_sync", value=bool(mode), port=self.port)

    def set_random_device_seed(self, seed):
        _sim().log("tm_seed", value=int(seed))

    def set_hybrid_physics_mode(self, enabled=True):
        _sim().log("tm_hybrid", value=bool(enabled))

    def set_hybrid_physics_radius(self, radius=50.0):
        _sim().log("tm_hybrid_radius", value=float(radius))

    def set_global_distance_to_leading_vehicle(self, distance):
        _sim().log("tm_distance", value=float(distance))


class Client:
    def __init__(self, host="127.0.0.1", port=2000, worker_threads=0):
        self.host, self.port = host, port
        self.timeout = 5.0

    def set_timeout(self, seconds):
        self.timeout = float(seconds)

    def get_server_version(self):
        return "0.9.13-stand-in"

    def get_client_version(self):
        return "0.9.13-stand-in"

    def get_world(self):
        if os.environ.get("FAKE_CARLA_UNREACHABLE") == "1":
            raise RuntimeError(f"time-out of {int(self.timeout * 1000)}ms while waiting for the "
                               f"simulator, make sure the simulator is ready and connected to "
                               f"{self.host}:{self.port}")
        _sim().log("connect", host=self.host, port=self.port)
        return World()

    def load_world(self, map_name):
        sim = _sim()
        for a in list(sim.actors.values()):
            a.destroy()
        sim.map_name = "Carla/Maps/" + map_name
        sim.log("load_world", map=map_name)
        return World()

    def get_trafficmanager(self, port=8000):
        return TrafficManager(port)
