"""The host's protocol client against the device's sync server, over an in-process link
that counts ATT packets and can drop at any of them.

Real parts on both sides: the firmware's SyncServer on a SessionStore in a temporary
directory (sessions written with records.Encoder, as the app writes them), the app's
Live counters, the config codec; the host's ProtocolClient and pull_sessions into a
MemorySink. Only the radio is replaced (LoopbackLink)."""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import random
import shutil
import struct
import sys
import time
from pathlib import Path

import pytest

from retrostep.sync.errors import AuthError, DeviceError, LinkLost, SyncError, SyncTimeout
from retrostep.sync.loopback import LoopbackLink
from retrostep.sync.protocol_client import ProtocolClient, device_seconds
from retrostep.sync.pull import MemorySink, PullReport, pull_sessions
from retrostep_core import config as cfg
from retrostep_core import records as r
from retrostep_core import sync_protocol as sp
from retrostep_device.app import Live
from retrostep_device.storage import SessionStore
from retrostep_device.sync_server import SyncServer

KEY = bytes.fromhex("5f" * 32)
DEVICE_ID = b"240ac4112233"
HEADER = {"wall_start": 0, "fs_mhz": 52000, "sway_limit_cdeg": 1000, "config_version": 1,
          "config_crc": cfg.config_crc(cfg.defaults()), "firmware": "retrostep 0.1.0"}  # fmt: skip


def walk(store: SessionStore, seconds: int, rng: random.Random, live: Live | None = None) -> None:
    """Log ``seconds`` of walking the way the app does (batched steps, a SECONDS summary
    a second, steps flushed with it); counts the steps in ``live``."""
    enc = r.Encoder()
    for s in range(seconds):
        f = b = 0
        for k in range(2):
            d = -1 if rng.random() < 0.35 else 1
            if live is not None:
                live.forward += d > 0
                live.backward += d < 0
            f += d > 0
            b += d < 0
            out = enc.add_step(s * 1000 + 500 * k + rng.randrange(100), d)
            if out is not None:
                store.append(out)
        out = enc.add_second(s * 1000, f, b, 1200, rng.randrange(80), 100, True, r.KIND_FORWARD)
        if out is not None:
            store.append(out)
            out = enc.flush_steps()
            if out is not None:
                store.append(out)
        if s % 97 == 50:
            store.append(enc.sway_alert(s * 1000 + 10, 1, 120))
        store.tick(s * 1000)
    for flush in (enc.flush_seconds, enc.flush_steps):  # one at a time: each returns a view
        out = flush()
        if out is not None:
            store.append(out)


class Device:
    """The device's side: a store with sessions, the live counters, and the callbacks."""

    def __init__(self, root: Path, key: bytes | None = KEY, quota: int | None = None,
                 server_cls=SyncServer):  # fmt: skip
        self.root = root
        self.store = SessionStore(str(root), quota=quota)
        self.live = Live()
        self.config = cfg.defaults()
        self.clock: list[int] = []
        self.buzzes: list[int] = []
        self.server = server_cls(
            self.store, self.live, lambda: self.config, self._save, key, self.clock.append,
            self.buzzes.append, __import__("os").urandom, DEVICE_ID, "retrostep 0.1.0",
            "XIAO ESP32-S3",
        )  # fmt: skip

    def _save(self, data: bytes) -> None:
        self.config = cfg.decode(data)[0]

    def record(self, seconds: int, seed: int, close: bool = True) -> int:
        sid = self.store.begin(HEADER)
        self.live.session_id = sid
        walk(self.store, seconds, random.Random(seed), self.live)
        if close:
            self.store.end({"t": seconds * 1000, "reason": r.END_BUTTON})
            self.live.session_id = None
        else:
            self.store.flush()
        return sid

    def file(self, sid: int) -> bytes:
        return (self.root / f"{sid}.rsl").read_bytes()

    def synced(self) -> dict[int, bool]:
        return {s[0]: s[2] for s in self.store.list_sessions()}


def make_device(root: Path, sessions=(600, 300, 900, 120), open_s: int = 200, **kw) -> Device:
    dev = Device(root, **kw)
    for i, seconds in enumerate(sessions):
        dev.record(seconds, i + 1)
    if open_s:
        dev.record(open_s, 99, close=False)
    return dev


