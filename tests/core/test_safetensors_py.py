"""Cross-check of saferl's safetensors reader and writer against files laid out by Python.

The `safetensors` package is not installed, so files are written here from the format alone
(struct for the 8-byte header size, json for the header, numpy float16 and torch bfloat16 bytes for
the half types). tool_st_dump (C) must read them back bit for bit, refuse broken ones, and
tool_st_write's file (C) must parse here into the values computed independently below.
The tools are found through SRL_BIN_DIR; the script exits nonzero on any failure.
"""
import json
import os
import struct
import subprocess
import sys
import tempfile

import numpy as np
import torch

FAILURES = []


def check(cond, what):
    if not cond:
        FAILURES.append(what)
        print("  FAIL:", what)


# ---- writing files the way the reference writer lays them out --------------------------------

DTYPES = {  # numpy dtype -> (safetensors name, size)
    np.dtype(np.float32): ("F32", 4),
    np.dtype(np.float16): ("F16", 2),
    np.dtype(np.int64): ("I64", 8),
    np.dtype(np.int32): ("I32", 4),
    np.dtype(np.uint8): ("U8", 1),
    np.dtype(np.bool_): ("BOOL", 1),
}


def tensor_bytes(value):
    """(dtype name, shape, little-endian bytes) of a numpy array or a torch bfloat16 tensor."""
    if isinstance(value, torch.Tensor):
        assert value.dtype == torch.bfloat16
        raw = value.contiguous().view(torch.int16).numpy().astype("<i2").tobytes()
        return "BF16", list(value.shape), raw
    name, _ = DTYPES[value.dtype]
    little = np.ascontiguousarray(value).astype(value.dtype.newbyteorder("<"))
    return name, list(value.shape), little.tobytes()


def write_st(path, tensors, metadata=None, aligned=True, ensure_ascii=True, trailing=""):
    """Write a safetensors file. aligned: order by dtype size then name and pad the header to a
    multiple of 8 (as the reference writer); otherwise insertion order and no padding."""
    items = [(name,) + tensor_bytes(v) for name, v in tensors.items()]
    sizes = {"F32": 4, "F16": 2, "BF16": 2, "I64": 8, "I32": 4, "U8": 1, "BOOL": 1}
    if aligned:
        items.sort(key=lambda it: (-sizes[it[1]], it[0]))
    header, offset = {}, 0
    if metadata is not None:
        header["__metadata__"] = metadata
    for name, dtype, shape, raw in items:
        header[name] = {"dtype": dtype, "shape": shape, "data_offsets": [offset, offset + len(raw)]}
        offset += len(raw)
    text = json.dumps(header, ensure_ascii=ensure_ascii, separators=(",", ":")).encode("utf-8")
    text += trailing.encode()
    if aligned:
        text += b" " * (-len(text) % 8)
    with open(path, "wb") as fp:
        fp.write(struct.pack("<Q", len(text)))
        fp.write(text)
        for _, _, _, raw in items:
            fp.write(raw)


def write_raw(path, header_text, data):
    text = header_text.encode("utf-8")
    with open(path, "wb") as fp:
        fp.write(struct.pack("<Q", len(text)) + text + data)


# ---- running the C tools ---------------------------------------------------------------------

def dump(bin_dir, path):
    """Run tool_st_dump: ({name: (dtype, shape, uint32 bits)}, metadata, returncode, stderr)."""
    p = subprocess.run([os.path.join(bin_dir, "tool_st_dump"), path], capture_output=True,
                       timeout=60)
    tensors, meta, current = {}, {}, None
    if p.returncode == 0:
        for line in p.stdout.decode("utf-8").split("\n"):
            if not line:
                continue
            fields = line.split("\t")
            if fields[0] == "tensor":
                current = json.loads(fields[1])
                tensors[current] = (fields[2], json.loads(fields[3]), int(fields[4]))
            elif fields[0] == "values":
                bits = np.array([int(x, 16) for x in fields[1:]], dtype=np.uint32)
                dtype, shape, n = tensors[current]
                check(len(bits) == n, f"{current}: {len(bits)} values for {n} elements")
                tensors[current] = (dtype, shape, bits)
            elif fields[0] == "meta":
                meta[json.loads(fields[1])] = json.loads(fields[2])
    return tensors, meta, p.returncode, p.stderr.decode("utf-8", "replace")


def f32_bits(a):
    return np.ascontiguousarray(np.asarray(a, dtype=np.float32)).reshape(-1).view(np.uint32)


