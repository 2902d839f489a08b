"""A bleak backend on bumble: the host's BLE code talks to the simulated radio through
bleak's public API, exactly as it talks to the OS's Bluetooth stack.

bleak takes a backend *class* (``BleakScanner(backend=...)``,
``BleakClient(..., backend=...)``); :class:`BumbleCentral` is the adapter those classes
use, and hands out backend classes bound to it::

    central = BumbleCentral(hci="tcp-client:127.0.0.1:PORT")   # or link=... in process
    device = await BleakScanner.find_device_by_filter(match, **central.scanner_kwargs())
    async with BleakClient(device, **central.client_kwargs()) as client:
        ...

Like an OS stack, the adapter negotiates the ATT MTU on connect (``mtu``, 517 as BlueZ
and Android ask), merges advertising data and scan responses into one
``AdvertisementData``, hides the GAP and GATT services from service discovery, and
delivers notifications and indications alike to ``start_notify`` callbacks.

A bumble device belongs to one event loop: the adapter opens one per running loop
(a new HCI connection or controller, with a fresh random static address) when a scanner
starts or a client connects, and closes it when the last of them stops. Pairing uses
bumble's defaults (just works); OSes that pair automatically on "insufficient
authentication" are not imitated.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import uuid as uuidlib
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from bleak.backends.characteristic import BleakGATTCharacteristic
from bleak.backends.client import BaseBleakClient, NotifyCallback
from bleak.backends.descriptor import BleakGATTDescriptor
from bleak.backends.device import BLEDevice
from bleak.backends.scanner import AdvertisementData, BaseBleakScanner
from bleak.backends.service import BleakGATTService, BleakGATTServiceCollection
from bleak.exc import BleakDeviceNotFoundError, BleakError, BleakGATTProtocolError
from bumble import att, core, hci
from bumble.device import Advertisement, Connection, Device, Peer
from bumble.host import Host
from bumble.link import LocalLink
from bumble.transport import open_transport
from bumble.transport.common import AsyncPipeSink

from ..errors import RetrostepError
from .link import SimController, random_static_address

logger = logging.getLogger(__name__)

DEFAULT_MTU = 517  # what BlueZ and Android request on connect
# GAP and GATT services: OS stacks keep them to themselves.
_HIDDEN_SERVICES = {"00001800-0000-1000-8000-00805f9b34fb", "00001801-0000-1000-8000-00805f9b34fb"}
_CCCD = "00002902-0000-1000-8000-00805f9b34fb"
_PROPERTY_NAMES = (
    (0x01, "broadcast"),
    (0x02, "read"),
    (0x04, "write-without-response"),
    (0x08, "write"),
    (0x10, "notify"),
    (0x20, "indicate"),
    (0x40, "authenticated-signed-writes"),
    (0x80, "extended-properties"),
)


_background: set[asyncio.Task] = set()  # tasks nobody awaits, kept from the collector


class SimRadioUnavailable(RetrostepError):
    """No simulated radio to attach to (no ``retrostep sim board`` running, or gone)."""

    exit_code = 3


@dataclass
class BumbleDeviceDetails:
    """``BLEDevice.details`` for a device seen on the simulated link."""

    address: hci.Address
    advertisement: Advertisement | None = None


class _Adapter:
    """The bumble device of one event loop, shared by that loop's scanners and clients."""

    def __init__(self) -> None:
        self.device: Device | None = None
        self.users = 0
        self.lock = asyncio.Lock()
        self.close: Callable[[], Any] | None = None


