"""Session log records: one codec for the firmware (writing) and the host (reading).

A session log is a sequence of framed records, little-endian throughout
(``docs/log-format.md`` has the same layout with the size budget and the reasoning)::

    offset  size  field
    0       2     SYNC   0xA5 0x5A
    2       1     type   record type (below)
    3       1     len    payload length, 0..255
    4       len   payload
    4+len   4     crc    CRC-32 (zlib / binascii.crc32) of bytes 2 .. 4+len-1
                         (type, len and payload), u32

A frame is ``len + 8`` bytes. A reader looks for SYNC, checks that the whole frame is
there and that its CRC matches; otherwise it moves on by one byte and looks again. A
damaged record therefore costs only itself, and a record cut short by a power cut is
reported as a torn tail. Records are in write order, not strictly in time order
(batched steps and seconds are written when their batch closes): sort by ``t``.

Times ``t`` are milliseconds since the session started, u32. Payloads by type:

``HEADER`` (1), 22 + n bytes::

    0   u8   log format version (LOG_VERSION); the first payload byte in every version
    1   u32  session id
    5   u32  wall-clock start, seconds since 2000-01-01T00:00:00Z, 0 = unknown
    9   u32  sample rate, mHz
    13  u16  sway limit, 0.01 degree
    15  u8   mounting / axis-map code (0 = default mounting; see hardware/)
    16  u8   config version (config.CONFIG_VERSION)
    17  u32  config CRC (config.config_crc)
    21  u8   n, length of the firmware version string, 0..32
    22  n    firmware version, ASCII

``STEP`` (2), 7 bytes, one step with its confidence (for detailed logs)::

    0   u32  t, initial contact
    4   i8   direction, +1 forward / -1 backward
    5   u16  direction confidence, 0..1000

``STEPS`` (3), 4 + 2k bytes, k = 1..125 steps (the encoder closes a batch at 32)::

    0   u32  t0, ms
    4   u16  per step: bit 15 = backward, bits 0..14 = ms since the previous step of
             the batch (the first: since t0; the encoder writes t0 = first step, so 0)

``SECONDS`` (4), 4 + 8k bytes, k = 1..31 consecutive seconds (the encoder closes a
batch at 10); second i covers [t0 + 1000 i, t0 + 1000 (i + 1))::

    0   u32  t0, start of the first second, ms
    4   8 bytes per second:
        0  u8   steps: bits 0..3 forward, bits 4..7 backward (each saturates at 15)
        1  u16  cadence, steps/min x 10
        3  u16  roll range, 0.1 degree
        5  u16  RMS roll rate, 0.1 degree/s
        7  u8   flags: bit 0 walking, bits 1..2 interval kind (0 none, 1 forward,
                2 backward, 3 rest), bits 3..7 reserved (written 0, ignored)

``WINDOW`` (9), 5 + 4s + 2k bytes: what the firmware writes every 2 s while a session
is open, so that a power cut loses at most about 2 s of what the app produced (s = 0..15
per-second summaries, k = 0..40 steps; either may be 0)::

    0       u32  t: start of the first second summarized, ms; with s = 0, the time
                 the steps are counted from
    4       u8   s
    5 + 4i  4 bytes per second i, covering [t + 1000 i, t + 1000 (i + 1)):
            0  u8  steps: bits 0..3 forward, bits 4..7 backward (each saturates at 15)
            1  u8  cadence, steps/min (0: not walking; saturates at 255)
            2  u8  roll range, 0.1 degree (saturates at 25.5 degrees)
            3  u8  RMS roll rate, 0.5 degree/s (saturates at 127.5 degree/s)
    5 + 4s  u16  per step: bit 15 = backward, bits 0..14 = ms since the previous step
                 of the record (the first: since t)

``SWAY_ALERT`` (5), 7 bytes: u32 t, i8 side (+1 right / -1 left), i16 roll deviation
(0.1 degree; its size, as the pipeline reports it).

``INTERVAL`` (6), 7 bytes: u32 t, u8 new interval kind (0 none: coaching over,
1 forward, 2 backward, 3 rest), u8 index of the interval in the program, u8
repetition (both from 0).

``NOTE`` (7), 10 bytes: u32 t, u16 code (NOTE_*), i32 value (meaning per code).

``END`` (8), 23 bytes::

    0   u32  t
    4   u32  forward steps
    8   u32  backward steps
    12  u16  sway alerts
    14  u32  walking seconds
    18  u32  backward-interval compliance seconds
    22  u8   reason (END_*): idle, button, power, recovered after a power cut, ...

Versioning: ``LOG_VERSION`` is written in the HEADER. New record types do not bump it
(readers skip and count types they do not know). New fields may be appended to the end
of a fixed-size payload without a bump (readers ignore trailing bytes); any other change
of a layout or of a field's meaning bumps it. A reader that meets a HEADER of another
version does not guess: it skips that session's records.

Writing allocates nothing per record: :class:`Encoder` owns one frame buffer and one
view of it per frame length it has produced (made the first time), computes the CRC in
16-bit halves (no slicing, no big integers on a 31-bit port) and returns the view. Reading
(:func:`decode`, :func:`decode_report`) may allocate; it is for the host and for
recovery after a power cut.
"""