def python_file_tensors():
    """Tensors for the Python-written files and their float32 values as numpy computes them."""
    rng = np.random.default_rng(7)
    f32 = np.array([[0.0, -0.0, 1.5, -2.25], [1e-45, 3e38, np.inf, -np.inf],
                    [np.nan, 1 / 3, -7e-39, 65504.0]], dtype=np.float32)
    f16_all = np.arange(65536, dtype=np.uint32).astype(np.uint16).view(np.float16).reshape(256, 256)
    with np.errstate(over="ignore"):  # 70000 overflows to infinity on purpose
        f16_vals = np.array([1 / 3, 65520.0, 1e-8, -3e-5, 0.1, 70000.0, -np.inf, 2.0 ** -24],
                            dtype=np.float32).astype(np.float16)
    bf16_all = torch.arange(65536, dtype=torch.int32).to(torch.int16).view(torch.bfloat16)
    bf16_vals = torch.tensor([1 / 3, 1e38, -1e-40, 3.14159, 1.00390625, -0.0, 12345.678],
                             dtype=torch.float32).to(torch.bfloat16)
    tensors = {
        "model.f32": f32,
        "model.f16_all": f16_all,
        "model.f16_vals": f16_vals,
        "model.bf16_all": bf16_all.reshape(16, 4096),
        "model.bf16_vals": bf16_vals,
        "i64": np.array([[-(2 ** 40), 3], [2 ** 53 + 1, -1]], dtype=np.int64),
        "i32": np.array([np.iinfo(np.int32).min, 0, np.iinfo(np.int32).max], dtype=np.int32),
        "u8": (np.arange(10) * 29 % 256).astype(np.uint8).reshape(2, 5),
        "mask": np.array([True, False, True, True]),
        "scalar": np.array(2.5, dtype=np.float32),
        "empty": np.zeros((0, 2), dtype=np.float32),
        "w.rand": rng.standard_normal((3, 7, 2)).astype(np.float32),
        "odd.bytes": np.array([1, 2, 3], dtype=np.uint8),
        "caf\u00e9 \U0001F600\n\"q\"": np.array([4.0], dtype=np.float32),
    }
    expected = {}
    for name, v in tensors.items():
        if isinstance(v, torch.Tensor):
            expected[name] = ("BF16", list(v.shape), v.float().numpy().reshape(-1).view(np.uint32))
        else:
            expected[name] = (DTYPES[v.dtype][0], list(v.shape), f32_bits(v.astype(np.float32)))
    return tensors, expected


def check_dump(label, got, expected):
    check(sorted(got) == sorted(expected), f"{label}: names {sorted(got)} vs {sorted(expected)}")
    for name, (dtype, shape, bits) in expected.items():
        if name not in got:
            continue
        gd, gs, gb = got[name]
        check(gd == dtype, f"{label}: {name!r} dtype {gd} vs {dtype}")
        check(gs == shape, f"{label}: {name!r} shape {gs} vs {shape}")
        ok = isinstance(gb, np.ndarray) and gb.shape == bits.shape and np.array_equal(gb, bits)
        if not ok and isinstance(gb, np.ndarray) and gb.shape == bits.shape:
            bad = np.nonzero(gb != bits)[0]
            print(f"  {name!r}: {len(bad)} differ, first at {bad[0]}: "
                  f"{gb[bad[0]]:08x} vs {bits[bad[0]]:08x}")
        check(ok, f"{label}: {name!r} values differ from numpy/torch")


# ---- the checks ------------------------------------------------------------------------------

def c_reads_python_files(bin_dir, tmp):
    tensors, expected = python_file_tensors()
    meta = {"format": "pt", "config": "lr: 3e-4\nsteps: 10\t# tab", "unicode": "\u2713 \U0001F600"}
    variants = [
        ("aligned", dict(aligned=True)),
        ("unaligned", dict(aligned=False)),  # insertion order: F32 data at odd offsets
        ("utf8", dict(aligned=True, ensure_ascii=False, trailing="   ")),
    ]
    for label, kw in variants:
        path = os.path.join(tmp, f"py_{label}.safetensors")
        write_st(path, tensors, meta, **kw)
        got, got_meta, rc, err = dump(bin_dir, path)
        check(rc == 0, f"{label}: tool_st_dump failed: {err.strip()}")
        if rc == 0:
            check_dump(label, got, expected)
            check(got_meta == meta, f"{label}: metadata {got_meta} vs {meta}")
    # the reader orders tensors by name (bytes of UTF-8)
    p = subprocess.run([os.path.join(bin_dir, "tool_st_dump"),
                        os.path.join(tmp, "py_aligned.safetensors")], capture_output=True)
    names = [json.loads(l.split("\t")[1]) for l in p.stdout.decode().split("\n")
             if l.startswith("tensor\t")]
    check(names == sorted(names, key=lambda s: s.encode()), "tensors not ordered by name")


