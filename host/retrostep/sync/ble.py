"""The BLE connection, on bleak's public API: finding retrostep devices, and the protocol
link (:class:`BleakLink`) that :class:`~.protocol_client.ProtocolClient` runs over.

``Radio`` says which radio: the OS's (bleak's default backend, no arguments) or the
simulated one of a running ``retrostep sim board`` (``--sim``: bleak on the bumble
backend, ``retrostep.radio``). Nothing else differs between the two.
"""

from __future__ import annotations

import asyncio
import contextlib
from dataclasses import dataclass, field
from typing import Any

from bleak import BleakClient, BleakScanner
from bleak.exc import BleakError

from retrostep_core import sync_protocol as sp

from .errors import DeviceNotFound, LinkLost, NotARetrostepDevice, SeveralDevices


@dataclass
class Radio:
    """bleak's keyword arguments for a scanner and a client (empty: the OS backend)."""

    scanner: dict[str, Any] = field(default_factory=dict)
    client: dict[str, Any] = field(default_factory=dict)
    sim: bool = False

    @classmethod
    def os(cls) -> Radio:
        return cls()

    @classmethod
    def simulated(cls, path=None) -> Radio:
        """The radio of the sim board running elsewhere (SimRadioUnavailable if none)."""
        from ..radio import attach_to_running_sim

        central = attach_to_running_sim(path)
        return cls(central.scanner_kwargs(), central.client_kwargs(), sim=True)


@dataclass
class Found:
    """A device heard while scanning."""

    device: Any  # bleak's BLEDevice
    name: str
    address: str
    rssi: int
    retrostep: bool  # advertises the retrostep service
    adv: dict | None  # sp.parse_manufacturer of its manufacturer data (retrostep only)

    def to_json(self) -> dict:
        a = self.adv or {}
        return {"name": self.name, "address": self.address, "rssi": self.rssi,
                "unsynced": a.get("unsynced_data"), "unsynced_sessions":
                a.get("unsynced_sessions"), "provisioned": a.get("provisioned"),
                "recording": a.get("recording"), "storage_full": a.get("storage_full")}  # fmt: skip


async def scan(radio: Radio, timeout: float, want: str | None = None) -> list[Found]:
    """Every device heard within ``timeout`` seconds (retrostep devices first, then by
    name). With ``want`` (a name or an address) it stops as soon as that one is heard
    with its scan response."""
    seen: dict[str, Found] = {}
    hit = asyncio.Event()

    def on_adv(device, ad) -> None:
        ours = sp.SERVICE_UUID in [u.lower() for u in ad.service_uuids]
        mfr = ad.manufacturer_data.get(sp.COMPANY_ID)
        adv = sp.parse_manufacturer(mfr) if ours and mfr is not None else None
        name = ad.local_name or device.name or ""
        old = seen.get(device.address)
        f = Found(device, name or (old.name if old else ""), device.address, ad.rssi,
                  ours or bool(old and old.retrostep),
                  adv or (old.adv if old else None))  # fmt: skip
        seen[device.address] = f
        if want is not None and f.name and _matches(f, want):
            hit.set()

    async with BleakScanner(on_adv, **radio.scanner):
        with contextlib.suppress(asyncio.TimeoutError):
            await asyncio.wait_for(hit.wait(), timeout)
    return sorted(seen.values(), key=lambda f: (not f.retrostep, f.name, f.address))


def _matches(f: Found, want: str) -> bool:
    return f.name == want or f.address.lower() == want.lower()


