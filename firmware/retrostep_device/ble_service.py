"""The GATT server on MicroPython's low-level ``bluetooth`` module: the only module of
the firmware that touches the radio (``docs/sync-protocol.md``, "On the air").

Services:

* Device Information (0x180A): manufacturer, model and firmware revision strings;
* Battery (0x180F): Battery Level (0x2A19, %, read / notify);
* retrostep (``sync_protocol.SERVICE_UUID``): control point (write, write without
  response; a 256-byte buffer, since the default of 20 bytes would cut every fragment
  above MTU 23), data (notify: response fragments), status (read / notify: the 20-byte
  ``sync_protocol.status_payload``; step counts only while the central is
  authenticated).

Advertising: flags, the service UUID and retrostep manufacturer data (unsynced flag and
count, provisioned, recording) in the advertising data; the name in the scan response.
One central at a time; advertising resumes when it leaves.

The IRQ handler only copies (a control-point write is read out at once, so the next
write cannot overwrite it), appends to a bounded queue and sets a flag. One asyncio task
feeds the :class:`sync_server.SyncServer` and notifies its fragments at the negotiated
MTU, yielding between bursts so the walking loop keeps its pace; a notification the
stack has no buffer for (``OSError``, ENOMEM on NimBLE) is retried after a few ms, and
the link is dropped if the stack stays full for seconds. A second task refreshes the
status and battery values once a second and the advertising when the unsynced count
changes.

:func:`start` wires all of this to a set-up app; :class:`BleService` takes its parts.
"""

import asyncio
import json
import os

from retrostep_core import config as cfg
from retrostep_core import haptic_patterns as hp
from retrostep_core import sync_protocol as sp
from retrostep_core.compat import const

from .sync_server import SyncServer

_IRQ_CENTRAL_CONNECT = const(1)
_IRQ_CENTRAL_DISCONNECT = const(2)
_IRQ_GATTS_WRITE = const(3)
_IRQ_MTU_EXCHANGED = const(21)

_FLAG_READ = const(0x0002)
_FLAG_WRITE_NO_RESPONSE = const(0x0004)
_FLAG_WRITE = const(0x0008)
_FLAG_NOTIFY = const(0x0010)

CONTROL_BUFFER = const(256)  # >= ATT_MTU_MAX - 3: one whole fragment per write
QUEUE_MAX = const(16)  # IRQ events waiting for the worker
_QUEUE_WRITES = const(12)  # writes beyond this are dropped; (dis)connects always fit
BURST = const(6)  # notifications per turn of the worker before it yields
RETRY_MS = const(8)  # wait when the stack has no buffer for a notification
GIVE_UP_MS = const(4000)  # stack full that long: drop the link, the host resumes later
STATUS_MS = const(1000)  # status / battery / advertising refresh period
ADV_INTERVAL_US = 500000  # 0.5 s: found within a second or two, ~20 uA on average
FIND_ME_PERIOD_MS = const(3500)  # FIND_ME lasts 2.7 s; the player adds a 400 ms gap
IDENTITY_FILE = "/device.json"  # written by `retrostep flash` (host: flash/provision.py)

MANUFACTURER = "retrostep"
MODEL = "retrostep clip (XIAO ESP32-S3)"

try:
    _Flag = asyncio.ThreadSafeFlag  # type: ignore[attr-defined]
except AttributeError:  # CPython (tests): an Event that clears itself when waited on

    class _Flag(asyncio.Event):  # type: ignore[no-redef]
        async def wait(self):  # type: ignore[override]
            await super().wait()
            self.clear()


try:
    _sleep_ms = asyncio.sleep_ms  # type: ignore[attr-defined]
except AttributeError:  # CPython

    def _sleep_ms(ms):  # type: ignore[misc]
        return asyncio.sleep(ms / 1000)


