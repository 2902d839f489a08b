"""The sim board's radio: a bumble device on the simulated link, driven by the
MicroPython process through its ``bluetooth`` stand-in (``radio/mp/bluetooth.py``).

The MicroPython side calls; this side does what an ESP32's NimBLE host and controller
would do, and reports radio events back as the IRQs the firmware's handler expects:

* ``gatts_register_services`` builds bumble GATT services (behind the GAP and GATT
  services every NimBLE device has) and returns the value handles in MicroPython's
  order; re-registering while connected or advertising is ``EBUSY``, as on NimBLE.
* Each characteristic/descriptor value is a MicroPython-style buffer: 20 bytes unless
  ``gatts_set_buffer`` says otherwise, a central's write truncated to it (or appended,
  in append mode), ``gatts_write`` growing it. Read and write permissions come from the
  flags and are enforced here (bumble's GATT server does not): a read of a
  characteristic without ``FLAG_READ`` is ATT error 0x02, a write without
  ``FLAG_WRITE``/``FLAG_WRITE_NO_RESPONSE`` 0x03.
* A central's write stores the value, raises ``_IRQ_GATTS_WRITE`` and answers the
  central once the handler has returned (up to ``IRQ_ACK_TIMEOUT_S``).
* ``gap_advertise`` advertises the raw AD bytes (and scan response) as given,
  connectable (ADV_IND) or scannable only (ADV_SCAN_IND), from the board's public
  address; a connection stops advertising, as on the ESP32.
* MTU: the central's exchange is answered with ``config('mtu')`` (256 by default, the
  ESP-IDF NimBLE default) and raises ``_IRQ_MTU_EXCHANGED``; ``gattc_exchange_mtu``
  starts one from the peripheral's side.
* ``gatts_notify``/``gatts_indicate`` go out whether or not the central subscribed;
  indications raise ``_IRQ_GATTS_INDICATE_DONE`` when confirmed.
* Disconnections both ways raise ``_IRQ_CENTRAL_DISCONNECT``. When the MicroPython
  process goes away (exit, crash, kill) every central sees a supervision timeout and
  the radio goes silent, like a board losing power; ``active(False)`` disconnects with
  "remote user terminated".

Wire format: ``radio/mp/sim_radio_wire.py`` (shared with the MicroPython side).
"""

from __future__ import annotations

import asyncio
import contextlib
import errno
import hashlib
import logging
import secrets
from dataclasses import dataclass, field
from typing import Any

from bumble import att, gatt, gatt_server, hci
from bumble.core import UUID
from bumble.device import AdvertisingType, Connection, Device
from bumble.host import Host
from bumble.link import LocalLink
from bumble.transport.common import AsyncPipeSink

from .link import SimController, random_static_address
from .mp import sim_radio_wire as wire

logger = logging.getLogger(__name__)

# MicroPython IRQ codes (the firmware's _IRQ_* constants).
IRQ_CENTRAL_CONNECT = 1
IRQ_CENTRAL_DISCONNECT = 2
IRQ_GATTS_WRITE = 3
IRQ_GATTS_INDICATE_DONE = 20
IRQ_MTU_EXCHANGED = 21

# MicroPython characteristic flags.
_FLAG_READ = 0x0002
_FLAG_WRITE_NO_RESPONSE = 0x0004
_FLAG_WRITE = 0x0008
_FLAG_READ_ENCRYPTED = 0x0200
_FLAG_READ_AUTHENTICATED = 0x0400
_FLAG_READ_AUTHORIZED = 0x0800
_FLAG_WRITE_ENCRYPTED = 0x1000
_FLAG_WRITE_AUTHENTICATED = 0x2000
_FLAG_WRITE_AUTHORIZED = 0x4000
_SECURITY = {
    _FLAG_READ_ENCRYPTED: att.Attribute.READ_REQUIRES_ENCRYPTION,
    _FLAG_READ_AUTHENTICATED: att.Attribute.READ_REQUIRES_AUTHENTICATION,
    _FLAG_READ_AUTHORIZED: att.Attribute.READ_REQUIRES_AUTHORIZATION,
    _FLAG_WRITE_ENCRYPTED: att.Attribute.WRITE_REQUIRES_ENCRYPTION,
    _FLAG_WRITE_AUTHENTICATED: att.Attribute.WRITE_REQUIRES_AUTHENTICATION,
    _FLAG_WRITE_AUTHORIZED: att.Attribute.WRITE_REQUIRES_AUTHORIZATION,
}