async def sync(dev: Device, sink: MemorySink, mtu: int = 247, drop_after: int | None = None,
               report: PullReport | None = None,
               now=None) -> tuple[LoopbackLink, PullReport]:  # fmt: skip
    link = LoopbackLink(dev.server, mtu, drop_after)
    rep = report if report is not None else PullReport()
    try:
        async with ProtocolClient(link, timeout=2.0) as client:
            await pull_sessions(client, KEY, sink, now=now, report=rep)
    finally:
        link.drop()
    return link, rep


def run(coro):
    return asyncio.run(coro)


# -- HMAC against CPython's ------------------------------------------------------------


def test_hmac_matches_cpython_hmac():
    rng = random.Random(4231)
    for _ in range(300):
        key = rng.randbytes(rng.randrange(0, 200))
        msg = rng.randbytes(rng.randrange(0, 300))
        assert sp.hmac_sha256(key, msg) == hmac.new(key, msg, hashlib.sha256).digest()


# -- a whole sync -----------------------------------------------------------------------


def test_full_sync_of_several_sessions_with_the_clock_set(tmp_path):
    dev = make_device(tmp_path / "dev")
    sink = MemorySink()
    before = time.time()
    link, rep = run(sync(dev, sink, now=None))
    after = time.time()
    complete = [1, 2, 3, 4]
    assert rep.finished == complete and rep.acked == complete and rep.recording == [5]
    assert rep.mismatched == [] and rep.listed == 5
    for sid in complete:
        assert bytes(sink.data[(DEVICE_ID, sid)]) == dev.file(sid)
        assert sink.finished(DEVICE_ID, sid)
    assert bytes(sink.data[(DEVICE_ID, 5)]) == dev.file(5)  # as far as it is on flash
    assert not sink.finished(DEVICE_ID, 5)
    assert dev.synced() == {1: True, 2: True, 3: True, 4: True, 5: False}
    # the device clock: seconds since 2000, now
    assert len(dev.clock) == 1
    assert device_seconds(before) <= dev.clock[0] <= device_seconds(after) + 1
    assert dev.server.clock_set
    assert rep.fetched_bytes == sum(len(dev.file(s)) for s in range(1, 6))
    # nothing left to do: the next sync fetches nothing and acknowledges nothing
    _, rep2 = run(sync(dev, sink))
    assert rep2.fetched_bytes == 0 and rep2.acked == [] and rep2.recording == [5]
    # the open session grows and ends: only the new bytes come, then it is acknowledged
    held = sink.held(DEVICE_ID, 5)
    walk(dev.store, 60, random.Random(7))
    dev.store.end({"t": 260000, "reason": r.END_IDLE})
    _, rep3 = run(sync(dev, sink))
    assert rep3.fetched_bytes == len(dev.file(5)) - held and rep3.acked == [5]
    assert bytes(sink.data[(DEVICE_ID, 5)]) == dev.file(5)
    # every record exactly once: the host's copies decode to the device's records
    for sid in range(1, 6):
        rep_host = r.decode_report(bytes(sink.data[(DEVICE_ID, sid)]))
        assert rep_host["ended_cleanly"] and rep_host["skipped_bytes"] == 0
        assert rep_host["records"] == r.decode(dev.file(sid))


@pytest.mark.parametrize("mtu", [23, 185, 247])
def test_notifications_use_the_negotiated_mtu(tmp_path, mtu):
    dev = make_device(tmp_path / "dev", sessions=(600,), open_s=0)
    link, rep = run(sync(dev, MemorySink(), mtu=mtu))
    assert rep.acked == [1]
    room = mtu - 3
    assert max(link.notify_sizes) == room and max(link.write_sizes) <= room
    size = len(dev.file(1))
    # the data notifications are full but for each response's last one
    assert link.notified <= size / (room - 1) + 16  # + INFO, AUTH, LIST, VERIFY, ...
    assert link.notified >= size / (room - 1)


# -- drops ------------------------------------------------------------------------------


def _sync_until_done(dev: Device, sink: MemorySink, mtu: int, first_drop: int | None,
                     rng: random.Random) -> list[PullReport]:  # fmt: skip
    """One sync dropped at ``first_drop``, then syncs dropped at random points, then
    (at most 20 tries) clean syncs, until every complete session is acknowledged."""
    reports = []
    drop = first_drop
    for attempt in range(40):
        rep = PullReport()
        try:
            run(sync(dev, sink, mtu=mtu, drop_after=drop, report=rep))
        except LinkLost:
            pass
        reports.append(rep)
        if all(dev.synced().get(s) for s in (1, 2, 3)) and drop is None:
            return reports
        drop = rng.randrange(1, 400) if attempt < 3 and drop is not None else None
    raise AssertionError("sync never completed")