class BleService:
    """The radio side of sync. ``bt``: the ``bluetooth`` module (or a stand-in with the
    same API); ``server``: a :class:`SyncServer`; ``live``: the app's Live counters.
    :meth:`start` registers the services, starts advertising and the two tasks."""

    def __init__(self, bt, server, live, firmware="", model=MODEL,
                 adv_interval_us=ADV_INTERVAL_US):  # fmt: skip
        self.bt = bt
        self.server = server
        self.live = live
        self.firmware = firmware
        self.model = model
        self.adv_interval_us = adv_interval_us
        self.ble = None
        self.h_control = -1  # attribute handles, known once start() registered the services
        self.h_data = -1
        self.h_status = -1
        self.h_battery = -1
        self.conn = None  # handle of the connected central
        self.mtu = sp.ATT_MTU_MIN
        self.running = False
        self.overflow = 0  # writes dropped because the queue was full
        self.notified = 0
        self.retries = 0
        self.dropped_links = 0  # links given up because the stack stayed full
        self._events = []  # (event, conn, value) from the IRQ handler
        self._flag = _Flag()
        self._pending = None  # a fragment the stack had no room for yet
        self._stalled = 0  # ms spent retrying it
        self._adv = None
        self._gap_name = None
        self._status = None
        self._battery = -1
        self._session = None
        self._tasks = []

    # -- setup ---------------------------------------------------------------------------

    def _services(self):
        U = self.bt.UUID
        dis = (U(sp.DEVICE_INFO_UUID), (
            (U(sp.MANUFACTURER_NAME_UUID), _FLAG_READ),
            (U(sp.MODEL_NUMBER_UUID), _FLAG_READ),
            (U(sp.FIRMWARE_REVISION_UUID), _FLAG_READ),
        ))  # fmt: skip
        bas = (U(sp.BATTERY_SERVICE_UUID), ((U(sp.BATTERY_LEVEL_UUID), _FLAG_READ | _FLAG_NOTIFY),))
        rs = (U(sp.SERVICE_UUID), (
            (U(sp.CONTROL_UUID), _FLAG_WRITE | _FLAG_WRITE_NO_RESPONSE),
            (U(sp.DATA_UUID), _FLAG_NOTIFY),
            (U(sp.STATUS_UUID), _FLAG_READ | _FLAG_NOTIFY),
        ))  # fmt: skip
        return (dis, bas, rs)

    def start(self):
        """Radio on, services registered, values written, advertising, tasks running."""
        ble = self.bt.BLE()
        self.ble = ble
        ble.active(True)
        self._gap_name = self.server.name()
        ble.config(gap_name=self._gap_name, mtu=sp.ATT_MTU_MAX)
        ble.irq(self._irq)
        ((h_mfr, h_model, h_fw), (self.h_battery,),
         (self.h_control, self.h_data, self.h_status)) = ble.gatts_register_services(
            self._services())  # fmt: skip
        ble.gatts_set_buffer(self.h_control, CONTROL_BUFFER)
        ble.gatts_write(h_mfr, MANUFACTURER)
        ble.gatts_write(h_model, self.model)
        ble.gatts_write(h_fw, self.firmware)
        self.running = True
        self.refresh()
        self._tasks = [asyncio.create_task(self._work()), asyncio.create_task(self._watch())]
        return self

    async def stop(self):
        self.running = False
        self._flag.set()
        for t in self._tasks:
            t.cancel()
        self._tasks = []
        if self.conn is not None:
            self.server.disconnect()
            self.conn = None
        if self.ble is not None:
            self.ble.active(False)

    def connected(self):
        """A central is connected (the app must not deep-sleep under it)."""
        return self.conn is not None

    # -- IRQ: copy, queue, flag, return ----------------------------------------------------

    def _irq(self, event, data):
        if event == _IRQ_GATTS_WRITE:
            if data[1] == self.h_control:
                if len(self._events) >= _QUEUE_WRITES:
                    self.overflow += 1
                else:
                    self._events.append((event, data[0], self.ble.gatts_read(data[1])))  # type: ignore[union-attr]
        elif event == _IRQ_CENTRAL_CONNECT or event == _IRQ_CENTRAL_DISCONNECT:
            if len(self._events) < QUEUE_MAX:
                self._events.append((event, data[0], None))
        elif event == _IRQ_MTU_EXCHANGED:
            if len(self._events) < QUEUE_MAX:
                self._events.append((event, data[0], data[1]))
        else:
            return
        self._flag.set()

    # -- the worker ------------------------------------------------------------------------

    async def _work(self):
        while self.running:
            if not self._events and not (self.conn is not None and
                                         (self._pending or self.server.busy())):  # fmt: skip
                await self._flag.wait()
            handled = len(self._events)
            while self._events:
                self._event(*self._events.pop(0))
            if handled:  # a request may have changed it: authenticated, ACK, SET_TIME
                self._show_status()
            await self._send()
            await _sleep_ms(0)

    def _event(self, event, conn, value):
        ble = self.ble
        if event == _IRQ_CENTRAL_CONNECT:
            if self.conn is not None:
                try:
                    ble.gap_disconnect(conn)  # type: ignore[union-attr]  # one at a time
                except OSError:
                    pass
                return
            self.conn = conn
            self.mtu = sp.ATT_MTU_MIN
            self._pending = None
            self._stalled = 0
            self.server.connect()
            try:  # the central usually asks first; asking too is allowed and harmless
                ble.gattc_exchange_mtu(conn)  # type: ignore[union-attr]
            except (OSError, AttributeError):
                pass
        elif event == _IRQ_CENTRAL_DISCONNECT:
            if conn == self.conn:
                self.conn = None
                self._pending = None
                self.server.disconnect()
                self._adv = None  # advertising stopped with the connection: start again
                self.refresh()
        elif conn == self.conn:
            if event == _IRQ_GATTS_WRITE:
                self.server.receive(value)
            elif event == _IRQ_MTU_EXCHANGED:
                self.mtu = value

    async def _send(self):
        """Up to BURST notifications; retries while the stack is out of buffers."""
        n = 0
        while self.conn is not None and n < BURST:
            frag = self._pending
            if frag is None:
                frag = self.server.next_fragment(self.mtu)
                if frag is None:
                    return
            try:
                self.ble.gatts_notify(self.conn, self.h_data, frag)  # type: ignore[union-attr]
            except OSError:
                self._pending = frag
                self.retries += 1
                if self._stalled >= GIVE_UP_MS:
                    self._give_up()
                    return
                await _sleep_ms(RETRY_MS)
                self._stalled += RETRY_MS
                if self._events:  # a disconnect or a new write: handle it first
                    return
                continue
            self._pending = None
            self._stalled = 0
            self.notified += 1
            n += 1

    def _give_up(self):
        self.dropped_links += 1
        conn = self.conn
        try:
            self.ble.gap_disconnect(conn)  # type: ignore[union-attr]
        except OSError:
            pass
        # the disconnect IRQ follows; until then nothing more is sent on this link
        self._pending = None
        self.server.disconnect()

    # -- status, battery, advertising ------------------------------------------------------

    async def _watch(self):
        while self.running:
            await _sleep_ms(STATUS_MS)
            self.refresh()

    def refresh(self):
        """Bring the status and battery values and the advertising up to date."""
        sid = self.live.session_id
        if sid != self._session:  # a session opened or closed: the listing changed
            self._session = sid
            self.server.summary(True)
        self._show_status()
        pct = sp.battery_percent(self.live.battery_mv)
        if pct is not None and pct != self._battery:
            self._battery = pct
            self.ble.gatts_write(self.h_battery, bytes((pct,)), True)  # type: ignore[union-attr]
        if self.conn is None:
            name = self.server.name()
            if name != self._gap_name:  # renamed by a SET_CONFIG
                self._gap_name = name
                self.ble.config(gap_name=name)  # type: ignore[union-attr]
            adv = self.server.advertising()
            if adv != self._adv:
                self._adv = adv
                self.ble.gap_advertise(self.adv_interval_us, adv_data=adv[0],  # type: ignore[union-attr]
                                       resp_data=adv[1])  # fmt: skip

    def _show_status(self):
        value = self.server.status(self.conn is not None and self.server.authenticated)
        if value != self._status:
            self._status = value
            self.ble.gatts_write(self.h_status, value, True)  # type: ignore[union-attr]