import struct
from array import array

from .compat import const

try:
    from binascii import crc32 as _crc32_c
except ImportError:  # a port built without binascii.crc32: the slow path below
    _crc32_c = None  # type: ignore[assignment]

LOG_VERSION = const(1)
SYNC0 = const(0xA5)
SYNC1 = const(0x5A)
SYNC = b"\xa5\x5a"
OVERHEAD = const(8)  # SYNC, type, len, CRC
MAX_PAYLOAD = const(255)
MAX_FRAME = const(263)

HEADER = const(1)
STEP = const(2)
STEPS = const(3)
SECONDS = const(4)
SWAY_ALERT = const(5)
INTERVAL = const(6)
NOTE = const(7)
END = const(8)
WINDOW = const(9)

TYPE_NAMES = {
    HEADER: "header",
    STEP: "step",
    STEPS: "steps",
    SECONDS: "seconds",
    SWAY_ALERT: "sway_alert",
    INTERVAL: "interval",
    NOTE: "note",
    END: "end",
    WINDOW: "window",
}

# Interval kinds (INTERVAL records, SECONDS flags, the coaching program in config).
KIND_NONE = const(0)
KIND_FORWARD = const(1)
KIND_BACKWARD = const(2)
KIND_REST = const(3)
KIND_NAMES = {
    KIND_NONE: "none",
    KIND_FORWARD: "forward",
    KIND_BACKWARD: "backward",
    KIND_REST: "rest",
}

# NOTE codes.
NOTE_STORAGE_FULL = const(1)  # value: free bytes left
NOTE_CONFIG_DEFAULTS = const(2)  # stored config unusable, defaults in use; value: problems
NOTE_EVENTS_DROPPED = const(3)  # pipeline event queue overflowed; value: events lost
NOTE_LOW_BATTERY = const(4)  # value: battery mV

# END reasons.
END_UNKNOWN = const(0)
END_IDLE = const(1)  # no walking for the configured idle timeout
END_BUTTON = const(2)
END_POWER = const(3)  # battery too low, orderly shutdown
END_RECOVERED = const(4)  # written at the next boot: the session was cut by power loss
END_STORAGE_FULL = const(5)
END_NAMES = {
    END_UNKNOWN: "unknown",
    END_IDLE: "idle",
    END_BUTTON: "button",
    END_POWER: "power",
    END_RECOVERED: "recovered",
    END_STORAGE_FULL: "storage_full",
}

STEP_PAYLOAD = const(7)
SWAY_ALERT_PAYLOAD = const(7)
INTERVAL_PAYLOAD = const(7)
NOTE_PAYLOAD = const(10)
END_PAYLOAD = const(23)
HEADER_FIXED = const(22)
FIRMWARE_MAX = const(32)
STEP_ENTRY = const(2)
SECOND_ENTRY = const(8)
STEPS_MAX = const(125)  # (255 - 4) // 2
SECONDS_MAX = const(31)  # (255 - 4) // 8
STEPS_BATCH = const(32)  # encoder default: ~19 s of walking
SECONDS_BATCH = const(10)
STEP_DT_MAX = const(0x7FFF)  # ms; a longer pause starts a new STEPS batch
WINDOW_FIXED = const(5)
WINDOW_SECOND = const(4)
WINDOW_SECONDS_MAX = const(15)
WINDOW_STEPS_MAX = const(40)  # encoder limit; the format allows (255 - 5 - 4 s) // 2


