"""Codec of the saferl wire protocol, version 1, in pure Python (struct only).

A message is a multipart ZeroMQ message: one 56-byte little-endian header frame, then 0..4 raw
payload frames (float32 vectors, u8 images H x W x 3). This module encodes and decodes headers,
checks a received message the way every saferl peer does (size, magic, version, type, frame count,
frame sizes, unused sizes and reserved fields), and packs the fixed payloads: the 104-byte HELLO
info, the RESULT scalars and ERROR replies. The CARLA adapter and its tests share it;
docs/protocol.md is the normative description.
"""
import struct
import time

MAGIC = 0x57524C53  # the bytes "SRLW" read as a little-endian u32
VERSION = 1
HEADER_SIZE = 56
MAX_FRAMES = 4
INFO_SIZE = 104
ACTION_STATUS_SIZE = 24
MAX_NAME = 64  # bytes of a HELLO client name

# message types
HELLO, RESET, STEP, RESULT, CLOSE, ERROR, HEARTBEAT, ACT, ACTION, STATS = range(1, 11)
TYPE_NAMES = {
    HELLO: "HELLO", RESET: "RESET", STEP: "STEP", RESULT: "RESULT", CLOSE: "CLOSE",
    ERROR: "ERROR", HEARTBEAT: "HEARTBEAT", ACT: "ACT", ACTION: "ACTION", STATS: "STATS",
}

# header flags
TERMINATED = 1 << 0
TRUNCATED = 1 << 1
DIVERGED = 1 << 2
GOAL_MET = 1 << 3
FALLBACK = 1 << 4
LATCHED = 1 << 5
WANT_IMAGE = 1 << 8

# saferl status codes carried by ERROR replies (core/error.h)
EINVAL = -1
EIO = -3
EFORMAT = -4
ENOTFOUND = -7
ENONFINITE = -9
ETIMEOUT = -10
ESTATE = -11
EUNSUPPORTED = -13

# u32 magic, u16 version, u16 type, u32 seq, u32 flags, u64 session, u64 t_ns, u32 n_frames,
# u32 sizes[4], u32 reserved
_HEADER = struct.Struct("<IHHIIQQI4II")
# i32 obs_dim, act_dim, max_episode_steps, image_h, image_w, image_c; f32 dt; u32 reserved;
# char env_id[64]; u64 server_time_ns
_INFO = struct.Struct("<6ifI64sQ")
assert _HEADER.size == HEADER_SIZE and _INFO.size == INFO_SIZE


class WireError(Exception):
    """A message that breaks the protocol; code is the saferl status to answer with."""

    def __init__(self, code, message):
        super().__init__(message)
        self.code = code
        self.message = message


class Header:
    """The fields of one 56-byte header."""

    __slots__ = ("magic", "version", "type", "seq", "flags", "session", "t_ns", "n_frames",
                 "sizes", "reserved")

    def __init__(self, type=0, seq=0, flags=0, session=0, t_ns=0, sizes=(),
                 magic=MAGIC, version=VERSION, n_frames=None, reserved=0):
        self.magic = magic
        self.version = version
        self.type = type
        self.seq = seq
        self.flags = flags
        self.session = session
        self.t_ns = t_ns
        self.sizes = list(sizes) + [0] * (MAX_FRAMES - len(sizes))
        self.n_frames = len(sizes) if n_frames is None else n_frames
        self.reserved = reserved

    def __repr__(self):
        name = TYPE_NAMES.get(self.type, str(self.type))
        return (f"Header({name}, seq={self.seq}, flags={self.flags:#x}, session={self.session}, "
                f"n_frames={self.n_frames}, sizes={self.sizes})")


def encode_header(h):
    """The 56 bytes of header h."""
    return _HEADER.pack(h.magic, h.version, h.type, h.seq, h.flags, h.session, h.t_ns,
                        h.n_frames, *h.sizes, h.reserved)


def decode_header(buf):
    """Header from exactly 56 bytes, with every field-local check; raises WireError(EFORMAT)."""
    if len(buf) != HEADER_SIZE:
        raise WireError(EFORMAT, f"header frame is {len(buf)} bytes, expected {HEADER_SIZE}")
    f = _HEADER.unpack(buf)
    h = Header(magic=f[0], version=f[1], type=f[2], seq=f[3], flags=f[4], session=f[5],
               t_ns=f[6], n_frames=f[7], sizes=f[8:12], reserved=f[12])
    if h.magic != MAGIC:
        raise WireError(EFORMAT, f"bad magic {h.magic:#010x} (expected {MAGIC:#010x})")
    if h.version != VERSION:
        raise WireError(EFORMAT, f"protocol version {h.version} not supported (this peer speaks "
                                 f"{VERSION})")
    if h.type not in TYPE_NAMES:
        raise WireError(EFORMAT, f"unknown message type {h.type}")
    if h.n_frames > MAX_FRAMES:
        raise WireError(EFORMAT, f"n_frames {h.n_frames} exceeds {MAX_FRAMES}")
    for i in range(h.n_frames, MAX_FRAMES):
        if h.sizes[i] != 0:
            raise WireError(EFORMAT, f"unused size slot {i} is {h.sizes[i]}, expected 0")
    if h.reserved != 0:
        raise WireError(EFORMAT, f"reserved header field is {h.reserved}, expected 0")
    return h


