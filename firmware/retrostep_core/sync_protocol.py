"""Sync protocol v1: one codec for the device (server) and the host (client).

``docs/sync-protocol.md`` has the byte tables, the authentication exchange, the state
machine and the reasoning; this docstring is the summary.

GATT: the retrostep service (``SERVICE_UUID``) has a control point (write: requests), a
data characteristic (notify: responses) and a status characteristic (read / notify: the
live counters, :func:`status_payload`). The standard Device Information (0x180A) and
Battery (0x180F) services sit next to it.

Messages travel in fragments, one per ATT write or notification, at most ``mtu - 3``
bytes each (:func:`fragment_room`)::

    fragment   0   u8  ctrl: bit 7 START (first fragment of a message), bits 0..6 seq
               1.. the next bytes of the message
    request    0   u16 n: bytes that follow (2 + body)
               2   u8  op
               3   u8  request id (the host's counter; echoed)
               4   body
    response   0   u16 n: bytes that follow (3 + body)
               2   u8  op (of the request; 0 for a framing error nobody can own)
               3   u8  request id
               4   u8  status (OK or ERR_*)
               5   body

``seq`` counts the fragments a side sends, mod 128, from 0 at every connection. A
continuation must carry the previous fragment's seq + 1; a START may carry any (the
receiver resynchronises on it). A START while a message is incomplete abandons it.

Integers are little-endian. Nothing here allocates per sample (it is not on the walking
path); values stay within 31 bits except session sizes and times, which are u32 on the
wire and small in practice.
"""

import hashlib
import struct

from .compat import const

PROTOCOL_VERSION = const(1)

# 128-bit UUIDs: one random base, the service and its characteristics differ in bytes 2..3.
SERVICE_UUID = "cf7b0001-69b5-4029-9adc-f1d41447b0c6"
CONTROL_UUID = "cf7b0002-69b5-4029-9adc-f1d41447b0c6"  # write, write without response
DATA_UUID = "cf7b0003-69b5-4029-9adc-f1d41447b0c6"  # notify: response fragments
STATUS_UUID = "cf7b0004-69b5-4029-9adc-f1d41447b0c6"  # read, notify: status_payload

# Bluetooth SIG 16-bit UUIDs.
DEVICE_INFO_UUID = const(0x180A)
MANUFACTURER_NAME_UUID = const(0x2A29)
MODEL_NUMBER_UUID = const(0x2A24)
FIRMWARE_REVISION_UUID = const(0x2A26)
BATTERY_SERVICE_UUID = const(0x180F)
BATTERY_LEVEL_UUID = const(0x2A19)

ATT_MTU_MIN = const(23)  # every BLE link starts here
ATT_MTU_MAX = const(247)  # what the device offers (244-byte values, one LL packet with DLE)
ATT_HEADER = const(3)  # opcode + handle in a notification or a write

# -- framing ----------------------------------------------------------------------------

START = const(0x80)
SEQ_MASK = const(0x7F)
REQUEST_HEADER = const(4)  # u16 n, op, id
RESPONSE_HEADER = const(5)  # u16 n, op, id, status
REQUEST_MAX = const(160)  # a whole request message, header included (SET_CONFIG <= 90)
RESPONSE_MAX = const(65537)  # u16 n + 65535
READ_MAX = const(32768)  # most data bytes one READ returns
LIST_MAX = const(32)  # most sessions one LIST returns
NONCE_LEN = const(16)
PROOF_LEN = const(32)
DIGEST_LEN = const(32)
MESSAGE_TEXT_MAX = const(120)  # longest human-readable text in an error body

# -- operations -------------------------------------------------------------------------

OP_NONE = const(0)  # responses to fragments that belong to no request
OP_INFO = const(0x01)  # public
OP_AUTH_BEGIN = const(0x02)  # public
OP_AUTH_FINISH = const(0x03)  # public
OP_LIST = const(0x10)
OP_READ = const(0x11)
OP_VERIFY = const(0x12)
OP_ACK = const(0x13)
OP_SET_TIME = const(0x20)
OP_GET_CONFIG = const(0x21)
OP_SET_CONFIG = const(0x22)
OP_STATUS = const(0x23)
OP_BUZZ = const(0x24)