def _check_exactly_once(dev: Device, sink: MemorySink, reports: list[PullReport]) -> None:
    sizes = {s[0]: s[1] for s in dev.store.list_sessions()}
    for sid in (1, 2, 3):
        assert bytes(sink.data[(DEVICE_ID, sid)]) == dev.file(sid), sid
        assert sink.finished(DEVICE_ID, sid)
    assert dev.synced() == {1: True, 2: True, 3: True, 4: False}
    # no byte was fetched twice (drops resumed exactly where the data stopped) ...
    assert sum(x.fetched_bytes for x in reports) == sum(sizes.values())
    assert not any(x.mismatched for x in reports)
    # ... and each session was finished exactly once
    finished = [sid for x in reports for sid in x.finished]
    assert sorted(finished) == [1, 2, 3]


def test_drops_at_every_packet_resume_and_deliver_exactly_once(tmp_path):
    template = tmp_path / "template"
    make_device(template, sessions=(400, 150, 300), open_s=100)
    # how many packets a clean sync takes
    probe = tmp_path / "probe"
    shutil.copytree(template, probe)
    link, _ = run(sync(Device(probe), MemorySink()))
    total = link.packets
    assert total > 40
    rng = random.Random(5)
    for k in range(1, total + 1):
        root = tmp_path / f"drop{k}"
        shutil.copytree(template, root)
        dev = Device(root)
        sink = MemorySink()
        reports = _sync_until_done(dev, sink, 247, k, rng)
        _check_exactly_once(dev, sink, reports)
        shutil.rmtree(root)


def test_drops_at_mtu_23_resume_and_deliver_exactly_once(tmp_path):
    template = tmp_path / "template"
    make_device(template, sessions=(400, 150, 300), open_s=100)
    probe = tmp_path / "probe"
    shutil.copytree(template, probe)
    link, _ = run(sync(Device(probe), MemorySink(), mtu=23))
    total = link.packets
    rng = random.Random(23)
    points = sorted(set(list(range(1, 40)) + [rng.randrange(40, total) for _ in range(60)]))
    for k in points:
        root = tmp_path / f"drop{k}"
        shutil.copytree(template, root)
        dev = Device(root)
        sink = MemorySink()
        reports = _sync_until_done(dev, sink, 23, k, rng)
        _check_exactly_once(dev, sink, reports)
        shutil.rmtree(root)


def test_a_read_cut_short_keeps_what_arrived(tmp_path):
    dev = make_device(tmp_path / "dev", sessions=(1500,), open_s=0)
    size = len(dev.file(1))
    assert size > 20000
    sink = MemorySink()
    # INFO, AUTH (2), SET_TIME, LIST: 5 writes (2 packets each) and 5 one-fragment answers
    # at MTU 247; then the READ request, then its data: drop 40 notifications into it
    with pytest.raises(LinkLost):
        run(sync(dev, sink, mtu=247, drop_after=5 * 3 + 2 + 40))
    held = sink.held(DEVICE_ID, 1)
    assert held == 40 * 243 - 5  # 40 fragments of 243 message bytes, less the header
    assert bytes(sink.data[(DEVICE_ID, 1)]) == dev.file(1)[:held]
    link = RecordingLink(dev.server, 247)

    async def go():
        async with ProtocolClient(link) as client:
            await pull_sessions(client, KEY, sink)

    run(go())
    reads = [sp.parse_request(w[1:]) for w in link.sent if w[3] == sp.OP_READ]
    assert [struct.unpack("<IIH", body)[1] for _, _, body in reads] == [held]
    assert bytes(sink.data[(DEVICE_ID, 1)]) == dev.file(1) and dev.synced() == {1: True}