# -- wiring to the app ----------------------------------------------------------------------


def load_identity(path):
    """``(device id bytes, name, key bytes)`` from the provisioning file, or
    ``(b"", None, None)`` if there is none or it is unusable (then only INFO works)."""
    try:
        with open(path) as f:
            d = json.loads(f.read())
        key = bytes.fromhex(d["key"])
        dev = str(d["id"]).encode()
        name = str(d["name"])
    except (OSError, ValueError, KeyError, TypeError):
        return b"", None, None
    if len(key) != sp.KEY_LEN or len(dev) > 16:
        return b"", None, None
    return dev, name, key


class ConfigFile:
    """The stored config: ``load()`` the dict (defaults if missing or unusable),
    ``save(data)`` validated bytes, replacing the file atomically (tmp + rename)."""

    def __init__(self, path):
        self.path = path

    def load(self):
        try:
            with open(self.path, "rb") as f:
                data = f.read()
        except OSError:
            return cfg.defaults()
        return cfg.decode(data)[0]

    def save(self, data):
        tmp = self.path + ".tmp"
        with open(tmp, "wb") as f:
            f.write(data)
        try:
            os.rename(tmp, self.path)
        except OSError:  # a filesystem whose rename does not replace
            try:
                os.remove(self.path)
            except OSError:
                pass
            os.rename(tmp, self.path)