OP_NAMES = {
    OP_NONE: "none",
    OP_INFO: "info",
    OP_AUTH_BEGIN: "auth_begin",
    OP_AUTH_FINISH: "auth_finish",
    OP_LIST: "list",
    OP_READ: "read",
    OP_VERIFY: "verify",
    OP_ACK: "ack",
    OP_SET_TIME: "set_time",
    OP_GET_CONFIG: "get_config",
    OP_SET_CONFIG: "set_config",
    OP_STATUS: "status",
    OP_BUZZ: "buzz",
}
PUBLIC_OPS = (OP_INFO, OP_AUTH_BEGIN, OP_AUTH_FINISH)

# -- status codes -----------------------------------------------------------------------

OK = const(0)
ERR_FRAMING = const(1)  # fragments that do not make a message (gap, stray continuation)
ERR_TOO_LARGE = const(2)  # a request longer than REQUEST_MAX
ERR_UNKNOWN_OP = const(3)
ERR_MALFORMED = const(4)  # a body of the wrong size or shape for its op
ERR_UNAUTHENTICATED = const(5)  # a protected op before AUTH_FINISH succeeded
ERR_NOT_PROVISIONED = const(6)  # the device has no key: only public ops work
ERR_AUTH_FAILED = const(7)  # wrong proof; the device nonce is spent
ERR_SEQUENCE = const(8)  # out of order: AUTH_FINISH without AUTH_BEGIN, ACK without VERIFY
ERR_NO_SESSION = const(9)
ERR_RANGE = const(10)  # READ offset past the end
ERR_INCOMPLETE = const(11)  # ACK of a session that has no END yet
ERR_DIGEST = const(12)  # ACK digest differs from the one VERIFY gave
ERR_INVALID = const(13)  # a value out of range; SET_CONFIG: the body lists the problems
ERR_STORAGE = const(14)  # the filesystem failed (a READ stream ends with this)
ERR_INTERNAL = const(15)  # a bug caught on the device; it keeps running
ERR_UNSUPPORTED = const(16)  # this device cannot do that (SET_TIME on a board without a clock)

STATUS_NAMES = {
    OK: "ok",
    ERR_FRAMING: "framing",
    ERR_TOO_LARGE: "too_large",
    ERR_UNKNOWN_OP: "unknown_op",
    ERR_MALFORMED: "malformed",
    ERR_UNAUTHENTICATED: "unauthenticated",
    ERR_NOT_PROVISIONED: "not_provisioned",
    ERR_AUTH_FAILED: "auth_failed",
    ERR_SEQUENCE: "sequence",
    ERR_NO_SESSION: "no_session",
    ERR_RANGE: "range",
    ERR_INCOMPLETE: "incomplete",
    ERR_DIGEST: "digest",
    ERR_INVALID: "invalid",
    ERR_STORAGE: "storage",
    ERR_INTERNAL: "internal",
    ERR_UNSUPPORTED: "unsupported",
}

# LIST / VERIFY session flags
SESSION_SYNCED = const(1)  # acknowledged: the device may evict it
SESSION_COMPLETE = const(2)  # ends with END: never changes again
SESSION_RECORDING = const(4)  # the open session (grows while the wearer walks)

# INFO flags
INFO_PROVISIONED = const(1)
INFO_AUTHENTICATED = const(2)
INFO_CLOCK_SET = const(4)

EPOCH_2000_UNIX = const(946684800)  # 2000-01-01T00:00:00Z in Unix seconds
TIME_MIN = const(757382400)  # 2024-01-01T00:00:00Z since 2000: earlier is refused
BUZZ_MAX = const(10)

# -- authentication ---------------------------------------------------------------------

