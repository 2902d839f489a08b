"""The GATT layer (firmware/retrostep_device/ble_service.py) against the smallest
stand-in for MicroPython's ``bluetooth`` module: an object with the same method
signatures that records what it is asked and plays a central's writes as IRQs, the
way the ESP32 port raises them (the handler runs before the write is answered; the
default attribute buffer is 20 bytes; a notification can fail for lack of buffers).

Everything above it is real: SyncServer, SessionStore, the app's Live counters, and on
the host side ProtocolClient and pull_sessions. The radio itself is tested end to end
with the simulated radio on the sim board."""

from __future__ import annotations

import asyncio
import json
import random
import struct
import types

from retrostep.sync.protocol_client import ProtocolClient
from retrostep.sync.pull import MemorySink, pull_sessions
from retrostep_core import config as cfg
from retrostep_core import records as r
from retrostep_core import sync_protocol as sp
from retrostep_device import ble_service as bs
from retrostep_device.app import FIRMWARE, Haptics, Live
from retrostep_device.storage import SessionStore
from retrostep_device.sync_server import SyncServer

KEY = bytes(range(32))
DEVICE_ID = b"gen-0a1b2c3d4e5f"
HEADER = {"fs_mhz": 52000, "firmware": "retrostep 0.1.0"}


class FakeUUID:
    def __init__(self, value):
        self.value = value.lower() if isinstance(value, str) else value

    def __eq__(self, other):
        return isinstance(other, FakeUUID) and self.value == other.value

    def __hash__(self):
        return hash(self.value)

    def __repr__(self):
        return f"UUID({self.value!r})"


class FakeBLE:
    """MicroPython's ``bluetooth.BLE`` API surface, recording; the central's actions are
    :meth:`central_connect`, :meth:`central_write`, :meth:`central_mtu`."""

    def __init__(self):
        self.handler = None
        self.is_active = False
        self.config_kw = {}
        self.services = None
        self.values = {}
        self.buffers = {}
        self.updates = []  # (handle, value) written with send_update
        self.notified = []  # (conn, handle, value)
        self.adverts = []  # (interval_us, adv_data, resp_data)
        self.disconnects = []
        self.notify_fail = 0  # this many gatts_notify calls raise OSError(ENOMEM)
        self.on_notify = None

    def active(self, *args):
        if args:
            self.is_active = bool(args[0])
        return self.is_active

    def config(self, *args, **kw):
        self.config_kw.update(kw)

    def irq(self, handler):
        self.handler = handler

    def gatts_register_services(self, definitions):
        self.services = definitions
        handle = 1
        out = []
        for _uuid, chars in definitions:
            handle += 1  # the service declaration
            hs = []
            for _cu, flags in chars:
                handle += 2  # declaration + value
                hs.append(handle)
                if flags & 0x0030:
                    handle += 1  # CCCD
            out.append(tuple(hs))
        return tuple(out)

    def gatts_set_buffer(self, handle, length, append=False):
        self.buffers[handle] = length

    def gatts_write(self, handle, data, send_update=False):
        self.values[handle] = bytes(data, "ascii") if isinstance(data, str) else bytes(data)
        if send_update:
            self.updates.append((handle, self.values[handle]))

    def gatts_read(self, handle):
        return self.values.get(handle, b"")

    def gatts_notify(self, conn, handle, data=None):
        if self.notify_fail:
            self.notify_fail -= 1
            raise OSError(12)
        self.notified.append((conn, handle, bytes(data)))
        if self.on_notify:
            self.on_notify(bytes(data))

    def gap_advertise(self, interval_us, adv_data=None, *, resp_data=None, connectable=True):
        self.adverts.append((interval_us, adv_data, resp_data))

    def gap_disconnect(self, conn):
        self.disconnects.append(conn)
        return True

    def gattc_exchange_mtu(self, conn):
        pass

    # the central's side
    def central_connect(self, conn):
        self.handler(1, (conn, 0, memoryview(b"\x00" * 6)))

    def central_disconnect(self, conn):
        self.handler(2, (conn, 0, memoryview(b"\x00" * 6)))

    def central_mtu(self, conn, mtu):
        self.handler(21, (conn, mtu))

    def central_write(self, conn, handle, data):
        self.values[handle] = bytes(data[: self.buffers.get(handle, 20)])
        self.handler(3, (conn, handle))


