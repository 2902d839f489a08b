"""`retrostep scan|sync|config --sim` end to end: the installed firmware (flashed and
provisioned by `retrostep flash`'s API) on a virtual board with the simulated radio,
sessions recorded by the firmware itself (`retrostep.sim.run` on the same image), the
commands in process through bleak on the bumble backend, into an SQLite store.

One board serves the module's tests in order (drops, full sync, config, the clock);
the store, config directory and radio runtime file live in a temporary directory."""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import time
from pathlib import Path

import pytest
from cli_invoke import invoke
from flash_support import copy_firmware, flash_api

from retrostep import sim, synth
from retrostep.radio import BackgroundSimRadio
from retrostep.runtime.micropython_port import micropython_executable
from retrostep.store import Store
from retrostep.sync.ble import BleakLink, Radio, choose, connect, scan
from retrostep.sync.errors import DeviceError
from retrostep.sync.protocol_client import ProtocolClient
from retrostep.trace import write_trace
from retrostep.virtual_board import VirtualBoard
from retrostep_core import records as r
from retrostep_core import sync_protocol as sp

HERE = Path(__file__).resolve().parent
ECHO = HERE / "tools" / "ble_echo_peripheral.py"
WALL0 = 800_000_000  # device seconds (2025-05-08): the clock the walks were recorded with
BUTTON_MS = (30_000, 32_000)  # a session on the virtual board, after the first syncs
SCAN = ("--timeout", "1.5")


def _raw_sessions(image: Path) -> dict[int, bytes]:
    """The session files on the image, byte for byte (the board must not be running)."""
    return dict(sim.read_session_files(image))


@pytest.fixture(scope="module")
def env(tmp_path_factory):
    """Config dir, store, runtime file in a temporary directory; the flashed image with
    three sessions; the virtual board running it with its radio."""
    tmp = tmp_path_factory.mktemp("sync")
    mp = pytest.MonkeyPatch()
    mp.setenv("RETROSTEP_CONFIG_DIR", str(tmp / "config"))
    mp.setenv("RETROSTEP_DATA_DIR", str(tmp / "data"))
    mp.setenv("RETROSTEP_DB", str(tmp / "sessions.sqlite3"))
    mp.setenv("RETROSTEP_SIM_RADIO", str(tmp / "radio.json"))
    image = tmp / "flash.img"
    fw = copy_firmware(tmp / "firmware")
    with VirtualBoard(image) as vb:  # flash and provision, as `retrostep flash --sim`
        flash_api(vb.port, fw)
    trace, _ = synth.synthesize([synth._st(2), synth._b(14), synth._st(2)],
                                synth.make_person(3), fs_hz=26, seed=5)  # fmt: skip
    walk = tmp / "walk.csv"
    write_trace(walk, trace)
    for k in range(3):
        res = sim.run(str(walk), image=str(image), wall=WALL0 + 3600 * k)
        assert res.live["backward"] > 5, res.console
    expected = _raw_sessions(image)
    assert sorted(expected) == [1, 2, 3]
    board = VirtualBoard(image, radio=True, publish=tmp / "radio.json",
                         main_args=tuple(a for ms in BUTTON_MS for a in ("--button", str(ms))))
    board.start()
    (record,) = (tmp / "config" / "devices").glob("*.json")
    try:
        yield {"tmp": tmp, "image": image, "board": board, "expected": expected,
               "record": json.loads(record.read_text()), "t0": time.monotonic()}  # fmt: skip
    finally:
        board.stop()
        mp.undo()


def _stored() -> list[tuple[int, bytes]]:
    with Store.open(os.environ["RETROSTEP_DB"], readonly=True) as store:
        return [(s.device_session, store.raw(s.id)) for s in store.sessions()]


def _scan_json() -> list[dict]:
    res = invoke("scan", "--sim", *SCAN, "--json")
    assert res.exit_code == 0, res.stderr
    return json.loads(res.stdout)


def test_scan_lists_the_board_with_its_unsynced_sessions(env):
    (dev,) = _scan_json()
    assert dev["name"] == env["record"]["name"] and dev["key"] is True
    assert dev["unsynced"] and dev["unsynced_sessions"] == 3 and dev["provisioned"]
    res = invoke("scan", "--sim", *SCAN)
    assert res.exit_code == 0 and env["record"]["name"] in res.stdout and "yes" in res.stdout


def test_dropped_links_resume_and_every_session_arrives_once(env, monkeypatch):
    expected = env["expected"]
    drops = 0
    for n in (2, 5, 9, 14, 22):  # INFO/AUTH, LIST, inside the first and later READs
        monkeypatch.setattr(BleakLink, "drop_after", n)
        res = invoke("sync", "--sim", *SCAN)
        if res.exit_code == 0:  # less left than n notifications: it completed
            break
        drops += 1
        assert res.exit_code == 24, res.stderr
        assert "run `retrostep sync` again to resume" in res.stderr, res.stderr
        assert "Traceback" not in res.stderr and len(res.stderr.strip().splitlines()) == 1
        for sid, raw in _stored():  # whatever is stored is verified and whole
            assert raw == expected[sid]
    assert drops >= 3
    monkeypatch.setattr(BleakLink, "drop_after", None)
    res = invoke("sync", "--sim", *SCAN)
    assert res.exit_code == 0, res.stderr
    assert "device clock set" in res.stdout
    stored = _stored()
    assert sorted(sid for sid, _ in stored) == [1, 2, 3]  # each exactly once
    assert dict(stored) == expected  # byte-exact
    (dev,) = _scan_json()  # the device lists nothing unsynced now
    assert not dev["unsynced"] and dev["unsynced_sessions"] == 0

    # nothing new the second time; the device still holds every session, all synced
    res = invoke("sync", "--sim", *SCAN, "--json")
    assert res.exit_code == 0, res.stderr
    out = json.loads(res.stdout)
    assert out["bytes"] == 0 and out["sessions"] == [] and out["listed"] == 3
    assert out["clock_set"] is not None