def test_the_device_evicts_only_acknowledged_sessions(tmp_path):
    # a log area of ~150 KB: about three hours of walking
    dev = make_device(tmp_path / "dev", sessions=(900, 900, 900), open_s=0, quota=150_000)
    dev.store.headroom = 40_000
    sink = MemorySink()
    # a sync cut short after the first session was acknowledged
    link, _ = run(sync(dev, sink, mtu=247))
    acked_all = link.packets
    assert dev.synced() == {1: True, 2: True, 3: True}
    # a fresh device state for the real test: copy back to the start
    dev = make_device(tmp_path / "dev2", sessions=(900, 900, 900), open_s=0, quota=150_000)
    dev.store.headroom = 40_000
    sink = MemorySink()
    for k in range(10, acked_all):
        try:
            run(sync(dev, sink, drop_after=k))
        except LinkLost:
            pass
        if dev.synced()[1] and not dev.synced()[2]:
            break
    assert dev.synced() == {1: True, 2: False, 3: False}
    acked = {1}
    # the wearer keeps walking: new sessions push the store to evict, then to fill up
    seed = 10
    while not dev.store.full:
        seed += 1
        assert seed < 40, "the store never filled up"
        dev.record(900, seed)
        gone = {1, 2, 3} - set(dev.synced())
        assert gone <= acked, (gone, acked)  # never an unacknowledged session
    assert dev.store.evicted == 1 and 1 not in dev.synced()
    assert all(not synced for synced in dev.synced().values())  # only unsynced ones left
    # a sync frees the space again: everything arrives, and eviction may proceed
    rep = PullReport()
    run(sync(dev, sink, report=rep))
    assert set(rep.acked) == set(dev.synced()) - {1}
    for sid in dev.synced():
        assert bytes(sink.data[(DEVICE_ID, sid)]) == dev.file(sid)


# -- authentication ---------------------------------------------------------------------


def test_a_central_without_the_key_reads_public_info_only(tmp_path):
    dev = make_device(tmp_path / "dev", sessions=(60,), open_s=0)
    dev.live.forward = 4321

    async def go():
        link = LoopbackLink(dev.server, 185)
        async with ProtocolClient(link) as client:
            info = await client.info()
            assert info.provisioned and info.device_id == DEVICE_ID
            assert info.name == "retrostep" and info.firmware == "retrostep 0.1.0"
            with pytest.raises(AuthError, match="refused this computer's key"):
                await client.authenticate(bytes(32))
            for call in (client.list_sessions(), client.read(1, 0, 100), client.verify(1),
                         client.status(), client.get_config(), client.set_time(),
                         client.buzz(), client.set_config(cfg.defaults())):  # fmt: skip
                with pytest.raises(DeviceError) as e:
                    await call
                assert e.value.status == sp.ERR_UNAUTHENTICATED
        assert dev.clock == [] and dev.buzzes == [] and dev.synced() == {1: False}
        # the status characteristic a keyless central can read: no counts in it
        s = sp.parse_status(dev.server.status(dev.server.authenticated))
        assert not s["counts"] and s["forward"] == 0 and s["unsynced_sessions"] == 1

    run(go())


def test_an_unprovisioned_device_cannot_be_synced(tmp_path):
    dev = make_device(tmp_path / "dev", sessions=(60,), open_s=0, key=None)

    async def go():
        async with ProtocolClient(LoopbackLink(dev.server)) as client:
            assert not (await client.info()).provisioned
            with pytest.raises(AuthError, match="no key yet"):
                await client.authenticate(KEY)
            with pytest.raises(DeviceError) as e:
                await client.list_sessions()
            assert e.value.status == sp.ERR_NOT_PROVISIONED

    run(go())


class RecordingLink(LoopbackLink):
    def __init__(self, *a, **kw):
        super().__init__(*a, **kw)
        self.sent: list[bytes] = []

    async def write(self, data: bytes) -> None:
        self.sent.append(data)
        await super().write(data)


def test_a_replayed_authentication_is_refused(tmp_path):
    dev = make_device(tmp_path / "dev", sessions=(60,), open_s=0)

    async def go():
        link = RecordingLink(dev.server, 23)
        async with ProtocolClient(link) as client:
            await client.authenticate(KEY)
            assert (await client.status())["counts"]
        link.drop()
        # an eavesdropper replays every write of that conversation on a new connection
        replay = LoopbackLink(dev.server, 23)
        answers = []

        async def collect():
            rx = sp.Reassembler(sp.RESPONSE_MAX, sp.RESPONSE_HEADER)
            async for f in replay.notifications():
                if rx.feed(f) == sp.DONE:
                    answers.append(sp.parse_response(rx.message()))

        task = asyncio.create_task(collect())
        for w in link.sent:
            await replay.write(w)
        await asyncio.sleep(0)
        replay.drop()
        await task
        by_op = {}
        for op, _rid, status, _body in answers:
            by_op.setdefault(op, []).append(status)
        assert by_op[sp.OP_AUTH_BEGIN] == [sp.OK]  # a fresh device nonce ...
        assert by_op[sp.OP_AUTH_FINISH] == [sp.ERR_AUTH_FAILED]  # ... makes the proof wrong
        assert by_op[sp.OP_STATUS] == [sp.ERR_UNAUTHENTICATED]
        assert dev.server.stats["auth_failed"] == 1

    run(go())