# CRC-32 (reflected, polynomial 0xEDB88320), a nibble at a time, with the 32-bit state
# kept as two 16-bit halves: every intermediate is a small int on any port.
def _nibble_tables():
    lo = array("H", bytes(32))
    hi = array("H", bytes(32))
    for i in range(16):
        c = i
        for _ in range(4):
            c = (c >> 1) ^ 0xEDB88320 if c & 1 else c >> 1
        lo[i] = c & 0xFFFF
        hi[i] = c >> 16
    return lo, hi


_TLO, _THI = _nibble_tables()


def crc32_into(buf, start, end, at):
    """Store the CRC-32 of ``buf[start:end]`` as u32 LE at ``buf[at:at + 4]``.

    Same value as ``binascii.crc32``; allocates nothing (no slice, no big int).
    """
    lo = 0xFFFF
    hi = 0xFFFF
    tlo = _TLO
    thi = _THI
    for i in range(start, end):
        lo ^= buf[i]
        k = lo & 15
        lo = ((lo >> 4) | ((hi & 15) << 12)) ^ tlo[k]
        hi = (hi >> 4) ^ thi[k]
        k = lo & 15
        lo = ((lo >> 4) | ((hi & 15) << 12)) ^ tlo[k]
        hi = (hi >> 4) ^ thi[k]
    struct.pack_into("<HH", buf, at, lo ^ 0xFFFF, hi ^ 0xFFFF)


def crc32(data):
    """CRC-32 of ``data`` as an int (binascii's when the port has it)."""
    if _crc32_c is not None:
        return _crc32_c(data) & 0xFFFFFFFF
    b = bytearray(len(data) + 4)
    b[: len(data)] = data
    crc32_into(b, 0, len(data), len(data))
    return struct.unpack_from("<I", b, len(data))[0]


def _u8(v):
    return 0 if v < 0 else 255 if v > 255 else v


def _u16(v):
    return 0 if v < 0 else 65535 if v > 65535 else v


def _i16(v):
    return -32768 if v < -32768 else 32767 if v > 32767 else v


