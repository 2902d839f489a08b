"""Sync end to end on the simulated radio: the firmware's BLE service and sync server in
the real MicroPython unix port (tests/tools/sync_peripheral.py, through the
``bluetooth`` stand-in), the host's ProtocolClient and pull_sessions through bleak's
public API on the bumble backend; both on a bumble virtual link."""

from __future__ import annotations

import asyncio
import json
import os
import random
import secrets
from pathlib import Path

import pytest
from bleak import BleakClient, BleakScanner

from retrostep.radio import SimRadio
from retrostep.runtime.micropython_port import micropython_executable
from retrostep.sync.errors import AuthError, DeviceError
from retrostep.sync.protocol_client import ProtocolClient
from retrostep.sync.pull import MemorySink, pull_sessions
from retrostep_core import records as r
from retrostep_core import sync_protocol as sp
from retrostep_device.storage import SessionStore

HERE = Path(__file__).resolve().parent
FIRMWARE = HERE.parent / "firmware"
PERIPHERAL = HERE / "tools" / "sync_peripheral.py"
KEY = bytes(range(7, 39))
DEVICE_ID = "gen-0a1b2c3d4e5f"
BATTERY_LEVEL = "00002a19-0000-1000-8000-00805f9b34fb"
FIRMWARE_REVISION = "00002a26-0000-1000-8000-00805f9b34fb"


class BleakLink:
    """A protocol link over bleak: write with response to the control point, the data
    characteristic's notifications as the stream (ending when the link drops)."""

    def __init__(self, client: BleakClient):
        self.client = client
        self.queue: asyncio.Queue[bytes | None] = asyncio.Queue()
        self.sizes: list[int] = []

    @property
    def mtu(self) -> int:
        return self.client.mtu_size

    async def start(self) -> BleakLink:
        await self.client.start_notify(sp.DATA_UUID, self._on_notify)
        return self

    def _on_notify(self, _char, data: bytearray) -> None:
        self.sizes.append(len(data))
        self.queue.put_nowait(bytes(data))

    async def write(self, data: bytes) -> None:
        await self.client.write_gatt_char(sp.CONTROL_UUID, data, response=True)

    async def notifications(self):
        while True:
            frag = await self.queue.get()
            if frag is None:
                return
            yield frag


def _device_dir(root: Path) -> None:
    store = SessionStore(str(root / "logs"))
    rng = random.Random(2)
    for seconds in (900, 400):
        store.begin({"fs_mhz": 52000, "firmware": "retrostep 0.1.0"})
        enc = r.Encoder()
        for s in range(seconds):
            out = enc.add_step(s * 1000 + rng.randrange(400), -1 if rng.random() < 0.3 else 1)
            if out is not None:
                store.append(out)
            out = enc.add_second(s * 1000, 1, 0, 600, 30, 90, True, r.KIND_FORWARD)
            if out is not None:
                store.append(out)
                out = enc.flush_steps()
                if out is not None:
                    store.append(out)
        for flush in (enc.flush_seconds, enc.flush_steps):
            out = flush()
            if out is not None:
                store.append(out)
        store.end({"t": seconds * 1000, "reason": r.END_BUTTON})
    (root / "device.json").write_text(json.dumps(
        {"v": 1, "id": DEVICE_ID, "name": "retrostep-4e5f", "key": KEY.hex()}))  # fmt: skip


async def _scan(central) -> tuple:
    found: dict = {}

    def seen(d, ad):
        if sp.SERVICE_UUID in ad.service_uuids and ad.local_name:
            found.setdefault("x", (d, ad))

    async with BleakScanner(seen, **central.scanner_kwargs()):
        while "x" not in found:
            await asyncio.sleep(0.02)
    return found["x"]


def test_sync_over_the_simulated_radio(tmp_path):
    _device_dir(tmp_path)

    async def scenario():
        async with SimRadio(name="sync-e2e") as radio:
            env = {**os.environ, **radio.mp_env(str(FIRMWARE))}
            proc = await asyncio.create_subprocess_exec(
                micropython_executable(), str(PERIPHERAL), str(tmp_path), env=env,
                stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
            )  # fmt: skip
            try:
                line = await asyncio.wait_for(proc.stdout.readline(), 20)
                assert line == b"READY\n", line + await proc.stderr.read()
                central = radio.central()
                device, ad = await _scan(central)
                assert ad.local_name == "retrostep-4e5f"
                adv = sp.parse_manufacturer(ad.manufacturer_data[sp.COMPANY_ID])
                assert adv["unsynced_data"] and adv["unsynced_sessions"] == 2
                assert adv["provisioned"]

                # a central without the key: public information only
                async with BleakClient(device, **central.client_kwargs()) as client:
                    st = sp.parse_status(await client.read_gatt_char(sp.STATUS_UUID))
                    assert not st["counts"] and st["forward"] == 0
                    assert st["unsynced_sessions"] == 2 and st["battery_pct"] == 70
                    assert await client.read_gatt_char(BATTERY_LEVEL) == bytes((70,))
                    assert await client.read_gatt_char(FIRMWARE_REVISION) == b"retrostep 0.1.0"
                    async with ProtocolClient(await BleakLink(client).start()) as pc:
                        info = await pc.info()
                        assert info.device_id == DEVICE_ID.encode() and info.provisioned
                        with pytest.raises(AuthError):
                            await pc.authenticate(secrets.token_bytes(32))
                        with pytest.raises(DeviceError) as e:
                            await pc.list_sessions()
                        assert e.value.status == sp.ERR_UNAUTHENTICATED

                # this computer, with the key
                device, _ = await _scan(central)
                async with BleakClient(device, **central.client_kwargs()) as client:
                    link = await BleakLink(client).start()
                    sink = MemorySink()
                    async with ProtocolClient(link) as pc:
                        rep = await pull_sessions(pc, KEY, sink)
                        assert rep.acked == [1, 2] and rep.clock is not None
                        st = sp.parse_status(await client.read_gatt_char(sp.STATUS_UUID))
                        assert st["counts"] and (st["forward"], st["backward"]) == (1234, 321)
                        assert st["unsynced_sessions"] == 0 and st["clock_set"]
                    assert client.mtu_size == 247 and max(link.sizes) == 244
                    for sid in (1, 2):
                        held = bytes(sink.data[(DEVICE_ID.encode(), sid)])
                        assert held == (tmp_path / "logs" / f"{sid}.rsl").read_bytes()
                assert (await asyncio.wait_for(proc.stdout.readline(), 5)).split()[0] == b"CLOCK"

                # advertising again, with nothing left to sync
                _, ad = await _scan(central)
                assert not sp.parse_manufacturer(ad.manufacturer_data[sp.COMPANY_ID])[
                    "unsynced_data"]  # fmt: skip
            finally:
                if proc.returncode is None:
                    proc.kill()
                await proc.wait()
        # the device's own index: both sessions acknowledged
        assert [s[2] for s in SessionStore(str(tmp_path / "logs")).list_sessions()] == [True] * 2

    asyncio.run(asyncio.wait_for(scenario(), 60))
