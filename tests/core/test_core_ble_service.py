"""The GATT layer's worker under the runtime's own asyncio: under MicroPython that is
``asyncio.ThreadSafeFlag`` and ``sleep_ms``, under CPython the shims. The ``bluetooth``
stand-in is the smallest object with the API's method signatures; the full GATT tests
are tests/test_ble_service.py (CPython) and the simulated radio (the sim board)."""

import asyncio
import os
import sys

from retrostep_core import sync_protocol as sp
from retrostep_device import ble_service as bs
from retrostep_device.sync_server import SyncServer

MPY = sys.implementation.name == "micropython"


class _UUID:
    def __init__(self, value):
        self.value = value


class _BLE:
    def __init__(self):
        self.handler = None
        self.values = {}
        self.buffers = {}
        self.notified = []
        self.adverts = 0

    def active(self, *args):
        return True

    def config(self, *args, **kw):
        pass

    def irq(self, handler):
        self.handler = handler

    def gatts_register_services(self, definitions):
        return ((10, 11, 12), (20,), (30, 31, 32))

    def gatts_set_buffer(self, handle, length, append=False):
        self.buffers[handle] = length

    def gatts_write(self, handle, data, send_update=False):
        self.values[handle] = data

    def gatts_read(self, handle):
        return self.values[handle]

    def gatts_notify(self, conn, handle, data=None):
        self.notified.append(bytes(data))

    def gap_advertise(self, interval_us, adv_data=None, resp_data=None):
        self.adverts += 1

    def gap_disconnect(self, conn):
        return True

    def gattc_exchange_mtu(self, conn):
        pass


class _Store:
    active = None

    def list_sessions(self):
        return [(1, 100, False, True)]

    def free_bytes(self):
        return 50000


class _Live:
    state = "idle"
    session_id = None
    forward = 5
    backward = 2
    sway_alerts = 0
    storage_full = False
    battery_mv = 4000
    config_problems = 0
    errors = 0


class _BT:
    UUID = _UUID

    def __init__(self, ble):
        self.ble = ble

    def BLE(self):
        return self.ble


def test_the_worker_runs_on_this_runtimes_asyncio():
    ble = _BLE()
    server = SyncServer(_Store(), _Live(), lambda: {"device_name": "clip"}, None, bytes(32),
                        None, None, os.urandom, b"id")  # fmt: skip
    out = {}

    async def go():
        svc = bs.BleService(_BT(ble), server, _Live()).start()
        ble.handler(1, (3, 0, b""))
        ble.handler(21, (3, 64))
        msg = sp.request(sp.OP_INFO, 9)
        ble.values[30] = sp.fragments(msg, 64)[0]
        ble.handler(3, (3, 30))
        for _ in range(20):
            await asyncio.sleep(0.005)
            if ble.notified:
                break
        out["mtu"] = svc.mtu
        ble.handler(2, (3, 0, b""))
        await asyncio.sleep(0.01)
        out["conn"] = svc.conn
        await svc.stop()

    asyncio.run(go())
    assert out["mtu"] == 64 and out["conn"] is None
    rx = sp.Reassembler(sp.RESPONSE_MAX, sp.RESPONSE_HEADER)
    res = None
    for f in ble.notified:
        assert len(f) <= 61
        res = rx.feed(f)
    assert res == sp.DONE
    op, rid, status, body = sp.parse_response(rx.message())
    assert (op, rid, status) == (sp.OP_INFO, 9, sp.OK)
    assert sp.decode_info(body)["name"] == "clip"
    assert ble.buffers[30] == bs.CONTROL_BUFFER and ble.adverts == 2
    assert sp.parse_status(ble.values[32])["battery_pct"] == 80 and ble.values[20] == b"\x50"
