"""Device configuration: defaults, validation and a versioned binary encoding.

A configuration is a plain dict (the host builds it from JSON or the command line, the
device reads it at boot)::

    sway_limit_deg      3..30 (int or float; stored in 0.01 degree)     default 10
    sway_min_ms         0..2000, lean must last this long               default 200
    sway_refractory_ms  0..60000, quiet time after an alert             default 3000
    sample_rate_hz      26, 52 or 104                                   default 52
    idle_timeout_s      30..3600, session closes after this long idle   default 300
    haptic_strength     0..100 (%)                                      default 80
    program             up to 16 (kind, seconds) intervals, kind
                        "forward" / "backward" / "rest", 10..3600 s;
                        empty = no coaching                             default []
    program_repeat      1..99 runs of the program                       default 1
    device_name         1..16 printable ASCII characters                default "retrostep"

The sway ranges are within what :class:`pipeline.GaitPipeline` accepts, so a config
that validates can never make the pipeline raise.

Why binary rather than JSON: the same bytes must come out of ``encode`` on the host and
on the device, because their CRC is written into every log HEADER to say which settings
a session ran with. MicroPython's ``json.dumps`` has no ``sort_keys`` and its dicts do
not keep a fixed key order, so equal configs could serialise differently; a fixed struct
layout cannot. It is also small (22 bytes + 3 per interval + the name) and parsing it
needs no float or string handling on the device. Layout, little-endian::

    0    4   magic b"RSCF"
    4    1   version (CONFIG_VERSION)
    5    2   u16 sway limit, 0.01 degree
    7    2   u16 sway minimum duration, ms
    9    2   u16 sway refractory period, ms
    11   1   u8  sample rate, Hz
    12   2   u16 idle timeout, s
    14   1   u8  haptic strength, %
    15   1   u8  program repeat count
    16   1   u8  n, number of intervals (0..16)
    17   3n  per interval: u8 kind (1 forward, 2 backward, 3 rest), u16 seconds
    17+3n 1  u8  m, device name length
    18+3n m  device name, ASCII
    end  4   u32 CRC-32 (binascii.crc32) of every byte before it

Magic, version first and CRC last are fixed for every version. Any change of the layout
bumps CONFIG_VERSION. ``decode`` never raises: bytes that are short, damaged (bad
magic, bad CRC, bad lengths) or of an unknown version give the defaults; a well-formed
config with an invalid value keeps its valid fields and takes the default for that one.
Either way the list of problems says what happened, so the device can raise a flag
(``records.NOTE_CONFIG_DEFAULTS``) and carry on.
"""

import struct

from .compat import const
from .records import KIND_BACKWARD, KIND_FORWARD, KIND_REST, crc32

CONFIG_VERSION = const(1)
MAGIC = b"RSCF"
MAX_INTERVALS = const(16)
MAX_NAME = const(16)
_FIXED = "<4sBHHHBHBBB"  # magic .. number of intervals: 17 bytes
_FIXED_SIZE = const(17)
_MIN_SIZE = const(22)  # no intervals, 0-length name, CRC

SAMPLE_RATES = (26, 52, 104)
KINDS = {"forward": KIND_FORWARD, "backward": KIND_BACKWARD, "rest": KIND_REST}
_KIND_NAMES = {KIND_FORWARD: "forward", KIND_BACKWARD: "backward", KIND_REST: "rest"}

# name: (low, high) for the integer fields
_RANGES = {
    "sway_min_ms": (0, 2000),
    "sway_refractory_ms": (0, 60000),
    "idle_timeout_s": (30, 3600),
    "haptic_strength": (0, 100),
    "program_repeat": (1, 99),
}
FIELDS = (
    "sway_limit_deg",
    "sway_min_ms",
    "sway_refractory_ms",
    "sample_rate_hz",
    "idle_timeout_s",
    "haptic_strength",
    "program",
    "program_repeat",
    "device_name",
)


def defaults():
    """A fresh dict with every field at its default."""
    return {
        "sway_limit_deg": 10,
        "sway_min_ms": 200,
        "sway_refractory_ms": 3000,
        "sample_rate_hz": 52,
        "idle_timeout_s": 300,
        "haptic_strength": 80,
        "program": [],
        "program_repeat": 1,
        "device_name": "retrostep",
    }


def _is_int(v):
    return isinstance(v, int) and not isinstance(v, bool)


def _check(name, v):
    """Problem with one field's value as a string, or None if it is valid."""
    if name == "sway_limit_deg":
        if not (_is_int(v) or isinstance(v, float)) or not 3 <= v <= 30:
            return "sway_limit_deg: must be a number of degrees 3..30, got %r" % (v,)
    elif name == "sample_rate_hz":
        if not _is_int(v) or v not in SAMPLE_RATES:
            return "sample_rate_hz: must be 26, 52 or 104, got %r" % (v,)
    elif name == "device_name":
        if not isinstance(v, str) or not 1 <= len(v) <= MAX_NAME:
            return "device_name: must be 1..16 characters, got %r" % (v,)
        for c in v:
            if not 32 <= ord(c) < 127:
                return "device_name: must be printable ASCII, got %r" % (v,)
    elif name == "program":
        if not isinstance(v, (list, tuple)) or len(v) > MAX_INTERVALS:
            return "program: must be a list of at most 16 intervals, got %r" % (v,)
        for i, item in enumerate(v):
            if (
                not isinstance(item, (list, tuple))
                or len(item) != 2
                or not isinstance(item[0], str)
                or item[0] not in KINDS
                or not _is_int(item[1])
                or not 10 <= item[1] <= 3600
            ):
                return (
                    "program: interval %d must be (forward|backward|rest, 10..3600 s), got %r"
                    % (i, item)
                )
    else:
        lo, hi = _RANGES[name]
        if not _is_int(v) or not lo <= v <= hi:
            return "%s: must be an integer %d..%d, got %r" % (name, lo, hi, v)
    return None


