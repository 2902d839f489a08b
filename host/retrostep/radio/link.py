"""The simulated air: bumble's virtual controllers on one ``LocalLink``, made to advertise
like real ones, and a TCP server that gives every attaching host its own controller.

bumble's virtual controller is a good link layer for GATT work but simplifies
advertising: it sends only connectable advertisements, reuses the advertising data as
the scan response, reports every advertiser as connectable and times legacy
advertising in the wrong unit. :class:`SimController` fixes exactly that:

* the advertising PDU on the link carries the advertiser's event properties
  (connectable, scannable) and its scan response data;
* a scanner reports each advertisement with the right event type, and a scan response
  (with the advertiser's own scan response data) only when it scans actively and the
  advertiser is scannable;
* a central only connects to a connectable advertiser;
* ACL packets up to 251 bytes (LE Data Length Extension), so an ATT MTU of 247 is not
  cut into 27-byte fragments.

:class:`HciServer` is how other processes reach the link: each TCP connection (an HCI
H4 byte stream, what bumble's ``tcp-client:`` transport speaks) gets a fresh
:class:`SimController`, like plugging in a new USB adapter; when the connection goes
away the controller's links drop (the peers see a supervision timeout) and it leaves the
link, so a killed CLI never leaves the peripheral connected to a ghost.
"""

from __future__ import annotations

import asyncio
import dataclasses
import logging
import os

from bumble import core, hci, ll
from bumble.controller import Connection, Controller, LegacyAdvertiser
from bumble.link import LocalLink
from bumble.transport.common import StreamPacketSource

logger = logging.getLogger(__name__)

LE_ACL_DATA_PACKET_LENGTH = 251  # LE Data Length Extension (what an ESP32 and a laptop use)
SUPERVISION_TIMEOUT = hci.HCI_ErrorCode.CONNECTION_TIMEOUT_ERROR  # 0x08: the peer vanished

_EXT = hci.HCI_LE_Extended_Advertising_Report_Event
_LEG = hci.HCI_LE_Advertising_Report_Event
_ADV_TYPE = hci.HCI_LE_Set_Advertising_Parameters_Command.AdvertisingType
_PROPS = hci.HCI_LE_Set_Extended_Advertising_Parameters_Command.AdvertisingProperties


class SimLink(LocalLink):
    """bumble's ``LocalLink``, but LE data carries the address the sender uses on that
    connection (bumble's always uses the controller's random address, so a peripheral
    advertising from its public address, as an ESP32 does, could not be answered)."""

    def send_acl_data(self, sender_controller, destination_address, transport, data):
        if transport != core.PhysicalTransport.LE:
            super().send_acl_data(sender_controller, destination_address, transport, data)
            return
        connection = sender_controller.le_connections.get(destination_address)
        source = connection.self_address if connection else sender_controller.random_address
        destination = self.find_le_controller(destination_address)
        if destination is not None:
            asyncio.get_running_loop().call_soon(
                destination.on_link_acl_data, source, transport, data
            )


@dataclasses.dataclass
class SimAdvertisingPdu(ll.AdvExtInd):
    """An advertising event as the air would carry it: the advertising data plus what a
    scanner learns from the PDU type and from a scan request (the scan response)."""

    connectable: bool = True
    scannable: bool = True
    scan_response_data: bytes = b""


class SimLegacyAdvertiser(LegacyAdvertiser):
    """Legacy (HCI LE Set Advertising ...) advertising: every undirected type goes on
    the air, at the interval the host asked for (units of 0.625 ms)."""

    def _on_timer_fired(self) -> None:
        self.send_advertising_data()
        interval_s = max(self.advertising_interval_min * 0.625 / 1000.0, 0.02)
        self.timer_handle = asyncio.get_running_loop().call_later(
            interval_s, self._on_timer_fired
        )

    def send_advertising_data(self) -> None:
        if not self.enabled:
            return
        kind = self.advertising_type
        if kind not in (_ADV_TYPE.ADV_IND, _ADV_TYPE.ADV_SCAN_IND, _ADV_TYPE.ADV_NONCONN_IND):
            return  # directed advertising is not simulated
        self.controller.send_advertising_pdu(
            SimAdvertisingPdu(
                advertiser_address=self.address,
                data=bytes(self.advertising_data),
                connectable=kind == _ADV_TYPE.ADV_IND,
                scannable=kind in (_ADV_TYPE.ADV_IND, _ADV_TYPE.ADV_SCAN_IND),
                scan_response_data=bytes(self.scan_response_data),
            )
        )


