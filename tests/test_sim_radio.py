"""The simulated radio end to end: a MicroPython peripheral (tests/tools/
ble_echo_peripheral.py, written against MicroPython's documented ``bluetooth`` API)
runs in the real unix port with the ``bluetooth`` stand-in; the host side uses only
bleak's public API with the bumble backend; both meet on a bumble virtual link."""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
from bleak import BleakClient, BleakScanner
from bleak.exc import BleakGATTProtocolError

from retrostep.radio import (
    MP_DIR,
    BackgroundSimRadio,
    SimRadio,
    SimRadioUnavailable,
    attach_to_running_sim,
)
from retrostep.radio.sim_radio import read_runtime_file
from retrostep.runtime.micropython_port import micropython_executable

HERE = Path(__file__).resolve().parent
ECHO = HERE / "tools" / "ble_echo_peripheral.py"
NAME = "rs-echo"
SVC = "7e0f0001-5d3a-4b8e-9c1f-2a6b8d3e4f50"
RX = "7e0f0002-5d3a-4b8e-9c1f-2a6b8d3e4f50"
TX = "7e0f0003-5d3a-4b8e-9c1f-2a6b8d3e4f50"
INFO = "00002a26-0000-1000-8000-00805f9b34fb"
SMALL = "7e0f0004-5d3a-4b8e-9c1f-2a6b8d3e4f50"
COUNT = "7e0f0005-5d3a-4b8e-9c1f-2a6b8d3e4f50"
LOG = "7e0f0006-5d3a-4b8e-9c1f-2a6b8d3e4f50"
TIMEOUT_S = 30  # per test, whole scenario


def run(coro):
    async def bounded():
        return await asyncio.wait_for(coro, TIMEOUT_S)

    return asyncio.run(bounded())


class Board:
    """The MicroPython process: its printed lines, read as they come."""

    def __init__(self, proc: asyncio.subprocess.Process) -> None:
        self.proc = proc
        self.lines: list[str] = []

    async def expect(self, word: str, timeout: float = 5.0) -> list[str]:
        """The next line starting with ``word`` (earlier lines are kept in .lines)."""

        async def find():
            while True:
                raw = await self.proc.stdout.readline()
                if not raw:
                    err = (await self.proc.stderr.read()).decode()
                    raise AssertionError(f"board ended before {word!r}: {self.lines} {err}")
                line = raw.decode().strip()
                self.lines.append(line)
                if line.split()[:1] == [word]:
                    return line.split()

        return await asyncio.wait_for(find(), timeout)


@contextlib.asynccontextmanager
async def echo_board(name: str = NAME, publish: Path | None = None):
    """A SimRadio in this event loop with the echo peripheral running on it."""
    async with SimRadio(name="test-board", publish=publish or False) as radio:
        proc = await asyncio.create_subprocess_exec(
            micropython_executable(), str(ECHO), name,
            env={**os.environ, **radio.mp_env()},
            stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
        )  # fmt: skip
        board = Board(proc)
        try:
            ready = await board.expect("READY")
            board.mac = ":".join(ready[1][i : i + 2] for i in range(0, 12, 2)).upper()
            board.rx, board.tx, board.info, board.small = map(int, ready[2:6])
            yield radio, board
        finally:
            if proc.returncode is None:
                proc.kill()
            await proc.wait()


async def find_echo(central, timeout: float = 5.0):
    device = await BleakScanner.find_device_by_filter(
        lambda d, ad: ad.local_name == NAME and SVC in ad.service_uuids,
        timeout=timeout,
        **central.scanner_kwargs(),
    )
    assert device is not None, "the echo peripheral was not found"
    return device


class Inbox:
    """Notification/indication payloads from a start_notify callback."""

    def __init__(self) -> None:
        self.items: list[bytes] = []
        self.changed = asyncio.Event()

    def __call__(self, _char, data: bytearray) -> None:
        self.items.append(bytes(data))
        self.changed.set()

    async def total(self, n: int, timeout: float = 3.0) -> bytes:
        async def wait():
            while sum(map(len, self.items)) < n:
                self.changed.clear()
                await self.changed.wait()

        await asyncio.wait_for(wait(), timeout)
        return b"".join(self.items)