def make(tmp_path, sessions=(300, 120)):
    store = SessionStore(str(tmp_path / "logs"))
    rng = random.Random(3)
    for seconds in sessions:
        store.begin(HEADER)
        enc = r.Encoder()
        for s in range(seconds):
            out = enc.add_step(s * 1000 + rng.randrange(300), 1 if rng.random() < 0.7 else -1)
            if out is not None:
                store.append(out)
        out = enc.flush_steps()
        if out is not None:
            store.append(out)
        store.end({"t": seconds * 1000, "reason": r.END_BUTTON})
    live = Live()
    live.battery_mv = 3900
    conf = bs.ConfigFile(str(tmp_path / "config.bin"))
    clock = []
    server = SyncServer(store, live, conf.load, conf.save, KEY, clock.append, lambda n: None,
                        random.Random(1).randbytes, DEVICE_ID, "retrostep 0.1.0",
                        default_name="retrostep-4e5f")  # fmt: skip
    ble = FakeBLE()
    bt = types.SimpleNamespace(BLE=lambda: ble, UUID=FakeUUID)
    return ble, bt, server, live, store


def test_start_registers_the_services_and_advertises(tmp_path):
    ble, bt, server, live, store = make(tmp_path)

    async def go():
        svc = bs.BleService(bt, server, live, "retrostep 0.1.0").start()
        try:
            return svc
        finally:
            await svc.stop()

    svc = asyncio.run(go())
    (dis, dis_chars), (bas, bas_chars), (rs, rs_chars) = ble.services
    assert dis == FakeUUID(0x180A) and bas == FakeUUID(0x180F)
    assert [c for c, _ in dis_chars] == [FakeUUID(0x2A29), FakeUUID(0x2A24), FakeUUID(0x2A26)]
    assert bas_chars == ((FakeUUID(0x2A19), 0x0012),)  # read | notify
    assert rs == FakeUUID(sp.SERVICE_UUID)
    assert rs_chars == ((FakeUUID(sp.CONTROL_UUID), 0x000C), (FakeUUID(sp.DATA_UUID), 0x0010),
                        (FakeUUID(sp.STATUS_UUID), 0x0012))  # fmt: skip
    assert ble.config_kw == {"gap_name": "retrostep-4e5f", "mtu": 247}
    assert ble.buffers[svc.h_control] >= 244  # a whole fragment at MTU 247
    assert ble.values[svc.h_battery] == bytes((70,))
    status = sp.parse_status(ble.values[svc.h_status])
    assert not status["counts"] and status["unsynced_sessions"] == 2 and status["provisioned"]
    interval, adv, resp = ble.adverts[-1]
    p = sp.parse_advertising(adv + resp)
    assert p["uuids"] == [sp.SERVICE_UUID] and p["name"] == "retrostep-4e5f"
    assert p["retrostep"]["unsynced_data"] and p["retrostep"]["unsynced_sessions"] == 2
    assert len(adv) <= 31 and len(resp) <= 31 and interval == bs.ADV_INTERVAL_US
    assert not ble.is_active  # stop() turned the radio off


class GattLink:
    """A host link made of the central's actions on the fake: writes become write IRQs,
    the service's notifications on the data characteristic come back as the stream."""

    def __init__(self, ble: FakeBLE, svc, conn: int, mtu: int):
        self.ble = ble
        self.svc = svc
        self.conn = conn
        self.mtu = mtu
        self.queue: asyncio.Queue = asyncio.Queue()
        ble.on_notify = self.queue.put_nowait

    async def write(self, data: bytes) -> None:
        self.ble.central_write(self.conn, self.svc.h_control, data)
        await asyncio.sleep(0)

    async def notifications(self):
        while True:
            frag = await self.queue.get()
            if frag is None:
                return
            yield frag


