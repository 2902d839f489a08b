"""A whole sync: every session from the device into a sink, resumably, exactly once.

:func:`pull_sessions` authenticates, sets the device clock, lists the sessions and for
each one the sink does not have in full yet

1. reads from the byte the sink already holds (a sync cut short resumes there; the
   bytes of a READ that arrived before a drop are kept);
2. when the session is complete on the device (it ends with END), asks VERIFY for the
   SHA-256 of the whole file and compares it with the sink's copy;
3. on a match, has the sink keep the session for good (:meth:`SessionSink.finish`)
   and only then acknowledges it, which is what allows the device to evict it. On a
   mismatch the sink's copy is discarded and read again once.

A session the sink has finished but the device still lists as unsynced (the link
dropped before the ACK arrived) is verified again and acknowledged. The open session
(still recording) is fetched as far as it goes and resumed next time.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Protocol

from retrostep_core import sync_protocol as sp

from .errors import DeviceError, ProtocolError, SinkRefused
from .protocol_client import ProtocolClient, SessionEntry


class SessionSink(Protocol):
    """Where fetched sessions go, keyed by (device id, session id)."""

    def held(self, device_id: bytes, sid: int) -> int:
        """Bytes of the session held so far (0 if none)."""

    def append(self, device_id: bytes, sid: int, offset: int, data: bytes) -> None:
        """Add ``data`` at ``offset`` (always the current end: ``held``)."""

    def digest(self, device_id: bytes, sid: int) -> bytes:
        """SHA-256 of the bytes held."""

    def discard(self, device_id: bytes, sid: int) -> None:
        """Forget a partial copy that turned out wrong."""

    def finish(self, device_id: bytes, sid: int) -> None:
        """The copy is whole and verified: keep it for good (before the ACK). Raises
        :class:`SinkRefused` if it cannot: the session is then not acknowledged."""

    def finished(self, device_id: bytes, sid: int) -> bool:
        """Whether :meth:`finish` was called for this session."""


class MemorySink:
    """A :class:`SessionSink` in dicts (tests, and a model for real stores)."""

    def __init__(self) -> None:
        self.data: dict[tuple[bytes, int], bytearray] = {}
        self.done: set[tuple[bytes, int]] = set()
        self.appends = 0

    def held(self, device_id: bytes, sid: int) -> int:
        return len(self.data.get((device_id, sid), b""))

    def append(self, device_id: bytes, sid: int, offset: int, data: bytes) -> None:
        buf = self.data.setdefault((device_id, sid), bytearray())
        if offset != len(buf):
            raise ProtocolError(f"session {sid}: data for offset {offset}, held {len(buf)}")
        buf += data
        self.appends += 1

    def digest(self, device_id: bytes, sid: int) -> bytes:
        return hashlib.sha256(self.data.get((device_id, sid), b"")).digest()

    def discard(self, device_id: bytes, sid: int) -> None:
        self.data.pop((device_id, sid), None)
        self.done.discard((device_id, sid))

    def finish(self, device_id: bytes, sid: int) -> None:
        self.done.add((device_id, sid))

    def finished(self, device_id: bytes, sid: int) -> bool:
        return (device_id, sid) in self.done


@dataclass
class PullReport:
    device_id: bytes = b""
    listed: int = 0
    fetched_bytes: int = 0
    finished: list[int] = field(default_factory=list)  # whole and verified this time
    acked: list[int] = field(default_factory=list)
    recording: list[int] = field(default_factory=list)  # open on the device: partial
    mismatched: list[int] = field(default_factory=list)  # a copy that failed VERIFY
    refused: list[tuple[int, str]] = field(default_factory=list)  # the sink would not keep
    clock: int | None = None  # device seconds set


async def pull_sessions(client: ProtocolClient, key: bytes, sink: SessionSink,
                        now: datetime | float | None = None, set_clock: bool = True,
                        report: PullReport | None = None,
                        on_listed: Callable[[bytes, list[SessionEntry]], None] | None = None,
                        ) -> PullReport:  # fmt: skip
    """Sync every session from the device behind ``client`` into ``sink``. ``report``
    (optional) is filled in as the sync goes, so a caller sees the progress of a sync
    that ended in an exception. ``on_listed(device_id, sessions)``: called once the
    device listed its sessions (e.g. to size a progress bar)."""
    rep = report if report is not None else PullReport()
    info = await client.info()
    dev = info.device_id
    rep.device_id = dev
    await client.authenticate(key)
    if set_clock:
        try:
            rep.clock = await client.set_time(now)
        except DeviceError as e:
            if e.status != sp.ERR_UNSUPPORTED:  # a board without a clock: sync anyway
                raise
    sessions = await client.list_sessions()
    rep.listed = len(sessions)
    if on_listed is not None:
        on_listed(dev, sessions)

    def on_data(sid: int):
        def put(offset: int, data: bytes) -> None:
            sink.append(dev, sid, offset, data)
            rep.fetched_bytes += len(data)

        return put

    for e in sessions:
        if sink.finished(dev, e.id):
            if e.complete and not e.synced:  # the ACK of an earlier sync never arrived
                v = await client.verify(e.id)
                if v.digest == sink.digest(dev, e.id):
                    await client.ack(e.id, v.digest)
                    rep.acked.append(e.id)
                else:
                    rep.mismatched.append(e.id)
            continue
        for _attempt in range(2):
            have = sink.held(dev, e.id)
            if have > e.size:
                sink.discard(dev, e.id)
                have = 0
            if have < e.size:
                await client.read_session(e.id, have, e.size, on_data(e.id))
            if not e.complete:
                rep.recording.append(e.id)
                break
            v = await client.verify(e.id)
            if v.size == sink.held(dev, e.id) and v.digest == sink.digest(dev, e.id):
                try:
                    sink.finish(dev, e.id)
                except SinkRefused as refused:
                    rep.refused.append((e.id, str(refused)))
                    break
                rep.finished.append(e.id)
                await client.ack(e.id, v.digest)
                rep.acked.append(e.id)
                break
            rep.mismatched.append(e.id)
            sink.discard(dev, e.id)
    return rep