class ImpostorServer(SyncServer):
    """A device that does not hold the key but claims to accept any proof."""

    def _auth_finish(self, body):
        self.authenticated = True
        self._nd = None
        return sp.OK, bytes(32)


def test_the_host_refuses_a_device_that_cannot_prove_the_key(tmp_path):
    dev = make_device(tmp_path / "dev", sessions=(60,), open_s=0, server_cls=ImpostorServer)

    async def go():
        async with ProtocolClient(LoopbackLink(dev.server)) as client:
            with pytest.raises(AuthError, match="could not prove"):
                await client.authenticate(KEY)
            assert not client.authenticated

    run(go())
    sink = MemorySink()
    with pytest.raises(AuthError):
        run(sync(dev, sink))
    assert sink.data == {}


# -- settings through the client -------------------------------------------------------


def test_config_status_and_buzz_through_the_client(tmp_path):
    dev = make_device(tmp_path / "dev", sessions=(60,), open_s=0)
    dev.live.forward, dev.live.backward, dev.live.battery_mv = 10, 4, 3700

    async def go():
        async with ProtocolClient(LoopbackLink(dev.server, 23)) as client:
            await client.authenticate(KEY)
            assert await client.get_config() == cfg.defaults()
            new = cfg.defaults()
            new.update(device_name="Ward 3 clip", program=[["forward", 300], ["backward", 60]],
                       program_repeat=3)  # fmt: skip
            await client.set_config(new)
            assert dev.config["device_name"] == "Ward 3 clip"
            assert (await client.get_config())["program"] == [("forward", 300), ("backward", 60)]
            assert (await client.info()).name == "Ward 3 clip"
            with pytest.raises(SyncError, match="haptic_strength"):
                await client.set_config(dict(new, haptic_strength=101))  # refused here
            raw = bytearray(cfg.encode(new))
            raw[14] = 101  # haptic strength 101 %, CRC fixed: only the device can refuse it
            raw[-4:] = struct.pack("<I", r.crc32(bytes(raw[:-4])))
            with pytest.raises(DeviceError) as e:
                await client.call(sp.OP_SET_CONFIG, bytes(raw))
            assert e.value.status == sp.ERR_INVALID and "haptic_strength" in e.value.text
            s = await client.status()
            assert s["counts"] and (s["forward"], s["backward"]) == (10, 4)
            assert s["battery_pct"] == 35 and s["unsynced_sessions"] == 1
            await client.buzz(2)
            assert dev.buzzes == [2]
            with pytest.raises(DeviceError):
                await client.buzz(0)

    run(go())


class BlackHole:
    """A link whose device never answers."""

    mtu = 23

    def __init__(self):
        self.closed = asyncio.Event()

    async def write(self, data):
        pass

    async def notifications(self):
        await self.closed.wait()
        return
        yield


def test_a_silent_device_times_out():
    async def go():
        async with ProtocolClient(BlackHole(), timeout=0.2) as client:
            t0 = time.monotonic()
            with pytest.raises(SyncTimeout):
                await client.info()
            assert 0.2 <= time.monotonic() - t0 < 3.0

    run(go())


# -- noise on the control point ---------------------------------------------------------


