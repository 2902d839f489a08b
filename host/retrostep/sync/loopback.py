"""An in-process link to a device-side sync server, with the ATT packet count of a real
one and a switch to drop it at any packet.

``server`` is anything shaped like the firmware's ``SyncServer``: ``connect()``,
``disconnect()``, ``receive(fragment)`` and ``next_fragment(mtu)``. The link connects it
at construction and plays the radio's part: each write goes to ``receive`` (one ATT
Write Request and its Write Response), then every fragment the server has is
"notified" (one ATT Handle Value Notification each).

``drop_after=k``: packets 1..k get through, then the link drops (the server is
disconnected, :meth:`write` raises LinkLost, the notification stream ends). A write
that is the k-th packet reaches the device, but its response does not come back.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

from retrostep_core import sync_protocol as sp

from .errors import LinkLost


class LoopbackLink:
    def __init__(self, server, mtu: int = sp.ATT_MTU_MAX, drop_after: int | None = None):
        self.server = server
        self._mtu = mtu
        self.drop_after = drop_after
        self.closed = False
        # what a radio would carry: ATT PDUs and their bytes (opcode + handle + value)
        self.packets = 0
        self.att_bytes = 0
        self.writes = 0
        self.notified = 0
        self.notify_sizes: list[int] = []  # ATT value length of every notification
        self.write_sizes: list[int] = []
        self._queue: asyncio.Queue[bytes | None] = asyncio.Queue()
        server.connect()

    @property
    def mtu(self) -> int:
        return self._mtu

    def _packet(self, att_len: int) -> None:
        self.packets += 1
        self.att_bytes += att_len
        if self.drop_after is not None and self.packets >= self.drop_after:
            self.drop()

    def drop(self) -> None:
        """The link goes away (supervision timeout, out of range, a killed process)."""
        if not self.closed:
            self.closed = True
            self.server.disconnect()
            self._queue.put_nowait(None)

    async def write(self, data: bytes) -> None:
        if self.closed:
            raise LinkLost()
        if len(data) > self._mtu - sp.ATT_HEADER:
            raise ValueError(f"a {len(data)}-byte write does not fit ATT MTU {self._mtu}")
        self.writes += 1
        self.write_sizes.append(len(data))
        self.server.receive(data)
        self._packet(sp.ATT_HEADER + len(data))  # ATT Write Request
        if not self.closed:
            self._packet(1)  # ATT Write Response
        if self.closed:
            raise LinkLost()
        self._pump()
        await asyncio.sleep(0)

    def _pump(self) -> None:
        while not self.closed:
            frag = self.server.next_fragment(self._mtu)
            if frag is None:
                return
            self.notified += 1
            self.notify_sizes.append(len(frag))
            self._queue.put_nowait(frag)
            self._packet(sp.ATT_HEADER + len(frag))

    async def notifications(self) -> AsyncIterator[bytes]:
        while True:
            frag = await self._queue.get()
            if frag is None:
                return
            yield frag