# -- advertising and scanning -----------------------------------------------------------


def test_scan_reports_name_services_and_manufacturer_data():
    async def scenario():
        async with echo_board() as (radio, board):
            central = radio.central()
            device = await find_echo(central)
            assert device.address == board.mac  # the board's public address
            assert device.address.startswith("24:0A:C4:")  # Espressif OUI
            assert device.name == NAME

            seen = {}
            async with BleakScanner(
                lambda d, ad: seen.setdefault("active", ad), [SVC], **central.scanner_kwargs()
            ):
                while "active" not in seen:
                    await asyncio.sleep(0.02)
            ad = seen["active"]
            assert ad.local_name == NAME  # from the scan response
            assert ad.service_uuids == [SVC]
            assert ad.manufacturer_data == {0xFFFF: b"rs1"}
            assert ad.platform_data[0].is_connectable

            # A passive scan sends no scan request: no scan response, hence no name.
            passive = []
            async with BleakScanner(
                lambda d, ad: passive.append(ad), [SVC], "passive", **central.scanner_kwargs()
            ):
                await asyncio.sleep(0.3)  # about 15 advertising events
            assert len(passive) >= 5
            assert {ad.local_name for ad in passive} == {None}
            assert all(ad.service_uuids == [SVC] for ad in passive)

            # A service filter that does not match sees nothing.
            heart_rate = "0000180d-0000-1000-8000-00805f9b34fb"
            other = await BleakScanner.find_device_by_filter(
                lambda d, ad: True, timeout=0.5, service_uuids=[heart_rate],
                **central.scanner_kwargs(),
            )  # fmt: skip
            assert other is None

    run(scenario())


# -- GATT: MTU, writes, notifications, reads, permissions ------------------------------


def test_mtu_write_echo_read_truncation_and_permissions():
    async def scenario():
        async with echo_board() as (radio, board):
            central = radio.central()
            device = await find_echo(central)
            async with BleakClient(device, **central.client_kwargs()) as client:
                conn = await board.expect("CONNECT")
                assert conn[2] == "1"  # the central uses a random address
                assert (await board.expect("MTU"))[2] == "247"
                assert client.mtu_size == 247  # min(517 asked, 247 configured)
                # GAP and GATT services stay with the stack, as on a real OS.
                assert [s.uuid for s in client.services] == [SVC]

                inbox = Inbox()
                await client.start_notify(TX, inbox)

                payload = bytes(range(256)) * 2  # 512 bytes: a long write (prepare/execute)
                await client.write_gatt_char(RX, payload, response=True)
                # The RX buffer is 400 bytes: the peripheral keeps (and echoes) 400.
                assert await inbox.total(400) == payload[:400]
                assert [len(x) for x in inbox.items] == [244, 156]  # MTU - 3 chunks
                assert (await board.expect("WRITE"))[2:] == [str(board.rx), "400"]
                await asyncio.sleep(0.1)
                assert sum(map(len, inbox.items)) == 400

                inbox.items.clear()
                await client.write_gatt_char(RX, payload[:300], response=True)
                assert await inbox.total(300) == payload[:300]
                assert [len(x) for x in inbox.items] == [244, 56]

                inbox.items.clear()
                await client.write_gatt_char(RX, b"hello", response=False)
                assert await inbox.total(5) == b"hello"

                assert await client.read_gatt_char(INFO) == b"retrostep-echo v1"

                # A write is answered once the IRQ handler has run (it counts writes).
                before = int(await client.read_gatt_char(COUNT))
                for k in range(1, 4):
                    await client.write_gatt_char(SMALL, b"k", response=True)
                    assert int(await client.read_gatt_char(COUNT)) == before + k

                # The default 20-byte buffer: a 30-byte write is cut, as on hardware.
                await client.write_gatt_char(SMALL, bytes(range(30)), response=True)
                assert await client.read_gatt_char(SMALL) == bytes(range(20))

                # Append mode: writes accumulate, up to the 8-byte buffer.
                for part in (b"abc", b"def", b"ghi"):
                    await client.write_gatt_char(LOG, part, response=True)
                assert await client.read_gatt_char(LOG) == b"abcdefgh"

                with pytest.raises(BleakGATTProtocolError) as err:
                    await client.read_gatt_char(RX)  # no FLAG_READ
                assert err.value.code == 0x02
                with pytest.raises(BleakGATTProtocolError) as err:
                    await client.write_gatt_char(INFO, b"x", response=True)  # no FLAG_WRITE
                assert err.value.code == 0x03

                inbox.items.clear()
                await client.write_gatt_char(RX, b"!indicate", response=True)
                assert await inbox.total(3) == b"ind"
                done = await board.expect("INDICATE_DONE")
                assert done[2:] == [str(board.tx), "0"]

                inbox.items.clear()
                await client.write_gatt_char(RX, b"!update", response=True)
                assert await inbox.total(3) == b"upd"  # send_update reaches a subscriber

                # The peripheral may start an MTU exchange too: the result comes back.
                await client.write_gatt_char(RX, b"!mtu", response=True)
                assert (await board.expect("MTU"))[2] == "247"

                await client.stop_notify(TX)
                inbox.items.clear()
                await client.write_gatt_char(RX, b"!update", response=True)
                await asyncio.sleep(0.2)
                assert inbox.items == []

    run(scenario())