DEFAULT_ATTR_LEN = 20  # MP_BLUETOOTH_DEFAULT_ATTR_LEN
DEFAULT_GAP_NAME = "MPY ESP32"  # the ESP32 port's default GAP device name
DEFAULT_MTU = 256  # ESP-IDF's CONFIG_BT_NIMBLE_ATT_PREFERRED_MTU default
GAP_NAME_MAX = 31  # NimBLE's BLE_SVC_GAP_DEVICE_NAME_MAX_LENGTH
ATT_MTU_MIN, ATT_MTU_MAX = 23, 527  # what NimBLE accepts as a preferred MTU
ADV_DATA_MAX = 31  # legacy advertising / scan response payload
ADV_INTERVAL_DEFAULT_UNITS = 48  # NimBLE's default when interval_us < 625 (30 ms)
ADV_INTERVAL_UNITS = (0x20, 0x4000)  # 20 ms .. 10.24 s, in 0.625 ms units
IRQ_ACK_TIMEOUT_S = 2.0  # longest a central's write waits for the IRQ handler

_BLE_HS_ETIMEOUT = 13  # _IRQ_GATTS_INDICATE_DONE status when the central never confirms
_BLE_HS_ENOTCONN = 7
_REMOTE_USER_TERMINATED = hci.HCI_ErrorCode.REMOTE_USER_TERMINATED_CONNECTION_ERROR
_POWER_LOSS = hci.HCI_ErrorCode.CONNECTION_TIMEOUT_ERROR  # what a central sees


class RadioCallError(Exception):
    """A ``bluetooth`` call that fails on the device: becomes ``OSError(errno)``."""

    def __init__(self, code: int) -> None:
        super().__init__(errno.errorcode.get(code, str(code)))
        self.code = code


def espressif_address(seed: str) -> hci.Address:
    """A stable public address for a simulated board (Espressif's 24:0A:C4 OUI)."""
    tail = hashlib.sha256(seed.encode()).digest()[:3]
    text = "24:0A:C4:" + ":".join(f"{b:02X}" for b in tail)
    return hci.Address(text, hci.Address.PUBLIC_DEVICE_ADDRESS)


@dataclass
class _Value:
    """One characteristic or descriptor value, held like MicroPython's gatts_db."""

    handle: int
    flags: int
    attribute: Any  # the bumble Characteristic or Descriptor
    data: bytearray = field(default_factory=bytearray)
    capacity: int = DEFAULT_ATTR_LEN
    append: bool = False

    @property
    def readable(self) -> bool:
        return bool(self.flags & _FLAG_READ)

    @property
    def writable(self) -> bool:
        return bool(self.flags & (_FLAG_WRITE | _FLAG_WRITE_NO_RESPONSE))

    def store_remote(self, value: bytes) -> None:
        """A central's write: replaced (or appended), silently cut to the buffer."""
        base = bytes(self.data) if self.append else b""
        self.data = bytearray((base + bytes(value))[: self.capacity])


class _Session:
    """One powered-on radio: the MicroPython process between active(True) and
    active(False) (or its end)."""

    def __init__(self, number: int, reader, writer) -> None:
        self.number = number
        self.ctl_reader = reader
        self.ctl_writer = writer
        self.ev_writer: asyncio.StreamWriter | None = None
        self.pending_events: list[bytes] = []  # emitted before the events link opened
        self.acks: dict[int, tuple[asyncio.Future, asyncio.Future]] = {}
        self.next_id = 1

    def send_event(self, frame: bytes) -> None:
        if self.ev_writer is None:
            self.pending_events.append(frame)
        elif not self.ev_writer.is_closing():
            self.ev_writer.write(frame)

    def close(self) -> None:
        for w in (self.ctl_writer, self.ev_writer):
            if w is not None:
                w.close()
        for waiter in self.acks.values():
            for fut in waiter:
                if not fut.done():
                    fut.cancel()
        self.acks.clear()