def test_a_whole_sync_through_the_gatt_layer(tmp_path):
    ble, bt, server, live, store = make(tmp_path)
    live.forward, live.backward = 321, 123

    async def go():
        svc = bs.BleService(bt, server, live, "retrostep 0.1.0").start()
        try:
            ble.central_connect(7)
            ble.central_mtu(7, 185)
            await asyncio.sleep(0.01)
            assert svc.conn == 7 and svc.mtu == 185
            ble.notify_fail = 5  # the stack is out of buffers for a moment
            link = GattLink(ble, svc, 7, 185)
            sink = MemorySink()
            async with ProtocolClient(link, timeout=2.0) as client:
                await pull_sessions(client, KEY, sink)
                # authenticated: the status characteristic now carries the counts
                await asyncio.sleep(0)
                status = sp.parse_status(ble.values[svc.h_status])
                assert status["counts"] and (status["forward"], status["backward"]) == (321, 123)
                assert (await client.status())["unsynced_sessions"] == 0
                await client.set_config(dict(cfg.defaults(), device_name="Ward 3"))
            for sid in (1, 2):
                got = bytes(sink.data[(DEVICE_ID, sid)])
                assert got == (tmp_path / f"logs/{sid}.rsl").read_bytes()
            assert [s[2] for s in store.list_sessions()] == [True, True]
            data = [v for c, h, v in ble.notified if h == svc.h_data]
            assert len(data) == svc.notified and max(len(v) for v in data) == 182
            assert svc.retries == 5 and svc.dropped_links == 0
            # the central leaves: counts hidden again, advertising again, nothing unsynced
            n_adv = len(ble.adverts)
            ble.central_disconnect(7)
            await asyncio.sleep(0.01)
            assert svc.conn is None and len(ble.adverts) == n_adv + 1
            p = sp.parse_advertising(ble.adverts[-1][1] + ble.adverts[-1][2])
            assert not p["retrostep"]["unsynced_data"]
            assert p["name"] == "Ward 3"  # the config written over the air, in its file
            assert ble.config_kw["gap_name"] == "Ward 3"
            assert cfg.decode((tmp_path / "config.bin").read_bytes()) == (
                dict(cfg.defaults(), device_name="Ward 3"), [])
            assert not sp.parse_status(ble.values[svc.h_status])["counts"]
        finally:
            await svc.stop()

    asyncio.run(go())


def test_the_irq_handler_only_queues_and_stays_bounded(tmp_path):
    ble, bt, server, live, store = make(tmp_path)

    async def go():
        svc = bs.BleService(bt, server, live).start()
        try:
            ble.central_connect(1)
            frag = sp.fragments(sp.request(sp.OP_INFO, 1), 23)[0]
            for _ in range(30):  # a flood between two turns of the worker
                ble.central_write(1, svc.h_control, frag)
            ble.central_disconnect(1)
            assert server.stats["requests"] == 0  # nothing was done inside the IRQ
            assert svc.overflow == 30 - (bs._QUEUE_WRITES - 1)
            assert len(svc._events) <= bs.QUEUE_MAX
            await asyncio.sleep(0.01)
            # the queued requests were answered while connected, then the disconnect came
            assert server.stats["requests"] == bs._QUEUE_WRITES - 1
            assert svc.conn is None and not server.connected
            # a write from a central that is not (or no longer) the connected one
            ble.central_write(5, svc.h_control, frag)
            await asyncio.sleep(0.01)
            assert server.stats["requests"] == bs._QUEUE_WRITES - 1
        finally:
            await svc.stop()

    asyncio.run(go())


def test_a_stack_that_stays_full_drops_the_link(tmp_path, monkeypatch):
    ble, bt, server, live, store = make(tmp_path)
    monkeypatch.setattr(bs, "GIVE_UP_MS", 40)

    async def go():
        svc = bs.BleService(bt, server, live).start()
        try:
            ble.central_connect(2)
            await asyncio.sleep(0.01)
            ble.notify_fail = 10**6
            ble.central_write(2, svc.h_control, sp.fragments(sp.request(sp.OP_INFO, 1), 23)[0])
            await asyncio.sleep(0.3)
            assert svc.dropped_links == 1 and ble.disconnects == [2] and not server.connected
            n_adv = len(ble.adverts)
            ble.central_disconnect(2)
            await asyncio.sleep(0.01)
            assert svc.conn is None and len(ble.adverts) == n_adv + 1
        finally:
            await svc.stop()

    asyncio.run(go())