def validate(config):
    """Problems with a config dict, one string per bad field (naming it); [] if valid."""
    if not isinstance(config, dict):
        return ["config: must be a dict, got %r" % (type(config).__name__,)]
    problems = []
    for name in FIELDS:
        if name not in config:
            problems.append("%s: missing" % name)
        else:
            p = _check(name, config[name])
            if p is not None:
                problems.append(p)
    extra = [name for name in config if name not in FIELDS]
    extra.sort(key=str)  # MicroPython dicts have no fixed order
    for name in extra:
        problems.append("%s: unknown field" % (name,))
    return problems


def encode(config):
    """The binary form of a valid config (raises ValueError listing its problems)."""
    problems = validate(config)
    if problems:
        raise ValueError("invalid config: " + "; ".join(problems))
    program = config["program"]
    name = config["device_name"].encode()
    size = _FIXED_SIZE + 3 * len(program) + 1 + len(name) + 4
    out = bytearray(size)
    struct.pack_into(
        _FIXED, out, 0, MAGIC, CONFIG_VERSION, int(config["sway_limit_deg"] * 100 + 0.5),
        config["sway_min_ms"], config["sway_refractory_ms"], config["sample_rate_hz"],
        config["idle_timeout_s"], config["haptic_strength"], config["program_repeat"],
        len(program),
    )  # fmt: skip
    off = _FIXED_SIZE
    for kind, seconds in program:
        struct.pack_into("<BH", out, off, KINDS[kind], seconds)
        off += 3
    out[off] = len(name)
    out[off + 1 : off + 1 + len(name)] = name
    off += 1 + len(name)
    struct.pack_into("<I", out, off, crc32(memoryview(out)[:off]))
    return bytes(out)


def config_crc(config):
    """The CRC of ``encode(config)`` (its last 4 bytes), as written in log HEADERs."""
    data = encode(config)
    return struct.unpack_from("<I", data, len(data) - 4)[0]


def _parse(data):
    """Config dict from well-formed bytes, or a string saying why they are not."""
    size = len(data)
    if size < _MIN_SIZE:
        return "config: too short (%d bytes)" % size
    if data[:4] != MAGIC:
        return "config: not a retrostep config (bad magic)"
    if crc32(data[:-4]) != struct.unpack_from("<I", data, size - 4)[0]:
        return "config: corrupt (CRC mismatch)"
    if data[4] != CONFIG_VERSION:
        return "config: unknown version %d (this firmware reads %d)" % (data[4], CONFIG_VERSION)
    f = struct.unpack_from(_FIXED, data, 0)
    n = f[9]
    if n > MAX_INTERVALS or _FIXED_SIZE + 3 * n + 1 + 4 > size:
        return "config: corrupt (bad interval count %d)" % n
    program = []
    off = _FIXED_SIZE
    for _ in range(n):
        kind, seconds = struct.unpack_from("<BH", data, off)
        # an unknown kind code stays visible to validation as a non-kind string
        program.append((_KIND_NAMES.get(kind, "kind %d" % kind), seconds))
        off += 3
    m = data[off]
    if off + 1 + m + 4 != size:
        return "config: corrupt (bad name length %d)" % m
    raw = data[off + 1 : off + 1 + m]
    for c in raw:
        if not 32 <= c < 127:
            return "config: corrupt (device name is not printable ASCII)"
    cdeg = f[2]
    return {
        "sway_limit_deg": cdeg // 100 if cdeg % 100 == 0 else cdeg / 100,
        "sway_min_ms": f[3],
        "sway_refractory_ms": f[4],
        "sample_rate_hz": f[5],
        "idle_timeout_s": f[6],
        "haptic_strength": f[7],
        "program": program,
        "program_repeat": f[8],
        "device_name": raw.decode(),
    }


def decode(data):
    """``(config, problems)`` from stored bytes; never raises.

    Unusable bytes (short, bad magic, bad CRC, unknown version, bad lengths) give the
    defaults; a readable config keeps its valid fields and each invalid one takes its
    default. ``problems`` is empty only when the bytes were a valid config.
    """
    if not isinstance(data, (bytes, bytearray, memoryview)):
        return defaults(), ["config: expected bytes, got %s" % (type(data).__name__,)]
    try:
        parsed = _parse(bytes(data))
    except (ValueError, TypeError, IndexError, KeyError) as e:  # belt and braces
        parsed = "config: unreadable (%r)" % (e,)
    if isinstance(parsed, str):
        return defaults(), [parsed]
    config = defaults()
    problems = []
    for name in FIELDS:
        p = _check(name, parsed[name])
        if p is None:
            config[name] = parsed[name]
        else:
            problems.append(p + " (default used)")
    return config, problems