def peek_header(buf):
    """The unchecked fields of a 56-byte frame (None for another size): lets a receiver echo seq
    and session in the ERROR reply to a header that fails its checks."""
    if len(buf) != HEADER_SIZE:
        return None
    f = _HEADER.unpack(bytes(buf))
    return Header(magic=f[0], version=f[1], type=f[2], seq=f[3], flags=f[4], session=f[5],
                  t_ns=f[6], n_frames=f[7], sizes=f[8:12], reserved=f[12])


def parse(parts):
    """(header, payload frames) of a whole message (parts[0] is the header frame); checks the
    frame count and each frame's size against the header. Raises WireError(EFORMAT)."""
    if not parts:
        raise WireError(EFORMAT, "empty message")
    h = decode_header(bytes(parts[0]))
    payload = [bytes(p) for p in parts[1:]]
    if len(payload) != h.n_frames:
        raise WireError(EFORMAT, f"header announces {h.n_frames} payload frames, "
                                 f"{len(payload)} arrived")
    for i, p in enumerate(payload):
        if len(p) != h.sizes[i]:
            raise WireError(EFORMAT, f"frame {i} is {len(p)} bytes, header says {h.sizes[i]}")
    return h, payload


def build(type, seq, session, frames=(), flags=0, t_ns=0):
    """Parts of a message: the encoded header followed by the payload frames (bytes-like)."""
    frames = [bytes(f) for f in frames]
    if len(frames) > MAX_FRAMES:
        raise ValueError(f"{len(frames)} payload frames exceed {MAX_FRAMES}")
    h = Header(type=type, seq=seq, flags=flags, session=session, t_ns=t_ns,
               sizes=[len(f) for f in frames])
    return [encode_header(h)] + frames


def now_ns():
    """CLOCK_MONOTONIC in ns, the clock of header.t_ns."""
    return time.clock_gettime_ns(time.CLOCK_MONOTONIC)


# ---- fixed payloads ---------------------------------------------------------------------------

def encode_info(obs_dim, act_dim, max_episode_steps, image_h, image_w, image_c, dt, env_id,
                server_time_ns=None):
    """The 104-byte HELLO info frame."""
    name = env_id.encode("utf-8")[:MAX_NAME - 1]
    t = now_ns() if server_time_ns is None else server_time_ns
    return _INFO.pack(obs_dim, act_dim, max_episode_steps, image_h, image_w, image_c, dt, 0,
                      name, t)


def decode_info(buf):
    """dict of a HELLO info frame; raises WireError(EFORMAT) on a wrong size."""
    if len(buf) != INFO_SIZE:
        raise WireError(EFORMAT, f"info frame is {len(buf)} bytes, expected {INFO_SIZE}")
    f = _INFO.unpack(buf)
    return {"obs_dim": f[0], "act_dim": f[1], "max_episode_steps": f[2], "image_h": f[3],
            "image_w": f[4], "image_c": f[5], "dt": f[6], "reserved": f[7],
            "env_id": f[8].split(b"\0", 1)[0].decode("utf-8", "replace"),
            "server_time_ns": f[9]}


def pack_f32(values):
    """Little-endian float32 bytes of a sequence of numbers."""
    return struct.pack(f"<{len(values)}f", *values)


def unpack_f32(buf):
    """Tuple of floats from little-endian float32 bytes (length a multiple of 4)."""
    if len(buf) % 4:
        raise WireError(EFORMAT, f"float32 frame of {len(buf)} bytes is not a multiple of 4")
    return struct.unpack(f"<{len(buf) // 4}f", buf)


def encode_error(code, message):
    """The two payload frames of an ERROR reply: i32 code, UTF-8 message."""
    return [struct.pack("<i", code), message.encode("utf-8")]


def decode_error(frames):
    """(code, message) of an ERROR reply's payload."""
    if len(frames) != 2 or len(frames[0]) != 4:
        raise WireError(EFORMAT, "ERROR reply needs an i32 code frame and a message frame")
    return struct.unpack("<i", frames[0])[0], frames[1].decode("utf-8", "replace")


def encode_u64(value):
    return struct.pack("<Q", value)


def decode_u64(buf):
    if len(buf) != 8:
        raise WireError(EFORMAT, f"u64 frame is {len(buf)} bytes, expected 8")
    return struct.unpack("<Q", buf)[0]