HOST_LABEL = b"retrostep host proof v1"
DEVICE_LABEL = b"retrostep device proof v1"
KEY_LEN = const(32)


def hmac_sha256(key, msg):
    """HMAC-SHA256 (RFC 2104) on ``hashlib.sha256`` (MicroPython has no ``hmac``)."""
    if len(key) > 64:
        key = hashlib.sha256(key).digest()
    ipad = bytearray(64)
    opad = bytearray(64)
    for i in range(64):
        k = key[i] if i < len(key) else 0
        ipad[i] = k ^ 0x36
        opad[i] = k ^ 0x5C
    inner = hashlib.sha256(ipad)
    inner.update(msg)
    outer = hashlib.sha256(opad)
    outer.update(inner.digest())
    return outer.digest()


def equal(a, b):
    """Compare two byte strings in time that depends only on their lengths."""
    if len(a) != len(b):
        return False
    d = 0
    for i in range(len(a)):
        d |= a[i] ^ b[i]
    return d == 0


def _proof(label, key, device_id, host_nonce, device_nonce):
    msg = bytearray(label)
    msg.append(len(device_id))
    msg.extend(device_id)
    msg.extend(host_nonce)
    msg.extend(device_nonce)
    return hmac_sha256(key, msg)


def host_proof(key, device_id, host_nonce, device_nonce):
    """What the host sends in AUTH_FINISH: HMAC(key, HOST_LABEL | n | id | Nh | Nd)."""
    return _proof(HOST_LABEL, key, device_id, host_nonce, device_nonce)


def device_proof(key, device_id, host_nonce, device_nonce):
    """What the device answers AUTH_FINISH with: the same over DEVICE_LABEL."""
    return _proof(DEVICE_LABEL, key, device_id, host_nonce, device_nonce)


# -- messages and fragments -------------------------------------------------------------


def request(op, rid, body=b""):
    """A whole request message (before fragmenting)."""
    n = len(body)
    out = bytearray(REQUEST_HEADER + n)
    struct.pack_into("<HBB", out, 0, 2 + n, op, rid & 0xFF)
    out[REQUEST_HEADER:] = body
    return bytes(out)


def response(op, rid, status, body=b""):
    """A whole response message (before fragmenting)."""
    n = len(body)
    out = bytearray(RESPONSE_HEADER + n)
    struct.pack_into("<HBBB", out, 0, 3 + n, op, rid & 0xFF, status)
    out[RESPONSE_HEADER:] = body
    return bytes(out)


def parse_request(msg):
    """``(op, id, body)`` of a whole request message, or None if it is not one."""
    if len(msg) < REQUEST_HEADER or struct.unpack_from("<H", msg, 0)[0] + 2 != len(msg):
        return None
    return msg[2], msg[3], bytes(msg[REQUEST_HEADER:])


def parse_response(msg):
    """``(op, id, status, body)`` of a whole response message, or None."""
    if len(msg) < RESPONSE_HEADER or struct.unpack_from("<H", msg, 0)[0] + 2 != len(msg):
        return None
    return msg[2], msg[3], msg[4], bytes(msg[RESPONSE_HEADER:])


def fragment_room(mtu):
    """Message bytes one fragment carries at this ATT MTU (``mtu - 3`` minus ctrl)."""
    if mtu < ATT_MTU_MIN:
        mtu = ATT_MTU_MIN
    return mtu - ATT_HEADER - 1


def fragments(message, mtu, seq=0):
    """The fragments of one message as a list of bytes; seq starts at ``seq`` (the
    sender's next seq, which advances by ``len(result)``)."""
    room = fragment_room(mtu)
    out = []
    pos = 0
    n = len(message)
    while pos < n:
        k = n - pos if n - pos < room else room
        f = bytearray(1 + k)
        f[0] = (seq & SEQ_MASK) | (START if pos == 0 else 0)
        f[1:] = message[pos : pos + k]
        out.append(bytes(f))
        seq += 1
        pos += k
    return out