class Encoder:
    """Encodes records into one preallocated frame buffer.

    Every method returns a memoryview of the finished frame (write it to the log file
    as is), valid until the next call on this encoder, or None when a batch method had
    nothing to emit. ``add_step`` / ``add_second`` and the fixed-size records allocate
    nothing; ``header`` may (it runs once per session).

    Steps and seconds are batched: ``add_step`` and ``add_second`` return a STEPS or
    SECONDS frame when a batch closes (full, or the new item cannot join it) and None
    otherwise; ``flush_steps`` / ``flush_seconds`` close a partial batch. Flush both
    before ``end`` (and, to bound what a power cut loses, flush steps whenever a
    SECONDS frame comes out).
    """

    def __init__(self, steps_batch=STEPS_BATCH, seconds_batch=SECONDS_BATCH):
        if not 2 <= steps_batch <= STEPS_MAX or not 2 <= seconds_batch <= SECONDS_MAX:
            raise ValueError("batch sizes: steps 2..125, seconds 2..31")
        self.steps_batch = steps_batch
        self.seconds_batch = seconds_batch
        self.buf = bytearray(MAX_FRAME)
        mv = memoryview(self.buf)
        self._mv = mv
        # One view per frame length this encoder emits: slicing a memoryview allocates.
        # The fixed sizes now; batch lengths the first time each occurs (an encoder that
        # writes only some record families holds only their views).
        views = {}
        for n in (STEP_PAYLOAD, NOTE_PAYLOAD, END_PAYLOAD):
            views[n + OVERHEAD] = mv[: n + OVERHEAD]
        self._views = views
        self._steps = bytearray(STEP_ENTRY * steps_batch)  # pending STEPS entries
        self._seconds = bytearray(SECOND_ENTRY * seconds_batch)  # pending SECONDS entries
        self._wsec = bytearray(WINDOW_SECOND * WINDOW_SECONDS_MAX)  # pending WINDOW seconds
        self._wsteps = bytearray(STEP_ENTRY * WINDOW_STEPS_MAX)  # pending WINDOW steps
        self.reset()

    def reset(self):
        """Drop pending batches (a new session)."""
        self._n_steps = 0
        self._steps_t0 = 0
        self._steps_last = 0
        self._n_seconds = 0
        self._seconds_t0 = 0
        self._ws = 0  # WINDOW: seconds pending, the first one's start
        self._ws_t0 = 0
        self._wk = 0  # WINDOW: steps pending, the first and the last one's time
        self._wk_t0 = 0
        self._wk_last = 0

    def _finish(self, kind, length):
        buf = self.buf
        buf[0] = SYNC0
        buf[1] = SYNC1
        buf[2] = kind
        buf[3] = length
        crc32_into(buf, 2, 4 + length, 4 + length)
        n = length + OVERHEAD
        v = self._views.get(n)
        if v is None:  # the first frame of this length: made once, then reused
            v = self._mv[:n]
            self._views[n] = v
        return v

    # -- batched records (the walking path) --------------------------------------------

    def add_step(self, t, direction):
        """Queue one step (t ms, direction +1 / -1); a STEPS frame or None."""
        out = None
        n = self._n_steps
        if n:
            dt = t - self._steps_last
            if dt < 0 or dt > STEP_DT_MAX:
                out = self._emit_steps()
                n = 0
        if n == 0:
            self._steps_t0 = t
            dt = 0
        if direction < 0:
            dt |= 0x8000
        struct.pack_into("<H", self._steps, STEP_ENTRY * n, dt)
        n += 1
        self._n_steps = n
        self._steps_last = t
        if n >= self.steps_batch:  # n == 1 after an early emit, so never two frames
            out = self._emit_steps()
        return out

    def flush_steps(self):
        """Close a partial STEPS batch: its frame, or None if no step is pending."""
        if self._n_steps:
            return self._emit_steps()
        return None

    def _emit_steps(self):
        n = self._n_steps
        buf = self.buf
        pending = self._steps
        struct.pack_into("<I", buf, 4, self._steps_t0)
        for i in range(STEP_ENTRY * n):
            buf[8 + i] = pending[i]
        self._n_steps = 0
        return self._finish(STEPS, 4 + STEP_ENTRY * n)

    def add_second(self, t, forward, backward, cadence, roll_range, roll_rate_rms, walking,
                   interval):  # fmt: skip
        """Queue a one-second summary; a SECONDS frame or None.

        ``t`` start of the second (ms), ``forward`` / ``backward`` steps in it,
        ``cadence`` steps/min x 10, ``roll_range`` 0.1 deg, ``roll_rate_rms`` 0.1 deg/s,
        ``walking`` bool, ``interval`` kind (KIND_*). Seconds of one batch are exactly
        1000 ms apart; any other ``t`` closes the batch and starts a new one.
        """
        out = None
        n = self._n_seconds
        if n and t != self._seconds_t0 + 1000 * n:
            out = self._emit_seconds()
            n = 0
        if n == 0:
            self._seconds_t0 = t
        forward = 0 if forward < 0 else 15 if forward > 15 else forward
        backward = 0 if backward < 0 else 15 if backward > 15 else backward
        flags = (interval & 3) << 1
        if walking:
            flags |= 1
        struct.pack_into(
            "<BHHHB", self._seconds, SECOND_ENTRY * n, forward | (backward << 4),
            _u16(cadence), _u16(roll_range), _u16(roll_rate_rms), flags,
        )  # fmt: skip
        n += 1
        self._n_seconds = n
        if n >= self.seconds_batch:
            out = self._emit_seconds()
        return out

    def flush_seconds(self):
        """Close a partial SECONDS batch: its frame, or None if none is pending."""
        if self._n_seconds:
            return self._emit_seconds()
        return None

    def _emit_seconds(self):
        n = self._n_seconds
        buf = self.buf
        pending = self._seconds
        struct.pack_into("<I", buf, 4, self._seconds_t0)
        for i in range(SECOND_ENTRY * n):
            buf[8 + i] = pending[i]
        self._n_seconds = 0
        return self._finish(SECONDS, 4 + SECOND_ENTRY * n)

    # -- the WINDOW record (what the firmware writes every 2 s) -------------------------

    def window_second(self, t, forward, backward, cadence, roll_range, roll_rate_rms):
        """Queue the summary of the second that starts at ``t`` (ms); a WINDOW frame or
        None (a frame when the record is full, or when this second cannot join it).

        ``cadence`` steps/min, ``roll_range`` 0.1 degree, ``roll_rate_rms`` 0.1 degree/s
        (the pipeline's units; stored in 0.5 degree/s). Seconds of one record are
        consecutive; pending steps must not start before the first second.
        """
        out = None
        s = self._ws
        if s and t != self._ws_t0 + 1000 * s:
            out = self._emit_window()
            s = 0
        elif s == 0 and self._wk:
            d = self._wk_t0 - t
            if d < 0 or d > STEP_DT_MAX:
                out = self._emit_window()
        if s == 0:
            self._ws_t0 = t
        forward = 0 if forward < 0 else 15 if forward > 15 else forward
        backward = 0 if backward < 0 else 15 if backward > 15 else backward
        rate = (roll_rate_rms + 2) // 5
        e = self._wsec
        i = WINDOW_SECOND * s
        e[i] = forward | (backward << 4)
        e[i + 1] = 0 if cadence < 0 else 255 if cadence > 255 else cadence
        e[i + 2] = 0 if roll_range < 0 else 255 if roll_range > 255 else roll_range
        e[i + 3] = 0 if rate < 0 else 255 if rate > 255 else rate
        s += 1
        self._ws = s
        if s >= WINDOW_SECONDS_MAX:  # s == 1 after an early emit, so never two frames
            out = self._emit_window()
        return out

    def window_step(self, t, direction):
        """Queue one step (t ms, direction +1 / -1) for the next WINDOW; a frame or None.
        Steps of one record are in time order, at most 32.767 s apart."""
        out = None
        k = self._wk
        if k:
            dt = t - self._wk_last
            if dt < 0 or dt > STEP_DT_MAX:
                out = self._emit_window()
                k = 0
        if k == 0:
            dt = 0  # the first entry's time is set when the record is written
            if self._ws:
                d = t - self._ws_t0
                if d < 0 or d > STEP_DT_MAX:
                    out = self._emit_window()
            self._wk_t0 = t
        if direction < 0:
            dt |= 0x8000
        struct.pack_into("<H", self._wsteps, STEP_ENTRY * k, dt)
        k += 1
        self._wk = k
        self._wk_last = t
        if k >= WINDOW_STEPS_MAX:
            out = self._emit_window()
        return out

    def flush_window(self):
        """Write what is pending as a WINDOW frame, or None if nothing is."""
        if self._ws or self._wk:
            return self._emit_window()
        return None

    def _emit_window(self):
        s = self._ws
        k = self._wk
        t = self._ws_t0 if s else self._wk_t0
        buf = self.buf
        struct.pack_into("<IB", buf, 4, t, s)
        n = WINDOW_SECOND * s
        src = self._wsec
        for i in range(n):
            buf[9 + i] = src[i]
        o = 9 + n
        if k:
            steps = self._wsteps
            d = self._wk_t0 - t  # 0..STEP_DT_MAX, checked when the items were queued
            steps[0] = d & 0xFF
            steps[1] = (steps[1] & 0x80) | (d >> 8)
            for i in range(STEP_ENTRY * k):
                buf[o + i] = steps[i]
        self._ws = 0
        self._wk = 0
        return self._finish(WINDOW, WINDOW_FIXED + n + STEP_ENTRY * k)

    # -- single records ----------------------------------------------------------------

    def step(self, t, direction, confidence):
        """One STEP record (detailed logs): direction +1 / -1, confidence 0..1000."""
        struct.pack_into("<IbH", self.buf, 4, t, -1 if direction < 0 else 1, _u16(confidence))
        return self._finish(STEP, STEP_PAYLOAD)

    def sway_alert(self, t, side, roll):
        """SWAY_ALERT: side +1 right / -1 left, roll deviation in 0.1 degree."""
        struct.pack_into("<Ibh", self.buf, 4, t, -1 if side < 0 else 1, _i16(roll))
        return self._finish(SWAY_ALERT, SWAY_ALERT_PAYLOAD)

    def interval(self, t, kind, index, repeat):
        """INTERVAL: the coaching program moved to interval ``index`` of repetition
        ``repeat`` (both from 0), of ``kind`` (KIND_*; KIND_NONE: coaching over)."""
        struct.pack_into("<IBBB", self.buf, 4, t, kind & 3, _u8(index), _u8(repeat))
        return self._finish(INTERVAL, INTERVAL_PAYLOAD)

    def note(self, t, code, value=0):
        """NOTE: a flag (NOTE_*) with an i32 value."""
        struct.pack_into("<IHi", self.buf, 4, t, _u16(code), value)
        return self._finish(NOTE, NOTE_PAYLOAD)

    def end(self, t, forward, backward, alerts, walking_s, compliance_s, reason):
        """END with the session totals; ``reason`` is END_*."""
        struct.pack_into(
            "<IIIHIIB", self.buf, 4, t, forward, backward, _u16(alerts), walking_s,
            compliance_s, _u8(reason),
        )  # fmt: skip
        return self._finish(END, END_PAYLOAD)

    def header(self, session_id, wall_start, fs_mhz, sway_limit_cdeg, mounting,
               config_version, config_crc, firmware):  # fmt: skip
        """HEADER, the first record of a session. ``firmware``: ASCII, at most 32 chars;
        ``wall_start``: seconds since 2000-01-01 UTC or 0; ``config_crc``: u32."""
        fw = firmware.encode() if isinstance(firmware, str) else bytes(firmware)
        if len(fw) > FIRMWARE_MAX:
            raise ValueError("firmware version longer than 32 bytes")
        buf = self.buf
        struct.pack_into(
            "<BIIIHBBIB", buf, 4, LOG_VERSION, session_id, wall_start, fs_mhz,
            _u16(sway_limit_cdeg), _u8(mounting), _u8(config_version), config_crc, len(fw),
        )  # fmt: skip
        for i in range(len(fw)):
            buf[4 + HEADER_FIXED + i] = fw[i]
        return self._finish(HEADER, HEADER_FIXED + len(fw))