def c_refuses_broken_python_files(bin_dir, tmp):
    good = {"a": {"dtype": "F32", "shape": [2], "data_offsets": [0, 8]},
            "b": {"dtype": "I32", "shape": [1], "data_offsets": [8, 12]}}
    data = np.arange(3, dtype=np.float32).tobytes()
    cases = []
    hole = json.loads(json.dumps(good))
    hole["b"]["data_offsets"] = [12, 16]
    cases.append(("hole", json.dumps(hole), data + b"\0" * 4, "hole in the data buffer"))
    over = json.loads(json.dumps(good))
    over["b"]["data_offsets"] = [4, 8]
    cases.append(("overlap", json.dumps(over), data[:8], "overlap"))
    f64 = json.loads(json.dumps(good))
    f64["a"]["dtype"] = "F64"
    cases.append(("f64", json.dumps(f64), data, "dtype 'F64' is not supported"))
    mism = json.loads(json.dumps(good))
    mism["a"]["shape"] = [3]
    cases.append(("mismatch", json.dumps(mism), data, "size mismatch"))
    cases.append(("truncated", json.dumps(good), data[:10], "out of bounds"))
    cases.append(("dupkey", '{"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]},'
                  '"a":{"dtype":"I32","shape":[1],"data_offsets":[8,12]}}', data,
                  "duplicate tensor name 'a'"))
    cases.append(("garbage", json.dumps(good) + "\n}", data, "trailing garbage"))
    cases.append(("nan", json.dumps({"a": {"dtype": "F32", "shape": [2],
                                           "data_offsets": [0, float("nan")]}}), data[:8],
                  "expected an integer"))
    for label, text, payload, want in cases:
        path = os.path.join(tmp, f"bad_{label}.safetensors")
        write_raw(path, text, payload)
        _, _, rc, err = dump(bin_dir, path)
        check(rc == 1, f"{label}: tool_st_dump accepted a broken file")
        check(want in err and path in err, f"{label}: message {err.strip()!r} lacks {want!r}")


def st_values():
    """The 32 float32 values of tool_st_write.c, computed here from the same definition."""
    special = [0x00000000, 0x80000000, 0x3f800000, 0x3f801000, 0x3f803000, 0x3f808000, 0x3f818000,
               0x477ff000, 0x477fe000, 0x477fefff, 0x33800000, 0x33000000, 0x33c00000, 0x7f7fffff,
               0x00000001, 0x7f800000, 0xff800000, 0x7fc00000, 0x387fc000, 0x38800000, 0xc0490fdb]
    v = np.array(special, dtype=np.uint32).view(np.float32).tolist()
    v += [(i * 37 % 101 - 50) / 8.0 for i in range(len(special), 32)]
    return np.array(v, dtype=np.float32)