# Reassembler.feed results
MORE = const(0)  # a message is in progress
DONE = const(1)  # a message is complete: message()
GAP = const(2)  # a continuation with the wrong seq, or with no message in progress
BAD = const(3)  # a START without a whole header, a length too small, or too many bytes
TOO_LONG = const(4)  # a START declaring a message longer than the receiver takes
SKIPPED = const(5)  # a continuation of a message already reported broken: ignored


class Reassembler:
    """Joins fragments into messages in one buffer of ``max_len`` bytes.

    :meth:`feed` returns MORE, DONE, GAP, BAD, TOO_LONG or SKIPPED. ``lost`` is set when
    that feed abandoned an incomplete message (a START came before its end); ``op`` /
    ``rid`` then name the abandoned message, and after the feed they name the current
    one (0 when unknown). ``header`` is REQUEST_HEADER or RESPONSE_HEADER: a START must
    hold at least that much.
    """

    def __init__(self, max_len, header):
        self.buf = bytearray(max_len)
        self.max_len = max_len
        self.header = header
        self.reset()

    def reset(self):
        self.size = 0  # whole message length, 0: none in progress
        self.have = 0
        self.seq = 0  # seq the next continuation must carry
        self.skipping = False
        self.lost = False
        self.lost_op = 0
        self.lost_rid = 0
        self.op = 0
        self.rid = 0

    def in_progress(self):
        return self.size > 0 and self.have < self.size

    def feed(self, frag):
        self.lost = False
        n = len(frag)
        if n == 0:
            return BAD
        ctrl = frag[0]
        seq = ctrl & SEQ_MASK
        if ctrl & START:
            if self.in_progress():
                self.lost = True
                self.lost_op = self.op
                self.lost_rid = self.rid
            self.size = 0
            self.have = 0
            self.skipping = False
            self.seq = (seq + 1) & SEQ_MASK
            if n - 1 < self.header:
                self.op = frag[3] if n > 3 else 0
                self.rid = 0
                self.skipping = True
                return BAD
            self.op = frag[3]
            self.rid = frag[4]
            size = 2 + (frag[1] | (frag[2] << 8))
            if size < self.header:
                self.skipping = True
                return BAD
            if size > self.max_len:
                self.skipping = True
                return TOO_LONG
            if n - 1 > size:
                self.skipping = True
                return BAD
            self.size = size
            self.buf[0 : n - 1] = frag[1:]
            self.have = n - 1
            return DONE if self.have == size else MORE
        # a continuation
        if self.skipping:
            self.seq = (seq + 1) & SEQ_MASK
            return SKIPPED
        if not self.in_progress() or seq != self.seq:
            broken = self.in_progress()
            if not broken:
                self.op = 0
                self.rid = 0
            self.size = 0
            self.have = 0
            self.skipping = broken  # the rest of a broken message is not reported again
            self.seq = (seq + 1) & SEQ_MASK
            return GAP
        self.seq = (seq + 1) & SEQ_MASK
        k = n - 1
        if self.have + k > self.size:
            self.size = 0
            self.have = 0
            self.skipping = True
            return BAD
        self.buf[self.have : self.have + k] = frag[1:]
        self.have += k
        return DONE if self.have == self.size else MORE

    def message(self):
        """The complete message (bytes) after DONE."""
        return bytes(self.buf[: self.size])

    def partial(self):
        """What has arrived of the message in progress (bytes)."""
        return bytes(self.buf[: self.have])


# -- bodies -----------------------------------------------------------------------------


def _ascii(b):
    return "".join(chr(c) if 32 <= c < 127 else "?" for c in b)


def _short(s, limit):
    b = s.encode() if isinstance(s, str) else bytes(s)
    return b[:limit]


def text_body(text):
    """An error body: printable ASCII, at most MESSAGE_TEXT_MAX bytes."""
    b = _short(text, MESSAGE_TEXT_MAX)
    return bytes(bytearray(c if 32 <= c < 127 else 63 for c in b))


def body_text(body):
    return _ascii(body)