class SimController(Controller):
    """A bumble virtual controller that advertises and scans like a real one (see the
    module docstring)."""

    le_acl_data_packet_length = LE_ACL_DATA_PACKET_LENGTH
    supported_max_tx_octets = LE_ACL_DATA_PACKET_LENGTH
    supported_max_rx_octets = LE_ACL_DATA_PACKET_LENGTH
    suggested_max_tx_octets = LE_ACL_DATA_PACKET_LENGTH

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.le_legacy_advertiser = SimLegacyAdvertiser(self)
        self.le_scan_active = False

    # -- advertiser side -----------------------------------------------------------

    def send_advertising_pdu(self, packet: ll.AdvertisingPdu) -> None:
        if isinstance(packet, ll.AdvExtInd) and not isinstance(packet, SimAdvertisingPdu):
            packet = self._with_set_properties(packet)
        super().send_advertising_pdu(packet)

    def _with_set_properties(self, packet: ll.AdvExtInd) -> ll.AdvertisingPdu:
        for adv_set in self.advertising_sets.values():
            params = adv_set.parameters
            if not (adv_set.enabled and params and adv_set.address == packet.advertiser_address):
                continue
            if params.advertising_sid != packet.sid:
                continue
            props = int(params.advertising_event_properties)
            return SimAdvertisingPdu(
                advertiser_address=packet.advertiser_address,
                data=packet.data,
                sid=packet.sid,
                periodic_advertising_data=packet.periodic_advertising_data,
                connectable=bool(props & _PROPS.CONNECTABLE_ADVERTISING),
                scannable=bool(props & _PROPS.SCANNABLE_ADVERTISING),
                scan_response_data=bytes(adv_set.scan_response_data),
            )
        return packet

    # -- scanner side --------------------------------------------------------------

    def on_hci_le_set_scan_parameters_command(self, command):
        result = super().on_hci_le_set_scan_parameters_command(command)
        if result.status == hci.HCI_ErrorCode.SUCCESS:
            self.le_scan_active = command.le_scan_type == 1
        return result

    def on_hci_le_set_extended_scan_parameters_command(self, command):
        self.le_scan_active = bool(command.scan_types) and command.scan_types[0] == 1
        return super().on_hci_le_set_extended_scan_parameters_command(command)

    def on_advertising_pdu(self, pdu) -> None:
        if not isinstance(pdu, SimAdvertisingPdu):
            super().on_advertising_pdu(pdu)
            return
        if self.le_scan_enable:
            self._report(pdu, scan_response=False)
            if self.le_scan_active and pdu.scannable:
                self._report(pdu, scan_response=True)
        pending = self.pending_le_connection
        if pending and pending.peer_address == pdu.advertiser_address and pdu.connectable:
            self.create_le_connection(pdu.advertiser_address)

    def _report(self, pdu: SimAdvertisingPdu, *, scan_response: bool) -> None:
        data = pdu.scan_response_data if scan_response else pdu.data
        address = pdu.advertiser_address
        if self.le_features & hci.LeFeatureMask.LE_EXTENDED_ADVERTISING:
            kind = _EXT.EventType.LEGACY_ADVERTISING_PDU_USED
            if pdu.connectable:
                kind |= _EXT.EventType.CONNECTABLE_ADVERTISING
            if pdu.scannable:
                kind |= _EXT.EventType.SCANNABLE_ADVERTISING
            if scan_response:
                kind |= _EXT.EventType.SCAN_RESPONSE
            report = _EXT.Report(
                event_type=int(kind),
                address_type=address.address_type,
                address=address,
                primary_phy=hci.Phy.LE_1M,
                secondary_phy=0,
                advertising_sid=0xFF,
                tx_power=_EXT.TX_POWER_INFORMATION_NOT_AVAILABLE,
                rssi=-50,
                periodic_advertising_interval=0,
                direct_address_type=0,
                direct_address=hci.Address.ANY,
                data=data,
            )
            self.send_hci_packet(_EXT([report]))
        else:
            if scan_response:
                kind = _LEG.EventType.SCAN_RSP
            elif pdu.connectable:
                kind = _LEG.EventType.ADV_IND
            elif pdu.scannable:
                kind = _LEG.EventType.ADV_SCAN_IND
            else:
                kind = _LEG.EventType.ADV_NONCONN_IND
            report = _LEG.Report(
                event_type=kind,
                address_type=address.address_type,
                address=address,
                data=data,
                rssi=-50,
            )
            self.send_hci_packet(_LEG([report]))

    # -- power loss ----------------------------------------------------------------

    def vanish(self) -> None:
        """The adapter is gone (its host process ended): every peer sees a supervision
        timeout, advertising stops and the controller leaves the link."""
        self.le_legacy_advertiser.stop()
        for adv_set in self.advertising_sets.values():
            adv_set.stop()
        for connection in list(self.le_connections.values()):
            _drop(connection)
        self.le_connections.clear()
        self.host = None
        if self in self.link.controllers:
            self.link.remove_controller(self)