# -- disconnections ---------------------------------------------------------------------


def test_disconnect_from_either_side():
    async def scenario():
        async with echo_board() as (radio, board):
            central = radio.central()

            # From the central: the peripheral's IRQ, then it advertises again.
            device = await find_echo(central)
            client = BleakClient(device, **central.client_kwargs())
            await client.connect()
            handle = (await board.expect("CONNECT"))[1]
            await client.disconnect()
            assert (await board.expect("DISCONNECT"))[1] == handle
            assert not client.is_connected

            # From the peripheral (gap_disconnect): bleak's disconnected callback.
            device = await find_echo(central)
            lost = asyncio.Event()
            client = BleakClient(device, lambda c: lost.set(), **central.client_kwargs())
            await client.connect()
            await board.expect("CONNECT")
            await client.write_gatt_char(RX, b"!bye", response=True)
            await asyncio.wait_for(lost.wait(), 3)
            assert not client.is_connected
            await board.expect("DISCONNECT")

            # active(False) on the board drops the central too.
            device = await find_echo(central)
            lost = asyncio.Event()
            client = BleakClient(device, lambda c: lost.set(), **central.client_kwargs())
            await client.connect()
            await client.write_gatt_char(RX, b"!off", response=False)
            await asyncio.wait_for(lost.wait(), 3)
            assert (await board.expect("OFF"))[1] == "False"

    run(scenario())


def test_board_process_dying_mid_connection_disconnects_the_central():
    async def scenario():
        async with echo_board() as (radio, board):
            central = radio.central()
            device = await find_echo(central)
            lost = asyncio.Event()
            client = BleakClient(device, lambda c: lost.set(), **central.client_kwargs())
            await client.connect()
            await board.expect("CONNECT")
            board.proc.kill()  # no goodbye: like pulling the battery
            await asyncio.wait_for(lost.wait(), 3)
            assert not client.is_connected
            # The radio is silent now.
            gone = await BleakScanner.find_device_by_filter(
                lambda d, ad: ad.local_name == NAME, timeout=0.5, **central.scanner_kwargs()
            )
            assert gone is None

    run(scenario())


# -- the `bluetooth` module itself, in the unix port -----------------------------------