class BumbleCentral:
    """A BLE adapter on the simulated link, for bleak.

    ``hci``: a bumble transport spec (``tcp-client:127.0.0.1:PORT``) that gives a
    controller on the link (another process: see :class:`~retrostep.radio.link.HciServer`).
    ``link``: the ``LocalLink`` itself (same process and event loop: tests).
    ``mtu``: the ATT MTU requested on connect."""

    def __init__(self, *, hci: str | None = None, link: LocalLink | None = None,
                 mtu: int = DEFAULT_MTU, name: str = "retrostep-host") -> None:  # fmt: skip
        if (hci is None) == (link is None):
            raise ValueError("give exactly one of hci= or link=")
        self.hci = hci
        self.link = link
        self.mtu = mtu
        self.name = name
        self._adapters: dict[asyncio.AbstractEventLoop, _Adapter] = {}
        central = self
        self.scanner_backend: type[BaseBleakScanner] = type(
            "BumbleScanner", (BumbleScanner,), {"central": central}
        )
        self.client_backend: type[BaseBleakClient] = type(
            "BumbleClient", (BumbleClient,), {"central": central}
        )

    def scanner_kwargs(self) -> dict[str, Any]:
        """Keyword arguments for ``BleakScanner`` (and its ``find_device_by_*``)."""
        return {"backend": self.scanner_backend}

    def client_kwargs(self) -> dict[str, Any]:
        """Keyword arguments for ``BleakClient``."""
        return {"backend": self.client_backend}

    async def acquire(self) -> Device:
        """The running loop's bumble device, powered on; pair with :meth:`release`."""
        loop = asyncio.get_running_loop()
        adapter = self._adapters.setdefault(loop, _Adapter())
        async with adapter.lock:
            if adapter.device is None:
                adapter.device, adapter.close = await self._open()
            adapter.users += 1
            return adapter.device

    async def release(self) -> None:
        loop = asyncio.get_running_loop()
        adapter = self._adapters.get(loop)
        if adapter is None:
            return
        async with adapter.lock:
            adapter.users -= 1
            if adapter.users > 0:
                return
            self._adapters.pop(loop, None)
            device, close = adapter.device, adapter.close
            adapter.device = adapter.close = None
        if device is not None:
            with contextlib.suppress(Exception):
                await device.power_off()
        if close is not None:
            result = close()
            if asyncio.iscoroutine(result):
                with contextlib.suppress(Exception):
                    await result

    async def _open(self) -> tuple[Device, Callable[[], Any]]:
        address = random_static_address()
        if self.link is not None:
            controller = SimController(f"central-{self.name}", link=self.link)
            device = Device(name=self.name, address=address,
                            host=Host(controller, AsyncPipeSink(controller)))  # fmt: skip
            close: Callable[[], Any] = controller.vanish
        else:
            try:
                transport = await open_transport(self.hci)
            except (OSError, core.BaseBumbleError) as e:
                raise SimRadioUnavailable(
                    f"cannot reach the simulated radio at {self.hci} ({e}); "
                    "is `retrostep sim board` still running?"
                ) from e
            device = Device.with_hci(self.name, address, transport.source, transport.sink)
            close = transport.close
        device.gatt_server.max_mtu = self.mtu  # a peripheral may start the exchange too
        try:
            await asyncio.wait_for(device.power_on(), 10)
        except (asyncio.TimeoutError, core.BaseBumbleError, OSError) as e:
            result = close()
            if asyncio.iscoroutine(result):
                await result
            raise SimRadioUnavailable(f"the simulated radio did not answer ({e})") from e
        return device, close


# -- advertisement data ---------------------------------------------------------------


def _uuid_str(raw_le: bytes) -> str:
    if len(raw_le) == 2:
        return f"0000{int.from_bytes(raw_le, 'little'):04x}-0000-1000-8000-00805f9b34fb"
    if len(raw_le) == 4:
        return f"{int.from_bytes(raw_le, 'little'):08x}-0000-1000-8000-00805f9b34fb"
    return str(uuidlib.UUID(bytes=bytes(reversed(raw_le))))


def bumble_uuid_str(u: core.UUID) -> str:
    """bleak's form of a bumble UUID (lowercase, 128-bit)."""
    return _uuid_str(u.to_bytes())


_UUID_LISTS = {0x02: 2, 0x03: 2, 0x04: 4, 0x05: 4, 0x06: 16, 0x07: 16}
_SERVICE_DATA = {0x16: 2, 0x20: 4, 0x21: 16}