def _drop(connection: Connection) -> None:
    try:
        connection.send_ll_control_pdu(ll.TerminateInd(SUPERVISION_TIMEOUT))
    except Exception as e:  # the peer may already be gone from the link
        logger.debug("no peer to tell about the lost link: %s", e)


def random_static_address() -> hci.Address:
    """A fresh random static address (the two top bits set, as the spec requires)."""
    raw = bytearray(os.urandom(6))
    raw[5] |= 0xC0  # bumble stores addresses little-endian: byte 5 is the MSB
    return hci.Address(bytes(raw), hci.Address.RANDOM_DEVICE_ADDRESS)


class _HciSession(asyncio.Protocol):
    """One attached host: H4 packets in from TCP go to its own controller; the
    controller's packets go back out."""

    def __init__(self, server: HciServer) -> None:
        self.server = server
        self.source = StreamPacketSource()
        self.transport: asyncio.Transport | None = None
        self.controller: SimController | None = None

    def connection_made(self, transport) -> None:
        self.transport = transport
        self.server.sessions.add(self)
        self.server.count += 1
        self.controller = SimController(
            f"host-{self.server.count}",
            host_source=self.source,
            host_sink=self,
            link=self.server.link,
            public_address=_public_address(self.server.count),
        )

    def on_packet(self, packet: bytes) -> None:  # from the controller to the host
        if self.transport is not None and not self.transport.is_closing():
            self.transport.write(packet)

    def data_received(self, data: bytes) -> None:
        self.source.data_received(data)

    def connection_lost(self, exc) -> None:
        self.transport = None
        self.server.sessions.discard(self)
        if self.controller is not None:
            self.controller.vanish()
            self.controller = None

    def close(self) -> None:
        if self.transport is not None:
            self.transport.close()


def _public_address(n: int) -> hci.Address:
    # Locally administered range, distinct per attached host.
    return hci.Address(f"02:00:00:00:{(n >> 8) & 0xFF:02X}:{n & 0xFF:02X}",
                       hci.Address.PUBLIC_DEVICE_ADDRESS)  # fmt: skip


class HciServer:
    """HCI over TCP for other processes: ``tcp-client:HOST:PORT`` attaches a new
    controller to ``link`` (see the module docstring). Bound to 127.0.0.1."""

    def __init__(self, link: LocalLink, host: str = "127.0.0.1", port: int = 0) -> None:
        self.link = link
        self.host = host
        self.port = port
        self.sessions: set[_HciSession] = set()
        self.count = 0
        self._server: asyncio.base_events.Server | None = None

    async def start(self) -> str:
        """Listen; returns the transport spec other processes open (``tcp-client:...``)."""
        loop = asyncio.get_running_loop()
        self._server = await loop.create_server(lambda: _HciSession(self), self.host, self.port)
        self.port = self._server.sockets[0].getsockname()[1]
        return self.spec

    @property
    def spec(self) -> str:
        return f"tcp-client:{self.host}:{self.port}"

    async def stop(self) -> None:
        if self._server is not None:
            self._server.close()
            for session in list(self.sessions):
                session.close()
            await self._server.wait_closed()
            self._server = None