def test_config_file_and_identity_file(tmp_path):
    conf = bs.ConfigFile(str(tmp_path / "config.bin"))
    assert conf.load() == cfg.defaults()
    new = dict(cfg.defaults(), device_name="Ward 3")
    conf.save(cfg.encode(new))
    conf.save(cfg.encode(new))  # replaces
    assert conf.load() == new and not (tmp_path / "config.bin.tmp").exists()
    ident = tmp_path / "device.json"
    assert bs.load_identity(str(ident)) == (b"", None, None)
    ident.write_text(json.dumps({"v": 1, "id": "gen-0a1b2c3d4e5f", "name": "retrostep-4e5f",
                                 "key": KEY.hex()}))  # fmt: skip
    assert bs.load_identity(str(ident)) == (DEVICE_ID, "retrostep-4e5f", KEY)
    ident.write_text('{"v":1,"id":"x","name":"y","key":"abcd"}')  # a short key
    assert bs.load_identity(str(ident)) == (b"", None, None)


class Board:
    """What start() uses of a board: where the flash is, its clock, its motor."""

    fs_root = ""

    def __init__(self, root):
        self.fs_root = str(root)
        self.t = 0
        self.wall = []
        self.duty = []

    def now_ms(self):
        return self.t

    def set_wall_time(self, s):
        self.wall.append(s)

    def motor(self, duty, t_ms=None):
        self.duty.append((t_ms, duty))


def test_start_wires_the_app_and_the_board(tmp_path):
    ble, bt, server, live, store = make(tmp_path)
    board = Board(tmp_path)
    ident = {"v": 1, "id": "gen-0a1b2c3d4e5f", "name": "retrostep-4e5f", "key": KEY.hex()}
    (tmp_path / "device.json").write_text(json.dumps(ident))
    app = types.SimpleNamespace(live=live, config_path=str(tmp_path / "config.bin"))

    async def go():
        task = asyncio.create_task(bs.serve(app, board, bt))
        await asyncio.sleep(0.12)
        assert not task.done()  # the app's setup has not run yet
        app.store = store
        app.haptics = Haptics(board, 80)
        svc = await task
        try:
            srv = svc.server
            assert srv.key == KEY and srv.device_id == DEVICE_ID and srv.name() == "retrostep-4e5f"
            assert srv.store is store and srv.live is live and srv.firmware == FIRMWARE
            # authenticate in whole messages and use what start() wired
            nh = bytes(16)
            nd = sp.parse_response(srv.handle(sp.request(sp.OP_AUTH_BEGIN, 1, nh)))[3]
            proof = sp.host_proof(KEY, DEVICE_ID, nh, nd)
            assert sp.parse_response(srv.handle(sp.request(sp.OP_AUTH_FINISH, 2, proof)))[2] == 0
            when = struct.pack("<I", 850000000)
            assert sp.parse_response(srv.handle(sp.request(sp.OP_SET_TIME, 3, when)))[2] == 0
            assert board.wall == [850000000]
            new = cfg.encode(dict(cfg.defaults(), haptic_strength=50))
            assert sp.parse_response(srv.handle(sp.request(sp.OP_SET_CONFIG, 4, new)))[2] == 0
            assert (tmp_path / "config.bin").read_bytes() == new
            assert sp.parse_response(srv.handle(sp.request(sp.OP_BUZZ, 5, b"\x01")))[2] == 0
            await asyncio.sleep(0)
            board.t = 3000
            app.haptics.advance(3000)
            on = [t for t, d in board.duty if d > 0]
            assert on and on[0] == 0  # FIND_ME began at once, on the app's haptics
        finally:
            await svc.stop()

    asyncio.run(go())


def test_serve_without_a_bluetooth_module_turns_sync_off(tmp_path, capsys, monkeypatch):
    import sys

    monkeypatch.setitem(sys.modules, "bluetooth", None)  # as on the unix port
    assert asyncio.run(bs.serve(types.SimpleNamespace(), Board(tmp_path))) is None
    assert "sync is off" in capsys.readouterr().out