def advertisement_data(adv: Advertisement) -> AdvertisementData:
    """What an OS stack reports for this advertisement (plus scan response)."""
    complete = short = None
    manufacturer: dict[int, bytes] = {}
    service_data: dict[str, bytes] = {}
    uuids: list[str] = []
    tx_power = None
    for ad_type, value in adv.data.ad_structures:
        value = bytes(value)
        if ad_type == 0x09:
            complete = value.decode("utf-8", "replace")
        elif ad_type == 0x08:
            short = value.decode("utf-8", "replace")
        elif ad_type in _UUID_LISTS:
            n = _UUID_LISTS[ad_type]
            for i in range(0, len(value) - n + 1, n):
                u = _uuid_str(value[i : i + n])
                if u not in uuids:
                    uuids.append(u)
        elif ad_type in _SERVICE_DATA and len(value) >= _SERVICE_DATA[ad_type]:
            n = _SERVICE_DATA[ad_type]
            service_data[_uuid_str(value[:n])] = value[n:]
        elif ad_type == 0x0A and value:
            tx_power = int.from_bytes(value[:1], "little", signed=True)
        elif ad_type == 0xFF and len(value) >= 2:
            manufacturer[int.from_bytes(value[:2], "little")] = value[2:]
    return AdvertisementData(
        local_name=complete if complete is not None else short,
        manufacturer_data=manufacturer,
        service_data=service_data,
        service_uuids=uuids,
        tx_power=tx_power,
        rssi=adv.rssi,
        platform_data=(adv,),
    )


# -- scanner --------------------------------------------------------------------------


class BumbleScanner(BaseBleakScanner):
    """bleak scanner backend; use :meth:`BumbleCentral.scanner_kwargs`."""

    central: BumbleCentral  # set on the class by BumbleCentral

    def __init__(self, detection_callback=None, service_uuids=None,
                 scanning_mode: str = "active", **kwargs: Any) -> None:  # fmt: skip
        super().__init__(detection_callback, service_uuids)
        self._active = scanning_mode != "passive"
        self._device: Device | None = None

    async def start(self) -> None:
        if self._device is not None:
            return
        self.seen_devices = {}
        device = await self.central.acquire()
        self._device = device
        device.on(device.EVENT_ADVERTISEMENT, self._on_advertisement)
        try:
            await device.start_scanning(active=self._active, filter_duplicates=False)
        except Exception:
            await self.stop()
            raise

    async def stop(self) -> None:
        device, self._device = self._device, None
        if device is None:
            return
        device.remove_listener(device.EVENT_ADVERTISEMENT, self._on_advertisement)
        with contextlib.suppress(Exception):
            await device.stop_scanning()
        await self.central.release()

    def _on_advertisement(self, adv: Advertisement) -> None:
        data = advertisement_data(adv)
        if not self.is_allowed_uuid(data.service_uuids):
            return
        address = adv.address.to_string(False)
        ble_device = self.create_or_update_device(
            address, address, data.local_name, BumbleDeviceDetails(adv.address, adv), data
        )
        self.call_detection_callbacks(ble_device, data)


# -- client ---------------------------------------------------------------------------