def encode_info(flags, device_id, firmware, model, name):
    """INFO body: u8 version, u8 flags, u16 REQUEST_MAX, u16 READ_MAX, then four
    length-prefixed strings: device id (bytes), firmware, model, device name (ASCII,
    16 bytes at most each)."""
    out = bytearray(struct.pack("<BBHH", PROTOCOL_VERSION, flags, REQUEST_MAX, READ_MAX))
    for item in (device_id, firmware, model, name):
        b = _short(item, 16)
        out.append(len(b))
        out.extend(b)
    return bytes(out)


def decode_info(body):
    """Dict of an INFO body, or None if it is malformed. Later versions may append."""
    if len(body) < 6:
        return None
    version, flags, req_max, read_max = struct.unpack_from("<BBHH", body, 0)
    pos = 6
    items = []
    for _ in range(4):
        if pos >= len(body) or pos + 1 + body[pos] > len(body):
            return None
        n = body[pos]
        items.append(bytes(body[pos + 1 : pos + 1 + n]))
        pos += 1 + n
    return {
        "version": version,
        "provisioned": bool(flags & INFO_PROVISIONED),
        "authenticated": bool(flags & INFO_AUTHENTICATED),
        "clock_set": bool(flags & INFO_CLOCK_SET),
        "request_max": req_max,
        "read_max": read_max,
        "device_id": items[0],
        "firmware": _ascii(items[1]),
        "model": _ascii(items[2]),
        "name": _ascii(items[3]),
    }


LIST_ENTRY = const(9)  # u32 id, u32 size, u8 flags


def encode_list(entries, more):
    """LIST body: u8 n, u8 more (1: ask again from the last id + 1), then n entries of
    u32 id, u32 size, u8 flags (SESSION_*)."""
    out = bytearray(2 + LIST_ENTRY * len(entries))
    out[0] = len(entries)
    out[1] = 1 if more else 0
    for i, (sid, size, flags) in enumerate(entries):
        struct.pack_into("<IIB", out, 2 + LIST_ENTRY * i, sid, size, flags)
    return bytes(out)


def decode_list(body):
    """``(entries, more)`` with entries ``[(id, size, flags)]``, or None."""
    if len(body) < 2 or len(body) != 2 + LIST_ENTRY * body[0]:
        return None
    out = []
    for i in range(body[0]):
        out.append(struct.unpack_from("<IIB", body, 2 + LIST_ENTRY * i))
    return out, bool(body[1])


def encode_verify(sid, size, flags, digest):
    """VERIFY body: u32 id, u32 size, u8 flags, 32-byte SHA-256 of the first size bytes."""
    return struct.pack("<IIB", sid, size, flags) + bytes(digest)


def decode_verify(body):
    if len(body) != 9 + DIGEST_LEN:
        return None
    sid, size, flags = struct.unpack_from("<IIB", body, 0)
    return sid, size, flags, bytes(body[9:])


# -- status characteristic --------------------------------------------------------------

STATUS_VERSION = const(1)
STATUS_SIZE = const(20)  # one notification even at the default MTU (23 - 3)
STATES = ("idle", "session", "deep_sleep", "stopped")
STATUS_COUNTS = const(1)  # the step / alert counts are filled in (authenticated view)
STATUS_STORAGE_FULL = const(2)
STATUS_UNSYNCED = const(4)  # complete sessions wait for the host
STATUS_CLOCK_SET = const(8)
STATUS_CONFIG_DEFAULTS = const(16)  # the stored config was unusable: defaults in use
STATUS_PROVISIONED = const(32)
_UNKNOWN = const(255)


def _sat(v, top):
    return 0 if v < 0 else top if v > top else v