# -- reading ---------------------------------------------------------------------------


def _ascii(b):
    return "".join(chr(c) if 32 <= c < 127 else "?" for c in b)


def _parse(kind, p):
    """Fields of a version-LOG_VERSION payload, or None if it is too short."""
    n = len(p)
    if kind == STEPS:
        if n < 4 or (n - 4) % STEP_ENTRY:
            return None
        t0 = struct.unpack_from("<I", p, 0)[0]
        t = t0
        steps = []
        for off in range(4, n, STEP_ENTRY):
            e = p[off] | (p[off + 1] << 8)
            t += e & STEP_DT_MAX
            steps.append((t, -1 if e & 0x8000 else 1))
        return {"t": t0, "steps": steps}
    if kind == SECONDS:
        if n < 4 or (n - 4) % SECOND_ENTRY:
            return None
        t0 = struct.unpack_from("<I", p, 0)[0]
        seconds = []
        for i in range((n - 4) // SECOND_ENTRY):
            c, cad, rng, rms, flags = struct.unpack_from("<BHHHB", p, 4 + SECOND_ENTRY * i)
            seconds.append({
                "t": t0 + 1000 * i, "forward": c & 15, "backward": c >> 4,
                "cadence": cad, "roll_range": rng, "roll_rate_rms": rms,
                "walking": bool(flags & 1), "interval": (flags >> 1) & 3,
            })  # fmt: skip
        return {"t": t0, "seconds": seconds}
    if kind == WINDOW:
        if n < WINDOW_FIXED:
            return None
        t0, ns = struct.unpack_from("<IB", p, 0)
        o = WINDOW_FIXED + WINDOW_SECOND * ns
        if o > n or (n - o) % STEP_ENTRY:
            return None
        seconds = []
        for i in range(ns):
            j = WINDOW_FIXED + WINDOW_SECOND * i
            c = p[j]
            seconds.append({
                "t": t0 + 1000 * i, "forward": c & 15, "backward": c >> 4,
                "cadence": p[j + 1] * 10, "roll_range": p[j + 2], "roll_rate_rms": p[j + 3] * 5,
                "walking": c != 0, "interval": None,
            })  # fmt: skip
        t = t0
        steps = []
        for off in range(o, n, STEP_ENTRY):
            e = p[off] | (p[off + 1] << 8)
            t += e & STEP_DT_MAX
            steps.append((t, -1 if e & 0x8000 else 1))
        return {"t": t0, "seconds": seconds, "steps": steps}
    if kind == STEP and n >= STEP_PAYLOAD:
        t, d, c = struct.unpack_from("<IbH", p, 0)
        return {"t": t, "direction": d, "confidence": c}
    if kind == SWAY_ALERT and n >= SWAY_ALERT_PAYLOAD:
        t, side, roll = struct.unpack_from("<Ibh", p, 0)
        return {"t": t, "side": side, "roll": roll}
    if kind == INTERVAL and n >= INTERVAL_PAYLOAD:
        t, k, index, repeat = struct.unpack_from("<IBBB", p, 0)
        return {"t": t, "kind": k, "index": index, "repeat": repeat}
    if kind == NOTE and n >= NOTE_PAYLOAD:
        t, code, value = struct.unpack_from("<IHi", p, 0)
        return {"t": t, "code": code, "value": value}
    if kind == END and n >= END_PAYLOAD:
        t, fwd, bwd, alerts, walking, compliance, reason = struct.unpack_from("<IIIHIIB", p, 0)
        return {"t": t, "forward": fwd, "backward": bwd, "alerts": alerts,
                "walking_s": walking, "compliance_s": compliance, "reason": reason}  # fmt: skip
    if kind == HEADER and n >= HEADER_FIXED:
        f = struct.unpack_from("<BIIIHBBIB", p, 0)
        if HEADER_FIXED + f[8] > n:
            return None
        return {
            "version": f[0], "session_id": f[1], "wall_start": f[2], "fs_mhz": f[3],
            "sway_limit_cdeg": f[4], "mounting": f[5], "config_version": f[6],
            "config_crc": f[7], "firmware": _ascii(p[HEADER_FIXED : HEADER_FIXED + f[8]]),
        }  # fmt: skip
    return None


def decode_report(data):
    """Read a log: records, damage and whether it ended cleanly. Never raises on bytes.

    Returns a dict:

    * ``records``: list of ``(type, fields)`` in file order (see :func:`decode`);
    * ``version``: LOG_VERSION of the first HEADER, or None without one;
    * ``skipped_bytes``: bytes before the last good frame that belong to no good frame
      (corruption), in ``bad_spans`` separate runs;
    * ``torn_bytes``: bytes after the last good frame (a record cut by a power cut);
    * ``skipped_records``: frames with a good CRC that were not decoded: unknown type,
      payload too short for its type, or a session of another log version;
    * ``ended_cleanly``: the last record is END.
    """
    data = bytes(data)
    size = len(data)
    records = []
    version = None
    supported = True  # records before any HEADER are read with this version's layouts
    skipped = 0
    spans = 0
    unknown = 0
    last_end = 0
    p = data.find(SYNC)
    while 0 <= p <= size - OVERHEAD:
        length = data[p + 3]
        end = p + OVERHEAD + length
        if end > size or crc32(data[p + 2 : end - 4]) != struct.unpack_from("<I", data, end - 4)[0]:
            p = data.find(SYNC, p + 1)
            continue
        if p > last_end:
            skipped += p - last_end
            spans += 1
        last_end = end
        kind = data[p + 2]
        payload = data[p + 4 : end - 4]
        if kind == HEADER and length >= 1:
            v = payload[0]
            if version is None:
                version = v
            supported = v == LOG_VERSION
            if not supported:
                records.append((HEADER, {"version": v}))
                p = data.find(SYNC, end)
                continue
        fields = _parse(kind, payload) if supported else None
        if fields is None:
            unknown += 1
        else:
            records.append((kind, fields))
        p = data.find(SYNC, end)
    return {
        "records": records,
        "version": version,
        "skipped_bytes": skipped,
        "bad_spans": spans,
        "torn_bytes": size - last_end,
        "skipped_records": unknown,
        "ended_cleanly": bool(records) and records[-1][0] == END,
    }


def decode(data):
    """Records of a log as a list of ``(type, fields)``; damaged bytes are skipped.

    ``fields`` is a dict named as in the module docstring: STEPS give ``t`` and
    ``steps``, a list of ``(t, direction)``; SECONDS give ``t`` and ``seconds``, a list
    of dicts (``t``, ``forward``, ``backward``, ``cadence`` in steps/min x 10,
    ``roll_range`` in 0.1 degree, ``roll_rate_rms`` in 0.1 degree/s, ``walking``,
    ``interval``); WINDOW gives ``t``, ``seconds`` (the same dicts, in the same units,
    with ``interval`` None: the INTERVAL records say it) and ``steps``.
    """
    return decode_report(data)["records"]


def steps_of(records):
    """All steps of decoded records (STEP and STEPS) as ``(t, direction)``, by time."""
    out = []
    for kind, f in records:
        if kind == STEPS or kind == WINDOW:
            out.extend(f["steps"])
        elif kind == STEP:
            out.append((f["t"], f["direction"]))
    out.sort()
    return out


def seconds_of(records):
    """All per-second summaries of decoded records, by time."""
    out = []
    for kind, f in records:
        if kind == SECONDS or kind == WINDOW:
            out.extend(f["seconds"])
    out.sort(key=lambda s: s["t"])
    return out
