"""10,000 random control-point writes through the real firmware on the simulated radio,
while the app counts a walk: the device keeps running and counting, and a normal sync
afterwards gets the session byte-exact.

The protocol-level fuzz (`tests/core/test_core_sync_server.py`, `tests/test_sync_protocol.py`)
drives `SyncServer` directly. Here the installed firmware (flashed and provisioned with
the flash API) runs on a virtual board with its radio and replays a synthesized walk a
little faster than real time; the host connects with bleak through `retrostep.sync.ble`
on the bumble backend and writes, with response, random payloads (random bytes of
every length up to MTU - 3, random STARTs with random ops and lengths, fragments of valid
requests cut, damaged or replayed out of order, valid requests) to the control point, part of them
after a real authentication with the provisioned key, so that the protected operations
(READ of the session being recorded, SET_CONFIG, BUZZ ...) are fuzzed too.

What must hold afterwards, each checked against something independent:

* the interpreter never restarted: one boot, no Traceback, no soft reboot or crash on
  the console transcript, no ERR_INTERNAL answer, every response well framed;
* it counted while the noise went on (the authenticated STATUS before and after the
  fuzz), `live.errors` stayed 0 (STATUS, and the `L` line the firmware prints when the
  trace ends), and its counts equal `retrostep analyze` on the same trace: the `L` line
  (steps since boot) and the session file on the image;
* a normal `sync_device` afterwards (the session closed by a button press after the
  walk) stores it, byte-exact against the image read after the board stopped.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import random
import struct
import time
from collections import Counter
from pathlib import Path

import pytest
from bleak.exc import BleakGATTProtocolError
from cli_invoke import invoke
from flash_support import copy_firmware, flash_api

from retrostep import sim, synth
from retrostep.store import Store
from retrostep.sync.ble import Radio, choose, connect, scan
from retrostep.sync.command import sync_device
from retrostep.sync.errors import LinkLost
from retrostep.trace import write_trace
from retrostep.virtual_board import VirtualBoard
from retrostep_core import config as cfg
from retrostep_core import records as r
from retrostep_core import sync_protocol as sp

WRITES = 10_000  # about 20 s on the simulated radio (2 ms a write with response)
SPEED = 1.5  # a little faster than real time: the app paces itself on the sample clock
# The walk (trace seconds): standing, forward, backward, then standing; the button
# closes the session PRESS_S into the trace, a few seconds after the last step is
# released, and the standing tail leaves time for the sync before the trace ends (the
# firmware powers the radio off with the app).
WALK = (2, 30, 30)
PRESS_S = sum(WALK) + 8
TAIL_S = 15
OWN_RID = 0xF0  # request ids from here up are this test's own calls; the noise stays below
SEED = 20240611


def _image_sessions(image: Path) -> dict[int, bytes]:
    """The session files on the image, byte for byte (the board must not be running)."""
    return dict(sim.read_session_files(image))


@pytest.fixture
def env(tmp_path, monkeypatch):
    monkeypatch.setenv("RETROSTEP_CONFIG_DIR", str(tmp_path / "config"))
    monkeypatch.setenv("RETROSTEP_DATA_DIR", str(tmp_path / "data"))
    monkeypatch.setenv("RETROSTEP_DB", str(tmp_path / "sessions.sqlite3"))
    monkeypatch.setenv("RETROSTEP_SIM_RADIO", str(tmp_path / "radio.json"))
    image = tmp_path / "flash.img"
    fw = copy_firmware(tmp_path / "firmware")
    with VirtualBoard(image) as vb:  # flash and provision, as `retrostep flash --sim`
        flash_api(vb.port, fw)
    (record,) = (tmp_path / "config" / "devices").glob("*.json")
    segs = [synth._st(WALK[0]), synth._w(WALK[1]), synth._b(WALK[2]),
            synth._st(PRESS_S - sum(WALK) + TAIL_S)]  # fmt: skip
    trace, _ = synth.synthesize(segs, synth.make_person(4), fs_hz=52, seed=11)
    walk = tmp_path / "walk.csv"
    write_trace(walk, trace)
    res = invoke("analyze", walk, "--json")
    assert res.exit_code == 0, res.stderr
    want = json.loads(res.stdout)["summary"]
    assert want["forward_steps"] > 20 and want["backward_steps"] > 20, want
    return {"tmp": tmp_path, "image": image, "walk": walk, "want": want,
            "record": json.loads(record.read_text())}  # fmt: skip


# -- the noise ------------------------------------------------------------------------------


def _templates() -> list[tuple[int, bytes]]:
    """Requests the noise is made from: public ones, and the protected ones a central
    gets after authenticating (READ of the session being recorded, SET_CONFIG ...)."""
    return [
        (sp.OP_INFO, b""), (sp.OP_AUTH_BEGIN, bytes(16)), (sp.OP_AUTH_FINISH, bytes(32)),
        (sp.OP_LIST, bytes(4)), (sp.OP_READ, struct.pack("<IIH", 1, 0, 4000)),
        (sp.OP_READ, struct.pack("<IIH", 1, 100, 300)), (sp.OP_READ, struct.pack("<IIH", 7, 0, 9)),
        (sp.OP_VERIFY, struct.pack("<I", 1)), (sp.OP_ACK, struct.pack("<I", 1) + bytes(32)),
        (sp.OP_SET_TIME, struct.pack("<I", 800_000_000)), (sp.OP_GET_CONFIG, b""),
        (sp.OP_SET_CONFIG, cfg.encode(cfg.defaults())), (sp.OP_STATUS, b""),
        (sp.OP_BUZZ, b"\x01"),
    ]  # fmt: skip


def _noise(rng: random.Random, room: int, templates) -> list[bytes]:
    """One burst of control-point writes (most often one) of at most ``room`` bytes."""
    kind = rng.random()
    if kind < 0.3:  # random bytes, any length the MTU allows
        return [rng.randbytes(rng.randint(0, room))]
    if kind < 0.45:  # a START with a random header: length, op, id, then random bytes
        n = rng.choice((rng.randrange(0x10000), rng.randrange(4), rng.randrange(200)))
        op = rng.choice((rng.randrange(256), *[t[0] for t in templates]))
        head = bytes([sp.START | rng.randrange(128)]) + struct.pack(
            "<HBB", n, op, rng.randrange(OWN_RID)
        )
        return [(head + rng.randbytes(rng.randint(0, room)))[: max(1, rng.randint(0, room))]]
    op, body = rng.choice(templates)
    msg = bytearray(sp.request(op, rng.randrange(OWN_RID), body))
    if kind < 0.6:  # one byte changed
        msg[rng.randrange(len(msg))] = rng.randrange(256)
    elif kind < 0.7:  # a length that is not the message's
        msg[0:2] = struct.pack("<H", max(0, len(msg) - 2 + rng.choice((-3, -1, 1, 2, 90))))
    frags = sp.fragments(bytes(msg), rng.randint(sp.ATT_MTU_MIN, room + 3), rng.randrange(128))
    if kind < 0.85:
        return frags
    frag = bytearray(rng.choice(frags))  # one fragment out of its context
    if rng.random() < 0.5:
        frag[0] = rng.randrange(256)
    return [bytes(frag)]


class _Conn:
    """One connection: the noise and this test's own requests go out on the control
    point; a reader reassembles every response and counts them by status."""

    def __init__(self, link, stats: Counter):
        self.link = link
        self.stats = stats
        self.rx = sp.Reassembler(sp.RESPONSE_MAX, sp.RESPONSE_HEADER)
        self.waiting: dict[tuple[int, int], asyncio.Future] = {}
        self.reader = asyncio.create_task(self._read())

    async def _read(self) -> None:
        async for frag in self.link.notifications():
            res = self.rx.feed(frag)
            if res == sp.DONE:
                resp = sp.parse_response(self.rx.message())
                if resp is None:
                    self.stats["unreadable responses"] += 1
                    continue
                op, rid, status, body = resp
                fut = self.waiting.pop((op, rid), None)
                if fut is not None and not fut.done():
                    fut.set_result((status, body))
                    continue
                self.stats["responses"] += 1
                self.stats[f"status {sp.STATUS_NAMES.get(status, status)}"] += 1
            elif res != sp.MORE:
                self.stats["broken response fragments"] += 1

    async def close(self) -> None:
        self.reader.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await self.reader

    async def write(self, data: bytes) -> None:
        """One write with response; an ATT error is counted, a lost link raised."""
        try:
            await self.link.write(data)
        except LinkLost as e:
            if not isinstance(e.__cause__, BleakGATTProtocolError):
                raise
            self.stats["att errors"] += 1

    async def call(self, op: int, body: bytes = b"") -> bytes:
        """One of this test's own requests: its OK body. A request the device dropped
        (its write queue was full of noise) is sent again."""
        for attempt in range(3):
            rid = OWN_RID + attempt
            fut = asyncio.get_running_loop().create_future()
            self.waiting[(op, rid)] = fut
            for frag in sp.fragments(sp.request(op, rid, body), self.link.mtu, 0):
                await self.write(frag)
            try:
                status, rbody = await asyncio.wait_for(fut, 5)
            except asyncio.TimeoutError:
                self.waiting.pop((op, rid), None)
                self.stats["own requests again"] += 1
                continue
            assert status == sp.OK, (sp.OP_NAMES.get(op, op), status, sp.body_text(rbody))
            return rbody
        raise AssertionError(f"no answer to {sp.OP_NAMES.get(op, op)}")

    async def authenticate(self, key: bytes) -> None:
        dev = sp.decode_info(await self.call(sp.OP_INFO))["device_id"]
        nh = os.urandom(sp.NONCE_LEN)
        nd = await self.call(sp.OP_AUTH_BEGIN, nh)
        proof = await self.call(sp.OP_AUTH_FINISH, sp.host_proof(key, dev, nh, nd))
        assert proof == sp.device_proof(key, dev, nh, nd)
        self.stats["authentications"] += 1

    async def status(self, key: bytes) -> dict:
        await self.authenticate(key)  # the noise may have spent the last one
        st = sp.parse_status(await self.call(sp.OP_STATUS))
        assert st is not None and st["counts"], st
        return st


async def _find(radio: Radio, name: str, deadline_s: float = 10.0):
    """The board, advertising again (after a drop it must come back)."""
    end = time.monotonic() + deadline_s
    while time.monotonic() < end:
        found = await scan(radio, 2.0, want=name)
        if any(f.name == name for f in found):
            return choose(found, name, sim=True)
    raise AssertionError(f"{name} did not come back advertising within {deadline_s:g} s")


async def _fuzz(radio_file: Path, name: str, key: bytes, writes: int) -> dict:
    radio = Radio.simulated(radio_file)
    rng = random.Random(SEED)
    templates = _templates()
    stats: Counter = Counter()
    t_start = time.monotonic()
    before = after = t0 = elapsed = None
    sent = 0
    while after is None:
        found = await _find(radio, name)
        async with connect(radio, found) as link:
            conn = _Conn(link, stats)
            room = link.mtu - sp.ATT_HEADER
            try:
                while before is None or before["state"] != "session":  # the walk began
                    assert time.monotonic() - t_start < 30, ("no session", before)
                    before = await conn.status(key)
                    await asyncio.sleep(0.2)
                t0 = t0 or time.monotonic()
                while sent < writes:
                    if rng.random() < 1 / 300:  # now and then as the owner: protected ops too
                        await conn.authenticate(key)
                    for w in _noise(rng, room, templates):
                        await conn.write(w)
                        sent += 1
                elapsed = elapsed or time.monotonic() - t0
                await asyncio.sleep(0.5)  # the last answers
                after = await conn.status(key)
            except LinkLost:
                stats["reconnects"] += 1
            finally:
                await conn.close()
    stats["writes"] = sent
    return {"stats": stats, "before": before, "after": after, "seconds": elapsed}


# -- the test -------------------------------------------------------------------------------


def test_random_control_point_writes_leave_the_firmware_running_and_counting(env):
    want, name = env["want"], env["record"]["name"]
    key = bytes.fromhex(env["record"]["key"])
    radio_file = env["tmp"] / "radio.json"
    board = VirtualBoard(
        env["image"],
        trace=env["walk"],
        speed=SPEED,
        radio=True,
        publish=radio_file,
        main_args=("--button", str(PRESS_S * 1000)),
    )
    t_boot = time.monotonic()
    board.start()
    try:
        out = asyncio.run(_fuzz(radio_file, name, key, WRITES))
        stats, before, after = out["stats"], out["before"], out["after"]
        print(
            f"fuzz: {dict(stats)} in {out['seconds']:.1f} s; status before {before}, after {after}"
        )
        assert time.monotonic() - t_boot < PRESS_S / SPEED, "the fuzz outlasted the walk"
        assert stats["writes"] == WRITES
        # the device answered the noise, never with an internal error, always well framed
        assert stats["responses"] > WRITES // 3, stats
        assert stats["status INTERNAL"] == 0 and stats["broken response fragments"] == 0
        assert stats["unreadable responses"] == 0, stats
        assert stats["authentications"] >= 10, stats
        # it counted all along, with no task failure
        assert before["state"] == after["state"] == "session", (before, after)
        assert after["forward"] > before["forward"] or after["backward"] > before["backward"]
        assert before["errors"] == after["errors"] == 0

        # the button closes the session after the walk; then a normal sync
        left = t_boot + PRESS_S / SPEED + 2 - time.monotonic()
        time.sleep(max(0.0, left))
        with Store.open(os.environ["RETROSTEP_DB"]) as store:
            res = sync_device(store, Radio.simulated(radio_file))
        assert res.report.acked == [1], res.lines()
        # the trace ends: the firmware prints its live counters, main.py is over
        end = board.wait_for(b"\nL ", timeout=TAIL_S / SPEED + 20)
        line = board.wait_for(b"\n", since=end)
        counts = list(map(int, board.output(end)[: line - end].split()))
        assert counts == [want["forward_steps"], want["backward_steps"], want["sway_alerts"],
                          0, 0], (counts, want)  # fmt: skip
        console = board.output(0)
        assert b"Traceback" not in console and b"soft reboot" not in console, console[-2000:]
        assert b"virtual board:" not in console and b"failed, restarting" not in console
        assert board.boots == 1
    finally:
        board.stop()
    on_image = _image_sessions(env["image"])
    assert sorted(on_image) == [1]
    s = sim.summarize(1, on_image[1])
    assert (s["forward_steps"], s["backward_steps"]) == (
        want["forward_steps"],
        want["backward_steps"],
    )
    assert s["end_reason"] == "button" and s["ended_cleanly"] and s["damaged_bytes"] == 0
    with Store.open(os.environ["RETROSTEP_DB"], readonly=True) as store:
        (stored,) = store.sessions()
        assert stored.device_session == 1
        assert store.raw(stored.id) == on_image[1]  # byte-exact
    assert r.decode(on_image[1])  # the host's codec reads it