API_CHECKS = """
import bluetooth
from bluetooth import UUID
ble = bluetooth.BLE()
assert bluetooth.BLE() is ble
try:
    ble.config("mac")
except OSError as e:
    print("inactive", e.errno)
ble.active(True)
print("active", ble.active())
u = UUID(0x180D)
assert u == UUID(0x180D) and u != UUID(0x180F) and bytes(u) == b"\\x0d\\x18"
long = UUID("6e400001-b5a3-f393-e0a9-e50e24dcca9e")
assert bytes(long)[0] == 0x9E and len(bytes(long)) == 16 and long == UUID(bytes(long))
print(repr(u), repr(long))
addr_type, mac = ble.config("mac")
print("mac", addr_type, len(mac), mac[:3] == b"\\x24\\x0a\\xc4")
print("defaults", ble.config("mtu"), ble.config("gap_name"))
svc = (UUID(0x180D), ((UUID(0x2A37), bluetooth.FLAG_NOTIFY, ((UUID(0x2901), bluetooth.FLAG_READ),)),
                      (UUID(0x2A38), bluetooth.FLAG_READ)))
((hr, hr_desc, loc),) = ble.gatts_register_services((svc,))
print("handles", hr < hr_desc < loc)
ble.gatts_write(loc, b"x" * 40)
print("grown", len(ble.gatts_read(loc)))
ble.gatts_set_buffer(loc, 10)
print("shrunk", ble.gatts_read(loc))
ble.gatts_set_buffer(hr_desc, 30, True)
ble.gatts_write(hr_desc, b"abc")
print("append-read", ble.gatts_read(hr_desc), ble.gatts_read(hr_desc))
for call in (lambda: ble.config(mtu=10), lambda: ble.gap_advertise(10_000),
             lambda: ble.gatts_notify(5, hr), lambda: ble.gatts_read(999)):
    try:
        call()
    except OSError as e:
        print("error", e.errno)
print("disconnect", ble.gap_disconnect(5))
ble.gap_advertise(20_000, b"\\x02\\x01\\x06")
try:
    ble.gatts_register_services((svc,))
except OSError as e:
    print("busy", e.errno)
ble.gap_advertise(None)
print("again", len(ble.gatts_register_services((svc,))[0]))
try:
    ble.config(unknown=1)
except ValueError:
    print("unknown config")
ble.active(False)
print("off", ble.active())
"""


def _run_mp(script: str, env: dict[str, str], tmp_path: Path) -> subprocess.CompletedProcess:
    path = tmp_path / "check.py"
    path.write_text(textwrap.dedent(script))
    return subprocess.run([micropython_executable(), str(path)], env=env, capture_output=True,
                          text=True, timeout=20, check=False)  # fmt: skip


def test_bluetooth_module_semantics(tmp_path):
    async def scenario():
        async with SimRadio(name="api") as radio:
            env = {**os.environ, **radio.mp_env()}
            return await asyncio.to_thread(_run_mp, API_CHECKS, env, tmp_path)

    proc = run(scenario())
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert proc.stdout.splitlines() == [
        "inactive 19",  # ENODEV: the radio is off
        "active True",
        "UUID(0x180d) UUID('6e400001-b5a3-f393-e0a9-e50e24dcca9e')",
        "mac 0 6 True",
        "defaults 256 b'MPY ESP32'",
        "handles True",
        "grown 40",  # gatts_write grows the buffer
        "shrunk b'xxxxxxxxxx'",
        "append-read b'abc' b''",  # append mode: a read empties the buffer
        "error 22",  # EINVAL: MTU below 23
        "error 22",  # EINVAL: advertising interval below 20 ms
        "error 107",  # ENOTCONN
        "error 22",  # EINVAL: no such handle
        "disconnect False",
        "busy 16",  # EBUSY: services cannot change while advertising
        "again 3",
        "unknown config",
        "off False",
    ]