class BumbleClient(BaseBleakClient):
    """bleak client backend; use :meth:`BumbleCentral.client_kwargs`.

    Like bleak's BlueZ backend, the disconnected callback fires on every
    disconnection, including one asked for with ``disconnect()``."""

    central: BumbleCentral  # set on the class by BumbleCentral

    def __init__(self, address_or_ble_device: BLEDevice | str, services=None,
                 **kwargs: Any) -> None:  # fmt: skip
        super().__init__(address_or_ble_device, **kwargs)
        self._peer: hci.Address | None = None
        self._name = None
        if isinstance(address_or_ble_device, BLEDevice):
            self._name = address_or_ble_device.name
            details = address_or_ble_device.details
            if isinstance(details, BumbleDeviceDetails):
                self._peer = details.address
        self._wanted_services = set(services) if services else None
        self._device: Device | None = None
        self._connection: Connection | None = None
        self._subscriptions: dict[int, Callable[[bytes], None]] = {}

    @property
    def name(self) -> str:
        return self._name or self.address.replace(":", "-")

    @property
    def mtu_size(self) -> int:
        return self._connection.att_mtu if self._connection else att.ATT_DEFAULT_MTU

    @property
    def is_connected(self) -> bool:
        return self._connection is not None

    async def connect(self, pair: bool, **kwargs: Any) -> None:
        if self._connection is not None:
            return
        device = await self.central.acquire()
        self._device = device
        try:
            peer = self._peer or await self._find(device)
            try:
                connection = await device.connect(peer, timeout=self._timeout)
            except (core.TimeoutError, asyncio.TimeoutError, core.ConnectionError) as e:
                raise BleakDeviceNotFoundError(self.address, f"could not connect: {e}") from e
            self._connection = connection
            connection.on(connection.EVENT_DISCONNECTION, self._on_disconnection)
            await connection.gatt_client.request_mtu(self.central.mtu)
            self.services = await self._discover(connection)
            if pair:
                await self.pair()
        except BaseException:
            connection, self._connection = self._connection, None
            if connection is not None:
                with contextlib.suppress(Exception):
                    await connection.disconnect()
            await self._drop()
            raise

    async def _find(self, device: Device) -> hci.Address:
        """The peer's address (with its type) from its advertisements, as BlueZ does
        when a client is made from an address string."""
        wanted = self.address.upper()
        found: asyncio.Future[hci.Address] = asyncio.get_running_loop().create_future()

        def on_adv(adv: Advertisement) -> None:
            if adv.address.to_string(False) == wanted and not found.done():
                found.set_result(adv.address)

        device.on(device.EVENT_ADVERTISEMENT, on_adv)
        scanning = not device.is_scanning
        try:
            if scanning:
                await device.start_scanning(filter_duplicates=False)
            return await asyncio.wait_for(found, self._timeout)
        except asyncio.TimeoutError:
            raise BleakDeviceNotFoundError(
                self.address, f"device with address {self.address} was not found"
            ) from None
        finally:
            device.remove_listener(device.EVENT_ADVERTISEMENT, on_adv)
            if scanning:
                with contextlib.suppress(Exception):
                    await device.stop_scanning()

    async def _discover(self, connection: Connection) -> BleakGATTServiceCollection:
        peer = Peer(connection)
        collection = BleakGATTServiceCollection()
        for svc in await peer.discover_services():
            svc_uuid = bumble_uuid_str(svc.uuid)
            if svc_uuid in _HIDDEN_SERVICES:
                continue
            if self._wanted_services is not None and svc_uuid not in self._wanted_services:
                continue
            service = BleakGATTService(svc, svc.handle, svc_uuid)
            collection.add_service(service)
            for chr_proxy in await svc.discover_characteristics():
                props = int(chr_proxy.properties)
                characteristic = BleakGATTCharacteristic(
                    chr_proxy,
                    chr_proxy.handle,
                    bumble_uuid_str(chr_proxy.uuid),
                    [name for bit, name in _PROPERTY_NAMES if props & bit],
                    lambda c=connection: c.att_mtu - 3,
                    service,
                )
                collection.add_characteristic(characteristic)
                for desc_proxy in await chr_proxy.discover_descriptors():
                    collection.add_descriptor(
                        BleakGATTDescriptor(
                            desc_proxy,
                            desc_proxy.handle,
                            bumble_uuid_str(desc_proxy.type),
                            characteristic,
                        )
                    )
        return collection

    def _on_disconnection(self, reason: int) -> None:
        self._connection = None
        self._subscriptions.clear()
        task = asyncio.get_running_loop().create_task(self._drop())
        _background.add(task)
        task.add_done_callback(_background.discard)
        if self._disconnected_callback is not None:
            self._disconnected_callback()

    async def _drop(self) -> None:
        device, self._device = self._device, None
        self._connection = None
        if device is not None:
            await self.central.release()

    async def disconnect(self) -> None:
        connection = self._connection
        if connection is None:
            await self._drop()
            return
        with contextlib.suppress(core.BaseBumbleError, hci.HCI_Error):
            await connection.disconnect()
        await self._drop()

    async def pair(self, *args: Any, **kwargs: Any) -> None:
        connection = self._require()
        try:
            await connection.pair()
        except core.BaseBumbleError as e:
            raise BleakError(f"pairing failed: {e}") from e

    async def unpair(self) -> None:
        raise NotImplementedError("unpairing is not simulated")

    def _require(self) -> Connection:
        if self._connection is None:
            raise BleakError("Not connected")
        return self._connection

    # -- I/O ----------------------------------------------------------------------------

    async def read_gatt_char(self, characteristic: BleakGATTCharacteristic, *,
                             use_cached: bool = False, **kwargs: Any) -> bytearray:  # fmt: skip
        return bytearray(await self._read(characteristic.handle))

    async def read_gatt_descriptor(
        self, descriptor: BleakGATTDescriptor, *, use_cached: bool = False, **kwargs: Any
    ) -> bytearray:
        return bytearray(await self._read(descriptor.handle))

    async def _read(self, handle: int) -> bytes:
        connection = self._require()
        try:
            return await connection.gatt_client.read_value(handle)
        except att.ATT_Error as e:
            raise BleakGATTProtocolError(e.error_code) from e
        except asyncio.CancelledError:
            self._raise_if_dropped(connection)
            raise

    def _raise_if_dropped(self, connection: Connection) -> None:
        # bumble cancels a pending request when the link drops; an OS stack reports
        # an error instead (the caller's own cancellation still propagates).
        if self._connection is not connection:
            raise BleakError("disconnected while waiting for the peripheral") from None

    async def write_gatt_char(self, characteristic: BleakGATTCharacteristic, data,
                              response: bool) -> None:  # fmt: skip
        payload = bytes(data)
        if not response and len(payload) > characteristic.max_write_without_response_size:
            raise BleakError(
                f"{len(payload)} bytes do not fit a write without response "
                f"(at most {characteristic.max_write_without_response_size})"
            )
        await self._write(characteristic.handle, payload, response)

    async def write_gatt_descriptor(self, descriptor: BleakGATTDescriptor, data) -> None:
        await self._write(descriptor.handle, bytes(data), True)

    async def _write(self, handle: int, data: bytes, response: bool) -> None:
        connection = self._require()
        try:
            await connection.gatt_client.write_value(handle, data, with_response=response)
        except att.ATT_Error as e:
            raise BleakGATTProtocolError(e.error_code) from e
        except asyncio.CancelledError:
            self._raise_if_dropped(connection)
            raise

    async def start_notify(self, characteristic: BleakGATTCharacteristic,
                           callback: NotifyCallback, **kwargs: Any) -> None:  # fmt: skip
        client = self._require().gatt_client
        handle = characteristic.handle
        cccd = characteristic.get_descriptor(_CCCD)
        if cccd is None:
            raise BleakError(f"characteristic {characteristic.uuid} cannot notify")

        def deliver(value: bytes) -> None:
            callback(bytearray(value))

        self._unsubscribe_local(handle)
        self._subscriptions[handle] = deliver
        # Both sets: a real stack hands indications to the same callback.
        client.notification_subscribers.setdefault(handle, set()).add(deliver)
        client.indication_subscribers.setdefault(handle, set()).add(deliver)
        bits = 0x0001 if "notify" in characteristic.properties else 0x0002
        await self._write(cccd.handle, bits.to_bytes(2, "little"), True)

    async def stop_notify(self, characteristic: BleakGATTCharacteristic) -> None:
        handle = characteristic.handle
        self._unsubscribe_local(handle)
        cccd = characteristic.get_descriptor(_CCCD)
        if cccd is not None and self._connection is not None:
            await self._write(cccd.handle, b"\x00\x00", True)

    def _unsubscribe_local(self, handle: int) -> None:
        deliver = self._subscriptions.pop(handle, None)
        if deliver is None or self._connection is None:
            return
        client = self._connection.gatt_client
        for table in (client.notification_subscribers, client.indication_subscribers):
            table.get(handle, set()).discard(deliver)
