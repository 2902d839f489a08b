# The wire between the sim board's `bluetooth` stand-in (MicroPython, this directory on
# MICROPYPATH) and the peripheral bridge (CPython, retrostep.radio.peripheral_bridge).
# One module for both sides: plain Python that both runtimes accept.
#
# Transport: two TCP connections to 127.0.0.1 (address and token in the environment
# variable RETROSTEP_RADIO as "HOST:PORT/TOKEN"):
#   control  MicroPython -> bridge requests, each answered by exactly one reply, and
#            acks (never answered)
#   events   bridge -> MicroPython radio events (the IRQs)
#
# Frame: 4-byte big-endian length, then that many bytes of UTF-8 JSON (one object).
# Binary values (attribute data, advertising payloads, addresses, UUIDs) are lowercase
# hex strings. Addresses are in display order (MSB first), UUIDs little-endian (the
# byte order of bytes(bluetooth.UUID(...))).
#
# Control:  {"op": OP, ...arguments}  ->  {"r": result}  or  {"e": errno}
#   first request on a connection: {"op": "hello", "v": VERSION, "token": T}
#                                  -> {"r": {"session": S}}
#   events connection opens with:  {"op": "events", "v": VERSION, "token": T, "session": S}
# Events:   {"ev": IRQ, "d": [data...]}; with "id": N the bridge waits for {"ack": N}
#           on the control connection (sent once the IRQ handler has returned), like an
#           ESP32 whose radio task runs the handler before it answers the central. Acks
#           travel with the requests so that they keep their order: a write the handler
#           saw is answered before a gap_disconnect() the program calls afterwards.
import json
import struct

VERSION = 1
ENV = "RETROSTEP_RADIO"
MAX_FRAME = 1 << 20  # far above any legal frame (attribute values are <= 512 bytes)

# Control operations.
OP_HELLO = "hello"
OP_EVENTS = "events"
OP_OFF = "off"  # active(False): the radio resets, then the events connection closes
OP_CONFIG_GET = "cfg?"
OP_CONFIG_SET = "cfg="
OP_ADVERTISE = "adv"
OP_REGISTER = "reg"
OP_READ = "read"
OP_WRITE = "write"
OP_NOTIFY = "notify"
OP_INDICATE = "indicate"
OP_SET_BUFFER = "setbuf"
OP_DISCONNECT = "disc"
OP_EXCHANGE_MTU = "mtu"


def encode(obj):
    """One frame (bytes) holding ``obj``."""
    body = json.dumps(obj).encode()
    return struct.pack(">I", len(body)) + body


def frame_length(header):
    """Body length from a 4-byte header; ValueError when it cannot be a frame."""
    n = struct.unpack(">I", header)[0]
    if n > MAX_FRAME:
        raise ValueError("frame too long")
    return n


def decode(body):
    return json.loads(body)


def read_frame(stream):
    """Next object from a blocking stream with ``read(n)`` (a MicroPython socket);
    None at end of stream."""
    header = stream.read(4)
    if not header or len(header) < 4:
        return None
    n = frame_length(header)
    body = stream.read(n) if n else b""
    if len(body) < n:
        return None
    return decode(body)