class PeripheralBridge:
    """The radio of one simulated board (see the module docstring).

    ``await start()`` puts the board's controller on ``link`` and listens on
    127.0.0.1 for its MicroPython process; :attr:`env_value` is what that process needs
    in ``RETROSTEP_RADIO``. All methods run in the event loop of ``start``."""

    def __init__(
        self,
        link: LocalLink,
        *,
        name: str = "retrostep-sim",
        address: str | hci.Address | None = None,
        host: str = "127.0.0.1",
    ) -> None:
        if address is None:
            self.public_address = espressif_address(name)
        elif isinstance(address, hci.Address):
            self.public_address = address
        else:
            self.public_address = hci.Address(address, hci.Address.PUBLIC_DEVICE_ADDRESS)
        self.link = link
        self.name = name
        self.host = host
        self.port = 0
        self.token = secrets.token_hex(8)
        self.controller: SimController | None = None
        self.device: Device | None = None
        self._server: asyncio.base_events.Server | None = None
        self._session: _Session | None = None
        self._sessions = 0
        self._tasks: set[asyncio.Task] = set()
        self._handlers: set[asyncio.Task] = set()
        self._reset_state()

    # -- lifecycle -----------------------------------------------------------------------

    async def start(self) -> str:
        self.controller = SimController(
            f"board-{self.name}", link=self.link, public_address=self.public_address
        )
        self.device = Device(
            name=DEFAULT_GAP_NAME,
            address=random_static_address(),
            host=Host(self.controller, AsyncPipeSink(self.controller)),
        )
        self.device.on(self.device.EVENT_CONNECTION, self._on_connection)
        await self.device.power_on()
        self._reset_gatt()
        self._server = await asyncio.start_server(self._accept, self.host, 0)
        self.port = self._server.sockets[0].getsockname()[1]
        return self.env_value

    @property
    def env_value(self) -> str:
        """``RETROSTEP_RADIO`` for the MicroPython process: ``HOST:PORT/TOKEN``."""
        return f"{self.host}:{self.port}/{self.token}"

    @property
    def powered(self) -> bool:
        """True while a MicroPython process has the radio on (``active(True)``)."""
        return self._session is not None

    async def stop(self) -> None:
        if self._session is not None:
            await self._power_off(self._session, _POWER_LOSS)
        if self._server is not None:
            self._server.close()
            await self._server.wait_closed()
            self._server = None
        if self._handlers:  # connection handlers see their sockets closed and end
            _, late = await asyncio.wait(set(self._handlers), timeout=2.0)
            for task in late:
                task.cancel()
        for task in list(self._tasks):
            task.cancel()
        if self.device is not None:
            with contextlib.suppress(Exception):
                await self.device.power_off()
        if self.controller is not None:
            self.controller.vanish()

    def _spawn(self, coro) -> asyncio.Task:
        task = asyncio.get_running_loop().create_task(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
        return task

    # -- radio state ---------------------------------------------------------------------

    def _reset_state(self) -> None:
        self.gap_name = DEFAULT_GAP_NAME
        self.mtu = DEFAULT_MTU
        self.use_random_address = False
        self.adv_data = b""
        self.rsp_data = b""
        self.advertising = False
        self.values: dict[int, _Value] = {}

    def _reset_gatt(self) -> None:
        """Only the GAP and GATT services, as after NimBLE starts."""
        assert self.device is not None
        self.device.name = self.gap_name
        server = gatt_server.Server(self.device)
        server.max_mtu = self.mtu
        self.device.gatt_server = server
        self.device.add_default_services()
        self.values = {}

    async def _power_off(self, session: _Session, reason: int) -> None:
        """The radio stops: centrals are dropped, advertising ends, state resets."""
        if self._session is not session:
            return
        self._session = None
        session.close()
        device = self.device
        assert device is not None
        if self.advertising:
            with contextlib.suppress(Exception):
                await device.stop_advertising()
        for connection in list(device.connections.values()):
            with contextlib.suppress(Exception):
                await connection.disconnect(reason)
        self._reset_state()
        self._reset_gatt()

    # -- the MicroPython process ---------------------------------------------------------

    async def _accept(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        if task is not None:
            self._handlers.add(task)
        try:
            await self._serve(reader, writer)
        except asyncio.CancelledError:
            writer.close()  # the radio is being stopped: end this connection quietly
        finally:
            self._handlers.discard(task)

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            hello = await _read(reader)
        except (asyncio.IncompleteReadError, ValueError, ConnectionError):
            writer.close()
            return
        if (not isinstance(hello, dict) or hello.get("v") != wire.VERSION
                or hello.get("token") != self.token):  # fmt: skip
            writer.close()
            return
        if hello.get("op") == wire.OP_HELLO:
            await self._serve_control(reader, writer)
        elif hello.get("op") == wire.OP_EVENTS:
            await self._serve_events(hello.get("session"), reader, writer)
        else:
            writer.close()

    async def _serve_control(self, reader, writer) -> None:
        if self._session is not None:  # a new process took over: the old one is gone
            await self._power_off(self._session, _POWER_LOSS)
        self._sessions += 1
        session = _Session(self._sessions, reader, writer)
        self._session = session
        writer.write(wire.encode({"r": {"session": session.number}}))
        reason = _POWER_LOSS
        try:
            while True:
                try:
                    request = await _read(reader)
                except (asyncio.IncompleteReadError, ConnectionError):
                    break  # the process ended
                if self._session is not session:
                    break
                if "ack" in request:
                    await self._acked(session, request)
                    continue
                op = request.get("op")
                try:
                    result = await self._handle(op, request)
                    reply: dict = {"r": result}
                except RadioCallError as e:
                    reply = {"e": e.code}
                writer.write(wire.encode(reply))
                if op == wire.OP_OFF:
                    reason = _REMOTE_USER_TERMINATED
                    with contextlib.suppress(ConnectionError):
                        await writer.drain()
                    break
        except ValueError as e:
            logger.warning("bad frame from the MicroPython process: %s", e)
        finally:
            await self._power_off(session, reason)

    async def _serve_events(self, number, reader, writer) -> None:
        session = self._session
        if session is None or session.number != number or session.ev_writer is not None:
            writer.close()
            return
        session.ev_writer = writer
        for frame in session.pending_events:
            writer.write(frame)
        session.pending_events.clear()
        with contextlib.suppress(asyncio.IncompleteReadError, ConnectionError, ValueError):
            while await reader.read(4096):  # one-way: nothing is expected from this side
                pass

    async def _acked(self, session: _Session, msg: dict) -> None:
        """An IRQ handler returned: let its waiter go on, and let it finish (answer the
        central) before the next request from the program is carried out."""
        waiter = session.acks.pop(msg.get("ack"), None)
        if waiter is None:
            return
        fut, finished = waiter
        if not fut.done():
            fut.set_result(msg.get("r"))
            with contextlib.suppress(asyncio.TimeoutError, asyncio.CancelledError):
                await asyncio.wait_for(asyncio.shield(finished), IRQ_ACK_TIMEOUT_S)

    def _emit(self, event: int, data: list) -> None:
        if self._session is not None:
            self._session.send_event(wire.encode({"ev": event, "d": data}))

    @contextlib.asynccontextmanager
    async def _irq_handled(self, event: int, data: list):
        """Raise the IRQ, wait until the handler has returned (at most
        IRQ_ACK_TIMEOUT_S), run the body; the program's next request waits for the
        body to finish."""
        session = self._session
        if session is None:
            yield
            return
        n = session.next_id
        session.next_id += 1
        loop = asyncio.get_running_loop()
        fut, finished = loop.create_future(), loop.create_future()
        session.acks[n] = (fut, finished)
        session.send_event(wire.encode({"ev": event, "d": data, "id": n}))
        try:
            with contextlib.suppress(asyncio.TimeoutError):
                await asyncio.wait_for(asyncio.shield(fut), IRQ_ACK_TIMEOUT_S)
            yield
        finally:
            session.acks.pop(n, None)
            if not finished.done():
                finished.set_result(None)

    # -- requests ------------------------------------------------------------------------

    async def _handle(self, op: str, req: dict) -> Any:
        if op == wire.OP_OFF:
            return None
        if op == wire.OP_CONFIG_GET:
            return self._config_get(req["k"])
        if op == wire.OP_CONFIG_SET:
            return self._config_set(req["kv"])
        if op == wire.OP_ADVERTISE:
            return await self._advertise(req)
        if op == wire.OP_REGISTER:
            return self._register(req["svcs"])
        if op == wire.OP_READ:
            value = self._value(req["h"], errno.EINVAL)
            data = bytes(value.data)
            if value.append:
                value.data = bytearray()
            return data.hex()
        if op == wire.OP_WRITE:
            value = self._value(req["h"], errno.EINVAL)
            data = bytes.fromhex(req["d"])
            value.capacity = max(value.capacity, len(data))
            value.data = bytearray(data)
            if req.get("upd"):
                await self._send_update(value)
            return None
        if op == wire.OP_NOTIFY:
            return await self._notify(req, indicate=False)
        if op == wire.OP_INDICATE:
            return await self._notify(req, indicate=True)
        if op == wire.OP_SET_BUFFER:
            value = self._value(req["h"], errno.EINVAL)
            value.capacity = int(req["n"])
            value.append = bool(req["app"])
            del value.data[value.capacity :]
            return None
        if op == wire.OP_EXCHANGE_MTU:
            connection = self._connection(req["c"])
            if connection is None:
                raise RadioCallError(errno.ENOTCONN)
            self._spawn(self._exchange_mtu(connection))
            return None
        if op == wire.OP_DISCONNECT:
            connection = self._connection(req["c"])
            if connection is None:
                return False
            await connection.disconnect(_REMOTE_USER_TERMINATED)
            return True
        raise RadioCallError(errno.EOPNOTSUPP)

    def _value(self, handle: int, code: int) -> _Value:
        value = self.values.get(int(handle))
        if value is None:
            raise RadioCallError(code)
        return value

    def _connection(self, handle: int) -> Connection | None:
        assert self.device is not None
        connection = self.device.connections.get(int(handle))
        if connection is None or connection.role != hci.Role.PERIPHERAL:
            return None
        return connection

    def _address(self) -> hci.Address:
        assert self.device is not None
        return self.device.random_address if self.use_random_address else self.public_address

    def _config_get(self, key: str) -> Any:
        if key == "mac":
            addr = self._address()
            kind = 1 if self.use_random_address else 0
            return [kind, bytes(reversed(bytes(addr))).hex()]
        if key == "gap_name":
            return self.gap_name.encode().hex()
        if key == "mtu":
            return self.mtu
        raise RadioCallError(errno.EINVAL)

    def _config_set(self, values: dict) -> None:
        assert self.device is not None
        for key, value in values.items():
            if key == "gap_name":
                raw = bytes.fromhex(value)
                if len(raw) > GAP_NAME_MAX:
                    raise RadioCallError(errno.EINVAL)
                self.gap_name = raw.decode("utf-8", "replace")
                self.device.name = self.gap_name
                for attribute in self.device.gatt_server.attributes:
                    if getattr(attribute, "uuid", None) == gatt.GATT_DEVICE_NAME_CHARACTERISTIC:
                        attribute.value = raw
            elif key == "mtu":
                if not ATT_MTU_MIN <= int(value) <= ATT_MTU_MAX:
                    raise RadioCallError(errno.EINVAL)
                self.mtu = int(value)
                self.device.gatt_server.max_mtu = self.mtu
            elif key == "addr_mode":
                # 0 public; 1 random static; RPA and NRPA (2, 3) are simulated as a
                # random static address (no address rotation).
                if int(value) not in (0, 1, 2, 3):
                    raise RadioCallError(errno.EINVAL)
                self.use_random_address = int(value) != 0
            # bond, mitm, io, le_secure: accepted; pairing is not simulated here.

    async def _advertise(self, req: dict) -> None:
        device = self.device
        assert device is not None
        if req.get("itvl") is None:
            if self.advertising:
                await device.stop_advertising()
            self.advertising = False
            return
        adv = self.adv_data if req.get("adv") is None else bytes.fromhex(req["adv"])
        rsp = self.rsp_data if req.get("rsp") is None else bytes.fromhex(req["rsp"])
        if len(adv) > ADV_DATA_MAX or len(rsp) > ADV_DATA_MAX:
            raise RadioCallError(errno.EINVAL)
        units = int(req["itvl"]) // 625 or ADV_INTERVAL_DEFAULT_UNITS
        if not ADV_INTERVAL_UNITS[0] <= units <= ADV_INTERVAL_UNITS[1]:
            raise RadioCallError(errno.EINVAL)
        self.adv_data, self.rsp_data = adv, rsp
        kind = (AdvertisingType.UNDIRECTED_CONNECTABLE_SCANNABLE if req.get("conn", True)
                else AdvertisingType.UNDIRECTED_SCANNABLE)  # fmt: skip
        own = hci.OwnAddressType.RANDOM if self.use_random_address else hci.OwnAddressType.PUBLIC
        await device.start_advertising(
            advertising_type=kind,
            own_address_type=own,
            advertising_data=adv,
            scan_response_data=rsp,
            advertising_interval_min=units * 0.625,
            advertising_interval_max=units * 0.625,
        )
        self.advertising = True

    def _register(self, services: list) -> list[list[int]]:
        device = self.device
        assert device is not None
        if self.advertising or any(
            c.role == hci.Role.PERIPHERAL for c in device.connections.values()
        ):
            raise RadioCallError(errno.EBUSY)
        self._reset_gatt()
        built: list[gatt.Service] = []
        pending: list[list[tuple[int, Any]]] = []  # per service: (flags, attribute)
        for svc_uuid, chars in services:
            characteristics = []
            order: list[tuple[int, Any]] = []
            for chr_uuid, flags, descs in chars:
                descriptors = []
                for desc_uuid, desc_flags in descs:
                    descriptor = gatt.Descriptor(
                        _uuid(desc_uuid), _permissions(desc_flags), value=b""
                    )
                    descriptors.append((desc_flags, descriptor))
                characteristic = gatt.Characteristic(
                    _uuid(chr_uuid),
                    gatt.Characteristic.Properties(flags & 0xFF),
                    _permissions(flags),
                    value=b"",
                    descriptors=[d for _, d in descriptors],
                )
                characteristics.append(characteristic)
                order.append((flags, characteristic))
                order.extend(descriptors)
            built.append(gatt.Service(_uuid(svc_uuid), characteristics))
            pending.append(order)
        device.add_services(built)
        result = []
        for order in pending:
            handles = []
            for flags, attribute in order:
                value = _Value(attribute.handle, flags, attribute)
                attribute.value = gatt.CharacteristicValue(
                    read=lambda conn, v=value: self._on_read(v),
                    write=lambda conn, data, v=value: self._on_write(conn, v, data),
                )
                self.values[attribute.handle] = value
                handles.append(attribute.handle)
            result.append(handles)
        return result

    # -- the central's side --------------------------------------------------------------

    def _on_read(self, value: _Value) -> bytes:
        if not value.readable:
            raise att.ATT_Error(att.ATT_READ_NOT_PERMITTED_ERROR)
        data = bytes(value.data)
        return data

    async def _on_write(self, connection: Connection, value: _Value, data: bytes) -> None:
        if not value.writable:
            raise att.ATT_Error(att.ATT_WRITE_NOT_PERMITTED_ERROR)
        value.store_remote(data)
        # bumble answers the central as soon as this returns, with no await in between:
        # the answer is queued before the program's next request is carried out.
        async with self._irq_handled(IRQ_GATTS_WRITE, [connection.handle, value.handle]):
            pass

    def _on_connection(self, connection: Connection) -> None:
        if connection.role != hci.Role.PERIPHERAL:
            return
        self.advertising = False  # the controller stopped advertising on connect
        if self._session is None:  # radio off: nobody to talk to
            self._spawn(connection.disconnect(_REMOTE_USER_TERMINATED))
            return
        peer = connection.peer_address
        addr = bytes(reversed(bytes(peer))).hex()
        kind = 0 if peer.is_public else 1

        def on_disconnection(reason: int) -> None:
            self._emit(IRQ_CENTRAL_DISCONNECT, [connection.handle, kind, addr])

        def on_mtu() -> None:
            self._emit(IRQ_MTU_EXCHANGED, [connection.handle, connection.att_mtu])

        connection.on(connection.EVENT_DISCONNECTION, on_disconnection)
        connection.on(connection.EVENT_CONNECTION_ATT_MTU_UPDATE, on_mtu)
        self._emit(IRQ_CENTRAL_CONNECT, [connection.handle, kind, addr])

    async def _exchange_mtu(self, connection: Connection) -> None:
        # The answer updates the bearer's MTU, which raises _IRQ_MTU_EXCHANGED.
        with contextlib.suppress(Exception):
            await connection.gatt_client.request_mtu(self.mtu)

    async def _notify(self, req: dict, *, indicate: bool) -> None:
        connection = self._connection(req["c"])
        if connection is None:
            raise RadioCallError(errno.ENOTCONN)
        value = self._value(req["h"], errno.ENOENT)
        data = bytes(value.data) if req.get("d") is None else bytes.fromhex(req["d"])
        if indicate:
            self._spawn(self._indicate(connection, value, data))
        else:
            await self._device().notify_subscriber(connection, value.attribute, data, force=True)

    async def _indicate(self, connection: Connection, value: _Value, data: bytes) -> None:
        status = 0
        try:
            await self._device().indicate_subscriber(
                connection, value.attribute, data, force=True
            )
        except TimeoutError:
            status = _BLE_HS_ETIMEOUT
        except Exception as e:  # the link dropped while waiting for the confirmation
            logger.debug("indication failed: %s", e)
            status = _BLE_HS_ENOTCONN
        self._emit(IRQ_GATTS_INDICATE_DONE, [connection.handle, value.handle, status])

    async def _send_update(self, value: _Value) -> None:
        """gatts_write(..., send_update=True): subscribed centrals get the new value."""
        server = self._device().gatt_server
        for bearer, cccds in list(server.subscribers.items()):
            cccd = cccds.get(value.handle, b"\x00\x00")
            bits = cccd[0] if cccd else 0
            if bits & 0x01:
                await server.notify_subscriber(bearer, value.attribute, bytes(value.data))
            elif bits & 0x02 and isinstance(bearer, Connection):
                self._spawn(self._indicate(bearer, value, bytes(value.data)))

    def _device(self) -> Device:
        assert self.device is not None
        return self.device


def _uuid(hex_le: str) -> UUID:
    return UUID.from_bytes(bytes.fromhex(hex_le))


def _permissions(flags: int) -> att.Attribute.Permissions:
    # Reads and writes are allowed at the ATT level and checked in _on_read/_on_write
    # (with the right error codes); the security flags are left to bumble.
    perms = att.Attribute.Permissions.READABLE | att.Attribute.Permissions.WRITEABLE
    for flag, perm in _SECURITY.items():
        if flags & flag:
            perms |= perm
    return perms


async def _read(reader: asyncio.StreamReader) -> Any:
    header = await reader.readexactly(4)
    body = await reader.readexactly(wire.frame_length(header))
    return wire.decode(body)