def python_reads_c_file(bin_dir, tmp):
    path = os.path.join(tmp, "c_written.safetensors")
    p = subprocess.run([os.path.join(bin_dir, "tool_st_write"), path], capture_output=True)
    check(p.returncode == 0, f"tool_st_write failed: {p.stderr.decode()}")
    if p.returncode != 0:
        return
    check(not os.path.exists(path + ".tmp"), "tool_st_write left its temporary file")
    raw = open(path, "rb").read()
    (n,) = struct.unpack("<Q", raw[:8])
    text = raw[8:8 + n]
    check(n % 8 == 0, f"header size {n} is not a multiple of 8")
    check(text[:1] == b"{", "header does not start with '{'")
    body = text.rstrip(b" ")
    check(body.endswith(b"}") and len(text) - len(body) < 8, "header padding is not spaces")
    header = json.loads(body.decode("utf-8"))
    buf = raw[8 + n:]

    # the buffer is tiled exactly, in order of dtype size then name, each tensor aligned
    sizes = {"F32": 4, "F16": 2, "BF16": 2, "I64": 8, "I32": 4, "U8": 1, "BOOL": 1}
    entries = sorted(((v["data_offsets"], k) for k, v in header.items() if k != "__metadata__"))
    cursor = 0
    for (b, e), k in entries:
        check(b == cursor, f"{k!r}: begins at {b}, expected {cursor}")
        check((8 + n + b) % sizes[header[k]["dtype"]] == 0, f"{k!r} is not aligned")
        cursor = e
    check(cursor == len(buf), f"buffer has {len(buf)} bytes, tensors cover {cursor}")
    order = [k for _, k in entries]
    check(order == sorted(order, key=lambda k: (-sizes[header[k]["dtype"]], k)),
          f"layout order {order}")

    def arr(name, np_dtype):
        b, e = header[name]["data_offsets"]
        return np.frombuffer(buf[b:e], dtype=np_dtype).reshape(header[name]["shape"])

    v = st_values()
    with np.errstate(over="ignore", invalid="ignore"):
        f16_ref = v.astype(np.float16).view(np.uint16)                   # numpy rounding
    bf16_ref = (torch.from_numpy(v.copy()).to(torch.bfloat16).view(torch.int16).numpy()
                .view(np.uint16))                                         # torch rounding
    expect = {
        "f32.values": ("F32", [4, 8]), "f16.values": ("F16", [32]), "bf16.values": ("BF16", [4, 8]),
        "i64.ramp": ("I64", [3, 2]), "i32.edges": ("I32", [4]), "u8.ramp": ("U8", [2, 3, 2]),
        "bool.mask": ("BOOL", [5]), "scalar": ("F32", []), "empty": ("F32", [0, 3]),
        "\u00fcn\u00efcode.w": ("F32", [1]),
    }
    got = {k: (h["dtype"], h["shape"]) for k, h in header.items() if k != "__metadata__"}
    check(got == expect, f"header tensors {got}")
    if got != expect:
        return
    check(np.array_equal(arr("f32.values", "<u4").reshape(-1), v.view(np.uint32)), "f32 values")
    check(np.array_equal(arr("f16.values", "<u2"), f16_ref), "f16 narrowing differs from numpy")
    c_bf16 = arr("bf16.values", "<u2").reshape(-1)
    nan = np.isnan(v)
    check(np.array_equal(c_bf16[~nan], bf16_ref[~nan]), "bf16 narrowing differs from torch")
    check(all(((x >> 7) & 0xff) == 0xff and (x & 0x7f) for x in c_bf16[nan]), "bf16 nan lost")
    check(np.array_equal(arr("i64.ramp", "<i8").reshape(-1),
                         np.arange(6, dtype=np.int64) * 1000000000007 - 3), "i64 values")
    check(arr("i32.edges", "<i4").tolist() == [-2 ** 31, -1, 0, 2 ** 31 - 1], "i32 values")
    check(arr("u8.ramp", "u1").reshape(-1).tolist() == [i * 21 % 256 for i in range(12)], "u8")
    check(arr("bool.mask", "u1").tolist() == [1, 0, 1, 0, 1], "bool values")
    check(arr("scalar", "<f4").item() == 3.25, "scalar")
    check(arr("empty", "<f4").size == 0, "empty")
    check(arr("\u00fcn\u00efcode.w", "<f4").tolist() == [-7.5], "unicode-named tensor")
    check(header.get("__metadata__") == {"format": "pt", "algo": "ppo_lag",
                                         "note": "line1\nline2 \"quoted\" \u2713\ttab"},
          f"metadata {header.get('__metadata__')}")

    # the C reader agrees with itself on the C file (f16 widened exactly as numpy does)
    got, meta, rc, err = dump(bin_dir, path)
    check(rc == 0, f"tool_st_dump on the C file: {err}")
    if rc == 0:
        check(np.array_equal(got["f16.values"][2], f32_bits(f16_ref.view(np.float16))),
              "f16 widening of the C file differs from numpy")
        check(np.array_equal(got["bf16.values"][2][~nan],
                             (c_bf16.astype(np.uint32) << 16)[~nan]), "bf16 widening")
        check(meta == header["__metadata__"], "metadata through the C reader")


def main():
    bin_dir = os.environ.get("SRL_BIN_DIR")
    if not bin_dir or not os.path.exists(os.path.join(bin_dir, "tool_st_dump")):
        print("SRL_BIN_DIR must name the folder holding tool_st_dump and tool_st_write")
        return 1
    with tempfile.TemporaryDirectory(prefix="st_py_", dir=".") as tmp:
        for fn in (c_reads_python_files, c_refuses_broken_python_files, python_reads_c_file):
            before = len(FAILURES)
            fn(bin_dir, os.path.abspath(tmp))
            print("ok  " if len(FAILURES) == before else "FAIL", fn.__name__)
    print(f"{len(FAILURES)} failures")
    return 1 if FAILURES else 0


if __name__ == "__main__":
    sys.exit(main())