def test_random_control_point_writes_leave_the_device_running_and_counting(tmp_path):
    dev = make_device(tmp_path / "dev", sessions=(300, 100), open_s=0)
    rng = random.Random(10000)
    valid = [sp.request(op, 1, body) for op, body in (
        (sp.OP_INFO, b""), (sp.OP_LIST, bytes(4)), (sp.OP_AUTH_BEGIN, bytes(16)),
        (sp.OP_AUTH_FINISH, bytes(32)), (sp.OP_READ, struct.pack("<IIH", 1, 0, 9000)),
        (sp.OP_ACK, struct.pack("<I", 1) + bytes(32)), (sp.OP_SET_CONFIG, bytes(40)),
    )]  # fmt: skip

    async def go():
        mtu = 185
        link = LoopbackLink(dev.server, mtu)
        answers = []

        async def collect():
            rx = sp.Reassembler(sp.RESPONSE_MAX, sp.RESPONSE_HEADER)
            async for f in link.notifications():
                res = rx.feed(f)
                assert res in (sp.MORE, sp.DONE)
                if res == sp.DONE:
                    answers.append(sp.parse_response(rx.message()))

        task = asyncio.create_task(collect())
        sid = dev.store.begin(HEADER)  # the wearer walks all along
        dev.live.session_id = sid
        enc_rng = random.Random(1)
        for i in range(10_000):
            kind = rng.randrange(4)
            if kind == 0:
                w = rng.randbytes(rng.randrange(0, mtu - 2))
            elif kind == 1:
                w = bytes([0x80 | rng.randrange(128)]) + rng.randbytes(rng.randrange(0, 30))
            else:
                m = bytearray(rng.choice(valid))
                if kind == 2:
                    m[rng.randrange(len(m))] = rng.randrange(256)
                frags = sp.fragments(bytes(m), mtu, rng.randrange(128))
                w = frags[rng.randrange(len(frags))]
            await link.write(w)
            if i % 100 == 0:
                walk(dev.store, 5, enc_rng, dev.live)
        await asyncio.sleep(0)
        link.drop()
        await task
        return answers

    forward0 = dev.live.forward
    answers = run(go())
    st = dev.server.stats
    assert st["internal"] == 0 and st["auth_ok"] == 0 and st["acked"] == 0
    assert len(answers) > 5000 and all(a is not None for a in answers)
    assert dev.live.forward > forward0  # the counting went on
    dev.store.end({"reason": r.END_BUTTON})
    dev.live.session_id = None
    # and a real sync afterwards gets everything, the session logged meanwhile included
    sink = MemorySink()
    _, rep = run(sync(dev, sink))
    assert rep.acked == [1, 2, 3]
    assert r.decode(bytes(sink.data[(DEVICE_ID, 3)])) == r.decode(dev.file(3))
    assert len(r.steps_of(r.decode(dev.file(3)))) == 2 * 5 * 100


# -- the cost model ---------------------------------------------------------------------


def test_sync_cost_model_counts_what_the_protocol_sends():
    root = str(Path(__file__).resolve().parent.parent)
    if root not in sys.path:  # `bench` is a top-level directory, not an installed package
        sys.path.insert(0, root)
    from bench import sync_model as sm

    log = sm.hour_log()
    assert len(log) == 50256  # the log-format budget hour
    for mtu in (23, 247):
        t = sm.measure(log, mtu)
        room = mtu - 4  # message bytes per fragment
        # the READ responses alone: header 5 + data, in fragments of ``room``
        reads = [min(sp.READ_MAX, len(log) - off) for off in range(0, len(log), sp.READ_MAX)]
        read_frags = sum(-(-(5 + n) // room) for n in reads)
        notes = len(t.down) - t.write_pdus
        assert read_frags < notes <= read_frags + 16  # + INFO, AUTH x2, TIME, LIST, ...
        assert t.requests == 7 + len(reads)
        assert t.up and max(t.up) <= mtu and max(t.down) <= mtu
    rows = sm.model(log)
    by = {(x["mtu"], x["ll_max"]): x for x in rows}
    # bigger MTU: fewer PDUs; DLE: fewer LL packets; air time follows
    assert by[(23, 27)]["att_pdus"] > by[(185, 251)]["att_pdus"] > by[(247, 251)]["att_pdus"]
    assert by[(247, 251)]["ll_packets"] == by[(247, 251)]["att_pdus"]  # one LL packet each
    assert by[(247, 27)]["ll_packets"] > 9 * by[(247, 251)]["notifications"]
    assert by[(247, 251)]["times"][0] < by[(185, 251)]["times"][0] < by[(23, 27)]["times"][0]
    assert 0.9 < by[(247, 251)]["air_efficiency"] < 0.95
    # the bytes on air of one full notification at MTU 247 with DLE: 10 + 4 + 247
    assert sm.on_air([247], 251) == (1, 261)
    assert sm.on_air([247], 27) == (10, 251 + 10 * 10)
    lines = sm.sync_section(log)
    assert lines[0].startswith("## Sync")
    assert [x.split(" | ")[0] for x in lines if x[:3] in ("| 2", "| 1")] == [
        "| 23", "| 185", "| 185", "| 247", "| 247"]  # fmt: skip
