# bluetooth: MicroPython's low-level BLE module for the unix port on the sim board.
#
# The unix port has no radio. This module implements, in Python, the subset of
# MicroPython's documented `bluetooth` API (peripheral role) that the firmware uses, and
# carries every call to the peripheral bridge (retrostep.radio.peripheral_bridge), a
# bumble device on the simulated link. Only the sim launcher puts this directory on
# MICROPYPATH; it never goes onto a device. See docs/simulated-radio.md.
#
# Semantics kept from the ESP32 (NimBLE) port:
#   * BLE() is a singleton; until active(True) every call raises OSError(ENODEV);
#     active(True) without a radio bridge raises OSError(ETIMEDOUT), as a board whose
#     controller never answers.
#   * attribute values live in buffers of 20 bytes unless gatts_set_buffer() says
#     otherwise: a central's longer write is silently truncated; append mode appends
#     and gatts_read() then empties the buffer.
#   * gatts_notify()/gatts_indicate() send whether or not the central subscribed;
#     gatts_write(..., send_update=True) notifies/indicates subscribed centrals only.
#   * _IRQ_GATTS_READ_REQUEST is never raised (the ESP32 does not raise it either).
#   * IRQ data tuples carry addresses as read-only memoryviews.
#   * a central's write is answered only after the IRQ handler for it has returned.
# Deviations (documented in docs/simulated-radio.md): the IRQ handler runs as a soft
# IRQ (micropython.schedule) in the main thread, not in the radio task; the memoryviews
# stay valid after the handler returns; calls are synchronous requests to the bridge.
import _thread
import os
import socket
import sys
import time
from binascii import hexlify, unhexlify

import micropython
import sim_radio_wire as _w
from micropython import const

FLAG_BROADCAST = const(0x0001)
FLAG_READ = const(0x0002)
FLAG_WRITE_NO_RESPONSE = const(0x0004)
FLAG_WRITE = const(0x0008)
FLAG_NOTIFY = const(0x0010)
FLAG_INDICATE = const(0x0020)
FLAG_AUTHENTICATED_SIGNED_WRITE = const(0x0040)
FLAG_AUX_WRITE = const(0x0100)
FLAG_READ_ENCRYPTED = const(0x0200)
FLAG_READ_AUTHENTICATED = const(0x0400)
FLAG_READ_AUTHORIZED = const(0x0800)
FLAG_WRITE_ENCRYPTED = const(0x1000)
FLAG_WRITE_AUTHENTICATED = const(0x2000)
FLAG_WRITE_AUTHORIZED = const(0x4000)

_EIO = const(5)
_ENODEV = const(19)  # what the real port raises while the radio is off
_ETIMEDOUT = const(110)  # the controller did not come up

_QUEUE_MAX = const(64)  # pending IRQ events; the reader waits when it is full
_CALL_TIMEOUT_S = const(10)  # a bridge that does not answer is a dead radio
_IPPROTO_TCP = const(6)  # Linux values; the unix port's socket module has no names for them
_TCP_NODELAY = const(1)


class UUID:
    """A 16-bit (int), 32-bit or 128-bit (string or bytes) UUID; bytes(uuid) is the
    little-endian value, as on the real port."""

    def __init__(self, value):
        if isinstance(value, int):
            if value < 0 or value > 0xFFFF:
                raise ValueError("invalid UUID")
            self._b = bytes((value & 0xFF, value >> 8))
            return
        if isinstance(value, str):
            self._b = _parse_uuid_str(value)
            return
        raw = bytes(value)
        if len(raw) in (2, 4, 16):
            self._b = raw
        else:
            self._b = _parse_uuid_str(raw.decode())

    def __eq__(self, other):
        return isinstance(other, UUID) and self._b == other._b

    def __ne__(self, other):
        return not self.__eq__(other)

    def __hash__(self):
        return hash(self._b)

    def __len__(self):
        return len(self._b)

    def __iter__(self):  # bytes(uuid), bytearray(uuid)
        return iter(self._b)

    def __repr__(self):
        h = hexlify(bytes(reversed(self._b))).decode()
        if len(self._b) <= 4:
            return "UUID(0x" + h + ")"
        return f"UUID('{h[:8]}-{h[8:12]}-{h[12:16]}-{h[16:20]}-{h[20:]}')"


def _parse_uuid_str(s):
    digits = s.replace("-", "")
    if len(digits) > 32:
        raise ValueError("UUID too long")
    if len(digits) < 32:
        raise ValueError("UUID too short")
    try:
        return bytes(reversed(unhexlify(digits)))
    except ValueError:
        raise ValueError("invalid char in UUID") from None


def _buf(data):
    if isinstance(data, str):
        return data.encode()
    return bytes(data)


def _hex(data):
    return hexlify(_buf(data)).decode()