def test_without_a_radio_bridge_active_fails_like_a_dead_controller(tmp_path):
    env = {k: v for k, v in os.environ.items() if k != "RETROSTEP_RADIO"}
    env["MICROPYPATH"] = f".frozen:{MP_DIR}"  # the stand-in, but no RETROSTEP_RADIO
    script = """
    import bluetooth
    ble = bluetooth.BLE()
    try:
        ble.active(True)
    except OSError as e:
        print("error", e.errno, ble.active())
    """
    proc = _run_mp(script, env, tmp_path)
    assert proc.stdout.split() == ["error", "110", "False"], proc.stdout + proc.stderr


# -- across processes ------------------------------------------------------------------

CHILD = """
import asyncio, json, sys
from bleak import BleakClient, BleakScanner
from retrostep.radio import attach_to_running_sim

async def main():
    central = attach_to_running_sim()
    device = await BleakScanner.find_device_by_filter(
        lambda d, ad: ad.local_name == sys.argv[1], timeout=5, **central.scanner_kwargs())
    out = {"address": device.address}
    client = BleakClient(device, **central.client_kwargs())
    await client.connect()
    out["mtu"] = client.mtu_size
    out["info"] = (await client.read_gatt_char("00002a26-0000-1000-8000-00805f9b34fb")).decode()
    print(json.dumps(out), flush=True)
    await asyncio.sleep(30)  # stays connected until killed

asyncio.run(main())
"""


def test_cross_process_central_attaches_through_the_runtime_file(tmp_path):
    runtime = tmp_path / "radio.json"

    async def scenario():
        async with echo_board(publish=runtime) as (radio, board):
            info = read_runtime_file(runtime)
            assert info is not None and info["pid"] == os.getpid()
            env = {**os.environ, "RETROSTEP_SIM_RADIO": str(runtime)}
            child = await asyncio.create_subprocess_exec(
                sys.executable, "-c", CHILD, NAME, env=env,
                stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
            )  # fmt: skip
            try:
                line = await asyncio.wait_for(child.stdout.readline(), 15)
                assert line, (await child.stderr.read()).decode()
                seen = json.loads(line)
                assert seen == {"address": board.mac, "mtu": 247, "info": "retrostep-echo v1"}
                await board.expect("CONNECT")
                child.kill()  # the CLI dies while connected: the board must notice
                await board.expect("DISCONNECT")
            finally:
                if child.returncode is None:
                    child.kill()
                await child.wait()
        assert not runtime.exists()  # removed when the radio stops

    run(scenario())


def test_attach_without_a_running_board_is_a_clear_error(tmp_path):
    missing = tmp_path / "radio.json"
    with pytest.raises(SimRadioUnavailable, match="no simulated board is running"):
        attach_to_running_sim(missing)
    # A file left by a board that is gone (its pid no longer runs) counts as none.
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    missing.write_text(json.dumps({"version": 1, "pid": dead.pid, "hci": "tcp-client:127.0.0.1:9"}))
    with pytest.raises(SimRadioUnavailable):
        attach_to_running_sim(missing)


def test_background_radio_serves_a_central_in_another_event_loop(tmp_path):
    """The owner is not an asyncio program (the virtual board's pty loop): the radio
    runs on its own thread; a central in another loop (a CLI command's asyncio.run)
    attaches through the runtime file."""
    runtime = tmp_path / "radio.json"
    with BackgroundSimRadio(name="bg", publish=runtime) as radio:
        board = subprocess.Popen(
            [micropython_executable(), str(ECHO), "rs-bg"],
            env={**os.environ, **radio.mp_env()}, stdout=subprocess.PIPE, text=True,
        )  # fmt: skip
        try:
            assert board.stdout.readline().startswith("READY")

            async def scan():
                central = attach_to_running_sim(runtime)
                device = await BleakScanner.find_device_by_filter(
                    lambda d, ad: ad.local_name == "rs-bg", timeout=5, **central.scanner_kwargs()
                )
                async with BleakClient(device, **central.client_kwargs()) as client:
                    return await client.read_gatt_char(INFO)

            assert run(scan()) == b"retrostep-echo v1"
            assert board.stdout.readline().split()[0] == "CONNECT"
        finally:
            board.kill()
            board.wait()
            board.stdout.close()
    assert not runtime.exists()