def choose(found: list[Found], want: str | None, sim: bool = False) -> Found:
    """The device to talk to: the one named (``want``: name or address), else the only
    retrostep device heard. Clear errors for none, another kind, several."""
    where = "on the simulated radio" if sim else "in range"
    ours = [f for f in found if f.retrostep]
    if want is not None:
        named = [f for f in found if _matches(f, want)]
        mine = [f for f in named if f.retrostep]
        if len(mine) == 1:
            return mine[0]
        if len(mine) > 1:
            raise SeveralDevices(f"several retrostep devices are named {want!r}: "
                                 f"{_listing(mine)}; give the address")  # fmt: skip
        if named:
            raise NotARetrostepDevice(
                f"{want} ({named[0].address}) is not a retrostep device: it does not offer "
                "the retrostep service")  # fmt: skip
        also = f" (retrostep devices heard: {_listing(ours)})" if ours else ""
        raise DeviceNotFound(f"no device {want!r} {where}{also}")
    if not ours:
        others = f" ({len(found)} other Bluetooth device(s) heard)" if found else ""
        hint = ("is `retrostep sim board` running?" if sim else
                "is it awake (walk a few steps or press its button) and within a few meters?")
        raise DeviceNotFound(f"no retrostep device {where}{others}: {hint}")
    if len(ours) > 1:
        raise SeveralDevices(f"{len(ours)} retrostep devices {where}: {_listing(ours)}; "
                             "name the one to use (its name or address)")  # fmt: skip
    return ours[0]


def _listing(found: list[Found]) -> str:
    return ", ".join(f"{f.name or '?'} ({f.address})" for f in found)


class BleakLink:
    """The protocol link over a connected :class:`BleakClient`: each request fragment is
    a write with response to the control point; the data characteristic's notifications
    are the stream, which ends when the link drops.

    ``drop_after``: disconnect (a real, central-side disconnection) once that many
    notifications arrived; for tests that cut a sync at chosen points."""

    drop_after: int | None = None

    def __init__(self, client: BleakClient):
        self.client = client
        self.queue: asyncio.Queue[bytes | None] = asyncio.Queue(maxsize=4096)
        self.received = 0
        self._dropping = False

    @property
    def mtu(self) -> int:
        return self.client.mtu_size

    async def start(self) -> BleakLink:
        try:
            await self.client.start_notify(sp.DATA_UUID, self._on_notify)
        except BleakError as e:
            raise LinkLost(f"the device did not accept notifications: {e}") from e
        return self

    def lost(self) -> None:
        """The client's disconnected callback: end the stream."""
        with contextlib.suppress(asyncio.QueueFull):
            self.queue.put_nowait(None)

    def _on_notify(self, _char, data: bytearray) -> None:
        self.received += 1
        if self._dropping:
            return
        try:
            self.queue.put_nowait(bytes(data))
        except asyncio.QueueFull:  # the reader is gone: nothing can be done with it
            return
        if self.drop_after is not None and self.received >= self.drop_after:
            self._dropping = True
            asyncio.get_running_loop().create_task(self.client.disconnect())

    async def write(self, data: bytes) -> None:
        if self._dropping or not self.client.is_connected:
            raise LinkLost()
        try:
            await self.client.write_gatt_char(sp.CONTROL_UUID, data, response=True)
        except BleakError as e:
            raise LinkLost(f"the link to the device was lost ({e})") from e

    async def notifications(self):
        while True:
            frag = await self.queue.get()
            if frag is None:
                return
            yield frag


@contextlib.asynccontextmanager
async def connect(radio: Radio, found: Found, timeout: float = 10.0):
    """A connected :class:`BleakLink` to ``found`` (LinkLost if it cannot connect)."""
    holder: list[BleakLink] = []

    def on_disconnect(_client) -> None:
        for link in holder:
            link.lost()

    client = BleakClient(found.device, disconnected_callback=on_disconnect, timeout=timeout,
                         **radio.client)  # fmt: skip
    try:
        await client.connect()
    except (BleakError, asyncio.TimeoutError, OSError) as e:
        raise LinkLost(f"could not connect to {found.name or found.address}: {e}") from e
    try:
        link = BleakLink(client)
        holder.append(link)
        yield await link.start()
    finally:
        with contextlib.suppress(BleakError, asyncio.TimeoutError, OSError):
            await client.disconnect()