class BLE:
    """The radio. ``BLE()`` always returns the same object."""

    _instance = None

    def __new__(cls):
        if BLE._instance is None:
            self = super().__new__(cls)
            self._irq = None
            self._ctl = None  # control socket while active
            self._ev = None  # events socket while active
            self._lock = _thread.allocate_lock()
            self._queue = []  # events from the reader thread, guarded by _lock
            self._scheduled = False  # a drain is scheduled or running (guarded)
            self._busy = False  # a request to the bridge is in flight (main thread)
            self._deferred = False  # a drain arrived while busy
            self._gen = 0  # bumps at every power cycle: stale reader threads stop
            BLE._instance = self
        return BLE._instance

    def __init__(self):
        pass  # state lives in __new__: BLE() must not reset the singleton

    # -- power -----------------------------------------------------------------------

    def active(self, *args):
        if args:
            if args[0]:
                if self._ctl is None:
                    self._power_on()
            elif self._ctl is not None:
                self._power_off()
        return self._ctl is not None

    def _power_on(self):
        spec = os.getenv(_w.ENV)
        if not spec:
            raise OSError(_ETIMEDOUT)
        try:
            hostport, token = spec.split("/", 1)
            host, port = hostport.rsplit(":", 1)
            addr = socket.getaddrinfo(host, int(port))[0][-1]
        except (ValueError, OSError):
            raise OSError(_ETIMEDOUT) from None
        ctl = ev = None
        try:
            ctl = socket.socket()
            # No Nagle: an IRQ's ack (no reply) followed by the next call's request would
            # wait for the bridge's delayed ACK, ~40 ms per central write.
            ctl.setsockopt(_IPPROTO_TCP, _TCP_NODELAY, 1)
            ctl.connect(addr)
            ctl.settimeout(_CALL_TIMEOUT_S)
            ctl.write(_w.encode({"op": _w.OP_HELLO, "v": _w.VERSION, "token": token}))
            rep = _w.read_frame(ctl)
            if not rep or "r" not in rep:
                raise OSError(_ETIMEDOUT)
            ev = socket.socket()
            ev.connect(addr)
            ev.write(_w.encode({"op": _w.OP_EVENTS, "v": _w.VERSION, "token": token,
                                "session": rep["r"]["session"]}))  # fmt: skip
        except OSError:
            for s in (ctl, ev):
                if s is not None:
                    s.close()
            raise OSError(_ETIMEDOUT) from None
        self._gen += 1
        with self._lock:
            self._queue = []
        self._ctl = ctl
        self._ev = ev
        _thread.start_new_thread(self._reader, (ev, self._gen))

    def _power_off(self):
        ctl, ev = self._ctl, self._ev
        try:
            self._call(_w.OP_OFF)
        except OSError:
            pass
        self._gen += 1
        self._ctl = self._ev = None
        ctl.close()
        ev.close()
        with self._lock:
            self._queue = []

    # -- IRQ delivery ------------------------------------------------------------------

    def irq(self, handler):
        if handler is not None and not callable(handler):
            raise ValueError("invalid handler")
        self._irq = handler

    def _reader(self, sock, gen):
        # Runs in its own thread: only reads and queues, never calls the handler.
        while gen == self._gen:
            try:
                msg = _w.read_frame(sock)
            except (OSError, ValueError):
                msg = None
            if msg is None or gen != self._gen:
                return
            while True:
                with self._lock:
                    if len(self._queue) < _QUEUE_MAX:
                        self._queue.append(msg)
                        start = not self._scheduled
                        self._scheduled = True
                        break
                time.sleep_ms(1)
            while start:
                try:
                    micropython.schedule(self._drain, None)
                    start = False
                except RuntimeError:  # the scheduler queue is full: try again soon
                    time.sleep_ms(1)

    def _drain(self, _arg):
        # Soft IRQ in the main thread. Never while a request is in flight: that request
        # finishes first and schedules us again.
        if self._busy:
            self._deferred = True
            return
        while True:
            with self._lock:
                if not self._queue:
                    self._scheduled = False
                    return
                msg = self._queue.pop(0)
            self._dispatch(msg)

    def _dispatch(self, msg):
        event = msg.get("ev")
        if event is None:
            return
        data = tuple(memoryview(unhexlify(x)) if isinstance(x, str) else x
                     for x in msg.get("d", ()))  # fmt: skip
        handler = self._irq
        result = None
        if handler is not None:
            try:
                result = handler(event, data)
            except Exception as e:  # as the real port: report and carry on
                print("Unhandled exception in IRQ callback handler")
                sys.print_exception(e, sys.stdout)
        if "id" in msg:
            # On the control connection, so the bridge sees the ack before any request
            # the program makes after this handler (never during a request: see _drain).
            ack = {"ack": msg["id"]}
            if isinstance(result, int):
                ack["r"] = result
            ctl = self._ctl
            if ctl is not None:
                try:
                    ctl.write(_w.encode(ack))
                except OSError:
                    pass

    # -- requests to the bridge -------------------------------------------------------

    def _call(self, op, **args):
        ctl = self._ctl
        if ctl is None:
            raise OSError(_ENODEV)
        args["op"] = op
        self._busy = True
        try:
            ctl.write(_w.encode(args))
            rep = _w.read_frame(ctl)
        except (OSError, ValueError):
            rep = None
        finally:
            self._busy = False
            if self._deferred:
                try:
                    micropython.schedule(self._drain, None)
                    self._deferred = False
                except RuntimeError:  # scheduler full: the next call retries
                    pass
        if rep is None:
            raise OSError(_EIO)  # the radio went away
        if "e" in rep:
            raise OSError(rep["e"])
        return rep.get("r")

    # -- configuration -----------------------------------------------------------------

    def config(self, *args, **kwargs):
        if not kwargs:
            if len(args) != 1:
                raise TypeError("must query one param")
            key = args[0]
            if key not in ("mac", "gap_name", "mtu"):
                raise ValueError("unknown config param")
            value = self._call(_w.OP_CONFIG_GET, k=key)
            if key == "mac":
                return (value[0], unhexlify(value[1]))
            if key == "gap_name":
                return unhexlify(value)
            return value
        if args:
            raise TypeError("can't specify pos and kw args")
        values = {}
        for key, value in kwargs.items():
            if key == "gap_name":
                values[key] = _hex(value)
            elif key in ("mtu", "addr_mode", "io"):
                values[key] = int(value)
            elif key in ("bond", "mitm", "le_secure"):
                values[key] = bool(value)
            else:
                raise ValueError("unknown config param")
        self._call(_w.OP_CONFIG_SET, kv=values)

    # -- GAP -------------------------------------------------------------------------

    def gap_advertise(self, interval_us=500000, adv_data=None, *, resp_data=None,
                      connectable=True):  # fmt: skip
        if interval_us is None:
            self._call(_w.OP_ADVERTISE, itvl=None)
            return
        self._call(
            _w.OP_ADVERTISE,
            itvl=int(interval_us),
            adv=None if adv_data is None else _hex(adv_data),
            rsp=None if resp_data is None else _hex(resp_data),
            conn=bool(connectable),
        )

    def gap_disconnect(self, conn_handle):
        return self._call(_w.OP_DISCONNECT, c=int(conn_handle))

    def gattc_exchange_mtu(self, conn_handle):
        # The peripheral may start the exchange too (NimBLE allows it); the result
        # arrives as _IRQ_MTU_EXCHANGED.
        self._call(_w.OP_EXCHANGE_MTU, c=int(conn_handle))

    # -- GATT server -------------------------------------------------------------------

    def gatts_register_services(self, services_definition):
        svcs = []
        for service in services_definition:
            if len(service) != 2:
                raise ValueError("invalid service tuple")
            uuid, characteristics = service
            if not isinstance(uuid, UUID):
                raise ValueError("invalid service UUID")
            chars = []
            for characteristic in characteristics:
                if len(characteristic) < 2 or len(characteristic) > 3:
                    raise ValueError("invalid characteristic tuple")
                if not isinstance(characteristic[0], UUID):
                    raise ValueError("invalid characteristic UUID")
                descs = []
                for descriptor in (characteristic[2] if len(characteristic) > 2 else ()):
                    if len(descriptor) != 2 or not isinstance(descriptor[0], UUID):
                        raise ValueError("invalid descriptor UUID")
                    descs.append([_hex(descriptor[0]), int(descriptor[1])])
                chars.append([_hex(characteristic[0]), int(characteristic[1]), descs])
            svcs.append([_hex(uuid), chars])
        handles = self._call(_w.OP_REGISTER, svcs=svcs)
        return tuple(tuple(h) for h in handles)

    def gatts_read(self, value_handle):
        return unhexlify(self._call(_w.OP_READ, h=int(value_handle)))

    def gatts_write(self, value_handle, data, send_update=False):
        self._call(_w.OP_WRITE, h=int(value_handle), d=_hex(data), upd=bool(send_update))

    def gatts_notify(self, conn_handle, value_handle, data=None):
        self._call(_w.OP_NOTIFY, c=int(conn_handle), h=int(value_handle),
                   d=None if data is None else _hex(data))  # fmt: skip

    def gatts_indicate(self, conn_handle, value_handle, data=None):
        self._call(_w.OP_INDICATE, c=int(conn_handle), h=int(value_handle),
                   d=None if data is None else _hex(data))  # fmt: skip

    def gatts_set_buffer(self, value_handle, length, append=False):
        self._call(_w.OP_SET_BUFFER, h=int(value_handle), n=int(length), app=bool(append))