def status_payload(state, flags, battery_pct, forward, backward, alerts, unsynced,
                   unsynced_bytes, free_bytes, errors):  # fmt: skip
    """The 20-byte status value::

        0   u8   STATUS_VERSION
        1   u8   state: 0 idle, 1 session, 2 deep_sleep, 3 stopped, 255 unknown
        2   u8   flags (STATUS_*)
        3   u8   battery %, 255 unknown
        4   u32  forward steps since boot     } 0 unless STATUS_COUNTS
        8   u32  backward steps since boot    }
        12  u16  sway alerts since boot       }
        14  u8   complete sessions not yet acknowledged (saturates at 255)
        15  u16  their size, KiB (rounded up; saturates)
        17  u16  free log storage, KiB (65535: unknown or more)
        19  u8   task failures since boot (saturates)
    """
    code = _UNKNOWN
    for i in range(len(STATES)):
        if STATES[i] == state:
            code = i
    if not flags & STATUS_COUNTS:
        forward = backward = alerts = 0
    return struct.pack(
        "<BBBBIIHBHHB", STATUS_VERSION, code, flags & 0xFF, _sat(battery_pct, 255),
        _sat(forward, 0xFFFFFFFF), _sat(backward, 0xFFFFFFFF), _sat(alerts, 0xFFFF),
        _sat(unsynced, 255), _sat((unsynced_bytes + 1023) // 1024, 0xFFFF),
        0xFFFF if free_bytes is None else _sat(free_bytes // 1024, 0xFFFF),
        _sat(errors, 255),
    )  # fmt: skip


def parse_status(data):
    """Dict of a status value, or None if it is too short. Later versions may append."""
    if len(data) < STATUS_SIZE:
        return None
    f = struct.unpack_from("<BBBBIIHBHHB", data, 0)
    flags = f[2]
    return {
        "version": f[0],
        "state": STATES[f[1]] if f[1] < len(STATES) else "unknown",
        "counts": bool(flags & STATUS_COUNTS),
        "storage_full": bool(flags & STATUS_STORAGE_FULL),
        "unsynced_data": bool(flags & STATUS_UNSYNCED),
        "clock_set": bool(flags & STATUS_CLOCK_SET),
        "config_defaults": bool(flags & STATUS_CONFIG_DEFAULTS),
        "provisioned": bool(flags & STATUS_PROVISIONED),
        "battery_pct": None if f[3] == _UNKNOWN else f[3],
        "forward": f[4],
        "backward": f[5],
        "sway_alerts": f[6],
        "unsynced_sessions": f[7],
        "unsynced_kib": f[8],
        "free_kib": None if f[9] == 0xFFFF else f[9],
        "errors": f[10],
    }


# LiPo at rest, mV -> %: approximate (curves vary by cell); hardware/power.md warns at
# about 3.65 V, roughly 20 % left.
_BATTERY_CURVE = ((3300, 0), (3500, 5), (3600, 10), (3650, 20), (3700, 35), (3800, 55),
                  (3900, 70), (4000, 80), (4100, 90), (4200, 100))  # fmt: skip


def battery_percent(mv):
    """Battery level 0..100 % from the cell voltage (mV), or None if unknown (mv <= 0)."""
    if mv <= 0:
        return None
    c = _BATTERY_CURVE
    if mv <= c[0][0]:
        return 0
    for i in range(1, len(c)):
        v1, p1 = c[i]
        if mv <= v1:
            v0, p0 = c[i - 1]
            return p0 + ((mv - v0) * (p1 - p0) + (v1 - v0) // 2) // (v1 - v0)
    return 100


# -- advertising ------------------------------------------------------------------------

AD_FLAGS = const(0x01)
AD_UUID128_COMPLETE = const(0x07)
AD_NAME_SHORT = const(0x08)
AD_NAME_COMPLETE = const(0x09)
AD_MANUFACTURER = const(0xFF)
AD_MAX = const(31)
COMPANY_ID = const(0xFFFF)  # the SIG's value for devices without a company identifier
ADV_MAGIC = const(0x72)  # "r": tells retrostep manufacturer data from other 0xFFFF users
ADV_UNSYNCED = const(1)  # complete sessions wait for the host
ADV_PROVISIONED = const(2)
ADV_STORAGE_FULL = const(4)
ADV_RECORDING = const(8)  # a session is open


def uuid_bytes(uuid):
    """16 bytes of a 128-bit UUID string, least significant first (as on the air)."""
    h = uuid.replace("-", "")
    if len(h) != 32:
        raise ValueError("not a 128-bit UUID: %r" % (uuid,))
    out = bytearray(16)
    for i in range(16):
        out[15 - i] = int(h[2 * i : 2 * i + 2], 16)
    return bytes(out)


def uuid_str(b):
    """The UUID string of 16 bytes least significant first."""
    h = "".join("%02x" % b[15 - i] for i in range(16))
    return "%s-%s-%s-%s-%s" % (h[:8], h[8:12], h[12:16], h[16:20], h[20:])


def _ad(kind, data):
    return bytes((len(data) + 1, kind)) + bytes(data)


def manufacturer_data(flags, unsynced):
    """The manufacturer-specific data after the company id: magic, version, flags
    (ADV_*), unsynced sessions (saturates at 255)."""
    return bytes((ADV_MAGIC, PROTOCOL_VERSION, flags & 0xFF, _sat(unsynced, 255)))


def parse_manufacturer(data):
    """Dict of :func:`manufacturer_data` bytes (without the company id), or None if
    they are not retrostep's."""
    if len(data) < 4 or data[0] != ADV_MAGIC:
        return None
    return {
        "version": data[1],
        "unsynced_data": bool(data[2] & ADV_UNSYNCED),
        "provisioned": bool(data[2] & ADV_PROVISIONED),
        "storage_full": bool(data[2] & ADV_STORAGE_FULL),
        "recording": bool(data[2] & ADV_RECORDING),
        "unsynced_sessions": data[3],
    }


def advertising_payload(flags, unsynced):
    """Advertising data, 29 bytes: flags (LE general discoverable, no BR/EDR), the
    service UUID, manufacturer data. The name goes in the scan response."""
    m = struct.pack("<H", COMPANY_ID) + manufacturer_data(flags, unsynced)
    return _ad(AD_FLAGS, b"\x06") + _ad(AD_UUID128_COMPLETE, uuid_bytes(SERVICE_UUID)) + \
        _ad(AD_MANUFACTURER, m)  # fmt: skip


def scan_response_payload(name):
    """Scan response: the complete name (shortened to fit 31 bytes)."""
    b = _short(name, AD_MAX - 2)
    kind = AD_NAME_COMPLETE if len(b) == len(_short(name, 255)) else AD_NAME_SHORT
    return _ad(kind, b)


def parse_advertising(data):
    """Dict of AD structures: ``flags``, ``name``, ``uuids`` (128-bit, strings),
    ``manufacturer`` ({company id: bytes}), ``retrostep`` (:func:`parse_manufacturer` of
    ours, or None). Malformed trailing bytes end the parse."""
    flags = None
    name = None
    uuids = []  # type: list[str]
    manufacturer = {}  # type: dict[int, bytes]
    ours = None
    pos = 0
    n = len(data)
    while pos < n:
        length = data[pos]
        if length == 0 or pos + 1 + length > n:
            break
        kind = data[pos + 1]
        value = bytes(data[pos + 2 : pos + 1 + length])
        if kind == AD_FLAGS and value:
            flags = value[0]
        elif kind in (AD_NAME_COMPLETE, AD_NAME_SHORT):
            name = _ascii(value)
        elif kind in (AD_UUID128_COMPLETE, 0x06):
            for i in range(0, len(value) - 15, 16):
                uuids.append(uuid_str(value[i : i + 16]))
        elif kind == AD_MANUFACTURER and len(value) >= 2:
            company = value[0] | (value[1] << 8)
            manufacturer[company] = value[2:]
            if company == COMPANY_ID and ours is None:
                ours = parse_manufacturer(value[2:])
        pos += 1 + length
    return {"flags": flags, "name": name, "uuids": uuids, "manufacturer": manufacturer,
            "retrostep": ours}