def test_device_info_and_config_round_trip(env):
    res = invoke("config", "set", "--sim", *SCAN, "sway_limit_deg=8",
                 "program=backward:60,rest:30")  # fmt: skip
    assert res.exit_code == 0, res.stderr
    res = invoke("config", "get", "--sim", *SCAN, "--json")
    assert res.exit_code == 0, res.stderr
    conf = json.loads(res.stdout)
    assert conf["sway_limit_deg"] == 8 and conf["program"] == [["backward", 60], ["rest", 30]]
    # refused here, with the reason
    res = invoke("config", "set", "--sim", *SCAN, "sway_limit_deg=99")
    assert res.exit_code == 2 and "sway_limit_deg: must be" in res.stderr
    res = invoke("config", "set", "--sim", *SCAN, "colour=red")
    assert res.exit_code == 2 and "unknown config key" in res.stderr

    # and by the device itself: bytes the host's codec would never make
    async def on_device():
        radio = Radio.simulated()
        found = choose(await scan(radio, 1.5), None, sim=True)
        async with connect(radio, found) as link, ProtocolClient(link) as pc:
            info = await pc.info()
            assert info.clock_set  # the syncs set it
            await pc.authenticate(bytes.fromhex(env["record"]["key"]))
            bad = bytearray(await pc.call(sp.OP_GET_CONFIG))
            bad[5:7] = b"\xff\xff"  # sway limit 655.35 degrees, CRC fixed up
            bad[-4:] = r.crc32(bytes(bad[:-4])).to_bytes(4, "little")
            with pytest.raises(DeviceError) as e:
                await pc.call(sp.OP_SET_CONFIG, bytes(bad))
            assert e.value.status == sp.ERR_INVALID and "sway_limit_deg" in e.value.text
            return await pc.get_config()

    assert asyncio.run(on_device())["sway_limit_deg"] == 8  # nothing stored


def test_a_session_recorded_after_the_sync_has_the_clock_set(env):
    env["board"].check()  # alive
    # the button session opens at 30 s of board time and closes at 32 s
    left = env["t0"] + BUTTON_MS[1] / 1000 + 3 - time.monotonic()
    if left > 0:
        time.sleep(left)
    res = invoke("sync", "--sim", *SCAN, "--json")
    assert res.exit_code == 0, res.stderr
    out = json.loads(res.stdout)
    assert [s["device_session"] for s in out["sessions"]] == [4], out
    (raw,) = [raw for sid, raw in _stored() if sid == 4]
    header = next(f for k, f in r.decode_report(raw)["records"] if k == r.HEADER)
    now = int(time.time()) - sp.EPOCH_2000_UNIX
    assert abs(header["wall_start"] - now) < 120, (header, now)


def test_no_board_running_is_a_clear_message(tmp_path, monkeypatch):
    monkeypatch.setenv("RETROSTEP_SIM_RADIO", str(tmp_path / "none.json"))
    for args in (("sync", "--sim"), ("scan", "--sim"), ("config", "get", "--sim")):
        res = invoke(*args)
        assert res.exit_code == 3, res.stderr
        assert "no simulated board is running" in res.stderr and "Traceback" not in res.stderr


def test_a_device_of_another_kind_is_named_as_such(tmp_path, monkeypatch):
    runtime = tmp_path / "radio.json"
    monkeypatch.setenv("RETROSTEP_SIM_RADIO", str(runtime))
    monkeypatch.setenv("RETROSTEP_DB", str(tmp_path / "s.sqlite3"))
    with BackgroundSimRadio(name="other", publish=runtime) as radio:
        proc = subprocess.Popen([micropython_executable(), str(ECHO), "rs-other"],
                                env={**os.environ, **radio.mp_env()}, stdout=subprocess.PIPE,
                                text=True)  # fmt: skip
        try:
            assert proc.stdout.readline().startswith("READY")
            res = invoke("sync", "--sim", *SCAN, "rs-other")
            assert res.exit_code == 22, res.stderr
            assert "rs-other" in res.stderr and "is not a retrostep device" in res.stderr
            res = invoke("sync", "--sim", *SCAN)
            assert res.exit_code == 21, res.stderr
            assert "no retrostep device on the simulated radio" in res.stderr
            res = invoke("sync", "--sim", *SCAN, "nobody")
            assert res.exit_code == 21 and "no device 'nobody'" in res.stderr
        finally:
            proc.kill()
            proc.wait()