def _random_bytes(n):
    return os.urandom(n)


def start(app, board, bt=None, identity_path=None, firmware=None):
    """Start BLE for an app whose ``setup()`` has run (it needs ``app.store``,
    ``app.live``, ``app.config_path``, ``app.haptics``). Returns the running service.

    ``bt``: the ``bluetooth`` module (imported here if None). The key and device id come
    from ``identity_path`` (default ``board.fs_root + "/device.json"``); without one
    the device serves INFO only. While a central is connected the app does not
    deep-sleep (``app.awake``). The clock is set through ``board.set_wall_time(s)``
    (seconds since 2000) if the board has it; the find-me buzz plays on the app's
    haptics."""
    if bt is None:
        import bluetooth as bt  # type: ignore[no-redef]
    dev_id, ident_name, key = load_identity(identity_path or board.fs_root + IDENTITY_FILE)
    conf = ConfigFile(app.config_path)
    if firmware is None:
        from .app import FIRMWARE as firmware  # type: ignore[no-redef]
    buzz = _Buzzer(app, board)
    server = SyncServer(app.store, app.live, conf.load, conf.save, key,
                        getattr(board, "set_wall_time", None), buzz.buzz, _random_bytes,
                        dev_id, firmware, MODEL, default_name=ident_name)  # fmt: skip
    service = BleService(bt, server, app.live, firmware).start()
    app.awake = service.connected  # no deep sleep while a central is connected
    return service


async def serve(app, board, bt=None, identity_path=None, poll_ms=50):
    """For the entry module: wait until the app's ``setup()`` has run (``app.run()``
    does it first), then :func:`start`. Returns the service, or None when this runtime
    has no ``bluetooth`` module (the sim board without the simulated radio)::

        asyncio.create_task(ble_service.serve(app, board))
        await app.run()
    """
    if bt is None:
        try:
            import bluetooth as bt  # type: ignore[no-redef]
        except ImportError:
            print("ble: no bluetooth module, sync is off")
            return None
    while getattr(app, "store", None) is None or getattr(app, "haptics", None) is None:
        await _sleep_ms(poll_ms)
    return start(app, board, bt, identity_path)


class _Buzzer:
    """FIND_ME on the app's haptics ``count`` times, one every FIND_ME_PERIOD_MS."""

    def __init__(self, app, board):
        self.app = app
        self.board = board
        self.task = None

    def buzz(self, count):
        if self.task is not None:
            self.task.cancel()
        self.task = asyncio.create_task(self._run(count))

    async def _run(self, count):
        for i in range(count):
            self.app.haptics.play(hp.FIND_ME, self.board.now_ms())
            if i + 1 < count:
                await _sleep_ms(FIND_ME_PERIOD_MS)
